/* How an employee is reached over Threema: the "threema" object of /api/employees answers.
 *
 * gateway-out sends to the ERP's Threema ID when the directory has one, otherwise it looks
 * the ID up by phone, then e-mail (every send; cached), and the view-api skips an employee
 * with none of the three ("no_contact", audience.c). What the ledger learned (docs/ledger.md):
 *   <P>emp:ltid:<eid>   set of the IDs gateway-out's lookups found for her (sent.lua)
 *   <P>emp:tid:<tid>    the employee the ID belongs to; the ERP's mapping wins over a learned
 *                       one and an erasure closes it ("-"), so a learned ID counts only while
 *                       it still maps to her: the ID of someone else, erased or not, is never
 *                       shown under her name
 *   <P>x:emp:<eid>      her history, newest last: the newest outgoing item is her newest send
 *   <P>r:<mid>          per-recipient state JSON (st, fc failure code, fr reason, f time)
 * Read for the employees a page shows, after the directory's round chose them: a list page
 * loads a batch of up to 200 entries to filter, and reading this for all of them doubled the
 * page's CPU (docs/view-api.md, Employees). Round two needs the learned IDs and message IDs of
 * round one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view_api.h"

void va_reach_cleanup(struct va_reach *r)
{
    lst_strv_cleanup(&r->learned);
    free(r->fail_mid);
    free(r->fail_code);
    free(r->fail_reason);
    memset(r, 0, sizeof(*r));
}

/* Round one: SMISMEMBER erased <ids...>, then per employee SMEMBERS and ZREVRANGE. */
static lst_err queue_round_one(struct view_api *ctx, struct lst_redis_pipe *p,
                               const char *const *ids, size_t n)
{
    struct lst_buf key;
    char last[24];
    const char **argv = malloc((n + 2) * sizeof(*argv));
    lst_err err = argv == NULL ? LST_ERR_NOMEM : LST_OK;
    lst_buf_init(&key);
    snprintf(last, sizeof(last), "%d", VA_REACH_HISTORY - 1);
    if (err == LST_OK)
        err = va_lkey(ctx, &key, "erased");
    if (err == LST_OK) {
        argv[0] = "SMISMEMBER";
        argv[1] = key.data;
        for (size_t i = 0; i < n; i++)
            argv[i + 2] = ids[i];
        err = lst_redis_pipe_add(p, (int)(n + 2), argv, NULL);
    }
    for (size_t i = 0; i < n && err == LST_OK; i++) {
        err = va_lkey(ctx, &key, "emp:ltid:%s", ids[i]);
        const char *members[] = {"SMEMBERS", key.data};
        if (err == LST_OK)
            err = lst_redis_pipe_add(p, 2, members, NULL);
        if (err == LST_OK)
            err = va_lkey(ctx, &key, "x:emp:%s", ids[i]);
        const char *newest[] = {"ZREVRANGE", key.data, "0", last};
        if (err == LST_OK)
            err = lst_redis_pipe_add(p, 4, newest, NULL);
    }
    free(argv);
    lst_buf_cleanup(&key);
    return err;
}

