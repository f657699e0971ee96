/* The read-free layout probe (bench_ledger probe MESSAGES KIND): what the layout sketched in
 * docs/ledger.md ("A layout without reads in Lua") would cost Redis for the benchmark's
 * workload, measured by sending its commands, not by estimating them.
 *
 * It is a probe of a design, not an implementation: it issues the commands that layout needs
 * per event, with the same keys, values and order of the same workload as `bench_ledger
 * apply`, so that bench/ledger/layout_probe.sh can compare Redis's CPU per event of both on
 * one server. Nothing reads what it writes (keys under lst:lgp:).
 *
 * The layout, per event kind (every command pipelined, a batch of BATCH events at a time):
 * - every per-recipient step is a member of a sorted set per message and step, scored by the
 *   step's time and written with ZADD LT (keeps the earliest time: idempotent and
 *   commutative, so no read and no script is needed, and two ledgers stay safe);
 * - stage A, one MULTI/EXEC per batch: the steps, one change-stream XADD per event, the
 *   message marked dirty (SADD) and the watermark, so effect and progress stay one atomic step;
 * - stage B, per distinct message of the batch: its step counts read back (ZCARD), then the
 *   counts, the item version and the status indexes written and the dirty mark removed. Stage
 *   B only recomputes from stage A's truth, so a crash between the two is repaired from the
 *   dirty set at start;
 * - a receipt first resolves its Threema message ID through the t: buckets (HGET, one read
 *   per receipt, pipelined), as the Lua scripts do today.
 * The message record keeps an index layout like today's (timeline, direction, kind,
 * dispatcher, and per recipient the employee index and history). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "bench_ledger.h"

#define BATCH 500
#define PFX   "lst:lgp:"

struct pev {
    char mid[27], eid[16], tm[17];
    int64_t at;
};

struct probe {
    redisContext *c;
    enum bench_kind kind;
    struct pev ev[BATCH];
    int n;
    int pending; /* message records: commands whose replies are not read yet */
    long total, failed;
};

static void cmd(struct probe *p, int argc, const char **argv)
{
    if (redisAppendCommandArgv(p->c, argc, argv, NULL) != REDIS_OK)
        p->failed++;
}

/* Reads the replies of `count` pipelined commands; returns them for the caller to free. */
static redisReply **replies(struct probe *p, int count)
{
    redisReply **r = calloc((size_t)count, sizeof(*r));
    for (int i = 0; r != NULL && i < count; i++) {
        void *x = NULL;
        if (redisGetReply(p->c, &x) != REDIS_OK || x == NULL) {
            p->failed++;
            break;
        }
        r[i] = x;
        if (r[i]->type == REDIS_REPLY_ERROR)
            p->failed++;
    }
    return r;
}

static void drop(redisReply **r, int count)
{
    for (int i = 0; r != NULL && i < count; i++)
        if (r[i] != NULL)
            freeReplyObject(r[i]);
    free(r);
}

static void key(char *out, size_t len, const char *a, const char *b, const char *c)
{
    snprintf(out, len, PFX "%s%s%s", a, b, c);
}

static void tbucket(char *out, size_t len, const char *tm)
{
    key(out, len, "t:", tm + strlen(tm) - 5, "");
}

