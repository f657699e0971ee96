#include <stddef.h>

#include "view_api.h"

const struct lst_config_program view_api_program = {
    .name = "view-api",
    .summary = "serves the dispatchers' views and takes send requests for the single-page apps",
};

static const struct lst_config_entry entries[] = {
    {.name = "LST_HTTP_PORT",
     .type = LST_CONFIG_INT,
     .def = "18080",
     .min = 1,
     .max = 65535,
     .offset = offsetof(struct view_api_config, http_port),
     .desc = "TCP port of the HTTP server (/healthz, /readyz, /metrics)"},
};

struct lst_config_section view_api_config_section(struct view_api_config *cfg)
{
    struct lst_config_section s = {"view-api", entries, LST_ARRAY_LEN(entries), cfg};
    return s;
}
