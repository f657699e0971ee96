/* Event mode (LST_HTTP_EVENT_THREADS > 0): the callback without a blocked thread per request.
 *
 *   event thread   verify the MAC and parse (a few us), take the request (lst_http_async_begin)
 *                  and queue a job for the stage; bad MAC / malformed are answered at once.
 *   stage thread   takes every queued job at once: the dedupe claims of all of them in one
 *                  pipelined Redis round trip (SET NX ..., then GET for the ones not set);
 *                  duplicates are answered; the rest are opened on the spot when the sender's
 *                  key is in the process cache and there is no blob to fetch, and produced with
 *                  lst_kafka_produce_async. Also writes the "done"/release markers queued by
 *                  delivery reports, pipelined.
 *   poll thread    (the producer's) the delivery report: an ack queues the "done" marker with
 *                  the request, which the stage answers 200 once the marker is written (a
 *                  repeat of the callback right after our 200 must find "done", not "pending",
 *                  or it gets 503); a failure releases the claim and answers 503 at once.
 *   workers        the rare blocking cases: dead letters, unknown senders (key fetch), files
 *                  and images (blob download and store), boxes that do not open with the cached
 *                  key. They run the same code as thread-per-connection mode.
 *
 * A job is owned by exactly one of these at a time; whoever answers it frees it. The server's
 * async timeout (the ack timeout plus margin) answers 503 if nothing else did in time. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lst/log.h"
#include "gateway_in.h"

#define WORKERS      16
#define STAGE_WAIT   100 /* ms: the stage wakes at least this often (stop flag) */
#define MARKER_BATCH 256

static void cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

static void cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, mu, &ts);
}

struct job {
    struct gateway_in *ctx;
    struct lst_http_async *a;
    struct gwin_call c;
    enum gwin_claim claim;
    lst_err dlq_err; /* != LST_OK: dead-letter it (parse failed) */
    struct job *next;
};

struct marker {
    bool done; /* true: SET done; false: release our pending token */
    char event_id[LST_EVENT_ID_LEN + 1];
    char token[GWIN_TOKEN_LEN + 1];
    struct job *job; /* a "done" marker's request, answered 200 after the write */
    struct marker *next;
};

struct queue {
    struct job *head, *tail;
};

struct gwin_async {
    struct gateway_in *ctx;
    pthread_mutex_t mu;
    pthread_cond_t stage_cv, work_cv;
    struct queue in, work;
    struct marker *marks;
    bool stop_workers, stop_stage;
    pthread_t stage, workers[WORKERS];
    size_t nworkers;
    bool stage_started;
    struct lst_redis *redis; /* the stage's own connection */
    struct lst_redis_pipe *pipe;
};

