/* The view-api benchmark's data: the demo directory (demo/erp-export.csv, depot and shift as
 * tags as the ERP import makes them) and a deterministic history of outgoing messages with
 * realistic outcomes per recipient. Message i is a pure function of (directory, i), so the
 * loader (vload.c) and the ledger's own path (vledger.c) can be fed the same records.
 *
 * A message: about 20 recipients (an explicit list, or a department within a depot as a
 * selector), one of six categories, one of eight dispatchers; per recipient: failed for good
 * (2 %), accepted and nothing more (5 %), delivered, read or acknowledged/declined; employees
 * with read receipts off never read. Message i is at VB_T0 + i * VB_STEP_MS (+ jitter), so
 * later messages are newer. */
#ifndef LST_BENCH_VGEN_H
#define LST_BENCH_VGEN_H

#include <stdbool.h>
#include <stdint.h>

#include "lst/error.h"
#include "lst/records.h"
#include "lst/util.h"

#define VB_T0       INT64_C(1735689600000) /* 2025-01-01 */
#define VB_STEP_MS  7000
#define VB_MAX_RCPT 64

struct vb_emp {
    char *id, *name, *dep, *veh, *tid, *phone, *email, *depot, *shift;
    struct lst_strv tags;
    bool active;
    bool rr_off; /* has read receipts switched off */
};

struct vb_dir {
    struct vb_emp *e;
    size_t n;
};

/* Reads at most max employees (0: all) of the CSV. */
lst_err vb_dir_load(const char *csv_path, size_t max, struct vb_dir *d);
void vb_dir_cleanup(struct vb_dir *d);

/* The lst.employees record of e (replaces out's content). */
lst_err vb_employee_record(const struct vb_emp *e, int64_t at, struct lst_buf *out);

struct vb_rcpt {
    size_t emp;                  /* index into the directory */
    bool failed;                 /* failed for good (q, f); else accepted (q, s, ...) */
    int64_t q, f, s, d, r, a, x; /* 0: step not reached */
    char tmid[17];
};

struct vb_msg {
    char mid[27];
    int64_t at;
    const char *disp, *disp_name, *dep, *cat;
    char text[96];
    const char *sel_dep, *sel_tag; /* selector (NULL: explicit recipients) */
    size_t n;
    struct vb_rcpt r[VB_MAX_RCPT];
};

/* Message i (0-based). */
void vb_msg_make(const struct vb_dir *d, uint64_t i, struct vb_msg *m);

/* The recipient's state name as the ledger derives it. */
const char *vb_rcpt_state(const struct vb_rcpt *r);

#endif
