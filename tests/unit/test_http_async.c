/* lst/http event mode and async routes: a real server on 127.0.0.1 and an ephemeral port,
 * libcurl (easy and multi) as the client. The handles are completed from another thread, as
 * gateway-in's Kafka delivery reports do. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lst/http.h"
#include "lst/log.h"
#include "lst_test.h"

#define QUEUE_MAX 512
#define MANY      200

/* Handles taken by the async handler, completed by the completer thread (or the test). */
struct svc {
    pthread_mutex_t mu;
    struct lst_http_async *queue[QUEUE_MAX];
    size_t n;
    atomic_bool complete; /* the completer answers what is queued */
    atomic_bool quit;
    atomic_int taken;
};

static struct lst_http_async *h_async(void *ud, const struct lst_http_request *req,
                                      struct lst_http_response *resp)
{
    struct svc *v = ud;
    if (strcmp(lst_http_query(req, "now") ? lst_http_query(req, "now") : "", "1") == 0) {
        lst_http_reply(resp, 201, "text/plain", "now", 3);
        return NULL;
    }
    struct lst_http_async *a = lst_http_async_begin(req);
    if (a == NULL) {
        lst_http_problem(resp, 503, "busy", "Busy", NULL);
        return NULL;
    }
    pthread_mutex_lock(&v->mu);
    v->queue[v->n++] = a; /* QUEUE_MAX exceeds every test's concurrency */
    pthread_mutex_unlock(&v->mu);
    atomic_fetch_add(&v->taken, 1);
    return a;
}

static void h_plain(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    (void)ud;
    (void)req;
    lst_http_reply(resp, 200, "text/plain", "plain", 5);
}

/* Answers with the request body ("echo:<body>"), newest first. */
static void complete_one(struct lst_http_async *a)
{
    struct lst_http_response resp;
    struct lst_buf b;
    size_t len = 0;
    const char *body = lst_http_async_body(a, &len);
    lst_buf_init(&b);
    lst_buf_puts(&b, "echo:");
    lst_buf_append(&b, body, len);
    lst_http_response_init(&resp);
    lst_http_reply(&resp, 200, "text/plain", b.data, b.len);
    lst_http_async_complete(a, &resp);
    lst_http_response_cleanup(&resp);
    lst_buf_cleanup(&b);
}

static void *completer(void *arg)
{
    struct svc *v = arg;
    while (!atomic_load(&v->quit)) {
        struct lst_http_async *a = NULL;
        pthread_mutex_lock(&v->mu);
        if (atomic_load(&v->complete) && v->n > 0)
            a = v->queue[--v->n];
        pthread_mutex_unlock(&v->mu);
        if (a != NULL)
            complete_one(a);
        else
            lst_sleep_ms(2, NULL);
    }
    return NULL;
}

struct fixture {
    struct svc v;
    struct lst_http_server *server;
    pthread_t t;
    int port;
};

static bool start_limited(struct fixture *f, unsigned timeout_ms, bool auto_complete,
                          unsigned max_connections)
{
    static const struct lst_http_route routes[] = {{"GET", "/plain", false, h_plain}};
    static const struct lst_http_async_route aroutes[] = {
        {"POST", "/async", h_async},
        {"GET", "/async", h_async},
    };
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->v.mu, NULL);
    atomic_store(&f->v.complete, auto_complete);
    struct lst_http_config cfg = {
        .routes = routes,
        .nroutes = 1,
        .ud = &f->v,
        .max_connections = max_connections,
        .drain_ms = 300,
        .event_threads = 2,
        .async_routes = aroutes,
        .nasync_routes = LST_ARRAY_LEN(aroutes),
        .async_timeout_ms = timeout_ms,
    };
    if (lst_http_server_create(&cfg, &f->server) != LST_OK)
        return false;
    f->port = lst_http_server_port(f->server);
    pthread_create(&f->t, NULL, completer, &f->v);
    return true;
}

static bool start(struct fixture *f, unsigned timeout_ms, bool auto_complete)
{
    return start_limited(f, timeout_ms, auto_complete, 512);
}

/* Stops the server, then the completer: what is still queued is completed after the server is
 * gone (the handles must survive it). */
static void stop(struct fixture *f)
{
    lst_http_server_destroy(f->server);
    f->server = NULL;
    atomic_store(&f->v.complete, true);
    for (int i = 0; i < 500 && f->v.n > 0; i++)
        lst_sleep_ms(2, NULL);
    atomic_store(&f->v.quit, true);
    pthread_join(f->t, NULL);
    pthread_mutex_destroy(&f->v.mu);
}

/* ---- client ---- */

struct result {
    long status;
    CURLcode rc;
    struct lst_buf body;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    lst_buf_append(ud, p, size * n);
    return size * n;
}

