/* Annotations (handled, category changes), saved views and the change stream of the ledger,
 * against a real redis-server (tests/redis_fixture.h), driven through the ledger core as the
 * service drives it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "ledger.h"
#include "lst_test.h"
#include "redis_fixture.h"
#include "test_ledger_dump.h"
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
    f->cfg.read_receipts = 5;
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
    (void)redis_fixture_restart; /* the fixture's restart is not needed here */
    ledger_core_cleanup(&f->core);
    if (f->rc != NULL)
        redisFree(f->rc);
    lst_redis_destroy(f->redis);
    redis_fixture_stop(&f->rf);
    lst_buf_cleanup(&f->rec);
}

static void fx_flushall(struct fx *f)
{
    freeReplyObject(redisCommand(f->rc, "FLUSHALL"));
    memset(f->next, 0, sizeof(f->next));
    ledger_core_forget(&f->core);
}

/* Applies f->rec on partition 0 of t; the outcome or -1. */
static int feed(struct fx *f, enum ledger_topic t)
{
    struct ledger_rec r = {.topic = t,
                           .partition = 0,
                           .offset = f->next[t]++,
                           .key = "k",
                           .keylen = 1,
                           .value = f->rec.data,
                           .len = f->rec.len};
    const struct ledger_done *done;
    size_t n;
    if (ledger_core_add(&f->core, &r) != LST_OK)
        return -1;
    ledger_core_flush(&f->core, &done, &n);
    return n == 1 ? (int)done[0].outcome : -1;
}

static const char *str(struct fx *f, const char *fmt, const char *a, const char *b)
{
    static char out[1024];
    redisReply *r = redisCommand(f->rc, fmt, a, b);
    out[0] = '\0';
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        snprintf(out, sizeof(out), "%s", r->str);
    else if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        snprintf(out, sizeof(out), "%lld", r->integer);
    if (r != NULL)
        freeReplyObject(r);
    return out;
}

static bool in_zset(struct fx *f, const char *key, const char *member)
{
    return str(f, "ZSCORE %s %s", key, member)[0] != '\0';
}

static int annotate(struct fx *f, const char *item, enum lst_annotation_kind kind, const char *cat,
                    const char *user, int64_t at)
{
    return lrec_annotation(&f->rec, item, kind, cat, user, at) == LST_OK
               ? feed(f, LEDGER_T_ANNOTATIONS)
               : -1;
}

static void employee(struct fx *f, const char *eid, const char *dep, const char *tid)
{
    lrec_employee(&f->rec, eid, "Fahrer", dep, "HH-LS-1", tid, T0);
    CHECK_EQ(feed(f, LEDGER_T_EMPLOYEES), LEDGER_APPLIED);
}

static void message(struct fx *f, const char *mid, const char *cat)
{
    const char *rcp[] = {"E1"};
    lrec_message(&f->rec, mid, "anna", "Dispo-Nord", cat, rcp, 1, T0);
    CHECK_EQ(feed(f, LEDGER_T_MESSAGE), LEDGER_APPLIED);
}

#define MID  "01HF0000000000000000000001"
#define MID2 "01HF0000000000000000000002"

/* A category change moves the item between the per-category indexes, whichever arrives
 * first, and the latest change wins in any order. */
