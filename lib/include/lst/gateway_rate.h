/* The Gateway request rate shared by every process that calls the Gateway with one account
 * (gateway-out's workers and gateway-in), kept in Redis.
 *
 * The Gateway rate-limits an account as a whole (429, no published numbers), so every call
 * counts against one budget: sends, lookups, key fetches, uploads and blob downloads. Each
 * process takes tokens from the same Redis keys (<key_prefix>state and <key_prefix>w:<window>)
 * and a 429 seen by any of them halves the rate for all. Processes that share the keys must
 * be configured with the same limit.
 *
 *   struct lst_gateway_rate_config rc = {.limit = 500, .floor = 1, .key_prefix = "lst:gwout:rl:",
 *                                        .service = "gateway_out"};
 *   err = lst_gateway_rate_create(&rc, redis, &rate);       the connection is the limiter's own
 *   lst_gateway_rate_set_metrics(rate, gauge, counter);     whenever the registry exists
 *   if (lst_gateway_rate_acquire(rate, deadline, stop, arg)) call the Gateway ...
 *   if (res.http_status == 429) lst_gateway_rate_on_429(rate);
 *   lst_gateway_rate_destroy(rate);
 *
 * Thread-safe: one limiter per process, used by all its threads. */
#ifndef LST_GATEWAY_RATE_H
#define LST_GATEWAY_RATE_H

#include <stdbool.h>
#include <stdint.h>

#include "lst/error.h"
#include "lst/metrics.h"
#include "lst/redis.h"

struct lst_gateway_rate_config {
    double limit;           /* requests per second for all processes together; 0: no limit */
    double floor;           /* a 429 halves the rate, not below this */
    const char *key_prefix; /* of the shared keys; copied */
    const char *service;    /* names the log events: <service>.rate_lowered, ... */
    /* While Redis is unreachable: false, callers wait (gateway-out: a send can wait, and
     * sending without the shared limit could get the account throttled); true, callers go
     * on without a token and Redis is tried again after a second (gateway-in: a callback
     * answered 503 only because Redis is down would delay every new sender's message). */
    bool fail_open;
};

struct lst_gateway_rate;

/* Takes the Redis connection (destroyed with the limiter, also on failure). */
lst_err lst_gateway_rate_create(const struct lst_gateway_rate_config *cfg, struct lst_redis *redis,
                                struct lst_gateway_rate **out);
void lst_gateway_rate_destroy(struct lst_gateway_rate *r);

/* Where the limiter reports the effective shared rate and the times a caller had to wait
 * (either may be NULL). May be called while other threads use the limiter: a service's
 * metrics registry may come into being after its callers started. */
void lst_gateway_rate_set_metrics(struct lst_gateway_rate *r, struct lst_gauge *rate,
                                  struct lst_counter *waits);

/* True when the caller should give up waiting (shutdown, a cancelled job). */
typedef bool lst_gateway_rate_stop_fn(void *arg);

/* Waits for a token: true when one was taken (or Redis is unreachable and the limiter fails
 * open); false when stop() said so or the monotonic deadline (lst_mono_ms; < 0 for none)
 * passed first. */
bool lst_gateway_rate_acquire(struct lst_gateway_rate *r, int64_t deadline_ms,
                              lst_gateway_rate_stop_fn *stop, void *arg);

/* Without waiting: true when a token was taken; else *wait_ms says when to look again. */
bool lst_gateway_rate_try(struct lst_gateway_rate *r, int64_t *wait_ms);

/* A 429 from the Gateway: halves the shared rate (at most once a second, not below the floor;
 * it recovers by a tenth of the configured rate per second). */
void lst_gateway_rate_on_429(struct lst_gateway_rate *r);

#endif
