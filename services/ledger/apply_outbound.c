/* lst.outbound -> outbound.lua: the recipient is queued. */
#include "ledger.h"

lst_err ledger_apply_outbound(struct ledger_core *c, const struct ledger_rec *rec,
                              enum ledger_script *s, struct lst_buf *why)
{
    struct lst_outbound o;
    lst_err err;

    if (rec->value == NULL) {
        lst_buf_puts(why, "record: tombstone");
        return LST_ERR_INVALID;
    }
    err = lst_outbound_decode(rec->value, rec->len, &o, why);
    if (err != LST_OK)
        return err;
    if (ledger_args_str(&c->args, o.message_id) != LST_OK ||
        ledger_args_str(&c->args, o.employee_id) != LST_OK ||
        ledger_args_i64(&c->args, o.created_at) != LST_OK)
        err = LST_ERR_NOMEM;
    *s = LEDGER_S_OUTBOUND;
    lst_outbound_cleanup(&o);
    return err;
}
