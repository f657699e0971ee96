/* Reading the employee directory the ledger projects from lst.employees (docs/ledger.md):
 *   <P>emp:<id>        hash: id, name, dep, veh, tid, phone, email, active (1|0), source,
 *                      updated_at, tags (JSON array of strings)
 *   <P>emps            sorted set of every employee ID (score 0: ordered by ID)
 *   <P>emp:dep:<d>, <P>emp:veh:<v>, <P>emp:tag:<t>, <P>emp:active   sets of IDs */
#include <stdlib.h>
#include <string.h>

#include "view_api.h"

lst_err va_directory_queue_named(struct view_api *ctx, struct va_rconn *rc, const char *const *ids,
                                 size_t n, const char *const *fields, size_t nfields)
{
    struct lst_buf k;
    lst_err err;
    size_t argc = (n > nfields ? n : nfields) + 2;
    const char **argv = malloc(argc * sizeof(*argv));
    if (argv == NULL)
        return LST_ERR_NOMEM;
    lst_buf_init(&k);
    err = va_lkey(ctx, &k, "erased");
    argv[0] = "SMISMEMBER";
    argv[1] = k.data;
    memcpy(argv + 2, ids, n * sizeof(*ids));
    if (err == LST_OK)
        err = va_rconn_add(rc, (int)(n + 2), argv);
    for (size_t i = 0; i < n && err == LST_OK; i++) {
        err = va_lkey(ctx, &k, "emp:%s", ids[i]);
        argv[0] = "HMGET";
        argv[1] = k.data;
        memcpy(argv + 2, fields, nfields * sizeof(*fields));
        if (err == LST_OK)
            err = va_rconn_add(rc, (int)(nfields + 2), argv);
    }
    free(argv);
    lst_buf_cleanup(&k);
    return err;
}

const redisReply *va_directory_named(const struct va_rconn *rc, size_t first, size_t k)
{
    const redisReply *gone = va_rconn_reply(rc, first);
    bool named = gone != NULL && gone->type == REDIS_REPLY_ARRAY && k < gone->elements &&
                 gone->element[k]->type == REDIS_REPLY_INTEGER && gone->element[k]->integer == 0;
    const redisReply *e = named ? va_rconn_reply(rc, first + 1 + k) : NULL;
    return e != NULL && e->type == REDIS_REPLY_ARRAY ? e : NULL;
}

static const char *const FIELDS[] = {"id",    "name",   "dep",        "veh",    "tid", "phone",
                                     "email", "active", "updated_at", "source", "tags"};
#define NFIELDS LST_ARRAY_LEN(FIELDS)

void va_employee_cleanup(struct va_employee *e)
{
    free(e->id);
    free(e->name);
    free(e->department);
    free(e->vehicle);
    lst_strv_cleanup(&e->tags);
    free(e->threema_id);
    free(e->phone);
    free(e->email);
    free(e->source);
    va_reach_cleanup(&e->reach);
    memset(e, 0, sizeof(*e));
}

static char *dup_reply(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0)
        return NULL;
    return lst_strdup(r->str);
}

static void parse_tags(const redisReply *r, struct lst_strv *out)
{
    struct json_object *arr;
    if (r == NULL || r->type != REDIS_REPLY_STRING)
        return;
    arr = json_tokener_parse(r->str);
    if (arr != NULL && json_object_is_type(arr, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            struct json_object *v = json_object_array_get_idx(arr, i);
            if (json_object_is_type(v, json_type_string))
                lst_strv_push(out, json_object_get_string(v));
        }
    }
    json_object_put(arr);
}

static bool fill(const redisReply *r, struct va_employee *e)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != NFIELDS ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return false;
    e->id = dup_reply(r->element[0]);
    e->name = dup_reply(r->element[1]);
    e->department = dup_reply(r->element[2]);
    e->vehicle = dup_reply(r->element[3]);
    e->threema_id = dup_reply(r->element[4]);
    e->phone = dup_reply(r->element[5]);
    e->email = dup_reply(r->element[6]);
    e->active = r->element[7]->type == REDIS_REPLY_STRING && strcmp(r->element[7]->str, "1") == 0;
    if (r->element[8]->type == REDIS_REPLY_STRING)
        lst_parse_i64(r->element[8]->str, 0, LST_TIME_MS_MAX, &e->updated_at);
    e->source = dup_reply(r->element[9]);
    parse_tags(r->element[10], &e->tags);
    return e->id != NULL;
}

lst_err va_directory_get(struct view_api *ctx, const char *const *ids, size_t n,
                         struct va_employee *out, bool *found)
{
    lst_err result = LST_OK;
    struct lst_redis_pipe *p = NULL;
    struct lst_buf key;
    const char *argv[2 + NFIELDS];
    lst_buf_init(&key);
    if (n == 0)
        goto out;
    result = lst_redis_pipe_create(&p);
    if (result != LST_OK)
        goto out;
    argv[0] = "HMGET";
    for (size_t f = 0; f < NFIELDS; f++)
        argv[2 + f] = FIELDS[f];
    for (size_t i = 0; i < n && result == LST_OK; i++) {
        va_lkey(ctx, &key, "emp:%s", ids[i]);
        argv[1] = key.data;
        result = lst_redis_pipe_add(p, (int)LST_ARRAY_LEN(argv), argv, NULL);
    }
    if (result == LST_OK)
        result = lst_redis_pipe_exec(ctx->svc->redis, p);
    for (size_t i = 0; i < n && result == LST_OK; i++)
        found[i] = fill(lst_redis_pipe_reply(p, i), &out[i]);
out:
    lst_redis_pipe_destroy(p);
    lst_buf_cleanup(&key);
    return result;
}

