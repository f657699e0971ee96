/* The simulated phones. The real Gateway cannot look inside a box, but a phone can: every
 * send_e2e is decrypted with the recipient's private key and the Gateway's public key,
 * unpadded and decoded; file messages have their blobs fetched from the blob store and
 * decrypted too. What the phone got (or why it could not read it) goes into its inbox, which
 * tests read through /_sim/inbox/{id}.
 *
 * A readable message (not itself a receipt or typing indicator) then makes the phone answer,
 * unless the sender asked for noDeliveryReceipts: "received" after the received delay, "read"
 * after the read delay for users with read receipts on, sometimes an acknowledgement or a
 * decline, and sometimes a reply (text, location or photo). All go out as callbacks. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lst/log.h"
#include "lst/threema.h"
#include "sim.h"

struct inbox_msg {
    char *json; /* the rendered entry */
};

struct inbox {
    struct inbox_msg *ring;
    size_t n;     /* entries ever added (the ring keeps the last inbox_capacity) */
    size_t start; /* first entry still kept */
};

struct sim_phones {
    struct sim *sim;
    pthread_mutex_t lock;
    struct inbox *inboxes; /* one per directory user, by index */
    uint64_t messages, undecryptable, bad_container, bad_blob, replies;
};

/* A 4x4 PNG: the "photo" a phone sends. */
static const unsigned char photo_png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
    0x52, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x08, 0x02, 0x00, 0x00, 0x00, 0x26,
    0x93, 0x09, 0x29, 0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x50,
    0x48, 0x58, 0x00, 0x47, 0x0c, 0xc4, 0x71, 0x00, 0xcc, 0x43, 0x12, 0x01, 0x58, 0xb5, 0x33,
    0x58, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

static const char *const canned_texts[] = {
    "Alles klar, bin unterwegs.",
    "Verstanden.",
    "Stehe im Stau auf der A7, ca. 30 Minuten später.",
    "Ladung ist aufgenommen, fahre los.",
    "Kunde nicht angetroffen, was nun?",
    "Bin an der Rampe, warte auf Freigabe.",
};

/* ---- inbox ---- */

/* Takes ownership of json. */
static void inbox_add(struct sim_phones *p, const struct sim_user *u, char *json)
{
    size_t cap = (size_t)p->sim->cfg.inbox_capacity;
    pthread_mutex_lock(&p->lock);
    struct inbox *in = &p->inboxes[u->index];
    if (in->ring == NULL)
        in->ring = calloc(cap, sizeof(*in->ring));
    if (in->ring == NULL || json == NULL) {
        pthread_mutex_unlock(&p->lock);
        free(json);
        return;
    }
    struct inbox_msg *slot = &in->ring[in->n % cap];
    free(slot->json);
    slot->json = json;
    in->n++;
    if (in->n - in->start > cap)
        in->start = in->n - cap;
    pthread_mutex_unlock(&p->lock);
}

static void json_opt_str(struct lst_buf *b, const char *key, const char *v)
{
    if (v == NULL)
        return;
    lst_buf_printf(b, ",\"%s\":", key);
    lst_buf_json_str(b, v, strlen(v));
}

static void render_file(struct lst_buf *b, const struct lst_threema_file *f, const char *blob_check)
{
    lst_buf_printf(b, ",\"file\":{\"blobId\":\"%s\",\"mime\":", f->blob_id);
    lst_buf_json_str(b, f->mime, strlen(f->mime));
    lst_buf_printf(b, ",\"size\":%lld", (long long)f->size);
    json_opt_str(b, "name", f->name);
    json_opt_str(b, "caption", f->caption);
    if (f->thumbnail_blob_id[0] != '\0')
        lst_buf_printf(b, ",\"thumbnailBlobId\":\"%s\"", f->thumbnail_blob_id);
    json_opt_str(b, "thumbnailMime", f->thumbnail_mime);
    if (f->has_rendering)
        lst_buf_printf(b, ",\"rendering\":%d", f->rendering);
    if (f->has_width)
        lst_buf_printf(b, ",\"width\":%lld", (long long)f->width);
    if (f->has_height)
        lst_buf_printf(b, ",\"height\":%lld", (long long)f->height);
    lst_buf_printf(b, ",\"blobCheck\":\"%s\"}", blob_check);
}

