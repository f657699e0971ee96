/* POST /api/messages: a text, image or file to explicit employees and/or a selector over the
 * directory. Produces one lst.message (the audience snapshot) and one lst.outbound per
 * recipient, waits until Kafka acknowledged all of them, and answers 202 with the message ID
 * and the resolved audience (who, and who was skipped and why).
 *
 * Idempotency-Key: the first request with a key reserves it in Redis (SET NX, "pending"); its
 * result is stored under the key (for LST_VIEW_IDEMPOTENCY_TTL_MS) and every repetition gets
 * that result again with "Idempotent-Replayed: true": byte for byte, except that the
 * recipients are named as the directory names them at the replay (the stored copy holds no
 * names, so an erasure leaves none behind; replay_named). A repetition while the
 * first is still running gets 409; the same key with a different body gets 422. A request
 * refused before anything was produced (4xx, directory unreadable) releases the key. A request
 * whose records Kafka did not acknowledge may still have some of them in Kafka (a timeout is
 * no proof of absence), so the key keeps its message ID ("retry"): the client's retry with the
 * same key and body produces the same message ID and the same request IDs again, which the
 * ledger merges and gateway-out does not send twice. Keys are per user: two dispatchers cannot
 * collide.
 *
 * The message ID is chosen before the key is claimed and the "pending" entry holds it, with a
 * lease (twice LST_VIEW_KAFKA_WAIT_MS plus 5 s: longer than any attempt). A view API that dies
 * mid-attempt leaves "pending" behind; once its lease has run out, the next request with the
 * same key and body takes the attempt over with that message ID, as it would after a "retry"
 * entry (a takeover of an attempt that is in fact still running produces the same IDs as that
 * attempt, which the ledger merges: never a second message). Without the lease such a key
 * answered 409 until its TTL (a day by default). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "lst/log.h"
#include "view_api.h"

#define FP_HEX (2 * crypto_hash_sha256_BYTES)

struct send {
    struct va_req *r;
    struct lst_message msg;
    struct va_audience aud;
    char *idem;          /* the client's key (NULL: none) */
    struct lst_buf ikey; /* Redis key of the idempotency entry */
    char fp[FP_HEX + 1]; /* sha256 of the body */
    /* the message ID and time of this attempt: new, or those of an earlier attempt of the same
     * request that may have records in Kafka (kept: a "retry" entry or an expired lease) */
    char reuse_id[LST_MESSAGE_ID_LEN + 1];
    int64_t reuse_at;
    bool kept;
    struct lst_buf upload;
    char *upload_mime, *upload_name;
};

static void send_cleanup(struct send *s)
{
    lst_message_cleanup(&s->msg);
    va_audience_cleanup(&s->aud);
    free(s->idem);
    lst_buf_cleanup(&s->ikey);
    lst_buf_cleanup(&s->upload);
    free(s->upload_mime);
    free(s->upload_name);
}

/* What the record codec refuses breaks the contract just as what the parser refuses: the same
 * type, the same status (docs/view-api.md "Errors"). */
static void bad(struct send *s, const char *detail)
{
    lst_http_problem(s->r->resp, 400, "invalid-message", "Invalid Message", "%s", detail);
}

/* ---- parsing ---- */

static bool get_str(struct json_object *o, const char *name, size_t max, char **out,
                    struct lst_buf *why)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null))
        return true;
    if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0 ||
        (size_t)json_object_get_string_len(v) > max) {
        lst_buf_printf(why, "%s: expected a string of 1 to %zu bytes", name, max);
        return false;
    }
    *out = lst_strdup(json_object_get_string(v));
    return *out != NULL;
}

static bool parse_selector(struct json_object *o, struct lst_selector *sel, struct lst_buf *why)
{
    struct json_object *v = NULL;
    if (o == NULL)
        return true;
    static const char *const known[] = {"departments", "vehicles", "tags", "active", NULL};
    if (!json_object_is_type(o, json_type_object)) {
        lst_buf_puts(why, "selector: expected an object");
        return false;
    }
    if (!va_json_members_only(o, "selector", known, why))
        return false;
    json_object_object_get_ex(o, "departments", &v);
    if (!va_json_strv(v, "selector.departments", LST_SELECTOR_ITEMS_MAX, LST_LABEL_MAX,
                      &sel->departments, why))
        return false;
    v = NULL;
    json_object_object_get_ex(o, "vehicles", &v);
    if (!va_json_strv(v, "selector.vehicles", LST_SELECTOR_ITEMS_MAX, LST_LABEL_MAX, &sel->vehicles,
                      why))
        return false;
    v = NULL;
    json_object_object_get_ex(o, "tags", &v);
    if (!va_json_strv(v, "selector.tags", LST_TAGS_MAX, LST_TAG_MAX, &sel->tags, why))
        return false;
    if (json_object_object_get_ex(o, "active", &v)) {
        if (!json_object_is_type(v, json_type_boolean)) {
            lst_buf_puts(why, "selector.active: expected true or false");
            return false;
        }
        sel->has_active = true;
        sel->active = json_object_get_boolean(v);
    }
    return true;
}

