/* lst/http: a real server on 127.0.0.1 and an ephemeral port, libcurl as the client. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "lst/http.h"
#include "lst/log.h"
#include "lst/metrics.h"
#include "lst_test.h"

#define MAX_BODY 1024

struct svc {
    atomic_bool ready;
    atomic_int sleepers_started;
};

/* ---- handlers ---- */

/* Appends "name=value;" (just "name;" without a value) to the lst_buf ud. */
static bool query_line(void *ud, const char *name, const char *value)
{
    lst_buf_printf(ud, "%s%s%s;", name, value != NULL ? "=" : "", value != NULL ? value : "");
    return true;
}

static void h_echo(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    (void)ud;
    struct lst_buf all;
    const char *q = lst_http_query(req, "q");
    const char *h = lst_http_header(req, "x-test");
    lst_buf_init(&all);
    size_t n = lst_http_query_each(req, query_line, &all);
    lst_buf_printf(&all, "%zu", n);
    lst_http_reply(resp, 201, "application/octet-stream", req->body, req->body_len);
    lst_http_add_header(resp, "X-Query", q ? q : "(none)");
    lst_http_add_header(resp, "X-Hdr", h ? h : "(none)");
    lst_http_add_header(resp, "X-Remote", req->remote_addr);
    lst_http_add_header(resp, "Location", "/echo/1");
    lst_http_add_header(resp, "Access-Control-Allow-Origin", "*");
    lst_http_add_header(resp, "X-Queries", all.data);
    lst_buf_cleanup(&all);
}

static void h_sleep(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct svc *svc = ud;
    (void)req;
    atomic_fetch_add(&svc->sleepers_started, 1);
    lst_sleep_ms(200, NULL);
    const char body[] = "{\"slept\":true}";
    lst_http_reply(resp, 200, NULL, body, sizeof(body) - 1);
}

static void h_items(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    (void)ud;
    resp->status = 200;
    lst_buf_printf(&resp->body, "%s|%s|%s", req->method, req->route, req->path);
    resp->content_type = "text/plain";
}

static void h_nothing(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    (void)ud;
    (void)req;
    (void)resp;
}

/* The file h_file answers from (lst_http_reply_fd): FILE_LEN bytes of a pattern, more than
 * one socket buffer, so sendfile runs more than once. */
#define FILE_LEN (300 * 1024 + 7)
static char file_path[64];
static atomic_bool replaced_fd_closed;

static unsigned char file_byte(size_t i)
{
    return (unsigned char)((i * 31u + i / 251u) & 0xffu);
}

/* /file/full: the file with a Content-Type of its own (a header, replacing the literal);
 * /file/empty: size 0; /file/replaced: a file answer replaced by a problem (its fd closed). */
static void h_file(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    (void)ud;
    int fd = open(file_path, O_RDONLY | O_CLOEXEC);
    if (strcmp(req->path, "/file/full") == 0) {
        lst_http_reply_fd(resp, 200, "application/octet-stream", fd, FILE_LEN);
        lst_http_add_header(resp, "Content-Type", "image/x-test");
    } else if (strcmp(req->path, "/file/empty") == 0) {
        lst_http_reply_fd(resp, 200, "text/plain", fd, 0);
    } else {
        lst_http_reply_fd(resp, 200, "text/plain", fd, FILE_LEN);
        lst_http_problem(resp, 404, "not-found", "Not Found", "replaced");
        /* nothing else opens files meanwhile: the client waits for this answer */
        atomic_store(&replaced_fd_closed, fcntl(fd, F_GETFD) == -1 && errno == EBADF);
    }
}

static bool ready_cb(void *ud, struct lst_buf *why)
{
    struct svc *svc = ud;
    if (atomic_load(&svc->ready))
        return true;
    lst_buf_puts(why, "kafka \"down\"");
    return false;
}