static void render_content(struct lst_buf *b, const struct lst_threema_msg *m,
                           const char *blob_check)
{
    lst_buf_printf(b, ",\"type\":\"%s\",\"typeByte\":%u", lst_threema_msg_kind_name(m->kind),
                   (unsigned)m->type);
    switch (m->kind) {
    case LST_THREEMA_MSG_TEXT:
        lst_buf_puts(b, ",\"text\":");
        lst_buf_json_str(b, m->text, m->text_len);
        break;
    case LST_THREEMA_MSG_FILE:
        render_file(b, &m->file, blob_check);
        break;
    case LST_THREEMA_MSG_LOCATION:
        lst_buf_printf(b, ",\"location\":{\"lat\":%.6f,\"lon\":%.6f", m->location.lat,
                       m->location.lon);
        if (m->location.has_accuracy)
            lst_buf_printf(b, ",\"accuracy\":%g", m->location.accuracy);
        json_opt_str(b, "name", m->location.name);
        json_opt_str(b, "address", m->location.address);
        lst_buf_puts(b, "}");
        break;
    case LST_THREEMA_MSG_RECEIPT:
        lst_buf_printf(b, ",\"receipt\":{\"status\":%u,\"messageIds\":[",
                       (unsigned)m->receipt.status);
        for (size_t i = 0; i < m->receipt.count; i++) {
            char hex[LST_THREEMA_MSGID_HEX + 1];
            lst_threema_hex_encode(m->receipt.ids[i], LST_THREEMA_MSGID_SIZE, hex, sizeof(hex));
            lst_buf_printf(b, "%s\"%s\"", i ? "," : "", hex);
        }
        lst_buf_puts(b, "]}");
        break;
    case LST_THREEMA_MSG_TYPING:
        lst_buf_printf(b, ",\"typing\":%s", m->typing ? "true" : "false");
        break;
    default:
        lst_buf_printf(b, ",\"bodyLen\":%zu", m->body_len);
        break;
    }
}

/* The head of an inbox entry: what the Gateway knew about the request. */
static void render_head(struct lst_buf *b, const char *msgid, size_t box_len, bool no_receipts,
                        bool no_push)
{
    lst_buf_printf(b,
                   "{\"messageId\":\"%s\",\"receivedAtMs\":%lld,\"boxLen\":%zu,"
                   "\"noDeliveryReceipts\":%s,\"noPush\":%s",
                   msgid, (long long)lst_wall_ms(), box_len, no_receipts ? "true" : "false",
                   no_push ? "true" : "false");
}

/* ---- blob check ---- */

/* Fetches and decrypts a file message's blob (and thumbnail) as the app would. */
static const char *check_blobs(struct sim_phones *p, const struct lst_threema_file *f)
{
    struct lst_buf enc, plain;
    lst_buf_init(&enc);
    lst_buf_init(&plain);
    const char *res = "ok";
    if (sim_blobs_get(&p->sim->blobs, f->blob_id, &enc) != LST_OK)
        res = "blob not found";
    else if (lst_threema_blob_decrypt(f->key, LST_THREEMA_BLOB_FILE, (const uint8_t *)enc.data,
                                      enc.len, &plain) != LST_OK)
        res = "blob does not decrypt";
    else if ((int64_t)plain.len != f->size)
        res = "blob size differs from s";
    if (strcmp(res, "ok") == 0 && f->thumbnail_blob_id[0] != '\0') {
        lst_buf_reset(&enc);
        if (sim_blobs_get(&p->sim->blobs, f->thumbnail_blob_id, &enc) != LST_OK)
            res = "thumbnail not found";
        else if (lst_threema_blob_decrypt(f->key, LST_THREEMA_BLOB_THUMBNAIL,
                                          (const uint8_t *)enc.data, enc.len, &plain) != LST_OK)
            res = "thumbnail does not decrypt";
    }
    lst_buf_cleanup(&enc);
    lst_buf_cleanup(&plain);
    return res;
}

/* ---- answers ---- */

static int64_t jitter(struct sim_phones *p)
{
    int64_t j = p->sim->cfg.delay_jitter_ms;
    return j > 0 ? (int64_t)(sim_random_unit() * (double)(j + 1)) : 0;
}

