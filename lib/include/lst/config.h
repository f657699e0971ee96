/* Configuration from the environment, driven by one table per concern.
 *
 * A service describes each setting once, in a table of struct lst_config_entry: the full
 * environment name, the type, the default, bounds, flags and a one-line description, plus
 * the offset of the field in the service's config struct. The same table
 *   - loads and validates the environment at start-up, collecting every error at once,
 *   - reads NAME_FILE instead of NAME when given (secrets from files, Docker secrets),
 *   - registers every sensitive value with the logger's secret guard and never prints it,
 *   - prints --help, --print-config, a Markdown reference and a .env.example fragment.
 *
 * Tables are grouped into sections (a title, the entries and the struct they fill), so a
 * service combines the library's COMMON section with its own:
 *
 *   struct svc_config { struct lst_common_config common; int64_t http_port; char *secret; };
 *   static const struct lst_config_entry svc_entries[] = {
 *       {.name = "LST_HTTP_PORT", .type = LST_CONFIG_INT, .def = "8080", .min = 1,
 *        .max = 65535, .offset = offsetof(struct svc_config, http_port),
 *        .desc = "TCP port of the HTTP server"},
 *       ...
 *   };
 *   struct lst_config_section sections[] = {
 *       lst_common_config_section(&cfg.common),
 *       {"gateway-out", svc_entries, LST_ARRAY_LEN(svc_entries), &cfg},
 *   };
 *   int code;
 *   if (!lst_config_main(argc, argv, &prog, sections, 2, &code))
 *       return code;   (help, version, print-config, or invalid configuration)
 *   ... run ...
 *   lst_config_cleanup(sections, 2);
 *
 * Field types by entry type: STRING -> char * (owned by the struct, NULL when unset and
 * without default), INT and MS -> int64_t, DOUBLE -> double, BOOL -> bool, LOG_LEVEL ->
 * enum lst_log_level.
 *
 * An empty value (NAME= or an empty file) counts as unset: Compose files pass empty strings
 * for variables the operator did not define, and those must fall back to the default. */
#ifndef LST_CONFIG_H
#define LST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lst/error.h"
#include "lst/log.h"
#include "lst/util.h"

#ifndef LST_VERSION
#define LST_VERSION "0.1.0"
#endif

enum lst_config_type {
    LST_CONFIG_STRING,    /* char *; bounded by max_len (0: no limit besides 64 KiB) */
    LST_CONFIG_INT,       /* int64_t within [min, max] */
    LST_CONFIG_MS,        /* int64_t milliseconds within [min, max] */
    LST_CONFIG_DOUBLE,    /* double within [dmin, dmax] */
    LST_CONFIG_BOOL,      /* bool: true/false, yes/no, on/off, 1/0 */
    LST_CONFIG_LOG_LEVEL, /* enum lst_log_level: debug, info, warn, error, off */
};

/* The variable must be set (it must then have no default). */
#define LST_CONFIG_REQUIRED 0x1u
/* Never printed; registered with lst_log_add_secret when loaded. */
#define LST_CONFIG_SENSITIVE 0x2u

struct lst_config_entry {
    const char *name; /* full environment name, e.g. "LST_REDIS_PORT" */
    enum lst_config_type type;
    const char *def; /* default in string form, parsed like a value; NULL = none */
    /* INT/MS bounds; both 0 means unbounded (the int64 range). */
    int64_t min, max;
    /* DOUBLE bounds; both 0 means any finite value. */
    double dmin, dmax;
    size_t max_len;   /* STRING: maximum length in bytes; 0 = no limit besides 64 KiB */
    unsigned flags;   /* LST_CONFIG_REQUIRED | LST_CONFIG_SENSITIVE */
    size_t offset;    /* offsetof(your struct, field) */
    const char *desc; /* one line, for --help and the docs */
    /* Optional extra check on the raw (non-empty) value after it parsed: returns NULL when
     * it is fine, else a static reason such as "must contain only [a-zA-Z0-9._-]". */
    const char *(*check)(const char *value);
};

/* One table and the struct it fills (base is the address offsets are relative to). */
struct lst_config_section {
    const char *title;
    const struct lst_config_entry *entries;
    size_t n;
    void *base;
};

/* Where values come from: getenv_fn(name, ud) returns the value or NULL when unset (the
 * string is borrowed until the load returns). A NULL source or NULL getenv_fn means the
 * process environment. Tests inject a table. */
struct lst_config_source {
    const char *(*getenv_fn)(const char *name, void *ud);
    void *ud;
};

