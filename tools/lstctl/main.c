/* lstctl: the command table, help and dispatch. See lstctl.h for the exit codes. */
#include <stdio.h>
#include <string.h>

#include "lst/log.h"
#include "lstctl.h"

static const struct lst_ctl_opt hash_opts[] = {
    [LST_CTL_HASH_EMAIL] = {"email", 'e', true, "an e-mail address (trimmed, lowercased)"},
    [LST_CTL_HASH_PHONE] = {"phone", 'p', true, "a phone number, E.164 (+, spaces, - dropped)"},
};
static const struct lst_ctl_opt decrypt_opts[] = {
    [LST_CTL_DECRYPT_JSON] = {"json", 'j', false, "print a text message as JSON too"},
};
static const struct lst_ctl_opt send_opts[] = {
    [LST_CTL_SEND_KEY] = {"public-key", 'k', true,
                          "the recipient's public key (string or file); default: looked up"},
    [LST_CTL_SEND_NO_RECEIPTS] = {"no-delivery-receipts", 0, false,
                                  "ask the recipient's app not to send delivery receipts"},
    [LST_CTL_SEND_NO_PUSH] = {"no-push", 0, false, "no push notification"},
};
static const struct lst_ctl_opt lookup_opts[] = {
    [LST_CTL_LOOKUP_PHONE] = {"phone", 'p', true, "Threema ID of a phone number (E.164 digits)"},
    [LST_CTL_LOOKUP_EMAIL] = {"email", 'e', true, "Threema ID of an e-mail address"},
    [LST_CTL_LOOKUP_ID] = {"id", 'i', true, "public key of a Threema ID (prints public:<hex>)"},
    [LST_CTL_LOOKUP_PHONE_HASH] = {"phone-hash", 0, true, "Threema ID of a phone hash (hash -p)"},
    [LST_CTL_LOOKUP_EMAIL_HASH] = {"email-hash", 0, true, "Threema ID of an e-mail hash (hash -e)"},
};

#define OPTS(o) o, LST_ARRAY_LEN(o)

static const struct lst_ctl_command commands[] = {
    {"keygen", "PRIVATE_FILE PUBLIC_FILE", "generate a key pair into two new files",
     "Writes private:<hex> (mode 0600) and public:<hex>; refuses to overwrite a file.", 2, 2, NULL,
     0, false, lst_ctl_cmd_keygen},
    {"derive", "PRIVATE_KEY", "print the public key of a private key", "Prints public:<hex>.", 1, 1,
     NULL, 0, false, lst_ctl_cmd_derive},
    {"hash", "(--email ADDR | --phone NUMBER)", "the lookup hash of an e-mail or phone number",
     "Prints the 64-hex HMAC-SHA256 the Gateway's hash lookups take.", 0, 0, OPTS(hash_opts), false,
     lst_ctl_cmd_hash},
    {"encrypt", "PRIVATE_KEY PUBLIC_KEY [TEXT]", "encrypt a text message",
     "Encrypts TEXT (or all of stdin, taken verbatim as the SDK does: a trailing newline is\n"
     "part of the text) with the sender's PRIVATE_KEY for the recipient's PUBLIC_KEY.\n"
     "Prints the nonce (hex) on line 1 and the box (hex) on line 2.",
     2, 3, NULL, 0, false, lst_ctl_cmd_encrypt},
    {"decrypt", "PRIVATE_KEY PUBLIC_KEY NONCE [BOX]", "decrypt a message",
     "Decrypts BOX (hex, or stdin) with the recipient's PRIVATE_KEY and the sender's\n"
     "PUBLIC_KEY. Prints a text message's text, any other type as one line of JSON.",
     3, 4, OPTS(decrypt_opts), false, lst_ctl_cmd_decrypt},
    {"callback-verify", "SECRET [BODY]", "check the MAC of a Gateway callback",
     "BODY is the callback's x-www-form-urlencoded body (or stdin). Prints 'valid' (exit 0)\n"
     "or 'invalid' (exit 1, the reason on stderr).",
     1, 2, NULL, 0, false, lst_ctl_cmd_callback_verify},
    {"callback-decode", "SECRET PRIVATE_KEY PUBLIC_KEY [BODY]", "verify and decrypt a callback",
     "Verifies the MAC with SECRET, then opens the box with our PRIVATE_KEY and the sender's\n"
     "PUBLIC_KEY, as gateway-in does. Prints one line of JSON: from, to, messageId, date,\n"
     "nickname and the message. A wrong MAC prints 'invalid' (exit 1).",
     3, 4, NULL, 0, false, lst_ctl_cmd_callback_decode},
    {"send", "[-k PUBLIC_KEY] TO [TEXT]", "send an end-to-end encrypted text",
     "Encrypts TEXT (or stdin, surrounding whitespace removed as the SDK's send-e2e does)\n"
     "with LST_PRIVATE_KEY and sends it to the Threema ID TO. Prints the message ID.",
     1, 2, OPTS(send_opts), true, lst_ctl_cmd_send},
    {"lookup", "(--phone N | --email A | --id ID | --phone-hash H | --email-hash H)",
     "look up a Threema ID or a public key", NULL, 0, 0, OPTS(lookup_opts), true,
     lst_ctl_cmd_lookup},
    {"capabilities", "ID", "the reception capabilities of a Threema ID",
     "Prints the known capabilities, sorted, comma-separated.", 1, 1, NULL, 0, true,
     lst_ctl_cmd_capabilities},
    {"credits", "", "the remaining credits of the Gateway ID", NULL, 0, 0, NULL, 0, true,
     lst_ctl_cmd_credits},
};