static lst_err send_msg(struct sim_phones *p, const struct sim_user *u, uint8_t type,
                        const struct lst_threema_msg *m, int64_t delay_ms,
                        char msgid_out[2 * SIM_MSGID_LEN + 1])
{
    struct lst_buf c;
    lst_buf_init(&c);
    lst_buf_append(&c, &type, 1);
    struct lst_buf body;
    lst_buf_init(&body);
    lst_err err = lst_threema_msg_encode_body(m, &body, NULL);
    if (err == LST_OK)
        err = lst_buf_append(&c, body.data, body.len);
    if (err == LST_OK)
        err = sim_callbacks_schedule(p->sim->callbacks, u, (const unsigned char *)c.data, c.len,
                                     delay_ms, msgid_out);
    lst_buf_cleanup(&body);
    lst_buf_cleanup(&c);
    return err;
}

static void send_receipt(struct sim_phones *p, const struct sim_user *u, uint8_t status,
                         const uint8_t msgid[SIM_MSGID_LEN], int64_t delay_ms)
{
    struct lst_threema_msg m;
    memset(&m, 0, sizeof(m));
    if (lst_threema_msg_set_receipt(&m, status, msgid, 1) == LST_OK)
        send_msg(p, u, LST_THREEMA_TYPE_RECEIPT, &m, delay_ms, NULL);
    lst_threema_msg_cleanup(&m);
}

static bool have_callbacks(struct sim_phones *p)
{
    char *url = sim_callbacks_url(p->sim->callbacks);
    bool yes = url != NULL && p->sim->have_gateway_pk;
    free(url);
    return yes;
}

static lst_err reply_text(struct sim_phones *p, const struct sim_user *u, const char *text,
                          int64_t delay, char *msgid);
static lst_err reply_location(struct sim_phones *p, const struct sim_user *u, double lat,
                              double lon, int64_t delay, char *msgid);
static lst_err reply_photo(struct sim_phones *p, const struct sim_user *u, const char *caption,
                           int64_t delay, char *msgid, char *blob_id);

static void spontaneous_reply(struct sim_phones *p, const struct sim_user *u, int64_t delay)
{
    char msgid[2 * SIM_MSGID_LEN + 1], blob[2 * SIM_BLOBID_LEN + 1];
    uint32_t pick = randombytes_uniform(3);
    lst_err err;
    if (pick == 0)
        err = reply_text(p, u, NULL, delay, msgid);
    else if (pick == 1)
        err = reply_location(p, u, 53.55 + sim_random_unit() * 0.1, 9.95 + sim_random_unit() * 0.2,
                             delay, msgid);
    else
        err = reply_photo(p, u, NULL, delay, msgid, blob);
    if (err == LST_OK) {
        pthread_mutex_lock(&p->lock);
        p->replies++;
        pthread_mutex_unlock(&p->lock);
    }
}

/* The phone's reaction to a message it could read. */
static void react(struct sim_phones *p, const struct sim_user *u,
                  const uint8_t msgid[SIM_MSGID_LEN])
{
    const struct sim_config *cfg = &p->sim->cfg;
    if (!have_callbacks(p))
        return;
    int64_t t = cfg->received_delay_ms + jitter(p);
    send_receipt(p, u, LST_THREEMA_RECEIPT_RECEIVED, msgid, t);
    t += cfg->read_delay_ms + jitter(p);
    if (u->read_receipts)
        send_receipt(p, u, LST_THREEMA_RECEIPT_READ, msgid, t);
    double r = sim_random_unit();
    if (r < cfg->ack_probability)
        send_receipt(p, u, LST_THREEMA_RECEIPT_ACK, msgid, t + 1 + jitter(p));
    else if (r < cfg->ack_probability + cfg->decline_probability)
        send_receipt(p, u, LST_THREEMA_RECEIPT_DECLINE, msgid, t + 1 + jitter(p));
    if (sim_random_unit() < cfg->reply_probability)
        spontaneous_reply(p, u, t + cfg->reply_delay_ms + jitter(p));
}

/* ---- delivery ---- */

static void count(struct sim_phones *p, uint64_t *field)
{
    pthread_mutex_lock(&p->lock);
    (*field)++;
    pthread_mutex_unlock(&p->lock);
}

