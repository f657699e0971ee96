/* Threema protocol: the incoming-message callback. A form body is split and URL-decoded, the
 * MAC is checked in constant time, and only then are the field formats looked at. */
#include "lst/threema.h"
#include "threema_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum field { F_FROM, F_TO, F_MESSAGE_ID, F_DATE, F_NONCE, F_BOX, F_MAC, F_NICKNAME, F_COUNT };

static const char *const field_names[F_COUNT] = {"from",  "to",  "messageId", "date",
                                                 "nonce", "box", "mac",       "nickname"};

/* Fuzz builds only: random inputs never carry a right MAC, so parse lets them reach the
 * checks behind it. */
#ifdef LST_FUZZING
#define FUZZING true
#else
#define FUZZING false
#endif

#define NICKNAME_MAX 256 /* bytes; the apps allow 32 characters */

/* The URL-decoded values, each NUL-terminated (owned). */
struct form {
    char *v[F_COUNT];
    size_t len[F_COUNT];
};

static void form_cleanup(struct form *f)
{
    for (int i = 0; i < F_COUNT; i++)
        free(f->v[i]);
    memset(f, 0, sizeof(*f));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* URL-decodes s[0..len) ('+' is a space, %XX a byte) into a new NUL-terminated string. */
static lst_err url_decode(const char *s, size_t len, char **out, size_t *out_len)
{
    *out = NULL;
    char *d = malloc(len + 1);
    if (d == NULL)
        return LST_ERR_NOMEM;
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            d[j++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(d);
                return LST_ERR_INVALID;
            }
            d[j++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            d[j++] = s[i];
        }
    }
    d[j] = '\0';
    *out = d;
    *out_len = j;
    return LST_OK;
}

static int field_of(const char *name, size_t len)
{
    for (int i = 0; i < F_COUNT; i++)
        if (strlen(field_names[i]) == len && memcmp(field_names[i], name, len) == 0)
            return i;
    return -1;
}

/* One "name=value" pair. Unknown names are ignored. */
static lst_err parse_pair(const char *p, size_t len, struct form *f, struct lst_buf *why)
{
    const char *eq = memchr(p, '=', len);
    size_t name_len = eq != NULL ? (size_t)(eq - p) : len;
    char *name = NULL;
    size_t dec_len = 0;
    lst_err err = url_decode(p, name_len, &name, &dec_len);
    if (err != LST_OK)
        return err == LST_ERR_INVALID
                   ? lst_threema_fail(why, err, "form: bad %%-escape in a field name")
                   : err;
    int idx = memchr(name, '\0', dec_len) == NULL ? field_of(name, dec_len) : -1;
    free(name);
    if (idx < 0)
        return LST_OK;
    if (f->v[idx] != NULL)
        return lst_threema_fail(why, LST_ERR_INVALID, "%s: given twice", field_names[idx]);
    if (eq == NULL)
        return lst_threema_fail(why, LST_ERR_INVALID, "%s: no value", field_names[idx]);
    err = url_decode(eq + 1, len - name_len - 1, &f->v[idx], &f->len[idx]);
    if (err == LST_ERR_INVALID)
        return lst_threema_fail(why, err, "%s: bad %%-escape", field_names[idx]);
    if (err == LST_OK && memchr(f->v[idx], '\0', f->len[idx]) != NULL)
        return lst_threema_fail(why, LST_ERR_INVALID, "%s: contains a NUL byte", field_names[idx]);
    return err;
}

static lst_err parse_form(const char *body, size_t len, struct form *f, struct lst_buf *why)
{
    size_t start = 0;
    while (start <= len) {
        const char *amp = memchr(body + start, '&', len - start);
        size_t stop = amp != NULL ? (size_t)(amp - body) : len;
        if (stop > start) {
            lst_err err = parse_pair(body + start, stop - start, f, why);
            if (err != LST_OK)
                return err;
        }
        if (amp == NULL)
            break;
        start = stop + 1;
    }
    for (int i = 0; i < F_MAC + 1; i++)
        if (f->v[i] == NULL)
            return lst_threema_fail(why, LST_ERR_INVALID, "%s: missing", field_names[i]);
    return LST_OK;
}

void lst_threema_callback_mac(const char *secret, const char *from, const char *to,
                              const char *message_id, const char *date, const char *nonce_hex,
                              const char *box_hex, uint8_t mac[LST_THREEMA_MAC_SIZE])
{
    crypto_auth_hmacsha256_state st;
    const char *parts[] = {from, to, message_id, date, nonce_hex, box_hex};
    /* HMAC keys of any length: libsodium hashes keys longer than the block, as RFC 2104. */
    crypto_auth_hmacsha256_init(&st, (const uint8_t *)secret, strlen(secret));
    for (size_t i = 0; i < LST_ARRAY_LEN(parts); i++)
        crypto_auth_hmacsha256_update(&st, (const uint8_t *)parts[i], strlen(parts[i]));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}

