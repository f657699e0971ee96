/* Table-driven configuration: loading and validation from the environment (with NAME_FILE
 * variants), cleanup, and the texts generated from the same tables (help, print-config,
 * Markdown reference, .env.example), plus the command-line helper for a service main. */
#include "lst/config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Values (and secret files) above this are rejected: nothing we configure is that large, and a
 * path pointing at a huge file by mistake must not be read into memory. */
#define MAX_VALUE_LEN (64 * 1024)
/* Longest NAME_FILE we build; names are table constants, so this is generous. */
#define MAX_NAME_LEN 128
/* How much of a bad value an error message quotes. */
#define MAX_QUOTED 64

/* ---- small helpers ---- */

static void *field_ptr(const struct lst_config_section *s, const struct lst_config_entry *e)
{
    return (char *)s->base + e->offset;
}

static bool is_sensitive(const struct lst_config_entry *e)
{
    return (e->flags & LST_CONFIG_SENSITIVE) != 0;
}

static bool is_required(const struct lst_config_entry *e)
{
    return (e->flags & LST_CONFIG_REQUIRED) != 0;
}

static bool int_bounded(const struct lst_config_entry *e)
{
    return e->min != 0 || e->max != 0;
}

static bool double_bounded(const struct lst_config_entry *e)
{
    return e->dmin != 0.0 || e->dmax != 0.0;
}

/* Frees a string that may hold a secret, wiping it first so it does not linger in freed heap
 * memory (core dumps, later allocations). */
static void free_wiped(char *s)
{
    if (s == NULL)
        return;
    sodium_memzero(s, strlen(s));
    free(s);
}

/* Appends v for a human: printable ASCII as is, anything else as \xNN, cut at max bytes. */
static void put_escaped(struct lst_buf *b, const char *v, size_t max)
{
    size_t n = strlen(v);
    size_t i;
    for (i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '"' || c == '\\')
            lst_buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c >= 0x7F)
            lst_buf_printf(b, "\\x%02x", c);
        else
            lst_buf_append(b, &v[i], 1);
    }
    if (i < n)
        lst_buf_puts(b, "...");
}

static void put_quoted(struct lst_buf *b, const char *v)
{
    lst_buf_puts(b, "\"");
    put_escaped(b, v, MAX_QUOTED);
    lst_buf_puts(b, "\"");
}