static const struct lst_http_route routes[] = {
    {"POST", "/echo", false, h_echo},      {"PUT", "/echo", false, h_echo},
    {"GET", "/sleep", false, h_sleep},     {"GET", "/items/", true, h_items},
    {"DELETE", "/items/", true, h_items},  {"GET", "/items/special", false, h_items},
    {"GET", "/nothing", false, h_nothing}, {"GET", "/file/", true, h_file},
};

struct fixture {
    struct svc svc;
    struct lst_metrics *metrics;
    struct lst_http_server *server;
    int port;
};

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool start(struct fixture *f)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_init_once);
    memset(f, 0, sizeof(*f));
    signal(SIGPIPE, SIG_IGN);
    lst_log_init("test_http", LST_LOG_WARN);
    atomic_init(&f->svc.ready, true);
    atomic_init(&f->svc.sleepers_started, 0);
    f->metrics = lst_metrics_create();
    struct lst_http_config cfg = {
        .bind_addr = "127.0.0.1",
        .port = 0,
        .max_connections = 32,
        .max_body = MAX_BODY,
        .conn_timeout_s = 5,
        .drain_ms = 3000,
        .routes = routes,
        .nroutes = LST_ARRAY_LEN(routes),
        .ud = &f->svc,
        .ready = ready_cb,
        .metrics = f->metrics,
    };
    if (f->metrics == NULL || lst_http_server_create(&cfg, &f->server) != LST_OK)
        return false;
    f->port = lst_http_server_port(f->server);
    return f->port > 0;
}

static void stop(struct fixture *f)
{
    lst_http_server_destroy(f->server);
    lst_metrics_destroy(f->metrics);
}

/* ---- a small libcurl client ---- */

enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };

struct result {
    long status;
    CURLcode rc;
    struct lst_buf body;
    struct lst_buf headers;
};

struct upload {
    const char *data;
    size_t len;
    size_t off;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    lst_buf_append(ud, p, size * n);
    return size * n;
}

static size_t on_read(char *p, size_t size, size_t n, void *ud)
{
    struct upload *u = ud;
    size_t left = u->len - u->off;
    size_t take = left < size * n ? left : size * n;
    memcpy(p, u->data + u->off, take);
    u->off += take;
    return take;
}

static void result_free(struct result *r)
{
    lst_buf_cleanup(&r->body);
    lst_buf_cleanup(&r->headers);
}

static void request(int port, const char *method, const char *path, const char *body, size_t len,
                    enum body_mode mode, struct result *res)
{
    char url[256];
    struct upload up = {body, len, 0};
    struct curl_slist *hdrs = NULL;
    memset(res, 0, sizeof(*res));
    lst_buf_init(&res->body);
    lst_buf_init(&res->headers);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    if (c == NULL) {
        res->rc = CURLE_FAILED_INIT;
        return;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &res->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &res->headers);
    hdrs = curl_slist_append(hdrs, "X-Test: hello");
    if (mode == BODY_LENGTH) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else if (mode == BODY_CHUNKED) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &up);
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    res->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
}

static void get(int port, const char *path, struct result *res)
{
    request(port, "GET", path, NULL, 0, BODY_NONE, res);
}

/* The value of a response header (case-insensitive name) copied into out, "" when absent. */
static const char *header(const struct result *r, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    const char *p = r->headers.data;
    size_t n = strlen(name);
    while (p != NULL && *p != '\0') {
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL)
            break;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)(eol - v), v);
            break;
        }
        p = eol + 2;
    }
    return out;
}

