/* lst/redis against a real redis-server started by the test (tests/redis_fixture.h). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "lst/log.h"
#include "lst/redis.h"
#include "lst_test.h"
#include "redis_fixture.h"

static void setup(void)
{
    /* hiredis writes with write(2): a reset connection must not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    lst_log_init("test_redis", LST_LOG_WARN);
}

static struct lst_redis *make(const struct redis_fixture *f, int db, const char *password,
                              int timeout_ms, int attempts)
{
    struct lst_redis_config cfg = {
        .host = "127.0.0.1",
        .port = f->port,
        .db = db,
        .password = password,
        .timeout_ms = timeout_ms,
        .reconnect_attempts = attempts,
        .reconnect_backoff_ms = 50,
    };
    struct lst_redis *r = NULL;
    if (lst_redis_create(&cfg, &r) != LST_OK)
        return NULL;
    return r;
}

/* GET key into out ("" for nil); false on any failure. */
static bool get_str(struct lst_redis *r, const char *key, char *out, size_t cap)
{
    redisReply *reply = NULL;
    const char *argv[] = {"GET", key};
    bool ok = lst_redis_cmd(r, &reply, 2, argv, NULL) == LST_OK;
    out[0] = '\0';
    if (ok && reply->type == REDIS_REPLY_STRING)
        snprintf(out, cap, "%s", reply->str);
    else if (ok && reply->type != REDIS_REPLY_NIL)
        ok = false;
    if (reply != NULL)
        freeReplyObject(reply);
    return ok;
}

static void test_idempotency_allow_list(void)
{
    CHECK(lst_redis_cmd_is_idempotent("SET"));
    CHECK(lst_redis_cmd_is_idempotent("hset"));
    CHECK(lst_redis_cmd_is_idempotent("ZADD"));
    CHECK(lst_redis_cmd_is_idempotent("Expire"));
    CHECK(lst_redis_cmd_is_idempotent("SMEMBERS"));
    CHECK(!lst_redis_cmd_is_idempotent("INCR"));
    CHECK(!lst_redis_cmd_is_idempotent("INCRBY"));
    CHECK(!lst_redis_cmd_is_idempotent("HINCRBY"));
    CHECK(!lst_redis_cmd_is_idempotent("LPUSH"));
    CHECK(!lst_redis_cmd_is_idempotent("RPUSH"));
    CHECK(!lst_redis_cmd_is_idempotent("APPEND"));
    CHECK(!lst_redis_cmd_is_idempotent("EVAL"));
    CHECK(!lst_redis_cmd_is_idempotent("EVALSHA"));
    CHECK(!lst_redis_cmd_is_idempotent("FLUSHALL"));
    CHECK(!lst_redis_cmd_is_idempotent(""));
    CHECK(!lst_redis_cmd_is_idempotent(NULL));
}

static void check_sha(const char *text, const char *want)
{
    struct lst_redis_script *s = NULL;
    REQUIRE(lst_redis_script_create(text, true, &s) == LST_OK);
    CHECK_STREQ(lst_redis_script_sha(s), want);
    lst_redis_script_destroy(s);
}

