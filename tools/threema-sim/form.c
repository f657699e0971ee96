/* Request bodies of the Gateway API: application/x-www-form-urlencoded (send_simple,
 * send_e2e) and multipart/form-data (upload_blob, part "blob"). The callback body the phones
 * send is built by lst_threema_callback_build; this file only reads what clients send. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim.h"

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

/* Decodes s[0..len) ('+' is a space, %XX a byte) into out (replaced). */
static lst_err url_decode(const char *s, size_t len, struct lst_buf *out)
{
    lst_buf_reset(out);
    for (size_t i = 0; i < len;) {
        /* a run of plain bytes in one append: a box is hundreds of hex digits */
        size_t end = i;
        while (end < len && s[end] != '+' && s[end] != '%')
            end++;
        if (end > i) {
            lst_buf_append(out, s + i, end - i);
            i = end;
            continue;
        }
        char c = ' ';
        if (s[i] == '%') {
            int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return LST_ERR_INVALID;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        lst_buf_append(out, &c, 1);
        i++;
    }
    if (lst_buf_failed(out))
        return LST_ERR_NOMEM;
    if (out->data == NULL)
        lst_buf_append(out, "", 0);
    return lst_buf_failed(out) ? LST_ERR_NOMEM : LST_OK;
}

static lst_err add_field(struct sim_form *f, struct lst_buf *name, struct lst_buf *value)
{
    struct sim_form_field *grown = realloc(f->fields, (f->n + 1) * sizeof(*grown));
    if (grown == NULL)
        return LST_ERR_NOMEM;
    f->fields = grown;
    struct sim_form_field *fld = &f->fields[f->n];
    fld->value_len = value->len;
    fld->name = lst_buf_steal(name);
    fld->value = lst_buf_steal(value);
    if (fld->name == NULL)
        fld->name = lst_strdup("");
    if (fld->value == NULL)
        fld->value = lst_strdup("");
    f->n++;
    return fld->name != NULL && fld->value != NULL ? LST_OK : LST_ERR_NOMEM;
}

lst_err sim_form_parse_urlencoded(struct sim_form *f, const char *body, size_t len)
{
    struct lst_buf name, value;
    lst_buf_init(&name);
    lst_buf_init(&value);
    lst_err err = LST_OK;
    const char *p = body, *end = body + len;
    while (err == LST_OK && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *name_end = eq != NULL ? eq : stop;
        if (stop > p) {
            err = url_decode(p, (size_t)(name_end - p), &name);
            if (err == LST_OK)
                err = eq != NULL ? url_decode(eq + 1, (size_t)(stop - eq - 1), &value)
                                 : url_decode("", 0, &value);
            if (err == LST_OK)
                err = add_field(f, &name, &value);
        }
        p = stop + 1;
    }
    lst_buf_cleanup(&name);
    lst_buf_cleanup(&value);
    return err;
}

static const char *find_bytes(const char *hay, size_t hay_len, const char *needle, size_t n)
{
    if (n == 0 || hay_len < n)
        return NULL;
    for (size_t i = 0; i + n <= hay_len; i++) {
        if (hay[i] == needle[0] && memcmp(hay + i, needle, n) == 0)
            return hay + i;
    }
    return NULL;
}

/* The boundary parameter of a multipart Content-Type, possibly quoted, into out. */
static lst_err boundary_of(const char *content_type, struct lst_buf *out)
{
    if (content_type == NULL || strncasecmp(content_type, "multipart/form-data", 19) != 0)
        return LST_ERR_INVALID;
    const char *b = strstr(content_type, "boundary=");
    if (b == NULL)
        return LST_ERR_INVALID;
    b += 9;
    bool quoted = *b == '"';
    if (quoted)
        b++;
    size_t n = 0;
    while (b[n] != '\0' && (quoted ? b[n] != '"' : (b[n] != ';' && b[n] != ' ')))
        n++;
    if (n == 0 || n > 70)
        return LST_ERR_INVALID;
    lst_buf_puts(out, "--");
    lst_buf_append(out, b, n);
    return lst_buf_failed(out) ? LST_ERR_NOMEM : LST_OK;
}

/* The name="..." of a part's Content-Disposition header within headers[0..len). */
static lst_err part_name(const char *headers, size_t len, struct lst_buf *out)
{
    const char *n = find_bytes(headers, len, "name=\"", 6);
    if (n == NULL)
        return LST_ERR_INVALID;
    n += 6;
    const char *q = memchr(n, '"', len - (size_t)(n - headers));
    if (q == NULL)
        return LST_ERR_INVALID;
    lst_buf_reset(out);
    lst_buf_append(out, n, (size_t)(q - n));
    if (out->data == NULL)
        lst_buf_append(out, "", 0);
    return lst_buf_failed(out) ? LST_ERR_NOMEM : LST_OK;
}

/* One part between p and the next delimiter: headers, blank line, content. */
static lst_err take_part(struct sim_form *f, const char *p, size_t len)
{
    struct lst_buf name, value;
    lst_buf_init(&name);
    lst_buf_init(&value);
    lst_err err = LST_ERR_INVALID;
    const char *sep = find_bytes(p, len, "\r\n\r\n", 4);
    if (sep != NULL) {
        err = part_name(p, (size_t)(sep - p), &name);
        const char *content = sep + 4;
        if (err == LST_OK) {
            lst_buf_append(&value, content, len - (size_t)(content - p));
            if (value.data == NULL)
                lst_buf_append(&value, "", 0);
            err = lst_buf_failed(&value) ? LST_ERR_NOMEM : add_field(f, &name, &value);
        }
    }
    lst_buf_cleanup(&name);
    lst_buf_cleanup(&value);
    return err;
}

lst_err sim_form_parse_multipart(struct sim_form *f, const char *content_type, const char *body,
                                 size_t len)
{
    /* delim is "\r\n--boundary"; the first delimiter may come without the CRLF. */
    struct lst_buf delim;
    lst_buf_init(&delim);
    lst_buf_puts(&delim, "\r\n");
    lst_err err = boundary_of(content_type, &delim);
    const char *end = body + len;
    const char *p = NULL;
    if (err == LST_OK)
        p = find_bytes(body, len, delim.data + 2, delim.len - 2);
    if (err == LST_OK && p == NULL)
        err = LST_ERR_INVALID;
    if (err == LST_OK)
        p += delim.len - 2;
    while (err == LST_OK) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break; /* the closing delimiter */
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            err = LST_ERR_INVALID;
            break;
        }
        p += 2;
        const char *next = find_bytes(p, (size_t)(end - p), delim.data, delim.len);
        if (next == NULL) {
            err = LST_ERR_INVALID;
            break;
        }
        err = take_part(f, p, (size_t)(next - p));
        p = next + delim.len;
    }
    lst_buf_cleanup(&delim);
    return err;
}

const struct sim_form_field *sim_form_get(const struct sim_form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->fields[i].name, name) == 0)
            return &f->fields[i];
    }
    return NULL;
}

void sim_form_cleanup(struct sim_form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->fields[i].name);
        free(f->fields[i].value);
    }
    free(f->fields);
    f->fields = NULL;
    f->n = 0;
}
