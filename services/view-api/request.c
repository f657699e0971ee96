/* The frame of every API handler: CORS headers, the bearer token and its role, JSON bodies
 * and query parameters with clear 4xx problems. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "view_api.h"

static void unauthorized(struct lst_http_response *resp, const char *detail)
{
    lst_http_problem(resp, 401, "unauthorized", "Unauthorized", "%s", detail);
    lst_http_add_header(resp, "WWW-Authenticate", "Bearer realm=\"leitstand\"");
}

bool va_begin(void *ud, const struct lst_http_request *req, struct lst_http_response *resp,
              enum va_role need, struct va_req *out)
{
    struct lst_service *svc = ud;
    struct view_api *ctx = lst_service_ctx(ud);
    const char *auth = lst_http_header(req, "Authorization");
    memset(out, 0, sizeof(*out));
    out->ctx = ctx;
    out->svc = svc;
    out->http = req;
    out->resp = resp;
    va_cors_apply(ctx, req, resp);
    if (auth == NULL) {
        unauthorized(resp, "an Authorization: Bearer <token> header is required");
        return false;
    }
    if (strncasecmp(auth, "Bearer ", 7) != 0 || auth[7] == '\0') {
        unauthorized(resp, "the Authorization header must be 'Bearer <token>'");
        return false;
    }
    out->who = va_tokens_find(&ctx->tokens, auth + 7, strlen(auth + 7));
    if (out->who == NULL) {
        unauthorized(resp, "the token is not valid");
        return false;
    }
    if (need == VA_ROLE_ADMIN && out->who->role != VA_ROLE_ADMIN) {
        lst_http_problem(resp, 403, "forbidden", "Forbidden", "this route needs the admin role");
        return false;
    }
    /* A query parameter the operation does not know is refused on every route (those that
     * take none too): after the token (401 first), before anything is read. */
    const struct va_query_spec *spec = va_query_spec_find(req->method, req->path);
    if (spec != NULL && !va_query_only(out, spec))
        return false;
    /* Every route but /api/me and the blobs (files, not Redis) reads the projections (also the
     * writing ones: audiences, directory sync, owners of views), none may act on a rolled-back
     * copy. */
    if (req->route == NULL ||
        (strcmp(req->route, "/api/me") != 0 && strcmp(req->route, "/api/blobs/") != 0))
        return va_refill_gate(out);
    return true;
}

void va_problem_ext(struct lst_http_response *resp, int status, const char *type, const char *title,
                    const char *detail, const char *ext)
{
    struct lst_buf b;
    lst_buf_init(&b);
    lst_buf_puts(&b, "{\"type\":\"urn:leitstand:problem:");
    lst_buf_puts(&b, type);
    lst_buf_puts(&b, "\",\"title\":");
    lst_buf_json_str(&b, title, strlen(title));
    lst_buf_printf(&b, ",\"status\":%d", status);
    va_json_kv(&b, true, "detail", detail);
    if (ext != NULL && ext[0] != '\0') {
        lst_buf_puts(&b, ",");
        lst_buf_puts(&b, ext);
    }
    lst_buf_puts(&b, "}");
    if (lst_buf_failed(&b))
        lst_http_problem(resp, 500, "internal-error", "Internal Server Error", "out of memory");
    else
        lst_http_reply(resp, status, "application/problem+json", b.data, b.len);
    lst_buf_cleanup(&b);
}

struct json_object *va_json_body(struct va_req *r)
{
    return va_json_body_max(r, r->ctx->cfg.json_max_body);
}

/* True when the JSON text escapes a NUL ("\u0000") in a string or member name: C strings end
 * there, so a text would be cut short silently (and json-c cuts member names there), and no
 * field takes one. Backslashes only occur inside JSON strings, so counting the run before
 * "u0000" tells an escape from an escaped backslash followed by the letters u0000. */
static bool escapes_nul(const char *s, size_t n)
{
    for (size_t i = 0; i + 6 <= n; i++) {
        if (s[i] != '\\' || memcmp(s + i + 1, "u0000", 5) != 0)
            continue;
        size_t run = 1;
        while (run <= i && s[i - run] == '\\')
            run++;
        if (run % 2 == 1)
            return true;
    }
    return false;
}

struct json_object *va_json_body_max(struct va_req *r, int64_t max)
{
    const struct lst_http_request *req = r->http;
    struct json_tokener *tok;
    struct json_object *obj = NULL;
    if ((int64_t)req->body_len > max) {
        lst_http_problem(r->resp, 413, "payload-too-large", "Payload Too Large",
                         "this body may have at most %lld bytes", (long long)max);
        return NULL;
    }
    if (!lst_utf8_valid(req->body, req->body_len)) {
        lst_http_problem(r->resp, 400, "invalid-json", "Invalid JSON",
                         "the body is not valid UTF-8");
        return NULL;
    }
    tok = json_tokener_new();
    if (tok == NULL) {
        lst_http_problem(r->resp, 500, "internal-error", "Internal Server Error", "out of memory");
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
    if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        (size_t)json_tokener_get_parse_end(tok) != req->body_len) {
        lst_http_problem(r->resp, 400, "invalid-json", "Invalid JSON",
                         "the body is not one JSON document");
        json_object_put(obj);
        obj = NULL;
    } else if (!json_object_is_type(obj, json_type_object)) {
        lst_http_problem(r->resp, 400, "invalid-json", "Invalid JSON",
                         "the body must be a JSON object");
        json_object_put(obj);
        obj = NULL;
    } else if (escapes_nul(req->body, req->body_len)) {
        lst_http_problem(r->resp, 400, "invalid-json", "Invalid JSON",
                         "a string holds a NUL character (\\u0000), which no field accepts");
        json_object_put(obj);
        obj = NULL;
    }
    json_tokener_free(tok);
    return obj;
}

