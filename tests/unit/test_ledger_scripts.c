/* The ledger's scripts against a real redis-server (tests/redis_fixture.h),
 * driven through the ledger core exactly as the service drives them: records
 * encoded with the project codecs, decoded, turned into script calls,
 * pipelined. Checks the state machine in every order of outcome and receipts,
 * duplicates, monotonicity, aggregates and status indexes, read receipts
 * switched off, incoming messages (sender mapping, categories, reply links),
 * erasure, the watermark gate and dead letters, and that the projections do not
 * depend on how topics interleave. */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "ledger.h"
#include "lst/metrics.h"
#include "lst/log.h"
#include "lst_test.h"
#include "redis_fixture.h"
#include "test_ledger_dump.h"
#include "test_ledger_records.h"

#define T0 INT64_C(1700000000000)

/* Receipts through the Lua script (false) or merged in C (native.c): the tests below run
 * once each way (native_on in the list at the end), and test_native_equals_scripts compares
 * the two on the same records. */
static bool g_native;

/* The version guard: after every event, every item hash m:<id> whose content other than v
 * changed must have a larger v, and v never goes down (also when the hash went and came
 * back). The view API caches rendered rows by (id, v), so a write that forgot the bump would
 * serve a stale row (docs/ledger.md, docs/view-api.md). */
#define VG_MAX 128

struct vg_item {
    char key[96];
    char *content; /* the canonical fields without v */
    long long v;   /* -1: none */
    bool present;  /* in the previous snapshot */
    bool seen;     /* in this one */
};

struct vguard {
    struct vg_item it[VG_MAX];
    size_t n;
    long long checked; /* hashes compared over the test */
};

struct fx {
    struct redis_fixture rf;
    struct lst_redis *redis;
    redisContext *rc;
    struct ledger_config cfg;
    struct ledger_core core;
    int64_t next[LEDGER_T__COUNT][8];
    struct lst_buf rec;
    bool up;
    struct vguard vg;
    char prefix[1];
    char rules[128];
};

static void vg_reset(struct vguard *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->it[i].content);
    g->n = 0;
}

static struct vg_item *vg_find(struct vguard *g, const char *key)
{
    for (size_t i = 0; i < g->n; i++) {
        if (strcmp(g->it[i].key, key) == 0)
            return &g->it[i];
    }
    if (g->n == VG_MAX)
        return NULL;
    struct vg_item *it = &g->it[g->n++];
    memset(it, 0, sizeof(*it));
    snprintf(it->key, sizeof(it->key), "%s", key);
    it->v = -1;
    return it;
}

static bool fx_start(struct fx *f, int64_t rrn)
{
    memset(f, 0, sizeof(*f));
    lst_buf_init(&f->rec);
    if (!redis_fixture_start(&f->rf, NULL))
        return false;
    struct lst_redis_config rc = {.port = f->rf.port, .timeout_ms = 10000};
    if (lst_redis_create(&rc, &f->redis) != LST_OK)
        return false;
    f->cfg.common.topic_prefix = f->prefix;
    f->cfg.read_receipts = rrn;
    f->cfg.reply_window = 3600000;
    f->cfg.batch = 100;
    f->cfg.script_events = 8;
    f->cfg.native = g_native;
    snprintf(f->rules, sizeof(f->rules), "%s",
             "damage=keyword:unfall,schaden;werkstatt=department:Werkstatt");
    f->cfg.rules = f->rules;
    if (ledger_core_init(&f->core, &f->cfg, f->redis, NULL, NULL) != LST_OK)
        return false;
    f->rc = redisConnect("127.0.0.1", f->rf.port);
    f->up = f->rc != NULL && f->rc->err == 0;
    return f->up;
}

static void fx_stop(struct fx *f)
{
    ledger_core_cleanup(&f->core);
    vg_reset(&f->vg);
    if (f->rc != NULL)
        redisFree(f->rc);
    lst_redis_destroy(f->redis);
    redis_fixture_stop(&f->rf);
    lst_buf_cleanup(&f->rec);
}

static void fx_flushall(struct fx *f)
{
    freeReplyObject(redisCommand(f->rc, "FLUSHALL"));
    vg_reset(&f->vg);
    memset(f->next, 0, sizeof(f->next));
    ledger_core_forget(&f->core);
}

/* Compares one hash with its previous snapshot and takes the new one. */
static void vg_hash(struct fx *f, const char *key)
{
    struct vg_item *it = vg_find(&f->vg, key);
    redisReply *h = redisCommand(f->rc, "HGETALL %s", key);
    REQUIRE(it != NULL && h != NULL && h->type == REDIS_REPLY_ARRAY);
    struct lst_buf c;
    long long v = -1;
    lst_buf_init(&c);
    ledger_dump_sorted(&c, h, 2, "v");
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        if (strcmp(h->element[i]->str, "v") == 0)
            v = strtoll(h->element[i + 1]->str, NULL, 10);
    }
    bool changed = it->content == NULL || !it->present || strcmp(it->content, c.data ? c.data : "");
    if (v < 0 || v < it->v || (changed && v <= it->v))
        fprintf(stderr, "  %s: v %lld -> %lld, content %s\n    was %s\n    now %s\n", key, it->v, v,
                changed ? "changed" : "same", it->content ? it->content : "(none)", c.data);
    CHECK(v >= 0);                /* every hash an event wrote has a version */
    CHECK(v >= it->v);            /* never down */
    CHECK(!changed || v > it->v); /* a change bumps it */
    free(it->content);
    it->content = lst_strdup(c.data ? c.data : "");
    it->v = v;
    it->seen = true;
    f->vg.checked++;
    lst_buf_cleanup(&c);
    freeReplyObject(h);
}