/* Shortest "%.*g" that reads back as the same double. */
static void put_double(struct lst_buf *b, double v)
{
    char tmp[64];
    /* Whole numbers as such ("30", not the shortest %g form "3e+01"). */
    if (v == floor(v) && fabs(v) < 1e15) {
        lst_buf_printf(b, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    lst_buf_puts(b, tmp);
}

static const char *type_name(enum lst_config_type t)
{
    switch (t) {
    case LST_CONFIG_STRING:
        return "string";
    case LST_CONFIG_INT:
        return "integer";
    case LST_CONFIG_MS:
        return "milliseconds";
    case LST_CONFIG_DOUBLE:
        return "number";
    case LST_CONFIG_BOOL:
        return "boolean";
    case LST_CONFIG_LOG_LEVEL:
        return "log level";
    }
    return "unknown";
}

/* ---- loading ---- */

/* Everything one entry's load needs; errors is never NULL here. */
struct load_ctx {
    const struct lst_config_source *src;
    struct lst_buf *errors;
    bool bad; /* at least one error line was appended */
};

static const char *lookup(const struct load_ctx *ctx, const char *name)
{
    if (ctx->src != NULL && ctx->src->getenv_fn != NULL)
        return ctx->src->getenv_fn(name, ctx->src->ud);
    return getenv(name);
}

static void add_error(struct load_ctx *ctx, const char *fmt, ...) LST_PRINTF(2, 3);

static void add_error(struct load_ctx *ctx, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    lst_buf_puts(ctx->errors, msg);
    lst_buf_puts(ctx->errors, "\n");
    ctx->bad = true;
}

/* Reads the whole file at path into *out (a new string), stripping trailing CR/LF. On failure
 * appends a precise error naming file_var and returns LST_ERR_CONFIG. */
static lst_err read_value_file(struct load_ctx *ctx, const char *file_var, const char *path,
                               char **out)
{
    lst_err result = LST_ERR_CONFIG;
    char *data = malloc(MAX_VALUE_LEN + 1);
    FILE *f = NULL;
    if (data == NULL) {
        result = LST_ERR_NOMEM;
        goto out;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        char why[128];
        if (strerror_r(errno, why, sizeof(why)) != 0)
            snprintf(why, sizeof(why), "error %d", errno);
        add_error(ctx, "%s: cannot read \"%s\": %s", file_var, path, why);
        goto out;
    }
    size_t n = fread(data, 1, MAX_VALUE_LEN + 1, f);
    if (ferror(f)) {
        add_error(ctx, "%s: cannot read \"%s\": read error", file_var, path);
        goto out;
    }
    if (n > MAX_VALUE_LEN) {
        add_error(ctx, "%s: \"%s\" is larger than %d bytes", file_var, path, MAX_VALUE_LEN);
        goto out;
    }
    if (memchr(data, '\0', n) != NULL) {
        add_error(ctx, "%s: \"%s\" contains a NUL byte", file_var, path);
        goto out;
    }
    while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
        n--;
    data[n] = '\0';
    *out = data;
    data = NULL;
    result = LST_OK;
out:
    if (f != NULL)
        fclose(f);
    if (data != NULL) {
        sodium_memzero(data, MAX_VALUE_LEN + 1);
        free(data);
    }
    return result;
}

/* The raw text of one entry: from NAME, from the file NAME_FILE names, or none. */
struct raw_value {
    char *text;                    /* owned; NULL when unset (an empty value counts as unset) */
    char label[MAX_NAME_LEN + 32]; /* how error messages name the source */
};

static lst_err fetch_raw(struct load_ctx *ctx, const struct lst_config_entry *e,
                         struct raw_value *rv)
{
    char file_var[MAX_NAME_LEN + 8];
    int len = snprintf(file_var, sizeof(file_var), "%s_FILE", e->name);
    if (len < 0 || (size_t)len >= sizeof(file_var)) {
        add_error(ctx, "%s: variable name too long", e->name);
        return LST_ERR_CONFIG;
    }
    const char *direct = lookup(ctx, e->name);
    const char *path = lookup(ctx, file_var);
    bool has_direct = direct != NULL && direct[0] != '\0';
    bool has_path = path != NULL && path[0] != '\0';
    rv->text = NULL;
    snprintf(rv->label, sizeof(rv->label), "%s", e->name);
    if (has_direct && has_path) {
        add_error(ctx, "%s and %s are both set; set only one", e->name, file_var);
        return LST_ERR_CONFIG;
    }
    if (has_direct) {
        rv->text = lst_strdup(direct);
        return rv->text != NULL ? LST_OK : LST_ERR_NOMEM;
    }
    if (!has_path)
        return LST_OK;
    snprintf(rv->label, sizeof(rv->label), "%s (from %s)", e->name, file_var);
    lst_err err = read_value_file(ctx, file_var, path, &rv->text);
    if (err == LST_OK && rv->text[0] == '\0') {
        free(rv->text);
        rv->text = NULL;
    }
    return err;
}

/* Appends "LABEL: "value" <what>" or, for a secret, "LABEL: value <what> (value hidden)". */
static void value_error(struct load_ctx *ctx, const struct lst_config_entry *e, const char *label,
                        const char *value, const char *what)
{
    struct lst_buf line;
    lst_buf_init(&line);
    if (is_sensitive(e)) {
        lst_buf_printf(&line, "value %s (value hidden)", what);
    } else {
        put_quoted(&line, value);
        lst_buf_printf(&line, " %s", what);
    }
    add_error(ctx, "%s: %s", label, line.data != NULL ? line.data : what);
    lst_buf_cleanup(&line);
}

static void range_error(struct load_ctx *ctx, const struct lst_config_entry *e, const char *label,
                        const char *value, const char *range)
{
    if (is_sensitive(e))
        add_error(ctx, "%s: value is out of range %s (value hidden)", label, range);
    else
        add_error(ctx, "%s: %s is out of range %s", label, value, range);
}

static lst_err store_int(struct load_ctx *ctx, const struct lst_config_entry *e, void *field,
                         const char *label, const char *value)
{
    int64_t min = int_bounded(e) ? e->min : INT64_MIN;
    int64_t max = int_bounded(e) ? e->max : INT64_MAX;
    int64_t v = 0;
    lst_err err = lst_parse_i64(value, min, max, &v);
    if (err == LST_ERR_INVALID) {
        value_error(ctx, e, label, value, "is not an integer");
        return LST_ERR_CONFIG;
    }
    if (err == LST_ERR_RANGE) {
        char range[64];
        snprintf(range, sizeof(range), "[%" PRId64 ", %" PRId64 "]", min, max);
        /* Only the digits of an over-long number are worth showing. */
        char shown[MAX_QUOTED + 4];
        snprintf(shown, sizeof(shown), "%.*s%s", MAX_QUOTED, value,
                 strlen(value) > MAX_QUOTED ? "..." : "");
        range_error(ctx, e, label, shown, range);
        return LST_ERR_CONFIG;
    }
    *(int64_t *)field = v;
    return LST_OK;
}

static lst_err store_double(struct load_ctx *ctx, const struct lst_config_entry *e, void *field,
                            const char *label, const char *value)
{
    double min = double_bounded(e) ? e->dmin : -HUGE_VAL;
    double max = double_bounded(e) ? e->dmax : HUGE_VAL;
    double v = 0;
    lst_err err = lst_parse_double(value, min, max, &v);
    if (err == LST_ERR_INVALID || (err == LST_ERR_RANGE && !double_bounded(e))) {
        value_error(ctx, e, label, value, "is not a number");
        return LST_ERR_CONFIG;
    }
    if (err == LST_ERR_RANGE) {
        struct lst_buf range;
        lst_buf_init(&range);
        lst_buf_puts(&range, "[");
        put_double(&range, min);
        lst_buf_puts(&range, ", ");
        put_double(&range, max);
        lst_buf_puts(&range, "]");
        range_error(ctx, e, label, value, range.data != NULL ? range.data : "");
        lst_buf_cleanup(&range);
        return LST_ERR_CONFIG;
    }
    *(double *)field = v;
    return LST_OK;
}

static lst_err store_string(struct load_ctx *ctx, const struct lst_config_entry *e, void *field,
                            const char *label, const char *value)
{
    size_t len = strlen(value);
    size_t max = e->max_len != 0 ? e->max_len : MAX_VALUE_LEN;
    if (len > max) {
        add_error(ctx, "%s: value is %zu bytes long, at most %zu allowed", label, len, max);
        return LST_ERR_CONFIG;
    }
    char *copy = lst_strdup(value);
    if (copy == NULL)
        return LST_ERR_NOMEM;
    char **slot = field;
    free_wiped(*slot);
    *slot = copy;
    return LST_OK;
}

/* Parses value per the entry's type into its field; appends an error when it does not fit. */
static lst_err store_value(struct load_ctx *ctx, const struct lst_config_entry *e, void *field,
                           const char *label, const char *value)
{
    lst_err err = LST_OK;
    bool b = false;
    enum lst_log_level level = LST_LOG_INFO;
    switch (e->type) {
    case LST_CONFIG_STRING:
        err = store_string(ctx, e, field, label, value);
        break;
    case LST_CONFIG_INT:
    case LST_CONFIG_MS:
        err = store_int(ctx, e, field, label, value);
        break;
    case LST_CONFIG_DOUBLE:
        err = store_double(ctx, e, field, label, value);
        break;
    case LST_CONFIG_BOOL:
        if (lst_parse_bool(value, &b) == LST_OK) {
            *(bool *)field = b;
        } else {
            value_error(ctx, e, label, value,
                        "is not a boolean (use true/false, yes/no, on/off, 1/0)");
            err = LST_ERR_CONFIG;
        }
        break;
    case LST_CONFIG_LOG_LEVEL:
        if (lst_log_parse_level(value, &level) == LST_OK) {
            *(enum lst_log_level *)field = level;
        } else {
            value_error(ctx, e, label, value,
                        "is not a log level (use debug, info, warn, error, off)");
            err = LST_ERR_CONFIG;
        }
        break;
    }
    return err;
}

/* Catches mistakes in a table (a programming error, reported like a bad value so that the
 * first test run of a service shows it). */
static const char *table_error(const struct lst_config_entry *e)
{
    if (is_required(e) && e->def != NULL)
        return "a required entry cannot have a default";
    if (e->min > e->max)
        return "min is above max";
    if (e->dmin > e->dmax)
        return "dmin is above dmax";
    if (is_sensitive(e) && e->type == LST_CONFIG_LOG_LEVEL)
        return "a log level cannot be sensitive";
    return NULL;
}

static lst_err load_entry(struct load_ctx *ctx, const struct lst_config_section *s,
                          const struct lst_config_entry *e)
{
    const char *table_why = table_error(e);
    if (table_why != NULL) {
        add_error(ctx, "%s: bad configuration table entry: %s", e->name, table_why);
        return LST_ERR_CONFIG;
    }
    struct raw_value rv;
    lst_err result = fetch_raw(ctx, e, &rv);
    if (result != LST_OK)
        goto out;
    const char *value = rv.text;
    if (value == NULL && is_required(e)) {
        add_error(ctx, "%s is required (set %s or %s_FILE)", e->name, e->name, e->name);
        result = LST_ERR_CONFIG;
        goto out;
    }
    if (value == NULL && e->def == NULL)
        goto out; /* optional and unset: the field keeps its zero value */
    if (value == NULL) {
        value = e->def;
        snprintf(rv.label, sizeof(rv.label), "%s (default)", e->name);
    }
    result = store_value(ctx, e, field_ptr(s, e), rv.label, value);
    if (result != LST_OK)
        goto out;
    const char *why = (e->check != NULL && value[0] != '\0') ? e->check(value) : NULL;
    if (why != NULL) {
        value_error(ctx, e, rv.label, value, why);
        result = LST_ERR_CONFIG;
        goto out;
    }
    if (is_sensitive(e) && lst_log_add_secret(value) != LST_OK) {
        add_error(ctx, "%s: cannot register the value with the log secret guard", e->name);
        result = LST_ERR_CONFIG;
    }
out:
    free_wiped(rv.text);
    return result;
}

lst_err lst_config_load(const struct lst_config_section *sections, size_t n,
                        const struct lst_config_source *src, struct lst_buf *errors)
{
    struct lst_buf scratch;
    lst_buf_init(&scratch);
    struct load_ctx ctx = {.src = src, .errors = errors != NULL ? errors : &scratch};
    lst_err result = LST_OK;
    for (size_t i = 0; i < n && result != LST_ERR_NOMEM; i++) {
        for (size_t j = 0; j < sections[i].n; j++) {
            lst_err err = load_entry(&ctx, &sections[i], &sections[i].entries[j]);
            if (err == LST_ERR_NOMEM) {
                result = LST_ERR_NOMEM;
                break;
            }
        }
    }
    if (result == LST_OK && lst_buf_failed(ctx.errors))
        result = LST_ERR_NOMEM;
    if (result == LST_OK && ctx.bad)
        result = LST_ERR_CONFIG;
    lst_buf_cleanup(&scratch);
    return result;
}

void lst_config_cleanup(const struct lst_config_section *sections, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (sections[i].base == NULL)
            continue;
        for (size_t j = 0; j < sections[i].n; j++) {
            const struct lst_config_entry *e = &sections[i].entries[j];
            if (e->type != LST_CONFIG_STRING)
                continue;
            char **slot = field_ptr(&sections[i], e);
            free_wiped(*slot);
            *slot = NULL;
        }
    }
}

/* ---- generated texts ---- */

/* "integer, default 16379, range [1, 65535], required, sensitive" */
static void describe(struct lst_buf *b, const struct lst_config_entry *e)
{
    lst_buf_puts(b, type_name(e->type));
    if (e->def != NULL && e->type == LST_CONFIG_STRING) {
        lst_buf_puts(b, ", default ");
        put_quoted(b, e->def);
    } else if (e->def != NULL) {
        lst_buf_printf(b, ", default %s", e->def);
    }
    if ((e->type == LST_CONFIG_INT || e->type == LST_CONFIG_MS) && int_bounded(e))
        lst_buf_printf(b, ", range [%" PRId64 ", %" PRId64 "]", e->min, e->max);
    if (e->type == LST_CONFIG_DOUBLE && double_bounded(e)) {
        lst_buf_puts(b, ", range [");
        put_double(b, e->dmin);
        lst_buf_puts(b, ", ");
        put_double(b, e->dmax);
        lst_buf_puts(b, "]");
    }
    if (e->type == LST_CONFIG_STRING && e->max_len != 0)
        lst_buf_printf(b, ", at most %zu bytes", e->max_len);
    if (is_required(e))
        lst_buf_puts(b, ", required");
    else if (e->def == NULL)
        lst_buf_puts(b, ", optional");
    if (is_sensitive(e))
        lst_buf_puts(b, ", sensitive");
}

static lst_err finish(const struct lst_buf *out)
{
    return lst_buf_failed(out) ? LST_ERR_NOMEM : LST_OK;
}

lst_err lst_config_help(const struct lst_config_section *sections, size_t n, const char *program,
                        const char *summary, struct lst_buf *out)
{
    lst_buf_printf(out,
                   "Usage: %s [--help] [--version] [--print-config] [--config-markdown] "
                   "[--env-example]\n\n%s\n\n",
                   program != NULL ? program : "service", summary != NULL ? summary : "");
    lst_buf_puts(out, "Options:\n"
                      "  -h, --help         this text\n"
                      "  --version          the version\n"
                      "  --print-config     the effective configuration (secrets hidden)\n"
                      "  --config-markdown  the configuration reference as Markdown\n"
                      "  --env-example      a .env example with every variable\n\n"
                      "Configuration comes from environment variables. Any variable NAME can\n"
                      "instead be given as NAME_FILE, the path of a file holding the value\n"
                      "(trailing newlines are stripped); setting both is an error. An empty\n"
                      "value counts as unset.\n");
    for (size_t i = 0; i < n; i++) {
        lst_buf_printf(out, "\n%s:\n", sections[i].title);
        for (size_t j = 0; j < sections[i].n; j++) {
            const struct lst_config_entry *e = &sections[i].entries[j];
            lst_buf_printf(out, "  %s\n      ", e->name);
            describe(out, e);
            lst_buf_printf(out, "\n      %s\n", e->desc != NULL ? e->desc : "");
        }
    }
    return finish(out);
}

static void print_value(struct lst_buf *out, const struct lst_config_section *s,
                        const struct lst_config_entry *e)
{
    const void *field = field_ptr(s, e);
    if (e->type == LST_CONFIG_STRING) {
        const char *v = *(char *const *)field;
        if (v == NULL)
            lst_buf_puts(out, "(not set)");
        else if (is_sensitive(e))
            lst_buf_puts(out, "(set, hidden)");
        else
            put_escaped(out, v, MAX_VALUE_LEN);
        return;
    }
    if (is_sensitive(e)) {
        lst_buf_puts(out, "(hidden)"); /* a number cannot tell whether it was set */
        return;
    }
    switch (e->type) {
    case LST_CONFIG_INT:
    case LST_CONFIG_MS:
        lst_buf_printf(out, "%" PRId64, *(const int64_t *)field);
        break;
    case LST_CONFIG_DOUBLE:
        put_double(out, *(const double *)field);
        break;
    case LST_CONFIG_BOOL:
        lst_buf_puts(out, *(const bool *)field ? "true" : "false");
        break;
    case LST_CONFIG_LOG_LEVEL:
        lst_buf_puts(out, lst_log_level_name(*(const enum lst_log_level *)field));
        break;
    case LST_CONFIG_STRING:
        break;
    }
}

lst_err lst_config_print(const struct lst_config_section *sections, size_t n, struct lst_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        lst_buf_printf(out, "%s# %s\n", i > 0 ? "\n" : "", sections[i].title);
        for (size_t j = 0; j < sections[i].n; j++) {
            const struct lst_config_entry *e = &sections[i].entries[j];
            lst_buf_printf(out, "%s=", e->name);
            print_value(out, &sections[i], e);
            lst_buf_puts(out, "\n");
        }
    }
    return finish(out);
}