lst_err va_directory_get_reach(struct view_api *ctx, const char *const *ids, size_t n,
                               struct va_employee *out, bool *found)
{
    lst_err err = va_directory_get(ctx, ids, n, out, found);
    return err == LST_OK ? va_reach_read(ctx, out, found, n) : err;
}

lst_err va_directory_erased(struct view_api *ctx, const char *const *ids, size_t n, bool *erased)
{
    struct lst_buf key;
    redisReply *r = NULL;
    if (n == 0)
        return LST_OK;
    lst_err err = LST_OK;
    const char **argv = malloc((n + 2) * sizeof(*argv));
    if (argv == NULL)
        return LST_ERR_NOMEM;
    lst_buf_init(&key);
    err = va_lkey(ctx, &key, "erased");
    argv[0] = "SMISMEMBER";
    argv[1] = key.data;
    memcpy(argv + 2, ids, n * sizeof(*ids));
    if (err == LST_OK)
        err = lst_redis_cmd(ctx->svc->redis, &r, (int)(n + 2), argv, NULL);
    if (err == LST_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != n))
        err = LST_ERR_REDIS;
    for (size_t i = 0; i < n && err == LST_OK; i++)
        erased[i] = r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer == 1;
    if (r != NULL)
        freeReplyObject(r);
    free(argv);
    lst_buf_cleanup(&key);
    return err;
}

static lst_err strv_from_reply(const redisReply *r, struct lst_strv *out)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return LST_ERR_REDIS;
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            lst_strv_push(out, r->element[i]->str) != LST_OK)
            return LST_ERR_NOMEM;
    }
    return LST_OK;
}

lst_err va_directory_ids(struct view_api *ctx, const char *after, size_t limit,
                         struct lst_strv *out)
{
    struct lst_buf key, min;
    redisReply *r = NULL;
    char count[24];
    lst_err result;
    lst_buf_init(&key);
    lst_buf_init(&min);
    va_lkey(ctx, &key, "emps");
    if (after != NULL) {
        lst_buf_puts(&min, "(");
        lst_buf_puts(&min, after);
    } else {
        lst_buf_puts(&min, "-");
    }
    snprintf(count, sizeof(count), "%zu", limit);
    const char *argv[] = {"ZRANGEBYLEX", key.data, min.data, "+", "LIMIT", "0", count};
    result = lst_buf_failed(&key) || lst_buf_failed(&min)
                 ? LST_ERR_NOMEM
                 : lst_redis_cmd(ctx->svc->redis, &r, (int)LST_ARRAY_LEN(argv), argv, NULL);
    if (result == LST_OK)
        result = strv_from_reply(r, out);
    if (r != NULL)
        freeReplyObject(r);
    lst_buf_cleanup(&key);
    lst_buf_cleanup(&min);
    return result;
}

lst_err va_directory_set(struct view_api *ctx, const char *set, const char *name,
                         struct lst_strv *out)
{
    struct lst_buf key;
    redisReply *r = NULL;
    lst_err result;
    lst_buf_init(&key);
    result = name != NULL ? va_lkey(ctx, &key, "%s%s", set, name) : va_lkey(ctx, &key, "%s", set);
    if (result == LST_OK) {
        const char *argv[] = {"SMEMBERS", key.data};
        result = lst_redis_cmd(ctx->svc->redis, &r, 2, argv, NULL);
    }
    if (result == LST_OK)
        result = strv_from_reply(r, out);
    if (r != NULL)
        freeReplyObject(r);
    lst_buf_cleanup(&key);
    return result;
}

void va_employee_json(struct lst_buf *b, const struct va_employee *e)
{
    lst_buf_puts(b, "{");
    va_json_kv(b, false, "employee_id", e->id);
    va_json_kv(b, true, "name", e->name);
    va_json_kv(b, true, "department", e->department);
    va_json_kv(b, true, "vehicle", e->vehicle);
    lst_buf_puts(b, ",\"tags\":");
    va_json_strv_out(b, &e->tags);
    lst_buf_puts(b, e->active ? ",\"active\":true" : ",\"active\":false");
    va_json_kv(b, true, "threema_id", e->threema_id);
    va_json_kv(b, true, "phone", e->phone);
    va_json_kv(b, true, "email", e->email);
    lst_buf_printf(b, ",\"updated_at\":%lld", (long long)e->updated_at);
    va_json_kv(b, true, "source", e->source);
    va_reach_json(b, e);
    lst_buf_puts(b, "}");
}
