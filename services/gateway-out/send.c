/* One request, start to end, in its lane:
 *
 *   decode ── undecodable ──────────────────────────────▶ DLQ record
 *     │
 *   begin (Redis) ── outcome known ─────────────────────▶ publish it again, send nothing
 *     │  (in doubt: an earlier delivery started and left no outcome → possible_duplicate)
 *   attempt: resolve ID → public key → [capabilities, upload] → encrypt → send_e2e
 *     │  RETRY: capped exponential backoff with full jitter, until the retry deadline
 *     │  PAUSE (402): wait for credits;  FATAL (401): stop the worker, no outcome
 *     ▼
 *   outcome → Redis (SET, in one pipeline with the lane's next begin when one is queued)
 *     → lst.sent (async; the offset is stored after Kafka's ack)
 *
 * A job cancelled by a revoke, or caught by shutdown, before its outcome is decided is
 * abandoned: it has no outcome and is redelivered to the partition's next owner. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gateway_out.h"
#include "lst/log.h"
#include "lst/signals.h"

bool go_abandon_now(const struct go_job *j)
{
    const struct gateway_out *ctx = j->ctx;
    return atomic_load(&j->cancelled) || atomic_load(&ctx->stopping) || atomic_load(&ctx->fatal) ||
           lst_stop_requested();
}

/* Sleeps ms unless the job is to be abandoned meanwhile; false then. */
static bool backoff_sleep(const struct go_job *j, int64_t ms)
{
    int64_t until = lst_mono_ms() + ms;
    while (!go_abandon_now(j)) {
        int64_t left = until - lst_mono_ms();
        if (left <= 0)
            return true;
        lst_sleep_ms(left < 50 ? left : 50, NULL);
    }
    return false;
}

/* Full jitter: uniform in [0, min(cap, base * 2^n)]. */
static int64_t jitter(int64_t ceiling)
{
    if (ceiling <= 0)
        return 0;
    return (int64_t)randombytes_uniform(
        (uint32_t)(ceiling > UINT32_MAX - 1 ? UINT32_MAX - 1 : ceiling) + 1u);
}

/* ---- building the message ---- */

static void build_msg(struct go_lane *l, struct go_job *j, const struct lst_outbound *o,
                      const char *id, struct lst_threema_msg *m, struct go_step *st)
{
    const struct lst_content *c = &o->content;
    st->outcome = LST_GATEWAY_OK;
    switch (c->kind) {
    case LST_CONTENT_TEXT:
        if (lst_threema_msg_set_text(m, c->text, strlen(c->text)) != LST_OK)
            go_step_fail(st, LST_GATEWAY_PERMANENT, "invalid_content", "text not encodable");
        return;
    case LST_CONTENT_LOCATION:
        lst_threema_msg_cleanup(m);
        m->kind = LST_THREEMA_MSG_LOCATION;
        m->location.lat = c->lat;
        m->location.lon = c->lon;
        m->location.has_accuracy = c->has_accuracy;
        m->location.accuracy = c->accuracy;
        m->location.name = c->name ? lst_strdup(c->name) : NULL;
        m->location.address = c->address ? lst_strdup(c->address) : NULL;
        return;
    case LST_CONTENT_FILE:
    case LST_CONTENT_IMAGE: {
        uint32_t caps = 0;
        go_resolve_caps(l, id, &caps, st);
        if (st->outcome != LST_GATEWAY_OK)
            return;
        if ((caps & LST_GATEWAY_CAP_FILE) == 0) {
            go_step_fail(st, LST_GATEWAY_PERMANENT, "capability_missing",
                         "the recipient's app cannot receive files");
            return;
        }
        go_files_prepare(l, o->message_id, c, &j->cancelled, m, st);
        return;
    }
    default:
        go_step_fail(st, LST_GATEWAY_PERMANENT, "invalid_content", "content kind not sendable");
    }
}