static bool parse_attachment(struct send *s, struct json_object *o, struct lst_buf *why)
{
    char *data = NULL, *kind = NULL;
    bool ok = false;
    size_t bin_len = 0;
    static const char *const known[] = {"kind", "mime", "filename", "caption", "data_base64", NULL};
    if (!json_object_is_type(o, json_type_object)) {
        lst_buf_puts(why, "attachment: expected an object");
        return false;
    }
    if (!va_json_members_only(o, "attachment", known, why))
        return false;
    if (!get_str(o, "data_base64", SIZE_MAX, &data, why) ||
        !get_str(o, "mime", LST_MIME_MAX, &s->upload_mime, why) ||
        !get_str(o, "filename", LST_FILENAME_MAX, &s->upload_name, why) ||
        !get_str(o, "caption", LST_CAPTION_MAX, &s->msg.content.caption, why) ||
        !get_str(o, "kind", 16, &kind, why))
        goto out;
    if (data == NULL || s->upload_mime == NULL) {
        lst_buf_puts(why, "attachment: data_base64 and mime are required");
        goto out;
    }
    s->msg.content.kind = LST_CONTENT_FILE;
    if ((kind == NULL && strncmp(s->upload_mime, "image/", 6) == 0) ||
        (kind != NULL && strcmp(kind, "image") == 0))
        s->msg.content.kind = LST_CONTENT_IMAGE;
    else if (kind != NULL && strcmp(kind, "file") != 0) {
        lst_buf_puts(why, "attachment.kind: image or file");
        goto out;
    }
    size_t cap = strlen(data) / 4 * 3 + 3;
    unsigned char *bin = malloc(cap);
    if (bin == NULL)
        goto out;
    if (sodium_base642bin(bin, cap, data, strlen(data), "\n\r ", &bin_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        lst_buf_puts(why, "attachment.data_base64: not valid base64");
        free(bin);
        goto out;
    }
    ok = lst_buf_append(&s->upload, bin, bin_len) == LST_OK;
    free(bin);
out:
    free(data);
    free(kind);
    return ok;
}

/* The length of the Unicode white space (or invisible zero-width space) at p, 0 if none:
 * a text of nothing else shows as an empty bubble on the driver's phone. */
static size_t space_len(const unsigned char *p)
{
    static const char *const wide[] = {
        "\xc2\x85",     "\xc2\xa0",     "\xe1\x9a\x80", "\xe2\x80\x8b", "\xe2\x80\xa8",
        "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80", "\xef\xbb\xbf"};
    if (*p != '\0' && strchr(" \t\n\v\f\r", *p) != NULL)
        return 1;
    if (p[0] == 0xe2 && p[1] == 0x80 && p[2] >= 0x80 && p[2] <= 0x8a)
        return 3; /* U+2000 .. U+200A, the typographic spaces */
    for (size_t i = 0; i < LST_ARRAY_LEN(wide); i++) {
        size_t n = strlen(wide[i]);
        if (strncmp((const char *)p, wide[i], n) == 0)
            return n;
    }
    return 0;
}

static bool blank(const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t n;
    while ((n = space_len(p)) > 0)
        p += n;
    return *p == '\0';
}

static bool parse_content(struct send *s, struct json_object *body, struct lst_buf *why)
{
    struct json_object *att = NULL;
    bool has_att = json_object_object_get_ex(body, "attachment", &att) &&
                   !json_object_is_type(att, json_type_null);
    /* the Gateway's limit, in bytes of UTF-8 as json-c counts them: refused here with the
     * field's name rather than later by the record encoder */
    if (!get_str(body, "text", LST_TEXT_MAX, &s->msg.content.text, why))
        return false;
    if (has_att && s->msg.content.text != NULL) {
        lst_buf_puts(why, "text and attachment: send one of them (use attachment.caption)");
        return false;
    }
    if (has_att)
        return parse_attachment(s, att, why);
    if (s->msg.content.text == NULL) {
        lst_buf_puts(why, "text or attachment is required");
        return false;
    }
    if (blank(s->msg.content.text)) {
        lst_buf_puts(why, "text: only white space (nothing to read)");
        return false;
    }
    s->msg.content.kind = LST_CONTENT_TEXT;
    return true;
}

static bool parse_request(struct send *s, struct json_object *body, struct lst_buf *why)
{
    static const char *const known[] = {"category",     "text",     "attachment",
                                        "employee_ids", "selector", NULL};
    struct json_object *v = NULL;
    if (!va_json_members_only(body, "", known, why) ||
        !get_str(body, "category", LST_SLUG_MAX, &s->msg.category, why) ||
        !parse_content(s, body, why))
        return false;
    if (s->msg.category == NULL) {
        lst_buf_puts(why, "category is required");
        return false;
    }
    json_object_object_get_ex(body, "employee_ids", &v);
    if (!va_json_strv(v, "employee_ids", LST_RECIPIENTS_MAX, LST_EMPLOYEE_ID_MAX,
                      &s->aud.selector.employee_ids, why))
        return false;
    for (size_t i = 0; i < s->aud.selector.employee_ids.len; i++) {
        if (!va_employee_id_ok(s->aud.selector.employee_ids.items[i])) {
            lst_buf_printf(why, "employee_ids[%zu]: not an employee ID", i);
            return false;
        }
    }
    v = NULL;
    json_object_object_get_ex(body, "selector", &v);
    if (!parse_selector(v, &s->aud.selector, why))
        return false;
    if (s->aud.selector.employee_ids.len == 0 && s->aud.selector.departments.len == 0 &&
        s->aud.selector.vehicles.len == 0 && s->aud.selector.tags.len == 0) {
        lst_buf_puts(why, "employee_ids or a selector (departments, vehicles, tags) is required");
        return false;
    }
    return true;
}

/* ---- idempotency ---- */

enum idem_state { IDEM_NEW, IDEM_REPLAYED, IDEM_STOPPED };

/* The first answer's Location, from the message ID in its stored body: a repetition gets the
 * same headers as the first answer, not only the same body. */
static void replay_location(struct send *s, int64_t status, const char *body)
{
    struct json_object *o = status == 202 ? json_tokener_parse(body) : NULL, *id = NULL;
    if (o != NULL && json_object_object_get_ex(o, "message_id", &id) &&
        json_object_is_type(id, json_type_string)) {
        struct lst_buf loc;
        lst_buf_init(&loc);
        lst_buf_printf(&loc, "/api/messages/%s", json_object_get_string(id));
        if (!lst_buf_failed(&loc))
            lst_http_add_header(s->r->resp, "Location", loc.data);
        lst_buf_cleanup(&loc);
    }
    json_object_put(o);
}

/* Writes v as the answer's own writer does (lst_buf_json_str, integers as integers), so a
 * replay whose names did not change is the first answer byte for byte. The stored answers are
 * ours and three levels deep: the recursion is bounded. */
static void json_out(struct lst_buf *b, struct json_object *v)
{
    size_t i = 0;
    switch (json_object_get_type(v)) {
    case json_type_boolean:
        lst_buf_puts(b, json_object_get_boolean(v) ? "true" : "false");
        break;
    case json_type_int:
        lst_buf_printf(b, "%lld", (long long)json_object_get_int64(v));
        break;
    case json_type_double:
        lst_buf_printf(b, "%.17g", json_object_get_double(v));
        break;
    case json_type_string:
        lst_buf_json_str(b, json_object_get_string(v), (size_t)json_object_get_string_len(v));
        break;
    case json_type_array:
        lst_buf_puts(b, "[");
        for (i = 0; i < json_object_array_length(v); i++) {
            lst_buf_puts(b, i > 0 ? "," : "");
            json_out(b, json_object_array_get_idx(v, i));
        }
        lst_buf_puts(b, "]");
        break;
    case json_type_object: {
        lst_buf_puts(b, "{");
        json_object_object_foreach(v, key, val)
        {
            lst_buf_puts(b, i++ > 0 ? "," : "");
            lst_buf_json_str(b, key, strlen(key));
            lst_buf_puts(b, ":");
            json_out(b, val);
        }
        lst_buf_puts(b, "}");
        break;
    }
    default:
        lst_buf_puts(b, "null");
    }
}

/* The stored answer names nobody: an entry lives for LST_VIEW_IDEMPOTENCY_TTL_MS, and an
 * erasure must not leave an employee's name behind in the state Redis for that long. The
 * replay names the recipients as the directory does now (an erased or unknown one: no name,
 * as in a first answer). An entry stored before names were left out has them replaced. */
static lst_err replay_named(struct send *s, const char *stored, struct lst_buf *out)
{
    struct json_object *o = json_tokener_parse(stored), *list = NULL;
    struct va_names names;
    lst_err err = o != NULL ? LST_OK : LST_ERR_INVALID;
    va_names_init(&names);
    size_t n = err == LST_OK && json_object_object_get_ex(o, "recipients", &list) &&
                       json_object_is_type(list, json_type_array)
                   ? json_object_array_length(list)
                   : 0;
    for (size_t i = 0; i < n && err == LST_OK; i++) {
        struct json_object *r = json_object_array_get_idx(list, i), *id = NULL;
        if (!json_object_object_get_ex(r, "employee_id", &id) ||
            !json_object_is_type(id, json_type_string))
            err = LST_ERR_INVALID;
        else if (va_names_add(&names, json_object_get_string(id)) == SIZE_MAX)
            err = LST_ERR_NOMEM;
        else
            json_object_object_del(r, "name");
    }
    if (err == LST_OK)
        err = va_names_load(s->r->ctx, &names);
    for (size_t i = 0; i < n && err == LST_OK; i++) {
        struct json_object *r = json_object_array_get_idx(list, i), *id = NULL;
        json_object_object_get_ex(r, "employee_id", &id);
        const char *name = va_names_get(&names, va_names_add(&names, json_object_get_string(id)));
        struct json_object *v = name != NULL ? json_object_new_string(name) : NULL;
        if (name != NULL && (v == NULL || json_object_object_add(r, "name", v) != 0)) {
            json_object_put(v);
            err = LST_ERR_NOMEM;
        }
    }
    if (err == LST_OK)
        json_out(out, o);
    va_names_cleanup(&names);
    json_object_put(o);
    return err;
}

static void replay(struct send *s, const char *stored)
{
    int64_t status = 0;
    char code[8] = {0};
    const char *nl = strchr(stored, '\n');
    const char *nl2 = nl != NULL ? strchr(nl + 1, '\n') : NULL;
    if (nl == NULL || nl2 == NULL || (size_t)(nl - stored) >= sizeof(code)) {
        lst_http_problem(s->r->resp, 500, "internal-error", "Internal Server Error",
                         "stored idempotent result unreadable");
        return;
    }
    memcpy(code, stored, (size_t)(nl - stored));
    if (lst_parse_i64(code, 100, 599, &status) != LST_OK || (size_t)(nl2 - nl - 1) != FP_HEX ||
        memcmp(nl + 1, s->fp, FP_HEX) != 0) {
        lst_http_problem(s->r->resp, 422, "idempotency-key-reused", "Idempotency Key Reused",
                         "this Idempotency-Key was used for a different request");
        return;
    }
    struct lst_buf body;
    lst_buf_init(&body);
    lst_err err = status == 202 ? replay_named(s, nl2 + 1, &body) : lst_buf_puts(&body, nl2 + 1);
    if (err == LST_OK && lst_buf_failed(&body))
        err = LST_ERR_NOMEM;
    if (err == LST_OK) {
        lst_http_reply(s->r->resp, (int)status, "application/json", body.data, body.len);
        lst_http_add_header(s->r->resp, "Idempotent-Replayed", "true");
        replay_location(s, status, nl2 + 1);
    } else if (err == LST_ERR_REDIS) {
        lst_http_problem(s->r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the recipients' names of the first result could not be read");
        lst_http_add_header(s->r->resp, "Retry-After", "1");
    } else {
        lst_http_problem(s->r->resp, 500, "internal-error", "Internal Server Error",
                         "stored idempotent result unreadable");
    }
    lst_buf_cleanup(&body);
}

/* Reserves the key, or takes over an attempt of the same body that gave up ("retry") or whose
 * lease ran out ("pending"), in one step: two retries racing must not both produce. ARGV: the
 * new "pending" entry without its ID line, the TTL, the body's fingerprint, the new ID line.
 * The new entry carries the taken-over attempt's ID line (its last line) or the new one.
 * Returns the earlier value ("" when reserved now); an expired lease comes back as the "retry"
 * entry it amounts to. */
static const char claim_lua[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if not v then redis.call('SET', KEYS[1], ARGV[1] .. ARGV[4], 'PX', ARGV[2]) return '' end "
    "local fp = '\\n' .. ARGV[3] .. '\\n' "
    "local kind, rest = string.match(v, '^(%a+)(\\n.*)$') "
    "if rest == nil or string.sub(rest, 1, #fp) ~= fp then return v end "
    "local tail = string.sub(rest, #fp + 1) "
    "if kind == 'pending' then "
    "  local lease, idline = string.match(tail, '^(%d+)\\n(.*)$') "
    "  local t = redis.call('TIME') "
    "  if lease == nil or tonumber(lease) >= tonumber(t[1]) * 1000 + math.floor(t[2] / 1000) then "
    "    return v end "
    "  v = 'retry' .. fp .. idline tail = idline "
    "elseif kind ~= 'retry' then return v end "
    "if tail == '' then tail = ARGV[4] end "
    "redis.call('SET', KEYS[1], ARGV[1] .. tail, 'PX', ARGV[2]) "
    "return v";

/* "retry\n<fp>\n<message id> <ms>\n" -> reuse_id/reuse_at; false when unreadable. An entry
 * of an expired lease without an ID line (written before IDs were chosen up front) keeps the
 * new ID. */
static bool parse_retry(struct send *s, const char *v)
{
    size_t n = strlen(v);
    const char *p = v + 6 + FP_HEX + 1;
    if (n == 6 + FP_HEX + 1)
        return true;
    if (n < 6 + FP_HEX + 1 + LST_MESSAGE_ID_LEN + 2 || p[LST_MESSAGE_ID_LEN] != ' ')
        return false;
    s->kept = true;
    memcpy(s->reuse_id, p, LST_MESSAGE_ID_LEN);
    s->reuse_id[LST_MESSAGE_ID_LEN] = '\0';
    char at[24] = {0};
    const char *q = p + LST_MESSAGE_ID_LEN + 1, *nl = strchr(q, '\n');
    if (nl == NULL || (size_t)(nl - q) >= sizeof(at))
        return false;
    memcpy(at, q, (size_t)(nl - q));
    return lst_parse_i64(at, 0, INT64_MAX, &s->reuse_at) == LST_OK;
}

static enum idem_state claimed(struct send *s, const char *v)
{
    if (v[0] == '\0')
        return IDEM_NEW;
    if (strncmp(v, "pending\n", 8) == 0) {
        lst_http_problem(s->r->resp, 409, "request-in-progress", "Request In Progress",
                         "a request with this Idempotency-Key is still running");
        lst_http_add_header(s->r->resp, "Retry-After", "1");
        return IDEM_STOPPED;
    }
    if (strncmp(v, "retry\n", 6) != 0) {
        replay(s, v);
        return IDEM_REPLAYED;
    }
    if (strncmp(v + 6, s->fp, FP_HEX) != 0) {
        lst_http_problem(s->r->resp, 422, "idempotency-key-reused", "Idempotency Key Reused",
                         "this Idempotency-Key was used for a different request");
        return IDEM_STOPPED;
    }
    if (parse_retry(s, v))
        return IDEM_NEW;
    lst_http_problem(s->r->resp, 500, "internal-error", "Internal Server Error",
                     "stored idempotency entry unreadable");
    return IDEM_STOPPED;
}

static enum idem_state idem_begin(struct send *s)
{
    struct view_api *ctx = s->r->ctx;
    struct lst_redis_script *script = NULL;
    redisReply *rep = NULL;
    char ttl[24], pending[FP_HEX + 48], idline[LST_MESSAGE_ID_LEN + 32];
    enum idem_state st = IDEM_STOPPED;
    if (s->idem == NULL)
        return IDEM_NEW;
    snprintf(ttl, sizeof(ttl), "%lld", (long long)ctx->cfg.idem_ttl_ms);
    snprintf(pending, sizeof(pending), "pending\n%s\n%lld\n", s->fp,
             (long long)(lst_wall_ms() + 2 * ctx->cfg.kafka_wait_ms + 5000));
    snprintf(idline, sizeof(idline), "%s %lld\n", s->reuse_id, (long long)s->reuse_at);
    const char *argv[] = {s->ikey.data, pending, ttl, s->fp, idline};
    /* a send is no hot path: the script object lives for this request only */
    lst_err err = lst_redis_script_create(claim_lua, false, &script);
    if (err == LST_OK)
        err = lst_redis_script_call(ctx->state, script, &rep, 1, 5, argv, NULL);
    if (err == LST_OK && rep->type == REDIS_REPLY_STRING)
        st = claimed(s, rep->str);
    else
        lst_http_problem(s->r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the idempotency key could not be checked");
    if (rep != NULL)
        freeReplyObject(rep);
    lst_redis_script_destroy(script);
    return st;
}

static void idem_release(struct send *s)
{
    if (s->idem == NULL)
        return;
    const char *del[] = {"DEL", s->ikey.data};
    lst_redis_cmd(s->r->ctx->state, NULL, 2, del, NULL);
}

/* Kafka did not acknowledge every record: keep the message ID for the retry (see the top). */
static void idem_keep_for_retry(struct send *s)
{
    struct lst_buf v;
    char ttl[24];
    if (s->idem == NULL)
        return;
    lst_buf_init(&v);
    const char *id = s->msg.message_id != NULL ? s->msg.message_id : s->reuse_id;
    int64_t at = s->msg.message_id != NULL ? s->msg.created_at : s->reuse_at;
    lst_buf_printf(&v, "retry\n%s\n%s %lld\n", s->fp, id, (long long)at);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)s->r->ctx->cfg.idem_ttl_ms);
    const char *set[] = {"SET", s->ikey.data, v.data, "PX", ttl};
    if (lst_buf_failed(&v) || lst_redis_cmd(s->r->ctx->state, NULL, 5, set, NULL) != LST_OK) {
        LST_WARN("view_api.idempotency",
                 "message %s: the key could not keep the message ID; a retry gets a new one", id);
        idem_release(s);
    }
    lst_buf_cleanup(&v);
}

static void idem_store(struct send *s, int status, const struct lst_buf *body)
{
    struct lst_buf v;
    char ttl[24];
    if (s->idem == NULL)
        return;
    lst_buf_init(&v);
    lst_buf_printf(&v, "%d\n%s\n", status, s->fp);
    lst_buf_append(&v, body->data, body->len);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)s->r->ctx->cfg.idem_ttl_ms);
    const char *set[] = {"SET", s->ikey.data, v.data, "PX", ttl};
    if (lst_buf_failed(&v) || lst_redis_cmd(s->r->ctx->state, NULL, 5, set, NULL) != LST_OK)
        LST_WARN("view_api.idempotency",
                 "result of message %s not stored: a repetition "
                 "would send again",
                 s->msg.message_id);
    lst_buf_cleanup(&v);
}