static void test_script_sha1_vectors(void)
{
    /* FIPS 180 examples, including the two-block padding case */
    check_sha("", "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    check_sha("abc", "a9993e364706816aba3e25717850c26c9cd0d89d");
    check_sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
              "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

static void test_create_validates_and_destroy_null(void)
{
    struct lst_redis_config bad = {.host = "127.0.0.1", .port = 0, .timeout_ms = 100};
    struct lst_redis *r = (struct lst_redis *)&bad; /* must be overwritten with NULL */
    CHECK_EQ(lst_redis_create(&bad, &r), LST_ERR_CONFIG);
    CHECK(r == NULL);
    bad.port = 6379;
    bad.timeout_ms = 0;
    CHECK_EQ(lst_redis_create(&bad, &r), LST_ERR_CONFIG);
    lst_redis_destroy(NULL);
    lst_redis_pipe_destroy(NULL);
    lst_redis_script_destroy(NULL);
}

static void test_connect_refused_is_bounded(void)
{
    setup();
    /* Port 1 on loopback: nothing listens, connect is refused at once. */
    struct redis_fixture f = {.port = 1};
    struct lst_redis *r = make(&f, 0, NULL, 200, 2);
    REQUIRE(r != NULL);
    int64_t t0 = lst_mono_ms();
    CHECK_EQ(lst_redis_connect(r), LST_ERR_REDIS);
    CHECK_EQ(lst_redis_ping(r), LST_ERR_REDIS);
    CHECK(lst_mono_ms() - t0 < 2000);
    char msg[128];
    lst_redis_last_error(r, msg, sizeof(msg));
    CHECK(msg[0] != '\0');
    lst_redis_destroy(r);
}

static void test_basic_commands(void)
{
    setup();
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    struct lst_redis *r = make(&f, 2, NULL, 1000, 3);
    REQUIRE(r != NULL);
    CHECK_EQ(lst_redis_connect(r), LST_OK);
    CHECK_EQ(lst_redis_ping(r), LST_OK);

    /* argv style, binary-safe */
    const char *set[] = {"SET", "bin", "a\0b"};
    size_t setlen[] = {3, 3, 3};
    CHECK_EQ(lst_redis_cmd(r, NULL, 3, set, setlen), LST_OK);
    redisReply *reply = NULL;
    CHECK_EQ(lst_redis_cmdf(r, &reply, "GET %s", "bin"), LST_OK);
    REQUIRE(reply != NULL);
    CHECK_EQ(reply->type, REDIS_REPLY_STRING);
    CHECK_EQ(reply->len, 3);
    CHECK(memcmp(reply->str, "a\0b", 3) == 0);
    freeReplyObject(reply);

    /* printf style with %b and an integer reply */
    CHECK_EQ(lst_redis_cmdf(r, &reply, "HSET h %b %s", "f1", (size_t)2, "v1"), LST_OK);
    REQUIRE(reply != NULL);
    CHECK_EQ(reply->type, REDIS_REPLY_INTEGER);
    CHECK_EQ(reply->integer, 1);
    freeReplyObject(reply);

    /* the database was SELECTed: db 0 does not see the key */
    CHECK_EQ(lst_redis_cmdf(r, &reply, "CLIENT INFO"), LST_OK);
    REQUIRE(reply != NULL && reply->str != NULL);
    CHECK(strstr(reply->str, " db=2 ") != NULL);
    freeReplyObject(reply);

    /* an error reply: LST_ERR_INVALID with the reply and the message */
    CHECK_EQ(lst_redis_cmdf(r, &reply, "INCR h"), LST_ERR_INVALID);
    REQUIRE(reply != NULL);
    CHECK_EQ(reply->type, REDIS_REPLY_ERROR);
    CHECK(strncmp(reply->str, "WRONGTYPE", 9) == 0);
    freeReplyObject(reply);
    char msg[160];
    lst_redis_last_error(r, msg, sizeof(msg));
    CHECK(strncmp(msg, "WRONGTYPE", 9) == 0);

    CHECK_EQ(lst_redis_cmd(r, &reply, 0, NULL, NULL), LST_ERR_INVALID);
    CHECK(reply == NULL);
    CHECK_EQ(lst_redis_connect_count(r), 1);
    lst_redis_destroy(r);
    redis_fixture_stop(&f);
}

static void test_restart_then_next_command_succeeds(void)
{
    setup();
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    struct lst_redis *r = make(&f, 1, NULL, 1000, 10);
    REQUIRE(r != NULL);
    char v[32];
    CHECK_EQ(lst_redis_cmdf(r, NULL, "SET k before"), LST_OK);
    CHECK(get_str(r, "k", v, sizeof(v)));
    CHECK_STREQ(v, "before");

    REQUIRE(redis_fixture_restart(&f));
    /* The new server is empty (no persistence): nil, on a fresh connection. */
    CHECK(get_str(r, "k", v, sizeof(v)));
    CHECK_STREQ(v, "");
    CHECK_EQ(lst_redis_connect_count(r), 2);

    /* Even a non-idempotent command succeeds when the dead connection is noticed before
     * sending. */
    REQUIRE(redis_fixture_restart(&f));
    redisReply *reply = NULL;
    CHECK_EQ(lst_redis_cmdf(r, &reply, "INCR n"), LST_OK);
    REQUIRE(reply != NULL);
    CHECK_EQ(reply->integer, 1);
    freeReplyObject(reply);
    CHECK_EQ(lst_redis_connect_count(r), 3);
    lst_redis_destroy(r);
    redis_fixture_stop(&f);
}

/* ---- commands in flight while the server dies ---- */

struct inflight {
    struct lst_redis *r;
    struct lst_redis_pipe *pipe; /* pipeline mode when set */
    const char *cmd;             /* single-command mode */
    atomic_int started;
    lst_err err;
};

static void *inflight_main(void *arg)
{
    struct inflight *in = arg;
    atomic_store(&in->started, 1);
    if (in->pipe != NULL)
        in->err = lst_redis_pipe_exec(in->r, in->pipe);
    else
        in->err = lst_redis_cmdf(in->r, NULL, in->cmd);
    return NULL;
}

/* Stops the server, starts the command in a thread (it is written but never answered), then
 * kills the server and starts a new one on the same port: the command's connection is reset
 * after it was sent, the situation in which only idempotent work may be replayed. */
static lst_err run_across_crash(struct redis_fixture *f, struct inflight *in)
{
    pthread_t t;
    kill(f->pid, SIGSTOP);
    atomic_store(&in->started, 0);
    if (pthread_create(&t, NULL, inflight_main, in) != 0)
        return LST_ERR_STATE;
    int64_t deadline = lst_mono_ms() + 2000;
    while (!atomic_load(&in->started) && lst_mono_ms() < deadline)
        lst_sleep_ms(5, NULL);
    /* The thread cannot tell us when write(2) returned; writing a few bytes to loopback takes
     * microseconds, 200 ms is ample. */
    lst_sleep_ms(200, NULL);
    bool restarted = redis_fixture_restart(f);
    pthread_join(t, NULL);
    return restarted ? in->err : LST_ERR_STATE;
}

static void test_inflight_idempotent_retried_others_not(void)
{
    setup();
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    struct lst_redis *r = make(&f, 0, NULL, 3000, 10);
    REQUIRE(r != NULL);
    CHECK_EQ(lst_redis_ping(r), LST_OK);

    struct inflight in = {.r = r, .cmd = "SET after crash"};
    CHECK_EQ(run_across_crash(&f, &in), LST_OK); /* replayed on the new server */
    char v[32];
    CHECK(get_str(r, "after", v, sizeof(v)));
    CHECK_STREQ(v, "crash");
    CHECK_EQ(lst_redis_connect_count(r), 2);

    struct inflight incr = {.r = r, .cmd = "INCR counter"};
    CHECK_EQ(run_across_crash(&f, &incr), LST_ERR_REDIS); /* outcome unknown: not replayed */
    CHECK(get_str(r, "counter", v, sizeof(v)));
    CHECK_STREQ(v, "");
    CHECK_EQ(lst_redis_ping(r), LST_OK); /* and the next command works */
    lst_redis_destroy(r);
    redis_fixture_stop(&f);
}

static void test_pipeline_replayed_after_reconnect(void)
{
    setup();
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    struct lst_redis *r = make(&f, 3, NULL, 3000, 10);
    struct lst_redis_pipe *p = NULL;
    REQUIRE(r != NULL);
    REQUIRE(lst_redis_pipe_create(&p) == LST_OK);
    CHECK_EQ(lst_redis_ping(r), LST_OK);

    const char *hset[] = {"HSET", "msg:1", "state", "sent"};
    CHECK_EQ(lst_redis_pipe_addf(p, "SET %s %s", "a", "1"), LST_OK);
    CHECK_EQ(lst_redis_pipe_add(p, 4, hset, NULL), LST_OK);
    CHECK_EQ(lst_redis_pipe_addf(p, "SADD s m1 m2"), LST_OK);
    CHECK_EQ(lst_redis_pipe_addf(p, "ZADD z 5 x"), LST_OK);
    CHECK_EQ(lst_redis_pipe_addf(p, "GET a"), LST_OK);
    CHECK_EQ(lst_redis_pipe_len(p), 5);

    struct inflight in = {.r = r, .pipe = p};
    CHECK_EQ(run_across_crash(&f, &in), LST_OK);
    const redisReply *rep = lst_redis_pipe_reply(p, 4);
    REQUIRE(rep != NULL);
    CHECK_EQ(rep->type, REDIS_REPLY_STRING);
    CHECK_STREQ(rep->str, "1");
    CHECK(lst_redis_pipe_reply(p, 5) == NULL);
    CHECK_EQ(lst_redis_connect_count(r), 2);

    /* the whole batch is on the new server, in the configured database */
    redisReply *reply = NULL;
    CHECK_EQ(lst_redis_cmdf(r, &reply, "HGET msg:1 state"), LST_OK);
    CHECK(reply != NULL && reply->str != NULL && strcmp(reply->str, "sent") == 0);
    freeReplyObject(reply);
    CHECK_EQ(lst_redis_cmdf(r, &reply, "SCARD s"), LST_OK);
    CHECK(reply != NULL && reply->integer == 2);
    freeReplyObject(reply);

    /* error replies inside a pipeline: all replies kept, LST_ERR_INVALID */
    lst_redis_pipe_reset(p);
    CHECK_EQ(lst_redis_pipe_addf(p, "GET msg:1"), LST_OK); /* WRONGTYPE */
    CHECK_EQ(lst_redis_pipe_addf(p, "GET a"), LST_OK);
    CHECK_EQ(lst_redis_pipe_exec(r, p), LST_ERR_INVALID);
    CHECK_EQ(lst_redis_pipe_reply(p, 0)->type, REDIS_REPLY_ERROR);
    CHECK_STREQ(lst_redis_pipe_reply(p, 1)->str, "1");

    lst_redis_pipe_destroy(p);
    lst_redis_destroy(r);
    redis_fixture_stop(&f);
}

/* ---- a pipeline sent now and read later ---- */

struct waiter {
    struct lst_redis *r;
    atomic_int started;
    atomic_int done;
    lst_err err;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    atomic_store(&w->started, 1);
    w->err = lst_redis_cmdf(w->r, NULL, "SET other side");
    atomic_store(&w->done, 1);
    return NULL;
}

static void test_pipeline_send_then_recv(void)
{
    setup();
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    struct lst_redis *r = make(&f, 0, NULL, 3000, 10);
    struct lst_redis_pipe *p = NULL;
    REQUIRE(r != NULL);
    REQUIRE(lst_redis_pipe_create(&p) == LST_OK);

    /* While the replies are due, another thread's command waits for them (its reply would
     * otherwise be read as the pipeline's), then runs. */
    CHECK_EQ(lst_redis_pipe_addf(p, "SET a 1"), LST_OK);
    CHECK_EQ(lst_redis_pipe_addf(p, "GET a"), LST_OK);
    lst_redis_pipe_send(r, p);
    CHECK(lst_redis_pipe_reply(p, 1) == NULL);
    struct waiter w = {.r = r};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, waiter_main, &w) == 0);
    while (!atomic_load(&w.started))
        lst_sleep_ms(1, NULL);
    lst_sleep_ms(100, NULL);
    CHECK_EQ(atomic_load(&w.done), 0);
    CHECK_EQ(lst_redis_pipe_recv(r, p), LST_OK);
    pthread_join(t, NULL);
    CHECK_EQ(w.err, LST_OK);
    REQUIRE(lst_redis_pipe_reply(p, 1) != NULL);
    CHECK_STREQ(lst_redis_pipe_reply(p, 1)->str, "1");
    char v[32];
    CHECK(get_str(r, "other", v, sizeof(v)));
    CHECK_STREQ(v, "side");

    /* The server restarts between send and recv: recv runs the batch again on the new one. */
    lst_redis_pipe_reset(p);
    CHECK_EQ(lst_redis_pipe_addf(p, "SET b 2"), LST_OK);
    CHECK_EQ(lst_redis_pipe_addf(p, "GET b"), LST_OK);
    unsigned long conns = lst_redis_connect_count(r);
    kill(f.pid, SIGSTOP);
    lst_redis_pipe_send(r, p);
    REQUIRE(redis_fixture_restart(&f));
    CHECK_EQ(lst_redis_pipe_recv(r, p), LST_OK);
    REQUIRE(lst_redis_pipe_reply(p, 1) != NULL);
    CHECK_STREQ(lst_redis_pipe_reply(p, 1)->str, "2");
    CHECK_EQ(lst_redis_connect_count(r), conns + 1);

    /* Nothing to send: recv has nothing to read. No server: send fails quietly, recv says so. */
    lst_redis_pipe_reset(p);
    lst_redis_pipe_send(r, p);
    CHECK_EQ(lst_redis_pipe_recv(r, p), LST_OK);
    CHECK_EQ(lst_redis_pipe_addf(p, "GET b"), LST_OK);
    redis_fixture_stop(&f);
    lst_log_set_level(LST_LOG_ERROR);
    lst_redis_pipe_send(r, p);
    CHECK_EQ(lst_redis_pipe_recv(r, p), LST_ERR_REDIS);
    lst_log_set_level(LST_LOG_WARN);
    CHECK(lst_redis_pipe_reply(p, 0) == NULL);

    lst_redis_pipe_destroy(p);
    lst_redis_destroy(r);
}

