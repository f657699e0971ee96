/* The ledger's one script: the shared prelude, every event kind's apply function, and the
 * epilogue that applies a batch of events, each behind its partition's watermark. */
#include <stdlib.h>

#include "ledger.h"
#include "scripts.h"

char *ledger_script_source(void)
{
    const char *parts[] = {ledger_lua_prelude, ledger_lua_skip,       ledger_lua_outbound,
                           ledger_lua_sent,    ledger_lua_receipt,    ledger_lua_message,
                           ledger_lua_inbound, ledger_lua_employee,   ledger_lua_employee_erase,
                           ledger_lua_audit,   ledger_lua_annotation, ledger_lua_view,
                           ledger_lua_epilogue};
    struct lst_buf b;

    lst_buf_init(&b);
    for (size_t i = 0; i < LST_ARRAY_LEN(parts); i++) {
        lst_buf_puts(&b, parts[i]);
        lst_buf_puts(&b, "\n");
    }
    if (lst_buf_failed(&b)) {
        lst_buf_cleanup(&b);
        return NULL;
    }
    return lst_buf_steal(&b);
}

lst_err ledger_script_create(struct lst_redis_script **out)
{
    char *src = ledger_script_source();
    lst_err err = src != NULL ? lst_redis_script_create(src, true, out) : LST_ERR_NOMEM;
    free(src);
    return err;
}
