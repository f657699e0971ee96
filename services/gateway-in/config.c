/* The configuration table of gateway-in (the common and Gateway sections come from the
 * library). Defaults are chosen for the real Gateway: it waits for our answer only so long
 * (the simulator: LST_SIM_CALLBACK_TIMEOUT_MS, 10 s) and retries 3 times 5 minutes apart. */
#include <stddef.h>
#include <string.h>

#include "gateway_in.h"

const struct lst_config_program gateway_in_program = {
    .name = "gateway-in",
    .summary =
        "takes the Threema Gateway's callbacks (messages, delivery receipts) into lst.inbound",
};

#define CFG(field) offsetof(struct gateway_in_config, field)

static const char *check_path(const char *value)
{
    if (value[0] != '/' || strchr(value, '?') != NULL || strchr(value, ' ') != NULL)
        return "must be an absolute URL path starting with / (no query string, no spaces)";
    if (strcmp(value, "/healthz") == 0 || strcmp(value, "/readyz") == 0 ||
        strcmp(value, "/metrics") == 0)
        return "must not be one of the built-in routes /healthz, /readyz, /metrics";
    return NULL;
}

static const char *check_prefix(const char *value)
{
    for (const char *p = value; *p != '\0'; p++)
        if (*p <= ' ' || *p > '~')
            return "must be printable ASCII without spaces";
    return NULL;
}