/* Loads every entry of every section into its struct. Every struct must be zero-initialised
 * (or cleaned up) before. Collects all problems, one line each ("LST_REDIS_PORT: 70000 is out
 * of range [1, 65535]\n"), into errors (may be NULL) and returns LST_ERR_CONFIG when there is
 * any, LST_ERR_NOMEM on allocation failure. Sensitive values are never quoted in errors.
 * Whatever the result, lst_config_cleanup frees what was loaded. */
lst_err lst_config_load(const struct lst_config_section *sections, size_t n,
                        const struct lst_config_source *src, struct lst_buf *errors);

/* Frees every string loaded into the sections' structs and sets the pointers to NULL. */
void lst_config_cleanup(const struct lst_config_section *sections, size_t n);

/* --help text: usage, summary, then every variable with type, default, bounds, flags and
 * description. */
lst_err lst_config_help(const struct lst_config_section *sections, size_t n, const char *program,
                        const char *summary, struct lst_buf *out);
/* Effective values as NAME=value lines under "# title" headers; sensitive values appear as
 * "(set, hidden)", unset ones as "(not set)". Call after a successful load. */
lst_err lst_config_print(const struct lst_config_section *sections, size_t n, struct lst_buf *out);
/* A Markdown reference: one "### title" heading and table per section. */
lst_err lst_config_markdown(const struct lst_config_section *sections, size_t n,
                            struct lst_buf *out);
/* A .env.example fragment: each variable with its description as comment; optional ones
 * commented out with their default, required ones as NAME= to be filled in. */
lst_err lst_config_env_example(const struct lst_config_section *sections, size_t n,
                               struct lst_buf *out);

struct lst_config_program {
    const char *name;    /* e.g. "gateway-out" */
    const char *version; /* NULL: LST_VERSION */
    const char *summary; /* one line */
};

/* The command line of a service: handles --help/-h, --version, --print-config,
 * --config-markdown and --env-example (print to stdout, *exit_code 0), rejects any other
 * argument (message on stderr, *exit_code 2), and otherwise loads the configuration (all
 * errors on stderr, *exit_code 2 when invalid). Returns true when the service should run
 * with the loaded configuration, false when main should return *exit_code. Either way the
 * caller ends with lst_config_cleanup. */
bool lst_config_main(int argc, char **argv, const struct lst_config_program *prog,
                     const struct lst_config_section *sections, size_t n, int *exit_code);
/* The same with an injected environment and output streams (tests). */
bool lst_config_main_ex(int argc, char **argv, const struct lst_config_program *prog,
                        const struct lst_config_section *sections, size_t n,
                        const struct lst_config_source *src, FILE *out, FILE *err, int *exit_code);

/* ---- The settings every service shares. ---- */

struct lst_common_config {
    enum lst_log_level log_level;     /* LST_LOG_LEVEL */
    char *kafka_brokers;              /* LST_KAFKA_BROKERS */
    char *topic_prefix;               /* LST_TOPIC_PREFIX, "" by default, never NULL */
    int64_t kafka_session_timeout_ms; /* LST_KAFKA_SESSION_TIMEOUT_MS */
    int64_t kafka_message_timeout_ms; /* LST_KAFKA_MESSAGE_TIMEOUT_MS */
    char *redis_host;                 /* LST_REDIS_HOST */
    int64_t redis_port;               /* LST_REDIS_PORT */
    int64_t redis_db;                 /* LST_REDIS_DB */
    char *redis_password;             /* LST_REDIS_PASSWORD, NULL when not set */
    int64_t redis_timeout_ms;         /* LST_REDIS_TIMEOUT_MS */
    char *http_addr;                  /* LST_HTTP_ADDR */
    int64_t http_max_body;            /* LST_HTTP_MAX_BODY, bytes */
    int64_t shutdown_timeout_ms;      /* LST_SHUTDOWN_TIMEOUT_MS */
};

extern const struct lst_config_entry lst_common_config_entries[];
extern const size_t lst_common_config_nentries;

/* The COMMON section filling c (title "Common"). */
struct lst_config_section lst_common_config_section(struct lst_common_config *c);

/* Writes prefix + base into out (NUL-terminated). LST_ERR_TOO_LARGE when it does not fit in
 * cap bytes (out then holds ""). */
lst_err lst_config_topic(const struct lst_common_config *c, const char *base, char *out,
                         size_t cap);

/* A check for topic prefixes and names: Kafka allows [a-zA-Z0-9._-] only. */
const char *lst_config_check_topic_chars(const char *value);

#endif