static CURL *easy(int port, const char *path, const char *body, struct result *res)
{
    char url[256];
    memset(res, 0, sizeof(*res));
    lst_buf_init(&res->body);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &res->body);
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    return c;
}

static void request(int port, const char *path, const char *body, struct result *res)
{
    CURL *c = easy(port, path, body, res);
    res->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
    curl_easy_cleanup(c);
}

static bool body_is(const struct result *r, const char *want)
{
    return r->body.data != NULL && strcmp(r->body.data, want) == 0;
}

/* ---- tests ---- */

static void test_config_needs_event_mode(void)
{
    static const struct lst_http_async_route aroutes[] = {{"POST", "/a", h_async}};
    struct lst_http_server *s = NULL;
    struct lst_http_config cfg = {.async_routes = aroutes, .nasync_routes = 1};
    CHECK_EQ(lst_http_server_create(&cfg, &s), LST_ERR_CONFIG);
    CHECK(s == NULL);
}

static void test_answer_now_plain_and_builtin(void)
{
    struct fixture f;
    REQUIRE(start(&f, 2000, true));
    struct result r;
    request(f.port, "/async?now=1", NULL, &r);
    CHECK_EQ(r.status, 201);
    CHECK(body_is(&r, "now"));
    lst_buf_cleanup(&r.body);
    request(f.port, "/plain", NULL, &r);
    CHECK_EQ(r.status, 200);
    CHECK(body_is(&r, "plain"));
    lst_buf_cleanup(&r.body);
    request(f.port, "/healthz", NULL, &r);
    CHECK_EQ(r.status, 200);
    lst_buf_cleanup(&r.body);
    stop(&f);
}

static void test_resume_from_another_thread(void)
{
    struct fixture f;
    REQUIRE(start(&f, 5000, true));
    for (int i = 0; i < 20; i++) { /* keep-alive is not used by easy(): each is fresh */
        struct result r;
        request(f.port, "/async", "hello", &r);
        CHECK_EQ(r.rc, CURLE_OK);
        CHECK_EQ(r.status, 200);
        CHECK(body_is(&r, "echo:hello"));
        lst_buf_cleanup(&r.body);
    }
    CHECK_EQ(atomic_load(&f.v.taken), 20);
    stop(&f);
}

/* Event mode's connection pool is 16 KiB (http_server.c) and MHD resets it between keep-alive
 * requests: headers of about 8 KiB and a body eight times the pool, three times on one
 * connection, are still taken and answered whole. */
static void test_big_headers_keepalive(void)
{
    enum { BODY = 128 * 1024, HDR = 8000 };
    struct fixture f;
    REQUIRE(start(&f, 5000, true));
    char *body = malloc(BODY + 1), *want = malloc(BODY + 6), *hdr = malloc(HDR + 8);
    REQUIRE(body != NULL && want != NULL && hdr != NULL);
    memset(body, 'b', BODY);
    body[BODY] = '\0';
    snprintf(want, BODY + 6, "echo:%s", body);
    memcpy(hdr, "X-Big: ", 7);
    memset(hdr + 7, 'h', HDR);
    hdr[7 + HDR] = '\0';
    struct curl_slist *h = curl_slist_append(NULL, hdr);
    struct result r;
    CURL *c = easy(f.port, "/async", body, &r);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    for (int i = 0; i < 3; i++) {
        lst_buf_reset(&r.body);
        long connects = -1;
        CHECK_EQ(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
        CHECK_EQ(r.status, 200);
        CHECK(body_is(&r, want));
        CHECK_EQ(connects, i == 0 ? 1 : 0); /* the same connection after the first */
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    lst_buf_cleanup(&r.body);
    free(body);
    free(want);
    free(hdr);
    stop(&f);
}

/* No completion: the timer answers 503; the late completion is freed unsent. */
static void test_timeout_answer(void)
{
    struct fixture f;
    REQUIRE(start(&f, 300, false));
    struct result r;
    int64_t t0 = lst_mono_ms();
    request(f.port, "/async", "slow", &r);
    int64_t took = lst_mono_ms() - t0;
    CHECK_EQ(r.status, 503);
    CHECK(r.body.data != NULL && strstr(r.body.data, "timeout") != NULL);
    CHECK(took >= 250 && took < 2000);
    lst_buf_cleanup(&r.body);
    atomic_store(&f.v.complete, true); /* the late completion */
    for (int i = 0; i < 500 && f.v.n > 0; i++)
        lst_sleep_ms(2, NULL);
    CHECK_EQ(f.v.n, 0);
    request(f.port, "/plain", NULL, &r); /* the server is fine */
    CHECK_EQ(r.status, 200);
    lst_buf_cleanup(&r.body);
    stop(&f);
}

/* MANY connections suspended at once, then completed (newest first) from the other thread. */
struct bg {
    int port;
    struct result r;
};

static void *bg_request(void *arg)
{
    struct bg *b = arg;
    request(b->port, "/async", "pending", &b->r);
    return NULL;
}

/* MANY requests on MANY fresh connections, all suspended at once, then answered. */
static int many_at_once(struct fixture *f)
{
    CURLM *m = curl_multi_init();
    static struct result res[MANY];
    static char bodies[MANY][16];
    CURL *cs[MANY];
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)MANY);
    for (int i = 0; i < MANY; i++) {
        snprintf(bodies[i], sizeof(bodies[i]), "req%d", i);
        cs[i] = easy(f->port, "/async", bodies[i], &res[i]);
        curl_easy_setopt(cs[i], CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(cs[i], CURLOPT_FORBID_REUSE, 1L); /* closed when done */
        curl_multi_add_handle(m, cs[i]);
    }
    int running = 1;
    int64_t deadline = lst_mono_ms() + 20000;
    while (running > 0 && lst_mono_ms() < deadline) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 20, NULL);
        if (atomic_load(&f->v.taken) == MANY)
            atomic_store(&f->v.complete, true); /* all suspended at once: now answer */
    }
    CHECK_EQ(atomic_load(&f->v.taken), MANY);
    int ok = 0;
    for (int i = 0; i < MANY; i++) {
        char want[64];
        curl_easy_getinfo(cs[i], CURLINFO_RESPONSE_CODE, &res[i].status);
        snprintf(want, sizeof(want), "echo:%.15s", bodies[i]);
        ok += res[i].status == 200 && body_is(&res[i], want);
        curl_multi_remove_handle(m, cs[i]);
        curl_easy_cleanup(cs[i]);
        lst_buf_cleanup(&res[i].body);
    }
    curl_multi_cleanup(m);
    return ok;
}

