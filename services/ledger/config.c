/* The ledger's configuration table (the common section comes from the library).
 */
#include <stddef.h>

#include "ledger.h"

const struct lst_config_program ledger_program = {
    .name = "ledger",
    .summary = "records every send, delivery and read and builds the "
               "projections in Redis",
};

static const struct lst_config_entry entries[] = {
    {.name = "LST_HTTP_PORT",
     .type = LST_CONFIG_INT,
     .def = "18083",
     .min = 1,
     .max = 65535,
     .offset = offsetof(struct ledger_config, http_port),
     .desc = "TCP port of the HTTP server (/healthz, /readyz, /metrics)"},
    {.name = "LST_LEDGER_GROUP_ID",
     .type = LST_CONFIG_STRING,
     .def = "ledger",
     .max_len = 200,
     .offset = offsetof(struct ledger_config, group_id),
     .desc = "Kafka group id under which read positions are committed for lag "
             "monitoring "
             "(the ledger resumes from its watermarks in Redis, not from these)"},
    {.name = "LST_LEDGER_BATCH",
     .type = LST_CONFIG_INT,
     .def = "500",
     .min = 1,
     .max = 20000,
     .offset = offsetof(struct ledger_config, batch),
     .desc = "records applied per Redis pipeline (each still one atomic script)"},
    {.name = "LST_LEDGER_SCRIPT_EVENTS",
     .type = LST_CONFIG_INT,
     .def = "32",
     .min = 1,
     .max = 1000,
     .offset = offsetof(struct ledger_config, script_events),
     .desc = "records applied by one script call (atomic together; Redis serves nothing else "
             "meanwhile, so keep it small)"},
    {.name = "LST_LEDGER_POLL_MS",
     .type = LST_CONFIG_MS,
     .def = "200",
     .min = 1,
     .max = 10000,
     .offset = offsetof(struct ledger_config, poll_ms),
     .desc = "how long one poll waits for the first record of a batch"},
    {.name = "LST_LEDGER_REPLY_WINDOW_MS",
     .type = LST_CONFIG_MS,
     .def = "86400000",
     .min = 0,
     .max = INT64_C(31536000000),
     .offset = offsetof(struct ledger_config, reply_window),
     .desc = "an incoming message is a reply to the latest message sent to its "
             "sender within "
             "this time before it"},
    {.name = "LST_LEDGER_READ_RECEIPTS_N",
     .type = LST_CONFIG_INT,
     .def = "5",
     .min = 0,
     .max = 100,
     .offset = offsetof(struct ledger_config, read_receipts),
     .desc = "a recipient whose last N delivered messages got no read receipt "
             "from them, while "
             "others read, counts as having read receipts off (0: never)"},
    {.name = "LST_LEDGER_RULES",
     .type = LST_CONFIG_STRING,
     .max_len = 65536,
     .offset = offsetof(struct ledger_config, rules),
     .desc = "category rules of incoming messages, ';'-separated: "
             "<category>=keyword:<w>[,<w>] "
             "or <category>=department:<name>; first match wins, else inbox"},
    {.name = "LST_LEDGER_RULES_FILE",
     .type = LST_CONFIG_STRING,
     .max_len = 4096,
     .offset = offsetof(struct ledger_config, rules_file),
     .desc = "file with more category rules, one per line ('#' comments), "
             "applied after "
             "LST_LEDGER_RULES"},
    {.name = "LST_LEDGER_RETENTION_MS",
     .type = LST_CONFIG_MS,
     .def = "0",
     .min = 0,
     .max = INT64_C(315360000000),
     .offset = offsetof(struct ledger_config, retention_ms),
     .desc = "messages older than this are purged from the projections (GDPR storage "
             "limitation); 0 keeps everything"},
    {.name = "LST_LEDGER_RETENTION_BATCH",
     .type = LST_CONFIG_INT,
     .def = "200",
     .min = 1,
     .max = 10000,
     .offset = offsetof(struct ledger_config, retention_batch),
     .desc = "items one retention run purges at most, and as many unclaimed held receipts "
             "(bounded work per run)"},
    {.name = "LST_LEDGER_RETENTION_INTERVAL_MS",
     .type = LST_CONFIG_MS,
     .def = "60000",
     .min = 100,
     .max = 86400000,
     .offset = offsetof(struct ledger_config, retention_interval_ms),
     .desc = "time between retention runs (100 ms while a backlog remains)"},
    {.name = "LST_LEDGER_NATIVE",
     .type = LST_CONFIG_BOOL,
     .def = "true",
     .offset = offsetof(struct ledger_config, native),
     .desc = "merge message records, delivery receipts, outbound records and accepted sends in "
             "the ledger (one Redis transaction per batch) instead of in the Lua script: the "
             "same projections for less of Redis's time"},
};

struct lst_config_section ledger_config_section(struct ledger_config *cfg)
{
    struct lst_config_section s = {"ledger", entries, LST_ARRAY_LEN(entries), cfg};
    return s;
}
