/* Threema protocol: the plaintext container (type | body | padding) and the message bodies of
 * every type except the file message (threema_file.c). */
#include "lst/threema.h"
#include "threema_internal.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMAGE_BODY_SIZE (LST_THREEMA_BLOB_ID_SIZE + 4 + LST_THREEMA_NONCE_SIZE)
#define LOCATION_MAX    4096 /* bytes of a location body we encode */

/* ---- padding ------------------------------------------------------------------------------- */

lst_err lst_threema_pad(uint8_t type, const uint8_t *body, size_t body_len, uint8_t padding,
                        struct lst_buf *out)
{
    lst_buf_reset(out);
    if (body_len > LST_THREEMA_IN_BOX_MAX)
        return LST_ERR_TOO_LARGE;
    /* P uniform in 1..255: randombytes_uniform avoids modulo bias. */
    size_t p = padding != 0 ? padding : 1 + randombytes_uniform(255);
    /* As the official SDK: the body without the type byte plus P is at least 32. */
    if (body_len + p < LST_THREEMA_PAD_MIN_TOTAL)
        p = LST_THREEMA_PAD_MIN_TOTAL - body_len;
    uint8_t pad[255];
    memset(pad, (int)p, p);
    lst_buf_append(out, &type, 1);
    lst_buf_append(out, body, body_len);
    lst_buf_append(out, pad, p);
    if (lst_buf_failed(out)) {
        lst_buf_cleanup(out);
        return LST_ERR_NOMEM;
    }
    return LST_OK;
}

lst_err lst_threema_unpad(const uint8_t *data, size_t len, uint8_t *type, const uint8_t **body,
                          size_t *body_len, struct lst_buf *why)
{
    if (len < 2)
        return lst_threema_fail(why, LST_ERR_INVALID, "container: %zu bytes, need at least 2", len);
    size_t p = data[len - 1];
    if (p == 0)
        return lst_threema_fail(why, LST_ERR_INVALID, "container: padding length 0");
    if (p >= len)
        return lst_threema_fail(why, LST_ERR_INVALID,
                                "container: padding length %zu, container only %zu bytes", p, len);
    /* PKCS#7: every padding byte carries P. The SDKs do not check this, but a container that
     * breaks it was not made by a Threema client. */
    for (size_t i = len - p; i < len; i++)
        if (data[i] != p)
            return lst_threema_fail(why, LST_ERR_INVALID,
                                    "container: padding byte %zu is %u, expected %zu", i,
                                    (unsigned)data[i], p);
    *type = data[0];
    *body = data + 1;
    *body_len = len - 1 - p;
    return LST_OK;
}

/* ---- message struct -------------------------------------------------------------------------- */

const char *lst_threema_msg_kind_name(enum lst_threema_msg_kind kind)
{
    switch (kind) {
    case LST_THREEMA_MSG_TEXT:
        return "text";
    case LST_THREEMA_MSG_IMAGE:
        return "image";
    case LST_THREEMA_MSG_LOCATION:
        return "location";
    case LST_THREEMA_MSG_FILE:
        return "file";
    case LST_THREEMA_MSG_RECEIPT:
        return "receipt";
    case LST_THREEMA_MSG_TYPING:
        return "typing";
    case LST_THREEMA_MSG_UNSUPPORTED:
        return "unsupported";
    }
    return "unknown";
}

void lst_threema_msg_cleanup(struct lst_threema_msg *m)
{
    if (m == NULL)
        return;
    free(m->text);
    lst_threema_file_cleanup(&m->file);
    free(m->location.name);
    free(m->location.address);
    free(m->receipt.ids);
    sodium_memzero(m, sizeof(*m));
}

lst_err lst_threema_msg_set_text(struct lst_threema_msg *m, const char *text, size_t len)
{
    lst_threema_msg_cleanup(m);
    m->kind = LST_THREEMA_MSG_TEXT;
    m->type = LST_THREEMA_TYPE_TEXT;
    m->text = malloc(len + 1);
    if (m->text == NULL)
        return LST_ERR_NOMEM;
    memcpy(m->text, text, len);
    m->text[len] = '\0';
    m->text_len = len;
    return LST_OK;
}

