/* Recipient resolution and the caches.
 *
 * Shared by all workers in Redis, with a TTL (LST_GATEWAY_OUT_CACHE_TTL_MS):
 *   <prefix>lk:phone:<hash>, <prefix>lk:email:<hash>  Threema ID, or "-" for not found
 *                                                      (LST_GATEWAY_OUT_NEGATIVE_TTL_MS)
 *   <prefix>pk:<id>                                    public key (hex)
 *   <prefix>cap:<id>                                   capabilities bit mask (decimal)
 * and without TTL <prefix>pkfirst:<id>, the first public key ever seen for the ID: a later
 * fetch that differs is refused ("public key changed") and counted on an alert metric, never
 * silently accepted. Lookups, public keys and capabilities also have a small in-process layer
 * (LST_GATEWAY_OUT_LOCAL_CACHE_TTL_MS) that saves a Redis round trip per send and lets the
 * event loop send without one.
 * Only hashes of phone numbers and e-mail addresses are used as keys, never the values. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_out.h"
#include "lst/log.h"

/* ---- in-process cache ---- */

struct lc_entry {
    struct lc_entry *next;
    char key[72]; /* a Threema ID, or "p:"/"e:" and a 64-hex lookup hash */
    uint8_t val[32];
    size_t vlen;
    int64_t expires; /* mono ms */
};

struct go_local_cache {
    pthread_mutex_t lock;
    struct lc_entry **buckets;
    size_t nbuckets, n, capacity;
};

lst_err go_local_cache_create(size_t capacity, struct go_local_cache **out)
{
    struct go_local_cache *c = calloc(1, sizeof(*c));
    *out = NULL;
    if (c == NULL)
        return LST_ERR_NOMEM;
    c->nbuckets = 4096;
    c->capacity = capacity;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        free(c);
        return LST_ERR_NOMEM;
    }
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return LST_OK;
}

static void lc_clear(struct go_local_cache *c)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct lc_entry *e = c->buckets[i];
        while (e != NULL) {
            struct lc_entry *next = e->next;
            free(e);
            e = next;
        }
        c->buckets[i] = NULL;
    }
    c->n = 0;
}