/* One employee's round-one findings: what round two confirms or reads. */
struct pending {
    struct lst_strv tids; /* learned IDs to confirm, in ID order */
    const char *mid;      /* her newest send (borrowed from round one's reply), or NULL */
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool erased(const redisReply *r, size_t i)
{
    return r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements &&
           r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer == 1;
}

/* Outgoing items are message IDs (ULIDs); incoming event IDs contain ':'. */
static const char *newest_send(const redisReply *r)
{
    for (size_t j = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && j < r->elements; j++) {
        const redisReply *m = r->element[j];
        if (m->type == REDIS_REPLY_STRING && strchr(m->str, ':') == NULL &&
            strlen(m->str) == LST_MESSAGE_ID_LEN)
            return m->str;
    }
    return NULL;
}

static lst_err take_round_one(const redisReply *ltid, const redisReply *hist, struct pending *pd)
{
    for (size_t j = 0; ltid != NULL && ltid->type == REDIS_REPLY_ARRAY && j < ltid->elements; j++) {
        if (ltid->element[j]->type == REDIS_REPLY_STRING &&
            lst_strv_push(&pd->tids, ltid->element[j]->str) != LST_OK)
            return LST_ERR_NOMEM;
    }
    if (pd->tids.len > 1)
        qsort(pd->tids.items, pd->tids.len, sizeof(*pd->tids.items), cmp_str);
    pd->mid = newest_send(hist);
    return LST_OK;
}

static lst_err queue_round_two(struct view_api *ctx, struct lst_redis_pipe *p, const char *eid,
                               const struct pending *pd, struct lst_buf *key)
{
    lst_err err = LST_OK;
    for (size_t j = 0; j < pd->tids.len && err == LST_OK; j++) {
        err = va_lkey(ctx, key, "emp:tid:%s", pd->tids.items[j]);
        const char *get[] = {"GET", key->data};
        if (err == LST_OK)
            err = lst_redis_pipe_add(p, 2, get, NULL);
    }
    if (pd->mid != NULL && err == LST_OK) {
        err = va_lkey(ctx, key, "r:%s", pd->mid);
        const char *hget[] = {"HGET", key->data, eid};
        if (err == LST_OK)
            err = lst_redis_pipe_add(p, 3, hget, NULL);
    }
    return err;
}

static char *json_dup(struct json_object *o, const char *k)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return lst_strdup(json_object_get_string(v));
}

/* Her newest send's state: only a (final) failure is kept. */
static lst_err take_state(const redisReply *r, const char *mid, struct va_reach *out)
{
    struct json_object *o, *v;
    lst_err err = LST_OK;
    if (r == NULL || r->type != REDIS_REPLY_STRING)
        return LST_OK;
    o = json_tokener_parse(r->str);
    if (o != NULL && json_object_object_get_ex(o, "st", &v) &&
        json_object_is_type(v, json_type_string) &&
        strcmp(json_object_get_string(v), "failed") == 0) {
        out->fail_mid = lst_strdup(mid);
        out->fail_code = json_dup(o, "fc");
        if (out->fail_code == NULL)
            out->fail_code = lst_strdup("unknown");
        out->fail_reason = json_dup(o, "fr");
        if (json_object_object_get_ex(o, "f", &v) && json_object_is_type(v, json_type_int))
            out->fail_at = json_object_get_int64(v);
        if (out->fail_mid == NULL || out->fail_code == NULL)
            err = LST_ERR_NOMEM;
    }
    json_object_put(o);
    return err;
}

/* Reads round two's replies for employee eid from *at on. */
static lst_err take_round_two(const struct lst_redis_pipe *p, size_t *at, const char *eid,
                              const struct pending *pd, struct va_reach *out)
{
    lst_err err = LST_OK;
    for (size_t j = 0; j < pd->tids.len && err == LST_OK; j++) {
        const redisReply *r = lst_redis_pipe_reply(p, (*at)++);
        if (r != NULL && r->type == REDIS_REPLY_STRING && strcmp(r->str, eid) == 0)
            err = lst_strv_push(&out->learned, pd->tids.items[j]);
    }
    if (pd->mid != NULL && err == LST_OK)
        err = take_state(lst_redis_pipe_reply(p, (*at)++), pd->mid, out);
    return err;
}

/* Round two for the n employees of ids (e[i] is ids[i]'s); pd from round one. */
static lst_err round_two(struct view_api *ctx, const char *const *ids, size_t n,
                         const struct pending *pd, struct va_employee **e)
{
    struct lst_redis_pipe *p = NULL;
    struct lst_buf key;
    size_t at = 0;
    lst_err err = lst_redis_pipe_create(&p);
    lst_buf_init(&key);
    for (size_t i = 0; i < n && err == LST_OK; i++)
        err = queue_round_two(ctx, p, ids[i], &pd[i], &key);
    if (err == LST_OK && lst_redis_pipe_len(p) > 0) {
        err = lst_redis_pipe_exec(ctx->svc->redis, p);
        for (size_t i = 0; i < n && err == LST_OK; i++)
            err = take_round_two(p, &at, ids[i], &pd[i], &e[i]->reach);
    }
    lst_redis_pipe_destroy(p);
    lst_buf_cleanup(&key);
    return err;
}

