/* ledger: records every send, delivery and read and builds the projections in
 * Redis.
 *
 *   ledger              runs (resumes at the watermarks kept in Redis)
 *   ledger --rebuild    drops every projection first, then runs: Kafka is
 * replayed from the beginning of every topic (stop the running ledger before)
 * plus the configuration options every service has (--help, --print-config,
 * ...). */
#include <string.h>

#include "ledger.h"

int main(int argc, char **argv)
{
    struct ledger ctx = {0};
    struct lst_config_section sections[] = {
        lst_common_config_section(&ctx.cfg.common),
        ledger_config_section(&ctx.cfg),
    };
    bool rebuild = false;
    int code = 0;

    /* --rebuild is ours; the configuration parser rejects arguments it does not
     * know. */
    if (argc >= 2 && strcmp(argv[argc - 1], "--rebuild") == 0) {
        rebuild = true;
        argc--;
    }
    if (lst_config_main(argc, argv, &ledger_program, sections, LST_ARRAY_LEN(sections), &code))
        code = ledger_run(&ctx, rebuild);
    lst_config_cleanup(sections, LST_ARRAY_LEN(sections));
    return code;
}
