/* view-api: serves the dispatchers' views and takes send requests for the single-page apps.
 *
 * Reads the ledger's projections in Redis (docs/ledger.md) and writes only by producing to
 * Kafka (lst.message, lst.outbound, lst.employees); its own small state (idempotency keys) is
 * the one exception and lives under its own key prefix. docs/view-api.md describes the API,
 * proto/openapi.yaml is its contract.
 *
 * Files, one concern each:
 *   main.c        configuration sections, run
 *   config.c      the service's configuration table
 *   view_api.c    the context: create (tokens, CORS, blob store), routes, run, destroy
 *   auth.c        bearer tokens from the token file (hashed), roles
 *   cors.c        allowed origins, CORS headers, preflight
 *   request.c     the frame of every API handler (CORS, auth), JSON bodies, query helpers,
 *                 problem details with extension members
 *   produce.c     producing a batch of records and waiting for every acknowledgement
 *   directory.c   reading the employee directory projection
 *   employees.c   GET /api/employees
 *   csv.c         an RFC 4180 CSV reader
 *   erp_import.c  POST /api/admin/erp-import (CSV and JSON, upsert and full sync)
 *   audience.c    resolving explicit employees and a selector to recipients
 *   send.c        POST /api/messages (idempotency key, records, 202)
 *   feed.c        the timeline engine: indexes, filters, cursor pages, item JSON
 *   timeline.c    GET /api/timeline
 *   history.c     GET /api/employees/{id}/history
 *   detail.c      GET /api/messages/{id}
 *   blobs.c       GET /api/blobs/{sha256} (the bytes of photos and files, from the blob store)
 *   stream.c      GET /api/stream (Server-Sent Events of the ledger's change stream)
 *   readvis.c     read tracking visibility per category (LST_VIEW_READ_VISIBILITY)
 *   rowcache.c    rendered timeline rows by (item ID, version) (LST_VIEW_ROW_CACHE), and the
 *                 history's rendered recipient states by content
 *   names.c       the current directory names of the employees items are about
 *   refill.c      503 while the ledger refills the projections (Redis lost progress)
 *
 * Threads: handlers run concurrently on the HTTP server's connection threads. Everything in
 * the context is read-only after start except through thread-safe objects (lst_redis,
 * lst_kafka_producer, lst_metrics). */
#ifndef LST_SVC_VIEW_API_H
#define LST_SVC_VIEW_API_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "lst/blobstore.h"
#include "lst/config.h"
#include "lst/gateway_config.h"
#include "lst/http.h"
#include "lst/records.h"
#include "lst/service.h"

/* ---- configuration (config.c) ---- */

struct view_api_config {
    struct lst_common_config common;
    int64_t http_port;              /* LST_HTTP_PORT */
    char *tokens_file;              /* LST_VIEW_TOKENS_FILE */
    char *cors_origins;             /* LST_VIEW_CORS_ORIGINS: comma-separated */
    int64_t json_max_body;          /* LST_VIEW_JSON_MAX_BODY */
    int64_t upload_max_body;        /* LST_VIEW_UPLOAD_MAX_BODY */
    int64_t idem_ttl_ms;            /* LST_VIEW_IDEMPOTENCY_TTL_MS */
    int64_t kafka_wait_ms;          /* LST_VIEW_KAFKA_WAIT_MS */
    int64_t page_max;               /* LST_VIEW_PAGE_MAX */
    int64_t scan_max;               /* LST_VIEW_SCAN_MAX */
    char *key_prefix;               /* LST_VIEW_KEY_PREFIX: the view-api's own keys */
    char *ledger_prefix;            /* LST_VIEW_LEDGER_PREFIX: the ledger's projections */
    char *state_host;               /* LST_VIEW_STATE_REDIS_HOST: NULL = the projections' */
    int64_t state_port;             /* LST_VIEW_STATE_REDIS_PORT */
    int64_t state_db;               /* LST_VIEW_STATE_REDIS_DB */
    char *state_password;           /* LST_VIEW_STATE_REDIS_PASSWORD */
    char *blob_dir;                 /* LST_BLOB_DIR */
    int64_t balance_ttl_ms;         /* LST_VIEW_BALANCE_TTL_MS (credits.c) */
    char *read_visibility;          /* LST_VIEW_READ_VISIBILITY (readvis.c) */
    int64_t max_streams;            /* LST_VIEW_MAX_STREAMS (stream.c) */
    int64_t stream_heartbeat_ms;    /* LST_VIEW_STREAM_HEARTBEAT_MS */
    int64_t stream_block_ms;        /* LST_VIEW_STREAM_BLOCK_MS */
    int64_t row_cache;              /* LST_VIEW_ROW_CACHE (rowcache.c) */
    struct lst_gateway_settings gw; /* optional: the Gateway balance (credits.c) */
};

