/* The Gateway request rate shared by all workers, kept in Redis.
 *
 * Time is cut into 100 ms windows; window w may carry floor(L*(w+1)/10) - floor(L*w/10)
 * requests, so L per second are spread evenly over the second. A worker takes tokens of the
 * current window in small batches (one Redis round trip serves several requests) and drops
 * what it did not use when the window ends, so the shared limit holds across workers. The
 * effective L is shared too: a 429 halves it for everyone (at most once a second, not below
 * LST_GATEWAY_OUT_RATE_MIN), and every second without a halving gives back a tenth of the
 * configured rate. Workers' clocks are assumed to agree to within a window or so (NTP).
 *
 * The take script is not idempotent (INCRBY): it is never replayed after a lost answer, which
 * at worst counts tokens nobody used (the safe direction). When Redis is unreachable lanes
 * wait: sending without the shared limit could get the account throttled. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway_out.h"
#include "lst/log.h"
#include "lst/signals.h"

#define WINDOW_MS 100

/* KEYS[1] window counter, KEYS[2] shared state; ARGV: configured rate, wanted, now ms,
 * window number mod 1e6. Returns {granted, effective rate as string}. */
static const char TAKE_LUA[] =
    "local cfg = tonumber(ARGV[1])\n"
    "local now = tonumber(ARGV[3])\n"
    "local a = redis.call('HMGET', KEYS[2], 'limit', 'at')\n"
    "local lim = tonumber(a[1]) or cfg\n"
    "local at = tonumber(a[2]) or now\n"
    "if lim > cfg then lim = cfg end\n"
    "if lim < cfg and now - at >= 1000 then\n"
    "  lim = math.min(cfg, lim + cfg * 0.1 * math.floor((now - at) / 1000))\n"
    "  redis.call('HSET', KEYS[2], 'limit', tostring(lim), 'at', tostring(now))\n"
    "end\n"
    "local w = tonumber(ARGV[4])\n"
    "local cap = math.floor(lim * (w + 1) / 10) - math.floor(lim * w / 10)\n"
    "local used = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "local grant = math.min(tonumber(ARGV[2]), cap - used)\n"
    "if grant < 0 then grant = 0 end\n"
    "if grant > 0 then\n"
    "  redis.call('INCRBY', KEYS[1], grant)\n"
    "  redis.call('PEXPIRE', KEYS[1], 5000)\n"
    "end\n"
    "return {grant, tostring(lim)}\n";

/* KEYS[1] shared state; ARGV: configured rate, now ms, floor. Returns the new rate. */
static const char LOWER_LUA[] =
    "local cfg = tonumber(ARGV[1])\n"
    "local now = tonumber(ARGV[2])\n"
    "local a = redis.call('HMGET', KEYS[1], 'limit', 'low')\n"
    "local lim = tonumber(a[1]) or cfg\n"
    "local low = tonumber(a[2]) or 0\n"
    "if now - low < 1000 then return tostring(lim) end\n"
    "lim = math.max(tonumber(ARGV[3]), lim * 0.5)\n"
    "redis.call('HSET', KEYS[1], 'limit', tostring(lim), 'at', tostring(now), 'low', "
    "tostring(now))\n"
    "redis.call('PEXPIRE', KEYS[1], 3600000)\n"
    "return tostring(lim)\n";

struct go_ratelimit {
    struct gateway_out *ctx;
    struct lst_redis *redis;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool refilling;
    int64_t tokens;
    int64_t window;       /* the window the tokens belong to */
    int64_t empty_window; /* the window known to be used up */
    double limit;         /* last effective rate seen */
    char state_key[128];
};

lst_err go_ratelimit_create(struct gateway_out *ctx, struct go_ratelimit **out)
{
    struct go_ratelimit *rl = calloc(1, sizeof(*rl));
    lst_err err = LST_ERR_NOMEM;
    *out = NULL;
    if (rl == NULL)
        return err;
    rl->ctx = ctx;
    rl->limit = ctx->cfg.rate_limit;
    rl->empty_window = -1;
    pthread_mutex_init(&rl->lock, NULL);
    pthread_cond_init(&rl->cond, NULL);
    snprintf(rl->state_key, sizeof(rl->state_key), "%srl:state", ctx->cfg.key_prefix);
    err = lst_service_redis_new(&ctx->cfg.common, &rl->redis);
    if (err == LST_OK)
        err = lst_redis_script_create(TAKE_LUA, false, &ctx->s_rl_take);
    if (err == LST_OK)
        err = lst_redis_script_create(LOWER_LUA, false, &ctx->s_rl_lower);
    if (err != LST_OK) {
        go_ratelimit_destroy(rl);
        return err;
    }
    *out = rl;
    return LST_OK;
}