static void push(struct queue *q, struct job *j)
{
    j->next = NULL;
    if (q->tail != NULL)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static struct job *take_all(struct queue *q)
{
    struct job *j = q->head;
    q->head = q->tail = NULL;
    return j;
}

/* ---- answering ---- */

static void finish(struct job *j, enum gwin_result r)
{
    struct lst_http_response resp;
    lst_http_response_init(&resp);
    gwin_call_answer(j->ctx, &j->c, r, &resp);
    lst_http_async_complete(j->a, &resp); /* also frees the body j->c borrowed */
    lst_http_response_cleanup(&resp);
    gwin_call_cleanup(&j->c);
    free(j);
}

static void to_workers(struct gwin_async *as, struct job *j)
{
    pthread_mutex_lock(&as->mu);
    push(&as->work, j);
    pthread_cond_signal(&as->work_cv);
    pthread_mutex_unlock(&as->mu);
}

static void queue_marker(struct gwin_async *as, const struct job *j, bool done)
{
    if (j->claim != GWIN_CLAIM_OK)
        return;
    struct marker *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return; /* the pending marker expires after its TTL */
    m->done = done;
    memcpy(m->event_id, j->c.event_id, sizeof(m->event_id));
    memcpy(m->token, j->c.token, sizeof(m->token));
    pthread_mutex_lock(&as->mu);
    m->next = as->marks;
    as->marks = m;
    pthread_cond_signal(&as->stage_cv);
    pthread_mutex_unlock(&as->mu);
}

/* The acked job's "done" marker; the stage answers the job after writing it. Once the stage
 * has ended (shutdown), the job is answered at once and its pending marker expires. */
static void queue_done(struct gwin_async *as, struct job *j)
{
    struct marker *m = calloc(1, sizeof(*m));
    if (m != NULL) {
        m->done = true;
        m->job = j;
        memcpy(m->event_id, j->c.event_id, sizeof(m->event_id));
        memcpy(m->token, j->c.token, sizeof(m->token));
    }
    pthread_mutex_lock(&as->mu);
    bool queued = m != NULL && !as->stop_stage;
    if (queued) {
        m->next = as->marks;
        as->marks = m;
        pthread_cond_signal(&as->stage_cv);
    }
    pthread_mutex_unlock(&as->mu);
    if (!queued) {
        free(m);
        finish(j, GWIN_ACCEPTED);
    }
}

/* ---- the delivery report (producer's poll thread) ---- */

static void on_delivery(const struct lst_kafka_delivery *d, void *opaque)
{
    struct job *j = opaque;
    struct gateway_in *ctx = j->ctx;
    enum gwin_result r = GWIN_ACCEPTED;
    if (d->err == LST_OK) {
        if ((unsigned)j->c.msg.kind < GWIN_TYPES)
            lst_counter_inc(ctx->m.messages[j->c.msg.kind]);
    } else {
        if (d->status != LST_KAFKA_NOT_PERSISTED)
            lst_counter_inc(ctx->m.possible_duplicates);
        lst_buf_reset(&j->c.why);
        lst_buf_printf(&j->c.why, "Kafka: %s", lst_strerror(d->err));
        r = GWIN_UNAVAILABLE;
    }
    if (r == GWIN_ACCEPTED && j->claim == GWIN_CLAIM_OK) {
        queue_done(ctx->async, j);
        return;
    }
    queue_marker(ctx->async, j, false); /* releases a claim of a failed record */
    finish(j, r);
}

/* ---- the stage ---- */

static void key_of(const struct gateway_in *ctx, const char *event_id, char *out, size_t cap)
{
    snprintf(out, cap, "%sevt:%s", ctx->cfg.redis_prefix, event_id);
}

/* SET NX for every job, then GET for those not set; a failed round trip: no marker. */
static void claim_batch(struct gwin_async *as, struct job *jobs)
{
    struct gateway_in *ctx = as->ctx;
    char key[160], px[24];
    /* argv, not a format string: hiredis's printf-style formatting cost 0.7 us a command
     * against 0.25 (a few percent of a callback). */
    snprintf(px, sizeof(px), "%lld", (long long)ctx->cfg.dedupe_pending_ms);
    const char *set[6] = {"SET", key, NULL, "NX", "PX", px};
    lst_redis_pipe_reset(as->pipe);
    for (struct job *j = jobs; j != NULL; j = j->next) {
        gwin_dedupe_token(j->c.token);
        key_of(ctx, j->c.event_id, key, sizeof(key));
        set[2] = j->c.token;
        lst_redis_pipe_add(as->pipe, 6, set, NULL);
        j->claim = GWIN_CLAIM_NO_REDIS;
    }
    bool probe = false;
    if (!gwin_rgate_admit(&ctx->rgate, &probe)) {
        lst_counter_inc(ctx->m.redis_skipped);
        return; /* the gate is open (rgate.c): no markers */
    }
    lst_err err = lst_redis_pipe_exec(as->redis, as->pipe);
    gwin_rgate_note(&ctx->rgate, probe, err);
    if (err != LST_OK) {
        char why[160];
        gwin_redis_reason(as->redis, err, why, sizeof(why));
        lst_counter_inc(ctx->m.redis_errors);
        LST_WARN("gateway_in.redis_failed", "dedupe claims failed (%s); going on without markers",
                 why);
        return;
    }
    size_t i = 0, nget = 0;
    for (struct job *j = jobs; j != NULL; j = j->next, i++) {
        const redisReply *rep = lst_redis_pipe_reply(as->pipe, i);
        j->claim =
            rep != NULL && rep->type == REDIS_REPLY_STATUS ? GWIN_CLAIM_OK : GWIN_CLAIM_PENDING;
        nget += j->claim == GWIN_CLAIM_PENDING;
    }
    if (nget == 0)
        return;
    lst_redis_pipe_reset(as->pipe);
    const char *get[2] = {"GET", key};
    for (struct job *j = jobs; j != NULL; j = j->next) {
        key_of(ctx, j->c.event_id, key, sizeof(key));
        if (j->claim == GWIN_CLAIM_PENDING)
            lst_redis_pipe_add(as->pipe, 2, get, NULL);
    }
    bool ok = gwin_rgate_admit(&ctx->rgate, &probe);
    if (ok) {
        err = lst_redis_pipe_exec(as->redis, as->pipe);
        gwin_rgate_note(&ctx->rgate, probe, err);
        ok = err == LST_OK;
    }
    i = 0;
    for (struct job *j = jobs; j != NULL; j = j->next) {
        if (j->claim != GWIN_CLAIM_PENDING)
            continue;
        const redisReply *rep = ok ? lst_redis_pipe_reply(as->pipe, i++) : NULL;
        j->claim = gwin_dedupe_classify(rep, j->c.token);
    }
    if (!ok)
        lst_counter_inc(ctx->m.redis_errors);
}

/* A claimed job: produce it from here when it needs nothing that blocks. */
static void dispatch(struct gwin_async *as, struct job *j)
{
    if (j->claim == GWIN_CLAIM_DONE) {
        finish(j, GWIN_DUPLICATE);
        return;
    }
    if (j->claim == GWIN_CLAIM_PENDING) {
        finish(j, GWIN_DUPLICATE_PENDING);
        return;
    }
    if (!gwin_call_open_fast(as->ctx, &j->c)) {
        to_workers(as, j);
        return;
    }
    lst_err err = gwin_publish_inbound_async(as->ctx, &j->c.rec, on_delivery, j, &j->c.why);
    if (err == LST_ERR_INVALID) {
        to_workers(as, j); /* does not encode: the blocking path dead-letters it */
        return;
    }
    if (err != LST_OK) {
        lst_buf_reset(&j->c.why);
        lst_buf_printf(&j->c.why, "Kafka: %s", lst_strerror(err));
        queue_marker(as, j, false);
        finish(j, GWIN_UNAVAILABLE);
    }
}

/* Answers the requests whose "done" markers were just written (or could not be: Kafka has
 * the record either way, so it is 200; the pending marker then expires by its TTL). */
static void answer_done(struct job **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        finish(jobs[i], GWIN_ACCEPTED);
}

static void write_markers(struct gwin_async *as, struct marker *m)
{
    struct gateway_in *ctx = as->ctx;
    struct job *jobs[MARKER_BATCH];
    char key[160], ex[24];
    snprintf(ex, sizeof(ex), "%lld", (long long)ctx->cfg.dedupe_done_s);
    const char *done[5] = {"SET", key, "done", "EX", ex};
    while (m != NULL) {
        size_t njobs = 0;
        lst_redis_pipe_reset(as->pipe);
        for (size_t n = 0; m != NULL && n < MARKER_BATCH; n++) {
            struct marker *next = m->next;
            if (m->job != NULL)
                jobs[njobs++] = m->job;
            key_of(ctx, m->event_id, key, sizeof(key));
            const char *argv[2] = {key, m->token};
            if (m->done)
                lst_redis_pipe_add(as->pipe, 5, done, NULL);
            else
                lst_redis_pipe_script(as->pipe, ctx->release_script, 1, 2, argv, NULL);
            free(m);
            m = next;
        }
        /* An error reply counts too: MISCONF or NOREPLICAS refuse the markers' writes. */
        bool probe = false;
        if (!gwin_rgate_admit(&ctx->rgate, &probe)) {
            lst_counter_inc(ctx->m.redis_skipped); /* pending markers expire by their TTL */
            answer_done(jobs, njobs);
            continue;
        }
        lst_err err = lst_redis_pipe_exec(as->redis, as->pipe);
        gwin_rgate_note(&ctx->rgate, probe, err);
        if (err != LST_OK) {
            char why[160];
            gwin_redis_reason(as->redis, err, why, sizeof(why));
            lst_counter_inc(ctx->m.redis_errors);
            LST_WARN("gateway_in.redis_failed", "writing dedupe markers failed: %s", why);
        }
        answer_done(jobs, njobs);
    }
}

static void stage_round(struct gwin_async *as, struct job *jobs, struct marker *marks)
{
    if (jobs != NULL)
        claim_batch(as, jobs);
    while (jobs != NULL) {
        struct job *next = jobs->next;
        dispatch(as, jobs);
        jobs = next;
    }
    write_markers(as, marks);
}

static void *stage_main(void *arg)
{
    struct gwin_async *as = arg;
    pthread_mutex_lock(&as->mu);
    for (;;) {
        struct job *jobs = take_all(&as->in);
        struct marker *marks = as->marks;
        as->marks = NULL;
        if (jobs == NULL && marks == NULL) {
            if (as->stop_stage)
                break;
            cond_wait_ms(&as->stage_cv, &as->mu, STAGE_WAIT);
            continue;
        }
        pthread_mutex_unlock(&as->mu);
        stage_round(as, jobs, marks);
        pthread_mutex_lock(&as->mu);
    }
    pthread_mutex_unlock(&as->mu);
    return NULL;
}

/* ---- workers: the blocking path ---- */

static enum gwin_result work(struct gateway_in *ctx, struct job *j)
{
    if (j->dlq_err != LST_OK)
        return gwin_call_dead_letter(ctx, &j->c, j->dlq_err);
    enum gwin_result r = gwin_call_process(ctx, &j->c);
    if (j->claim == GWIN_CLAIM_OK && (r == GWIN_ACCEPTED || r == GWIN_DLQ))
        gwin_dedupe_done(ctx, j->c.event_id);
    else if (j->claim == GWIN_CLAIM_OK)
        gwin_dedupe_release(ctx, j->c.event_id, j->c.token);
    return r;
}

static void *worker_main(void *arg)
{
    struct gwin_async *as = arg;
    pthread_mutex_lock(&as->mu);
    for (;;) {
        struct job *j = as->work.head;
        if (j == NULL) {
            if (as->stop_workers)
                break;
            pthread_cond_wait(&as->work_cv, &as->mu);
            continue;
        }
        as->work.head = j->next;
        if (as->work.head == NULL)
            as->work.tail = NULL;
        pthread_mutex_unlock(&as->mu);
        finish(j, work(as->ctx, j));
        pthread_mutex_lock(&as->mu);
    }
    pthread_mutex_unlock(&as->mu);
    return NULL;
}

/* ---- the route (event thread) ---- */

struct lst_http_async *gwin_callback_async(void *ud, const struct lst_http_request *req,
                                           struct lst_http_response *resp)
{
    struct gateway_in *ctx = lst_service_ctx(ud);
    struct gwin_call c;
    gwin_call_init(&c, req->body, req->body_len, req->remote_addr);
    lst_err dlq_err = LST_OK;
    enum gwin_result r = gwin_call_check(ctx, &c, &dlq_err);
    struct job *j = NULL;
    struct lst_http_async *a = NULL;
    if (r == GWIN_ACCEPTED || r == GWIN_DLQ)
        j = calloc(1, sizeof(*j));
    if (j != NULL)
        a = lst_http_async_begin(req); /* req->body stays valid: a owns it now */
    if (a == NULL) {
        if (j != NULL)
            r = GWIN_UNAVAILABLE; /* out of memory or stopping */
        free(j);
        gwin_call_answer(ctx, &c, r, resp);
        gwin_call_cleanup(&c);
        return NULL;
    }
    j->ctx = ctx;
    j->a = a;
    j->c = c; /* moved */
    j->dlq_err = dlq_err;
    struct gwin_async *as = ctx->async;
    pthread_mutex_lock(&as->mu);
    push(r == GWIN_DLQ ? &as->work : &as->in, j);
    pthread_cond_signal(r == GWIN_DLQ ? &as->work_cv : &as->stage_cv);
    pthread_mutex_unlock(&as->mu);
    return a;
}

/* ---- lifecycle ---- */

lst_err gwin_async_create(struct gateway_in *ctx, struct gwin_async **out)
{
    struct gwin_async *as = calloc(1, sizeof(*as));
    lst_err err = LST_ERR_NOMEM;
    *out = NULL;
    if (as == NULL)
        return err;
    as->ctx = ctx;
    pthread_mutex_init(&as->mu, NULL);
    cond_init_mono(&as->stage_cv);
    pthread_cond_init(&as->work_cv, NULL);
    err = lst_redis_pipe_create(&as->pipe);
    if (err == LST_OK)
        err = lst_service_redis_new(&ctx->cfg.common, &as->redis);
    if (err == LST_OK && pthread_create(&as->stage, NULL, stage_main, as) != 0)
        err = LST_ERR_NOMEM;
    as->stage_started = err == LST_OK;
    for (size_t i = 0; err == LST_OK && i < WORKERS; i++, as->nworkers++)
        if (pthread_create(&as->workers[i], NULL, worker_main, as) != 0)
            err = LST_ERR_NOMEM;
    if (err != LST_OK) {
        gwin_async_stop(as, 0);
        gwin_async_destroy(as);
        return err;
    }
    *out = as;
    return LST_OK;
}

void gwin_async_stop(struct gwin_async *as, int flush_ms)
{
    if (as == NULL)
        return;
    pthread_mutex_lock(&as->mu);
    as->stop_workers = true;
    pthread_cond_broadcast(&as->work_cv);
    pthread_mutex_unlock(&as->mu);
    for (size_t i = 0; i < as->nworkers; i++)
        pthread_join(as->workers[i], NULL);
    as->nworkers = 0;
    /* Delivery reports still to come queue markers: let them arrive before the stage ends. */
    if (flush_ms > 0 && as->ctx->svc != NULL)
        lst_kafka_producer_flush(as->ctx->svc->producer, flush_ms);
    pthread_mutex_lock(&as->mu);
    as->stop_stage = true;
    pthread_cond_signal(&as->stage_cv);
    pthread_mutex_unlock(&as->mu);
    if (as->stage_started)
        pthread_join(as->stage, NULL);
    as->stage_started = false;
    /* Handed to the workers after they ended (the last stage round): answered 503 now, while
     * the metrics still exist. */
    for (struct job *j = take_all(&as->work), *next; j != NULL; j = next) {
        next = j->next;
        if (j->claim == GWIN_CLAIM_OK)
            gwin_dedupe_release(as->ctx, j->c.event_id, j->c.token);
        finish(j, GWIN_UNAVAILABLE);
    }
}

void gwin_async_destroy(struct gwin_async *as)
{
    if (as == NULL)
        return;
    for (struct marker *m = as->marks, *next; m != NULL; m = next) {
        next = m->next;
        free(m);
    }
    lst_redis_pipe_destroy(as->pipe);
    lst_redis_destroy(as->redis);
    pthread_cond_destroy(&as->work_cv);
    pthread_cond_destroy(&as->stage_cv);
    pthread_mutex_destroy(&as->mu);
    free(as);
}
