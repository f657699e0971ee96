/* The benchmark workload of bench_ledger, shared by its modes (produce, apply, probe). */
#ifndef BENCH_LEDGER_H
#define BENCH_LEDGER_H

#include <stdint.h>

#define BENCH_NRCPT 10

/* The record kinds in the order one message's records are generated. */
enum bench_kind {
    BENCH_MESSAGE,
    BENCH_OUTBOUND,
    BENCH_SENT,
    BENCH_DELIVERED,
    BENCH_READ,
    BENCH__ALL
};

/* One dispatch message of the workload: its ID, time, category and recipients, with each
 * recipient's Threema ID (tid) and the Gateway's message ID of the send to her (tm). */
struct bench_msg {
    int k;
    char mid[27];
    int64_t at;
    const char *cat;
    char eid[BENCH_NRCPT][16], tid[BENCH_NRCPT][16], tm[BENCH_NRCPT][17];
};

/* Calls `on` for every record of the workload of `messages` messages, in the order
 * bench_ledger produces them: per message the message record (j = -1), then per recipient j
 * its outbound, sent, delivered and (for the first 7) read record. */
typedef void bench_event_fn(void *ctx, enum bench_kind kind, const struct bench_msg *m, int j);
void bench_workload(int messages, bench_event_fn *on, void *ctx);

/* bench_ledger probe: the read-free layout's commands for one kind (probe.c). */
int bench_probe(int messages, enum bench_kind kind, int port);

#endif