void sim_phones_deliver(struct sim_phones *p, const struct sim_user *u, const char *msgid_hex,
                        const unsigned char *nonce, const unsigned char *box, size_t box_len,
                        bool no_receipts, bool no_push)
{
    struct lst_threema_shared shared;
    struct lst_threema_msg m;
    struct lst_buf plain, why, out;
    memset(&shared, 0, sizeof(shared));
    memset(&m, 0, sizeof(m));
    lst_buf_init(&plain);
    lst_buf_init(&why);
    lst_buf_init(&out);
    count(p, &p->messages);
    lst_counter_inc(p->sim->m.phone_messages);
    render_head(&out, msgid_hex, box_len, no_receipts, no_push);
    lst_err err = LST_ERR_CONFIG;
    if (!p->sim->have_gateway_pk)
        lst_buf_puts(&why, "no Gateway public key configured (LST_SIM_GATEWAY_PUBLIC_KEY)");
    else
        err = lst_threema_shared_init(&shared, u->sk, p->sim->gateway_pk);
    if (err == LST_OK) {
        err = lst_threema_decrypt(&shared, nonce, box, box_len, &plain);
        if (err != LST_OK)
            lst_buf_puts(&why, "box does not decrypt with the recipient's key");
    }
    if (err != LST_OK) {
        count(p, &p->undecryptable);
    } else {
        err = lst_threema_msg_decode((const uint8_t *)plain.data, plain.len, &m, &why);
        if (err != LST_OK)
            count(p, &p->bad_container);
    }
    if (err != LST_OK) {
        lst_counter_inc(p->sim->m.phone_invalid);
        lst_buf_puts(&out, ",\"ok\":false,\"error\":");
        lst_buf_json_str(&out, why.data ? why.data : "invalid", why.data ? why.len : 7);
        LST_INFO("sim.phone.invalid", "message %s to %s is unreadable: %s", msgid_hex, u->id,
                 why.data ? why.data : "invalid");
    } else {
        const char *blob_check = "none";
        if (m.kind == LST_THREEMA_MSG_FILE) {
            blob_check = check_blobs(p, &m.file);
            if (strcmp(blob_check, "ok") != 0)
                count(p, &p->bad_blob);
        }
        lst_buf_puts(&out, ",\"ok\":true");
        render_content(&out, &m, blob_check);
    }
    lst_buf_puts(&out, "}");
    inbox_add(p, u, lst_buf_failed(&out) ? NULL : lst_buf_steal(&out));
    bool reacts = err == LST_OK && !no_receipts && m.kind != LST_THREEMA_MSG_RECEIPT &&
                  m.kind != LST_THREEMA_MSG_TYPING;
    uint8_t id[SIM_MSGID_LEN];
    if (reacts && lst_threema_hex_decode(msgid_hex, strlen(msgid_hex), id, sizeof(id)) == LST_OK)
        react(p, u, id);
    lst_threema_msg_cleanup(&m);
    lst_threema_shared_cleanup(&shared);
    lst_buf_cleanup(&plain);
    lst_buf_cleanup(&why);
    lst_buf_cleanup(&out);
}

void sim_phones_deliver_simple(struct sim_phones *p, const struct sim_user *u,
                               const char *msgid_hex, const char *text, size_t len)
{
    struct lst_buf out;
    lst_buf_init(&out);
    count(p, &p->messages);
    lst_counter_inc(p->sim->m.phone_messages);
    render_head(&out, msgid_hex, 0, true, false);
    lst_buf_puts(&out, ",\"ok\":true,\"simple\":true,\"type\":\"text\",\"typeByte\":1,\"text\":");
    lst_buf_json_str(&out, text, len);
    lst_buf_puts(&out, "}");
    inbox_add(p, u, lst_buf_failed(&out) ? NULL : lst_buf_steal(&out));
    lst_buf_cleanup(&out);
}

/* ---- replies ---- */

static lst_err reply_text(struct sim_phones *p, const struct sim_user *u, const char *text,
                          int64_t delay, char *msgid)
{
    struct lst_threema_msg m;
    memset(&m, 0, sizeof(m));
    if (text == NULL)
        text = canned_texts[randombytes_uniform(LST_ARRAY_LEN(canned_texts))];
    lst_err err = lst_threema_msg_set_text(&m, text, strlen(text));
    if (err == LST_OK)
        err = send_msg(p, u, LST_THREEMA_TYPE_TEXT, &m, delay, msgid);
    lst_threema_msg_cleanup(&m);
    return err;
}

