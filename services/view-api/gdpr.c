/* GDPR: the audit log (lst.audit, stored by the ledger), the export of everything stored
 * about one employee, and the erasure of one employee (docs/view-api.md, "GDPR").
 *
 *   GET    /api/admin/audit?employee=&actor=&action=&from=&to=&limit=&cursor=
 *   GET    /api/admin/employees/{id}/export
 *   DELETE /api/admin/employees/{id}
 *
 * The view-api writes only through Kafka, so every audit entry is a lst.audit record the
 * ledger stores (aud, aud:emp:<eid>, aud:d). A history view produces its entry without
 * waiting (the view never fails for it); an export or erasure answers only after Kafka
 * acknowledged its entry (and, for the erasure, the tombstone), so nothing is exported or
 * erased unaudited. The entry shows up in the log once the ledger applied it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lst/kafka.h"
#include "lst/log.h"
#include "view_api.h"

#define SCAN_CHUNK 500
/* Items of one employee's history an export or erasure reads at most: far above any real
 * driver's history, a bound on one request's work. */
#define HISTORY_MAX 200000
/* Index entries the erasure's blob reference check reads at most; beyond, shared-looking
 * blobs are kept (safe side) and reported unchecked. */
#define REF_SCAN_MAX 1000000

static const char *const ACTIONS[] = {"view", "export", "erase", "readmit"};

/* ---- producing audit entries ---- */

lst_err va_audit_encode(struct va_req *r, enum lst_audit_action action, const char *eid,
                        const char *detail, char id[LST_MESSAGE_ID_LEN + 1], struct lst_buf *out)
{
    int64_t now = lst_wall_ms();
    char role[16];
    lst_err err = lst_message_id_new(now, id);
    struct lst_audit a = {.event_id = id,
                          .at = now,
                          .actor = r->who->user,
                          .role = role,
                          .action = action,
                          .employee_id = (char *)(uintptr_t)eid,
                          .detail = (char *)(uintptr_t)detail};
    snprintf(role, sizeof(role), "%s", r->who->role == VA_ROLE_ADMIN ? "admin" : "dispatcher");
    if (err == LST_OK)
        err = lst_audit_encode(&a, out);
    return err;
}

void va_audit_view(struct va_req *r, const char *employee_id, const char *detail)
{
    char id[LST_MESSAGE_ID_LEN + 1];
    struct lst_buf v;
    lst_buf_init(&v);
    lst_err err = va_audit_encode(r, LST_AUDIT_VIEW, employee_id, detail, id, &v);
    if (err == LST_OK)
        err = lst_kafka_produce_async(r->ctx->svc->producer, r->ctx->topic_audit, employee_id,
                                      strlen(employee_id), v.data, v.len, NULL, NULL);
    if (err != LST_OK)
        LST_WARN("view_api.audit_failed", "view of an employee's traffic not audited: %s",
                 lst_strerror(err));
    lst_buf_cleanup(&v);
}

/* employee=a,b shows the traffic of each: one entry each, so adding a name does not dodge
 * the log. Other filters (department, depot, ...) show groups and are not audited. */
void va_audit_filter(struct va_req *r, const struct va_filter *f, const char *detail)
{
    for (size_t i = 0; i < f->employees.len; i++)
        va_audit_view(r, f->employees.items[i], detail);
}

/* ---- the audit log ---- */

static bool action_ok(const char *a)
{
    for (size_t i = 0; i < LST_ARRAY_LEN(ACTIONS); i++) {
        if (strcmp(a, ACTIONS[i]) == 0)
            return true;
    }
    return false;
}

struct audit_q {
    const char *employee, *actor, *action;
    int64_t from, to, limit;
    struct va_cursor cur;
};

static const char *const audit_params[] = {"employee", "actor", "action", "from",
                                           "to",       "limit", "cursor", NULL};
const struct va_query_spec va_audit_query = {"GET", "/api/admin/audit", audit_params, false};

static bool audit_parse(struct va_req *r, struct audit_q *q, struct lst_buf *why)
{
    const char *f = lst_http_query(r->http, "from"), *t = lst_http_query(r->http, "to");
    const char *c = lst_http_query(r->http, "cursor");
    q->employee = lst_http_query(r->http, "employee");
    q->actor = lst_http_query(r->http, "actor");
    q->action = lst_http_query(r->http, "action");
    q->from = 0;
    q->to = LST_TIME_MS_MAX;
    if (q->employee != NULL && !va_employee_id_ok(q->employee))
        lst_buf_puts(why, "employee: not an employee ID");
    else if (q->actor != NULL && (q->actor[0] == '\0' || strlen(q->actor) > LST_USER_ID_MAX))
        lst_buf_puts(why, "actor: 1 to 128 bytes");
    else if (q->action != NULL && !action_ok(q->action))
        lst_buf_puts(why, "action: view, export or erase");
    if (why->len > 0 || (f != NULL && !va_parse_time_ms("from", f, &q->from, why)) ||
        (t != NULL && !va_parse_time_ms("to", t, &q->to, why)))
        return false;
    if (c != NULL && !va_cursor_parse(c, &q->cur)) {
        lst_buf_puts(why, "cursor: not a cursor of this list");
        return false;
    }
    return va_query_limit(r, 50, &q->limit, why);
}

