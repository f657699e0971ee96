/* The Gateway settings section (lst/gateway_config.h). The names and defaults are the ones
 * lstctl introduced first; gateway-out and gateway-in use the same section so one environment
 * file configures all three. */
#include "lst/gateway_config.h"

#include <stddef.h>
#include <string.h>

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

/* Three uses, one list: lstctl's network commands need the account; gateway-out and gateway-in
 * also the private key; the view-api only asks for the balance and runs without any. The
 * config table has no per-use override of a flag, and a required setting must show up as such
 * in --help and the generated docs, hence a table per use. */
/* The one list of Gateway settings; REQ is the flag of the account (ID and secret), KEY_REQ
 * that of the private key. */
#define GATEWAY_ENTRIES(REQ, KEY_REQ)                                                              \
    {.name = "LST_GATEWAY_URL",                                                                    \
     .type = LST_CONFIG_STRING,                                                                    \
     .def = LST_GATEWAY_CONFIG_DEFAULT_URL,                                                        \
     .max_len = 1024,                                                                              \
     .check = check_url,                                                                           \
     .offset = offsetof(struct lst_gateway_settings, url),                                         \
     .desc = "Base URL of the Gateway API; the default is the local simulator, the real one is "   \
             "https://msgapi.threema.ch."},                                                        \
        {.name = "LST_GATEWAY_ID",                                                                 \
         .type = LST_CONFIG_STRING,                                                                \
         .max_len = LST_THREEMA_ID_SIZE,                                                           \
         .flags = (REQ),                                                                           \
         .check = check_gateway_id,                                                                \
         .offset = offsetof(struct lst_gateway_settings, gateway_id),                              \
         .desc = "The Gateway ID (`from`), e.g. *LSTDEMO for the simulator."},                     \
        {.name = "LST_GATEWAY_SECRET",                                                             \
         .type = LST_CONFIG_STRING,                                                                \
         .max_len = 256,                                                                           \
         .flags = (REQ) | LST_CONFIG_SENSITIVE,                                                    \
         .offset = offsetof(struct lst_gateway_settings, secret),                                  \
         .desc = "The API secret of the Gateway ID (the simulator's demo secret is in "            \
                 "demo/DEMO-ONLY-gateway.secret)."},                                               \
        {.name = "LST_PRIVATE_KEY",                                                                \
         .type = LST_CONFIG_STRING,                                                                \
         .max_len = 4096,                                                                          \
         .flags = (KEY_REQ) | LST_CONFIG_SENSITIVE,                                                \
         .offset = offsetof(struct lst_gateway_settings, private_key),                             \
         .desc = "The Gateway ID's private key (private:<hex>) or the path of its key file."},     \
        {.name = "LST_GATEWAY_CONNECT_TIMEOUT_MS",                                                 \
         .type = LST_CONFIG_MS,                                                                    \
         .def = "5000",                                                                            \
         .min = 1,                                                                                 \
         .max = 600000,                                                                            \
         .offset = offsetof(struct lst_gateway_settings, connect_timeout_ms),                      \
         .desc = "Timeout of the TCP and TLS connect."},                                           \
        {.name = "LST_GATEWAY_TIMEOUT_MS",                                                         \
         .type = LST_CONFIG_MS,                                                                    \
         .def = "30000",                                                                           \
         .min = 1,                                                                                 \
         .max = 600000,                                                                            \
         .offset = offsetof(struct lst_gateway_settings, timeout_ms),                              \
         .desc = "Timeout of one whole request, connect included."},                               \
        {.name = "LST_GATEWAY_CA_FILE",                                                            \
         .type = LST_CONFIG_STRING,                                                                \
         .max_len = 4096,                                                                          \
         .offset = offsetof(struct lst_gateway_settings, ca_file),                                 \
         .desc = "PEM CA bundle for https; unset: the system store."},                             \
        {.name = "LST_GATEWAY_MAX_BLOB",                                                           \
         .type = LST_CONFIG_INT,                                                                   \
         .def = "20971520",                                                                        \
         .min = 1,                                                                                 \
         .max = 1073741824,                                                                        \
         .offset = offsetof(struct lst_gateway_settings, max_blob),                                \
         .desc = "Largest blob uploaded to or downloaded from the Gateway, bytes (the Gateway "    \
                 "documented 20 MiB)."},

const struct lst_config_entry lst_gateway_config_entries[] = {
    GATEWAY_ENTRIES(LST_CONFIG_REQUIRED, 0u)};
const size_t lst_gateway_config_nentries = LST_ARRAY_LEN(lst_gateway_config_entries);

static const struct lst_config_entry entries_with_key[] = {
    GATEWAY_ENTRIES(LST_CONFIG_REQUIRED, LST_CONFIG_REQUIRED)};

static const struct lst_config_entry entries_optional[] = {GATEWAY_ENTRIES(0u, 0u)};

struct lst_config_section lst_gateway_config_section(struct lst_gateway_settings *s)
{
    struct lst_config_section sec = {"Threema Gateway", lst_gateway_config_entries,
                                     lst_gateway_config_nentries, s};
    return sec;
}

struct lst_config_section lst_gateway_config_section_with_key(struct lst_gateway_settings *s)
{
    struct lst_config_section sec = {"Threema Gateway", entries_with_key,
                                     LST_ARRAY_LEN(entries_with_key), s};
    return sec;
}

struct lst_config_section lst_gateway_config_section_optional(struct lst_gateway_settings *s)
{
    struct lst_config_section sec = {"Threema Gateway (optional)", entries_optional,
                                     LST_ARRAY_LEN(entries_optional), s};
    return sec;
}

void lst_gateway_settings_client_config(const struct lst_gateway_settings *s,
                                        struct lst_gateway_config *out)
{
    memset(out, 0, sizeof(*out));
    out->base_url = s->url;
    out->gateway_id = s->gateway_id;
    out->secret = s->secret;
    out->connect_timeout_ms = (long)s->connect_timeout_ms;
    out->timeout_ms = (long)s->timeout_ms;
    out->ca_file = s->ca_file;
    out->max_blob = s->max_blob > 0 ? (size_t)s->max_blob : 0;
}

lst_err lst_gateway_settings_client(const struct lst_gateway_settings *s, struct lst_gateway **out)
{
    struct lst_gateway_config cfg;
    lst_gateway_settings_client_config(s, &cfg);
    return lst_gateway_create(&cfg, out);
}

lst_err lst_gateway_settings_private_key(const struct lst_gateway_settings *s,
                                         uint8_t sk[LST_THREEMA_KEY_SIZE], struct lst_buf *why)
{
    if (s->private_key == NULL) {
        if (why != NULL) {
            lst_buf_reset(why);
            lst_buf_puts(why, "LST_PRIVATE_KEY is not set");
        }
        return LST_ERR_CONFIG;
    }
    return lst_threema_key_load(s->private_key, LST_THREEMA_KEY_PRIVATE, sk, why);
}
