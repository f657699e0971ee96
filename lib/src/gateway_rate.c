/* The Gateway request rate shared by all processes of one account, kept in Redis
 * (lst/gateway_rate.h).
 *
 * Time is cut into 100 ms windows; window w may carry floor(L*(w+1)/10) - floor(L*w/10)
 * requests, so L per second are spread evenly over the second. A process takes tokens of the
 * current window in small batches (one Redis round trip serves several requests) and drops
 * what it did not use when the window ends, so the shared limit holds across processes. The
 * effective L is shared too: a 429 halves it for everyone (at most once a second, not below
 * the floor), and every second without a halving gives back a tenth of the configured rate.
 * Processes' clocks are assumed to agree to within a window or so (NTP).
 *
 * The take script is not idempotent (INCRBY): it is never replayed after a lost answer, which
 * at worst counts tokens nobody used (the safe direction). When Redis is unreachable callers
 * wait, or with fail_open go on without tokens for a second before Redis is tried again. */
#include "lst/gateway_rate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lst/log.h"
#include "lst/signals.h"
#include "lst/util.h"

#define WINDOW_MS 100
#define STALL_MS  100 /* fail_open: a refill taking longer than this counts as Redis down */

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

struct lst_gateway_rate {
    struct lst_gateway_rate_config cfg;
    char *key_prefix;
    struct lst_redis *redis;
    struct lst_redis_script *s_take, *s_lower;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool refilling;
    int64_t tokens;
    int64_t window;       /* the window the tokens belong to */
    int64_t empty_window; /* the window known to be used up */
    double limit;         /* last effective rate seen */
    int64_t open_until;   /* fail_open: no Redis until this monotonic ms after a failure */
    int64_t refill_at;    /* monotonic ms the refill in progress began */
    char state_key[160];
    char ev_redis[64], ev_lowered[64]; /* log event names */
    _Atomic(struct lst_gauge *) rate_gauge;
    _Atomic(struct lst_counter *) waits;
};

lst_err lst_gateway_rate_create(const struct lst_gateway_rate_config *cfg, struct lst_redis *redis,
                                struct lst_gateway_rate **out)
{
    struct lst_gateway_rate *r = calloc(1, sizeof(*r));
    lst_err err = LST_ERR_NOMEM;
    *out = NULL;
    if (r == NULL) {
        lst_redis_destroy(redis);
        return err;
    }
    r->cfg = *cfg;
    r->redis = redis;
    r->key_prefix = strdup(cfg->key_prefix != NULL ? cfg->key_prefix : "");
    r->cfg.key_prefix = r->key_prefix != NULL ? r->key_prefix : "";
    r->limit = cfg->limit;
    r->empty_window = -1;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    snprintf(r->state_key, sizeof(r->state_key), "%sstate", r->cfg.key_prefix);
    const char *svc = cfg->service != NULL ? cfg->service : "gateway";
    snprintf(r->ev_redis, sizeof(r->ev_redis), "%s.ratelimit_redis", svc);
    snprintf(r->ev_lowered, sizeof(r->ev_lowered), "%s.rate_lowered", svc);
    r->cfg.service = NULL; /* not kept: the event names are */
    err = r->key_prefix != NULL ? LST_OK : LST_ERR_NOMEM;
    if (err == LST_OK)
        err = lst_redis_script_create(TAKE_LUA, false, &r->s_take);
    if (err == LST_OK)
        err = lst_redis_script_create(LOWER_LUA, false, &r->s_lower);
    if (err != LST_OK) {
        lst_gateway_rate_destroy(r);
        return err;
    }
    *out = r;
    return LST_OK;
}

void lst_gateway_rate_destroy(struct lst_gateway_rate *r)
{
    if (r == NULL)
        return;
    lst_redis_script_destroy(r->s_take);
    lst_redis_script_destroy(r->s_lower);
    lst_redis_destroy(r->redis);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r->key_prefix);
    free(r);
}

static double reply_rate(const redisReply *x, double fallback)
{
    double v;
    if (x == NULL || x->type != REDIS_REPLY_STRING ||
        lst_parse_double(x->str, 0, 1e12, &v) != LST_OK)
        return fallback;
    return v;
}

void lst_gateway_rate_set_metrics(struct lst_gateway_rate *r, struct lst_gauge *rate,
                                  struct lst_counter *waits)
{
    atomic_store(&r->waits, waits);
    atomic_store(&r->rate_gauge, rate);
    pthread_mutex_lock(&r->lock);
    if (rate != NULL)
        lst_gauge_set(rate, r->limit);
    pthread_mutex_unlock(&r->lock);
}

static void show_rate(struct lst_gateway_rate *r)
{
    struct lst_gauge *g = atomic_load(&r->rate_gauge);
    if (g != NULL)
        lst_gauge_set(g, r->limit);
}

/* One Redis call for up to want tokens of window w, without r->lock: the grant, -1 on a Redis
 * failure; *rate, the effective shared rate the script reported (unchanged on failure). */
