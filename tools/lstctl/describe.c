/* A decoded message as one line of JSON, for `decrypt` (non-text types, or --json) and
 * `callback-decode`. Member names are spelled out rather than the wire's one-letter file keys,
 * so an operator can read them; binary values are lowercase hex. */
#include <string.h>

#include "lstctl.h"

static void str_member(struct lst_buf *out, const char *name, const char *value)
{
    if (value == NULL)
        return;
    lst_buf_printf(out, ",\"%s\":", name);
    lst_buf_json_str(out, value, strlen(value));
}

static void hex_member(struct lst_buf *out, const char *name, const uint8_t *v, size_t len)
{
    char hex[2 * LST_THREEMA_KEY_SIZE + 1]; /* the largest binary member (key 32, nonce 24) */
    if (2 * len + 1 > sizeof(hex))
        return;
    lst_threema_hex_encode(v, len, hex, sizeof(hex));
    lst_buf_printf(out, ",\"%s\":\"%s\"", name, hex);
}

static const char *receipt_status_name(uint8_t status)
{
    switch (status) {
    case LST_THREEMA_RECEIPT_RECEIVED:
        return "received";
    case LST_THREEMA_RECEIPT_READ:
        return "read";
    case LST_THREEMA_RECEIPT_ACK:
        return "acknowledged";
    case LST_THREEMA_RECEIPT_DECLINE:
        return "declined";
    default:
        return "unknown";
    }
}

static void describe_file(const struct lst_threema_file *f, struct lst_buf *out)
{
    str_member(out, "blobId", f->blob_id);
    hex_member(out, "key", f->key, LST_THREEMA_KEY_SIZE);
    str_member(out, "mime", f->mime);
    lst_buf_printf(out, ",\"size\":%lld", (long long)f->size);
    str_member(out, "name", f->name);
    if (f->thumbnail_blob_id[0] != '\0')
        str_member(out, "thumbnailBlobId", f->thumbnail_blob_id);
    str_member(out, "thumbnailMime", f->thumbnail_mime);
    str_member(out, "caption", f->caption);
    if (f->has_rendering)
        lst_buf_printf(out, ",\"rendering\":%d", f->rendering);
    if (f->has_legacy)
        lst_buf_printf(out, ",\"legacyRendering\":%d", f->legacy);
    if (!f->has_meta)
        return;
    lst_buf_puts(out, ",\"meta\":{");
    const char *sep = "";
    if (f->has_width) {
        lst_buf_printf(out, "%s\"width\":%lld", sep, (long long)f->width);
        sep = ",";
    }
    if (f->has_height) {
        lst_buf_printf(out, "%s\"height\":%lld", sep, (long long)f->height);
        sep = ",";
    }
    if (f->has_duration) {
        lst_buf_printf(out, "%s\"duration\":%.10g", sep, f->duration);
        sep = ",";
    }
    if (f->has_animated)
        lst_buf_printf(out, "%s\"animated\":%s", sep, f->animated ? "true" : "false");
    lst_buf_puts(out, "}");
}

static void describe_location(const struct lst_threema_location *l, struct lst_buf *out)
{
    lst_buf_printf(out, ",\"lat\":%.10g,\"lon\":%.10g", l->lat, l->lon);
    if (l->has_accuracy)
        lst_buf_printf(out, ",\"accuracy\":%.10g", l->accuracy);
    str_member(out, "name", l->name);
    str_member(out, "address", l->address);
}

static void describe_receipt(const struct lst_threema_receipt *r, struct lst_buf *out)
{
    lst_buf_printf(out, ",\"status\":%u,\"statusName\":\"%s\",\"messageIds\":[",
                   (unsigned)r->status, receipt_status_name(r->status));
    for (size_t i = 0; i < r->count; i++) {
        char hex[LST_THREEMA_MSGID_HEX + 1];
        lst_threema_hex_encode(r->ids[i], LST_THREEMA_MSGID_SIZE, hex, sizeof(hex));
        lst_buf_printf(out, "%s\"%s\"", i > 0 ? "," : "", hex);
    }
    lst_buf_puts(out, "]");
}

lst_err lst_ctl_describe(const struct lst_threema_msg *m, struct lst_buf *out)
{
    lst_buf_printf(out, "{\"type\":\"%s\",\"typeByte\":%u", lst_threema_msg_kind_name(m->kind),
                   (unsigned)m->type);
    switch (m->kind) {
    case LST_THREEMA_MSG_TEXT:
        lst_buf_puts(out, ",\"text\":");
        lst_buf_json_str(out, m->text, m->text_len);
        break;
    case LST_THREEMA_MSG_FILE:
        describe_file(&m->file, out);
        break;
    case LST_THREEMA_MSG_LOCATION:
        describe_location(&m->location, out);
        break;
    case LST_THREEMA_MSG_RECEIPT:
        describe_receipt(&m->receipt, out);
        break;
    case LST_THREEMA_MSG_TYPING:
        lst_buf_printf(out, ",\"typing\":%s", m->typing ? "true" : "false");
        break;
    case LST_THREEMA_MSG_IMAGE:
        str_member(out, "blobId", m->image.blob_id);
        lst_buf_printf(out, ",\"size\":%u", (unsigned)m->image.size);
        hex_member(out, "nonce", m->image.nonce, LST_THREEMA_NONCE_SIZE);
        break;
    case LST_THREEMA_MSG_UNSUPPORTED:
    default:
        lst_buf_printf(out, ",\"bodyLength\":%zu", m->body_len);
        break;
    }
    lst_buf_puts(out, "}");
    return lst_buf_failed(out) ? LST_ERR_NOMEM : LST_OK;
}
