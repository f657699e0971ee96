#include "lst/util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void lst_buf_init(struct lst_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->oom = false;
}

void lst_buf_cleanup(struct lst_buf *b)
{
    free(b->data);
    lst_buf_init(b);
}

void lst_buf_reset(struct lst_buf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->data)
        b->data[0] = '\0';
}

static lst_err reserve(struct lst_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1) {
        b->oom = true;
        return LST_ERR_NOMEM;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return LST_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->oom = true;
        return LST_ERR_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return LST_OK;
}

lst_err lst_buf_append(struct lst_buf *b, const void *data, size_t len)
{
    lst_err err = reserve(b, len);
    if (err != LST_OK)
        return err;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return LST_OK;
}

lst_err lst_buf_puts(struct lst_buf *b, const char *s)
{
    return lst_buf_append(b, s, strlen(s));
}

lst_err lst_buf_printf(struct lst_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return LST_ERR_INVALID;
    lst_err err = reserve(b, (size_t)n);
    if (err != LST_OK)
        return err;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return LST_OK;
}

/* Length of the valid UTF-8 sequence starting at s (at most len bytes), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (n > len)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

bool lst_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* Fast path over ASCII, eight bytes at a time: texts are mostly ASCII and this check
         * runs on every message sealed or decoded. */
        uint64_t w;
        if (i + sizeof(w) <= len) {
            memcpy(&w, p + i, sizeof(w));
            if ((w & UINT64_C(0x8080808080808080)) == 0) {
                i += sizeof(w);
                continue;
            }
        }
        size_t n = p[i] < 0x80 ? 1 : utf8_seq_len(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

lst_err lst_buf_json_str(struct lst_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    lst_buf_append(b, "\"", 1);
    size_t i = 0;
    while (i < len) {
        /* a run of printable ASCII in one append: one call per character was most of the
         * view API's item JSON cost */
        size_t run = i;
        while (run < len && p[run] >= 0x20 && p[run] < 0x7F && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            lst_buf_append(b, &p[i], run - i);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            lst_buf_append(b, esc, 2);
        } else if (c == '\n') {
            lst_buf_append(b, "\\n", 2);
        } else if (c == '\r') {
            lst_buf_append(b, "\\r", 2);
        } else if (c == '\t') {
            lst_buf_append(b, "\\t", 2);
        } else if (c < 0x20 || c == 0x7F) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            lst_buf_append(b, esc, 6);
        } else {
            size_t n = utf8_seq_len(p + i, len - i);
            if (n == 0) {
                lst_buf_append(b, "\xEF\xBF\xBD", 3);
                i++;
                continue;
            }
            lst_buf_append(b, &p[i], n);
            i += n;
            continue;
        }
        i++;
    }
    lst_buf_append(b, "\"", 1);
    return b->oom ? LST_ERR_NOMEM : LST_OK;
}

char *lst_buf_steal(struct lst_buf *b)
{
    char *p = b->data;
    if (p == NULL)
        p = calloc(1, 1);
    lst_buf_init(b);
    return p;
}

lst_err lst_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return LST_ERR_INVALID;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0')
        return LST_ERR_INVALID;
    if (errno == ERANGE || v < min || v > max)
        return LST_ERR_RANGE;
    *out = (int64_t)v;
    return LST_OK;
}

lst_err lst_parse_double(const char *s, double min, double max, double *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return LST_ERR_INVALID;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (*end != '\0' || !isfinite(v))
        return LST_ERR_INVALID;
    if (errno == ERANGE || v < min || v > max)
        return LST_ERR_RANGE;
    *out = v;
    return LST_OK;
}

lst_err lst_parse_bool(const char *s, bool *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    if (s == NULL)
        return LST_ERR_INVALID;
    for (size_t i = 0; i < LST_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return LST_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return LST_OK;
        }
    }
    return LST_ERR_INVALID;
}

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lst_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t lst_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

void lst_sleep_ms(int64_t ms, const volatile int *stop)
{
    int64_t deadline = lst_mono_ms() + ms;
    for (;;) {
        if (stop != NULL && *stop)
            return;
        int64_t left = deadline - lst_mono_ms();
        if (left <= 0)
            return;
        int64_t step = left < 50 ? left : 50;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)step * 1000000L};
        nanosleep(&ts, NULL);
    }
}

char *lst_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}