static void vg_check(struct fx *f)
{
    char cursor[32] = "0";
    for (size_t i = 0; i < f->vg.n; i++)
        f->vg.it[i].seen = false;
    do {
        redisReply *r = redisCommand(f->rc, "SCAN %s MATCH lst:lg:m:* COUNT 1000", cursor);
        REQUIRE(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++)
            vg_hash(f, r->element[1]->element[i]->str);
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    for (size_t i = 0; i < f->vg.n; i++)
        f->vg.it[i].present = f->vg.it[i].seen;
}

/* Applies value (NULL: tombstone) at the next offset of (t, p); returns the
 * outcome. */
static int feed_raw(struct fx *f, enum ledger_topic t, int32_t p, const char *key,
                    const char *value, size_t len)
{
    struct ledger_rec r = {.topic = t,
                           .partition = p,
                           .offset = f->next[t][p]++,
                           .key = key,
                           .keylen = key ? strlen(key) : 0,
                           .value = value,
                           .len = len};
    const struct ledger_done *done;
    size_t n;
    if (ledger_core_add(&f->core, &r) != LST_OK)
        return -1;
    ledger_core_flush(&f->core, &done, &n);
    int outcome = n == 1 ? (int)done[0].outcome : -1;
    vg_check(f);
    return outcome;
}

static int feed(struct fx *f, enum ledger_topic t, int32_t p, const char *key)
{
    return feed_raw(f, t, p, key, f->rec.data, f->rec.len);
}

/* Reply as a string (static buffer), "" for nil. */
static const char *cmd(struct fx *f, const char *fmt, const char *a, const char *b)
{
    static char out[4096];
    redisReply *r = b ? redisCommand(f->rc, fmt, a, b) : redisCommand(f->rc, fmt, a);
    out[0] = '\0';
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        snprintf(out, sizeof(out), "%s", r->str);
    else if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        snprintf(out, sizeof(out), "%lld", r->integer);
    if (r != NULL)
        freeReplyObject(r);
    return out;
}

static long long num(struct fx *f, const char *fmt, const char *a, const char *b)
{
    return strtoll(cmd(f, fmt, a, b), NULL, 10);
}

static bool state_is(struct fx *f, const char *mid, const char *eid, const char *st)
{
    char key[64], want[48];
    snprintf(key, sizeof(key), "lst:lg:r:%s", mid);
    snprintf(want, sizeof(want), "\"st\":\"%s\"", st);
    const char *s = cmd(f, "HGET %s %s", key, eid);
    if (strstr(s, want) == NULL)
        fprintf(stderr, "  state of %s/%s: %s (want %s)\n", mid, eid, s, st);
    return strstr(s, want) != NULL;
}

static long long agg(struct fx *f, const char *mid, const char *field)
{
    char key[64];
    snprintf(key, sizeof(key), "lst:lg:m:%s", mid);
    return num(f, "HGET %s %s", key, field);
}

/* ---- the state machine in every order
 * ------------------------------------------------ */

#define NEV 5

static void apply_event(struct fx *f, int ev, const char *mid)
{
    const char *rcpt[] = {"E17"};
    switch (ev) {
    case 0:
        lrec_outbound(&f->rec, mid, "E17", "DRV00017", T0);
        feed(f, LEDGER_T_OUTBOUND, 0, "E17");
        break;
    case 1:
        lrec_sent(&f->rec, mid, "E17", "00000000000000aa", NULL, false, T0 + 100);
        feed(f, LEDGER_T_SENT, 0, "E17");
        break;
    case 2:
        lrec_receipt(&f->rec, "DRV00017", "00000000000000aa", 1, T0 + 200, "00000000000000b1");
        feed(f, LEDGER_T_INBOUND, 0, "DRV00017");
        break;
    case 3:
        lrec_receipt(&f->rec, "DRV00017", "00000000000000aa", 2, T0 + 300, "00000000000000b2");
        feed(f, LEDGER_T_INBOUND, 1, "DRV00017");
        break;
    default:
        lrec_message(&f->rec, mid, "disp1", "Leitstelle", "tour", rcpt, 1, T0);
        feed(f, LEDGER_T_MESSAGE, 0, mid);
        break;
    }
}

static bool next_perm(int *a, int n)
{
    int i = n - 2;
    while (i >= 0 && a[i] >= a[i + 1])
        i--;
    if (i < 0)
        return false;
    int j = n - 1;
    while (a[j] <= a[i])
        j--;
    int t = a[i];
    a[i] = a[j];
    a[j] = t;
    for (int l = i + 1, r = n - 1; l < r; l++, r--) {
        t = a[l];
        a[l] = a[r];
        a[r] = t;
    }
    return true;
}

static void test_every_order_same_state(void)
{
    struct fx f;
    char mid[27];
    struct lst_buf first, now;
    int perm[NEV] = {0, 1, 2, 3, 4};
    int orders = 0, same = 0;

    REQUIRE(fx_start(&f, 3));
    lst_buf_init(&first);
    lst_buf_init(&now);
    lrec_mid(mid, T0, 7);
    do {
        fx_flushall(&f);
        for (int i = 0; i < NEV; i++)
            apply_event(&f, perm[i], mid);
        /* everything again, at new offsets: producer retries, Gateway callback
         * retries */
        for (int i = NEV - 1; i >= 0; i--)
            apply_event(&f, perm[i], mid);
        lst_buf_reset(&now);
        ledger_dump(f.rc, &now, 1);
        /* to one employee: the item names her, whichever record came first */
        CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", mid, "eid"), "E17");
        if (orders == 0) {
            lst_buf_puts(&first, now.data);
            CHECK(state_is(&f, mid, "E17", "read"));
            const char *s = cmd(&f, "HGET lst:lg:r:%s %s", mid, "E17");
            CHECK(strstr(s, "\"q\":1700000000000") != NULL);
            CHECK(strstr(s, "\"s\":1700000000100") != NULL);
            CHECK(strstr(s, "\"d\":1700000000200") != NULL);
            CHECK(strstr(s, "\"r\":1700000000300") != NULL);
            CHECK(strstr(s, "\"tm\":\"00000000000000aa\"") != NULL);
            CHECK_EQ(agg(&f, mid, "n"), 1);
            CHECK_EQ(agg(&f, mid, "s:read"), 1);
            CHECK_EQ(agg(&f, mid, "s:queued"), 0);
            CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:st:unread", NULL), 0);
            CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:all", NULL), 1);
            CHECK_EQ(num(&f, "HGET lst:lg:cr:19675 %s", "all", NULL), 1);
            CHECK_EQ(num(&f, "HGET lst:lg:cr:19675 %s", "disp:disp1", NULL), 1);
            CHECK_EQ(num(&f, "HGET lst:lg:cr:19675 %s", "dep:Leitstelle", NULL), 1);
            CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:h:00000000000000aa", NULL), 0);
        }
        if (strcmp(first.data, now.data) == 0) {
            same++;
        } else if (orders - same < 2) {
            FILE *a = fopen("/tmp/ledger-perm-first.txt", "w");
            FILE *b = fopen("/tmp/ledger-perm-now.txt", "w");
            if (a && b) {
                fputs(first.data, a);
                fputs(now.data, b);
            }
            if (a)
                fclose(a);
            if (b)
                fclose(b);
        }
        orders++;
    } while (next_perm(perm, NEV));
    CHECK_EQ(orders, 120);
    CHECK_EQ(same, 120);
    CHECK(f.vg.checked > 1000); /* the version guard ran after every event */
    lst_buf_cleanup(&first);
    lst_buf_cleanup(&now);
    fx_stop(&f);
}

/* ---- monotonicity, acknowledged/declined, failures
 * ------------------------------------ */

static void test_monotonic_and_final_states(void)
{
    struct fx f;
    char mid[27];
    const char *rcpt[] = {"E1", "E2", "E3", "E4"};

    REQUIRE(fx_start(&f, 3));
    lrec_mid(mid, T0, 1);
    lrec_message(&f.rec, mid, "disp1", "Leitstelle", "tour", rcpt, 4, T0);
    CHECK_EQ(feed(&f, LEDGER_T_MESSAGE, 0, mid), LEDGER_APPLIED);
    CHECK_EQ(agg(&f, mid, "s:queued"), 4);
    CHECK_EQ(num(&f, "ZSCORE lst:lg:x:st:undelivered %s", mid, NULL), T0);

    /* E1: read arrives, then the late "received" must not move it back */
    lrec_sent(&f.rec, mid, "E1", "00000000000000e1", NULL, false, T0 + 10);
    feed(&f, LEDGER_T_SENT, 0, "E1");
    lrec_receipt(&f.rec, "DRV00001", "00000000000000e1", 2, T0 + 500, "0000000000000001");
    feed(&f, LEDGER_T_INBOUND, 0, "DRV00001");
    lrec_receipt(&f.rec, "DRV00001", "00000000000000e1", 1, T0 + 400, "0000000000000002");
    feed(&f, LEDGER_T_INBOUND, 0, "DRV00001");
    CHECK(state_is(&f, mid, "E1", "read"));
    CHECK(strstr(cmd(&f, "HGET lst:lg:r:%s %s", mid, "E1"), "\"d\":1700000000400") != NULL);

    /* E2: acknowledged, then declined later: declined wins (the later decision)
     */
    lrec_sent(&f.rec, mid, "E2", "00000000000000e2", NULL, false, T0 + 10);
    feed(&f, LEDGER_T_SENT, 0, "E2");
    lrec_receipt(&f.rec, "DRV00002", "00000000000000e2", 3, T0 + 600, "0000000000000003");
    feed(&f, LEDGER_T_INBOUND, 0, "DRV00002");
    CHECK(state_is(&f, mid, "E2", "acknowledged"));
    lrec_receipt(&f.rec, "DRV00002", "00000000000000e2", 4, T0 + 700, "0000000000000004");
    feed(&f, LEDGER_T_INBOUND, 0, "DRV00002");
    CHECK(state_is(&f, mid, "E2", "declined"));
    lrec_receipt(&f.rec, "DRV00002", "00000000000000e2", 2, T0 + 650, "0000000000000005");
    feed(&f, LEDGER_T_INBOUND, 0, "DRV00002");
    CHECK(state_is(&f, mid, "E2", "declined"));

    /* E3: a retry, then the final failure with its reason */
    lrec_sent(&f.rec, mid, "E3", NULL, "http_500", false, T0 + 10);
    feed(&f, LEDGER_T_SENT, 0, "E3");
    CHECK(state_is(&f, mid, "E3", "retrying"));
    lrec_sent(&f.rec, mid, "E3", NULL, "http_404", true, T0 + 20);
    feed(&f, LEDGER_T_SENT, 0, "E3");
    CHECK(state_is(&f, mid, "E3", "failed"));
    const char *s3 = cmd(&f, "HGET lst:lg:r:%s %s", mid, "E3");
    CHECK(strstr(s3, "\"fc\":\"http_404\"") != NULL);
    CHECK(strstr(s3, "\"ff\":1") != NULL);
    CHECK(strstr(s3, "\"fr\":\"the recipient is unknown\"") != NULL);
    /* an older retry record redelivered does not replace the final failure's
     * details */
    lrec_sent(&f.rec, mid, "E3", NULL, "http_500", false, T0 + 30);
    feed(&f, LEDGER_T_SENT, 0, "E3");
    CHECK(strstr(cmd(&f, "HGET lst:lg:r:%s %s", mid, "E3"), "\"fc\":\"http_404\"") != NULL);

    /* E4: only sent */
    lrec_sent(&f.rec, mid, "E4", "00000000000000e4", NULL, false, T0 + 10);
    feed(&f, LEDGER_T_SENT, 0, "E4");

    CHECK_EQ(agg(&f, mid, "n"), 4);
    CHECK_EQ(agg(&f, mid, "s:read"), 1);
    CHECK_EQ(agg(&f, mid, "s:declined"), 1);
    CHECK_EQ(agg(&f, mid, "s:failed"), 1);
    CHECK_EQ(agg(&f, mid, "s:sent"), 1);
    CHECK_EQ(agg(&f, mid, "s:queued"), 0);
    CHECK_EQ(agg(&f, mid, "s:retrying"), 0);
    CHECK_EQ(num(&f, "ZSCORE lst:lg:x:st:failed %s", mid, NULL), T0);
    CHECK_EQ(num(&f, "ZSCORE lst:lg:xc:tour:st:failed %s", mid, NULL), T0);
    CHECK_EQ(num(&f, "ZSCORE lst:lg:x:st:unread %s", mid, NULL), T0); /* E4 has not read */
    /* E4 reads: everyone who could read has read */
    lrec_receipt(&f.rec, "DRV00004", "00000000000000e4", 2, T0 + 900, "0000000000000006");
    feed(&f, LEDGER_T_INBOUND, 0, "DRV00004");
    CHECK_EQ(num(&f, "ZSCORE lst:lg:x:st:unread %s", mid, NULL), 0);
    CHECK_EQ(num(&f, "ZSCORE lst:lg:x:st:undelivered %s", mid, NULL), 0);
    CHECK_EQ(num(&f, "ZSCORE lst:lg:x:st:failed %s", mid, NULL), T0);
    /* credits: three accepted sends */
    CHECK_EQ(num(&f, "HGET lst:lg:cr:19675 %s", "disp:disp1", NULL), 3);
    fx_stop(&f);
}

/* ---- read receipts switched off
 * --------------------------------------------------------- */

static void send_to_two(struct fx *f, const char *mid, int64_t at, unsigned k)
{
    const char *rcpt[] = {"EA", "EB"};
    char tma[17], tmb[17];
    snprintf(tma, sizeof(tma), "%016x", 0xa00u + k);
    snprintf(tmb, sizeof(tmb), "%016x", 0xb00u + k);
    lrec_message(&f->rec, mid, "disp1", "Leitstelle", "tour", rcpt, 2, at);
    feed(f, LEDGER_T_MESSAGE, 0, mid);
    lrec_sent(&f->rec, mid, "EA", tma, NULL, false, at + 10);
    feed(f, LEDGER_T_SENT, 0, "EA");
    lrec_sent(&f->rec, mid, "EB", tmb, NULL, false, at + 10);
    feed(f, LEDGER_T_SENT, 0, "EB");
}

static void receipt_for(struct fx *f, const char *from, unsigned tm, int status, int64_t at,
                        unsigned rid)
{
    char tmid[17], rmid[17];
    snprintf(tmid, sizeof(tmid), "%016x", tm);
    snprintf(rmid, sizeof(rmid), "%016x", rid);
    lrec_receipt(&f->rec, from, tmid, status, at, rmid);
    feed(f, LEDGER_T_INBOUND, 0, from);
}

static void rr_scenario(struct fx *f, bool deliveries_first, char mids[4][27])
{
    for (unsigned k = 0; k < 3; k++) {
        lrec_mid(mids[k], T0 + k * 1000, k);
        send_to_two(f, mids[k], T0 + k * 1000, k);
    }
    for (int pass = 0; pass < 2; pass++) {
        bool a_pass = deliveries_first ? pass == 0 : pass == 1;
        for (unsigned k = 0; k < 3; k++) {
            int64_t at = T0 + k * 1000 + 100;
            if (a_pass) {
                receipt_for(f, "DRV0000A", 0xa00u + k, 1, at, 0x100 + k);
            } else {
                receipt_for(f, "DRV0000B", 0xb00u + k, 1, at, 0x200 + k);
                receipt_for(f, "DRV0000B", 0xb00u + k, 2, at + 50, 0x300 + k);
            }
        }
    }
}

static void test_read_receipts_off(void)
{
    struct fx f;
    char mids[4][27];
    struct lst_buf d1, d2;

    REQUIRE(fx_start(&f, 3));
    lst_buf_init(&d1);
    lst_buf_init(&d2);
    rr_scenario(&f, true, mids);
    CHECK_EQ(num(&f, "SISMEMBER lst:lg:rroff %s", "EA", NULL), 1);
    CHECK_EQ(num(&f, "SISMEMBER lst:lg:rroff %s", "EB", NULL), 0);
    CHECK(state_is(&f, mids[2], "EA", "delivered"));
    ledger_dump(f.rc, &d1, 1);
    /* the other order (B's reads before A's deliveries) ends the same */
    fx_flushall(&f);
    rr_scenario(&f, false, mids);
    ledger_dump(f.rc, &d2, 1);
    CHECK_EQ(num(&f, "SISMEMBER lst:lg:rroff %s", "EA", NULL), 1);
    CHECK(d1.data != NULL && d2.data != NULL && strcmp(d1.data, d2.data) == 0);
    /* two messages are not evidence enough */
    fx_flushall(&f);
    for (unsigned k = 0; k < 2; k++) {
        lrec_mid(mids[k], T0 + k * 1000, k);
        send_to_two(&f, mids[k], T0 + k * 1000, k);
        receipt_for(&f, "DRV0000A", 0xa00u + k, 1, T0 + k * 1000 + 100, 0x100 + k);
        receipt_for(&f, "DRV0000B", 0xb00u + k, 2, T0 + k * 1000 + 100, 0x300 + k);
    }
    CHECK_EQ(num(&f, "SISMEMBER lst:lg:rroff %s", "EA", NULL), 0);
    /* a third one is; then A reads a new message and is no longer suspected */
    lrec_mid(mids[2], T0 + 2000, 2);
    send_to_two(&f, mids[2], T0 + 2000, 2);
    receipt_for(&f, "DRV0000A", 0xa02, 1, T0 + 2100, 0x102);
    CHECK_EQ(num(&f, "SISMEMBER lst:lg:rroff %s", "EA", NULL), 1);
    lrec_mid(mids[3], T0 + 3000, 3);
    send_to_two(&f, mids[3], T0 + 3000, 3);
    receipt_for(&f, "DRV0000A", 0xa03, 2, T0 + 3100, 0x103);
    CHECK_EQ(num(&f, "SISMEMBER lst:lg:rroff %s", "EA", NULL), 0);
    lst_buf_cleanup(&d1);
    lst_buf_cleanup(&d2);
    fx_stop(&f);
}

/* ---- directory, incoming messages, categories, replies, erasure
 * ------------------------ */

/* The message record these tests send: a text of disp1 in "tour"; audience left to the
 * caller. */
static void text_message(struct lst_message *m, const char *mid, int64_t at)
{
    m->message_id = lrec_dup(mid);
    m->created_at = at;
    m->dispatcher = lrec_dup("disp1");
    m->category = lrec_dup("tour");
    m->idempotency_key = lrec_dup(mid);
    m->content.kind = LST_CONTENT_TEXT;
    m->content.text = lrec_dup("Abfahrt 6 Uhr");
}

/* A message to E99 that named E17 (inactive) and X5 (unknown) too: both skipped. */
static void skipped_message(struct fx *f, const char *mid, int64_t at)
{
    struct lst_message m = {0};
    text_message(&m, mid, at);
    lst_strv_push(&m.audience.recipients, "E99");
    lst_strv_push(&m.audience.selector.employee_ids, "E17");
    lst_strv_push(&m.audience.selector.employee_ids, "E99");
    lst_strv_push(&m.audience.selector.employee_ids, "X5");
    lst_audience_skip_push(&m.audience, "E17", LST_SKIP_INACTIVE);
    lst_audience_skip_push(&m.audience, "X5", LST_SKIP_UNKNOWN);
    CHECK_EQ(lst_message_encode(&m, &f->rec), LST_OK);
    lst_message_cleanup(&m);
    CHECK_EQ(feed(f, LEDGER_T_MESSAGE, 2, mid), LEDGER_APPLIED);
}

static void test_inbound_directory_replies(void)
{
    struct fx f;
    char m1[27], m2[27], m3[27], m4[27];
    const char *rcpt[] = {"E17"};

    REQUIRE(fx_start(&f, 3));
    lrec_employee(&f.rec, "E17", "Jana Kühn", "Depot Nord", "HH-LS 17", "DRV00017", T0);
    CHECK_EQ(feed(&f, LEDGER_T_EMPLOYEES, 0, "E17"), LEDGER_APPLIED);
    CHECK_STREQ(cmd(&f, "GET %s", "lst:lg:emp:tid:DRV00017", NULL), "E17");
    CHECK_EQ(num(&f, "SISMEMBER %s %s", "lst:lg:emp:dep:Depot Nord", "E17"), 1);
    CHECK_EQ(num(&f, "SISMEMBER %s %s", "lst:lg:emp:active", "E17"), 1);
    CHECK_EQ(num(&f, "SISMEMBER %s %s", "lst:lg:emp:tag:driver", "E17"), 1);

    lrec_mid(m1, T0 + 1000, 1);
    lrec_mid(m2, T0 + 2000, 2);
    lrec_message(&f.rec, m1, "disp1", "Leitstelle", "tour", rcpt, 1, T0 + 1000);
    feed(&f, LEDGER_T_MESSAGE, 0, m1);
    /* the reply comes before the second message's record is applied: linked to m1
     * first */
    lrec_text_in(&f.rec, "DRV00017", "00000000000000c1", "Unfall auf der A7, Schaden am Heck",
                 T0 + 60000);
    CHECK_EQ(feed(&f, LEDGER_T_INBOUND, 0, "DRV00017"), LEDGER_APPLIED);
    const char *in = "DRV00017:00000000000000c1";
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", in, "reply_to"), m1);
    lrec_message(&f.rec, m2, "disp1", "Leitstelle", "tour", rcpt, 1, T0 + 2000);
    feed(&f, LEDGER_T_MESSAGE, 1, m2);
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", in, "reply_to"), m2); /* the latest before it */
    CHECK_EQ(num(&f, "ZCARD lst:lg:rep:%s", m1, NULL), 0);
    CHECK_EQ(num(&f, "ZCARD lst:lg:rep:%s", m2, NULL), 1);
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", in, "cat"), "damage");
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", in, "eid"), "E17");
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:emp:E17", NULL), 3);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:dep:Depot Nord", NULL), 3);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:xc:damage:dep:Depot Nord", NULL), 1);
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:xc:damage:emp:E17", NULL), 0); /* no such copies */
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:dir:in", NULL), 1);
    CHECK_EQ(num(&f, "ZSCORE lst:lg:xc:damage:dir:in %s", in, NULL), T0 + 60000);
    /* the same callback again (Gateway retry) changes nothing */
    lrec_text_in(&f.rec, "DRV00017", "00000000000000c1", "Unfall auf der A7, Schaden am Heck",
                 T0 + 61000);
    feed(&f, LEDGER_T_INBOUND, 0, "DRV00017");
    CHECK_EQ(num(&f, "ZSCORE lst:lg:x:all %s", in, NULL), T0 + 60000);

    /* an unknown sender: inbox, waits for the directory; then department rule
     * applies */
    lrec_text_in(&f.rec, "DRV00099", "00000000000000c2", "Hallo, Reifen platt", T0 + 70000);
    feed(&f, LEDGER_T_INBOUND, 1, "DRV00099");
    const char *in2 = "DRV00099:00000000000000c2";
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", in2, "cat"), "inbox");
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:tidp:DRV00099", NULL), 1);
    lrec_employee(&f.rec, "E99", "Ole Brandt", "Werkstatt", NULL, "DRV00099", T0);
    feed(&f, LEDGER_T_EMPLOYEES, 1, "E99");
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", in2, "cat"), "werkstatt");
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", in2, "eid"), "E99");
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:xc:inbox:all", NULL), 0);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:xc:werkstatt:all", NULL), 1);
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:tidp:DRV00099", NULL), 0);

    /* a message that skipped E17 keeps who and why, and her index leads erasure to it */
    lrec_mid(m3, T0 + 80000, 3);
    skipped_message(&f, m3, T0 + 80000);
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", m3, "skp"),
                "[[\"E17\",\"inactive\"],[\"X5\",\"unknown\"]]");
    CHECK_EQ(num(&f, "ZSCORE lst:lg:e:E17:skp %s", m3, NULL), T0 + 80000);
    CHECK_EQ(num(&f, "ZSCORE lst:lg:e:X5:skp %s", m3, NULL), T0 + 80000);
    CHECK_EQ(num(&f, "HLEN lst:lg:r:%s", m3, NULL), 1);
    CHECK_EQ(num(&f, "HEXISTS lst:lg:m:%s %s", m1, "skp"), 0); /* none skipped: absent */

    /* erasure: E17 disappears from every projection */
    CHECK_EQ(feed_raw(&f, LEDGER_T_EMPLOYEES, 0, "E17", NULL, 0), LEDGER_APPLIED);
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:emp:E17", NULL), 0);
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:x:emp:E17", NULL), 0);
    CHECK_EQ(num(&f, "EXISTS lst:lg:m:%s", in, NULL), 0);
    CHECK_EQ(num(&f, "HEXISTS lst:lg:r:%s %s", m1, "E17"), 0);
    CHECK_EQ(agg(&f, m1, "n"), 0); /* the field is gone */
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", m1, "sel_emps"), "[]");
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", m3, "skp"), "[[\"X5\",\"unknown\"]]");
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", m3, "sel_emps"), "[\"E99\",\"X5\"]");
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:e:E17:skp", NULL), 0);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:e:X5:skp", NULL), 1);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:dir:in", NULL), 1);
    CHECK_STREQ(cmd(&f, "GET %s", "lst:lg:emp:tid:DRV00017", NULL), "-");
    /* a later message from the erased sender is not recorded */
    lrec_text_in(&f.rec, "DRV00017", "00000000000000c9", "noch da?", T0 + 90000);
    feed(&f, LEDGER_T_INBOUND, 0, "DRV00017");
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:m:DRV00017:00000000000000c9", NULL), 0);
    struct lst_buf d;
    lst_buf_init(&d);
    ledger_dump(f.rc, &d, 1);
    CHECK(strstr(d.data, "E17") == NULL || strstr(d.data, "lst:lg:erased set: E17") != NULL);
    CHECK(strstr(d.data, "Kühn") == NULL);
    /* later records about E17 are dropped */
    lrec_outbound(&f.rec, m1, "E17", "DRV00017", T0);
    feed(&f, LEDGER_T_OUTBOUND, 0, "E17");
    CHECK_EQ(num(&f, "HEXISTS lst:lg:r:%s %s", m1, "E17"), 0);
    /* a message record naming her that comes after the tombstone ends as m3 did */
    lrec_mid(m4, T0 + 95000, 4);
    skipped_message(&f, m4, T0 + 95000);
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", m4, "skp"), "[[\"X5\",\"unknown\"]]");
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", m4, "sel_emps"), "[\"E99\",\"X5\"]");
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:e:E17:skp", NULL), 0);
    lst_buf_cleanup(&d);
    fx_stop(&f);
}

