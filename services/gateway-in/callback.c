/* The callback route. One request, in this order:
 *
 *   1. verify   the form is complete and the MAC is right (constant time), before anything
 *               else is looked at: a bad MAC is 401, a form too broken to check is 400;
 *   2. parse    field formats. The MAC is right, so the Gateway sent this: a bad field can
 *               never get better, so it is dead-lettered and answered 200 (a 4xx would only
 *               make the Gateway retry three times and then drop it unseen);
 *   3. dedupe   claim (from, messageId) in Redis: done already -> 200, in progress -> 503;
 *   4. open     the sender's public key (cached), the shared key (keycache), decrypt, unpad,
 *               decode; what never opens or decodes is dead-lettered (200);
 *   5. act      blobs into the blob store, the lst.inbound record built and produced with a
 *               wait for Kafka's ack;
 *   6. respond  200 only after the ack (or the dead letter's ack); 503 when Kafka, the blob
 *               store or the Gateway is unavailable, so the Gateway retries.
 *
 * Logs carry event IDs (Threema IDs and message IDs) and reasons, never texts, file names,
 * phone numbers or the secret. */
#include <stdio.h>
#include <string.h>

#include "lst/log.h"
#include "gateway_in.h"

#define NICKNAME_MAX LST_NAME_MAX

/* A copy of the longest prefix of s with at most max bytes that does not end inside a UTF-8
 * sequence (phones may send names and captions above the record's limits: keep what fits). */
static char *clip(const char *s, size_t max)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    struct lst_buf b;
    lst_buf_init(&b);
    lst_buf_append(&b, s, n);
    if (b.data == NULL)
        lst_buf_append(&b, "", 0);
    return lst_buf_steal(&b);
}

/* ---- dead letters ---- */

static enum gwin_result dead_letter(struct gateway_in *ctx, struct gwin_call *c, const char *key,
                                    lst_err err)
{
    const char *reason = c->why.len > 0 ? c->why.data : lst_strerror(err);
    lst_err perr = gwin_publish_dlq(ctx, key, c->body, c->body_len, err, reason);
    LST_WARN("gateway_in.dead_letter", "callback %s not processable (%s): %s",
             c->event_id[0] != '\0' ? c->event_id : "-", lst_err_name(err), reason);
    return perr == LST_OK ? GWIN_DLQ : GWIN_UNAVAILABLE;
}

/* ---- open: key, decrypt, decode ---- */

static lst_err try_open(struct gateway_in *ctx, struct gwin_call *c, const uint8_t pk[])
{
    lst_threema_shared_cleanup(&c->shared);
    lst_threema_msg_cleanup(&c->msg);
    lst_err err = lst_threema_keycache_get(ctx->keys, pk, &c->shared);
    if (err != LST_OK) {
        lst_buf_reset(&c->why);
        lst_buf_puts(&c->why, "the sender's public key is unusable");
        return err;
    }
    return lst_threema_msg_open(&c->shared, c->cb.nonce, c->cb.box, c->cb.box_len, &c->msg,
                                &c->why);
}

static enum gwin_result open_box(struct gateway_in *ctx, struct gwin_call *c)
{
    uint8_t pk[LST_THREEMA_KEY_SIZE];
    bool cached = false;
    enum gwin_fetch f = gwin_pubkey_get(ctx, c->cb.from, false, pk, &cached, &c->why);
    if (f == GWIN_FETCH_RETRY)
        return GWIN_UNAVAILABLE;
    if (f == GWIN_FETCH_PERMANENT)
        return dead_letter(ctx, c, c->cb.from, LST_ERR_NOT_FOUND);
    lst_err err = try_open(ctx, c, pk);
    if (err == LST_ERR_CRYPTO && cached) {
        /* Perhaps a stale cached key: ask the Gateway once before giving up. */
        f = gwin_pubkey_get(ctx, c->cb.from, true, pk, &cached, &c->why);
        if (f == GWIN_FETCH_RETRY)
            return GWIN_UNAVAILABLE;
        if (f == GWIN_FETCH_PERMANENT)
            return dead_letter(ctx, c, c->cb.from, LST_ERR_NOT_FOUND);
        err = try_open(ctx, c, pk);
    }
    if (err == LST_ERR_NOMEM)
        return GWIN_UNAVAILABLE;
    if (err == LST_ERR_CRYPTO) {
        lst_buf_reset(&c->why);
        lst_buf_puts(&c->why, "box does not decrypt with the sender's public key");
    }
    if (err != LST_OK)
        return dead_letter(ctx, c, c->cb.from, err);
    return GWIN_ACCEPTED;
}

