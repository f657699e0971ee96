/* Parsing of proto/topics.tsv. The table is edited by hand, so every rejection names the line
 * and the reason; nothing is guessed (no default partition count, no unknown cleanup). */
#include "admin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lst/util.h"

#define MAX_FILE_BYTES (1024 * 1024)
#define MIN_COLUMNS    3

static void set_err(char *err, size_t err_len, const char *fmt, ...) LST_PRINTF(3, 4);

static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (err == NULL || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

bool lst_admin_topic_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > LST_ADMIN_TOPIC_NAME_MAX)
        return false;
    /* "." and ".." are reserved by Kafka (they would be directory names). */
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static bool cleanup_valid(const char *s)
{
    return strcmp(s, "delete") == 0 || strcmp(s, "compact") == 0 ||
           strcmp(s, "compact,delete") == 0 || strcmp(s, "delete,compact") == 0;
}

void lst_admin_topics_cleanup(struct lst_admin_topics *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].name);
        free(t->v[i].cleanup);
    }
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

/* Splits line (modified in place) at tabs into at most max columns; returns the count. */
static size_t split_tabs(char *line, char **cols, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        cols[n++] = p;
        char *tab = strchr(p, '\t');
        if (tab == NULL)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

/* Trims spaces around a column in place (tabs already split away). */
static char *trim(char *s)
{
    while (*s == ' ')
        s++;
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\r'))
        s[--len] = '\0';
    return s;
}

static bool is_blank_or_comment(const char *line)
{
    while (*line == ' ' || *line == '\t' || *line == '\r')
        line++;
    return *line == '\0' || *line == '#';
}

static bool has_topic(const struct lst_admin_topics *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i].name, name) == 0)
            return true;
    }
    return false;
}

/* Appends a row; takes ownership of name (also on failure). */
static lst_err append_topic(struct lst_admin_topics *t, char *name, int32_t partitions,
                            const char *cleanup)
{
    lst_err result = LST_OK;
    char *cleanup_copy = lst_strdup(cleanup);
    struct lst_admin_topic *v = realloc(t->v, (t->n + 1) * sizeof(*v));
    if (v != NULL)
        t->v = v;
    if (cleanup_copy == NULL || v == NULL) {
        result = LST_ERR_NOMEM;
        goto out;
    }
    t->v[t->n].name = name;
    name = NULL;
    t->v[t->n].partitions = partitions;
    t->v[t->n].cleanup = cleanup_copy;
    cleanup_copy = NULL;
    t->n++;
out:
    free(name);
    free(cleanup_copy);
    return result;
}

/* Validates the name column with the prefix applied; returns a new string (free()) or NULL
 * with err set. */
static char *full_name(const char *prefix, const char *name, size_t lineno,
                       const struct lst_admin_topics *seen, char *err, size_t err_len)
{
    struct lst_buf b;
    lst_buf_init(&b);
    lst_buf_puts(&b, prefix);
    lst_buf_puts(&b, name);
    if (lst_buf_failed(&b)) {
        set_err(err, err_len, "line %zu: out of memory", lineno);
        lst_buf_cleanup(&b);
        return NULL;
    }
    const char *full = b.data != NULL ? b.data : "";
    if (!lst_admin_topic_name_valid(full)) {
        set_err(err, err_len, "line %zu: '%s' is not a valid Kafka topic name", lineno, full);
        lst_buf_cleanup(&b);
        return NULL;
    }
    if (has_topic(seen, full)) {
        set_err(err, err_len, "line %zu: topic '%s' is listed twice", lineno, full);
        lst_buf_cleanup(&b);
        return NULL;
    }
    return lst_buf_steal(&b);
}

/* Validates one data line (already split) and appends it to out. */
static lst_err parse_row(char **cols, size_t ncols, const char *prefix, size_t lineno,
                         struct lst_admin_topics *out, char *err, size_t err_len)
{
    if (ncols < MIN_COLUMNS) {
        set_err(err, err_len, "line %zu: expected at least %d tab-separated columns, got %zu",
                lineno, MIN_COLUMNS, ncols);
        return LST_ERR_INVALID;
    }
    const char *parts = trim(cols[1]);
    const char *cleanup = trim(cols[2]);
    int64_t n = 0;
    lst_err e = lst_parse_i64(parts, 1, LST_ADMIN_PARTITIONS_MAX, &n);
    if (e != LST_OK) {
        set_err(err, err_len, "line %zu: partitions '%s' is not a number in [1, %d]", lineno, parts,
                LST_ADMIN_PARTITIONS_MAX);
        return e;
    }
    if (!cleanup_valid(cleanup)) {
        set_err(err, err_len, "line %zu: cleanup '%s' is not delete or compact", lineno, cleanup);
        return LST_ERR_INVALID;
    }
    char *name = full_name(prefix, trim(cols[0]), lineno, out, err, err_len);
    if (name == NULL)
        return LST_ERR_INVALID;
    e = append_topic(out, name, (int32_t)n, cleanup);
    if (e != LST_OK)
        set_err(err, err_len, "line %zu: out of memory", lineno);
    return e;
}

lst_err lst_admin_topics_parse(const char *text, const char *prefix, struct lst_admin_topics *out,
                               char *err, size_t err_len)
{
    lst_err result = LST_OK;
    out->v = NULL;
    out->n = 0;
    char *copy = lst_strdup(text);
    if (copy == NULL) {
        result = LST_ERR_NOMEM;
        goto out;
    }
    size_t lineno = 0;
    char *line = copy;
    while (line != NULL) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        lineno++;
        if (!is_blank_or_comment(line)) {
            char *cols[8];
            size_t ncols = split_tabs(line, cols, LST_ARRAY_LEN(cols));
            result =
                parse_row(cols, ncols, prefix != NULL ? prefix : "", lineno, out, err, err_len);
            if (result != LST_OK)
                goto out;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    if (out->n == 0) {
        set_err(err, err_len, "no topics in the table");
        result = LST_ERR_INVALID;
    }
out:
    if (result != LST_OK)
        lst_admin_topics_cleanup(out);
    free(copy);
    return result;
}

/* Reads a whole (small) file into a NUL-terminated buffer. */
static lst_err read_file(const char *path, struct lst_buf *into, char *err, size_t err_len)
{
    lst_err result = LST_OK;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        set_err(err, err_len, "cannot open %s: %s", path, strerror(errno));
        return LST_ERR_IO;
    }
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        lst_buf_append(into, chunk, got);
        if (into->len > MAX_FILE_BYTES) {
            set_err(err, err_len, "%s is larger than %d bytes", path, MAX_FILE_BYTES);
            result = LST_ERR_TOO_LARGE;
            goto out;
        }
    }
    if (ferror(f)) {
        set_err(err, err_len, "cannot read %s: %s", path, strerror(errno));
        result = LST_ERR_IO;
    } else if (lst_buf_failed(into)) {
        set_err(err, err_len, "out of memory reading %s", path);
        result = LST_ERR_NOMEM;
    }
out:
    fclose(f);
    return result;
}

lst_err lst_admin_topics_load(const char *path, const char *prefix, struct lst_admin_topics *out,
                              char *err, size_t err_len)
{
    struct lst_buf text;
    lst_buf_init(&text);
    out->v = NULL;
    out->n = 0;
    lst_err result = read_file(path, &text, err, err_len);
    if (result == LST_OK)
        result =
            lst_admin_topics_parse(text.data != NULL ? text.data : "", prefix, out, err, err_len);
    lst_buf_cleanup(&text);
    return result;
}
