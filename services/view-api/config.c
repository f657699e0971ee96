/* The view-api's configuration table (docs/view-api.md renders it with --config-markdown). */
#include <stddef.h>

#include "view_api.h"

const struct lst_config_program view_api_program = {
    .name = "view-api",
    .summary = "serves the dispatchers' views and takes send requests for the single-page apps",
};

#define OFF(f) offsetof(struct view_api_config, f)

static const struct lst_config_entry entries[] = {
    {.name = "LST_HTTP_PORT",
     .type = LST_CONFIG_INT,
     .def = "18080",
     .min = 1,
     .max = 65535,
     .offset = OFF(http_port),
     .desc = "TCP port of the HTTP server (the API, /healthz, /readyz, /metrics)"},
    {.name = "LST_VIEW_TOKENS_FILE",
     .type = LST_CONFIG_STRING,
     .max_len = 4096,
     .offset = OFF(tokens_file),
     .desc = "token file: one line per token '<sha256 hex of the token> <dispatcher|admin> "
             "<user id> <department|-> [<display name>]' (the name: the rest of the line, "
             "dispatcher_name of the sends); unset: every API request is refused (401)"},
    {.name = "LST_VIEW_CORS_ORIGINS",
     .type = LST_CONFIG_STRING,
     .max_len = 8192,
     .offset = OFF(cors_origins),
     .desc = "comma-separated origins of the single-page apps allowed by CORS "
             "(e.g. https://dispo.example.com); '*' allows any; unset: none"},
    {.name = "LST_VIEW_JSON_MAX_BODY",
     .type = LST_CONFIG_INT,
     .def = "1048576",
     .min = 1024,
     .max = 67108864,
     .offset = OFF(json_max_body),
     .desc = "largest JSON request body in bytes (413 above)"},
    {.name = "LST_VIEW_UPLOAD_MAX_BODY",
     .type = LST_CONFIG_INT,
     .def = "16777216",
     .min = 1024,
     .max = 268435456,
     .offset = OFF(upload_max_body),
     .desc = "largest request body of an upload or ERP import in bytes (413 above)"},
    {.name = "LST_VIEW_IDEMPOTENCY_TTL_MS",
     .type = LST_CONFIG_MS,
     .def = "86400000",
     .min = 1000,
     .max = INT64_C(2592000000),
     .offset = OFF(idem_ttl_ms),
     .desc = "how long a send's Idempotency-Key returns the first result"},
    {.name = "LST_VIEW_KAFKA_WAIT_MS",
     .type = LST_CONFIG_MS,
     .def = "15000",
     .min = 100,
     .max = 300000,
     .offset = OFF(kafka_wait_ms),
     .desc = "how long a request waits for Kafka to acknowledge its records (503 after)"},
    {.name = "LST_VIEW_PAGE_MAX",
     .type = LST_CONFIG_INT,
     .def = "200",
     .min = 1,
     .max = 5000,
     .offset = OFF(page_max),
     .desc = "largest page (limit) of a list"},
    {.name = "LST_VIEW_SCAN_MAX",
     .type = LST_CONFIG_INT,
     .def = "5000",
     .min = 100,
     .max = 1000000,
     .offset = OFF(scan_max),
     .desc = "index entries one timeline page examines at most; a page cut short returns "
             "fewer items and a cursor to go on"},
    {.name = "LST_VIEW_ROW_CACHE",
     .type = LST_CONFIG_INT,
     .def = "20000",
     .min = 0,
     .max = 10000000,
     .offset = OFF(row_cache),
     .desc = "rendered timeline rows kept in memory, keyed by item ID and version (a row is "
             "about 1 KB), and as many rendered recipient states of the history (about 0.5 KB "
             "each); 0: both off"},
    {.name = "LST_VIEW_KEY_PREFIX",
     .type = LST_CONFIG_STRING,
     .def = "lst:va:",
     .max_len = 64,
     .offset = OFF(key_prefix),
     .desc = "prefix of the view-api's own Redis keys (idempotency keys)"},
    {.name = "LST_VIEW_LEDGER_PREFIX",
     .type = LST_CONFIG_STRING,
     .def = "lst:lg:",
     .max_len = 64,
     .offset = OFF(ledger_prefix),
     .desc = "prefix of the ledger's projections in Redis (docs/ledger.md)"},
    {.name = "LST_BLOB_DIR",
     .type = LST_CONFIG_STRING,
     .def = LST_BLOBSTORE_DEFAULT_DIR,
     .max_len = 4096,
     .offset = OFF(blob_dir),
     .desc = "the company blob store (uploads of images and files to send; GET "
             "/api/blobs/{sha256} serves from it; GDPR erasure deletes an erased employee's own "
             "blobs from it)"},
    {.name = "LST_VIEW_BALANCE_TTL_MS",
     .type = LST_CONFIG_MS,
     .def = "60000",
     .min = 0,
     .max = 86400000,
     .offset = OFF(balance_ttl_ms),
     .desc = "how long GET /api/credits reuses the Gateway's balance before asking again"},
    {.name = "LST_VIEW_READ_VISIBILITY",
     .type = LST_CONFIG_STRING,
     .max_len = 8192,
     .offset = OFF(read_visibility),
     .desc = "read tracking visibility per category: comma-separated <category>=<person|counts|"
             "off> and default=<...> (e.g. 'default=person,personal=counts,hr=off'); person: "
             "per-recipient read status, counts: only aggregate counts, off: no read "
             "information at all; unset: person everywhere"},
    {.name = "LST_VIEW_MAX_STREAMS",
     .type = LST_CONFIG_INT,
     .def = "64",
     .min = 0,
     .max = 10000,
     .offset = OFF(max_streams),
     .desc = "concurrent live streams (GET /api/stream; each holds a connection, a thread and "
             "a Redis connection); beyond it 503"},
    {.name = "LST_VIEW_STREAM_HEARTBEAT_MS",
     .type = LST_CONFIG_MS,
     .def = "15000",
     .min = 100,
     .max = 25000,
     .offset = OFF(stream_heartbeat_ms),
     .desc = "a live stream sends a comment after this much silence (keeps proxies and the "
             "HTTP server's idle timeout from closing it)"},
    {.name = "LST_VIEW_STREAM_BLOCK_MS",
     .type = LST_CONFIG_MS,
     .def = "1000",
     .min = 50,
     .max = 5000,
     .offset = OFF(stream_block_ms),
     .desc = "longest XREAD BLOCK of a live stream: bounds how long a shutdown waits for it"},
};

struct lst_config_section view_api_config_section(struct view_api_config *cfg)
{
    struct lst_config_section s = {"view-api", entries, LST_ARRAY_LEN(entries), cfg};
    return s;
}