static void usage(FILE *f)
{
    fputs("usage: lstctl COMMAND [ARGS]   (lstctl COMMAND --help for details)\n\n"
          "Threema Gateway protocol tool of Leitstand. Key arguments take a key string\n"
          "(private:<hex> / public:<hex>) or the path of a key file.\n\ncommands:\n",
          f);
    for (size_t i = 0; i < LST_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fputs("\nsend, lookup, capabilities and credits talk to the Gateway configured in the\n"
          "environment (LST_GATEWAY_URL, default the local simulator; see lstctl send --help).\n"
          "exit codes: 0 ok, 1 failure, 2 usage or configuration, 3 retry later\n",
          f);
}

static int command_help(const struct lst_ctl_command *cmd)
{
    printf("usage: lstctl %s%s%s\n\n%s.\n", cmd->name, cmd->synopsis[0] != '\0' ? " " : "",
           cmd->synopsis, cmd->summary);
    if (cmd->details != NULL)
        printf("%s\n", cmd->details);
    if (cmd->nopts > 0)
        fputs("\noptions:\n", stdout);
    for (size_t i = 0; i < cmd->nopts; i++) {
        const struct lst_ctl_opt *o = &cmd->opts[i];
        char names[64];
        if (o->short_name != 0)
            snprintf(names, sizeof(names), "-%c, --%s%s", o->short_name, o->long_name,
                     o->takes_value ? " V" : "");
        else
            snprintf(names, sizeof(names), "    --%s%s", o->long_name, o->takes_value ? " V" : "");
        printf("  %-28s %s\n", names, o->help);
    }
    if (cmd->gateway) {
        struct lst_buf h;
        lst_buf_init(&h);
        /* Skip the generic service preamble (--print-config etc. are not lstctl options). */
        const char *from =
            lst_ctl_gw_config_help(&h) == LST_OK ? strstr(h.data, "Configuration") : NULL;
        if (from != NULL)
            printf("\n%s", from);
        lst_buf_cleanup(&h);
    }
    return fflush(stdout) == 0 ? LST_CTL_EXIT_OK : LST_CTL_EXIT_FAIL;
}

static const struct lst_ctl_command *find_command(const char *name)
{
    for (size_t i = 0; i < LST_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    struct lst_ctl_args args;
    bool help = false;
    if (argc < 2) {
        usage(stderr);
        return LST_CTL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        const struct lst_ctl_command *topic = argc > 2 ? find_command(argv[2]) : NULL;
        if (topic != NULL)
            return command_help(topic);
        usage(stdout);
        return LST_CTL_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("lstctl %s\n", LST_VERSION);
        return LST_CTL_EXIT_OK;
    }
    const struct lst_ctl_command *cmd = find_command(argv[1]);
    if (cmd == NULL) {
        fprintf(stderr, "lstctl: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return LST_CTL_EXIT_USAGE;
    }
    int rc = lst_ctl_parse(cmd, argc - 2, argv + 2, &args, &help);
    if (rc != LST_CTL_EXIT_OK)
        return rc;
    if (help)
        return command_help(cmd);
    /* Offline commands log nothing; the Gateway commands raise the level from their config. */
    lst_log_init("lstctl", LST_LOG_WARN);
    if (lst_threema_init() != LST_OK) {
        fputs("lstctl: libsodium cannot be initialised\n", stderr);
        return LST_CTL_EXIT_FAIL;
    }
    return cmd->run(&args);
}