lst_err lst_threema_msg_set_receipt(struct lst_threema_msg *m, uint8_t status, const uint8_t *ids,
                                    size_t count)
{
    lst_threema_msg_cleanup(m);
    m->kind = LST_THREEMA_MSG_RECEIPT;
    m->type = LST_THREEMA_TYPE_RECEIPT;
    m->receipt.status = status;
    if (count == 0 || count > LST_THREEMA_RECEIPT_IDS_MAX)
        return count == 0 ? LST_ERR_INVALID : LST_ERR_TOO_LARGE;
    m->receipt.ids = malloc(count * LST_THREEMA_MSGID_SIZE);
    if (m->receipt.ids == NULL)
        return LST_ERR_NOMEM;
    memcpy(m->receipt.ids, ids, count * LST_THREEMA_MSGID_SIZE);
    m->receipt.count = count;
    return LST_OK;
}

/* ---- text ------------------------------------------------------------------------------------ */

static lst_err encode_text(const struct lst_threema_msg *m, struct lst_buf *out,
                           struct lst_buf *why)
{
    if (m->text == NULL || m->text_len == 0)
        return lst_threema_fail(why, LST_ERR_INVALID, "text: empty");
    if (m->text_len > LST_THREEMA_TEXT_MAX)
        return lst_threema_fail(why, LST_ERR_TOO_LARGE, "text: %zu bytes, at most %d", m->text_len,
                                LST_THREEMA_TEXT_MAX);
    if (!lst_utf8_valid(m->text, m->text_len))
        return lst_threema_fail(why, LST_ERR_UTF8, "text: invalid UTF-8");
    return lst_buf_append(out, m->text, m->text_len);
}

static lst_err decode_text(const uint8_t *body, size_t len, struct lst_threema_msg *m,
                           struct lst_buf *why)
{
    if (len > LST_THREEMA_IN_TEXT_MAX)
        return lst_threema_fail(why, LST_ERR_TOO_LARGE, "text: %zu bytes, at most %d", len,
                                LST_THREEMA_IN_TEXT_MAX);
    if (!lst_utf8_valid((const char *)body, len))
        return lst_threema_fail(why, LST_ERR_UTF8, "text: invalid UTF-8");
    if (memchr(body, '\0', len) != NULL)
        return lst_threema_fail(why, LST_ERR_INVALID, "text: contains a NUL byte");
    m->text = malloc(len + 1);
    if (m->text == NULL)
        return LST_ERR_NOMEM;
    if (len > 0)
        memcpy(m->text, body, len);
    m->text[len] = '\0';
    m->text_len = len;
    return LST_OK;
}

/* ---- location -------------------------------------------------------------------------------- */

static bool coords_valid(double lat, double lon)
{
    return isfinite(lat) && isfinite(lon) && lat >= -90.0 && lat <= 90.0 && lon >= -180.0 &&
           lon <= 180.0;
}

/* Shortest of %.15g / %.17g that reads back as the same double. */
static void append_double(struct lst_buf *out, double v)
{
    char s[40];
    snprintf(s, sizeof(s), "%.15g", v);
    if (strtod(s, NULL) != v)
        snprintf(s, sizeof(s), "%.17g", v);
    lst_buf_puts(out, s);
}

static lst_err check_line(const char *what, const char *s, bool allow_newline, struct lst_buf *why)
{
    size_t len = strlen(s);
    if (!lst_utf8_valid(s, len))
        return lst_threema_fail(why, LST_ERR_UTF8, "location.%s: invalid UTF-8", what);
    if (!allow_newline && memchr(s, '\n', len) != NULL)
        return lst_threema_fail(why, LST_ERR_INVALID, "location.%s: contains a newline", what);
    if (len > LOCATION_MAX / 2)
        return lst_threema_fail(why, LST_ERR_TOO_LARGE, "location.%s: %zu bytes", what, len);
    return LST_OK;
}

