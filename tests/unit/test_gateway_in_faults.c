/* Issue 7's unit-tier fault test of gateway-in on librdkafka's mock cluster: the real service
 * (gateway_in_start: config table, producer, HTTP server, callback route) in-process, a real
 * redis-server started here (dedupe markers, the sender's key in the key cache), and signed,
 * encrypted callbacks as the Gateway sends them. It proves the callback contract:
 *
 *   broker down    503 once librdkafka has given the record up (at least the producer's
 *                  message timeout, within the ack timeout), nothing in the topic, the dedupe
 *                  marker released so the Gateway's retry can claim it;
 *   broker back    the retried callback gets 200, the record is in the topic exactly once
 *                  (also after one more redelivery);
 *   slow ack       with the broker's answers delayed by RTT_MS, the 200 never comes before the
 *                  delivery report: the answer takes at least RTT_MS;
 *   refused writes Redis answers writes with -NOREPLICAS: 200 without a dedupe marker, and
 *                  the warning quotes Redis's reply.
 *   Redis stalled  redis-server SIGSTOPped while STALL_CALLBACKS callbacks arrive at once
 *                  (more than the pool's connections): every answer is 200 within one Redis
 *                  timeout plus slack, not queued behind each other's timeouts (rgate.c); after
 *                  SIGCONT the gate closes again and callbacks get their dedupe markers.
 *
 * Both handler modes run the same scenario: thread per connection (the handler waits for the
 * ack) and event mode (the delivery report answers). The Gateway URL points at a closed port:
 * nothing here may need the Gateway. Every wait is bounded. */
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "gateway_in.h"
#include "lst_test.h"
#include "redis_fixture.h"
#include "system/gateway_in_common.h"

#define ACK_TIMEOUT_MS     4000 /* LST_CALLBACK_ACK_TIMEOUT_MS: message timeout 3000 */
#define ACK_TIMEOUT_MS_STR "4000"
#define MSG_TIMEOUT_MS     (ACK_TIMEOUT_MS - GWIN_KAFKA_SCAN_MS)
/* What the 503 may take beyond the ack timeout: getting the answer through curl and a loaded
 * 2-core machine (ASan), not librdkafka's timing, which the ack timeout already covers. */
#define ANSWER_SLACK_MS      500
#define RTT_MS               1500 /* well below the message timeout: the slow record is acked */
#define SENDER               "FAULTS01"
#define KEY_PREFIX           "test:gwin-faults:"
#define REDIS_TIMEOUT_MS     1000 /* LST_REDIS_TIMEOUT_MS */
#define REDIS_TIMEOUT_MS_STR "1000"
#define STALL_CALLBACKS      12 /* three times LST_REDIS_POOL */
#define TOPIC                "lst.inbound"

static struct redis_fixture redis;
static bool redis_up;
static char src_dir[512];

/* ---- the environment: mock cluster, gateway-in, a sender ---- */

struct world {
    rd_kafka_t *mock_rk; /* the throwaway handle that hosts the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    char brokers[256];
    char blob_dir[64];
    struct gateway_in gw;
    struct lst_config_section sections[3];
    bool started;
    char url[128];
    struct gwin_env env; /* for gwin_build: only gw_pk is used */
    uint8_t sender_sk[LST_THREEMA_KEY_SIZE];
};

struct kv {
    const char *name, *value;
};

static const char *table_getenv(const char *name, void *ud)
{
    for (const struct kv *e = ud; e->name != NULL; e++)
        if (strcmp(e->name, name) == 0)
            return e->value;
    return NULL;
}

/* The sender's public key in gateway-in's Redis key cache, as a key fetch would leave it. */
static bool seed_sender_key(const uint8_t pk[LST_THREEMA_KEY_SIZE])
{
    char hex[LST_THREEMA_KEY_HEX + 1];
    lst_threema_hex_encode(pk, LST_THREEMA_KEY_SIZE, hex, sizeof(hex));
    redisContext *c = redisConnect("127.0.0.1", redis.port);
    redisReply *r = c != NULL && c->err == 0
                        ? redisCommand(c, "SET %spk:%s %s", KEY_PREFIX, SENDER, hex)
                        : NULL;
    bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (r != NULL)
        freeReplyObject(r);
    if (c != NULL)
        redisFree(c);
    return ok;
}