static void test_pipeline_refuses_non_idempotent(void)
{
    struct lst_redis_pipe *p = NULL;
    struct lst_redis_script *inc = NULL, *setter = NULL;
    REQUIRE(lst_redis_pipe_create(&p) == LST_OK);
    lst_log_set_level(LST_LOG_ERROR);
    CHECK_EQ(lst_redis_pipe_addf(p, "INCR c"), LST_ERR_INVALID);
    CHECK_EQ(lst_redis_pipe_addf(p, "INCRBY c 5"), LST_ERR_INVALID);
    CHECK_EQ(lst_redis_pipe_addf(p, "HINCRBY h f 1"), LST_ERR_INVALID);
    CHECK_EQ(lst_redis_pipe_addf(p, "lpush l x"), LST_ERR_INVALID);
    CHECK_EQ(lst_redis_pipe_addf(p, "RPUSH l x"), LST_ERR_INVALID);
    CHECK_EQ(lst_redis_pipe_addf(p, "APPEND k x"), LST_ERR_INVALID);
    CHECK_EQ(lst_redis_pipe_addf(p, "ZADD z INCR 1 m"), LST_ERR_INVALID);
    CHECK_EQ(lst_redis_pipe_addf(p, "EVAL %s 0", "return 1"), LST_ERR_INVALID);
    CHECK_EQ(lst_redis_pipe_addf(p, "EVALSHA 0123 0"), LST_ERR_INVALID);
    const char *push[] = {"LPUSH", "l", "x"};
    CHECK_EQ(lst_redis_pipe_add(p, 3, push, NULL), LST_ERR_INVALID);
    REQUIRE(lst_redis_script_create("return redis.call('INCR', KEYS[1])", false, &inc) == LST_OK);
    REQUIRE(lst_redis_script_create("return redis.call('SET', KEYS[1], ARGV[1])", true, &setter) ==
            LST_OK);
    const char *args[] = {"k", "v"};
    CHECK_EQ(lst_redis_pipe_script(p, inc, 1, 1, args, NULL), LST_ERR_INVALID);
    CHECK_EQ(lst_redis_pipe_len(p), 0);
    CHECK_EQ(lst_redis_pipe_script(p, setter, 1, 2, args, NULL), LST_OK);
    CHECK_EQ(lst_redis_pipe_script(p, setter, 3, 2, args, NULL), LST_ERR_INVALID);
    CHECK_EQ(lst_redis_pipe_addf(p, "SET k v"), LST_OK);
    CHECK_EQ(lst_redis_pipe_len(p), 2);
    lst_log_set_level(LST_LOG_WARN);
    lst_redis_script_destroy(inc);
    lst_redis_script_destroy(setter);
    lst_redis_pipe_destroy(p);
}