bool va_json_members_only(struct json_object *o, const char *path, const char *const *known,
                          struct lst_buf *why)
{
    json_object_object_foreach(o, key, val)
    {
        (void)val;
        size_t i = 0;
        while (known[i] != NULL && strcmp(known[i], key) != 0)
            i++;
        if (known[i] != NULL)
            continue;
        lst_buf_printf(why, "%s%s\"%s\": not a known member (known:", path, path[0] ? ": " : "",
                       key);
        for (i = 0; known[i] != NULL; i++)
            lst_buf_printf(why, "%s %s", i > 0 ? "," : "", known[i]);
        lst_buf_puts(why, ")");
        return false;
    }
    return true;
}

bool va_json_strv(struct json_object *arr, const char *name, size_t max, size_t max_len,
                  struct lst_strv *out, struct lst_buf *why)
{
    if (arr == NULL)
        return true;
    if (!json_object_is_type(arr, json_type_array)) {
        lst_buf_printf(why, "%s: expected an array of strings", name);
        return false;
    }
    size_t n = json_object_array_length(arr);
    if (n > max) {
        lst_buf_printf(why, "%s: more than %zu items", name, max);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        struct json_object *v = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0) {
            lst_buf_printf(why, "%s[%zu]: expected a non-empty string", name, i);
            return false;
        }
        if ((size_t)json_object_get_string_len(v) > max_len) {
            lst_buf_printf(why, "%s[%zu]: longer than %zu bytes", name, i, max_len);
            return false;
        }
        if (lst_strv_push(out, json_object_get_string(v)) != LST_OK) {
            lst_buf_puts(why, "out of memory");
            return false;
        }
    }
    return true;
}

bool va_query_list(const struct lst_http_request *req, const char *name, size_t max_len,
                   struct lst_strv *out, struct lst_buf *why)
{
    return va_list_split(lst_http_query(req, name), name, max_len, out, why);
}

bool va_list_split(const char *v, const char *name, size_t max_len, struct lst_strv *out,
                   struct lst_buf *why)
{
    char item[512];
    if (v == NULL)
        return true;
    while (1) {
        size_t len = strcspn(v, ",");
        if (len == 0 || len > max_len || len >= sizeof(item)) {
            lst_buf_printf(why, "%s: items must be non-empty and at most %zu bytes", name, max_len);
            return false;
        }
        if (out->len >= LST_SELECTOR_ITEMS_MAX) {
            lst_buf_printf(why, "%s: too many items", name);
            return false;
        }
        memcpy(item, v, len);
        item[len] = '\0';
        if (!lst_utf8_valid(item, len) || lst_strv_push(out, item) != LST_OK) {
            lst_buf_printf(why, "%s: not valid UTF-8", name);
            return false;
        }
        if (v[len] == '\0')
            return true;
        v += len + 1;
    }
}

const char *va_query_param(const struct va_query_spec *spec, size_t i)
{
    size_t nfilter = 0;
    while (spec->filter && va_filter_param(nfilter) != NULL)
        nfilter++;
    return i < nfilter ? va_filter_param(i) : spec->names[i - nfilter];
}

/* Whether path is an instance of the OpenAPI path template tpl: a "{name}" stands for one
 * non-empty path segment. */
static bool template_matches(const char *tpl, const char *path)
{
    while (*tpl != '\0') {
        if (*tpl == '{') {
            const char *end = strchr(tpl, '}');
            size_t seg = strcspn(path, "/");
            if (end == NULL || seg == 0)
                return false;
            tpl = end + 1;
            path += seg;
        } else if (*tpl++ != *path++) {
            return false;
        }
    }
    return *path == '\0';
}

static const struct va_query_spec *spec_of(const char *method, const char *path)
{
    for (size_t i = 0; i < va_query_nspecs; i++) {
        const struct va_query_spec *q = va_query_specs[i];
        if (strcmp(q->method, method) == 0 && template_matches(q->path, path))
            return q;
    }
    return NULL;
}

const struct va_query_spec *va_query_spec_find(const char *method, const char *path)
{
    const struct va_query_spec *q = spec_of(method, path);
    /* the HTTP server answers HEAD with the GET route (without the body) */
    if (q == NULL && strcmp(method, "HEAD") == 0)
        q = spec_of("GET", path);
    return q;
}

struct query_check {
    const struct va_query_spec *spec;
    bool seen[64]; /* by va_query_param index; a route knows far fewer */
    struct lst_buf *why;
};