/* ---- act: the record ---- */

/* File messages with an image type shown as media are images for the dispatcher. */
static bool is_image(const struct lst_threema_file *f)
{
    bool media = f->has_rendering ? f->rendering == 1 : (f->has_legacy && f->legacy == 1);
    return media && strncmp(f->mime, "image/", 6) == 0;
}

/* The thumbnail is a nice-to-have: a permanent failure just leaves it out. */
static enum gwin_result thumbnail(struct gateway_in *ctx, struct gwin_call *c)
{
    const struct lst_threema_file *f = &c->msg.file;
    struct lst_content *ct = &c->rec.content;
    char ref[LST_BLOBSTORE_REF_HEX + 1];
    const char *mime = f->thumbnail_mime != NULL ? f->thumbnail_mime : "image/jpeg";
    enum gwin_fetch fe = gwin_blob_file(ctx, f->thumbnail_blob_id, f->key,
                                        LST_THREEMA_BLOB_THUMBNAIL, -1, mime, NULL, ref, &c->why);
    if (fe == GWIN_FETCH_RETRY)
        return GWIN_UNAVAILABLE;
    if (fe == GWIN_FETCH_PERMANENT) {
        LST_INFO("gateway_in.thumbnail_skipped", "callback %s: thumbnail left out: %s", c->event_id,
                 c->why.data);
        return GWIN_ACCEPTED;
    }
    ct->thumbnail_blob = lst_strdup(ref);
    ct->thumbnail_mime = clip(mime, LST_MIME_MAX);
    return GWIN_ACCEPTED;
}

static enum gwin_result file_content(struct gateway_in *ctx, struct gwin_call *c)
{
    const struct lst_threema_file *f = &c->msg.file;
    struct lst_content *ct = &c->rec.content;
    char ref[LST_BLOBSTORE_REF_HEX + 1];
    ct->kind = is_image(f) ? LST_CONTENT_IMAGE : LST_CONTENT_FILE;
    ct->mime = clip(f->mime, LST_MIME_MAX);
    ct->size = f->size;
    ct->filename = clip(f->name, LST_FILENAME_MAX);
    ct->caption = clip(f->caption, LST_CAPTION_MAX);
    ct->threema_blob_id = lst_strdup(f->blob_id);
    enum gwin_fetch fe = gwin_blob_file(ctx, f->blob_id, f->key, LST_THREEMA_BLOB_FILE, f->size,
                                        ct->mime, ct->filename, ref, &c->why);
    if (fe == GWIN_FETCH_RETRY)
        return GWIN_UNAVAILABLE;
    if (fe == GWIN_FETCH_PERMANENT) {
        LST_WARN("gateway_in.blob_failed", "callback %s: %s", c->event_id, c->why.data);
        ct->blob_error = clip(c->why.data, LST_REASON_MAX);
        return GWIN_ACCEPTED;
    }
    ct->blob = lst_strdup(ref);
    return f->thumbnail_blob_id[0] != '\0' ? thumbnail(ctx, c) : GWIN_ACCEPTED;
}

static enum gwin_result image_content(struct gateway_in *ctx, struct gwin_call *c)
{
    const struct lst_threema_image *img = &c->msg.image;
    struct lst_content *ct = &c->rec.content;
    char ref[LST_BLOBSTORE_REF_HEX + 1];
    ct->kind = LST_CONTENT_IMAGE;
    ct->mime = lst_strdup("image/jpeg");
    ct->size = img->size;
    ct->threema_blob_id = lst_strdup(img->blob_id);
    enum gwin_fetch fe = gwin_blob_image(ctx, &c->shared, img, ref, &c->why);
    if (fe == GWIN_FETCH_RETRY)
        return GWIN_UNAVAILABLE;
    if (fe == GWIN_FETCH_PERMANENT) {
        LST_WARN("gateway_in.blob_failed", "callback %s: %s", c->event_id, c->why.data);
        ct->blob_error = clip(c->why.data, LST_REASON_MAX);
    } else {
        ct->blob = lst_strdup(ref);
    }
    return GWIN_ACCEPTED;
}