static void test_category_change(void)
{
    struct fx f;
    REQUIRE(fx_start(&f));
    employee(&f, "E1", "Nord", "DRV00001");
    message(&f, MID, "dispo");
    CHECK(in_zset(&f, "lst:lg:xc:dispo:dep:Nord", MID));
    /* employee histories have no per-category copies (the view filters them on the hash) */
    CHECK(in_zset(&f, "lst:lg:x:emp:E1", MID));
    CHECK(!in_zset(&f, "lst:lg:xc:dispo:emp:E1", MID));
    CHECK_EQ(annotate(&f, MID, LST_ANNOTATION_CATEGORY, "werkstatt", "bob", T0 + 10),
             LEDGER_APPLIED);
    CHECK_STREQ(str(&f, "HGET lst:lg:m:%s %s", MID, "cat"), "werkstatt");
    CHECK(!in_zset(&f, "lst:lg:xc:dispo:all", MID));
    CHECK(!in_zset(&f, "lst:lg:xc:dispo:dep:Nord", MID));
    CHECK(in_zset(&f, "lst:lg:xc:werkstatt:all", MID));
    CHECK(!in_zset(&f, "lst:lg:xc:werkstatt:emp:E1", MID));
    CHECK(in_zset(&f, "lst:lg:xc:werkstatt:dep:Nord", MID));
    CHECK(in_zset(&f, "lst:lg:xc:werkstatt:dir:out", MID));
    CHECK(in_zset(&f, "lst:lg:xc:werkstatt:st:unread", MID));
    CHECK(in_zset(&f, "lst:lg:x:all", MID)); /* the category-free indexes stay */
    /* an older change arriving later loses */
    CHECK_EQ(annotate(&f, MID, LST_ANNOTATION_CATEGORY, "inbox", "carl", T0 + 5), LEDGER_APPLIED);
    CHECK_STREQ(str(&f, "HGET lst:lg:m:%s %s", MID, "cat"), "werkstatt");
    /* status changes after the move keep the new category's status indexes */
    lrec_sent(&f.rec, MID, "E1", "00000000000000aa", NULL, false, T0 + 20);
    CHECK_EQ(feed(&f, LEDGER_T_SENT), LEDGER_APPLIED);
    lrec_receipt(&f.rec, "DRV00001", "00000000000000aa", 2, T0 + 30, "00000000000000b1");
    CHECK_EQ(feed(&f, LEDGER_T_INBOUND), LEDGER_APPLIED);
    CHECK(!in_zset(&f, "lst:lg:xc:werkstatt:st:unread", MID));
    CHECK(!in_zset(&f, "lst:lg:xc:dispo:st:unread", MID));

    /* before the message: the message arrives in the changed category */
    CHECK_EQ(annotate(&f, MID2, LST_ANNOTATION_CATEGORY, "werkstatt", "bob", T0 + 10),
             LEDGER_APPLIED);
    message(&f, MID2, "dispo");
    CHECK_STREQ(str(&f, "HGET lst:lg:m:%s %s", MID2, "cat"), "werkstatt");
    CHECK(in_zset(&f, "lst:lg:xc:werkstatt:dep:Nord", MID2));
    CHECK(!in_zset(&f, "lst:lg:xc:dispo:all", MID2));

    /* an incoming message: changed before and after its sender is known */
    lrec_text_in(&f.rec, "DRV00009", "00000000000000c1", "Reifen platt", T0 + 40);
    CHECK_EQ(feed(&f, LEDGER_T_INBOUND), LEDGER_APPLIED);
    CHECK(in_zset(&f, "lst:lg:xc:inbox:all", "DRV00009:00000000000000c1"));
    CHECK_EQ(annotate(&f, "DRV00009:00000000000000c1", LST_ANNOTATION_CATEGORY, "schaden", "bob",
                      T0 + 50),
             LEDGER_APPLIED);
    CHECK(in_zset(&f, "lst:lg:xc:schaden:dir:in", "DRV00009:00000000000000c1"));
    employee(&f, "E9", "Sued", "DRV00009"); /* attached: the rules do not override it */
    CHECK_STREQ(str(&f, "HGET lst:lg:m:%s %s", "DRV00009:00000000000000c1", "cat"), "schaden");
    CHECK(in_zset(&f, "lst:lg:xc:schaden:dep:Sued", "DRV00009:00000000000000c1"));
    CHECK(in_zset(&f, "lst:lg:x:emp:E9", "DRV00009:00000000000000c1"));
    CHECK(!in_zset(&f, "lst:lg:xc:inbox:all", "DRV00009:00000000000000c1"));
    fx_stop(&f);
}