/* Encrypts m for pk into nonce/box hex. */
static void seal(struct go_lane *l, const struct lst_threema_msg *m,
                 const uint8_t pk[LST_THREEMA_KEY_SIZE], char *nonce_hex, struct lst_buf *box_hex,
                 struct go_step *st)
{
    struct lst_threema_shared shared;
    uint8_t nonce[LST_THREEMA_NONCE_SIZE];
    lst_err err = lst_threema_keycache_get(l->ctx->keys, pk, &shared);
    if (err != LST_OK) {
        go_step_fail(st, LST_GATEWAY_PERMANENT, "bad_public_key",
                     "the recipient's public key is unusable");
        return;
    }
    lst_buf_reset(&l->b);
    err = lst_threema_msg_seal(m, &shared, nonce, &l->b, NULL);
    lst_threema_shared_cleanup(&shared);
    if (err != LST_OK) {
        go_step_fail(st, LST_GATEWAY_PERMANENT, "invalid_content", "message not encodable: %s",
                     lst_strerror(err));
        return;
    }
    if (l->b.len > LST_THREEMA_BOX_MAX) {
        go_step_fail(st, LST_GATEWAY_PERMANENT, "too_large",
                     "encrypted message of %zu bytes exceeds the Gateway's %d", l->b.len,
                     LST_THREEMA_BOX_MAX);
        return;
    }
    lst_threema_hex_encode(nonce, sizeof(nonce), nonce_hex, LST_THREEMA_NONCE_HEX + 1);
    lst_buf_reset(box_hex);
    char tmp[2 * LST_THREEMA_BOX_MAX + 1];
    lst_threema_hex_encode((const uint8_t *)l->b.data, l->b.len, tmp, sizeof(tmp));
    lst_buf_append(box_hex, tmp, 2 * l->b.len);
    st->outcome = lst_buf_failed(box_hex) ? LST_GATEWAY_RETRY : LST_GATEWAY_OK;
}

/* One message through a shared send_e2e_bulk call (bulk.c); the item's answer is turned
 * into the result a send_e2e would have given, so classification, retries and metrics are
 * the same per item. Alone through send_e2e when the whole call was refused. */
static enum lst_gateway_outcome send_bulk_item(struct go_lane *l, const struct lst_gateway_e2e *msg,
                                               const char *request_id, struct go_result *rs,
                                               struct lst_gateway_result *res)
{
    struct lst_gateway_bulk_item item;
    memset(&item, 0, sizeof(item));
    if (!go_bulk_send(l, msg, request_id, &item, res))
        return lst_gateway_send_e2e(l->gw, msg, rs->msgid, res);
    if (res->outcome != LST_GATEWAY_OK)
        return res->outcome; /* the whole call failed: so did this item */
    go_bulk_item_result(&item, res, rs->msgid);
    return res->outcome;
}

static void send_e2e(struct go_lane *l, struct go_job *j, const struct lst_outbound *o,
                     const char *id, const char *nonce_hex, const char *box_hex,
                     struct go_result *rs, struct go_step *st)
{
    struct gateway_out *ctx = l->ctx;
    struct lst_gateway_result res;
    memset(&res, 0, sizeof(res));
    struct lst_gateway_e2e msg = {
        .to = id,
        .nonce_hex = nonce_hex,
        .box_hex = box_hex,
        .no_delivery_receipts = o->no_delivery_receipts,
        .no_push = o->no_push,
    };
    if (!go_lane_gateway_call(l, &j->cancelled)) {
        go_step_fail(st, LST_GATEWAY_RETRY, "abandoned", "abandoned");
        return;
    }
    int64_t t0 = lst_mono_ms();
    if (ctx->bulk != NULL)
        send_bulk_item(l, &msg, o->request_id, rs, &res);
    else
        lst_gateway_send_e2e(l->gw, &msg, rs->msgid, &res);
    go_send_result(ctx, &res, lst_mono_ms() - t0, st);
}

void go_send_result(struct gateway_out *ctx, const struct lst_gateway_result *res,
                    int64_t elapsed_ms, struct go_step *st)
{
    enum lst_gateway_outcome oc = res->outcome;
    lst_histogram_observe(ctx->m.send_seconds, (double)elapsed_ms / 1000.0);
    if (oc == LST_GATEWAY_OK)
        lst_counter_inc(ctx->m.send_ok);
    else
        go_metrics_send(ctx->svc->metrics, oc, res->http_status);
    go_step_from_result(st, res, "send_e2e");
    if (oc == LST_GATEWAY_PERMANENT) {
        /* The reasons the ledger shows for the statuses the Gateway documents. */
        const char *why = res->http_status == 400   ? "bad recipient or account mode (400)"
                          : res->http_status == 404 ? "unknown recipient (404)"
                          : res->http_status == 413 ? "message too large (413)"
                                                    : NULL;
        if (why != NULL)
            snprintf(st->reason, sizeof(st->reason), "send_e2e: %s", why);
    }
}

void go_seal_for(struct go_lane *l, struct go_job *j, const struct lst_outbound *o, const char *id,
                 const uint8_t pk[LST_THREEMA_KEY_SIZE], char *nonce_hex, struct lst_buf *box_hex,
                 struct go_step *st)
{
    struct lst_threema_msg m;
    memset(&m, 0, sizeof(m));
    build_msg(l, j, o, id, &m, st);
    if (st->outcome == LST_GATEWAY_OK)
        seal(l, &m, pk, nonce_hex, box_hex, st);
    lst_threema_msg_cleanup(&m);
}