/* Both rounds for the n employees e[] (their IDs in ids[]); erased ones are marked gone[]. */
static lst_err read_found(struct view_api *ctx, const char *const *ids, struct va_employee **e,
                          bool *gone, size_t n)
{
    struct lst_redis_pipe *p = NULL;
    struct pending *pd = calloc(n, sizeof(*pd));
    lst_err err = pd == NULL ? LST_ERR_NOMEM : lst_redis_pipe_create(&p);
    if (err == LST_OK)
        err = queue_round_one(ctx, p, ids, n);
    if (err == LST_OK)
        err = lst_redis_pipe_exec(ctx->svc->redis, p);
    for (size_t i = 0; i < n && err == LST_OK; i++) {
        /* the erasure deletes emp:<eid> in the same script; the list is checked as well */
        gone[i] = erased(lst_redis_pipe_reply(p, 0), i);
        if (!gone[i])
            err = take_round_one(lst_redis_pipe_reply(p, 1 + 2 * i),
                                 lst_redis_pipe_reply(p, 2 + 2 * i), &pd[i]);
    }
    if (err == LST_OK)
        err = round_two(ctx, ids, n, pd, e); /* an erased one has nothing pending */
    for (size_t i = 0; pd != NULL && i < n; i++)
        lst_strv_cleanup(&pd[i].tids);
    free(pd);
    lst_redis_pipe_destroy(p);
    return err;
}

lst_err va_reach_read(struct view_api *ctx, struct va_employee *e, bool *found, size_t n)
{
    const char **ids = calloc(n ? n : 1, sizeof(*ids));
    struct va_employee **sel = calloc(n ? n : 1, sizeof(*sel));
    bool *gone = calloc(n ? n : 1, sizeof(*gone));
    size_t m = 0;
    lst_err err = ids == NULL || sel == NULL || gone == NULL ? LST_ERR_NOMEM : LST_OK;
    for (size_t i = 0; i < n && err == LST_OK; i++) {
        if (found[i]) {
            ids[m] = e[i].id;
            sel[m++] = &e[i];
        }
    }
    if (err == LST_OK && m > 0)
        err = read_found(ctx, ids, sel, gone, m);
    for (size_t i = 0, j = 0; i < n && err == LST_OK; i++) {
        if (found[i] && gone[j++]) {
            va_employee_cleanup(&e[i]);
            found[i] = false;
        }
    }
    free(ids);
    free(sel);
    free(gone);
    return err;
}

/* "id": sends go to the ERP's ID; "lookup": gateway-out looks it up by phone, then e-mail;
 * "none": sends skip her (no_contact). */
static const char *reachable(const struct va_employee *e)
{
    if (e->threema_id != NULL)
        return "id";
    if (e->phone != NULL || e->email != NULL)
        return "lookup";
    return "none";
}

static void failure_json(struct lst_buf *b, const struct va_reach *r)
{
    lst_buf_puts(b, ",\"last_failure\":{");
    va_json_kv(b, false, "message_id", r->fail_mid);
    va_json_kv(b, true, "failure_code", r->fail_code);
    va_json_kv(b, true, "failure_reason", r->fail_reason);
    if (r->fail_at > 0)
        lst_buf_printf(b, ",\"failed_at\":%lld", (long long)r->fail_at);
    lst_buf_puts(b, "}");
}

void va_reach_json(struct lst_buf *b, const struct va_employee *e)
{
    const struct va_reach *r = &e->reach;
    const char *how = reachable(e);
    /* with several learned IDs the next lookup decides: none of them is "the" ID */
    const char *learned =
        strcmp(how, "lookup") == 0 && r->learned.len == 1 ? r->learned.items[0] : NULL;
    lst_buf_puts(b, ",\"threema\":{");
    va_json_kv(b, false, "reachable", how);
    va_json_kv(b, true, "threema_id", e->threema_id != NULL ? e->threema_id : learned);
    lst_buf_puts(b, learned != NULL ? ",\"learned\":true" : ",\"learned\":false");
    lst_buf_puts(b, ",\"learned_ids\":");
    va_json_strv_out(b, &r->learned);
    if (r->fail_mid != NULL)
        failure_json(b, r);
    lst_buf_puts(b, "}");
}