/* True when the stored entry passes the actor/action filters. */
static bool audit_match(const struct audit_q *q, const char *json)
{
    char want[200];
    if (q->action != NULL) {
        snprintf(want, sizeof(want), "\"action\":\"%s\"", q->action);
        if (strstr(json, want) == NULL)
            return false;
    }
    if (q->actor != NULL) {
        struct lst_buf a;
        lst_buf_init(&a);
        lst_buf_puts(&a, "\"actor\":");
        lst_buf_json_str(&a, q->actor, strlen(q->actor));
        bool ok = a.data != NULL && strstr(json, a.data) != NULL;
        lst_buf_cleanup(&a);
        if (!ok)
            return false;
    }
    return true;
}

/* One batch of ids newest first below the cursor, with their entries. */
static lst_err audit_batch(struct view_api *ctx, const char *key, const struct audit_q *q,
                           int64_t offset, redisReply **ids, struct lst_redis_pipe *p)
{
    char max[32], min[32], off[24], cnt[24];
    if (q->cur.set)
        snprintf(max, sizeof(max), "%lld", (long long)q->cur.score);
    else
        snprintf(max, sizeof(max), "%lld", (long long)q->to);
    snprintf(min, sizeof(min), "%lld", (long long)q->from);
    snprintf(off, sizeof(off), "%lld", (long long)offset);
    snprintf(cnt, sizeof(cnt), "%d", SCAN_CHUNK);
    const char *argv[] = {"ZREVRANGEBYSCORE", key, max, min, "WITHSCORES", "LIMIT", off, cnt};
    lst_err err = lst_redis_cmd(ctx->svc->redis, ids, (int)LST_ARRAY_LEN(argv), argv, NULL);
    if (err != LST_OK || (*ids)->type != REDIS_REPLY_ARRAY)
        return err == LST_OK ? LST_ERR_REDIS : err;
    struct lst_buf d;
    lst_buf_init(&d);
    va_lkey(ctx, &d, "aud:d");
    for (size_t i = 0; i + 1 < (*ids)->elements && err == LST_OK; i += 2) {
        const char *a[] = {"HGET", d.data, (*ids)->element[i]->str};
        err = lst_redis_pipe_add(p, 3, a, NULL);
    }
    if (err == LST_OK && (*ids)->elements > 0)
        err = lst_redis_pipe_exec(ctx->svc->redis, p);
    lst_buf_cleanup(&d);
    return err;
}

/* Whether (score, id) is at or above the cursor (already returned). */
static bool before_cursor(const struct va_cursor *c, int64_t score, const char *id)
{
    return c->set && score == c->score && strcmp(id, c->id) >= 0;
}

static lst_err audit_page(struct view_api *ctx, const struct audit_q *q, struct lst_buf *out)
{
    struct lst_buf key;
    lst_err err = LST_OK;
    int64_t count = 0, scanned = 0, offset = 0, last_score = 0;
    char last_id[128] = "";
    bool more = true;
    lst_buf_init(&key);
    if (q->employee != NULL)
        va_lkey(ctx, &key, "aud:emp:%s", q->employee);
    else
        va_lkey(ctx, &key, "aud");
    lst_buf_puts(out, "{\"items\":[");
    while (more && count < q->limit && scanned < ctx->cfg.scan_max && err == LST_OK) {
        redisReply *ids = NULL;
        struct lst_redis_pipe *p = NULL;
        err = lst_redis_pipe_create(&p);
        if (err == LST_OK)
            err = audit_batch(ctx, key.data, q, offset, &ids, p);
        size_t n = err == LST_OK ? ids->elements / 2 : 0;
        more = n == SCAN_CHUNK;
        offset += (int64_t)n;
        for (size_t i = 0; i < n && count < q->limit; i++) {
            const char *id = ids->element[2 * i]->str;
            int64_t score = 0;
            lst_parse_i64(ids->element[2 * i + 1]->str, 0, LST_TIME_MS_MAX, &score);
            scanned++;
            if (before_cursor(&q->cur, score, id))
                continue;
            snprintf(last_id, sizeof(last_id), "%s", id);
            last_score = score;
            const redisReply *e = lst_redis_pipe_reply(p, i);
            if (e == NULL || e->type != REDIS_REPLY_STRING || !audit_match(q, e->str))
                continue;
            lst_buf_puts(out, count > 0 ? "," : "");
            lst_buf_puts(out, e->str);
            count++;
        }
        if (n > 0 && count >= q->limit)
            more = true;
        if (ids != NULL)
            freeReplyObject(ids);
        lst_redis_pipe_destroy(p);
    }
    lst_buf_puts(out, "],\"next_cursor\":");
    if (more && last_id[0] != '\0') {
        char c[200];
        snprintf(c, sizeof(c), "%lld_%s", (long long)last_score, last_id);
        lst_buf_json_str(out, c, strlen(c));
    } else {
        lst_buf_puts(out, "null");
    }
    lst_buf_puts(out, "}");
    lst_buf_cleanup(&key);
    return err;
}