static const struct lst_config_entry entries[] = {
    {.name = "LST_HTTP_PORT",
     .type = LST_CONFIG_INT,
     .def = "18082",
     .min = 1,
     .max = 65535,
     .offset = CFG(http_port),
     .desc = "TCP port of the HTTP server (the callback route, /healthz, /readyz, /metrics)"},
    {.name = "LST_CALLBACK_PATH",
     .type = LST_CONFIG_STRING,
     .def = "/threema/callback",
     .max_len = 256,
     .check = check_path,
     .offset = CFG(callback_path),
     .desc = "URL path of the callback (POST); the Gateway's callback URL points here"},
    {.name = "LST_CALLBACK_MAX_BODY",
     .type = LST_CONFIG_INT,
     .def = GWIN_DEFAULT_MAX_BODY,
     .min = 4096,
     .max = 4194304,
     .offset = CFG(max_body),
     .desc = "Largest request body in bytes (larger: 413); the default fits the largest valid "
             "callback (a 64 KiB box in hex plus the other fields); replaces LST_HTTP_MAX_BODY"},
    {.name = "LST_HTTP_MAX_CONNECTIONS",
     .type = LST_CONFIG_INT,
     .def = "256",
     .min = 4,
     .max = 4096,
     .offset = CFG(max_connections),
     .desc = "Concurrent connections, in total over all event threads (with "
             "LST_HTTP_EVENT_THREADS=0 one handler thread each, which waits for Kafka); one "
             "more is closed at once and counted in lst_http_connections_refused_total"},
    {.name = "LST_HTTP_EVENT_THREADS",
     .type = LST_CONFIG_INT,
     .def = "2",
     .min = 0,
     .max = 64,
     .offset = CFG(event_threads),
     .desc = "N > 0: N event threads, callbacks handled asynchronously (pipelined dedupe "
             "claims, Kafka acks without a waiting thread); 0: one handler thread per "
             "connection (the design before event mode)"},
    {.name = "LST_CALLBACK_ACK_TIMEOUT_MS",
     .type = LST_CONFIG_MS,
     .def = "8000",
     .min = 2000,
     .max = 300000,
     .offset = CFG(ack_timeout_ms),
     .desc = "How long a callback waits for Kafka's acknowledgement before answering 503; keep "
             "it below the Gateway's patience. The producer's message timeout is at most this less "
             "1 s"},
    {.name = "LST_BLOB_DIR",
     .type = LST_CONFIG_STRING,
     .def = LST_BLOBSTORE_DEFAULT_DIR,
     .max_len = 1024,
     .offset = CFG(blob_dir),
     .desc = "Root of the company blob store (content-addressed files, shared with "
             "gateway-out); created when missing; must be writable"},
    {.name = "LST_INBOUND_FILE_MAX",
     .type = LST_CONFIG_INT,
     .def = "20971520",
     .min = 1024,
     .max = 1073741824,
     .offset = CFG(file_max),
     .desc = "Largest incoming file in bytes; larger files are recorded with blob_error "
             "(downloads are capped by LST_GATEWAY_MAX_BLOB too)"},
    {.name = "LST_PUBKEY_CACHE_TTL_S",
     .type = LST_CONFIG_INT,
     .def = "86400",
     .min = 1,
     .max = 2592000,
     .offset = CFG(pubkey_ttl_s),
     .desc = "How long a sender's public key is cached (Redis and in the process)"},
    {.name = "LST_DEDUPE_PENDING_TTL_MS",
     .type = LST_CONFIG_MS,
     .def = "120000",
     .min = 1000,
     .max = 3600000,
     .offset = CFG(dedupe_pending_ms),
     .desc = "Lifetime of the marker of a callback in progress; must exceed the longest "
             "handling (pubkey and blob downloads plus the Kafka wait)"},
    {.name = "LST_DEDUPE_DONE_TTL_S",
     .type = LST_CONFIG_INT,
     .def = "172800",
     .min = 60,
     .max = 2592000,
     .offset = CFG(dedupe_done_s),
     .desc = "How long a published (from, messageId) is remembered; the Gateway retries for "
             "about 15 minutes"},
    {.name = "LST_REDIS_KEY_PREFIX",
     .type = LST_CONFIG_STRING,
     .def = "lst:gwin:",
     .max_len = 64,
     .check = check_prefix,
     .offset = CFG(redis_prefix),
     .desc = "Prefix of gateway-in's Redis keys (dedupe markers, public keys)"},
    {.name = "LST_REDIS_POOL",
     .type = LST_CONFIG_INT,
     .def = "64",
     .min = 1,
     .max = 256,
     .offset = CFG(redis_pool),
     .desc = "Redis connections shared by the handler threads (two round trips per callback: "
             "fewer connections than busy handlers make them queue for one)"},
    {.name = "LST_GATEWAY_POOL",
     .type = LST_CONFIG_INT,
     .def = "4",
     .min = 1,
     .max = 256,
     .offset = CFG(gateway_pool),
     .desc = "Gateway HTTP clients (public keys, blob downloads) shared by the handler threads"},
    /* The Gateway counts every call of the account against one rate: gateway-in's key fetches
     * and blob downloads take their tokens from gateway-out's shared limiter, configured by the
     * same variables so that one setting in deploy/.env holds for both services. */
    {.name = "LST_GATEWAY_OUT_RATE_LIMIT",
     .type = LST_CONFIG_DOUBLE,
     .def = "500",
     .dmin = 0,
     .dmax = 1000000,
     .offset = CFG(rate_limit),
     .desc = "Gateway requests per second of the account, shared with gateway-out's workers "
             "(the same variable and Redis keys): public-key fetches and blob downloads take "
             "their tokens there; 0: no limit. A 429 halves it for everyone."},
    {.name = "LST_GATEWAY_OUT_RATE_MIN",
     .type = LST_CONFIG_DOUBLE,
     .def = "1",
     .dmin = 0.1,
     .dmax = 1000000,
     .offset = CFG(rate_min),
     .desc = "Floor of the shared adaptive rate limit, requests per second (as gateway-out)."},
    {.name = "LST_GATEWAY_OUT_KEY_PREFIX",
     .type = LST_CONFIG_STRING,
     .def = "lst:gwout:",
     .max_len = 64,
     .check = check_prefix,
     .offset = CFG(rate_prefix),
     .desc = "gateway-out's Redis key prefix: the keys of the shared rate limit start with it, "
             "followed by rl:"},
    /* Short: a wait beyond a few windows means the budget is used up, and a waiting callback
     * holds a worker that other callbacks (blob downloads) need; the Gateway retries a 503. */
    {.name = "LST_GATEWAY_RATE_WAIT_MS",
     .type = LST_CONFIG_MS,
     .def = "250",
     .min = 0,
     .max = 60000,
     .offset = CFG(rate_wait_ms),
     .desc = "How long a callback waits for a token of the shared Gateway rate before it is "
             "answered 503 (the Gateway retries it later)"},
    {.name = "LST_KEYCACHE_SIZE",
     .type = LST_CONFIG_INT,
     .def = "4096",
     .min = 1,
     .max = 1048576,
     .offset = CFG(keycache_size),
     .desc = "Senders whose public and shared keys are kept in the process"},
};

struct lst_config_section gateway_in_config_section(struct gateway_in_config *cfg)
{
    struct lst_config_section s = {"gateway-in", entries, LST_ARRAY_LEN(entries), cfg};
    return s;
}
