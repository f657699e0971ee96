/* lst/http streamed responses (lst_http_stream): a real server on 127.0.0.1 and an ephemeral
 * port, a raw-socket client so the test sees exactly what arrives when. */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lst/http.h"
#include "lst/log.h"
#include "lst_test.h"

struct svc {
    atomic_int freed;    /* free_ud calls */
    atomic_int calls;    /* next calls */
    atomic_bool go_on;   /* the "wait" stream emits its second part once set */
    atomic_bool in_next; /* a next call is running */
};

struct counter {
    struct svc *svc;
    int n, max;
};

static void free_counter(void *ud)
{
    struct counter *c = ud;
    atomic_fetch_add(&c->svc->freed, 1);
    free(c);
}

/* five chunks, then the end */
static bool next_count(void *ud, struct lst_buf *out)
{
    struct counter *c = ud;
    atomic_fetch_add(&c->svc->calls, 1);
    lst_buf_printf(out, "chunk %d\n", c->n++);
    return c->n < c->max;
}

/* "first\n", then nothing (20 ms waits) until go_on, then "second\n" and the end */
static bool next_wait(void *ud, struct lst_buf *out)
{
    struct counter *c = ud;
    atomic_fetch_add(&c->svc->calls, 1);
    if (c->n == 0) {
        c->n = 1;
        lst_buf_puts(out, "first\n");
        return true;
    }
    if (!atomic_load(&c->svc->go_on)) {
        lst_sleep_ms(20, NULL);
        return true;
    }
    lst_buf_puts(out, "second\n");
    return false;
}

/* never ends, produces nothing: ended only by a disconnect or the server stopping */
static bool next_forever(void *ud, struct lst_buf *out)
{
    struct counter *c = ud;
    (void)out;
    atomic_store(&c->svc->in_next, true);
    atomic_fetch_add(&c->svc->calls, 1);
    lst_sleep_ms(50, NULL);
    atomic_store(&c->svc->in_next, false);
    return true;
}

static void start_stream(void *ud, struct lst_http_response *resp, lst_http_stream_fn fn, int max)
{
    struct counter *c = calloc(1, sizeof(*c));
    c->svc = ud;
    c->max = max;
    resp->status = 200;
    resp->content_type = "text/event-stream";
    lst_buf_puts(&resp->body, "hello\n");
    lst_http_add_header(resp, "Cache-Control", "no-cache");
    resp->stream.next = fn;
    resp->stream.free_ud = free_counter;
    resp->stream.ud = c;
}

static void h_count(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    (void)req;
    start_stream(ud, resp, next_count, 5);
}

static void h_wait(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    (void)req;
    start_stream(ud, resp, next_wait, 0);
}

static void h_forever(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    (void)req;
    start_stream(ud, resp, next_forever, 0);
}

/* sets a stream but no status: a 500 problem, and the stream's ud is still freed */
static void h_broken(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    (void)req;
    start_stream(ud, resp, next_count, 5);
    resp->status = 0;
}

static const struct lst_http_route routes[] = {
    {"GET", "/count", false, h_count},
    {"GET", "/wait", false, h_wait},
    {"GET", "/forever", false, h_forever},
    {"GET", "/broken", false, h_broken},
};

struct fixture {
    struct svc svc;
    struct lst_http_server *srv;
    int port;
};

static bool start(struct fixture *f)
{
    signal(SIGPIPE, SIG_IGN);
    lst_log_init("test_http_stream", getenv("LST_TEST_LOG") ? LST_LOG_DEBUG : LST_LOG_WARN);
    memset(f, 0, sizeof(*f));
    struct lst_http_config cfg = {
        .routes = routes,
        .nroutes = LST_ARRAY_LEN(routes),
        .ud = &f->svc,
        .drain_ms = 3000,
    };
    if (lst_http_server_create(&cfg, &f->srv) != LST_OK)
        return false;
    f->port = lst_http_server_port(f->srv);
    return true;
}

/* ---- a raw client ---- */

static int client_get(int port, const char *path, const char *method)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[256];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\n\r\n", method, path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads into b until it contains want (true) or the peer closed / ms passed (false). want
 * NULL: read until the peer closes. */
static bool read_until(int fd, struct lst_buf *b, const char *want, int64_t ms)
{
    int64_t deadline = lst_mono_ms() + ms;
    char tmp[4096];
    while (lst_mono_ms() < deadline) {
        if (want != NULL && b->data != NULL && strstr(b->data, want) != NULL)
            return true;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - lst_mono_ms());
        if (poll(&p, 1, left > 0 ? left : 0) <= 0)
            continue;
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n <= 0)
            return want == NULL;
        lst_buf_append(b, tmp, (size_t)n);
    }
    return want != NULL && b->data != NULL && strstr(b->data, want) != NULL;
}

static bool wait_int(atomic_int *v, int want, int64_t ms)
{
    int64_t deadline = lst_mono_ms() + ms;
    while (atomic_load(v) != want && lst_mono_ms() < deadline)
        lst_sleep_ms(5, NULL);
    return atomic_load(v) == want;
}

/* ---- tests ---- */

