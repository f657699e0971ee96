/* The view-api benchmark's loader is faithful: the same generated messages (the first 40
 * employees of the demo directory, 80 messages) applied once through the ledger core (the
 * real decode, script arguments and Lua scripts, as the service applies Kafka records) and
 * once by the loader (direct pipelined writes) give identical projections, compared as the
 * ledger's canonical dump of every lst:lg:* key, without the change stream `ev` and the
 * watermarks, which the loader does not write. Needs redis-server (tests/redis_fixture.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "ledger.h"
#include "lst_test.h"
#include "redis_fixture.h"
#include "unit/test_ledger_dump.h"
#include "vgen.h"
#include "vledger.h"
#include "vload.h"

#define MESSAGES 80
#define RRN      5

struct fx {
    struct redis_fixture rf;
    struct lst_redis *redis;
    redisContext *rc;
    struct ledger_config cfg;
    struct ledger_core core;
    struct vb_dir dir;
    char prefix[1];
};

static bool fx_start(struct fx *f)
{
    char path[512];
    const char *src = getenv("LST_SOURCE_DIR");
    memset(f, 0, sizeof(*f));
    (void)redis_fixture_restart; /* the fixture's helper this test does not need */
    snprintf(path, sizeof(path), "%s/demo/erp-export.csv", src ? src : ".");
    if (vb_dir_load(path, 40, &f->dir) != LST_OK || !redis_fixture_start(&f->rf, NULL))
        return false;
    struct lst_redis_config rc = {.port = f->rf.port, .timeout_ms = 10000};
    if (lst_redis_create(&rc, &f->redis) != LST_OK)
        return false;
    f->cfg.common.topic_prefix = f->prefix;
    f->cfg.read_receipts = RRN;
    f->cfg.reply_window = 3600000;
    f->cfg.batch = 500;
    f->cfg.script_events = 32;
    if (ledger_core_init(&f->core, &f->cfg, f->redis, NULL, NULL) != LST_OK)
        return false;
    f->rc = redisConnect("127.0.0.1", f->rf.port);
    return f->rc != NULL && f->rc->err == 0;
}

static void fx_stop(struct fx *f)
{
    ledger_core_cleanup(&f->core);
    if (f->rc != NULL)
        redisFree(f->rc);
    lst_redis_destroy(f->redis);
    redis_fixture_stop(&f->rf);
    vb_dir_cleanup(&f->dir);
}

static void command(struct fx *f, const char *cmd)
{
    redisReply *r = redisCommand(f->rc, cmd);
    if (r != NULL)
        freeReplyObject(r);
}

/* The directory through the ledger, on an empty database. */
static void fresh(struct fx *f, struct vb_feed *feed)
{
    command(f, "FLUSHALL");
    ledger_core_forget(&f->core);
    vb_feed_init(feed, &f->core);
    CHECK_EQ(vb_feed_directory(feed, &f->dir, VB_T0 - 1000), LST_OK);
}

static long dump(struct fx *f, struct lst_buf *out)
{
    command(f, "DEL lst:lg:ev");
    return ledger_dump(f->rc, out, 1);
}

static bool key_exists(struct fx *f, const char *pattern)
{
    redisReply *r = redisCommand(f->rc, "KEYS %s", pattern);
    bool any = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0;
    if (r != NULL)
        freeReplyObject(r);
    return any;
}

/* Item hashes without a version (m:<id>.v, which the dump leaves out: it depends on the
 * order of writes); the view API's row cache needs it on every one. */
static long long unversioned(struct fx *f)
{
    redisReply *r = redisCommand(f->rc, "EVAL %s 0",
                                 "local n = 0 for _, k in ipairs(redis.call('KEYS', "
                                 "'lst:lg:m:*')) do if redis.call('HEXISTS', k, 'v') == 0 then "
                                 "n = n + 1 end end return n");
    long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r != NULL)
        freeReplyObject(r);
    return n;
}

/* Prints the first lines that differ. */
static void show_diff(const char *a, const char *b)
{
    int shown = 0;
    while (*a != '\0' && *b != '\0' && shown < 6) {
        size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
        if (la != lb || memcmp(a, b, la) != 0) {
            fprintf(stderr, "ledger: %.*s\nloader: %.*s\n", (int)(la > 400 ? 400 : la), a,
                    (int)(lb > 400 ? 400 : lb), b);
            shown++;
        }
        a += la + (a[la] != '\0');
        b += lb + (b[lb] != '\0');
    }
}

static void test_loader_matches_ledger(void)
{
    struct fx f;
    struct vb_feed feed;
    struct vb_msg m;
    struct lst_buf ledger, loader;
    struct vb_loader *l = NULL;
    lst_buf_init(&ledger);
    lst_buf_init(&loader);
    REQUIRE(fx_start(&f));

    fresh(&f, &feed);
    for (uint64_t i = 0; i < MESSAGES; i++) {
        vb_msg_make(&f.dir, i, &m);
        CHECK_EQ(vb_feed_message(&feed, &f.dir, &m), LST_OK);
    }
    CHECK_EQ(vb_feed_flush(&feed), LST_OK);
    vb_feed_cleanup(&feed);
    /* the scenario exercises what the loader computes on its own */
    CHECK(key_exists(&f, "lst:lg:rroff"));
    CHECK(key_exists(&f, "lst:lg:x:st:failed"));
    CHECK(key_exists(&f, "lst:lg:x:st:unread"));
    CHECK(key_exists(&f, "lst:lg:xc:*:dep:*"));
    /* the tag indexes, once the ledger writes them (docs/ledger.md) */
    bool tags = key_exists(&f, "lst:lg:x:tag:*");
    long n_ledger = dump(&f, &ledger);
    CHECK_EQ(unversioned(&f), 0);

    fresh(&f, &feed);
    vb_feed_cleanup(&feed);
    REQUIRE(vb_loader_create(f.rc, &f.dir, RRN, tags, &l) == LST_OK);
    for (uint64_t i = 0; i < MESSAGES; i++) {
        vb_msg_make(&f.dir, i, &m);
        CHECK_EQ(vb_loader_add(l, &m), LST_OK);
    }
    CHECK_EQ(vb_loader_finish(l), LST_OK);
    vb_loader_destroy(l);
    long n_loader = dump(&f, &loader);
    CHECK_EQ(unversioned(&f), 0);

    fprintf(stderr, "keys: ledger %ld, loader %ld (tag indexes: %s)\n", n_ledger, n_loader,
            tags ? "yes" : "no");
    CHECK(n_ledger > 500);
    CHECK_EQ(n_ledger, n_loader);
    if (strcmp(ledger.data, loader.data) != 0)
        show_diff(ledger.data, loader.data);
    CHECK(strcmp(ledger.data, loader.data) == 0);
    lst_buf_cleanup(&ledger);
    lst_buf_cleanup(&loader);
    fx_stop(&f);
}

LST_TEST_MAIN(T(test_loader_matches_ledger))