extern const struct lst_config_program view_api_program;

/* The service's own configuration section (the common one comes from the library). */
struct lst_config_section view_api_config_section(struct view_api_config *cfg);
/* The shared Gateway settings (lst/gateway_config.h) as an optional section (credits.c). */
struct lst_config_section view_api_gateway_section(struct view_api_config *cfg);

/* ---- auth (auth.c) ---- */

enum va_role { VA_ROLE_DISPATCHER = 0, VA_ROLE_ADMIN = 1 };

#define VA_TOKEN_HASH_LEN 32 /* sha256 */

struct va_token {
    unsigned char hash[VA_TOKEN_HASH_LEN];
    enum va_role role;
    char *user;       /* user id (the dispatcher of lst.message) */
    char *department; /* NULL when "-" */
    char *name;       /* display name (dispatcher_name of lst.message); NULL when none */
};

struct va_tokens {
    struct va_token *items;
    size_t n;
};

/* Parses the token file text: one token per line, "<sha256 hex> <role> <user> <department>
 * [<display name>]", fields separated by blanks, '#' comments and empty lines ignored;
 * department "-" means none; the display name is the rest of the line (blanks inside kept).
 * LST_ERR_CONFIG with the line number and reason in why. Appends to t. */
lst_err va_tokens_parse(struct va_tokens *t, const char *text, struct lst_buf *why);
/* Reads and parses the file (NULL: no tokens, every API request is refused). */
lst_err va_tokens_load(struct va_tokens *t, const char *path, struct lst_buf *why);
void va_tokens_cleanup(struct va_tokens *t);
/* The entry of a presented token (hashed, compared in constant time against every entry), or
 * NULL. Borrowed from t. */
const struct va_token *va_tokens_find(const struct va_tokens *t, const char *token, size_t len);

/* ---- CORS (cors.c) ---- */

struct va_cors {
    char **origins; /* exact origins such as "https://dispo.example.com"; "*" allows any */
    size_t n;
};

lst_err va_cors_parse(struct va_cors *c, const char *list, struct lst_buf *why);
void va_cors_cleanup(struct va_cors *c);
bool va_cors_allowed(const struct va_cors *c, const char *origin);
struct view_api;
/* Adds the CORS response headers when the request's Origin is allowed. */
void va_cors_apply(struct view_api *ctx, const struct lst_http_request *req,
                   struct lst_http_response *resp);

/* ---- read tracking visibility (readvis.c) ---- */

/* Per category: person = per-recipient read status shown (default); counts = only the
 * aggregates; off = no read information (read/acknowledged/declined shown as delivered,
 * their counts folded into delivered). */
enum va_readvis { VA_READ_PERSON = 0, VA_READ_COUNTS, VA_READ_OFF };

struct va_readvis_cfg {
    enum va_readvis def;
    struct {
        char *category;
        enum va_readvis vis;
    } * items;
    size_t n;
};

/* Parses "default=person,personal=counts,hr=off" (NULL/empty: person everywhere). Strict:
 * LST_ERR_CONFIG with the reason in why for an unknown value, a name that is not a slug, an
 * empty item or a name given twice. */
lst_err va_readvis_parse(struct va_readvis_cfg *c, const char *spec, struct lst_buf *why);
void va_readvis_cleanup(struct va_readvis_cfg *c);
/* The visibility of a category (NULL: the default). */
enum va_readvis va_readvis_of(const struct va_readvis_cfg *c, const char *category);
const char *va_readvis_name(enum va_readvis v);
/* True when some category (or the default) has read information off. */
bool va_readvis_any_off(const struct va_readvis_cfg *c);
/* Appends a JSON array of the categories with read information off ("*": the default). */
void va_readvis_off_json(const struct va_readvis_cfg *c, struct lst_buf *b);
/* The state a recipient is shown in: under counts/off read, acknowledged and declined become
 * delivered. Static strings (or state itself). */
const char *va_readvis_state(enum va_readvis v, const char *state);
struct va_filter;
/* Applies c to a parsed filter: status=unread with a requested category whose read
 * information is off is refused (false, why); otherwise such categories are skipped by
 * status=unread (f->readvis = c) and the page says so (read_hidden_categories). */
bool va_readvis_filter(const struct va_readvis_cfg *c, struct va_filter *f, struct lst_buf *why);

/* ---- rendered timeline rows (rowcache.c) ---- */

/* The hash fields a page's filters check, kept with a cached row (has_*: the field exists),
 * and the employee the row is about (eid: its name is read per page, names.c). */
struct va_row_fields {
    bool has_cat, has_kind, has_dir, has_eid;
    bool handled; /* the hash has handled_by (a change of it is a new version) */
    char cat[LST_SLUG_MAX + 1];
    char kind[33];
    char dir[4];
    char eid[LST_EMPLOYEE_ID_MAX + 1];
};

