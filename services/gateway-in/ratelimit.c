/* Every Gateway call of gateway-in (public-key fetches, blob downloads) under the account's
 * request rate, which gateway-out's workers keep in Redis (lst/gateway_rate.h). The Gateway
 * counts all calls of the account against one budget: a burst of key fetches on a cold cache
 * (the first replies of 250 drivers after a deploy) must neither get the account throttled
 * nor take gateway-out's sends' share unnoticed. A callback that finds no token within
 * LST_GATEWAY_RATE_WAIT_MS is answered 503, and the Gateway retries it later.
 *
 * While Redis is unreachable or stalled the limiter fails open, as the dedupe markers do: a new
 * sender's message is not held back because Redis is down. Its connection times out after
 * the token wait at most, not LST_REDIS_TIMEOUT_MS, and while the gate in front of Redis is
 * open (rgate.c) it is not asked at all: a callback that already waited out one Redis timeout
 * for its dedupe marker must not wait out a second one here (chaos redis-pause: 4,033 ms
 * against the 4 s bound before). */
#include "lst/service.h"
#include "gateway_in.h"

lst_err gwin_rate_create(struct gateway_in *ctx)
{
    char prefix[96];
    struct lst_redis *redis = NULL;
    snprintf(prefix, sizeof(prefix), "%srl:", ctx->cfg.rate_prefix);
    const struct lst_gateway_rate_config rc = {.limit = ctx->cfg.rate_limit,
                                               .floor = ctx->cfg.rate_min,
                                               .key_prefix = prefix,
                                               .service = "gateway_in",
                                               .fail_open = true};
    struct lst_common_config c = ctx->cfg.common;
    int64_t short_ms = ctx->cfg.rate_wait_ms > 50 ? ctx->cfg.rate_wait_ms : 50;
    c.redis_timeout_ms = c.redis_timeout_ms < short_ms ? c.redis_timeout_ms : short_ms;
    lst_err err = lst_service_redis_new(&c, &redis);
    return err == LST_OK ? lst_gateway_rate_create(&rc, redis, &ctx->rate) : err;
}

bool gwin_rate_admit(struct gateway_in *ctx, const char *what, struct lst_buf *why)
{
    if (gwin_rgate_open(&ctx->rgate)) {
        lst_counter_inc(ctx->m.redis_skipped);
        return true;
    }
    if (lst_gateway_rate_acquire(ctx->rate, lst_mono_ms() + ctx->cfg.rate_wait_ms, NULL, NULL))
        return true;
    lst_counter_inc(ctx->m.rate_busy);
    lst_buf_reset(why);
    lst_buf_printf(why, "%s: no token of the shared Gateway rate within %lld ms", what,
                   (long long)ctx->cfg.rate_wait_ms);
    return false;
}

void gwin_rate_note(struct gateway_in *ctx, const struct lst_gateway_result *res)
{
    if (res->http_status == 429)
        lst_gateway_rate_on_429(ctx->rate);
}
