/* Benchmark helper of bench/ledger/run.sh: produces a dispatch workload into Kafka with the
 * project codecs, then measures how fast the running ledger applies it into Redis (from its
 * watermarks, polled every 20 ms).
 *
 *   bench_ledger produce MESSAGES   per message: the message, 10 outbound, 10 sent, 10
 *                                   delivered and 7 read receipts (38 records); prints the count
 *   bench_ledger wait RECORDS SECS  waits until RECORDS are applied; prints events/s
 *   bench_ledger apply MESSAGES KIND
 *                                   applies the records of one KIND (message, outbound, sent,
 *                                   delivered, read) of the same workload straight through the
 *                                   ledger's core to Redis, no Kafka (bench/ledger/lua_cost.sh
 *                                   runs the kinds in that order under callgrind); prints the
 *                                   count
 *   bench_ledger probe MESSAGES KIND
 *                                   sends the commands the read-free layout sketched in
 *                                   docs/ledger.md would need for the same records (probe.c;
 *                                   bench/ledger/layout_probe.sh); prints the count
 *
 * Environment: LST_KAFKA_BROKERS, LST_TOPIC_PREFIX, LST_REDIS_PORT, LST_REDIS_DB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "../../tests/unit/test_ledger_records.h"
#include "bench_ledger.h"
#include "ledger.h"
#include "lst/kafka.h"
#include "lst/log.h"

#define NEMP  250
#define TBASE INT64_C(1750000000000)

static const char *env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : def;
}

static int failed;

/* Where the generated records go: Kafka (produce) or the ledger's core (apply). */
struct sink {
    struct lst_kafka_producer *p;
    struct ledger_core *core;
    enum bench_kind only; /* apply: the kind applied; BENCH__ALL for produce */
    int64_t next[LEDGER_T__COUNT];
    struct lst_buf b;
    long n;
};

static void produce_rec(struct lst_kafka_producer *p, const char *base, const char *key,
                        const struct lst_buf *v)
{
    char t[256];
    snprintf(t, sizeof(t), "%s%s", env("LST_TOPIC_PREFIX", ""), base);
    /* fire and forget; the final flush waits for every delivery report. A full queue is
     * normal (the broker is slower than this loop): only a record that cannot be queued
     * after many drains counts as failed, not the sum of full queues over the whole run. */
    int tries = 0;
    while (lst_kafka_produce(p, t, key, strlen(key), v->data, v->len, 0, NULL) != LST_OK) {
        if (++tries > 100) {
            failed++;
            return;
        }
        lst_kafka_producer_flush(p, 1000); /* queue full: let it drain */
    }
}

static void apply_rec(struct sink *s, enum ledger_topic t, const char *key, const struct lst_buf *v)
{
    const struct ledger_done *done;
    size_t n;
    struct ledger_rec r = {.topic = t,
                           .offset = s->next[t]++,
                           .key = key,
                           .keylen = strlen(key),
                           .value = v->data,
                           .len = v->len};
    if (ledger_core_add(s->core, &r) != LST_OK)
        failed++;
    if (ledger_core_pending(s->core) >= 500 && ledger_core_flush(s->core, &done, &n) != LST_OK)
        failed++;
}

void bench_workload(int messages, bench_event_fn *on, void *ctx)
{
    struct bench_msg m;
    for (int k = 0; k < messages; k++) {
        m.k = k;
        m.at = TBASE + (int64_t)k * 1000;
        m.cat = k % 2 ? "tour" : "info";
        lrec_mid(m.mid, m.at, (unsigned)k);
        for (int j = 0; j < BENCH_NRCPT; j++) {
            snprintf(m.eid[j], sizeof(m.eid[j]), "E%03d", (k * BENCH_NRCPT + j) % NEMP);
            snprintf(m.tid[j], sizeof(m.tid[j]), "DRV%05d", (k * BENCH_NRCPT + j) % NEMP);
            snprintf(m.tm[j], sizeof(m.tm[j]), "%016llx", (unsigned long long)(k * 16 + j));
        }
        on(ctx, BENCH_MESSAGE, &m, -1);
        for (int j = 0; j < BENCH_NRCPT; j++) {
            on(ctx, BENCH_OUTBOUND, &m, j);
            on(ctx, BENCH_SENT, &m, j);
            on(ctx, BENCH_DELIVERED, &m, j);
            if (j < 7)
                on(ctx, BENCH_READ, &m, j);
        }
    }
}

