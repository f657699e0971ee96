/* The ledger's GDPR parts against a real redis-server: the audit log (lst.audit stored once
 * per event, per employee too) and the retention purge (old items gone from every projection
 * in bounded runs, newer ones untouched, no index left pointing at a purged item). */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "ledger.h"
#include "lst/log.h"
#include "lst_test.h"
#include "redis_fixture.h"
#include "test_ledger_records.h"

#define T0 INT64_C(1700000000000)

struct fx {
    struct redis_fixture rf;
    struct lst_redis *redis;
    redisContext *rc;
    struct ledger_config cfg;
    struct ledger_core core;
    int64_t next[LEDGER_T__COUNT];
    struct lst_buf rec;
    char prefix[1];
};

static bool fx_start(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    lst_buf_init(&f->rec);
    if (!redis_fixture_start(&f->rf, NULL))
        return false;
    struct lst_redis_config rc = {.port = f->rf.port, .timeout_ms = 10000};
    if (lst_redis_create(&rc, &f->redis) != LST_OK)
        return false;
    f->cfg.common.topic_prefix = f->prefix;
    f->cfg.read_receipts = 3;
    f->cfg.reply_window = 3600000;
    f->cfg.batch = 100;
    f->cfg.script_events = 8;
    if (ledger_core_init(&f->core, &f->cfg, f->redis, NULL, NULL) != LST_OK)
        return false;
    f->rc = redisConnect("127.0.0.1", f->rf.port);
    return f->rc != NULL && f->rc->err == 0;
}

static void fx_stop(struct fx *f)
{
    (void)redis_fixture_restart; /* the fixture header's helper this test does not need */
    ledger_core_cleanup(&f->core);
    if (f->rc != NULL)
        redisFree(f->rc);
    lst_redis_destroy(f->redis);
    redis_fixture_stop(&f->rf);
    lst_buf_cleanup(&f->rec);
}

/* Applies one record on its own; its outcome, -1 if it was not applied. */
static int apply_one(struct fx *f, const struct ledger_rec *r)
{
    const struct ledger_done *done;
    size_t n;
    if (ledger_core_add(&f->core, r) != LST_OK)
        return -1;
    ledger_core_flush(&f->core, &done, &n);
    return n == 1 ? (int)done[0].outcome : -1;
}

static int feed(struct fx *f, enum ledger_topic t, const char *key)
{
    struct ledger_rec r = {.topic = t,
                           .partition = 0,
                           .offset = f->next[t]++,
                           .key = key,
                           .keylen = strlen(key),
                           .value = f->rec.data,
                           .len = f->rec.len};
    return apply_one(f, &r);
}

static long long num(struct fx *f, const char *fmt, const char *a)
{
    redisReply *r = redisCommand(f->rc, fmt, a);
    long long v = -1;
    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r != NULL && r->type == REDIS_REPLY_STRING)
        v = strtoll(r->str, NULL, 10);
    if (r != NULL)
        freeReplyObject(r);
    return v;
}

static bool hget_has(struct fx *f, const char *key, const char *field, const char *needle)
{
    redisReply *r = redisCommand(f->rc, "HGET %s %s", key, field);
    bool ok = r != NULL && r->type == REDIS_REPLY_STRING && strstr(r->str, needle) != NULL;
    if (r != NULL)
        freeReplyObject(r);
    return ok;
}

static void audit_rec(struct fx *f, const char *id, int64_t at, enum lst_audit_action action,
                      const char *eid)
{
    struct lst_audit a = {.event_id = lrec_dup(id),
                          .at = at,
                          .actor = lrec_dup("anna"),
                          .role = lrec_dup("dispatcher"),
                          .action = action,
                          .employee_id = lrec_dup(eid)};
    CHECK_EQ(lst_audit_encode(&a, &f->rec), LST_OK);
    lst_audit_cleanup(&a);
}