/* 1: gateway-in's dedupe marker of msgid exists, 0: it does not, -1: Redis failed. */
static int marker_exists(const char *msgid)
{
    redisContext *c = redisConnect("127.0.0.1", redis.port);
    redisReply *r = c != NULL && c->err == 0
                        ? redisCommand(c, "EXISTS %sevt:%s:%s", KEY_PREFIX, SENDER, msgid)
                        : NULL;
    int n = r != NULL && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    if (r != NULL)
        freeReplyObject(r);
    if (c != NULL)
        redisFree(c);
    return n;
}

/* CONFIG SET name value on the test's Redis. */
static bool redis_config_set(const char *name, const char *value)
{
    redisContext *c = redisConnect("127.0.0.1", redis.port);
    redisReply *r =
        c != NULL && c->err == 0 ? redisCommand(c, "CONFIG SET %s %s", name, value) : NULL;
    bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (r != NULL)
        freeReplyObject(r);
    if (c != NULL)
        redisFree(c);
    return ok;
}

static bool world_start(struct world *w, const char *event_threads)
{
    char errstr[256], redis_port[16], key_path[600];
    memset(w, 0, sizeof(*w));
    w->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), errstr, sizeof(errstr));
    if (w->mock_rk == NULL || (w->mc = rd_kafka_mock_cluster_new(w->mock_rk, 1)) == NULL)
        return false;
    if (rd_kafka_mock_topic_create(w->mc, TOPIC, 1, 1) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_mock_topic_create(w->mc, "lst.inbound.dlq", 1, 1) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    snprintf(w->brokers, sizeof(w->brokers), "%s", rd_kafka_mock_cluster_bootstraps(w->mc));
    snprintf(w->blob_dir, sizeof(w->blob_dir), "/tmp/lst-gwin-faults-XXXXXX");
    if (mkdtemp(w->blob_dir) == NULL)
        return false;
    snprintf(redis_port, sizeof(redis_port), "%d", redis.port);
    snprintf(key_path, sizeof(key_path), "%s/demo/DEMO-ONLY-gateway.private.key", src_dir);
    const struct kv env[] = {
        {"LST_LOG_LEVEL", "warn"},
        {"LST_KAFKA_BROKERS", w->brokers},
        {"LST_REDIS_PORT", redis_port},
        {"LST_REDIS_KEY_PREFIX", KEY_PREFIX},
        {"LST_BLOB_DIR", w->blob_dir},
        {"LST_GATEWAY_URL", "http://127.0.0.1:1"}, /* closed: the test must not need it */
        {"LST_GATEWAY_ID", GWIN_GATEWAY_ID},
        {"LST_GATEWAY_SECRET", GWIN_SECRET},
        {"LST_PRIVATE_KEY", key_path},
        {"LST_CALLBACK_ACK_TIMEOUT_MS", ACK_TIMEOUT_MS_STR},
        {"LST_HTTP_EVENT_THREADS", event_threads},
        {"LST_REDIS_POOL", "4"},
        {"LST_REDIS_TIMEOUT_MS", REDIS_TIMEOUT_MS_STR},
        {"LST_SHUTDOWN_TIMEOUT_MS", "2000"},
        {NULL, NULL},
    };
    struct lst_config_source src = {table_getenv, (void *)(uintptr_t)env};
    w->sections[0] = lst_common_config_section(&w->gw.cfg.common);
    w->sections[1] = lst_gateway_config_section_with_key(&w->gw.cfg.gw);
    w->sections[2] = gateway_in_config_section(&w->gw.cfg);
    struct lst_buf errors;
    lst_buf_init(&errors);
    lst_err err = lst_config_load(w->sections, 3, &src, &errors);
    if (err != LST_OK)
        fprintf(stderr, "config: %s\n", errors.data != NULL ? errors.data : lst_strerror(err));
    lst_buf_cleanup(&errors);
    if (err != LST_OK)
        return false;
    w->gw.cfg.http_port = 0; /* an ephemeral port, which the table does not offer operators */
    w->started = true;
    if (gateway_in_start(&w->gw) != LST_OK)
        return false;
    snprintf(w->url, sizeof(w->url), "http://127.0.0.1:%u%s",
             (unsigned)lst_http_server_port(w->gw.svc->http), w->gw.cfg.callback_path);

    uint8_t pk[LST_THREEMA_KEY_SIZE];
    snprintf(key_path, sizeof(key_path), "%s/demo/DEMO-ONLY-gateway.public.key", src_dir);
    return lst_threema_key_read_file(key_path, LST_THREEMA_KEY_PUBLIC, w->env.gw_pk, NULL) ==
               LST_OK &&
           lst_threema_key_generate(w->sender_sk, pk) == LST_OK && seed_sender_key(pk);
}