static long long client_id(struct lst_redis *r)
{
    redisReply *reply = NULL;
    long long id = -1;
    if (lst_redis_cmdf(r, &reply, "CLIENT ID") == LST_OK && reply->type == REDIS_REPLY_INTEGER)
        id = reply->integer;
    if (reply != NULL)
        freeReplyObject(reply);
    return id;
}

static void test_timeout_reapplied_after_reconnect(void)
{
    setup();
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    struct lst_redis *admin = make(&f, 0, NULL, 2000, 3);
    struct lst_redis *r = make(&f, 1, NULL, 300, 3);
    REQUIRE(admin != NULL && r != NULL);

    /* Force a reconnect of r: the server closes its connection. */
    long long id = client_id(r);
    REQUIRE(id > 0);
    CHECK_EQ(lst_redis_cmdf(admin, NULL, "CLIENT KILL ID %lld", id), LST_OK);
    CHECK_EQ(lst_redis_ping(r), LST_OK);
    CHECK_EQ(lst_redis_connect_count(r), 2);

    /* A paused server: without the timeout on the new context this GET would block forever.
     * A timeout is not retried, so it fails after about one timeout. */
    kill(f.pid, SIGSTOP);
    int64_t t0 = lst_mono_ms();
    char v[8];
    CHECK(!get_str(r, "k", v, sizeof(v)));
    int64_t took = lst_mono_ms() - t0;
    CHECK(took >= 250);
    CHECK(took < 1500);
    /* reconnecting to the paused server: connect succeeds (kernel backlog), SELECT times out */
    t0 = lst_mono_ms();
    CHECK_EQ(lst_redis_ping(r), LST_ERR_REDIS);
    took = lst_mono_ms() - t0;
    CHECK(took < 1500);
    char msg[160];
    kill(f.pid, SIGCONT);
    lst_redis_last_error(r, msg, sizeof(msg));
    CHECK(strstr(msg, "timeout") != NULL);
    CHECK_EQ(lst_redis_ping(r), LST_OK);

    lst_redis_destroy(r);
    lst_redis_destroy(admin);
    redis_fixture_stop(&f);
}

