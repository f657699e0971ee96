/* HTTP server on libmicrohttpd 0.9.75: a route table, request bodies with a size limit, JSON
 * problem details (RFC 9457) for errors, and the built-in /healthz, /readyz and /metrics.
 *
 * Two modes, chosen by lst_http_config.event_threads:
 *
 * Event mode (event_threads > 0; gateway-in's default): MHD's epoll loop on a pool of
 * event_threads threads (MHD_USE_EPOLL_INTERNAL_THREAD, MHD_OPTION_THREAD_POOL_SIZE,
 * MHD_ALLOW_SUSPEND_RESUME), each connection's memory pool 16 KiB (request headers up to
 * about 8 KiB).
 * Every handler (plain, built-in, async) runs on an event thread and must not block; work
 * that waits (Kafka acks, Redis, downloads) goes through an async route (below), whose answer
 * comes from another thread. A server timer thread answers async requests that are not
 * completed in time. Streamed responses are not meant for this mode (their next may block).
 *
 * Thread-per-connection mode (event_threads == 0, the library's default; view-api's SSE and the
 * simulator rely on it): one thread per connection (MHD_USE_THREAD_PER_CONNECTION with MHD's
 * internal polling thread), at most max_connections of them. Handlers may block (gateway-in waits
 * for a Kafka delivery report inside its handler): a blocked handler holds only its own connection.
 * With MHD's thread pool instead, each pool thread serves many connections through one event
 * loop, so one blocking handler would stall every connection that landed on its thread. The
 * cost, a thread per open connection, is bounded by max_connections; MHD answers connections
 * beyond it by closing them.
 *
 * Handlers run concurrently on those threads: anything they share through ud must be
 * thread-safe (lst_redis and lst_metrics are).
 *
 * Built-in routes (checked before the table): GET /healthz -> 200 {"status":"ok"}; GET /readyz
 * -> 200 {"status":"ready"} or 503 {"status":"not_ready","reason":"..."} from the ready
 * callback; GET /metrics -> lst_metrics_render output as text/plain; version=0.0.4. Every
 * request is counted in lst_http_requests_total{route,method,code} and timed in
 * lst_http_request_duration_seconds{route,method}; route is the matched route's path pattern
 * ("unmatched" for 404s), so label cardinality stays bounded.
 *
 * Errors the server produces itself: 404 unknown path, 405 known path with another method
 * (with an Allow header), 413 body above max_body (checked against Content-Length before the
 * body is read, and while reading for chunked bodies), 500 when a handler set no status. All
 * as application/problem+json, see lst_http_problem. Malformed HTTP is answered (400) or
 * closed by libmicrohttpd before any handler runs. HEAD is served by GET routes (MHD omits the
 * body). MHD's own error messages go to the project logger (event "http.mhd"). */
#ifndef LST_HTTP_H
#define LST_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lst/error.h"
#include "lst/metrics.h"
#include "lst/util.h"

#define LST_HTTP_MAX_HEADERS 16

/* Everything here is borrowed from the server and valid only during the handler call. */
struct lst_http_request {
    const char *method;      /* as sent, e.g. "POST" */
    const char *path;        /* percent-decoded path without the query string */
    const char *route;       /* the matched route's path pattern, e.g. "/api/messages/" */
    const char *body;        /* body_len bytes plus a NUL (for convenience); "" when none */
    size_t body_len;         /* at most max_body */
    const char *remote_addr; /* peer IP as text; "" when unknown */
    void *conn;              /* the MHD connection: use the getters below */
    void *priv;              /* the server's request state (lst_http_async_begin) */
};

/* A decoded query parameter; NULL when absent or given without a value ("?flag"). A repeated
 * name yields its first value. */
const char *lst_http_query(const struct lst_http_request *req, const char *name);

/* Called once per query parameter: decoded name and value (NULL for "?flag", "" for "?flag=").
 * Return false to stop. Both strings are borrowed for the handler call. */
typedef bool (*lst_http_query_fn)(void *ud, const char *name, const char *value);

/* Every query parameter in the order sent, repeats included (which lst_http_query cannot
 * show), e.g. to refuse unknown or repeated parameters. Returns how many were visited. */
size_t lst_http_query_each(const struct lst_http_request *req, lst_http_query_fn fn, void *ud);
/* A request header (name case-insensitive); NULL when absent. */
const char *lst_http_header(const struct lst_http_request *req, const char *name);

struct lst_http_header {
    char *name;
    char *value;
};

