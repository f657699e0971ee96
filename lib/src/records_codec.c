/* The table-driven engine behind every record codec: one decoder, one validator, one encoder
 * and one cleanup, each walking the field tables of records_tables.c. All field lookup code
 * lives here once; a record type is only a table.
 *
 * Decoding is two steps: extract (JSON shape: presence, types, kinds, array counts) into the
 * struct, then the same validation encode runs (lengths, patterns, UTF-8, bounds), so a
 * record that encodes always decodes and vice versa. */
#include "lst/records.h"

#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_CAP      192
#define ITEM_PATH_CAP (PATH_CAP + 24) /* a path plus "[<index>]" */

#define AT(base, off, type)  ((type *)(void *)((char *)(base) + (off)))
#define CAT(base, off, type) ((type const *)(const void *)((const char *)(base) + (off)))
/* item i of an OBJV field's array */
#define ITEM(v, f, i) ((char *)(v)->items + (i) * (f)->item_size)

/* A field path, rendered only when a failure message needs it: on the success path a
 * record's fields cost no formatting. Each level lives on the stack of its caller and points
 * at its parent; NULL is the record itself. */
struct path {
    const struct path *up;
    const char *name; /* the field name (not for an item) */
    bool item;        /* an array item: up[index] */
    size_t index;
};

/* Appends s to dst[0..n) within cap (NUL included), truncating; returns the new length. */
static size_t append(char *dst, size_t cap, size_t n, const char *s)
{
    size_t len = strlen(s);
    if (len > cap - 1 - n)
        len = cap - 1 - n;
    memcpy(dst + n, s, len);
    dst[n + len] = '\0';
    return n + len;
}

/* Writes the path as "a.b.c" or "a.b[2]" into dst, truncated as fixed buffers of PATH_CAP
 * (ITEM_PATH_CAP for an item) would; returns its length. */
static size_t render(const struct path *p, char *dst, size_t cap)
{
    if (p == NULL) {
        dst[0] = '\0';
        return 0;
    }
    size_t c = p->item || cap < PATH_CAP ? cap : PATH_CAP;
    size_t n = render(p->up, dst, c);
    if (p->item) {
        char idx[32];
        snprintf(idx, sizeof(idx), "[%zu]", p->index);
        return append(dst, c, n, idx);
    }
    if (n > 0)
        n = append(dst, c, n, ".");
    return append(dst, c, n, p->name != NULL ? p->name : "(null)");
}

static lst_err fail(struct lst_buf *why, lst_err err, const struct path *path, const char *fmt, ...)
    LST_PRINTF(4, 5);