static lst_err receipt(struct gwin_call *c)
{
    const struct lst_threema_receipt *r = &c->msg.receipt;
    c->rec.kind = LST_INBOUND_RECEIPT;
    c->rec.receipt.status = r->status;
    for (size_t i = 0; i < r->count; i++) {
        char hex[LST_THREEMA_MSGID_HEX + 1];
        lst_threema_hex_encode(r->ids[i], LST_THREEMA_MSGID_SIZE, hex, sizeof(hex));
        if (lst_strv_push(&c->rec.receipt.message_ids, hex) != LST_OK)
            return LST_ERR_NOMEM;
    }
    return LST_OK;
}

static void location(struct gwin_call *c)
{
    const struct lst_threema_location *l = &c->msg.location;
    struct lst_content *ct = &c->rec.content;
    ct->kind = LST_CONTENT_LOCATION;
    ct->lat = l->lat;
    ct->lon = l->lon;
    ct->has_accuracy = l->has_accuracy && l->accuracy <= LST_ACCURACY_MAX;
    ct->accuracy = l->accuracy;
    ct->name = clip(l->name, LST_NAME_MAX);
    ct->address = clip(l->address, LST_ADDRESS_MAX);
}

static enum gwin_result content(struct gateway_in *ctx, struct gwin_call *c)
{
    struct lst_content *ct = &c->rec.content;
    c->rec.kind = LST_INBOUND_MESSAGE;
    switch (c->msg.kind) {
    case LST_THREEMA_MSG_TEXT:
        ct->kind = LST_CONTENT_TEXT;
        ct->text = lst_strdup(c->msg.text);
        return GWIN_ACCEPTED;
    case LST_THREEMA_MSG_LOCATION:
        location(c);
        return GWIN_ACCEPTED;
    case LST_THREEMA_MSG_FILE:
        return file_content(ctx, c);
    case LST_THREEMA_MSG_IMAGE:
        return image_content(ctx, c);
    case LST_THREEMA_MSG_RECEIPT:
        return receipt(c) == LST_OK ? GWIN_ACCEPTED : GWIN_UNAVAILABLE;
    case LST_THREEMA_MSG_TYPING:
        ct->kind = LST_CONTENT_TYPING;
        ct->typing = c->msg.typing;
        return GWIN_ACCEPTED;
    case LST_THREEMA_MSG_UNSUPPORTED:
    default:
        /* Not lost: recorded with its type byte, so an operator sees what phones send. */
        ct->kind = LST_CONTENT_UNSUPPORTED;
        ct->has_type = true;
        ct->type = c->msg.type;
        return GWIN_ACCEPTED;
    }
}

static enum gwin_result build_record(struct gateway_in *ctx, struct gwin_call *c)
{
    struct lst_inbound *r = &c->rec;
    r->event_id = lst_strdup(c->event_id);
    r->from = lst_strdup(c->cb.from);
    r->to = lst_strdup(c->cb.to);
    r->threema_message_id = lst_strdup(c->cb.message_id);
    r->date = c->cb.date;
    r->received_at = lst_wall_ms();
    r->nickname = c->cb.nickname != NULL && c->cb.nickname[0] != '\0'
                      ? clip(c->cb.nickname, NICKNAME_MAX)
                      : NULL;
    if (r->event_id == NULL || r->from == NULL || r->to == NULL || r->threema_message_id == NULL)
        return GWIN_UNAVAILABLE;
    return content(ctx, c);
}

static enum gwin_result publish(struct gateway_in *ctx, struct gwin_call *c)
{
    bool maybe = false;
    lst_err err = gwin_publish_inbound(ctx, &c->rec, &maybe, &c->why);
    if (err == LST_ERR_INVALID)
        return dead_letter(ctx, c, c->cb.from, err);
    if (err != LST_OK) {
        lst_buf_reset(&c->why);
        lst_buf_printf(&c->why, "Kafka: %s", lst_strerror(err));
        return GWIN_UNAVAILABLE;
    }
    if ((unsigned)c->msg.kind < GWIN_TYPES)
        lst_counter_inc(ctx->m.messages[c->msg.kind]);
    return GWIN_ACCEPTED;
}

