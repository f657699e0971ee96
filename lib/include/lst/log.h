/* Logging: one JSON object per line on stderr, with a level, a stable event name (dotted,
 * e.g. "kafka.producer.fatal") and a printf-style message.
 *
 * The logger is process-wide rather than part of a service context because librdkafka,
 * libmicrohttpd and libcurl call back from their own threads without our context; it is
 * thread-safe. The secret guard: every value registered with lst_log_add_secret (the config
 * loader registers all sensitive settings) is replaced by "[redacted]" in every line before it
 * is written, whatever code path formatted it. Message texts and phone numbers must still
 * never be passed to the logger: the guard is a last line of defence, not a licence. */
#ifndef LST_LOG_H
#define LST_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "lst/error.h"
#include "lst/util.h"

enum lst_log_level {
    LST_LOG_DEBUG = 0,
    LST_LOG_INFO = 1,
    LST_LOG_WARN = 2,
    LST_LOG_ERROR = 3,
    LST_LOG_OFF = 4,
};

/* Sets the service name printed in every line (copied) and the minimum level. */
void lst_log_init(const char *service, enum lst_log_level level);
/* Redirects output (default 2, stderr); tests use a pipe. */
void lst_log_set_fd(int fd);
void lst_log_set_level(enum lst_log_level level);
enum lst_log_level lst_log_get_level(void);
/* "debug", "info", "warn"/"warning", "error", "off"; LST_ERR_INVALID otherwise. */
lst_err lst_log_parse_level(const char *s, enum lst_log_level *out);
const char *lst_log_level_name(enum lst_log_level level);

/* Registers a secret value (copied) that must never appear in a log line. Values shorter
 * than 4 bytes are ignored (they would redact ordinary words); at most 64 secrets. */
lst_err lst_log_add_secret(const char *value);
/* Forgets all registered secrets (tests, and after a secret rotation). */
void lst_log_clear_secrets(void);

bool lst_log_enabled(enum lst_log_level level);
void lst_log_write(enum lst_log_level level, const char *event, const char *fmt, ...)
    LST_PRINTF(3, 4);

/* Formats one line into out without writing it (tests and the /metrics-free log checks). */
void lst_log_format(struct lst_buf *out, enum lst_log_level level, const char *event,
                    const char *msg);

/* The level is checked before the arguments are evaluated. */
#define LST_LOG(level, event, ...)                                                                 \
    do {                                                                                           \
        if (lst_log_enabled(level))                                                                \
            lst_log_write(level, event, __VA_ARGS__);                                              \
    } while (0)
#define LST_DEBUG(event, ...) LST_LOG(LST_LOG_DEBUG, event, __VA_ARGS__)
#define LST_INFO(event, ...)  LST_LOG(LST_LOG_INFO, event, __VA_ARGS__)
#define LST_WARN(event, ...)  LST_LOG(LST_LOG_WARN, event, __VA_ARGS__)
#define LST_ERROR(event, ...) LST_LOG(LST_LOG_ERROR, event, __VA_ARGS__)

#endif
