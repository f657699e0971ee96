#include "lst/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_SECRETS    64
#define MIN_SECRET_LEN 4
#define REDACTED       "[redacted]"

struct logger {
    pthread_mutex_t lock;
    char service[64];
    volatile int level;
    int fd;
    char *secrets[MAX_SECRETS];
    size_t nsecrets;
};

static struct logger g_log = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .service = "leitstand",
    .level = LST_LOG_INFO,
    .fd = 2,
};

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void lst_log_init(const char *service, enum lst_log_level level)
{
    pthread_mutex_lock(&g_log.lock);
    snprintf(g_log.service, sizeof(g_log.service), "%s", service);
    g_log.level = (int)level;
    pthread_mutex_unlock(&g_log.lock);
}

void lst_log_set_fd(int fd)
{
    pthread_mutex_lock(&g_log.lock);
    g_log.fd = fd;
    pthread_mutex_unlock(&g_log.lock);
}

void lst_log_set_level(enum lst_log_level level)
{
    g_log.level = (int)level;
}

enum lst_log_level lst_log_get_level(void)
{
    return (enum lst_log_level)g_log.level;
}

bool lst_log_enabled(enum lst_log_level level)
{
    return (int)level >= g_log.level && level < LST_LOG_OFF;
}

const char *lst_log_level_name(enum lst_log_level level)
{
    if ((int)level < 0 || level > LST_LOG_OFF)
        return "unknown";
    return level_names[level];
}

lst_err lst_log_parse_level(const char *s, enum lst_log_level *out)
{
    if (s == NULL)
        return LST_ERR_INVALID;
    if (strcasecmp(s, "warning") == 0) {
        *out = LST_LOG_WARN;
        return LST_OK;
    }
    for (int i = 0; i <= LST_LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum lst_log_level)i;
            return LST_OK;
        }
    }
    return LST_ERR_INVALID;
}

lst_err lst_log_add_secret(const char *value)
{
    if (value == NULL || strlen(value) < MIN_SECRET_LEN)
        return LST_OK;
    lst_err err = LST_OK;
    pthread_mutex_lock(&g_log.lock);
    for (size_t i = 0; i < g_log.nsecrets; i++) {
        if (strcmp(g_log.secrets[i], value) == 0) {
            pthread_mutex_unlock(&g_log.lock); /* already guarded: registering is idempotent */
            return LST_OK;
        }
    }
    if (g_log.nsecrets == MAX_SECRETS) {
        err = LST_ERR_RANGE;
    } else {
        char *copy = lst_strdup(value);
        if (copy == NULL)
            err = LST_ERR_NOMEM;
        else
            g_log.secrets[g_log.nsecrets++] = copy;
    }
    pthread_mutex_unlock(&g_log.lock);
    return err;
}

void lst_log_clear_secrets(void)
{
    pthread_mutex_lock(&g_log.lock);
    for (size_t i = 0; i < g_log.nsecrets; i++)
        free(g_log.secrets[i]);
    g_log.nsecrets = 0;
    pthread_mutex_unlock(&g_log.lock);
}

/* Copies text into out with every registered secret replaced. The longest secret matching
 * at a position wins, so a secret that is a prefix of another cannot leave the rest of the
 * longer one in the line. Caller holds the lock. */
static void scrub(struct lst_buf *out, const char *text)
{
    const char *p = text;
    while (*p != '\0') {
        size_t hit = 0;
        for (size_t i = 0; i < g_log.nsecrets; i++) {
            size_t n = strlen(g_log.secrets[i]);
            if (n > hit && strncmp(p, g_log.secrets[i], n) == 0)
                hit = n;
        }
        if (hit > 0) {
            lst_buf_puts(out, REDACTED);
            p += hit;
        } else {
            lst_buf_append(out, p, 1);
            p++;
        }
    }
}

static void format_time(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

/* Caller holds the lock (for the secrets and the service name). */
static void format_locked(struct lst_buf *out, enum lst_log_level level, const char *event,
                          const char *msg)
{
    char ts[40];
    struct lst_buf clean;
    lst_buf_init(&clean);
    format_time(ts, sizeof(ts));
    lst_buf_printf(out, "{\"ts\":\"%s\",\"level\":\"%s\",\"service\":", ts,
                   lst_log_level_name(level));
    lst_buf_json_str(out, g_log.service, strlen(g_log.service));
    lst_buf_puts(out, ",\"event\":");
    lst_buf_json_str(out, event, strlen(event));
    scrub(&clean, msg);
    lst_buf_puts(out, ",\"msg\":");
    lst_buf_json_str(out, clean.data ? clean.data : "", clean.len);
    lst_buf_puts(out, "}\n");
    lst_buf_cleanup(&clean);
}

void lst_log_format(struct lst_buf *out, enum lst_log_level level, const char *event,
                    const char *msg)
{
    pthread_mutex_lock(&g_log.lock);
    format_locked(out, level, event, msg);
    pthread_mutex_unlock(&g_log.lock);
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0)
            return; /* nowhere left to report a failing log sink */
        p += n;
        len -= (size_t)n;
    }
}

void lst_log_write(enum lst_log_level level, const char *event, const char *fmt, ...)
{
    char small[512];
    char *msg = small;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(small)) {
        msg = malloc((size_t)n + 1);
        if (msg == NULL)
            return;
        va_start(ap, fmt);
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    struct lst_buf line;
    lst_buf_init(&line);
    pthread_mutex_lock(&g_log.lock);
    format_locked(&line, level, event, msg);
    if (!lst_buf_failed(&line))
        write_all(g_log.fd, line.data, line.len);
    pthread_mutex_unlock(&g_log.lock);
    lst_buf_cleanup(&line);
    if (msg != small)
        free(msg);
}