/* Steps 4 and 5 for a claimed event. */
static enum gwin_result process(struct gateway_in *ctx, struct gwin_call *c)
{
    enum gwin_result r = open_box(ctx, c);
    if (r == GWIN_ACCEPTED)
        r = build_record(ctx, c);
    if (r == GWIN_ACCEPTED)
        r = publish(ctx, c);
    return r;
}

/* Step 1 on its own, into c->why only when it fails (a parse's reason stays otherwise). */
static enum gwin_result verify(struct gateway_in *ctx, struct gwin_call *c)
{
    struct lst_buf why;
    lst_buf_init(&why);
    lst_err err = lst_threema_callback_verify(c->body, c->body_len, ctx->cfg.gw.secret, &why);
    if (err != LST_OK) {
        lst_buf_reset(&c->why);
        lst_buf_append(&c->why, why.data != NULL ? why.data : "", why.len);
    }
    lst_buf_cleanup(&why);
    if (err == LST_ERR_CRYPTO)
        return GWIN_BAD_MAC;
    return err == LST_OK ? GWIN_ACCEPTED : GWIN_MALFORMED;
}

static bool event_id_of(struct gwin_call *c, lst_err *err)
{
    struct lst_buf id;
    lst_buf_init(&id);
    *err = lst_event_id_format(&id, c->cb.from, c->cb.message_id);
    if (*err == LST_OK && id.len < sizeof(c->event_id))
        memcpy(c->event_id, id.data, id.len + 1);
    lst_buf_cleanup(&id);
    return c->event_id[0] != '\0';
}

/* Steps 1 and 2. The parse checks the form and the MAC before any field, so a callback that
 * parses is authentic: the common case parses the form and computes the HMAC once (it used to
 * be twice, verify and then parse). Only a failed parse is verified on its own, to tell a
 * forged or broken request (401/400) from an authentic one with a bad field (dead letter). */
enum gwin_result gwin_call_check(struct gateway_in *ctx, struct gwin_call *c, lst_err *dlq_err)
{
    *dlq_err = LST_OK;
#ifdef LST_FUZZING
    /* fuzz builds skip the MAC inside the parse: check it first */
    enum gwin_result v = verify(ctx, c);
    if (v != GWIN_ACCEPTED)
        return v;
#endif
    lst_err err =
        lst_threema_callback_parse(c->body, c->body_len, ctx->cfg.gw.secret, &c->cb, &c->why);
    if (err == LST_ERR_NOMEM)
        return GWIN_UNAVAILABLE;
    if (err != LST_OK) {
        enum gwin_result r = verify(ctx, c);
        if (r != GWIN_ACCEPTED)
            return r;
        *dlq_err = err;
        return GWIN_DLQ;
    }
    if (!event_id_of(c, &err)) {
        *dlq_err = err != LST_OK ? err : LST_ERR_INVALID;
        return GWIN_DLQ;
    }
    return GWIN_ACCEPTED;
}

enum gwin_result gwin_call_dead_letter(struct gateway_in *ctx, struct gwin_call *c, lst_err err)
{
    return dead_letter(ctx, c, c->cb.from[0] != '\0' ? c->cb.from : NULL, err);
}

enum gwin_result gwin_call_process(struct gateway_in *ctx, struct gwin_call *c)
{
    return process(ctx, c);
}

bool gwin_call_open_fast(struct gateway_in *ctx, struct gwin_call *c)
{
    uint8_t pk[LST_THREEMA_KEY_SIZE];
    if (!gwin_pubkey_cached(ctx, c->cb.from, pk) || try_open(ctx, c, pk) != LST_OK)
        return false;
    if (c->msg.kind == LST_THREEMA_MSG_FILE || c->msg.kind == LST_THREEMA_MSG_IMAGE)
        return false;
    if (build_record(ctx, c) == GWIN_ACCEPTED)
        return true;
    lst_inbound_cleanup(&c->rec); /* the blocking path builds it again */
    memset(&c->rec, 0, sizeof(c->rec));
    return false;
}

