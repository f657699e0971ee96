/* Small helpers every module needs: a growable byte buffer, checked number parsing, clocks,
 * UTF-8 validation and JSON string escaping. */
#ifndef LST_UTIL_H
#define LST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lst/error.h"

#if defined(__GNUC__)
#define LST_PRINTF(fmt_idx, first_arg) __attribute__((format(printf, fmt_idx, first_arg)))
#else
#define LST_PRINTF(fmt_idx, first_arg)
#endif

#define LST_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A growable buffer, always NUL-terminated after its len bytes. Embed it and pair
 * lst_buf_init with lst_buf_cleanup. On allocation failure the buffer keeps its old
 * content and the append returns LST_ERR_NOMEM; lst_buf_failed tells whether any append
 * failed, so a long sequence of appends can be checked once at the end. */
struct lst_buf {
    char *data;
    size_t len;
    size_t cap;
    bool oom;
};

void lst_buf_init(struct lst_buf *b);
void lst_buf_cleanup(struct lst_buf *b);
void lst_buf_reset(struct lst_buf *b);
lst_err lst_buf_append(struct lst_buf *b, const void *data, size_t len);
lst_err lst_buf_puts(struct lst_buf *b, const char *s);
lst_err lst_buf_printf(struct lst_buf *b, const char *fmt, ...) LST_PRINTF(2, 3);
/* Appends s as a JSON string literal, quotes included. Invalid UTF-8 bytes become U+FFFD. */
lst_err lst_buf_json_str(struct lst_buf *b, const char *s, size_t len);
/* Hands the data to the caller (free with free()); the buffer is empty afterwards. */
char *lst_buf_steal(struct lst_buf *b);
static inline bool lst_buf_failed(const struct lst_buf *b)
{
    return b->oom;
}

/* Parses all of s as a decimal integer within [min, max]. No leading/trailing junk, no
 * whitespace. LST_ERR_INVALID for junk, LST_ERR_RANGE when out of bounds. */
lst_err lst_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Parses all of s as a finite double within [min, max]. */
lst_err lst_parse_double(const char *s, double min, double max, double *out);
/* true/false, yes/no, on/off, 1/0 (case-insensitive). */
lst_err lst_parse_bool(const char *s, bool *out);

/* Milliseconds on the monotonic clock (for deadlines) and on the wall clock (for records). */
int64_t lst_mono_ms(void);
int64_t lst_wall_ms(void);
/* Sleeps up to ms, returning early when *stop becomes non-zero (stop may be NULL). */
void lst_sleep_ms(int64_t ms, const volatile int *stop);

/* True when s[0..len) is well-formed UTF-8 (no overlongs, surrogates or values > U+10FFFF). */
bool lst_utf8_valid(const char *s, size_t len);

/* strdup that reports failure through NULL like strdup; here so callers need no feature macro. */
char *lst_strdup(const char *s);

#endif
