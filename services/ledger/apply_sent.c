/* lst.sent -> sent.lua: accepted (with the Threema message ID receipts will
 * name) or failed (final, or retrying). */
#include "ledger.h"

static lst_err sent_args(struct ledger_args *a, const struct lst_sent *o)
{
    bool ok = o->outcome == LST_SENT_ACCEPTED;
    const struct lst_failure *f = &o->failure;

    ledger_args_str(a, o->message_id);
    ledger_args_str(a, o->employee_id);
    ledger_args_str(a, ok ? "accepted" : "failed");
    ledger_args_i64(a, o->at);
    ledger_args_str(a, ok ? o->threema_message_id : NULL);
    ledger_args_str(a, o->threema_id);
    ledger_args_str(a, ok ? NULL : f->code);
    ledger_args_str(a, ok ? NULL : f->reason);
    ledger_args_i64(a, !ok && f->final ? 1 : 0);
    if (!ok && f->has_http_status)
        ledger_args_i64(a, f->http_status);
    else
        ledger_args_str(a, NULL);
    ledger_args_i64(a, o->possible_duplicate ? 1 : 0);
    return ledger_args_i64(a, o->attempts);
}

lst_err ledger_apply_sent(struct ledger_core *c, const struct ledger_rec *rec,
                          enum ledger_script *s, struct lst_buf *why)
{
    struct lst_sent o;
    lst_err err;

    if (rec->value == NULL) {
        lst_buf_puts(why, "record: tombstone");
        return LST_ERR_INVALID;
    }
    err = lst_sent_decode(rec->value, rec->len, &o, why);
    if (err != LST_OK)
        return err;
    sent_args(&c->args, &o);
    err = lst_buf_failed(&c->args.buf) ? LST_ERR_NOMEM : LST_OK;
    *s = LEDGER_S_SENT;
    lst_sent_cleanup(&o);
    return err;
}
