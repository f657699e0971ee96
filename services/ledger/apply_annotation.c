/* lst.annotations -> annotation.lua (handled / unhandled / category of one timeline item) and
 * lst.views -> view.lua (saved views). */
#include <string.h>

#include "ledger.h"

static const char *const annotation_kinds[LST_ANNOTATION__COUNT] = {"handled", "unhandled",
                                                                    "category"};

lst_err ledger_apply_annotation(struct ledger_core *c, const struct ledger_rec *rec,
                                enum ledger_script *s, struct lst_buf *why)
{
    struct lst_annotation an;
    lst_err err;

    if (rec->value == NULL) {
        lst_buf_puts(why, "record: tombstone");
        return LST_ERR_INVALID;
    }
    err = lst_annotation_decode(rec->value, rec->len, &an, why);
    if (err != LST_OK)
        return err;
    ledger_args_str(&c->args, an.item_id);
    ledger_args_str(&c->args, annotation_kinds[an.kind]);
    ledger_args_str(&c->args, an.user);
    ledger_args_i64(&c->args, an.at);
    ledger_args_str(&c->args, an.category);
    err = lst_buf_failed(&c->args.buf) ? LST_ERR_NOMEM : LST_OK;
    *s = LEDGER_S_ANNOTATION;
    lst_annotation_cleanup(&an);
    return err;
}

/* The filter as a JSON object of the query parameters that are set (view.lua stores it as is;
 * the view-api reads it back by parameter name). Walks the codec's list, so every parameter
 * the record holds, tag and depot included, reaches the projection. */
static void filter_json(struct lst_buf *b, const struct lst_view_filter *f)
{
    bool first = true;
    lst_buf_reset(b);
    lst_buf_puts(b, "{");
    for (size_t i = 0; i < LST_VIEW_FILTER_PARAMS; i++) {
        const char *name = lst_view_filter_name(i), *v = lst_view_filter_get(f, i);
        if (v == NULL)
            continue;
        if (!first)
            lst_buf_puts(b, ",");
        first = false;
        lst_buf_json_str(b, name, strlen(name));
        lst_buf_puts(b, ":");
        lst_buf_json_str(b, v, strlen(v));
    }
    lst_buf_puts(b, "}");
}

static void strv_json(struct lst_buf *b, const struct lst_strv *v)
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

lst_err ledger_apply_view(struct ledger_core *c, const struct ledger_rec *rec,
                          enum ledger_script *s, struct lst_buf *why)
{
    struct lst_view v;
    struct ledger_args *a = &c->args;
    lst_err err;

    if (rec->value == NULL) {
        lst_buf_puts(why, "record: tombstone");
        return LST_ERR_INVALID;
    }
    err = lst_view_decode(rec->value, rec->len, &v, why);
    if (err != LST_OK)
        return err;
    ledger_args_str(a, v.view_id);
    ledger_args_str(a, v.kind == LST_VIEW_PUT ? "put" : "delete");
    ledger_args_str(a, v.owner);
    ledger_args_str(a, v.department);
    ledger_args_i64(a, v.at);
    if (v.kind == LST_VIEW_PUT) {
        ledger_args_str(a, v.name);
        ledger_args_str(a, v.shared ? "1" : "0");
        filter_json(&c->tmp, &v.filter);
        ledger_args_add(a, c->tmp.data, c->tmp.len);
        strv_json(&c->tmp, &v.hidden);
        ledger_args_add(a, c->tmp.data, c->tmp.len);
    }
    err = lst_buf_failed(&a->buf) || lst_buf_failed(&c->tmp) ? LST_ERR_NOMEM : LST_OK;
    *s = LEDGER_S_VIEW;
    lst_view_cleanup(&v);
    return err;
}
