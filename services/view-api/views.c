/* Saved views: a named timeline filter with hidden categories, per user, shareable within
 * the owner's department.
 *   GET    /api/views         own views + views shared in the caller's department
 *   POST   /api/views         create (202; the ledger applies it shortly after)
 *   GET    /api/views/{id}    one (own or shared in the department)
 *   PUT    /api/views/{id}    replace (owner only)
 *   DELETE /api/views/{id}    delete (owner only)
 * and GET /api/timeline?view=<id> (va_view_filter). Writes go through lst.views (key: view ID);
 * the ledger keeps view:<id>, views:u:<owner>, views:d:<department> (docs/ledger.md). */
#include <string.h>

#include "lst/log.h"
#include "view_api.h"

/* ---- reading ---- */

static const char *hget(const redisReply *h, const char *field)
{
    for (size_t i = 0; h != NULL && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        if (strcmp(h->element[i]->str, field) == 0)
            return h->element[i + 1]->type == REDIS_REPLY_STRING ? h->element[i + 1]->str : NULL;
    }
    return NULL;
}

/* HGETALL view:<id>; *out NULL when there is no live view. */
static lst_err load(struct view_api *ctx, const char *id, redisReply **out)
{
    struct lst_buf k;
    lst_buf_init(&k);
    va_lkey(ctx, &k, "view:%s", id);
    const char *argv[] = {"HGETALL", k.data};
    lst_err err = lst_redis_cmd(ctx->svc->redis, out, 2, argv, NULL);
    lst_buf_cleanup(&k);
    if (err == LST_OK && (hget(*out, "owner") == NULL || hget(*out, "deleted") != NULL)) {
        freeReplyObject(*out);
        *out = NULL;
    }
    return err;
}

static bool visible(const struct va_token *who, const redisReply *v)
{
    const char *owner = hget(v, "owner"), *dep = hget(v, "dep"), *shared = hget(v, "shared");
    if (owner != NULL && strcmp(owner, who->user) == 0)
        return true;
    return shared != NULL && strcmp(shared, "1") == 0 && dep != NULL && who->department != NULL &&
           strcmp(dep, who->department) == 0;
}

static void view_json(struct lst_buf *b, const struct va_token *who, const redisReply *v)
{
    const char *owner = hget(v, "owner"), *filter = hget(v, "filter"), *hidden = hget(v, "hidden");
    lst_buf_puts(b, "{");
    va_json_kv(b, false, "id", hget(v, "id"));
    va_json_kv(b, true, "name", hget(v, "name"));
    va_json_kv(b, true, "owner", owner);
    va_json_kv(b, true, "department", hget(v, "dep"));
    lst_buf_printf(b, ",\"shared\":%s",
                   strcmp(hget(v, "shared") ? hget(v, "shared") : "0", "1") == 0 ? "true"
                                                                                 : "false");
    lst_buf_printf(b, ",\"own\":%s",
                   owner != NULL && strcmp(owner, who->user) == 0 ? "true" : "false");
    /* written by the ledger from a validated record: JSON object and array */
    lst_buf_printf(b, ",\"filter\":%s,\"hidden\":%s", filter ? filter : "{}",
                   hidden ? hidden : "[]");
    lst_buf_printf(b, ",\"updated_at\":%s}", hget(v, "at") ? hget(v, "at") : "0");
}

static lst_err members(struct view_api *ctx, const char *set, const char *name,
                       struct lst_strv *out)
{
    return name != NULL ? va_directory_set(ctx, set, name, out) : LST_OK;
}

static void list(struct va_req *r)
{
    struct lst_strv ids = {0};
    struct lst_buf b;
    size_t n = 0;
    lst_buf_init(&b);
    lst_err err = members(r->ctx, "views:u:", r->who->user, &ids);
    if (err == LST_OK)
        err = members(r->ctx, "views:d:", r->who->department, &ids);
    lst_buf_puts(&b, "{\"items\":[");
    for (size_t i = 0; i < ids.len && err == LST_OK; i++) {
        bool dup = false;
        for (size_t j = 0; j < i; j++)
            dup = dup || strcmp(ids.items[i], ids.items[j]) == 0;
        redisReply *v = NULL;
        if (!dup)
            err = load(r->ctx, ids.items[i], &v);
        if (v != NULL && visible(r->who, v)) {
            if (n++ > 0)
                lst_buf_puts(&b, ",");
            view_json(&b, r->who, v);
        }
        if (v != NULL)
            freeReplyObject(v);
    }
    lst_buf_puts(&b, "]}");
    if (err != LST_OK)
        lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the projections could not be read");
    else
        va_reply_json(r, 200, &b);
    lst_strv_cleanup(&ids);
    lst_buf_cleanup(&b);
}

