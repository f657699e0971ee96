/* An RFC 4180 CSV reader over a buffer: fields separated by commas, records by CRLF or LF,
 * fields in double quotes may hold commas, line breaks and doubled quotes (""). A UTF-8 byte
 * order mark at the start is skipped (spreadsheet exports write one). */
#include <string.h>

#include "view_api.h"

void va_csv_init(struct va_csv *c, const char *data, size_t len)
{
    memset(c, 0, sizeof(*c));
    c->p = data;
    c->end = data + len;
    c->line = 1;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        c->p += 3;
}

static lst_err push_field(struct lst_buf *field, struct lst_strv *out)
{
    if (lst_buf_failed(field))
        return LST_ERR_NOMEM;
    return lst_strv_push(out, field->data != NULL ? field->data : "");
}

/* A quoted field starting after its opening quote; leaves c->p after the closing quote. */
static lst_err quoted(struct va_csv *c, struct lst_buf *field)
{
    while (c->p < c->end) {
        char ch = *c->p++;
        if (ch == '"') {
            if (c->p < c->end && *c->p == '"') {
                lst_buf_append(field, "\"", 1);
                c->p++;
                continue;
            }
            return LST_OK;
        }
        if (ch == '\n')
            c->line++;
        lst_buf_append(field, &ch, 1);
    }
    return LST_ERR_INVALID;
}

int va_csv_next(struct va_csv *c, struct lst_strv *out, const char **why)
{
    struct lst_buf field;
    lst_err err = LST_OK;
    *why = NULL;
    if (c->p >= c->end)
        return 0;
    c->record_line = c->line;
    lst_buf_init(&field);
    while (err == LST_OK) {
        if (c->p < c->end && *c->p == '"' && field.len == 0) {
            c->p++;
            if (quoted(c, &field) != LST_OK) {
                *why = "unterminated quoted field";
                err = LST_ERR_INVALID;
                break;
            }
            if (c->p < c->end && *c->p != ',' && *c->p != '\n' && *c->p != '\r') {
                *why = "characters after a closing quote";
                err = LST_ERR_INVALID;
                break;
            }
        }
        if (c->p >= c->end || *c->p == '\n' || *c->p == '\r') {
            err = push_field(&field, out);
            if (c->p < c->end && *c->p == '\r')
                c->p++;
            if (c->p < c->end && *c->p == '\n')
                c->p++;
            c->line++;
            break;
        }
        if (*c->p == ',') {
            err = push_field(&field, out);
            lst_buf_reset(&field);
            c->p++;
            continue;
        }
        if (*c->p == '"') {
            *why = "a quote inside an unquoted field";
            err = LST_ERR_INVALID;
            break;
        }
        lst_buf_append(&field, c->p, 1);
        c->p++;
    }
    lst_buf_cleanup(&field);
    if (err == LST_ERR_NOMEM)
        *why = "out of memory";
    return err == LST_OK ? 1 : -1;
}