/* One record of the workload, encoded with the project codecs, to Kafka or the core. */
static void send_rec(void *ctx, enum bench_kind k, const struct bench_msg *m, int j)
{
    static const enum ledger_topic topic[BENCH__ALL] = {
        LEDGER_T_MESSAGE, LEDGER_T_OUTBOUND, LEDGER_T_SENT, LEDGER_T_INBOUND, LEDGER_T_INBOUND};
    static const char *const base[BENCH__ALL] = {"lst.message", "lst.outbound", "lst.sent",
                                                 "lst.inbound", "lst.inbound"};
    struct sink *s = ctx;
    const char *key = k == BENCH_MESSAGE ? m->mid : k <= BENCH_SENT ? m->eid[j] : m->tid[j];
    char rid[17];
    if (s->only != BENCH__ALL && s->only != k)
        return;
    if (k == BENCH_MESSAGE) {
        const char *rcpt[BENCH_NRCPT];
        for (int i = 0; i < BENCH_NRCPT; i++)
            rcpt[i] = m->eid[i];
        lrec_message(&s->b, m->mid, "disp1", "Leitstelle", m->cat, rcpt, BENCH_NRCPT, m->at);
    } else if (k == BENCH_OUTBOUND) {
        lrec_outbound(&s->b, m->mid, m->eid[j], m->tid[j], m->at);
    } else if (k == BENCH_SENT) {
        lrec_sent(&s->b, m->mid, m->eid[j], m->tm[j], NULL, false, m->at + 50);
    } else {
        int read = k == BENCH_READ;
        snprintf(rid, sizeof(rid), "%016llx",
                 (unsigned long long)(m->k * 32 + j * 2 + read) | (1ull << 60));
        lrec_receipt(&s->b, m->tid[j], m->tm[j], read ? 2 : 1, m->at + (read ? 5000 : 500), rid);
    }
    if (s->only == BENCH__ALL)
        produce_rec(s->p, base[k], key, &s->b);
    else
        apply_rec(s, topic[k], key, &s->b);
    s->n++;
}

static int produce(int messages)
{
    struct lst_kafka_config kc = {.brokers = env("LST_KAFKA_BROKERS", "127.0.0.1:9092"),
                                  .client_id = "bench-ledger",
                                  .message_timeout_ms = 120000,
                                  .flush_timeout_ms = 120000};
    struct sink s = {.only = BENCH__ALL};

    if (lst_kafka_producer_create(&kc, &s.p) != LST_OK)
        return 1;
    lst_buf_init(&s.b);
    bench_workload(messages, send_rec, &s);
    lst_err err = lst_kafka_producer_flush(s.p, 120000);
    lst_kafka_producer_destroy(s.p);
    lst_buf_cleanup(&s.b);
    printf("%ld\n", s.n);
    return err == LST_OK && failed == 0 ? 0 : 1;
}

/* The records of one kind straight into the ledger's core (the service's defaults: 32 events
 * per script call, LST_LEDGER_SCRIPT_EVENTS as in the service, pipelines of 500), one
 * partition per topic, continuing at its watermark. */
static enum bench_kind kind_of(const char *name)
{
    static const char *const names[BENCH__ALL] = {"message", "outbound", "sent", "delivered",
                                                  "read"};
    for (int k = 0; k < BENCH__ALL; k++)
        if (strcmp(name, names[k]) == 0)
            return (enum bench_kind)k;
    return BENCH__ALL;
}