void va_handle_audit(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct va_req r;
    struct audit_q q = {0};
    struct lst_buf why, out;
    if (!va_begin(ud, req, resp, VA_ROLE_ADMIN, &r)) /* also the query (va_audit_query) */
        return;
    lst_buf_init(&why);
    lst_buf_init(&out);
    if (!audit_parse(&r, &q, &why))
        lst_http_problem(resp, 400, "invalid-query", "Invalid Query Parameter", "%s",
                         why.data ? why.data : "invalid");
    else if (audit_page(r.ctx, &q, &out) != LST_OK)
        lst_http_problem(resp, 503, "store-unavailable", "Store Unavailable",
                         "the projections could not be read");
    else
        va_reply_json(&r, 200, &out);
    lst_buf_cleanup(&why);
    lst_buf_cleanup(&out);
}

/* ---- one employee's stored data ---- */

static const char *hfield(const redisReply *h, const char *field)
{
    for (size_t i = 0; h != NULL && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        if (strcmp(h->element[i]->str, field) == 0 && h->element[i + 1]->type == REDIS_REPLY_STRING)
            return h->element[i + 1]->str;
    }
    return NULL;
}

/* Everything of one employee's history, oldest first: per item its hash and (outgoing) the
 * employee's state. Replies: 2 per id (HGETALL m:, HGET r: eid). */
struct history {
    redisReply *ids;
    struct lst_redis_pipe *p;
};

static void history_cleanup(struct history *h)
{
    if (h->ids != NULL)
        freeReplyObject(h->ids);
    lst_redis_pipe_destroy(h->p);
}

static lst_err history_load(struct view_api *ctx, const char *eid, struct history *h)
{
    struct lst_buf k;
    char stop[24];
    lst_buf_init(&k);
    snprintf(stop, sizeof(stop), "%d", HISTORY_MAX - 1);
    va_lkey(ctx, &k, "x:emp:%s", eid);
    const char *argv[] = {"ZRANGE", k.data, "0", stop};
    lst_err err = lst_redis_pipe_create(&h->p);
    if (err == LST_OK)
        err = lst_redis_cmd(ctx->svc->redis, &h->ids, 4, argv, NULL);
    if (err == LST_OK && h->ids->type != REDIS_REPLY_ARRAY)
        err = LST_ERR_REDIS;
    for (size_t i = 0; err == LST_OK && i < h->ids->elements; i++) {
        const char *id = h->ids->element[i]->str;
        va_lkey(ctx, &k, "m:%s", id);
        const char *a[] = {"HGETALL", k.data};
        err = lst_redis_pipe_add(h->p, 2, a, NULL);
        va_lkey(ctx, &k, "r:%s", id);
        const char *b[] = {"HGET", k.data, eid};
        if (err == LST_OK)
            err = lst_redis_pipe_add(h->p, 3, b, NULL);
    }
    if (err == LST_OK && h->ids->elements > 0)
        err = lst_redis_pipe_exec(ctx->svc->redis, h->p);
    lst_buf_cleanup(&k);
    return err;
}

static size_t history_n(const struct history *h)
{
    return h->ids != NULL ? h->ids->elements : 0;
}

static const redisReply *history_item(const struct history *h, size_t i)
{
    return lst_redis_pipe_reply(h->p, 2 * i);
}

static const redisReply *history_state(const struct history *h, size_t i)
{
    return lst_redis_pipe_reply(h->p, 2 * i + 1);
}

