/* The HTTP server of lst/http.h on libmicrohttpd 0.9.75: daemon lifecycle, routing, body
 * accumulation with the size limit, built-in endpoints and request metrics. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lst/http.h"
#include "lst/log.h"

#define DEFAULT_MAX_CONNECTIONS 64
#define DEFAULT_MAX_BODY        (1024 * 1024)
#define DEFAULT_TIMEOUT_S       30
#define DEFAULT_DRAIN_MS        5000
#define DEFAULT_ASYNC_TIMEOUT   10000
/* Event mode: each connection's MHD memory pool (request line, headers, read buffer; bodies
 * are copied out). MHD 0.9.75 zeroes the whole pool between keep-alive requests: with its
 * 32 KiB default that memset was 4 % of gateway-in's CPU under the benchmark. 16 KiB still
 * takes request headers of about 8 KiB, more than reverse proxies pass by default. */
#define EVENT_CONN_POOL (16 * 1024)
/* At stop, how long connections without a request of ours get to close (settle_connections). */
#define SETTLE_MS 300
/* The timer thread's tick: how late an async timeout may be answered. */
#define TIMER_TICK_MS 50
/* Event mode: how often the timer thread wakes the event threads (see wake_event_threads). */
#define WAKE_MS 100
/* After the pending async requests were answered at stop, how long their answers get to be
 * sent before MHD is stopped. */
#define STOP_SEND_MS 1000
/* After the body passed max_body we keep reading (and dropping) this much more so that a
 * chunked upload still gets its 413: MHD can queue a response only once the upload is
 * complete. A client sending more than that is disconnected without an answer. */
#define DISCARD_SLACK (1024 * 1024)

/* Buffer MHD hands to a streamed response's reader per call. */
#define STREAM_BLOCK (16 * 1024)

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Request metrics of one route and method label, looked up once: the registry's lookup takes
 * its global lock and compares label strings, which every request of every handler thread did
 * twice before. The series pointers are stable for the registry's life. */
#define METHOD_LABELS 8 /* the known methods and "other", see method_label */
#define CODE_SLOTS    8 /* distinct status codes cached per route and method; more: lookups */

struct code_slot {
    atomic_int status; /* 0: free; -1: being filled; else the code whose counter is set */
    struct lst_counter *counter;
};

struct route_metrics {
    _Atomic(struct lst_histogram *) duration;
    struct code_slot codes[CODE_SLOTS];
};

struct route {
    char *method;
    char *path;
    size_t path_len;
    bool prefix;
    lst_http_handler_fn handler;
    lst_http_async_fn async_fn;    /* async route (event mode): used instead of handler */
    bool builtin;                  /* handler gets the server as ud instead of the config's ud */
    struct route_metrics *metrics; /* [METHOD_LABELS], owned */
};

/* The async requests of a server: shared by the server, its event threads, its timer thread
 * and whoever completes a request (any thread, possibly after the server is gone), so it is
 * reference-counted: the server holds one reference, every live async request one. mu guards
 * everything here and in every struct lst_http_async; it is taken before MHD's own locks
 * (suspend/resume are called with it held), never the other way round. */
struct async_hub {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* wakes the timer thread at stop */
    int refs;
    bool live;     /* MHD runs: a completed request may resume its connection */
    bool stopping; /* no new async requests; the timer thread ends */
    unsigned timeout_ms;
    struct lst_http_async *head, *tail; /* pending requests, oldest (earliest deadline) first */
    struct sockaddr_storage wake_addr;  /* the listen socket, as a loopback client reaches it */
    socklen_t wake_len;                 /* 0 until the daemon listens */
    atomic_int wake_port; /* local port of the wake-up connection in flight (0: none) */
};

enum async_state {
    ASYNC_PENDING = 0, /* waiting for lst_http_async_complete */
    ASYNC_DONE,        /* resp holds the answer (the handler's, or the server's 503) */
    ASYNC_ABANDONED,   /* the connection went away first */
};

/* One asynchronous request. Two owners: the connection (conn_ref, until MHD's completion
 * callback) and the handler side (handler_ref, until lst_http_async_complete); freed by the
 * last of them to let go, under hub->mu. */
struct lst_http_async {
    struct async_hub *hub;
    struct MHD_Connection *conn;
    struct lst_buf body; /* moved from the request state */
    struct lst_http_response resp;
    int64_t deadline_ms;
    enum async_state state;
    bool suspended; /* MHD_suspend_connection was called and no resume yet */
    bool conn_ref;
    bool handler_ref;
    bool listed; /* in the hub's pending list */
    struct lst_http_async *prev, *next;
};

struct lst_http_server {
    struct MHD_Daemon *daemon;
    struct async_hub *hub; /* event mode only */
    pthread_t timer;
    bool timer_started;
    unsigned event_threads;
    struct route *routes;
    size_t nroutes;
    void *ud;
    lst_http_ready_fn ready;
    struct lst_metrics *metrics;
    size_t max_body;
    unsigned drain_ms;
    uint16_t port;
    atomic_long in_flight;
    atomic_bool stopping;   /* set by destroy: no new connections, streamed responses end */
    atomic_uint conns_open; /* connections MHD started and has not closed yet */
    unsigned conns_max;     /* the configured bound, held by admit_connection */
    atomic_ulong conns_refused;
    struct lst_counter *refused; /* lst_http_connections_refused_total, NULL without metrics */
    struct route_metrics unmatched[METHOD_LABELS]; /* requests without a route (404, 405) */
    struct sockaddr_storage addr;
};

/* A streamed response (lst_http_stream) from queueing to MHD's free callback. */
struct stream_state {
    struct lst_http_server *s;
    struct lst_http_stream user;
    struct lst_buf pending; /* produced by next, not yet handed to MHD */
    size_t off;
    MHD_socket fd; /* the connection's socket, to notice a client that went away */
    bool done;     /* next returned false */
};

/* Per-request state, MHD's con_cls: from the first access-handler call to the completion
 * callback. */