/* One pass: resolve, build, encrypt, send. st says how it went. */
static void attempt(struct go_lane *l, struct go_job *j, const struct lst_outbound *o,
                    struct go_result *rs, struct go_step *st)
{
    uint8_t pk[LST_THREEMA_KEY_SIZE];
    char nonce_hex[LST_THREEMA_NONCE_HEX + 1];
    struct lst_buf box_hex;
    lst_buf_init(&box_hex);
    go_resolve_id(l, o, rs->threema_id, st);
    if (st->outcome == LST_GATEWAY_OK)
        go_resolve_pubkey(l, rs->threema_id, pk, st);
    if (st->outcome == LST_GATEWAY_OK)
        go_seal_for(l, j, o, rs->threema_id, pk, nonce_hex, &box_hex, st);
    if (st->outcome == LST_GATEWAY_OK)
        send_e2e(l, j, o, rs->threema_id, nonce_hex, box_hex.data, rs, st);
    lst_buf_cleanup(&box_hex);
}

void go_attempts_init(const struct gateway_out *ctx, struct go_attempts *at)
{
    at->first = lst_mono_ms();
    at->ceiling = ctx->cfg.backoff_min_ms;
}

bool go_attempt_in_time(const struct lst_outbound *o, struct go_result *rs)
{
    if (!o->has_deadline || lst_wall_ms() <= o->deadline)
        return true;
    go_step_fail(&rs->st, LST_GATEWAY_PERMANENT, "deadline",
                 "the request's deadline passed before it could be sent");
    return false;
}

/* A transient failure: retry after a delay, or give up when the retry deadline has passed. */
static enum go_verdict retry_verdict(struct gateway_out *ctx, const struct lst_outbound *o,
                                     struct go_result *rs, struct go_attempts *at,
                                     const struct go_step *st, int64_t *delay_ms)
{
    lst_counter_inc(ctx->m.retries);
    if (st->http_status == 429)
        lst_gateway_rate_on_429(ctx->rl);
    int64_t spent = lst_mono_ms() - at->first;
    if (spent >= ctx->cfg.retry_deadline_ms) {
        rs->st = *st;
        go_step_fail(&rs->st, LST_GATEWAY_PERMANENT, "deadline",
                     "gave up after %lld ms of transient errors; last: %s", (long long)spent,
                     st->reason);
        rs->st.http_status = st->http_status;
        return GO_VERDICT_DONE;
    }
    LST_DEBUG("gateway_out.retry", "%s: %s; next try within %lld ms", o->request_id, st->reason,
              (long long)at->ceiling);
    /* a Retry-After is a floor (the jitter spreads the lanes above it), never beyond the
     * retry deadline: the deadline check above then ends the request */
    int64_t delay = jitter(at->ceiling), left = ctx->cfg.retry_deadline_ms - spent;
    if (st->retry_after_ms > 0) {
        lst_counter_inc(ctx->m.retry_after);
        delay += st->retry_after_ms;
        delay = delay > left ? left : delay;
    }
    *delay_ms = delay;
    at->ceiling =
        at->ceiling * 2 > ctx->cfg.backoff_max_ms ? ctx->cfg.backoff_max_ms : at->ceiling * 2;
    return GO_VERDICT_RETRY;
}

enum go_verdict go_attempt_verdict(struct gateway_out *ctx, const struct lst_outbound *o,
                                   struct go_result *rs, struct go_attempts *at,
                                   const struct go_step *st, int64_t *delay_ms)
{
    *delay_ms = 0;
    rs->possible_duplicate = rs->possible_duplicate || st->in_doubt;
    switch (st->outcome) {
    case LST_GATEWAY_OK:
        rs->accepted = true;
        return GO_VERDICT_DONE;
    case LST_GATEWAY_PERMANENT:
        rs->st = *st;
        return GO_VERDICT_DONE;
    case LST_GATEWAY_FATAL:
        LST_ERROR("gateway_out.gateway_fatal", "%s (%s)", st->reason,
                  st->http_status == 401 ? "check LST_GATEWAY_ID and LST_GATEWAY_SECRET"
                                         : "check LST_GATEWAY_URL and LST_GATEWAY_CA_FILE");
        go_fatal(ctx, st->http_status == 401 ? "the Gateway answered 401 Unauthorized"
                                             : "the Gateway configuration is wrong");
        return GO_VERDICT_ABANDON;
    case LST_GATEWAY_PAUSE:
        go_credits_on_402(ctx);
        return GO_VERDICT_PAUSE;
    case LST_GATEWAY_RETRY:
        break;
    }
    if (strcmp(st->code, "abandoned") == 0)
        return GO_VERDICT_ABANDON;
    return retry_verdict(ctx, o, rs, at, st, delay_ms);
}

