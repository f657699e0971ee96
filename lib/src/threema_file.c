/* Threema protocol: the file message (type 0x17), a compact JSON object, through json-c.
 *
 * json-c quirks handled here: the tokener accepts trailing data unless we check where it
 * stopped; it escapes '/' unless told not to; it only validates UTF-8 with
 * JSON_TOKENER_VALIDATE_UTF8; "\u0000" yields strings with embedded NULs (we check lengths);
 * an object with a repeated key keeps the last value (as Python's json does). */
#include "lst/threema.h"
#include "threema_internal.h"

#include <json-c/json.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_JSON_MAX 16384 /* bytes of a file message body */
#define FILE_STR_MAX  4096  /* bytes of one string in it */

void lst_threema_file_cleanup(struct lst_threema_file *f)
{
    if (f == NULL)
        return;
    free(f->mime);
    free(f->name);
    free(f->thumbnail_mime);
    free(f->caption);
    sodium_memzero(f, sizeof(*f));
}

/* ---- encode -----------------------------------------------------------------------------------
 */

static bool blob_id_valid(const char *hex)
{
    uint8_t tmp[LST_THREEMA_BLOB_ID_SIZE];
    return lst_threema_hex_decode(hex, strlen(hex), tmp, sizeof(tmp)) == LST_OK;
}

static lst_err check_str(const char *key, const char *s, bool required, struct lst_buf *why)
{
    if (s == NULL)
        return required ? lst_threema_fail(why, LST_ERR_INVALID, "file.%s: missing", key) : LST_OK;
    size_t len = strlen(s);
    if (required && len == 0)
        return lst_threema_fail(why, LST_ERR_INVALID, "file.%s: empty", key);
    if (len > FILE_STR_MAX)
        return lst_threema_fail(why, LST_ERR_TOO_LARGE, "file.%s: %zu bytes, at most %d", key, len,
                                FILE_STR_MAX);
    if (!lst_utf8_valid(s, len))
        return lst_threema_fail(why, LST_ERR_UTF8, "file.%s: invalid UTF-8", key);
    return LST_OK;
}

static lst_err validate(const struct lst_threema_file *f, struct lst_buf *why)
{
    if (!blob_id_valid(f->blob_id))
        return lst_threema_fail(why, LST_ERR_INVALID, "file.b: blob ID must be 32 hex");
    if (lst_threema_key_is_zero(f->key))
        return lst_threema_fail(why, LST_ERR_INVALID, "file.k: all-zero key");
    if (f->size < 0)
        return lst_threema_fail(why, LST_ERR_RANGE, "file.s: negative size");
    if (f->thumbnail_blob_id[0] != '\0' && !blob_id_valid(f->thumbnail_blob_id))
        return lst_threema_fail(why, LST_ERR_INVALID, "file.t: blob ID must be 32 hex");
    if (f->has_duration && (!isfinite(f->duration) || f->duration < 0))
        return lst_threema_fail(why, LST_ERR_RANGE, "file.x.d: bad duration");
    if ((f->has_width && f->width < 0) || (f->has_height && f->height < 0))
        return lst_threema_fail(why, LST_ERR_RANGE, "file.x: negative dimension");
    lst_err err = check_str("m", f->mime, true, why);
    if (err == LST_OK)
        err = check_str("n", f->name, false, why);
    if (err == LST_OK)
        err = check_str("p", f->thumbnail_mime, false, why);
    if (err == LST_OK)
        err = check_str("d", f->caption, false, why);
    return err;
}

/* Adds key -> val to obj, taking val; false when out of memory. */
static bool put(struct json_object *obj, const char *key, struct json_object *val)
{
    if (val == NULL)
        return false;
    if (json_object_object_add(obj, key, val) != 0) {
        json_object_put(val);
        return false;
    }
    return true;
}

static struct json_object *lower_hex(const char *hex)
{
    char tmp[LST_THREEMA_BLOB_ID_HEX + 1];
    size_t len = strlen(hex);
    for (size_t i = 0; i < len && i < LST_THREEMA_BLOB_ID_HEX; i++)
        tmp[i] = (hex[i] >= 'A' && hex[i] <= 'F') ? (char)(hex[i] - 'A' + 'a') : hex[i];
    tmp[LST_THREEMA_BLOB_ID_HEX] = '\0';
    return json_object_new_string(tmp);
}

/* The duration with its shortest exact text, so 1.5 stays "1.5" rather than json-c's %.17g. */
static struct json_object *new_double(double v)
{
    char s[40];
    snprintf(s, sizeof(s), "%.15g", v);
    if (strtod(s, NULL) != v)
        snprintf(s, sizeof(s), "%.17g", v);
    return json_object_new_double_s(v, s);
}

static bool build_meta(const struct lst_threema_file *f, struct json_object *obj)
{
    struct json_object *x = json_object_new_object();
    if (x == NULL)
        return false;
    bool ok = true;
    if (f->has_width)
        ok = ok && put(x, "w", json_object_new_int64(f->width));
    if (f->has_height)
        ok = ok && put(x, "h", json_object_new_int64(f->height));
    if (f->has_duration)
        ok = ok && put(x, "d", new_double(f->duration));
    if (f->has_animated)
        ok = ok && put(x, "a", json_object_new_boolean(f->animated));
    if (!ok) {
        json_object_put(x);
        return false;
    }
    return put(obj, "x", x);
}

