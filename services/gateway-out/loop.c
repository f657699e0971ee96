/* The event loops (LST_GATEWAY_OUT_EVENT_LOOP): one thread drives the common case of a share
 * of the lanes, so W concurrent sends cost one poll and one Redis round trip per wake-up instead
 * of W blocking threads, each with its own poll, round trips and context switches.
 *
 * LST_GATEWAY_OUT_LOOPS loops (one per CPU by default) split the lanes evenly; each has its own
 * curl multi handle and Redis connection and touches only its own lanes' state, so they share
 * nothing but what the lane threads share too (caches, rate limit, producer, offsets). One loop
 * works in waves: its lanes' answers come back together, so their Redis batch, sealing and next
 * call follow each other while the simulator or Gateway, Redis and this thread wait in turn;
 * a second loop's waves fill those gaps (docs/gateway-out.md, "Session 9").
 *
 * The lanes stay what they are (lanes.c): one queue per lane, one job in flight per lane, one
 * sent-but-unrecorded outcome per lane at most (the duplicate bound of a killed worker). Per
 * wake-up the loop
 *   1. takes the next job of every idle lane and decodes it;
 *   2. sends the pending outcome SETs and the begin scripts of all lanes in one pipeline
 *      (a lane's begin counts only together with its pending SET, as in go_outcome_begin);
 *   3. starts the attempts that may start: text or location, the recipient's ID and public
 *      key in the in-process layer (go_resolve_id_local, go_resolve_pubkey_local), not
 *      paused, a rate-limit token; encrypts and puts send_e2e on the lane's slot of one curl
 *      multi handle, or (LST_GATEWAY_OUT_BULK) adds the item to the turn's send_e2e_bulk
 *      call, which goes out on the slot of its first lane when it is full or the turn ends;
 *   4. waits in curl's poll for answers, new jobs (lst_gateway_multi_wakeup) or the next
 *      backoff deadline, and classifies every answer with the same verdict as the lane
 *      threads (go_attempt_verdict): final outcomes become the lane's pending SET, retries
 *      wait on the lane without a thread sleeping.
 * Everything else (undecodable records, lookups and key fetches that need Redis or the
 * Gateway, files, the 402 pause) is handed to the lane's own thread, which runs the blocking
 * code of send.c for that one job and gives the lane back. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "gateway_out.h"
#include "lst/log.h"

#define LOOP_MAX_WAIT_MS   100 /* how long the loop sleeps at most (stop and cancel checks) */
#define REDIS_DELAY_MIN_MS 50
#define REDIS_DELAY_MAX_MS 2000

enum ll_state {
    LL_IDLE = 0, /* no job */
    LL_BEGIN,    /* decoded; its begin goes out with the next batch */
    LL_READY,    /* begun; the next attempt may start now */
    LL_WAIT,     /* backoff or rate limit until wake_at */
    LL_SENDING,  /* send_e2e running on the lane's slot */
    LL_SLOW,     /* the lane's thread has it */
};

struct go_loop_lane {
    enum ll_state state;
    struct go_job *job;
    struct lst_outbound o;
    bool decoded;
    struct go_result rs;
    struct go_attempts at;
    int64_t wake_at; /* mono ms, LL_WAIT */
    bool handed;     /* the job went to the lane's thread (metrics) */
    /* LST_GATEWAY_OUT_BULK: the lane's sealed message while its bulk call is open */
    char nonce_hex[LST_THREEMA_NONCE_HEX + 1];
    struct lst_buf box;
    bool alone; /* the whole bulk call was refused: this attempt goes alone (send_e2e) */
    /* handoff to the lane thread (under the lane's lock) */
    bool slow_wanted; /* the thread should run the job */
    bool slow_begun;  /* continue after the begin (go_send_begun), else go_send_job */
    atomic_bool slow_done;
};