/* Runs attempts until a final outcome (true) or abandonment (false). */
static bool run_attempts(struct go_lane *l, struct go_job *j, const struct lst_outbound *o,
                         struct go_result *rs, struct go_attempts *at)
{
    struct gateway_out *ctx = l->ctx;
    for (;;) {
        struct go_step st;
        memset(&st, 0, sizeof(st));
        if (go_abandon_now(j))
            return false;
        if (!go_attempt_in_time(o, rs))
            return true;
        if (!go_credits_wait(ctx, &j->cancelled))
            return false;
        attempt(l, j, o, rs, &st);
        int64_t delay = 0;
        switch (go_attempt_verdict(ctx, o, rs, at, &st, &delay)) {
        case GO_VERDICT_DONE:
            return true;
        case GO_VERDICT_ABANDON:
            return false;
        case GO_VERDICT_PAUSE:
            continue;
        case GO_VERDICT_RETRY:
            if (!backoff_sleep(j, delay))
                return false;
        }
    }
}

/* ---- outcome ---- */

static lst_err encode_sent(struct go_lane *l, struct go_job *j, const struct lst_outbound *o,
                           struct go_result *rs)
{
    struct lst_sent s;
    memset(&s, 0, sizeof(s));
    s.request_id = o->request_id;
    s.message_id = o->message_id;
    s.employee_id = o->employee_id;
    s.outcome = rs->accepted ? LST_SENT_ACCEPTED : LST_SENT_FAILED;
    s.threema_message_id = rs->accepted ? rs->msgid : NULL;
    s.threema_id = rs->threema_id[0] != '\0' && lst_threema_id_valid(rs->threema_id, 8)
                       ? rs->threema_id
                       : NULL;
    if (!rs->accepted) {
        s.failure.code = rs->st.code;
        s.failure.has_http_status = rs->st.http_status >= 100 && rs->st.http_status <= 599;
        s.failure.http_status = rs->st.http_status;
        if (rs->st.reason[0] == '\0')
            snprintf(rs->st.reason, sizeof(rs->st.reason), "failed");
        s.failure.reason = rs->st.reason;
        s.failure.final = true;
    }
    s.possible_duplicate = rs->possible_duplicate;
    s.attempts = l->gateway_calls > LST_ATTEMPTS_MAX ? LST_ATTEMPTS_MAX : l->gateway_calls;
    s.at = lst_wall_ms();
    j->out_topic = l->ctx->topic_sent;
    return lst_sent_encode(&s, &j->out);
}

/* Retries a Redis step until it works or the job is to be abandoned. */
static bool redis_retry(struct go_lane *l, struct go_job *j,
                        lst_err (*fn)(struct go_lane *, struct go_job *, void *), void *ud)
{
    int64_t delay = 50;
    for (;;) {
        if (fn(l, j, ud) == LST_OK)
            return true;
        if (!backoff_sleep(j, delay))
            return false;
        delay = delay * 2 > 2000 ? 2000 : delay * 2;
    }
}

struct begin_args {
    const char *request_id;
    enum go_begin state;
};

static lst_err begin_fn(struct go_lane *l, struct go_job *j, void *ud)
{
    struct begin_args *a = ud;
    return go_outcome_begin(l, a->request_id, &a->state, &j->out);
}

static lst_err record_fn(struct go_lane *l, struct go_job *j, void *ud)
{
    (void)j;
    (void)ud;
    return go_outcome_record(l);
}

void go_publish_pending(struct go_lane *l)
{
    struct gateway_out *ctx = l->ctx;
    struct go_job *j = l->pending;
    l->pending = NULL;
    if (l->pend_accepted)
        lst_counter_inc(ctx->m.outcome_ok);
    else
        go_metrics_outcome(ctx->svc->metrics, false, l->pend_code);
    if (l->pend_dup)
        lst_counter_inc(ctx->m.possible_dup);
    if (!go_publish(j))
        go_complete(ctx, j, GO_JOB_ABANDONED);
}