/* Writes "<path>: <message>" into why (replacing it) and returns err. */
static lst_err fail(struct lst_buf *why, lst_err err, const struct path *path, const char *fmt, ...)
{
    if (why == NULL)
        return err;
    char msg[256], where[ITEM_PATH_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    render(path, where, sizeof(where));
    lst_buf_reset(why);
    lst_buf_printf(why, "%s: %s", where[0] != '\0' ? where : "record", msg);
    return err;
}

static bool has_flag(const struct lst_field *f, const void *rec)
{
    return f->has_off != LST_NO_HAS && *CAT(rec, f->has_off, bool);
}

static void set_has(const struct lst_field *f, void *rec)
{
    if (f->has_off != LST_NO_HAS)
        *AT(rec, f->has_off, bool) = true;
}

/* Enums are stored in their own enum types; gcc and clang make those int-sized (the tables
 * only name enums whose values fit), and int/unsigned access is allowed aliasing. */
static int get_enum(const struct lst_field *f, const void *rec)
{
    int v;
    memcpy(&v, CAT(rec, f->off, char), sizeof(v));
    return v;
}

/* The kind bit of rec under table t; every bit when the table has no kinds. Only called
 * after the discriminator was checked to be in range. */
static unsigned kind_bit(const struct lst_table *t, const void *rec)
{
    if (t->disc < 0)
        return LST_KINDS_ALL;
    return 1u << get_enum(&t->fields[t->disc], rec);
}

static const char *kind_name(const struct lst_table *t, const void *rec)
{
    const struct lst_field *d = &t->fields[t->disc];
    return d->names[get_enum(d, rec)];
}

static lst_err fail_not_allowed(struct lst_buf *why, const struct lst_table *t, const void *rec,
                                const struct path *path)
{
    return fail(why, LST_ERR_INVALID, path, "not allowed when %s is %s", t->fields[t->disc].name,
                kind_name(t, rec));
}

/* ---- validation ------------------------------------------------------------------------ */

static lst_err validate_table(const struct lst_table *t, const void *rec, const struct path *path,
                              struct lst_buf *why);

/* min_len: the field's own minimum for a string field, 1 for array items. */
static lst_err check_str(const struct lst_field *f, const char *s, size_t len, size_t min_len,
                         const struct path *path, struct lst_buf *why)
{
    if (len < min_len)
        return fail(why, LST_ERR_INVALID, path, "empty (omit optional fields instead)");
    if (len > f->max_len)
        return fail(why, LST_ERR_TOO_LARGE, path, "exceeds %zu bytes", f->max_len);
    if (!lst_utf8_valid(s, len))
        return fail(why, LST_ERR_UTF8, path, "invalid UTF-8");
    if (f->pattern != NULL && !f->pattern->match(s, len))
        return fail(why, LST_ERR_INVALID, path, "does not match %s", f->pattern->regex);
    return LST_OK;
}

/* The item count of a list field (STRV, OBJV) against its bounds. */
static lst_err check_count(const struct lst_field *f, size_t len, const struct path *path,
                           struct lst_buf *why)
{
    if ((int64_t)len > f->max)
        return fail(why, LST_ERR_TOO_LARGE, path, "more than %lld items", (long long)f->max);
    if ((int64_t)len < f->min)
        return fail(why, LST_ERR_INVALID, path, "needs at least %lld items", (long long)f->min);
    return LST_OK;
}

static lst_err validate_strv(const struct lst_field *f, const struct lst_strv *v,
                             const struct path *path, struct lst_buf *why)
{
    lst_err cerr = check_count(f, v->len, path, why);
    if (cerr != LST_OK)
        return cerr;
    for (size_t i = 0; i < v->len; i++) {
        const struct path ipath = {.up = path, .item = true, .index = i};
        if (v->items[i] == NULL)
            return fail(why, LST_ERR_INVALID, &ipath, "missing");
        lst_err err = check_str(f, v->items[i], strlen(v->items[i]), 1, &ipath, why);
        if (err != LST_OK)
            return err;
    }
    return LST_OK;
}

static lst_err validate_objv(const struct lst_field *f, const struct lst_objv *v,
                             const struct path *path, struct lst_buf *why)
{
    lst_err cerr = check_count(f, v->len, path, why);
    if (cerr != LST_OK)
        return cerr;
    for (size_t i = 0; i < v->len; i++) {
        const struct path ipath = {.up = path, .item = true, .index = i};
        lst_err err = validate_table(f->sub, ITEM(v, f, i), &ipath, why);
        if (err != LST_OK)
            return err;
    }
    return LST_OK;
}

/* Validates the value of a field that is present and allowed. */
static lst_err validate_value(const struct lst_field *f, const void *rec, const struct path *path,
                              struct lst_buf *why)
{
    switch (f->type) {
    case LST_FT_STR: {
        const char *s = *CAT(rec, f->off, char *);
        return check_str(f, s, strlen(s), (size_t)f->min, path, why);
    }
    case LST_FT_INT: {
        int64_t v = *CAT(rec, f->off, int64_t);
        if (v < f->min || v > f->max)
            return fail(why, LST_ERR_RANGE, path, "out of range [%lld, %lld]", (long long)f->min,
                        (long long)f->max);
        return LST_OK;
    }
    case LST_FT_NUM: {
        double v = *CAT(rec, f->off, double);
        if (!isfinite(v) || v < f->dmin || v > f->dmax)
            return fail(why, LST_ERR_RANGE, path, "out of range [%g, %g]", f->dmin, f->dmax);
        return LST_OK;
    }
    case LST_FT_ENUM: {
        int v = get_enum(f, rec);
        if (v < 0 || (size_t)v >= f->names_len)
            return fail(why, LST_ERR_INVALID, path, "unknown value");
        return LST_OK;
    }
    case LST_FT_OBJ:
        return validate_table(f->sub, CAT(rec, f->off, char), path, why);
    case LST_FT_VERSION:
    case LST_FT_BOOL:
    case LST_FT_STRV:
    case LST_FT_OBJV:
        break;
    }
    return LST_OK;
}

/* Whether a field counts as present in the struct (for validation and encoding). */
static bool present_in_struct(const struct lst_field *f, const void *rec, bool required)
{
    switch (f->type) {
    case LST_FT_STR:
        return *CAT(rec, f->off, char *) != NULL;
    case LST_FT_STRV:
        return required || CAT(rec, f->off, struct lst_strv)->len > 0;
    case LST_FT_OBJV:
        return required || CAT(rec, f->off, struct lst_objv)->len > 0;
    case LST_FT_VERSION:
    case LST_FT_ENUM:
        return true;
    case LST_FT_INT:
    case LST_FT_NUM:
    case LST_FT_BOOL:
    case LST_FT_OBJ:
        break;
    }
    return required || has_flag(f, rec);
}

static lst_err validate_field(const struct lst_table *t, const struct lst_field *f, const void *rec,
                              unsigned kb, const struct path *path, struct lst_buf *why)
{
    bool allowed = (f->allow & kb) != 0;
    bool required = (f->req & kb) != 0;
    const struct path fpath = {.up = path, .name = f->name};
    if (f->type == LST_FT_STRV) {
        const struct lst_strv *v = CAT(rec, f->off, struct lst_strv);
        if (!allowed)
            return v->len > 0 ? fail_not_allowed(why, t, rec, &fpath) : LST_OK;
        return validate_strv(f, v, &fpath, why);
    }
    if (f->type == LST_FT_OBJV) {
        const struct lst_objv *v = CAT(rec, f->off, struct lst_objv);
        if (!allowed)
            return v->len > 0 ? fail_not_allowed(why, t, rec, &fpath) : LST_OK;
        return validate_objv(f, v, &fpath, why);
    }
    if (!present_in_struct(f, rec, required)) {
        if (required)
            return fail(why, LST_ERR_INVALID, &fpath, "missing");
        return LST_OK;
    }
    if (!allowed) {
        /* A plain bool or number cannot say "absent": only flagged or pointer fields count. */
        if (f->type == LST_FT_STR || has_flag(f, rec))
            return fail_not_allowed(why, t, rec, &fpath);
        return LST_OK;
    }
    return validate_value(f, rec, &fpath, why);
}

static lst_err validate_table(const struct lst_table *t, const void *rec, const struct path *path,
                              struct lst_buf *why)
{
    if (t->disc >= 0) {
        const struct path dpath = {.up = path, .name = t->fields[t->disc].name};
        lst_err err = validate_value(&t->fields[t->disc], rec, &dpath, why);
        if (err != LST_OK)
            return err;
    }
    unsigned kb = kind_bit(t, rec);
    for (size_t i = 0; i < t->count; i++) {
        lst_err err = validate_field(t, &t->fields[i], rec, kb, path, why);
        if (err != LST_OK)
            return err;
    }
    if (t->check != NULL) {
        const char *field = NULL, *msg = NULL;
        lst_err err = t->check(rec, &field, &msg);
        if (err != LST_OK) {
            const struct path fpath = {.up = path, .name = field};
            return fail(why, err, &fpath, "%s", msg);
        }
    }
    return LST_OK;
}

lst_err lst_rec_validate(const struct lst_rec_type *t, const void *rec, struct lst_buf *why)
{
    return validate_table(t->table, rec, NULL, why);
}

/* ---- extraction from JSON ------------------------------------------------------------- */

static lst_err extract_table(const struct lst_table *t, struct json_object *obj,
                             const struct path *path, void *rec, struct lst_buf *why);

static lst_err dup_json_str(struct json_object *v, const struct path *path, char **out,
                            struct lst_buf *why)
{
    if (!json_object_is_type(v, json_type_string))
        return fail(why, LST_ERR_INVALID, path, "expected string");
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    /* json-c turns \u0000 into a real NUL; a C string cannot hold it. */
    if (memchr(s, '\0', len) != NULL)
        return fail(why, LST_ERR_INVALID, path, "contains a NUL character");
    char *p = malloc(len + 1);
    if (p == NULL)
        return LST_ERR_NOMEM;
    memcpy(p, s, len + 1);
    *out = p;
    return LST_OK;
}

static lst_err extract_strv(const struct lst_field *f, struct json_object *v,
                            const struct path *path, struct lst_strv *out, struct lst_buf *why)
{
    if (!json_object_is_type(v, json_type_array))
        return fail(why, LST_ERR_INVALID, path, "expected array");
    size_t n = json_object_array_length(v);
    if ((int64_t)n > f->max)
        return fail(why, LST_ERR_TOO_LARGE, path, "more than %lld items", (long long)f->max);
    out->items = calloc(n > 0 ? n : 1, sizeof(char *));
    if (out->items == NULL)
        return LST_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct path ipath = {.up = path, .item = true, .index = i};
        lst_err err = dup_json_str(json_object_array_get_idx(v, i), &ipath, &out->items[i], why);
        if (err != LST_OK)
            return err;
        out->len = i + 1;
    }
    return LST_OK;
}

