/* lst.inbound -> receipt.lua (delivery receipts) or inbound.lua (incoming
 * messages, with the category rules pre-evaluated); typing indicators only
 * advance the watermark. */
#include "ledger.h"

static lst_err receipt_args(struct ledger_args *a, const struct lst_inbound *in)
{
    ledger_args_i64(a, in->receipt.status);
    ledger_args_i64(a, in->received_at);
    for (size_t i = 0; i < in->receipt.message_ids.len; i++)
        ledger_args_str(a, in->receipt.message_ids.items[i]);
    return lst_buf_failed(&a->buf) ? LST_ERR_NOMEM : LST_OK;
}

static lst_err message_args(struct ledger_core *c, const struct lst_inbound *in)
{
    struct ledger_args *a = &c->args;
    const struct lst_content *m = &in->content;
    int64_t n = 0;
    size_t count_at;
    lst_err err = ledger_rules_candidates(&c->rules, m->text, m->caption, &c->tmp);

    if (err != LST_OK)
        return err;
    ledger_args_str(a, in->event_id);
    ledger_args_str(a, in->from);
    ledger_args_i64(a, in->received_at);
    ledger_args_str(a, lst_content_kind_name(m->kind));
    ledger_args_add(a, c->tmp.data, c->tmp.len);
    count_at = a->n;
    ledger_args_i64(a, 0);
    ledger_args_kv_i64(a, "date", in->date, &n);
    ledger_args_kv(a, "to", in->to, &n);
    ledger_args_kv(a, "tmid", in->threema_message_id, &n);
    ledger_args_kv(a, "nickname", in->nickname, &n);
    ledger_content_kv(a, m, &n);
    ledger_args_set_i64(a, count_at, n);
    return lst_buf_failed(&a->buf) ? LST_ERR_NOMEM : LST_OK;
}

lst_err ledger_apply_inbound(struct ledger_core *c, const struct ledger_rec *rec,
                             enum ledger_script *s, struct lst_buf *why)
{
    struct lst_inbound in;
    lst_err err;

    if (rec->value == NULL) {
        lst_buf_puts(why, "record: tombstone");
        return LST_ERR_INVALID;
    }
    err = lst_inbound_decode(rec->value, rec->len, &in, why);
    if (err != LST_OK)
        return err;
    if (in.kind == LST_INBOUND_RECEIPT) {
        *s = LEDGER_S_RECEIPT;
        err = receipt_args(&c->args, &in);
    } else if (in.content.kind == LST_CONTENT_TYPING) {
        *s = LEDGER_S_SKIP; /* a typing indicator is not part of any conversation */
    } else {
        *s = LEDGER_S_INBOUND;
        err = message_args(c, &in);
    }
    lst_inbound_cleanup(&in);
    return err;
}