/* Markdown table cells: a '|' would end the cell, a newline the row. */
static void put_md(struct lst_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            lst_buf_puts(b, "\\|");
        else if (*s == '\n' || *s == '\r')
            lst_buf_puts(b, " ");
        else
            lst_buf_append(b, s, 1);
    }
}

static void md_row(struct lst_buf *out, const struct lst_config_entry *e)
{
    lst_buf_printf(out, "| `%s` | %s | ", e->name, type_name(e->type));
    if (e->def == NULL) {
        lst_buf_puts(out, "(none)");
    } else {
        lst_buf_puts(out, "`");
        put_md(out, e->def[0] != '\0' ? e->def : "\"\"");
        lst_buf_puts(out, "`");
    }
    lst_buf_puts(out, " | ");
    if ((e->type == LST_CONFIG_INT || e->type == LST_CONFIG_MS) && int_bounded(e))
        lst_buf_printf(out, "%" PRId64 " to %" PRId64, e->min, e->max);
    else if (e->type == LST_CONFIG_DOUBLE && double_bounded(e)) {
        put_double(out, e->dmin);
        lst_buf_puts(out, " to ");
        put_double(out, e->dmax);
    } else if (e->type == LST_CONFIG_STRING && e->max_len != 0)
        lst_buf_printf(out, "at most %zu bytes", e->max_len);
    lst_buf_puts(out, " | ");
    lst_buf_puts(out, is_required(e) ? "required" : "optional");
    if (is_sensitive(e))
        lst_buf_puts(out, ", sensitive");
    lst_buf_puts(out, " | ");
    put_md(out, e->desc != NULL ? e->desc : "");
    lst_buf_puts(out, " |\n");
}