/* A streamed response body (Server-Sent Events, long downloads): the handler sets next and
 * ud in resp->stream; after the handler returns, the server sends status and headers, then
 * resp->body (if any) as the first bytes, then whatever next appends, chunk by chunk
 * (chunked transfer encoding), until next returns false, the client goes away or the server
 * stops.
 *
 * next runs on the connection's own thread (thread-per-connection), so it may block, but only
 * for a bounded time (a second or so): between two calls the server checks whether it is
 * stopping and whether the client closed the connection, and ends the stream then. It appends
 * the next bytes to out (empty after each call; appending nothing is fine, e.g. after a wait
 * without news) and returns true to go on, false to end the stream after out is sent. An
 * allocation failure in out ends the stream. Keep something flowing (e.g. SSE comments) more
 * often than conn_timeout_s, or MHD closes the connection as idle.
 *
 * free_ud (may be NULL) is called exactly once with ud when the response is done: after the
 * stream ended, the client went away or the server stopped, and also when the response could
 * not be started at all. The server owns ud from the moment the handler returns. */
typedef bool (*lst_http_stream_fn)(void *ud, struct lst_buf *out);
typedef void (*lst_http_stream_free_fn)(void *ud);

struct lst_http_stream {
    lst_http_stream_fn next; /* NULL: an ordinary response with body */
    lst_http_stream_free_fn free_ud;
    void *ud;
};

/* A body sent from an open file (the blob store's files), see lst_http_reply_fd. */
struct lst_http_file {
    bool set;      /* false: no file (the zeroed default) */
    int fd;        /* owned by the response: closed by the server or lst_http_response_cleanup */
    uint64_t size; /* bytes sent from offset 0 */
};

/* Filled by the handler. The server initialises it (status 0, empty body) and frees it. */
struct lst_http_response {
    int status; /* 100..599; 0 (unset) becomes a 500 problem */
    /* static storage (a literal); NULL means application/json. A Content-Type added with
     * lst_http_add_header (a type known only at run time, e.g. a stored blob's) replaces it. */
    const char *content_type;
    struct lst_buf body;
    struct lst_http_header headers[LST_HTTP_MAX_HEADERS]; /* owned, see lst_http_add_header */
    size_t nheaders;
    struct lst_http_stream stream; /* optional streamed body, see above */
    struct lst_http_file file;     /* optional body from a file, see lst_http_reply_fd */
};

/* Adds a response header such as Location or Access-Control-Allow-Origin (both copied).
 * LST_ERR_INVALID for an empty name or CR/LF in either (header injection), LST_ERR_RANGE when
 * LST_HTTP_MAX_HEADERS are set already. */
lst_err lst_http_add_header(struct lst_http_response *resp, const char *name, const char *value);

/* Sets status, content type (static storage, NULL = application/json) and a copy of the body,
 * replacing any previous body. */
lst_err lst_http_reply(struct lst_http_response *resp, int status, const char *content_type,
                       const char *body, size_t len);

/* Sets status and content type (as lst_http_reply) and answers with the first size bytes of
 * the open file fd instead of a body: the server hands fd to MHD_create_response_from_fd64,
 * which sends it with sendfile(2) where it can, so large files are never copied into memory
 * and a thread-per-connection handler returns at once. Content-Length is size; HEAD sends
 * none of it. The response owns fd from this call on, also on failure (it is closed when the
 * response is sent or freed, or when lst_http_reply, lst_http_problem or another
 * lst_http_reply_fd replaces the answer). The file must not shrink while it is sent (MHD
 * then ends the connection early); size 0 sends an empty body. LST_ERR_INVALID for fd < 0. */
lst_err lst_http_reply_fd(struct lst_http_response *resp, int status, const char *content_type,
                          int fd, uint64_t size);

/* Replaces the response with an RFC 9457 problem:
 *   Content-Type: application/problem+json
 *   {"type":"urn:leitstand:problem:<type_slug>","title":<title>,"status":<status>,
 *    "detail":<detail>}
 * type_slug is a stable kebab-case identifier (e.g. "payload-too-large") clients may switch
 * on; title a short fixed summary of the type; detail (printf format, may be NULL) explains this
 * occurrence. Never put secrets or message contents in detail. */
lst_err lst_http_problem(struct lst_http_response *resp, int status, const char *type_slug,
                         const char *title, const char *detail_fmt, ...) LST_PRINTF(5, 6);

/* A route handler: read req, fill resp. ud is the config's ud (the service context). */
typedef void (*lst_http_handler_fn)(void *ud, const struct lst_http_request *req,
                                    struct lst_http_response *resp);

struct lst_http_route {
    const char *method;          /* "GET", "POST", ... (exact, case-sensitive as in HTTP) */
    const char *path;            /* exact path, or a prefix when prefix is true */
    bool prefix;                 /* match every path starting with path */
    lst_http_handler_fn handler; /* required */
};

/* Readiness: return false and append a short reason to why (e.g. "redis unreachable"). */
typedef bool (*lst_http_ready_fn)(void *ud, struct lst_buf *why);