struct req_state {
    struct lst_http_server *server;
    int64_t start_ms;
    const struct route *route; /* NULL: answered early (404/405/413) */
    struct lst_buf body;
    size_t received; /* all body bytes seen, also the dropped ones */
    bool too_large;
    bool answered;
    struct lst_http_async *async; /* set by lst_http_async_begin */
};

/* ---- request accessors ---- */

const char *lst_http_query(const struct lst_http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct query_each {
    lst_http_query_fn fn;
    void *ud;
};

static enum MHD_Result query_each_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    struct query_each *qe = cls;
    (void)kind;
    return qe->fn(qe->ud, key, value) ? MHD_YES : MHD_NO;
}

size_t lst_http_query_each(const struct lst_http_request *req, lst_http_query_fn fn, void *ud)
{
    struct query_each qe = {fn, ud};
    int n = MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_each_one, &qe);
    return n > 0 ? (size_t)n : 0;
}

const char *lst_http_header(const struct lst_http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* ---- metrics ---- */

static const char *const known_methods[] = {"GET",    "HEAD",  "POST",   "PUT",
                                            "DELETE", "PATCH", "OPTIONS"};

_Static_assert(LST_ARRAY_LEN(known_methods) + 1 == METHOD_LABELS, "a label per method and other");

/* Methods outside this set are counted as "other", so a client cannot grow the label set. */
static size_t method_index(const char *method)
{
    size_t i = 0;
    while (i < LST_ARRAY_LEN(known_methods) && strcmp(method, known_methods[i]) != 0)
        i++;
    return i; /* LST_ARRAY_LEN(known_methods): "other" */
}

static const char *method_label(const char *method)
{
    size_t i = method_index(method);
    return i < LST_ARRAY_LEN(known_methods) ? known_methods[i] : "other";
}

/* route="...",method="..." for the registry. */
static void base_labels(const struct req_state *st, const char *method, struct lst_buf *labels)
{
    lst_buf_puts(labels, "route=\"");
    lst_metrics_label_escape(labels, st->route != NULL ? st->route->path : "unmatched");
    lst_buf_printf(labels, "\",method=\"%s\"", method_label(method));
}

static struct lst_histogram *duration_of(struct lst_http_server *s, struct route_metrics *rm,
                                         const struct req_state *st, const char *method)
{
    struct lst_histogram *h = atomic_load(&rm->duration);
    if (h != NULL)
        return h;
    struct lst_buf labels;
    lst_buf_init(&labels);
    base_labels(st, method, &labels);
    if (!lst_buf_failed(&labels))
        h = lst_metrics_histogram(s->metrics, "lst_http_request_duration_seconds",
                                  "Time from request start to response, by route.", labels.data,
                                  lst_metrics_latency_buckets, lst_metrics_latency_nbuckets);
    lst_buf_cleanup(&labels);
    atomic_store(&rm->duration, h); /* racing fills store the same series */
    return h;
}

/* Remembers counter for status in a free slot (none free: it is simply looked up again). */
static void code_remember(struct route_metrics *rm, int status, struct lst_counter *counter)
{
    for (size_t i = 0; i < CODE_SLOTS; i++) {
        int expect = 0;
        if (atomic_compare_exchange_strong(&rm->codes[i].status, &expect, -1)) {
            rm->codes[i].counter = counter;
            atomic_store(&rm->codes[i].status, status); /* publishes counter */
            return;
        }
    }
}

static struct lst_counter *counter_of(struct lst_http_server *s, struct route_metrics *rm,
                                      const struct req_state *st, const char *method, int status)
{
    for (size_t i = 0; i < CODE_SLOTS; i++) {
        if (atomic_load(&rm->codes[i].status) == status)
            return rm->codes[i].counter;
    }
    struct lst_counter *c = NULL;
    struct lst_buf labels;
    lst_buf_init(&labels);
    base_labels(st, method, &labels);
    lst_buf_printf(&labels, ",code=\"%d\"", status);
    if (!lst_buf_failed(&labels))
        c = lst_metrics_counter(s->metrics, "lst_http_requests_total",
                                "HTTP requests answered, by route, method and code.", labels.data);
    lst_buf_cleanup(&labels);
    if (c != NULL)
        code_remember(rm, status, c);
    return c;
}

static void record(struct lst_http_server *s, const struct req_state *st, const char *method,
                   int status)
{
    if (s->metrics == NULL)
        return;
    size_t mi = method_index(method);
    struct route_metrics *rm = st->route != NULL ? &st->route->metrics[mi] : &s->unmatched[mi];
    double secs = (double)(lst_mono_ms() - st->start_ms) / 1000.0;
    lst_histogram_observe(duration_of(s, rm, st, method), secs);
    lst_counter_inc(counter_of(s, rm, st, method, status));
}

/* ---- responses ---- */

void lst_http_response_init(struct lst_http_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    lst_buf_init(&resp->body);
}

void lst_http_response_cleanup(struct lst_http_response *resp)
{
    /* a stream that was never handed to MHD (e.g. an early return) still owns its ud */
    if (resp->stream.next != NULL && resp->stream.free_ud != NULL)
        resp->stream.free_ud(resp->stream.ud);
    memset(&resp->stream, 0, sizeof(resp->stream));
    if (resp->file.set) /* never handed to MHD */
        close(resp->file.fd);
    memset(&resp->file, 0, sizeof(resp->file));
    lst_buf_cleanup(&resp->body);
    for (size_t i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    resp->nheaders = 0;
}

/* ---- streamed responses ---- */

/* True when the peer closed its side (or the socket failed). MHD itself notices only when a
 * write fails, which for an idle stream could take until the next heartbeat. Peeking does not
 * consume anything; MSG_DONTWAIT keeps it from blocking. */
static bool peer_closed(MHD_socket fd)
{
    char c;
    if (fd == MHD_INVALID_SOCKET)
        return false;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0)
        return true;
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

/* MHD's content reader. Returning 0 would make MHD's internal polling busy-wait, so this
 * loops (each next call bounded by its own contract) until there are bytes or the end. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream_state *ss = cls;
    (void)pos;
    while (ss->off >= ss->pending.len) {
        lst_buf_reset(&ss->pending);
        ss->off = 0;
        if (ss->done || atomic_load(&ss->s->stopping) || peer_closed(ss->fd))
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!ss->user.next(ss->user.ud, &ss->pending))
            ss->done = true;
        if (lst_buf_failed(&ss->pending))
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = ss->pending.len - ss->off;
    if (n > max)
        n = max;
    memcpy(buf, ss->pending.data + ss->off, n);
    ss->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct stream_state *ss = cls;
    if (ss == NULL)
        return;
    if (ss->user.free_ud != NULL)
        ss->user.free_ud(ss->user.ud);
    lst_buf_cleanup(&ss->pending);
    free(ss);
}

/* An MHD response reading from resp->stream; takes the stream out of resp (its ud is then
 * freed by stream_free, also when this fails). The body so far goes first. */
static struct MHD_Response *stream_response(struct lst_http_server *s, struct MHD_Connection *conn,
                                            struct lst_http_response *resp)
{
    struct stream_state *ss = calloc(1, sizeof(*ss));
    struct lst_http_stream user = resp->stream;
    memset(&resp->stream, 0, sizeof(resp->stream));
    if (ss == NULL) {
        if (user.free_ud != NULL)
            user.free_ud(user.ud);
        return NULL;
    }
    ss->s = s;
    ss->user = user;
    lst_buf_init(&ss->pending);
    lst_buf_append(&ss->pending, resp->body.data ? resp->body.data : "", resp->body.len);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    ss->fd = ci != NULL ? ci->connect_fd : MHD_INVALID_SOCKET;
    struct MHD_Response *r = lst_buf_failed(&ss->pending)
                                 ? NULL
                                 : MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
                                                                     stream_read, ss, stream_free);
    if (r == NULL)
        stream_free(ss);
    return r;
}

/* An MHD response sending resp->file (lst_http_reply_fd); takes the descriptor out of resp:
 * MHD closes it with the response, or it is closed here when MHD refuses. */
static struct MHD_Response *file_response(struct lst_http_response *resp)
{
    struct lst_http_file f = resp->file;
    memset(&resp->file, 0, sizeof(resp->file));
    if (f.size == 0) { /* nothing to send from it */
        close(f.fd);
        return MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    struct MHD_Response *r = MHD_create_response_from_fd64(f.size, f.fd);
    if (r == NULL)
        close(f.fd);
    return r;
}

/* True when the handler added a Content-Type of its own (it replaces resp->content_type). */
static bool own_content_type(const struct lst_http_response *resp)
{
    for (size_t i = 0; i < resp->nheaders; i++) {
        if (strcasecmp(resp->headers[i].name, MHD_HTTP_HEADER_CONTENT_TYPE) == 0)
            return true;
    }
    return false;
}

/* Turns resp into an MHD response and queues it; records the metrics. */
static enum MHD_Result send_response(struct lst_http_server *s, struct MHD_Connection *conn,
                                     struct req_state *st, const char *method,
                                     struct lst_http_response *resp)
{
    if (resp->status < 100 || resp->status > 599 || lst_buf_failed(&resp->body)) {
        LST_ERROR("http.handler.no_response", "handler for %s left status %d or ran out of memory",
                  st->route ? st->route->path : "?", resp->status);
        if (resp->stream.next != NULL && resp->stream.free_ud != NULL)
            resp->stream.free_ud(resp->stream.ud);
        memset(&resp->stream, 0, sizeof(resp->stream));
        lst_http_problem(resp, 500, "internal-error", "Internal Server Error",
                         "the request could not be processed");
    }
    /* MUST_COPY: MHD keeps its own copy, resp is freed right after queueing. */
    struct MHD_Response *r;
    if (resp->stream.next != NULL)
        r = stream_response(s, conn, resp);
    else if (resp->file.set)
        r = file_response(resp);
    else
        r = MHD_create_response_from_buffer(resp->body.len, resp->body.data, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    const char *ctype = resp->content_type ? resp->content_type : "application/json";
    bool ok = own_content_type(resp) ||
              MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) == MHD_YES;
    for (size_t i = 0; i < resp->nheaders && ok; i++)
        ok = MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value) == MHD_YES;
    enum MHD_Result res = ok ? MHD_queue_response(conn, (unsigned)resp->status, r) : MHD_NO;
    MHD_destroy_response(r);
    st->answered = true;
    record(s, st, method, resp->status);
    LST_DEBUG("http.request", "%s %s -> %d", method_label(method),
              st->route ? st->route->path : "unmatched", resp->status);
    return res;
}

static enum MHD_Result send_problem(struct lst_http_server *s, struct MHD_Connection *conn,
                                    struct req_state *st, const char *method, int status,
                                    const char *slug, const char *title, const char *detail)
{
    struct lst_http_response resp;
    lst_http_response_init(&resp);
    lst_http_problem(&resp, status, slug, title, "%s", detail);
    enum MHD_Result res = send_response(s, conn, st, method, &resp);
    lst_http_response_cleanup(&resp);
    return res;
}

/* ---- routing ---- */

static bool path_matches(const struct route *r, const char *path)
{
    if (r->prefix)
        return strncmp(path, r->path, r->path_len) == 0;
    return strcmp(path, r->path) == 0;
}

static bool method_matches(const struct route *r, const char *method)
{
    /* HEAD is GET without the body; MHD drops the body for us. */
    return strcmp(r->method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0);
}

/* Exact routes win over prefix routes, longer prefixes over shorter ones. */
static bool better(const struct route *cand, const struct route *best)
{
    if (best == NULL)
        return true;
    if (cand->prefix != best->prefix)
        return !cand->prefix;
    return cand->path_len > best->path_len;
}

/* The route for method and path; when none matches but the path is known, fills allow with
 * the accepted methods ("GET, HEAD, POST"). */
static const struct route *find_route(const struct lst_http_server *s, const char *method,
                                      const char *path, struct lst_buf *allow)
{
    const struct route *best = NULL;
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct route *r = &s->routes[i];
        if (path_matches(r, path) && method_matches(r, method) && better(r, best))
            best = r;
    }
    if (best != NULL)
        return best;
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct route *r = &s->routes[i];
        if (!path_matches(r, path) || strstr(allow->data ? allow->data : "", r->method))
            continue;
        lst_buf_printf(allow, "%s%s", allow->len ? ", " : "", r->method);
        if (strcmp(r->method, "GET") == 0)
            lst_buf_puts(allow, ", HEAD");
    }
    return NULL;
}