/* ---- records ---- */

static lst_err store_upload(struct send *s)
{
    struct lst_blob_desc d = {.mime = s->upload_mime,
                              .filename = s->upload_name,
                              .source = "view-api",
                              .created_at = s->msg.created_at};
    char ref[LST_BLOBSTORE_REF_HEX + 1];
    if (s->r->ctx->blobs == NULL)
        return LST_ERR_IO;
    lst_err err = lst_blobstore_put(s->r->ctx->blobs, s->upload.data ? s->upload.data : "",
                                    s->upload.len, &d, ref);
    if (err != LST_OK)
        return err;
    s->msg.content.blob = lst_strdup(ref);
    s->msg.content.mime = lst_strdup(s->upload_mime);
    s->msg.content.filename = s->upload_name != NULL ? lst_strdup(s->upload_name) : NULL;
    s->msg.content.size = (int64_t)s->upload.len;
    return s->msg.content.blob != NULL ? LST_OK : LST_ERR_NOMEM;
}

static enum lst_skip_reason skip_reason(enum va_skip_reason r)
{
    switch (r) {
    case VA_SKIP_UNKNOWN:
        return LST_SKIP_UNKNOWN;
    case VA_SKIP_INACTIVE:
        return LST_SKIP_INACTIVE;
    case VA_SKIP_NO_CONTACT:
        return LST_SKIP_NO_CONTACT;
    }
    return LST_SKIP_UNKNOWN;
}

