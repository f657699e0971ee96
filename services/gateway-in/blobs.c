/* Files and images a phone sent: the Gateway holds the encrypted blob; we download it,
 * decrypt it, check its size and keep the plaintext in the company blob store. Kafka only
 * ever sees the blob store reference.
 *
 * Outcomes: OK (stored, ref set); RETRY when trying again may work (the Gateway unreachable
 * or refusing us, the blob store unwritable): the callback is answered 503 and the Gateway
 * retries; PERMANENT when it never will (the blob expired or is unknown, too large, does not
 * decrypt, does not match its declared size): the message is recorded with blob_error. */
#include <string.h>

#include "lst/log.h"
#include "gateway_in.h"

static enum gwin_fetch download(struct gateway_in *ctx, const char *blob_id, struct lst_buf *out,
                                struct lst_buf *why)
{
    struct lst_gateway_result res;
    if (!gwin_rate_admit(ctx, "blob download", why))
        return GWIN_FETCH_RETRY;
    struct lst_gateway *gw = gwin_pool_take(ctx->clients);
    enum lst_gateway_outcome o = lst_gateway_download_blob(gw, blob_id, out, &res);
    gwin_pool_give(ctx->clients, gw);
    gwin_rate_note(ctx, &res);
    if (o == LST_GATEWAY_OK)
        return GWIN_FETCH_OK;
    lst_buf_reset(why);
    lst_buf_printf(why, "blob download: %s (%s)", lst_gateway_outcome_name(o), res.reason);
    if (o == LST_GATEWAY_PERMANENT)
        return GWIN_FETCH_PERMANENT;
    if (o == LST_GATEWAY_FATAL)
        LST_ERROR("gateway_in.gateway_fatal",
                  "the Gateway refuses us (%s): check "
                  "LST_GATEWAY_URL, LST_GATEWAY_ID and LST_GATEWAY_SECRET",
                  res.reason);
    else
        LST_WARN("gateway_in.blob_unavailable", "blob download: %s", res.reason);
    return GWIN_FETCH_RETRY;
}

static enum gwin_fetch store(struct gateway_in *ctx, const struct lst_buf *plain, const char *mime,
                             const char *filename, char ref[LST_BLOBSTORE_REF_HEX + 1],
                             struct lst_buf *why)
{
    struct lst_blob_desc desc = {.mime = mime, .filename = filename, .source = "gateway-in"};
    lst_err err = lst_blobstore_put(ctx->blobs, plain->data != NULL ? plain->data : "", plain->len,
                                    &desc, ref);
    if (err == LST_ERR_INVALID) {
        /* A name or type the store will not keep (not UTF-8, too long): keep the bytes. */
        desc.filename = NULL;
        desc.mime = "application/octet-stream";
        err = lst_blobstore_put(ctx->blobs, plain->data != NULL ? plain->data : "", plain->len,
                                &desc, ref);
    }
    if (err != LST_OK) {
        lst_buf_reset(why);
        lst_buf_printf(why, "blob store: %s", lst_strerror(err));
        return GWIN_FETCH_RETRY;
    }
    lst_counter_add(ctx->m.blob_bytes, plain->len);
    lst_counter_inc(ctx->m.blobs_stored);
    return GWIN_FETCH_OK;
}

/* Counts a blob that can never be stored; why is filled by the caller's lst_buf_printf. */
static enum gwin_fetch permanent(struct gateway_in *ctx, struct lst_buf *why)
{
    lst_counter_inc(ctx->m.blobs_failed);
    lst_buf_reset(why);
    return GWIN_FETCH_PERMANENT;
}

static void wipe(struct lst_buf *b)
{
    if (b->data != NULL)
        lst_threema_wipe(b->data, b->len);
}

enum gwin_fetch gwin_blob_file(struct gateway_in *ctx, const char *blob_id,
                               const uint8_t key[LST_THREEMA_KEY_SIZE],
                               enum lst_threema_blob_kind kind, int64_t declared_size,
                               const char *mime, const char *filename,
                               char ref[LST_BLOBSTORE_REF_HEX + 1], struct lst_buf *why)
{
    struct lst_buf box, plain;
    lst_buf_init(&box);
    lst_buf_init(&plain);
    enum gwin_fetch f;
    if (declared_size > ctx->cfg.file_max) {
        f = permanent(ctx, why);
        lst_buf_printf(why, "declared size %lld above the limit of %lld bytes",
                       (long long)declared_size, (long long)ctx->cfg.file_max);
        goto out;
    }
    f = download(ctx, blob_id, &box, why);
    if (f == GWIN_FETCH_PERMANENT)
        lst_counter_inc(ctx->m.blobs_failed);
    if (f != GWIN_FETCH_OK)
        goto out;
    if (lst_threema_blob_decrypt(key, kind, (const uint8_t *)box.data, box.len, &plain) != LST_OK) {
        f = permanent(ctx, why);
        lst_buf_printf(why, "blob does not decrypt with the message's key (%zu bytes)", box.len);
    } else if (declared_size >= 0 && (int64_t)plain.len != declared_size) {
        f = permanent(ctx, why);
        lst_buf_printf(why, "blob has %zu bytes, the message declared %lld", plain.len,
                       (long long)declared_size);
    } else if ((int64_t)plain.len > ctx->cfg.file_max) {
        f = permanent(ctx, why);
        lst_buf_printf(why, "blob of %zu bytes above the limit of %lld bytes", plain.len,
                       (long long)ctx->cfg.file_max);
    } else {
        f = store(ctx, &plain, mime, filename, ref, why);
    }
out:
    wipe(&plain);
    lst_buf_cleanup(&box);
    lst_buf_cleanup(&plain);
    return f;
}

enum gwin_fetch gwin_blob_image(struct gateway_in *ctx, const struct lst_threema_shared *shared,
                                const struct lst_threema_image *img,
                                char ref[LST_BLOBSTORE_REF_HEX + 1], struct lst_buf *why)
{
    struct lst_buf box, plain;
    lst_buf_init(&box);
    lst_buf_init(&plain);
    enum gwin_fetch f;
    if ((int64_t)img->size > ctx->cfg.file_max) {
        f = permanent(ctx, why);
        lst_buf_printf(why, "declared size %lld above the limit of %lld bytes",
                       (long long)img->size, (long long)ctx->cfg.file_max);
        goto out;
    }
    f = download(ctx, img->blob_id, &box, why);
    if (f == GWIN_FETCH_PERMANENT)
        lst_counter_inc(ctx->m.blobs_failed);
    if (f != GWIN_FETCH_OK)
        goto out;
    if (lst_threema_decrypt(shared, img->nonce, (const uint8_t *)box.data, box.len, &plain) !=
        LST_OK) {
        f = permanent(ctx, why);
        lst_buf_printf(why, "image blob does not decrypt (%zu bytes)", box.len);
    } else if ((int64_t)plain.len != (int64_t)img->size) {
        f = permanent(ctx, why);
        lst_buf_printf(why, "image blob has %zu bytes, the message declared %lu", plain.len,
                       (unsigned long)img->size);
    } else {
        /* Legacy image messages carry no MIME type; the apps always sent JPEG. */
        f = store(ctx, &plain, "image/jpeg", NULL, ref, why);
    }
out:
    wipe(&plain);
    lst_buf_cleanup(&box);
    lst_buf_cleanup(&plain);
    return f;
}