/* Counts items as they are filled, so that cleanup frees a partly extracted array. */
static lst_err extract_objv(const struct lst_field *f, struct json_object *v,
                            const struct path *path, struct lst_objv *out, struct lst_buf *why)
{
    if (!json_object_is_type(v, json_type_array))
        return fail(why, LST_ERR_INVALID, path, "expected array");
    size_t n = json_object_array_length(v);
    if ((int64_t)n > f->max)
        return fail(why, LST_ERR_TOO_LARGE, path, "more than %lld items", (long long)f->max);
    out->items = calloc(n > 0 ? n : 1, f->item_size);
    if (out->items == NULL)
        return LST_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct path ipath = {.up = path, .item = true, .index = i};
        struct json_object *item = json_object_array_get_idx(v, i);
        if (!json_object_is_type(item, json_type_object))
            return fail(why, LST_ERR_INVALID, &ipath, "expected object");
        out->len = i + 1;
        lst_err err = extract_table(f->sub, item, &ipath, ITEM(out, f, i), why);
        if (err != LST_OK)
            return err;
    }
    return LST_OK;
}

static lst_err extract_enum(const struct lst_field *f, struct json_object *v,
                            const struct path *path, void *rec, struct lst_buf *why)
{
    if (!json_object_is_type(v, json_type_string))
        return fail(why, LST_ERR_INVALID, path, "expected string");
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v); /* "text\u0000x" is not "text" */
    for (size_t i = 0; i < f->names_len; i++) {
        if (strlen(f->names[i]) == len && memcmp(s, f->names[i], len) == 0) {
            int idx = (int)i;
            memcpy(AT(rec, f->off, char), &idx, sizeof(idx));
            return LST_OK;
        }
    }
    /* The value is not echoed: it is untrusted input that ends up in logs and DLQ reasons. */
    return fail(why, LST_ERR_INVALID, path, "unknown value");
}

