/* The view-api context: tokens, CORS origins, the blob store, topic names and the service
 * frame with the routes; run and ordered shutdown. */
#include <string.h>

#include "lst/log.h"
#include "view_api.h"

static const struct lst_http_route routes[] = {
    /* preflight per API path (not one /api/ prefix, so unknown paths stay 404) */
    {"OPTIONS", "/api/me", false, va_handle_preflight},
    {"OPTIONS", "/api/employees", false, va_handle_preflight},
    {"OPTIONS", "/api/employees/", true, va_handle_preflight},
    {"OPTIONS", "/api/admin/erp-import", false, va_handle_preflight},
    {"OPTIONS", "/api/messages", false, va_handle_preflight},
    {"OPTIONS", "/api/messages/", true, va_handle_preflight},
    {"OPTIONS", "/api/timeline", false, va_handle_preflight},
    {"OPTIONS", "/api/views", false, va_handle_preflight},
    {"OPTIONS", "/api/views/", true, va_handle_preflight},
    {"OPTIONS", "/api/credits", false, va_handle_preflight},
    {"OPTIONS", "/api/admin/audit", false, va_handle_preflight},
    {"OPTIONS", "/api/admin/employees/", true, va_handle_preflight},
    {"OPTIONS", "/api/stream", false, va_handle_preflight},
    {"OPTIONS", "/api/blobs/", true, va_handle_preflight},
    {"GET", "/api/me", false, va_handle_me},
    {"GET", "/api/employees", false, va_handle_employees},
    {"GET", "/api/employees/", true, va_handle_employee_sub},
    {"POST", "/api/admin/erp-import", false, va_handle_erp_import},
    {"POST", "/api/messages", false, va_handle_send},
    {"GET", "/api/messages/", true, va_handle_message},
    {"GET", "/api/timeline", false, va_handle_timeline},
    {"GET", "/api/stream", false, va_handle_stream},
    {"GET", "/api/blobs/", true, va_handle_blob},
    {"POST", "/api/messages/", true, va_handle_message_post},
    {"GET", "/api/views", false, va_handle_views},
    {"POST", "/api/views", false, va_handle_views},
    {"GET", "/api/views/", true, va_handle_view},
    {"PUT", "/api/views/", true, va_handle_view},
    {"DELETE", "/api/views/", true, va_handle_view},
    {"GET", "/api/credits", false, va_handle_credits},
    {"GET", "/api/admin/audit", false, va_handle_audit},
    {"GET", "/api/admin/employees/", true, va_handle_admin_employee},
    {"DELETE", "/api/admin/employees/", true, va_handle_admin_employee},
};

/* The operations that take no query parameter (but the cache buster "_"): a query string
 * there is refused like a misspelt filter, not ignored. */
static const char *const no_params[] = {NULL};
static const struct va_query_spec
    none_me = {"GET", "/api/me", no_params, false},
    none_employee = {"GET", "/api/employees/{id}", no_params, false},
    none_send = {"POST", "/api/messages", no_params, false},
    none_message = {"GET", "/api/messages/{id}", no_params, false},
    none_annotate = {"POST", "/api/messages/{id}/annotations", no_params, false},
    none_blob = {"GET", "/api/blobs/{sha256}", no_params, false},
    none_blob_head = {"HEAD", "/api/blobs/{sha256}", no_params, false},
    none_views = {"GET", "/api/views", no_params, false},
    none_view_save = {"POST", "/api/views", no_params, false},
    none_view = {"GET", "/api/views/{id}", no_params, false},
    none_view_put = {"PUT", "/api/views/{id}", no_params, false},
    none_view_delete = {"DELETE", "/api/views/{id}", no_params, false},
    none_export = {"GET", "/api/admin/employees/{id}/export", no_params, false},
    none_erase = {"DELETE", "/api/admin/employees/{id}", no_params, false};

/* One table per operation under /api/ (va_query_spec_find, va_begin; the OpenAPI test checks
 * that each equals the documented query parameters and that no operation lacks one). */
const struct va_query_spec *const va_query_specs[] = {
    &va_employees_query, &va_history_query, &va_timeline_query, &va_stream_query,  &va_import_query,
    &va_credits_query,   &va_audit_query,   &none_me,           &none_employee,    &none_send,
    &none_message,       &none_annotate,    &none_blob,         &none_blob_head,   &none_views,
    &none_view_save,     &none_view,        &none_view_put,     &none_view_delete, &none_export,
    &none_erase,
};
const size_t va_query_nspecs = LST_ARRAY_LEN(va_query_specs);