/* The skipped go into the record so that the detail can show them later (the 202 answer is
 * gone by then). Resolution lists them in ID order; a record keeps the first
 * LST_SKIPPED_MAX (a selector can match any number of inactive employees). */
static lst_err add_skipped(struct lst_audience *to, const struct va_audience *a)
{
    lst_err err = LST_OK;
    for (size_t i = 0; i < a->nskipped && i < LST_SKIPPED_MAX && err == LST_OK; i++)
        err = a->skipped[i].id == NULL
                  ? LST_ERR_NOMEM
                  : lst_audience_skip_push(to, a->skipped[i].id, skip_reason(a->skipped[i].reason));
    return err;
}

static lst_err build_message(struct send *s)
{
    struct lst_message *m = &s->msg;
    lst_err err = LST_OK;
    /* chosen before the key was claimed, or an earlier attempt's (the same records as it) */
    m->created_at = s->reuse_at;
    m->message_id = lst_strdup(s->reuse_id);
    m->dispatcher = lst_strdup(s->r->who->user);
    /* the token's display name: the ledger keeps it (disp_name), the views show it */
    m->dispatcher_name = s->r->who->name != NULL ? lst_strdup(s->r->who->name) : NULL;
    m->department = s->r->who->department ? lst_strdup(s->r->who->department) : NULL;
    m->idempotency_key = lst_strdup(s->idem != NULL ? s->idem : s->reuse_id);
    /* the audience snapshot: the selector as asked, the recipients as resolved */
    m->audience.selector = s->aud.selector;
    memset(&s->aud.selector, 0, sizeof(s->aud.selector));
    for (size_t i = 0; i < s->aud.nrecipients && err == LST_OK; i++)
        err = lst_strv_push(&m->audience.recipients, s->aud.recipients[i].id);
    if (err == LST_OK)
        err = add_skipped(&m->audience, &s->aud);
    return err;
}

