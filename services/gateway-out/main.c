/* gateway-out: sends requests from lst.outbound to the Threema Gateway, end-to-end encrypted */
#include "gateway_out.h"

int main(int argc, char **argv)
{
    struct gateway_out ctx = {0};
    struct lst_config_section sections[] = {
        lst_common_config_section(&ctx.cfg.common),
        lst_gateway_config_section_with_key(&ctx.cfg.gw),
        gateway_out_config_section(&ctx.cfg),
    };
    int code = 0;
    if (lst_config_main(argc, argv, &gateway_out_program, sections, LST_ARRAY_LEN(sections), &code))
        code = gateway_out_run(&ctx);
    lst_config_cleanup(sections, LST_ARRAY_LEN(sections));
    return code;
}