static lst_err extract_version(struct json_object *v, const struct path *path, struct lst_buf *why)
{
    if (!json_object_is_type(v, json_type_int))
        return fail(why, LST_ERR_INVALID, path, "expected integer");
    int64_t ver = json_object_get_int64(v);
    if (ver != LST_RECORD_VERSION)
        return fail(why, LST_ERR_VERSION, path, "unsupported schema version %lld", (long long)ver);
    return LST_OK;
}

static lst_err extract_value(const struct lst_field *f, struct json_object *v,
                             const struct path *path, void *rec, struct lst_buf *why)
{
    switch (f->type) {
    case LST_FT_VERSION:
        return extract_version(v, path, why);
    case LST_FT_STR:
        return dup_json_str(v, path, AT(rec, f->off, char *), why);
    case LST_FT_INT:
        /* json-c clamps integers beyond int64 to INT64_MIN/MAX; the bounds catch those. */
        if (!json_object_is_type(v, json_type_int))
            return fail(why, LST_ERR_INVALID, path, "expected integer");
        *AT(rec, f->off, int64_t) = json_object_get_int64(v);
        return LST_OK;
    case LST_FT_NUM:
        /* json-c accepts NaN and Infinity even in strict mode: rejected by validation. */
        if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
            return fail(why, LST_ERR_INVALID, path, "expected number");
        *AT(rec, f->off, double) = json_object_get_double(v);
        return LST_OK;
    case LST_FT_BOOL:
        if (!json_object_is_type(v, json_type_boolean))
            return fail(why, LST_ERR_INVALID, path, "expected boolean");
        *AT(rec, f->off, bool) = json_object_get_boolean(v) != 0;
        return LST_OK;
    case LST_FT_ENUM:
        return extract_enum(f, v, path, rec, why);
    case LST_FT_STRV:
        return extract_strv(f, v, path, AT(rec, f->off, struct lst_strv), why);
    case LST_FT_OBJV:
        return extract_objv(f, v, path, AT(rec, f->off, struct lst_objv), why);
    case LST_FT_OBJ:
        if (!json_object_is_type(v, json_type_object))
            return fail(why, LST_ERR_INVALID, path, "expected object");
        return extract_table(f->sub, v, path, AT(rec, f->off, char), why);
    }
    return LST_ERR_INVALID;
}