static void test_audit_stored_once(void)
{
    struct fx f;
    char id1[27], id2[27];
    REQUIRE(fx_start(&f));
    lrec_mid(id1, T0, 1);
    lrec_mid(id2, T0 + 5, 2);
    audit_rec(&f, id1, T0, LST_AUDIT_VIEW, "E17");
    CHECK_EQ(feed(&f, LEDGER_T_AUDIT, "E17"), LEDGER_APPLIED);
    CHECK_EQ(feed(&f, LEDGER_T_AUDIT, "E17"), LEDGER_APPLIED); /* a replay: the same entry */
    audit_rec(&f, id2, T0 + 5, LST_AUDIT_EXPORT, "E18");
    CHECK_EQ(feed(&f, LEDGER_T_AUDIT, "E18"), LEDGER_APPLIED);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:aud"), 2);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:aud:emp:E17"), 1);
    CHECK_EQ(num(&f, "ZSCORE lst:lg:aud:emp:E18 %s", id2), T0 + 5);
    CHECK(hget_has(&f, "lst:lg:aud:d", id1, "\"action\":\"view\""));
    CHECK(hget_has(&f, "lst:lg:aud:d", id2, "\"actor\":\"anna\""));
    /* a record that is no audit record is dead-lettered (no producer here: watermark only) */
    lst_buf_reset(&f.rec);
    lst_buf_puts(&f.rec, "{\"v\":1,\"event_id\":\"x\"}");
    CHECK_EQ(feed(&f, LEDGER_T_AUDIT, "E17"), LEDGER_APPLIED);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:aud"), 2);
    fx_stop(&f);
}

/* Every sorted set and the members of every set: none may name a purged id. */
static bool nothing_names(struct fx *f, const char *const *ids, size_t n)
{
    redisReply *keys = redisCommand(f->rc, "KEYS lst:lg:*");
    bool clean = keys != NULL && keys->type == REDIS_REPLY_ARRAY;
    for (size_t k = 0; clean && k < keys->elements; k++) {
        const char *key = keys->element[k]->str;
        for (size_t i = 0; i < n; i++) {
            if (strstr(key, ids[i]) != NULL) {
                fprintf(stderr, "  key %s names %s\n", key, ids[i]);
                clean = false;
            }
        }
        redisReply *t = redisCommand(f->rc, "TYPE %s", key);
        if (t != NULL && strcmp(t->str, "zset") == 0) {
            for (size_t i = 0; i < n; i++) {
                redisReply *s = redisCommand(f->rc, "ZSCORE %s %s", key, ids[i]);
                if (s != NULL && s->type != REDIS_REPLY_NIL) {
                    fprintf(stderr, "  %s still lists %s\n", key, ids[i]);
                    clean = false;
                }
                if (s != NULL)
                    freeReplyObject(s);
            }
        }
        if (t != NULL)
            freeReplyObject(t);
    }
    if (keys != NULL)
        freeReplyObject(keys);
    return clean;
}

/* The directory of most tests here: E17 (DRV00017) and E18 (DRV00018), both in Nord. */
static void two_drivers(struct fx *f)
{
    lrec_employee(&f->rec, "E17", "Jana Kühn", "Nord", "HH-LS 17", "DRV00017", T0);
    feed(f, LEDGER_T_EMPLOYEES, "E17");
    lrec_employee(&f->rec, "E18", "Ole Berg", "Nord", "HH-LS 18", "DRV00018", T0);
    feed(f, LEDGER_T_EMPLOYEES, "E18");
}

/* The message record in rec with eid added as skipped (inactive). */
static void add_skipped(struct lst_buf *rec, const char *eid)
{
    struct lst_message m;
    REQUIRE(lst_message_decode(rec->data, rec->len, &m, NULL) == LST_OK);
    CHECK_EQ(lst_audience_skip_push(&m.audience, eid, LST_SKIP_INACTIVE), LST_OK);
    CHECK_EQ(lst_message_encode(&m, rec), LST_OK);
    lst_message_cleanup(&m);
}

