/* lst-admin: operator commands for the local Kafka broker (used by scripts/stack.sh).
 *
 *   lst-admin wait-ready    --brokers B [--timeout-ms N] [--pid PID]
 *   lst-admin create-topics --brokers B --file proto/topics.tsv [--prefix P] [--timeout-ms N]
 *   lst-admin delete-topics --brokers B --file proto/topics.tsv --prefix P [--timeout-ms N]
 *   lst-admin list-topics   --brokers B [--all] [--timeout-ms N]
 *
 * Exit codes: 0 success, 1 failure, 2 usage error, 3 timeout, 4 the watched process died. */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "lst/log.h"
#include "lst/util.h"

#define EXIT_FAIL    1
#define EXIT_USAGE   2
#define EXIT_TIMEOUT 3
#define EXIT_DIED    4

#define DEFAULT_WAIT_MS  90000
#define DEFAULT_ADMIN_MS 30000
#define MAX_TIMEOUT_MS   3600000

struct options {
    const char *command;
    const char *brokers;
    const char *file;
    const char *prefix;
    int64_t timeout_ms;
    int64_t pid;
    int all;
    int verbose;
};

static void usage(FILE *f)
{
    fputs("usage: lst-admin [-v] COMMAND --brokers HOST:PORT [options]\n"
          "  wait-ready     poll metadata until a broker and the controller answer\n"
          "                 [--timeout-ms N (90000)] [--pid PID: give up when PID exits]\n"
          "  create-topics  create the topics of a table (idempotent)\n"
          "                 --file proto/topics.tsv [--prefix P] [--timeout-ms N (30000)]\n"
          "  delete-topics  delete a prefixed copy of a table's topics (absent ones are fine)\n"
          "                 --file proto/topics.tsv --prefix P [--timeout-ms N (30000)]\n"
          "  list-topics    print 'name<TAB>partitions', sorted [--all: include __internal]\n"
          "exit codes: 0 ok, 1 failure, 2 usage, 3 timeout, 4 watched process died\n",
          f);
}

enum parse_result { PARSE_OK, PARSE_HELP, PARSE_ERROR };

/* Takes the value of an option that needs one; NULL (and a message) when it is missing. */
static const char *value_of(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "lst-admin: %s needs a value\n", argv[*i]);
        return NULL;
    }
    (*i)++;
    return argv[*i];
}

static bool take_string(int argc, char **argv, int *i, const char **dst)
{
    *dst = value_of(argc, argv, i);
    return *dst != NULL;
}

static bool parse_number(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL)
        return false;
    if (lst_parse_i64(s, min, max, out) != LST_OK) {
        fprintf(stderr, "lst-admin: %s '%s' is not a number in [%lld, %lld]\n", opt, s,
                (long long)min, (long long)max);
        return false;
    }
    return true;
}

static bool parse_option(int argc, char **argv, int *i, struct options *o)
{
    const char *a = argv[*i];
    if (strcmp(a, "--brokers") == 0)
        return take_string(argc, argv, i, &o->brokers);
    if (strcmp(a, "--file") == 0)
        return take_string(argc, argv, i, &o->file);
    if (strcmp(a, "--prefix") == 0)
        return take_string(argc, argv, i, &o->prefix);
    if (strcmp(a, "--timeout-ms") == 0)
        return parse_number(a, value_of(argc, argv, i), 1, MAX_TIMEOUT_MS, &o->timeout_ms);
    if (strcmp(a, "--pid") == 0)
        return parse_number(a, value_of(argc, argv, i), 1, 0x7fffffff, &o->pid);
    if (strcmp(a, "--all") == 0) {
        o->all = 1;
        return true;
    }
    if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
        o->verbose = 1;
        return true;
    }
    if (a[0] != '-' && o->command == NULL) {
        o->command = a;
        return true;
    }
    fprintf(stderr, "lst-admin: unexpected argument '%s'\n", a);
    return false;
}

static enum parse_result parse_args(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return PARSE_HELP;
        if (!parse_option(argc, argv, &i, o))
            return PARSE_ERROR;
    }
    if (o->command == NULL || o->brokers == NULL || o->brokers[0] == '\0') {
        fprintf(stderr, "lst-admin: a command and --brokers are required\n");
        usage(stderr);
        return PARSE_ERROR;
    }
    return PARSE_OK;
}

static int exit_code(lst_err e)
{
    if (e == LST_OK)
        return 0;
    if (e == LST_ERR_TIMEOUT)
        return EXIT_TIMEOUT;
    if (e == LST_ERR_STATE)
        return EXIT_DIED;
    return EXIT_FAIL;
}

/* Loads the --file table with --prefix and runs fn (create or delete) on it. */
static int on_table(const struct options *o,
                    lst_err (*fn)(const char *, const struct lst_admin_topics *, int64_t))
{
    char err[512] = "";
    struct lst_admin_topics topics = {0};
    lst_err e = lst_admin_topics_load(o->file, o->prefix, &topics, err, sizeof(err));
    if (e != LST_OK) {
        LST_ERROR("admin.topics.invalid", "%s: %s", o->file, err);
        return EXIT_FAIL;
    }
    e = fn(o->brokers, &topics, o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_ADMIN_MS);
    lst_admin_topics_cleanup(&topics);
    return exit_code(e);
}

/* delete-topics: only a prefixed copy of the table (a benchmark's or a test's), so that a slip
 * cannot delete the deployment's own topics. */
static int cmd_delete(const struct options *o)
{
    if (o->file == NULL || o->prefix == NULL || o->prefix[0] == '\0') {
        fprintf(stderr, "lst-admin: delete-topics needs --file and a non-empty --prefix\n");
        return EXIT_USAGE;
    }
    return on_table(o, lst_admin_delete_topics);
}

static int cmd_create(const struct options *o)
{
    if (o->file == NULL) {
        fprintf(stderr, "lst-admin: create-topics needs --file\n");
        return EXIT_USAGE;
    }
    return on_table(o, lst_admin_create_topics);
}

int main(int argc, char **argv)
{
    struct options o = {0};
    lst_log_init("lst-admin", LST_LOG_INFO);
    enum parse_result pr = parse_args(argc, argv, &o);
    if (pr == PARSE_HELP) {
        usage(stdout);
        return 0;
    }
    if (pr == PARSE_ERROR)
        return EXIT_USAGE;
    if (o.verbose)
        lst_log_set_level(LST_LOG_DEBUG);
    if (strcmp(o.command, "wait-ready") == 0)
        return exit_code(lst_admin_wait_ready(
            o.brokers, o.timeout_ms > 0 ? o.timeout_ms : DEFAULT_WAIT_MS, (long)o.pid));
    if (strcmp(o.command, "create-topics") == 0)
        return cmd_create(&o);
    if (strcmp(o.command, "delete-topics") == 0)
        return cmd_delete(&o);
    if (strcmp(o.command, "list-topics") == 0)
        return exit_code(lst_admin_list_topics(
            o.brokers, o.timeout_ms > 0 ? o.timeout_ms : DEFAULT_ADMIN_MS, o.all, stdout));
    fprintf(stderr, "lst-admin: unknown command '%s'\n", o.command);
    usage(stderr);
    return EXIT_USAGE;
}