/* ---- department, vehicle and tag indexes follow the directory
 * ------------------------------------------------------- */

static void dims_employee(struct fx *f, int32_t p, const char *eid, const char *dep,
                          const char *tid, const char *const *tags, size_t ntags, int64_t at)
{
    lrec_employee_tags(&f->rec, eid, eid, dep, NULL, tid, tags, ntags, at);
    CHECK_EQ(feed(f, LEDGER_T_EMPLOYEES, p, eid), LEDGER_APPLIED);
}

/* A message to rcpt; sel_dep/sel_tag (NULL: none) are the selector's criteria. */
static void dims_message(struct fx *f, const char *mid, const char *const *rcpt, size_t n,
                         const char *sel_dep, const char *sel_tag, int64_t at)
{
    struct lst_message m = {0};
    text_message(&m, mid, at);
    for (size_t i = 0; i < n; i++)
        lst_strv_push(&m.audience.recipients, rcpt[i]);
    if (sel_dep != NULL)
        lst_strv_push(&m.audience.selector.departments, sel_dep);
    if (sel_tag != NULL)
        lst_strv_push(&m.audience.selector.tags, sel_tag);
    lst_message_encode(&m, &f->rec);
    lst_message_cleanup(&m);
    CHECK_EQ(feed(f, LEDGER_T_MESSAGE, 0, mid), LEDGER_APPLIED);
}

static bool in_index(struct fx *f, const char *key, const char *id)
{
    char k[128];
    snprintf(k, sizeof(k), "lst:lg:%s", key);
    return cmd(f, "ZSCORE %s %s", k, id)[0] != '\0';
}

