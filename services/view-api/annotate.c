/* POST /api/messages/{id}/annotations: a dispatcher marks an item handled (or not) and/or
 * changes its category. Produces lst.annotations records (key: the item ID) and answers 202
 * once Kafka has them; the ledger applies them (docs/ledger.md, "Annotations"). */
#include <string.h>

#include "lst/log.h"
#include "view_api.h"

#define SUFFIX "/annotations"

/* A message ID or an inbound event ID in shape (the codec checks it exactly). */
static bool item_id_ok(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > LST_ITEM_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'f') ||
              c == ':' || c == '*'))
            return false;
    }
    return true;
}

static bool item_exists(struct va_req *r, const char *id, bool *exists)
{
    struct lst_buf k;
    redisReply *reply = NULL;
    lst_buf_init(&k);
    va_lkey(r->ctx, &k, "m:%s", id);
    const char *argv[] = {"HEXISTS", k.data, "dir"};
    lst_err err = lst_redis_cmd(r->ctx->svc->redis, &reply, 3, argv, NULL);
    *exists = err == LST_OK && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
    if (reply != NULL)
        freeReplyObject(reply);
    lst_buf_cleanup(&k);
    return err == LST_OK;
}

/* The records the body asks for: {"handled": bool} and/or {"category": slug}. */
static bool parse(struct json_object *body, struct lst_annotation *out, size_t *n,
                  struct lst_buf *why)
{
    static const char *const known[] = {"handled", "category", NULL};
    struct json_object *h = NULL, *c = NULL;
    *n = 0;
    if (!va_json_members_only(body, "", known, why))
        return false;
    if (json_object_object_get_ex(body, "handled", &h) && !json_object_is_type(h, json_type_null)) {
        if (!json_object_is_type(h, json_type_boolean)) {
            lst_buf_puts(why, "handled: expected boolean");
            return false;
        }
        out[(*n)++].kind =
            json_object_get_boolean(h) ? LST_ANNOTATION_HANDLED : LST_ANNOTATION_UNHANDLED;
    }
    if (json_object_object_get_ex(body, "category", &c) &&
        !json_object_is_type(c, json_type_null)) {
        if (!json_object_is_type(c, json_type_string)) {
            lst_buf_puts(why, "category: expected string");
            return false;
        }
        out[*n].kind = LST_ANNOTATION_CATEGORY;
        out[(*n)++].category = lst_strdup(json_object_get_string(c));
    }
    if (*n == 0) {
        lst_buf_puts(why, "give handled (boolean) and/or category (string)");
        return false;
    }
    return true;
}

static lst_err produce(struct va_req *r, struct lst_annotation *a, size_t n, struct lst_buf *why)
{
    struct va_batch *b = NULL;
    struct lst_buf enc;
    lst_err err = LST_OK;
    lst_buf_init(&enc);
    for (size_t i = 0; i < n && err == LST_OK; i++)
        err = lst_annotation_validate(&a[i], why) == LST_OK ? LST_OK : LST_ERR_INVALID;
    if (err == LST_OK)
        err = va_batch_create(&b);
    for (size_t i = 0; i < n && err == LST_OK; i++) {
        err = lst_annotation_encode(&a[i], &enc);
        if (err == LST_OK)
            err = va_batch_produce(b, r->ctx->svc->producer, r->ctx->topic_annotations,
                                   a[i].item_id, enc.data, enc.len);
        if (err == LST_ERR_INVALID)
            err = LST_ERR_KAFKA;
    }
    if (b != NULL) {
        lst_err werr = va_batch_wait(b, r->ctx->cfg.kafka_wait_ms, NULL);
        if (err == LST_OK)
            err = werr;
    }
    va_batch_release(b);
    lst_buf_cleanup(&enc);
    return err;
}

static void accepted(struct va_req *r, const struct lst_annotation *a, size_t n)
{
    struct lst_buf b;
    lst_buf_init(&b);
    lst_buf_puts(&b, "{");
    va_json_kv(&b, false, "item_id", a[0].item_id);
    lst_buf_puts(&b, ",\"annotations\":[");
    for (size_t i = 0; i < n; i++) {
        static const char *const kinds[] = {"handled", "unhandled", "category"};
        lst_buf_puts(&b, i > 0 ? ",{" : "{");
        va_json_kv(&b, false, "kind", kinds[a[i].kind]);
        va_json_kv(&b, true, "category", a[i].category);
        va_json_kv(&b, true, "user", a[i].user);
        lst_buf_printf(&b, ",\"at\":%lld}", (long long)a[i].at);
    }
    lst_buf_puts(&b, "]}");
    va_reply_json(r, 202, &b);
    lst_buf_cleanup(&b);
}

static void annotate(struct va_req *r, const char *id)
{
    struct lst_annotation a[2];
    struct lst_buf why;
    struct json_object *body = NULL;
    size_t n = 0;
    bool exists = false;
    memset(a, 0, sizeof(a));
    lst_buf_init(&why);
    body = va_json_body(r);
    if (body == NULL)
        goto out;
    if (!parse(body, a, &n, &why)) {
        lst_http_problem(r->resp, 400, "invalid-annotation", "Invalid Annotation", "%s", why.data);
        goto out;
    }
    if (!item_exists(r, id, &exists)) {
        lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the projections could not be read");
        goto out;
    }
    if (!exists) {
        lst_http_problem(r->resp, 404, "message-not-found", "Message Not Found",
                         "no message with this ID (yet: the ledger may still be applying it)");
        goto out;
    }
    int64_t now = lst_wall_ms();
    for (size_t i = 0; i < n; i++) {
        a[i].item_id = lst_strdup(id);
        a[i].user = lst_strdup(r->who->user);
        a[i].department = r->who->department ? lst_strdup(r->who->department) : NULL;
        a[i].at = now;
    }
    lst_err err = produce(r, a, n, &why);
    if (err == LST_ERR_INVALID) { /* the codec's limits: as malformed as the parser's (400) */
        lst_http_problem(r->resp, 400, "invalid-annotation", "Invalid Annotation", "%s",
                         why.data ? why.data : "invalid");
    } else if (err != LST_OK) {
        lst_http_problem(r->resp, 503, "kafka-unavailable", "Kafka Unavailable",
                         "the annotation was not accepted by Kafka (%s)", lst_strerror(err));
        lst_http_add_header(r->resp, "Retry-After", "5");
    } else {
        LST_INFO("view_api.annotate", "item=%s user=%s records=%zu", id, r->who->user, n);
        accepted(r, a, n);
    }
out:
    for (size_t i = 0; i < LST_ARRAY_LEN(a); i++)
        lst_annotation_cleanup(&a[i]);
    json_object_put(body);
    lst_buf_cleanup(&why);
}

void va_handle_message_post(void *ud, const struct lst_http_request *req,
                            struct lst_http_response *resp)
{
    struct va_req r;
    char id[64];
    const char *rest = req->path + strlen("/api/messages/");
    size_t len = strlen(rest), sl = strlen(SUFFIX);
    if (!va_begin(ud, req, resp, VA_ROLE_DISPATCHER, &r))
        return;
    if (len <= sl || strcmp(rest + len - sl, SUFFIX) != 0 || len - sl >= sizeof(id)) {
        lst_http_problem(resp, 404, "not-found", "Not Found", "no such resource");
        return;
    }
    memcpy(id, rest, len - sl);
    id[len - sl] = '\0';
    if (!item_id_ok(id)) {
        lst_http_problem(resp, 400, "invalid-message-id", "Invalid Message ID",
                         "a message ID is a ULID or an inbound event ID");
        return;
    }
    annotate(&r, id);
}
