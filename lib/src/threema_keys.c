/* Threema protocol: initialisation, hex helpers, identifiers and keys (text form, key files,
 * derivation). */
#include "lst/threema.h"
#include "threema_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PRIVATE_PREFIX "private:"
#define PUBLIC_PREFIX  "public:"
#define KEY_LINE_MAX   256 /* a key line is 72 chars; anything longer is not a key file */

lst_err lst_threema_init(void)
{
    /* 0 on first success, 1 when already initialised, -1 on failure. */
    return sodium_init() < 0 ? LST_ERR_CRYPTO : LST_OK;
}

void lst_threema_wipe(void *p, size_t len)
{
    if (p != NULL)
        sodium_memzero(p, len);
}

lst_err lst_threema_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_size)
{
    size_t bin_len = 0;
    const char *end = NULL;
    if (hex == NULL || hex_len != 2 * out_size)
        return LST_ERR_INVALID;
    /* Without an ignore set sodium_hex2bin stops at the first non-hex char and reports where:
     * demand that it consumed everything and filled everything. */
    if (sodium_hex2bin(out, out_size, hex, hex_len, NULL, &bin_len, &end) != 0 ||
        bin_len != out_size || end != hex + hex_len)
        return LST_ERR_INVALID;
    return LST_OK;
}

void lst_threema_hex_encode(const uint8_t *in, size_t len, char *out, size_t out_size)
{
    if (out_size < 2 * len + 1) {
        if (out_size > 0)
            out[0] = '\0';
        return;
    }
    sodium_bin2hex(out, out_size, in, len); /* lowercase, NUL-terminated */
}

lst_err lst_threema_hex_decode_buf(const char *hex, size_t hex_len, struct lst_buf *out)
{
    lst_buf_reset(out);
    if (hex_len == 0 || hex_len % 2 != 0)
        return LST_ERR_INVALID;
    size_t n = hex_len / 2;
    /* Grow through lst_buf so that the buffer owns the memory, then decode in place. */
    lst_err err = lst_buf_append(out, hex, n); /* placeholder bytes, overwritten below */
    if (err != LST_OK)
        return err;
    err = lst_threema_hex_decode(hex, hex_len, (uint8_t *)out->data, n);
    if (err != LST_OK)
        lst_buf_reset(out);
    return err;
}

bool lst_threema_id_valid(const char *s, size_t len)
{
    if (s == NULL || len != LST_THREEMA_ID_SIZE)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (i == 0 && c == '*');
        if (!ok)
            return false;
    }
    return true;
}

bool lst_threema_key_is_zero(const uint8_t key[LST_THREEMA_KEY_SIZE])
{
    return sodium_is_zero(key, LST_THREEMA_KEY_SIZE) == 1;
}

static const char *kind_prefix(enum lst_threema_key_kind kind)
{
    return kind == LST_THREEMA_KEY_PRIVATE ? PRIVATE_PREFIX : PUBLIC_PREFIX;
}

static const char *kind_name(enum lst_threema_key_kind kind)
{
    return kind == LST_THREEMA_KEY_PRIVATE ? "private" : "public";
}

lst_err lst_threema_key_parse(const char *s, enum lst_threema_key_kind kind,
                              uint8_t key[LST_THREEMA_KEY_SIZE], struct lst_buf *why)
{
    const char *prefix = kind_prefix(kind);
    size_t plen = strlen(prefix);
    const char *other = kind_prefix(kind == LST_THREEMA_KEY_PRIVATE ? LST_THREEMA_KEY_PUBLIC
                                                                    : LST_THREEMA_KEY_PRIVATE);
    if (s == NULL)
        return lst_threema_fail(why, LST_ERR_INVALID, "%s key: missing", kind_name(kind));
    if (strncmp(s, other, strlen(other)) == 0)
        return lst_threema_fail(
            why, LST_ERR_INVALID, "%s key expected, got a %s key", kind_name(kind),
            kind_name(kind == LST_THREEMA_KEY_PRIVATE ? LST_THREEMA_KEY_PUBLIC
                                                      : LST_THREEMA_KEY_PRIVATE));
    if (strncmp(s, prefix, plen) != 0)
        return lst_threema_fail(why, LST_ERR_INVALID, "%s key: must start with \"%s\"",
                                kind_name(kind), prefix);
    const char *hex = s + plen;
    size_t hex_len = strlen(hex);
    if (hex_len != LST_THREEMA_KEY_HEX)
        return lst_threema_fail(why, LST_ERR_INVALID, "%s key: %zu hex chars, expected %d",
                                kind_name(kind), hex_len, LST_THREEMA_KEY_HEX);
    if (lst_threema_hex_decode(hex, hex_len, key, LST_THREEMA_KEY_SIZE) != LST_OK) {
        sodium_memzero(key, LST_THREEMA_KEY_SIZE);
        return lst_threema_fail(why, LST_ERR_INVALID, "%s key: not hex", kind_name(kind));
    }
    if (lst_threema_key_is_zero(key))
        return lst_threema_fail(why, LST_ERR_INVALID, "%s key: all zero", kind_name(kind));
    return LST_OK;
}