static void test_directory_change_moves_history(void)
{
    struct fx f;
    char m1[27], m2[27], m3[27];
    const char *both[] = {"E1", "E2"}, *one[] = {"E1"};
    const char *t1[] = {"driver", "depot:Hannover-Lahe", "shift:early"};
    const char *t2[] = {"driver", "depot:Hannover-Lahe"};
    const char *t1b[] = {"driver", "depot:Celle", "shift:late"};
    const char *in = "DRV00001:00000000000000d1";

    REQUIRE(fx_start(&f, 3));
    dims_employee(&f, 0, "E1", "A", "DRV00001", t1, 3, T0);
    dims_employee(&f, 1, "E2", "A", "DRV00002", t2, 2, T0);
    lrec_mid(m1, T0 + 1000, 1);
    lrec_mid(m2, T0 + 2000, 2);
    lrec_mid(m3, T0 + 3000, 3);
    dims_message(&f, m1, both, 2, NULL, NULL, T0 + 1000);
    dims_message(&f, m2, one, 1, NULL, NULL, T0 + 2000);
    dims_message(&f, m3, one, 1, "A", "shift:early", T0 + 3000);
    lrec_text_in(&f.rec, "DRV00001", "00000000000000d1", "bin da", T0 + 4000);
    CHECK_EQ(feed(&f, LEDGER_T_INBOUND, 0, "DRV00001"), LEDGER_APPLIED);

    /* the tag indexes, as the department's: items to/from employees with the tag */
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:tag:depot:Hannover-Lahe", NULL), 4);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:xc:tour:tag:depot:Hannover-Lahe", NULL), 3);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:xc:inbox:tag:depot:Hannover-Lahe", NULL), 1);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:tag:shift:early", NULL), 4);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:dep:A", NULL), 4);

    /* E1 moves to department B, depot Celle, the late shift */
    dims_employee(&f, 0, "E1", "B", "DRV00001", t1b, 3, T0 + 10000);
    /* A keeps m1 (E2 is still in A) and m3 (its selector named A) */
    CHECK(in_index(&f, "x:dep:A", m1));
    CHECK(!in_index(&f, "x:dep:A", m2));
    CHECK(in_index(&f, "x:dep:A", m3));
    CHECK(!in_index(&f, "x:dep:A", in));
    CHECK(!in_index(&f, "xc:tour:dep:A", m2));
    CHECK(!in_index(&f, "xc:inbox:dep:A", in));
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:dep:B", NULL), 4);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:xc:tour:dep:B", NULL), 3);
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", in, "dep"), "B");
    /* Hannover-Lahe keeps m1 only (E2); shift:early keeps m3 only (the selector) */
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:tag:depot:Hannover-Lahe", NULL), 1);
    CHECK(in_index(&f, "x:tag:depot:Hannover-Lahe", m1));
    CHECK(in_index(&f, "xc:tour:tag:depot:Hannover-Lahe", m1));
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:xc:inbox:tag:depot:Hannover-Lahe", NULL), 0);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:tag:shift:early", NULL), 1);
    CHECK(in_index(&f, "x:tag:shift:early", m3));
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:tag:depot:Celle", NULL), 4);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:tag:shift:late", NULL), 4);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:tag:driver", NULL), 4);
    /* an older record of E1 changes nothing */
    dims_employee(&f, 0, "E1", "A", "DRV00001", t1, 3, T0 + 5000);
    CHECK(!in_index(&f, "x:dep:A", m2));

    /* erasing E2: nothing justifies m1 under A or Hannover-Lahe any more */
    CHECK_EQ(feed_raw(&f, LEDGER_T_EMPLOYEES, 1, "E2", NULL, 0), LEDGER_APPLIED);
    CHECK(!in_index(&f, "x:dep:A", m1));
    CHECK(in_index(&f, "x:dep:A", m3));
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:x:tag:depot:Hannover-Lahe", NULL), 0);
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:xc:tour:tag:depot:Hannover-Lahe", NULL), 0);
    CHECK(in_index(&f, "x:tag:driver", m1));
    fx_stop(&f);
}

/* ---- the messages sent to an employee: history plus pending sends
 * ------------------------------------------------------- */

static void reply_from(struct fx *f, unsigned k, int64_t at)
{
    char rid[17];
    snprintf(rid, sizeof(rid), "%016x", 0xd000u + k);
    lrec_text_in(&f->rec, "DRV00017", rid, "ok", at);
    CHECK_EQ(feed(f, LEDGER_T_INBOUND, 0, "DRV00017"), LEDGER_APPLIED);
}

/* e:<eid>:out holds only the sends whose message record has not listed the employee yet; the
 * rest are the outgoing items of x:emp:<eid>. Reply links find both, also past more incoming
 * items than one page of the history, and erasure removes both. */
static void test_sent_to_employee_history_and_pending(void)
{
    struct fx f;
    char m1[27], m2[27], m3[27];
    const char *rcpt[] = {"E17"};
    const char *pend = "lst:lg:e:E17:out";

    REQUIRE(fx_start(&f, 3));
    lrec_employee(&f.rec, "E17", "Jana Kühn", "Depot Nord", "HH-LS 17", "DRV00017", T0);
    CHECK_EQ(feed(&f, LEDGER_T_EMPLOYEES, 0, "E17"), LEDGER_APPLIED);
    lrec_mid(m1, T0 + 1000, 1);
    lrec_mid(m2, T0 + 2000, 2);
    lrec_mid(m3, T0 + 3000, 3);
    /* m1: its message record first, then its outbound: never pending */
    lrec_message(&f.rec, m1, "disp1", "Leitstelle", "tour", rcpt, 1, T0 + 1000);
    CHECK_EQ(feed(&f, LEDGER_T_MESSAGE, 0, m1), LEDGER_APPLIED);
    lrec_outbound(&f.rec, m1, "E17", "DRV00017", T0 + 1000);
    CHECK_EQ(feed(&f, LEDGER_T_OUTBOUND, 0, "E17"), LEDGER_APPLIED);
    CHECK_EQ(num(&f, "EXISTS %s", pend, NULL), 0);
    CHECK(in_index(&f, "x:emp:E17", m1));
    /* m2: outbound first: pending, and the latest candidate for replies */
    lrec_outbound(&f.rec, m2, "E17", "DRV00017", T0 + 2000);
    CHECK_EQ(feed(&f, LEDGER_T_OUTBOUND, 0, "E17"), LEDGER_APPLIED);
    CHECK_EQ(num(&f, "ZSCORE %s %s", pend, m2), T0 + 2000);
    for (unsigned k = 0; k < 20; k++)
        reply_from(&f, k, T0 + 10000 + k);
    CHECK_EQ(num(&f, "ZCARD lst:lg:rep:%s", m2, NULL), 20);
    /* m2's record: into the history, out of the pending sends, links unchanged */
    lrec_message(&f.rec, m2, "disp1", "Leitstelle", "tour", rcpt, 1, T0 + 2000);
    CHECK_EQ(feed(&f, LEDGER_T_MESSAGE, 0, m2), LEDGER_APPLIED);
    CHECK_EQ(num(&f, "EXISTS %s", pend, NULL), 0);
    CHECK(in_index(&f, "x:emp:E17", m2));
    CHECK_EQ(num(&f, "ZCARD lst:lg:rep:%s", m2, NULL), 20);
    CHECK_EQ(num(&f, "ZCARD lst:lg:rep:%s", m1, NULL), 0);
    /* a reply after 20 incoming items of the history still finds m2 */
    reply_from(&f, 20, T0 + 20000);
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", "DRV00017:000000000000d014", "reply_to"), m2);
    CHECK_EQ(num(&f, "ZCARD lst:lg:rep:%s", m2, NULL), 21);
    /* m3 pending (only sent): a later candidate takes over every reply after it */
    lrec_sent(&f.rec, m3, "E17", "00000000000000e3", NULL, false, T0 + 3100);
    CHECK_EQ(feed(&f, LEDGER_T_SENT, 0, "E17"), LEDGER_APPLIED);
    CHECK_EQ(num(&f, "ZCARD %s", pend, NULL), 1);
    CHECK_EQ(num(&f, "ZCARD lst:lg:rep:%s", m3, NULL), 21);
    CHECK_EQ(num(&f, "EXISTS lst:lg:rep:%s", m2, NULL), 0);
    /* erasure: the history's and the pending sends' states are gone */
    CHECK_EQ(feed_raw(&f, LEDGER_T_EMPLOYEES, 0, "E17", NULL, 0), LEDGER_APPLIED);
    CHECK_EQ(num(&f, "EXISTS %s", pend, NULL), 0);
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:x:emp:E17", NULL), 0);
    CHECK_EQ(num(&f, "EXISTS lst:lg:r:%s", m1, NULL), 0);
    CHECK_EQ(num(&f, "EXISTS lst:lg:r:%s", m2, NULL), 0);
    CHECK_EQ(num(&f, "EXISTS lst:lg:r:%s", m3, NULL), 0);
    CHECK_STREQ(cmd(&f, "HGET %s %s", "lst:lg:t:000e3", "00000000000000e3"), "-");
    fx_stop(&f);
}

/* ---- the one employee of an outgoing item: eid
 * ------------------------------------------------------- */

/* The records of a send to rcpt (n of them): the message record, then each recipient's
 * outbound and accepted sent record, or those first (sends_first). */
static void send_in_order(struct fx *f, const char *mid, const char *const *rcpt, size_t n,
                          bool sends_first, unsigned tm0)
{
    for (int pass = 0; pass < 2; pass++) {
        if ((pass == 0) != sends_first) {
            lrec_message(&f->rec, mid, "disp1", "Leitstelle", "tour", rcpt, n, T0 + 1000);
            CHECK_EQ(feed(f, LEDGER_T_MESSAGE, 0, mid), LEDGER_APPLIED);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            char tm[17];
            snprintf(tm, sizeof(tm), "%016x", tm0 + (unsigned)i);
            lrec_outbound(&f->rec, mid, rcpt[i], "DRV00017", T0 + 1000);
            CHECK_EQ(feed(f, LEDGER_T_OUTBOUND, 0, rcpt[i]), LEDGER_APPLIED);
            lrec_sent(&f->rec, mid, rcpt[i], tm, NULL, false, T0 + 1100);
            CHECK_EQ(feed(f, LEDGER_T_SENT, 0, rcpt[i]), LEDGER_APPLIED);
        }
    }
}

/* An outgoing message whose audience resolved to exactly one employee carries her ID as eid
 * (the view's employee_id and employee_name), like an incoming item its sender, whether the
 * message record comes before or after the sends' records; the record writing it bumps the
 * item's version; a message to two carries none; her erasure removes it. */
static void test_one_recipient_named(void)
{
    struct fx f;
    char m1[27], m2[27], m3[27];
    const char *one[] = {"E17"}, *two[] = {"E17", "E18"}, *twice[] = {"E18", "E18"};
    struct lst_buf a, b;

    REQUIRE(fx_start(&f, 3));
    lst_buf_init(&a);
    lst_buf_init(&b);
    lrec_mid(m1, T0 + 1000, 1);
    send_in_order(&f, m1, one, 1, false, 0xe100);
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", m1, "eid"), "E17");
    ledger_dump(f.rc, &a, 1);
    fx_flushall(&f);
    send_in_order(&f, m1, one, 1, true, 0xe100);
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", m1, "eid"), "E17");
    ledger_dump(f.rc, &b, 1);
    CHECK_STREQ(a.data, b.data); /* the same projections in either order */
    /* the record named her in the same HSET that stamped a new version */
    fx_flushall(&f);
    lrec_sent(&f.rec, m1, "E17", "000000000000e100", NULL, false, T0 + 1100);
    CHECK_EQ(feed(&f, LEDGER_T_SENT, 0, "E17"), LEDGER_APPLIED);
    long long v = num(&f, "HGET lst:lg:m:%s %s", m1, "v");
    CHECK_STREQ(cmd(&f, "EXISTS lst:lg:m:%s", m1, NULL), "1");
    CHECK_STREQ(cmd(&f, "HEXISTS lst:lg:m:%s %s", m1, "eid"), "0");
    lrec_message(&f.rec, m1, "disp1", "Leitstelle", "tour", one, 1, T0 + 1000);
    CHECK_EQ(feed(&f, LEDGER_T_MESSAGE, 0, m1), LEDGER_APPLIED);
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", m1, "eid"), "E17");
    CHECK(num(&f, "HGET lst:lg:m:%s %s", m1, "v") > v);

    /* two recipients: nobody in particular, in either order; one listed twice is one */
    lrec_mid(m2, T0 + 2000, 2);
    send_in_order(&f, m2, two, 2, false, 0xe200);
    CHECK_STREQ(cmd(&f, "HEXISTS lst:lg:m:%s %s", m2, "eid"), "0");
    lrec_mid(m3, T0 + 3000, 3);
    send_in_order(&f, m3, two, 2, true, 0xe300);
    CHECK_STREQ(cmd(&f, "HEXISTS lst:lg:m:%s %s", m3, "eid"), "0");
    fx_flushall(&f);
    lrec_message(&f.rec, m3, "disp1", "Leitstelle", "tour", twice, 2, T0 + 3000);
    CHECK_EQ(feed(&f, LEDGER_T_MESSAGE, 0, m3), LEDGER_APPLIED);
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", m3, "eid"), "E18");

    /* erasure: the item to her alone no longer names her (its content goes too) */
    send_in_order(&f, m1, one, 1, false, 0xe100);
    send_in_order(&f, m2, two, 2, false, 0xe200);
    CHECK_EQ(feed_raw(&f, LEDGER_T_EMPLOYEES, 0, "E17", NULL, 0), LEDGER_APPLIED);
    CHECK_STREQ(cmd(&f, "HEXISTS lst:lg:m:%s %s", m1, "eid"), "0");
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", m1, "cgone"), "1");
    CHECK_STREQ(cmd(&f, "HEXISTS lst:lg:m:%s %s", m2, "eid"), "0");
    CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", m3, "eid"), "E18"); /* someone else's stays */
    lst_buf_cleanup(&a);
    lst_buf_cleanup(&b);
    fx_stop(&f);
}

