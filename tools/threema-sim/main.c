/* threema-sim: a Threema Gateway (msgapi) simulator with simulated phones. See sim.h. */
#include <curl/curl.h>

#include "lst/log.h"
#include "lst/signals.h"
#include "sim.h"

static int run(struct sim *sim)
{
    lst_log_init(sim_program.name, sim->cfg.log_level);
    if (lst_signals_install() != LST_OK)
        return 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    int code = 0;
    if (sim_create(sim) != LST_OK) {
        code = 1;
    } else {
        while (!lst_signals_wait_ms(500))
            ;
        LST_INFO("sim.stopping", "stop requested");
    }
    sim_destroy(sim);
    curl_global_cleanup();
    return code;
}

int main(int argc, char **argv)
{
    struct sim sim = {0};
    struct lst_config_section sections[] = {sim_config_section(&sim.cfg)};
    int code = 0;
    if (lst_config_main(argc, argv, &sim_program, sections, LST_ARRAY_LEN(sections), &code))
        code = run(&sim);
    lst_config_cleanup(sections, LST_ARRAY_LEN(sections));
    return code;
}