/* Thread-safe. capacity <= 0: disabled (*out = NULL; the callers skip a NULL cache). metrics:
 * where its lookups, evictions and size show (may be NULL), as lst_view_<family>_cache_*:
 * family "row" (the timeline rows, size ..._rows) or "state" (the history's recipient states,
 * size ..._states). */
struct va_rowcache;
lst_err va_rowcache_create(int64_t capacity, struct lst_metrics *metrics, const char *family,
                           struct va_rowcache **out);
void va_rowcache_destroy(struct va_rowcache *c);
/* The row of id at version v: appends its JSON to json, copies its fields to f. false when
 * not cached at that version (an older one is dropped). */
bool va_rowcache_get(struct va_rowcache *c, const char *id, int64_t v, struct va_row_fields *f,
                     struct lst_buf *json);
/* Caches the row of id at version v (kept unless a newer version is cached already). */
void va_rowcache_put(struct va_rowcache *c, const char *id, int64_t v,
                     const struct va_row_fields *f, const char *json, size_t len);
/* An instance used only through these two keeps entries checked by content instead of a
 * version (the history's recipient states, feed.c): a hit when id's entry was stored with the
 * same check bytes (checklen > 0); a put replaces id's entry. */
bool va_rowcache_get_by(struct va_rowcache *c, const char *id, const char *check, size_t checklen,
                        struct lst_buf *json);
void va_rowcache_put_by(struct va_rowcache *c, const char *id, const char *check, size_t checklen,
                        const char *json, size_t len);
/* Lookups that hit and missed, and rows held (all 0 for NULL). */
void va_rowcache_stats(struct va_rowcache *c, uint64_t *hits, uint64_t *misses, size_t *rows);
/* Drops every row: Redis was replaced or rolled back (refill.c), where versions may repeat. */
void va_rowcache_clear(struct va_rowcache *c);

/* ---- the context (view_api.c) ---- */

#define VA_READ_CONNS 4

/* ---- whether the projections may be served (refill.c) ---- */

#define VA_REFILL_CACHE_MS 100 /* how long one check's verdict is reused */
#define VA_RUN_ID_MAX      64

enum va_proj {
    VA_PROJ_OK = 0,    /* served */
    VA_PROJ_REFILLING, /* the ledger refills after Redis lost progress: 503 */
    VA_PROJ_UNCHECKED, /* Redis restarted (or lost everything), no ledger checked it yet: 503 */
    VA_PROJ_ERROR,     /* Redis could not be asked: 503 store-unavailable */
};

struct va_refill {
    pthread_mutex_t lock; /* one check at a time; guards seen and last_logged */
    bool ready;
    _Atomic int64_t checked_at; /* mono ms when the cached check began; 0: none */
    atomic_int state;           /* enum va_proj of that check */
    bool seen;                  /* the ledger's refill hash existed once */
    enum va_proj last_logged;
    char run_id[VA_RUN_ID_MAX]; /* the Redis server of the last check ("" before) */
};

void va_refill_init(struct va_refill *r);
void va_refill_cleanup(struct va_refill *r);
struct view_api;
/* The verdict, cached for VA_REFILL_CACHE_MS unless fresh. Thread-safe. */
enum va_proj va_refill_state(struct view_api *ctx, bool fresh);
/* For rconn.c: a fresh check after a read connection connected; true when it may read. ud is
 * the struct view_api. */
bool va_refill_connected(void *ud);

struct view_api {
    struct view_api_config cfg;
    struct lst_service *svc;
    struct va_tokens tokens;
    struct va_cors cors;
    struct lst_blobstore *blobs; /* NULL when the blob store could not be opened */
    char topic_message[LST_TOPIC_MAX + 1];
    char topic_outbound[LST_TOPIC_MAX + 1];
    char topic_employees[LST_TOPIC_MAX + 1];
    char topic_annotations[LST_TOPIC_MAX + 1]; /* annotate.c */
    char topic_views[LST_TOPIC_MAX + 1];       /* views.c */
    char topic_audit[LST_TOPIC_MAX + 1];
    struct va_balance *balance;    /* the cached Gateway balance (credits.c) */
    struct va_readvis_cfg readvis; /* LST_VIEW_READ_VISIBILITY, read-only after create */
    atomic_int streams;            /* open live streams (stream.c) */
    /* The read paths' Redis connections (rconn.c), picked round robin. */
    struct va_rconn *read_conns[VA_READ_CONNS];
    atomic_uint read_next;
    struct va_refill refill;  /* refill.c */
    struct va_rowcache *rows; /* rowcache.c; NULL: disabled */
    /* the history's rendered recipient states by (item, employee), checked by the stored state
     * JSON (rowcache.c, feed.c); as large as the row cache, NULL with it */
    struct va_rowcache *states;
    /* The idempotency keys' Redis (send.c): svc->redis, or a server of their own (destroyed
     * with the context) when LST_VIEW_STATE_REDIS_HOST is set. */
    struct lst_redis *state;
};

