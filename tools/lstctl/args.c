/* Command-line parsing, stdin, key and nonce arguments, error output. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lstctl.h"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int lst_ctl_fail(const struct lst_ctl_args *a, int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "lstctl %s: ", a->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

/* The index of the option named by word ("--name", "--name=v" or "-s"), or -1. *inline_value
 * points after '=' when the value came attached. */
static int find_opt(const struct lst_ctl_command *cmd, const char *word, const char **inline_value)
{
    *inline_value = NULL;
    for (size_t i = 0; i < cmd->nopts; i++) {
        const struct lst_ctl_opt *o = &cmd->opts[i];
        if (word[1] == '-') {
            size_t n = strlen(o->long_name);
            if (strncmp(word + 2, o->long_name, n) != 0)
                continue;
            if (word[2 + n] == '\0')
                return (int)i;
            if (word[2 + n] == '=' && o->takes_value) {
                *inline_value = word + 3 + n;
                return (int)i;
            }
        } else if (o->short_name != 0 && word[1] == o->short_name && word[2] == '\0') {
            return (int)i;
        }
    }
    return -1;
}

static int take_option(const struct lst_ctl_command *cmd, int argc, char **argv, int *i,
                       struct lst_ctl_args *out)
{
    const char *inline_value;
    int idx = find_opt(cmd, argv[*i], &inline_value);
    if (idx < 0)
        return lst_ctl_fail(out, LST_CTL_EXIT_USAGE, "unknown option '%s' (see --help)", argv[*i]);
    if (out->set[idx])
        return lst_ctl_fail(out, LST_CTL_EXIT_USAGE, "option '%s' given twice", argv[*i]);
    out->set[idx] = true;
    if (!cmd->opts[idx].takes_value)
        return LST_CTL_EXIT_OK;
    if (inline_value == NULL) {
        if (*i + 1 >= argc)
            return lst_ctl_fail(out, LST_CTL_EXIT_USAGE, "option '%s' needs a value", argv[*i]);
        inline_value = argv[++*i];
    }
    out->value[idx] = inline_value;
    return LST_CTL_EXIT_OK;
}

int lst_ctl_parse(const struct lst_ctl_command *cmd, int argc, char **argv,
                  struct lst_ctl_args *out, bool *help)
{
    bool options_done = false;
    memset(out, 0, sizeof(*out));
    out->cmd = cmd->name;
    *help = false;
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        if (!options_done && (strcmp(w, "-h") == 0 || strcmp(w, "--help") == 0)) {
            *help = true;
            return LST_CTL_EXIT_OK;
        }
        if (!options_done && strcmp(w, "--") == 0) {
            options_done = true;
        } else if (!options_done && w[0] == '-' && w[1] != '\0') {
            int rc = take_option(cmd, argc, argv, &i, out);
            if (rc != LST_CTL_EXIT_OK)
                return rc;
        } else {
            if (out->npos >= cmd->max_pos)
                return lst_ctl_fail(out, LST_CTL_EXIT_USAGE, "too many arguments (usage: %s %s)",
                                    cmd->name, cmd->synopsis);
            out->pos[out->npos++] = w;
        }
    }
    if (out->npos < cmd->min_pos)
        return lst_ctl_fail(out, LST_CTL_EXIT_USAGE, "missing arguments (usage: lstctl %s %s)",
                            cmd->name, cmd->synopsis);
    return LST_CTL_EXIT_OK;
}

const char *lst_ctl_opt(const struct lst_ctl_args *a, size_t idx)
{
    return idx < LST_CTL_MAX_OPTS && a->set[idx] ? a->value[idx] : NULL;
}

lst_err lst_ctl_read_stdin(struct lst_buf *out)
{
    char chunk[8192];
    lst_buf_reset(out);
    for (;;) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
        if (n == 0)
            return LST_OK;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return LST_ERR_IO;
        }
        if (out->len + (size_t)n > LST_CTL_STDIN_MAX)
            return LST_ERR_TOO_LARGE;
        if (lst_buf_append(out, chunk, (size_t)n) != LST_OK)
            return LST_ERR_NOMEM;
    }
}

static void trim(struct lst_buf *b)
{
    size_t start = 0;
    while (b->len > 0 && is_space(b->data[b->len - 1]))
        b->data[--b->len] = '\0';
    while (start < b->len && is_space(b->data[start]))
        start++;
    if (start > 0) {
        memmove(b->data, b->data + start, b->len - start + 1);
        b->len -= start;
    }
}

int lst_ctl_arg_or_stdin(const struct lst_ctl_args *a, const char *arg, bool trim_space,
                         struct lst_buf *out)
{
    lst_err err;
    if (arg != NULL) {
        lst_buf_reset(out);
        err = lst_buf_puts(out, arg);
    } else {
        err = lst_ctl_read_stdin(out);
    }
    if (err != LST_OK)
        return lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "cannot read input: %s", lst_strerror(err));
    if (trim_space)
        trim(out);
    return LST_CTL_EXIT_OK;
}

int lst_ctl_key(const struct lst_ctl_args *a, const char *arg, enum lst_threema_key_kind kind,
                const char *what, uint8_t key[LST_THREEMA_KEY_SIZE])
{
    struct lst_buf why;
    int rc = LST_CTL_EXIT_OK;
    lst_buf_init(&why);
    lst_err err = lst_threema_key_load(arg, kind, key, &why);
    if (err != LST_OK)
        rc = lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "bad %s: %s", what,
                          why.len > 0 ? why.data : lst_strerror(err));
    lst_buf_cleanup(&why);
    return rc;
}

int lst_ctl_nonce(const struct lst_ctl_args *a, const char *hex,
                  uint8_t nonce[LST_THREEMA_NONCE_SIZE])
{
    if (lst_threema_hex_decode(hex, strlen(hex), nonce, LST_THREEMA_NONCE_SIZE) != LST_OK)
        return lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "bad nonce: expected %d hex characters",
                            LST_THREEMA_NONCE_HEX);
    return LST_CTL_EXIT_OK;
}

int lst_ctl_print_line(const struct lst_ctl_args *a, const char *data, size_t len)
{
    if (fwrite(data, 1, len, stdout) != len || fputc('\n', stdout) == EOF || fflush(stdout) != 0)
        return lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "cannot write to stdout");
    return LST_CTL_EXIT_OK;
}