static lst_err copy_content(struct lst_content *to, const struct lst_content *from)
{
    memset(to, 0, sizeof(*to));
    to->kind = from->kind;
    to->size = from->size;
#define CP(f) to->f = from->f != NULL ? lst_strdup(from->f) : NULL
    CP(text);
    CP(blob);
    CP(mime);
    CP(filename);
    CP(caption);
#undef CP
    return LST_OK;
}

static lst_err produce_outbound(struct send *s, struct va_batch *b, const struct va_employee *e,
                                struct lst_buf *enc)
{
    struct lst_outbound o = {0};
    struct lst_buf rid;
    lst_err err;
    lst_buf_init(&rid);
    err = lst_request_id_format(&rid, s->msg.message_id, e->id);
    o.request_id = lst_buf_steal(&rid);
    o.message_id = lst_strdup(s->msg.message_id);
    o.employee_id = lst_strdup(e->id);
    o.to.threema_id = e->threema_id ? lst_strdup(e->threema_id) : NULL;
    o.to.phone = e->phone ? lst_strdup(e->phone) : NULL;
    o.to.email = e->email ? lst_strdup(e->email) : NULL;
    copy_content(&o.content, &s->msg.content);
    o.created_at = s->msg.created_at;
    if (err == LST_OK)
        err = lst_outbound_encode(&o, enc);
    if (err == LST_OK)
        err = va_batch_produce(b, s->r->ctx->svc->producer, s->r->ctx->topic_outbound, e->id,
                               enc->data, enc->len);
    lst_outbound_cleanup(&o);
    lst_buf_cleanup(&rid);
    return err;
}