/* A one-connection pipeline (optimistic transactions): any command, run once, and never on a
 * connection other than the one that set its WATCH. */
static void test_pipeline_once_keeps_its_connection(void)
{
    setup();
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    struct lst_redis *admin = make(&f, 0, NULL, 2000, 3);
    struct lst_redis *r = make(&f, 0, NULL, 2000, 3);
    struct lst_redis_pipe *p = NULL;
    REQUIRE(admin != NULL && r != NULL && lst_redis_pipe_create_once(&p) == LST_OK);

    unsigned long conn = 0;
    CHECK_EQ(lst_redis_pipe_addf(p, "WATCH w"), LST_OK);
    CHECK_EQ(lst_redis_pipe_addf(p, "INCRBY c 5"), LST_OK); /* refused by a replayed pipeline */
    CHECK_EQ(lst_redis_pipe_exec_once(r, p, &conn), LST_OK);
    CHECK(conn == lst_redis_connect_count(r) && conn > 0);
    CHECK_EQ(lst_redis_pipe_reply(p, 1)->integer, 5);
    /* another client writes the watched key: EXEC answers nil and nothing ran */
    CHECK_EQ(lst_redis_cmdf(admin, NULL, "SET w 1"), LST_OK);
    lst_redis_pipe_reset(p);
    CHECK_EQ(lst_redis_pipe_addf(p, "MULTI"), LST_OK);
    CHECK_EQ(lst_redis_pipe_addf(p, "INCRBY c 1"), LST_OK);
    CHECK_EQ(lst_redis_pipe_addf(p, "EXEC"), LST_OK);
    CHECK_EQ(lst_redis_pipe_exec_once(r, p, &conn), LST_OK);
    CHECK_EQ(lst_redis_pipe_reply(p, 2)->type, REDIS_REPLY_NIL);
    char v[8];
    CHECK(get_str(admin, "c", v, sizeof(v)) && strcmp(v, "5") == 0);
    /* the server closes the connection between the WATCH and the transaction: refused, nothing
     * sent, also not on a new connection (the WATCH would be gone) */
    CHECK_EQ(lst_redis_cmdf(r, NULL, "WATCH w"), LST_OK);
    conn = lst_redis_connect_count(r);
    long long id = client_id(r);
    REQUIRE(id > 0);
    CHECK_EQ(lst_redis_cmdf(admin, NULL, "CLIENT KILL ID %lld", id), LST_OK);
    lst_redis_pipe_reset(p);
    CHECK_EQ(lst_redis_pipe_addf(p, "MULTI"), LST_OK);
    CHECK_EQ(lst_redis_pipe_addf(p, "INCRBY c 1"), LST_OK);
    CHECK_EQ(lst_redis_pipe_addf(p, "EXEC"), LST_OK);
    CHECK_EQ(lst_redis_pipe_exec_once(r, p, &conn), LST_ERR_STATE);
    CHECK(get_str(admin, "c", v, sizeof(v)) && strcmp(v, "5") == 0);
    /* a replayed pipeline's exec refuses nothing, but exec_once refuses a replayed pipeline */
    struct lst_redis_pipe *q = NULL;
    REQUIRE(lst_redis_pipe_create(&q) == LST_OK);
    conn = 0;
    CHECK_EQ(lst_redis_pipe_exec_once(r, q, &conn), LST_ERR_INVALID);
    lst_redis_pipe_destroy(q);
    lst_redis_pipe_destroy(p);
    lst_redis_destroy(r);
    lst_redis_destroy(admin);
    redis_fixture_stop(&f);
}