void lst_threema_key_format(enum lst_threema_key_kind kind, const uint8_t key[LST_THREEMA_KEY_SIZE],
                            char out[LST_THREEMA_KEY_STR_SIZE])
{
    const char *prefix = kind_prefix(kind);
    size_t plen = strlen(prefix);
    memcpy(out, prefix, plen);
    lst_threema_hex_encode(key, LST_THREEMA_KEY_SIZE, out + plen, LST_THREEMA_KEY_STR_SIZE - plen);
}

/* Reads at most the first KEY_LINE_MAX bytes of path into line (NUL-terminated, first line
 * only, trailing whitespace trimmed). */
static lst_err read_first_line(const char *path, char *line, size_t cap, struct lst_buf *why)
{
    lst_err result = LST_OK;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return lst_threema_fail(why, errno == ENOENT ? LST_ERR_NOT_FOUND : LST_ERR_IO,
                                "key file %s: %s", path, strerror(errno));
    size_t n = fread(line, 1, cap - 1, f);
    if (ferror(f)) {
        result = lst_threema_fail(why, LST_ERR_IO, "key file %s: read error", path);
        goto out;
    }
    line[n] = '\0';
    char *nl = memchr(line, '\n', n);
    if (nl != NULL)
        *nl = '\0';
    else if (n == cap - 1) {
        result = lst_threema_fail(why, LST_ERR_INVALID, "key file %s: first line too long", path);
        goto out;
    }
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
        line[--len] = '\0';
out:
    fclose(f);
    return result;
}

lst_err lst_threema_key_read_file(const char *path, enum lst_threema_key_kind kind,
                                  uint8_t key[LST_THREEMA_KEY_SIZE], struct lst_buf *why)
{
    char line[KEY_LINE_MAX + 1];
    lst_err err = read_first_line(path, line, sizeof(line), why);
    if (err == LST_OK)
        err = lst_threema_key_parse(line, kind, key, why);
    sodium_memzero(line, sizeof(line));
    return err;
}

lst_err lst_threema_key_load(const char *arg, enum lst_threema_key_kind kind,
                             uint8_t key[LST_THREEMA_KEY_SIZE], struct lst_buf *why)
{
    if (arg == NULL)
        return lst_threema_fail(why, LST_ERR_INVALID, "%s key: missing", kind_name(kind));
    if (strncmp(arg, PRIVATE_PREFIX, strlen(PRIVATE_PREFIX)) == 0 ||
        strncmp(arg, PUBLIC_PREFIX, strlen(PUBLIC_PREFIX)) == 0)
        return lst_threema_key_parse(arg, kind, key, why);
    return lst_threema_key_read_file(arg, kind, key, why);
}

lst_err lst_threema_key_write_file(const char *path, enum lst_threema_key_kind kind,
                                   const uint8_t key[LST_THREEMA_KEY_SIZE], struct lst_buf *why)
{
    lst_err result = LST_OK;
    char line[LST_THREEMA_KEY_STR_SIZE + 1];
    mode_t mode = kind == LST_THREEMA_KEY_PRIVATE ? 0600 : 0644;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return lst_threema_fail(why, LST_ERR_IO, "key file %s: %s", path, strerror(errno));
    lst_threema_key_format(kind, key, line);
    size_t len = strlen(line);
    line[len++] = '\n';
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, line + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            result = lst_threema_fail(why, LST_ERR_IO, "key file %s: %s", path, strerror(errno));
            goto out;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0)
        result = lst_threema_fail(why, LST_ERR_IO, "key file %s: %s", path, strerror(errno));
out:
    sodium_memzero(line, sizeof(line));
    if (close(fd) != 0 && result == LST_OK)
        result = lst_threema_fail(why, LST_ERR_IO, "key file %s: %s", path, strerror(errno));
    return result;
}

lst_err lst_threema_key_derive(const uint8_t sk[LST_THREEMA_KEY_SIZE],
                               uint8_t pk[LST_THREEMA_KEY_SIZE])
{
    if (lst_threema_key_is_zero(sk))
        return LST_ERR_INVALID;
    /* crypto_box's public key is the X25519 base-point multiple of the secret key. */
    if (crypto_scalarmult_base(pk, sk) != 0)
        return LST_ERR_CRYPTO;
    return LST_OK;
}

lst_err lst_threema_key_generate(uint8_t sk[LST_THREEMA_KEY_SIZE], uint8_t pk[LST_THREEMA_KEY_SIZE])
{
    return crypto_box_keypair(pk, sk) == 0 ? LST_OK : LST_ERR_CRYPTO;
}

lst_err lst_threema_fail(struct lst_buf *why, lst_err err, const char *fmt, ...)
{
    if (why == NULL)
        return err;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    lst_buf_reset(why);
    lst_buf_puts(why, msg);
    return err;
}