/* ---- built-in endpoints ---- */

static void handle_healthz(void *ud, const struct lst_http_request *req,
                           struct lst_http_response *resp)
{
    (void)ud;
    (void)req;
    const char body[] = "{\"status\":\"ok\"}";
    lst_http_reply(resp, 200, "application/json", body, sizeof(body) - 1);
}

static void handle_readyz(void *ud, const struct lst_http_request *req,
                          struct lst_http_response *resp)
{
    struct lst_http_server *s = ud;
    struct lst_buf why;
    (void)req;
    lst_buf_init(&why);
    if (s->ready == NULL || s->ready(s->ud, &why)) {
        const char body[] = "{\"status\":\"ready\"}";
        lst_http_reply(resp, 200, "application/json", body, sizeof(body) - 1);
    } else {
        resp->status = 503;
        resp->content_type = "application/json";
        lst_buf_puts(&resp->body, "{\"status\":\"not_ready\",\"reason\":");
        lst_buf_json_str(&resp->body, why.len ? why.data : "unknown", why.len ? why.len : 7);
        lst_buf_puts(&resp->body, "}");
    }
    lst_buf_cleanup(&why);
}

static void handle_metrics(void *ud, const struct lst_http_request *req,
                           struct lst_http_response *resp)
{
    struct lst_http_server *s = ud;
    (void)req;
    resp->status = 200;
    resp->content_type = METRICS_CONTENT_TYPE;
    if (s->metrics != NULL && lst_metrics_render(s->metrics, &resp->body) != LST_OK)
        lst_http_problem(resp, 500, "internal-error", "Internal Server Error",
                         "metrics could not be rendered");
}