static lst_err reply_location(struct sim_phones *p, const struct sim_user *u, double lat,
                              double lon, int64_t delay, char *msgid)
{
    struct lst_threema_msg m;
    memset(&m, 0, sizeof(m));
    m.kind = LST_THREEMA_MSG_LOCATION;
    m.location.lat = lat;
    m.location.lon = lon;
    m.location.has_accuracy = true;
    m.location.accuracy = 12.0;
    m.location.address = lst_strdup("Standort des Fahrzeugs");
    lst_err err = m.location.address != NULL ? LST_OK : LST_ERR_NOMEM;
    if (err == LST_OK)
        err = send_msg(p, u, LST_THREEMA_TYPE_LOCATION, &m, delay, msgid);
    lst_threema_msg_cleanup(&m);
    return err;
}

/* Encrypts the photo (and its thumbnail, the same bytes) with a fresh key into the store. */
static lst_err store_photo(struct sim_phones *p, const uint8_t key[LST_THREEMA_KEY_SIZE],
                           char *blob_id, char *thumb_id)
{
    struct lst_buf enc;
    lst_buf_init(&enc);
    lst_err err =
        lst_threema_blob_encrypt(key, LST_THREEMA_BLOB_FILE, photo_png, sizeof(photo_png), &enc);
    if (err == LST_OK)
        err = sim_blobs_put(&p->sim->blobs, enc.data, enc.len, false, blob_id);
    if (err == LST_OK)
        err = lst_threema_blob_encrypt(key, LST_THREEMA_BLOB_THUMBNAIL, photo_png,
                                       sizeof(photo_png), &enc);
    if (err == LST_OK)
        err = sim_blobs_put(&p->sim->blobs, enc.data, enc.len, false, thumb_id);
    lst_buf_cleanup(&enc);
    return err;
}

static lst_err reply_photo(struct sim_phones *p, const struct sim_user *u, const char *caption,
                           int64_t delay, char *msgid, char *blob_id)
{
    struct lst_threema_msg m;
    memset(&m, 0, sizeof(m));
    m.kind = LST_THREEMA_MSG_FILE;
    struct lst_threema_file *f = &m.file;
    lst_threema_blob_keygen(f->key);
    lst_err err = store_photo(p, f->key, f->blob_id, f->thumbnail_blob_id);
    memcpy(blob_id, f->blob_id, sizeof(f->blob_id));
    f->mime = lst_strdup("image/png");
    f->thumbnail_mime = lst_strdup("image/png");
    f->name = lst_strdup("foto.png");
    f->caption = caption != NULL ? lst_strdup(caption) : NULL;
    f->size = (int64_t)sizeof(photo_png);
    f->has_rendering = true;
    f->rendering = 1;
    f->has_legacy = true;
    f->legacy = 1;
    f->has_meta = f->has_width = f->has_height = true;
    f->width = f->height = 4;
    if (err == LST_OK && (f->mime == NULL || f->thumbnail_mime == NULL || f->name == NULL))
        err = LST_ERR_NOMEM;
    if (err == LST_OK)
        err = send_msg(p, u, LST_THREEMA_TYPE_FILE, &m, delay, msgid);
    lst_threema_msg_cleanup(&m);
    return err;
}

