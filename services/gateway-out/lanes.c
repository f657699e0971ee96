/* The sender lanes: W threads, each with its own Gateway client (one keep-alive connection)
 * and its own Redis connection (lst_redis serialises commands per connection). A record goes
 * to the lane of its key, so one employee's requests are sent in order; a lane that waits
 * (backoff, rate limit) holds up only the keys that hash to it. With the event loop
 * (loop.c) the loop takes the jobs off the queues and a lane's thread only runs what the loop
 * hands it. */
#include <stdlib.h>
#include <string.h>

#include "gateway_out.h"
#include "lst/log.h"

static void abandon_queue(struct go_lane *l)
{
    pthread_mutex_lock(&l->lock);
    struct go_job *j = l->head;
    l->head = l->tail = NULL;
    l->queued = 0;
    pthread_mutex_unlock(&l->lock);
    while (j != NULL) {
        struct go_job *next = j->next;
        go_complete(l->ctx, j, GO_JOB_ABANDONED);
        j = next;
    }
}

static void *lane_main(void *arg)
{
    struct go_lane *l = arg;
    for (;;) {
        pthread_mutex_lock(&l->lock);
        while (l->head == NULL && !atomic_load(&l->ctx->lanes_stop))
            pthread_cond_wait(&l->cond, &l->lock);
        struct go_job *j = l->head;
        if (j == NULL) {
            pthread_mutex_unlock(&l->lock);
            break;
        }
        l->head = j->next;
        if (l->head == NULL)
            l->tail = NULL;
        l->queued--;
        pthread_mutex_unlock(&l->lock);
        j->next = NULL;
        go_send_job(l, j);
    }
    go_lane_flush(l);
    abandon_queue(l);
    return NULL;
}

static lst_err lane_init(struct gateway_out *ctx, struct go_lane *l, unsigned index)
{
    l->ctx = ctx;
    l->index = index;
    lst_buf_init(&l->a);
    lst_buf_init(&l->b);
    lst_buf_init(&l->pkey);
    lst_buf_init(&l->pval);
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    lst_err err = lst_gateway_settings_client(&ctx->cfg.gw, &l->gw);
    if (err == LST_OK)
        err = lst_service_redis_new(&ctx->cfg.common, &l->redis);
    if (err == LST_OK)
        err = lst_redis_pipe_create(&l->pipe);
    if (err == LST_OK && ctx->bulk != NULL)
        err = go_bulk_lane_init(l);
    if (err != LST_OK || ctx->cfg.event_loop)
        return err; /* go_loop_start starts the thread */
    if (pthread_create(&l->thread, NULL, lane_main, l) != 0)
        return LST_ERR_NOMEM;
    l->started = true;
    return LST_OK;
}

lst_err go_lanes_start(struct gateway_out *ctx)
{
    unsigned n = (unsigned)ctx->cfg.concurrency;
    ctx->lanes = calloc(n, sizeof(*ctx->lanes));
    if (ctx->lanes == NULL)
        return LST_ERR_NOMEM;
    for (unsigned i = 0; i < n; i++) {
        ctx->nlanes = i + 1; /* so that stop cleans up a half-built set */
        lst_err err = lane_init(ctx, &ctx->lanes[i], i);
        if (err != LST_OK)
            return err;
    }
    return ctx->cfg.event_loop ? go_loop_start(ctx) : LST_OK;
}

void go_lanes_stop(struct gateway_out *ctx)
{
    atomic_store(&ctx->lanes_stop, true);
    go_loop_join(ctx); /* first: it may still hand a job to a lane's thread */
    for (unsigned i = 0; i < ctx->nlanes; i++) {
        struct go_lane *l = &ctx->lanes[i];
        pthread_mutex_lock(&l->lock);
        pthread_cond_broadcast(&l->cond);
        pthread_mutex_unlock(&l->lock);
    }
    for (unsigned i = 0; i < ctx->nlanes; i++) {
        struct go_lane *l = &ctx->lanes[i];
        if (l->started)
            pthread_join(l->thread, NULL);
        if (ctx->loops != NULL)
            abandon_queue(l); /* the lane threads of loop mode leave the queue alone */
        lst_gateway_destroy(l->gw);
        lst_redis_destroy(l->redis);
        lst_redis_pipe_destroy(l->pipe);
        go_bulk_lane_cleanup(l);
        lst_buf_cleanup(&l->a);
        lst_buf_cleanup(&l->b);
        lst_buf_cleanup(&l->pkey);
        lst_buf_cleanup(&l->pval);
        pthread_cond_destroy(&l->cond);
        pthread_mutex_destroy(&l->lock);
    }
    go_loop_destroy(ctx);
    free(ctx->lanes);
    ctx->lanes = NULL;
    ctx->nlanes = 0;
}

/* FNV-1a of the key: stable, so one key always maps to one lane of this worker. */
static unsigned lane_of(const struct gateway_out *ctx, const struct go_job *j)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; j->key != NULL && i < j->keylen; i++) {
        h ^= (uint8_t)j->key[i];
        h *= 16777619u;
    }
    return h % ctx->nlanes;
}

void go_lanes_dispatch(struct gateway_out *ctx, struct go_job *j)
{
    struct go_lane *l = &ctx->lanes[lane_of(ctx, j)];
    j->next = NULL;
    pthread_mutex_lock(&l->lock);
    if (l->tail != NULL)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->queued++;
    bool wake = l->loop_waiting;
    l->loop_waiting = false;
    if (ctx->loops == NULL)
        pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
    if (wake)
        go_loop_wake(l);
}

bool go_lane_has_queued(struct go_lane *l)
{
    pthread_mutex_lock(&l->lock);
    bool queued = l->head != NULL;
    pthread_mutex_unlock(&l->lock);
    return queued;
}

struct lane_stop {
    struct gateway_out *ctx;
    const atomic_bool *cancel;
};

static bool lane_stopped(void *arg)
{
    const struct lane_stop *s = arg;
    return (s->cancel != NULL && atomic_load(s->cancel)) || atomic_load(&s->ctx->stopping) ||
           atomic_load(&s->ctx->fatal);
}

bool go_lane_gateway_call(struct go_lane *l, const atomic_bool *cancel)
{
    struct lane_stop stop = {l->ctx, cancel};
    if (!lst_gateway_rate_acquire(l->ctx->rl, -1, lane_stopped, &stop))
        return false;
    l->gateway_calls++;
    return true;
}