static const struct lst_http_route builtin_routes[] = {
    {"GET", "/healthz", false, handle_healthz},
    {"GET", "/readyz", false, handle_readyz},
    {"GET", "/metrics", false, handle_metrics},
};

/* ---- async requests (event mode) ---- */

static void hub_unref_locked(struct async_hub *h, bool *free_hub)
{
    *free_hub = --h->refs == 0;
}

static void hub_free(struct async_hub *h)
{
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static void unlist(struct async_hub *h, struct lst_http_async *a)
{
    if (!a->listed)
        return;
    if (a->prev != NULL)
        a->prev->next = a->next;
    else
        h->head = a->next;
    if (a->next != NULL)
        a->next->prev = a->prev;
    else
        h->tail = a->prev;
    a->prev = a->next = NULL;
    a->listed = false;
}

/* Under h->mu: frees a once neither the connection nor the handler side holds it. Returns true
 * when the hub lost its last reference (the caller frees it after unlocking). */
static bool async_release_locked(struct lst_http_async *a)
{
    bool free_hub = false;
    if (a->conn_ref || a->handler_ref)
        return false;
    struct async_hub *h = a->hub;
    unlist(h, a);
    lst_http_response_cleanup(&a->resp);
    lst_buf_cleanup(&a->body);
    free(a);
    hub_unref_locked(h, &free_hub);
    return free_hub;
}

/* Under h->mu: the answer is in a->resp; wake the connection if it is suspended already (if
 * not, run_handler sees the state and answers without suspending). */
static void async_finish_locked(struct lst_http_async *a)
{
    a->state = ASYNC_DONE;
    unlist(a->hub, a);
    if (a->suspended && a->hub->live) {
        a->suspended = false;
        MHD_resume_connection(a->conn);
    }
}

struct lst_http_async *lst_http_async_begin(const struct lst_http_request *req)
{
    struct req_state *st = req->priv;
    struct lst_http_server *s = st != NULL && st->route != NULL ? st->server : NULL;
    if (s == NULL || s->hub == NULL || st->async != NULL)
        return NULL;
    struct lst_http_async *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    struct async_hub *h = s->hub;
    a->hub = h;
    a->conn = req->conn;
    a->body = st->body; /* moved: req->body keeps pointing at the same bytes */
    lst_buf_init(&st->body);
    lst_http_response_init(&a->resp);
    a->conn_ref = a->handler_ref = true;
    pthread_mutex_lock(&h->mu);
    bool stopping = h->stopping;
    if (!stopping) {
        a->deadline_ms = lst_mono_ms() + h->timeout_ms;
        a->listed = true;
        a->prev = h->tail;
        if (h->tail != NULL)
            h->tail->next = a;
        else
            h->head = a;
        h->tail = a;
        h->refs++;
    }
    pthread_mutex_unlock(&h->mu);
    if (stopping) {
        st->body = a->body; /* give the body back: the handler answers at once */
        free(a);
        return NULL;
    }
    st->async = a;
    return a;
}

const char *lst_http_async_body(const struct lst_http_async *a, size_t *len)
{
    *len = a->body.len;
    return a->body.data != NULL ? a->body.data : "";
}

void lst_http_async_complete(struct lst_http_async *a, struct lst_http_response *resp)
{
    struct async_hub *h = a->hub;
    pthread_mutex_lock(&h->mu);
    if (a->state == ASYNC_PENDING) {
        /* Move the answer; the handler's resp is left empty for its own cleanup. */
        lst_http_response_cleanup(&a->resp);
        a->resp = *resp;
        lst_http_response_init(resp);
        if (a->resp.stream.next != NULL) {
            lst_http_response_cleanup(&a->resp); /* frees the stream's ud */
            lst_http_response_init(&a->resp);    /* status 0: answered 500 */
        }
        async_finish_locked(a);
    }
    a->handler_ref = false;
    bool free_hub = async_release_locked(a);
    pthread_mutex_unlock(&h->mu);
    if (free_hub)
        hub_free(h);
}

/* Under h->mu: the server answers a itself (timeout or stop). */
static void async_expire_locked(struct lst_http_async *a, const char *slug, const char *title,
                                const char *detail)
{
    lst_http_response_cleanup(&a->resp);
    lst_http_response_init(&a->resp);
    lst_http_problem(&a->resp, 503, slug, title, "%s", detail);
    async_finish_locked(a);
}

static int port_of(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)a)->sin6_port);
    return ntohs(((const struct sockaddr_in *)(const void *)a)->sin_port);
}

