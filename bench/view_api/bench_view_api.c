/* The view-api benchmark's data tool (run.sh drives it).
 *
 *   bench_view_api load PORT DB N [R] the demo directory through the ledger core, then N
 *                                    generated messages with the loader (vload.h), into the
 *                                    redis-server on 127.0.0.1:PORT, database DB; then R
 *                                    drivers' replies (text, lst.inbound) through the ledger
 *                                    core, spread over the same time range (default 0)
 *   bench_view_api sample N          what the wrk URLs ask for: a message ID from the middle
 *                                    of the history, the employee with the longest history,
 *                                    a department, a depot, a category to hide
 *
 * The history is deterministic (vgen.h), so sample needs no Redis. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lst/log.h"
#include "vgen.h"
#include "vledger.h"
#include "vload.h"

#define RRN 5 /* the ledger's default LST_LEDGER_READ_RECEIPTS_N */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool arg_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (lst_parse_i64(s, min, max, out) != LST_OK) {
        fprintf(stderr, "bench_view_api: '%s' is not a number in [%lld, %lld]\n", s, (long long)min,
                (long long)max);
        return false;
    }
    return true;
}

static bool any_key(redisContext *rc, const char *pattern)
{
    redisReply *r = redisCommand(rc, "SCAN 0 MATCH %s COUNT 100000", pattern);
    bool any = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[1]->elements > 0;
    if (r != NULL)
        freeReplyObject(r);
    return any;
}

/* What through_ledger feeds: the directory (dir), the first message (probe: then *tags says
 * whether the ledger writes tag indexes), replies of the drivers (replies, over n messages). */
struct feed_what {
    bool dir, probe;
    int64_t replies, n;
};

static lst_err feed(struct vb_feed *fd, const struct vb_dir *d, const struct feed_what *w,
                    redisContext *rc, bool *tags)
{
    struct vb_msg m;
    lst_err err = w->dir ? vb_feed_directory(fd, d, VB_T0 - 1000) : LST_OK;
    if (err == LST_OK && w->probe) {
        vb_msg_make(d, 0, &m);
        err = vb_feed_message(fd, d, &m);
        if (err == LST_OK)
            err = vb_feed_flush(fd);
        *tags = any_key(rc, "lst:lg:x:tag:*");
    }
    /* the replies spread over the messages' time range (whole steps: between two sends) */
    int64_t step = w->replies > 0 ? (w->n + w->replies - 1) / w->replies * VB_STEP_MS : 0;
    for (int64_t j = 0; err == LST_OK && j < w->replies; j++)
        err = vb_feed_reply(fd, d, (uint64_t)j, step);
    if (err == LST_OK && w->replies > 0)
        err = vb_feed_flush(fd);
    return err;
}

/* Records through the ledger core (what: feed_what). */
static lst_err through_ledger(int port, int db, const struct vb_dir *d, redisContext *rc,
                              const struct feed_what *what, bool *tags)
{
    struct lst_redis *redis = NULL;
    struct ledger_config cfg = {0};
    struct ledger_core core;
    struct vb_feed fd;
    char prefix[1] = "";
    struct lst_redis_config rcfg = {.port = port, .db = db, .timeout_ms = 30000};
    lst_err err = lst_redis_create(&rcfg, &redis);
    if (err != LST_OK)
        return err;
    cfg.common.topic_prefix = prefix;
    cfg.read_receipts = RRN;
    cfg.reply_window = 86400000;
    cfg.batch = 500;
    cfg.script_events = 32;
    err = ledger_core_init(&core, &cfg, redis, NULL, NULL);
    if (err == LST_OK) {
        vb_feed_init(&fd, &core);
        err = feed(&fd, d, what, rc, tags);
        vb_feed_cleanup(&fd);
        ledger_core_cleanup(&core);
    }
    lst_redis_destroy(redis);
    return err;
}

