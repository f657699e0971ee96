/* The settings every service shares, and the topic-name helper that applies the prefix. */
#include "lst/config.h"

#include <stdio.h>
#include <string.h>

#define KIB 1024
#define MIB (1024 * 1024)

#define COMMON(field) offsetof(struct lst_common_config, field)

const struct lst_config_entry lst_common_config_entries[] = {
    {.name = "LST_LOG_LEVEL",
     .type = LST_CONFIG_LOG_LEVEL,
     .def = "info",
     .offset = COMMON(log_level),
     .desc = "Minimum level of log lines: debug, info, warn, error or off."},
    {.name = "LST_KAFKA_BROKERS",
     .type = LST_CONFIG_STRING,
     .def = "127.0.0.1:19092",
     .max_len = 1024,
     .offset = COMMON(kafka_brokers),
     .desc = "Kafka bootstrap servers, host:port[,host:port...]."},
    {.name = "LST_TOPIC_PREFIX",
     .type = LST_CONFIG_STRING,
     .def = "",
     .max_len = 100,
     .offset = COMMON(topic_prefix),
     .desc = "Prepended to every Kafka topic name (isolates test runs and environments).",
     .check = lst_config_check_topic_chars},
    {.name = "LST_KAFKA_SESSION_TIMEOUT_MS",
     .type = LST_CONFIG_MS,
     .def = "10000",
     .min = 6000,
     .max = 300000,
     .offset = COMMON(kafka_session_timeout_ms),
     .desc = "Consumer session timeout: how long a dead consumer keeps its partitions."},
    {.name = "LST_KAFKA_MESSAGE_TIMEOUT_MS",
     .type = LST_CONFIG_MS,
     .def = "30000",
     .min = 1000,
     .max = 300000,
     .offset = COMMON(kafka_message_timeout_ms),
     .desc = "Producer delivery timeout: after it a produce fails with a delivery report."},
    {.name = "LST_REDIS_HOST",
     .type = LST_CONFIG_STRING,
     .def = "127.0.0.1",
     .max_len = 255,
     .offset = COMMON(redis_host),
     .desc = "Redis host name or address."},
    {.name = "LST_REDIS_PORT",
     .type = LST_CONFIG_INT,
     .def = "16379",
     .min = 1,
     .max = 65535,
     .offset = COMMON(redis_port),
     .desc = "Redis TCP port."},
    {.name = "LST_REDIS_DB",
     .type = LST_CONFIG_INT,
     .def = "0",
     .min = 0,
     .max = 15,
     .offset = COMMON(redis_db),
     .desc = "Redis logical database number."},
    {.name = "LST_REDIS_PASSWORD",
     .type = LST_CONFIG_STRING,
     .max_len = 512,
     .flags = LST_CONFIG_SENSITIVE,
     .offset = COMMON(redis_password),
     .desc = "Redis password (AUTH); unset when Redis has none."},
    {.name = "LST_REDIS_TIMEOUT_MS",
     .type = LST_CONFIG_MS,
     .def = "2000",
     .min = 10,
     .max = 60000,
     .offset = COMMON(redis_timeout_ms),
     .desc = "Timeout of Redis connects and commands."},
    {.name = "LST_HTTP_ADDR",
     .type = LST_CONFIG_STRING,
     .def = "127.0.0.1",
     .max_len = 255,
     .offset = COMMON(http_addr),
     .desc = "Address the HTTP server (health, metrics, API) listens on."},
    {.name = "LST_HTTP_MAX_BODY",
     .type = LST_CONFIG_INT,
     .def = "1048576",
     .min = KIB,
     .max = 64 * MIB,
     .offset = COMMON(http_max_body),
     .desc = "Largest accepted HTTP request body in bytes; larger requests get 413."},
    {.name = "LST_SHUTDOWN_TIMEOUT_MS",
     .type = LST_CONFIG_MS,
     .def = "10000",
     .min = 100,
     .max = 600000,
     .offset = COMMON(shutdown_timeout_ms),
     .desc = "How long a stopping service may finish in-flight work and flush Kafka."},
};

const size_t lst_common_config_nentries = LST_ARRAY_LEN(lst_common_config_entries);

struct lst_config_section lst_common_config_section(struct lst_common_config *c)
{
    struct lst_config_section s = {
        .title = "Common",
        .entries = lst_common_config_entries,
        .n = LST_ARRAY_LEN(lst_common_config_entries),
        .base = c,
    };
    return s;
}

lst_err lst_config_topic(const struct lst_common_config *c, const char *base, char *out, size_t cap)
{
    const char *prefix = (c != NULL && c->topic_prefix != NULL) ? c->topic_prefix : "";
    size_t np = strlen(prefix);
    size_t nb = strlen(base);
    if (cap == 0)
        return LST_ERR_TOO_LARGE;
    if (np + nb >= cap) {
        out[0] = '\0';
        return LST_ERR_TOO_LARGE;
    }
    memcpy(out, prefix, np);
    memcpy(out + np, base, nb + 1);
    return LST_OK;
}

const char *lst_config_check_topic_chars(const char *value)
{
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789._-";
    if (strspn(value, allowed) != strlen(value))
        return "must contain only [a-zA-Z0-9._-] (Kafka topic name characters)";
    return NULL;
}