/* One parameter of the request (lst_http_query_each): false with why when refused. */
static bool query_param_ok(void *ud, const char *name, const char *value)
{
    struct query_check *qc = ud;
    const char *k;
    size_t i = 0;
    if (strcmp(name, "_") == 0)
        return true; /* the cache buster, ignored whatever its value */
    while ((k = va_query_param(qc->spec, i)) != NULL && strcmp(k, name) != 0)
        i++;
    if (k == NULL) {
        /* the name is the client's: bounded (the problem's JSON escapes it) */
        lst_buf_printf(qc->why, "\"%.64s\": not a known query parameter", name);
        if (va_query_param(qc->spec, 0) == NULL) {
            lst_buf_puts(qc->why, " (this route takes none)");
            return false;
        }
        lst_buf_puts(qc->why, " (known:");
        for (i = 0; (k = va_query_param(qc->spec, i)) != NULL; i++)
            lst_buf_printf(qc->why, "%s %s", i > 0 ? "," : "", k);
        lst_buf_puts(qc->why, ")");
        return false;
    }
    if (value == NULL) {
        lst_buf_printf(qc->why, "\"%s\": given without a value", k);
        return false;
    }
    if (i < LST_ARRAY_LEN(qc->seen) && qc->seen[i]) {
        lst_buf_printf(qc->why, "\"%s\": given more than once (lists are comma-separated)", k);
        return false;
    }
    if (i < LST_ARRAY_LEN(qc->seen))
        qc->seen[i] = true;
    return true;
}

bool va_query_only(struct va_req *r, const struct va_query_spec *spec)
{
    struct lst_buf why;
    struct query_check qc = {spec, {false}, &why};
    lst_buf_init(&why);
    lst_http_query_each(r->http, query_param_ok, &qc);
    bool ok = why.len == 0 && !lst_buf_failed(&why);
    if (!ok)
        lst_http_problem(r->resp, 400, "invalid-query", "Invalid Query Parameter", "%s",
                         lst_buf_failed(&why) ? "invalid" : why.data);
    lst_buf_cleanup(&why);
    return ok;
}

bool va_parse_time_ms(const char *name, const char *v, int64_t *out, struct lst_buf *why)
{
    int64_t t = 0;
    if (lst_parse_i64(v, 0, LST_TIME_MS_MAX, &t) != LST_OK) {
        lst_buf_printf(why, "%s: milliseconds since the epoch", name);
        return false;
    }
    if (t >= VA_SECONDS_LIKE_MIN && t < VA_SECONDS_LIKE_END) {
        lst_buf_printf(why,
                       "%s: milliseconds since the epoch; %lld looks like seconds (as "
                       "milliseconds it is before 1973-03-03): %lld000?",
                       name, (long long)t, (long long)t);
        return false;
    }
    *out = t;
    return true;
}

bool va_query_limit(const struct va_req *r, int64_t def, int64_t *out, struct lst_buf *why)
{
    const char *v = lst_http_query(r->http, "limit");
    *out = def < r->ctx->cfg.page_max ? def : r->ctx->cfg.page_max;
    if (v == NULL)
        return true;
    if (lst_parse_i64(v, 1, r->ctx->cfg.page_max, out) != LST_OK) {
        lst_buf_printf(why, "limit: an integer from 1 to %lld", (long long)r->ctx->cfg.page_max);
        return false;
    }
    return true;
}

void va_reply_json(struct va_req *r, int status, const struct lst_buf *body)
{
    if (lst_buf_failed(body)) {
        lst_http_problem(r->resp, 500, "internal-error", "Internal Server Error", "out of memory");
        return;
    }
    lst_http_reply(r->resp, status, "application/json", body->data ? body->data : "", body->len);
}

lst_err va_lkey(const struct view_api *ctx, struct lst_buf *out, const char *fmt, ...)
{
    va_list ap;
    char tmp[1024];
    lst_buf_reset(out);
    lst_buf_puts(out, ctx->cfg.ledger_prefix);
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return LST_ERR_TOO_LARGE;
    lst_buf_append(out, tmp, (size_t)n);
    return lst_buf_failed(out) ? LST_ERR_NOMEM : LST_OK;
}

bool va_employee_id_ok(const char *s)
{
    size_t len = s != NULL ? strlen(s) : 0;
    if (len == 0 || len > LST_EMPLOYEE_ID_MAX || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

void va_json_kv(struct lst_buf *b, bool comma, const char *key, const char *val)
{
    if (val == NULL)
        return;
    if (comma)
        lst_buf_puts(b, ",");
    lst_buf_json_str(b, key, strlen(key));
    lst_buf_puts(b, ":");
    lst_buf_json_str(b, val, strlen(val));
}

void va_json_strv_out(struct lst_buf *b, const struct lst_strv *v)
{
    lst_buf_puts(b, "[");
    for (size_t i = 0; i < v->len; i++) {
        if (i > 0)
            lst_buf_puts(b, ",");
        lst_buf_json_str(b, v->items[i], strlen(v->items[i]));
    }
    lst_buf_puts(b, "]");
}
