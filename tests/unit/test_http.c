/* lst/http: a real server on 127.0.0.1 and an ephemeral port, libcurl as the client. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
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

static void h_echo(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    (void)ud;
    const char *q = lst_http_query(req, "q");
    const char *h = lst_http_header(req, "x-test");
    lst_http_reply(resp, 201, "application/octet-stream", req->body, req->body_len);
    lst_http_add_header(resp, "X-Query", q ? q : "(none)");
    lst_http_add_header(resp, "X-Hdr", h ? h : "(none)");
    lst_http_add_header(resp, "X-Remote", req->remote_addr);
    lst_http_add_header(resp, "Location", "/echo/1");
    lst_http_add_header(resp, "Access-Control-Allow-Origin", "*");
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

static void h_nothing(void *ud, const struct lst_http_request *req,
                      struct lst_http_response *resp)
{
    (void)ud;
    (void)req;
    (void)resp;
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
    {"POST", "/echo", false, h_echo},
    {"PUT", "/echo", false, h_echo},
    {"GET", "/sleep", false, h_sleep},
    {"GET", "/items/", true, h_items},
    {"DELETE", "/items/", true, h_items},
    {"GET", "/items/special", false, h_items},
    {"GET", "/nothing", false, h_nothing},
};

struct fixture {
    struct svc svc;
    struct lst_metrics *metrics;
    struct lst_http_server *server;
    int port;
};

static bool start(struct fixture *f)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))curl_global_init_wrapper_dummy);
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
