/* The settings of lstctl's network commands, from the environment through the project's
 * config tables: the library's shared Gateway section (lst/gateway_config.h: LST_GATEWAY_URL,
 * default the local simulator, LST_GATEWAY_ID, LST_GATEWAY_SECRET, LST_PRIVATE_KEY, timeouts;
 * the same names gateway-out and gateway-in read) plus lstctl's own log level. Only the
 * network commands load them, so the offline commands work with an empty environment. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lst/config.h"
#include "lstctl.h"

static const struct lst_config_entry entries[] = {
    {.name = "LST_LOG_LEVEL",
     .type = LST_CONFIG_LOG_LEVEL,
     .def = "warn",
     .offset = offsetof(struct lst_ctl_gw_config, log_level),
     .desc = "Minimum level of log lines (JSON on stderr): debug, info, warn, error or off."},
};

#define NSECTIONS 2

static void sections(struct lst_ctl_gw_config *c, struct lst_config_section out[NSECTIONS])
{
    struct lst_config_section own = {"lstctl", entries, LST_ARRAY_LEN(entries), c};
    out[0] = lst_gateway_config_section(&c->gw);
    out[1] = own;
}

lst_err lst_ctl_gw_config_load(struct lst_ctl_gw_config *c)
{
    struct lst_config_section s[NSECTIONS];
    struct lst_buf errors;
    memset(c, 0, sizeof(*c));
    sections(c, s);
    lst_buf_init(&errors);
    lst_err err = lst_config_load(s, NSECTIONS, NULL, &errors);
    if (err != LST_OK)
        fprintf(stderr, "lstctl: invalid configuration:\n%s",
                errors.len > 0 ? errors.data : "out of memory\n");
    lst_buf_cleanup(&errors);
    return err;
}

void lst_ctl_gw_config_cleanup(struct lst_ctl_gw_config *c)
{
    struct lst_config_section s[NSECTIONS];
    sections(c, s);
    lst_config_cleanup(s, NSECTIONS);
}

lst_err lst_ctl_gw_config_help(struct lst_buf *out)
{
    struct lst_ctl_gw_config c;
    struct lst_config_section s[NSECTIONS];
    memset(&c, 0, sizeof(c));
    sections(&c, s);
    return lst_config_help(s, NSECTIONS, "lstctl", "settings of the Gateway commands (environment)",
                           out);
}
