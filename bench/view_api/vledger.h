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

/* Applies what is queued; LST_ERR_REDIS unless every record was applied. */
lst_err vb_feed_flush(struct vb_feed *f);

#endif
