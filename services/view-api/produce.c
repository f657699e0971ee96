/* A batch of records produced together and waited for together: each record is handed to
 * the producer at once (so the batch costs one linger, not one per record) and the request
 * answers only when the broker acknowledged every one of them (acks=all, idempotent producer),
 * or reports the first failure. */
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lst/kafka.h"
#include "view_api.h"

struct va_batch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t queued, reported, acked;
    lst_err first_err;
    bool abandoned; /* the request gave up waiting: the last delivery report frees the batch */
};

lst_err va_batch_create(struct va_batch **out)
{
    struct va_batch *b = calloc(1, sizeof(*b));
    pthread_condattr_t attr;
    *out = NULL;
    if (b == NULL)
        return LST_ERR_NOMEM;
    pthread_mutex_init(&b->mu, NULL);
    /* deadlines on the monotonic clock: a wall-clock jump must not stretch the wait */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &attr);
    pthread_condattr_destroy(&attr);
    *out = b;
    return LST_OK;
}

/* Must only be called when no delivery report is outstanding (after va_batch_wait returned
 * LST_OK), or after the producer was flushed: the callback holds a pointer to b. Callers that
 * may have timed out use va_batch_release, which hands the batch to the last report. */
void va_batch_destroy(struct va_batch *b)
{
    if (b == NULL)
        return;
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b);
}

static void on_delivery(const struct lst_kafka_delivery *d, void *opaque)
{
    struct va_batch *b = opaque;
    pthread_mutex_lock(&b->mu);
    b->reported++;
    if (d->err == LST_OK)
        b->acked++;
    else if (b->first_err == LST_OK)
        b->first_err = d->err;
    bool last_owner = b->abandoned && b->reported >= b->queued;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    if (last_owner)
        va_batch_destroy(b); /* nobody waits any more: the request that queued it has gone */
}

lst_err va_batch_produce(struct va_batch *b, struct lst_kafka_producer *p, const char *topic,
                         const char *key, const char *value, size_t len)
{
    lst_err err = lst_kafka_produce_async(p, topic, key, key != NULL ? strlen(key) : 0, value,
                                          value != NULL ? len : 0, on_delivery, b);
    if (err == LST_OK) {
        pthread_mutex_lock(&b->mu);
        b->queued++;
        pthread_mutex_unlock(&b->mu);
    }
    return err;
}

lst_err va_batch_wait(struct va_batch *b, int64_t wait_ms, size_t *acked)
{
    struct timespec deadline;
    lst_err result;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(wait_ms / 1000);
    deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&b->mu);
    while (b->reported < b->queued) {
        if (pthread_cond_timedwait(&b->cv, &b->mu, &deadline) == ETIMEDOUT)
            break;
    }
    if (b->reported < b->queued)
        result = LST_ERR_TIMEOUT;
    else
        result = b->first_err;
    if (acked != NULL)
        *acked = b->acked;
    pthread_mutex_unlock(&b->mu);
    return result;
}

bool va_batch_settled(struct va_batch *b)
{
    pthread_mutex_lock(&b->mu);
    bool done = b->reported >= b->queued;
    pthread_mutex_unlock(&b->mu);
    return done;
}

void va_batch_release(struct va_batch *b)
{
    if (b == NULL)
        return;
    /* Every record gets exactly one delivery report (an error one at the latest when the
     * producer is flushed or purged on shutdown), so the last report can free what a request
     * that stopped waiting leaves behind. */
    pthread_mutex_lock(&b->mu);
    bool settled = b->reported >= b->queued;
    if (!settled)
        b->abandoned = true;
    pthread_mutex_unlock(&b->mu);
    if (settled)
        va_batch_destroy(b);
}
