/* lst/gateway multi client: many send_e2e (and send_e2e_bulk) transfers on one thread against a
 * fake Gateway served in-process by lst_http (thread per connection, so slow answers overlap).
 * Every outcome is compared field by field with what the blocking lst_gateway_send_e2e makes of the
 * same answer, and a raw socket server compares the request bytes of both. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lst/gateway.h"
#include "lst/http.h"
#include "lst/log.h"
#include "lst_test.h"

#define GW_ID     "*TESTGW1"
#define GW_SECRET "s+c r&et*9"
#define NONCE_HEX "000102030405060708090a0b0c0d0e0f1011121314151617"
#define MSGID     "0123456789abcdef"

/* ---- the fake Gateway ---- */

struct fake {
    pthread_mutex_t lock;
    int status;
    char answer[256];
    char retry_after[32]; /* "" for none */
    int sleep_ms;
    bool echo_box; /* answer the form's box value (16 hex) as the message ID */
    int requests;
    int inflight, max_inflight;
};

/* The value of "box=" in a form body, 16 chars at most. */
static void box_of(const char *body, char out[17])
{
    const char *p = strstr(body, "&box=");
    out[0] = '\0';
    if (p != NULL)
        snprintf(out, 17, "%.*s", (int)strcspn(p + 5, "&"), p + 5);
}

static void h_any(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct fake *f = ud;
    char answer[256], box[17];
    pthread_mutex_lock(&f->lock);
    f->requests++;
    if (++f->inflight > f->max_inflight)
        f->max_inflight = f->inflight;
    int status = f->status, sleep_ms = f->sleep_ms;
    snprintf(answer, sizeof(answer), "%s", f->answer);
    if (f->echo_box) {
        box_of(req->body, box);
        snprintf(answer, sizeof(answer), "%s", box);
    }
    if (f->retry_after[0] != '\0')
        lst_http_add_header(resp, "Retry-After", f->retry_after);
    pthread_mutex_unlock(&f->lock);
    if (sleep_ms > 0)
        lst_sleep_ms(sleep_ms, NULL);
    lst_http_reply(resp, status, "text/plain", answer, strlen(answer));
    pthread_mutex_lock(&f->lock);
    f->inflight--;
    pthread_mutex_unlock(&f->lock);
}

static const struct lst_http_route fake_routes[] = {{"POST", "/", true, h_any}};

struct fixture {
    struct fake fake;
    struct lst_http_server *server;
    uint16_t port;
};

static bool start(struct fixture *fx)
{
    memset(fx, 0, sizeof(*fx));
    signal(SIGPIPE, SIG_IGN);
    lst_log_init("test_gateway_multi", LST_LOG_WARN);
    pthread_mutex_init(&fx->fake.lock, NULL);
    fx->fake.status = 200;
    snprintf(fx->fake.answer, sizeof(fx->fake.answer), "%s", MSGID);
    struct lst_http_config cfg = {
        .bind_addr = "127.0.0.1",
        .max_connections = 32,
        .conn_timeout_s = 10,
        .drain_ms = 3000,
        .routes = fake_routes,
        .nroutes = LST_ARRAY_LEN(fake_routes),
        .ud = &fx->fake,
    };
    if (lst_http_server_create(&cfg, &fx->server) != LST_OK)
        return false;
    fx->port = lst_http_server_port(fx->server);
    return true;
}

static void stop(struct fixture *fx)
{
    lst_http_server_destroy(fx->server);
    pthread_mutex_destroy(&fx->fake.lock);
}

static void set_answer(struct fixture *fx, int status, const char *body, const char *retry_after,
                       int sleep_ms)
{
    pthread_mutex_lock(&fx->fake.lock);
    fx->fake.status = status;
    snprintf(fx->fake.answer, sizeof(fx->fake.answer), "%s", body);
    snprintf(fx->fake.retry_after, sizeof(fx->fake.retry_after), "%s", retry_after);
    fx->fake.sleep_ms = sleep_ms;
    pthread_mutex_unlock(&fx->fake.lock);
}

static int fake_requests(struct fixture *fx)
{
    pthread_mutex_lock(&fx->fake.lock);
    int n = fx->fake.requests;
    pthread_mutex_unlock(&fx->fake.lock);
    return n;
}