static void test_retention_purges_old_items(void)
{
    struct fx f;
    struct ledger_retention *ret = NULL;
    char m1[27], m2[27];
    const char *both[] = {"E17", "E18"};
    const char *in = "DRV00017:00000000000000c1";
    int64_t purged = -1, oldest = 0;
    REQUIRE(fx_start(&f));
    REQUIRE(ledger_retention_create(NULL, &ret) == LST_OK);
    two_drivers(&f);
    lrec_mid(m1, T0 + 1000, 1);
    lrec_mid(m2, T0 + 86400000, 2);
    lrec_message(&f.rec, m1, "disp1", "Leitstelle", "tour", both, 2, T0 + 1000);
    add_skipped(&f.rec, "E19");
    feed(&f, LEDGER_T_MESSAGE, m1);
    CHECK_EQ(num(&f, "ZSCORE lst:lg:e:E19:skp %s", m1), T0 + 1000); /* gone with m1 below */
    lrec_sent(&f.rec, m1, "E17", "00000000000000a1", NULL, false, T0 + 1100);
    feed(&f, LEDGER_T_SENT, "E17");
    lrec_receipt(&f.rec, "DRV00017", "00000000000000a1", 1, T0 + 1200, "00000000000000b1");
    feed(&f, LEDGER_T_INBOUND, "DRV00017");
    /* held receipts: one that its send outcome claims later, two that nothing ever claims
     * (an old one, due for purging, and a recent one) */
    lrec_receipt(&f.rec, "DRV00018", "00000000000000a2", 1, T0 + 1250, "00000000000000b2");
    feed(&f, LEDGER_T_INBOUND, "DRV00018");
    lrec_receipt(&f.rec, "DRV00018", "00000000000000f1", 1, T0 + 1300, "00000000000000b3");
    feed(&f, LEDGER_T_INBOUND, "DRV00018");
    lrec_receipt(&f.rec, "DRV00018", "00000000000000f2", 2, T0 + 90000000, "00000000000000b4");
    feed(&f, LEDGER_T_INBOUND, "DRV00018");
    CHECK_EQ(num(&f, "ZSCORE lst:lg:hx %s", "00000000000000a2"), T0 + 1250);
    lrec_sent(&f.rec, m1, "E18", "00000000000000a2", NULL, false, T0 + 1100);
    feed(&f, LEDGER_T_SENT, "E18");
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:h:00000000000000a2"), 0);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:hx"), 2);
    lrec_text_in(&f.rec, "DRV00017", "00000000000000c1", "Bin unterwegs", T0 + 60000);
    feed(&f, LEDGER_T_INBOUND, "DRV00017");
    lrec_message(&f.rec, m2, "disp1", "Leitstelle", "tour", both, 2, T0 + 86400000);
    feed(&f, LEDGER_T_MESSAGE, m2);
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:all"), 3);
    CHECK_EQ(num(&f, "HEXISTS lst:lg:t:000a1 %s", "00000000000000a1"), 1);

    /* bounded: one item per run, oldest first */
    int64_t held = -1;
    CHECK_EQ(ledger_retention_run(ret, f.redis, T0 + 3600000, 1, &purged, &oldest, &held), LST_OK);
    CHECK_EQ(purged, 1);
    CHECK_EQ(held, 1);
    CHECK_EQ(oldest, T0 + 60000);
    CHECK_EQ(num(&f, "EXISTS lst:lg:m:%s", m1), 0);
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:h:00000000000000f1"), 0);
    CHECK_EQ(ledger_retention_run(ret, f.redis, T0 + 3600000, 1, &purged, &oldest, &held), LST_OK);
    CHECK_EQ(purged, 1);
    CHECK_EQ(held, 0);
    CHECK_EQ(oldest, T0 + 86400000);
    CHECK_EQ(ledger_retention_run(ret, f.redis, T0 + 3600000, 1, &purged, &oldest, NULL), LST_OK);
    CHECK_EQ(purged, 0);
    /* the recent held receipt waits for its outcome */
    CHECK_EQ(num(&f, "ZSCORE lst:lg:hx %s", "00000000000000f2"), T0 + 90000000);
    CHECK_EQ(num(&f, "HGET lst:lg:h:00000000000000f2 %s", "r"), T0 + 90000000);
    const char *gone[] = {m1, in, "00000000000000a1", "00000000000000a2", "00000000000000f1"};
    CHECK(nothing_names(&f, gone, LST_ARRAY_LEN(gone)));
    /* the newer message and the directory stay */
    CHECK_EQ(num(&f, "ZCARD %s", "lst:lg:x:all"), 1);
    CHECK_EQ(num(&f, "ZSCORE lst:lg:x:emp:E17 %s", m2), T0 + 86400000);
    CHECK_EQ(num(&f, "ZSCORE lst:lg:x:dep:Nord %s", m2), T0 + 86400000);
    CHECK_EQ(num(&f, "HLEN lst:lg:r:%s", m2), 2);
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:emp:E17"), 1);
    /* credits are counted per day, not per message: they stay */
    CHECK(num(&f, "HGET lst:lg:cr:19675 %s", "all") >= 1);
    ledger_retention_destroy(ret);
    fx_stop(&f);
}