/* MHD 0.9.75's epoll loop (MHD_epoll) reads events in rounds of 128 (MAX_EVENTS) and, when a
 * round is full, waits again with the same timeout before it handles the events it has: an
 * event thread with exactly 128 ready connections sleeps on them until some other event comes
 * or the earliest connection timeout (30 s). That was gateway-in's "stall" (127 callbacks
 * unanswered for 30 s) and test_connection_limit_is_total's (128 requests unread for 15 s).
 * MHD offers no call to wake its threads, but the listen socket is in every event thread's
 * epoll set, level-triggered: a connection to it wakes them all. So the timer thread connects
 * every WAKE_MS, and admit_connection closes that connection at once. A stall now lasts at
 * most ~WAKE_MS. */
static void wake_event_threads(struct async_hub *h)
{
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);
    int fd = socket(h->wake_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    memset(&local, 0, sizeof(local));
    local.ss_family = h->wake_addr.ss_family;
    /* the port is known (and published) before the server can see the connection */
    if (bind(fd, (struct sockaddr *)&local,
             h->wake_addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                : sizeof(struct sockaddr_in)) == 0 &&
        getsockname(fd, (struct sockaddr *)&local, &len) == 0) {
        atomic_store(&h->wake_port, port_of(&local));
        if (connect(fd, (struct sockaddr *)&h->wake_addr, h->wake_len) != 0 &&
            errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            (void)poll(&p, 1, 20); /* a full backlog: give up, the next try comes soon */
        }
        /* closed with a reset: no TIME_WAIT, so ten a second do not pile up ports */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(fd);
}

/* Where wake_event_threads connects: the listen address, loopback for a wildcard one. */
static void wake_target(struct lst_http_server *s)
{
    struct async_hub *h = s->hub;
    pthread_mutex_lock(&h->mu);
    h->wake_addr = s->addr;
    if (s->addr.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)(void *)&h->wake_addr;
        a->sin6_port = htons(s->port);
        if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr))
            a->sin6_addr = in6addr_loopback;
        h->wake_len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)(void *)&h->wake_addr;
        a->sin_port = htons(s->port);
        if (a->sin_addr.s_addr == htonl(INADDR_ANY))
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        h->wake_len = sizeof(*a);
    }
    pthread_mutex_unlock(&h->mu);
}

static void *timer_main(void *arg)
{
    struct async_hub *h = arg;
    int64_t next_wake = lst_mono_ms() + WAKE_MS;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        int64_t now = lst_mono_ms();
        if (now >= next_wake && h->wake_len > 0) {
            pthread_mutex_unlock(&h->mu);
            wake_event_threads(h);
            pthread_mutex_lock(&h->mu);
            next_wake = lst_mono_ms() + WAKE_MS;
            continue;
        }
        while (h->head != NULL && h->head->deadline_ms <= now)
            async_expire_locked(h->head, "timeout", "Service Unavailable",
                                "the request was not completed in time; retry later");
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += TIMER_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static lst_err hub_create(struct lst_http_server *s, unsigned timeout_ms)
{
    pthread_condattr_t ca;
    struct async_hub *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return LST_ERR_NOMEM;
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    h->refs = 1;
    h->live = true; /* resumes are safe from now until hub_detach (after MHD_stop_daemon) */
    h->timeout_ms = timeout_ms ? timeout_ms : DEFAULT_ASYNC_TIMEOUT;
    atomic_init(&h->wake_port, 0);
    s->hub = h;
    if (pthread_create(&s->timer, NULL, timer_main, h) != 0)
        return LST_ERR_NOMEM;
    s->timer_started = true;
    return LST_OK;
}

/* Stop: no new async requests, answer the pending ones with 503, end the timer thread. */
static void hub_stop(struct lst_http_server *s)
{
    struct async_hub *h = s->hub;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    while (h->head != NULL)
        async_expire_locked(h->head, "shutting-down", "Service Unavailable",
                            "the server is stopping; retry later");
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (s->timer_started)
        pthread_join(s->timer, NULL);
    s->timer_started = false;
}

/* MHD is stopped: completions no longer resume; drop the server's reference. */
static void hub_detach(struct lst_http_server *s)
{
    struct async_hub *h = s->hub;
    bool free_hub = false;
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    h->live = false;
    hub_unref_locked(h, &free_hub);
    pthread_mutex_unlock(&h->mu);
    if (free_hub)
        hub_free(h);
    s->hub = NULL;
}

/* After an async handler took the request: suspend the connection until the answer is there,
 * or answer at once when it came already (a fast completion, a timeout). */
static enum MHD_Result async_park(struct lst_http_server *s, struct MHD_Connection *conn,
                                  struct req_state *st, const char *method)
{
    struct lst_http_async *a = st->async;
    struct async_hub *h = a->hub;
    pthread_mutex_lock(&h->mu);
    bool done = a->state == ASYNC_DONE;
    if (!done) {
        MHD_suspend_connection(conn);
        a->suspended = true;
    }
    pthread_mutex_unlock(&h->mu);
    return done ? send_response(s, conn, st, method, &a->resp) : MHD_YES;
}

/* The connection went away or its request ended: let go of the async request. */
static void async_drop_conn(struct lst_http_async *a)
{
    struct async_hub *h = a->hub;
    pthread_mutex_lock(&h->mu);
    if (a->state == ASYNC_PENDING)
        a->state = ASYNC_ABANDONED;
    unlist(h, a);
    a->suspended = false;
    a->conn_ref = false;
    bool free_hub = async_release_locked(a);
    pthread_mutex_unlock(&h->mu);
    if (free_hub)
        hub_free(h);
}

/* ---- MHD callbacks ---- */

static void remote_addr(struct MHD_Connection *conn, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)cap);
}