/* ---- watermarks and dead letters
 * ------------------------------------------------------- */

static void test_watermark_gate_and_dlq(void)
{
    struct fx f;
    char mid[27];
    int64_t off = 0;

    REQUIRE(fx_start(&f, 3));
    lrec_mid(mid, T0, 3);
    f.next[LEDGER_T_OUTBOUND][2] = 5;
    lrec_outbound(&f.rec, mid, "E5", "DRV00005", T0);
    CHECK_EQ(feed(&f, LEDGER_T_OUTBOUND, 2, "E5"), LEDGER_APPLIED);
    CHECK_STREQ(cmd(&f, "HGET lst:lg:wm %s", "lst.outbound:2", NULL), "5");
    /* the same offset again: skipped, nothing counted twice */
    f.next[LEDGER_T_OUTBOUND][2] = 5;
    CHECK_EQ(feed(&f, LEDGER_T_OUTBOUND, 2, "E5"), LEDGER_APPLIED);
    CHECK_EQ(agg(&f, mid, "n"), 1);
    /* Redis "loses" progress (a restart from an older snapshot): the next record
     * is refused */
    freeReplyObject(redisCommand(f.rc, "HSET lst:lg:wm lst.outbound:2 3"));
    f.next[LEDGER_T_OUTBOUND][2] = 6;
    CHECK_EQ(feed(&f, LEDGER_T_OUTBOUND, 2, "E5"), LEDGER_GAP);
    CHECK_STREQ(cmd(&f, "HGET lst:lg:wm %s", "lst.outbound:2", NULL), "3");
    CHECK_EQ(ledger_core_start(&f.core, LEDGER_T_OUTBOUND, 2, &off), LST_OK);
    CHECK_EQ(off, 4);
    /* an empty Redis: from the beginning */
    CHECK_EQ(ledger_core_start(&f.core, LEDGER_T_SENT, 0, &off), LST_OK);
    CHECK_EQ(off, LST_KAFKA_OFFSET_BEGINNING);

    /* undecodable records: dead-lettered (here: logged, no producer), watermark
     * advanced */
    CHECK_EQ(feed_raw(&f, LEDGER_T_SENT, 0, "E5", "{not json", 9), LEDGER_APPLIED);
    CHECK_EQ(feed_raw(&f, LEDGER_T_MESSAGE, 0, "x", "{\"v\":2}", 7), LEDGER_APPLIED);
    CHECK_EQ(feed_raw(&f, LEDGER_T_OUTBOUND, 0, "x", NULL, 0), LEDGER_APPLIED);
    CHECK_EQ(feed_raw(&f, LEDGER_T_EMPLOYEES, 0, "bad key!", NULL, 0), LEDGER_APPLIED);
    CHECK_STREQ(cmd(&f, "HGET lst:lg:wm %s", "lst.sent:0", NULL), "0");
    CHECK_STREQ(cmd(&f, "HGET lst:lg:wm %s", "lst.employees:0", NULL), "0");
    fx_stop(&f);
}

/* A recipient state that is not the ledger's JSON (written by hand, or by a bug) makes the
 * record that names it fail, through the script and through C alike: its watermark stays, and
 * when it is read again from there it is dead-lettered and passed. C writes nothing of it; the
 * script keeps what it wrote before the error (the message hash, the first recipient). */
static void test_broken_state_dead_letters(void)
{
    struct fx f;
    char mid[27], wm[32];
    const char *to[] = {"E1", "E2"};
    int64_t off = -2;

    REQUIRE(fx_start(&f, 3));
    for (int32_t p = 0; p < 2; p++) { /* p 0 through the script, p 1 through C */
        fx_flushall(&f);
        f.cfg.native = p == 1;
        snprintf(wm, sizeof(wm), "lst.message:%d", (int)p);
        lrec_mid(mid, T0, 9);
        freeReplyObject(redisCommand(f.rc, "HSET lst:lg:r:%s E2 {not-json", mid));
        lrec_message(&f.rec, mid, "disp1", "Leitstelle", "tour", to, 2, T0);
        CHECK_EQ(feed(&f, LEDGER_T_MESSAGE, p, mid), LEDGER_RETRY);
        CHECK_STREQ(cmd(&f, "HGET lst:lg:wm %s", wm, NULL), "");
        if (p == 1) {
            CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", mid, "msg"), "");
            CHECK_STREQ(cmd(&f, "HGET lst:lg:r:%s %s", mid, "E1"), "");
        }
        /* read again from the watermark (what the consumer does after a RETRY) */
        CHECK_EQ(ledger_core_start(&f.core, LEDGER_T_MESSAGE, p, &off), LST_OK);
        CHECK_EQ(off, LST_KAFKA_OFFSET_BEGINNING);
        f.next[LEDGER_T_MESSAGE][p] = 0;
        CHECK_EQ(feed(&f, LEDGER_T_MESSAGE, p, mid), LEDGER_APPLIED);
        CHECK_STREQ(cmd(&f, "HGET lst:lg:wm %s", wm, NULL), "0");
        CHECK_STREQ(cmd(&f, "HGET lst:lg:r:%s %s", mid, "E2"), "{not-json");
        /* the next record of the partition is applied as usual */
        lrec_mid(mid, T0 + 1000, 10);
        lrec_message(&f.rec, mid, "disp1", "Leitstelle", "tour", to, 1, T0 + 1000);
        CHECK_EQ(feed(&f, LEDGER_T_MESSAGE, p, mid), LEDGER_APPLIED);
        CHECK(state_is(&f, mid, "E1", "queued"));
        CHECK_STREQ(cmd(&f, "HGET lst:lg:wm %s", wm, NULL), "1");
    }
    fx_stop(&f);
}

/* A Redis crash that loses everything: the next batch is refused (gap), and the
 * partition resumes at the beginning, so Kafka refills it. */
static void test_redis_loss_detected(void)
{
    struct fx f;
    char mid[27];
    int64_t off = 0;

    REQUIRE(fx_start(&f, 3));
    struct lst_metrics *m = lst_metrics_create();
    REQUIRE(m != NULL);
    f.core.m_gaps = lst_metrics_counter(m, "gaps", "gaps", NULL);
    lrec_mid(mid, T0, 4);
    for (int i = 0; i < 3; i++) {
        lrec_outbound(&f.rec, mid, "E6", "DRV00006", T0 + i);
        CHECK_EQ(feed(&f, LEDGER_T_OUTBOUND, 0, "E6"), LEDGER_APPLIED);
    }
    REQUIRE(redis_fixture_restart(&f.rf));
    redisFree(f.rc);
    f.rc = redisConnect("127.0.0.1", f.rf.port);
    REQUIRE(f.rc != NULL && f.rc->err == 0);
    CHECK_EQ(feed(&f, LEDGER_T_OUTBOUND, 0, "E6"), LEDGER_GAP);
    CHECK_EQ(lst_counter_value(f.core.m_gaps), 1u); /* counted as a loss */
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:wm", NULL), 0);
    CHECK_EQ(ledger_core_start(&f.core, LEDGER_T_OUTBOUND, 0, &off), LST_OK);
    CHECK_EQ(off, LST_KAFKA_OFFSET_BEGINNING);
    fx_stop(&f);
    lst_metrics_destroy(m);
}

/* ---- order independence of a whole scenario
 * ------------------------------------------- */

struct ev {
    enum ledger_topic t;
    int32_t p;
    char key[32];
    char *value; /* NULL: tombstone */
    size_t len;
};

static void push_ev(struct ev *evs, int *n, enum ledger_topic t, int32_t p, const char *key,
                    const struct lst_buf *v)
{
    struct ev *e = &evs[(*n)++];
    e->t = t;
    e->p = p;
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->value = v ? lst_strdup(v->data) : NULL;
    e->len = v ? v->len : 0;
}

static int build_scenario(struct ev *evs)
{
    struct lst_buf b;
    int n = 0;
    const char *eids[] = {"E1", "E2", "E3"};
    const char *tids[] = {"DRV00001", "DRV00002", "DRV00003"};
    const char *deps[] = {"Depot Nord", "Depot Nord", "Depot Süd"};
    lst_buf_init(&b);
    for (int i = 0; i < 3; i++) {
        lrec_employee(&b, eids[i], "Fahrer", deps[i], "HH-1", tids[i], T0);
        push_ev(evs, &n, LEDGER_T_EMPLOYEES, i % 2, eids[i], &b);
    }
    for (unsigned k = 0; k < 4; k++) {
        char mid[27], tm[17], rid[17];
        int64_t at = T0 + k * 60000;
        lrec_mid(mid, at, k);
        lrec_message(&b, mid, k % 2 ? "disp2" : "disp1", "Leitstelle", k % 2 ? "tour" : "info",
                     eids, 3, at);
        push_ev(evs, &n, LEDGER_T_MESSAGE, (int32_t)k % 2, mid, &b);
        for (int i = 0; i < 3; i++) {
            snprintf(tm, sizeof(tm), "%016x", 0x1000u + k * 16 + (unsigned)i);
            lrec_outbound(&b, mid, eids[i], tids[i], at);
            push_ev(evs, &n, LEDGER_T_OUTBOUND, i, eids[i], &b);
            if (i == 2 && k == 3) {
                lrec_sent(&b, mid, eids[i], NULL, "http_404", true, at + 5);
                push_ev(evs, &n, LEDGER_T_SENT, i, eids[i], &b);
                continue;
            }
            lrec_sent(&b, mid, eids[i], tm, NULL, false, at + 5);
            push_ev(evs, &n, LEDGER_T_SENT, i, eids[i], &b);
            for (int st = 1; st <= (i == 0 ? 3 : i == 1 ? 1 : 2); st++) {
                snprintf(rid, sizeof(rid), "%016x",
                         0x5000u + k * 64 + (unsigned)i * 8 + (unsigned)st);
                lrec_receipt(&b, tids[i], tm, st, at + 100 * st, rid);
                push_ev(evs, &n, LEDGER_T_INBOUND, i, tids[i], &b);
            }
        }
        snprintf(rid, sizeof(rid), "%016x", 0x9000u + k);
        lrec_text_in(&b, "DRV00002", rid, k == 2 ? "Schaden am Tor" : "ok", at + 30000);
        push_ev(evs, &n, LEDGER_T_INBOUND, 1, "DRV00002", &b);
    }
    /* a message to E1 alone (named) and one to E3 alone (named until her erasure) */
    for (unsigned k = 4; k < 6; k++) {
        char mid[27], tm[17];
        int64_t at = T0 + k * 60000;
        int i = k == 4 ? 0 : 2;
        lrec_mid(mid, at, k);
        lrec_message(&b, mid, "disp1", "Leitstelle", "tour", &eids[i], 1, at);
        push_ev(evs, &n, LEDGER_T_MESSAGE, (int32_t)k % 2, mid, &b);
        lrec_outbound(&b, mid, eids[i], tids[i], at);
        push_ev(evs, &n, LEDGER_T_OUTBOUND, i, eids[i], &b);
        snprintf(tm, sizeof(tm), "%016x", 0x1000u + k * 16);
        lrec_sent(&b, mid, eids[i], tm, NULL, false, at + 5);
        push_ev(evs, &n, LEDGER_T_SENT, i, eids[i], &b);
    }
    /* a sender who is never in the directory, and one erased at the end */
    lrec_text_in(&b, "DRV00077", "000000000000abcd", "wer bin ich", T0 + 5000);
    push_ev(evs, &n, LEDGER_T_INBOUND, 4, "DRV00077", &b);
    /* the erased one's own message and annotations of it (and of one of hers that never
     * arrives), before or after the tombstone: none may be left, whatever the order; the
     * others' annotations stay */
    const char *hers = "DRV00003:000000000000e3e3", *never = "DRV00003:000000000000e3e4";
    lrec_text_in(&b, "DRV00003", "000000000000e3e3", "Bin krank", T0 + 200000);
    push_ev(evs, &n, LEDGER_T_INBOUND, 2, "DRV00003", &b);
    CHECK_EQ(lrec_annotation(&b, hers, LST_ANNOTATION_HANDLED, NULL, "anna", T0 + 210000), LST_OK);
    push_ev(evs, &n, LEDGER_T_ANNOTATIONS, 0, hers, &b);
    CHECK_EQ(lrec_annotation(&b, hers, LST_ANNOTATION_CATEGORY, "privat", "bob", T0 + 211000),
             LST_OK);
    push_ev(evs, &n, LEDGER_T_ANNOTATIONS, 0, hers, &b);
    CHECK_EQ(lrec_annotation(&b, never, LST_ANNOTATION_HANDLED, NULL, "anna", T0 + 211500), LST_OK);
    push_ev(evs, &n, LEDGER_T_ANNOTATIONS, 0, never, &b);
    CHECK_EQ(lrec_annotation(&b, hers, LST_ANNOTATION_UNHANDLED, NULL, "carl", T0 + 212000),
             LST_OK);
    push_ev(evs, &n, LEDGER_T_ANNOTATIONS, 1, hers, &b);
    CHECK_EQ(lrec_annotation(&b, "DRV00002:0000000000009002", LST_ANNOTATION_CATEGORY, "werkstatt",
                             "bob", T0 + 213000),
             LST_OK);
    push_ev(evs, &n, LEDGER_T_ANNOTATIONS, 1, "DRV00002:0000000000009002", &b);
    CHECK_EQ(lrec_annotation(&b, "DRV00002:0000000000009002", LST_ANNOTATION_HANDLED, NULL, "anna",
                             T0 + 214000),
             LST_OK);
    push_ev(evs, &n, LEDGER_T_ANNOTATIONS, 1, "DRV00002:0000000000009002", &b);
    push_ev(evs, &n, LEDGER_T_EMPLOYEES, 0, "E3", NULL); /* erasure, anywhere in between */
    lst_buf_cleanup(&b);
    return n;
}