static int apply(int messages, enum bench_kind kind)
{
    struct ledger_config cfg = {
        .batch = 500, .script_events = 32, .reply_window = 3600000, .read_receipts = 5};
    cfg.read_receipts = strtol(env("LST_LEDGER_READ_RECEIPTS_N", "5"), NULL, 10);
    cfg.script_events = strtol(env("LST_LEDGER_SCRIPT_EVENTS", "32"), NULL, 10);
    struct lst_redis_config rc = {.port = (int)strtol(env("LST_REDIS_PORT", "6379"), NULL, 10),
                                  .timeout_ms = 60000};
    struct lst_redis *redis = NULL;
    struct ledger_core core;
    struct sink s = {.core = &core, .only = kind};
    const struct ledger_done *done;
    size_t n;
    char prefix[128];

    snprintf(prefix, sizeof(prefix), "%s", env("LST_TOPIC_PREFIX", ""));
    if (kind == BENCH__ALL || lst_redis_create(&rc, &redis) != LST_OK)
        return 2;
    cfg.common.topic_prefix = prefix;
    if (ledger_core_init(&core, &cfg, redis, NULL, NULL) != LST_OK)
        return 1;
    for (int t = 0; t < LEDGER_T__COUNT; t++) {
        int64_t at = 0;
        if (ledger_core_start(&core, (enum ledger_topic)t, 0, &at) != LST_OK)
            return 1;
        s.next[t] = at >= 0 ? at : 0; /* LST_KAFKA_OFFSET_BEGINNING (negative) on a fresh Redis */
    }
    lst_buf_init(&s.b);
    bench_workload(messages, send_rec, &s);
    if (ledger_core_flush(&core, &done, &n) != LST_OK)
        failed++;
    ledger_core_cleanup(&core);
    lst_redis_destroy(redis);
    lst_buf_cleanup(&s.b);
    printf("%ld\n", s.n);
    return failed == 0 ? 0 : 1;
}

/* Records applied: the sum over partitions of watermark + 1. */
static long long applied(redisContext *c)
{
    redisReply *r = redisCommand(c, "HVALS lst:lg:wm");
    long long n = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        n += strtoll(r->element[i]->str, NULL, 10) + 1;
    if (r)
        freeReplyObject(r);
    return n;
}

static int wait_applied(long long want, int secs)
{
    redisContext *c =
        redisConnect("127.0.0.1", (int)strtol(env("LST_REDIS_PORT", "6379"), NULL, 10));
    int64_t t0 = lst_mono_ms(), first = -1, deadline = t0 + (int64_t)secs * 1000;
    long long n = 0, at_first = 0;

    if (c == NULL || c->err)
        return 1;
    freeReplyObject(redisCommand(c, "SELECT %s", env("LST_REDIS_DB", "0")));
    while ((n = applied(c)) < want && lst_mono_ms() < deadline) {
        if (n > 0 && first < 0) {
            first = lst_mono_ms();
            at_first = n;
        }
        lst_sleep_ms(20, NULL);
    }
    int64_t end = lst_mono_ms();
    redisFree(c);
    if (n < want) {
        printf("ledger: only %lld of %lld records applied within %d s\n", n, want, secs);
        return 1;
    }
    double total = (double)(end - t0) / 1000.0;
    printf("ledger: %lld records applied in %.2f s from start: %.0f events/s\n", want, total,
           (double)want / total);
    if (first >= 0 && end > first)
        printf("ledger: steady state (first record applied to last): %.0f events/s\n",
               (double)(want - at_first) / ((double)(end - first) / 1000.0));
    return 0;
}

int main(int argc, char **argv)
{
    lst_log_init("bench-ledger", LST_LOG_WARN);
    if (argc == 3 && strcmp(argv[1], "produce") == 0)
        return produce((int)strtol(argv[2], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "apply") == 0)
        return apply((int)strtol(argv[2], NULL, 10), kind_of(argv[3]));
    if (argc == 4 && strcmp(argv[1], "probe") == 0 && kind_of(argv[3]) != BENCH__ALL)
        return bench_probe((int)strtol(argv[2], NULL, 10), kind_of(argv[3]),
                           (int)strtol(env("LST_REDIS_PORT", "6379"), NULL, 10));
    if (argc == 4 && strcmp(argv[1], "wait") == 0)
        return wait_applied(strtoll(argv[2], NULL, 10), (int)strtol(argv[3], NULL, 10));
    fprintf(stderr, "usage: bench_ledger produce MESSAGES | wait RECORDS SECS | apply|probe "
                    "MESSAGES message|outbound|sent|delivered|read\n");
    return 2;
}