static void strv_add_unique(struct lst_strv *v, const char *s)
{
    if (s == NULL || !lst_blobstore_ref_valid(s))
        return;
    for (size_t i = 0; i < v->len; i++) {
        if (strcmp(v->items[i], s) == 0)
            return;
    }
    lst_strv_push(v, s);
}

/* The blobs of the items (blob and thumbnail of both directions). */
static void blob_refs(const redisReply *m, struct lst_strv *out)
{
    strv_add_unique(out, hfield(m, "blob"));
    strv_add_unique(out, hfield(m, "thumb"));
    strv_add_unique(out, hfield(m, "tblob"));
}

/* ---- export ---- */

static void export_blob(struct view_api *ctx, struct lst_buf *b, const char *ref)
{
    struct lst_blob_meta m = {0};
    lst_buf_puts(b, "{");
    va_json_kv(b, false, "ref", ref);
    if (ctx->blobs != NULL && lst_blobstore_meta(ctx->blobs, ref, &m) == LST_OK) {
        lst_buf_puts(b, ",\"stored\":true");
        va_json_kv(b, true, "mime", m.mime);
        va_json_kv(b, true, "filename", m.filename);
        va_json_kv(b, true, "source", m.source);
        lst_buf_printf(b, ",\"size\":%lld,\"created_at\":%lld", (long long)m.size,
                       (long long)m.created_at);
    } else {
        lst_buf_puts(b, ",\"stored\":false");
    }
    lst_buf_puts(b, "}");
    lst_blob_meta_cleanup(&m);
}

static void export_messages(struct lst_buf *b, const struct history *h, struct lst_strv *refs)
{
    lst_buf_puts(b, ",\"messages\":[");
    size_t n = 0;
    for (size_t i = 0; i < history_n(h); i++) {
        const redisReply *m = history_item(h, i), *st = history_state(h, i);
        if (m == NULL || m->type != REDIS_REPLY_ARRAY || m->elements == 0)
            continue;
        lst_buf_puts(b, n++ > 0 ? "," : "");
        va_item_json(b, m);
        if (st != NULL && st->type == REDIS_REPLY_STRING) {
            b->len--; /* reopen the item object */
            lst_buf_puts(b, ",\"recipient_status\":");
            va_recipient_json(b, st->str, false);
            lst_buf_puts(b, "}");
        }
        blob_refs(m, refs);
    }
    lst_buf_puts(b, "]");
}

/* Her reason in a message's skp ([[employee ID, reason], ...], docs/ledger.md "Keys") into
 * out; false when she is not in it. */
static bool skip_reason(const char *skp, const char *eid, char *out, size_t size)
{
    struct json_object *a = json_tokener_parse(skp);
    bool found = false;
    size_t n = json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
    for (size_t i = 0; i < n && !found; i++) {
        /* json-c asserts on array calls on anything else: check each level first */
        struct json_object *e = json_object_array_get_idx(a, i);
        if (!json_object_is_type(e, json_type_array) || json_object_array_length(e) < 2)
            continue;
        const char *id = json_object_get_string(json_object_array_get_idx(e, 0));
        const char *why = json_object_get_string(json_object_array_get_idx(e, 1));
        found = id != NULL && why != NULL && strcmp(id, eid) == 0;
        if (found)
            snprintf(out, size, "%s", why);
    }
    json_object_put(a);
    return found;
}

/* The messages that targeted her but did not go to her (e:<eid>:skp, each message's skp),
 * with the reason: stored about her, so part of what she has a right to see. Oldest first,
 * at most HISTORY_MAX like the messages. */
static lst_err export_skipped(struct view_api *ctx, const char *eid, struct lst_buf *b)
{
    struct lst_buf k;
    redisReply *ids = NULL;
    struct lst_redis_pipe *p = NULL;
    char stop[24], why[32];
    lst_buf_init(&k);
    snprintf(stop, sizeof(stop), "%d", HISTORY_MAX - 1);
    va_lkey(ctx, &k, "e:%s:skp", eid);
    const char *argv[] = {"ZRANGE", k.data, "0", stop};
    lst_err err = lst_redis_pipe_create(&p);
    if (err == LST_OK)
        err = lst_redis_cmd(ctx->svc->redis, &ids, 4, argv, NULL);
    if (err == LST_OK && ids->type != REDIS_REPLY_ARRAY)
        err = LST_ERR_REDIS;
    for (size_t i = 0; err == LST_OK && i < ids->elements; i++) {
        va_lkey(ctx, &k, "m:%s", ids->element[i]->str);
        const char *a[] = {"HGET", k.data, "skp"};
        err = lst_redis_pipe_add(p, 3, a, NULL);
    }
    if (err == LST_OK && ids->elements > 0)
        err = lst_redis_pipe_exec(ctx->svc->redis, p);
    lst_buf_puts(b, ",\"skipped_by\":[");
    for (size_t i = 0, n = 0; err == LST_OK && i < ids->elements; i++) {
        const redisReply *s = lst_redis_pipe_reply(p, i);
        if (s == NULL || s->type != REDIS_REPLY_STRING ||
            !skip_reason(s->str, eid, why, sizeof(why)))
            continue;
        lst_buf_puts(b, n++ > 0 ? ",{" : "{");
        va_json_kv(b, false, "message_id", ids->element[i]->str);
        va_json_kv(b, true, "reason", why);
        lst_buf_puts(b, "}");
    }
    lst_buf_puts(b, "]");
    if (ids != NULL)
        freeReplyObject(ids);
    lst_redis_pipe_destroy(p);
    lst_buf_cleanup(&k);
    return err;
}

