/* lst.message -> message.lua: the message hash, its indexes, every recipient
 * queued, the skipped employees. */
#include <string.h>

#include "ledger.h"

static void json_strv(struct lst_buf *b, const struct lst_strv *v)
{
    lst_buf_puts(b, "[");
    for (size_t i = 0; i < v->len; i++) {
        if (i > 0)
            lst_buf_puts(b, ",");
        lst_buf_json_str(b, v->items[i], strlen(v->items[i]));
    }
    lst_buf_puts(b, "]");
}

/* The selector without its employee IDs (those go to sel_emps, which erasure
 * can edit). */
static void selector_json(struct lst_buf *b, const struct lst_selector *s)
{
    lst_buf_reset(b);
    lst_buf_puts(b, "{\"departments\":");
    json_strv(b, &s->departments);
    lst_buf_puts(b, ",\"vehicles\":");
    json_strv(b, &s->vehicles);
    lst_buf_puts(b, ",\"tags\":");
    json_strv(b, &s->tags);
    if (s->has_active)
        lst_buf_puts(b, s->active ? ",\"active\":true" : ",\"active\":false");
    lst_buf_puts(b, "}");
}

static lst_err strv_args(struct ledger_args *a, const struct lst_strv *v)
{
    ledger_args_i64(a, (int64_t)v->len);
    for (size_t i = 0; i < v->len; i++)
        ledger_args_str(a, v->items[i]);
    return lst_buf_failed(&a->buf) ? LST_ERR_NOMEM : LST_OK;
}

/* The skipped as pairs (ID, reason): the script drops erased ones and builds skp. */
static lst_err skipped_args(struct ledger_args *a, const struct lst_objv *v)
{
    const struct lst_skip *items = v->items;
    ledger_args_i64(a, (int64_t)v->len);
    for (size_t i = 0; i < v->len; i++) {
        ledger_args_str(a, items[i].employee_id);
        ledger_args_str(a, lst_skip_reason_name(items[i].reason));
    }
    return lst_buf_failed(&a->buf) ? LST_ERR_NOMEM : LST_OK;
}

static lst_err message_args(struct ledger_core *c, const struct lst_message *m)
{
    struct ledger_args *a = &c->args;
    int64_t n = 0;
    size_t count_at;

    ledger_args_str(a, m->message_id);
    ledger_args_i64(a, m->created_at);
    count_at = a->n;
    ledger_args_i64(a, 0);
    ledger_args_kv(a, "cat", m->category, &n);
    ledger_args_kv(a, "disp", m->dispatcher, &n);
    ledger_args_kv(a, "disp_name", m->dispatcher_name, &n);
    ledger_args_kv(a, "dep", m->department, &n);
    ledger_args_kv(a, "idem", m->idempotency_key, &n);
    ledger_args_kv_i64(a, "created_at", m->created_at, &n);
    ledger_args_kv(a, "kind", lst_content_kind_name(m->content.kind), &n);
    ledger_content_kv(a, &m->content, &n);
    selector_json(&c->tmp, &m->audience.selector);
    ledger_args_kv(a, "sel", c->tmp.data, &n);
    lst_buf_reset(&c->tmp);
    json_strv(&c->tmp, &m->audience.selector.employee_ids);
    ledger_args_kv(a, "sel_emps", c->tmp.data, &n);
    ledger_args_kv_i64(a, "audience", (int64_t)m->audience.recipients.len, &n);
    ledger_args_set_i64(a, count_at, n);
    strv_args(a, &m->audience.selector.departments);
    strv_args(a, &m->audience.selector.vehicles);
    strv_args(a, &m->audience.selector.tags);
    skipped_args(a, &m->audience.skipped);
    for (size_t i = 0; i < m->audience.recipients.len; i++)
        ledger_args_str(a, m->audience.recipients.items[i]);
    return lst_buf_failed(&a->buf) || lst_buf_failed(&c->tmp) ? LST_ERR_NOMEM : LST_OK;
}

lst_err ledger_apply_message(struct ledger_core *c, const struct ledger_rec *rec,
                             enum ledger_script *s, struct lst_buf *why)
{
    struct lst_message m;
    lst_err err;

    if (rec->value == NULL) {
        lst_buf_puts(why, "record: tombstone");
        return LST_ERR_INVALID;
    }
    err = lst_message_decode(rec->value, rec->len, &m, why);
    if (err != LST_OK)
        return err;
    err = message_args(c, &m);
    *s = LEDGER_S_MESSAGE;
    lst_message_cleanup(&m);
    return err;
}
