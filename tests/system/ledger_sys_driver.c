/* Driver of the ledger's system test (tests/system/ledger_sys.sh) against the real Kafka and
 * Redis: produces a dispatch day's records with the project codecs, waits until the ledger's
 * watermarks in Redis reach the ends of the topics, dumps every projection key canonically and
 * checks what the projections must say.
 *
 *   ledger_sys_driver produce A|B    records of phase A (directory, first 100 messages) or B
 *   ledger_sys_driver caught-up SECS  waits until every partition is applied (exit 1 on timeout)
 *   ledger_sys_driver progress        prints the number of records applied so far
 *   ledger_sys_driver dump FILE       canonical dump of lst:lg:* (watermarks included)
 *   ledger_sys_driver check           the assertions (exit 1 when any fails)
 *   ledger_sys_driver high TOPIC P    prints the end offset of a partition (topic with prefix)
 *
 * Environment: LST_KAFKA_BROKERS, LST_TOPIC_PREFIX, LST_REDIS_PORT, LST_REDIS_DB. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "../unit/test_ledger_dump.h"
#include "../unit/test_ledger_records.h"
#include "lst/kafka.h"
#include "lst/kafka_assign.h"
#include "lst/log.h"

#define NEMP  250
#define NMSG  200
#define NRCPT 10
#define TBASE INT64_C(1750000000000)

static const char *const topic_names[] = {"lst.message", "lst.outbound", "lst.sent", "lst.inbound",
                                          "lst.employees"};
static const int topic_parts[] = {6, 12, 6, 6, 3};

static const char *env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : def;
}

static void topic(char *out, size_t cap, const char *base)
{
    snprintf(out, cap, "%s%s", env("LST_TOPIC_PREFIX", ""), base);
}

static void eid_of(char out[16], int i)
{
    snprintf(out, 16, "E%03d", i % NEMP);
}

static void tid_of(char out[16], int i)
{
    snprintf(out, 16, "DRV%05d", i % NEMP);
}

static void tm_of(char out[17], int k, int j)
{
    snprintf(out, 17, "%016x", (unsigned)(0x10000 + k * 100 + j));
}

struct out {
    struct lst_kafka_producer *p;
    int n, failed;
};

static void send(struct out *o, const char *base, const char *key, const struct lst_buf *v)
{
    char t[256];
    topic(t, sizeof(t), base);
    if (lst_kafka_produce(o->p, t, key, key ? strlen(key) : 0, v ? v->data : NULL, v ? v->len : 0,
                          0, NULL) != LST_OK)
        o->failed++;
    o->n++;
}

static void produce_message(struct out *o, struct lst_buf *b, int k)
{
    char mid[27], eids[NRCPT][16], tids[NRCPT][16], tm[17];
    const char *rcpt[NRCPT];
    const char *cats[] = {"tour", "info", "alarm"};
    char disp[16];
    int64_t at = TBASE + k * 60000;

    lrec_mid(mid, at, (unsigned)k);
    snprintf(disp, sizeof(disp), "disp%d", k % 4);
    for (int j = 0; j < NRCPT; j++) {
        eid_of(eids[j], k * NRCPT + j);
        tid_of(tids[j], k * NRCPT + j);
        rcpt[j] = eids[j];
    }
    lrec_message(b, mid, disp, "Leitstelle", cats[k % 3], rcpt, NRCPT, at);
    send(o, "lst.message", mid, b);
    for (int j = 0; j < NRCPT; j++) {
        lrec_outbound(b, mid, eids[j], tids[j], at + 1);
        send(o, "lst.outbound", eids[j], b);
        tm_of(tm, k, j);
        if (k % 10 == 0 && j == 9)
            lrec_sent(b, mid, eids[j], NULL, "http_404", true, at + 20);
        else
            lrec_sent(b, mid, eids[j], tm, NULL, false, at + 20);
        send(o, "lst.sent", eids[j], b);
    }
}

/* Receipts of message k: delivered by all accepted, read by most (never by employees whose
 * number ends in 7: read receipts off), acknowledged by the second recipient of every fifth. */