static lst_err encode_location(const struct lst_threema_msg *m, struct lst_buf *out,
                               struct lst_buf *why)
{
    const struct lst_threema_location *l = &m->location;
    if (!coords_valid(l->lat, l->lon))
        return lst_threema_fail(why, LST_ERR_RANGE, "location: coordinates out of range");
    if (l->has_accuracy && (!isfinite(l->accuracy) || l->accuracy < 0))
        return lst_threema_fail(why, LST_ERR_RANGE, "location.accuracy: out of range");
    lst_err err = l->name != NULL ? check_line("name", l->name, false, why) : LST_OK;
    if (err == LST_OK && l->address != NULL)
        err = check_line("address", l->address, true, why);
    if (err != LST_OK)
        return err;
    append_double(out, l->lat);
    lst_buf_puts(out, ",");
    append_double(out, l->lon);
    if (l->has_accuracy) {
        lst_buf_puts(out, ",");
        append_double(out, l->accuracy);
    }
    if (l->name != NULL) {
        lst_buf_puts(out, "\n");
        lst_buf_puts(out, l->name);
    }
    if (l->name != NULL || l->address != NULL) {
        /* The apps escape newlines inside the address as a literal backslash-n. */
        lst_buf_puts(out, "\n");
        for (const char *p = l->address != NULL ? l->address : ""; *p != '\0'; p++)
            lst_buf_puts(out, *p == '\n' ? "\\n" : (char[]){*p, '\0'});
    }
    return lst_buf_failed(out) ? LST_ERR_NOMEM : LST_OK;
}

/* Parses one coordinate field s[0..len), surrounding spaces allowed (the apps' parsers trim). */
static lst_err parse_coord(const char *s, size_t len, double min, double max, double *out)
{
    char tmp[64];
    while (len > 0 && *s == ' ') {
        s++;
        len--;
    }
    while (len > 0 && s[len - 1] == ' ')
        len--;
    if (len == 0 || len >= sizeof(tmp))
        return LST_ERR_INVALID;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    return lst_parse_double(tmp, min, max, out);
}

static lst_err parse_coords(const char *s, size_t len, struct lst_threema_location *l,
                            struct lst_buf *why)
{
    const char *c1 = memchr(s, ',', len);
    if (c1 == NULL)
        return lst_threema_fail(why, LST_ERR_INVALID, "location: no ',' in coordinates");
    const char *rest = c1 + 1;
    size_t rest_len = len - (size_t)(rest - s);
    const char *c2 = memchr(rest, ',', rest_len);
    size_t lon_len = c2 != NULL ? (size_t)(c2 - rest) : rest_len;
    if (parse_coord(s, (size_t)(c1 - s), -90.0, 90.0, &l->lat) != LST_OK)
        return lst_threema_fail(why, LST_ERR_INVALID, "location: bad latitude");
    if (parse_coord(rest, lon_len, -180.0, 180.0, &l->lon) != LST_OK)
        return lst_threema_fail(why, LST_ERR_INVALID, "location: bad longitude");
    if (c2 != NULL) {
        const char *acc = c2 + 1;
        if (parse_coord(acc, len - (size_t)(acc - s), 0.0, HUGE_VAL, &l->accuracy) != LST_OK)
            return lst_threema_fail(why, LST_ERR_INVALID, "location: bad accuracy");
        l->has_accuracy = true;
    }
    return LST_OK;
}

static char *dup_line(const char *s, size_t len, bool unescape)
{
    char *d = malloc(len + 1);
    if (d == NULL)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (unescape && s[i] == '\\' && i + 1 < len && s[i + 1] == 'n') {
            d[j++] = '\n';
            i++;
        } else {
            d[j++] = s[i];
        }
    }
    d[j] = '\0';
    return d;
}

