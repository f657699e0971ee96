/* The current names of the employees that items are about (employee_name on timeline,
 * history and live-stream items: the sender of an incoming item, the one recipient of an
 * outgoing item that carries employee_id).
 *
 * Why not in the row cache: rows are cached by (item ID, version), and a rename in the
 * directory (emp:<eid>) does not bump the versions of that employee's items, nor does an
 * erasure of a sender whose item is still cached mid-flight. So the name is never part of a
 * cached row: a page collects the distinct employee IDs of the rows it shows and reads their
 * names in one pipelined round (va_directory_queue_named: one SMISMEMBER erased + one HMGET
 * emp:<eid> name per distinct ID, as the message detail reads its recipients), then splices
 * them into the rows. An erased employee is never named. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "view_api.h"

void va_names_init(struct va_names *n)
{
    memset(n, 0, sizeof(*n));
    lst_buf_init(&n->ids);
    lst_buf_init(&n->text);
}

void va_names_reset(struct va_names *n)
{
    n->n = 0;
    lst_buf_reset(&n->ids);
    lst_buf_reset(&n->text);
}

void va_names_cleanup(struct va_names *n)
{
    free(n->id_at);
    free(n->name_at);
    lst_buf_cleanup(&n->ids);
    lst_buf_cleanup(&n->text);
    memset(n, 0, sizeof(*n));
}

static const char *id_of(const struct va_names *n, size_t i)
{
    return n->ids.data + n->id_at[i];
}

static bool grow(struct va_names *n)
{
    size_t cap = n->cap ? n->cap * 2 : 64;
    size_t *ids = realloc(n->id_at, cap * sizeof(*ids));
    if (ids == NULL)
        return false;
    n->id_at = ids;
    size_t *names = realloc(n->name_at, cap * sizeof(*names));
    if (names == NULL)
        return false;
    n->name_at = names;
    n->cap = cap;
    return true;
}

size_t va_names_add(struct va_names *n, const char *eid)
{
    /* linear: a page holds at most LST_VIEW_PAGE_MAX rows, usually a few distinct senders */
    for (size_t i = 0; i < n->n; i++) {
        if (strcmp(id_of(n, i), eid) == 0)
            return i;
    }
    if (n->n == n->cap && !grow(n))
        return SIZE_MAX;
    size_t at = n->ids.len;
    if (lst_buf_append(&n->ids, eid, strlen(eid) + 1) != LST_OK)
        return SIZE_MAX;
    n->id_at[n->n] = at;
    n->name_at[n->n] = SIZE_MAX;
    return n->n++;
}

const char *va_names_get(const struct va_names *n, size_t i)
{
    if (i >= n->n || n->name_at[i] == SIZE_MAX)
        return NULL;
    return n->text.data + n->name_at[i];
}

void va_names_json(struct lst_buf *b, const struct va_names *n, size_t i)
{
    const char *name = va_names_get(n, i);
    if (name == NULL)
        return;
    lst_buf_puts(b, ",\"employee_name\":");
    lst_buf_json_str(b, name, strlen(name));
}

lst_err va_names_read(struct view_api *ctx, struct va_rconn *rc, struct va_names *n)
{
    static const char *const fields[] = {"name"};
    size_t first = 0;
    if (n->n == 0)
        return LST_OK;
    lst_buf_reset(&n->text);
    const char **ids = malloc(n->n * sizeof(*ids));
    if (ids == NULL)
        return LST_ERR_NOMEM;
    for (size_t i = 0; i < n->n; i++)
        ids[i] = id_of(n, i);
    lst_err err = va_directory_queue_named(ctx, rc, ids, n->n, fields, 1);
    free(ids);
    if (err == LST_OK)
        err = va_rconn_exec(rc, &first);
    if (err != LST_OK)
        return err;
    for (size_t i = 0; i < n->n; i++) {
        const redisReply *e = va_directory_named(rc, first, i);
        const redisReply *v = e != NULL && e->elements == 1 ? e->element[0] : NULL;
        n->name_at[i] = SIZE_MAX;
        if (v == NULL || v->type != REDIS_REPLY_STRING || v->len == 0)
            continue; /* erased, unknown, or no name */
        n->name_at[i] = n->text.len;
        lst_buf_append(&n->text, v->str, v->len);
        lst_buf_append(&n->text, "", 1);
    }
    return lst_buf_failed(&n->text) ? LST_ERR_NOMEM : LST_OK;
}

lst_err va_names_load(struct view_api *ctx, struct va_names *n)
{
    lst_err err = LST_ERR_REDIS;
    if (n->n == 0)
        return LST_OK;
    /* a failed connection is dropped by rconn: one more attempt on a fresh one (reads only) */
    for (int attempt = 0; attempt < 2 && err == LST_ERR_REDIS; attempt++) {
        struct va_rconn *rc = va_read_conn(ctx);
        err = va_rconn_begin(rc);
        if (err != LST_OK)
            continue;
        err = va_names_read(ctx, rc, n);
        va_rconn_end(rc);
    }
    return err;
}