void go_lane_flush(struct go_lane *l)
{
    struct go_job *j = l->pending;
    if (j == NULL)
        return;
    if (!redis_retry(l, j, record_fn, NULL)) {
        /* No outcome recorded: redelivered later, and flagged as in doubt then. */
        l->pending = NULL;
        go_complete(l->ctx, j, GO_JOB_ABANDONED);
        return;
    }
    go_publish_pending(l);
}

static void to_dlq(struct go_job *j, lst_err err, const struct lst_buf *why)
{
    char reason[LST_REASON_MAX];
    snprintf(reason, sizeof(reason), "%s", why->len ? why->data : lst_strerror(err));
    lst_counter_inc(j->ctx->m.dlq);
    LST_WARN("gateway_out.dlq", "%s [%d] offset %lld: %s", j->ctx->topic_in, (int)j->partition,
             (long long)j->offset, reason);
    if (go_outcome_dlq(j, err, reason) != LST_OK || !go_publish(j))
        go_complete(j->ctx, j, GO_JOB_ABANDONED);
}

bool go_finish_prepare(struct go_lane *l, struct go_job *j, const struct lst_outbound *o,
                       struct go_result *rs)
{
    if (encode_sent(l, j, o, rs) != LST_OK ||
        go_outcome_prepare(l, o->request_id, &j->out) != LST_OK) {
        LST_ERROR("gateway_out.encode_failed", "%s: outcome not encodable", o->request_id);
        go_complete(l->ctx, j, GO_JOB_ABANDONED);
        return false;
    }
    l->pending = j;
    l->pend_accepted = rs->accepted;
    l->pend_dup = rs->possible_duplicate;
    snprintf(l->pend_code, sizeof(l->pend_code), "%s", rs->accepted ? "ok" : rs->st.code);
    return true;
}

/* The outcome goes to Redis before it is published. When the lane has more work queued, the
 * SET waits for the next job's begin and shares its round trip (go_outcome_begin); otherwise
 * it is written now. Either way the lane holds at most one sent-but-unrecorded request, which
 * keeps the duplicate bound of a killed worker at W. */
static void finish(struct go_lane *l, struct go_job *j, const struct lst_outbound *o,
                   struct go_result *rs)
{
    if (go_finish_prepare(l, j, o, rs) && !go_lane_has_queued(l))
        go_lane_flush(l);
}

void go_send_begun(struct go_lane *l, struct go_job *j, const struct lst_outbound *o,
                   struct go_result *rs, struct go_attempts *at)
{
    lst_gateway_set_request_id(l->gw, o->request_id);
    if (run_attempts(l, j, o, rs, at))
        finish(l, j, o, rs);
    else
        go_complete(l->ctx, j, GO_JOB_ABANDONED);
}

void go_send_job(struct go_lane *l, struct go_job *j)
{
    struct gateway_out *ctx = l->ctx;
    struct lst_outbound o;
    struct lst_buf why;
    struct go_result rs;
    memset(&rs, 0, sizeof(rs));
    lst_buf_init(&why);
    l->gateway_calls = 0;
    if (go_abandon_now(j)) {
        go_lane_flush(l);
        go_complete(ctx, j, GO_JOB_ABANDONED);
        goto out;
    }
    lst_err err =
        j->value != NULL ? lst_outbound_decode(j->value, j->len, &o, &why) : LST_ERR_INVALID;
    if (err != LST_OK) {
        go_lane_flush(l);
        if (j->value == NULL)
            lst_buf_puts(&why, "record: tombstone (no value)");
        to_dlq(j, err, &why);
        goto out;
    }
    lst_gateway_set_request_id(l->gw, o.request_id);
    struct begin_args ba = {.request_id = o.request_id};
    bool begun = redis_retry(l, j, begin_fn, &ba);
    /* The begin pipeline recorded the previous job's outcome too (or, abandoned, did not). */
    if (begun && l->pending != NULL)
        go_publish_pending(l);
    go_lane_flush(l);
    if (!begun) {
        go_complete(ctx, j, GO_JOB_ABANDONED);
    } else if (ba.state == GO_BEGIN_KNOWN) {
        /* Already decided earlier: publish the same record again, never send twice. */
        lst_counter_inc(ctx->m.republished);
        j->out_topic = ctx->topic_sent;
        if (!go_publish(j))
            go_complete(ctx, j, GO_JOB_ABANDONED);
    } else {
        struct go_attempts at;
        go_attempts_init(ctx, &at);
        rs.possible_duplicate = ba.state == GO_BEGIN_IN_DOUBT;
        go_send_begun(l, j, &o, &rs, &at);
    }
    lst_outbound_cleanup(&o);
out:
    lst_buf_cleanup(&why);
}