lst_err lst_config_markdown(const struct lst_config_section *sections, size_t n,
                            struct lst_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        lst_buf_printf(out, "%s### %s\n\n", i > 0 ? "\n" : "", sections[i].title);
        lst_buf_puts(out, "| Variable | Type | Default | Allowed | Flags | Description |\n"
                          "|---|---|---|---|---|---|\n");
        for (size_t j = 0; j < sections[i].n; j++)
            md_row(out, &sections[i].entries[j]);
    }
    return finish(out);
}

lst_err lst_config_env_example(const struct lst_config_section *sections, size_t n,
                               struct lst_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        lst_buf_printf(out, "%s# ---- %s ----\n", i > 0 ? "\n" : "", sections[i].title);
        for (size_t j = 0; j < sections[i].n; j++) {
            const struct lst_config_entry *e = &sections[i].entries[j];
            lst_buf_printf(out, "# %s (", e->desc != NULL ? e->desc : "");
            describe(out, e);
            if (is_sensitive(e))
                lst_buf_printf(out, "; or %s_FILE", e->name);
            lst_buf_puts(out, ")\n");
            if (is_required(e))
                lst_buf_printf(out, "%s=\n", e->name);
            else
                lst_buf_printf(out, "#%s=%s\n", e->name, e->def != NULL ? e->def : "");
        }
    }
    return finish(out);
}

