/* Credits: a thread polls /credits (a gauge, a warning below the threshold) and owns the way
 * out of the 402 pause. A lane that gets 402 enters the paused state; the poll thread then
 * pauses consuming (consumer.c), lanes hold their requests, and this thread polls /credits at
 * the shorter paused interval until the balance is above zero, then lifts the pause. */
#include <stdlib.h>
#include <time.h>

#include "gateway_out.h"
#include "lst/log.h"
#include "lst/signals.h"

static bool stopping(struct gateway_out *ctx)
{
    return atomic_load(&ctx->stopping) || atomic_load(&ctx->fatal) || lst_stop_requested();
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    ts->tv_sec += (time_t)(ms / 1000) + ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

static bool stop_fn(void *arg)
{
    return stopping(arg);
}

static void poll_once(struct gateway_out *ctx, struct lst_gateway *gw)
{
    struct lst_gateway_result res;
    int64_t credits = 0;
    /* A poll is a Gateway call of the account like any other: it takes a token of the shared
     * rate (without one within a few seconds this poll is skipped; the next one comes). */
    if (!lst_gateway_rate_acquire(ctx->rl, lst_mono_ms() + 5000, stop_fn, ctx))
        return;
    enum lst_gateway_outcome oc = lst_gateway_credits(gw, &credits, &res);
    if (res.http_status == 429)
        lst_gateway_rate_on_429(ctx->rl);
    if (oc == LST_GATEWAY_FATAL) {
        LST_ERROR("gateway_out.credits_fatal", "the Gateway refuses our account: %s", res.reason);
        if (res.http_status == 401)
            go_fatal(ctx, "the Gateway answered 401: wrong LST_GATEWAY_ID or LST_GATEWAY_SECRET");
        return;
    }
    if (oc != LST_GATEWAY_OK) {
        LST_WARN("gateway_out.credits_unknown", "/credits: %s", res.reason);
        return;
    }
    lst_gauge_set(ctx->m.credits, (double)credits);
    bool low = credits < ctx->cfg.credits_warn;
    if (low && lst_gauge_value(ctx->m.credits_low) < 0.5)
        LST_WARN("gateway_out.credits_low", "%lld credits left (warning below %lld)",
                 (long long)credits, (long long)ctx->cfg.credits_warn);
    lst_gauge_set(ctx->m.credits_low, low ? 1.0 : 0.0);
    pthread_mutex_lock(&ctx->pause_lock);
    if (ctx->pause_wanted && credits > 0) {
        ctx->pause_wanted = false;
        lst_gauge_set(ctx->m.paused, 0.0);
        LST_INFO("gateway_out.credits_back", "%lld credits: sending resumes", (long long)credits);
        pthread_cond_broadcast(&ctx->pause_cond);
    }
    pthread_mutex_unlock(&ctx->pause_lock);
}

static void *credits_main(void *arg)
{
    struct gateway_out *ctx = arg;
    struct lst_gateway *gw = NULL;
    if (lst_gateway_settings_client(&ctx->cfg.gw, &gw) != LST_OK) {
        LST_ERROR("gateway_out.credits_client", "cannot create the Gateway client");
        return NULL;
    }
    while (!stopping(ctx)) {
        poll_once(ctx, gw);
        struct timespec ts;
        pthread_mutex_lock(&ctx->pause_lock);
        deadline_in(&ts,
                    ctx->pause_wanted ? ctx->cfg.paused_poll_ms : ctx->cfg.credits_interval_ms);
        /* Woken early by a 402 (poll at the paused interval from then on) or by stop. */
        bool was_paused = ctx->pause_wanted;
        while (!stopping(ctx) && ctx->pause_wanted == was_paused &&
               pthread_cond_timedwait(&ctx->pause_cond, &ctx->pause_lock, &ts) == 0) {
        }
        pthread_mutex_unlock(&ctx->pause_lock);
    }
    lst_gateway_destroy(gw);
    return NULL;
}

lst_err go_credits_start(struct gateway_out *ctx)
{
    if (pthread_create(&ctx->credits_thread, NULL, credits_main, ctx) != 0)
        return LST_ERR_NOMEM;
    ctx->credits_started = true;
    return LST_OK;
}

void go_credits_stop(struct gateway_out *ctx)
{
    if (!ctx->credits_started)
        return;
    pthread_mutex_lock(&ctx->pause_lock);
    pthread_cond_broadcast(&ctx->pause_cond);
    pthread_mutex_unlock(&ctx->pause_lock);
    pthread_join(ctx->credits_thread, NULL);
    ctx->credits_started = false;
}

void go_credits_on_402(struct gateway_out *ctx)
{
    pthread_mutex_lock(&ctx->pause_lock);
    if (!ctx->pause_wanted) {
        ctx->pause_wanted = true;
        lst_gauge_set(ctx->m.paused, 1.0);
        LST_WARN("gateway_out.no_credits", "402 from the Gateway: sending paused until credits "
                                           "are back");
        pthread_cond_broadcast(&ctx->pause_cond);
    }
    pthread_mutex_unlock(&ctx->pause_lock);
}

bool go_credits_wait(struct gateway_out *ctx, const atomic_bool *abort)
{
    bool ok = true;
    pthread_mutex_lock(&ctx->pause_lock);
    while (ctx->pause_wanted) {
        if (stopping(ctx) || (abort != NULL && atomic_load(abort))) {
            ok = false;
            break;
        }
        struct timespec ts;
        deadline_in(&ts, 100);
        pthread_cond_timedwait(&ctx->pause_cond, &ctx->pause_lock, &ts);
    }
    pthread_mutex_unlock(&ctx->pause_lock);
    return ok;
}

bool go_credits_paused(struct gateway_out *ctx)
{
    pthread_mutex_lock(&ctx->pause_lock);
    bool paused = ctx->pause_wanted;
    pthread_mutex_unlock(&ctx->pause_lock);
    return paused;
}