void go_ratelimit_destroy(struct go_ratelimit *rl)
{
    if (rl == NULL)
        return;
    lst_redis_script_destroy(rl->ctx->s_rl_take);
    lst_redis_script_destroy(rl->ctx->s_rl_lower);
    rl->ctx->s_rl_take = rl->ctx->s_rl_lower = NULL;
    lst_redis_destroy(rl->redis);
    pthread_cond_destroy(&rl->cond);
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

static double reply_rate(const redisReply *r, double fallback)
{
    double v;
    if (r == NULL || r->type != REDIS_REPLY_STRING ||
        lst_parse_double(r->str, 0, 1e12, &v) != LST_OK)
        return fallback;
    return v;
}

/* One Redis call for up to want tokens of window w. -1 on a Redis failure. */
static int64_t take(struct go_ratelimit *rl, int64_t now, int64_t w, int64_t want)
{
    char key[160], cfg[32], swant[24], snow[24], sw[24];
    redisReply *r = NULL;
    int64_t grant = -1;
    snprintf(key, sizeof(key), "%srl:w:%lld", rl->ctx->cfg.key_prefix, (long long)w);
    snprintf(cfg, sizeof(cfg), "%.3f", rl->ctx->cfg.rate_limit);
    snprintf(swant, sizeof(swant), "%lld", (long long)want);
    snprintf(snow, sizeof(snow), "%lld", (long long)now);
    snprintf(sw, sizeof(sw), "%lld", (long long)(w % 1000000));
    const char *argv[] = {key, rl->state_key, cfg, swant, snow, sw};
    lst_err err = lst_redis_script_call(rl->redis, rl->ctx->s_rl_take, &r, 2, 6, argv, NULL);
    if (err == LST_OK && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
        grant = r->element[0]->integer;
        rl->limit = reply_rate(r->element[1], rl->limit);
        lst_gauge_set(rl->ctx->m.rate_limit, rl->limit);
    } else {
        char why[128];
        lst_redis_last_error(rl->redis, why, sizeof(why));
        LST_WARN("gateway_out.ratelimit_redis", "rate limit unavailable: %s", why);
    }
    if (r != NULL)
        freeReplyObject(r);
    return grant;
}

static void timed_wait(struct go_ratelimit *rl, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&rl->cond, &rl->lock, &ts);
}

static bool aborted(const struct go_ratelimit *rl, const atomic_bool *abort)
{
    return (abort != NULL && atomic_load(abort)) || lst_stop_requested() ||
           atomic_load(&rl->ctx->stopping) || atomic_load(&rl->ctx->fatal);
}

/* One look at the tokens, under rl->lock (dropped around a refill's Redis call): true when a
 * token was taken; false with *wait_ms, how long to wait before looking again. */
static bool pass_locked(struct go_ratelimit *rl, int64_t *wait_ms)
{
    for (;;) {
        int64_t now = lst_wall_ms();
        int64_t w = now / WINDOW_MS;
        if (rl->window != w) {
            rl->window = w;
            rl->tokens = 0; /* unused tokens of a past window are not ours any more */
        }
        if (rl->tokens > 0) {
            rl->tokens--;
            return true;
        }
        if (rl->refilling || rl->empty_window == w) {
            *wait_ms = rl->empty_window == w ? (w + 1) * WINDOW_MS - now : 2;
            return false;
        }
        /* A batch of about a fifth of the window, so several workers share it fairly. */
        int64_t want = (int64_t)(rl->limit / 50.0);
        want = want < 1 ? 1 : want;
        rl->refilling = true;
        pthread_mutex_unlock(&rl->lock);
        int64_t grant = take(rl, now, w, want);
        pthread_mutex_lock(&rl->lock);
        rl->refilling = false;
        pthread_cond_broadcast(&rl->cond);
        if (grant < 0) {
            *wait_ms = 100;
            return false;
        }
        if (grant == 0)
            rl->empty_window = w;
        else if (rl->window == w)
            rl->tokens += grant;
    }
}

bool go_ratelimit_acquire(struct go_ratelimit *rl, const atomic_bool *abort)
{
    if (rl->ctx->cfg.rate_limit <= 0)
        return true;
    bool ok = false;
    bool waited = false;
    pthread_mutex_lock(&rl->lock);
    while (!aborted(rl, abort)) {
        int64_t wait_ms = 0;
        if (pass_locked(rl, &wait_ms)) {
            ok = true;
            break;
        }
        waited = true;
        timed_wait(rl, wait_ms);
    }
    pthread_mutex_unlock(&rl->lock);
    if (waited)
        lst_counter_inc(rl->ctx->m.rate_waits);
    return ok;
}

bool go_ratelimit_try(struct go_ratelimit *rl, int64_t *wait_ms)
{
    *wait_ms = 0;
    if (rl->ctx->cfg.rate_limit <= 0)
        return true;
    pthread_mutex_lock(&rl->lock);
    bool ok = pass_locked(rl, wait_ms);
    pthread_mutex_unlock(&rl->lock);
    if (!ok)
        lst_counter_inc(rl->ctx->m.rate_waits);
    return ok;
}

void go_ratelimit_on_429(struct go_ratelimit *rl)
{
    char cfg[32], now[24], floor_s[32];
    redisReply *r = NULL;
    if (rl->ctx->cfg.rate_limit <= 0)
        return;
    snprintf(cfg, sizeof(cfg), "%.3f", rl->ctx->cfg.rate_limit);
    snprintf(now, sizeof(now), "%lld", (long long)lst_wall_ms());
    snprintf(floor_s, sizeof(floor_s), "%.3f", rl->ctx->cfg.rate_min);
    const char *argv[] = {rl->state_key, cfg, now, floor_s};
    pthread_mutex_lock(&rl->lock);
    lst_err err = lst_redis_script_call(rl->redis, rl->ctx->s_rl_lower, &r, 1, 4, argv, NULL);
    if (err == LST_OK) {
        double prev = rl->limit;
        rl->limit = reply_rate(r, rl->limit);
        lst_gauge_set(rl->ctx->m.rate_limit, rl->limit);
        if (rl->limit < prev)
            LST_WARN("gateway_out.rate_lowered", "429 from the Gateway: rate now %.1f/s",
                     rl->limit);
    }
    pthread_mutex_unlock(&rl->lock);
    if (r != NULL)
        freeReplyObject(r);
}