/* Feeds evs in a random interleaving that keeps each partition's order. */
static void feed_interleaved(struct fx *f, struct ev *evs, int n, unsigned seed)
{
    int pos[LEDGER_T__COUNT][8];
    bool used[512] = {0};
    int left = n;
    memset(pos, 0, sizeof(pos));
    while (left > 0) {
        seed = seed * 1103515245u + 12345u;
        int pick = (int)((seed >> 8) % (unsigned)n);
        /* the first unused event of the picked event's partition */
        for (int i = 0; i < n; i++) {
            if (!used[i] && evs[i].t == evs[pick].t && evs[i].p == evs[pick].p) {
                int o = feed_raw(f, evs[i].t, evs[i].p, evs[i].key, evs[i].value, evs[i].len);
                if (o != LEDGER_APPLIED)
                    fprintf(stderr, "event %d (topic %d [%d]) outcome %d\n", i, (int)evs[i].t,
                            (int)evs[i].p, o);
                CHECK_EQ(o, LEDGER_APPLIED);
                used[i] = true;
                left--;
                break;
            }
        }
    }
}

static void test_interleavings_give_identical_projections(void)
{
    struct fx f;
    struct ev evs[512];
    struct lst_buf first, now;
    int n;

    REQUIRE(fx_start(&f, 2));
    lst_buf_init(&first);
    lst_buf_init(&now);
    n = build_scenario(evs);
    REQUIRE(n < 512);
    for (unsigned run = 0; run < 12; run++) {
        fx_flushall(&f);
        feed_interleaved(&f, evs, n, run * 7919u + 1);
        lst_buf_reset(&now);
        long keys = ledger_dump(f.rc, &now, 1);
        if (run == 0) {
            lst_buf_puts(&first, now.data);
            CHECK(keys > 40);
            /* the erased one's items and their annotations are gone; the others' stay; the
             * category named on her item stays in cats (a name, in every order) */
            CHECK(strstr(now.data, "DRV00003:") == NULL);
            CHECK(strstr(now.data, "annt:DRV00003") == NULL);
            CHECK(strstr(now.data, "lst:lg:ann:DRV00002:0000000000009002 hash") != NULL);
            CHECK(strstr(now.data, "lst:lg:annh:DRV00002:0000000000009002 zset: anna=") != NULL);
            CHECK(strstr(now.data, "lst:lg:annt:DRV00002 set: DRV00002:0000000000009002") != NULL);
            CHECK(strstr(now.data, "privat\x1f") != NULL);
            /* the message to E1 alone names her; to E3 alone (erased) and to all three: none */
            char mid[27];
            for (unsigned k = 0; k < 6; k++) {
                lrec_mid(mid, T0 + k * 60000, k);
                CHECK_STREQ(cmd(&f, "HGET lst:lg:m:%s %s", mid, "eid"), k == 4 ? "E1" : "");
            }
        } else if (strcmp(first.data, now.data) != 0) {
            FILE *a = fopen("/tmp/ledger-dump-first.txt", "w");
            FILE *b = fopen("/tmp/ledger-dump-now.txt", "w");
            if (a && b) {
                fputs(first.data, a);
                fputs(now.data, b);
            }
            if (a)
                fclose(a);
            if (b)
                fclose(b);
            fprintf(stderr,
                    "run %u differs: diff /tmp/ledger-dump-first.txt "
                    "/tmp/ledger-dump-now.txt\n",
                    run);
            CHECK(0);
            break;
        }
    }
    CHECK(f.vg.checked > 1000); /* the version guard ran after every event */
    for (int i = 0; i < n; i++)
        free(evs[i].value);
    lst_buf_cleanup(&first);
    lst_buf_cleanup(&now);
    fx_stop(&f);
}

/* Adds evs[from .. to) to the core and applies them with one flush: many events per script
 * call (the service's normal case), where the per-event feed above applies one. */
static void feed_batch(struct fx *f, struct ev *evs, const int *order, int from, int to)
{
    const struct ledger_done *done;
    size_t n = 0;
    for (int k = from; k < to; k++) {
        const struct ev *e = &evs[order[k]];
        struct ledger_rec r = {.topic = e->t,
                               .partition = e->p,
                               .offset = f->next[e->t][e->p]++,
                               .key = e->key,
                               .keylen = strlen(e->key),
                               .value = e->value,
                               .len = e->len};
        CHECK(ledger_core_add(&f->core, &r) == LST_OK);
    }
    CHECK(ledger_core_flush(&f->core, &done, &n) == LST_OK);
    CHECK_EQ((long long)n, (long long)(to - from));
    for (size_t i = 0; i < n; i++)
        CHECK_EQ((int)done[i].outcome, LEDGER_APPLIED);
}

/* One interleaving (each partition's order kept) as indexes into evs. */
static void interleave(const struct ev *evs, int n, unsigned seed, int *order)
{
    bool used[512] = {0};
    int done = 0;
    while (done < n) {
        seed = seed * 1103515245u + 12345u;
        int pick = (int)((seed >> 8) % (unsigned)n);
        for (int i = 0; i < n; i++) {
            if (!used[i] && evs[i].t == evs[pick].t && evs[i].p == evs[pick].p) {
                order[done++] = i;
                used[i] = true;
                break;
            }
        }
    }
}

/* The script defers work to the end of a call (the read-receipt rule runs once per employee
 * and call): applying the same records in batches of any size, many events per script call,
 * must give exactly the projections of applying them one by one. */
static void test_batches_equal_single_events(void)
{
    struct fx f;
    struct ev evs[512];
    int order[512];
    struct lst_buf one, batched;

    REQUIRE(fx_start(&f, 2));
    lst_buf_init(&one);
    lst_buf_init(&batched);
    int n = build_scenario(evs);
    REQUIRE(n < 512);
    for (unsigned run = 0; run < 6; run++) {
        interleave(evs, n, run * 104729u + 3, order);
        fx_flushall(&f);
        for (int k = 0; k < n; k++)
            feed_batch(&f, evs, order, k, k + 1);
        lst_buf_reset(&one);
        ledger_dump(f.rc, &one, 1);
        fx_flushall(&f);
        unsigned size = 5 + run * 11; /* 5 .. 60 events per flush, 8 per script call */
        for (int k = 0; k < n; k += (int)size)
            feed_batch(&f, evs, order, k, k + (int)size < n ? k + (int)size : n);
        lst_buf_reset(&batched);
        ledger_dump(f.rc, &batched, 1);
        if (strcmp(one.data, batched.data) != 0) {
            fprintf(stderr, "run %u: batches of %u differ from single events\n", run, size);
            CHECK(0);
            break;
        }
    }
    for (int i = 0; i < n; i++)
        free(evs[i].value);
    lst_buf_cleanup(&one);
    lst_buf_cleanup(&batched);
    fx_stop(&f);
}

/* An employee the batch's receipts put under the read-receipt rule and who is erased later in
 * the same script call stays out of rroff: the deferred evaluation finds the erased one's
 * delivered list gone. */
static void test_erasure_after_receipts_in_one_call(void)
{
    struct fx f;
    struct ev evs[64];
    int order[64];
    struct lst_buf b;
    const char *rcpt[] = {"EA", "EB"};
    int n = 0;

    REQUIRE(fx_start(&f, 3));
    lst_buf_init(&b);
    for (unsigned k = 0; k < 3; k++) {
        char mid[27], tma[17], tmb[17], rid[17];
        int64_t at = T0 + k * 1000;
        lrec_mid(mid, at, k);
        lrec_message(&b, mid, "disp1", "Leitstelle", "tour", rcpt, 2, at);
        push_ev(evs, &n, LEDGER_T_MESSAGE, 0, mid, &b);
        snprintf(tma, sizeof(tma), "%016x", 0xa00u + k);
        snprintf(tmb, sizeof(tmb), "%016x", 0xb00u + k);
        lrec_sent(&b, mid, "EA", tma, NULL, false, at + 10);
        push_ev(evs, &n, LEDGER_T_SENT, 0, "EA", &b);
        lrec_sent(&b, mid, "EB", tmb, NULL, false, at + 10);
        push_ev(evs, &n, LEDGER_T_SENT, 0, "EB", &b);
        snprintf(rid, sizeof(rid), "%016x", 0x100u + k);
        lrec_receipt(&b, "DRV0000A", tma, 1, at + 100, rid);
        push_ev(evs, &n, LEDGER_T_INBOUND, 0, "DRV0000A", &b);
        snprintf(rid, sizeof(rid), "%016x", 0x300u + k);
        lrec_receipt(&b, "DRV0000B", tmb, 2, at + 150, rid);
        push_ev(evs, &n, LEDGER_T_INBOUND, 0, "DRV0000B", &b);
    }
    int before_erasure = n;
    push_ev(evs, &n, LEDGER_T_EMPLOYEES, 0, "EA", NULL);
    for (int i = 0; i < n; i++)
        order[i] = i;
    /* the deliveries alone put EA in rroff (checked one call earlier) */
    feed_batch(&f, evs, order, 0, before_erasure);
    CHECK_EQ(num(&f, "SISMEMBER lst:lg:rroff %s", "EA", NULL), 1);
    fx_flushall(&f);
    /* all of it, the erasure included, in one script call */
    f.cfg.script_events = 64;
    ledger_core_cleanup(&f.core);
    REQUIRE(ledger_core_init(&f.core, &f.cfg, f.redis, NULL, NULL) == LST_OK);
    feed_batch(&f, evs, order, 0, n);
    CHECK_EQ(num(&f, "SISMEMBER lst:lg:rroff %s", "EA", NULL), 0);
    CHECK_EQ(num(&f, "SISMEMBER lst:lg:erased %s", "EA", NULL), 1);
    for (int i = 0; i < n; i++)
        free(evs[i].value);
    lst_buf_cleanup(&b);
    fx_stop(&f);
}

/* --rebuild's drop: every projection key goes, however SCAN splits them (a reply may hold
 * more keys than its COUNT), other services' keys stay. */
