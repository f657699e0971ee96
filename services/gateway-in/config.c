#include <stddef.h>

#include "gateway_in.h"

const struct lst_config_program gateway_in_program = {
    .name = "gateway-in",
    .summary = "takes the Threema Gateway's callbacks (messages, delivery receipts) into lst.inbound",
};

static const struct lst_config_entry entries[] = {
    {.name = "LST_HTTP_PORT",
     .type = LST_CONFIG_INT,
     .def = "18082",
     .min = 1,
     .max = 65535,
     .offset = offsetof(struct gateway_in_config, http_port),
     .desc = "TCP port of the HTTP server (/healthz, /readyz, /metrics)"},
};

struct lst_config_section gateway_in_config_section(struct gateway_in_config *cfg)
{
    struct lst_config_section s = {"gateway-in", entries, LST_ARRAY_LEN(entries), cfg};
    return s;
}
