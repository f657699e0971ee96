/* encrypt and decrypt: one end-to-end text message, offline, as the SDK's CLI does it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstctl.h"

/* Our private key and the peer's public key into a precomputed shared key. */
static int shared_from_args(const struct lst_ctl_args *a, const char *sk_arg, const char *pk_arg,
                            struct lst_threema_shared *sh)
{
    uint8_t sk[LST_THREEMA_KEY_SIZE], pk[LST_THREEMA_KEY_SIZE];
    int rc = lst_ctl_key(a, sk_arg, LST_THREEMA_KEY_PRIVATE, "private key", sk);
    if (rc == LST_CTL_EXIT_OK)
        rc = lst_ctl_key(a, pk_arg, LST_THREEMA_KEY_PUBLIC, "public key", pk);
    if (rc == LST_CTL_EXIT_OK && lst_threema_shared_init(sh, sk, pk) != LST_OK)
        rc = lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "bad public key: unusable for X25519");
    lst_threema_wipe(sk, sizeof(sk));
    return rc;
}

static int print_sealed(const struct lst_ctl_args *a, const uint8_t nonce[LST_THREEMA_NONCE_SIZE],
                        const struct lst_buf *box)
{
    char nonce_hex[LST_THREEMA_NONCE_HEX + 1];
    size_t hex_size = 2 * box->len + 1;
    char *hex = malloc(hex_size);
    int rc;
    if (hex == NULL)
        return lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "out of memory");
    lst_threema_hex_encode(nonce, LST_THREEMA_NONCE_SIZE, nonce_hex, sizeof(nonce_hex));
    lst_threema_hex_encode((const uint8_t *)box->data, box->len, hex, hex_size);
    rc = lst_ctl_print_line(a, nonce_hex, LST_THREEMA_NONCE_HEX);
    if (rc == LST_CTL_EXIT_OK)
        rc = lst_ctl_print_line(a, hex, hex_size - 1);
    free(hex);
    return rc;
}

int lst_ctl_cmd_encrypt(const struct lst_ctl_args *a)
{
    struct lst_threema_shared sh;
    struct lst_threema_msg m;
    struct lst_buf text, box, why;
    uint8_t nonce[LST_THREEMA_NONCE_SIZE];
    memset(&sh, 0, sizeof(sh));
    memset(&m, 0, sizeof(m));
    lst_buf_init(&text);
    lst_buf_init(&box);
    lst_buf_init(&why);
    int rc = shared_from_args(a, a->pos[0], a->pos[1], &sh);
    /* Like the SDK's `encrypt`, text from stdin is taken verbatim: a trailing newline is part
     * of the message (printf '%s' avoids it). */
    if (rc == LST_CTL_EXIT_OK)
        rc = lst_ctl_arg_or_stdin(a, a->npos > 2 ? a->pos[2] : NULL, false, &text);
    if (rc != LST_CTL_EXIT_OK)
        goto out;
    lst_err err = lst_threema_msg_set_text(&m, text.data, text.len);
    if (err == LST_OK)
        err = lst_threema_msg_seal(&m, &sh, nonce, &box, &why);
    if (err != LST_OK) {
        rc = lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "cannot encrypt the text: %s",
                          why.len > 0 ? why.data : lst_strerror(err));
        goto out;
    }
    rc = print_sealed(a, nonce, &box);
out:
    lst_threema_msg_cleanup(&m);
    lst_threema_shared_cleanup(&sh);
    lst_buf_cleanup(&text);
    lst_buf_cleanup(&box);
    lst_buf_cleanup(&why);
    return rc;
}

int lst_ctl_cmd_decrypt(const struct lst_ctl_args *a)
{
    struct lst_threema_shared sh;
    struct lst_threema_msg m;
    struct lst_buf hex, box, why, out;
    uint8_t nonce[LST_THREEMA_NONCE_SIZE];
    memset(&sh, 0, sizeof(sh));
    memset(&m, 0, sizeof(m));
    lst_buf_init(&hex);
    lst_buf_init(&box);
    lst_buf_init(&why);
    lst_buf_init(&out);
    int rc = shared_from_args(a, a->pos[0], a->pos[1], &sh);
    if (rc == LST_CTL_EXIT_OK)
        rc = lst_ctl_nonce(a, a->pos[2], nonce);
    if (rc == LST_CTL_EXIT_OK)
        rc = lst_ctl_arg_or_stdin(a, a->npos > 3 ? a->pos[3] : NULL, true, &hex);
    if (rc != LST_CTL_EXIT_OK)
        goto out;
    if (lst_threema_hex_decode_buf(hex.data, hex.len, &box) != LST_OK) {
        rc = lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "bad box: not an even number of hex characters");
        goto out;
    }
    lst_err err = lst_threema_msg_open(&sh, nonce, (const uint8_t *)box.data, box.len, &m, &why);
    if (err != LST_OK) {
        rc = lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "cannot decrypt: %s",
                          err == LST_ERR_CRYPTO ? "the box does not open with these keys and nonce"
                          : why.len > 0         ? why.data
                                                : lst_strerror(err));
        goto out;
    }
    /* A text prints as the text (as the SDK's `decrypt`); anything else, or --json, as JSON. */
    if (m.kind == LST_THREEMA_MSG_TEXT && !a->set[LST_CTL_DECRYPT_JSON]) {
        rc = lst_ctl_print_line(a, m.text, m.text_len);
        goto out;
    }
    if (lst_ctl_describe(&m, &out) != LST_OK) {
        rc = lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "out of memory");
        goto out;
    }
    rc = lst_ctl_print_line(a, out.data, out.len);
out:
    lst_threema_msg_cleanup(&m);
    lst_threema_shared_cleanup(&sh);
    lst_buf_cleanup(&hex);
    lst_buf_cleanup(&box);
    lst_buf_cleanup(&why);
    lst_buf_cleanup(&out);
    return rc;
}