/* Checks an RFC 9457 body: members type, title, status, detail with the given values. */
static void check_problem(const struct result *r, int status, const char *slug)
{
    char ct[128], want_type[128];
    CHECK_EQ(r->status, status);
    CHECK_STREQ(header(r, "Content-Type", ct, sizeof(ct)), "application/problem+json");
    json_object *o = json_tokener_parse(r->body.data ? r->body.data : "");
    REQUIRE(o != NULL);
    json_object *v = NULL;
    snprintf(want_type, sizeof(want_type), "urn:leitstand:problem:%s", slug);
    CHECK(json_object_object_get_ex(o, "type", &v) &&
          strcmp(json_object_get_string(v), want_type) == 0);
    CHECK(json_object_object_get_ex(o, "title", &v) && json_object_is_type(v, json_type_string) &&
          json_object_get_string_len(v) > 0);
    CHECK(json_object_object_get_ex(o, "status", &v) && json_object_is_type(v, json_type_int) &&
          json_object_get_int(v) == status);
    CHECK(json_object_object_get_ex(o, "detail", &v) && json_object_is_type(v, json_type_string));
    json_object_put(o);
}

/* ---- tests ---- */

static void test_problem_helper_and_headers(void)
{
    struct lst_http_response resp;
    memset(&resp, 0, sizeof(resp));
    lst_buf_init(&resp.body);
    CHECK_EQ(lst_http_problem(&resp, 422, "invalid-field", "Invalid \"field\"", "field %s: %d",
                              "x\ny", 5),
             LST_OK);
    CHECK_EQ(resp.status, 422);
    CHECK_STREQ(resp.content_type, "application/problem+json");
    CHECK_STREQ(resp.body.data, "{\"type\":\"urn:leitstand:problem:invalid-field\",\"title\":"
                                "\"Invalid \\\"field\\\"\",\"status\":422,\"detail\":"
                                "\"field x\\ny: 5\"}");
    CHECK_EQ(lst_http_add_header(&resp, "Location", "/a\r\nSet-Cookie: x"), LST_ERR_INVALID);
    CHECK_EQ(lst_http_add_header(&resp, "Bad:Name", "v"), LST_ERR_INVALID);
    CHECK_EQ(lst_http_add_header(&resp, "", "v"), LST_ERR_INVALID);
    for (int i = 0; i < LST_HTTP_MAX_HEADERS; i++)
        CHECK_EQ(lst_http_add_header(&resp, "X-A", "b"), LST_OK);
    CHECK_EQ(lst_http_add_header(&resp, "X-A", "b"), LST_ERR_RANGE);
    for (size_t i = 0; i < resp.nheaders; i++) {
        free(resp.headers[i].name);
        free(resp.headers[i].value);
    }
    lst_buf_cleanup(&resp.body);
    lst_http_server_destroy(NULL);
}

static void test_config_errors(void)
{
    struct lst_http_server *s = NULL;
    struct lst_http_route bad[] = {{"GET", "no-slash", false, h_items}};
    struct lst_http_config cfg = {.bind_addr = "not-an-ip"};
    lst_log_set_level(LST_LOG_OFF);
    CHECK_EQ(lst_http_server_create(&cfg, &s), LST_ERR_CONFIG);
    CHECK(s == NULL);
    cfg.bind_addr = "127.0.0.1";
    cfg.routes = bad;
    cfg.nroutes = 1;
    CHECK_EQ(lst_http_server_create(&cfg, &s), LST_ERR_CONFIG);
    bad[0].path = "/ok";
    bad[0].handler = NULL;
    CHECK_EQ(lst_http_server_create(&cfg, &s), LST_ERR_CONFIG);
    lst_log_set_level(LST_LOG_WARN);
}

static void test_port_in_use(void)
{
    struct fixture f;
    REQUIRE(start(&f));
    struct lst_http_server *s = NULL;
    struct lst_http_config cfg = {.bind_addr = "127.0.0.1", .port = (uint16_t)f.port};
    lst_log_set_level(LST_LOG_OFF);
    CHECK_EQ(lst_http_server_create(&cfg, &s), LST_ERR_HTTP);
    lst_log_set_level(LST_LOG_WARN);
    CHECK(s == NULL);
    stop(&f);
}