/* ---- the read paths' Redis connections (rconn.c) ---- */

/* A connection of its own with replies built in an arena (no allocation per reply element)
 * and its own lock. Use: begin (locks, connects if needed, empties the arena), add commands,
 * exec (reads every queued reply; *first is the index of the first), reply(i) (borrowed until
 * end), more add/exec rounds, end (unlocks). exec fails with LST_ERR_REDIS when the
 * connection failed (it is dropped; the next begin connects again: worth one more attempt),
 * LST_ERR_TIMEOUT when Redis did not answer in time (dropped too, but another attempt would
 * only double the wait) and LST_ERR_STATE when Redis answered a command with an error such as
 * -LOADING (the connection stays usable); every failure is a 503 for the client. */
struct va_rconn;
/* on_connect (may be NULL) runs after every new connection, before anything is read on it;
 * false drops the connection and va_rconn_begin fails (the projections may not be served). */
lst_err va_rconn_create(const struct lst_common_config *c, bool (*on_connect)(void *ud), void *ud,
                        struct va_rconn **out);
void va_rconn_destroy(struct va_rconn *rc);
lst_err va_rconn_begin(struct va_rconn *rc);
lst_err va_rconn_add(struct va_rconn *rc, int argc, const char **argv);
lst_err va_rconn_exec(struct va_rconn *rc, size_t *first);
const redisReply *va_rconn_reply(const struct va_rconn *rc, size_t i);
void va_rconn_end(struct va_rconn *rc);

/* The read connection for one request (round robin). */
struct va_rconn *va_read_conn(struct view_api *ctx);

/* Loads tokens and CORS origins, opens the blob store, starts the service with the routes.
 * port_override >= 0 replaces cfg.http_port (0: an ephemeral port, see view_api_port; tests);
 * -1 keeps it. On failure everything built is freed by view_api_destroy. */
lst_err view_api_create(struct view_api *ctx, int port_override);
/* Stops the service (requests in flight finish) and frees what the context owns except cfg. */
void view_api_destroy(struct view_api *ctx);
/* The bound HTTP port. */
uint16_t view_api_port(const struct view_api *ctx);

/* Runs the service with its loaded configuration until SIGTERM; returns the exit code. */
int view_api_run(struct view_api *ctx);

/* ---- the frame of every handler (request.c) ---- */

/* One authenticated API request. */
struct va_req {
    struct view_api *ctx;
    struct lst_service *svc;
    const struct lst_http_request *http;
    struct lst_http_response *resp;
    const struct va_token *who;
};

/* Adds the CORS headers, authenticates the bearer token and checks the role. false when the
 * response is already set (401, 403). */
bool va_begin(void *ud, const struct lst_http_request *req, struct lst_http_response *resp,
              enum va_role need, struct va_req *out);
/* false (503 projections-refilling or store-unavailable, with Retry-After) when the projections
 * may not be served now (refill.c); va_begin calls it for every route but /api/me. */
bool va_refill_gate(struct va_req *req);

/* A problem with extension members: ext is the JSON text of the extra members without braces
 * (e.g. "\"errors\":[...]"), may be NULL. */
void va_problem_ext(struct lst_http_response *resp, int status, const char *type, const char *title,
                    const char *detail, const char *ext);

/* Parses the body as one JSON object (checks the JSON size limit, UTF-8). NULL with the 4xx
 * problem set otherwise; the caller frees the result with json_object_put. */
struct json_object *va_json_body(struct va_req *r);
/* The same with another size limit (uploads, imports). */
struct json_object *va_json_body_max(struct va_req *r, int64_t max);

/* Whether every member of the JSON object o is one of known (NULL-terminated). A request
 * body's misspelt member ("employees" for "employee_ids") would otherwise be ignored in
 * silence and, in a send, change who gets the message. false with the member, where (path:
 * "" for the body, "selector", ...) and the known names in why. */
bool va_json_members_only(struct json_object *o, const char *path, const char *const *known,
                          struct lst_buf *why);

/* Appends the string values of a JSON array of strings (max items, each at most max_len
 * bytes; NULL array: nothing). false with the reason in why ("departments[2]: expected
 * string"). */
bool va_json_strv(struct json_object *arr, const char *name, size_t max, size_t max_len,
                  struct lst_strv *out, struct lst_buf *why);

/* A query parameter split at commas into out (empty items refused). false with why. */
bool va_query_list(const struct lst_http_request *req, const char *name, size_t max_len,
                   struct lst_strv *out, struct lst_buf *why);

