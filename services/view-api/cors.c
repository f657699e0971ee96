/* CORS for the single-page apps: only configured origins get the Access-Control headers, and
 * preflight requests (OPTIONS) are answered without a token (browsers send none with them). */
#include <stdlib.h>
#include <string.h>

#include "view_api.h"

#define CORS_ORIGINS_MAX 64

lst_err va_cors_parse(struct va_cors *c, const char *list, struct lst_buf *why)
{
    const char *p = list;
    if (list == NULL)
        return LST_OK;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        const char *s = p;
        size_t n = len;
        while (n > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n > 0) {
            if (c->n == CORS_ORIGINS_MAX) {
                lst_buf_printf(why, "LST_VIEW_CORS_ORIGINS: more than %d origins",
                               CORS_ORIGINS_MAX);
                return LST_ERR_CONFIG;
            }
            char **o = realloc(c->origins, (c->n + 1) * sizeof(*o));
            if (o == NULL)
                return LST_ERR_NOMEM;
            c->origins = o;
            c->origins[c->n] = malloc(n + 1);
            if (c->origins[c->n] == NULL)
                return LST_ERR_NOMEM;
            memcpy(c->origins[c->n], s, n);
            c->origins[c->n][n] = '\0';
            c->n++;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return LST_OK;
}

void va_cors_cleanup(struct va_cors *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->origins[i]);
    free(c->origins);
    c->origins = NULL;
    c->n = 0;
}

bool va_cors_allowed(const struct va_cors *c, const char *origin)
{
    if (origin == NULL)
        return false;
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->origins[i], "*") == 0 || strcmp(c->origins[i], origin) == 0)
            return true;
    }
    return false;
}

/* The headers of a response to an allowed origin; the origin is echoed (not "*"), with Vary,
 * so caches keep one answer per origin. */
static void cors_headers(struct view_api *ctx, const struct lst_http_request *req,
                         struct lst_http_response *resp)
{
    const char *origin = lst_http_header(req, "Origin");
    if (!va_cors_allowed(&ctx->cors, origin))
        return;
    lst_http_add_header(resp, "Access-Control-Allow-Origin", origin);
    lst_http_add_header(resp, "Vary", "Origin");
    /* what the SPA reads beyond the CORS-safelisted headers: a send's or a view's Location,
     * Retry-After of a 503, a blob's ETag (its cache) and Content-Disposition (file name),
     * Idempotent-Replayed of a repeated send (send.c: "already sent", not a second send) */
    lst_http_add_header(resp, "Access-Control-Expose-Headers",
                        "Location, Retry-After, ETag, Content-Disposition, Idempotent-Replayed");
}

void va_cors_apply(struct view_api *ctx, const struct lst_http_request *req,
                   struct lst_http_response *resp)
{
    cors_headers(ctx, req, resp);
}

void va_handle_preflight(void *ud, const struct lst_http_request *req,
                         struct lst_http_response *resp)
{
    struct view_api *ctx = lst_service_ctx(ud);
    const char *origin = lst_http_header(req, "Origin");
    if (!va_cors_allowed(&ctx->cors, origin)) {
        lst_http_problem(resp, 403, "cors-origin-not-allowed", "Origin Not Allowed",
                         "this origin is not in LST_VIEW_CORS_ORIGINS");
        return;
    }
    cors_headers(ctx, req, resp);
    lst_http_add_header(resp, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS");
    lst_http_add_header(resp, "Access-Control-Allow-Headers",
                        "Authorization, Content-Type, Idempotency-Key, Last-Event-ID");
    lst_http_add_header(resp, "Access-Control-Max-Age", "600");
    lst_http_reply(resp, 204, "text/plain", "", 0);
}