static void test_healthz_readyz(void)
{
    struct fixture f;
    struct result r;
    char ct[128];
    REQUIRE(start(&f));
    get(f.port, "/healthz", &r);
    CHECK_EQ(r.status, 200);
    CHECK_STREQ(r.body.data, "{\"status\":\"ok\"}");
    CHECK_STREQ(header(&r, "Content-Type", ct, sizeof(ct)), "application/json");
    result_free(&r);

    get(f.port, "/readyz", &r);
    CHECK_EQ(r.status, 200);
    CHECK_STREQ(r.body.data, "{\"status\":\"ready\"}");
    result_free(&r);

    atomic_store(&f.svc.ready, false);
    get(f.port, "/readyz", &r);
    CHECK_EQ(r.status, 503);
    CHECK_STREQ(r.body.data, "{\"status\":\"not_ready\",\"reason\":\"kafka \\\"down\\\"\"}");
    result_free(&r);

    request(f.port, "HEAD", "/healthz", NULL, 0, BODY_NONE, &r);
    CHECK_EQ(r.rc, CURLE_OK);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body.len, 0);
    result_free(&r);
    stop(&f);
}

static void test_metrics_endpoint(void)
{
    struct fixture f;
    struct result r;
    char ct[128];
    REQUIRE(start(&f));
    get(f.port, "/healthz", &r);
    result_free(&r);
    get(f.port, "/healthz", &r);
    result_free(&r);
    get(f.port, "/no/such/path", &r);
    result_free(&r);
    get(f.port, "/items/42", &r);
    result_free(&r);

    get(f.port, "/metrics", &r);
    CHECK_EQ(r.status, 200);
    CHECK_STREQ(header(&r, "Content-Type", ct, sizeof(ct)),
                "text/plain; version=0.0.4; charset=utf-8");
    const char *b = r.body.data ? r.body.data : "";
    CHECK(strstr(b, "# TYPE lst_http_requests_total counter") != NULL);
    CHECK(strstr(b, "lst_http_requests_total{route=\"/healthz\",method=\"GET\",code=\"200\"} 2\n"));
    CHECK(
        strstr(b, "lst_http_requests_total{route=\"unmatched\",method=\"GET\",code=\"404\"} 1\n"));
    /* a prefix route is labelled with its pattern, not the requested path */
    CHECK(strstr(b, "lst_http_requests_total{route=\"/items/\",method=\"GET\",code=\"200\"} 1\n"));
    CHECK(strstr(b, "lst_http_request_duration_seconds_count{route=\"/healthz\",method=\"GET\"} "
                    "2\n"));
    CHECK(strstr(b, "/items/42") == NULL);
    result_free(&r);
    stop(&f);
}

static void test_echo_post_and_response_headers(void)
{
    struct fixture f;
    struct result r;
    char v[128];
    REQUIRE(start(&f));
    const char body[] = "{\"text\":\"gr\xc3\xbc\xc3\x9f\x65\"}";
    request(f.port, "POST", "/echo?q=a%20b&x=1", body, sizeof(body) - 1, BODY_LENGTH, &r);
    CHECK_EQ(r.status, 201);
    CHECK_EQ(r.body.len, sizeof(body) - 1);
    CHECK(r.body.data && memcmp(r.body.data, body, sizeof(body) - 1) == 0);
    CHECK_STREQ(header(&r, "X-Query", v, sizeof(v)), "a b");
    CHECK_STREQ(header(&r, "X-Queries", v, sizeof(v)), "q=a b;x=1;2");
    CHECK_STREQ(header(&r, "X-Hdr", v, sizeof(v)), "hello");
    CHECK_STREQ(header(&r, "X-Remote", v, sizeof(v)), "127.0.0.1");
    CHECK_STREQ(header(&r, "Location", v, sizeof(v)), "/echo/1");
    CHECK_STREQ(header(&r, "Access-Control-Allow-Origin", v, sizeof(v)), "*");
    CHECK_STREQ(header(&r, "Content-Type", v, sizeof(v)), "application/octet-stream");
    result_free(&r);

    /* chunked body below the limit, exactly the limit, binary bytes */
    char big[MAX_BODY];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7);
    request(f.port, "PUT", "/echo", big, sizeof(big), BODY_CHUNKED, &r);
    CHECK_EQ(r.status, 201);
    CHECK(r.body.len == sizeof(big) && memcmp(r.body.data, big, sizeof(big)) == 0);
    result_free(&r);

    /* empty body */
    request(f.port, "POST", "/echo", "", 0, BODY_LENGTH, &r);
    CHECK_EQ(r.status, 201);
    CHECK_EQ(r.body.len, 0);
    CHECK_STREQ(header(&r, "X-Queries", v, sizeof(v)), "0");
    result_free(&r);

    /* every parameter in order: repeats (lst_http_query shows only the first), a flag
     * without value, an empty value */
    request(f.port, "POST", "/echo?q=1&flag&q=2&e=&x%3Dy=%26", "", 0, BODY_LENGTH, &r);
    CHECK_EQ(r.status, 201);
    CHECK_STREQ(header(&r, "X-Query", v, sizeof(v)), "1");
    CHECK_STREQ(header(&r, "X-Queries", v, sizeof(v)), "q=1;flag;q=2;e=;x=y=&;5");
    result_free(&r);
    stop(&f);
}