static void produce_receipts(struct out *o, struct lst_buf *b, int k)
{
    int64_t at = TBASE + k * 60000;
    for (int j = 0; j < NRCPT; j++) {
        char tid[16], tm[17], rid[17];
        int e = (k * NRCPT + j) % NEMP;
        if (k % 10 == 0 && j == 9)
            continue;
        tid_of(tid, e);
        tm_of(tm, k, j);
        snprintf(rid, sizeof(rid), "%016x", (unsigned)(0x800000 + k * 100 + j * 4 + 1));
        lrec_receipt(b, tid, tm, 1, at + 1000, rid);
        send(o, "lst.inbound", tid, b);
        if (e % 10 == 7 || j % 4 == 3)
            continue;
        snprintf(rid, sizeof(rid), "%016x", (unsigned)(0x800000 + k * 100 + j * 4 + 2));
        lrec_receipt(b, tid, tm, 2, at + 5000, rid);
        send(o, "lst.inbound", tid, b);
        if (j == 1 && k % 5 == 0) {
            snprintf(rid, sizeof(rid), "%016x", (unsigned)(0x800000 + k * 100 + j * 4 + 3));
            lrec_receipt(b, tid, tm, 3, at + 9000, rid);
            send(o, "lst.inbound", tid, b);
        }
    }
    if (k % 10 == 5) {
        char tid[16], rid[17];
        tid_of(tid, k * NRCPT);
        snprintf(rid, sizeof(rid), "%016x", (unsigned)(0x900000 + k));
        lrec_text_in(b, tid, rid, k % 20 == 5 ? "Unfall an der Rampe" : "ok, mache ich",
                     at + 30000);
        send(o, "lst.inbound", tid, b);
    }
}

static int produce(const char *phase)
{
    struct lst_kafka_config kc = {.brokers = env("LST_KAFKA_BROKERS", "127.0.0.1:9092"),
                                  .client_id = "ledger-sys",
                                  .message_timeout_ms = 30000,
                                  .flush_timeout_ms = 30000};
    struct out o = {0};
    struct lst_buf b;
    bool a = strcmp(phase, "A") == 0;

    if (lst_kafka_producer_create(&kc, &o.p) != LST_OK)
        return 1;
    lst_buf_init(&b);
    if (a) {
        for (int i = 0; i < NEMP; i++) {
            char eid[16], tid[16], dep[16], veh[24];
            eid_of(eid, i);
            tid_of(tid, i);
            snprintf(dep, sizeof(dep), "Depot %d", i % 5);
            snprintf(veh, sizeof(veh), "HH-LS %d", i);
            lrec_employee(&b, eid, "Fahrer", dep, veh, tid, TBASE);
            send(&o, "lst.employees", eid, &b);
        }
    }
    for (int k = a ? 0 : NMSG / 2; k < (a ? NMSG / 2 : NMSG); k++)
        produce_message(&o, &b, k);
    if (!a) {
        for (int k = 0; k < NMSG; k++)
            produce_receipts(&o, &b, k);
        struct lst_buf junk;
        lst_buf_init(&junk);
        lst_buf_puts(&junk, "{\"v\":1,\"truncated");
        send(&o, "lst.sent", "E001", &junk); /* -> lst.sent.dlq */
        lst_buf_cleanup(&junk);
        send(&o, "lst.employees", "E249", NULL); /* erasure */
    }
    lst_err err = lst_kafka_producer_flush(o.p, 60000);
    lst_kafka_producer_destroy(o.p);
    lst_buf_cleanup(&b);
    printf("produced %d records (phase %s), %d failed\n", o.n, phase, o.failed);
    return err == LST_OK && o.failed == 0 ? 0 : 1;
}

static redisContext *redis(void)
{
    int port = (int)strtol(env("LST_REDIS_PORT", "6379"), NULL, 10);
    redisContext *c = redisConnect("127.0.0.1", port);
    if (c == NULL || c->err) {
        fprintf(stderr, "redis: cannot connect to %d\n", port);
        exit(1);
    }
    freeReplyObject(redisCommand(c, "SELECT %s", env("LST_REDIS_DB", "0")));
    return c;
}

static lst_err start_begin(const char *t, int32_t p, int64_t *off, void *ud)
{
    (void)t;
    (void)p;
    (void)ud;
    *off = LST_KAFKA_OFFSET_BEGINNING;
    return LST_OK;
}

