/* The poll thread: one record at a time from lst.outbound (the batch APIs of librdkafka 2.0.2
 * misbehave around pause and rebalances), handed to the lane of its key; completions come
 * back through the completion queue and advance the per-partition watermarks, and only those
 * are stored. The 402 pause pauses exactly the assigned partitions and resumes exactly them.
 * On revoke, queued work of the revoked partitions is abandoned, work already sending may
 * finish (bounded by LST_GATEWAY_OUT_REVOKE_TIMEOUT_MS), the watermarks are stored and the
 * wrapper commits synchronously. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway_out.h"
#include "lst/log.h"

#define POLL_MS 20

/* Stores one past the finished prefix of partition p, if it moved. */
static void store(struct gateway_out *ctx, int32_t p)
{
    int64_t next = go_offsets_advance(ctx->offsets, p);
    if (next < 0)
        return;
    /* lst_kafka_consumer_done stores rec->offset + 1; only topic, partition and offset are
     * read, so a record describing the watermark is enough. */
    struct lst_kafka_record r = {.topic = ctx->topic_in, .partition = p, .offset = next - 1};
    lst_kafka_consumer_done(ctx->consumer, &r);
}

static void republish(struct gateway_out *ctx, struct go_job *j)
{
    j->publish_attempts++;
    if (j->publish_attempts % 10 == 1)
        LST_WARN("gateway_out.publish_retry", "%s [%d] offset %lld: delivery failed, attempt %d",
                 j->out_topic, (int)j->partition, (long long)j->offset, j->publish_attempts);
    if (!go_publish(j))
        go_complete(ctx, j, GO_JOB_ABANDONED);
}

/* Takes every completion and applies it; then stores what may be stored. */
static void drain(struct gateway_out *ctx)
{
    pthread_mutex_lock(&ctx->done_lock);
    struct go_job *j = ctx->done_head;
    ctx->done_head = ctx->done_tail = NULL;
    pthread_mutex_unlock(&ctx->done_lock);
    if (j == NULL)
        return;
    while (j != NULL) {
        struct go_job *next = j->next;
        if (j->state == GO_JOB_QUEUED) {
            republish(ctx, j); /* the delivery failed: the outcome is recorded, publish again */
        } else {
            if (j->state == GO_JOB_ABANDONED)
                lst_counter_inc(ctx->m.abandoned);
            go_offsets_finish(ctx->offsets, j);
            ctx->inflight--;
            go_job_free(j);
        }
        j = next;
    }
    lst_gauge_set(ctx->m.inflight, (double)ctx->inflight);
    for (int32_t p = 0; p < go_offsets_npart(ctx->offsets); p++)
        store(ctx, p);
}

/* Waits up to ms for a completion (the poll thread has nothing else to do). */
static void wait_done(struct gateway_out *ctx, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    ts.tv_sec += (time_t)(ms / 1000) + ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&ctx->done_lock);
    if (ctx->done_head == NULL)
        pthread_cond_timedwait(&ctx->done_cond, &ctx->done_lock, &ts);
    pthread_mutex_unlock(&ctx->done_lock);
}

static void cancel_job(struct go_job *j, void *ud)
{
    (void)ud;
    atomic_store(&j->cancelled, true);
}

static void on_revoke(const struct lst_kafka_tp *tps, size_t n, void *opaque)
{
    struct gateway_out *ctx = opaque;
    int64_t deadline = lst_mono_ms() + ctx->cfg.revoke_timeout_ms;
    size_t pending = 0;
    for (size_t i = 0; i < n; i++)
        go_offsets_each_pending(ctx->offsets, tps[i].partition, cancel_job, NULL);
    for (;;) {
        drain(ctx);
        pending = 0;
        for (size_t i = 0; i < n; i++)
            pending += go_offsets_pending(ctx->offsets, tps[i].partition);
        if (pending == 0 || lst_mono_ms() >= deadline)
            break;
        wait_done(ctx, 20);
    }
    if (pending > 0)
        LST_WARN("gateway_out.revoke_abandoned",
                 "%zu requests still in flight after %lld ms; the next owner redoes them", pending,
                 (long long)ctx->cfg.revoke_timeout_ms);
    for (size_t i = 0; i < n; i++) {
        store(ctx, tps[i].partition);
        go_offsets_reset(ctx->offsets, tps[i].partition);
    }
    LST_INFO("gateway_out.revoked", "%zu partitions handed back", n);
}