static int load(int port, int db, int64_t n, int64_t replies)
{
    const struct feed_what probe = {.dir = true, .probe = true};
    const struct feed_what dir = {.dir = true};
    const struct feed_what rep = {.replies = replies, .n = n};
    struct vb_dir d;
    struct vb_loader *l = NULL;
    struct vb_msg m;
    bool tags = false;
    int rc = 1;
    redisContext *c = redisConnect("127.0.0.1", port);
    if (c == NULL || c->err != 0 || vb_dir_load(LST_BENCH_DIRECTORY, 0, &d) != LST_OK) {
        fprintf(stderr, "bench_view_api: no redis on port %d or no directory\n", port);
        goto out_conn;
    }
    freeReplyObject(redisCommand(c, "SELECT %d", db));
    /* does the ledger index tags? ask it with the first message, then start clean */
    if (through_ledger(port, db, &d, c, &probe, &tags) != LST_OK)
        goto out;
    freeReplyObject(redisCommand(c, "FLUSHDB"));
    if (through_ledger(port, db, &d, c, &dir, &tags) != LST_OK ||
        vb_loader_create(c, &d, RRN, tags, &l) != LST_OK)
        goto out;
    double t0 = now_s();
    for (int64_t i = 0; i < n; i++) {
        vb_msg_make(&d, (uint64_t)i, &m);
        if (vb_loader_add(l, &m) != LST_OK)
            goto out;
        if ((i + 1) % 100000 == 0)
            fprintf(stderr, "bench_view_api: %lld messages loaded (%.0f s)\n", (long long)(i + 1),
                    now_s() - t0);
    }
    if (vb_loader_finish(l) != LST_OK)
        goto out;
    printf("bench view-api: loaded %lld messages in %.1f s (%.0f messages/s; tag indexes: %s)\n",
           (long long)n, now_s() - t0, (double)n / (now_s() - t0 + 1e-9), tags ? "yes" : "no");
    t0 = now_s();
    if (replies > 0 && through_ledger(port, db, &d, c, &rep, &tags) != LST_OK)
        goto out;
    if (replies > 0)
        printf("bench view-api: %lld drivers' replies through the ledger in %.1f s\n",
               (long long)replies, now_s() - t0);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "bench_view_api: loading failed\n");
    vb_loader_destroy(l);
    vb_dir_cleanup(&d);
out_conn:
    if (c != NULL)
        redisFree(c);
    return rc;
}

/* The employee with the most messages among the first 1000 (the rest look alike). */
static size_t busiest(const struct vb_dir *d, int64_t n)
{
    size_t *count = calloc(d->n, sizeof(*count)), best = 0;
    struct vb_msg m;
    for (int64_t i = 0; count != NULL && i < n && i < 1000; i++) {
        vb_msg_make(d, (uint64_t)i, &m);
        for (size_t k = 0; k < m.n; k++)
            count[m.r[k].emp]++;
    }
    for (size_t e = 0; count != NULL && e < d->n; e++) {
        if (count[e] > count[best])
            best = e;
    }
    free(count);
    return best;
}

static int sample(int64_t n)
{
    struct vb_dir d;
    struct vb_msg m;
    if (vb_dir_load(LST_BENCH_DIRECTORY, 0, &d) != LST_OK)
        return 1;
    vb_msg_make(&d, (uint64_t)(n / 2), &m);
    const struct vb_emp *e = &d.e[busiest(&d, n)];
    /* message, employee, department, depot (URL-safe as generated), a category to hide */
    printf("%s %s %s %s %s\n", m.mid, e->id, "Nahverkehr", "Hamburg-Billbrook", "info");
    vb_dir_cleanup(&d);
    return 0;
}

int main(int argc, char **argv)
{
    int64_t port = 0, db = 0, n = 0, replies = 0;
    lst_log_init("bench_view_api", LST_LOG_WARN);
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "load") == 0 &&
        arg_i64(argv[2], 1, 65535, &port) && arg_i64(argv[3], 0, 15, &db) &&
        arg_i64(argv[4], 1, 100000000, &n) &&
        (argc == 5 || arg_i64(argv[5], 0, 10000000, &replies)))
        return load((int)port, (int)db, n, replies);
    if (argc == 3 && strcmp(argv[1], "sample") == 0 && arg_i64(argv[2], 1, 100000000, &n))
        return sample(n);
    fprintf(stderr, "usage: bench_view_api load PORT DB N [REPLIES] | sample N\n");
    return 2;
}
