/* ledger: records every send, delivery and read and builds the projections in Redis */
#include "ledger.h"

int main(int argc, char **argv)
{
    struct ledger ctx = {0};
    struct lst_config_section sections[] = {
        lst_common_config_section(&ctx.cfg.common),
        ledger_config_section(&ctx.cfg),
    };
    int code = 0;
    if (lst_config_main(argc, argv, &ledger_program, sections, LST_ARRAY_LEN(sections), &code))
        code = ledger_run(&ctx);
    lst_config_cleanup(sections, LST_ARRAY_LEN(sections));
    return code;
}