/* The same for a value at hand (v NULL: nothing); name is for the reason. */
bool va_list_split(const char *v, const char *name, size_t max_len, struct lst_strv *out,
                   struct lst_buf *why);

/* The query parameters one route knows, declared next to the route's parsing (one table per
 * route). The OpenAPI test (tests/system/view_api_openapi_check.py) checks that each equals
 * the operation's query parameters in proto/openapi.yaml. */
struct va_query_spec {
    const char *method, *path; /* the operation, path as templated in proto/openapi.yaml */
    const char *const *names;  /* NULL-terminated */
    bool filter;               /* also the timeline filter's parameters (va_filter_param) */
};

/* The tables of the routes with query parameters, each beside its route's parsing; those of
 * the operations that take none are in view_api.c. va_query_specs (view_api.c) lists one per
 * operation of proto/openapi.yaml under /api/ (va_begin finds the request's there; the
 * OpenAPI test checks them all). */
extern const struct va_query_spec va_employees_query, va_timeline_query, va_history_query,
    va_stream_query, va_import_query, va_credits_query, va_audit_query;
extern const struct va_query_spec *const va_query_specs[];
extern const size_t va_query_nspecs;

/* The table of the operation that method and path (e.g. "/api/employees/E1/history") are an
 * instance of; HEAD falls back to GET. NULL when none (an unknown path: the route's 404). */
const struct va_query_spec *va_query_spec_find(const char *method, const char *path);

/* The route's i-th known query parameter: the filter's first (with spec->filter), then its
 * own names; NULL past the last. */
const char *va_query_param(const struct va_query_spec *spec, size_t i);

/* Whether the query holds only parameters the route knows, each once and with a value. A
 * misspelt filter (departmnet=) would otherwise be ignored in silence and the page show
 * everything; a repeated one would keep only its first value. "_" (the cache buster of
 * jQuery-style clients) is always accepted and ignored. false with a 400 invalid-query problem
 * set that names the parameter and the known ones. va_begin calls it for every operation. */
bool va_query_only(struct va_req *r, const struct va_query_spec *spec);

/* A time parameter (from, to): milliseconds since the epoch, 0 to LST_TIME_MS_MAX. Values
 * from VA_SECONDS_LIKE_MIN up to (not incl.) VA_SECONDS_LIKE_END are refused: as seconds they
 * are 2001-09-09T01:46:40Z to the year 5138 (every time a client means today), as
 * milliseconds 1970-01-12T13:46:40Z to 1973-03-03T09:46:40Z, older than anything Leitstand
 * stores. Taken as milliseconds, a time in seconds would silently select 1970. Smaller values
 * (0, test data) stay milliseconds. false with why naming the parameter. */
#define VA_SECONDS_LIKE_MIN INT64_C(1000000000)
#define VA_SECONDS_LIKE_END INT64_C(100000000000)
bool va_parse_time_ms(const char *name, const char *v, int64_t *out, struct lst_buf *why);

/* The "limit" query parameter within [1, page_max] (default def). false with why. */
bool va_query_limit(const struct va_req *r, int64_t def, int64_t *out, struct lst_buf *why);

/* Sends a JSON body. */
void va_reply_json(struct va_req *r, int status, const struct lst_buf *body);

/* Full Redis key: ledger prefix + rest. */
lst_err va_lkey(const struct view_api *ctx, struct lst_buf *out, const char *fmt, ...)
    LST_PRINTF(3, 4);

/* True when s is a valid employee ID (proto/README.md). */
bool va_employee_id_ok(const char *s);

/* Appends "key":<json string> (with a leading comma when comma is true). Skips NULL values. */
void va_json_kv(struct lst_buf *b, bool comma, const char *key, const char *val);
/* Appends a JSON array of the strings of v. */
void va_json_strv_out(struct lst_buf *b, const struct lst_strv *v);

/* ---- producing (produce.c) ---- */

struct va_batch; /* records produced together, waited for together */

lst_err va_batch_create(struct va_batch **out);
void va_batch_destroy(struct va_batch *b);
/* Queues one record (key and value copied); a tombstone when value is NULL. */
lst_err va_batch_produce(struct va_batch *b, struct lst_kafka_producer *p, const char *topic,
                         const char *key, const char *value, size_t len);
/* Waits until every record of the batch has its delivery report or wait_ms passed. LST_OK
 * when every record was acknowledged; else the first error (LST_ERR_TIMEOUT when the wait
 * ran out). *acked receives the acknowledged count. */
lst_err va_batch_wait(struct va_batch *b, int64_t wait_ms, size_t *acked);
/* True when every queued record has its report (only then may the batch be destroyed). */
bool va_batch_settled(struct va_batch *b);
/* Destroys b when settled; otherwise leaves it to the producer (a bounded leak that only
 * happens when a wait timed out, instead of a use-after-free in the delivery callback). */