/* Handled: sticky for the first dispatcher, reset only by a later "unhandled"; the same set
 * of annotations in any order gives the same projections. */
static void handled_sequence(struct fx *f, const int *order, struct lst_buf *dump)
{
    struct {
        enum lst_annotation_kind k;
        const char *user;
        int64_t at;
    } seq[] = {
        {LST_ANNOTATION_HANDLED, "anna", T0 + 10},   {LST_ANNOTATION_HANDLED, "bob", T0 + 20},
        {LST_ANNOTATION_UNHANDLED, "carl", T0 + 30}, {LST_ANNOTATION_HANDLED, "dora", T0 + 40},
        {LST_ANNOTATION_CATEGORY, "anna", T0 + 15},  {LST_ANNOTATION_CATEGORY, "bob", T0 + 15}};
    const char *cats[] = {NULL, NULL, NULL, NULL, "alpha", "beta"};
    fx_flushall(f);
    for (int i = 0; i < 7; i++) {
        if (order[i] == 6) {
            message(f, MID, "dispo");
            continue;
        }
        int j = order[i];
        CHECK_EQ(annotate(f, MID, seq[j].k, cats[j], seq[j].user, seq[j].at), LEDGER_APPLIED);
    }
    lst_buf_reset(dump);
    ledger_dump(f->rc, dump, 1);
}

static void test_handled(void)
{
    struct fx f;
    REQUIRE(fx_start(&f));
    employee(&f, "E1", "Nord", "DRV00001");
    message(&f, MID, "dispo");
    CHECK_EQ(annotate(&f, MID, LST_ANNOTATION_HANDLED, NULL, "anna", T0 + 10), LEDGER_APPLIED);
    CHECK_STREQ(str(&f, "HGET lst:lg:m:%s %s", MID, "handled_by"), "anna");
    CHECK_EQ(annotate(&f, MID, LST_ANNOTATION_HANDLED, NULL, "bob", T0 + 20), LEDGER_APPLIED);
    CHECK_STREQ(str(&f, "HGET lst:lg:m:%s %s", MID, "handled_by"), "anna");
    CHECK_STREQ(str(&f, "HGET lst:lg:m:%s %s", MID, "handled_at"), "1700000000010");
    CHECK_EQ(annotate(&f, MID, LST_ANNOTATION_UNHANDLED, NULL, "carl", T0 + 30), LEDGER_APPLIED);
    CHECK_STREQ(str(&f, "HGET lst:lg:m:%s %s", MID, "handled_by"), "");
    /* an older "handled" arriving late does not take it back */
    CHECK_EQ(annotate(&f, MID, LST_ANNOTATION_HANDLED, NULL, "erik", T0 + 25), LEDGER_APPLIED);
    CHECK_STREQ(str(&f, "HGET lst:lg:m:%s %s", MID, "handled_by"), "");
    CHECK_EQ(annotate(&f, MID, LST_ANNOTATION_HANDLED, NULL, "dora", T0 + 40), LEDGER_APPLIED);
    CHECK_STREQ(str(&f, "HGET lst:lg:m:%s %s", MID, "handled_by"), "dora");

    /* order independence (the message itself is event 6), also for two category changes in
     * the same millisecond */
    const int orders[][7] = {{6, 0, 1, 2, 3, 4, 5},
                             {3, 2, 1, 0, 5, 4, 6},
                             {2, 6, 3, 5, 0, 4, 1},
                             {5, 4, 3, 2, 1, 0, 6},
                             {0, 3, 6, 1, 4, 2, 5}};
    struct lst_buf first, other;
    lst_buf_init(&first);
    lst_buf_init(&other);
    employee(&f, "E1", "Nord", "DRV00001");
    handled_sequence(&f, orders[0], &first);
    CHECK(strstr(first.data, "handled_by=dora") != NULL);
    CHECK(strstr(first.data, "lst:lg:xc:beta:all") != NULL);
    for (size_t i = 1; i < LST_ARRAY_LEN(orders); i++) {
        handled_sequence(&f, orders[i], &other);
        CHECK_STREQ(first.data, other.data);
    }
    lst_buf_cleanup(&first);
    lst_buf_cleanup(&other);
    fx_stop(&f);
}