static enum MHD_Result run_handler(struct lst_http_server *s, struct MHD_Connection *conn,
                                   struct req_state *st, const char *url, const char *method)
{
    char addr[INET6_ADDRSTRLEN];
    remote_addr(conn, addr, sizeof(addr));
    struct lst_http_request req = {
        .method = method,
        .path = url,
        .route = st->route->path,
        .body = st->body.data ? st->body.data : "",
        .body_len = st->body.len,
        .remote_addr = addr,
        .conn = conn,
        .priv = st,
    };
    struct lst_http_response resp;
    lst_http_response_init(&resp);
    enum MHD_Result res = MHD_YES;
    if (st->route->async_fn == NULL)
        st->route->handler(st->route->builtin ? (void *)s : s->ud, &req, &resp);
    else if (st->route->async_fn(s->ud, &req, &resp) != st->async)
        LST_ERROR("http.async.misuse", "handler for %s returned another handle than it began",
                  st->route->path);
    if (st->async != NULL)
        res = async_park(s, conn, st, method);
    else
        res = send_response(s, conn, st, method, &resp);
    lst_http_response_cleanup(&resp);
    return res;
}

static enum MHD_Result send_not_allowed(struct lst_http_server *s, struct MHD_Connection *conn,
                                        struct req_state *st, const char *method, const char *allow)
{
    struct lst_http_response resp;
    lst_http_response_init(&resp);
    lst_http_problem(&resp, 405, "method-not-allowed", "Method Not Allowed", "allowed methods: %s",
                     allow);
    lst_http_add_header(&resp, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result res = send_response(s, conn, st, method, &resp);
    lst_http_response_cleanup(&resp);
    return res;
}

/* A Content-Length above the limit is refused before a byte of the body is read. */
static bool declared_too_large(const struct lst_http_server *s, struct MHD_Connection *conn)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t len = 0;
    return cl != NULL && lst_parse_i64(cl, 0, INT64_MAX, &len) == LST_OK &&
           (uint64_t)len > s->max_body;
}

/* First call for a request: headers are in, no body yet. Answers 404/405/413 right away
 * (MHD then skips the body and closes the connection after the reply). */
static enum MHD_Result begin_request(struct lst_http_server *s, struct MHD_Connection *conn,
                                     const char *url, const char *method, void **con_cls)
{
    struct req_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return MHD_NO;
    st->server = s;
    st->start_ms = lst_mono_ms();
    lst_buf_init(&st->body);
    *con_cls = st;
    atomic_fetch_add(&s->in_flight, 1);

    struct lst_buf allow;
    lst_buf_init(&allow);
    st->route = find_route(s, method, url, &allow);
    enum MHD_Result res = MHD_YES;
    if (st->route == NULL && allow.len == 0)
        res = send_problem(s, conn, st, method, 404, "not-found", "Not Found", "no such resource");
    else if (st->route == NULL)
        res = send_not_allowed(s, conn, st, method, allow.data);
    else if (declared_too_large(s, conn))
        res = send_problem(s, conn, st, method, 413, "payload-too-large", "Payload Too Large",
                           "the request body exceeds the limit");
    lst_buf_cleanup(&allow);
    return res;
}

/* A piece of the body: keep it while under the limit, then drop (bounded, see DISCARD_SLACK). */
static enum MHD_Result take_body(struct lst_http_server *s, struct req_state *st, const char *data,
                                 size_t *size)
{
    size_t n = *size;
    *size = 0;
    st->received += n;
    if (st->answered)
        return MHD_YES; /* an early answer is queued; MHD is skipping the body */
    if (st->received > s->max_body) {
        st->too_large = true;
        lst_buf_cleanup(&st->body);
        return st->received - s->max_body > DISCARD_SLACK ? MHD_NO : MHD_YES;
    }
    return lst_buf_append(&st->body, data, n) == LST_OK ? MHD_YES : MHD_NO;
}

