/* Credits, the rate limit and injected faults: the failure modes a client of the real Gateway
 * meets (402, 429, 500, timeouts), each settable at start-up and at run time (/_sim/faults).
 *
 * The rate limit is a token bucket over all Gateway API requests (not /_sim/, /healthz or
 * /metrics): rate_limit tokens per second, at most rate_burst stored; a request without a
 * token gets 429. The Gateway publishes no numbers, so both are configuration. */
#include <string.h>

#include "sim.h"

static void load(struct sim_faults *f, const struct sim_config *cfg)
{
    f->credits = cfg->credits;
    f->rate_limit = cfg->rate_limit;
    f->rate_burst = cfg->rate_burst;
    f->retry_after_s = cfg->retry_after_s;
    f->tokens = (double)cfg->rate_burst;
    f->tokens_at_ms = lst_mono_ms();
    f->fault_500_rate = cfg->fault_500_rate;
    f->fault_timeout_rate = cfg->fault_timeout_rate;
    f->fault_timeout_after_rate = cfg->fault_timeout_after_rate;
    f->fault_timeout_ms = cfg->fault_timeout_ms;
}

lst_err sim_faults_init(struct sim_faults *f, const struct sim_config *cfg)
{
    memset(f, 0, sizeof(*f));
    if (pthread_mutex_init(&f->lock, NULL) != 0)
        return LST_ERR_NOMEM;
    load(f, cfg);
    return LST_OK;
}

void sim_faults_cleanup(struct sim_faults *f)
{
    pthread_mutex_destroy(&f->lock);
}

void sim_faults_reset(struct sim_faults *f, const struct sim_config *cfg)
{
    pthread_mutex_lock(&f->lock);
    load(f, cfg);
    pthread_mutex_unlock(&f->lock);
}

/* Refills the bucket for the time passed and takes one token. Called with the lock held. */
static bool take_token(struct sim_faults *f)
{
    if (f->rate_limit <= 0)
        return true;
    int64_t now = lst_mono_ms();
    f->tokens += (double)(now - f->tokens_at_ms) * f->rate_limit / 1000.0;
    f->tokens_at_ms = now;
    if (f->tokens > (double)f->rate_burst)
        f->tokens = (double)f->rate_burst;
    if (f->tokens < 1.0)
        return false;
    f->tokens -= 1.0;
    return true;
}

enum sim_fault sim_faults_draw(struct sim_faults *f, int64_t *timeout_ms)
{
    double r = sim_random_unit();
    pthread_mutex_lock(&f->lock);
    enum sim_fault fault = SIM_FAULT_NONE;
    if (!take_token(f))
        fault = SIM_FAULT_429;
    else if (r < f->fault_500_rate)
        fault = SIM_FAULT_500;
    else if (r < f->fault_500_rate + f->fault_timeout_rate)
        fault = SIM_FAULT_TIMEOUT;
    else if (r < f->fault_500_rate + f->fault_timeout_rate + f->fault_timeout_after_rate)
        fault = SIM_FAULT_TIMEOUT_AFTER;
    *timeout_ms = f->fault_timeout_ms;
    pthread_mutex_unlock(&f->lock);
    return fault;
}

int64_t sim_faults_retry_after(struct sim_faults *f)
{
    pthread_mutex_lock(&f->lock);
    int64_t s = f->retry_after_s;
    pthread_mutex_unlock(&f->lock);
    return s;
}

bool sim_faults_take_credits(struct sim_faults *f, int64_t n)
{
    pthread_mutex_lock(&f->lock);
    bool ok = f->credits >= n;
    if (ok)
        f->credits -= n;
    pthread_mutex_unlock(&f->lock);
    return ok;
}

int64_t sim_faults_credits(struct sim_faults *f)
{
    pthread_mutex_lock(&f->lock);
    int64_t c = f->credits;
    pthread_mutex_unlock(&f->lock);
    return c;
}

void sim_faults_json(struct sim_faults *f, struct lst_buf *out)
{
    pthread_mutex_lock(&f->lock);
    lst_buf_printf(out,
                   "{\"credits\":%lld,\"rateLimit\":%g,\"rateBurst\":%lld,\"error500Rate\":%g,"
                   "\"timeoutRate\":%g,\"timeoutAfterRate\":%g,\"timeoutMs\":%lld,"
                   "\"retryAfterS\":%lld}",
                   (long long)f->credits, f->rate_limit, (long long)f->rate_burst,
                   f->fault_500_rate, f->fault_timeout_rate, f->fault_timeout_after_rate,
                   (long long)f->fault_timeout_ms, (long long)f->retry_after_s);
    pthread_mutex_unlock(&f->lock);
}

void sim_faults_update(struct sim_faults *f, const struct sim_fault_update *u)
{
    pthread_mutex_lock(&f->lock);
    if (u->has_credits)
        f->credits = u->credits;
    if (u->has_rate_limit)
        f->rate_limit = u->rate_limit;
    if (u->has_rate_burst)
        f->rate_burst = u->rate_burst;
    if (u->has_rate_limit || u->has_rate_burst) {
        f->tokens = (double)f->rate_burst; /* a new limit starts with a full bucket */
        f->tokens_at_ms = lst_mono_ms();
    }
    if (u->has_retry_after)
        f->retry_after_s = u->retry_after_s;
    if (u->has_500)
        f->fault_500_rate = u->rate_500;
    if (u->has_timeout)
        f->fault_timeout_rate = u->rate_timeout;
    if (u->has_timeout_after)
        f->fault_timeout_after_rate = u->rate_timeout_after;
    if (u->has_timeout_ms)
        f->fault_timeout_ms = u->timeout_ms;
    pthread_mutex_unlock(&f->lock);
}
