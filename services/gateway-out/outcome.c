/* Outcomes: what Redis remembers about each request, and publishing to Kafka.
 *
 * Per request one key <prefix>req:<request_id>:
 *   "S:<ms>"       an attempt started (set before the first Gateway call of a delivery)
 *   "O:<lst.sent>" the final outcome, the exact record published to lst.sent
 * The begin command answers in one round trip whether the outcome is known (publish it again,
 * send nothing), whether an earlier delivery started and left no outcome (send again and flag
 * possible_duplicate), or neither; and it marks the request as started. Recording the outcome
 * is an absolute SET, safe to replay. A record goes to lst.sent only after its outcome is in
 * Redis, and its offset is stored only after Kafka acknowledged the record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_out.h"
#include "lst/log.h"
#include "lst/signals.h"

/* KEYS[1] pk:<id> (TTL), KEYS[2] pkfirst:<id> (no TTL); ARGV[1] key hex, ARGV[2] TTL.
 * 1: the key is the first one seen for the ID (now cached), 0: it changed. */
static const char PK_LUA[] = "local first = redis.call('GET', KEYS[2])\n"
                             "if not first then\n"
                             "  redis.call('SET', KEYS[2], ARGV[1])\n"
                             "  first = ARGV[1]\n"
                             "end\n"
                             "if first ~= ARGV[1] then return 0 end\n"
                             "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
                             "return 1\n";

lst_err go_outcome_scripts_create(struct gateway_out *ctx)
{
    return lst_redis_script_create(PK_LUA, true, &ctx->s_pk);
}

void go_outcome_scripts_destroy(struct gateway_out *ctx)
{
    lst_redis_script_destroy(ctx->s_pk);
    ctx->s_pk = NULL;
}

static void req_key(struct go_lane *l, const char *request_id, struct lst_buf *key)
{
    lst_buf_reset(key);
    lst_buf_printf(key, "%sreq:%s", l->ctx->cfg.key_prefix, request_id);
}

/* The begin reply: nil (the key was absent and is now S:), or the value that was there and
 * stays (SET ... NX GET never overwrites): O:<record> or S:<ms>. */
lst_err go_outcome_take_begin(const redisReply *r, enum go_begin *state, struct lst_buf *known)
{
    if (r != NULL && r->type == REDIS_REPLY_NIL) {
        *state = GO_BEGIN_NEW;
        return LST_OK;
    }
    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len < 2)
        return LST_ERR_INVALID;
    if (memcmp(r->str, "O:", 2) == 0) {
        *state = GO_BEGIN_KNOWN;
        lst_buf_reset(known);
        return lst_buf_append(known, r->str + 2, r->len - 2);
    }
    if (memcmp(r->str, "S:", 2) != 0)
        return LST_ERR_INVALID;
    *state = GO_BEGIN_IN_DOUBT;
    return LST_OK;
}

lst_err go_outcome_queue_pending(struct go_lane *l, struct lst_redis_pipe *p)
{
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)l->ctx->cfg.outcome_ttl_ms);
    const char *set[] = {"SET", l->pkey.data, l->pval.data, "PX", ttl};
    const size_t setlen[] = {3, l->pkey.len, l->pval.len, 2, strlen(ttl)};
    return lst_redis_pipe_add(p, 5, set, setlen);
}

/* The begin command for request_id (the key in l->a, the value and TTL in the caller's buffers):
 * SET <key> S:<now> PX <ttl> NX GET. One plain command instead of a script (GET, then SET
 * unless the outcome is known): NX leaves a known outcome (O:) and an earlier start (S:) as
 * they are and GET returns them, so the answer is the script's; it costs Redis a fraction of
 * an EVALSHA, and the event loop waits for that batch on every turn. */
static lst_err begin_argv(struct go_lane *l, const char *request_id, char val[24], char ttl[24],
                          const char *argv[7])
{
    req_key(l, request_id, &l->a);
    if (lst_buf_failed(&l->a))
        return LST_ERR_NOMEM;
    snprintf(val, 24, "S:%lld", (long long)lst_wall_ms());
    snprintf(ttl, 24, "%lld", (long long)l->ctx->cfg.outcome_ttl_ms);
    const char *cmd[] = {"SET", l->a.data, val, "PX", ttl, "NX", "GET"};
    memcpy(argv, cmd, sizeof(cmd));
    return LST_OK;
}

lst_err go_outcome_queue_begin(struct go_lane *l, const char *request_id, struct lst_redis_pipe *p)
{
    char val[24], ttl[24];
    const char *argv[7];
    lst_err err = begin_argv(l, request_id, val, ttl, argv);
    return err == LST_OK ? lst_redis_pipe_add(p, 7, argv, NULL) : err;
}

/* SET pending outcome + begin in one pipeline: both commands are idempotent (a replayed begin
 * reports in-doubt, the safe direction), so the wrapper may replay the pair after a
 * reconnect. */
