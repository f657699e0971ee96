/* File and image messages. The bytes come from the company blob store (content.blob is their
 * sha256); they are encrypted with crypto_secretbox under a fresh key and uploaded with
 * persist=1 once per message: the Gateway blob ID and the key are remembered in Redis under
 * <prefix>blob:<message_id>:<sha256> (TTL LST_GATEWAY_OUT_CACHE_TTL_MS), so every other
 * recipient of the same message reuses them. Two lanes or workers that miss at the same moment
 * both upload; SET NX decides whose upload is used by everyone, the other one is wasted (one
 * credit). Images go as a file message with rendering 1 (media), as the apps expect. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_out.h"
#include "lst/log.h"

/* "<blob id>:<key hex>:<thumbnail blob id or ->" */
#define CACHED_MAX (LST_THREEMA_BLOB_ID_HEX + 1 + LST_THREEMA_KEY_HEX + 1 + LST_THREEMA_BLOB_ID_HEX)

struct uploaded {
    char blob_id[LST_THREEMA_BLOB_ID_HEX + 1];
    uint8_t key[LST_THREEMA_KEY_SIZE];
    char thumb_id[LST_THREEMA_BLOB_ID_HEX + 1]; /* "" when none */
};

static bool parse_cached(const char *s, size_t len, struct uploaded *u)
{
    if (len < LST_THREEMA_BLOB_ID_HEX + 1 + LST_THREEMA_KEY_HEX + 2 ||
        s[LST_THREEMA_BLOB_ID_HEX] != ':' ||
        s[LST_THREEMA_BLOB_ID_HEX + 1 + LST_THREEMA_KEY_HEX] != ':')
        return false;
    memcpy(u->blob_id, s, LST_THREEMA_BLOB_ID_HEX);
    u->blob_id[LST_THREEMA_BLOB_ID_HEX] = '\0';
    if (lst_threema_hex_decode(s + LST_THREEMA_BLOB_ID_HEX + 1, LST_THREEMA_KEY_HEX, u->key,
                               sizeof(u->key)) != LST_OK)
        return false;
    const char *t = s + LST_THREEMA_BLOB_ID_HEX + 1 + LST_THREEMA_KEY_HEX + 1;
    size_t tl = len - (size_t)(t - s);
    if (tl == LST_THREEMA_BLOB_ID_HEX) {
        memcpy(u->thumb_id, t, tl);
        u->thumb_id[tl] = '\0';
    } else {
        u->thumb_id[0] = '\0';
    }
    return true;
}

static void format_cached(const struct uploaded *u, char out[CACHED_MAX + 1])
{
    char keyhex[LST_THREEMA_KEY_HEX + 1];
    lst_threema_hex_encode(u->key, sizeof(u->key), keyhex, sizeof(keyhex));
    snprintf(out, CACHED_MAX + 1, "%s:%s:%s", u->blob_id, keyhex,
             u->thumb_id[0] ? u->thumb_id : "-");
    lst_threema_wipe(keyhex, sizeof(keyhex));
}

/* SET NX the upload, or take the one another lane stored first. 1 ours/theirs in u, -1 Redis. */
static int remember(struct go_lane *l, const char *key, struct uploaded *u)
{
    char val[CACHED_MAX + 1], ttl[24];
    redisReply *r = NULL;
    format_cached(u, val);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)l->ctx->cfg.cache_ttl_ms);
    const char *argv[] = {"SET", key, val, "NX", "PX", ttl, "GET"};
    /* SET ... NX GET needs Redis 7.0: answers the old value when there was one. */
    lst_err err = lst_redis_cmd(l->redis, &r, 7, argv, NULL);
    lst_threema_wipe(val, sizeof(val));
    int result = -1;
    if (err == LST_OK) {
        result = 1;
        if (r->type == REDIS_REPLY_STRING && !parse_cached(r->str, r->len, u))
            result = -1;
    }
    if (r != NULL)
        freeReplyObject(r);
    return result;
}