static void test_rebuild_drops_every_key(void)
{
    struct fx f;
    int64_t deleted = 0;

    REQUIRE(fx_start(&f, 3));
    for (int k = 0; k < 20000; k += 1000) {
        redisReply *r = redisCommand(f.rc, "EVAL %s 0 %d",
                                     "for i = 0, 999 do redis.call('SET', 'lst:lg:k:' .. "
                                     "(ARGV[1] + i), 1) end",
                                     k);
        CHECK(r != NULL && r->type != REDIS_REPLY_ERROR);
        freeReplyObject(r);
    }
    freeReplyObject(redisCommand(f.rc, "SET lst:gwout:keep 1"));
    CHECK_EQ(ledger_drop_projections(f.redis, &deleted), LST_OK);
    CHECK_EQ(deleted, 20000);
    CHECK_EQ(num(&f, "DBSIZE", NULL, NULL), 1);
    fx_stop(&f);
}

static void test_rules_parse(void)
{
    struct ledger_rules r = {0};
    struct lst_buf why, out;
    lst_buf_init(&why);
    lst_buf_init(&out);
    CHECK_EQ(
        ledger_rules_parse(&r, "# c\ndamage=keyword:Unfall, schaden;w=department:Werk statt", &why),
        LST_OK);
    CHECK_EQ(r.n, 2);
    CHECK_EQ(ledger_rules_candidates(&r, "Ein UNFALL", NULL, &out), LST_OK);
    CHECK_STREQ(out.data, "k\tdamage\n");
    CHECK_EQ(ledger_rules_candidates(&r, "nichts", "kein", &out), LST_OK);
    CHECK_STREQ(out.data, "d\tWerk statt\tw\n");
    CHECK_EQ(ledger_rules_parse(&r, "Bad=keyword:x", &why), LST_ERR_INVALID);
    CHECK_EQ(ledger_rules_parse(&r, "a=colour:x", &why), LST_ERR_INVALID);
    CHECK_EQ(ledger_rules_parse(&r, "a=keyword:", &why), LST_ERR_INVALID);
    ledger_rules_cleanup(&r);
    lst_buf_cleanup(&why);
    lst_buf_cleanup(&out);
}

/* ---- receipts merged in C against the script ------------------------------------------- */

/* A receipt-heavy day: 14 messages to 3-6 of six drivers, every send accepted (one unknown to
 * Threema), receipts delivered/read/acknowledged/declined with duplicates and a later time
 * again, a receipt whose send outcome never comes (held), drivers who never send read
 * receipts (the read-receipt rule), replies the sends compete for as reply links, and an
 * erasure at the end. */
static int build_receipt_day(struct ev *evs)
{
    static const char *const eids[] = {"R1", "R2", "R3", "R4", "R5", "R6"};
    static const char *const tids[] = {"DRVR0001", "DRVR0002", "DRVR0003",
                                       "DRVR0004", "DRVR0005", "DRVR0006"};
    struct lst_buf b;
    int n = 0;
    unsigned rid = 0x7000;
    lst_buf_init(&b);
    for (int i = 0; i < 6; i++) {
        lrec_employee(&b, eids[i], "Fahrer", i < 3 ? "Depot Nord" : "Depot Süd", "HH-2", tids[i],
                      T0);
        push_ev(evs, &n, LEDGER_T_EMPLOYEES, i % 2, eids[i], &b);
    }
    for (unsigned k = 0; k < 14; k++) {
        char mid[27], tm[17], r[17];
        int64_t at = T0 + k * 30000;
        int first = (int)(k % 3), count = 3 + (int)(k % 4);
        const char *to[6];
        for (int j = 0; j < count; j++)
            to[j] = eids[(first + j) % 6];
        lrec_mid(mid, at, k);
        lrec_message(&b, mid, k % 2 ? "disp2" : "disp1", "Leitstelle", k % 3 ? "tour" : "info", to,
                     (size_t)count, at);
        push_ev(evs, &n, LEDGER_T_MESSAGE, (int32_t)k % 2, mid, &b);
        for (int j = 0; j < count; j++) {
            int i = (first + j) % 6;
            snprintf(tm, sizeof(tm), "%016x", 0x20000u + k * 16 + (unsigned)i);
            bool unknown = k == 5 && i == 3;
            lrec_sent(&b, mid, eids[i], unknown ? NULL : tm, unknown ? "http_404" : NULL, unknown,
                      at + 7);
            push_ev(evs, &n, LEDGER_T_SENT, i % 3, eids[i], &b);
            if (unknown)
                continue;
            /* R2 and R5 never send read receipts; the others read most, R6 acknowledges or
             * declines every third */
            int top = i == 1 || i == 4 ? 1 : (k + (unsigned)i) % 4 == 0 ? 1 : 2;
            if (i == 5 && k % 3 == 0)
                top = k % 2 ? 3 : 4;
            for (int st = 1; st <= top; st++) {
                if (st == 3 && top == 4)
                    continue; /* declined without acknowledging */
                snprintf(r, sizeof(r), "%016x", rid++);
                lrec_receipt(&b, tids[i], tm, st, at + 100 * st + i, r);
                push_ev(evs, &n, LEDGER_T_INBOUND, i % 4, tids[i], &b);
            }
            if ((k + (unsigned)i) % 5 == 0) { /* the delivery again, later: changes nothing */
                snprintf(r, sizeof(r), "%016x", rid++);
                lrec_receipt(&b, tids[i], tm, 1, at + 900, r);
                push_ev(evs, &n, LEDGER_T_INBOUND, i % 4, tids[i], &b);
            }
            if (j == 0 && k % 4 == 1) { /* a reply: the sends around it compete for the link */
                snprintf(r, sizeof(r), "%016x", rid++);
                lrec_text_in(&b, tids[i], r, "ok", at + 5000);
                push_ev(evs, &n, LEDGER_T_INBOUND, i % 4, tids[i], &b);
            }
            if (k == 7 && i == 0) { /* and earlier: the delivery time moves back */
                snprintf(r, sizeof(r), "%016x", rid++);
                lrec_receipt(&b, tids[i], tm, 1, at + 50, r);
                push_ev(evs, &n, LEDGER_T_INBOUND, i % 4, tids[i], &b);
            }
        }
    }
    char r[17];
    snprintf(r, sizeof(r), "%016x", rid++);
    lrec_receipt(&b, "DRVR0003", "00000000000fffff", 2, T0 + 1000, r); /* never mapped */
    push_ev(evs, &n, LEDGER_T_INBOUND, 2, "DRVR0003", &b);
    lrec_text_in(&b, "DRVR0001", "000000000000f001", "Unfall an der Rampe", T0 + 200000);
    push_ev(evs, &n, LEDGER_T_INBOUND, 0, "DRVR0001", &b);
    push_ev(evs, &n, LEDGER_T_EMPLOYEES, 1, "R4", NULL);
    lst_buf_cleanup(&b);
    return n;
}

/* Applies evs in the given order and batch size through the script or C; the dump. */
static void apply_way(struct fx *f, struct ev *evs, const int *order, int n, int size, bool native,
                      struct lst_buf *dump)
{
    f->cfg.native = native;
    fx_flushall(f);
    for (int k = 0; k < n; k += size)
        feed_batch(f, evs, order, k, k + size < n ? k + size : n);
    lst_buf_reset(dump);
    ledger_dump(f->rc, dump, 0);
}

static void dump_diff(const struct lst_buf *a, const struct lst_buf *b, const char *what)
{
    FILE *fa = fopen("/tmp/ledger-dump-script.txt", "w");
    FILE *fb = fopen("/tmp/ledger-dump-native.txt", "w");
    if (fa)
        fputs(a->data, fa);
    if (fb)
        fputs(b->data, fb);
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    fprintf(stderr, "%s: diff /tmp/ledger-dump-script.txt /tmp/ledger-dump-native.txt\n", what);
}

/* A send whose outcome comes before its message and outbound records, after a reply of its
 * recipient: the send is the better reply link (relink), in this order only. */
static int build_reply_race(struct ev *evs)
{
    const char *to[] = {"Q1"};
    struct lst_buf b;
    char m1[27], m2[27];
    int n = 0;
    lst_buf_init(&b);
    lrec_employee(&b, "Q1", "Fahrer", "Depot Nord", "HH-3", "DRVQ0001", T0);
    push_ev(evs, &n, LEDGER_T_EMPLOYEES, 0, "Q1", &b);
    lrec_mid(m1, T0, 1);
    lrec_mid(m2, T0 + 60000, 2);
    lrec_message(&b, m1, "disp1", "Leitstelle", "tour", to, 1, T0);
    push_ev(evs, &n, LEDGER_T_MESSAGE, 0, m1, &b);
    lrec_sent(&b, m1, "Q1", "00000000000a0001", NULL, false, T0 + 5);
    push_ev(evs, &n, LEDGER_T_SENT, 0, "Q1", &b);
    lrec_text_in(&b, "DRVQ0001", "00000000000b0001", "ok", T0 + 90000);
    push_ev(evs, &n, LEDGER_T_INBOUND, 0, "DRVQ0001", &b);
    lrec_sent(&b, m2, "Q1", "00000000000a0002", NULL, false, T0 + 60005);
    push_ev(evs, &n, LEDGER_T_SENT, 0, "Q1", &b);
    lrec_message(&b, m2, "disp1", "Leitstelle", "tour", to, 1, T0 + 60000);
    push_ev(evs, &n, LEDGER_T_MESSAGE, 0, m2, &b);
    lst_buf_cleanup(&b);
    return n;
}

/* A message record with a selector by department and tag (sel 0), vehicle (1) or employee
 * IDs (2), or with one or two skipped employees (3). */
static void message_sel(struct lst_buf *b, const char *mid, const char *cat, const char *const *to,
                        size_t n, int64_t at, int sel)
{
    struct lst_message m = {0};
    m.message_id = lrec_dup(mid);
    m.created_at = at;
    m.dispatcher = lrec_dup(sel % 2 ? "disp2" : "disp1");
    m.dispatcher_name = lrec_dup("Leitstelle Nord");
    m.department = sel == 1 ? NULL : lrec_dup("Leitstelle");
    m.category = lrec_dup(cat);
    m.idempotency_key = lrec_dup(mid);
    m.content.kind = LST_CONTENT_TEXT;
    m.content.text = lrec_dup(sel == 2 ? "Tor 3 \"gesperrt\"/bitte \\ umfahren" : "Tour 7");
    for (size_t i = 0; i < n; i++)
        lst_strv_push(&m.audience.recipients, to[i]);
    if (sel == 0) {
        lst_strv_push(&m.audience.selector.departments, "Depot Nord");
        lst_strv_push(&m.audience.selector.tags, "shift:früh");
    } else if (sel == 1) {
        lst_strv_push(&m.audience.selector.vehicles, "HH-7");
    } else {
        lst_strv_push(&m.audience.selector.employee_ids, to[0]);
    }
    if (sel == 3)
        REQUIRE(lst_audience_skip_push(&m.audience, "M9", LST_SKIP_NO_CONTACT) == LST_OK);
    if (sel == 3 && n > 2)
        REQUIRE(lst_audience_skip_push(&m.audience, "M8", LST_SKIP_INACTIVE) == LST_OK);
    REQUIRE(lst_message_encode(&m, b) == LST_OK);
    lst_message_cleanup(&m);
}

/* A day of message records: selectors of every kind, recipients with tags whose directory
 * entry changes in between, a record again (a producer retry), a recipient listed twice, one
 * named alone, sends and receipts before or after their message (credits, status indexes), a
 * failed send, an annotation, skipped employees (one erased), a reply in a message's reply
 * window. */
