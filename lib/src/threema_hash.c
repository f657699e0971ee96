/* Threema protocol: lookup hashes (HMAC-SHA256 with the Gateway's fixed keys) and the
 * normalisation of e-mail addresses and phone numbers before hashing. */
#include "lst/threema.h"
#include "threema_internal.h"

#include <sodium.h>
#include <string.h>

/* The two fixed HMAC keys published in the Gateway API and every SDK. */
static const uint8_t email_key[32] = {
    0x30, 0xa5, 0x50, 0x0f, 0xed, 0x97, 0x01, 0xfa, 0x6d, 0xef, 0xdb, 0x61, 0x08, 0x41, 0x90, 0x0f,
    0xeb, 0xb8, 0xe4, 0x30, 0x88, 0x1f, 0x7a, 0xd8, 0x16, 0x82, 0x62, 0x64, 0xec, 0x09, 0xba, 0xd7};
static const uint8_t phone_key[32] = {
    0x85, 0xad, 0xf8, 0x22, 0x69, 0x53, 0xf3, 0xd9, 0x6c, 0xfd, 0x5d, 0x09, 0xbf, 0x29, 0x55, 0x5e,
    0xb9, 0x55, 0xfc, 0xd8, 0xaa, 0x5e, 0xc4, 0xf9, 0xfc, 0xd8, 0x69, 0xe2, 0x58, 0x37, 0x07, 0x23};

#define EMAIL_MAX  254
#define PHONE_MAX  15 /* E.164 digits */
#define PHONE_SEPS " +-()./"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

lst_err lst_threema_normalize_email(const char *email, struct lst_buf *out)
{
    lst_buf_reset(out);
    if (email == NULL)
        return LST_ERR_INVALID;
    size_t len = strlen(email);
    while (len > 0 && is_space(*email)) {
        email++;
        len--;
    }
    while (len > 0 && is_space(email[len - 1]))
        len--;
    if (len == 0 || len > EMAIL_MAX)
        return len == 0 ? LST_ERR_INVALID : LST_ERR_TOO_LARGE;
    for (size_t i = 0; i < len; i++) {
        char c = email[i];
        /* ASCII only: the SDKs lowercase with ASCII rules, non-ASCII bytes pass unchanged. */
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        lst_buf_append(out, &c, 1);
    }
    if (lst_buf_failed(out)) {
        lst_buf_reset(out);
        return LST_ERR_NOMEM;
    }
    return LST_OK;
}

lst_err lst_threema_normalize_phone(const char *phone, struct lst_buf *out)
{
    size_t digits = 0;
    lst_buf_reset(out);
    if (phone == NULL)
        return LST_ERR_INVALID;
    for (const char *p = phone; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++digits > PHONE_MAX) {
                lst_buf_reset(out);
                return LST_ERR_TOO_LARGE;
            }
            lst_buf_append(out, p, 1);
        } else if (strchr(PHONE_SEPS, *p) == NULL) {
            lst_buf_reset(out);
            return LST_ERR_INVALID;
        }
    }
    if (lst_buf_failed(out)) {
        lst_buf_reset(out);
        return LST_ERR_NOMEM;
    }
    return digits == 0 ? LST_ERR_INVALID : LST_OK;
}

static void hmac_hex(const uint8_t key[32], const struct lst_buf *msg,
                     char out[LST_THREEMA_HASH_HEX + 1])
{
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, 32);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)msg->data, msg->len);
    crypto_auth_hmacsha256_final(&st, mac);
    lst_threema_hex_encode(mac, sizeof(mac), out, LST_THREEMA_HASH_HEX + 1);
}

lst_err lst_threema_hash_email(const char *email, char out[LST_THREEMA_HASH_HEX + 1])
{
    struct lst_buf norm;
    lst_buf_init(&norm);
    out[0] = '\0';
    lst_err err = lst_threema_normalize_email(email, &norm);
    if (err == LST_OK)
        hmac_hex(email_key, &norm, out);
    lst_buf_cleanup(&norm);
    return err;
}

lst_err lst_threema_hash_phone(const char *phone, char out[LST_THREEMA_HASH_HEX + 1])
{
    struct lst_buf norm;
    lst_buf_init(&norm);
    out[0] = '\0';
    lst_err err = lst_threema_normalize_phone(phone, &norm);
    if (err == LST_OK)
        hmac_hex(phone_key, &norm, out);
    lst_buf_cleanup(&norm);
    return err;
}