static void world_stop(struct world *w)
{
    if (w->started)
        gateway_in_stop(&w->gw);
    lst_config_cleanup(w->sections, 3); /* sections not set up yet are empty (n = 0) */
    if (w->mc != NULL)
        rd_kafka_mock_cluster_destroy(w->mc);
    if (w->mock_rk != NULL)
        rd_kafka_destroy(w->mock_rk);
    if (w->blob_dir[0] != '\0')
        rmdir(w->blob_dir);
    memset(w, 0, sizeof(*w));
}

/* /readyz of the service: Redis answers and the producer reaches the broker. */
static bool wait_ready(const struct world *w, int64_t timeout_ms)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/readyz",
             (unsigned)lst_http_server_port(w->gw.svc->http));
    for (int64_t end = lst_mono_ms() + timeout_ms; lst_mono_ms() < end; lst_sleep_ms(100, NULL))
        if (gwin_http("GET", url, NULL, 0, NULL) == 200)
            return true;
    return false;
}

/* A text message from SENDER with message ID msgid (written when empty), signed and
 * encrypted to the Gateway key as the Gateway delivers it. */
static bool build_callback(struct world *w, const char *text, char msgid[LST_THREEMA_MSGID_HEX + 1],
                           struct lst_buf *form)
{
    struct lst_threema_msg m;
    struct lst_buf padded;
    memset(&m, 0, sizeof(m));
    lst_buf_init(&padded);
    bool ok = lst_threema_msg_set_text(&m, text, strlen(text)) == LST_OK &&
              lst_threema_msg_encode(&m, 0, &padded, NULL) == LST_OK &&
              gwin_build(&w->env, SENDER, w->sender_sk, (const uint8_t *)padded.data, padded.len,
                         msgid, form) == LST_OK;
    lst_threema_msg_cleanup(&m);
    lst_buf_cleanup(&padded);
    return ok;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* POSTs the callback; the status, and the time to the answer in *ms. Measured in
 * microseconds and rounded up: a lower bound checked against it must not lose the
 * millisecond a truncating clock would. */
static long post(const struct world *w, const struct lst_buf *form, int64_t *ms)
{
    int64_t t0 = mono_us();
    long status = gwin_http("POST", w->url, form->data, form->len, NULL);
    *ms = (mono_us() - t0 + 999) / 1000;
    return status;
}

/* Reads the whole lst.inbound partition of the mock cluster from the start (assign, no
 * group); returns how many records carry SENDER's msgid (checking that each is the text
 * message sent), -1 when the partition end is not reached in time or a record is bad. */
static int count_in_topic(const struct world *w, const char *msgid, const char *text)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", w->brokers, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", "gwin-faults-reader", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr)) ||
        /* the mock holds an empty fetch this long (default 500 ms): keep the reads quick */
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "20", errstr, sizeof(errstr))) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, TOPIC, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    int n = rd_kafka_assign(rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
    rd_kafka_topic_partition_list_destroy(parts);
    bool eof = false;
    for (int64_t end = lst_mono_ms() + 10000; n >= 0 && !eof && lst_mono_ms() < end;) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 200);
        if (msg == NULL)
            continue;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eof = true;
        } else if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            struct lst_inbound in;
            memset(&in, 0, sizeof(in));
            if (lst_inbound_decode(msg->payload, msg->len, &in, NULL) != LST_OK)
                n = -1;
            else if (strcmp(in.from, SENDER) == 0 && strcmp(in.threema_message_id, msgid) == 0)
                n = in.kind == LST_INBOUND_MESSAGE && in.content.kind == LST_CONTENT_TEXT &&
                            in.content.text != NULL && strcmp(in.content.text, text) == 0
                        ? n + 1
                        : -1;
            lst_inbound_cleanup(&in);
        }
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return eof ? n : -1;
}