/* The access log of the employee (every entry, oldest first). */
static lst_err export_access(struct view_api *ctx, const char *eid, struct lst_buf *b)
{
    struct lst_buf k, d;
    redisReply *ids = NULL, *entries = NULL;
    lst_buf_init(&k);
    lst_buf_init(&d);
    va_lkey(ctx, &k, "aud:emp:%s", eid);
    va_lkey(ctx, &d, "aud:d");
    const char *argv[] = {"ZRANGE", k.data, "0", "-1"};
    lst_err err = lst_redis_cmd(ctx->svc->redis, &ids, 4, argv, NULL);
    lst_buf_puts(b, ",\"access_log\":[");
    if (err == LST_OK && ids->type == REDIS_REPLY_ARRAY && ids->elements > 0) {
        const char **a = calloc(ids->elements + 2, sizeof(*a));
        if (a == NULL) {
            err = LST_ERR_NOMEM;
        } else {
            a[0] = "HMGET";
            a[1] = d.data;
            for (size_t i = 0; i < ids->elements; i++)
                a[2 + i] = ids->element[i]->str;
            err = lst_redis_cmd(ctx->svc->redis, &entries, (int)ids->elements + 2, a, NULL);
            free(a);
        }
        size_t n = 0;
        for (size_t i = 0;
             err == LST_OK && entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
            if (entries->element[i]->type != REDIS_REPLY_STRING)
                continue;
            lst_buf_puts(b, n++ > 0 ? "," : "");
            lst_buf_puts(b, entries->element[i]->str);
        }
    }
    lst_buf_puts(b, "]");
    if (ids != NULL)
        freeReplyObject(ids);
    if (entries != NULL)
        freeReplyObject(entries);
    lst_buf_cleanup(&k);
    lst_buf_cleanup(&d);
    return err;
}

/* Produces one audit entry and waits for Kafka's ack (export, erasure: nothing unaudited).
 * tombstone: the erasure's lst.employees tombstone goes into the same batch. */
static lst_err audit_sync(struct va_req *r, enum lst_audit_action action, const char *eid,
                          const char *detail, bool tombstone, char id[LST_MESSAGE_ID_LEN + 1])
{
    struct va_batch *batch = NULL;
    struct lst_buf v;
    lst_buf_init(&v);
    lst_err err = va_audit_encode(r, action, eid, detail, id, &v);
    if (err == LST_OK)
        err = va_batch_create(&batch);
    if (err == LST_OK)
        err =
            va_batch_produce(batch, r->ctx->svc->producer, r->ctx->topic_audit, eid, v.data, v.len);
    if (err == LST_OK && tombstone)
        err = va_batch_produce(batch, r->ctx->svc->producer, r->ctx->topic_employees, eid, NULL, 0);
    if (err == LST_OK)
        err = va_batch_wait(batch, r->ctx->cfg.kafka_wait_ms, NULL);
    va_batch_release(batch);
    lst_buf_cleanup(&v);
    return err;
}

static void kafka_down(struct va_req *r)
{
    lst_http_problem(r->resp, 503, "kafka-unavailable", "Kafka Unavailable",
                     "the audit record could not be written: nothing was done");
    lst_http_add_header(r->resp, "Retry-After", "5");
}

/* reach: with how she is reached (the learned Threema IDs are data about her too) */
static bool load_employee(struct va_req *r, const char *eid, struct va_employee *e, bool *found,
                          bool reach)
{
    const char *ids[] = {eid};
    lst_err err = reach ? va_directory_get_reach(r->ctx, ids, 1, e, found)
                        : va_directory_get(r->ctx, ids, 1, e, found);
    if (err != LST_OK) {
        lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the projections could not be read");
        return false;
    }
    return true;
}