/* The two halves of a one-connection pipeline (exec_once is both, tested above): the replies
 * come after the caller went on and are read once, a refused send leaves nothing to read, and
 * nothing is replayed when the connection breaks while the pipeline is in flight. */
static void test_pipeline_once_in_two_halves(void)
{
    setup();
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    struct lst_redis *admin = make(&f, 0, NULL, 2000, 3);
    struct lst_redis *r = make(&f, 0, NULL, 2000, 3);
    struct lst_redis_pipe *p = NULL;
    REQUIRE(admin != NULL && r != NULL && lst_redis_pipe_create_once(&p) == LST_OK);

    unsigned long conn = 0;
    CHECK_EQ(lst_redis_pipe_recv_once(r, p), LST_OK); /* nothing queued, nothing to read */
    CHECK_EQ(lst_redis_pipe_addf(p, "WATCH w"), LST_OK);
    CHECK_EQ(lst_redis_pipe_addf(p, "INCRBY c 5"), LST_OK);
    CHECK_EQ(lst_redis_pipe_send_once(r, p, &conn), LST_OK);
    CHECK(conn == lst_redis_connect_count(r) && conn > 0);
    CHECK(lst_redis_pipe_reply(p, 1) == NULL); /* not read yet */
    CHECK_EQ(lst_redis_pipe_recv_once(r, p), LST_OK);
    CHECK_EQ(lst_redis_pipe_reply(p, 1)->integer, 5);
    CHECK_EQ(lst_redis_pipe_recv_once(r, p), LST_ERR_STATE); /* read once only */
    /* a send refused (another connection than the WATCH's): nothing to read */
    long long id = client_id(r);
    REQUIRE(id > 0);
    CHECK_EQ(lst_redis_cmdf(admin, NULL, "CLIENT KILL ID %lld", id), LST_OK);
    CHECK_EQ(lst_redis_pipe_send_once(r, p, &conn), LST_ERR_STATE);
    CHECK_EQ(lst_redis_pipe_recv_once(r, p), LST_ERR_STATE);
    char v[8];
    CHECK(get_str(admin, "c", v, sizeof(v)) && strcmp(v, "5") == 0);
    /* the connection breaks while the pipeline is in flight: an error, no replay */
    lst_redis_pipe_reset(p);
    CHECK_EQ(lst_redis_pipe_addf(p, "INCRBY c 1"), LST_OK);
    CHECK_EQ(lst_redis_pipe_addf(p, "CLIENT KILL SKIPME no"), LST_OK); /* every client */
    CHECK_EQ(lst_redis_pipe_addf(p, "INCRBY c 1"), LST_OK);
    conn = 0;
    CHECK_EQ(lst_redis_pipe_send_once(r, p, &conn), LST_OK);
    CHECK_EQ(lst_redis_pipe_recv_once(r, p), LST_ERR_REDIS);
    CHECK(lst_redis_pipe_reply(p, 0) == NULL);
    CHECK(get_str(admin, "c", v, sizeof(v)) && strcmp(v, "6") == 0);
    /* and r serves the next caller on a new connection */
    CHECK(get_str(r, "c", v, sizeof(v)) && strcmp(v, "6") == 0);
    lst_redis_pipe_destroy(p);
    lst_redis_destroy(r);
    lst_redis_destroy(admin);
    redis_fixture_stop(&f);
}

