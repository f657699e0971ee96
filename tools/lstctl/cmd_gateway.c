/* The network commands: send, lookup, capabilities, credits, through the library's Gateway
 * client (lst/gateway.h) with the settings of gw_config.c (lst/gateway_config.h). The exit code
 * follows the client's outcome classification: OK 0, PERMANENT and FATAL 1, RETRY and PAUSE 3. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lst/log.h"
#include "lstctl.h"

/* The settings and the client of one command. */
struct session {
    struct lst_ctl_gw_config cfg;
    struct lst_gateway *gw;
};

static int session_open(const struct lst_ctl_args *a, struct session *s)
{
    memset(s, 0, sizeof(*s));
    if (lst_ctl_gw_config_load(&s->cfg) != LST_OK)
        return LST_CTL_EXIT_USAGE;
    lst_log_init("lstctl", s->cfg.log_level);
    lst_err err = lst_gateway_settings_client(&s->cfg.gw, &s->gw);
    if (err != LST_OK)
        return lst_ctl_fail(a, err == LST_ERR_CONFIG ? LST_CTL_EXIT_USAGE : LST_CTL_EXIT_FAIL,
                            "cannot set up the Gateway client: %s", lst_strerror(err));
    return LST_CTL_EXIT_OK;
}

static void session_close(struct session *s)
{
    lst_gateway_destroy(s->gw);
    s->gw = NULL;
    lst_ctl_gw_config_cleanup(&s->cfg);
}

/* The exit code of a finished call; prints why when it did not succeed. */
static int outcome_exit(const struct lst_ctl_args *a, const struct lst_gateway_result *res)
{
    int code;
    switch (res->outcome) {
    case LST_GATEWAY_OK:
        return LST_CTL_EXIT_OK;
    case LST_GATEWAY_RETRY:
    case LST_GATEWAY_PAUSE:
        code = LST_CTL_EXIT_RETRY;
        break;
    case LST_GATEWAY_FATAL:
    case LST_GATEWAY_PERMANENT:
    default:
        code = LST_CTL_EXIT_FAIL;
        break;
    }
    if (res->http_status != 0)
        return lst_ctl_fail(a, code, "%s (HTTP %ld, %s)", res->reason, res->http_status,
                            lst_gateway_outcome_name(res->outcome));
    return lst_ctl_fail(a, code, "%s (%s)", res->reason, lst_gateway_outcome_name(res->outcome));
}

static int check_id(const struct lst_ctl_args *a, const char *id)
{
    if (!lst_threema_id_valid(id, strlen(id)))
        return lst_ctl_fail(a, LST_CTL_EXIT_FAIL,
                            "'%s' is not a Threema ID (8 characters of [0-9A-Z])", id);
    return LST_CTL_EXIT_OK;
}

/* The recipient's public key: from -k, else looked up with /pubkeys/{id}. */
static int recipient_key(const struct lst_ctl_args *a, struct session *s, const char *to,
                         uint8_t pk[LST_THREEMA_KEY_SIZE])
{
    const char *given = lst_ctl_opt(a, LST_CTL_SEND_KEY);
    char hex[LST_GATEWAY_KEY_HEX + 1];
    struct lst_gateway_result res;
    if (given != NULL)
        return lst_ctl_key(a, given, LST_THREEMA_KEY_PUBLIC, "public key", pk);
    if (lst_gateway_pubkey(s->gw, to, hex, &res) != LST_GATEWAY_OK)
        return outcome_exit(a, &res);
    if (lst_threema_hex_decode(hex, strlen(hex), pk, LST_THREEMA_KEY_SIZE) != LST_OK)
        return lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "the Gateway's public key of %s is not hex", to);
    return LST_CTL_EXIT_OK;
}

