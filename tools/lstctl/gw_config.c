/* The Gateway settings of lstctl's network commands, from the environment through the
 * project's config table. The default base URL is the local simulator (scripts/stack.sh), so
 * pointing lstctl at the real Gateway is a configuration change: LST_GATEWAY_URL=
 * https://msgapi.threema.ch plus the account's ID, secret and private key. Only the network
 * commands load this table, so the offline commands work with an empty environment. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lst/config.h"
#include "lstctl.h"

static const char *check_gateway_id(const char *value)
{
    if (strlen(value) != LST_THREEMA_ID_SIZE || !lst_threema_id_valid(value, strlen(value)))
        return "must be a Gateway ID: 8 characters of [0-9A-Z], usually '*' first";
    return NULL;
}

static const char *check_url(const char *value)
{
    if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
        return "must start with http:// or https://";
    return NULL;
}

static const struct lst_config_entry entries[] = {
    {.name = "LST_LOG_LEVEL",
     .type = LST_CONFIG_LOG_LEVEL,
     .def = "warn",
     .offset = offsetof(struct lst_ctl_gw_config, log_level),
     .desc = "Minimum level of log lines (JSON on stderr): debug, info, warn, error or off."},
    {.name = "LST_GATEWAY_URL",
     .type = LST_CONFIG_STRING,
     .def = "http://127.0.0.1:18090",
     .max_len = 1024,
     .check = check_url,
     .offset = offsetof(struct lst_ctl_gw_config, url),
     .desc = "Base URL of the Gateway API; the default is the local simulator, the real one is "
             "https://msgapi.threema.ch."},
    {.name = "LST_GATEWAY_ID",
     .type = LST_CONFIG_STRING,
     .max_len = LST_THREEMA_ID_SIZE,
     .flags = LST_CONFIG_REQUIRED,
     .check = check_gateway_id,
     .offset = offsetof(struct lst_ctl_gw_config, gateway_id),
     .desc = "The Gateway ID (`from`), e.g. *LSTDEMO for the simulator."},
    {.name = "LST_GATEWAY_SECRET",
     .type = LST_CONFIG_STRING,
     .max_len = 256,
     .flags = LST_CONFIG_REQUIRED | LST_CONFIG_SENSITIVE,
     .offset = offsetof(struct lst_ctl_gw_config, secret),
     .desc = "The API secret of the Gateway ID (the simulator's demo secret is in "
             "demo/DEMO-ONLY-gateway.secret)."},
    {.name = "LST_PRIVATE_KEY",
     .type = LST_CONFIG_STRING,
     .max_len = 4096,
     .flags = LST_CONFIG_SENSITIVE,
     .offset = offsetof(struct lst_ctl_gw_config, private_key),
     .desc = "The Gateway ID's private key (private:<hex>) or the path of its key file; "
             "needed by send."},
    {.name = "LST_GATEWAY_CONNECT_TIMEOUT_MS",
     .type = LST_CONFIG_MS,
     .def = "5000",
     .min = 1,
     .max = 600000,
     .offset = offsetof(struct lst_ctl_gw_config, connect_timeout_ms),
     .desc = "Timeout of the TCP and TLS connect."},
    {.name = "LST_GATEWAY_TIMEOUT_MS",
     .type = LST_CONFIG_MS,
     .def = "30000",
     .min = 1,
     .max = 600000,
     .offset = offsetof(struct lst_ctl_gw_config, timeout_ms),
     .desc = "Timeout of one whole request, connect included."},
    {.name = "LST_GATEWAY_CA_FILE",
     .type = LST_CONFIG_STRING,
     .max_len = 4096,
     .offset = offsetof(struct lst_ctl_gw_config, ca_file),
     .desc = "PEM CA bundle for https; unset: the system store."},
};

static struct lst_config_section section(struct lst_ctl_gw_config *c)
{
    struct lst_config_section s = {"Gateway (lstctl send, lookup, capabilities, credits)", entries,
                                   LST_ARRAY_LEN(entries), c};
    return s;
}

lst_err lst_ctl_gw_config_load(struct lst_ctl_gw_config *c)
{
    struct lst_buf errors;
    memset(c, 0, sizeof(*c));
    struct lst_config_section s = section(c);
    lst_buf_init(&errors);
    lst_err err = lst_config_load(&s, 1, NULL, &errors);
    if (err != LST_OK)
        fprintf(stderr, "lstctl: invalid configuration:\n%s",
                errors.len > 0 ? errors.data : "out of memory\n");
    lst_buf_cleanup(&errors);
    return err;
}

void lst_ctl_gw_config_cleanup(struct lst_ctl_gw_config *c)
{
    struct lst_config_section s = section(c);
    lst_config_cleanup(&s, 1);
}

lst_err lst_ctl_gw_config_help(struct lst_buf *out)
{
    struct lst_ctl_gw_config c;
    memset(&c, 0, sizeof(c));
    struct lst_config_section s = section(&c);
    return lst_config_help(&s, 1, "lstctl", "settings of the Gateway commands (environment)", out);
}