struct go_loop {
    struct gateway_out *ctx;
    unsigned lo, hi; /* its lanes: [lo, hi) of ll */
    pthread_t thread;
    bool started;
    struct lst_gateway_multi *multi;
    struct lst_redis *redis;
    struct lst_redis_pipe *pipe;
    struct go_loop_lane *ll; /* the worker's lane table (ctx->loop_lanes), shared by the loops */
    /* the batch: which lane each queued command belongs to, and whether it is a begin */
    unsigned *batch_lane;
    bool *batch_begin;
    int64_t redis_at, redis_delay;
    struct lst_buf box;
    /* LST_GATEWAY_OUT_BULK: the turn's call (lanes whose sealed message waits in ll->box)
     * and the calls running, by the slot they run on (their first lane's) */
    unsigned *open;
    size_t nopen;
    struct loop_call **calls;
    struct lst_gateway_e2e *msgs; /* scratch of the call being started */
    struct lst_buf rid;
};

/* A send_e2e_bulk call on the multi handle: its lanes in item order, their answers. */
struct loop_call {
    size_t n;
    unsigned *lanes;
    struct lst_gateway_bulk_item *items;
};

/* ---- the lane's own thread: the blocking path for one job at a time ---- */

static void *slow_main(void *arg)
{
    struct go_lane *l = arg;
    struct go_loop_lane *ll = &l->loop->ll[l->index];
    for (;;) {
        pthread_mutex_lock(&l->lock);
        while (!ll->slow_wanted && !atomic_load(&l->ctx->lanes_stop))
            pthread_cond_wait(&l->cond, &l->lock);
        bool run = ll->slow_wanted;
        bool begun = ll->slow_begun;
        pthread_mutex_unlock(&l->lock);
        if (!run)
            break;
        if (begun)
            go_send_begun(l, ll->job, &ll->o, &ll->rs, &ll->at);
        else
            go_send_job(l, ll->job);
        pthread_mutex_lock(&l->lock);
        ll->slow_wanted = false;
        pthread_mutex_unlock(&l->lock);
        atomic_store(&ll->slow_done, true);
        lst_gateway_multi_wakeup(l->loop->multi);
    }
    return NULL;
}