static lst_err extract_field(const struct lst_table *t, const struct lst_field *f,
                             struct json_object *obj, unsigned kb, const struct path *path,
                             void *rec, struct lst_buf *why)
{
    const struct path fpath = {.up = path, .name = f->name};
    bool required = (f->req & kb) != 0;
    struct json_object *v = NULL;
    bool found = json_object_object_get_ex(obj, f->name, &v);
    /* JSON null is "absent" for optional fields; for required ones it is a wrong type. */
    if (!found || (v == NULL && !required)) {
        if (required)
            return fail(why, LST_ERR_INVALID, &fpath, "missing");
        return LST_OK;
    }
    if ((f->allow & kb) == 0)
        return fail_not_allowed(why, t, rec, &fpath);
    if (v == NULL)
        return fail(why, LST_ERR_INVALID, &fpath, "must not be null");
    lst_err err = extract_value(f, v, &fpath, rec, why);
    if (err == LST_OK)
        set_has(f, rec);
    return err;
}

/* Order: the version first (a v2 record may look like anything), then the kind (it decides
 * which fields belong), then the rest in table order. */
static lst_err extract_table(const struct lst_table *t, struct json_object *obj,
                             const struct path *path, void *rec, struct lst_buf *why)
{
    size_t first = 0;
    lst_err err = LST_OK;
    if (t->count > 0 && t->fields[0].type == LST_FT_VERSION) {
        err = extract_field(t, &t->fields[0], obj, LST_KINDS_ALL, path, rec, why);
        first = 1;
    }
    if (err == LST_OK && t->disc >= 0)
        err = extract_field(t, &t->fields[t->disc], obj, LST_KINDS_ALL, path, rec, why);
    if (err != LST_OK)
        return err;
    unsigned kb = kind_bit(t, rec);
    for (size_t i = first; i < t->count; i++) {
        if ((int)i == t->disc)
            continue;
        err = extract_field(t, &t->fields[i], obj, kb, path, rec, why);
        if (err != LST_OK)
            return err;
    }
    return LST_OK;
}

/* Parses data as exactly one JSON object (strict: no comments, no trailing commas, nothing
 * but whitespace after it). Returns the object (release with json_object_put). */
