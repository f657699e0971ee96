/* callback-verify and callback-decode: an incoming Gateway callback (form body) through the
 * library's callback path, exactly as gateway-in sees it: MAC first, then fields, then the
 * box. */
#include <stdio.h>
#include <string.h>

#include "lstctl.h"

/* "invalid" on stdout (the machine-readable answer) and the reason on stderr. */
static int report_invalid(const struct lst_ctl_args *a, lst_err err, const struct lst_buf *why)
{
    int rc = lst_ctl_print_line(a, "invalid", 7);
    if (rc != LST_CTL_EXIT_OK)
        return rc;
    return lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "%s",
                        why->len > 0            ? why->data
                        : err == LST_ERR_CRYPTO ? "the MAC does not match"
                                                : lst_strerror(err));
}

int lst_ctl_cmd_callback_verify(const struct lst_ctl_args *a)
{
    struct lst_buf body, why;
    lst_buf_init(&body);
    lst_buf_init(&why);
    int rc = lst_ctl_arg_or_stdin(a, a->npos > 1 ? a->pos[1] : NULL, true, &body);
    if (rc != LST_CTL_EXIT_OK)
        goto out;
    lst_err err = lst_threema_callback_verify(body.data, body.len, a->pos[0], &why);
    rc = err == LST_OK ? lst_ctl_print_line(a, "valid", 5) : report_invalid(a, err, &why);
out:
    lst_buf_cleanup(&body);
    lst_buf_cleanup(&why);
    return rc;
}

static void describe_callback(const struct lst_threema_callback *cb,
                              const struct lst_threema_msg *m, struct lst_buf *out)
{
    lst_buf_printf(out, "{\"from\":\"%s\",\"to\":\"%s\",\"messageId\":\"%s\",\"date\":%lld",
                   cb->from, cb->to, cb->message_id, (long long)cb->date);
    if (cb->nickname != NULL) {
        lst_buf_puts(out, ",\"nickname\":");
        lst_buf_json_str(out, cb->nickname, strlen(cb->nickname));
    }
    lst_buf_puts(out, ",\"message\":");
    lst_ctl_describe(m, out);
    lst_buf_puts(out, "}");
}

/* Opens the verified callback's box with our private key and the sender's public key. */
static int open_box(const struct lst_ctl_args *a, const struct lst_threema_callback *cb,
                    struct lst_threema_msg *m, struct lst_buf *why)
{
    uint8_t sk[LST_THREEMA_KEY_SIZE], pk[LST_THREEMA_KEY_SIZE];
    struct lst_threema_shared sh;
    memset(&sh, 0, sizeof(sh));
    int rc = lst_ctl_key(a, a->pos[1], LST_THREEMA_KEY_PRIVATE, "private key", sk);
    if (rc == LST_CTL_EXIT_OK)
        rc = lst_ctl_key(a, a->pos[2], LST_THREEMA_KEY_PUBLIC, "public key", pk);
    if (rc == LST_CTL_EXIT_OK && lst_threema_shared_init(&sh, sk, pk) != LST_OK)
        rc = lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "bad public key: unusable for X25519");
    if (rc == LST_CTL_EXIT_OK) {
        lst_err err = lst_threema_msg_open(&sh, cb->nonce, cb->box, cb->box_len, m, why);
        if (err != LST_OK)
            rc = lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "authentic callback, but cannot decrypt: %s",
                              err == LST_ERR_CRYPTO ? "the box does not open with these keys"
                              : why->len > 0        ? why->data
                                                    : lst_strerror(err));
    }
    lst_threema_shared_cleanup(&sh);
    lst_threema_wipe(sk, sizeof(sk));
    return rc;
}

int lst_ctl_cmd_callback_decode(const struct lst_ctl_args *a)
{
    struct lst_threema_callback cb;
    struct lst_threema_msg m;
    struct lst_buf body, why, out;
    memset(&cb, 0, sizeof(cb));
    memset(&m, 0, sizeof(m));
    lst_buf_init(&body);
    lst_buf_init(&why);
    lst_buf_init(&out);
    int rc = lst_ctl_arg_or_stdin(a, a->npos > 3 ? a->pos[3] : NULL, true, &body);
    if (rc != LST_CTL_EXIT_OK)
        goto out;
    /* verify first so that "not authentic" and "authentic but malformed" read differently. */
    lst_err err = lst_threema_callback_verify(body.data, body.len, a->pos[0], &why);
    if (err != LST_OK) {
        rc = report_invalid(a, err, &why);
        goto out;
    }
    err = lst_threema_callback_parse(body.data, body.len, a->pos[0], &cb, &why);
    if (err != LST_OK) {
        rc = lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "authentic callback, but malformed: %s",
                          why.len > 0 ? why.data : lst_strerror(err));
        goto out;
    }
    rc = open_box(a, &cb, &m, &why);
    if (rc != LST_CTL_EXIT_OK)
        goto out;
    describe_callback(&cb, &m, &out);
    rc = lst_buf_failed(&out) ? lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "out of memory")
                              : lst_ctl_print_line(a, out.data, out.len);
out:
    lst_threema_msg_cleanup(&m);
    lst_threema_callback_cleanup(&cb);
    lst_buf_cleanup(&body);
    lst_buf_cleanup(&why);
    lst_buf_cleanup(&out);
    return rc;
}