/* The message record: the message hash, every recipient queued in one ZADD, the indexes. */
static int message_cmds(struct probe *p, const struct bench_msg *m)
{
    char mk[64], qk[64], at[24], ix[64];
    const char *argv[4 + 2 * BENCH_NRCPT];
    snprintf(at, sizeof(at), "%" PRId64, m->at);
    key(mk, sizeof(mk), "m:", m->mid, "");
    const char *h[] = {"HSET", mk,     "msg",  "1",     "dir", "out", "at", at,
                       "cat",  m->cat, "disp", "disp1", "n",   "10",  "v",  "1"};
    cmd(p, 16, h);
    key(qk, sizeof(qk), "st:", m->mid, ":q");
    int a = 0;
    argv[a++] = "ZADD";
    argv[a++] = qk;
    argv[a++] = "LT";
    for (int j = 0; j < BENCH_NRCPT; j++) {
        argv[a++] = at;
        argv[a++] = m->eid[j];
    }
    cmd(p, a, argv);
    static const char *const dims[] = {"all",        "dir:out",   "kind:text",
                                       "disp:disp1", "st:unread", "st:undelivered"};
    for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
        key(ix, sizeof(ix), "ix:", dims[i], "");
        cmd(p, 4, (const char *[]){"ZADD", ix, at, m->mid});
    }
    for (int j = 0; j < BENCH_NRCPT; j++) {
        key(ix, sizeof(ix), "ix:emp:", m->eid[j], "");
        cmd(p, 4, (const char *[]){"ZADD", ix, at, m->mid});
        key(ix, sizeof(ix), "x:emp:", m->eid[j], "");
        cmd(p, 4, (const char *[]){"ZADD", ix, at, m->mid});
    }
    cmd(p, 10,
        (const char *[]){"XADD", PFX "ev", "MAXLEN", "~", "100000", "*", "t", "message", "id",
                         m->mid});
    return 2 + 6 + 2 * BENCH_NRCPT + 1;
}

/* Stage 0 of a receipt batch: resolve every Threema message ID to "mid eid". A receipt
 * without a mapping would be held (not in this workload). */
static void resolve(struct probe *p)
{
    char tk[64];
    for (int i = 0; i < p->n; i++) {
        tbucket(tk, sizeof(tk), p->ev[i].tm);
        cmd(p, 3, (const char *[]){"HGET", tk, p->ev[i].tm});
    }
    redisReply **r = replies(p, p->n);
    for (int i = 0; r != NULL && i < p->n; i++)
        if (r[i] == NULL || r[i]->type != REDIS_REPLY_STRING ||
            sscanf(r[i]->str, "%26s %15s", p->ev[i].mid, p->ev[i].eid) != 2)
            p->failed++;
    drop(r, p->n);
}

static const char *step_of(enum bench_kind k)
{
    return k == BENCH_OUTBOUND ? "q" : k == BENCH_SENT ? "s" : k == BENCH_DELIVERED ? "d" : "r";
}

/* Stage A: the steps, the change stream, the dirty marks and the watermark in one MULTI. */
static int stage_a(struct probe *p)
{
    char sk[64], tk[64], at[24], val[48], off[24];
    int count = 0;
    cmd(p, 1, (const char *[]){"MULTI"});
    count++;
    for (int i = 0; i < p->n; i++) {
        const struct pev *e = &p->ev[i];
        snprintf(at, sizeof(at), "%" PRId64, e->at);
        snprintf(sk, sizeof(sk), PFX "st:%s:%s", e->mid, step_of(p->kind));
        cmd(p, 5, (const char *[]){"ZADD", sk, "LT", at, e->eid});
        cmd(p, 14,
            (const char *[]){"XADD", PFX "ev", "MAXLEN", "~", "100000", "*", "t", "status", "id",
                             e->mid, "e", e->eid, "st", step_of(p->kind)});
        cmd(p, 3, (const char *[]){"SADD", PFX "dirty", e->mid});
        count += 3;
        if (p->kind == BENCH_SENT) {
            tbucket(tk, sizeof(tk), e->tm);
            snprintf(val, sizeof(val), "%s %s", e->mid, e->eid);
            cmd(p, 4, (const char *[]){"HSET", tk, e->tm, val});
            count++;
        }
    }
    snprintf(off, sizeof(off), "%ld", p->total + p->n);
    cmd(p, 4, (const char *[]){"HSET", PFX "wm", "probe", off});
    cmd(p, 1, (const char *[]){"EXEC"});
    return count + 2;
}

static int distinct(struct probe *p, const char **mids)
{
    int n = 0;
    for (int i = 0; i < p->n; i++) {
        int seen = 0;
        for (int j = 0; j < n && !seen; j++)
            seen = strcmp(mids[j], p->ev[i].mid) == 0;
        if (!seen)
            mids[n++] = p->ev[i].mid;
    }
    return n;
}