lst_err go_consumer_create(struct gateway_out *ctx)
{
    const struct lst_common_config *c = &ctx->cfg.common;
    struct lst_kafka_config kc = {
        .brokers = c->kafka_brokers,
        .client_id = "gateway-out",
        .session_timeout_ms = (int)c->kafka_session_timeout_ms,
        .message_timeout_ms = (int)c->kafka_message_timeout_ms,
        .metrics = ctx->svc->metrics,
    };
    const char *topics[] = {ctx->topic_in};
    struct lst_kafka_consumer_opts opts = {
        .group_id = ctx->cfg.group_id,
        .topics = topics,
        .ntopics = 1,
        .on_revoke = on_revoke,
        .opaque = ctx,
    };
    lst_err err = go_offsets_create(&ctx->offsets);
    if (err == LST_OK)
        err = lst_kafka_consumer_create(&kc, &opts, &ctx->consumer);
    return err;
}

/* Follows the 402 state: pause everything assigned, resume exactly that. */
static void follow_pause(struct gateway_out *ctx)
{
    pthread_mutex_lock(&ctx->pause_lock);
    bool want = ctx->pause_wanted;
    pthread_mutex_unlock(&ctx->pause_lock);
    bool paused = lst_kafka_consumer_paused(ctx->consumer);
    if (want && !paused) {
        LST_WARN("gateway_out.paused", "no credits left (402): consuming paused");
        lst_kafka_consumer_pause_all(ctx->consumer);
    } else if (!want && paused) {
        LST_INFO("gateway_out.resumed", "credits are back: consuming resumed");
        lst_kafka_consumer_resume_all(ctx->consumer);
    }
}

static lst_err dispatch(struct gateway_out *ctx, const struct lst_kafka_record *rec)
{
    struct go_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return LST_ERR_NOMEM;
    j->ctx = ctx;
    j->partition = rec->partition;
    j->offset = rec->offset;
    atomic_init(&j->cancelled, false);
    lst_buf_init(&j->out);
    if (rec->key != NULL) {
        j->key = malloc(rec->keylen + 1);
        if (j->key != NULL) {
            memcpy(j->key, rec->key, rec->keylen);
            j->key[rec->keylen] = '\0';
        }
        j->keylen = rec->keylen;
    }
    if (rec->value != NULL) {
        j->value = malloc(rec->len + 1);
        if (j->value != NULL) {
            memcpy(j->value, rec->value, rec->len);
            j->value[rec->len] = '\0';
        }
        j->len = rec->len;
    }
    if ((rec->key != NULL && j->key == NULL) || (rec->value != NULL && j->value == NULL) ||
        go_offsets_add(ctx->offsets, j) != LST_OK) {
        go_job_free(j);
        return LST_ERR_NOMEM;
    }
    ctx->inflight++;
    lst_gauge_set(ctx->m.inflight, (double)ctx->inflight);
    go_lanes_dispatch(ctx, j);
    return LST_OK;
}

lst_err go_consumer_step(struct gateway_out *ctx)
{
    struct lst_kafka_record rec;
    if (atomic_load(&ctx->fatal))
        return LST_ERR_STATE;
    drain(ctx);
    follow_pause(ctx);
    if (ctx->inflight >= ctx->cfg.max_inflight) {
        wait_done(ctx, POLL_MS);
        return LST_OK;
    }
    lst_err err = lst_kafka_consumer_poll(ctx->consumer, POLL_MS, &rec);
    if (err == LST_ERR_TIMEOUT)
        return LST_OK;
    if (err != LST_OK)
        return err;
    err = dispatch(ctx, &rec);
    lst_kafka_record_release(&rec);
    return err;
}

void go_consumer_close(struct gateway_out *ctx)
{
    if (ctx->consumer != NULL) {
        /* Runs on_revoke for what we hold; later completions are only freed. */
        lst_kafka_consumer_close(ctx->consumer);
        lst_kafka_consumer_destroy(ctx->consumer);
        ctx->consumer = NULL;
    }
    go_offsets_destroy(ctx->offsets);
    ctx->offsets = NULL;
}