/* ---- the filter of a view ---- */

struct json_params {
    struct json_object *o;
};

static const char *json_param(void *ud, const char *name)
{
    struct json_object *v = NULL;
    struct json_params *p = ud;
    if (p->o == NULL || !json_object_object_get_ex(p->o, name, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* The request's parameter, else the view's. */
struct view_params {
    const struct lst_http_request *req;
    struct json_params view;
};

static const char *view_param(void *ud, const char *name)
{
    struct view_params *p = ud;
    const char *v = lst_http_query(p->req, name);
    return v != NULL ? v : json_param(&p->view, name);
}

int va_view_filter(struct va_req *r, const char *id, struct va_filter *f, struct lst_buf *why)
{
    redisReply *v = NULL;
    struct view_params p = {r->http, {NULL}};
    struct json_object *hidden = NULL;
    int status = 0;
    if (load(r->ctx, id, &v) != LST_OK)
        return 503;
    if (v == NULL || !visible(r->who, v)) {
        lst_buf_puts(why, "view: no such view visible to you");
        status = 404;
        goto out;
    }
    p.view.o = json_tokener_parse(hget(v, "filter") ? hget(v, "filter") : "{}");
    hidden = json_tokener_parse(hget(v, "hidden") ? hget(v, "hidden") : "[]");
    /* the view's hidden categories unless the request names its own: hidden= (empty) shows
     * every category, hidden=a,b hides those instead, like every other parameter overrides */
    if (!va_filter_parse_from(view_param, &p, f, why) ||
        (lst_http_query(r->http, "hidden") == NULL &&
         !va_json_strv(hidden, "hidden", LST_VIEW_HIDDEN_MAX, LST_SLUG_MAX, &f->hidden, why)))
        status = 400;
    /* f->dir is borrowed from the parameter source, and the view's JSON is freed below while
     * f lives on (a page, or a live stream's whole life): point it at a constant. The parser
     * let through only "in" and "out". */
    if (f->dir != NULL)
        f->dir = strcmp(f->dir, "in") == 0 ? "in" : "out";
out:
    json_object_put(p.view.o);
    json_object_put(hidden);
    if (v != NULL)
        freeReplyObject(v);
    return status;
}

/* ---- writing ---- */

/* One member of the body's filter: a parameter the record holds (struct lst_view_filter, the
 * timeline's filter parameters but hidden, which is the view's own array), given as text. */
static bool filter_member_ok(const char *key, struct json_object *val, struct lst_buf *why)
{
    size_t i = 0;
    while (i < LST_VIEW_FILTER_PARAMS && strcmp(lst_view_filter_name(i), key) != 0)
        i++;
    if (strcmp(key, "hidden") == 0) {
        lst_buf_puts(why, "filter.hidden: a view's hidden categories go in its \"hidden\" array");
        return false;
    }
    if (i == LST_VIEW_FILTER_PARAMS) {
        lst_buf_printf(why, "filter.%s: not a timeline filter parameter (one of", key);
        for (i = 0; i < LST_VIEW_FILTER_PARAMS; i++)
            lst_buf_printf(why, "%s %s", i > 0 ? "," : "", lst_view_filter_name(i));
        lst_buf_puts(why, ")");
        return false;
    }
    if (!json_object_is_type(val, json_type_string)) {
        lst_buf_printf(why,
                       "filter.%s: expected a string (the query parameter's text, lists "
                       "comma-separated)",
                       key);
        return false;
    }
    if ((size_t)json_object_get_string_len(val) > LST_VIEW_PARAM_MAX) {
        lst_buf_printf(why, "filter.%s: longer than %d bytes", key, LST_VIEW_PARAM_MAX);
        return false;
    }
    return true;
}

/* The body's filter into the record, checked with the timeline's own parser (its complaint
 * prefixed "filter."). */
static bool parse_filter(struct json_object *filter, struct lst_view_filter *out,
                         struct lst_buf *why)
{
    struct json_params jp = {filter};
    struct va_filter check = {0};
    if (filter == NULL)
        return true; /* no filter: every item, less the hidden categories */
    if (!json_object_is_type(filter, json_type_object)) {
        lst_buf_puts(why, "filter: expected an object of timeline query parameters");
        return false;
    }
    json_object_object_foreach(filter, key, val)
    {
        if (!filter_member_ok(key, val, why))
            return false;
    }
    lst_buf_puts(why, "filter.");
    bool ok = va_filter_parse_from(json_param, &jp, &check, why);
    va_filter_cleanup(&check);
    if (ok)
        lst_buf_reset(why);
    for (size_t i = 0; ok && i < LST_VIEW_FILTER_PARAMS; i++) {
        const char *v = json_param(&jp, lst_view_filter_name(i));
        *lst_view_filter_slot(out, i) = v != NULL ? lst_strdup(v) : NULL;
    }
    return ok;
}

/* Fills the put record from the body (name, shared, filter, hidden). */
static bool parse_put(struct json_object *body, struct lst_view *w, struct lst_buf *why)
{
    static const char *const known[] = {"name", "shared", "filter", "hidden", NULL};
    struct json_object *name = NULL, *shared = NULL, *filter = NULL, *hidden = NULL;
    if (!va_json_members_only(body, "", known, why))
        return false;
    json_object_object_get_ex(body, "name", &name);
    json_object_object_get_ex(body, "shared", &shared);
    json_object_object_get_ex(body, "filter", &filter);
    json_object_object_get_ex(body, "hidden", &hidden);
    if (!json_object_is_type(name, json_type_string)) {
        lst_buf_puts(why, "name: expected string");
        return false;
    }
    if (shared != NULL && !json_object_is_type(shared, json_type_boolean)) {
        lst_buf_puts(why, "shared: expected boolean");
        return false;
    }
    if (hidden != NULL && !json_object_is_type(hidden, json_type_array)) {
        lst_buf_puts(why, "hidden: expected an array of categories");
        return false;
    }
    w->name = lst_strdup(json_object_get_string(name));
    w->shared = shared != NULL && json_object_get_boolean(shared);
    return parse_filter(filter, &w->filter, why) &&
           va_json_strv(hidden, "hidden", LST_VIEW_HIDDEN_MAX, LST_SLUG_MAX, &w->hidden, why);
}

static lst_err produce(struct va_req *r, const struct lst_view *w, struct lst_buf *why)
{
    struct va_batch *b = NULL;
    struct lst_buf enc;
    lst_err err;
    lst_buf_init(&enc);
    err = lst_view_validate(w, why) == LST_OK ? LST_OK : LST_ERR_INVALID;
    if (err == LST_OK)
        err = va_batch_create(&b);
    if (err == LST_OK)
        err = lst_view_encode(w, &enc);
    if (err == LST_OK)
        err = va_batch_produce(b, r->ctx->svc->producer, r->ctx->topic_views, w->view_id, enc.data,
                               enc.len);
    if (b != NULL) {
        lst_err werr = va_batch_wait(b, r->ctx->cfg.kafka_wait_ms, NULL);
        if (err == LST_OK)
            err = werr;
        if (err == LST_ERR_INVALID)
            err = LST_ERR_KAFKA;
    }
    va_batch_release(b);
    lst_buf_cleanup(&enc);
    return err;
}

static void answer(struct va_req *r, const struct lst_view *w, lst_err err, struct lst_buf *why)
{
    struct lst_buf b;
    if (err == LST_ERR_INVALID) { /* the codec's limits: as malformed as the parser's (400) */
        lst_http_problem(r->resp, 400, "invalid-view", "Invalid View", "%s",
                         why->data ? why->data : "invalid");
        return;
    }
    if (err != LST_OK) {
        lst_http_problem(r->resp, 503, "kafka-unavailable", "Kafka Unavailable",
                         "the view was not accepted by Kafka (%s)", lst_strerror(err));
        lst_http_add_header(r->resp, "Retry-After", "5");
        return;
    }
    lst_buf_init(&b);
    lst_buf_puts(&b, "{");
    va_json_kv(&b, false, "id", w->view_id);
    va_json_kv(&b, true, "state", w->kind == LST_VIEW_PUT ? "saved" : "deleted");
    lst_buf_printf(&b, ",\"at\":%lld}", (long long)w->at);
    if (w->kind == LST_VIEW_PUT) {
        struct lst_buf loc;
        lst_buf_init(&loc);
        lst_buf_printf(&loc, "/api/views/%s", w->view_id);
        lst_http_add_header(r->resp, "Location", loc.data);
        lst_buf_cleanup(&loc);
    }
    va_reply_json(r, 202, &b);
    lst_buf_cleanup(&b);
}

/* POST (id NULL: a new view), PUT and DELETE. */
static void write_view(struct va_req *r, const char *id, enum lst_view_kind kind)
{
    struct lst_view w = {0};
    struct lst_buf why;
    struct json_object *body = NULL;
    char newid[LST_MESSAGE_ID_LEN + 1];
    redisReply *cur = NULL;
    lst_buf_init(&why);
    w.kind = kind;
    w.at = lst_wall_ms();
    if (id != NULL) {
        if (load(r->ctx, id, &cur) != LST_OK) {
            lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                             "the projections could not be read");
            goto out;
        }
        if (cur == NULL || !visible(r->who, cur)) {
            lst_http_problem(r->resp, 404, "view-not-found", "View Not Found", "no such view");
            goto out;
        }
        if (strcmp(hget(cur, "owner"), r->who->user) != 0) {
            lst_http_problem(r->resp, 403, "forbidden", "Forbidden",
                             "only the owner may change or delete a view");
            goto out;
        }
    } else if (lst_message_id_new(w.at, newid) != LST_OK) {
        lst_http_problem(r->resp, 500, "internal-error", "Internal Server Error", "no view ID");
        goto out;
    }
    w.view_id = lst_strdup(id != NULL ? id : newid);
    w.owner = lst_strdup(r->who->user);
    w.department = r->who->department != NULL ? lst_strdup(r->who->department) : NULL;
    if (kind == LST_VIEW_PUT) {
        body = va_json_body(r);
        if (body == NULL)
            goto out;
        if (!parse_put(body, &w, &why)) {
            lst_http_problem(r->resp, 400, "invalid-view", "Invalid View", "%s",
                             why.data ? why.data : "invalid");
            goto out;
        }
    }
    answer(r, &w, produce(r, &w, &why), &why);
    LST_INFO("view_api.view", "view=%s user=%s kind=%d", w.view_id, r->who->user, (int)kind);
out:
    if (cur != NULL)
        freeReplyObject(cur);
    json_object_put(body);
    lst_view_cleanup(&w);
    lst_buf_cleanup(&why);
}

static bool view_id_ok(const char *id)
{
    size_t len = strlen(id);
    if (len != LST_MESSAGE_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'Z')))
            return false;
    }
    return true;
}

