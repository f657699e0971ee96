/* Unit tests of the table-driven configuration: typed parsing, bounds, required values,
 * NAME_FILE variants, sensitive values, generated texts and the command-line helper. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lst/config.h"
#include "lst/log.h"
#include "lst/util.h"
#include "lst_test.h"

#define SECRET "s3cr3t-value-xyz"

/* ---- an injectable environment ---- */

#define ENV_MAX 16

struct env {
    const char *names[ENV_MAX];
    const char *values[ENV_MAX];
    size_t n;
};

static const char *env_get(const char *name, void *ud)
{
    const struct env *e = ud;
    for (size_t i = 0; i < e->n; i++) {
        if (strcmp(e->names[i], name) == 0)
            return e->values[i];
    }
    return NULL;
}

static void env_set(struct env *e, const char *name, const char *value)
{
    if (e->n < ENV_MAX) {
        e->names[e->n] = name;
        e->values[e->n] = value;
        e->n++;
    }
}

/* ---- a service-like table ---- */

struct tcfg {
    char *str;
    int64_t port;
    int64_t ms;
    double ratio;
    bool flag;
    enum lst_log_level level;
    char *secret;
    char *opt;
    int64_t big;
    int64_t pin;
};

#define F(field) offsetof(struct tcfg, field)

static const struct lst_config_entry t_entries[] = {
    {.name = "LST_T_STR",
     .type = LST_CONFIG_STRING,
     .def = "hello",
     .max_len = 8,
     .offset = F(str),
     .desc = "A short string."},
    {.name = "LST_T_PORT",
     .type = LST_CONFIG_INT,
     .def = "8080",
     .min = 1,
     .max = 65535,
     .offset = F(port),
     .desc = "A port | with a pipe."},
    {.name = "LST_T_MS",
     .type = LST_CONFIG_MS,
     .def = "250",
     .min = 0,
     .max = 1000,
     .offset = F(ms),
     .desc = "A duration."},
    {.name = "LST_T_RATIO",
     .type = LST_CONFIG_DOUBLE,
     .def = "0.5",
     .dmin = 0,
     .dmax = 1,
     .offset = F(ratio),
     .desc = "A ratio."},
    {.name = "LST_T_FLAG",
     .type = LST_CONFIG_BOOL,
     .def = "false",
     .offset = F(flag),
     .desc = "A flag."},
    {.name = "LST_T_LEVEL",
     .type = LST_CONFIG_LOG_LEVEL,
     .def = "info",
     .offset = F(level),
     .desc = "A level."},
    {.name = "LST_T_SECRET",
     .type = LST_CONFIG_STRING,
     .flags = LST_CONFIG_REQUIRED | LST_CONFIG_SENSITIVE,
     .offset = F(secret),
     .desc = "The API secret."},
    {.name = "LST_T_OPT", .type = LST_CONFIG_STRING, .offset = F(opt), .desc = "Optional."},
    {.name = "LST_T_BIG",
     .type = LST_CONFIG_INT,
     .def = "0",
     .offset = F(big),
     .desc = "Unbounded."},
    {.name = "LST_T_PIN",
     .type = LST_CONFIG_INT,
     .min = 1000,
     .max = 9999,
     .flags = LST_CONFIG_SENSITIVE,
     .offset = F(pin),
     .desc = "A secret number."},
};

struct fixture {
    struct tcfg cfg;
    struct lst_common_config common;
    struct lst_config_section sections[2];
    struct env env;
    struct lst_config_source src;
    struct lst_buf errors;
};

static void fx_init(struct fixture *fx)
{
    memset(fx, 0, sizeof(*fx));
    fx->sections[0] = lst_common_config_section(&fx->common);
    fx->sections[1] =
        (struct lst_config_section){"Test", t_entries, LST_ARRAY_LEN(t_entries), &fx->cfg};
    fx->src.getenv_fn = env_get;
    fx->src.ud = &fx->env;
    lst_buf_init(&fx->errors);
    lst_log_clear_secrets();
}