/* Partitions not yet applied up to their end (0: caught up); -1 on errors. */
static int behind(struct lst_kafka_reader *r, redisContext *c, long long *applied)
{
    int n = 0;
    *applied = 0;
    for (size_t t = 0; t < LST_ARRAY_LEN(topic_names); t++) {
        for (int p = 0; p < topic_parts[t]; p++) {
            char name[256];
            int64_t high = 0;
            topic(name, sizeof(name), topic_names[t]);
            if (lst_kafka_reader_high(r, name, p, 5000, &high) != LST_OK)
                return -1;
            redisReply *rep = redisCommand(c, "HGET lst:lg:wm %s:%d", name, p);
            long long wm =
                rep && rep->type == REDIS_REPLY_STRING ? strtoll(rep->str, NULL, 10) : -1;
            if (rep)
                freeReplyObject(rep);
            *applied += wm + 1;
            if (high > 0 && wm < high - 1)
                n++;
        }
    }
    return n;
}

static int caught_up(int secs, bool once)
{
    const char *topics[] = {"unused"};
    struct lst_kafka_config kc = {.brokers = env("LST_KAFKA_BROKERS", "127.0.0.1:9092"),
                                  .client_id = "ledger-sys-probe"};
    struct lst_kafka_reader_opts ro = {
        .group_id = "ledger-sys-probe", .topics = topics, .ntopics = 1, .start = start_begin};
    struct lst_kafka_reader *r = NULL;
    redisContext *c = redis();
    int64_t deadline = lst_mono_ms() + (int64_t)secs * 1000;
    int left = -1;
    long long applied = 0;

    if (lst_kafka_reader_create(&kc, &ro, &r) != LST_OK)
        return 1;
    do {
        left = behind(r, c, &applied);
        if (left == 0 || once)
            break;
        lst_sleep_ms(200, NULL);
    } while (lst_mono_ms() < deadline);
    if (once)
        printf("%lld\n", applied);
    else
        printf("caught up: %s (%d partitions behind, %lld records applied)\n",
               left == 0 ? "yes" : "no", left, applied);
    lst_kafka_reader_destroy(r);
    redisFree(c);
    return left == 0 || once ? 0 : 1;
}

static int dump(const char *file)
{
    redisContext *c = redis();
    struct lst_buf b;
    lst_buf_init(&b);
    long n = ledger_dump(c, &b, 0);
    FILE *f = fopen(file, "w");
    if (f == NULL || n < 0)
        return 1;
    fwrite(b.data ? b.data : "", 1, b.len, f);
    fclose(f);
    printf("dumped %ld keys (%zu bytes) to %s\n", n, b.len, file);
    lst_buf_cleanup(&b);
    redisFree(c);
    return 0;
}

static int failures;

static long long qnum(redisContext *c, const char *fmt, const char *a, const char *b)
{
    redisReply *r = redisCommand(c, fmt, a, b);
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r && r->type == REDIS_REPLY_STRING)
        v = strtoll(r->str, NULL, 10);
    else if (r && r->type == REDIS_REPLY_NIL)
        v = 0;
    if (r)
        freeReplyObject(r);
    return v;
}