static int64_t take(struct lst_gateway_rate *r, int64_t now, int64_t w, int64_t want, double *rate)
{
    char key[200], cfg[32], swant[24], snow[24], sw[24];
    redisReply *x = NULL;
    int64_t grant = -1;
    snprintf(key, sizeof(key), "%sw:%lld", r->cfg.key_prefix, (long long)w);
    snprintf(cfg, sizeof(cfg), "%.3f", r->cfg.limit);
    snprintf(swant, sizeof(swant), "%lld", (long long)want);
    snprintf(snow, sizeof(snow), "%lld", (long long)now);
    snprintf(sw, sizeof(sw), "%lld", (long long)(w % 1000000));
    const char *argv[] = {key, r->state_key, cfg, swant, snow, sw};
    lst_err err = lst_redis_script_call(r->redis, r->s_take, &x, 2, 6, argv, NULL);
    if (err == LST_OK && x->type == REDIS_REPLY_ARRAY && x->elements == 2 &&
        x->element[0]->type == REDIS_REPLY_INTEGER) {
        grant = x->element[0]->integer;
        *rate = reply_rate(x->element[1], *rate);
    } else {
        char why[128];
        lst_redis_last_error(r->redis, why, sizeof(why));
        LST_WARN(r->ev_redis, "rate limit unavailable: %s", why);
    }
    if (x != NULL)
        freeReplyObject(x);
    return grant;
}

static void timed_wait(struct lst_gateway_rate *r, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&r->cond, &r->lock, &ts);
}

/* One look at the tokens, under r->lock (dropped around a refill's Redis call): true when a
 * token was taken; false with *wait_ms, how long to wait before looking again. */
static bool pass_locked(struct lst_gateway_rate *r, int64_t *wait_ms)
{
    for (;;) {
        int64_t now = lst_wall_ms();
        int64_t w = now / WINDOW_MS;
        if (r->window != w) {
            r->window = w;
            r->tokens = 0; /* unused tokens of a past window are not ours any more */
        }
        if (r->tokens > 0) {
            r->tokens--;
            return true;
        }
        if (r->cfg.fail_open && lst_mono_ms() < r->open_until)
            return true;
        /* A refill normally takes a fraction of a millisecond: one that takes longer means a
         * stalled Redis, which a fail-open limiter does not wait out. */
        if (r->refilling && r->cfg.fail_open && lst_mono_ms() - r->refill_at > STALL_MS)
            return true;
        if (r->refilling || r->empty_window == w) {
            *wait_ms = r->empty_window == w ? (w + 1) * WINDOW_MS - now : 2;
            return false;
        }
        /* A batch of about a fifth of the window, so several processes share it fairly. */
        int64_t want = (int64_t)(r->limit / 50.0);
        want = want < 1 ? 1 : want;
        r->refilling = true;
        r->refill_at = lst_mono_ms();
        double rate = r->limit;
        pthread_mutex_unlock(&r->lock);
        int64_t grant = take(r, now, w, want, &rate);
        pthread_mutex_lock(&r->lock);
        r->limit = rate;
        show_rate(r);
        r->refilling = false;
        pthread_cond_broadcast(&r->cond);
        if (grant < 0 && r->cfg.fail_open) {
            r->open_until = lst_mono_ms() + 1000;
            return true;
        }
        if (grant < 0) {
            *wait_ms = 100;
            return false;
        }
        if (grant == 0)
            r->empty_window = w;
        else if (r->window == w)
            r->tokens += grant;
    }
}

static void count_wait(struct lst_gateway_rate *r)
{
    struct lst_counter *c = atomic_load(&r->waits);
    if (c != NULL)
        lst_counter_inc(c);
}

bool lst_gateway_rate_acquire(struct lst_gateway_rate *r, int64_t deadline_ms,
                              lst_gateway_rate_stop_fn *stop, void *arg)
{
    if (r->cfg.limit <= 0)
        return true;
    bool ok = false;
    bool waited = false;
    pthread_mutex_lock(&r->lock);
    while (!lst_stop_requested() && (stop == NULL || !stop(arg))) {
        int64_t wait_ms = 0;
        if (pass_locked(r, &wait_ms)) {
            ok = true;
            break;
        }
        waited = true;
        if (deadline_ms >= 0) {
            int64_t left = deadline_ms - lst_mono_ms();
            if (left <= 0)
                break;
            wait_ms = wait_ms < left ? wait_ms : left;
        }
        timed_wait(r, wait_ms);
    }
    pthread_mutex_unlock(&r->lock);
    if (waited)
        count_wait(r);
    return ok;
}

bool lst_gateway_rate_try(struct lst_gateway_rate *r, int64_t *wait_ms)
{
    *wait_ms = 0;
    if (r->cfg.limit <= 0)
        return true;
    pthread_mutex_lock(&r->lock);
    bool ok = pass_locked(r, wait_ms);
    pthread_mutex_unlock(&r->lock);
    if (!ok)
        count_wait(r);
    return ok;
}

void lst_gateway_rate_on_429(struct lst_gateway_rate *r)
{
    char cfg[32], now[24], floor_s[32];
    redisReply *x = NULL;
    if (r->cfg.limit <= 0)
        return;
    snprintf(cfg, sizeof(cfg), "%.3f", r->cfg.limit);
    snprintf(now, sizeof(now), "%lld", (long long)lst_wall_ms());
    snprintf(floor_s, sizeof(floor_s), "%.3f", r->cfg.floor);
    const char *argv[] = {r->state_key, cfg, now, floor_s};
    /* The Redis call without r->lock (the connection has its own): a slow Redis must not hold
     * every caller that only looks at its tokens. */
    lst_err err = lst_redis_script_call(r->redis, r->s_lower, &x, 1, 4, argv, NULL);
    if (err == LST_OK) {
        pthread_mutex_lock(&r->lock);
        double prev = r->limit;
        r->limit = reply_rate(x, r->limit);
        show_rate(r);
        double lowered = r->limit < prev ? r->limit : -1;
        pthread_mutex_unlock(&r->lock);
        if (lowered >= 0)
            LST_WARN(r->ev_lowered, "429 from the Gateway: shared rate now %.1f/s", lowered);
    }
    if (x != NULL)
        freeReplyObject(x);
}