/* Reads, encrypts and uploads one blob of the company store. */
static void upload(struct go_lane *l, const char *ref, enum lst_threema_blob_kind kind,
                   const uint8_t key[LST_THREEMA_KEY_SIZE], const atomic_bool *cancel,
                   char blob_id[LST_THREEMA_BLOB_ID_HEX + 1], struct go_step *st)
{
    struct gateway_out *ctx = l->ctx;
    struct lst_buf plain, box;
    struct lst_gateway_result res;
    lst_buf_init(&plain);
    lst_buf_init(&box);
    lst_err err = lst_blobstore_get(ctx->blobs, ref, (size_t)ctx->cfg.gw.max_blob, &plain);
    if (err == LST_ERR_NOT_FOUND || err == LST_ERR_INVALID || err == LST_ERR_CRYPTO) {
        go_step_fail(st, LST_GATEWAY_PERMANENT, "blob_missing",
                     "%s %s is not in the blob store (%s)",
                     kind == LST_THREEMA_BLOB_FILE ? "file" : "thumbnail", ref, lst_err_name(err));
    } else if (err == LST_ERR_TOO_LARGE) {
        go_step_fail(st, LST_GATEWAY_PERMANENT, "blob_too_large",
                     "file larger than LST_GATEWAY_MAX_BLOB (%lld bytes)",
                     (long long)ctx->cfg.gw.max_blob);
    } else if (err != LST_OK) {
        go_step_fail(st, LST_GATEWAY_RETRY, "blob_store", "blob store: %s", lst_strerror(err));
    } else if (lst_threema_blob_encrypt(key, kind, (const uint8_t *)plain.data, plain.len, &box) !=
               LST_OK) {
        go_step_fail(st, LST_GATEWAY_PERMANENT, "encrypt_failed", "could not encrypt the file");
    } else if (!go_lane_gateway_call(l, cancel)) {
        go_step_fail(st, LST_GATEWAY_RETRY, "abandoned", "abandoned");
    } else {
        lst_gateway_upload_blob(l->gw, box.data, box.len, true, blob_id, &res);
        go_step_from_result(st, &res, "upload_blob");
    }
    lst_buf_cleanup(&plain);
    lst_buf_cleanup(&box);
}

/* Reads the cached upload of key: 1 hit (u filled), 0 miss, -1 Redis failure. */
static int cached(struct go_lane *l, const char *key, struct uploaded *u)
{
    redisReply *r = NULL;
    const char *argv[] = {"GET", key};
    lst_err err = lst_redis_cmd(l->redis, &r, 2, argv, NULL);
    int result = err == LST_OK ? 0 : -1;
    if (err == LST_OK && r->type == REDIS_REPLY_STRING && parse_cached(r->str, r->len, u))
        result = 1;
    if (r != NULL)
        freeReplyObject(r);
    return result;
}

/* The upload lock of a message's blob: one lane of one worker uploads, the others wait for
 * its result, so a fan-out costs one upload. The lock expires (a crashed uploader must not
 * block the message for good); a lane that waited that long uploads itself. */
static int lock_upload(struct go_lane *l, const char *key)
{
    char lock[300];
    snprintf(lock, sizeof(lock), "%s:lock", key);
    const char *argv[] = {"SET", lock, "1", "NX", "PX", "30000"};
    redisReply *r = NULL;
    lst_err err = lst_redis_cmd(l->redis, &r, 6, argv, NULL);
    int result = err == LST_OK ? (r->type == REDIS_REPLY_STATUS ? 1 : 0) : -1;
    if (r != NULL)
        freeReplyObject(r);
    return result;
}

static void unlock_upload(struct go_lane *l, const char *key)
{
    char lock[300];
    snprintf(lock, sizeof(lock), "%s:lock", key);
    const char *argv[] = {"DEL", lock};
    lst_redis_cmd(l->redis, NULL, 2, argv, NULL);
}