static void test_script_noscript_fallback(void)
{
    setup();
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    struct lst_redis *r = make(&f, 0, NULL, 1000, 3);
    struct lst_redis_script *s = NULL, *fail = NULL;
    struct lst_redis_pipe *p = NULL;
    REQUIRE(r != NULL);
    const char *lua = "redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1]";
    REQUIRE(lst_redis_script_create(lua, true, &s) == LST_OK);
    REQUIRE(lst_redis_script_create("return redis.error_reply('STALE event')", false, &fail) ==
            LST_OK);
    REQUIRE(lst_redis_pipe_create(&p) == LST_OK);

    /* our SHA1 is the one Redis computes */
    redisReply *reply = NULL;
    CHECK_EQ(lst_redis_cmdf(r, &reply, "SCRIPT LOAD %s", lua), LST_OK);
    REQUIRE(reply != NULL && reply->str != NULL);
    CHECK_STREQ(reply->str, lst_redis_script_sha(s));
    freeReplyObject(reply);

    const char *argv[] = {"sk", "v1"};
    CHECK_EQ(lst_redis_script_call(r, s, &reply, 1, 2, argv, NULL), LST_OK);
    CHECK(reply != NULL && reply->str != NULL && strcmp(reply->str, "v1") == 0);
    freeReplyObject(reply);

    /* Redis forgets its scripts (restart or flush): NOSCRIPT, then EVAL */
    CHECK_EQ(lst_redis_cmdf(r, NULL, "SCRIPT FLUSH"), LST_OK);
    argv[1] = "v2";
    CHECK_EQ(lst_redis_script_call(r, s, &reply, 1, 2, argv, NULL), LST_OK);
    CHECK(reply != NULL && reply->str != NULL && strcmp(reply->str, "v2") == 0);
    freeReplyObject(reply);
    CHECK_EQ(lst_redis_cmdf(r, &reply, "SCRIPT EXISTS %s", lst_redis_script_sha(s)), LST_OK);
    CHECK(reply != NULL && reply->elements == 1 && reply->element[0]->integer == 1);
    freeReplyObject(reply);

    /* the same inside a pipeline */
    CHECK_EQ(lst_redis_cmdf(r, NULL, "SCRIPT FLUSH"), LST_OK);
    argv[1] = "v3";
    CHECK_EQ(lst_redis_pipe_script(p, s, 1, 2, argv, NULL), LST_OK);
    CHECK_EQ(lst_redis_pipe_addf(p, "GET sk"), LST_OK);
    CHECK_EQ(lst_redis_pipe_exec(r, p), LST_OK);
    CHECK_STREQ(lst_redis_pipe_reply(p, 0)->str, "v3");
    CHECK_STREQ(lst_redis_pipe_reply(p, 1)->str, "v3");

    /* a script's error reply */
    CHECK_EQ(lst_redis_script_call(r, fail, &reply, 0, 0, NULL, NULL), LST_ERR_INVALID);
    CHECK(reply != NULL && reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "STALE"));
    freeReplyObject(reply);

    lst_redis_pipe_destroy(p);
    lst_redis_script_destroy(s);
    lst_redis_script_destroy(fail);
    lst_redis_destroy(r);
    redis_fixture_stop(&f);
}