static uint64_t answered(const struct world *w, enum gwin_result r)
{
    return lst_counter_value(w->gw.m.callbacks[r]);
}

/* Waits until the marker of msgid is gone (event mode releases it from the stage thread). */
static bool wait_marker_gone(const char *msgid)
{
    for (int64_t end = lst_mono_ms() + 5000; lst_mono_ms() < end; lst_sleep_ms(20, NULL))
        if (marker_exists(msgid) == 0)
            return true;
    return false;
}

/* ---- the scenario ---- */

/* (1) The broker down: 503 when librdkafka gives the record up, never before the message
 * timeout, within the ack timeout; not counted as accepted, not written, marker released.
 * (3) The broker back: nothing of the failed attempt shows up; the Gateway's retry gets 200
 * and the record is there exactly once, also after one more redelivery. */
static void broker_down(struct world *w, const char *mode)
{
    const char *text = "while the broker is down";
    char msgid[LST_THREEMA_MSGID_HEX + 1] = "";
    struct lst_buf form;
    int64_t ms = 0;
    lst_buf_init(&form);
    REQUIRE(build_callback(w, text, msgid, &form));
    uint64_t accepted = answered(w, GWIN_ACCEPTED);
    CHECK(rd_kafka_mock_broker_set_down(w->mc, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
    long status = post(w, &form, &ms);
    printf("%s: broker down: HTTP %ld after %lld ms (message timeout %d, ack timeout %d)\n", mode,
           status, (long long)ms, MSG_TIMEOUT_MS, ACK_TIMEOUT_MS);
    CHECK_EQ(status, 503L);
    CHECK(ms >= MSG_TIMEOUT_MS);
    CHECK(ms <= ACK_TIMEOUT_MS + ANSWER_SLACK_MS);
    CHECK_EQ(answered(w, GWIN_ACCEPTED), accepted);
    CHECK_EQ(answered(w, GWIN_UNAVAILABLE), 1);
    CHECK_EQ(lst_counter_value(w->gw.m.possible_duplicates), 0);
    CHECK(wait_marker_gone(msgid));

    CHECK(rd_kafka_mock_broker_set_up(w->mc, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
    CHECK(wait_ready(w, 10000));
    CHECK_EQ(count_in_topic(w, msgid, text), 0);
    status = post(w, &form, &ms);
    printf("%s: broker back: retry HTTP %ld after %lld ms\n", mode, status, (long long)ms);
    CHECK_EQ(status, 200L);
    CHECK_EQ(answered(w, GWIN_ACCEPTED), accepted + 1);
    CHECK_EQ(count_in_topic(w, msgid, text), 1);
    CHECK_EQ(post(w, &form, &ms), 200L); /* a redelivery: "duplicate", nothing produced */
    CHECK_EQ(answered(w, GWIN_DUPLICATE), 1);
    CHECK_EQ(count_in_topic(w, msgid, text), 1);
    lst_buf_cleanup(&form);
}

/* (2) The broker's acknowledgement delayed by RTT_MS: the 200 waits for it. The mock appends
 * the record at once and delays only the answer, so an answer before RTT_MS could only come
 * from a 200 given before the delivery report. */
static void slow_ack(struct world *w, const char *mode)
{
    const char *text = "slow ack";
    char msgid[LST_THREEMA_MSGID_HEX + 1] = "";
    struct lst_buf form;
    int64_t ms = 0;
    lst_buf_init(&form);
    REQUIRE(build_callback(w, text, msgid, &form));
    CHECK(rd_kafka_mock_broker_set_rtt(w->mc, 1, RTT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR);
    long status = post(w, &form, &ms);
    printf("%s: ack delayed by %d ms: HTTP %ld after %lld ms\n", mode, RTT_MS, status,
           (long long)ms);
    CHECK_EQ(status, 200L);
    CHECK(ms >= RTT_MS);
    CHECK(rd_kafka_mock_broker_set_rtt(w->mc, 1, 0) == RD_KAFKA_RESP_ERR_NO_ERROR);
    CHECK_EQ(count_in_topic(w, msgid, text), 1);
    lst_buf_cleanup(&form);
}

/* Polls the log file at path (up to 5 s) for a line holding both needles; copies it to line. */
static bool log_line(const char *path, const char *a, const char *b, char *line, size_t cap)
{
    for (int64_t end = lst_mono_ms() + 5000; lst_mono_ms() < end; lst_sleep_ms(20, NULL)) {
        FILE *f = fopen(path, "r");
        char buf[4096];
        bool found = false;
        while (f != NULL && !found && fgets(buf, sizeof(buf), f) != NULL)
            found = strstr(buf, a) != NULL && strstr(buf, b) != NULL;
        if (f != NULL)
            fclose(f);
        if (found) {
            buf[strcspn(buf, "\n")] = '\0';
            snprintf(line, cap, "%s", buf);
            return true;
        }
    }
    return false;
}

/* Redis refuses writes (-NOREPLICAS here; MISCONF on a full disk takes the same path): the
 * callback is processed without its dedupe marker (200, in the topic once), and the log says
 * what Redis said, not just "invalid". */
static void refused_writes(struct world *w, const char *mode)
{
    const char *text = "while Redis refuses writes";
    char msgid[LST_THREEMA_MSGID_HEX + 1] = "", path[] = "/tmp/lst-gwin-faults-log-XXXXXX";
    struct lst_buf form;
    int64_t ms = 0;
    lst_buf_init(&form);
    REQUIRE(build_callback(w, text, msgid, &form));
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    uint64_t errors = lst_counter_value(w->gw.m.redis_errors);
    CHECK(redis_config_set("min-replicas-to-write", "1"));
    lst_log_set_fd(fd);
    CHECK_EQ(post(w, &form, &ms), 200L);
    char line[4096] = "";
    CHECK(log_line(path, "\"gateway_in.redis_failed\"", "NOREPLICAS", line, sizeof(line)));
    lst_log_set_fd(2);
    CHECK(redis_config_set("min-replicas-to-write", "0"));
    const char *msg = strstr(line, "\"msg\"");
    printf("%s: Redis refusing writes: HTTP 200, logged %s\n", mode, msg != NULL ? msg : "nothing");
    CHECK(lst_counter_value(w->gw.m.redis_errors) > errors);
    CHECK_EQ(marker_exists(msgid), 0);
    CHECK_EQ(count_in_topic(w, msgid, text), 1);
    close(fd);
    unlink(path);
    lst_buf_cleanup(&form);
}

struct stall_post {
    const struct world *w;
    struct lst_buf form;
    long status;
    int64_t ms;
};

static void *stall_post_run(void *arg)
{
    struct stall_post *p = arg;
    p->status = post(p->w, &p->form, &p->ms);
    return NULL;
}

/* The gate is closed again once a callback after SIGCONT gets its marker; the first one may
 * still find the gate open (it skips Redis), so a few are sent, each bounded. */
static bool marker_after_stall(struct world *w)
{
    for (int i = 0; i < 10; i++) {
        char msgid[LST_THREEMA_MSGID_HEX + 1] = "";
        struct lst_buf form;
        int64_t ms = 0;
        lst_buf_init(&form);
        bool ok = build_callback(w, "after the stall", msgid, &form) &&
                  post(w, &form, &ms) == 200 && marker_exists(msgid) == 1;
        lst_buf_cleanup(&form);
        if (ok)
            return true;
        lst_sleep_ms(GWIN_RGATE_OPEN_MS / 2, NULL);
    }
    return false;
}

/* Redis stops answering (SIGSTOP) while callbacks arrive at once: without the gate, handler
 * threads would wait for the pool's connections and then each pay its own timeout (three
 * waves of REDIS_TIMEOUT_MS and more); with it, the first wave waits one timeout and the
 * callbacks queued for a connection skip Redis (pooled: thread per connection). Event mode
 * claims all of them in one pipelined round trip, so there the bound is what counts. */
static void redis_stalled(struct world *w, const char *mode, bool pooled)
{
    struct stall_post posts[STALL_CALLBACKS];
    pthread_t th[STALL_CALLBACKS];
    char msgid[LST_THREEMA_MSGID_HEX + 1];
    int64_t max_ms = 0;
    int ok200 = 0;
    for (int i = 0; i < STALL_CALLBACKS; i++) {
        posts[i].w = w;
        lst_buf_init(&posts[i].form);
        msgid[0] = '\0';
        REQUIRE(build_callback(w, "while Redis stalls", msgid, &posts[i].form));
    }
    REQUIRE(kill(redis.pid, SIGSTOP) == 0);
    for (int i = 0; i < STALL_CALLBACKS; i++)
        REQUIRE(pthread_create(&th[i], NULL, stall_post_run, &posts[i]) == 0);
    for (int i = 0; i < STALL_CALLBACKS; i++) {
        pthread_join(th[i], NULL);
        ok200 += posts[i].status == 200;
        max_ms = posts[i].ms > max_ms ? posts[i].ms : max_ms;
        lst_buf_cleanup(&posts[i].form);
    }
    uint64_t skipped = lst_counter_value(w->gw.m.redis_skipped);
    kill(redis.pid, SIGCONT);
    printf("%s: Redis stalled, %d callbacks at once: %d x 200, slowest %lld ms (timeout %d ms), "
           "%llu Redis operations skipped\n",
           mode, STALL_CALLBACKS, ok200, (long long)max_ms, REDIS_TIMEOUT_MS,
           (unsigned long long)skipped);
    CHECK_EQ(ok200, STALL_CALLBACKS);
    CHECK(max_ms <= REDIS_TIMEOUT_MS + 1000);
    if (pooled)
        CHECK(skipped > 0);
    CHECK(marker_after_stall(w));
}

static void scenario(const char *mode, const char *event_threads)
{
    struct world w;
    char msgid[LST_THREEMA_MSGID_HEX + 1] = "";
    struct lst_buf form;
    int64_t ms = 0;
    lst_buf_init(&form);
    REQUIRE(redis_up);
    bool ok = world_start(&w, event_threads) && wait_ready(&w, 10000);
    CHECK(ok);
    /* A healthy broker first: the path works end to end. */
    if (ok && build_callback(&w, "healthy", msgid, &form)) {
        CHECK_EQ(post(&w, &form, &ms), 200L);
        CHECK_EQ(count_in_topic(&w, msgid, "healthy"), 1);
    }
    if (ok) {
        broker_down(&w, mode);
        slow_ack(&w, mode);
        CHECK_EQ(answered(&w, GWIN_UNAVAILABLE), 1); /* only the attempt with the broker down */
        CHECK_EQ(lst_counter_value(w.gw.m.redis_errors), 0);
        refused_writes(&w, mode);
        redis_stalled(&w, mode, strcmp(event_threads, "0") == 0);
    }
    int64_t t0 = lst_mono_ms();
    world_stop(&w);
    CHECK(lst_mono_ms() - t0 < 10000);
    lst_buf_cleanup(&form);
}

static void test_thread_per_connection(void)
{
    scenario("thread per connection", "0");
}

static void test_event_mode(void)
{
    scenario("event mode", "2");
}

/* Redis before any thread exists (the fixture forks). */
static void test_setup(void)
{
    lst_log_init("test_gateway_in_faults", LST_LOG_WARN);
    (void)redis_fixture_restart; /* part of the fixture; this test does not restart Redis */
    const char *src = getenv("LST_SOURCE_DIR");
    REQUIRE(src != NULL);
    snprintf(src_dir, sizeof(src_dir), "%s", src);
    redis_up = redis_fixture_start(&redis, NULL);
    CHECK(redis_up);
}

static void test_teardown(void)
{
    redis_fixture_stop(&redis);
}

LST_TEST_MAIN(T(test_setup), T(test_thread_per_connection), T(test_event_mode), T(test_teardown))
