/* Service tier of the refill gate (services/view-api/refill.c, docs/view-api.md "While the
 * ledger refills"): the view-api in-process against its own redis-server; the ledger's refill
 * hash (lst:lg:refill) is written the way services/ledger/refill.c writes it.
 *
 *  - no hash (no ledger of this version ran): served
 *  - "run" = this server's run_id, no partition field: served
 *  - a partition field: every route but /api/me answers 503 projections-refilling with
 *    Retry-After; the live stream sends nothing meanwhile and "event: reset" afterwards
 *  - "run" naming another server (Redis restarted, not checked yet): 503
 *  - the hash gone after it was seen (Redis lost everything): 503 until a ledger checks */

#include "view_api_common.h"

#define M1 "01REFILL000000000000000001"

static struct harness H;
static char run_id[64];

static void read_run_id(void)
{
    redisReply *r = redisCommand(H.rc, "INFO server");
    const char *p = r != NULL && r->type == REDIS_REPLY_STRING ? strstr(r->str, "run_id:") : NULL;
    if (p != NULL)
        snprintf(run_id, sizeof(run_id), "%.*s", (int)strcspn(p + 7, "\r\n"), p + 7);
    if (r != NULL)
        freeReplyObject(r);
}

static void seed(void)
{
    seed_employee(&H, "e1", "Eva", "Nord", "V1", "[]", NULL, true, "AAAAAAA1");
    rcmd(&H, "HSET lst:lg:m:" M1 " dir out id " M1 " at 1000 msg 1 cat dispo kind text text hello "
             "disp anna dep Nord n 1 s:read 1 audience 1");
    rcmd(&H, "HSET lst:lg:r:" M1 " e1 %s", "{\"st\":\"read\",\"q\":10,\"s\":20,\"d\":30,\"r\":40}");
    seed_ix(&H, M1, 1000, "dispo", "all");
    seed_ix(&H, M1, 1000, "dispo", "dir:out");
    seed_ix(&H, M1, 1000, "dispo", "emp:e1");
}

/* Polls path until it answers want (the verdict is cached for up to 100 ms). */
static bool wait_status(const char *path, long want, struct http_result *r)
{
    int64_t until = lst_mono_ms() + 3000;
    while (true) {
        long got = get(&H, path, TOKEN_DISPATCHER, r);
        if (got == want || lst_mono_ms() >= until)
            return got == want;
        http_result_cleanup(r);
        lst_sleep_ms(20, NULL);
    }
}

static void check_refilling(const char *path)
{
    struct http_result r;
    CHECK(wait_status(path, 503, &r));
    CHECK_STREQ(S(jstr(r.json, "type")), "urn:leitstand:problem:projections-refilling");
    CHECK(has_header(&r, "Retry-After: 1"));
    CHECK(has_header(&r, "Content-Type: application/problem+json"));
    http_result_cleanup(&r);
}

static void check_served(const char *path)
{
    struct http_result r;
    CHECK(wait_status(path, 200, &r));
    http_result_cleanup(&r);
}

static const char *const READS[] = {
    "/api/timeline",     "/api/messages/" M1,         "/api/employees",
    "/api/employees/e1", "/api/employees/e1/history", "/api/views"};

static void test_no_hash_is_served(void)
{
    for (size_t i = 0; i < LST_ARRAY_LEN(READS); i++)
        check_served(READS[i]);
}

static void test_marker_answers_503(void)
{
    struct http_result r;
    rcmd(&H, "HSET lst:lg:refill run %s", run_id);
    check_served("/api/timeline");
    rcmd(&H, "HSET lst:lg:refill lst.message:3 4711");
    for (size_t i = 0; i < LST_ARRAY_LEN(READS); i++)
        check_refilling(READS[i]);
    CHECK_EQ(get(&H, "/api/stream", TOKEN_DISPATCHER, &r), 503);
    CHECK_STREQ(S(jstr(r.json, "type")), "urn:leitstand:problem:projections-refilling");
    http_result_cleanup(&r);
    /* who am I needs no projection; auth still comes first */
    CHECK_EQ(get(&H, "/api/me", TOKEN_DISPATCHER, &r), 200);
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/timeline", NULL, &r), 401);
    http_result_cleanup(&r);
    CHECK_EQ(post_json(&H, "/api/messages", TOKEN_DISPATCHER, "{}", NULL, &r), 503);
    http_result_cleanup(&r);
    rcmd(&H, "HDEL lst:lg:refill lst.message:3");
    for (size_t i = 0; i < LST_ARRAY_LEN(READS); i++)
        check_served(READS[i]);
}

static void test_unchecked_restart_answers_503(void)
{
    rcmd(&H, "HSET lst:lg:refill run 0000000000000000000000000000000000000000");
    check_refilling("/api/timeline");
    rcmd(&H, "HSET lst:lg:refill run %s", run_id);
    check_served("/api/timeline");
    /* the hash gone after it was seen: Redis lost everything, no ledger checked it yet */
    rcmd(&H, "DEL lst:lg:refill");
    check_refilling("/api/messages/" M1);
    rcmd(&H, "HSET lst:lg:refill run %s", run_id);
    check_served("/api/messages/" M1);
}

/* ---- the live stream (the SSE client of view_api_common.h) ---- */

static void test_stream_pauses(void)
{
    struct sse s;
    REQUIRE(sse_open(&H, &s, "/api/stream", NULL));
    REQUIRE(sse_wait(&s, ": connected\n\n", 3000));
    rcmd(&H, "XADD lst:lg:ev * t status id " M1 " eid e1 st read");
    CHECK(sse_wait(&s, "\"state\":\"read\"", 3000));
    rcmd(&H, "HSET lst:lg:refill lst.sent:0 99");
    lst_sleep_ms(300, NULL); /* longer than the verdict's cache and one stream round */
    /* what a refill re-emits: an older state of the same recipient */
    rcmd(&H, "XADD lst:lg:ev * t status id " M1 " eid e1 st delivered");
    CHECK(!sse_wait(&s, "\"state\":\"delivered\"", 800));
    rcmd(&H, "HDEL lst:lg:refill lst.sent:0");
    CHECK(sse_wait(&s, "event: reset", 3000));
    CHECK(strstr(S(s.b.data), "\"state\":\"delivered\"") == NULL);
    /* live again after the reset */
    rcmd(&H, "XADD lst:lg:ev * t status id " M1 " eid e1 st acknowledged");
    CHECK(sse_wait(&s, "\"state\":\"acknowledged\"", 3000));
    sse_close(&s);
}

static void test_all(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!harness_start(&H, NULL, NULL, "LST_VIEW_STREAM_HEARTBEAT_MS", "300",
                       "LST_VIEW_STREAM_BLOCK_MS", "200", NULL)) {
        fprintf(stderr, "harness did not start\n");
        exit(1);
    }
    read_run_id();
    REQUIRE(run_id[0] != '\0');
    seed();
    test_no_hash_is_served();
    test_marker_answers_503();
    test_unchecked_restart_answers_503();
    test_stream_pauses();
    harness_stop(&H);
    curl_global_cleanup();
}

LST_TEST_MAIN(T(test_all))