static struct lst_gateway_config config(uint16_t port, long timeout_ms, char url[64])
{
    snprintf(url, 64, "http://127.0.0.1:%u", port);
    struct lst_gateway_config cfg = {
        .base_url = url,
        .gateway_id = GW_ID,
        .secret = GW_SECRET,
        .connect_timeout_ms = 2000,
        .timeout_ms = timeout_ms,
    };
    return cfg;
}

/* ---- collecting done() calls ---- */

struct completion {
    unsigned slot;
    char msgid[LST_GATEWAY_MSGID_HEX + 1];
    struct lst_gateway_result res;
};

struct collector {
    struct completion c[256];
    int n;
    bool overflow;
};

static void on_done(void *ud, unsigned slot, const char *msgid,
                    const struct lst_gateway_result *res)
{
    struct collector *col = ud;
    if (col->n >= (int)LST_ARRAY_LEN(col->c)) {
        col->overflow = true;
        return;
    }
    struct completion *c = &col->c[col->n++];
    c->slot = slot;
    snprintf(c->msgid, sizeof(c->msgid), "%s", msgid);
    c->res = *res;
}

/* Runs m until nothing runs or 10 s passed; false on a run() error or the deadline. */
static bool drain(struct lst_gateway_multi *m, struct collector *col)
{
    int64_t deadline = lst_mono_ms() + 10000;
    while (lst_gateway_multi_running(m) > 0 && lst_mono_ms() < deadline) {
        if (lst_gateway_multi_run(m, 100, on_done, col) < 0)
            return false;
    }
    return lst_gateway_multi_running(m) == 0;
}

/* Reason texts may carry a time ("after 301 ms"): compare them without digits. */
static bool same_text_but_digits(const char *a, const char *b)
{
    while (*a != '\0' || *b != '\0') {
        while (*a >= '0' && *a <= '9')
            a++;
        while (*b >= '0' && *b <= '9')
            b++;
        if (*a != *b)
            return false;
        if (*a != '\0') {
            a++;
            b++;
        }
    }
    return true;
}

/* Every field of the two results; elapsed_ms within slack, reasons exactly unless timed. */
static void check_same(const struct lst_gateway_result *multi, const struct lst_gateway_result *blk,
                       int64_t slack_ms)
{
    CHECK_EQ(multi->outcome, blk->outcome);
    CHECK_EQ(multi->http_status, blk->http_status);
    CHECK_EQ(multi->curl_code, blk->curl_code);
    CHECK_EQ(multi->err, blk->err);
    CHECK_EQ(multi->in_doubt, blk->in_doubt);
    CHECK_EQ(multi->retry_after_ms, blk->retry_after_ms);
    CHECK_EQ(multi->connects, blk->connects);
    CHECK(llabs((long long)(multi->elapsed_ms - blk->elapsed_ms)) <= slack_ms);
    if (multi->curl_code == 0)
        CHECK_STREQ(multi->reason, blk->reason);
    else
        CHECK(same_text_but_digits(multi->reason, blk->reason));
}

static const struct lst_gateway_e2e msg_ok = {
    .to = "ECHOECHO", .nonce_hex = NONCE_HEX, .box_hex = "00AbcD"};

/* A fresh blocking client and a fresh multi client (two slots) on the same configuration, so
 * both open their first connection. */
struct clients {
    struct lst_gateway *gw;
    struct lst_gateway_multi *multi;
};

static bool clients_open(struct clients *c, uint16_t port, long timeout_ms)
{
    char url[64];
    struct lst_gateway_config cfg = config(port, timeout_ms, url);
    memset(c, 0, sizeof(*c));
    return lst_gateway_create(&cfg, &c->gw) == LST_OK &&
           lst_gateway_multi_create(&cfg, 2, &c->multi) == LST_OK;
}

static void clients_close(struct clients *c)
{
    lst_gateway_multi_destroy(c->multi);
    lst_gateway_destroy(c->gw);
}

/* Runs the multi client until its one transfer (on slot) is reported into *got. */
static bool one_completion(struct lst_gateway_multi *m, unsigned slot, struct completion *got)
{
    struct collector col = {.n = 0};
    bool ok = drain(m, &col) && col.n == 1 && col.c[0].slot == slot;
    if (ok)
        *got = col.c[0];
    return ok;
}