/* What is stored about an ID beside the directory and the history: whether it is on the erased
 * list, and whether any message skipped it or any audit entry names it (*any, also when
 * erased). An erased employee's access log is kept (the controller's record), and her right of
 * access covers it too. */
static lst_err id_traces(struct view_api *ctx, const char *eid, bool *erased, bool *any)
{
    struct lst_redis_pipe *p = NULL;
    struct lst_buf k[3];
    for (size_t i = 0; i < 3; i++)
        lst_buf_init(&k[i]);
    lst_err err = lst_redis_pipe_create(&p);
    if (err == LST_OK)
        err = va_lkey(ctx, &k[0], "erased");
    if (err == LST_OK)
        err = va_lkey(ctx, &k[1], "e:%s:skp", eid);
    if (err == LST_OK)
        err = va_lkey(ctx, &k[2], "aud:emp:%s", eid);
    const char *ism[] = {"SISMEMBER", k[0].data, eid}, *skp[] = {"ZCARD", k[1].data},
               *aud[] = {"ZCARD", k[2].data};
    if (err == LST_OK)
        err = lst_redis_pipe_add(p, 3, ism, NULL);
    if (err == LST_OK)
        err = lst_redis_pipe_add(p, 2, skp, NULL);
    if (err == LST_OK)
        err = lst_redis_pipe_add(p, 2, aud, NULL);
    if (err == LST_OK)
        err = lst_redis_pipe_exec(ctx->svc->redis, p);
    for (size_t i = 0; i < 3 && err == LST_OK; i++) {
        const redisReply *rep = lst_redis_pipe_reply(p, i);
        if (rep == NULL || rep->type != REDIS_REPLY_INTEGER)
            err = LST_ERR_REDIS;
        else if (i == 0)
            *erased = rep->integer == 1;
        else
            *any = *any || rep->integer > 0;
    }
    *any = *any || *erased;
    for (size_t i = 0; i < 3; i++)
        lst_buf_cleanup(&k[i]);
    lst_redis_pipe_destroy(p);
    return err;
}

static void export(struct va_req *r, const char *eid)
{
    struct va_employee e = {0};
    struct history h = {0};
    struct lst_strv refs = {0};
    struct lst_buf b;
    bool found = false, erased = false, traces = false;
    char aid[LST_MESSAGE_ID_LEN + 1];
    lst_buf_init(&b);
    if (!load_employee(r, eid, &e, &found, true))
        goto out;
    if (history_load(r->ctx, eid, &h) != LST_OK ||
        id_traces(r->ctx, eid, &erased, &traces) != LST_OK) {
        lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the projections could not be read");
        goto out;
    }
    if (!found && history_n(&h) == 0 && !traces) {
        lst_http_problem(r->resp, 404, "employee-not-found", "Employee Not Found",
                         "nothing is stored about this employee ID");
        goto out;
    }
    if (audit_sync(r, LST_AUDIT_EXPORT, eid, NULL, false, aid) != LST_OK) {
        kafka_down(r);
        goto out;
    }
    lst_buf_puts(&b, "{");
    va_json_kv(&b, false, "employee_id", eid);
    lst_buf_printf(&b, ",\"exported_at\":%lld", (long long)lst_wall_ms());
    va_json_kv(&b, true, "audit_event_id", aid);
    lst_buf_puts(&b, erased ? ",\"erased\":true" : ",\"erased\":false");
    lst_buf_puts(&b, ",\"employee\":");
    if (found)
        va_employee_json(&b, &e);
    else
        lst_buf_puts(&b, "null");
    export_messages(&b, &h, &refs);
    lst_buf_puts(&b, ",\"blobs\":[");
    for (size_t i = 0; i < refs.len; i++) {
        lst_buf_puts(&b, i > 0 ? "," : "");
        export_blob(r->ctx, &b, refs.items[i]);
    }
    lst_buf_puts(&b, "]");
    if (export_skipped(r->ctx, eid, &b) != LST_OK || export_access(r->ctx, eid, &b) != LST_OK) {
        lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the projections could not be read");
        goto out;
    }
    lst_buf_puts(&b, "}");
    lst_http_add_header(r->resp, "Content-Disposition",
                        "attachment; filename=\"employee-export.json\"");
    va_reply_json(r, 200, &b);
out:
    va_employee_cleanup(&e);
    history_cleanup(&h);
    lst_strv_cleanup(&refs);
    lst_buf_cleanup(&b);
}

/* ---- erasure ---- */

/* The blobs only this employee's items reference: those of their incoming messages and of
 * outgoing messages sent to them alone. */