static void test_many_concurrent(void)
{
    struct fixture f;
    REQUIRE(start(&f, 10000, false));
    CHECK_EQ(many_at_once(&f), MANY);
    stop(&f);
}

/* max_connections is the server's total, however the event threads share the connections:
 * bursts of exactly that many are served at once, three in a row (each arriving while the
 * last one's connections are being closed), and one connection more is refused. (MHD alone
 * splits its limit per thread; the benchmark's bursts of 256 against 256 then waited ~30 s.) */
static void test_connection_limit_is_total(void)
{
    struct fixture f;
    REQUIRE(start_limited(&f, 10000, false, MANY));
    for (int round = 0; round < 3; round++) {
        /* the next burst arrives while the server may still be closing the last one's */
        int64_t t0 = lst_mono_ms();
        atomic_store(&f.v.taken, 0);
        atomic_store(&f.v.complete, false);
        CHECK_EQ(many_at_once(&f), MANY);
        CHECK(lst_mono_ms() - t0 < 10000);
    }
    stop(&f);

    REQUIRE(start_limited(&f, 10000, false, 4));
    struct bg held[4];
    pthread_t ts[4];
    for (int i = 0; i < 4; i++) {
        held[i] = (struct bg){.port = f.port};
        pthread_create(&ts[i], NULL, bg_request, &held[i]);
    }
    for (int i = 0; i < 1000 && atomic_load(&f.v.taken) < 4; i++)
        lst_sleep_ms(5, NULL);
    CHECK_EQ(atomic_load(&f.v.taken), 4);
    struct result extra = {0};
    request(f.port, "/async", "one too many", &extra);
    CHECK_EQ(extra.status, 0); /* closed without an answer */
    CHECK_EQ(atomic_load(&f.v.taken), 4);
    lst_buf_cleanup(&extra.body);
    atomic_store(&f.v.complete, true);
    for (int i = 0; i < 4; i++) {
        pthread_join(ts[i], NULL);
        CHECK_EQ(held[i].r.status, 200);
        lst_buf_cleanup(&held[i].r.body);
    }
    stop(&f);
}

/* A request still pending at destroy gets 503; its handle is completed after the server is
 * gone. */
static void test_destroy_answers_pending(void)
{
    struct fixture f;
    REQUIRE(start(&f, 10000, false));
    struct bg b = {.port = f.port};
    pthread_t t;
    pthread_create(&t, NULL, bg_request, &b);
    for (int i = 0; i < 1000 && atomic_load(&f.v.taken) == 0; i++)
        lst_sleep_ms(5, NULL);
    CHECK_EQ(atomic_load(&f.v.taken), 1);
    int64_t t0 = lst_mono_ms();
    lst_http_server_destroy(f.server);
    f.server = NULL;
    CHECK(lst_mono_ms() - t0 < 3000);
    pthread_join(t, NULL);
    CHECK_EQ(b.r.status, 503);
    CHECK(b.r.body.data != NULL && strstr(b.r.body.data, "shutting-down") != NULL);
    lst_buf_cleanup(&b.r.body);
    stop(&f); /* completes the handle now */
    CHECK_EQ(f.v.n, 0);
}

