/* GET /api/messages/{id}: one item with everything the ledger knows: content, audience (the
 * selector and the resolved recipients), per-recipient state with the time of every step and
 * the recipient's current name, department and vehicle from the directory, the aggregates,
 * the employees the send skipped (with why and their current name), and the replies linked
 * to it. */
#include <stdlib.h>
#include <string.h>

#include "view_api.h"

static bool id_ok(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == ':' || c == '*'))
            return false;
    }
    return true;
}

static const char *hget(const redisReply *h, const char *field)
{
    for (size_t i = 0; h != NULL && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        if (strcmp(h->element[i]->str, field) == 0 && h->element[i + 1]->type == REDIS_REPLY_STRING)
            return h->element[i + 1]->str;
    }
    return NULL;
}

/* Appends a stored JSON value as is when it parses, else null. */
static void raw_json(struct lst_buf *b, const char *s)
{
    struct json_object *o = s != NULL ? json_tokener_parse(s) : NULL;
    if (o != NULL)
        lst_buf_puts(b, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    else
        lst_buf_puts(b, "null");
    json_object_put(o);
}

static lst_err queue(struct view_api *ctx, const char *id, struct va_rconn *p);

/* The message, its recipients, replies and the read-receipts-off set in one round trip on
 * a read connection (begun by the caller); *first: the index of the first reply. A failed
 * connection is dropped by rconn, so one more attempt runs on a fresh one (reads only). */
static lst_err load(struct view_api *ctx, const char *id, struct va_rconn **rc, size_t *first)
{
    lst_err err = LST_ERR_REDIS;
    for (int attempt = 0; attempt < 2 && err == LST_ERR_REDIS; attempt++) {
        *rc = va_read_conn(ctx);
        err = va_rconn_begin(*rc);
        if (err != LST_OK)
            continue;
        err = queue(ctx, id, *rc);
        if (err == LST_OK)
            err = va_rconn_exec(*rc, first);
        if (err != LST_OK)
            va_rconn_end(*rc);
    }
    if (err != LST_OK)
        *rc = NULL;
    return err;
}

static lst_err queue(struct view_api *ctx, const char *id, struct va_rconn *p)
{
    struct lst_buf k;
    lst_buf_init(&k);
    va_lkey(ctx, &k, "m:%s", id);
    const char *a[] = {"HGETALL", k.data};
    va_rconn_add(p, 2, a);
    va_lkey(ctx, &k, "r:%s", id);
    const char *b[] = {"HGETALL", k.data};
    va_rconn_add(p, 2, b);
    va_lkey(ctx, &k, "rep:%s", id);
    const char *c[] = {"ZRANGE", k.data, "0", "-1"};
    va_rconn_add(p, 4, c);
    va_lkey(ctx, &k, "rroff");
    const char *d[] = {"SMEMBERS", k.data};
    va_rconn_add(p, 2, d);
    lst_buf_cleanup(&k);
    return LST_OK;
}

static bool member(const redisReply *set, const char *s)
{
    for (size_t i = 0; set != NULL && set->type == REDIS_REPLY_ARRAY && i < set->elements; i++) {
        if (strcmp(set->element[i]->str, s) == 0)
            return true;
    }
    return false;
}

/* One recipient: its field and state in r:<id>, k its position there (its directory entry
 * is the k-th HMGET of the second round). */
struct rec {
    const redisReply *id, *state;
    size_t k;
};

static int cmp_rec(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    return strcmp(x->id->str, y->id->str);
}

/* The recipients of r:<id> (an HGETALL reply) in reply order; NULL, 0 when none. */
static struct rec *records(const redisReply *r, size_t *n)
{
    struct rec *recs = NULL;
    *n = 0;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2)
        return NULL;
    recs = malloc(r->elements / 2 * sizeof(*recs));
    for (size_t i = 0; recs != NULL && i + 1 < r->elements; i += 2) {
        if (r->element[i]->type != REDIS_REPLY_STRING ||
            r->element[i + 1]->type != REDIS_REPLY_STRING)
            continue;
        recs[*n] = (struct rec){r->element[i], r->element[i + 1], *n};
        (*n)++;
    }
    return recs;
}

/* The skipped employees of m:<id> (skp: [[employee ID, reason], ...], written by the ledger's
 * message.lua); entries of another shape are left out. Borrowed from the parsed JSON. */