static lst_err load_access(struct view_api *ctx)
{
    struct lst_buf why;
    lst_err err;
    lst_buf_init(&why);
    err = va_tokens_load(&ctx->tokens, ctx->cfg.tokens_file, &why);
    if (err == LST_OK)
        err = va_cors_parse(&ctx->cors, ctx->cfg.cors_origins, &why);
    if (err == LST_OK)
        err = va_readvis_parse(&ctx->readvis, ctx->cfg.read_visibility, &why);
    if (err != LST_OK)
        LST_ERROR("view_api.config", "%s", why.data ? why.data : lst_strerror(err));
    else if (ctx->tokens.n == 0)
        LST_WARN("view_api.no_tokens", "no API tokens configured (LST_VIEW_TOKENS_FILE): every "
                                       "API request is refused");
    lst_buf_cleanup(&why);
    return err;
}

static lst_err topics(struct view_api *ctx)
{
    const struct lst_common_config *c = &ctx->cfg.common;
    lst_err err =
        lst_config_topic(c, "lst.message", ctx->topic_message, sizeof(ctx->topic_message));
    if (err == LST_OK)
        err = lst_config_topic(c, "lst.outbound", ctx->topic_outbound, sizeof(ctx->topic_outbound));
    if (err == LST_OK)
        err = lst_config_topic(c, "lst.employees", ctx->topic_employees,
                               sizeof(ctx->topic_employees));
    if (err == LST_OK)
        err = lst_config_topic(c, "lst.annotations", ctx->topic_annotations,
                               sizeof(ctx->topic_annotations));
    if (err == LST_OK)
        err = lst_config_topic(c, "lst.views", ctx->topic_views, sizeof(ctx->topic_views));
    if (err == LST_OK)
        err = lst_config_topic(c, "lst.audit", ctx->topic_audit, sizeof(ctx->topic_audit));
    return err;
}

/* The read paths' connections (rconn.c; they connect on first use) and the row cache, whose
 * metrics go into the registry the service takes over (*metrics; created here so that the
 * cache registers before the HTTP server answers). */
static lst_err read_conns(struct view_api *ctx, struct lst_metrics **metrics)
{
    lst_err err = LST_OK;
    for (size_t i = 0; i < VA_READ_CONNS && err == LST_OK; i++)
        err = va_rconn_create(&ctx->cfg.common, va_refill_connected, ctx, &ctx->read_conns[i]);
    if (err == LST_OK && (*metrics = lst_metrics_create()) == NULL)
        err = LST_ERR_NOMEM;
    if (err == LST_OK)
        err = va_rowcache_create(ctx->cfg.row_cache, *metrics, "row", &ctx->rows);
    if (err == LST_OK)
        err = va_rowcache_create(ctx->cfg.row_cache, *metrics, "state", &ctx->states);
    return err;
}

struct va_rconn *va_read_conn(struct view_api *ctx)
{
    return ctx->read_conns[atomic_fetch_add(&ctx->read_next, 1u) % VA_READ_CONNS];
}

/* The idempotency keys cannot be rebuilt from Kafka: where the projections' Redis runs without
 * AOF (docs/operations.md), they live in a server of their own. That one is created before the
 * HTTP server starts, so its readiness check finds it; without it, ctx->state is set to the
 * projections' connection once the service exists. */
static lst_err state_redis(struct view_api *ctx)
{
    const struct view_api_config *c = &ctx->cfg;
    if (c->state_host == NULL)
        return LST_OK;
    struct lst_redis_config rc = {
        .host = c->state_host,
        .port = (int)c->state_port,
        .db = (int)c->state_db,
        .password = c->state_password,
        .timeout_ms = (int)c->common.redis_timeout_ms,
    };
    lst_err err = lst_redis_create(&rc, &ctx->state);
    if (err == LST_OK)
        LST_INFO("view_api.state_redis", "idempotency keys on %s:%d db %d", c->state_host, rc.port,
                 rc.db);
    return err;
}

/* /readyz: sends need the idempotency keys, so a separate server for them must answer too
 * (the projections' Redis and Kafka are the common checks). */
static bool state_ready(void *ud, struct lst_buf *why)
{
    struct view_api *ctx = ud;
    if (ctx->cfg.state_host == NULL)
        return true;
    lst_err err = lst_redis_ping(ctx->state);
    if (err == LST_OK)
        return true;
    lst_buf_printf(why, "state redis (idempotency keys) unreachable (%s)", lst_strerror(err));
    return false;
}