/* ---- command line ---- */

enum cli_action { ACT_RUN, ACT_HELP, ACT_VERSION, ACT_PRINT, ACT_MARKDOWN, ACT_ENV };

static bool parse_action(const char *arg, enum cli_action *act)
{
    static const struct {
        const char *flag;
        enum cli_action act;
    } flags[] = {
        {"--help", ACT_HELP},
        {"-h", ACT_HELP},
        {"--version", ACT_VERSION},
        {"--print-config", ACT_PRINT},
        {"--config-markdown", ACT_MARKDOWN},
        {"--env-example", ACT_ENV},
    };
    for (size_t i = 0; i < LST_ARRAY_LEN(flags); i++) {
        if (strcmp(arg, flags[i].flag) == 0) {
            *act = flags[i].act;
            return true;
        }
    }
    return false;
}

static int emit(FILE *f, const struct lst_buf *b, lst_err err)
{
    if (err != LST_OK)
        return 1;
    if (b->len > 0 && fwrite(b->data, 1, b->len, f) != b->len)
        return 1;
    return fflush(f) == 0 ? 0 : 1;
}

/* Loads the configuration; on failure prints every error to err and returns false. */
static bool load_or_report(const struct lst_config_program *prog,
                           const struct lst_config_section *sections, size_t n,
                           const struct lst_config_source *src, FILE *err)
{
    struct lst_buf errors;
    lst_buf_init(&errors);
    lst_err rc = lst_config_load(sections, n, src, &errors);
    if (rc != LST_OK) {
        fprintf(err, "%s: invalid configuration:\n", prog->name);
        const char *p = errors.data != NULL ? errors.data : "";
        while (*p != '\0') {
            size_t len = strcspn(p, "\n");
            fprintf(err, "  %.*s\n", (int)len, p);
            p += len + (p[len] == '\n' ? 1 : 0);
        }
        if (rc == LST_ERR_NOMEM)
            fprintf(err, "  (out of memory while loading)\n");
        fprintf(err, "Run %s --help for the list of variables.\n", prog->name);
    }
    lst_buf_cleanup(&errors);
    return rc == LST_OK;
}