void va_batch_release(struct va_batch *b);

/* ---- the employee directory (directory.c) ---- */

/* How an employee is reached over Threema, beyond the directory entry (reach.c): filled by
 * va_reach_read, all zero otherwise. Every field owned. */
struct va_reach {
    struct lst_strv learned; /* IDs gateway-out's lookups found (emp:ltid), still mapped to the
                                employee (emp:tid:<id> = the employee), in ID order */
    char *fail_mid;          /* the newest send to the employee failed: that message, */
    char *fail_code;         /* its failure code (lookup_not_found, http_404, ...), */
    char *fail_reason;       /* its reason (NULL: none given) */
    int64_t fail_at;         /* and when (0: not given) */
};

/* One employee of the ledger's directory, every field owned. */
struct va_employee {
    char *id;
    char *name;
    char *department;
    char *vehicle;
    struct lst_strv tags;
    bool active;
    char *threema_id;
    char *phone;
    char *email;
    int64_t updated_at;
    char *source;
    struct va_reach reach;
};

void va_employee_cleanup(struct va_employee *e);
/* Loads the employees of ids (one pipelined round); found[i] tells which exist. out[] must
 * hold n zeroed entries. */
lst_err va_directory_get(struct view_api *ctx, const char *const *ids, size_t n,
                         struct va_employee *out, bool *found);
/* va_directory_get, then va_reach_read for the employees found: one employee's answer
 * (/api/employees/{id}, the GDPR export). */
lst_err va_directory_get_reach(struct view_api *ctx, const char *const *ids, size_t n,
                               struct va_employee *out, bool *found);
/* erased[i]: whether ids[i] is on the ledger's erased list (one SMISMEMBER). */
lst_err va_directory_erased(struct view_api *ctx, const char *const *ids, size_t n, bool *erased);
/* Up to limit employee IDs after `after` (exclusive; NULL: from the start) in ID order. */
lst_err va_directory_ids(struct view_api *ctx, const char *after, size_t limit,
                         struct lst_strv *out);
/* Every member of a directory set such as "emp:dep:<name>" (ledger prefix added). */
lst_err va_directory_set(struct view_api *ctx, const char *set, const char *name,
                         struct lst_strv *out);
/* The directory entries of employees to name (n > 0), on a read connection the caller began:
 * queues SMISMEMBER <erased> ids... and then HMGET emp:<id> fields... per ID (execute with
 * va_rconn_exec; its first reply is the SMISMEMBER's). An erased employee is never named: the
 * ledger deletes her entry in the erasure's script, and the erased list is checked as well. */
lst_err va_directory_queue_named(struct view_api *ctx, struct va_rconn *rc, const char *const *ids,
                                 size_t n, const char *const *fields, size_t nfields);
/* The HMGET reply (an array of the fields) of the k-th ID queued by va_directory_queue_named,
 * whose replies start at first; NULL unless she is known not to be erased. */
const redisReply *va_directory_named(const struct va_rconn *rc, size_t first, size_t k);
/* Appends the employee as a JSON object (with its "threema" object, from e->reach). */
void va_employee_json(struct lst_buf *b, const struct va_employee *e);

/* ---- how an employee is reached over Threema (reach.c) ---- */

/* History items read per employee to find the newest send (incoming items are skipped). */
#define VA_REACH_HISTORY 8

void va_reach_cleanup(struct va_reach *r);
/* Fills e[i].reach of every employee with found[i], read after the page is chosen so that
 * only the employees shown cost anything: one pipelined round (SMISMEMBER erased <ids...>,
 * per employee SMEMBERS emp:ltid:<id> and ZREVRANGE x:emp:<id> 0 VA_REACH_HISTORY-1), and a
 * second one for the batch only when some employee has a learned ID or a send (GET
 * emp:tid:<id> per learned ID, HGET r:<mid> <id> for her newest send). An employee on the
 * erased list (an entry left over) is cleaned up and found[i] cleared. */
lst_err va_reach_read(struct view_api *ctx, struct va_employee *e, bool *found, size_t n);
/* Appends ,"threema":{...} for e (docs/view-api.md, Employees). */
void va_reach_json(struct lst_buf *b, const struct va_employee *e);

/* ---- the names of the employees items are about (names.c) ---- */

/* Distinct employee IDs and, after a read, their current names from the directory. Not
 * thread-safe (one per page or stream batch). */
struct va_names {
    size_t n, cap;
    size_t *id_at;   /* offsets of the IDs in ids */
    size_t *name_at; /* offsets of the names in text; SIZE_MAX: none (unknown, erased) */
    struct lst_buf ids, text;
};