static enum gwin_result handle(struct gateway_in *ctx, struct gwin_call *c)
{
    lst_err dlq_err = LST_OK;
    enum gwin_result r = gwin_call_check(ctx, c, &dlq_err);
    if (r == GWIN_DLQ)
        return dead_letter(ctx, c, NULL, dlq_err);
    if (r != GWIN_ACCEPTED)
        return r;
    enum gwin_claim claim = gwin_dedupe_claim(ctx, c->event_id, c->token);
    if (claim == GWIN_CLAIM_DONE)
        return GWIN_DUPLICATE;
    if (claim == GWIN_CLAIM_PENDING)
        return GWIN_DUPLICATE_PENDING;
    r = process(ctx, c);
    if (claim == GWIN_CLAIM_OK) {
        if (r == GWIN_ACCEPTED || r == GWIN_DLQ)
            gwin_dedupe_done(ctx, c->event_id);
        else
            gwin_dedupe_release(ctx, c->event_id, c->token);
    }
    return r;
}

/* ---- respond ---- */

static void respond(struct lst_http_response *resp, enum gwin_result r, const struct gwin_call *c)
{
    const char *why = c->why.len > 0 ? c->why.data : "";
    char body[64];
    int n;
    switch (r) {
    case GWIN_ACCEPTED:
    case GWIN_DUPLICATE:
    case GWIN_DLQ:
        n = snprintf(body, sizeof(body), "{\"status\":\"%s\"}", gwin_result_name(r));
        lst_http_reply(resp, 200, "application/json", body, (size_t)n);
        break;
    case GWIN_BAD_MAC:
        lst_http_problem(resp, 401, "bad-mac", "Unauthorized",
                         "the callback's MAC does not match our API secret");
        break;
    case GWIN_MALFORMED:
        lst_http_problem(resp, 400, "malformed-callback", "Bad Request", "%s", why);
        break;
    case GWIN_DUPLICATE_PENDING:
        lst_http_problem(resp, 503, "in-progress", "Service Unavailable",
                         "this message is being processed; retry later");
        break;
    case GWIN_UNAVAILABLE:
    default:
        lst_http_problem(resp, 503, "unavailable", "Service Unavailable", "%s", why);
        break;
    }
}

static void log_result(enum gwin_result r, const struct gwin_call *c)
{
    const char *why = c->why.len > 0 ? c->why.data : "";
    const char *ev = c->event_id[0] != '\0' ? c->event_id : "-";
    if (r == GWIN_BAD_MAC)
        LST_WARN("gateway_in.bad_mac", "callback from %s rejected: wrong MAC", c->remote);
    else if (r == GWIN_MALFORMED)
        LST_WARN("gateway_in.malformed", "callback from %s rejected: %s", c->remote, why);
    else if (r == GWIN_UNAVAILABLE)
        LST_WARN("gateway_in.unavailable", "callback %s answered 503: %s", ev, why);
    else if (r == GWIN_DUPLICATE || r == GWIN_DUPLICATE_PENDING)
        LST_INFO("gateway_in.duplicate", "callback %s: %s", ev, gwin_result_name(r));
    else
        LST_DEBUG("gateway_in.accepted", "callback %s: %s", ev, gwin_result_name(r));
}

void gwin_call_init(struct gwin_call *c, const char *body, size_t len, const char *remote)
{
    memset(c, 0, sizeof(*c));
    c->body = body;
    c->body_len = len;
    snprintf(c->remote, sizeof(c->remote), "%s", remote != NULL ? remote : "");
    c->t0_ms = lst_mono_ms();
    lst_buf_init(&c->why);
}

void gwin_call_cleanup(struct gwin_call *c)
{
    lst_inbound_cleanup(&c->rec);
    lst_threema_msg_cleanup(&c->msg);
    lst_threema_shared_cleanup(&c->shared);
    lst_threema_callback_cleanup(&c->cb);
    lst_buf_cleanup(&c->why);
}

void gwin_call_answer(struct gateway_in *ctx, struct gwin_call *c, enum gwin_result r,
                      struct lst_http_response *resp)
{
    respond(resp, r, c);
    log_result(r, c);
    lst_counter_inc(ctx->m.callbacks[r]);
    lst_histogram_observe(ctx->m.latency, (double)(lst_mono_ms() - c->t0_ms) / 1000.0);
}

void gwin_callback_handler(void *ud, const struct lst_http_request *req,
                           struct lst_http_response *resp)
{
    struct gateway_in *ctx = lst_service_ctx(ud);
    struct gwin_call c;
    gwin_call_init(&c, req->body, req->body_len, req->remote_addr);
    gwin_call_answer(ctx, &c, handle(ctx, &c), resp);
    gwin_call_cleanup(&c);
}
