/* lst.audit -> audit.lua: one entry of the GDPR audit log (docs/view-api.md). The record is
 * stored as the codec encodes it, so the view-api returns it as it was produced. */
#include "ledger.h"

lst_err ledger_apply_audit(struct ledger_core *c, const struct ledger_rec *rec,
                           enum ledger_script *s, struct lst_buf *why)
{
    struct lst_audit a;
    lst_err err;

    if (rec->value == NULL) {
        lst_buf_puts(why, "value: a tombstone is not an audit record");
        return LST_ERR_INVALID;
    }
    err = lst_audit_decode(rec->value, rec->len, &a, why);
    if (err != LST_OK)
        return err;
    lst_buf_reset(&c->tmp);
    err = lst_audit_encode(&a, &c->tmp);
    if (err == LST_OK) {
        ledger_args_str(&c->args, a.event_id);
        ledger_args_i64(&c->args, a.at);
        ledger_args_str(&c->args, a.employee_id);
        ledger_args_add(&c->args, c->tmp.data, c->tmp.len);
        err = lst_buf_failed(&c->args.buf) ? LST_ERR_NOMEM : LST_OK;
    }
    *s = LEDGER_S_AUDIT;
    lst_audit_cleanup(&a);
    return err;
}