static void own_blobs(const struct history *h, const char *eid, struct lst_strv *mine,
                      struct lst_strv *own_ids)
{
    for (size_t i = 0; i < history_n(h); i++) {
        const redisReply *m = history_item(h, i);
        const char *dir = hfield(m, "dir"), *n = hfield(m, "n"), *from = hfield(m, "eid");
        bool own =
            dir != NULL && ((strcmp(dir, "in") == 0 && from != NULL && strcmp(from, eid) == 0) ||
                            (strcmp(dir, "out") == 0 && n != NULL && strcmp(n, "1") == 0));
        if (own) {
            blob_refs(m, mine);
            lst_strv_push(own_ids, h->ids->element[i]->str);
        }
    }
}

/* Moves refs that another item (not in own_ids) references from mine to shared, reading the
 * items of the kinds that carry blobs. false when the scan hit its bound (*unchecked). */
static lst_err check_refs(struct view_api *ctx, const struct lst_strv *own_ids,
                          struct lst_strv *mine, struct lst_strv *shared, bool *unchecked)
{
    static const char *const kinds[] = {"image", "file"};
    struct lst_buf k;
    lst_err err = LST_OK;
    int64_t scanned = 0;
    lst_buf_init(&k);
    for (size_t ki = 0; ki < LST_ARRAY_LEN(kinds) && err == LST_OK && mine->len > 0; ki++) {
        for (int64_t start = 0; err == LST_OK;) {
            redisReply *ids = NULL;
            struct lst_redis_pipe *p = NULL;
            char s0[24], s1[24];
            snprintf(s0, sizeof(s0), "%lld", (long long)start);
            snprintf(s1, sizeof(s1), "%lld", (long long)(start + SCAN_CHUNK - 1));
            va_lkey(ctx, &k, "x:kind:%s", kinds[ki]);
            const char *argv[] = {"ZRANGE", k.data, s0, s1};
            err = lst_redis_cmd(ctx->svc->redis, &ids, 4, argv, NULL);
            if (err == LST_OK)
                err = lst_redis_pipe_create(&p);
            size_t n = err == LST_OK && ids->type == REDIS_REPLY_ARRAY ? ids->elements : 0;
            for (size_t i = 0; i < n && err == LST_OK; i++) {
                va_lkey(ctx, &k, "m:%s", ids->element[i]->str);
                const char *a[] = {"HMGET", k.data, "blob", "thumb", "tblob"};
                err = lst_redis_pipe_add(p, 5, a, NULL);
            }
            if (err == LST_OK && n > 0)
                err = lst_redis_pipe_exec(ctx->svc->redis, p);
            for (size_t i = 0; i < n && err == LST_OK; i++) {
                const redisReply *f = lst_redis_pipe_reply(p, i);
                if (lst_strv_has(own_ids, ids->element[i]->str) || f == NULL ||
                    f->type != REDIS_REPLY_ARRAY)
                    continue;
                for (size_t j = 0; j < f->elements; j++) {
                    const char *ref =
                        f->element[j]->type == REDIS_REPLY_STRING ? f->element[j]->str : NULL;
                    for (size_t x = 0; ref != NULL && x < mine->len; x++) {
                        if (strcmp(mine->items[x], ref) != 0)
                            continue;
                        lst_strv_push(shared, ref);
                        free(mine->items[x]);
                        mine->items[x] = mine->items[--mine->len];
                        break;
                    }
                }
            }
            if (ids != NULL)
                freeReplyObject(ids);
            lst_redis_pipe_destroy(p);
            scanned += (int64_t)n;
            start += (int64_t)n;
            if (n < SCAN_CHUNK)
                break;
            if (scanned >= REF_SCAN_MAX) {
                *unchecked = true;
                break;
            }
        }
    }
    lst_buf_cleanup(&k);
    return err;
}

/* Deletes the bytes and the metadata of a blob; true when nothing of it is left. */
static bool blob_delete(struct view_api *ctx, const char *ref)
{
    char path[4200], meta[4300];
    if (ctx->blobs == NULL || lst_blobstore_path(ctx->blobs, ref, path, sizeof(path)) != LST_OK)
        return false;
    snprintf(meta, sizeof(meta), "%s.json", path);
    bool ok = (unlink(path) == 0 || access(path, F_OK) != 0);
    ok = (unlink(meta) == 0 || access(meta, F_OK) != 0) && ok;
    return ok;
}