static void test_auth(void)
{
    setup();
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, "s3cret-pass"));
    struct lst_redis *none = make(&f, 0, NULL, 1000, 2);
    struct lst_redis *wrong = make(&f, 0, "wrong-pass", 1000, 2);
    struct lst_redis *right = make(&f, 4, "s3cret-pass", 1000, 10);
    REQUIRE(none != NULL && wrong != NULL && right != NULL);

    redisReply *reply = NULL;
    CHECK_EQ(lst_redis_cmdf(none, &reply, "GET k"), LST_ERR_INVALID);
    CHECK(reply != NULL && reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "NOAUTH"));
    if (reply != NULL)
        freeReplyObject(reply);
    lst_log_set_level(LST_LOG_ERROR);
    CHECK_EQ(lst_redis_connect(wrong), LST_ERR_CONFIG);
    CHECK_EQ(lst_redis_ping(wrong), LST_ERR_CONFIG);
    lst_log_set_level(LST_LOG_WARN);
    char msg[160];
    lst_redis_last_error(wrong, msg, sizeof(msg));
    CHECK(strstr(msg, "AUTH") != NULL);
    CHECK(strstr(msg, "wrong-pass") == NULL);

    CHECK_EQ(lst_redis_cmdf(right, NULL, "SET k v"), LST_OK);
    REQUIRE(redis_fixture_restart(&f));
    /* AUTH and SELECT are sent again on the new connection */
    CHECK_EQ(lst_redis_cmdf(right, NULL, "SET k2 v2"), LST_OK);
    CHECK_EQ(lst_redis_cmdf(right, &reply, "CLIENT INFO"), LST_OK);
    CHECK(reply != NULL && reply->str != NULL && strstr(reply->str, " db=4 ") != NULL);
    if (reply != NULL)
        freeReplyObject(reply);
    CHECK_EQ(lst_redis_connect_count(right), 2);

    lst_redis_destroy(none);
    lst_redis_destroy(wrong);
    lst_redis_destroy(right);
    redis_fixture_stop(&f);
}

LST_TEST_MAIN(T(test_idempotency_allow_list), T(test_script_sha1_vectors),
              T(test_create_validates_and_destroy_null), T(test_connect_refused_is_bounded),
              T(test_basic_commands), T(test_restart_then_next_command_succeeds),
              T(test_inflight_idempotent_retried_others_not),
              T(test_pipeline_replayed_after_reconnect), T(test_pipeline_send_then_recv),
              T(test_pipeline_refuses_non_idempotent), T(test_timeout_reapplied_after_reconnect),
              T(test_pipeline_once_keeps_its_connection), T(test_pipeline_once_in_two_halves),
              T(test_script_noscript_fallback), T(test_auth))