struct skipped {
    struct json_object *root;
    const char **ids, **reasons;
    size_t n;
};

static const char *pair_str(struct json_object *pair, size_t i)
{
    struct json_object *v = json_object_array_get_idx(pair, i);
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static lst_err skipped_parse(const char *raw, struct skipped *sk)
{
    memset(sk, 0, sizeof(*sk));
    sk->root = raw != NULL ? json_tokener_parse(raw) : NULL;
    if (!json_object_is_type(sk->root, json_type_array))
        return LST_OK;
    size_t len = json_object_array_length(sk->root);
    sk->ids = calloc(len + 1, sizeof(*sk->ids));
    sk->reasons = calloc(len + 1, sizeof(*sk->reasons));
    if (sk->ids == NULL || sk->reasons == NULL)
        return LST_ERR_NOMEM;
    for (size_t i = 0; i < len; i++) {
        struct json_object *pair = json_object_array_get_idx(sk->root, i);
        if (!json_object_is_type(pair, json_type_array) || json_object_array_length(pair) != 2 ||
            pair_str(pair, 0) == NULL || pair_str(pair, 1) == NULL)
            continue;
        sk->ids[sk->n] = pair_str(pair, 0);
        sk->reasons[sk->n++] = pair_str(pair, 1);
    }
    return LST_OK;
}

static void skipped_cleanup(struct skipped *sk)
{
    json_object_put(sk->root);
    free(sk->ids);
    free(sk->reasons);
}

/* The second round: whether each recipient and each skipped employee is erased (one
 * SMISMEMBER) and her directory entry (one HMGET each), pipelined: one more round trip for the
 * whole list, never one per employee. The IDs are the fields of r:<id> and the entries of
 * skp, known only after the first round; a script
 * doing both in the first round cost Redis more CPU and ran as one block, 5.8 ms for 2000
 * recipients (docs/view-api.md, message detail). An erased employee is never named: the
 * ledger deletes her emp: hash with her states in one script (docs/ledger.md, "Erasure"),
 * and the erased set is checked as well. *first: the SMISMEMBER's reply; the HMGETs follow
 * in the order of recs, then of sk. */
static lst_err queue_names(struct view_api *ctx, struct va_rconn *p, const struct rec *recs,
                           size_t n, const struct skipped *sk, size_t *first)
{
    static const char *const fields[] = {"name", "dep", "veh"};
    size_t total = n + sk->n;
    const char **ids = malloc((total > 0 ? total : 1) * sizeof(*ids));
    if (ids == NULL)
        return LST_ERR_NOMEM;
    for (size_t i = 0; i < total; i++)
        ids[i] = i < n ? recs[i].id->str : sk->ids[i - n];
    lst_err err = va_directory_queue_named(ctx, p, ids, total, fields, LST_ARRAY_LEN(fields));
    if (err == LST_OK)
        err = va_rconn_exec(p, first);
    free(ids);
    return err;
}

/* A nullable string member from the i-th field of an HMGET reply: null when the directory has
 * no value (unknown or erased employee: e NULL). */
static void json_opt(struct lst_buf *b, const char *key, const redisReply *e, size_t i)
{
    const redisReply *v =
        e != NULL && e->type == REDIS_REPLY_ARRAY && i < e->elements ? e->element[i] : NULL;
    lst_buf_printf(b, ",\"%s\":", key);
    if (v != NULL && v->type == REDIS_REPLY_STRING)
        lst_buf_json_str(b, v->str, v->len);
    else
        lst_buf_puts(b, "null");
}

/* The skipped in the ledger's order (the send's: by ID), named like the recipients; the
 * second round has them after the n recipients. */
static void skipped_json(struct lst_buf *b, struct va_rconn *p, const struct skipped *sk, size_t n,
                         size_t first)
{
    lst_buf_puts(b, ",\"skipped\":[");
    for (size_t j = 0; j < sk->n; j++) {
        lst_buf_puts(b, j > 0 ? ",{" : "{");
        va_json_kv(b, false, "employee_id", sk->ids[j]);
        va_json_kv(b, true, "reason", sk->reasons[j]);
        json_opt(b, "name", va_directory_named(p, first, n + j), 0);
        lst_buf_puts(b, "}");
    }
    lst_buf_puts(b, "]");
}

/* The recipients in employee ID order (hash order is Redis's, not stable), each named from
 * the second round (first: its SMISMEMBER reply). */
static void recipients(struct lst_buf *b, struct va_rconn *p, struct rec *recs, size_t n,
                       size_t first, enum va_readvis vis, const redisReply *rroff)
{
    size_t read_unknown = 0;
    if (n > 1)
        qsort(recs, n, sizeof(*recs), cmp_rec);
    lst_buf_puts(b, ",\"recipients\":[");
    for (size_t i = 0; i < n; i++) {
        const char *eid = recs[i].id->str, *state = recs[i].state->str;
        const redisReply *e =
            va_directory_named(p, first, recs[i].k); /* named only if not erased */
        bool off = member(rroff, eid);
        if (i > 0)
            lst_buf_puts(b, ",");
        lst_buf_puts(b, "{");
        va_json_kv(b, false, "employee_id", eid);
        json_opt(b, "name", e, 0);
        json_opt(b, "department", e, 1);
        json_opt(b, "vehicle", e, 2);
        lst_buf_puts(b, ",\"status\":");
        va_recipient_json_vis(b, state, off, vis);
        lst_buf_puts(b, "}");
        if (off && strstr(state, "\"st\":\"delivered\"") != NULL)
            read_unknown++;
    }
    lst_buf_puts(b, "]");
    /* how many have read receipts off is read information: an aggregate, gone under off */
    if (vis != VA_READ_OFF)
        lst_buf_printf(b, ",\"read_unknown\":%zu", read_unknown);
}

static void detail(struct va_req *r, const char *id)
{
    struct va_rconn *p = NULL;
    size_t first = 0, n = 0, names = 0;
    struct rec *recs = NULL;
    struct skipped sk = {0};
    struct lst_buf b;
    lst_buf_init(&b);
    if (load(r->ctx, id, &p, &first) != LST_OK) {
        lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the projections could not be read");
        goto out;
    }
    const redisReply *m = va_rconn_reply(p, first);
    if (m == NULL || m->type != REDIS_REPLY_ARRAY || m->elements == 0) {
        lst_http_problem(r->resp, 404, "message-not-found", "Message Not Found",
                         "no message with this ID (yet: the ledger may still be applying it)");
        goto out;
    }
    if (hget(m, "msg") != NULL) {
        recs = records(va_rconn_reply(p, first + 1), &n);
        lst_err err = skipped_parse(hget(m, "skp"), &sk);
        if (err == LST_OK && n + sk.n > 0)
            err = queue_names(r->ctx, p, recs, n, &sk, &names);
        if (err != LST_OK) {
            lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                             "the directory could not be read");
            goto out;
        }
    }
    va_item_json_vis(&b, m, &r->ctx->readvis);
    b.len--; /* reopen the item object */
    if (hget(m, "msg") != NULL) {
        lst_buf_puts(&b, ",\"audience\":{\"selector\":");
        raw_json(&b, hget(m, "sel"));
        lst_buf_puts(&b, ",\"employee_ids\":");
        raw_json(&b, hget(m, "sel_emps"));
        lst_buf_puts(&b, "}");
        va_json_kv(&b, true, "idempotency_key", hget(m, "idem"));
        recipients(&b, p, recs, n, names, va_readvis_of(&r->ctx->readvis, hget(m, "cat")),
                   va_rconn_reply(p, first + 3));
        skipped_json(&b, p, &sk, n, names);
    }
    const redisReply *rep = va_rconn_reply(p, first + 2);
    lst_buf_puts(&b, ",\"replies\":[");
    for (size_t i = 0; rep != NULL && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        if (i > 0)
            lst_buf_puts(&b, ",");
        lst_buf_json_str(&b, rep->element[i]->str, rep->element[i]->len);
    }
    lst_buf_puts(&b, "]}");
    va_reply_json(r, 200, &b);
out:
    if (p != NULL)
        va_rconn_end(p);
    free(recs);
    skipped_cleanup(&sk);
    lst_buf_cleanup(&b);
}

void va_handle_message(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct va_req r;
    const char *id = req->path + strlen("/api/messages/");
    if (!va_begin(ud, req, resp, VA_ROLE_DISPATCHER, &r))
        return;
    if (!id_ok(id)) {
        lst_http_problem(resp, 400, "invalid-message-id", "Invalid Message ID",
                         "a message ID is a ULID or an inbound event ID");
        return;
    }
    detail(&r, id);
}