void go_local_cache_destroy(struct go_local_cache *c)
{
    if (c == NULL)
        return;
    lc_clear(c);
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static size_t lc_hash(const struct go_local_cache *c, const char *key)
{
    uint32_t h = 2166136261u;
    for (const char *p = key; *p; p++) {
        h ^= (uint8_t)*p;
        h *= 16777619u;
    }
    return h % c->nbuckets;
}

bool go_local_cache_get(struct go_local_cache *c, const char *key, void *val, size_t vlen)
{
    bool hit = false;
    if (strlen(key) >= sizeof(((struct lc_entry *)0)->key))
        return false;
    int64_t now = lst_mono_ms();
    pthread_mutex_lock(&c->lock);
    for (struct lc_entry *e = c->buckets[lc_hash(c, key)]; e != NULL; e = e->next) {
        if (strcmp(e->key, key) == 0 && e->vlen == vlen && e->expires > now) {
            memcpy(val, e->val, vlen);
            hit = true;
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void go_local_cache_put(struct go_local_cache *c, const char *key, const void *val, size_t vlen,
                        int64_t ttl_ms)
{
    if (ttl_ms <= 0 || vlen > sizeof(((struct lc_entry *)0)->val) ||
        strlen(key) >= sizeof(((struct lc_entry *)0)->key))
        return;
    pthread_mutex_lock(&c->lock);
    size_t b = lc_hash(c, key);
    struct lc_entry *e = c->buckets[b];
    while (e != NULL && strcmp(e->key, key) != 0)
        e = e->next;
    if (e == NULL) {
        if (c->n >= c->capacity)
            lc_clear(c); /* simple and bounded; the Redis layer refills it */
        e = calloc(1, sizeof(*e));
        if (e != NULL) {
            snprintf(e->key, sizeof(e->key), "%s", key);
            e->next = c->buckets[b];
            c->buckets[b] = e;
            c->n++;
        }
    }
    if (e != NULL) {
        memcpy(e->val, val, vlen);
        e->vlen = vlen;
        e->expires = lst_mono_ms() + ttl_ms;
    }
    pthread_mutex_unlock(&c->lock);
}

/* ---- steps ---- */

void go_step_fail(struct go_step *st, enum lst_gateway_outcome oc, const char *code,
                  const char *fmt, ...)
{
    va_list ap;
    st->outcome = oc;
    snprintf(st->code, sizeof(st->code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(st->reason, sizeof(st->reason), fmt, ap);
    va_end(ap);
}

void go_step_from_result(struct go_step *st, const struct lst_gateway_result *res, const char *what)
{
    st->outcome = res->outcome;
    st->http_status = res->http_status;
    st->in_doubt = st->in_doubt || res->in_doubt;
    st->retry_after_ms = res->retry_after_ms;
    if (res->outcome == LST_GATEWAY_OK)
        return;
    if (res->http_status > 0)
        snprintf(st->code, sizeof(st->code), "http_%ld", res->http_status);
    else
        snprintf(st->code, sizeof(st->code), "%s",
                 res->err == LST_ERR_TIMEOUT ? "timeout" : "rejected");
    snprintf(st->reason, sizeof(st->reason), "%s: %s", what, res->reason);
}

static void redis_failed(struct go_lane *l, struct go_step *st, const char *what)
{
    char why[128];
    lst_redis_last_error(l->redis, why, sizeof(why));
    go_step_fail(st, LST_GATEWAY_RETRY, "redis", "%s: redis unavailable: %s", what, why);
}

/* GET key into out (NUL-terminated, cap bytes). 1 hit, 0 miss, -1 Redis failure. */
static int redis_get(struct go_lane *l, const char *key, char *out, size_t cap)
{
    redisReply *r = NULL;
    const char *argv[] = {"GET", key};
    lst_err err = lst_redis_cmd(l->redis, &r, 2, argv, NULL);
    int result = -1;
    if (err == LST_OK) {
        result = 0;
        if (r->type == REDIS_REPLY_STRING && r->len < cap) {
            memcpy(out, r->str, r->len);
            out[r->len] = '\0';
            result = 1;
        }
    }
    if (r != NULL)
        freeReplyObject(r);
    return result;
}

static lst_err redis_set_px(struct go_lane *l, const char *key, const char *val, int64_t ttl_ms)
{
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_ms);
    const char *argv[] = {"SET", key, val, "PX", ttl};
    return lst_redis_cmd(l->redis, NULL, 5, argv, NULL);
}

/* ---- Threema ID ---- */

/* The in-process entry of a lookup: the ID (9 bytes with the NUL). Only found IDs are kept:
 * "not found" expires by LST_GATEWAY_OUT_NEGATIVE_TTL_MS in Redis, and a driver who has just
 * registered must not wait for the local layer too. */
static void local_key(bool phone, const char *hash, char out[72])
{
    snprintf(out, 72, "%s:%s", phone ? "p" : "e", hash);
}

static void local_put(const struct gateway_out *ctx, bool phone, const char *hash, const char *val)
{
    char lk[72], v[9] = {0};
    local_key(phone, hash, lk);
    snprintf(v, sizeof(v), "%s", val);
    go_local_cache_put(ctx->lk_cache, lk, v, sizeof(v), ctx->cfg.local_ttl_ms);
}

/* 1 found (id filled), -1 not in the in-process layer. */
static int local_lookup(struct gateway_out *ctx, bool phone, const char *hash, char id[9])
{
    char lk[72], v[9];
    local_key(phone, hash, lk);
    if (!go_local_cache_get(ctx->lk_cache, lk, v, sizeof(v)) || v[8] != '\0')
        return -1;
    lst_counter_inc(ctx->m.lookup_local);
    memcpy(id, v, 9);
    return 1;
}

bool go_resolve_id_local(struct gateway_out *ctx, const struct lst_outbound *o, char id[9])
{
    char hash[LST_THREEMA_HASH_HEX + 1];
    if (o->to.threema_id != NULL) {
        snprintf(id, 9, "%s", o->to.threema_id);
        return true;
    }
    /* Phone first, as go_resolve_id: only when there is no phone does the e-mail decide. */
    if (o->to.phone != NULL)
        return lst_threema_hash_phone(o->to.phone, hash) == LST_OK &&
               local_lookup(ctx, true, hash, id) == 1;
    return o->to.email != NULL && lst_threema_hash_email(o->to.email, hash) == LST_OK &&
           local_lookup(ctx, false, hash, id) == 1;
}

/* Looks one hash up: 1 found (id filled), 0 not found, -1 st holds a failure. */
static int lookup_hash(struct go_lane *l, bool phone, const char *hash, char id[9],
                       const atomic_bool *cancel, struct go_step *st)
{
    struct gateway_out *ctx = l->ctx;
    char key[160], val[16];
    int local = local_lookup(ctx, phone, hash, id);
    if (local >= 0)
        return local;
    snprintf(key, sizeof(key), "%slk:%s:%s", ctx->cfg.key_prefix, phone ? "phone" : "email", hash);
    int hit = redis_get(l, key, val, sizeof(val));
    if (hit < 0) {
        redis_failed(l, st, "lookup cache");
        return -1;
    }
    if (hit == 1) {
        go_metrics_cache(ctx->svc->metrics, "lookup", "hit");
        if (strlen(val) == 8)
            local_put(ctx, phone, hash, val);
        if (strcmp(val, "-") == 0)
            return 0;
        if (strlen(val) == 8) {
            memcpy(id, val, 9);
            return 1;
        }
    }
    go_metrics_cache(ctx->svc->metrics, "lookup", "miss");
    if (!go_lane_gateway_call(l, cancel)) {
        go_step_fail(st, LST_GATEWAY_RETRY, "abandoned", "abandoned");
        return -1;
    }
    struct lst_gateway_result res;
    enum lst_gateway_outcome oc = lst_gateway_lookup(
        l->gw, phone ? LST_GATEWAY_LOOKUP_PHONE_HASH : LST_GATEWAY_LOOKUP_EMAIL_HASH, hash, id,
        &res);
    if (oc == LST_GATEWAY_OK) {
        redis_set_px(l, key, id, ctx->cfg.cache_ttl_ms);
        local_put(ctx, phone, hash, id);
        return 1;
    }
    if (oc == LST_GATEWAY_PERMANENT && res.http_status == 404) {
        redis_set_px(l, key, "-", ctx->cfg.negative_ttl_ms);
        return 0; /* not kept in-process: the negative TTL is Redis's to keep */
    }
    go_step_from_result(st, &res, phone ? "lookup by phone" : "lookup by e-mail");
    return -1;
}

void go_resolve_id(struct go_lane *l, const struct lst_outbound *o, char id[9], struct go_step *st)
{
    char hash[LST_THREEMA_HASH_HEX + 1];
    st->outcome = LST_GATEWAY_OK;
    if (o->to.threema_id != NULL) {
        snprintf(id, 9, "%s", o->to.threema_id);
        return;
    }
    /* Phone first, then e-mail: a driver may have registered Threema with either. */
    if (o->to.phone != NULL) {
        if (lst_threema_hash_phone(o->to.phone, hash) != LST_OK) {
            go_step_fail(st, LST_GATEWAY_PERMANENT, "invalid_recipient", "phone not usable");
            return;
        }
        int r = lookup_hash(l, true, hash, id, NULL, st);
        if (r != 0)
            return;
    }
    if (o->to.email != NULL) {
        if (lst_threema_hash_email(o->to.email, hash) != LST_OK) {
            go_step_fail(st, LST_GATEWAY_PERMANENT, "invalid_recipient", "e-mail not usable");
            return;
        }
        int r = lookup_hash(l, false, hash, id, NULL, st);
        if (r != 0)
            return;
    }
    go_step_fail(st, LST_GATEWAY_PERMANENT, "lookup_not_found",
                 "no Threema ID is registered for the recipient's %s",
                 o->to.phone && o->to.email ? "phone number or e-mail address"
                 : o->to.phone              ? "phone number"
                                            : "e-mail address");
}

/* ---- public key ---- */

static void key_changed(struct go_lane *l, const char *id, struct go_step *st)
{
    lst_counter_inc(l->ctx->m.key_changed);
    LST_ERROR("gateway_out.public_key_changed",
              "the Gateway returned another public key for %s than the one first seen; "
              "sends to it fail until an operator checks and deletes %spkfirst:%s",
              id, l->ctx->cfg.key_prefix, id);
    go_step_fail(st, LST_GATEWAY_PERMANENT, "public_key_changed",
                 "public key changed: the Gateway's key for %s differs from the first one seen",
                 id);
}

static void fetch_pubkey(struct go_lane *l, const char *id, const char *key,
                         uint8_t pk[LST_THREEMA_KEY_SIZE], struct go_step *st)
{
    struct gateway_out *ctx = l->ctx;
    char hex[LST_GATEWAY_KEY_HEX + 1], first[160], ttl[24];
    struct lst_gateway_result res;
    go_metrics_cache(ctx->svc->metrics, "pubkey", "miss");
    if (!go_lane_gateway_call(l, NULL)) {
        go_step_fail(st, LST_GATEWAY_RETRY, "abandoned", "abandoned");
        return;
    }
    if (lst_gateway_pubkey(l->gw, id, hex, &res) != LST_GATEWAY_OK) {
        go_step_from_result(st, &res, "public key");
        if (res.http_status == 404)
            snprintf(st->reason, sizeof(st->reason), "unknown Threema ID %s (404)", id);
        return;
    }
    snprintf(first, sizeof(first), "%spkfirst:%s", ctx->cfg.key_prefix, id);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)ctx->cfg.cache_ttl_ms);
    const char *argv[] = {key, first, hex, ttl};
    redisReply *r = NULL;
    lst_err err = lst_redis_script_call(l->redis, ctx->s_pk, &r, 2, 4, argv, NULL);
    bool same = err == LST_OK && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r != NULL)
        freeReplyObject(r);
    if (err != LST_OK) {
        redis_failed(l, st, "public key cache");
        return;
    }
    if (!same) {
        key_changed(l, id, st);
        return;
    }
    if (lst_threema_hex_decode(hex, LST_GATEWAY_KEY_HEX, pk, LST_THREEMA_KEY_SIZE) != LST_OK)
        go_step_fail(st, LST_GATEWAY_RETRY, "bad_key", "malformed public key from the Gateway");
}

bool go_resolve_pubkey_local(struct gateway_out *ctx, const char *id,
                             uint8_t pk[LST_THREEMA_KEY_SIZE])
{
    if (!go_local_cache_get(ctx->pk_cache, id, pk, LST_THREEMA_KEY_SIZE))
        return false;
    lst_counter_inc(ctx->m.pubkey_local);
    return true;
}

void go_resolve_pubkey(struct go_lane *l, const char *id, uint8_t pk[LST_THREEMA_KEY_SIZE],
                       struct go_step *st)
{
    struct gateway_out *ctx = l->ctx;
    char key[160], hex[LST_GATEWAY_KEY_HEX + 2];
    st->outcome = LST_GATEWAY_OK;
    if (go_resolve_pubkey_local(ctx, id, pk))
        return;
    snprintf(key, sizeof(key), "%spk:%s", ctx->cfg.key_prefix, id);
    int hit = redis_get(l, key, hex, sizeof(hex));
    if (hit < 0) {
        redis_failed(l, st, "public key cache");
        return;
    }
    if (hit == 1 && lst_threema_hex_decode(hex, strlen(hex), pk, LST_THREEMA_KEY_SIZE) == LST_OK) {
        go_metrics_cache(ctx->svc->metrics, "pubkey", "hit");
    } else {
        fetch_pubkey(l, id, key, pk, st);
        if (st->outcome != LST_GATEWAY_OK)
            return;
    }
    go_local_cache_put(ctx->pk_cache, id, pk, LST_THREEMA_KEY_SIZE, ctx->cfg.local_ttl_ms);
}

/* ---- capabilities ---- */

void go_resolve_caps(struct go_lane *l, const char *id, uint32_t *mask, struct go_step *st)
{
    struct gateway_out *ctx = l->ctx;
    char key[160], val[24], sval[24];
    int64_t v;
    st->outcome = LST_GATEWAY_OK;
    if (go_local_cache_get(ctx->cap_cache, id, mask, sizeof(*mask))) {
        go_metrics_cache(ctx->svc->metrics, "capabilities", "hit_local");
        return;
    }
    snprintf(key, sizeof(key), "%scap:%s", ctx->cfg.key_prefix, id);
    int hit = redis_get(l, key, val, sizeof(val));
    if (hit < 0) {
        redis_failed(l, st, "capability cache");
        return;
    }
    if (hit == 1 && lst_parse_i64(val, 0, UINT32_MAX, &v) == LST_OK) {
        go_metrics_cache(ctx->svc->metrics, "capabilities", "hit");
        *mask = (uint32_t)v;
    } else {
        struct lst_gateway_caps caps;
        struct lst_gateway_result res;
        go_metrics_cache(ctx->svc->metrics, "capabilities", "miss");
        if (!go_lane_gateway_call(l, NULL)) {
            go_step_fail(st, LST_GATEWAY_RETRY, "abandoned", "abandoned");
            return;
        }
        if (lst_gateway_capabilities(l->gw, id, &caps, &res) != LST_GATEWAY_OK) {
            go_step_from_result(st, &res, "capabilities");
            return;
        }
        *mask = caps.mask;
        snprintf(sval, sizeof(sval), "%u", (unsigned)caps.mask);
        redis_set_px(l, key, sval, ctx->cfg.cache_ttl_ms);
    }
    go_local_cache_put(ctx->cap_cache, id, mask, sizeof(*mask), ctx->cfg.local_ttl_ms);
}