static void to_slow(struct go_lane *l, struct go_loop_lane *ll, bool begun)
{
    ll->state = LL_SLOW;
    ll->handed = true;
    atomic_store(&ll->slow_done, false);
    pthread_mutex_lock(&l->lock);
    ll->slow_wanted = true;
    ll->slow_begun = begun;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

/* ---- lane bookkeeping ---- */

static void lane_idle(struct gateway_out *ctx, struct go_loop_lane *ll)
{
    if (ll->job != NULL)
        lst_counter_inc(ll->handed ? ctx->m.loop_handed : ctx->m.loop_jobs);
    if (ll->decoded)
        lst_outbound_cleanup(&ll->o);
    ll->decoded = false;
    ll->job = NULL;
    ll->state = LL_IDLE;
}

static void lane_abandon(struct gateway_out *ctx, struct go_loop_lane *ll)
{
    go_complete(ctx, ll->job, GO_JOB_ABANDONED);
    lane_idle(ctx, ll);
}

/* The loop's common case; anything else goes to the lane's thread. Whether the recipient's
 * ID and key are at hand is decided per attempt (start_attempt). */
static bool fast_eligible(const struct lst_outbound *o)
{
    return o->content.kind == LST_CONTENT_TEXT || o->content.kind == LST_CONTENT_LOCATION;
}

/* Takes the lane's next job, if any; remembers that the loop wants a wake-up otherwise. */
static struct go_job *pop_job(struct go_lane *l)
{
    pthread_mutex_lock(&l->lock);
    struct go_job *j = l->head;
    if (j != NULL) {
        l->head = j->next;
        if (l->head == NULL)
            l->tail = NULL;
        l->queued--;
        j->next = NULL;
    }
    l->loop_waiting = j == NULL;
    pthread_mutex_unlock(&l->lock);
    return j;
}

static void take_job(struct go_loop *lp, struct go_lane *l, struct go_loop_lane *ll)
{
    struct lst_buf why;
    struct go_job *j = pop_job(l);
    if (j == NULL)
        return;
    ll->job = j;
    ll->handed = false;
    ll->alone = false;
    l->gateway_calls = 0;
    memset(&ll->rs, 0, sizeof(ll->rs));
    if (go_abandon_now(j)) {
        lane_abandon(lp->ctx, ll);
        return;
    }
    lst_buf_init(&why);
    ll->decoded = j->value != NULL && lst_outbound_decode(j->value, j->len, &ll->o, &why) == LST_OK;
    lst_buf_cleanup(&why);
    if (ll->decoded && fast_eligible(&ll->o)) {
        ll->state = LL_BEGIN;
        return;
    }
    /* go_send_job decodes again: the dead letter's reason, or the whole blocking path. */
    if (ll->decoded)
        lst_outbound_cleanup(&ll->o);
    ll->decoded = false;
    to_slow(l, ll, false);
}

/* Gives back the lanes the threads are done with; takes new jobs; drops cancelled ones. */
static void sweep(struct go_loop *lp, bool stop)
{
    struct gateway_out *ctx = lp->ctx;
    for (unsigned i = lp->lo; i < lp->hi; i++) {
        struct go_loop_lane *ll = &lp->ll[i];
        if (ll->state == LL_SLOW && atomic_load(&ll->slow_done))
            lane_idle(ctx, ll);
        if (ll->state == LL_IDLE && !stop)
            take_job(lp, &ctx->lanes[i], ll);
        bool waiting = ll->state == LL_BEGIN || ll->state == LL_READY || ll->state == LL_WAIT;
        if (waiting && go_abandon_now(ll->job))
            lane_abandon(ctx, ll);
    }
}

/* ---- the Redis batch: pending outcomes and begins of all lanes, one round trip ---- */

static size_t queue_batch(struct go_loop *lp)
{
    struct gateway_out *ctx = lp->ctx;
    size_t n = 0;
    lst_redis_pipe_reset(lp->pipe);
    for (unsigned i = lp->lo; i < lp->hi; i++) {
        struct go_lane *l = &ctx->lanes[i];
        struct go_loop_lane *ll = &lp->ll[i];
        if (ll->state == LL_SLOW)
            continue;
        if (l->pending != NULL && go_outcome_queue_pending(l, lp->pipe) == LST_OK) {
            lp->batch_lane[n] = i;
            lp->batch_begin[n++] = false;
        }
        if (ll->state == LL_BEGIN &&
            go_outcome_queue_begin(l, ll->o.request_id, lp->pipe) == LST_OK) {
            lp->batch_lane[n] = i;
            lp->batch_begin[n++] = true;
        }
    }
    return n;
}

static bool reply_ok(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STATUS;
}

/* False for an error reply: the begin goes out again with a later batch. */
static bool begun(struct go_loop *lp, struct go_loop_lane *ll, const redisReply *r)
{
    struct gateway_out *ctx = lp->ctx;
    enum go_begin state;
    struct go_job *j = ll->job;
    if (go_outcome_take_begin(r, &state, &j->out) != LST_OK)
        return false;
    if (state == GO_BEGIN_KNOWN) {
        /* Already decided earlier: publish the same record again, never send twice. */
        lst_counter_inc(ctx->m.republished);
        j->out_topic = ctx->topic_sent;
        if (!go_publish(j))
            go_complete(ctx, j, GO_JOB_ABANDONED);
        lane_idle(ctx, ll);
        return true;
    }
    ll->rs.possible_duplicate = state == GO_BEGIN_IN_DOUBT;
    go_attempts_init(ctx, &ll->at);
    ll->state = LL_READY;
    return true;
}

/* The replies, lane by lane; false when any was an error. A lane's begin counts only when
 * its pending SET (queued just before it) went through too: a lane must never hold two
 * unrecorded outcomes. */
static bool take_batch(struct go_loop *lp, size_t n)
{
    struct gateway_out *ctx = lp->ctx;
    bool set_failed = false, all = true;
    for (size_t k = 0; k < n; k++) {
        unsigned i = lp->batch_lane[k];
        const redisReply *r = lst_redis_pipe_reply(lp->pipe, k);
        if (!lp->batch_begin[k]) {
            set_failed = !reply_ok(r);
            all = all && !set_failed;
            if (!set_failed)
                go_publish_pending(&ctx->lanes[i]);
            continue;
        }
        bool after_failed_set = set_failed && k > 0 && lp->batch_lane[k - 1] == i;
        if (!after_failed_set)
            all = begun(lp, &lp->ll[i], r) && all;
        set_failed = false;
    }
    return all;
}

/* Redis failed the batch or part of it: wait (doubling) before the next one, as the lane
 * threads do, and give up the jobs that are to be abandoned meanwhile (their outcome
 * unrecorded: redelivered later, flagged in doubt then). */
static void batch_failed(struct go_loop *lp, const char *what)
{
    struct gateway_out *ctx = lp->ctx;
    LST_WARN("gateway_out.loop_redis", "outcome batch: %s; again in %lld ms", what,
             (long long)lp->redis_delay);
    lp->redis_at = lst_mono_ms() + lp->redis_delay;
    lp->redis_delay =
        lp->redis_delay * 2 > REDIS_DELAY_MAX_MS ? REDIS_DELAY_MAX_MS : lp->redis_delay * 2;
    for (unsigned i = lp->lo; i < lp->hi; i++) {
        struct go_lane *l = &ctx->lanes[i];
        if (lp->ll[i].state != LL_SLOW && l->pending != NULL && go_abandon_now(l->pending)) {
            go_complete(ctx, l->pending, GO_JOB_ABANDONED);
            l->pending = NULL;
        }
    }
}

static void redis_batch(struct go_loop *lp)
{
    if (lst_mono_ms() < lp->redis_at)
        return;
    size_t n = queue_batch(lp);
    if (n == 0)
        return;
    lst_err err = lst_redis_pipe_exec(lp->redis, lp->pipe);
    if (err != LST_OK && err != LST_ERR_INVALID) {
        char why[128];
        lst_redis_last_error(lp->redis, why, sizeof(why));
        batch_failed(lp, why);
    } else if (!take_batch(lp, n)) {
        batch_failed(lp, "error replies");
    } else {
        lp->redis_delay = REDIS_DELAY_MIN_MS;
    }
}

/* ---- attempts ---- */

static void finish_lane(struct go_loop *lp, unsigned i)
{
    struct go_loop_lane *ll = &lp->ll[i];
    go_finish_prepare(&lp->ctx->lanes[i], ll->job, &ll->o, &ll->rs);
    lane_idle(lp->ctx, ll);
}

static void apply_verdict(struct go_loop *lp, unsigned i, const struct go_step *st)
{
    struct go_loop_lane *ll = &lp->ll[i];
    int64_t delay = 0;
    switch (go_attempt_verdict(lp->ctx, &ll->o, &ll->rs, &ll->at, st, &delay)) {
    case GO_VERDICT_DONE:
        finish_lane(lp, i);
        return;
    case GO_VERDICT_ABANDON:
        lane_abandon(lp->ctx, ll);
        return;
    case GO_VERDICT_PAUSE:
        ll->state = LL_READY; /* start_attempt hands it to the thread, which waits */
        return;
    case GO_VERDICT_RETRY:
        ll->state = LL_WAIT;
        ll->wake_at = lst_mono_ms() + delay;
        return;
    }
}

/* Encrypts and starts send_e2e on the lane's slot; st set when it could not start. */
static bool start_send(struct go_loop *lp, unsigned i, const uint8_t pk[LST_THREEMA_KEY_SIZE],
                       struct go_step *st)
{
    struct go_lane *l = &lp->ctx->lanes[i];
    struct go_loop_lane *ll = &lp->ll[i];
    char nonce_hex[LST_THREEMA_NONCE_HEX + 1];
    struct lst_gateway_result res;
    lst_buf_reset(&lp->box);
    go_seal_for(l, ll->job, &ll->o, ll->rs.threema_id, pk, nonce_hex, &lp->box, st);
    if (st->outcome != LST_GATEWAY_OK)
        return false;
    struct lst_gateway_e2e msg = {
        .to = ll->rs.threema_id,
        .nonce_hex = nonce_hex,
        .box_hex = lp->box.data,
        .no_delivery_receipts = ll->o.no_delivery_receipts,
        .no_push = ll->o.no_push,
    };
    memset(&res, 0, sizeof(res));
    if (lst_gateway_multi_send_e2e(lp->multi, i, &msg, ll->o.request_id, &res) == LST_OK)
        return true;
    go_send_result(lp->ctx, &res, 0, st);
    return false;
}

/* ---- send_e2e_bulk (LST_GATEWAY_OUT_BULK): the ready lanes' items share calls ----
 * Order and the duplicate bound are those of bulk.c: a lane has one item in one call at most,
 * and one employee always maps to the same lane. */

static const char *call_request_id(void *ud, size_t k)
{
    const struct go_loop *lp = ud;
    return lp->ll[lp->open[k]].o.request_id;
}

/* The answer of a whole call to every item: the Gateway's verdict per item (res OK), the
 * call's failure for all, or, when it was refused as a whole (PERMANENT: a local refusal, 400,
 * 413), a new attempt alone for each, so one bad item cannot fail the others. */
static void call_done(struct go_loop *lp, struct loop_call *c, const struct lst_gateway_result *res)
{
    if (res->outcome == LST_GATEWAY_PERMANENT)
        LST_WARN("gateway_out.bulk_refused", "send_e2e_bulk of %zu refused (%s): sent alone", c->n,
                 res->reason);
    for (size_t k = 0; k < c->n; k++) {
        struct go_loop_lane *ll = &lp->ll[c->lanes[k]];
        if (res->outcome == LST_GATEWAY_PERMANENT) {
            ll->alone = true;
            ll->state = LL_READY;
            continue;
        }
        struct lst_gateway_result r = *res;
        struct go_step st;
        memset(&st, 0, sizeof(st));
        if (r.outcome == LST_GATEWAY_OK)
            go_bulk_item_result(&c->items[k], &r, ll->rs.msgid);
        go_send_result(lp->ctx, &r, res->elapsed_ms, &st);
        apply_verdict(lp, c->lanes[k], &st);
    }
}

static void call_free(struct loop_call *c)
{
    if (c == NULL)
        return;
    free(c->lanes);
    free(c->items);
    free(c);
}

static struct loop_call *call_new(const struct go_loop *lp)
{
    struct loop_call *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->n = lp->nopen;
    c->lanes = malloc(c->n * sizeof(*c->lanes));
    c->items = calloc(c->n, sizeof(*c->items));
    if (c->lanes == NULL || c->items == NULL) {
        call_free(c);
        return NULL;
    }
    memcpy(c->lanes, lp->open, c->n * sizeof(*c->lanes));
    return c;
}

/* Sends the open call on its first lane's slot; a call that cannot start is answered at once
 * with why (RETRY, nothing sent; or the local refusal). */
static void call_send(struct go_loop *lp)
{
    struct lst_gateway_result res;
    memset(&res, 0, sizeof(res));
    for (size_t k = 0; k < lp->nopen; k++) {
        const struct go_loop_lane *ll = &lp->ll[lp->open[k]];
        lp->msgs[k] = (struct lst_gateway_e2e){
            .to = ll->rs.threema_id,
            .nonce_hex = ll->nonce_hex,
            .box_hex = ll->box.data,
            .no_delivery_receipts = ll->o.no_delivery_receipts,
            .no_push = ll->o.no_push,
        };
    }
    go_bulk_request_ids(&lp->rid, lp->nopen, call_request_id, lp);
    unsigned slot = lp->open[0];
    struct loop_call *c = call_new(lp);
    if (c == NULL) {
        /* nothing sent: every item is retried with the usual backoff */
        struct loop_call none = {.n = lp->nopen, .lanes = lp->open};
        lp->nopen = 0;
        res.outcome = LST_GATEWAY_RETRY;
        res.err = LST_ERR_NOMEM;
        snprintf(res.reason, sizeof(res.reason), "out of memory starting send_e2e_bulk");
        call_done(lp, &none, &res);
        return;
    }
    lp->nopen = 0;
    if (lst_gateway_multi_send_e2e_bulk(lp->multi, slot, lp->msgs, c->n,
                                        lst_buf_failed(&lp->rid) ? NULL : lp->rid.data, c->items,
                                        &res) == LST_OK) {
        lp->calls[slot] = c;
        return;
    }
    call_done(lp, c, &res);
    call_free(c);
}

/* Seals lane i's message and adds it to the open call (sent at once when full). False with
 * st set when the message could not be sealed. The lane is LL_SENDING before it joins: a full
 * call that cannot start is answered at once (call_done), which may move this lane on. */
static bool bulk_join(struct go_loop *lp, unsigned i, const uint8_t pk[LST_THREEMA_KEY_SIZE],
                      struct go_step *st)
{
    struct go_loop_lane *ll = &lp->ll[i];
    go_seal_for(&lp->ctx->lanes[i], ll->job, &ll->o, ll->rs.threema_id, pk, ll->nonce_hex, &ll->box,
                st);
    if (st->outcome != LST_GATEWAY_OK)
        return false;
    ll->state = LL_SENDING;
    lp->open[lp->nopen++] = i;
    if (lp->nopen >= (size_t)lp->ctx->cfg.bulk_max)
        call_send(lp);
    return true;
}

/* The open call goes out at the end of every turn, without a linger: the loop already
 * collects every item ready at once (the answers of a call free its lanes together, so their
 * next items arrive together), and waiting for more only lengthened each lane's cycle. With
 * 128 lanes a linger of 1 ms took the rate from 12,800 to 7,700 sends/s (docs/gateway-out.md).
 * LST_GATEWAY_OUT_BULK_LINGER_MS is for the lane threads, which arrive one by one. */
static void bulk_flush(struct go_loop *lp)
{
    if (lp->nopen > 0)
        call_send(lp);
}

static void start_attempt(struct go_loop *lp, unsigned i)
{
    struct gateway_out *ctx = lp->ctx;
    struct go_lane *l = &ctx->lanes[i];
    struct go_loop_lane *ll = &lp->ll[i];
    uint8_t pk[LST_THREEMA_KEY_SIZE];
    struct go_step st;
    int64_t wait_ms = 0;
    memset(&st, 0, sizeof(st));
    if (!go_attempt_in_time(&ll->o, &ll->rs)) {
        finish_lane(lp, i);
        return;
    }
    if (go_credits_paused(ctx) || !go_resolve_id_local(ctx, &ll->o, ll->rs.threema_id) ||
        !go_resolve_pubkey_local(ctx, ll->rs.threema_id, pk)) {
        to_slow(l, ll, true);
        return;
    }
    if (!lst_gateway_rate_try(ctx->rl, &wait_ms)) {
        ll->state = LL_WAIT;
        ll->wake_at = lst_mono_ms() + (wait_ms > 0 ? wait_ms : 1);
        return;
    }
    l->gateway_calls++;
    if (lp->ctx->bulk != NULL && !ll->alone) {
        if (!bulk_join(lp, i, pk, &st))
            apply_verdict(lp, i, &st);
    } else if (start_send(lp, i, pk, &st)) {
        ll->state = LL_SENDING;
    } else {
        apply_verdict(lp, i, &st);
    }
    sodium_memzero(pk, sizeof(pk));
}

static void start_attempts(struct go_loop *lp)
{
    int64_t now = lst_mono_ms();
    for (unsigned i = lp->lo; i < lp->hi; i++) {
        struct go_loop_lane *ll = &lp->ll[i];
        if (ll->state == LL_READY || (ll->state == LL_WAIT && now >= ll->wake_at))
            start_attempt(lp, i);
    }
}

/* Curl's answer for lane slot, classified as the blocking send classifies it. */
static void on_done(void *ud, unsigned slot, const char *msgid,
                    const struct lst_gateway_result *res)
{
    struct go_loop *lp = ud;
    struct go_step st;
    struct loop_call *c = lp->calls[slot];
    if (c != NULL) {
        lp->calls[slot] = NULL;
        call_done(lp, c, res);
        call_free(c);
        return;
    }
    memset(&st, 0, sizeof(st));
    if (res->outcome == LST_GATEWAY_OK)
        snprintf(lp->ll[slot].rs.msgid, sizeof(lp->ll[slot].rs.msgid), "%s", msgid);
    go_send_result(lp->ctx, res, res->elapsed_ms, &st);
    apply_verdict(lp, slot, &st);
}

/* ---- the loop ---- */

/* How long the loop may sleep: 0 when a lane can move now. */
static int next_timeout(const struct go_loop *lp)
{
    int64_t now = lst_mono_ms(), until = now + LOOP_MAX_WAIT_MS;
    for (unsigned i = lp->lo; i < lp->hi; i++) {
        const struct go_loop_lane *ll = &lp->ll[i];
        const struct go_lane *l = &lp->ctx->lanes[i];
        bool batch = ll->state == LL_BEGIN || (ll->state != LL_SLOW && l->pending != NULL);
        if (ll->state == LL_READY || (ll->state == LL_SLOW && atomic_load(&ll->slow_done)))
            return 0;
        if (batch && lp->redis_at < until)
            until = lp->redis_at;
        if (ll->state == LL_WAIT && ll->wake_at < until)
            until = ll->wake_at;
    }
    return until <= now ? 0 : (int)(until - now);
}

static bool busy(const struct go_loop *lp)
{
    for (unsigned i = lp->lo; i < lp->hi; i++)
        if (lp->ll[i].state == LL_SENDING || lp->ll[i].state == LL_SLOW)
            return true;
    return false;
}

/* After the stop: the lanes' last outcomes to Redis (one try each), the rest abandoned. */
static void drain_lanes(struct go_loop *lp)
{
    struct gateway_out *ctx = lp->ctx;
    for (unsigned i = lp->lo; i < lp->hi; i++) {
        if (lp->ll[i].job != NULL)
            lane_abandon(ctx, &lp->ll[i]);
        go_lane_flush(&ctx->lanes[i]);
    }
}

static void *loop_main(void *arg)
{
    struct go_loop *lp = arg;
    struct gateway_out *ctx = lp->ctx;
    for (;;) {
        bool stop = atomic_load(&ctx->lanes_stop);
        sweep(lp, stop);
        redis_batch(lp);
        start_attempts(lp);
        bulk_flush(lp);
        if (stop && !busy(lp))
            break;
        int rc = lst_gateway_multi_run(lp->multi, next_timeout(lp), on_done, lp);
        if (rc < 0) {
            LST_ERROR("gateway_out.loop_curl", "curl multi failed: %s", lst_strerror((lst_err)rc));
            go_fatal(ctx, "the event loop's HTTP client failed");
            atomic_store(&ctx->lanes_stop, true);
        }
    }
    drain_lanes(lp);
    return NULL;
}

/* ---- start and stop ---- */

/* One loop for lanes [lo, hi) of the shared lane table ll. Curl slots are lane indexes, so the
 * multi handle has a slot per lane of the worker; this loop uses its own range only. */
static lst_err loop_create(struct gateway_out *ctx, struct go_loop_lane *ll, unsigned lo,
                           unsigned hi, struct go_loop **out)
{
    struct go_loop *lp = calloc(1, sizeof(*lp));
    *out = lp;
    if (lp == NULL)
        return LST_ERR_NOMEM;
    lp->ctx = ctx;
    lp->ll = ll;
    lp->lo = lo;
    lp->hi = hi;
    lp->redis_delay = REDIS_DELAY_MIN_MS;
    lst_buf_init(&lp->box);
    lst_buf_init(&lp->rid);
    lp->batch_lane = calloc(2 * (size_t)(hi - lo), sizeof(*lp->batch_lane));
    lp->batch_begin = calloc(2 * (size_t)(hi - lo), sizeof(*lp->batch_begin));
    /* on_done looks every answer up here, so this exists with bulk off too (all NULL) */
    lp->calls = calloc((size_t)ctx->nlanes, sizeof(*lp->calls));
    if (lp->batch_lane == NULL || lp->batch_begin == NULL || lp->calls == NULL)
        return LST_ERR_NOMEM;
    if (ctx->cfg.bulk) {
        lp->open = calloc((size_t)ctx->cfg.bulk_max, sizeof(*lp->open));
        lp->msgs = calloc((size_t)ctx->cfg.bulk_max, sizeof(*lp->msgs));
        if (lp->open == NULL || lp->msgs == NULL)
            return LST_ERR_NOMEM;
    }
    lst_err err = lst_gateway_settings_multi(&ctx->cfg.gw, ctx->nlanes, &lp->multi);
    if (err == LST_OK)
        err = lst_service_redis_new(&ctx->cfg.common, &lp->redis);
    if (err == LST_OK)
        err = lst_redis_pipe_create(&lp->pipe);
    return err;
}

static void loop_free(struct go_loop *lp)
{
    if (lp == NULL)
        return;
    lst_gateway_multi_destroy(lp->multi);
    lst_redis_destroy(lp->redis);
    lst_redis_pipe_destroy(lp->pipe);
    lst_buf_cleanup(&lp->box);
    lst_buf_cleanup(&lp->rid);
    for (unsigned i = lp->lo; lp->calls != NULL && i < lp->hi; i++)
        call_free(lp->calls[i]); /* a call the stop left running (its sends in doubt) */
    free(lp->open);
    free(lp->msgs);
    free(lp->calls);
    free(lp->batch_lane);
    free(lp->batch_begin);
    free(lp);
}

/* LST_GATEWAY_OUT_LOOPS; 0: one per online CPU, but at most AUTO_LOOPS_MAX and with at least
 * AUTO_LANES_PER_LOOP lanes each (a loop's bulk calls are made of its own lanes, so thin shares
 * would make small calls). Never more loops than lanes. */
#define AUTO_LOOPS_MAX      4
#define AUTO_LANES_PER_LOOP 16
static unsigned loops_wanted(const struct gateway_out *ctx)
{
    long n = ctx->cfg.loops;
    if (n <= 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        n = n > AUTO_LOOPS_MAX ? AUTO_LOOPS_MAX : n;
        n = n > (long)ctx->nlanes / AUTO_LANES_PER_LOOP ? (long)ctx->nlanes / AUTO_LANES_PER_LOOP
                                                        : n;
    }
    if (n < 1)
        n = 1;
    return n > (long)ctx->nlanes ? ctx->nlanes : (unsigned)n;
}

/* The lane table and the loops, each with an even share of the lanes (lane i belongs to loop
 * i * nloops / nlanes); every lane knows its loop (slow_main, go_loop_wake). */
static lst_err loops_create(struct gateway_out *ctx)
{
    unsigned n = loops_wanted(ctx);
    ctx->loop_lanes = calloc(ctx->nlanes, sizeof(*ctx->loop_lanes));
    ctx->loops = calloc(n, sizeof(*ctx->loops));
    if (ctx->loop_lanes == NULL || ctx->loops == NULL)
        return LST_ERR_NOMEM;
    for (unsigned i = 0; i < ctx->nlanes; i++) {
        lst_buf_init(&ctx->loop_lanes[i].box);
        atomic_init(&ctx->loop_lanes[i].slow_done, false);
    }
    ctx->nloops = n;
    lst_err err = LST_OK;
    for (unsigned k = 0; err == LST_OK && k < n; k++) {
        unsigned lo = (unsigned)((size_t)k * ctx->nlanes / n);
        unsigned hi = (unsigned)((size_t)(k + 1) * ctx->nlanes / n);
        err = loop_create(ctx, ctx->loop_lanes, lo, hi, &ctx->loops[k]);
        for (unsigned i = lo; ctx->loops[k] != NULL && i < hi; i++)
            ctx->lanes[i].loop = ctx->loops[k];
    }
    return err;
}

lst_err go_loop_start(struct gateway_out *ctx)
{
    lst_err err = loops_create(ctx);
    for (unsigned i = 0; err == LST_OK && i < ctx->nlanes; i++) {
        struct go_lane *l = &ctx->lanes[i];
        if (pthread_create(&l->thread, NULL, slow_main, l) != 0)
            err = LST_ERR_NOMEM;
        else
            l->started = true;
    }
    for (unsigned k = 0; err == LST_OK && k < ctx->nloops; k++) {
        struct go_loop *lp = ctx->loops[k];
        if (pthread_create(&lp->thread, NULL, loop_main, lp) != 0)
            err = LST_ERR_NOMEM;
        else
            lp->started = true;
    }
    if (err == LST_OK)
        LST_INFO("gateway_out.loops", "event loops: %u, lanes: %u", ctx->nloops, ctx->nlanes);
    return err;
}

void go_loop_join(struct gateway_out *ctx)
{
    for (unsigned k = 0; ctx->loops != NULL && k < ctx->nloops; k++) {
        struct go_loop *lp = ctx->loops[k];
        if (lp == NULL)
            continue;
        lst_gateway_multi_wakeup(lp->multi);
        if (lp->started)
            pthread_join(lp->thread, NULL);
        lp->started = false;
    }
}

void go_loop_destroy(struct gateway_out *ctx)
{
    for (unsigned k = 0; ctx->loops != NULL && k < ctx->nloops; k++)
        loop_free(ctx->loops[k]);
    for (unsigned i = 0; ctx->loop_lanes != NULL && i < ctx->nlanes; i++)
        lst_buf_cleanup(&ctx->loop_lanes[i].box);
    free(ctx->loops);
    free(ctx->loop_lanes);
    ctx->loops = NULL;
    ctx->loop_lanes = NULL;
    ctx->nloops = 0;
}

void go_loop_wake(struct go_lane *l)
{
    lst_gateway_multi_wakeup(l->loop->multi);
}