/* Stopping right after a request, while an event thread still handles the client's close:
 * MHD 0.9.75's MHD_quiesce_daemon and an epoll thread both took the listen socket out of the
 * thread's epoll set, and the loser aborted the process ("Failed to remove listen FD from
 * epoll set", seen once in ~300 runs of this file under load). The server no longer quiesces;
 * this repeats the moment (bounded in count and time) and must not abort. */
static void test_stop_right_after_a_request(void)
{
    int64_t until = lst_mono_ms() + 8000;
    int rounds = 0;
    for (; rounds < 400 && lst_mono_ms() < until; rounds++) {
        struct fixture f;
        REQUIRE(start(&f, 2000, true));
        struct result r;
        request(f.port, rounds % 2 ? "/plain" : "/async", rounds % 2 ? NULL : "x", &r);
        CHECK_EQ(r.status, 200);
        lst_buf_cleanup(&r.body);
        stop(&f);
    }
    CHECK(rounds >= 20);
}

static void h_slow(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    (void)ud;
    (void)req;
    lst_sleep_ms(300, NULL); /* holds the one event thread */
    lst_http_reply(resp, 200, "text/plain", "slow", 4);
}

static int connect_to(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Reads until the end of the headers of one answer or the deadline; true for a 200. */
static bool answered_200(int fd, int64_t deadline)
{
    char buf[1024];
    size_t n = 0;
    while (n < sizeof(buf) - 1 && lst_mono_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r <= 0)
            return false;
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL)
            return strncmp(buf, "HTTP/1.1 200", 12) == 0;
    }
    return false;
}

/* MHD 0.9.75's epoll loop reads events in rounds of 128 and, after a full round, waits again
 * with the connections' idle timeout (30 s here) before handling them (http_server.c,
 * wake_event_threads). Made to happen: one event thread, held 300 ms by a slow request while
 * exactly 128 idle keep-alive connections each send a request; all 128 must be answered within
 * seconds (before the fix: after ~30 s, when the idle timeout ended the wait). */
static void test_128_ready_at_once(void)
{
    enum { N = 128 };
    static const struct lst_http_route routes[] = {{"GET", "/plain", false, h_plain},
                                                   {"GET", "/slow", false, h_slow}};
    static const struct lst_http_async_route aroutes[] = {{"GET", "/async", h_async}};
    struct svc v = {0};
    struct lst_http_server *server = NULL;
    struct lst_http_config cfg = {.routes = routes,
                                  .nroutes = 2,
                                  .ud = &v,
                                  .max_connections = 512,
                                  .drain_ms = 300,
                                  .event_threads = 1,
                                  .async_routes = aroutes,
                                  .nasync_routes = 1};
    REQUIRE(lst_http_server_create(&cfg, &server) == LST_OK);
    int port = lst_http_server_port(server), fds[N + 1];
    for (int i = 0; i <= N; i++)
        fds[i] = connect_to(port);
    lst_sleep_ms(300, NULL); /* every connection accepted and idle */
    static const char slow[] = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char plain[] = "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(fds[N] >= 0 && write(fds[N], slow, sizeof(slow) - 1) == (ssize_t)sizeof(slow) - 1);
    lst_sleep_ms(50, NULL); /* the event thread is in the slow handler now */
    for (int i = 0; i < N; i++)
        CHECK(fds[i] >= 0 && write(fds[i], plain, sizeof(plain) - 1) == (ssize_t)sizeof(plain) - 1);
    int64_t t0 = lst_mono_ms();
    int ok = 0;
    for (int i = 0; i < N; i++)
        ok += answered_200(fds[i], t0 + 5000);
    CHECK_EQ(ok, N);
    CHECK(lst_mono_ms() - t0 < 5000);
    for (int i = 0; i <= N; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    lst_http_server_destroy(server);
    pthread_mutex_destroy(&v.mu);
}

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    lst_log_init("test_http_async", LST_LOG_WARN);
}

static void test_all(void)
{
    setup();
    test_config_needs_event_mode();
}

LST_TEST_MAIN(T(test_all), T(test_answer_now_plain_and_builtin), T(test_resume_from_another_thread),
              T(test_timeout_answer), T(test_many_concurrent), T(test_destroy_answers_pending),
              T(test_big_headers_keepalive), T(test_connection_limit_is_total),
              T(test_stop_right_after_a_request), T(test_128_ready_at_once))
