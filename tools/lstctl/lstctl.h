/* lstctl: the operator's command-line tool for the Threema Gateway protocol. Internal to the
 * tool: nothing here is part of liblst.
 *
 * Files, one concern each:
 *   main.c          the command table, --help, dispatch
 *   args.c          option/positional parsing, stdin, key arguments, error output
 *   describe.c      a decoded message as one line of JSON
 *   cmd_keys.c      keygen, derive, hash
 *   cmd_crypto.c    encrypt, decrypt
 *   cmd_callback.c  callback-verify, callback-decode
 *   gw_config.c     the settings (the library's Gateway section + the log level)
 *   cmd_gateway.c   send, lookup, capabilities, credits
 *
 * Argument order mirrors the official SDK's CLI (threema-gateway). Results go to stdout,
 * errors to stderr as "lstctl COMMAND: reason". Exit codes: 0 success, 1 failure (invalid
 * input, a MAC or box that does not verify, a permanent or account error from the Gateway),
 * 2 usage, 3 retry later (the Gateway asked to back off, a transport error or timeout, or no
 * credits left: 402 is an operator's matter but retrying later is what a script should do). */
#ifndef LST_TOOL_LSTCTL_H
#define LST_TOOL_LSTCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lst/error.h"
#include "lst/gateway.h"
#include "lst/gateway_config.h"
#include "lst/log.h"
#include "lst/threema.h"
#include "lst/util.h"

#define LST_CTL_EXIT_OK    0
#define LST_CTL_EXIT_FAIL  1
#define LST_CTL_EXIT_USAGE 2
#define LST_CTL_EXIT_RETRY 3

/* Most text read from stdin (a form body with a 64 KiB box is about 130 KiB of hex). */
#define LST_CTL_STDIN_MAX (1024u * 1024u)

#define LST_CTL_MAX_POS  6
#define LST_CTL_MAX_OPTS 8

/* One option of a command: "--long" and optionally "-s"; a value follows as the next
 * argument or after '=' when takes_value. */
struct lst_ctl_opt {
    const char *long_name; /* without the dashes */
    char short_name;       /* 0: none */
    bool takes_value;
    const char *help; /* one line */
};

/* The parsed command line of one command. Values are borrowed from argv. */
struct lst_ctl_args {
    const char *cmd; /* the command name, for messages */
    const char *pos[LST_CTL_MAX_POS];
    size_t npos;
    bool set[LST_CTL_MAX_OPTS];          /* by index into the command's options */
    const char *value[LST_CTL_MAX_OPTS]; /* value of a set option that takes one */
};

struct lst_ctl_command {
    const char *name;
    const char *synopsis; /* arguments after the name, e.g. "PRIVATE_KEY PUBLIC_KEY [TEXT]" */
    const char *summary;  /* one line for the command list */
    const char *details;  /* the rest of the per-command help (may be NULL) */
    size_t min_pos, max_pos;
    const struct lst_ctl_opt *opts;
    size_t nopts;
    bool gateway; /* talks to the Gateway: its help lists the environment settings */
    int (*run)(const struct lst_ctl_args *a);
};

/* ---- args.c ---- */

/* Parses argv[0..argc) (the words after the command name) against cmd: options anywhere
 * ("--" ends them), then positionals within [min_pos, max_pos]. Returns LST_CTL_EXIT_OK,
 * or LST_CTL_EXIT_USAGE after printing the reason. *help is set for -h/--help. */
int lst_ctl_parse(const struct lst_ctl_command *cmd, int argc, char **argv,
                  struct lst_ctl_args *out, bool *help);
/* The value of option idx when set, else NULL. */
const char *lst_ctl_opt(const struct lst_ctl_args *a, size_t idx);

/* Prints "lstctl CMD: <message>\n" on stderr and returns code. */
int lst_ctl_fail(const struct lst_ctl_args *a, int code, const char *fmt, ...) LST_PRINTF(3, 4);