static void do_upload(struct go_lane *l, const char *key, const struct lst_content *c,
                      const atomic_bool *cancel, struct uploaded *u, struct go_step *st)
{
    lst_threema_blob_keygen(u->key);
    u->thumb_id[0] = '\0';
    upload(l, c->blob, LST_THREEMA_BLOB_FILE, u->key, cancel, u->blob_id, st);
    if (st->outcome == LST_GATEWAY_OK && c->thumbnail_blob != NULL)
        upload(l, c->thumbnail_blob, LST_THREEMA_BLOB_THUMBNAIL, u->key, cancel, u->thumb_id, st);
    if (st->outcome == LST_GATEWAY_OK && remember(l, key, u) < 0)
        go_step_fail(st, LST_GATEWAY_RETRY, "redis", "blob cache: redis unavailable");
}

static void get_upload(struct go_lane *l, const char *message_id, const struct lst_content *c,
                       const atomic_bool *cancel, struct uploaded *u, struct go_step *st)
{
    char key[256];
    snprintf(key, sizeof(key), "%sblob:%s:%s", l->ctx->cfg.key_prefix, message_id, c->blob);
    int64_t give_up = lst_mono_ms() + 35000;
    bool counted = false;
    for (;;) {
        int hit = cached(l, key, u);
        if (hit < 0) {
            go_step_fail(st, LST_GATEWAY_RETRY, "redis", "blob cache: redis unavailable");
            return;
        }
        if (hit == 1) {
            go_metrics_cache(l->ctx->svc->metrics, "blob", counted ? "hit_waited" : "hit");
            return;
        }
        int locked = lock_upload(l, key);
        if (locked < 0) {
            go_step_fail(st, LST_GATEWAY_RETRY, "redis", "blob cache: redis unavailable");
            return;
        }
        /* The lock may have been free because another lane just finished its upload and
         * released it: look again before uploading, or the fan-out pays twice. */
        if (locked == 1 && cached(l, key, u) == 1) {
            unlock_upload(l, key);
            go_metrics_cache(l->ctx->svc->metrics, "blob", "hit_waited");
            return;
        }
        if (locked == 1 || lst_mono_ms() > give_up) {
            go_metrics_cache(l->ctx->svc->metrics, "blob", "miss");
            do_upload(l, key, c, cancel, u, st);
            if (locked == 1)
                unlock_upload(l, key);
            return;
        }
        counted = true;
        if (cancel != NULL && atomic_load(cancel)) {
            go_step_fail(st, LST_GATEWAY_RETRY, "abandoned", "abandoned");
            return;
        }
        lst_sleep_ms(20, NULL); /* another lane uploads: wait for its result */
    }
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? lst_strdup(s) : NULL;
}

void go_files_prepare(struct go_lane *l, const char *message_id, const struct lst_content *c,
                      const atomic_bool *cancel, struct lst_threema_msg *m, struct go_step *st)
{
    struct uploaded u;
    st->outcome = LST_GATEWAY_OK;
    get_upload(l, message_id, c, cancel, &u, st);
    if (st->outcome != LST_GATEWAY_OK) {
        lst_threema_wipe(&u, sizeof(u));
        return;
    }
    lst_threema_msg_cleanup(m);
    m->kind = LST_THREEMA_MSG_FILE;
    struct lst_threema_file *f = &m->file;
    memcpy(f->blob_id, u.blob_id, sizeof(f->blob_id));
    memcpy(f->key, u.key, sizeof(f->key));
    memcpy(f->thumbnail_blob_id, u.thumb_id, sizeof(f->thumbnail_blob_id));
    f->mime = dup_or_null(c->mime);
    f->size = c->size;
    f->name = dup_or_null(c->filename);
    f->caption = dup_or_null(c->caption);
    if (u.thumb_id[0] != '\0')
        f->thumbnail_mime = dup_or_null(c->thumbnail_mime ? c->thumbnail_mime : "image/jpeg");
    f->has_rendering = true;
    f->rendering = c->kind == LST_CONTENT_IMAGE ? 1 : 0;
    f->has_legacy = true;
    f->legacy = f->rendering == 1 ? 1 : 0;
    lst_threema_wipe(&u, sizeof(u));
    if (f->mime == NULL || (c->filename && !f->name) || (c->caption && !f->caption))
        go_step_fail(st, LST_GATEWAY_RETRY, "nomem", "out of memory");
}