static void test_body_limit(void)
{
    struct fixture f;
    struct result r;
    REQUIRE(start(&f));
    static char big[MAX_BODY * 5];
    memset(big, 'x', sizeof(big));

    /* Content-Length above the limit: answered before the body is read */
    request(f.port, "POST", "/echo", big, MAX_BODY + 1, BODY_LENGTH, &r);
    check_problem(&r, 413, "payload-too-large");
    result_free(&r);
    request(f.port, "POST", "/echo", big, sizeof(big), BODY_LENGTH, &r);
    check_problem(&r, 413, "payload-too-large");
    result_free(&r);

    /* no Content-Length: counted while reading */
    request(f.port, "POST", "/echo", big, MAX_BODY + 1, BODY_CHUNKED, &r);
    check_problem(&r, 413, "payload-too-large");
    result_free(&r);
    request(f.port, "POST", "/echo", big, sizeof(big), BODY_CHUNKED, &r);
    check_problem(&r, 413, "payload-too-large");
    result_free(&r);

    /* a huge chunked upload is cut off; the server keeps serving */
    size_t huge_len = 3u * 1024 * 1024;
    char *huge = malloc(huge_len);
    REQUIRE(huge != NULL);
    memset(huge, 'y', huge_len);
    request(f.port, "POST", "/echo", huge, huge_len, BODY_CHUNKED, &r);
    CHECK(r.status != 201);
    result_free(&r);
    free(huge);

    get(f.port, "/healthz", &r);
    CHECK_EQ(r.status, 200);
    result_free(&r);
    stop(&f);
}

static void test_not_found_method_not_allowed_500(void)
{
    struct fixture f;
    struct result r;
    char v[128];
    REQUIRE(start(&f));
    get(f.port, "/nope", &r);
    check_problem(&r, 404, "not-found");
    result_free(&r);

    /* /echo exists for POST and PUT only */
    get(f.port, "/echo", &r);
    check_problem(&r, 405, "method-not-allowed");
    CHECK_STREQ(header(&r, "Allow", v, sizeof(v)), "POST, PUT");
    result_free(&r);
    request(f.port, "DELETE", "/healthz", NULL, 0, BODY_NONE, &r);
    check_problem(&r, 405, "method-not-allowed");
    CHECK_STREQ(header(&r, "Allow", v, sizeof(v)), "GET, HEAD");
    result_free(&r);
    /* with a body the early answer must not confuse the connection */
    request(f.port, "POST", "/healthz", "abc", 3, BODY_LENGTH, &r);
    check_problem(&r, 405, "method-not-allowed");
    result_free(&r);

    /* prefix routes: the exact route wins, other paths go to the prefix */
    get(f.port, "/items/special", &r);
    CHECK_STREQ(r.body.data, "GET|/items/special|/items/special");
    result_free(&r);
    request(f.port, "DELETE", "/items/7", NULL, 0, BODY_NONE, &r);
    CHECK_STREQ(r.body.data, "DELETE|/items/|/items/7");
    result_free(&r);
    request(f.port, "PATCH", "/items/7", NULL, 0, BODY_NONE, &r);
    check_problem(&r, 405, "method-not-allowed");
    CHECK_STREQ(header(&r, "Allow", v, sizeof(v)), "GET, HEAD, DELETE");
    result_free(&r);

    /* a handler that set nothing */
    lst_log_set_level(LST_LOG_OFF);
    get(f.port, "/nothing", &r);
    lst_log_set_level(LST_LOG_WARN);
    check_problem(&r, 500, "internal-error");
    result_free(&r);
    stop(&f);
}

