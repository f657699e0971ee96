#include <stddef.h>

#include "gateway_out.h"

const struct lst_config_program gateway_out_program = {
    .name = "gateway-out",
    .summary = "sends requests from lst.outbound to the Threema Gateway, end-to-end encrypted",
};

static const struct lst_config_entry entries[] = {
    {.name = "LST_HTTP_PORT",
     .type = LST_CONFIG_INT,
     .def = "18081",
     .min = 1,
     .max = 65535,
     .offset = offsetof(struct gateway_out_config, http_port),
     .desc = "TCP port of the HTTP server (/healthz, /readyz, /metrics)"},
};

struct lst_config_section gateway_out_config_section(struct gateway_out_config *cfg)
{
    struct lst_config_section s = {"gateway-out", entries, LST_ARRAY_LEN(entries), cfg};
    return s;
}