static int view_rec(struct fx *f, enum lst_view_kind kind, const char *owner, bool shared,
                    const char *name, int64_t at)
{
    struct lst_view v = {0};
    v.view_id = lst_strdup(MID);
    v.kind = kind;
    v.owner = lst_strdup(owner);
    v.department = lst_strdup("Dispo-Nord");
    if (kind == LST_VIEW_PUT) {
        v.name = lst_strdup(name);
        v.shared = shared;
        v.filter.department = lst_strdup("Nord");
        lst_strv_push(&v.hidden, "werkstatt");
    }
    v.at = at;
    lst_err err = lst_view_encode(&v, &f->rec);
    lst_view_cleanup(&v);
    return err == LST_OK ? feed(f, LEDGER_T_VIEWS) : -1;
}

static void test_views(void)
{
    struct fx f;
    REQUIRE(fx_start(&f));
    CHECK_EQ(view_rec(&f, LST_VIEW_PUT, "anna", true, "Nord", T0), LEDGER_APPLIED);
    CHECK_STREQ(str(&f, "HGET lst:lg:view:%s %s", MID, "name"), "Nord");
    CHECK_STREQ(str(&f, "HGET lst:lg:view:%s %s", MID, "filter"), "{\"department\":\"Nord\"}");
    CHECK_STREQ(str(&f, "HGET lst:lg:view:%s %s", MID, "hidden"), "[\"werkstatt\"]");
    CHECK_STREQ(str(&f, "SISMEMBER lst:lg:views:u:anna %s", MID, NULL), "1");
    CHECK_STREQ(str(&f, "SISMEMBER lst:lg:views:d:Dispo-Nord %s", MID, NULL), "1");
    /* someone else cannot take it over */
    CHECK_EQ(view_rec(&f, LST_VIEW_PUT, "mallory", true, "Mine", T0 + 5), LEDGER_APPLIED);
    CHECK_STREQ(str(&f, "HGET lst:lg:view:%s %s", MID, "name"), "Nord");
    /* unshared: gone from the department */
    CHECK_EQ(view_rec(&f, LST_VIEW_PUT, "anna", false, "Nord 2", T0 + 10), LEDGER_APPLIED);
    CHECK_STREQ(str(&f, "HGET lst:lg:view:%s %s", MID, "name"), "Nord 2");
    CHECK_STREQ(str(&f, "SISMEMBER lst:lg:views:d:Dispo-Nord %s", MID, NULL), "0");
    CHECK_EQ(view_rec(&f, LST_VIEW_DELETE, "anna", false, NULL, T0 + 20), LEDGER_APPLIED);
    CHECK_STREQ(str(&f, "HGET lst:lg:view:%s %s", MID, "deleted"), "1");
    CHECK_STREQ(str(&f, "SISMEMBER lst:lg:views:u:anna %s", MID, NULL), "0");
    /* an older put cannot bring it back */
    CHECK_EQ(view_rec(&f, LST_VIEW_PUT, "anna", true, "Nord", T0 + 15), LEDGER_APPLIED);
    CHECK_STREQ(str(&f, "HGET lst:lg:view:%s %s", MID, "deleted"), "1");
    fx_stop(&f);
}