/* Encrypts text for the recipient into nonce_hex and box_hex (a new string, free()). */
static int seal_text(const struct lst_ctl_args *a, const uint8_t sk[LST_THREEMA_KEY_SIZE],
                     const uint8_t pk[LST_THREEMA_KEY_SIZE], const struct lst_buf *text,
                     char nonce_hex[LST_THREEMA_NONCE_HEX + 1], char **box_hex)
{
    struct lst_threema_shared sh;
    struct lst_threema_msg m;
    struct lst_buf box, why;
    uint8_t nonce[LST_THREEMA_NONCE_SIZE];
    int rc = LST_CTL_EXIT_OK;
    memset(&sh, 0, sizeof(sh));
    memset(&m, 0, sizeof(m));
    lst_buf_init(&box);
    lst_buf_init(&why);
    lst_err err = lst_threema_shared_init(&sh, sk, pk);
    if (err == LST_OK)
        err = lst_threema_msg_set_text(&m, text->data, text->len);
    if (err == LST_OK)
        err = lst_threema_msg_seal(&m, &sh, nonce, &box, &why);
    if (err == LST_OK) {
        *box_hex = malloc(2 * box.len + 1);
        err = *box_hex != NULL ? LST_OK : LST_ERR_NOMEM;
    }
    if (err != LST_OK) {
        rc = lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "cannot encrypt the text: %s",
                          why.len > 0 ? why.data : lst_strerror(err));
        goto out;
    }
    lst_threema_hex_encode(nonce, sizeof(nonce), nonce_hex, LST_THREEMA_NONCE_HEX + 1);
    lst_threema_hex_encode((const uint8_t *)box.data, box.len, *box_hex, 2 * box.len + 1);
out:
    lst_threema_msg_cleanup(&m);
    lst_threema_shared_cleanup(&sh);
    lst_buf_cleanup(&box);
    lst_buf_cleanup(&why);
    return rc;
}

int lst_ctl_cmd_send(const struct lst_ctl_args *a)
{
    struct session s;
    struct lst_buf text;
    uint8_t sk[LST_THREEMA_KEY_SIZE], pk[LST_THREEMA_KEY_SIZE];
    char nonce_hex[LST_THREEMA_NONCE_HEX + 1], msgid[LST_GATEWAY_MSGID_HEX + 1];
    char *box_hex = NULL;
    struct lst_gateway_result res;
    const char *to = a->pos[0];
    lst_buf_init(&text);
    int rc = check_id(a, to);
    /* Like the SDK's send-e2e, text from stdin loses its surrounding whitespace. */
    if (rc == LST_CTL_EXIT_OK)
        rc = lst_ctl_arg_or_stdin(a, a->npos > 1 ? a->pos[1] : NULL, a->npos <= 1, &text);
    if (rc != LST_CTL_EXIT_OK)
        goto out_nosession;
    rc = session_open(a, &s);
    if (rc == LST_CTL_EXIT_OK && s.cfg.gw.private_key == NULL)
        rc = lst_ctl_fail(a, LST_CTL_EXIT_USAGE,
                          "LST_PRIVATE_KEY (or LST_PRIVATE_KEY_FILE) "
                          "must be set to send");
    if (rc == LST_CTL_EXIT_OK)
        rc = lst_ctl_key(a, s.cfg.gw.private_key, LST_THREEMA_KEY_PRIVATE, "LST_PRIVATE_KEY", sk);
    if (rc == LST_CTL_EXIT_OK)
        rc = recipient_key(a, &s, to, pk);
    if (rc == LST_CTL_EXIT_OK)
        rc = seal_text(a, sk, pk, &text, nonce_hex, &box_hex);
    if (rc != LST_CTL_EXIT_OK)
        goto out;
    struct lst_gateway_e2e msg = {
        .to = to,
        .nonce_hex = nonce_hex,
        .box_hex = box_hex,
        .no_delivery_receipts = a->set[LST_CTL_SEND_NO_RECEIPTS],
        .no_push = a->set[LST_CTL_SEND_NO_PUSH],
    };
    if (lst_gateway_send_e2e(s.gw, &msg, msgid, &res) == LST_GATEWAY_OK)
        rc = lst_ctl_print_line(a, msgid, strlen(msgid));
    else
        rc = outcome_exit(a, &res);
out:
    session_close(&s);
out_nosession:
    lst_threema_wipe(sk, sizeof(sk));
    free(box_hex);
    lst_buf_cleanup(&text);
    return rc;
}

/* Which lookup option was given; -1 and a message unless exactly one. */
static int lookup_mode(const struct lst_ctl_args *a)
{
    int mode = -1;
    for (int i = LST_CTL_LOOKUP_PHONE; i <= LST_CTL_LOOKUP_EMAIL_HASH; i++) {
        if (!a->set[i])
            continue;
        if (mode >= 0)
            return -1;
        mode = i;
    }
    return mode;
}