void va_names_init(struct va_names *n);
void va_names_reset(struct va_names *n);
void va_names_cleanup(struct va_names *n);
/* The index of eid (added when new); SIZE_MAX when out of memory. */
size_t va_names_add(struct va_names *n, const char *eid);
/* Reads the names of every ID in one pipelined round on rc (begun by the caller): one
 * SMISMEMBER of the erased set and one HMGET emp:<id> name each. An erased or unknown ID has
 * none. Nothing is sent when n holds no ID. Errors as va_rconn_exec. */
lst_err va_names_read(struct view_api *ctx, struct va_rconn *rc, struct va_names *n);
/* The same on a read connection of its own (with one more attempt after a dropped one). */
lst_err va_names_load(struct view_api *ctx, struct va_names *n);
/* The name of the i-th ID (borrowed from n), NULL when none. */
const char *va_names_get(const struct va_names *n, size_t i);
/* Appends ,"employee_name":<name> when the i-th ID has one. */
void va_names_json(struct lst_buf *b, const struct va_names *n, size_t i);

/* ---- CSV (csv.c) ---- */

struct va_csv {
    const char *p, *end;
    int line;        /* line of the reader's position */
    int record_line; /* first line of the record va_csv_next returned last */
};

void va_csv_init(struct va_csv *c, const char *data, size_t len);
/* The next record's fields appended to out: 1 when a record was read, 0 at the end, -1 for
 * malformed CSV (why: a static reason; the reader cannot go on). */
int va_csv_next(struct va_csv *c, struct lst_strv *out, const char **why);

/* ---- audience (audience.c) ---- */

enum va_skip_reason { VA_SKIP_UNKNOWN = 0, VA_SKIP_INACTIVE, VA_SKIP_NO_CONTACT };

struct va_audience {
    struct lst_selector selector; /* as requested (employee_ids: the explicit ones) */
    struct va_employee *recipients;
    size_t nrecipients;
    struct {
        char *id;
        enum va_skip_reason reason;
    } * skipped;
    size_t nskipped;
};

const char *va_skip_reason_name(enum va_skip_reason r);
/* Resolves explicit IDs plus the selector (within a list any item, across lists all;
 * selector.has_active false means active only) to recipients, in ID order, without
 * duplicates. An empty selector (no list) selects nobody. */
lst_err va_audience_resolve(struct view_api *ctx, struct va_audience *a);
void va_audience_cleanup(struct va_audience *a);

/* ---- the timeline engine (feed.c) ---- */

enum va_status_filter { VA_ST_ANY = 0, VA_ST_FAILED, VA_ST_UNREAD, VA_ST_UNDELIVERED };
/* handled=true: items with handled_by; handled=false: incoming items without (the open inbox) */
enum va_handled_filter { VA_HANDLED_ANY = 0, VA_HANDLED_YES, VA_HANDLED_NO };

struct va_filter {
    const char *dir; /* "in" | "out" | NULL */
    struct lst_strv kinds, categories, hidden, employees, departments, vehicles, dispatchers;
    struct lst_strv tags;   /* tag= */
    struct lst_strv depots; /* depot=<d> as the tags depot:<d> (its own AND-ed filter) */
    enum va_status_filter status;
    enum va_handled_filter handled;
    bool has_from, has_to;
    int64_t from, to; /* ms, inclusive */
    char *q;          /* lowercase ASCII-folded search text, NULL: none */
    /* borrowed; when set, status=unread skips items of categories with read information off */
    const struct va_readvis_cfg *readvis;
};

struct va_cursor {
    bool set;
    int64_t score;
    char id[128];
};

void va_filter_cleanup(struct va_filter *f);
/* The timeline filter's query parameters by index (those a saved view's record holds, then
 * hidden); NULL past the last. */
const char *va_filter_param(size_t i);
/* Parses the common filter query parameters (docs/view-api.md). false with why. */
bool va_filter_parse(const struct lst_http_request *req, struct va_filter *f, struct lst_buf *why);
/* The same over any source of parameters: get(ud, name) returns the value or NULL (borrowed
 * until f is cleaned up). Saved views use it with their stored filter. */
typedef const char *(*va_param_fn)(void *ud, const char *name);
bool va_filter_parse_from(va_param_fn get, void *ud, struct va_filter *f, struct lst_buf *why);
bool va_cursor_parse(const char *s, struct va_cursor *c);

/* Runs one page: newest first, at most limit items matching f, starting after cur. The JSON
 * {"items":[...],"next_cursor":..} goes to out. recipient: when not NULL, each item gets that
 * employee's per-recipient status. */
lst_err va_feed_page(struct view_api *ctx, const struct va_filter *f, const struct va_cursor *cur,
                     int64_t limit, const char *recipient, struct lst_buf *out);
/* One recipient's state object from the ledger's compact state JSON; rroff: the recipient
 * evidently has read receipts off (a "delivered" state is then marked read_unknown). */
