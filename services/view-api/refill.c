/* Whether the projections may be served: not while the ledger refills them after Redis lost
 * progress (docs/ledger.md "Refill markers"), and not after a Redis restart that no ledger has
 * checked yet.
 *
 * The ledger keeps the hash <ledger prefix>refill: one field per partition being refilled, and
 * "run" = the run_id of the Redis server whose watermarks it checked. Served only when the hash
 * has no partition field and its "run" is the run_id of the server we talk to. A Redis
 * restarted from an older snapshot brings back an older hash whose "run" names the previous
 * server, so the view says "refilling" from the first moment, before the ledger reconnected.
 * Without the hash (no ledger of this version ever ran on this Redis) the projections are
 * served, unless this process saw the hash before (Redis lost everything).
 *
 * Cost: the check (HGETALL of a one-field hash and INFO server, one round trip) runs at most
 * every VA_REFILL_CACHE_MS per process; requests in between read the cached verdict. A Redis
 * restart takes longer than that, and a read connection that connects anew (rconn.c) and a
 * live stream whose connection reconnected force a fresh check before they read. */
#include <stdio.h>
#include <string.h>

#include "lst/log.h"
#include "view_api.h"

#define RETRY_AFTER "1"

void va_refill_init(struct va_refill *r)
{
    memset(r, 0, sizeof(*r));
    r->ready = pthread_mutex_init(&r->lock, NULL) == 0;
}

void va_refill_cleanup(struct va_refill *r)
{
    if (r->ready)
        pthread_mutex_destroy(&r->lock);
    r->ready = false;
}

/* "run_id:<hex>" of INFO server; false when absent. */
static bool run_id_of(const redisReply *info, char *out, size_t cap)
{
    const char *p =
        info != NULL && info->type == REDIS_REPLY_STRING ? strstr(info->str, "run_id:") : NULL;
    if (p == NULL)
        return false;
    p += strlen("run_id:");
    size_t len = strcspn(p, "\r\n");
    if (len == 0 || len >= cap)
        return false;
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
}

/* The verdict from the hash's fields and the server's run_id (NULL: unknown, only the markers
 * count) (lock held: updates seen). */
static enum va_proj judge(struct va_refill *r, const redisReply *h, const char *run_id)
{
    bool run_ok = false, partitions = false;

    if (h->elements == 0)
        return r->seen ? VA_PROJ_UNCHECKED : VA_PROJ_OK;
    r->seen = true;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(f->str, "run") == 0)
            run_ok = run_id == NULL || strcmp(v->str, run_id) == 0;
        else
            partitions = true;
    }
    if (partitions)
        return VA_PROJ_REFILLING;
    return run_ok || run_id == NULL ? VA_PROJ_OK : VA_PROJ_UNCHECKED;
}

/* The row cache (rowcache.c) keys rows by item version, and versions come from a counter in
 * Redis: a server restarted from an older copy hands out numbers again that cached rows of the
 * lost state carry. So every row goes when the server changes (another run_id) or the ledger
 * is refilling (lock held). */
static void forget_rows(struct view_api *ctx, enum va_proj state, const char *run_id)
{
    struct va_refill *r = &ctx->refill;
    bool other = run_id != NULL && r->run_id[0] != '\0' && strcmp(run_id, r->run_id) != 0;
    if (other || state == VA_PROJ_REFILLING || state == VA_PROJ_UNCHECKED)
        va_rowcache_clear(ctx->rows);
    if (run_id != NULL)
        snprintf(r->run_id, sizeof(r->run_id), "%s", run_id);
}

/* One check against Redis (lock held). */
static enum va_proj check(struct view_api *ctx)
{
    struct va_refill *r = &ctx->refill;
    struct lst_redis_pipe *p = NULL;
    struct lst_buf key;
    char run_id[VA_RUN_ID_MAX];
    enum va_proj state = VA_PROJ_ERROR;

    lst_buf_init(&key);
    lst_err err = va_lkey(ctx, &key, "refill");
    if (err == LST_OK)
        err = lst_redis_pipe_create(&p);
    if (err == LST_OK)
        err = lst_redis_pipe_addf(p, "HGETALL %s", key.data);
    if (err == LST_OK)
        err = lst_redis_pipe_addf(p, "INFO server");
    if (err == LST_OK)
        err = lst_redis_pipe_exec(ctx->svc->redis, p);
    /* LST_ERR_INVALID: an error reply, e.g. INFO refused by an ACL: then only the markers
     * count (the ledger cannot read the run_id either) */
    const redisReply *h =
        err == LST_OK || err == LST_ERR_INVALID ? lst_redis_pipe_reply(p, 0) : NULL;
    bool have_run = run_id_of(lst_redis_pipe_reply(p, 1), run_id, sizeof(run_id));
    if (h != NULL && h->type == REDIS_REPLY_ARRAY)
        state = judge(r, h, have_run ? run_id : NULL);
    forget_rows(ctx, state, have_run ? run_id : NULL);
    lst_redis_pipe_destroy(p);
    lst_buf_cleanup(&key);
    return state;
}

enum va_proj va_refill_state(struct view_api *ctx, bool fresh)
{
    struct va_refill *r = &ctx->refill;
    int64_t now = lst_mono_ms();
    int64_t at = atomic_load(&r->checked_at);

    if (!fresh && at > 0 && now - at < VA_REFILL_CACHE_MS)
        return (enum va_proj)atomic_load(&r->state);
    pthread_mutex_lock(&r->lock);
    /* another thread may have checked while this one waited for the lock */
    at = atomic_load(&r->checked_at);
    enum va_proj state = (enum va_proj)atomic_load(&r->state);
    /* fresh: only a check that began after this call will do (it saw the new connection) */
    if (fresh ? at <= now : at <= 0 || lst_mono_ms() - at >= VA_REFILL_CACHE_MS) {
        int64_t began = lst_mono_ms();
        state = check(ctx);
        if (state != r->last_logged)
            LST_INFO("view_api.projections", "%s",
                     state == VA_PROJ_OK          ? "served"
                     : state == VA_PROJ_REFILLING ? "refilling after Redis lost progress: 503"
                     : state == VA_PROJ_UNCHECKED ? "Redis restarted, not checked by a ledger "
                                                    "yet: 503"
                                                  : "Redis unavailable");
        r->last_logged = state;
        atomic_store(&r->state, (int)state);
        /* an error is never cached: the next request asks again */
        atomic_store(&r->checked_at, state == VA_PROJ_ERROR ? 0 : began);
    }
    pthread_mutex_unlock(&r->lock);
    return state;
}

bool va_refill_gate(struct va_req *req)
{
    enum va_proj state = va_refill_state(req->ctx, false);

    if (state == VA_PROJ_OK)
        return true;
    if (state == VA_PROJ_ERROR)
        lst_http_problem(req->resp, 503, "store-unavailable", "Store Unavailable",
                         "the projections could not be read");
    else
        lst_http_problem(req->resp, 503, "projections-refilling", "Projections Refilling", "%s",
                         state == VA_PROJ_REFILLING
                             ? "Redis lost recent progress; the ledger is refilling the "
                               "projections from Kafka"
                             : "Redis restarted; the ledger has not checked its progress yet");
    lst_http_add_header(req->resp, "Retry-After", RETRY_AFTER);
    return false;
}

bool va_refill_connected(void *ud)
{
    return va_refill_state(ud, true) == VA_PROJ_OK;
}