/* MHD calls again after the resume: send the stored answer. */
static enum MHD_Result async_answer(struct lst_http_server *s, struct MHD_Connection *conn,
                                    struct req_state *st, const char *method)
{
    struct lst_http_async *a = st->async;
    pthread_mutex_lock(&a->hub->mu);
    bool done = a->state == ASYNC_DONE;
    pthread_mutex_unlock(&a->hub->mu);
    /* resp is final once DONE; only this thread reads it from now on */
    return done ? send_response(s, conn, st, method, &a->resp) : MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct lst_http_server *s = cls;
    struct req_state *st = *con_cls;
    (void)version;
    if (st == NULL)
        return begin_request(s, conn, url, method, con_cls);
    if (*upload_data_size > 0)
        return take_body(s, st, upload_data, upload_data_size);
    if (st->async != NULL && !st->answered)
        return async_answer(s, conn, st, method);
    if (st->answered)
        return MHD_YES;
    if (st->too_large)
        return send_problem(s, conn, st, method, 413, "payload-too-large", "Payload Too Large",
                            "the request body exceeds the limit");
    return run_handler(s, conn, st, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct lst_http_server *s = cls;
    struct req_state *st = *con_cls;
    (void)conn;
    if (st == NULL)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        LST_DEBUG("http.request.aborted", "request ended early (MHD code %d)", (int)toe);
    if (st->async != NULL)
        async_drop_conn(st->async);
    lst_buf_cleanup(&st->body);
    free(st);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    LST_WARN("http.mhd", "%s", line);
}

/* ---- lifecycle ---- */

static lst_err copy_route(struct route *dst, const struct lst_http_route *src, bool builtin)
{
    if (src->method == NULL || src->path == NULL || src->handler == NULL ||
        src->method[0] == '\0' || src->path[0] != '/')
        return LST_ERR_CONFIG;
    dst->method = lst_strdup(src->method);
    dst->path = lst_strdup(src->path);
    if (dst->method == NULL || dst->path == NULL)
        return LST_ERR_NOMEM;
    dst->path_len = strlen(dst->path);
    dst->prefix = src->prefix;
    dst->handler = src->handler;
    dst->builtin = builtin;
    dst->metrics = calloc(METHOD_LABELS, sizeof(*dst->metrics));
    return dst->metrics != NULL ? LST_OK : LST_ERR_NOMEM;
}

/* An async route is stored as a plain route whose async_fn is set. */
static lst_err copy_async_route(struct route *dst, const struct lst_http_async_route *src)
{
    if (src->handler == NULL)
        return LST_ERR_CONFIG;
    struct lst_http_route plain = {src->method, src->path, false, handle_healthz};
    lst_err err = copy_route(dst, &plain, false);
    dst->handler = NULL;
    dst->async_fn = src->handler;
    return err;
}

static lst_err copy_routes(struct lst_http_server *s, const struct lst_http_config *cfg)
{
    size_t nb = LST_ARRAY_LEN(builtin_routes);
    if ((cfg->nroutes > 0 && cfg->routes == NULL) ||
        (cfg->nasync_routes > 0 && (cfg->async_routes == NULL || cfg->event_threads == 0)))
        return LST_ERR_CONFIG;
    s->routes = calloc(nb + cfg->nroutes + cfg->nasync_routes, sizeof(*s->routes));
    if (s->routes == NULL)
        return LST_ERR_NOMEM;
    lst_err err = LST_OK;
    /* nroutes also counts an entry whose copy failed half-way, so destroy frees its parts. */
    for (size_t i = 0; i < nb && err == LST_OK; i++, s->nroutes++)
        err = copy_route(&s->routes[i], &builtin_routes[i], true);
    for (size_t i = 0; i < cfg->nroutes && err == LST_OK; i++, s->nroutes++)
        err = copy_route(&s->routes[nb + i], &cfg->routes[i], false);
    for (size_t i = 0; i < cfg->nasync_routes && err == LST_OK; i++, s->nroutes++)
        err = copy_async_route(&s->routes[nb + cfg->nroutes + i], &cfg->async_routes[i]);
    return err;
}

static lst_err parse_bind(struct lst_http_server *s, const char *addr, uint16_t port, bool *ipv6)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)(void *)&s->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)(void *)&s->addr;
    memset(&s->addr, 0, sizeof(s->addr));
    *ipv6 = false;
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return LST_OK;
    }
    if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *ipv6 = true;
        return LST_OK;
    }
    LST_ERROR("http.config", "bind address '%s' is not an IP address", addr);
    return LST_ERR_CONFIG;
}

/* Event mode's connection bound. MHD splits MHD_OPTION_CONNECTION_LIMIT evenly over its pool
 * threads, and a thread at its share leaves the rest of a burst waiting in the listen backlog:
 * with 2 threads and 256 connections opened at once against a limit of 256, some callbacks
 * waited ~30 s (until connections elsewhere timed out; bench/gateway_in --conns 256). So each
 * pool thread may take the whole limit, and the total is held here: MHD tells us every
 * connection it starts and closes, and the accept policy refuses (closes) one beyond the
 * bound. Two threads accepting at the same moment can overshoot by one each; MHD's per-thread
 * share is two above the whole bound, so no thread ever reaches it and takes the listen socket
 * out of its epoll set (wake_event_threads needs it there). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct lst_http_server *s = cls;
    (void)conn;
    (void)socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&s->conns_open, 1);
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        atomic_fetch_sub(&s->conns_open, 1);
}

/* Whether addr is the timer thread's wake-up connection (wake_event_threads): from the address
 * it connects to (the listen address, or loopback) and the port it published. */
static bool is_wake_up(const struct lst_http_server *s, const struct sockaddr *addr)
{
    const struct async_hub *h = s->hub;
    int port = h != NULL ? atomic_load(&h->wake_port) : 0;
    if (port == 0 || addr == NULL || addr->sa_family != h->wake_addr.ss_family)
        return false;
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)addr;
        const struct sockaddr_in *w = (const struct sockaddr_in *)(const void *)&h->wake_addr;
        return ntohs(a->sin_port) == port && a->sin_addr.s_addr == w->sin_addr.s_addr;
    }
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)addr;
        const struct sockaddr_in6 *w = (const struct sockaddr_in6 *)(const void *)&h->wake_addr;
        return ntohs(a->sin6_port) == port &&
               memcmp(&a->sin6_addr, &w->sin6_addr, sizeof(a->sin6_addr)) == 0;
    }
    return false;
}

static enum MHD_Result admit_connection(void *cls, const struct sockaddr *addr, socklen_t len)
{
    struct lst_http_server *s = cls;
    (void)len;
    if (atomic_load(&s->stopping))
        return MHD_NO; /* draining (see drain): new connections are closed at once */
    if (is_wake_up(s, addr))
        return MHD_NO; /* it has done its work by arriving */
    if (atomic_load(&s->conns_open) < s->conns_max)
        return MHD_YES;
    unsigned long n = atomic_fetch_add(&s->conns_refused, 1) + 1;
    if (s->refused != NULL)
        lst_counter_inc(s->refused);
    /* the 1st, 2nd, 4th, 8th ... refusal: a flood of them does not flood the log */
    if ((n & (n - 1)) == 0)
        LST_WARN("http.connections.limit",
                 "connection refused: %u open, the limit (max_connections); %lu refused so far",
                 s->conns_max, n);
    return MHD_NO;
}