/* Stage B, per distinct message: the step counts read back, then counts, version, status
 * indexes written and the dirty mark removed. */
static void stage_b(struct probe *p)
{
    static const char *const steps[] = {"q", "s", "d", "r"};
    const char *mids[BATCH];
    char k[64], c[4][24], v[24];
    int n = distinct(p, mids), writes = 0;
    for (int i = 0; i < n; i++)
        for (int s = 0; s < 4; s++) {
            snprintf(k, sizeof(k), PFX "st:%s:%s", mids[i], steps[s]);
            cmd(p, 2, (const char *[]){"ZCARD", k});
        }
    redisReply **r = replies(p, 4 * n);
    for (int i = 0; r != NULL && i < n; i++) {
        for (int s = 0; s < 4; s++)
            snprintf(c[s], sizeof(c[s]), "%lld", r[4 * i + s] ? r[4 * i + s]->integer : 0);
        key(k, sizeof(k), "m:", mids[i], "");
        snprintf(v, sizeof(v), "%ld", p->total + p->n); /* the item version: only goes up */
        cmd(p, 12,
            (const char *[]){"HSET", k, "nq", c[0], "ns", c[1], "nd", c[2], "nr", c[3], "v", v});
        cmd(p, 3, (const char *[]){"SREM", PFX "dirty", mids[i]});
        writes += 2;
        /* a status index changes only when a count reaches the audience (10 here) */
        if (strcmp(c[3], "10") == 0) {
            cmd(p, 3, (const char *[]){"ZREM", PFX "ix:st:unread", mids[i]});
            writes++;
        }
        if (strcmp(c[2], "10") == 0) {
            cmd(p, 3, (const char *[]){"ZREM", PFX "ix:st:undelivered", mids[i]});
            writes++;
        }
    }
    drop(r, 4 * n);
    drop(replies(p, writes), writes);
}

static void flush(struct probe *p)
{
    drop(replies(p, p->pending), p->pending);
    p->pending = 0;
    if (p->n == 0)
        return;
    if (p->kind >= BENCH_DELIVERED)
        resolve(p);
    int count = stage_a(p);
    drop(replies(p, count), count);
    stage_b(p);
    p->total += p->n;
    p->n = 0;
}

static void on_event(void *ctx, enum bench_kind k, const struct bench_msg *m, int j)
{
    struct probe *p = ctx;
    if (k != p->kind)
        return;
    if (k == BENCH_MESSAGE) {
        p->pending += message_cmds(p, m);
        if (p->pending >= 20 * BATCH) {
            drop(replies(p, p->pending), p->pending);
            p->pending = 0;
        }
        p->total++;
        return;
    }
    struct pev *e = &p->ev[p->n++];
    memset(e, 0, sizeof(*e));
    if (k <= BENCH_SENT) { /* the send side knows its message and employee */
        snprintf(e->mid, sizeof(e->mid), "%s", m->mid);
        snprintf(e->eid, sizeof(e->eid), "%s", m->eid[j]);
    }
    snprintf(e->tm, sizeof(e->tm), "%s", m->tm[j]);
    e->at = k == BENCH_OUTBOUND    ? m->at
            : k == BENCH_SENT      ? m->at + 50
            : k == BENCH_DELIVERED ? m->at + 500
                                   : m->at + 5000;
    if (p->n == BATCH)
        flush(p);
}

int bench_probe(int messages, enum bench_kind kind, int port)
{
    struct probe *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return 1;
    p->kind = kind;
    p->c = redisConnect("127.0.0.1", port);
    if (p->c == NULL || p->c->err) {
        fprintf(stderr, "probe: cannot connect to Redis on port %d\n", port);
        return 1;
    }
    bench_workload(messages, on_event, p);
    flush(p);
    printf("%ld\n", p->total);
    int rc = p->failed == 0 ? 0 : 1;
    if (rc != 0)
        fprintf(stderr, "probe: %ld commands failed\n", p->failed);
    redisFree(p->c);
    free(p);
    return rc;
}
