#include <stddef.h>

#include "ledger.h"

const struct lst_config_program ledger_program = {
    .name = "ledger",
    .summary = "records every send, delivery and read and builds the projections in Redis",
};

static const struct lst_config_entry entries[] = {
    {.name = "LST_HTTP_PORT",
     .type = LST_CONFIG_INT,
     .def = "18083",
     .min = 1,
     .max = 65535,
     .offset = offsetof(struct ledger_config, http_port),
     .desc = "TCP port of the HTTP server (/healthz, /readyz, /metrics)"},
};

struct lst_config_section ledger_config_section(struct ledger_config *cfg)
{
    struct lst_config_section s = {"ledger", entries, LST_ARRAY_LEN(entries), cfg};
    return s;
}