lst_err view_api_create(struct view_api *ctx, int port_override)
{
    va_refill_init(&ctx->refill);
    lst_err err = load_access(ctx);
    if (err == LST_OK)
        err = topics(ctx);
    if (err == LST_OK)
        err = va_balance_create(&ctx->balance);
    if (err != LST_OK)
        goto out;
    /* Without a blob store only uploads fail (503); the rest of the API still serves. */
    if (lst_blobstore_create(ctx->cfg.blob_dir, &ctx->blobs) != LST_OK)
        LST_WARN("view_api.blobstore", "blob store unavailable: uploads are refused");
    struct lst_service_opts opts = {
        .name = view_api_program.name,
        .common = &ctx->cfg.common,
        .http_port = port_override >= 0 ? (uint16_t)port_override : (uint16_t)ctx->cfg.http_port,
        .routes = routes,
        .nroutes = LST_ARRAY_LEN(routes),
        .ud = ctx,
        .max_body = (size_t)ctx->cfg.upload_max_body,
        /* sends and imports wait for Kafka's acks inside their handler; live streams hold
         * one each */
        .max_connections = 128 + (unsigned)ctx->cfg.max_streams,
        .ready = state_ready,
    };
    err = state_redis(ctx);
    if (err == LST_OK)
        err = read_conns(ctx, &opts.metrics);
    if (err == LST_OK)
        err = lst_service_start(&opts, &ctx->svc); /* owns opts.metrics now */
    else
        lst_metrics_destroy(opts.metrics);
    if (err == LST_OK && ctx->state == NULL)
        ctx->state = ctx->svc->redis;
    if (err == LST_OK) /* a dispatcher's first send after a start need not wait a topic scan */
        err = lst_kafka_producer_prepare(
            ctx->svc->producer, (const char *const[]){ctx->topic_message, ctx->topic_outbound,
                                                      ctx->topic_employees, ctx->topic_annotations,
                                                      ctx->topic_views, ctx->topic_audit, NULL});
out:
    if (err != LST_OK)
        view_api_destroy(ctx);
    return err;
}

void view_api_destroy(struct view_api *ctx)
{
    lst_service_destroy(ctx->svc); /* first: no handler may still use what follows */
    ctx->svc = NULL;
    if (ctx->cfg.state_host != NULL) /* a server of its own; else it was svc->redis */
        lst_redis_destroy(ctx->state);
    ctx->state = NULL;
    for (size_t i = 0; i < VA_READ_CONNS; i++) {
        va_rconn_destroy(ctx->read_conns[i]);
        ctx->read_conns[i] = NULL;
    }
    va_rowcache_destroy(ctx->rows);
    ctx->rows = NULL;
    va_rowcache_destroy(ctx->states);
    ctx->states = NULL;
    lst_blobstore_destroy(ctx->blobs);
    ctx->blobs = NULL;
    va_balance_destroy(ctx->balance);
    ctx->balance = NULL;
    va_tokens_cleanup(&ctx->tokens);
    va_cors_cleanup(&ctx->cors);
    va_readvis_cleanup(&ctx->readvis);
    va_refill_cleanup(&ctx->refill);
}

uint16_t view_api_port(const struct view_api *ctx)
{
    return lst_http_server_port(ctx->svc->http);
}

int view_api_run(struct view_api *ctx)
{
    /* libcurl's global init before any thread exists (the balance of GET /api/credits) */
    if (lst_gateway_global_init() != LST_OK)
        return 1;
    if (view_api_create(ctx, -1) != LST_OK)
        return 1;
    int code = lst_service_run(ctx->svc, NULL, ctx, 500);
    view_api_destroy(ctx);
    return code;
}

void va_handle_me(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct va_req r;
    struct lst_buf b;
    if (!va_begin(ud, req, resp, VA_ROLE_DISPATCHER, &r))
        return;
    lst_buf_init(&b);
    lst_buf_puts(&b, "{");
    va_json_kv(&b, false, "user", r.who->user);
    va_json_kv(&b, true, "role", r.who->role == VA_ROLE_ADMIN ? "admin" : "dispatcher");
    va_json_kv(&b, true, "department", r.who->department);
    va_json_kv(&b, true, "name", r.who->name); /* the SPA greets by it; absent when none */
    lst_buf_puts(&b, "}");
    va_reply_json(&r, 200, &b);
    lst_buf_cleanup(&b);
}