/* Encodes everything first (a record the codec refuses is the request's fault: 422), then
 * produces: the message first, then the fan-out. */
static lst_err produce(struct send *s, struct lst_buf *why)
{
    struct va_batch *b = NULL;
    struct lst_buf enc;
    lst_err err;
    lst_buf_init(&enc);
    err = lst_message_validate(&s->msg, why);
    if (err != LST_OK) {
        err = LST_ERR_INVALID;
        goto out;
    }
    err = va_batch_create(&b);
    if (err == LST_OK)
        err = lst_message_encode(&s->msg, &enc);
    if (err == LST_OK)
        err = va_batch_produce(b, s->r->ctx->svc->producer, s->r->ctx->topic_message,
                               s->msg.message_id, enc.data, enc.len);
    for (size_t i = 0; i < s->aud.nrecipients && err == LST_OK; i++)
        err = produce_outbound(s, b, &s->aud.recipients[i], &enc);
    if (b != NULL) {
        lst_err werr = va_batch_wait(b, s->r->ctx->cfg.kafka_wait_ms, NULL);
        if (err == LST_OK)
            err = werr;
    }
    if (err == LST_ERR_INVALID)
        err = LST_ERR_KAFKA; /* the records were valid: a producer refusal is not the client's */
out:
    va_batch_release(b);
    lst_buf_cleanup(&enc);
    return err;
}