/* The same message and request ID through both clients; *blk and the one completion of the
 * multi are returned. */
static bool send_both(uint16_t port, long timeout_ms, const struct lst_gateway_e2e *m,
                      struct lst_gateway_result *blk, char blk_msgid[17], struct completion *got)
{
    struct clients c;
    bool ok = clients_open(&c, port, timeout_ms);
    if (ok) {
        blk_msgid[0] = '\0';
        lst_gateway_set_request_id(c.gw, "req-7");
        lst_gateway_send_e2e(c.gw, m, blk_msgid, blk);
        struct lst_gateway_result res;
        ok = lst_gateway_multi_send_e2e(c.multi, 1, m, "req-7", &res) == LST_OK &&
             one_completion(c.multi, 1, got);
    }
    clients_close(&c);
    return ok;
}

/* ---- tests ---- */

static void test_create(void)
{
    char url[64];
    struct lst_gateway_config cfg = config(1, 1000, url);
    struct lst_gateway_multi *m = NULL;
    CHECK_EQ(lst_gateway_multi_create(&cfg, 0, &m), LST_ERR_CONFIG);
    CHECK_EQ(lst_gateway_multi_create(&cfg, LST_GATEWAY_MULTI_SLOTS_MAX + 1, &m), LST_ERR_CONFIG);
    lst_log_set_level(LST_LOG_OFF); /* the config error is logged */
    cfg.secret = "";
    CHECK_EQ(lst_gateway_multi_create(&cfg, 4, &m), LST_ERR_CONFIG);
    cfg.secret = GW_SECRET;
    cfg.base_url = "ftp://x";
    CHECK_EQ(lst_gateway_multi_create(&cfg, 4, &m), LST_ERR_CONFIG);
    lst_log_set_level(LST_LOG_WARN);
    cfg.base_url = url;
    REQUIRE(lst_gateway_multi_create(&cfg, 4, &m) == LST_OK);
    CHECK_EQ(lst_gateway_multi_running(m), 0);
    /* Nothing runs: run() waits the timeout and reports 0. */
    int64_t t0 = lst_mono_ms();
    CHECK_EQ(lst_gateway_multi_run(m, 50, on_done, NULL), 0);
    CHECK(lst_mono_ms() - t0 >= 40);
    lst_gateway_multi_destroy(m);
    lst_gateway_multi_destroy(NULL);
}

/* Many sends on 8 slots, refilled from done(): each message done exactly once with its own
 * message ID, transfers overlapped, and a second round opens no new connection. */
struct many {
    struct lst_gateway_multi *m;
    int slot_msg[8]; /* message index running on each slot */
    int next, total;
    int done_count[80];
    bool wrong_msgid;
    long connects;
    bool start_failed;
};

static void make_box(int i, char out[17])
{
    /* Uppercase on purpose: the form carries it lowercased, the answer echoes that. */
    snprintf(out, 17, "%08X%08X", 0xABCD0000u + (unsigned)i, (unsigned)i * 7u);
}

static void start_next(struct many *mt, unsigned slot)
{
    if (mt->next >= mt->total)
        return;
    char box[17], rid[16];
    make_box(mt->next, box);
    snprintf(rid, sizeof(rid), "m-%d", mt->next);
    struct lst_gateway_e2e e = {.to = "ECHOECHO", .nonce_hex = NONCE_HEX, .box_hex = box};
    struct lst_gateway_result res;
    /* box and rid live on this frame only: the call copies them. */
    if (lst_gateway_multi_send_e2e(mt->m, slot, &e, rid, &res) != LST_OK)
        mt->start_failed = true;
    mt->slot_msg[slot] = mt->next++;
}