/* Reads all of stdin into out (replaced), at most LST_CTL_STDIN_MAX bytes. */
lst_err lst_ctl_read_stdin(struct lst_buf *out);
/* arg when not NULL, else stdin; with trim, surrounding ASCII whitespace is dropped (hex and
 * form bodies never contain any, and `echo` adds a newline). Prints the error itself. */
int lst_ctl_arg_or_stdin(const struct lst_ctl_args *a, const char *arg, bool trim,
                         struct lst_buf *out);
/* A key from a key string or a key file path (lst_threema_key_load); prints the error with
 * what ("private key", ...) and returns LST_CTL_EXIT_FAIL on failure. */
int lst_ctl_key(const struct lst_ctl_args *a, const char *arg, enum lst_threema_key_kind kind,
                const char *what, uint8_t key[LST_THREEMA_KEY_SIZE]);
/* Exactly 48 hex chars into a nonce; prints the error. */
int lst_ctl_nonce(const struct lst_ctl_args *a, const char *hex,
                  uint8_t nonce[LST_THREEMA_NONCE_SIZE]);
/* Writes data followed by a newline to stdout; LST_CTL_EXIT_FAIL when stdout fails. */
int lst_ctl_print_line(const struct lst_ctl_args *a, const char *data, size_t len);

/* ---- describe.c ---- */

/* m as one line of JSON (no newline), appended to out: {"type":"file",...}. Every member of
 * the kind is included; binary values as lowercase hex. */
lst_err lst_ctl_describe(const struct lst_threema_msg *m, struct lst_buf *out);

/* ---- commands ---- */

int lst_ctl_cmd_keygen(const struct lst_ctl_args *a);
int lst_ctl_cmd_derive(const struct lst_ctl_args *a);
int lst_ctl_cmd_hash(const struct lst_ctl_args *a);
int lst_ctl_cmd_encrypt(const struct lst_ctl_args *a);
int lst_ctl_cmd_decrypt(const struct lst_ctl_args *a);
int lst_ctl_cmd_callback_verify(const struct lst_ctl_args *a);
int lst_ctl_cmd_callback_decode(const struct lst_ctl_args *a);
int lst_ctl_cmd_send(const struct lst_ctl_args *a);
int lst_ctl_cmd_lookup(const struct lst_ctl_args *a);
int lst_ctl_cmd_capabilities(const struct lst_ctl_args *a);
int lst_ctl_cmd_credits(const struct lst_ctl_args *a);

/* Option indexes shared between main.c's tables and the commands. */
enum { LST_CTL_HASH_EMAIL = 0, LST_CTL_HASH_PHONE };
enum { LST_CTL_DECRYPT_JSON = 0 };
enum { LST_CTL_SEND_KEY = 0, LST_CTL_SEND_NO_RECEIPTS, LST_CTL_SEND_NO_PUSH };
enum {
    LST_CTL_LOOKUP_PHONE = 0,
    LST_CTL_LOOKUP_EMAIL,
    LST_CTL_LOOKUP_ID,
    LST_CTL_LOOKUP_PHONE_HASH,
    LST_CTL_LOOKUP_EMAIL_HASH,
};

/* ---- gw_config.c ---- */

/* The settings of the network commands: the library's Gateway section (lst/gateway_config.h)
 * and lstctl's log level. Strings owned (freed by lst_ctl_gw_config_cleanup). */
struct lst_ctl_gw_config {
    enum lst_log_level log_level;
    struct lst_gateway_settings gw;
};

/* Loads and validates; prints every problem on stderr. LST_ERR_CONFIG when invalid. */
lst_err lst_ctl_gw_config_load(struct lst_ctl_gw_config *c);
void lst_ctl_gw_config_cleanup(struct lst_ctl_gw_config *c);
/* The environment reference (for the help of the Gateway commands), appended to out. */
lst_err lst_ctl_gw_config_help(struct lst_buf *out);

#endif