static int feed_tombstone(struct fx *f, const char *eid)
{
    struct ledger_rec r = {.topic = LEDGER_T_EMPLOYEES,
                           .offset = f->next[LEDGER_T_EMPLOYEES]++,
                           .key = eid,
                           .keylen = strlen(eid)};
    return apply_one(f, &r);
}

/* The change stream's entries as "<t> <id> <eid>" lines, oldest first. */
static void ev_lines(struct fx *f, struct lst_buf *out)
{
    redisReply *r = redisCommand(f->rc, "XRANGE lst:lg:ev - +");
    lst_buf_reset(out);
    for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *kv = r->element[i]->element[1];
        const char *t = "", *id = "", *eid = "";
        for (size_t k = 0; k + 1 < kv->elements; k += 2) {
            const char *name = kv->element[k]->str, *v = kv->element[k + 1]->str;
            if (strcmp(name, "t") == 0)
                t = v;
            else if (strcmp(name, "id") == 0)
                id = v;
            else if (strcmp(name, "eid") == 0)
                eid = v;
        }
        lst_buf_printf(out, "%s %s %s\n", t, id, eid);
    }
    if (r != NULL)
        freeReplyObject(r);
}

/* Erasure and the change stream: every entry about her (her states, her incoming items) is
 * gone, one "erased" entry is appended, everyone else's entries stay. */
static void test_erasure_forgets_change_stream(void)
{
    struct fx f;
    struct lst_buf ev;
    char m1[27];
    const char *both[] = {"E17", "E18"};
    REQUIRE(fx_start(&f));
    lst_buf_init(&ev);
    two_drivers(&f);
    lrec_mid(m1, T0 + 1000, 1);
    lrec_message(&f.rec, m1, "disp1", "Leitstelle", "tour", both, 2, T0 + 1000);
    feed(&f, LEDGER_T_MESSAGE, m1);
    lrec_sent(&f.rec, m1, "E17", "00000000000000a1", NULL, false, T0 + 1100);
    feed(&f, LEDGER_T_SENT, "E17");
    lrec_sent(&f.rec, m1, "E18", "00000000000000a2", NULL, false, T0 + 1100);
    feed(&f, LEDGER_T_SENT, "E18");
    lrec_receipt(&f.rec, "DRV00017", "00000000000000a1", 2, T0 + 1200, "00000000000000b1");
    feed(&f, LEDGER_T_INBOUND, "DRV00017");
    lrec_text_in(&f.rec, "DRV00017", "00000000000000c1", "Bin krank", T0 + 60000);
    feed(&f, LEDGER_T_INBOUND, "DRV00017");
    ev_lines(&f, &ev);
    CHECK(strstr(ev.data, "status ") != NULL && strstr(ev.data, " E17\n") != NULL);
    CHECK(strstr(ev.data, "DRV00017:00000000000000c1") != NULL);

    CHECK_EQ(feed_tombstone(&f, "E17"), LEDGER_APPLIED);
    ev_lines(&f, &ev);
    char want[96];
    snprintf(want, sizeof(want), "message %s \nstatus %s E18\nerased  E17\n", m1, m1);
    CHECK_STREQ(ev.data, want); /* the message to both and E18's state stay; hers go */
    /* a second erasure (she was re-created meanwhile) leaves one erased entry per erasure */
    lrec_employee(&f.rec, "E17", "Jana Kühn", "Nord", "HH-LS 17", "DRV00017", T0 + 5);
    feed(&f, LEDGER_T_EMPLOYEES, "E17");
    CHECK_EQ(feed_tombstone(&f, "E17"), LEDGER_APPLIED);
    CHECK_EQ(num(&f, "XLEN %s", "lst:lg:ev"), 3);
    lst_buf_cleanup(&ev);
    fx_stop(&f);
}

