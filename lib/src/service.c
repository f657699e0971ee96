#include "lst/service.h"

#include <stdlib.h>
#include <string.h>

#include "lst/log.h"
#include "lst/signals.h"

/* A readiness probe must answer quickly: load balancers and Compose healthchecks time out
 * after a few seconds, and a down broker makes librdkafka wait out the whole timeout. */
#define READY_KAFKA_TIMEOUT_MS 1500

static bool ready_cb(void *ud, struct lst_buf *why)
{
    struct lst_service *s = ud;
    return lst_service_ready(s, why);
}

bool lst_service_ready(struct lst_service *s, struct lst_buf *why)
{
    bool ok = true;
    lst_err err = lst_redis_ping(s->redis);
    if (err != LST_OK) {
        lst_buf_printf(why, "redis unreachable (%s)", lst_strerror(err));
        ok = false;
    }
    err = lst_kafka_producer_ready(s->producer, READY_KAFKA_TIMEOUT_MS);
    if (err != LST_OK) {
        lst_buf_printf(why, "%skafka unreachable (%s)", ok ? "" : "; ", lst_strerror(err));
        ok = false;
    }
    if (s->ready != NULL) {
        struct lst_buf more;
        lst_buf_init(&more);
        if (!s->ready(s->ctx, &more)) {
            lst_buf_printf(why, "%s%s", ok ? "" : "; ", more.len ? more.data : "not ready");
            ok = false;
        }
        lst_buf_cleanup(&more);
    }
    return ok;
}

lst_err lst_service_redis_new(const struct lst_common_config *c, struct lst_redis **out)
{
    struct lst_redis_config rc = {
        .host = c->redis_host,
        .port = (int)c->redis_port,
        .db = (int)c->redis_db,
        .password = c->redis_password,
        .timeout_ms = (int)c->redis_timeout_ms,
    };
    return lst_redis_create(&rc, out);
}

static lst_err create_redis(struct lst_service *s)
{
    return lst_service_redis_new(s->common, &s->redis);
}

static lst_err create_producer(struct lst_service *s, const char *const *extra)
{
    const struct lst_common_config *c = s->common;
    struct lst_kafka_config kc = {
        .brokers = c->kafka_brokers,
        .client_id = s->name,
        .session_timeout_ms = (int)c->kafka_session_timeout_ms,
        .message_timeout_ms = (int)c->kafka_message_timeout_ms,
        .flush_timeout_ms = (int)c->shutdown_timeout_ms,
        .extra = extra,
        .metrics = s->metrics,
    };
    return lst_kafka_producer_create(&kc, &s->producer);
}

static lst_err create_http(struct lst_service *s, const struct lst_service_opts *o)
{
    struct lst_http_config hc = {
        .bind_addr = s->common->http_addr,
        .port = o->http_port,
        .max_body = o->max_body > 0 ? o->max_body : (size_t)s->common->http_max_body,
        .max_connections = o->max_connections,
        .routes = o->routes,
        .nroutes = o->nroutes,
        .ud = s,
        .ready = ready_cb,
        .metrics = s->metrics,
        .event_threads = o->http_event_threads,
        .async_routes = o->async_routes,
        .nasync_routes = o->nasync_routes,
        .async_timeout_ms = o->http_async_timeout_ms,
    };
    return lst_http_server_create(&hc, &s->http);
}

lst_err lst_service_create(const struct lst_service_opts *opts, struct lst_service **out)
{
    lst_err err = LST_ERR_NOMEM;
    struct lst_service *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (s == NULL) {
        lst_metrics_destroy(opts->metrics);
        goto out;
    }
    s->name = opts->name;
    s->common = opts->common;
    s->ctx = opts->ud;
    s->ready = opts->ready;
    s->started_ms = lst_wall_ms();
    s->metrics = opts->metrics != NULL ? opts->metrics : lst_metrics_create();
    if (s->metrics == NULL)
        goto out;
    s->up = lst_metrics_gauge(s->metrics, "lst_service_up", "1 while the service runs", NULL);
    lst_gauge_set(s->up, 1.0);
    err = create_redis(s);
    if (err == LST_OK)
        err = create_producer(s, opts->kafka_extra);
    if (err == LST_OK)
        err = create_http(s, opts);
out:
    if (err != LST_OK) {
        lst_service_destroy(s);
        return err;
    }
    *out = s;
    return LST_OK;
}

void lst_service_destroy(struct lst_service *s)
{
    if (s == NULL)
        return;
    lst_http_server_destroy(s->http);
    lst_kafka_producer_destroy(s->producer);
    lst_redis_destroy(s->redis);
    lst_metrics_destroy(s->metrics);
    free(s);
}

lst_err lst_service_topic(const struct lst_service *s, const char *base, char *out, size_t cap)
{
    return lst_config_topic(s->common, base, out, cap);
}

int lst_service_run(struct lst_service *s, lst_service_step_fn step, void *ud, int64_t poll_ms)
{
    while (!lst_signals_wait_ms(step ? 0 : poll_ms)) {
        if (lst_kafka_producer_fatal(s->producer)) {
            LST_ERROR("service.producer_fatal",
                      "the Kafka producer is dead; stopping so the supervisor restarts us");
            return 1;
        }
        if (step == NULL)
            continue;
        lst_err err = step(ud);
        if (err != LST_OK) {
            LST_ERROR("service.step_failed", "stopping: %s", lst_strerror(err));
            return 1;
        }
    }
    LST_INFO("service.stopping", "stop requested, shutting down");
    return 0;
}

lst_err lst_service_start(const struct lst_service_opts *opts, struct lst_service **out)
{
    lst_log_init(opts->name, opts->common->log_level);
    lst_err err = lst_signals_install();
    if (err == LST_OK)
        err = lst_service_create(opts, out);
    else
        lst_metrics_destroy(opts->metrics); /* ours in every case (lst_service_opts) */
    if (err != LST_OK) {
        LST_ERROR("service.start_failed", "%s: %s", opts->name, lst_strerror(err));
        return err;
    }
    LST_INFO("service.started", "%s %s listening on %s:%u", opts->name, LST_VERSION,
             opts->common->http_addr, (unsigned)lst_http_server_port((*out)->http));
    return LST_OK;
}
