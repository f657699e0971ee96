/* view-api: serves the dispatchers' views and takes send requests for the single-page apps */
#include "view_api.h"

int main(int argc, char **argv)
{
    struct view_api ctx = {0};
    struct lst_config_section sections[] = {
        lst_common_config_section(&ctx.cfg.common),
        view_api_config_section(&ctx.cfg),
        view_api_gateway_section(&ctx.cfg),
    };
    int code = 0;
    if (lst_config_main(argc, argv, &view_api_program, sections, LST_ARRAY_LEN(sections), &code))
        code = view_api_run(&ctx);
    lst_config_cleanup(sections, LST_ARRAY_LEN(sections));
    return code;
}
