/* One record per (from, messageId), also when the Gateway delivers a callback twice or two
 * deliveries race. Key <prefix>evt:<from>:<messageId> in Redis:
 *
 *   claim    SET key "pending:<random token>" NX PX <pending ttl>
 *            OK -> ours. Otherwise GET: "done" -> duplicate (200, nothing produced); our own
 *            token -> ours (lst_redis retried the SET after a reconnect and the first one had
 *            run); anything else -> another handler is on it (503: the Gateway retries later).
 *   done     SET key "done" EX <done ttl> once Kafka acknowledged the record.
 *   release  compare-and-delete of our token when processing failed, so the retry can claim.
 *
 * A crashed handler's marker expires after the pending TTL. When Redis is unreachable the
 * callback is processed without a marker: losing a message (503 until Redis is back, then the
 * Gateway gives up) is worse than a duplicate record, which the ledger absorbs by event_id. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "lst/log.h"
#include "gateway_in.h"

#define DONE "done"

const char gwin_release_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                "return redis.call('DEL', KEYS[1]) end return 0";

static void key_of(const struct gateway_in *ctx, const char *event_id, char *out, size_t cap)
{
    snprintf(out, cap, "%sevt:%s", ctx->cfg.redis_prefix, event_id);
}

/* randombytes_buf is one getrandom system call per call: a call per callback, which perf
 * trace showed on the event mode's stage thread. Each thread draws 512 bytes (64 tokens) at a
 * time instead. The token only has to differ from other claimers' tokens; it is no secret. */
#define TOKEN_RND  8
#define TOKEN_POOL 512

void gwin_dedupe_token(char token[GWIN_TOKEN_LEN + 1])
{
    static _Thread_local uint8_t pool[TOKEN_POOL];
    static _Thread_local size_t left;
    if (left < TOKEN_RND) {
        randombytes_buf(pool, sizeof(pool));
        left = sizeof(pool);
    }
    left -= TOKEN_RND;
    memcpy(token, "pending:", 8);
    lst_threema_hex_encode(pool + left, TOKEN_RND, token + 8, GWIN_TOKEN_LEN + 1 - 8);
}

void gwin_redis_reason(struct lst_redis *r, lst_err err, char *out, size_t cap)
{
    /* lst_strerror says only "invalid" for an error reply: the reply names the cause. */
    out[0] = '\0';
    if (r != NULL)
        lst_redis_last_error(r, out, cap);
    if (out[0] == '\0')
        snprintf(out, cap, "%s", lst_strerror(err));
}

static void redis_failed(struct gateway_in *ctx, struct lst_redis *r, lst_err err, const char *what)
{
    char why[160];
    gwin_redis_reason(r, err, why, sizeof(why));
    lst_counter_inc(ctx->m.redis_errors);
    LST_WARN("gateway_in.redis_failed", "%s failed (%s); going on without the dedupe marker", what,
             why);
}

enum gwin_claim gwin_dedupe_classify(const redisReply *get, const char *token)
{
    if (get == NULL)
        return GWIN_CLAIM_NO_REDIS;
    if (get->type == REDIS_REPLY_STRING && strcmp(get->str, DONE) == 0)
        return GWIN_CLAIM_DONE;
    if (get->type == REDIS_REPLY_STRING && strcmp(get->str, token) == 0)
        return GWIN_CLAIM_OK;
    return GWIN_CLAIM_PENDING; /* someone else's token, or it expired just now */
}

enum gwin_claim gwin_dedupe_claim(struct gateway_in *ctx, const char *event_id,
                                  char token[GWIN_TOKEN_LEN + 1])
{
    char key[160];
    redisReply *reply = NULL;
    enum gwin_claim claim = GWIN_CLAIM_NO_REDIS;
    key_of(ctx, event_id, key, sizeof(key));
    gwin_dedupe_token(token);
    bool probe = false;
    struct lst_redis *r = gwin_redis_take(ctx, &probe);
    if (r == NULL)
        return GWIN_CLAIM_NO_REDIS; /* the gate is open (rgate.c) */
    lst_err err = lst_redis_cmdf(r, &reply, "SET %s %s NX PX %lld", key, token,
                                 (long long)ctx->cfg.dedupe_pending_ms);
    if (err == LST_OK && reply->type == REDIS_REPLY_STATUS) {
        claim = GWIN_CLAIM_OK;
        goto out;
    }
    freeReplyObject(reply);
    reply = NULL;
    if (err == LST_OK)
        err = lst_redis_cmdf(r, &reply, "GET %s", key);
    if (err != LST_OK) {
        redis_failed(ctx, r, err, "dedupe claim");
        goto out;
    }
    claim = gwin_dedupe_classify(reply, token);
out:
    freeReplyObject(reply);
    gwin_redis_give(ctx, r, probe, err);
    return claim;
}

void gwin_dedupe_done(struct gateway_in *ctx, const char *event_id)
{
    char key[160];
    key_of(ctx, event_id, key, sizeof(key));
    bool probe = false;
    struct lst_redis *r = gwin_redis_take(ctx, &probe);
    char why[160] = "Redis skipped while unreachable";
    lst_err err = LST_ERR_REDIS;
    if (r != NULL) {
        err = lst_redis_cmdf(r, NULL, "SET %s %s EX %lld", key, DONE,
                             (long long)ctx->cfg.dedupe_done_s);
        if (err != LST_OK)
            gwin_redis_reason(r, err, why, sizeof(why));
        gwin_redis_give(ctx, r, probe, err);
    }
    if (err != LST_OK) {
        /* The record is in Kafka already; a redelivery now produces a second one, which the
         * ledger drops by event_id. */
        lst_counter_inc(ctx->m.redis_errors);
        LST_WARN("gateway_in.redis_failed", "marking %s done failed: %s", event_id, why);
    }
}

void gwin_dedupe_release(struct gateway_in *ctx, const char *event_id, const char *token)
{
    char key[160];
    const char *argv[2] = {key, token};
    key_of(ctx, event_id, key, sizeof(key));
    bool probe = false;
    struct lst_redis *r = gwin_redis_take(ctx, &probe);
    char why[160] = "Redis skipped while unreachable";
    lst_err err = LST_ERR_REDIS;
    if (r != NULL) {
        err = lst_redis_script_call(r, ctx->release_script, NULL, 1, 2, argv, NULL);
        if (err != LST_OK)
            gwin_redis_reason(r, err, why, sizeof(why));
        gwin_redis_give(ctx, r, probe, err);
    }
    if (err != LST_OK) {
        /* The marker expires after the pending TTL; until then retries get 503. */
        lst_counter_inc(ctx->m.redis_errors);
        LST_WARN("gateway_in.redis_failed", "releasing %s failed: %s", event_id, why);
    }
}