/* ---- the answer ---- */

/* names: false for the copy stored under the Idempotency-Key (see replay_named) */
static void audience_json(struct lst_buf *b, const struct va_audience *a, bool names)
{
    lst_buf_printf(b, "\"recipient_count\":%zu,\"recipients\":[", a->nrecipients);
    for (size_t i = 0; i < a->nrecipients; i++) {
        lst_buf_puts(b, "{");
        va_json_kv(b, false, "employee_id", a->recipients[i].id);
        if (names)
            va_json_kv(b, true, "name", a->recipients[i].name);
        lst_buf_puts(b, i + 1 < a->nrecipients ? "}," : "}");
    }
    lst_buf_printf(b, "],\"skipped_count\":%zu,\"skipped\":[", a->nskipped);
    for (size_t i = 0; i < a->nskipped; i++) {
        lst_buf_puts(b, "{");
        va_json_kv(b, false, "employee_id", a->skipped[i].id);
        va_json_kv(b, true, "reason", va_skip_reason_name(a->skipped[i].reason));
        lst_buf_puts(b, i + 1 < a->nskipped ? "}," : "}");
    }
    lst_buf_puts(b, "]");
}

static void selector_json(struct lst_buf *b, const struct lst_selector *s)
{
    lst_buf_puts(b, "\"selector\":{\"employee_ids\":");
    va_json_strv_out(b, &s->employee_ids);
    lst_buf_puts(b, ",\"departments\":");
    va_json_strv_out(b, &s->departments);
    lst_buf_puts(b, ",\"vehicles\":");
    va_json_strv_out(b, &s->vehicles);
    lst_buf_puts(b, ",\"tags\":");
    va_json_strv_out(b, &s->tags);
    if (s->has_active)
        lst_buf_puts(b, s->active ? ",\"active\":true" : ",\"active\":false");
    lst_buf_puts(b, "}");
}

static void answer_json(struct lst_buf *b, const struct send *s, bool names)
{
    lst_buf_puts(b, "{");
    va_json_kv(b, false, "message_id", s->msg.message_id);
    lst_buf_printf(b, ",\"created_at\":%lld", (long long)s->msg.created_at);
    va_json_kv(b, true, "category", s->msg.category);
    va_json_kv(b, true, "kind", lst_content_kind_name(s->msg.content.kind));
    va_json_kv(b, true, "blob", s->msg.content.blob);
    va_json_kv(b, true, "idempotency_key", s->msg.idempotency_key);
    lst_buf_puts(b, ",");
    selector_json(b, &s->msg.audience.selector);
    lst_buf_puts(b, ",");
    audience_json(b, &s->aud, names);
    lst_buf_puts(b, "}");
}

static void accepted(struct send *s)
{
    struct lst_buf b, loc;
    lst_buf_init(&b);
    lst_buf_init(&loc);
    if (s->idem != NULL) {
        answer_json(&b, s, false);
        idem_store(s, 202, &b);
        lst_buf_reset(&b);
    }
    answer_json(&b, s, true);
    va_reply_json(s->r, 202, &b);
    lst_buf_printf(&loc, "/api/messages/%s", s->msg.message_id);
    lst_http_add_header(s->r->resp, "Location", loc.data);
    lst_buf_cleanup(&b);
    lst_buf_cleanup(&loc);
}

static void no_recipients(struct send *s)
{
    struct lst_buf ext;
    lst_buf_init(&ext);
    audience_json(&ext, &s->aud, true);
    va_problem_ext(s->r->resp, 422, "no-recipients", "No Recipients",
                   "the audience resolved to nobody who can receive", ext.data);
    lst_buf_cleanup(&ext);
}

