/* Response helpers of lst/http.h: headers, plain replies and RFC 9457 problem details. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lst/http.h"

#define PROBLEM_TYPE_PREFIX "urn:leitstand:problem:"

static bool header_safe(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

lst_err lst_http_add_header(struct lst_http_response *resp, const char *name, const char *value)
{
    if (name == NULL || value == NULL || name[0] == '\0' || !header_safe(name) ||
        !header_safe(value) || strchr(name, ':') != NULL)
        return LST_ERR_INVALID;
    if (resp->nheaders == LST_HTTP_MAX_HEADERS)
        return LST_ERR_RANGE;
    char *n = lst_strdup(name);
    char *v = lst_strdup(value);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return LST_ERR_NOMEM;
    }
    resp->headers[resp->nheaders].name = n;
    resp->headers[resp->nheaders].value = v;
    resp->nheaders++;
    return LST_OK;
}

/* A new answer replaces a file body set before (its descriptor is the response's to close). */
static void drop_file(struct lst_http_response *resp)
{
    if (resp->file.set)
        close(resp->file.fd);
    memset(&resp->file, 0, sizeof(resp->file));
}

lst_err lst_http_reply(struct lst_http_response *resp, int status, const char *content_type,
                       const char *body, size_t len)
{
    drop_file(resp);
    resp->status = status;
    resp->content_type = content_type;
    lst_buf_reset(&resp->body);
    if (len == 0)
        return LST_OK;
    return lst_buf_append(&resp->body, body, len);
}

lst_err lst_http_reply_fd(struct lst_http_response *resp, int status, const char *content_type,
                          int fd, uint64_t size)
{
    lst_err err = lst_http_reply(resp, status, content_type, NULL, 0);
    if (fd < 0)
        return LST_ERR_INVALID;
    resp->file.set = true;
    resp->file.fd = fd;
    resp->file.size = size;
    return err;
}

static void json_member(struct lst_buf *b, const char *name, const char *value)
{
    lst_buf_printf(b, ",\"%s\":", name);
    lst_buf_json_str(b, value, strlen(value));
}

lst_err lst_http_problem(struct lst_http_response *resp, int status, const char *type_slug,
                         const char *title, const char *detail_fmt, ...)
{
    struct lst_buf *b = &resp->body;
    char type[128];
    char detail[512];
    snprintf(type, sizeof(type), PROBLEM_TYPE_PREFIX "%s", type_slug ? type_slug : "unknown");
    if (detail_fmt != NULL) {
        /* detail is one human-readable sentence: a bounded buffer is enough. */
        va_list ap;
        va_start(ap, detail_fmt);
        vsnprintf(detail, sizeof(detail), detail_fmt, ap);
        va_end(ap);
    }
    drop_file(resp);
    resp->status = status;
    resp->content_type = "application/problem+json";
    lst_buf_reset(b);
    lst_buf_puts(b, "{\"type\":");
    lst_buf_json_str(b, type, strlen(type));
    json_member(b, "title", title ? title : "");
    lst_buf_printf(b, ",\"status\":%d", status);
    if (detail_fmt != NULL)
        json_member(b, "detail", detail);
    lst_buf_puts(b, "}");
    return lst_buf_failed(b) ? LST_ERR_NOMEM : LST_OK;
}