static lst_err start_daemon(struct lst_http_server *s, const struct lst_http_config *cfg, bool ipv6)
{
    /* MHD's own limit (below) bounds a thread-per-connection server; admit_connection holds the
     * same bound in both modes, so the refusals are counted and logged the same way. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_AUTO | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    /* Event mode: every connection on one of a few epoll threads; suspend/resume for async
     * routes (it needs the inter-thread channel, which MHD_ALLOW_SUSPEND_RESUME includes). */
    if (s->event_threads > 0)
        flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ipv6)
        flags |= MHD_USE_IPv6;
    unsigned conns = cfg->max_connections ? cfg->max_connections : DEFAULT_MAX_CONNECTIONS;
    unsigned timeout = cfg->conn_timeout_s ? cfg->conn_timeout_s : DEFAULT_TIMEOUT_S;
    s->conns_max = conns;
    unsigned pool_threads = s->event_threads > 1 ? s->event_threads : 1;
    /* MHD warns about a pool size below 2 (its single internal thread is used then). */
    struct MHD_OptionItem pool[] = {
        {s->event_threads > 0 ? MHD_OPTION_CONNECTION_MEMORY_LIMIT : MHD_OPTION_END,
         EVENT_CONN_POOL, NULL},
        {s->event_threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
         (intptr_t)s->event_threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    /* The logger option goes first so that start-up errors reach our log too. */
    s->daemon = MHD_start_daemon(
        flags, 0, admit_connection, s, on_access, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        s, MHD_OPTION_SOCK_ADDR, &s->addr, MHD_OPTION_CONNECTION_LIMIT,
        s->event_threads > 0 ? (conns + 2) * pool_threads : conns, MHD_OPTION_CONNECTION_TIMEOUT,
        timeout, MHD_OPTION_ARRAY, pool, MHD_OPTION_END);
    if (s->daemon == NULL) {
        LST_ERROR("http.start.failed", "cannot start the HTTP server on %s:%u",
                  cfg->bind_addr ? cfg->bind_addr : "127.0.0.1", (unsigned)cfg->port);
        return LST_ERR_HTTP;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info != NULL ? info->port : cfg->port;
    return LST_OK;
}

lst_err lst_http_server_create(const struct lst_http_config *cfg, struct lst_http_server **out)
{
    lst_err err = LST_OK;
    bool ipv6 = false;
    struct lst_http_server *s = NULL;
    *out = NULL;
    if (cfg == NULL) {
        err = LST_ERR_CONFIG;
        goto out;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        err = LST_ERR_NOMEM;
        goto out;
    }
    atomic_init(&s->in_flight, 0);
    atomic_init(&s->stopping, false);
    atomic_init(&s->conns_open, 0);
    atomic_init(&s->conns_refused, 0);
    if (cfg->metrics != NULL)
        s->refused = lst_metrics_counter(cfg->metrics, "lst_http_connections_refused_total",
                                         "Connections closed at once because max_connections "
                                         "were open.",
                                         NULL);
    s->ud = cfg->ud;
    s->ready = cfg->ready;
    s->metrics = cfg->metrics;
    s->max_body = cfg->max_body ? cfg->max_body : DEFAULT_MAX_BODY;
    s->drain_ms = cfg->drain_ms ? cfg->drain_ms : DEFAULT_DRAIN_MS;
    s->event_threads = cfg->event_threads;
    err = copy_routes(s, cfg);
    if (err == LST_OK && s->event_threads > 0)
        err = hub_create(s, cfg->async_timeout_ms);
    if (err == LST_OK)
        err = parse_bind(s, cfg->bind_addr ? cfg->bind_addr : "127.0.0.1", cfg->port, &ipv6);
    if (err == LST_OK)
        err = start_daemon(s, cfg, ipv6);
    if (err != LST_OK)
        goto out;
    if (s->hub != NULL)
        wake_target(s);
    LST_INFO("http.started", "HTTP server listening on %s port %u (%s, %u event threads)",
             cfg->bind_addr ? cfg->bind_addr : "127.0.0.1", (unsigned)s->port,
             s->event_threads > 0 ? "event mode" : "thread per connection", s->event_threads);
    *out = s;
    s = NULL;
out:
    lst_http_server_destroy(s);
    return err;
}

uint16_t lst_http_server_port(const struct lst_http_server *s)
{
    return s->port;
}

/* Connections that never became requests of ours (a TLS handshake sent to this plain HTTP
 * port, a malformed request line) are not in in_flight: MHD answers and closes them itself.
 * MHD 0.9.75 can crash stopping while a connection thread is in that error path (a NULL
 * response dereferenced: test_gateway_client's https-to-http case, about 1 run in 20), so
 * connections get a short moment to go; idle keep-alive ones just cost that moment. */
static void settle_connections(struct lst_http_server *s)
{
    int64_t deadline = lst_mono_ms() + SETTLE_MS;
    for (;;) {
        const union MHD_DaemonInfo *i =
            MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (i == NULL || i->num_connections == 0 || lst_mono_ms() >= deadline)
            return;
        lst_sleep_ms(10, NULL);
    }
}

/* Stop accepting, then give requests in flight drain_ms to finish and be sent. Accepting
 * stops in admit_connection, not with MHD_quiesce_daemon: in MHD 0.9.75 that races an epoll
 * thread that is awake at the moment (both take the listen socket out of the thread's epoll
 * set, and the loser aborts the process: "Failed to remove listen FD from epoll set"; 2 of 15
 * runs of test_stop_right_after_a_request). */
static void drain(struct lst_http_server *s)
{
    atomic_store(&s->stopping, true);
    int64_t deadline = lst_mono_ms() + s->drain_ms;
    while (atomic_load(&s->in_flight) > 0 && lst_mono_ms() < deadline)
        lst_sleep_ms(10, NULL);
    long left = atomic_load(&s->in_flight);
    if (left > 0)
        LST_WARN("http.stop.drain_timeout", "%ld request(s) still in flight after %u ms", left,
                 s->drain_ms);
    settle_connections(s);
    if (s->hub == NULL)
        return;
    /* MHD must not be stopped with a suspended connection: answer them (503), give the
     * answers a moment to be sent. */
    hub_stop(s);
    deadline = lst_mono_ms() + STOP_SEND_MS;
    while (atomic_load(&s->in_flight) > 0 && lst_mono_ms() < deadline)
        lst_sleep_ms(10, NULL);
}

void lst_http_server_destroy(struct lst_http_server *s)
{
    if (s == NULL)
        return;
    if (s->daemon != NULL) {
        drain(s);
        MHD_stop_daemon(s->daemon);
    }
    if (s->hub != NULL) {
        hub_stop(s); /* a no-op after drain; ends the timer of a half-built server */
        hub_detach(s);
    }
    for (size_t i = 0; i < s->nroutes; i++) {
        free(s->routes[i].method);
        free(s->routes[i].path);
        free(s->routes[i].metrics);
    }
    free(s->routes);
    free(s);
}
