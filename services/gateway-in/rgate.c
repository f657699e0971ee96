/* The gate in front of gateway-in's Redis: a circuit breaker.
 *
 * Why: Redis is an optimisation here (the dedupe marker, the key cache); a callback goes on
 * without it. But a stalled Redis (paused, blackholed, swapping) costs a full timeout per
 * command, two when the command has to reconnect first, and every handler thread would wait
 * it out in turn: the pooled connections run out, later callbacks queue behind them, and the
 * answers come long after the Gateway's deadline (chaos redis-pause: 6 s against a 4 s
 * bound). So the first connection failure or timeout opens the gate for GWIN_RGATE_OPEN_MS:
 * callbacks skip Redis at once. Then one callback probes (half-open); success closes the
 * gate, failure opens it again. A callback thus waits for Redis at most one timeout (two
 * with a reconnect), and only the callbacks already inside when Redis stalled do.
 *
 * Error replies (MISCONF, NOREPLICAS, LOADING) come back at once and do not open the gate. */
#include <stdatomic.h>

#include "lst/log.h"
#include "lst/util.h"
#include "gateway_in.h"

static bool admit(struct gwin_rgate *g, bool *probe)
{
    int64_t until = atomic_load(&g->open_until_ms);
    *probe = false;
    if (until == 0)
        return true;
    if (lst_mono_ms() < until)
        return false;
    bool idle = false;
    if (!atomic_compare_exchange_strong(&g->probing, &idle, true))
        return false; /* another callback is probing */
    *probe = true;
    return true;
}

struct lst_redis *gwin_redis_take(struct gateway_in *ctx, bool *probe)
{
    struct gwin_rgate *g = &ctx->rgate;
    if (!admit(g, probe)) {
        lst_counter_inc(ctx->m.redis_skipped);
        return NULL;
    }
    struct lst_redis *r = gwin_pool_take(ctx->redis);
    /* the gate may have opened while this callback waited for a connection */
    if (!*probe && atomic_load(&g->open_until_ms) != 0) {
        gwin_pool_give(ctx->redis, r);
        lst_counter_inc(ctx->m.redis_skipped);
        return NULL;
    }
    return r;
}

void gwin_redis_give(struct gateway_in *ctx, struct lst_redis *r, bool probe, lst_err err)
{
    gwin_rgate_note(&ctx->rgate, probe, err);
    gwin_pool_give(ctx->redis, r);
}

void gwin_rgate_note(struct gwin_rgate *g, bool probe, lst_err err)
{
    if (err == LST_ERR_REDIS) {
        int64_t until = lst_mono_ms() + GWIN_RGATE_OPEN_MS;
        if (atomic_exchange(&g->open_until_ms, until) == 0)
            LST_WARN("gateway_in.redis_gate",
                     "Redis unreachable or stalled: callbacks go on without it for %d ms "
                     "(dedupe marker and key cache skipped)",
                     GWIN_RGATE_OPEN_MS);
    } else if (probe && atomic_load(&g->open_until_ms) != 0) {
        atomic_store(&g->open_until_ms, 0);
        LST_INFO("gateway_in.redis_gate", "Redis answers again");
    }
    if (probe)
        atomic_store(&g->probing, false);
}

bool gwin_rgate_admit(struct gwin_rgate *g, bool *probe)
{
    return admit(g, probe);
}

bool gwin_rgate_open(struct gwin_rgate *g)
{
    int64_t until = atomic_load(&g->open_until_ms);
    return until != 0 && lst_mono_ms() < until;
}