/* ---- Asynchronous routes (event mode only) ----
 *
 * In event mode (lst_http_config.event_threads > 0) a few MHD event threads serve every
 * connection; a handler must not block there. An async route's handler starts the work and
 * returns; the connection is suspended (MHD_suspend_connection) until some other thread calls
 * lst_http_async_complete, which stores the response and resumes the connection, and the
 * event thread that owns it sends the answer.
 *
 * Threads: the handler runs on an event thread. lst_http_async_complete may be called from any
 * thread (a Kafka delivery report, a worker), exactly once per accepted request, also after
 * the server answered on its own (timeout, stop) and also after lst_http_server_destroy: the
 * async object lives until both sides are done with it.
 *
 * Timeout: when no completion arrived async_timeout_ms after the handler returned, the
 * server's timer thread answers 503 (problem type "timeout"); a later completion is then
 * freed unsent. lst_http_server_destroy answers every request still pending with 503
 * ("shutting-down") after drain_ms. */
struct lst_http_async;

/* An async handler: either answers at once (fills resp and returns NULL, like a plain
 * handler), or takes the request and returns the async handle from lst_http_async_begin,
 * leaving resp untouched. */
typedef struct lst_http_async *(*lst_http_async_fn)(void *ud, const struct lst_http_request *req,
                                                    struct lst_http_response *resp);

struct lst_http_async_route {
    const char *method;
    const char *path; /* exact path */
    lst_http_async_fn handler;
};

/* From within an async handler only: makes req asynchronous and returns its handle (NULL when
 * out of memory or the server is stopping: then answer at once, e.g. 503). req->body stays
 * valid until lst_http_async_complete: the handle owns it from now on. */
struct lst_http_async *lst_http_async_begin(const struct lst_http_request *req);
/* The request body, owned by a until lst_http_async_complete. */
const char *lst_http_async_body(const struct lst_http_async *a, size_t *len);
/* Answers the request: takes resp's contents (resp is left empty, still to be cleaned up with
 * lst_http_response_cleanup) and resumes the connection. Exactly once per handle; a is invalid
 * afterwards. Streams are not supported here (answered 500). */
void lst_http_async_complete(struct lst_http_async *a, struct lst_http_response *resp);

/* An empty response (status 0) for lst_http_async_complete, and its cleanup. */
void lst_http_response_init(struct lst_http_response *resp);
void lst_http_response_cleanup(struct lst_http_response *resp);

struct lst_http_config {
    const char *bind_addr;    /* IPv4 or IPv6 literal; NULL means "127.0.0.1" */
    uint16_t port;            /* 0 picks an ephemeral port, see lst_http_server_port */
    unsigned max_connections; /* concurrent connections = handler threads; 0 means 64 */
    size_t max_body;          /* largest request body in bytes; 0 means 1 MiB */
    unsigned conn_timeout_s;  /* idle connections are closed after this; 0 means 30 */
    unsigned drain_ms;        /* destroy waits this long for in-flight requests; 0 = 5000 */
    const struct lst_http_route *routes; /* copied (strings too) */
    size_t nroutes;
    void *ud;                    /* passed to handlers and ready; borrowed */
    lst_http_ready_fn ready;     /* NULL means always ready */
    struct lst_metrics *metrics; /* borrowed, may be NULL; must outlive the server */
    /* 0: thread-per-connection (handlers may block; async routes are refused). N > 0: event
     * mode: MHD's epoll with a pool of N event threads, suspend/resume, async routes; plain
     * routes (and the built-ins) then run on the event threads and must not block. */
    unsigned event_threads;
    const struct lst_http_async_route *async_routes; /* copied; event mode only */
    size_t nasync_routes;
    unsigned async_timeout_ms; /* answer 503 after this; 0 means 10000 */
};

struct lst_http_server;

/* Validates the config, binds and starts serving. LST_ERR_CONFIG for a bad config (bad
 * address, route without handler), LST_ERR_HTTP when MHD cannot start (e.g. port in use). */
lst_err lst_http_server_create(const struct lst_http_config *cfg, struct lst_http_server **out);
/* The port actually bound (useful with port 0). */
uint16_t lst_http_server_port(const struct lst_http_server *s);
/* Stops accepting connections at once, waits up to drain_ms for requests in flight (their
 * handlers run to completion and their responses are sent), then stops MHD, which closes the
 * remaining connections and joins their threads. A handler still running after drain_ms is
 * waited for (MHD joins its thread), so handlers must bound their own blocking. Must not be
 * called from a handler. Streamed responses (lst_http_stream) are ended first: their next is
 * not called again once the stop began. NULL is a no-op. */
void lst_http_server_destroy(struct lst_http_server *s);

#endif