lst_err sim_phones_reply(struct sim_phones *p, const struct sim_user *u, const char *kind,
                         const char *text, double lat, double lon, int receipt_status,
                         const char *receipt_msgid, struct lst_buf *answer, const char **why)
{
    char msgid[2 * SIM_MSGID_LEN + 1] = "", blob[2 * SIM_BLOBID_LEN + 1] = "";
    uint8_t ref[SIM_MSGID_LEN];
    lst_err err = LST_ERR_INVALID;
    *why = NULL;
    if (!have_callbacks(p)) {
        *why = "no callback URL or no Gateway public key configured";
        return LST_ERR_STATE;
    }
    if (strcmp(kind, "text") == 0) {
        err = reply_text(p, u, text, 0, msgid);
    } else if (strcmp(kind, "location") == 0) {
        err = reply_location(p, u, lat, lon, 0, msgid);
    } else if (strcmp(kind, "photo") == 0) {
        err = reply_photo(p, u, text, 0, msgid, blob);
    } else if (strcmp(kind, "receipt") == 0) {
        if (receipt_msgid == NULL ||
            lst_threema_hex_decode(receipt_msgid, strlen(receipt_msgid), ref, sizeof(ref)) !=
                LST_OK ||
            receipt_status < 0 || receipt_status > 255) {
            *why = "receipt needs messageId (16 hex) and status (0..255)";
            return LST_ERR_INVALID;
        }
        struct lst_threema_msg m;
        memset(&m, 0, sizeof(m));
        err = lst_threema_msg_set_receipt(&m, (uint8_t)receipt_status, ref, 1);
        if (err == LST_OK)
            err = send_msg(p, u, LST_THREEMA_TYPE_RECEIPT, &m, 0, msgid);
        lst_threema_msg_cleanup(&m);
    } else {
        *why = "kind must be text, location, photo or receipt";
        return LST_ERR_INVALID;
    }
    if (err != LST_OK) {
        *why = err == LST_ERR_RANGE ? "callback queue full" : "the reply could not be encoded";
        return err;
    }
    count(p, &p->replies);
    lst_buf_printf(answer, "{\"messageId\":\"%s\"", msgid);
    if (blob[0] != '\0')
        lst_buf_printf(answer, ",\"blobId\":\"%s\"", blob);
    lst_buf_puts(answer, "}");
    return LST_OK;
}

/* ---- inspection and lifecycle ---- */

void sim_phones_inbox_json(struct sim_phones *p, const struct sim_user *u, struct lst_buf *out)
{
    size_t cap = (size_t)p->sim->cfg.inbox_capacity;
    lst_buf_printf(out, "{\"identity\":\"%s\",\"messages\":[", u->id);
    pthread_mutex_lock(&p->lock);
    const struct inbox *in = &p->inboxes[u->index];
    for (size_t i = in->start; i < in->n; i++)
        lst_buf_printf(out, "%s%s", i > in->start ? "," : "", in->ring[i % cap].json);
    pthread_mutex_unlock(&p->lock);
    lst_buf_puts(out, "]}");
}

static void clear_inboxes(struct sim_phones *p)
{
    size_t cap = (size_t)p->sim->cfg.inbox_capacity;
    for (size_t i = 0; i < p->sim->dir.n; i++) {
        struct inbox *in = &p->inboxes[i];
        for (size_t k = 0; in->ring != NULL && k < cap; k++)
            free(in->ring[k].json);
        free(in->ring);
        memset(in, 0, sizeof(*in));
    }
}

void sim_phones_reset(struct sim_phones *p)
{
    pthread_mutex_lock(&p->lock);
    clear_inboxes(p);
    p->messages = p->undecryptable = p->bad_container = p->bad_blob = p->replies = 0;
    pthread_mutex_unlock(&p->lock);
}

void sim_phones_json(struct sim_phones *p, struct lst_buf *out)
{
    pthread_mutex_lock(&p->lock);
    lst_buf_printf(out,
                   "{\"messages\":%llu,\"undecryptable\":%llu,\"badContainer\":%llu,"
                   "\"badBlob\":%llu,\"replies\":%llu}",
                   (unsigned long long)p->messages, (unsigned long long)p->undecryptable,
                   (unsigned long long)p->bad_container, (unsigned long long)p->bad_blob,
                   (unsigned long long)p->replies);
    pthread_mutex_unlock(&p->lock);
}

lst_err sim_phones_create(struct sim *sim, struct sim_phones **out)
{
    struct sim_phones *p = calloc(1, sizeof(*p));
    *out = NULL;
    if (p == NULL)
        return LST_ERR_NOMEM;
    p->sim = sim;
    p->inboxes = calloc(sim->dir.n > 0 ? sim->dir.n : 1, sizeof(*p->inboxes));
    if (p->inboxes == NULL || pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p->inboxes);
        free(p);
        return LST_ERR_NOMEM;
    }
    *out = p;
    return LST_OK;
}

void sim_phones_destroy(struct sim_phones *p)
{
    if (p == NULL)
        return;
    clear_inboxes(p);
    free(p->inboxes);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