static struct json_object *build(const struct lst_threema_file *f)
{
    char key_hex[LST_THREEMA_KEY_HEX + 1];
    struct json_object *obj = json_object_new_object();
    if (obj == NULL)
        return NULL;
    lst_threema_hex_encode(f->key, sizeof(f->key), key_hex, sizeof(key_hex));
    bool ok = put(obj, "b", lower_hex(f->blob_id)) &&
              put(obj, "k", json_object_new_string(key_hex)) &&
              put(obj, "m", json_object_new_string(f->mime)) &&
              put(obj, "s", json_object_new_int64(f->size));
    sodium_memzero(key_hex, sizeof(key_hex));
    if (ok && f->name != NULL)
        ok = put(obj, "n", json_object_new_string(f->name));
    if (ok && f->thumbnail_blob_id[0] != '\0')
        ok = put(obj, "t", lower_hex(f->thumbnail_blob_id));
    if (ok && f->thumbnail_mime != NULL)
        ok = put(obj, "p", json_object_new_string(f->thumbnail_mime));
    if (ok && f->caption != NULL)
        ok = put(obj, "d", json_object_new_string(f->caption));
    if (ok && f->has_rendering)
        ok = put(obj, "j", json_object_new_int(f->rendering));
    if (ok && f->has_legacy)
        ok = put(obj, "i", json_object_new_int(f->legacy));
    if (ok && f->has_meta)
        ok = build_meta(f, obj);
    if (!ok) {
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

lst_err lst_threema_file_encode(const struct lst_threema_file *f, struct lst_buf *out,
                                struct lst_buf *why)
{
    lst_err err = validate(f, why);
    if (err != LST_OK)
        return err;
    struct json_object *obj = build(f);
    if (obj == NULL)
        return LST_ERR_NOMEM;
    size_t len = 0;
    /* PLAIN is the compact form (no spaces); json-c keeps insertion order of keys. */
    const char *s = json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (s == NULL)
        err = LST_ERR_NOMEM;
    else if (len > FILE_JSON_MAX)
        err = lst_threema_fail(why, LST_ERR_TOO_LARGE, "file: JSON of %zu bytes", len);
    else
        err = lst_buf_append(out, s, len);
    /* The serialisation holds the blob key; json-c frees it with the object. */
    if (s != NULL)
        sodium_memzero((void *)(uintptr_t)s, len);
    json_object_put(obj);
    return err;
}

/* ---- decode -----------------------------------------------------------------------------------
 */

/* The value of key when it has type t, else NULL. */
static struct json_object *get(struct json_object *obj, const char *key, enum json_type t)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, t))
        return NULL;
    return v;
}

/* A copy of a string value without NULs, valid UTF-8 and at most FILE_STR_MAX bytes. */
static lst_err get_str(struct json_object *obj, const char *key, char **out)
{
    *out = NULL;
    struct json_object *v = get(obj, key, json_type_string);
    if (v == NULL)
        return LST_ERR_NOT_FOUND;
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (len > FILE_STR_MAX)
        return LST_ERR_TOO_LARGE;
    if (memchr(s, '\0', len) != NULL || !lst_utf8_valid(s, len))
        return LST_ERR_INVALID;
    *out = malloc(len + 1);
    if (*out == NULL)
        return LST_ERR_NOMEM;
    memcpy(*out, s, len + 1);
    return LST_OK;
}

/* Optional string: absent, wrongly typed or malformed leaves it NULL (ignored). */
static lst_err get_opt_str(struct json_object *obj, const char *key, char **out)
{
    lst_err err = get_str(obj, key, out);
    return err == LST_ERR_NOMEM ? err : LST_OK;
}

/* A blob ID as lowercase hex; false when absent or not 32 hex. */
static bool get_blob_id(struct json_object *obj, const char *key,
                        char out[LST_THREEMA_BLOB_ID_HEX + 1])
{
    uint8_t bin[LST_THREEMA_BLOB_ID_SIZE];
    struct json_object *v = get(obj, key, json_type_string);
    if (v == NULL ||
        lst_threema_hex_decode(json_object_get_string(v), (size_t)json_object_get_string_len(v),
                               bin, sizeof(bin)) != LST_OK)
        return false;
    lst_threema_hex_encode(bin, sizeof(bin), out, LST_THREEMA_BLOB_ID_HEX + 1);
    return true;
}