static void erase_reply(struct va_req *r, const char *eid, const char *aid,
                        const struct lst_strv *deleted, const struct lst_strv *failed,
                        const struct lst_strv *shared, bool unchecked)
{
    struct lst_buf b;
    lst_buf_init(&b);
    lst_buf_puts(&b, "{");
    va_json_kv(&b, false, "employee_id", eid);
    lst_buf_printf(&b, ",\"erased_at\":%lld,\"tombstone\":true", (long long)lst_wall_ms());
    va_json_kv(&b, true, "audit_event_id", aid);
    lst_buf_puts(&b, ",\"blobs_deleted\":");
    va_json_strv_out(&b, deleted);
    lst_buf_puts(&b, ",\"blobs_not_deleted\":");
    va_json_strv_out(&b, failed);
    lst_buf_puts(&b, ",\"blobs_shared\":");
    va_json_strv_out(&b, shared);
    lst_buf_puts(&b, unchecked ? ",\"blobs_unchecked\":true" : ",\"blobs_unchecked\":false");
    lst_buf_puts(&b, "}");
    va_reply_json(r, 202, &b);
    lst_buf_cleanup(&b);
}

static void erase(struct va_req *r, const char *eid)
{
    struct va_employee e = {0};
    struct history h = {0};
    struct lst_strv mine = {0}, own_ids = {0}, shared = {0}, deleted = {0}, failed = {0};
    struct lst_buf detail;
    bool found = false, unchecked = false;
    char aid[LST_MESSAGE_ID_LEN + 1];
    lst_buf_init(&detail);
    if (!load_employee(r, eid, &e, &found, false))
        goto out;
    bool erased = false, traces = false;
    lst_err err = history_load(r->ctx, eid, &h);
    if (err == LST_OK)
        err = id_traces(r->ctx, eid, &erased, &traces);
    if (err == LST_OK) {
        own_blobs(&h, eid, &mine, &own_ids);
        err = check_refs(r->ctx, &own_ids, &mine, &shared, &unchecked);
    }
    if (err != LST_OK) {
        lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the projections could not be read");
        goto out;
    }
    /* a message that skipped the ID (e:<eid>:skp) is data about it the erasure removes */
    if (!found && history_n(&h) == 0 && (erased || !traces)) {
        lst_http_problem(r->resp, 404, "employee-not-found", "Employee Not Found",
                         erased ? "this employee was erased already"
                                : "nothing is stored about this employee ID");
        goto out;
    }
    if (unchecked) { /* keep what could not be checked */
        for (size_t i = 0; i < mine.len; i++)
            lst_strv_push(&shared, mine.items[i]);
        lst_strv_cleanup(&mine);
    }
    lst_buf_printf(&detail, "tombstone; blobs=%zu", mine.len);
    if (audit_sync(r, LST_AUDIT_ERASE, eid, detail.data, true, aid) != LST_OK) {
        kafka_down(r);
        goto out;
    }
    for (size_t i = 0; i < mine.len; i++)
        lst_strv_push(blob_delete(r->ctx, mine.items[i]) ? &deleted : &failed, mine.items[i]);
    LST_INFO("view_api.erased", "employee erased (tombstone produced, %zu blobs deleted)",
             deleted.len);
    erase_reply(r, eid, aid, &deleted, &failed, &shared, unchecked);
out:
    va_employee_cleanup(&e);
    history_cleanup(&h);
    lst_strv_cleanup(&mine);
    lst_strv_cleanup(&own_ids);
    lst_strv_cleanup(&shared);
    lst_strv_cleanup(&deleted);
    lst_strv_cleanup(&failed);
    lst_buf_cleanup(&detail);
}

/* /api/admin/employees/{id}/export (GET) and /api/admin/employees/{id} (DELETE). */
void va_handle_admin_employee(void *ud, const struct lst_http_request *req,
                              struct lst_http_response *resp)
{
    struct va_req r;
    char id[LST_EMPLOYEE_ID_MAX + 2];
    const char *rest = req->path + strlen("/api/admin/employees/");
    size_t len = strcspn(rest, "/");
    bool is_export = strcmp(rest + len, "/export") == 0;
    if (!va_begin(ud, req, resp, VA_ROLE_ADMIN, &r))
        return;
    if ((rest[len] != '\0' && !is_export) || (strcmp(req->method, "GET") == 0) != is_export) {
        lst_http_problem(resp, 404, "not-found", "Not Found", "no such route");
        return;
    }
    snprintf(id, sizeof(id), "%.*s", (int)(len < sizeof(id) - 1 ? len : sizeof(id) - 1), rest);
    if (len >= sizeof(id) - 1 || !va_employee_id_ok(id)) {
        lst_http_problem(resp, 400, "invalid-employee-id", "Invalid Employee ID",
                         "an employee ID is 1 to 64 of [A-Za-z0-9._-], starting alphanumeric");
        return;
    }
    if (is_export)
        export(&r, id);
    else
        erase(&r, id);
}