bool lst_config_main_ex(int argc, char **argv, const struct lst_config_program *prog,
                        const struct lst_config_section *sections, size_t n,
                        const struct lst_config_source *src, FILE *out, FILE *err, int *exit_code)
{
    enum cli_action act = ACT_RUN;
    for (int i = 1; i < argc; i++) {
        enum cli_action a = ACT_RUN;
        if (!parse_action(argv[i], &a)) {
            fprintf(err, "%s: unknown argument \"%s\" (try --help)\n", prog->name, argv[i]);
            *exit_code = 2;
            return false;
        }
        if (act == ACT_RUN)
            act = a;
    }
    struct lst_buf b;
    lst_buf_init(&b);
    bool run = false;
    *exit_code = 0;
    switch (act) {
    case ACT_RUN:
        run = load_or_report(prog, sections, n, src, err);
        *exit_code = run ? 0 : 2;
        break;
    case ACT_HELP:
        *exit_code = emit(out, &b, lst_config_help(sections, n, prog->name, prog->summary, &b));
        break;
    case ACT_VERSION:
        fprintf(out, "%s %s\n", prog->name, prog->version != NULL ? prog->version : LST_VERSION);
        break;
    case ACT_PRINT:
        if (load_or_report(prog, sections, n, src, err))
            *exit_code = emit(out, &b, lst_config_print(sections, n, &b));
        else
            *exit_code = 2;
        break;
    case ACT_MARKDOWN:
        *exit_code = emit(out, &b, lst_config_markdown(sections, n, &b));
        break;
    case ACT_ENV:
        *exit_code = emit(out, &b, lst_config_env_example(sections, n, &b));
        break;
    }
    lst_buf_cleanup(&b);
    return run;
}

bool lst_config_main(int argc, char **argv, const struct lst_config_program *prog,
                     const struct lst_config_section *sections, size_t n, int *exit_code)
{
    return lst_config_main_ex(argc, argv, prog, sections, n, NULL, stdout, stderr, exit_code);
}
