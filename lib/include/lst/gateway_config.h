/* The Threema Gateway settings shared by every program that talks to the Gateway
 * (gateway-out, gateway-in, lstctl): one config section with the same environment names
 * everywhere, and helpers that turn the loaded settings into a client (lst/gateway.h) and our
 * private key (lst/threema.h).
 *
 *   struct lst_gateway_settings gw = {0};
 *   struct lst_config_section sections[] = {
 *       lst_common_config_section(&cfg.common),
 *       lst_gateway_config_section_with_key(&gw),     (or lst_gateway_config_section)
 *       {"gateway-out", entries, n, &cfg},
 *   };
 *   ... lst_config_main(...) ...
 *   struct lst_gateway *client;
 *   err = lst_gateway_settings_client(&gw, &client);          one client per thread
 *   uint8_t sk[LST_THREEMA_KEY_SIZE];
 *   err = lst_gateway_settings_private_key(&gw, sk, &why);    wipe sk after use
 *   ...
 *   lst_config_cleanup(sections, 3);
 *
 * Variables: LST_GATEWAY_URL (default http://127.0.0.1:18090, the local simulator),
 * LST_GATEWAY_ID (required), LST_GATEWAY_SECRET (required, sensitive, _FILE),
 * LST_PRIVATE_KEY (sensitive, _FILE; "private:<hex>" or the path of a key file),
 * LST_GATEWAY_CONNECT_TIMEOUT_MS (5000), LST_GATEWAY_TIMEOUT_MS (30000), LST_GATEWAY_CA_FILE,
 * LST_GATEWAY_MAX_BLOB (bytes, 20 MiB). The default URL is the simulator so that pointing a
 * program at the real Gateway is an explicit configuration change. */
#ifndef LST_GATEWAY_CONFIG_H
#define LST_GATEWAY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "lst/config.h"
#include "lst/error.h"
#include "lst/gateway.h"
#include "lst/threema.h"
#include "lst/util.h"

#define LST_GATEWAY_CONFIG_DEFAULT_URL "http://127.0.0.1:18090"

/* Filled by the section. Strings are owned by the struct (freed by lst_config_cleanup of the
 * section); NULL when unset and without default. Zero-initialise before loading. */
struct lst_gateway_settings {
    char *url;                  /* LST_GATEWAY_URL */
    char *gateway_id;           /* LST_GATEWAY_ID */
    char *secret;               /* LST_GATEWAY_SECRET */
    char *private_key;          /* LST_PRIVATE_KEY: key string or key file path; may be NULL */
    int64_t connect_timeout_ms; /* LST_GATEWAY_CONNECT_TIMEOUT_MS */
    int64_t timeout_ms;         /* LST_GATEWAY_TIMEOUT_MS */
    char *ca_file;              /* LST_GATEWAY_CA_FILE, NULL: system store */
    int64_t max_blob;           /* LST_GATEWAY_MAX_BLOB, bytes */
};

/* The entries (private key optional), for tools that render documentation. */
extern const struct lst_config_entry lst_gateway_config_entries[];
extern const size_t lst_gateway_config_nentries;

/* The section (title "Threema Gateway") with LST_PRIVATE_KEY optional (lookups, credits). */
struct lst_config_section lst_gateway_config_section(struct lst_gateway_settings *s);
/* The same with LST_PRIVATE_KEY required (programs that encrypt or decrypt). */
struct lst_config_section lst_gateway_config_section_with_key(struct lst_gateway_settings *s);
/* The same settings with none required (the view-api, which only shows the credit balance and
 * runs without a Gateway account). */
struct lst_config_section lst_gateway_config_section_optional(struct lst_gateway_settings *s);

/* The client configuration of the settings; the strings are borrowed from s (keep s alive
 * while out is used; lst_gateway_create copies what it keeps). user_agent NULL. */
void lst_gateway_settings_client_config(const struct lst_gateway_settings *s,
                                        struct lst_gateway_config *out);

/* A new client for the settings (lst_gateway_create). *out is owned by the caller:
 * lst_gateway_destroy. One client per thread that sends in parallel (see lst/gateway.h). */
lst_err lst_gateway_settings_client(const struct lst_gateway_settings *s, struct lst_gateway **out);

/* Loads LST_PRIVATE_KEY (a key string or a key file, lst_threema_key_load) into sk.
 * LST_ERR_CONFIG when it is not set; the errors of lst_threema_key_load otherwise, with the
 * reason in why (may be NULL). The caller wipes sk (lst_threema_wipe) when done. */
lst_err lst_gateway_settings_private_key(const struct lst_gateway_settings *s,
                                         uint8_t sk[LST_THREEMA_KEY_SIZE], struct lst_buf *why);

#endif
