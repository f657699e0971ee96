/* The context of gateway-in: builds every resource from the loaded configuration, runs the
 * service frame with the callback route, and tears everything down in reverse order (the
 * frame stops the HTTP server first, so no handler uses what is freed after it). */
#include <string.h>

#include "lst/log.h"
#include "gateway_in.h"

/* ---- pool item constructors ---- */

static lst_err make_redis(void *ud, void **item)
{
    struct lst_redis *r = NULL;
    lst_err err = lst_service_redis_new(ud, &r);
    *item = r;
    return err;
}

static void free_redis(void *item)
{
    lst_redis_destroy(item);
}

static lst_err make_client(void *ud, void **item)
{
    struct lst_gateway *gw = NULL;
    lst_err err = lst_gateway_settings_client(ud, &gw);
    *item = gw;
    return err;
}

static void free_client(void *item)
{
    lst_gateway_destroy(item);
}

/* ---- lifecycle ---- */

static lst_err create_keys(struct gateway_in *ctx)
{
    uint8_t sk[LST_THREEMA_KEY_SIZE];
    struct lst_buf why;
    lst_buf_init(&why);
    lst_err err = lst_gateway_settings_private_key(&ctx->cfg.gw, sk, &why);
    if (err == LST_OK)
        err = lst_threema_keycache_create(sk, (size_t)ctx->cfg.keycache_size, &ctx->keys);
    else
        LST_ERROR("gateway_in.private_key", "LST_PRIVATE_KEY: %s",
                  why.len > 0 ? why.data : lst_strerror(err));
    lst_threema_wipe(sk, sizeof(sk));
    lst_buf_cleanup(&why);
    return err;
}

/* Everything but the service frame. */
static lst_err create_parts(struct gateway_in *ctx)
{
    const struct gateway_in_config *cfg = &ctx->cfg;
    lst_err err = lst_threema_init();
    if (err == LST_OK)
        err = lst_gateway_global_init();
    if (err == LST_OK)
        err = create_keys(ctx);
    if (err == LST_OK)
        err = lst_blobstore_create(cfg->blob_dir, &ctx->blobs);
    if (err == LST_OK)
        err = gwin_pubkeys_create((size_t)cfg->keycache_size, cfg->pubkey_ttl_s * 1000,
                                  &ctx->pubkeys);
    if (err == LST_OK)
        err = gwin_pool_create((size_t)cfg->redis_pool, make_redis, free_redis, &ctx->cfg.common,
                               &ctx->redis);
    if (err == LST_OK)
        err = gwin_pool_create((size_t)cfg->gateway_pool, make_client, free_client, &ctx->cfg.gw,
                               &ctx->clients);
    if (err == LST_OK)
        err = lst_redis_script_create(gwin_release_lua, true, &ctx->release_script);
    if (err == LST_OK)
        err = gwin_rate_create(ctx);
    if (err == LST_OK)
        err = lst_config_topic(&cfg->common, "lst.inbound", ctx->topic_inbound,
                               sizeof(ctx->topic_inbound));
    if (err == LST_OK)
        err = lst_config_topic(&cfg->common, "lst.inbound.dlq", ctx->topic_dlq,
                               sizeof(ctx->topic_dlq));
    return err;
}

static void destroy_parts(struct gateway_in *ctx)
{
    lst_redis_script_destroy(ctx->release_script);
    lst_gateway_rate_destroy(ctx->rate);
    ctx->rate = NULL;
    gwin_pool_destroy(ctx->clients);
    gwin_pool_destroy(ctx->redis);
    gwin_pubkeys_destroy(ctx->pubkeys);
    lst_blobstore_destroy(ctx->blobs);
    lst_threema_keycache_destroy(ctx->keys);
    ctx->release_script = NULL;
    ctx->clients = ctx->redis = NULL;
    ctx->pubkeys = NULL;
    ctx->blobs = NULL;
    ctx->keys = NULL;
}