static lst_err parse_object(const char *data, size_t len, struct json_object **out,
                            struct lst_buf *why)
{
    lst_err err = LST_OK;
    struct json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return LST_ERR_NOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    struct json_object *root = json_tokener_parse_ex(tok, data, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (root == NULL && jerr == json_tokener_continue) {
        /* A bare number or literal ("42", "true") may go on in a next chunk: json-c waits
         * for more. A NUL byte is its end-of-input marker and settles it. */
        root = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        end = len;
    }
    if (root == NULL && (jerr == json_tokener_continue || jerr == json_tokener_error_parse_eof)) {
        err = fail(why, LST_ERR_INVALID, NULL, "not JSON (truncated)");
    } else if (root == NULL && jerr == json_tokener_success) {
        err = fail(why, LST_ERR_INVALID, NULL, "expected a JSON object"); /* JSON null */
    } else if (root == NULL) {
        err = fail(why, LST_ERR_INVALID, NULL, "not JSON (%s at byte %zu)",
                   json_tokener_error_desc(jerr), end);
    } else if (end < len) {
        /* strict mode stops at a NUL byte without complaint */
        err = fail(why, LST_ERR_INVALID, NULL, "trailing data at byte %zu", end);
    } else if (!json_object_is_type(root, json_type_object)) {
        err = fail(why, LST_ERR_INVALID, NULL, "expected a JSON object");
    }
    json_tokener_free(tok);
    if (err != LST_OK) {
        json_object_put(root);
        return err;
    }
    *out = root;
    return LST_OK;
}

lst_err lst_rec_decode(const struct lst_rec_type *t, const char *data, size_t len, void *out,
                       struct lst_buf *why)
{
    memset(out, 0, t->size);
    if (data == NULL || len == 0)
        return fail(why, LST_ERR_INVALID, NULL, "empty (a tombstone is not a record)");
    if (len > LST_RECORD_MAX)
        return fail(why, LST_ERR_TOO_LARGE, NULL, "exceeds %d bytes", LST_RECORD_MAX);
    struct json_object *root = NULL;
    lst_err err = parse_object(data, len, &root, why);
    if (err != LST_OK)
        goto out;
    err = extract_table(t->table, root, NULL, out, why);
    if (err == LST_OK)
        err = validate_table(t->table, out, NULL, why);
    /* json-c keeps invalid UTF-8 as is; the fields we read were checked one by one, this
     * catches the rest (unknown fields, keys) so that nothing invalid is passed on. */
    if (err == LST_OK && !lst_utf8_valid(data, len))
        err = fail(why, LST_ERR_UTF8, NULL, "invalid UTF-8 outside the known fields");
out:
    if (err == LST_ERR_NOMEM && why != NULL)
        fail(why, err, NULL, "out of memory");
    if (err != LST_OK)
        lst_rec_cleanup(t, out);
    json_object_put(root);
    return err;
}

/* ---- encoding ------------------------------------------------------------------------- */

static void encode_table(const struct lst_table *t, const void *rec, struct lst_buf *out);

/* The shortest of %.15g..%.17g that reads back as the same double. */
static void put_double(struct lst_buf *out, double d)
{
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    lst_buf_puts(out, tmp);
}

static void put_str(struct lst_buf *out, const char *s)
{
    lst_buf_json_str(out, s, strlen(s));
}

static void encode_value(const struct lst_field *f, const void *rec, struct lst_buf *out)
{
    switch (f->type) {
    case LST_FT_VERSION:
        lst_buf_printf(out, "%d", LST_RECORD_VERSION);
        break;
    case LST_FT_STR:
        put_str(out, *CAT(rec, f->off, char *));
        break;
    case LST_FT_INT:
        lst_buf_printf(out, "%lld", (long long)*CAT(rec, f->off, int64_t));
        break;
    case LST_FT_NUM:
        put_double(out, *CAT(rec, f->off, double));
        break;
    case LST_FT_BOOL:
        lst_buf_puts(out, *CAT(rec, f->off, bool) ? "true" : "false");
        break;
    case LST_FT_ENUM:
        put_str(out, f->names[get_enum(f, rec)]);
        break;
    case LST_FT_STRV: {
        const struct lst_strv *v = CAT(rec, f->off, struct lst_strv);
        lst_buf_puts(out, "[");
        for (size_t i = 0; i < v->len; i++) {
            if (i > 0)
                lst_buf_puts(out, ",");
            put_str(out, v->items[i]);
        }
        lst_buf_puts(out, "]");
        break;
    }
    case LST_FT_OBJ:
        encode_table(f->sub, CAT(rec, f->off, char), out);
        break;
    case LST_FT_OBJV: {
        const struct lst_objv *v = CAT(rec, f->off, struct lst_objv);
        lst_buf_puts(out, "[");
        for (size_t i = 0; i < v->len; i++) {
            if (i > 0)
                lst_buf_puts(out, ",");
            encode_table(f->sub, ITEM(v, f, i), out);
        }
        lst_buf_puts(out, "]");
        break;
    }
    }
}

/* rec has been validated: every field written is present, allowed and in bounds. */
static void encode_table(const struct lst_table *t, const void *rec, struct lst_buf *out)
{
    unsigned kb = kind_bit(t, rec);
    bool first = true;
    lst_buf_puts(out, "{");
    for (size_t i = 0; i < t->count; i++) {
        const struct lst_field *f = &t->fields[i];
        if ((f->allow & kb) == 0 || !present_in_struct(f, rec, (f->req & kb) != 0))
            continue;
        if (!first)
            lst_buf_puts(out, ",");
        first = false;
        put_str(out, f->name);
        lst_buf_puts(out, ":");
        encode_value(f, rec, out);
    }
    lst_buf_puts(out, "}");
}

lst_err lst_rec_encode(const struct lst_rec_type *t, const void *rec, struct lst_buf *out)
{
    lst_buf_reset(out);
    lst_err err = validate_table(t->table, rec, NULL, NULL);
    if (err != LST_OK)
        return err;
    encode_table(t->table, rec, out);
    if (lst_buf_failed(out))
        err = LST_ERR_NOMEM;
    else if (out->len > LST_RECORD_MAX)
        err = LST_ERR_TOO_LARGE;
    if (err != LST_OK)
        lst_buf_reset(out);
    return err;
}

/* ---- cleanup -------------------------------------------------------------------------- */

static void cleanup_table(const struct lst_table *t, void *rec)
{
    if (t->cleanup != NULL)
        t = t->cleanup;
    for (size_t i = 0; i < t->count; i++) {
        const struct lst_field *f = &t->fields[i];
        if (f->type == LST_FT_STR) {
            free(*AT(rec, f->off, char *));
            *AT(rec, f->off, char *) = NULL;
        } else if (f->type == LST_FT_STRV) {
            lst_strv_cleanup(AT(rec, f->off, struct lst_strv));
        } else if (f->type == LST_FT_OBJ) {
            cleanup_table(f->sub, AT(rec, f->off, char));
        } else if (f->type == LST_FT_OBJV) {
            struct lst_objv *v = AT(rec, f->off, struct lst_objv);
            for (size_t j = 0; j < v->len; j++)
                cleanup_table(f->sub, ITEM(v, f, j));
            free(v->items);
            v->items = NULL;
            v->len = 0;
        }
    }
}

void lst_rec_cleanup(const struct lst_rec_type *t, void *rec)
{
    if (rec == NULL)
        return;
    cleanup_table(t->table, rec);
    memset(rec, 0, t->size);
}

lst_err lst_strv_push(struct lst_strv *v, const char *s)
{
    char *copy = lst_strdup(s);
    if (copy == NULL)
        return LST_ERR_NOMEM;
    char **items = realloc(v->items, (v->len + 1) * sizeof(char *));
    if (items == NULL) {
        free(copy);
        return LST_ERR_NOMEM;
    }
    items[v->len++] = copy;
    v->items = items;
    return LST_OK;
}

bool lst_strv_has(const struct lst_strv *v, const char *s)
{
    for (size_t i = 0; s != NULL && i < v->len; i++) {
        if (strcmp(v->items[i], s) == 0)
            return true;
    }
    return false;
}

void lst_strv_cleanup(struct lst_strv *v)
{
    for (size_t i = 0; i < v->len; i++)
        free(v->items[i]);
    free(v->items);
    v->items = NULL;
    v->len = 0;
}
