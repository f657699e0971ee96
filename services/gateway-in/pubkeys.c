/* The sender's public key, needed to open every box. Three levels, cheapest first:
 *
 *   1. a process cache: direct-mapped slots by a hash of the ID, each with an expiry (bounded
 *      memory, no eviction lists; a collision just replaces the older entry);
 *   2. Redis, <prefix>pk:<ID> = 64 hex with a TTL, shared by every gateway-in instance;
 *   3. GET /pubkeys/{id} at the Gateway, written back to both caches.
 *
 * A Threema ID keeps its key for life, so a cached key is normally right; when a box does not
 * open with a cached key, the caller asks again with fresh = true (straight to the Gateway)
 * before it declares the box undecryptable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lst/log.h"
#include "gateway_in.h"

struct slot {
    char id[LST_THREEMA_ID_SIZE + 1];
    uint8_t pk[LST_THREEMA_KEY_SIZE];
    int64_t expires_ms; /* monotonic; 0: empty */
};

struct gwin_pubkeys {
    pthread_mutex_t lock;
    struct slot *slots;
    size_t n;
    int64_t ttl_ms;
};

lst_err gwin_pubkeys_create(size_t slots, int64_t ttl_ms, struct gwin_pubkeys **out)
{
    struct gwin_pubkeys *pk = calloc(1, sizeof(*pk));
    *out = NULL;
    if (pk == NULL || (pk->slots = calloc(slots, sizeof(*pk->slots))) == NULL) {
        free(pk);
        return LST_ERR_NOMEM;
    }
    pthread_mutex_init(&pk->lock, NULL);
    pk->n = slots;
    pk->ttl_ms = ttl_ms;
    *out = pk;
    return LST_OK;
}

void gwin_pubkeys_destroy(struct gwin_pubkeys *pk)
{
    if (pk == NULL)
        return;
    pthread_mutex_destroy(&pk->lock);
    free(pk->slots);
    free(pk);
}

/* FNV-1a over the 8 ID characters. */
static size_t slot_of(const struct gwin_pubkeys *pk, const char *id)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < LST_THREEMA_ID_SIZE && id[i] != '\0'; i++)
        h = (h ^ (uint8_t)id[i]) * 16777619u;
    return h % pk->n;
}

static bool local_get(struct gwin_pubkeys *pk, const char *id, uint8_t key[LST_THREEMA_KEY_SIZE])
{
    bool hit = false;
    pthread_mutex_lock(&pk->lock);
    struct slot *s = &pk->slots[slot_of(pk, id)];
    if (s->expires_ms > lst_mono_ms() && strcmp(s->id, id) == 0) {
        memcpy(key, s->pk, LST_THREEMA_KEY_SIZE);
        hit = true;
    }
    pthread_mutex_unlock(&pk->lock);
    return hit;
}

static void local_put(struct gwin_pubkeys *pk, const char *id,
                      const uint8_t key[LST_THREEMA_KEY_SIZE])
{
    pthread_mutex_lock(&pk->lock);
    struct slot *s = &pk->slots[slot_of(pk, id)];
    snprintf(s->id, sizeof(s->id), "%s", id);
    memcpy(s->pk, key, LST_THREEMA_KEY_SIZE);
    s->expires_ms = lst_mono_ms() + pk->ttl_ms;
    pthread_mutex_unlock(&pk->lock);
}

static bool redis_get(struct gateway_in *ctx, const char *id, uint8_t key[LST_THREEMA_KEY_SIZE])
{
    redisReply *reply = NULL;
    bool probe = false;
    struct lst_redis *r = gwin_redis_take(ctx, &probe);
    if (r == NULL)
        return false; /* the gate is open (rgate.c): ask the Gateway */
    lst_err err = lst_redis_cmdf(r, &reply, "GET %spk:%s", ctx->cfg.redis_prefix, id);
    gwin_redis_give(ctx, r, probe, err);
    bool hit = err == LST_OK && reply->type == REDIS_REPLY_STRING &&
               lst_threema_hex_decode(reply->str, reply->len, key, LST_THREEMA_KEY_SIZE) == LST_OK;
    if (err != LST_OK)
        lst_counter_inc(ctx->m.redis_errors);
    freeReplyObject(reply);
    return hit;
}

static void redis_put(struct gateway_in *ctx, const char *id, const char *hex)
{
    bool probe = false;
    struct lst_redis *r = gwin_redis_take(ctx, &probe);
    if (r == NULL)
        return;
    lst_err err = lst_redis_cmdf(r, NULL, "SET %spk:%s %s EX %lld", ctx->cfg.redis_prefix, id, hex,
                                 (long long)ctx->cfg.pubkey_ttl_s);
    gwin_redis_give(ctx, r, probe, err);
    if (err != LST_OK)
        lst_counter_inc(ctx->m.redis_errors);
}

static enum gwin_fetch from_gateway(struct gateway_in *ctx, const char *id,
                                    uint8_t key[LST_THREEMA_KEY_SIZE], struct lst_buf *why)
{
    char hex[LST_GATEWAY_KEY_HEX + 1];
    struct lst_gateway_result res;
    if (!gwin_rate_admit(ctx, "public key of the sender", why))
        return GWIN_FETCH_RETRY;
    struct lst_gateway *gw = gwin_pool_take(ctx->clients);
    enum lst_gateway_outcome o = lst_gateway_pubkey(gw, id, hex, &res);
    gwin_pool_give(ctx->clients, gw);
    gwin_rate_note(ctx, &res);
    if (o == LST_GATEWAY_OK &&
        lst_threema_hex_decode(hex, strlen(hex), key, LST_THREEMA_KEY_SIZE) == LST_OK) {
        lst_counter_inc(ctx->m.pubkey_gateway);
        redis_put(ctx, id, hex);
        local_put(ctx->pubkeys, id, key);
        return GWIN_FETCH_OK;
    }
    lst_buf_reset(why);
    lst_buf_printf(why, "public key of the sender: %s (%s)", lst_gateway_outcome_name(o),
                   res.reason);
    if (o == LST_GATEWAY_PERMANENT)
        return GWIN_FETCH_PERMANENT;
    if (o == LST_GATEWAY_FATAL)
        LST_ERROR("gateway_in.gateway_fatal",
                  "the Gateway refuses us (%s): check "
                  "LST_GATEWAY_URL, LST_GATEWAY_ID and LST_GATEWAY_SECRET",
                  res.reason);
    else
        LST_WARN("gateway_in.pubkey_unavailable", "fetching the key of %s: %s", id, res.reason);
    return GWIN_FETCH_RETRY;
}

bool gwin_pubkey_cached(struct gateway_in *ctx, const char *id, uint8_t pk[LST_THREEMA_KEY_SIZE])
{
    bool hit = local_get(ctx->pubkeys, id, pk);
    if (hit)
        lst_counter_inc(ctx->m.pubkey_local);
    return hit;
}

enum gwin_fetch gwin_pubkey_get(struct gateway_in *ctx, const char *id, bool fresh,
                                uint8_t pk[LST_THREEMA_KEY_SIZE], bool *cached, struct lst_buf *why)
{
    *cached = !fresh;
    if (!fresh && local_get(ctx->pubkeys, id, pk)) {
        lst_counter_inc(ctx->m.pubkey_local);
        return GWIN_FETCH_OK;
    }
    if (!fresh && redis_get(ctx, id, pk)) {
        lst_counter_inc(ctx->m.pubkey_redis);
        local_put(ctx->pubkeys, id, pk);
        return GWIN_FETCH_OK;
    }
    *cached = false;
    return from_gateway(ctx, id, pk, why);
}
