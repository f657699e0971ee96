/* The benchmark's loader: writes the ledger's key layout (docs/ledger.md) for generated
 * messages straight into Redis with pipelining, instead of one script call per record, so a
 * million messages load in minutes. What it writes is exactly what the ledger's scripts
 * produce for the same records (vledger.h feeds them that way; test_view_api_loader.c
 * compares both), except the change stream `ev` and the watermarks `wm`, which only the
 * consuming ledger and the live stream need.
 *
 * Per message: m:<id> (fields, aggregates), r:<id> (state JSON per recipient), the field
 * <tmid> of t:<its last 5 characters>, every x:/xc:<cat>: index the message is in (no xc: for
 * emp and veh), credits cr:<day>, cats (no e:<eid>:out: every message's record is applied, so
 * the sends are in the history x:emp:<eid>, not pending); at the end
 * the read-receipt evidence e:<eid>:dl / e:<eid>:rd and rroff. Messages must come in time
 * order (vb_msg_make's are). The directory itself is applied through the ledger
 * (vb_feed_directory) before. */
#ifndef LST_BENCH_VLOAD_H
#define LST_BENCH_VLOAD_H

#include <hiredis/hiredis.h>

#include "vgen.h"

struct vb_loader;

/* rrn: the ledger's LST_LEDGER_READ_RECEIPTS_N. tag_index: also write x:tag:<tag> (and its
 * xc: family) as the ledger does once it indexes tags. The context is borrowed. */
lst_err vb_loader_create(redisContext *rc, const struct vb_dir *d, int rrn, bool tag_index,
                         struct vb_loader **out);
lst_err vb_loader_add(struct vb_loader *l, const struct vb_msg *m);
/* Writes what is still buffered and the per-employee keys. */
lst_err vb_loader_finish(struct vb_loader *l);
void vb_loader_destroy(struct vb_loader *l);

#endif
