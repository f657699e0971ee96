/* The runtime every service shares: from its loaded configuration, one object that owns the
 * metrics registry, the Redis connection, the Kafka producer and the HTTP server with
 * /healthz, /readyz (Kafka, Redis and the service's own checks) and /metrics, and the loop that
 * runs until SIGTERM/SIGINT or a fatal producer error, then shuts down in order:
 *
 *   1. stop accepting HTTP requests and let those in flight finish (bounded),
 *   2. the service's own stop hook (consumers finish in-flight work and commit),
 *   3. flush the producer (bounded by LST_SHUTDOWN_TIMEOUT_MS),
 *   4. close Redis, free everything.
 *
 * A service keeps its own context (its config, consumers, caches) and a pointer to its struct
 * lst_service. Route handlers get the struct lst_service as their ud (the server's readiness
 * check needs it too) and reach the service context through lst_service_ctx(ud). */
#ifndef LST_SERVICE_H
#define LST_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "lst/config.h"
#include "lst/error.h"
#include "lst/http.h"
#include "lst/kafka.h"
#include "lst/metrics.h"
#include "lst/redis.h"

struct lst_service_opts {
    const char *name;                       /* e.g. "ledger"; used as Kafka client id */
    const struct lst_common_config *common; /* borrowed; must outlive the service */
    uint16_t http_port;
    const struct lst_http_route *routes; /* the service's own routes; may be NULL */
    size_t nroutes;
    void *ud; /* the service context, returned by lst_service_ctx */
    /* 0: LST_HTTP_MAX_BODY (common). A service whose largest valid request is known (the
     * gateway-in callback) sets its own limit here. */
    size_t max_body;
    /* Concurrent connections (= handler threads); 0: the HTTP server's default (64).
     * Services whose handlers block on purpose (gateway-in waits for Kafka acks) raise it. */
    unsigned max_connections;
    /* NULL or a NULL-terminated list of extra librdkafka "key=value" properties for the
     * producer (lst_kafka_config.extra), e.g. gateway-in's shorter reconnect backoff. */
    const char *const *kafka_extra;
    /* 0: the HTTP server's thread-per-connection mode (handlers may block). N > 0: event mode
     * with N event threads (lst_http_config.event_threads): handlers must not block; blocking
     * work goes to async routes, answered from other threads (lst_http_async_complete). */
    unsigned http_event_threads;
    const struct lst_http_async_route *async_routes; /* event mode only; may be NULL */
    size_t nasync_routes;
    unsigned http_async_timeout_ms; /* 503 for an async request not answered by then */
    /* NULL: the service creates its registry. A service whose own parts register metrics
     * before the HTTP server answers (the view API's row cache) creates it itself and hands it
     * over here: the service owns it from then on, also when its creation fails. */
    struct lst_metrics *metrics;
    /* NULL, or the service's own readiness checks, run after the common ones with ud: for what
     * else a service cannot serve without (the view API's separate idempotency-key Redis).
     * Called from HTTP threads; appends its reasons to why. */
    lst_http_ready_fn ready;
};

struct lst_service {
    const char *name;
    const struct lst_common_config *common;
    struct lst_metrics *metrics;
    struct lst_redis *redis;
    struct lst_kafka_producer *producer;
    struct lst_http_server *http;
    struct lst_gauge *up;
    int64_t started_ms;
    void *ctx;               /* the service's own context (opts->ud), borrowed */
    lst_http_ready_fn ready; /* opts->ready */
};

/* The service context of a route handler's ud. */
static inline void *lst_service_ctx(void *handler_ud)
{
    return ((struct lst_service *)handler_ud)->ctx;
}

/* Creates everything and starts the HTTP server. Kafka and Redis need not be reachable yet
 * (readiness says so until they are); a bad setting or a port in use fails. On success *out
 * is owned by the caller (lst_service_destroy). */
lst_err lst_service_create(const struct lst_service_opts *opts, struct lst_service **out);

/* Stops in the order above. NULL is a no-op; safe on a half-built service. */
void lst_service_destroy(struct lst_service *s);

/* The readiness check behind /readyz: Redis answers PING, a Kafka metadata request succeeds
 * (and the producer is not dead), and the service's own checks (opts->ready) pass. Appends the
 * reasons to why, separated by "; ". */
bool lst_service_ready(struct lst_service *s, struct lst_buf *why);

/* A Redis connection more, with the common settings (host, port, db, password, timeout): for
 * a service's threads that need their own (lst_redis serialises commands per connection). */
lst_err lst_service_redis_new(const struct lst_common_config *c, struct lst_redis **out);

/* Writes LST_TOPIC_PREFIX + base into out. */
lst_err lst_service_topic(const struct lst_service *s, const char *base, char *out, size_t cap);

/* Called by lst_service_run about every poll_ms with the service context; returns LST_OK to go
 * on, anything else to stop with that error. NULL: the service only serves HTTP. */
typedef lst_err (*lst_service_step_fn)(void *ud);

/* Runs until a stop is requested, the step fails or the producer hits a fatal error. Returns
 * the process exit code: 0 for a requested stop, 1 otherwise (the supervisor restarts us). */
int lst_service_run(struct lst_service *s, lst_service_step_fn step, void *ud, int64_t poll_ms);

/* Logging, signals and the service object in one call for a service main: initialises the
 * logger from common->log_level, installs the signal handlers, creates the service and logs
 * "service.started". */
lst_err lst_service_start(const struct lst_service_opts *opts, struct lst_service **out);

#endif