#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "check failed: " __VA_ARGS__);                                         \
            fprintf(stderr, "\n");                                                                 \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static int check(void)
{
    redisContext *c = redis();
    char mid[27], key[64];

    /* message 0: 10 recipients, one failed, one acknowledged; E007 never reads */
    lrec_mid(mid, TBASE, 0);
    snprintf(key, sizeof(key), "lst:lg:m:%s", mid);
    EXPECT(qnum(c, "HGET %s %s", key, "n") == 10, "message 0 has 10 recipients");
    EXPECT(qnum(c, "HGET %s %s", key, "s:failed") == 1, "message 0: 1 failed");
    EXPECT(qnum(c, "HGET %s %s", key, "s:acknowledged") == 1, "message 0: 1 acknowledged");
    EXPECT(qnum(c, "HGET %s %s", key, "s:read") == 6, "message 0: 6 read");
    EXPECT(qnum(c, "HGET %s %s", key, "s:delivered") == 2, "message 0: 2 delivered");
    EXPECT(qnum(c, "ZSCORE lst:lg:x:st:failed %s", mid, NULL) == TBASE, "failed index");
    EXPECT(qnum(c, "ZSCORE lst:lg:xc:tour:st:unread %s", mid, NULL) == TBASE, "unread index");
    /* the directory and the erasure */
    EXPECT(qnum(c, "ZCARD %s", "lst:lg:emps", NULL) == NEMP - 1, "249 employees left");
    EXPECT(qnum(c, "EXISTS %s", "lst:lg:emp:E249", NULL) == 0, "E249 erased");
    EXPECT(qnum(c, "EXISTS %s", "lst:lg:x:emp:E249", NULL) == 0, "E249 history erased");
    EXPECT(qnum(c, "SISMEMBER %s %s", "lst:lg:erased", "E249") == 1, "E249 marked erased");
    /* read receipts off: E007 got deliveries and never read while others did */
    EXPECT(qnum(c, "SISMEMBER %s %s", "lst:lg:rroff", "E007") == 1, "E007 read receipts off");
    EXPECT(qnum(c, "SISMEMBER %s %s", "lst:lg:rroff", "E000") == 0, "E000 reads");
    /* timeline and history */
    EXPECT(qnum(c, "ZCARD %s", "lst:lg:x:dir:out", NULL) == NMSG, "200 outgoing messages");
    EXPECT(qnum(c, "ZCARD %s", "lst:lg:x:dir:in", NULL) == NMSG / 10, "20 incoming messages");
    EXPECT(qnum(c, "ZCARD %s", "lst:lg:xc:damage:all", NULL) == NMSG / 20, "10 damage reports");
    EXPECT(qnum(c, "ZCARD %s", "lst:lg:x:emp:E050", NULL) == 12, "E050: 8 out + 4 in");
    /* credits: 200 * 10 sends, 20 failed */
    long long credits = 0;
    for (int d = 20254; d <= 20255; d++) {
        char ck[48];
        snprintf(ck, sizeof(ck), "lst:lg:cr:%d", d);
        long long v = qnum(c, "HGET %s %s", ck, "all");
        credits += v > 0 ? v : 0;
    }
    EXPECT(credits == NMSG * NRCPT - NMSG / 10, "credits %lld", credits);
    redisFree(c);
    printf("check: %d failures\n", failures);
    return failures == 0 ? 0 : 1;
}

static int high(const char *base, int partition)
{
    const char *topics[] = {"unused"};
    struct lst_kafka_config kc = {.brokers = env("LST_KAFKA_BROKERS", "127.0.0.1:9092"),
                                  .client_id = "ledger-sys-probe"};
    struct lst_kafka_reader_opts ro = {
        .group_id = "ledger-sys-probe", .topics = topics, .ntopics = 1, .start = start_begin};
    struct lst_kafka_reader *r = NULL;
    char name[256];
    int64_t h = -1;

    topic(name, sizeof(name), base);
    if (lst_kafka_reader_create(&kc, &ro, &r) != LST_OK)
        return 1;
    lst_err err = lst_kafka_reader_high(r, name, partition, 5000, &h);
    printf("%lld\n", (long long)h);
    lst_kafka_reader_destroy(r);
    return err == LST_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    lst_log_init("ledger-sys", LST_LOG_WARN);
    if (argc == 3 && strcmp(argv[1], "produce") == 0)
        return produce(argv[2]);
    if (argc == 3 && strcmp(argv[1], "caught-up") == 0)
        return caught_up((int)strtol(argv[2], NULL, 10), false);
    if (argc == 2 && strcmp(argv[1], "progress") == 0)
        return caught_up(0, true);
    if (argc == 3 && strcmp(argv[1], "dump") == 0)
        return dump(argv[2]);
    if (argc == 2 && strcmp(argv[1], "check") == 0)
        return check();
    if (argc == 4 && strcmp(argv[1], "high") == 0)
        return high(argv[2], (int)strtol(argv[3], NULL, 10));
    fprintf(stderr, "usage: see the header of tests/system/ledger_sys_driver.c\n");
    return 2;
}