/* Messages and erasure: audience_count follows the remaining recipients (whichever record
 * comes first), and a message addressed to her alone loses its content and no longer names
 * her (eid). */
static void test_erasure_audience_and_content(void)
{
    struct fx f;
    char m1[27], m2[27], m3[27], m4[27], m5[27], k2[64];
    const char *both[] = {"E17", "E18"}, *alone[] = {"E17"}, *other[] = {"E18"};
    REQUIRE(fx_start(&f));
    two_drivers(&f);
    lrec_mid(m1, T0 + 1000, 1);
    lrec_mid(m2, T0 + 2000, 2);
    lrec_mid(m3, T0 + 3000, 3);
    lrec_mid(m4, T0 + 4000, 4);
    lrec_mid(m5, T0 + 5000, 5);
    snprintf(k2, sizeof(k2), "lst:lg:m:%s", m2);
    lrec_message(&f.rec, m1, "disp1", "Leitstelle", "tour", both, 2, T0 + 1000);
    feed(&f, LEDGER_T_MESSAGE, m1);
    lrec_message(&f.rec, m2, "disp1", "Leitstelle", "tour", alone, 1, T0 + 2000);
    feed(&f, LEDGER_T_MESSAGE, m2);
    lrec_message(&f.rec, m5, "disp1", "Leitstelle", "tour", other, 1, T0 + 5000);
    feed(&f, LEDGER_T_MESSAGE, m5);
    CHECK(hget_has(&f, k2, "eid", "E17"));               /* to her alone: the item names her */
    CHECK_EQ(num(&f, "HEXISTS lst:lg:m:%s eid", m1), 0); /* to two: nobody */
    CHECK_EQ(feed_tombstone(&f, "E17"), LEDGER_APPLIED);
    /* records that arrive after the erasure (a rebuild, a late partition) end the same */
    lrec_message(&f.rec, m3, "disp1", "Leitstelle", "tour", both, 2, T0 + 3000);
    feed(&f, LEDGER_T_MESSAGE, m3);
    lrec_message(&f.rec, m4, "disp1", "Leitstelle", "tour", alone, 1, T0 + 4000);
    feed(&f, LEDGER_T_MESSAGE, m4);
    const char *multi[] = {m1, m3}, *own[] = {m2, m4};
    for (size_t i = 0; i < 2; i++) {
        CHECK_EQ(num(&f, "HGET lst:lg:m:%s audience", multi[i]), 1);
        CHECK_EQ(num(&f, "HGET lst:lg:m:%s n", multi[i]), 1);
        char k[64];
        snprintf(k, sizeof(k), "lst:lg:m:%s", multi[i]);
        CHECK(hget_has(&f, k, "text", "Tour 7"));
        snprintf(k, sizeof(k), "lst:lg:m:%s", own[i]);
        CHECK_EQ(num(&f, "HGET lst:lg:m:%s audience", own[i]), 0);
        CHECK_EQ(num(&f, "HEXISTS %s text", k), 0);
        CHECK_EQ(num(&f, "HGET %s cgone", k), 1);
        CHECK(hget_has(&f, k, "kind", "text")); /* the record of the send stays */
        /* no item names her, whichever came first: to her alone or to both */
        CHECK_EQ(num(&f, "HEXISTS lst:lg:m:%s eid", own[i]), 0);
        CHECK_EQ(num(&f, "HEXISTS lst:lg:m:%s eid", multi[i]), 0);
    }
    snprintf(k2, sizeof(k2), "lst:lg:m:%s", m5);
    CHECK(hget_has(&f, k2, "eid", "E18")); /* a message to E18 alone still names him */
    fx_stop(&f);
}