static lst_err begin_with_pending(struct go_lane *l, const char *request_id, enum go_begin *state,
                                  struct lst_buf *known)
{
    lst_redis_pipe_reset(l->pipe);
    lst_err err = go_outcome_queue_pending(l, l->pipe);
    if (err == LST_OK)
        err = go_outcome_queue_begin(l, request_id, l->pipe);
    if (err == LST_OK)
        err = lst_redis_pipe_exec(l->redis, l->pipe);
    if (err == LST_OK)
        err = go_outcome_take_begin(lst_redis_pipe_reply(l->pipe, 1), state, known);
    lst_redis_pipe_reset(l->pipe);
    return err;
}

lst_err go_outcome_begin(struct go_lane *l, const char *request_id, enum go_begin *state,
                         struct lst_buf *known)
{
    char val[24], ttl[24];
    const char *argv[7];
    redisReply *r = NULL;
    if (l->pending != NULL)
        return begin_with_pending(l, request_id, state, known);
    lst_err err = begin_argv(l, request_id, val, ttl, argv);
    if (err == LST_OK)
        err = lst_redis_cmd(l->redis, &r, 7, argv, NULL);
    if (err == LST_OK)
        err = go_outcome_take_begin(r, state, known);
    if (r != NULL)
        freeReplyObject(r);
    return err;
}

lst_err go_outcome_prepare(struct go_lane *l, const char *request_id, const struct lst_buf *sent)
{
    req_key(l, request_id, &l->pkey);
    lst_buf_reset(&l->pval);
    lst_buf_puts(&l->pval, "O:");
    lst_buf_append(&l->pval, sent->data, sent->len);
    return lst_buf_failed(&l->pkey) || lst_buf_failed(&l->pval) ? LST_ERR_NOMEM : LST_OK;
}

lst_err go_outcome_record(struct go_lane *l)
{
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)l->ctx->cfg.outcome_ttl_ms);
    const char *argv[] = {"SET", l->pkey.data, l->pval.data, "PX", ttl};
    const size_t argvlen[] = {3, l->pkey.len, l->pval.len, 2, strlen(ttl)};
    return lst_redis_cmd(l->redis, NULL, 5, argv, argvlen);
}

/* Producer thread: hand the job back to the poll thread. */
static void delivered(const struct lst_kafka_delivery *d, void *opaque)
{
    struct go_job *j = opaque;
    go_complete(j->ctx, j, d->err == LST_OK ? GO_JOB_DONE : GO_JOB_QUEUED);
}

bool go_publish(struct go_job *j)
{
    struct lst_kafka_producer *p = j->ctx->svc->producer;
    /* A full local queue (LST_ERR_KAFKA) clears as the broker catches up; bounded so a stuck
     * broker cannot hold a lane forever (the job is then abandoned and redelivered). */
    for (int i = 0; i < 6000; i++) {
        lst_err err = lst_kafka_produce_async(p, j->out_topic, j->key, j->key ? j->keylen : 0,
                                              j->out.data, j->out.len, delivered, j);
        if (err == LST_OK)
            return true;
        if (err == LST_ERR_KAFKA_FATAL || err == LST_ERR_INVALID || err == LST_ERR_TOO_LARGE) {
            LST_ERROR("gateway_out.publish_failed", "%s: %s", j->out_topic, lst_strerror(err));
            return false;
        }
        lst_sleep_ms(5, NULL);
    }
    LST_ERROR("gateway_out.publish_failed", "%s: producer queue full for 30 s", j->out_topic);
    return false;
}

lst_err go_outcome_dlq(struct go_job *j, lst_err why_err, const char *reason)
{
    struct gateway_out *ctx = j->ctx;
    struct lst_dlq d;
    char error[LST_ERROR_NAME_MAX + 1], why[LST_REASON_MAX + 1], service[] = "gateway-out";
    memset(&d, 0, sizeof(d));
    snprintf(error, sizeof(error), "%s", lst_err_name(why_err));
    snprintf(why, sizeof(why), "%s", reason != NULL && reason[0] ? reason : lst_strerror(why_err));
    d.source_topic = ctx->topic_in;
    d.source_partition = j->partition;
    d.source_offset = j->offset;
    d.error = error;
    d.reason = why;
    d.failed_at = lst_wall_ms();
    d.service = service;
    lst_err err = LST_OK;
    if (j->key != NULL) {
        d.has_key = true;
        err = lst_dlq_payload_set(&d.key, j->key, j->keylen);
    }
    if (err == LST_OK && j->value != NULL) {
        d.has_value = true;
        err = lst_dlq_payload_set(&d.value, j->value, j->len);
    }
    if (err == LST_OK)
        err = lst_dlq_encode(&d, &j->out);
    j->out_topic = ctx->topic_dlq;
    free(d.key.data);
    free(d.value.data);
    return err;
}