static lst_err decode_location(const uint8_t *body, size_t len, struct lst_threema_msg *m,
                               struct lst_buf *why)
{
    const char *s = (const char *)body;
    const char *line[3];
    size_t line_len[3];
    size_t n = 0;
    if (!lst_utf8_valid(s, len) || memchr(s, '\0', len) != NULL)
        return lst_threema_fail(why, LST_ERR_UTF8, "location: invalid UTF-8");
    size_t start = 0;
    for (;;) {
        const char *nl = memchr(s + start, '\n', len - start);
        size_t stop = nl != NULL ? (size_t)(nl - s) : len;
        if (n == 3)
            return lst_threema_fail(why, LST_ERR_INVALID, "location: more than 3 lines");
        line[n] = s + start;
        line_len[n++] = stop - start;
        if (nl == NULL)
            break;
        start = stop + 1;
    }
    lst_err err = parse_coords(line[0], line_len[0], &m->location, why);
    if (err != LST_OK)
        return err;
    /* Two lines: the second is the address; three: name, then address (as the apps do). */
    size_t addr = n == 2 ? 1 : 2;
    if (n == 3 && line_len[1] > 0 &&
        (m->location.name = dup_line(line[1], line_len[1], false)) == NULL)
        return LST_ERR_NOMEM;
    if (n >= 2 && line_len[addr] > 0 &&
        (m->location.address = dup_line(line[addr], line_len[addr], true)) == NULL)
        return LST_ERR_NOMEM;
    return LST_OK;
}

/* ---- receipt, typing, legacy image ------------------------------------------------------------
 */

static lst_err encode_receipt(const struct lst_threema_msg *m, struct lst_buf *out,
                              struct lst_buf *why)
{
    const struct lst_threema_receipt *r = &m->receipt;
    if (r->count == 0 || r->ids == NULL)
        return lst_threema_fail(why, LST_ERR_INVALID, "receipt: no message IDs");
    if (r->count > LST_THREEMA_RECEIPT_IDS_MAX)
        return lst_threema_fail(why, LST_ERR_TOO_LARGE, "receipt: %zu message IDs, at most %d",
                                r->count, LST_THREEMA_RECEIPT_IDS_MAX);
    lst_buf_append(out, &r->status, 1);
    lst_buf_append(out, r->ids, r->count * LST_THREEMA_MSGID_SIZE);
    return lst_buf_failed(out) ? LST_ERR_NOMEM : LST_OK;
}

static lst_err decode_receipt(const uint8_t *body, size_t len, struct lst_threema_msg *m,
                              struct lst_buf *why)
{
    if (len < 1 + LST_THREEMA_MSGID_SIZE || (len - 1) % LST_THREEMA_MSGID_SIZE != 0)
        return lst_threema_fail(why, LST_ERR_INVALID,
                                "receipt: %zu bytes, expected 1 + 8n with n >= 1", len);
    size_t count = (len - 1) / LST_THREEMA_MSGID_SIZE;
    if (count > LST_THREEMA_RECEIPT_IDS_MAX)
        return lst_threema_fail(why, LST_ERR_TOO_LARGE, "receipt: %zu message IDs, at most %d",
                                count, LST_THREEMA_RECEIPT_IDS_MAX);
    m->receipt.ids = malloc(count * LST_THREEMA_MSGID_SIZE);
    if (m->receipt.ids == NULL)
        return LST_ERR_NOMEM;
    m->receipt.status = body[0];
    memcpy(m->receipt.ids, body + 1, count * LST_THREEMA_MSGID_SIZE);
    m->receipt.count = count;
    return LST_OK;
}

static lst_err decode_typing(const uint8_t *body, size_t len, struct lst_threema_msg *m,
                             struct lst_buf *why)
{
    if (len != 1)
        return lst_threema_fail(why, LST_ERR_INVALID, "typing: %zu bytes, expected 1", len);
    m->typing = body[0] != 0;
    return LST_OK;
}