static lst_err verify_mac(const struct form *f, const char *secret, uint8_t mac[32],
                          bool skip_for_fuzzing, struct lst_buf *why)
{
    uint8_t want[LST_THREEMA_MAC_SIZE];
    if (lst_threema_hex_decode(f->v[F_MAC], f->len[F_MAC], mac, LST_THREEMA_MAC_SIZE) != LST_OK)
        return lst_threema_fail(why, LST_ERR_INVALID, "mac: must be %d hex", LST_THREEMA_MAC_HEX);
    lst_threema_callback_mac(secret, f->v[F_FROM], f->v[F_TO], f->v[F_MESSAGE_ID], f->v[F_DATE],
                             f->v[F_NONCE], f->v[F_BOX], want);
    int diff = sodium_memcmp(want, mac, LST_THREEMA_MAC_SIZE);
    sodium_memzero(want, sizeof(want));
    if (diff != 0 && !skip_for_fuzzing)
        return lst_threema_fail(why, LST_ERR_CRYPTO, "mac: does not match");
    return LST_OK;
}

static lst_err check_ids(const struct form *f, struct lst_threema_callback *cb, struct lst_buf *why)
{
    if (!lst_threema_id_valid(f->v[F_FROM], f->len[F_FROM]))
        return lst_threema_fail(why, LST_ERR_INVALID, "from: not a Threema ID");
    if (!lst_threema_id_valid(f->v[F_TO], f->len[F_TO]))
        return lst_threema_fail(why, LST_ERR_INVALID, "to: not a Threema ID");
    memcpy(cb->from, f->v[F_FROM], LST_THREEMA_ID_SIZE + 1);
    memcpy(cb->to, f->v[F_TO], LST_THREEMA_ID_SIZE + 1);
    if (lst_threema_hex_decode(f->v[F_MESSAGE_ID], f->len[F_MESSAGE_ID], cb->message_id_bytes,
                               LST_THREEMA_MSGID_SIZE) != LST_OK)
        return lst_threema_fail(why, LST_ERR_INVALID, "messageId: must be %d hex",
                                LST_THREEMA_MSGID_HEX);
    lst_threema_hex_encode(cb->message_id_bytes, LST_THREEMA_MSGID_SIZE, cb->message_id,
                           sizeof(cb->message_id));
    /* Decimal digits only: lst_parse_i64 would also take a sign. */
    for (size_t i = 0; i < f->len[F_DATE]; i++)
        if (f->v[F_DATE][i] < '0' || f->v[F_DATE][i] > '9')
            return lst_threema_fail(why, LST_ERR_INVALID, "date: not a decimal number");
    lst_err err = lst_parse_i64(f->v[F_DATE], 0, INT64_C(253402300799), &cb->date);
    if (err != LST_OK)
        return lst_threema_fail(why, err, "date: %s",
                                err == LST_ERR_RANGE ? "out of range" : "not a decimal number");
    return LST_OK;
}

static lst_err check_payload(const struct form *f, struct lst_threema_callback *cb,
                             struct lst_buf *why)
{
    if (lst_threema_hex_decode(f->v[F_NONCE], f->len[F_NONCE], cb->nonce, LST_THREEMA_NONCE_SIZE) !=
        LST_OK)
        return lst_threema_fail(why, LST_ERR_INVALID, "nonce: must be %d hex",
                                LST_THREEMA_NONCE_HEX);
    size_t box_hex = f->len[F_BOX];
    if (box_hex % 2 != 0)
        return lst_threema_fail(why, LST_ERR_INVALID, "box: odd number of hex chars");
    if (box_hex / 2 > LST_THREEMA_IN_BOX_MAX)
        return lst_threema_fail(why, LST_ERR_TOO_LARGE, "box: %zu bytes, at most %d", box_hex / 2,
                                LST_THREEMA_IN_BOX_MAX);
    if (box_hex / 2 < LST_THREEMA_BOX_MIN)
        return lst_threema_fail(why, LST_ERR_INVALID, "box: %zu bytes, at least %d", box_hex / 2,
                                LST_THREEMA_BOX_MIN);
    cb->box = malloc(box_hex / 2);
    if (cb->box == NULL)
        return LST_ERR_NOMEM;
    if (lst_threema_hex_decode(f->v[F_BOX], box_hex, cb->box, box_hex / 2) != LST_OK)
        return lst_threema_fail(why, LST_ERR_INVALID, "box: not hex");
    cb->box_len = box_hex / 2;
    if (f->v[F_NICKNAME] != NULL) {
        if (f->len[F_NICKNAME] > NICKNAME_MAX)
            return lst_threema_fail(why, LST_ERR_TOO_LARGE, "nickname: %zu bytes",
                                    f->len[F_NICKNAME]);
        if (!lst_utf8_valid(f->v[F_NICKNAME], f->len[F_NICKNAME]))
            return lst_threema_fail(why, LST_ERR_UTF8, "nickname: invalid UTF-8");
        cb->nickname = lst_strdup(f->v[F_NICKNAME]);
        if (cb->nickname == NULL)
            return LST_ERR_NOMEM;
    }
    return LST_OK;
}

