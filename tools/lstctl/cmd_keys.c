/* Key and hash commands: keygen, derive, hash. Offline, no configuration. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lstctl.h"

int lst_ctl_cmd_keygen(const struct lst_ctl_args *a)
{
    uint8_t sk[LST_THREEMA_KEY_SIZE], pk[LST_THREEMA_KEY_SIZE];
    struct lst_buf why;
    int rc = LST_CTL_EXIT_OK;
    lst_buf_init(&why);
    lst_err err = lst_threema_key_generate(sk, pk);
    if (err != LST_OK) {
        rc =
            lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "cannot generate a key pair: %s", lst_strerror(err));
        goto out;
    }
    /* The private key file is created 0600 and never overwritten (the library refuses an
     * existing file): a typo must not destroy the key of a running deployment. */
    err = lst_threema_key_write_file(a->pos[0], LST_THREEMA_KEY_PRIVATE, sk, &why);
    if (err != LST_OK) {
        rc = lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "%s: %s", a->pos[0],
                          why.len > 0 ? why.data : lst_strerror(err));
        goto out;
    }
    err = lst_threema_key_write_file(a->pos[1], LST_THREEMA_KEY_PUBLIC, pk, &why);
    if (err != LST_OK) {
        /* Half a pair is useless: remove the private key file we just created. */
        unlink(a->pos[0]);
        rc = lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "%s: %s", a->pos[1],
                          why.len > 0 ? why.data : lst_strerror(err));
    }
out:
    lst_threema_wipe(sk, sizeof(sk));
    lst_buf_cleanup(&why);
    return rc;
}

int lst_ctl_cmd_derive(const struct lst_ctl_args *a)
{
    uint8_t sk[LST_THREEMA_KEY_SIZE], pk[LST_THREEMA_KEY_SIZE];
    char text[LST_THREEMA_KEY_STR_SIZE];
    int rc = lst_ctl_key(a, a->pos[0], LST_THREEMA_KEY_PRIVATE, "private key", sk);
    if (rc != LST_CTL_EXIT_OK)
        goto out;
    if (lst_threema_key_derive(sk, pk) != LST_OK) {
        rc = lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "cannot derive the public key");
        goto out;
    }
    lst_threema_key_format(LST_THREEMA_KEY_PUBLIC, pk, text);
    rc = lst_ctl_print_line(a, text, strlen(text));
out:
    lst_threema_wipe(sk, sizeof(sk));
    return rc;
}

int lst_ctl_cmd_hash(const struct lst_ctl_args *a)
{
    const char *email = lst_ctl_opt(a, LST_CTL_HASH_EMAIL);
    const char *phone = lst_ctl_opt(a, LST_CTL_HASH_PHONE);
    char hash[LST_THREEMA_HASH_HEX + 1];
    if ((email == NULL) == (phone == NULL))
        return lst_ctl_fail(a, LST_CTL_EXIT_USAGE,
                            "give exactly one of --email ADDR or --phone NUMBER");
    lst_err err =
        email != NULL ? lst_threema_hash_email(email, hash) : lst_threema_hash_phone(phone, hash);
    if (err != LST_OK)
        return lst_ctl_fail(a, LST_CTL_EXIT_FAIL, "invalid %s: %s",
                            email != NULL ? "e-mail address" : "phone number", lst_strerror(err));
    return lst_ctl_print_line(a, hash, LST_THREEMA_HASH_HEX);
}