static int lookup_pubkey(const struct lst_ctl_args *a, struct session *s, const char *id)
{
    char hex[LST_GATEWAY_KEY_HEX + 1], text[LST_THREEMA_KEY_STR_SIZE];
    uint8_t pk[LST_THREEMA_KEY_SIZE];
    struct lst_gateway_result res;
    int rc = check_id(a, id);
    if (rc != LST_CTL_EXIT_OK)
        return rc;
    if (lst_gateway_pubkey(s->gw, id, hex, &res) != LST_GATEWAY_OK)
        return outcome_exit(a, &res);
    if (lst_threema_hex_decode(hex, strlen(hex), pk, sizeof(pk)) != LST_OK)
        return lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "the Gateway answered a malformed key");
    /* The SDK prints the key in its text form, so does lstctl. */
    lst_threema_key_format(LST_THREEMA_KEY_PUBLIC, pk, text);
    return lst_ctl_print_line(a, text, strlen(text));
}

int lst_ctl_cmd_lookup(const struct lst_ctl_args *a)
{
    static const enum lst_gateway_lookup_kind kinds[] = {
        [LST_CTL_LOOKUP_PHONE] = LST_GATEWAY_LOOKUP_PHONE,
        [LST_CTL_LOOKUP_EMAIL] = LST_GATEWAY_LOOKUP_EMAIL,
        [LST_CTL_LOOKUP_PHONE_HASH] = LST_GATEWAY_LOOKUP_PHONE_HASH,
        [LST_CTL_LOOKUP_EMAIL_HASH] = LST_GATEWAY_LOOKUP_EMAIL_HASH,
    };
    struct session s;
    struct lst_gateway_result res;
    char id[LST_GATEWAY_ID_LEN + 1];
    int mode = lookup_mode(a);
    if (mode < 0)
        return lst_ctl_fail(a, LST_CTL_EXIT_USAGE,
                            "give exactly one of --phone, --email, --id, --phone-hash, "
                            "--email-hash");
    int rc = session_open(a, &s);
    if (rc != LST_CTL_EXIT_OK)
        goto out;
    if (mode == LST_CTL_LOOKUP_ID) {
        rc = lookup_pubkey(a, &s, a->value[mode]);
        goto out;
    }
    if (lst_gateway_lookup(s.gw, kinds[mode], a->value[mode], id, &res) == LST_GATEWAY_OK)
        rc = lst_ctl_print_line(a, id, strlen(id));
    else
        rc = outcome_exit(a, &res);
out:
    session_close(&s);
    return rc;
}

static int compare_names(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

int lst_ctl_cmd_capabilities(const struct lst_ctl_args *a)
{
    struct session s;
    struct lst_gateway_result res;
    struct lst_gateway_caps caps;
    struct lst_buf out;
    const char *names[32];
    size_t n = 0;
    lst_buf_init(&out);
    int rc = check_id(a, a->pos[0]);
    if (rc != LST_CTL_EXIT_OK) {
        lst_buf_cleanup(&out);
        return rc;
    }
    rc = session_open(a, &s);
    if (rc != LST_CTL_EXIT_OK)
        goto out;
    if (lst_gateway_capabilities(s.gw, a->pos[0], &caps, &res) != LST_GATEWAY_OK) {
        rc = outcome_exit(a, &res);
        goto out;
    }
    for (unsigned bit = 0; bit < 32; bit++) {
        const char *name = lst_gateway_cap_name((enum lst_gateway_cap)(1u << bit));
        if ((caps.mask & (1u << bit)) != 0 && name != NULL)
            names[n++] = name;
    }
    /* Sorted and ", "-joined, as the SDK prints them. */
    qsort(names, n, sizeof(names[0]), compare_names);
    for (size_t i = 0; i < n; i++)
        lst_buf_printf(&out, "%s%s", i > 0 ? ", " : "", names[i]);
    rc = lst_ctl_print_line(a, out.len > 0 ? out.data : "", out.len);
out:
    session_close(&s);
    lst_buf_cleanup(&out);
    return rc;
}

int lst_ctl_cmd_credits(const struct lst_ctl_args *a)
{
    struct session s;
    struct lst_gateway_result res;
    int64_t credits = 0;
    char text[32];
    int rc = session_open(a, &s);
    if (rc != LST_CTL_EXIT_OK)
        goto out;
    if (lst_gateway_credits(s.gw, &credits, &res) != LST_GATEWAY_OK) {
        rc = outcome_exit(a, &res);
        goto out;
    }
    int len = snprintf(text, sizeof(text), "%lld", (long long)credits);
    rc = lst_ctl_print_line(a, text, (size_t)len);
out:
    session_close(&s);
    return rc;
}