static lst_err decode_image(const uint8_t *body, size_t len, struct lst_threema_msg *m,
                            struct lst_buf *why)
{
    if (len != IMAGE_BODY_SIZE)
        return lst_threema_fail(why, LST_ERR_INVALID, "image: %zu bytes, expected %d", len,
                                IMAGE_BODY_SIZE);
    struct lst_threema_image *img = &m->image;
    lst_threema_hex_encode(body, LST_THREEMA_BLOB_ID_SIZE, img->blob_id, sizeof(img->blob_id));
    const uint8_t *sz = body + LST_THREEMA_BLOB_ID_SIZE;
    img->size = (uint32_t)sz[0] | (uint32_t)sz[1] << 8 | (uint32_t)sz[2] << 16 |
                (uint32_t)sz[3] << 24; /* little-endian */
    memcpy(img->nonce, sz + 4, LST_THREEMA_NONCE_SIZE);
    return LST_OK;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

static uint8_t type_of(enum lst_threema_msg_kind kind)
{
    switch (kind) {
    case LST_THREEMA_MSG_TEXT:
        return LST_THREEMA_TYPE_TEXT;
    case LST_THREEMA_MSG_IMAGE:
        return LST_THREEMA_TYPE_IMAGE;
    case LST_THREEMA_MSG_LOCATION:
        return LST_THREEMA_TYPE_LOCATION;
    case LST_THREEMA_MSG_FILE:
        return LST_THREEMA_TYPE_FILE;
    case LST_THREEMA_MSG_RECEIPT:
        return LST_THREEMA_TYPE_RECEIPT;
    case LST_THREEMA_MSG_TYPING:
        return LST_THREEMA_TYPE_TYPING;
    case LST_THREEMA_MSG_UNSUPPORTED:
        break;
    }
    return 0;
}

lst_err lst_threema_msg_encode_body(const struct lst_threema_msg *m, struct lst_buf *out,
                                    struct lst_buf *why)
{
    lst_err err = LST_OK;
    lst_buf_reset(out);
    switch (m->kind) {
    case LST_THREEMA_MSG_TEXT:
        err = encode_text(m, out, why);
        break;
    case LST_THREEMA_MSG_LOCATION:
        err = encode_location(m, out, why);
        break;
    case LST_THREEMA_MSG_FILE:
        err = lst_threema_file_encode(&m->file, out, why);
        break;
    case LST_THREEMA_MSG_RECEIPT:
        err = encode_receipt(m, out, why);
        break;
    case LST_THREEMA_MSG_TYPING: {
        uint8_t b = m->typing ? 1 : 0;
        err = lst_buf_append(out, &b, 1);
        break;
    }
    default:
        err = lst_threema_fail(why, LST_ERR_INVALID, "%s messages cannot be encoded",
                               lst_threema_msg_kind_name(m->kind));
        break;
    }
    if (err != LST_OK)
        lst_buf_reset(out);
    return err;
}

lst_err lst_threema_msg_encode(const struct lst_threema_msg *m, uint8_t padding,
                               struct lst_buf *out, struct lst_buf *why)
{
    struct lst_buf body;
    lst_buf_init(&body);
    lst_buf_reset(out);
    lst_err err = lst_threema_msg_encode_body(m, &body, why);
    if (err == LST_OK)
        err = lst_threema_pad(type_of(m->kind), (const uint8_t *)body.data, body.len, padding, out);
    if (body.data != NULL)
        sodium_memzero(body.data, body.len); /* file bodies hold the blob key */
    lst_buf_cleanup(&body);
    return err;
}

static enum lst_threema_msg_kind kind_of(uint8_t type)
{
    switch (type) {
    case LST_THREEMA_TYPE_TEXT:
        return LST_THREEMA_MSG_TEXT;
    case LST_THREEMA_TYPE_IMAGE:
        return LST_THREEMA_MSG_IMAGE;
    case LST_THREEMA_TYPE_LOCATION:
        return LST_THREEMA_MSG_LOCATION;
    case LST_THREEMA_TYPE_FILE:
        return LST_THREEMA_MSG_FILE;
    case LST_THREEMA_TYPE_RECEIPT:
        return LST_THREEMA_MSG_RECEIPT;
    case LST_THREEMA_TYPE_TYPING:
        return LST_THREEMA_MSG_TYPING;
    default:
        return LST_THREEMA_MSG_UNSUPPORTED;
    }
}

lst_err lst_threema_msg_decode_body(uint8_t type, const uint8_t *body, size_t len,
                                    struct lst_threema_msg *m, struct lst_buf *why)
{
    lst_err err = LST_OK;
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->kind = kind_of(type);
    m->body_len = len;
    switch (m->kind) {
    case LST_THREEMA_MSG_TEXT:
        err = decode_text(body, len, m, why);
        break;
    case LST_THREEMA_MSG_IMAGE:
        err = decode_image(body, len, m, why);
        break;
    case LST_THREEMA_MSG_LOCATION:
        err = decode_location(body, len, m, why);
        break;
    case LST_THREEMA_MSG_FILE:
        err = lst_threema_file_decode(body, len, &m->file, why);
        break;
    case LST_THREEMA_MSG_RECEIPT:
        err = decode_receipt(body, len, m, why);
        break;
    case LST_THREEMA_MSG_TYPING:
        err = decode_typing(body, len, m, why);
        break;
    case LST_THREEMA_MSG_UNSUPPORTED:
        break; /* type and body_len are all we keep */
    }
    if (err != LST_OK)
        lst_threema_msg_cleanup(m);
    return err;
}

lst_err lst_threema_msg_decode(const uint8_t *data, size_t len, struct lst_threema_msg *m,
                               struct lst_buf *why)
{
    uint8_t type = 0;
    const uint8_t *body = NULL;
    size_t body_len = 0;
    memset(m, 0, sizeof(*m));
    lst_err err = lst_threema_unpad(data, len, &type, &body, &body_len, why);
    if (err != LST_OK)
        return err;
    return lst_threema_msg_decode_body(type, body, body_len, m, why);
}

/* One CSPRNG call for the nonce and the padding length: libsodium's default generator makes a
 * getrandom(2) system call per request, and two per message showed up as a large share of the
 * sealing time in bench_crypto. The padding stays uniform in 1..255 by rejection sampling
 * (bytes of value 0 are skipped); only if all spare bytes are 0, a case of probability 2^-64,
 * does it fall back to randombytes_uniform. */
static void draw_nonce_and_padding(uint8_t nonce[LST_THREEMA_NONCE_SIZE], uint8_t *padding)
{
    uint8_t r[LST_THREEMA_NONCE_SIZE + 8];
    randombytes_buf(r, sizeof(r));
    memcpy(nonce, r, LST_THREEMA_NONCE_SIZE);
    *padding = 0;
    for (size_t i = LST_THREEMA_NONCE_SIZE; i < sizeof(r) && *padding == 0; i++)
        *padding = r[i];
    if (*padding == 0)
        *padding = (uint8_t)(1 + randombytes_uniform(255));
    sodium_memzero(r, sizeof(r));
}

lst_err lst_threema_msg_seal(const struct lst_threema_msg *m, const struct lst_threema_shared *s,
                             uint8_t nonce[LST_THREEMA_NONCE_SIZE], struct lst_buf *box,
                             struct lst_buf *why)
{
    struct lst_buf plain;
    lst_buf_init(&plain);
    lst_buf_reset(box);
    uint8_t padding = 0;
    draw_nonce_and_padding(nonce, &padding);
    lst_err err = lst_threema_msg_encode(m, padding, &plain, why);
    if (err == LST_OK && plain.len + LST_THREEMA_BOX_OVERHEAD > LST_THREEMA_BOX_MAX)
        err = lst_threema_fail(why, LST_ERR_TOO_LARGE, "box: %zu bytes, at most %d",
                               plain.len + LST_THREEMA_BOX_OVERHEAD, LST_THREEMA_BOX_MAX);
    if (err == LST_OK)
        err = lst_threema_encrypt_nonce(s, (const uint8_t *)plain.data, plain.len, nonce, box);
    if (plain.data != NULL)
        sodium_memzero(plain.data, plain.len);
    lst_buf_cleanup(&plain);
    return err;
}

lst_err lst_threema_msg_open(const struct lst_threema_shared *s,
                             const uint8_t nonce[LST_THREEMA_NONCE_SIZE], const uint8_t *box,
                             size_t box_len, struct lst_threema_msg *m, struct lst_buf *why)
{
    struct lst_buf plain;
    lst_buf_init(&plain);
    memset(m, 0, sizeof(*m));
    lst_err err = lst_threema_decrypt(s, nonce, box, box_len, &plain);
    if (err == LST_ERR_INVALID)
        err = lst_threema_fail(why, err, "box: %zu bytes, shorter than the tag", box_len);
    else if (err == LST_ERR_CRYPTO)
        err = lst_threema_fail(why, err, "box: does not decrypt with these keys");
    if (err == LST_OK)
        err = lst_threema_msg_decode((const uint8_t *)plain.data, plain.len, m, why);
    if (plain.data != NULL)
        sodium_memzero(plain.data, plain.len);
    lst_buf_cleanup(&plain);
    return err;
}