struct client {
    int port;
    const char *path;
    long status;
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    struct result r;
    get(c->port, c->path, &r);
    c->status = r.status;
    result_free(&r);
    return NULL;
}

static void test_blocking_handlers_run_concurrently(void)
{
    struct fixture f;
    REQUIRE(start(&f));
    enum { N = 8 };
    pthread_t t[N];
    struct client c[N];
    int64_t t0 = lst_mono_ms();
    for (int i = 0; i < N; i++) {
        c[i] = (struct client){f.port, "/sleep", 0};
        REQUIRE(pthread_create(&t[i], NULL, client_main, &c[i]) == 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    int64_t took = lst_mono_ms() - t0;
    for (int i = 0; i < N; i++)
        CHECK_EQ(c[i].status, 200);
    /* serially it would take 8 x 200 ms; concurrency, not speed, is what this checks */
    CHECK(took < 1200);
    CHECK_EQ(atomic_load(&f.svc.sleepers_started), N);
    stop(&f);
}

/* Sends raw bytes and reads until the server answers and/or closes (bounded by 3 s). */
static void raw_exchange(int port, const char *data, size_t len, struct lst_buf *answer)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {3, 0};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    REQUIRE(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        ssize_t w = write(fd, data, len);
        (void)w;
        shutdown(fd, SHUT_WR);
        char buf[512];
        ssize_t n;
        int64_t deadline = lst_mono_ms() + 3000;
        while ((n = read(fd, buf, sizeof(buf))) > 0 && lst_mono_ms() < deadline)
            lst_buf_append(answer, buf, (size_t)n);
    }
    close(fd);
}

static void test_malformed_requests(void)
{
    struct fixture f;
    struct result r;
    REQUIRE(start(&f));
    static const char *const junk[] = {
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", /* a TLS hello */
        "GET /healthz HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n",
        "GET /healthz HTTP/9.9\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nabc",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
        "\r\n\r\n\r\n",
        "GET \x01\x02\x03 HTTP/1.1\r\n\r\n",
    };
    lst_log_set_level(LST_LOG_OFF);
    for (size_t i = 0; i < LST_ARRAY_LEN(junk); i++) {
        struct lst_buf answer;
        lst_buf_init(&answer);
        raw_exchange(f.port, junk[i], strlen(junk[i]), &answer);
        /* either a 4xx/5xx answer or a plain close, never a 2xx */
        CHECK(answer.len == 0 || strncmp(answer.data, "HTTP/1.1 4", 10) == 0 ||
              strncmp(answer.data, "HTTP/1.1 5", 10) == 0 ||
              strncmp(answer.data, "HTTP/1.0 4", 10) == 0);
        lst_buf_cleanup(&answer);
    }
    lst_log_set_level(LST_LOG_WARN);
    get(f.port, "/healthz", &r);
    CHECK_EQ(r.status, 200);
    result_free(&r);
    stop(&f);
}

static void test_destroy_lets_inflight_finish(void)
{
    struct fixture f;
    REQUIRE(start(&f));
    pthread_t t;
    struct client c = {f.port, "/sleep", 0};
    REQUIRE(pthread_create(&t, NULL, client_main, &c) == 0);
    int64_t deadline = lst_mono_ms() + 3000;
    while (atomic_load(&f.svc.sleepers_started) == 0 && lst_mono_ms() < deadline)
        lst_sleep_ms(5, NULL);
    REQUIRE(atomic_load(&f.svc.sleepers_started) == 1);
    int64_t t0 = lst_mono_ms();
    lst_http_server_destroy(f.server);
    f.server = NULL;
    int64_t took = lst_mono_ms() - t0;
    pthread_join(t, NULL);
    CHECK_EQ(c.status, 200);
    CHECK(took < 2000);
    /* and nothing listens any more */
    struct result r;
    get(f.port, "/healthz", &r);
    CHECK(r.rc != CURLE_OK);
    result_free(&r);
    stop(&f);
}

/* lst_http_reply_fd: the bytes of the file with its Content-Length (a HEAD gets the length
 * and no body), a Content-Type header replacing the literal one, size 0, and a file answer
 * replaced by a problem, whose descriptor is closed at once. */
static void test_reply_from_fd(void)
{
    struct fixture f;
    struct result r;
    char v[128];
    snprintf(file_path, sizeof(file_path), "/tmp/lst-test-http-XXXXXX");
    int fd = mkstemp(file_path);
    REQUIRE(fd >= 0);
    unsigned char *data = malloc(FILE_LEN);
    REQUIRE(data != NULL);
    for (size_t i = 0; i < FILE_LEN; i++)
        data[i] = file_byte(i);
    CHECK_EQ(write(fd, data, FILE_LEN), (ssize_t)FILE_LEN);
    close(fd);
    REQUIRE(start(&f));
    get(f.port, "/file/full", &r);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body.len, (size_t)FILE_LEN);
    CHECK(r.body.len == FILE_LEN && memcmp(r.body.data, data, FILE_LEN) == 0);
    CHECK_STREQ(header(&r, "Content-Type", v, sizeof(v)), "image/x-test");
    snprintf(v, sizeof(v), "%d", FILE_LEN);
    char len[32];
    CHECK_STREQ(header(&r, "Content-Length", len, sizeof(len)), v);
    CHECK(strstr(r.headers.data, "application/octet-stream") == NULL); /* one Content-Type */
    result_free(&r);
    request(f.port, "HEAD", "/file/full", NULL, 0, BODY_NONE, &r);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body.len, 0);
    CHECK_STREQ(header(&r, "Content-Length", len, sizeof(len)), v);
    result_free(&r);
    get(f.port, "/file/empty", &r);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body.len, 0);
    CHECK_STREQ(header(&r, "Content-Type", v, sizeof(v)), "text/plain");
    result_free(&r);
    get(f.port, "/file/replaced", &r);
    check_problem(&r, 404, "not-found");
    CHECK(atomic_load(&replaced_fd_closed));
    result_free(&r);
    /* the contract without a server: fd < 0 is refused, cleanup closes an unsent file */
    struct lst_http_response resp;
    lst_http_response_init(&resp);
    CHECK_EQ(lst_http_reply_fd(&resp, 200, NULL, -1, 1), LST_ERR_INVALID);
    CHECK(!resp.file.set);
    fd = open(file_path, O_RDONLY | O_CLOEXEC);
    CHECK_EQ(lst_http_reply_fd(&resp, 200, NULL, fd, 1), LST_OK);
    lst_http_response_cleanup(&resp);
    CHECK(fcntl(fd, F_GETFD) == -1 && errno == EBADF);
    stop(&f);
    unlink(file_path);
    free(data);
}

LST_TEST_MAIN(T(test_problem_helper_and_headers), T(test_config_errors), T(test_port_in_use),
              T(test_healthz_readyz), T(test_metrics_endpoint),
              T(test_echo_post_and_response_headers), T(test_body_limit),
              T(test_not_found_method_not_allowed_500), T(test_blocking_handlers_run_concurrently),
              T(test_malformed_requests), T(test_destroy_lets_inflight_finish),
              T(test_reply_from_fd))