lst_err gateway_in_start(struct gateway_in *ctx)
{
    struct gateway_in_config *cfg = &ctx->cfg;
    /* The producer's message timeout bounds the ack wait: when the wait ends, librdkafka has
     * decided the record's fate, so a 503 never leaves a record that shows up later. While
     * the broker is down (no leader), librdkafka 2.0.2 times records out only in its topic
     * scan, once a second: the report comes up to 1 s after message.timeout.ms. The timeout
     * is one scan shorter than the ack timeout, so the 503 is given within the ack timeout
     * (the chaos suite's broker-kill measured 4,001 ms against a 3 + 1 s bound before). */
    int64_t bound = cfg->ack_timeout_ms - GWIN_KAFKA_SCAN_MS;
    if (cfg->common.kafka_message_timeout_ms > bound)
        cfg->common.kafka_message_timeout_ms = bound;
    const struct lst_http_route routes[] = {
        {"POST", cfg->callback_path, false, gwin_callback_handler},
    };
    const struct lst_http_async_route async_routes[] = {
        {"POST", cfg->callback_path, gwin_callback_async},
    };
    bool event_mode = cfg->event_threads > 0;
    struct lst_service_opts opts = {
        .name = gateway_in_program.name,
        .common = &cfg->common,
        .http_port = (uint16_t)cfg->http_port,
        .routes = event_mode ? NULL : routes,
        .nroutes = event_mode ? 0 : LST_ARRAY_LEN(routes),
        .ud = ctx,
        .max_body = (size_t)cfg->max_body,
        .max_connections = (unsigned)cfg->max_connections,
        .http_event_threads = (unsigned)cfg->event_threads,
        .async_routes = event_mode ? async_routes : NULL,
        .nasync_routes = event_mode ? LST_ARRAY_LEN(async_routes) : 0,
        /* the same bound as the blocking path's wait (publish.c) */
        .http_async_timeout_ms =
            (unsigned)(cfg->common.kafka_message_timeout_ms + GWIN_ACK_MARGIN_MS),
    };
    /* The parts first: the routes go live as soon as the service starts. */
    lst_log_init(gateway_in_program.name, cfg->common.log_level);
    lst_err err = create_parts(ctx);
    if (err == LST_OK && event_mode)
        err = gwin_async_create(ctx, &ctx->async);
    if (err != LST_OK) {
        LST_ERROR("gateway_in.start_failed", "gateway-in could not start, see above");
        return err;
    }
    err = lst_service_start(&opts, &ctx->svc);
    if (err == LST_OK) /* the first callbacks' acks need not wait for a topic scan */
        err = lst_kafka_producer_prepare(
            ctx->svc->producer, (const char *const[]){ctx->topic_inbound, ctx->topic_dlq, NULL});
    if (err != LST_OK)
        return err;
    /* The registry is created by the frame, so the series exist only now; a callback that
     * races in before this line updates NULL series, which metrics.h makes a no-op. */
    gwin_metrics_init(&ctx->m, ctx->svc->metrics);
    lst_gateway_rate_set_metrics(ctx->rate, ctx->m.rate_limit, ctx->m.rate_waits);
    LST_INFO("gateway_in.ready", "callbacks on POST %s, blobs in %s, topics %s and %s",
             cfg->callback_path, lst_blobstore_dir(ctx->blobs), ctx->topic_inbound, ctx->topic_dlq);
    return LST_OK;
}

void gateway_in_stop(struct gateway_in *ctx)
{
    if (ctx->svc != NULL && ctx->async != NULL) {
        /* Event mode: the server first (pending callbacks answered), then the stage and the
         * workers, which still need the producer, then the rest of the frame. */
        lst_http_server_destroy(ctx->svc->http);
        ctx->svc->http = NULL;
    }
    gwin_async_stop(ctx->async, (int)ctx->cfg.common.shutdown_timeout_ms);
    lst_service_destroy(ctx->svc);
    ctx->svc = NULL;
    gwin_async_destroy(ctx->async);
    ctx->async = NULL;
    destroy_parts(ctx);
}

int gateway_in_run(struct gateway_in *ctx)
{
    int code = 1;
    if (gateway_in_start(ctx) == LST_OK)
        code = lst_service_run(ctx->svc, NULL, ctx, 500);
    gateway_in_stop(ctx);
    return code;
}