static int build_message_day(struct ev *evs)
{
    static const char *const eids[] = {"M1", "M2", "M3", "M4", "M5"};
    static const char *const tids[] = {"DRVM0001", "DRVM0002", "DRVM0003", "DRVM0004", "DRVM0005"};
    static const char *const deps[] = {"Depot Nord", "Depot Nord", "Depot Süd", "Werkstatt",
                                       "Depot Süd"};
    static const char *const cats[] = {"tour", "info", "damage"};
    struct lst_buf b;
    int n = 0;
    unsigned rid = 0xA000;
    lst_buf_init(&b);
    for (int i = 0; i < 5; i++) {
        const char *tags[] = {"driver", i < 3 ? "shift:früh" : "shift:spät"};
        lrec_employee_tags(&b, eids[i], "Fahrer", deps[i], i % 2 ? "HH-7" : "HH-8", tids[i], tags,
                           2, T0);
        push_ev(evs, &n, LEDGER_T_EMPLOYEES, i % 2, eids[i], &b);
    }
    for (unsigned k = 0; k < 12; k++) {
        char mid[27], tm[17], r[17];
        int64_t at = T0 + k * 45000;
        int first = (int)(k % 5), count = k == 9 ? 1 : 2 + (int)(k % 3);
        const char *to[6];
        for (int j = 0; j < count; j++)
            to[j] = eids[(first + j) % 5];
        if (k == 7)
            to[count++] = to[0]; /* listed twice */
        lrec_mid(mid, at, k);
        message_sel(&b, mid, cats[k % 3], to, (size_t)count, at, (int)(k % 4));
        push_ev(evs, &n, LEDGER_T_MESSAGE, (int32_t)k % 2, mid, &b);
        if (k == 5)
            push_ev(evs, &n, LEDGER_T_MESSAGE, (int32_t)k % 2, mid, &b); /* again */
        if (k == 8) {
            lrec_annotation(&b, mid, LST_ANNOTATION_CATEGORY, "tour", "disp2", at + 10);
            push_ev(evs, &n, LEDGER_T_ANNOTATIONS, 0, mid, &b);
        }
        for (int j = 0; j < count - (k == 7); j++) {
            int i = (first + j) % 5;
            lrec_outbound(&b, mid, eids[i], tids[i], at);
            push_ev(evs, &n, LEDGER_T_OUTBOUND, i % 3, eids[i], &b);
            snprintf(tm, sizeof(tm), "%016x", 0x30000u + k * 16 + (unsigned)i);
            bool fail = k == 4 && j == 1;
            lrec_sent(&b, mid, eids[i], fail ? NULL : tm, fail ? "http_400" : NULL, fail, at + 9);
            push_ev(evs, &n, LEDGER_T_SENT, i % 3, eids[i], &b);
            for (int st = 1; !fail && st <= 1 + (int)((k + (unsigned)i) % 3 == 0); st++) {
                snprintf(r, sizeof(r), "%016x", rid++);
                lrec_receipt(&b, tids[i], tm, st, at + 200 * st + i, r);
                push_ev(evs, &n, LEDGER_T_INBOUND, i % 4, tids[i], &b);
            }
        }
        if (k == 0) { /* a send to someone the record does not list: credited all the same */
            snprintf(tm, sizeof(tm), "%016x", 0x3f000u + k);
            lrec_sent(&b, mid, "M3", tm, NULL, false, at + 11);
            push_ev(evs, &n, LEDGER_T_SENT, 2, "M3", &b);
        }
        if (k == 6) { /* M2 moves: the messages after it index her new department and tag */
            const char *tags[] = {"driver", "shift:spät"};
            lrec_employee_tags(&b, "M2", "Fahrer", "Werkstatt", "HH-9", "DRVM0002", tags, 2,
                               at + 1);
            push_ev(evs, &n, LEDGER_T_EMPLOYEES, 1, "M2", &b);
        }
        if (k == 10) { /* a reply of M1 in the window of the messages before */
            snprintf(r, sizeof(r), "%016x", rid++);
            lrec_text_in(&b, "DRVM0001", r, "erledigt", at - 30000);
            push_ev(evs, &n, LEDGER_T_INBOUND, 0, "DRVM0001", &b);
        }
    }
    /* a skipped employee erased: her erasure edits the skp C wrote, or defers the messages */
    push_ev(evs, &n, LEDGER_T_EMPLOYEES, 1, "M8", NULL);
    lst_buf_cleanup(&b);
    return n;
}

/* The same records, in the same interleavings and batches, through the script and through C
 * give the same projections, watermarks included (the change stream and item versions are not
 * part of the dump: docs/ledger.md). */
static void test_native_equals_scripts(void)
{
    struct fx f;
    static struct ev evs[512];
    int order[512];
    struct lst_buf a, b;
    int (*const scenario[])(struct ev *) = {build_scenario, build_receipt_day, build_message_day};

    REQUIRE(fx_start(&f, 3));
    lst_buf_init(&a);
    lst_buf_init(&b);
    for (size_t sc = 0; sc < LST_ARRAY_LEN(scenario); sc++) {
        int n = scenario[sc](evs);
        REQUIRE(n < 512);
        for (unsigned run = 0; run < 6; run++) {
            interleave(evs, n, run * 7907u + 11 + (unsigned)sc, order);
            int size = run == 0 ? n : 1 + (int)run * 17; /* the whole day in one batch, ... */
            apply_way(&f, evs, order, n, size, false, &a);
            freeReplyObject(redisCommand(f.rc, "CONFIG RESETSTAT"));
            apply_way(&f, evs, order, n, size, true, &b);
            redisReply *st = redisCommand(f.rc, "INFO commandstats");
            CHECK(st != NULL && strstr(st->str, "cmdstat_exec:calls=") != NULL);
            freeReplyObject(st);
            if (strcmp(a.data, b.data) != 0) {
                char what[96];
                snprintf(what, sizeof(what), "scenario %zu run %u (batches of %d)", sc, run, size);
                dump_diff(&a, &b, what);
                CHECK(0);
                sc = LST_ARRAY_LEN(scenario);
                break;
            }
        }
        for (int i = 0; i < n; i++)
            free(evs[i].value);
        if (sc == 1) {
            CHECK(a.data != NULL && strstr(a.data, "lst:lg:rroff set: ") != NULL);
            CHECK(a.data != NULL && strstr(a.data, "lst:lg:h:00000000000fffff hash: r=") != NULL);
        }
    }
    /* the message day reached what it is for: tags of the selector and of the recipients,
     * a directory change, a message named after its one recipient */
    CHECK(a.data != NULL && strstr(a.data, "lst:lg:xc:tour:tag:shift:früh zset") != NULL);
    CHECK(a.data != NULL && strstr(a.data, "lst:lg:x:dep:Werkstatt zset") != NULL);
    CHECK(a.data != NULL && strstr(a.data, "lst:lg:x:veh:HH-7 zset") != NULL);
    CHECK(a.data != NULL && strstr(a.data, "eid=M5") != NULL);
    CHECK(a.data != NULL && strstr(a.data, "skp=[[\"M9\",\"no_contact\"]") != NULL);
    CHECK(a.data != NULL && strstr(a.data, "\"M8\"") == NULL); /* erased from skp */
    /* the reply race in its order, one batch and one record per batch */
    int n = build_reply_race(evs);
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int size = 1; size <= n; size += n - 1) {
        apply_way(&f, evs, order, n, size, false, &b);
        CHECK(strstr(b.data, "reply_to=") != NULL);
        apply_way(&f, evs, order, n, size, true, &a);
        if (strcmp(a.data, b.data) != 0) {
            dump_diff(&b, &a, "the reply race");
            CHECK(0);
        }
    }
    for (int i = 0; i < n; i++)
        free(evs[i].value);
    lst_buf_cleanup(&a);
    lst_buf_cleanup(&b);
    fx_stop(&f);
}

/* A second writer's commit between a batch's reads and its transaction: every `every`-th
 * call bumps lst:lg-gen (0: none), as retention does, so that EXEC answers nil. */
struct rival {
    redisContext *rc;
    unsigned calls, every;
};

static void rival_commit(void *arg)
{
    struct rival *r = arg;
    if (r->every > 0 && r->calls++ % r->every == 0)
        freeReplyObject(redisCommand(r->rc, "INCR lst:lg-gen"));
}

/* A transaction another writer spoiled is read, merged and sent again: the same projections
 * as without the rival; one that is spoiled every time leaves its records to a reassignment,
 * and nothing of them is written. */
static void test_native_retries_after_another_writer(void)
{
    struct fx f;
    static struct ev evs[512];
    int order[512];
    struct lst_buf a, b;
    struct rival rv = {0};

    REQUIRE(fx_start(&f, 3));
    rv.rc = f.rc;
    f.core.before_commit = rival_commit;
    f.core.before_commit_arg = &rv;
    lst_buf_init(&a);
    lst_buf_init(&b);
    int n = build_receipt_day(evs);
    REQUIRE(n < 512);
    interleave(evs, n, 4242u, order);
    apply_way(&f, evs, order, n, 23, true, &a);
    rv.every = 2; /* every batch's first attempt fails */
    rv.calls = 0;
    apply_way(&f, evs, order, n, 23, true, &b);
    CHECK(rv.calls >= 2 * (unsigned)(n / 23));
    if (strcmp(a.data, b.data) != 0) {
        dump_diff(&a, &b, "retried after another writer");
        CHECK(0);
    }
    /* every attempt spoiled: the batch is not applied, its records come back as RETRY */
    fx_flushall(&f);
    struct lst_metrics *m = lst_metrics_create();
    REQUIRE(m != NULL);
    f.core.m_gaps = lst_metrics_counter(m, "gaps", "gaps", NULL);
    rv.every = 1;
    rv.calls = 0;
    int done_c = 0, retry = 0, gap = 0; /* gap: behind a record not applied on its partition */
    for (int k = 0; k < n; k++) {
        const struct ev *e = &evs[order[k]];
        struct ledger_rec r = {.topic = e->t,
                               .partition = e->p,
                               .offset = f.next[e->t][e->p]++,
                               .key = e->key,
                               .keylen = strlen(e->key),
                               .value = e->value,
                               .len = e->len};
        CHECK(ledger_core_add(&f.core, &r) == LST_OK);
    }
    const struct ledger_done *done;
    size_t nd = 0;
    CHECK(ledger_core_flush(&f.core, &done, &nd) == LST_ERR_STATE);
    for (size_t i = 0; i < nd; i++) {
        done_c += done[i].outcome == LEDGER_APPLIED;
        retry += done[i].outcome == LEDGER_RETRY;
        gap += done[i].outcome == LEDGER_GAP;
    }
    CHECK(retry > 0 && retry + done_c + gap == n);
    CHECK(gap > 0);                                 /* the records behind the refused ones */
    CHECK_EQ(lst_counter_value(f.core.m_gaps), 0u); /* which is not Redis losing data */
    CHECK_EQ(rv.calls, 8u);
    CHECK_EQ(num(&f, "HLEN %s%s", "lst:lg:", "h:00000000000fffff"), 0);
    for (int i = 0; i < n; i++)
        free(evs[i].value);
    lst_buf_cleanup(&a);
    lst_buf_cleanup(&b);
    fx_stop(&f);
    lst_metrics_destroy(m);
}

static void native_on(void)
{
    g_native = true;
}

LST_TEST_MAIN(T(test_rules_parse), T(test_every_order_same_state),
              T(test_monotonic_and_final_states), T(test_read_receipts_off),
              T(test_inbound_directory_replies), T(test_sent_to_employee_history_and_pending),
              T(test_directory_change_moves_history), T(test_one_recipient_named),
              T(test_watermark_gate_and_dlq), T(test_broken_state_dead_letters),
              T(test_redis_loss_detected), T(test_interleavings_give_identical_projections),
              T(test_batches_equal_single_events), T(test_erasure_after_receipts_in_one_call),
              T(test_rebuild_drops_every_key), T(test_native_equals_scripts),
              T(test_native_retries_after_another_writer), T(native_on),
              T(test_every_order_same_state), T(test_monotonic_and_final_states),
              T(test_read_receipts_off), T(test_one_recipient_named),
              T(test_watermark_gate_and_dlq), T(test_redis_loss_detected),
              T(test_interleavings_give_identical_projections), T(test_batches_equal_single_events),
              T(test_erasure_after_receipts_in_one_call))