static lst_err decode_required(struct json_object *obj, struct lst_threema_file *f,
                               struct lst_buf *why)
{
    if (get(obj, "b", json_type_string) == NULL)
        return lst_threema_fail(why, LST_ERR_INVALID, "file.b: missing");
    if (!get_blob_id(obj, "b", f->blob_id))
        return lst_threema_fail(why, LST_ERR_INVALID, "file.b: blob ID must be 32 hex");
    struct json_object *k = get(obj, "k", json_type_string);
    if (k == NULL)
        return lst_threema_fail(why, LST_ERR_INVALID, "file.k: missing");
    if (lst_threema_hex_decode(json_object_get_string(k), (size_t)json_object_get_string_len(k),
                               f->key, sizeof(f->key)) != LST_OK)
        return lst_threema_fail(why, LST_ERR_INVALID, "file.k: key must be 64 hex");
    lst_err err = get_str(obj, "m", &f->mime);
    if (err == LST_ERR_NOMEM)
        return err;
    if (err == LST_ERR_NOT_FOUND)
        return lst_threema_fail(why, LST_ERR_INVALID, "file.m: missing");
    if (err != LST_OK || f->mime[0] == '\0')
        return lst_threema_fail(why, err == LST_OK ? LST_ERR_INVALID : err,
                                "file.m: empty, too long or not UTF-8");
    struct json_object *s = get(obj, "s", json_type_int);
    if (s == NULL)
        return lst_threema_fail(why, LST_ERR_INVALID, "file.s: missing (an integer)");
    f->size = json_object_get_int64(s);
    if (f->size < 0)
        return lst_threema_fail(why, LST_ERR_RANGE, "file.s: negative size");
    return LST_OK;
}

static void decode_meta(struct json_object *obj, struct lst_threema_file *f)
{
    struct json_object *x = get(obj, "x", json_type_object);
    if (x == NULL)
        return;
    f->has_meta = true;
    struct json_object *v;
    if ((v = get(x, "w", json_type_int)) != NULL) {
        f->has_width = true;
        f->width = json_object_get_int64(v);
    }
    if ((v = get(x, "h", json_type_int)) != NULL) {
        f->has_height = true;
        f->height = json_object_get_int64(v);
    }
    if ((v = get(x, "d", json_type_int)) != NULL || (v = get(x, "d", json_type_double)) != NULL) {
        f->has_duration = true;
        f->duration = json_object_get_double(v);
    }
    if ((v = get(x, "a", json_type_boolean)) != NULL) {
        f->has_animated = true;
        f->animated = json_object_get_boolean(v);
    }
}

static int clamp_int(int64_t v)
{
    return v < -1000000 ? -1000000 : v > 1000000 ? 1000000 : (int)v;
}

static lst_err decode_optional(struct json_object *obj, struct lst_threema_file *f)
{
    lst_err err = get_opt_str(obj, "n", &f->name);
    if (err == LST_OK)
        err = get_opt_str(obj, "p", &f->thumbnail_mime);
    if (err == LST_OK)
        err = get_opt_str(obj, "d", &f->caption);
    if (err != LST_OK)
        return err;
    if (!get_blob_id(obj, "t", f->thumbnail_blob_id))
        f->thumbnail_blob_id[0] = '\0';
    struct json_object *v;
    if ((v = get(obj, "j", json_type_int)) != NULL) {
        f->has_rendering = true;
        f->rendering = clamp_int(json_object_get_int64(v));
    }
    if ((v = get(obj, "i", json_type_int)) != NULL) {
        f->has_legacy = true;
        f->legacy = clamp_int(json_object_get_int64(v));
    }
    decode_meta(obj, f);
    return LST_OK;
}

static lst_err parse_json(const uint8_t *body, size_t len, struct json_object **out,
                          struct lst_buf *why)
{
    *out = NULL;
    if (len == 0)
        return lst_threema_fail(why, LST_ERR_INVALID, "file: empty body");
    if (len > FILE_JSON_MAX)
        return lst_threema_fail(why, LST_ERR_TOO_LARGE, "file: %zu bytes of JSON", len);
    if (!lst_utf8_valid((const char *)body, len) || memchr(body, '\0', len) != NULL)
        return lst_threema_fail(why, LST_ERR_UTF8, "file: JSON is not UTF-8");
    struct json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return LST_ERR_NOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    struct json_object *obj = json_tokener_parse_ex(tok, (const char *)body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    while (end < len &&
           (body[end] == ' ' || body[end] == '\n' || body[end] == '\r' || body[end] == '\t'))
        end++;
    if (obj == NULL || jerr != json_tokener_success || end != len) {
        json_object_put(obj);
        return lst_threema_fail(why, LST_ERR_INVALID, "file: not a JSON document");
    }
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        return lst_threema_fail(why, LST_ERR_INVALID, "file: JSON is not an object");
    }
    *out = obj;
    return LST_OK;
}

lst_err lst_threema_file_decode(const uint8_t *body, size_t len, struct lst_threema_file *f,
                                struct lst_buf *why)
{
    struct json_object *obj = NULL;
    memset(f, 0, sizeof(*f));
    lst_err err = parse_json(body, len, &obj, why);
    if (err == LST_OK)
        err = decode_required(obj, f, why);
    if (err == LST_OK)
        err = decode_optional(obj, f);
    json_object_put(obj);
    if (err != LST_OK)
        lst_threema_file_cleanup(f);
    return err;
}