static void kafka_unavailable(struct send *s, lst_err err)
{
    struct lst_buf ext, detail;
    lst_buf_init(&ext);
    lst_buf_init(&detail);
    idem_keep_for_retry(s);
    va_json_kv(&ext, false, "message_id", s->msg.message_id);
    lst_buf_printf(&detail,
                   "the message was not accepted by Kafka (%s); retry with the same "
                   "Idempotency-Key and body: the retry keeps message_id",
                   lst_strerror(err));
    va_problem_ext(s->r->resp, 503, "kafka-unavailable", "Kafka Unavailable",
                   detail.data ? detail.data : "Kafka unavailable", ext.data);
    lst_http_add_header(s->r->resp, "Retry-After", "5");
    lst_buf_cleanup(&ext);
    lst_buf_cleanup(&detail);
}

/* Resolve, store an upload, build and produce; the key is released on a failure before
 * anything was produced and kept with the message ID after a Kafka failure. */
static void act(struct send *s)
{
    struct lst_buf why;
    lst_err err;
    lst_buf_init(&why);
    err = va_audience_resolve(s->r->ctx, &s->aud);
    if (err != LST_OK) {
        lst_http_problem(s->r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the directory could not be read");
        goto fail;
    }
    if (s->aud.nrecipients == 0) {
        no_recipients(s);
        goto fail;
    }
    if (s->aud.nrecipients > LST_RECIPIENTS_MAX) {
        /* well-formed, but the directory makes it too large (like no-recipients): 422 */
        lst_http_problem(s->r->resp, 422, "audience-too-large", "Audience Too Large",
                         "the audience has more than 2000 recipients: split the message");
        goto fail;
    }
    if (s->upload_mime != NULL && store_upload(s) != LST_OK) {
        lst_http_problem(s->r->resp, 503, "blobstore-unavailable", "Blob Store Unavailable",
                         "the attachment could not be stored");
        goto fail;
    }
    err = build_message(s);
    if (err == LST_OK)
        err = produce(s, &why);
    if (err == LST_ERR_INVALID) {
        bad(s, why.data ? why.data : "invalid");
        goto fail;
    }
    if (err != LST_OK) {
        kafka_unavailable(s, err);
        goto out;
    }
    LST_INFO("view_api.send", "message=%s user=%s recipients=%zu skipped=%zu", s->msg.message_id,
             s->r->who->user, s->aud.nrecipients, s->aud.nskipped);
    accepted(s);
    goto out;
fail:
    /* a retry's first attempt may have records in Kafka: its message ID stays reserved */
    if (s->kept)
        idem_keep_for_retry(s);
    else
        idem_release(s);
out:
    lst_buf_cleanup(&why);
}

static bool idem_key(struct send *s)
{
    const char *k = lst_http_header(s->r->http, "Idempotency-Key");
    size_t len = k != NULL ? strlen(k) : 0;
    unsigned char h[crypto_hash_sha256_BYTES];
    if (k == NULL)
        return true;
    for (size_t i = 0; i < len; i++) {
        if (k[i] < '!' || k[i] > '~')
            len = 0;
    }
    if (len == 0 || len > LST_IDEMPOTENCY_KEY_MAX) {
        lst_http_problem(s->r->resp, 400, "invalid-idempotency-key", "Invalid Idempotency Key",
                         "Idempotency-Key: 1 to 128 printable ASCII characters without spaces");
        return false;
    }
    s->idem = lst_strdup(k);
    lst_buf_printf(&s->ikey, "%sidem:%s:%s", s->r->ctx->cfg.key_prefix, s->r->who->user, k);
    crypto_hash_sha256(h, (const unsigned char *)s->r->http->body, s->r->http->body_len);
    sodium_bin2hex(s->fp, sizeof(s->fp), h, sizeof(h));
    return s->idem != NULL && !lst_buf_failed(&s->ikey);
}

void va_handle_send(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct va_req r;
    struct send s = {0};
    struct json_object *body = NULL;
    struct lst_buf why;
    if (!va_begin(ud, req, resp, VA_ROLE_DISPATCHER, &r))
        return;
    s.r = &r;
    lst_buf_init(&why);
    lst_buf_init(&s.ikey);
    lst_buf_init(&s.upload);
    if (!idem_key(&s))
        goto out;
    body = va_json_body_max(&r, r.ctx->cfg.upload_max_body);
    if (body == NULL)
        goto out;
    if (!parse_request(&s, body, &why)) {
        lst_http_problem(resp, 400, "invalid-message", "Invalid Message", "%s",
                         why.data ? why.data : "invalid");
        goto out;
    }
    /* the ID is chosen before the key is claimed: the "pending" entry holds it (see the top) */
    s.reuse_at = lst_wall_ms();
    if (lst_message_id_new(s.reuse_at, s.reuse_id) != LST_OK)
        lst_http_problem(resp, 500, "internal-error", "Internal Server Error", "no message ID");
    else if (idem_begin(&s) == IDEM_NEW)
        act(&s);
out:
    json_object_put(body);
    send_cleanup(&s);
    lst_buf_cleanup(&why);
}