/* The change stream: new items, status changes and annotations, in order. */
static void test_change_stream(void)
{
    struct fx f;
    REQUIRE(fx_start(&f));
    employee(&f, "E1", "Nord", "DRV00001");
    message(&f, MID, "dispo");
    lrec_sent(&f.rec, MID, "E1", "00000000000000aa", NULL, false, T0 + 20);
    CHECK_EQ(feed(&f, LEDGER_T_SENT), LEDGER_APPLIED);
    CHECK_EQ(annotate(&f, MID, LST_ANNOTATION_HANDLED, NULL, "anna", T0 + 10), LEDGER_APPLIED);
    /* applied again (same offset): nothing new in the stream */
    f.next[LEDGER_T_ANNOTATIONS]--;
    CHECK_EQ(annotate(&f, MID, LST_ANNOTATION_HANDLED, NULL, "anna", T0 + 10), LEDGER_APPLIED);
    redisReply *r = redisCommand(f.rc, "XRANGE lst:lg:ev - +");
    REQUIRE(r != NULL && r->type == REDIS_REPLY_ARRAY);
    CHECK_EQ(r->elements, 3);
    const char *want[][2] = {{"message", NULL}, {"status", "sent"}, {"annotation", NULL}};
    for (size_t i = 0; i < r->elements && i < 3; i++) {
        const redisReply *fields = r->element[i]->element[1];
        CHECK_STREQ(fields->element[1]->str, want[i][0]);
        CHECK_STREQ(fields->element[3]->str, MID);
        if (want[i][1] != NULL)
            CHECK_STREQ(fields->element[7]->str, want[i][1]);
    }
    freeReplyObject(r);
    fx_stop(&f);
}

/* Every filter parameter of the record reaches the projection, tag and depot included, in
 * the codec's order; a record written before tag and depot existed still applies. */
static void test_view_filter_params(void)
{
    struct fx f;
    struct lst_view v = {0};
    REQUIRE(fx_start(&f));
    v.view_id = lst_strdup(MID2);
    v.kind = LST_VIEW_PUT;
    v.owner = lst_strdup("bernd");
    v.name = lst_strdup("Kiel ohne Dispo");
    v.filter.department = lst_strdup("Kühllogistik");
    v.filter.tag = lst_strdup("shift:Frühschicht");
    v.filter.depot = lst_strdup("Kiel-Wellsee");
    v.filter.q = lst_strdup("\"Kühl\"");
    lst_strv_push(&v.hidden, "dispo");
    v.at = T0;
    REQUIRE(lst_view_encode(&v, &f.rec) == LST_OK);
    lst_view_cleanup(&v);
    CHECK_EQ(feed(&f, LEDGER_T_VIEWS), LEDGER_APPLIED);
    CHECK_STREQ(str(&f, "HGET lst:lg:view:%s %s", MID2, "filter"),
                "{\"department\":\"Kühllogistik\",\"tag\":\"shift:Frühschicht\","
                "\"depot\":\"Kiel-Wellsee\",\"q\":\"\\\"Kühl\\\"\"}");
    /* the same view as an old writer wrote it: no tag, no depot */
    lst_buf_reset(&f.rec);
    lst_buf_puts(&f.rec, "{\"v\":1,\"view_id\":\"" MID2 "\",\"kind\":\"put\",\"owner\":\"bernd\","
                         "\"name\":\"alt\",\"shared\":false,\"filter\":{\"department\":\"Nord\"},"
                         "\"at\":1700000009999}");
    CHECK_EQ(feed(&f, LEDGER_T_VIEWS), LEDGER_APPLIED);
    CHECK_STREQ(str(&f, "HGET lst:lg:view:%s %s", MID2, "name"), "alt");
    CHECK_STREQ(str(&f, "HGET lst:lg:view:%s %s", MID2, "filter"), "{\"department\":\"Nord\"}");
    CHECK_STREQ(str(&f, "HGET lst:lg:view:%s %s", MID2, "hidden"), "[]");
    fx_stop(&f);
}

LST_TEST_MAIN(T(test_category_change), T(test_handled), T(test_views), T(test_view_filter_params),
              T(test_change_stream))