static void get_one(struct va_req *r, const char *id)
{
    redisReply *v = NULL;
    struct lst_buf b;
    if (load(r->ctx, id, &v) != LST_OK) {
        lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the projections could not be read");
        return;
    }
    if (v == NULL || !visible(r->who, v)) {
        lst_http_problem(r->resp, 404, "view-not-found", "View Not Found", "no such view");
    } else {
        lst_buf_init(&b);
        view_json(&b, r->who, v);
        va_reply_json(r, 200, &b);
        lst_buf_cleanup(&b);
    }
    if (v != NULL)
        freeReplyObject(v);
}

void va_handle_views(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct va_req r;
    if (!va_begin(ud, req, resp, VA_ROLE_DISPATCHER, &r))
        return;
    if (strcmp(req->method, "POST") == 0)
        write_view(&r, NULL, LST_VIEW_PUT);
    else
        list(&r);
}

void va_handle_view(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct va_req r;
    const char *id = req->path + strlen("/api/views/");
    if (!va_begin(ud, req, resp, VA_ROLE_DISPATCHER, &r))
        return;
    if (!view_id_ok(id)) {
        lst_http_problem(resp, 400, "invalid-view-id", "Invalid View ID", "a view ID is a ULID");
        return;
    }
    if (strcmp(req->method, "PUT") == 0)
        write_view(&r, id, LST_VIEW_PUT);
    else if (strcmp(req->method, "DELETE") == 0)
        write_view(&r, id, LST_VIEW_DELETE);
    else
        get_one(&r, id);
}