static lst_err fx_load(struct fixture *fx)
{
    lst_buf_reset(&fx->errors);
    return lst_config_load(fx->sections, 2, &fx->src, &fx->errors);
}

static const char *fx_errors(const struct fixture *fx)
{
    return fx->errors.data != NULL ? fx->errors.data : "";
}

static void fx_cleanup(struct fixture *fx)
{
    lst_config_cleanup(fx->sections, 2);
    lst_buf_cleanup(&fx->errors);
    lst_log_clear_secrets();
}

static bool contains(const char *hay, const char *needle)
{
    return hay != NULL && strstr(hay, needle) != NULL;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* Writes content to a new temporary file; returns its path (static buffer per slot). */
static const char *temp_file(char path[64], const char *content)
{
    snprintf(path, 64, "/tmp/lst_test_config_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    size_t len = strlen(content);
    ssize_t w = write(fd, content, len);
    close(fd);
    return w == (ssize_t)len ? path : NULL;
}

/* ---- tests ---- */

static void test_defaults(void)
{
    struct fixture fx;
    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", SECRET);
    CHECK_EQ(fx_load(&fx), LST_OK);
    CHECK_STREQ(fx_errors(&fx), "");
    CHECK_STREQ(fx.cfg.str, "hello");
    CHECK_EQ(fx.cfg.port, 8080);
    CHECK_EQ(fx.cfg.ms, 250);
    CHECK(fx.cfg.ratio == 0.5);
    CHECK(!fx.cfg.flag);
    CHECK_EQ(fx.cfg.level, LST_LOG_INFO);
    CHECK_STREQ(fx.cfg.secret, SECRET);
    CHECK(fx.cfg.opt == NULL);
    CHECK_EQ(fx.cfg.pin, 0);
    fx_cleanup(&fx);
    CHECK(fx.cfg.str == NULL);
    CHECK(fx.cfg.secret == NULL);
    CHECK(fx.common.kafka_brokers == NULL);
}

static void test_common_defaults(void)
{
    struct fixture fx;
    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", SECRET);
    REQUIRE(fx_load(&fx) == LST_OK);
    const struct lst_common_config *c = &fx.common;
    CHECK_EQ(c->log_level, LST_LOG_INFO);
    CHECK_STREQ(c->kafka_brokers, "127.0.0.1:19092");
    CHECK_STREQ(c->topic_prefix, "");
    CHECK_EQ(c->kafka_session_timeout_ms, 10000);
    CHECK_EQ(c->kafka_message_timeout_ms, 30000);
    CHECK_STREQ(c->redis_host, "127.0.0.1");
    CHECK_EQ(c->redis_port, 16379);
    CHECK_EQ(c->redis_db, 0);
    CHECK(c->redis_password == NULL);
    CHECK_EQ(c->redis_timeout_ms, 2000);
    CHECK_STREQ(c->http_addr, "127.0.0.1");
    CHECK_EQ(c->http_max_body, 1048576);
    CHECK_EQ(c->shutdown_timeout_ms, 10000);
    CHECK_EQ(lst_common_config_nentries, 13);
    fx_cleanup(&fx);
}

static void test_typed_values(void)
{
    struct fixture fx;
    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", SECRET);
    env_set(&fx.env, "LST_T_STR", "abcdefgh");
    env_set(&fx.env, "LST_T_PORT", "65535");
    env_set(&fx.env, "LST_T_MS", "0");
    env_set(&fx.env, "LST_T_RATIO", "0.25");
    env_set(&fx.env, "LST_T_FLAG", "YES");
    env_set(&fx.env, "LST_T_LEVEL", "warning");
    env_set(&fx.env, "LST_T_OPT", "x");
    env_set(&fx.env, "LST_T_BIG", "-9223372036854775808");
    env_set(&fx.env, "LST_T_PIN", "1234");
    env_set(&fx.env, "LST_REDIS_DB", "15");
    CHECK_EQ(fx_load(&fx), LST_OK);
    CHECK_STREQ(fx_errors(&fx), "");
    CHECK_STREQ(fx.cfg.str, "abcdefgh");
    CHECK_EQ(fx.cfg.port, 65535);
    CHECK_EQ(fx.cfg.ms, 0);
    CHECK(fx.cfg.ratio == 0.25);
    CHECK(fx.cfg.flag);
    CHECK_EQ(fx.cfg.level, LST_LOG_WARN);
    CHECK_STREQ(fx.cfg.opt, "x");
    CHECK(fx.cfg.big == INT64_MIN);
    CHECK_EQ(fx.cfg.pin, 1234);
    CHECK_EQ(fx.common.redis_db, 15);
    fx_cleanup(&fx);
}

static void test_empty_value_is_unset(void)
{
    struct fixture fx;
    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", "");
    env_set(&fx.env, "LST_T_PORT", "");
    CHECK_EQ(fx_load(&fx), LST_ERR_CONFIG);
    CHECK_STREQ(fx_errors(&fx),
                "LST_T_SECRET is required (set LST_T_SECRET or LST_T_SECRET_FILE)\n");
    CHECK_EQ(fx.cfg.port, 8080);
    fx_cleanup(&fx);
}

static void test_precise_errors(void)
{
    struct fixture fx;
    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", SECRET);
    env_set(&fx.env, "LST_T_PORT", "abc");
    CHECK_EQ(fx_load(&fx), LST_ERR_CONFIG);
    CHECK_STREQ(fx_errors(&fx), "LST_T_PORT: \"abc\" is not an integer\n");
    fx_cleanup(&fx);

    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", SECRET);
    env_set(&fx.env, "LST_REDIS_PORT", "70000");
    CHECK_EQ(fx_load(&fx), LST_ERR_CONFIG);
    CHECK_STREQ(fx_errors(&fx), "LST_REDIS_PORT: 70000 is out of range [1, 65535]\n");
    fx_cleanup(&fx);

    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", SECRET);
    env_set(&fx.env, "LST_T_RATIO", "1.5");
    env_set(&fx.env, "LST_T_BIG", "99999999999999999999");
    env_set(&fx.env, "LST_T_PORT", "a\nb\"c");
    CHECK_EQ(fx_load(&fx), LST_ERR_CONFIG);
    CHECK(contains(fx_errors(&fx), "LST_T_RATIO: 1.5 is out of range [0, 1]\n"));
    CHECK(contains(fx_errors(&fx), "LST_T_BIG: 99999999999999999999 is out of range "
                                   "[-9223372036854775808, 9223372036854775807]\n"));
    /* Control characters and quotes in a value are escaped, never written raw. */
    CHECK(contains(fx_errors(&fx), "LST_T_PORT: \"a\\x0ab\\\"c\" is not an integer\n"));
    fx_cleanup(&fx);
}

static void test_all_errors_at_once(void)
{
    struct fixture fx;
    fx_init(&fx);
    env_set(&fx.env, "LST_T_STR", "too-long-string");
    env_set(&fx.env, "LST_T_PORT", "0");
    env_set(&fx.env, "LST_T_MS", "1.5");
    env_set(&fx.env, "LST_T_RATIO", "half");
    env_set(&fx.env, "LST_T_FLAG", "maybe");
    env_set(&fx.env, "LST_T_LEVEL", "loud");
    env_set(&fx.env, "LST_TOPIC_PREFIX", "a b");
    env_set(&fx.env, "LST_KAFKA_SESSION_TIMEOUT_MS", "5999");
    CHECK_EQ(fx_load(&fx), LST_ERR_CONFIG);
    const char *e = fx_errors(&fx);
    CHECK_EQ(count_lines(e), 9);
    CHECK(contains(e, "LST_T_STR: value is 15 bytes long, at most 8 allowed\n"));
    CHECK(contains(e, "LST_T_PORT: 0 is out of range [1, 65535]\n"));
    CHECK(contains(e, "LST_T_MS: \"1.5\" is not an integer\n"));
    CHECK(contains(e, "LST_T_RATIO: \"half\" is not a number\n"));
    CHECK(contains(e, "LST_T_FLAG: \"maybe\" is not a boolean"));
    CHECK(contains(e, "LST_T_LEVEL: \"loud\" is not a log level"));
    CHECK(contains(e, "LST_T_SECRET is required (set LST_T_SECRET or LST_T_SECRET_FILE)\n"));
    CHECK(contains(e, "LST_TOPIC_PREFIX: \"a b\" must contain only [a-zA-Z0-9._-]"));
    CHECK(contains(e, "LST_KAFKA_SESSION_TIMEOUT_MS: 5999 is out of range [6000, 300000]\n"));
    fx_cleanup(&fx);
}

static void test_file_variants(void)
{
    char p1[64], p2[64];
    const char *secret_path = temp_file(p1, SECRET "\r\n\n");
    const char *port_path = temp_file(p2, "9090\n");
    REQUIRE(secret_path != NULL && port_path != NULL);
    struct fixture fx;
    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET_FILE", secret_path);
    env_set(&fx.env, "LST_T_PORT_FILE", port_path);
    CHECK_EQ(fx_load(&fx), LST_OK);
    CHECK_STREQ(fx_errors(&fx), "");
    CHECK_STREQ(fx.cfg.secret, SECRET);
    CHECK_EQ(fx.cfg.port, 9090);
    fx_cleanup(&fx);

    /* A bad value from a file names both the variable and the file variable. */
    char p3[64];
    const char *bad_path = temp_file(p3, "nope\n");
    REQUIRE(bad_path != NULL);
    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", SECRET);
    env_set(&fx.env, "LST_T_PORT_FILE", bad_path);
    CHECK_EQ(fx_load(&fx), LST_ERR_CONFIG);
    CHECK_STREQ(fx_errors(&fx), "LST_T_PORT (from LST_T_PORT_FILE): \"nope\" is not an integer\n");
    fx_cleanup(&fx);
    unlink(p1);
    unlink(p2);
    unlink(p3);
}

static void test_file_errors(void)
{
    char p1[64], p2[64];
    const char *empty_path = temp_file(p1, "\n");
    const char *nul_path = temp_file(p2, "");
    REQUIRE(empty_path != NULL && nul_path != NULL);
    FILE *f = fopen(nul_path, "wb");
    REQUIRE(f != NULL);
    fwrite("ab\0cd", 1, 5, f);
    fclose(f);

    struct fixture fx;
    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET_FILE", "/nonexistent/lst/secret");
    env_set(&fx.env, "LST_T_PORT", "1");
    env_set(&fx.env, "LST_T_PORT_FILE", "/also/ignored");
    env_set(&fx.env, "LST_T_STR_FILE", nul_path);
    env_set(&fx.env, "LST_REDIS_PASSWORD_FILE", empty_path);
    CHECK_EQ(fx_load(&fx), LST_ERR_CONFIG);
    const char *e = fx_errors(&fx);
    CHECK_EQ(count_lines(e), 3);
    CHECK(contains(e, "LST_T_SECRET_FILE: cannot read \"/nonexistent/lst/secret\": "
                      "No such file or directory\n"));
    CHECK(contains(e, "LST_T_PORT and LST_T_PORT_FILE are both set; set only one\n"));
    CHECK(contains(e, "LST_T_STR_FILE: \""));
    CHECK(contains(e, "contains a NUL byte\n"));
    /* An empty file for an optional secret counts as unset. */
    CHECK(fx.common.redis_password == NULL);
    fx_cleanup(&fx);
    unlink(p1);
    unlink(p2);
}

static void test_sensitive_values_hidden(void)
{
    struct fixture fx;
    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", SECRET);
    env_set(&fx.env, "LST_T_PIN", "12x4secret");
    CHECK_EQ(fx_load(&fx), LST_ERR_CONFIG);
    CHECK_STREQ(fx_errors(&fx), "LST_T_PIN: value is not an integer (value hidden)\n");
    fx_cleanup(&fx);

    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", SECRET);
    env_set(&fx.env, "LST_T_PIN", "123456");
    CHECK_EQ(fx_load(&fx), LST_ERR_CONFIG);
    CHECK_STREQ(fx_errors(&fx), "LST_T_PIN: value is out of range [1000, 9999] (value hidden)\n");
    fx_cleanup(&fx);
}

static void test_secret_registered_with_logger(void)
{
    struct fixture fx;
    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", SECRET);
    env_set(&fx.env, "LST_REDIS_PASSWORD", "redis-pass-42");
    env_set(&fx.env, "LST_T_STR", "plain");
    REQUIRE(fx_load(&fx) == LST_OK);
    struct lst_buf line;
    lst_buf_init(&line);
    lst_log_format(&line, LST_LOG_INFO, "test.event",
                   "secret " SECRET " password redis-pass-42 plain");
    CHECK(!contains(line.data, SECRET));
    CHECK(!contains(line.data, "redis-pass-42"));
    CHECK(contains(line.data, "[redacted]"));
    CHECK(contains(line.data, "plain")); /* not sensitive: not redacted */
    lst_buf_cleanup(&line);
    fx_cleanup(&fx);
}

static void test_print_config(void)
{
    struct fixture fx;
    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", SECRET);
    env_set(&fx.env, "LST_T_PIN", "4321");
    env_set(&fx.env, "LST_T_RATIO", "0.1");
    REQUIRE(fx_load(&fx) == LST_OK);
    struct lst_buf out;
    lst_buf_init(&out);
    CHECK_EQ(lst_config_print(fx.sections, 2, &out), LST_OK);
    CHECK(contains(out.data, "# Common\nLST_LOG_LEVEL=info\n"));
    CHECK(contains(out.data, "\nLST_REDIS_PORT=16379\n"));
    CHECK(contains(out.data, "\nLST_TOPIC_PREFIX=\n"));
    CHECK(contains(out.data, "\nLST_REDIS_PASSWORD=(not set)\n"));
    CHECK(contains(out.data, "\n# Test\nLST_T_STR=hello\n"));
    CHECK(contains(out.data, "\nLST_T_RATIO=0.1\n"));
    CHECK(contains(out.data, "\nLST_T_FLAG=false\n"));
    CHECK(contains(out.data, "\nLST_T_SECRET=(set, hidden)\n"));
    CHECK(contains(out.data, "\nLST_T_PIN=(hidden)\n"));
    CHECK(contains(out.data, "\nLST_T_OPT=(not set)\n"));
    CHECK(!contains(out.data, SECRET));
    CHECK(!contains(out.data, "4321"));
    lst_buf_cleanup(&out);
    fx_cleanup(&fx);
}

static void check_mentions_every_variable(const struct fixture *fx, const char *text)
{
    for (size_t i = 0; i < 2; i++) {
        for (size_t j = 0; j < fx->sections[i].n; j++) {
            if (!contains(text, fx->sections[i].entries[j].name)) {
                fprintf(stderr, "missing %s\n", fx->sections[i].entries[j].name);
                CHECK(0);
            }
        }
    }
}

static void test_help(void)
{
    struct fixture fx;
    fx_init(&fx);
    struct lst_buf out;
    lst_buf_init(&out);
    CHECK_EQ(lst_config_help(fx.sections, 2, "svc", "Does things.", &out), LST_OK);
    check_mentions_every_variable(&fx, out.data);
    CHECK(contains(out.data, "Usage: svc [--help]"));
    CHECK(contains(out.data, "\nDoes things.\n"));
    CHECK(contains(out.data, "\nCommon:\n  LST_LOG_LEVEL\n      log level, default info\n"));
    CHECK(contains(out.data, "  LST_REDIS_PORT\n      integer, default 16379, "
                             "range [1, 65535]\n      Redis TCP port.\n"));
    CHECK(contains(out.data, "  LST_T_SECRET\n      string, required, sensitive\n"));
    CHECK(contains(out.data, "  LST_T_RATIO\n      number, default 0.5, range [0, 1]\n"));
    CHECK(contains(out.data, "  LST_REDIS_PASSWORD\n      string, at most 512 bytes, optional, "
                             "sensitive\n"));
    CHECK(contains(out.data, "NAME_FILE"));
    lst_buf_cleanup(&out);
    fx_cleanup(&fx);
}

static void test_markdown_and_env_example(void)
{
    struct fixture fx;
    fx_init(&fx);
    struct lst_buf md, env;
    lst_buf_init(&md);
    lst_buf_init(&env);
    CHECK_EQ(lst_config_markdown(fx.sections, 2, &md), LST_OK);
    CHECK_EQ(lst_config_env_example(fx.sections, 2, &env), LST_OK);
    check_mentions_every_variable(&fx, md.data);
    check_mentions_every_variable(&fx, env.data);
    CHECK(contains(md.data, "### Common\n\n| Variable | Type | Default | Allowed | Flags | "
                            "Description |\n|---|---|---|---|---|---|\n"));
    CHECK(contains(md.data, "| `LST_REDIS_PORT` | integer | `16379` | 1 to 65535 | optional | "
                            "Redis TCP port. |\n"));
    CHECK(contains(md.data, "| `LST_TOPIC_PREFIX` | string | `\"\"` |"));
    CHECK(contains(md.data, "| `LST_T_SECRET` | string | (none) |  | required, sensitive | "));
    CHECK(contains(md.data, "A port \\| with a pipe."));
    CHECK(contains(env.data, "# ---- Common ----\n"));
    CHECK(contains(env.data, "\n#LST_REDIS_PORT=16379\n"));
    CHECK(contains(env.data, "\n#LST_REDIS_PASSWORD=\n"));
    CHECK(contains(env.data, "; or LST_REDIS_PASSWORD_FILE)\n"));
    CHECK(contains(env.data, "\nLST_T_SECRET=\n"));
    lst_buf_cleanup(&md);
    lst_buf_cleanup(&env);
    fx_cleanup(&fx);
}

static void test_topic_prefix(void)
{
    struct fixture fx;
    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", SECRET);
    env_set(&fx.env, "LST_TOPIC_PREFIX", "run-42.");
    REQUIRE(fx_load(&fx) == LST_OK);
    char topic[32];
    CHECK_EQ(lst_config_topic(&fx.common, "lst.message", topic, sizeof(topic)), LST_OK);
    CHECK_STREQ(topic, "run-42.lst.message");
    CHECK_EQ(lst_config_topic(&fx.common, "lst.message", topic, 18), LST_ERR_TOO_LARGE);
    CHECK_STREQ(topic, "");
    CHECK_EQ(lst_config_topic(&fx.common, "lst.message", topic, 19), LST_OK);
    struct lst_common_config none;
    memset(&none, 0, sizeof(none));
    CHECK_EQ(lst_config_topic(&none, "lst.sent", topic, sizeof(topic)), LST_OK);
    CHECK_STREQ(topic, "lst.sent");
    CHECK(lst_config_check_topic_chars("ok.A-z_09") == NULL);
    CHECK(lst_config_check_topic_chars("no/slash") != NULL);
    fx_cleanup(&fx);
}

/* Runs lst_config_main_ex with the fixture, capturing stdout and stderr. */
static bool run_main(struct fixture *fx, int argc, char **argv, int *code, char **out, char **err)
{
    size_t out_len = 0, err_len = 0;
    FILE *fo = open_memstream(out, &out_len);
    FILE *fe = open_memstream(err, &err_len);
    static const struct lst_config_program prog = {"svc", "1.2.3", "Does things."};
    bool run = false;
    if (fo != NULL && fe != NULL)
        run = lst_config_main_ex(argc, argv, &prog, fx->sections, 2, &fx->src, fo, fe, code);
    if (fo != NULL)
        fclose(fo);
    if (fe != NULL)
        fclose(fe);
    return run;
}

static void test_main_helper(void)
{
    struct fixture fx;
    fx_init(&fx);
    char *out = NULL, *err = NULL;
    int code = -1;
    char a0[] = "svc", help[] = "--help", h[] = "-h", version[] = "--version", bogus[] = "--bogus",
         print[] = "--print-config", md[] = "--config-markdown", envx[] = "--env-example";

    char *argv_help[] = {a0, help, NULL};
    CHECK(!run_main(&fx, 2, argv_help, &code, &out, &err));
    CHECK_EQ(code, 0);
    CHECK(contains(out, "Usage: svc"));
    CHECK_STREQ(err, "");
    free(out);
    free(err);

    char *argv_h[] = {a0, h, NULL};
    CHECK(!run_main(&fx, 2, argv_h, &code, &out, &err));
    CHECK_EQ(code, 0);
    CHECK(contains(out, "LST_T_SECRET"));
    free(out);
    free(err);

    char *argv_version[] = {a0, version, NULL};
    CHECK(!run_main(&fx, 2, argv_version, &code, &out, &err));
    CHECK_EQ(code, 0);
    CHECK_STREQ(out, "svc 1.2.3\n");
    free(out);
    free(err);

    char *argv_bogus[] = {a0, bogus, NULL};
    CHECK(!run_main(&fx, 2, argv_bogus, &code, &out, &err));
    CHECK_EQ(code, 2);
    CHECK_STREQ(out, "");
    CHECK_STREQ(err, "svc: unknown argument \"--bogus\" (try --help)\n");
    free(out);
    free(err);

    char *argv_md[] = {a0, md, NULL};
    CHECK(!run_main(&fx, 2, argv_md, &code, &out, &err));
    CHECK_EQ(code, 0);
    CHECK(contains(out, "### Test"));
    free(out);
    free(err);

    char *argv_env[] = {a0, envx, NULL};
    CHECK(!run_main(&fx, 2, argv_env, &code, &out, &err));
    CHECK_EQ(code, 0);
    CHECK(contains(out, "LST_T_SECRET=\n"));
    free(out);
    free(err);

    /* Invalid configuration: every error on stderr, exit 2, nothing run. */
    char *argv_run[] = {a0, NULL};
    env_set(&fx.env, "LST_REDIS_PORT", "abc");
    CHECK(!run_main(&fx, 1, argv_run, &code, &out, &err));
    CHECK_EQ(code, 2);
    CHECK(contains(err, "svc: invalid configuration:\n"));
    CHECK(contains(err, "  LST_REDIS_PORT: \"abc\" is not an integer\n"));
    CHECK(contains(err, "  LST_T_SECRET is required"));
    free(out);
    free(err);
    fx_cleanup(&fx);

    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", SECRET);
    CHECK(run_main(&fx, 1, argv_run, &code, &out, &err));
    CHECK_EQ(code, 0);
    CHECK_STREQ(fx.cfg.secret, SECRET);
    free(out);
    free(err);
    fx_cleanup(&fx);

    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", SECRET);
    char *argv_print[] = {a0, print, NULL};
    CHECK(!run_main(&fx, 2, argv_print, &code, &out, &err));
    CHECK_EQ(code, 0);
    CHECK(contains(out, "LST_T_SECRET=(set, hidden)\n"));
    CHECK(!contains(out, SECRET));
    CHECK(!contains(err, SECRET));
    free(out);
    free(err);
    fx_cleanup(&fx);
}

static void test_process_environment_default(void)
{
    /* A NULL source reads the real environment. */
    struct lst_common_config c;
    memset(&c, 0, sizeof(c));
    struct lst_config_section s = lst_common_config_section(&c);
    setenv("LST_REDIS_DB", "7", 1);
    setenv("LST_REDIS_HOST", "redis.internal", 1);
    CHECK_EQ(lst_config_load(&s, 1, NULL, NULL), LST_OK);
    CHECK_EQ(c.redis_db, 7);
    CHECK_STREQ(c.redis_host, "redis.internal");
    setenv("LST_REDIS_DB", "16", 1);
    lst_config_cleanup(&s, 1);
    CHECK_EQ(lst_config_load(&s, 1, NULL, NULL), LST_ERR_CONFIG);
    lst_config_cleanup(&s, 1);
    CHECK(c.redis_host == NULL);
    unsetenv("LST_REDIS_DB");
    unsetenv("LST_REDIS_HOST");
}

static void test_cleanup_after_partial_load(void)
{
    /* Strings loaded before an error are still owned and freed by cleanup (LeakSanitizer
     * checks this in the sanitizer build); cleanup twice is harmless. */
    struct fixture fx;
    fx_init(&fx);
    env_set(&fx.env, "LST_T_SECRET", SECRET);
    env_set(&fx.env, "LST_T_OPT", "something");
    env_set(&fx.env, "LST_T_BIG", "x");
    CHECK_EQ(fx_load(&fx), LST_ERR_CONFIG);
    CHECK_STREQ(fx.cfg.opt, "something");
    lst_config_cleanup(fx.sections, 2);
    CHECK(fx.cfg.opt == NULL);
    CHECK(fx.cfg.secret == NULL);
    CHECK(fx.common.topic_prefix == NULL);
    fx_cleanup(&fx);
}

static void test_bad_table_is_reported(void)
{
    struct tcfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    static const struct lst_config_entry bad[] = {
        {.name = "LST_B_REQ",
         .type = LST_CONFIG_STRING,
         .def = "x",
         .flags = LST_CONFIG_REQUIRED,
         .offset = F(str),
         .desc = "d"},
        {.name = "LST_B_RANGE",
         .type = LST_CONFIG_INT,
         .def = "5",
         .min = 10,
         .max = 1,
         .offset = F(port),
         .desc = "d"},
    };
    struct lst_config_section s = {"Bad", bad, LST_ARRAY_LEN(bad), &cfg};
    struct env env;
    memset(&env, 0, sizeof(env));
    struct lst_config_source src = {env_get, &env};
    struct lst_buf errors;
    lst_buf_init(&errors);
    CHECK_EQ(lst_config_load(&s, 1, &src, &errors), LST_ERR_CONFIG);
    CHECK_STREQ(errors.data, "LST_B_REQ: bad configuration table entry: a required entry "
                             "cannot have a default\n"
                             "LST_B_RANGE: bad configuration table entry: min is above max\n");
    lst_config_cleanup(&s, 1);
    lst_buf_cleanup(&errors);
}

LST_TEST_MAIN(T(test_defaults), T(test_common_defaults), T(test_typed_values),
              T(test_empty_value_is_unset), T(test_precise_errors), T(test_all_errors_at_once),
              T(test_file_variants), T(test_file_errors), T(test_sensitive_values_hidden),
              T(test_secret_registered_with_logger), T(test_print_config), T(test_help),
              T(test_markdown_and_env_example), T(test_topic_prefix), T(test_main_helper),
              T(test_process_environment_default), T(test_cleanup_after_partial_load),
              T(test_bad_table_is_reported))