static void annotate(struct fx *f, const char *item, enum lst_annotation_kind kind, const char *cat,
                     const char *user, int64_t at)
{
    CHECK_EQ(lrec_annotation(&f->rec, item, kind, cat, user, at), LST_OK);
    CHECK_EQ(feed(f, LEDGER_T_ANNOTATIONS, item), LEDGER_APPLIED);
}

/* Whether ann:<id> or annh:<id> exists (1 or 2), 0 if neither. */
static long long ann_keys(struct fx *f, const char *id)
{
    char a[96], h[96];
    snprintf(a, sizeof(a), "lst:lg:ann:%s", id);
    snprintf(h, sizeof(h), "lst:lg:annh:%s", id);
    redisReply *r = redisCommand(f->rc, "EXISTS %s %s", a, h);
    long long v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r != NULL)
        freeReplyObject(r);
    return v;
}

/* Erasure and annotations: the category change, u_at and every "handled" of her incoming
 * items go, also of one retention purged earlier and of one that never arrived; annotations
 * of her items applied after the tombstone (a rebuild, a late partition) re-create nothing;
 * someone else's and an outgoing message's annotations stay. */
static void test_erasure_removes_annotations(void)
{
    struct fx f;
    struct ledger_retention *ret = NULL;
    char m0[27], m1[27];
    int64_t purged = -1, oldest = 0;
    const char *both[] = {"E17", "E18"};
    const char *old = "DRV00017:00000000000000c0", *in = "DRV00017:00000000000000c1";
    const char *never = "DRV00017:00000000000000c2", *late = "DRV00017:00000000000000c9";
    const char *other = "DRV00018:00000000000000c3";
    REQUIRE(fx_start(&f));
    REQUIRE(ledger_retention_create(NULL, &ret) == LST_OK);
    two_drivers(&f);
    lrec_text_in(&f.rec, "DRV00017", "00000000000000c0", "Alte Meldung", T0 + 1000);
    feed(&f, LEDGER_T_INBOUND, "DRV00017");
    annotate(&f, old, LST_ANNOTATION_HANDLED, NULL, "anna", T0 + 1500);
    lrec_mid(m0, T0 + 1600, 3);
    lrec_message(&f.rec, m0, "disp1", "Leitstelle", "tour", both, 2, T0 + 1600);
    feed(&f, LEDGER_T_MESSAGE, m0);
    annotate(&f, m0, LST_ANNOTATION_CATEGORY, "alt", "anna", T0 + 1700);
    CHECK_EQ(ann_keys(&f, old), 1);
    CHECK_EQ(ann_keys(&f, m0), 1);
    /* retention purges the old items with their annotations (and the incoming one's annt:
     * entry); one annotated again afterwards keeps it until the erasure */
    CHECK_EQ(ledger_retention_run(ret, f.redis, T0 + 2000, 10, &purged, &oldest, NULL), LST_OK);
    CHECK_EQ(purged, 2);
    CHECK_EQ(num(&f, "EXISTS lst:lg:m:%s", old), 0);
    CHECK_EQ(ann_keys(&f, old), 0);
    CHECK_EQ(ann_keys(&f, m0), 0);
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:annt:DRV00017"), 0);
    annotate(&f, old, LST_ANNOTATION_UNHANDLED, NULL, "bob", T0 + 2500);
    CHECK_EQ(ann_keys(&f, old), 1);
    lrec_mid(m1, T0 + 5000, 1);
    lrec_message(&f.rec, m1, "disp1", "Leitstelle", "tour", both, 2, T0 + 5000);
    feed(&f, LEDGER_T_MESSAGE, m1);
    annotate(&f, m1, LST_ANNOTATION_CATEGORY, "wichtig", "anna", T0 + 5500);
    lrec_text_in(&f.rec, "DRV00017", "00000000000000c1", "Bin krank", T0 + 60000);
    feed(&f, LEDGER_T_INBOUND, "DRV00017");
    annotate(&f, in, LST_ANNOTATION_HANDLED, NULL, "anna", T0 + 61000);
    annotate(&f, in, LST_ANNOTATION_UNHANDLED, NULL, "bob", T0 + 62000);
    annotate(&f, in, LST_ANNOTATION_CATEGORY, "privat", "bob", T0 + 63000);
    annotate(&f, never, LST_ANNOTATION_HANDLED, NULL, "carl", T0 + 64000);
    lrec_text_in(&f.rec, "DRV00018", "00000000000000c3", "Stau", T0 + 65000);
    feed(&f, LEDGER_T_INBOUND, "DRV00018");
    annotate(&f, other, LST_ANNOTATION_HANDLED, NULL, "anna", T0 + 66000);
    CHECK_EQ(ann_keys(&f, in), 2);
    CHECK_EQ(ann_keys(&f, never), 1);
    CHECK_EQ(num(&f, "SCARD %s", "lst:lg:annt:DRV00017"), 3);

    CHECK_EQ(feed_tombstone(&f, "E17"), LEDGER_APPLIED);
    CHECK_EQ(num(&f, "EXISTS lst:lg:m:%s", in), 0);
    CHECK_EQ(ann_keys(&f, in), 0);
    CHECK_EQ(ann_keys(&f, old), 0);
    CHECK_EQ(ann_keys(&f, never), 0);
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:annt:DRV00017"), 0);
    CHECK_EQ(ann_keys(&f, other), 1); /* someone else's and the message's stay */
    CHECK_EQ(num(&f, "SCARD %s", "lst:lg:annt:DRV00018"), 1);
    CHECK(hget_has(&f, "lst:lg:m:DRV00018:00000000000000c3", "handled_by", "anna"));
    char mk[64];
    snprintf(mk, sizeof(mk), "lst:lg:ann:%s", m1);
    CHECK(hget_has(&f, mk, "cat", "wichtig"));

    /* later records about her items re-create nothing; a category they name stays a name */
    annotate(&f, in, LST_ANNOTATION_HANDLED, NULL, "dora", T0 + 70000);
    annotate(&f, in, LST_ANNOTATION_CATEGORY, "spaet", "dora", T0 + 71000);
    annotate(&f, late, LST_ANNOTATION_UNHANDLED, NULL, "dora", T0 + 72000);
    lrec_text_in(&f.rec, "DRV00017", "00000000000000c2", "Noch da", T0 + 73000);
    feed(&f, LEDGER_T_INBOUND, "DRV00017");
    const char *gone[] = {old, in, never, late};
    for (size_t i = 0; i < LST_ARRAY_LEN(gone); i++)
        CHECK_EQ(ann_keys(&f, gone[i]), 0);
    CHECK_EQ(num(&f, "EXISTS %s", "lst:lg:annt:DRV00017"), 0);
    CHECK(nothing_names(&f, gone, LST_ARRAY_LEN(gone)));
    CHECK_EQ(num(&f, "SISMEMBER lst:lg:cats %s", "spaet"), 1);
    CHECK_EQ(num(&f, "SISMEMBER lst:lg:cats %s", "privat"), 1);
    ledger_retention_destroy(ret);
    fx_stop(&f);
}

LST_TEST_MAIN(T(test_audit_stored_once), T(test_retention_purges_old_items),
              T(test_erasure_forgets_change_stream), T(test_erasure_audience_and_content),
              T(test_erasure_removes_annotations))