lst_err lst_threema_callback_parse(const char *body, size_t len, const char *secret,
                                   struct lst_threema_callback *out, struct lst_buf *why)
{
    struct form f;
    memset(&f, 0, sizeof(f));
    memset(out, 0, sizeof(*out));
    lst_err err = LST_OK;
    if (body == NULL || secret == NULL) {
        err = LST_ERR_INVALID;
        goto out;
    }
    err = parse_form(body, len, &f, why);
    if (err == LST_OK)
        err = verify_mac(&f, secret, out->mac, FUZZING, why);
    if (err == LST_OK)
        err = check_ids(&f, out, why);
    if (err == LST_OK)
        err = check_payload(&f, out, why);
out:
    form_cleanup(&f);
    if (err != LST_OK)
        lst_threema_callback_cleanup(out);
    return err;
}

lst_err lst_threema_callback_verify(const char *body, size_t len, const char *secret,
                                    struct lst_buf *why)
{
    struct form f;
    uint8_t mac[LST_THREEMA_MAC_SIZE];
    memset(&f, 0, sizeof(f));
    if (body == NULL || secret == NULL)
        return LST_ERR_INVALID;
    lst_err err = parse_form(body, len, &f, why);
    if (err == LST_OK)
        err = verify_mac(&f, secret, mac, false, why);
    form_cleanup(&f);
    return err;
}

void lst_threema_callback_cleanup(struct lst_threema_callback *cb)
{
    if (cb == NULL)
        return;
    free(cb->box);
    free(cb->nickname);
    memset(cb, 0, sizeof(*cb));
}

/* ---- building (the simulator's side) ------------------------------------------------------- */

lst_err lst_threema_url_encode(const char *s, size_t len, struct lst_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';
        if (plain) {
            lst_buf_append(out, &s[i], 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            lst_buf_append(out, esc, 3);
        }
    }
    return lst_buf_failed(out) ? LST_ERR_NOMEM : LST_OK;
}

static void add_field(struct lst_buf *out, const char *name, const char *value)
{
    if (out->len > 0)
        lst_buf_puts(out, "&");
    lst_buf_puts(out, name);
    lst_buf_puts(out, "=");
    lst_threema_url_encode(value, strlen(value), out);
}

lst_err lst_threema_callback_build(const struct lst_threema_callback *cb, const char *secret,
                                   struct lst_buf *body, struct lst_buf *why)
{
    char msgid[LST_THREEMA_MSGID_HEX + 1], date[24], nonce[LST_THREEMA_NONCE_HEX + 1];
    char mac_hex[LST_THREEMA_MAC_HEX + 1];
    uint8_t mac[LST_THREEMA_MAC_SIZE];
    char *box_hex = NULL;
    lst_err err = LST_OK;
    lst_buf_reset(body);
    if (!lst_threema_id_valid(cb->from, strnlen(cb->from, sizeof(cb->from))) ||
        !lst_threema_id_valid(cb->to, strnlen(cb->to, sizeof(cb->to))))
        return lst_threema_fail(why, LST_ERR_INVALID, "from/to: not Threema IDs");
    if (cb->box_len < LST_THREEMA_BOX_MIN || cb->box_len > LST_THREEMA_IN_BOX_MAX ||
        cb->box == NULL)
        return lst_threema_fail(why, LST_ERR_INVALID, "box: %zu bytes", cb->box_len);
    if (cb->date < 0)
        return lst_threema_fail(why, LST_ERR_RANGE, "date: negative");
    if (cb->nickname != NULL && !lst_utf8_valid(cb->nickname, strlen(cb->nickname)))
        return lst_threema_fail(why, LST_ERR_UTF8, "nickname: invalid UTF-8");
    /* message_id_bytes is authoritative; the hex member may be empty. */
    lst_threema_hex_encode(cb->message_id_bytes, LST_THREEMA_MSGID_SIZE, msgid, sizeof(msgid));
    snprintf(date, sizeof(date), "%lld", (long long)cb->date);
    lst_threema_hex_encode(cb->nonce, LST_THREEMA_NONCE_SIZE, nonce, sizeof(nonce));
    box_hex = malloc(2 * cb->box_len + 1);
    if (box_hex == NULL)
        return LST_ERR_NOMEM;
    lst_threema_hex_encode(cb->box, cb->box_len, box_hex, 2 * cb->box_len + 1);
    lst_threema_callback_mac(secret, cb->from, cb->to, msgid, date, nonce, box_hex, mac);
    lst_threema_hex_encode(mac, sizeof(mac), mac_hex, sizeof(mac_hex));
    add_field(body, "from", cb->from);
    add_field(body, "to", cb->to);
    add_field(body, "messageId", msgid);
    add_field(body, "date", date);
    add_field(body, "nonce", nonce);
    add_field(body, "box", box_hex);
    add_field(body, "mac", mac_hex);
    if (cb->nickname != NULL)
        add_field(body, "nickname", cb->nickname);
    if (lst_buf_failed(body)) {
        lst_buf_reset(body);
        err = LST_ERR_NOMEM;
    }
    free(box_hex);
    return err;
}