static void test_stream_to_the_end(void)
{
    struct fixture f;
    struct lst_buf b;
    REQUIRE(start(&f));
    lst_buf_init(&b);
    int fd = client_get(f.port, "/count", "GET");
    REQUIRE(fd >= 0);
    CHECK(read_until(fd, &b, "\r\n0\r\n\r\n", 5000)); /* the last chunk of chunked encoding */
    REQUIRE(b.data != NULL);
    CHECK(strstr(b.data, "HTTP/1.1 200") == b.data);
    CHECK(strcasestr(b.data, "Transfer-Encoding: chunked") != NULL);
    CHECK(strcasestr(b.data, "Content-Type: text/event-stream") != NULL);
    CHECK(strcasestr(b.data, "Cache-Control: no-cache") != NULL);
    /* the body first, then the chunks in order */
    const char *h = strstr(b.data, "hello\n"), *c0 = strstr(b.data, "chunk 0\n"),
               *c4 = strstr(b.data, "chunk 4\n");
    CHECK(h != NULL && c0 != NULL && c4 != NULL && h < c0 && c0 < c4);
    CHECK(strstr(b.data, "chunk 5") == NULL);
    CHECK_EQ(atomic_load(&f.svc.calls), 5);
    close(fd);
    CHECK(wait_int(&f.svc.freed, 1, 3000));
    lst_buf_cleanup(&b);
    lst_http_server_destroy(f.srv);
    CHECK_EQ(atomic_load(&f.svc.freed), 1);
}

static void test_bytes_arrive_before_the_end(void)
{
    struct fixture f;
    struct lst_buf b;
    REQUIRE(start(&f));
    lst_buf_init(&b);
    int fd = client_get(f.port, "/wait", "GET");
    REQUIRE(fd >= 0);
    /* "first" is on the wire while the stream is still open */
    CHECK(read_until(fd, &b, "first\n", 3000));
    CHECK(b.data == NULL || strstr(b.data, "second") == NULL);
    atomic_store(&f.svc.go_on, true);
    CHECK(read_until(fd, &b, "\r\n0\r\n\r\n", 3000));
    CHECK(b.data != NULL && strstr(b.data, "second\n") != NULL);
    close(fd);
    CHECK(wait_int(&f.svc.freed, 1, 3000));
    lst_buf_cleanup(&b);
    lst_http_server_destroy(f.srv);
}

static void test_client_disconnect_ends_the_stream(void)
{
    struct fixture f;
    struct lst_buf b;
    REQUIRE(start(&f));
    lst_buf_init(&b);
    int fd = client_get(f.port, "/forever", "GET");
    REQUIRE(fd >= 0);
    CHECK(read_until(fd, &b, "hello\n", 3000));
    close(fd);
    /* noticed between two next calls (peek), not only at a failed write */
    CHECK(wait_int(&f.svc.freed, 1, 3000));
    int calls = atomic_load(&f.svc.calls);
    lst_sleep_ms(200, NULL);
    CHECK_EQ(atomic_load(&f.svc.calls), calls); /* next is not called any more */
    lst_buf_cleanup(&b);
    lst_http_server_destroy(f.srv);
    CHECK_EQ(atomic_load(&f.svc.freed), 1);
}

static void test_server_stop_ends_open_streams(void)
{
    struct fixture f;
    struct lst_buf b1, b2;
    REQUIRE(start(&f));
    lst_buf_init(&b1);
    lst_buf_init(&b2);
    int fd1 = client_get(f.port, "/forever", "GET");
    int fd2 = client_get(f.port, "/forever", "GET");
    REQUIRE(fd1 >= 0 && fd2 >= 0);
    CHECK(read_until(fd1, &b1, "hello\n", 3000));
    CHECK(read_until(fd2, &b2, "hello\n", 3000));
    int64_t t0 = lst_mono_ms();
    lst_http_server_destroy(f.srv);
    int64_t took = lst_mono_ms() - t0;
    CHECK(took < 1500); /* not the 3 s drain: the streams end at once */
    CHECK_EQ(atomic_load(&f.svc.freed), 2);
    /* the client sees a clean end of the chunked body */
    CHECK(read_until(fd1, &b1, "\r\n0\r\n\r\n", 2000));
    close(fd1);
    close(fd2);
    lst_buf_cleanup(&b1);
    lst_buf_cleanup(&b2);
}

static void test_bad_status_and_head_free_the_stream(void)
{
    struct fixture f;
    struct lst_buf b;
    REQUIRE(start(&f));
    lst_buf_init(&b);
    int fd = client_get(f.port, "/broken", "GET");
    REQUIRE(fd >= 0);
    CHECK(read_until(fd, &b, "internal-error", 3000));
    CHECK(b.data != NULL && strstr(b.data, "HTTP/1.1 500") == b.data);
    close(fd);
    CHECK(wait_int(&f.svc.freed, 1, 3000));
    CHECK_EQ(atomic_load(&f.svc.calls), 0);

    lst_buf_reset(&b);
    fd = client_get(f.port, "/count", "HEAD");
    REQUIRE(fd >= 0);
    CHECK(read_until(fd, &b, "\r\n\r\n", 3000));
    CHECK(b.data != NULL && strstr(b.data, "HTTP/1.1 200") == b.data);
    close(fd);
    CHECK(wait_int(&f.svc.freed, 2, 3000));
    lst_buf_cleanup(&b);
    lst_http_server_destroy(f.srv);
    CHECK_EQ(atomic_load(&f.svc.freed), 2);
}

LST_TEST_MAIN(T(test_stream_to_the_end), T(test_bytes_arrive_before_the_end),
              T(test_client_disconnect_ends_the_stream), T(test_server_stop_ends_open_streams),
              T(test_bad_status_and_head_free_the_stream))
