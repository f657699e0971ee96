/* Identifier helpers of the record contracts (message ID generation, request and event IDs)
 * and the DLQ payload conversion (raw bytes <-> utf8/base64 text). */
#include "lst/records.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

lst_err lst_message_id_new(int64_t now_ms, char out[LST_MESSAGE_ID_LEN + 1])
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    if (now_ms < 0 || now_ms > LST_TIME_MS_MAX)
        return LST_ERR_RANGE;
    /* randombytes_buf works without sodium_init on Linux, but init picks the best source;
     * it is idempotent and thread-safe. */
    if (sodium_init() < 0)
        return LST_ERR_CRYPTO;
    uint64_t t = (uint64_t)now_ms;
    for (int i = 9; i >= 0; i--) {
        out[i] = alphabet[t & 31u];
        t >>= 5;
    }
    unsigned char rnd[10]; /* 80 bits = 16 base32 chars */
    randombytes_buf(rnd, sizeof(rnd));
    unsigned acc = 0, bits = 0;
    size_t pos = 10;
    for (size_t i = 0; i < sizeof(rnd); i++) {
        acc = (acc << 8) | rnd[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[pos++] = alphabet[(acc >> bits) & 31u];
        }
    }
    out[LST_MESSAGE_ID_LEN] = '\0';
    return LST_OK;
}

static lst_err format_pair(struct lst_buf *out, const char *a, const char *b)
{
    lst_buf_reset(out);
    lst_buf_puts(out, a);
    lst_buf_puts(out, ":");
    lst_buf_puts(out, b);
    return lst_buf_failed(out) ? LST_ERR_NOMEM : LST_OK;
}

lst_err lst_request_id_format(struct lst_buf *out, const char *message_id, const char *employee_id)
{
    return format_pair(out, message_id, employee_id);
}

lst_err lst_event_id_format(struct lst_buf *out, const char *from, const char *threema_msgid)
{
    return format_pair(out, from, threema_msgid);
}

/* The longest prefix of s[0..len) that does not end inside a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len)
{
    size_t n = len;
    while (n > 0 && len - n < 3 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

lst_err lst_dlq_payload_set(struct lst_dlq_payload *p, const void *data, size_t len)
{
    const char *s = data;
    size_t keep = len > LST_DLQ_PAYLOAD_MAX ? LST_DLQ_PAYLOAD_MAX : len;
    bool text = len == 0 || memchr(s, '\0', len) == NULL;
    if (text && keep < len)
        keep = utf8_cut(s, keep); /* s[keep] exists: keep < len */
    text = text && lst_utf8_valid(s, keep);
    char *copy = NULL;
    if (text) {
        copy = malloc(keep + 1);
        if (copy != NULL) {
            memcpy(copy, s, keep);
            copy[keep] = '\0';
        }
    } else {
        size_t cap = sodium_base64_ENCODED_LEN(keep, sodium_base64_VARIANT_ORIGINAL);
        copy = malloc(cap);
        if (copy != NULL)
            sodium_bin2base64(copy, cap, (const unsigned char *)data, keep,
                              sodium_base64_VARIANT_ORIGINAL);
    }
    if (copy == NULL)
        return LST_ERR_NOMEM;
    free(p->data);
    p->data = copy;
    p->encoding = text ? LST_DLQ_UTF8 : LST_DLQ_BASE64;
    p->truncated = keep < len;
    p->size = (int64_t)len;
    return LST_OK;
}

lst_err lst_dlq_payload_get(const struct lst_dlq_payload *p, struct lst_buf *out)
{
    if (p->data == NULL)
        return LST_ERR_INVALID;
    size_t len = strlen(p->data);
    if (p->encoding == LST_DLQ_UTF8)
        return lst_buf_append(out, p->data, len);
    if (p->encoding != LST_DLQ_BASE64)
        return LST_ERR_INVALID;
    lst_err err = LST_OK;
    size_t cap = len / 4 * 3 + 3, got = 0;
    unsigned char *bin = malloc(cap);
    if (bin == NULL)
        return LST_ERR_NOMEM;
    if (sodium_base642bin(bin, cap, p->data, len, NULL, &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        err = LST_ERR_INVALID;
    else
        err = lst_buf_append(out, bin, got);
    free(bin);
    return err;
}