static void many_done(void *ud, unsigned slot, const char *msgid,
                      const struct lst_gateway_result *res)
{
    struct many *mt = ud;
    int i = mt->slot_msg[slot];
    char want[17];
    make_box(i, want);
    for (char *p = want; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
    mt->done_count[i]++;
    if (res->outcome != LST_GATEWAY_OK || strcmp(msgid, want) != 0)
        mt->wrong_msgid = true;
    mt->connects += res->connects;
    start_next(mt, slot); /* the slot is idle again */
}

static bool run_many(struct many *mt, int total)
{
    mt->total += total;
    for (unsigned s = 0; s < 8; s++)
        start_next(mt, s);
    int64_t deadline = lst_mono_ms() + 20000;
    while (lst_gateway_multi_running(mt->m) > 0 && lst_mono_ms() < deadline)
        lst_gateway_multi_run(mt->m, 100, many_done, mt);
    return lst_gateway_multi_running(mt->m) == 0;
}

static void test_many_concurrent(void)
{
    struct fixture fx;
    REQUIRE(start(&fx));
    pthread_mutex_lock(&fx.fake.lock);
    fx.fake.echo_box = true;
    fx.fake.sleep_ms = 30;
    pthread_mutex_unlock(&fx.fake.lock);
    char url[64];
    struct lst_gateway_config cfg = config(fx.port, 5000, url);
    struct many mt = {.total = 0};
    REQUIRE(lst_gateway_multi_create(&cfg, 8, &mt.m) == LST_OK);
    CHECK(run_many(&mt, 56));
    CHECK(!mt.start_failed);
    CHECK(!mt.wrong_msgid);
    for (int i = 0; i < 56; i++)
        CHECK_EQ(mt.done_count[i], 1);
    CHECK_EQ(fake_requests(&fx), 56);
    CHECK(fx.fake.max_inflight >= 4); /* they overlapped */
    /* One connection per slot at most, all kept in the pool. */
    CHECK(mt.connects >= 1 && mt.connects <= 8);
    printf("  56 sends on 8 slots: %ld connections, at most %d in flight\n", mt.connects,
           fx.fake.max_inflight);
    /* Second round on the same slots: all connections reused. */
    mt.connects = 0;
    CHECK(run_many(&mt, 8));
    for (int i = 56; i < 64; i++)
        CHECK_EQ(mt.done_count[i], 1);
    CHECK_EQ(mt.connects, 0);
    /* One send at a time on each slot (few handles added when connections go back to the
     * pool), then all slots at once again: the pool kept every connection. */
    for (unsigned s = 0; s < 8; s++) {
        mt.total++;
        start_next(&mt, s);
        int64_t deadline = lst_mono_ms() + 5000;
        while (lst_gateway_multi_running(mt.m) > 0 && lst_mono_ms() < deadline)
            lst_gateway_multi_run(mt.m, 100, many_done, &mt);
    }
    CHECK(run_many(&mt, 8));
    for (int i = 64; i < 80; i++)
        CHECK_EQ(mt.done_count[i], 1);
    CHECK_EQ(mt.connects, 0);
    CHECK(!mt.wrong_msgid);
    lst_gateway_multi_destroy(mt.m);
    stop(&fx);
}

/* Each status, with and without Retry-After, classified as the blocking call classifies it. */
static void test_statuses_like_blocking(void)
{
    struct fixture fx;
    REQUIRE(start(&fx));
    static const struct {
        int status;
        const char *body, *retry_after;
    } cases[] = {
        {200, MSGID, ""},
        {200, "0123456789ABCDEF\r\n", ""},
        {400, "", ""},
        {401, "", ""},
        {402, "", ""},
        {404, "", ""},
        {413, "", ""},
        {429, "", "7"},
        {429, "", ""},
        {500, "", ""},
        {503, "", "120"},
        {200, "not a message id", ""},
        {200, "0123456789abcde", ""},
    };
    for (size_t i = 0; i < LST_ARRAY_LEN(cases); i++) {
        set_answer(&fx, cases[i].status, cases[i].body, cases[i].retry_after, 0);
        struct lst_gateway_result blk;
        char blk_msgid[17];
        struct completion got;
        REQUIRE(send_both(fx.port, 5000, &msg_ok, &blk, blk_msgid, &got));
        check_same(&got.res, &blk, 200);
        CHECK_STREQ(got.msgid, blk.outcome == LST_GATEWAY_OK ? blk_msgid : "");
        CHECK_EQ(got.res.connects, 1);
        if (cases[i].status == 200 && i >= 11) {
            /* A malformed 2xx: RETRY and in doubt, the send may have been acted upon. */
            CHECK_EQ(got.res.outcome, LST_GATEWAY_RETRY);
            CHECK(got.res.in_doubt);
            CHECK_EQ(got.res.err, LST_ERR_INVALID);
        }
        if (cases[i].retry_after[0] != '\0')
            CHECK(got.res.retry_after_ms > 0);
    }
    CHECK_EQ(fake_requests(&fx), 2 * (int)LST_ARRAY_LEN(cases));
    stop(&fx);
}

static void test_timeout_like_blocking(void)
{
    struct fixture fx;
    REQUIRE(start(&fx));
    set_answer(&fx, 200, MSGID, "", 1000);
    struct lst_gateway_result blk;
    char blk_msgid[17];
    struct completion got;
    REQUIRE(send_both(fx.port, 300, &msg_ok, &blk, blk_msgid, &got));
    check_same(&got.res, &blk, 150);
    CHECK_EQ(got.res.outcome, LST_GATEWAY_RETRY);
    CHECK_EQ(got.res.curl_code, CURLE_OPERATION_TIMEDOUT);
    CHECK_EQ(got.res.err, LST_ERR_TIMEOUT);
    CHECK(got.res.in_doubt);
    CHECK(got.res.elapsed_ms >= 250 && got.res.elapsed_ms < 1000);
    CHECK(strstr(got.res.reason, "(limit 300 ms)") != NULL);
    CHECK_STREQ(got.msgid, "");
    stop(&fx);
}

static uint16_t closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void test_refused_like_blocking(void)
{
    uint16_t port = closed_port();
    REQUIRE(port != 0);
    struct lst_gateway_result blk;
    char blk_msgid[17];
    struct completion got;
    REQUIRE(send_both(port, 2000, &msg_ok, &blk, blk_msgid, &got));
    check_same(&got.res, &blk, 200);
    CHECK_EQ(got.res.outcome, LST_GATEWAY_RETRY);
    CHECK_EQ(got.res.curl_code, CURLE_COULDNT_CONNECT);
    CHECK_EQ(got.res.http_status, 0);
    CHECK_EQ(got.res.err, LST_ERR_HTTP);
    CHECK(!got.res.in_doubt); /* nothing went out */
    CHECK(strstr(got.res.reason, GW_SECRET) == NULL);
}

/* Refused before sending: the blocking call's result, no transfer, the slot stays idle. */
static void test_local_refusal(void)
{
    struct fixture fx;
    REQUIRE(start(&fx));
    char url[64];
    struct lst_gateway_config cfg = config(fx.port, 5000, url);
    struct lst_gateway *gw = NULL;
    struct lst_gateway_multi *m = NULL;
    REQUIRE(lst_gateway_create(&cfg, &gw) == LST_OK);
    REQUIRE(lst_gateway_multi_create(&cfg, 2, &m) == LST_OK);
    static char big_box[2 * (LST_GATEWAY_BOX_MAX + 1) + 1];
    memset(big_box, 'a', sizeof(big_box) - 1);
    const struct {
        struct lst_gateway_e2e msg;
        lst_err err;
    } cases[] = {
        {{.to = "echoecho", .nonce_hex = NONCE_HEX, .box_hex = "00"}, LST_ERR_INVALID},
        {{.to = "ECHOECHO", .nonce_hex = "00", .box_hex = "00"}, LST_ERR_INVALID},
        {{.to = "ECHOECHO", .nonce_hex = NONCE_HEX, .box_hex = "0g"}, LST_ERR_INVALID},
        {{.to = "ECHOECHO", .nonce_hex = NONCE_HEX, .box_hex = big_box}, LST_ERR_TOO_LARGE},
    };
    for (size_t i = 0; i < LST_ARRAY_LEN(cases); i++) {
        struct lst_gateway_result blk, res;
        char msgid[17];
        lst_gateway_send_e2e(gw, &cases[i].msg, msgid, &blk);
        CHECK_EQ(lst_gateway_multi_send_e2e(m, 0, &cases[i].msg, NULL, &res), cases[i].err);
        CHECK(memcmp(&res, &blk, sizeof(res)) == 0); /* both zeroed, then filled alike */
        CHECK_EQ(res.outcome, LST_GATEWAY_PERMANENT);
        CHECK_EQ(lst_gateway_multi_running(m), 0);
    }
    struct lst_gateway_result res;
    CHECK_EQ(lst_gateway_multi_send_e2e(m, 0, NULL, NULL, &res), LST_ERR_INVALID);
    CHECK_EQ(lst_gateway_multi_send_e2e(m, 0, &msg_ok, "a b", &res), LST_ERR_INVALID);
    CHECK_EQ(res.outcome, LST_GATEWAY_PERMANENT);
    CHECK_EQ(fake_requests(&fx), 0);
    CHECK_EQ(lst_gateway_multi_running(m), 0);
    /* The slot still works. */
    struct collector col = {.n = 0};
    CHECK_EQ(lst_gateway_multi_send_e2e(m, 0, &msg_ok, NULL, &res), LST_OK);
    CHECK(drain(m, &col));
    CHECK_EQ(col.n, 1);
    CHECK_STREQ(col.c[0].msgid, MSGID);
    lst_gateway_multi_destroy(m);
    lst_gateway_destroy(gw);
    stop(&fx);
}

static void test_busy_slot(void)
{
    struct fixture fx;
    REQUIRE(start(&fx));
    set_answer(&fx, 200, MSGID, "", 200);
    char url[64];
    struct lst_gateway_config cfg = config(fx.port, 5000, url);
    struct lst_gateway_multi *m = NULL;
    REQUIRE(lst_gateway_multi_create(&cfg, 2, &m) == LST_OK);
    struct lst_gateway_result res;
    CHECK_EQ(lst_gateway_multi_send_e2e(m, 0, &msg_ok, NULL, &res), LST_OK);
    CHECK_EQ(lst_gateway_multi_send_e2e(m, 0, &msg_ok, NULL, &res), LST_ERR_STATE);
    CHECK_EQ(res.outcome, LST_GATEWAY_RETRY);
    CHECK_EQ(res.err, LST_ERR_STATE);
    CHECK_EQ(lst_gateway_multi_send_e2e(m, 2, &msg_ok, NULL, &res), LST_ERR_RANGE);
    CHECK_EQ(lst_gateway_multi_running(m), 1);
    struct collector col = {.n = 0};
    CHECK(drain(m, &col));
    CHECK_EQ(col.n, 1);
    CHECK_EQ(fake_requests(&fx), 1);
    lst_gateway_multi_destroy(m);
    stop(&fx);
}

struct waker {
    struct lst_gateway_multi *m;
    int delay_ms;
};

static void *wake_main(void *p)
{
    struct waker *w = p;
    lst_sleep_ms(w->delay_ms, NULL);
    lst_gateway_multi_wakeup(w->m);
    return NULL;
}

/* A run() blocked in its wait returns when another thread wakes it, idle or not. */
static void test_wakeup(void)
{
    struct fixture fx;
    REQUIRE(start(&fx));
    set_answer(&fx, 200, MSGID, "", 1500);
    char url[64];
    struct lst_gateway_config cfg = config(fx.port, 5000, url);
    struct lst_gateway_multi *m = NULL;
    REQUIRE(lst_gateway_multi_create(&cfg, 1, &m) == LST_OK);
    struct collector col = {.n = 0};
    for (int busy = 0; busy < 2; busy++) {
        struct lst_gateway_result res;
        if (busy) {
            CHECK_EQ(lst_gateway_multi_send_e2e(m, 0, &msg_ok, NULL, &res), LST_OK);
            /* Let the request go out (the first run returns at once after a start). */
            for (int i = 0; i < 5; i++)
                lst_gateway_multi_run(m, 20, on_done, &col);
        }
        struct waker w = {.m = m, .delay_ms = 200};
        pthread_t th;
        REQUIRE(pthread_create(&th, NULL, wake_main, &w) == 0);
        int64_t t0 = lst_mono_ms();
        int n = lst_gateway_multi_run(m, 5000, on_done, &col);
        int64_t took = lst_mono_ms() - t0;
        pthread_join(th, NULL);
        CHECK_EQ(n, busy);
        CHECK(took >= 100 && took < 1000);
    }
    CHECK_EQ(col.n, 0);
    CHECK(drain(m, &col));
    CHECK_EQ(col.n, 1);
    CHECK_STREQ(col.c[0].msgid, MSGID);
    lst_gateway_multi_destroy(m);
    stop(&fx);
}

/* Destroy with transfers running: no done() calls, nothing leaked (ASan build). */
static void test_destroy_running(void)
{
    struct fixture fx;
    REQUIRE(start(&fx));
    set_answer(&fx, 200, MSGID, "", 300);
    char url[64];
    struct lst_gateway_config cfg = config(fx.port, 5000, url);
    struct lst_gateway_multi *m = NULL;
    REQUIRE(lst_gateway_multi_create(&cfg, 4, &m) == LST_OK);
    struct lst_gateway_result res;
    for (unsigned s = 0; s < 4; s++)
        CHECK_EQ(lst_gateway_multi_send_e2e(m, s, &msg_ok, "x", &res), LST_OK);
    struct collector col = {.n = 0};
    for (int i = 0; i < 3; i++)
        CHECK_EQ(lst_gateway_multi_run(m, 20, on_done, &col), 4);
    lst_gateway_multi_destroy(m);
    CHECK_EQ(col.n, 0);
    stop(&fx);
}

/* ---- the request bytes: a raw server records both calls ---- */

struct raw {
    int fd;
    uint16_t port;
    pthread_t thread;
    char req[2][4096];
    size_t len[2];
};

static bool raw_complete(const char *req, size_t len)
{
    const char *end = strstr(req, "\r\n\r\n");
    if (end == NULL)
        return false;
    const char *cl = strstr(req, "Content-Length: ");
    size_t body = cl != NULL && cl < end ? strtoul(cl + 16, NULL, 10) : 0;
    return len >= (size_t)(end + 4 - req) + body;
}

static void *raw_main(void *p)
{
    static const char reply[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 16\r\nConnection: close\r\n\r\n" MSGID;
    struct raw *r = p;
    for (int i = 0; i < 2; i++) {
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        while (r->len[i] < sizeof(r->req[i]) - 1 && !raw_complete(r->req[i], r->len[i])) {
            ssize_t n = read(c, r->req[i] + r->len[i], sizeof(r->req[i]) - 1 - r->len[i]);
            if (n <= 0)
                break;
            r->len[i] += (size_t)n;
        }
        if (write(c, reply, sizeof(reply) - 1) < 0)
            r->len[i] = 0;
        close(c);
    }
    return NULL;
}

static void test_request_bytes(void)
{
    struct raw r;
    memset(&r, 0, sizeof(r));
    r.fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(r.fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    REQUIRE(bind(r.fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(r.fd, 4) == 0);
    REQUIRE(getsockname(r.fd, (struct sockaddr *)&a, &alen) == 0);
    REQUIRE(pthread_create(&r.thread, NULL, raw_main, &r) == 0);
    struct lst_gateway_e2e m = msg_ok;
    m.no_delivery_receipts = true;
    m.no_push = true;
    struct lst_gateway_result blk;
    char blk_msgid[17];
    struct completion got;
    CHECK(send_both(ntohs(a.sin_port), 5000, &m, &blk, blk_msgid, &got));
    pthread_join(r.thread, NULL);
    close(r.fd);
    CHECK_EQ(blk.outcome, LST_GATEWAY_OK);
    CHECK_EQ(got.res.outcome, LST_GATEWAY_OK);
    CHECK_STREQ(got.msgid, MSGID);
    CHECK(r.len[0] > 0);
    CHECK_EQ(r.len[0], r.len[1]);
    CHECK(memcmp(r.req[0], r.req[1], r.len[0]) == 0);
    CHECK(strncmp(r.req[1], "POST /send_e2e HTTP/1.1\r\n", 25) == 0);
    CHECK(strstr(r.req[1], "\r\nX-Request-Id: req-7\r\n") != NULL);
    CHECK(strstr(r.req[1], "\r\nContent-Type: application/x-www-form-urlencoded\r\n") != NULL);
    CHECK(strstr(r.req[1],
                 "\r\n\r\nfrom=%2ATESTGW1&secret=s%2Bc%20r%26et%2A9&to=ECHOECHO&nonce=" NONCE_HEX
                 "&box=00abcd&noDeliveryReceipts=1&noPush=1") != NULL);
}

/* send_e2e_bulk through both clients: the same items (message IDs and error codes, in
 * order) and the same whole-call result, for good answers, malformed ones and failed calls. */
static bool bulk_both(uint16_t port, const struct lst_gateway_e2e *msgs, size_t n,
                      struct lst_gateway_result *blk, struct lst_gateway_bulk_item *blk_items,
                      struct completion *got, struct lst_gateway_bulk_item *items)
{
    struct clients c;
    bool ok = clients_open(&c, port, 5000);
    if (ok) {
        lst_gateway_set_request_id(c.gw, "req-1,req-2");
        lst_gateway_send_e2e_bulk(c.gw, msgs, n, blk_items, blk);
        struct lst_gateway_result res;
        ok = lst_gateway_multi_send_e2e_bulk(c.multi, 0, msgs, n, "req-1,req-2", items, &res) ==
                 LST_OK &&
             one_completion(c.multi, 0, got);
    }
    clients_close(&c);
    return ok;
}

static void test_bulk_like_blocking(void)
{
    struct fixture fx;
    REQUIRE(start(&fx));
    const struct lst_gateway_e2e msgs[2] = {msg_ok, msg_ok};
    static const struct {
        int status;
        const char *body;
        enum lst_gateway_outcome outcome;
    } cases[] = {
        {200, "[{\"messageId\":\"" MSGID "\"},{\"errorCode\":404}]", LST_GATEWAY_OK},
        {200, "[{\"messageId\":\"" MSGID "\"}]", LST_GATEWAY_RETRY}, /* one item short */
        {200, "[{\"messageId\":\"" MSGID "\"},{}]", LST_GATEWAY_RETRY},
        {200, "not json", LST_GATEWAY_RETRY},
        {429, "", LST_GATEWAY_RETRY},
        {413, "", LST_GATEWAY_PERMANENT},
        {500, "", LST_GATEWAY_RETRY},
    };
    for (size_t i = 0; i < LST_ARRAY_LEN(cases); i++) {
        set_answer(&fx, cases[i].status, cases[i].body, "", 0);
        struct lst_gateway_result blk;
        struct lst_gateway_bulk_item blk_items[2], items[2];
        struct completion got;
        memset(blk_items, 0, sizeof(blk_items));
        memset(items, 0, sizeof(items));
        REQUIRE(bulk_both(fx.port, msgs, 2, &blk, blk_items, &got, items));
        check_same(&got.res, &blk, 200);
        CHECK_EQ(got.res.outcome, cases[i].outcome);
        CHECK_STREQ(got.msgid, "");
        if (cases[i].status == 200)
            CHECK_EQ(got.res.in_doubt, cases[i].outcome != LST_GATEWAY_OK);
        if (got.res.outcome != LST_GATEWAY_OK)
            continue;
        for (size_t k = 0; k < 2; k++) {
            CHECK_EQ(items[k].outcome, blk_items[k].outcome);
            CHECK_EQ(items[k].error_code, blk_items[k].error_code);
            CHECK_STREQ(items[k].msgid, blk_items[k].msgid);
        }
        CHECK_STREQ(items[0].msgid, MSGID);
        CHECK_EQ(items[1].error_code, 404);
        CHECK_EQ(items[1].outcome, LST_GATEWAY_PERMANENT);
    }
    CHECK_EQ(fake_requests(&fx), 2 * (int)LST_ARRAY_LEN(cases));
    /* refused locally as a whole, like the blocking call: nothing sent, the slot stays idle */
    struct lst_gateway_e2e bad[2] = {msg_ok, msg_ok};
    bad[1].to = "bad";
    char url[64];
    struct lst_gateway_config cfg = config(fx.port, 5000, url);
    struct lst_gateway_multi *multi = NULL;
    struct lst_gateway_bulk_item items[2];
    struct lst_gateway_result res;
    REQUIRE(lst_gateway_multi_create(&cfg, 1, &multi) == LST_OK);
    CHECK_EQ(lst_gateway_multi_send_e2e_bulk(multi, 0, bad, 2, NULL, items, &res), LST_ERR_INVALID);
    CHECK_EQ(res.outcome, LST_GATEWAY_PERMANENT);
    CHECK_EQ(lst_gateway_multi_running(multi), 0u);
    lst_gateway_multi_destroy(multi);
    CHECK_EQ(fake_requests(&fx), 2 * (int)LST_ARRAY_LEN(cases));
    stop(&fx);
}

LST_TEST_MAIN(T(test_create), T(test_many_concurrent), T(test_statuses_like_blocking),
              T(test_timeout_like_blocking), T(test_refused_like_blocking), T(test_local_refusal),
              T(test_busy_slot), T(test_wakeup), T(test_destroy_running), T(test_request_bytes),
              T(test_bulk_like_blocking))
