/* gateway-in: takes the Threema Gateway's callbacks (messages, delivery receipts) into lst.inbound
 */
#include "gateway_in.h"

int main(int argc, char **argv)
{
    struct gateway_in ctx = {0};
    struct lst_config_section sections[] = {
        lst_common_config_section(&ctx.cfg.common),
        lst_gateway_config_section_with_key(&ctx.cfg.gw),
        gateway_in_config_section(&ctx.cfg),
    };
    int code = 0;
    if (lst_config_main(argc, argv, &gateway_in_program, sections, LST_ARRAY_LEN(sections), &code))
        code = gateway_in_run(&ctx);
    lst_config_cleanup(sections, LST_ARRAY_LEN(sections));
    return code;
}
