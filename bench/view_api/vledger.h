/* The benchmark's records applied the ledger's own way: encoded with the project's codecs and
 * fed through the ledger core (the service's decode, script arguments and Lua scripts), as
 * the Kafka consumer would feed them. Used for the directory (250 records, faithful by
 * construction) and, in the loader's test, for messages to compare with the loader's keys. */
#ifndef LST_BENCH_VLEDGER_H
#define LST_BENCH_VLEDGER_H

#include "ledger.h"
#include "vgen.h"

struct vb_feed {
    struct ledger_core *core;
    int64_t next[LEDGER_T__COUNT]; /* next offset per topic (one partition each) */
    uint64_t receipt_seq;
    struct lst_buf rec;
};

void vb_feed_init(struct vb_feed *f, struct ledger_core *core);
void vb_feed_cleanup(struct vb_feed *f);

/* One lst.employees record per employee. */
lst_err vb_feed_directory(struct vb_feed *f, const struct vb_dir *d, int64_t at);

/* lst.message, one lst.outbound and lst.sent per recipient, the receipts of every step
 * reached, in that order. */
lst_err vb_feed_message(struct vb_feed *f, const struct vb_dir *d, const struct vb_msg *m);

/* Reply j of the drivers (0-based): a text message (lst.inbound) from a driver with a
 * Threema ID, at VB_T0 + j * step_ms + 3500 (between two outgoing messages when step_ms is a
 * multiple of VB_STEP_MS), so timeline and history pages hold incoming items whose sender the
 * view-api names (employee_name). */
lst_err vb_feed_reply(struct vb_feed *f, const struct vb_dir *d, uint64_t j, int64_t step_ms);

/* Applies what is queued; LST_ERR_REDIS unless every record was applied. */
lst_err vb_feed_flush(struct vb_feed *f);

#endif
