/* lst.employees -> employee.lua (upsert) or employee_erase.lua (tombstone: GDPR
 * erasure). */
#include <ctype.h>
#include <string.h>

#include "ledger.h"

/* A tombstone carries the employee ID only in its key: check it like the codec
 * would. */
static bool employee_id_ok(const char *k, size_t len)
{
    if (k == NULL || len == 0 || len > LST_EMPLOYEE_ID_MAX || !isalnum((unsigned char)k[0]))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)k[i];
        if (!(isalnum(ch) || ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static void tags_json(struct lst_buf *b, const struct lst_strv *v)
{
    lst_buf_reset(b);
    lst_buf_puts(b, "[");
    for (size_t i = 0; i < v->len; i++) {
        if (i > 0)
            lst_buf_puts(b, ",");
        lst_buf_json_str(b, v->items[i], strlen(v->items[i]));
    }
    lst_buf_puts(b, "]");
}

static lst_err upsert_args(struct ledger_core *c, const struct lst_employee *e)
{
    struct ledger_args *a = &c->args;
    int64_t n = 0;
    size_t count_at;

    ledger_args_str(a, e->employee_id);
    ledger_args_i64(a, e->updated_at);
    count_at = a->n;
    ledger_args_i64(a, 0);
    ledger_args_kv(a, "name", e->name, &n);
    ledger_args_kv(a, "dep", e->department, &n);
    ledger_args_kv(a, "veh", e->vehicle, &n);
    ledger_args_kv(a, "tid", e->threema_id, &n);
    ledger_args_kv(a, "phone", e->phone, &n);
    ledger_args_kv(a, "email", e->email, &n);
    ledger_args_kv(a, "active", e->active ? "1" : "0", &n);
    ledger_args_kv(a, "source", e->source, &n);
    tags_json(&c->tmp, &e->tags);
    ledger_args_kv(a, "tags", c->tmp.data, &n);
    ledger_args_set_i64(a, count_at, n);
    for (size_t i = 0; i < e->tags.len; i++)
        ledger_args_str(a, e->tags.items[i]);
    return lst_buf_failed(&a->buf) || lst_buf_failed(&c->tmp) ? LST_ERR_NOMEM : LST_OK;
}

lst_err ledger_apply_employee(struct ledger_core *c, const struct ledger_rec *rec,
                              enum ledger_script *s, struct lst_buf *why)
{
    struct lst_employee e;
    lst_err err;

    if (rec->value == NULL) {
        if (!employee_id_ok(rec->key, rec->keylen)) {
            lst_buf_puts(why, "key: tombstone without a valid employee id");
            return LST_ERR_INVALID;
        }
        *s = LEDGER_S_EMPLOYEE_ERASE;
        return ledger_args_add(&c->args, rec->key, rec->keylen);
    }
    err = lst_employee_decode(rec->value, rec->len, &e, why);
    if (err != LST_OK)
        return err;
    err = upsert_args(c, &e);
    *s = LEDGER_S_EMPLOYEE;
    lst_employee_cleanup(&e);
    return err;
}