void va_recipient_json(struct lst_buf *b, const char *state_json, bool rroff);
/* The item JSON of one message hash (HGETALL reply pairs), with every read figure (the GDPR
 * export: the data subject's right of access). */
void va_item_json(struct lst_buf *b, const redisReply *hash);
/* The same as the views show it: rv applied to the item's category (counts folded under off)
 * and "read_visibility" on outgoing messages. rv NULL: like va_item_json. */
void va_item_json_vis(struct lst_buf *b, const redisReply *hash, const struct va_readvis_cfg *rv);
/* A recipient's state as the views show it under vis (no read times, no read_unknown, read
 * states as delivered unless person). */
void va_recipient_json_vis(struct lst_buf *b, const char *state_json, bool rroff,
                           enum va_readvis vis);
/* The live stream's filter check: loads the hashes of ids (one pipelined round) and checks
 * each against f as a timeline page would (index memberships in a second round, the time
 * range on the item's time). match[i] says which match; *hashes (the HGETALL replies, index
 * i) belongs to the caller (lst_redis_pipe_destroy), NULL on failure. */
lst_err va_feed_match(struct view_api *ctx, const struct va_filter *f, const char *const *ids,
                      size_t n, bool *match, struct lst_redis_pipe **hashes);
/* A field of an HGETALL reply, borrowed; NULL when absent. */
const char *va_feed_hget(const redisReply *hash, const char *field);

/* ---- handlers ---- */

void va_handle_preflight(void *ud, const struct lst_http_request *req,
                         struct lst_http_response *resp);
void va_handle_employees(void *ud, const struct lst_http_request *req,
                         struct lst_http_response *resp);
void va_handle_employee_sub(void *ud, const struct lst_http_request *req,
                            struct lst_http_response *resp);
void va_handle_erp_import(void *ud, const struct lst_http_request *req,
                          struct lst_http_response *resp);
void va_handle_send(void *ud, const struct lst_http_request *req, struct lst_http_response *resp);
void va_handle_timeline(void *ud, const struct lst_http_request *req,
                        struct lst_http_response *resp);
void va_handle_message(void *ud, const struct lst_http_request *req,
                       struct lst_http_response *resp);
/* GET /api/stream: Server-Sent Events of the change stream, filtered (stream.c). */
void va_handle_stream(void *ud, const struct lst_http_request *req, struct lst_http_response *resp);
void va_handle_me(void *ud, const struct lst_http_request *req, struct lst_http_response *resp);
/* GET /api/blobs/{sha256}: a blob's bytes from the blob store (blobs.c). */
void va_handle_blob(void *ud, const struct lst_http_request *req, struct lst_http_response *resp);
/* POST /api/messages/{id}/annotations (annotate.c). */
void va_handle_message_post(void *ud, const struct lst_http_request *req,
                            struct lst_http_response *resp);
/* GET|POST /api/views, GET|PUT|DELETE /api/views/{id} (views.c). */
void va_handle_views(void *ud, const struct lst_http_request *req, struct lst_http_response *resp);
void va_handle_view(void *ud, const struct lst_http_request *req, struct lst_http_response *resp);
/* The filter of saved view id for r's user (the request's own parameters override the view's
 * one by one; hidden categories are the view's). 0, or the HTTP status of the failure (400,
 * 404 with why; 503). */
int va_view_filter(struct va_req *r, const char *id, struct va_filter *f, struct lst_buf *why);

void va_handle_credits(void *ud, const struct lst_http_request *req,
                       struct lst_http_response *resp);
void va_handle_audit(void *ud, const struct lst_http_request *req, struct lst_http_response *resp);
void va_handle_admin_employee(void *ud, const struct lst_http_request *req,
                              struct lst_http_response *resp);

/* ---- credits (credits.c) and GDPR (gdpr.c) ---- */

struct va_balance;
lst_err va_balance_create(struct va_balance **out);
void va_balance_destroy(struct va_balance *b);
/* Produces a lst.audit "view" entry for r's user and the employee, without waiting; detail
 * says what was shown (e.g. "history: first page"). */
void va_audit_view(struct va_req *r, const char *employee_id, const char *detail);
/* One lst.audit record by the request's user into out; id receives its event ID. */
lst_err va_audit_encode(struct va_req *r, enum lst_audit_action action, const char *eid,
                        const char *detail, char id[LST_MESSAGE_ID_LEN + 1], struct lst_buf *out);
/* The views of one person's traffic a filter gives (timeline, live stream): one "view" entry
 * per employee the filter names (employee=), with detail. */
void va_audit_filter(struct va_req *r, const struct va_filter *f, const char *detail);

/* History of one employee (called by va_handle_employee_sub for .../{id}/history). */
void va_history(struct va_req *r, const char *employee_id);

#endif
