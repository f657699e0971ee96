/* libFuzzer target: the Gateway callback body (untrusted input from the network).
 *
 * Built with LST_FUZZING, so lst_threema_callback_parse skips the MAC verdict and the fuzzer
 * reaches the field checks. Properties checked beyond "no crash": a parsed callback rebuilt
 * with lst_threema_callback_build parses back to the same fields, and its box is fed to the
 * container decoder as if it were a decrypted container (so that decoder is reached too). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lst/threema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-secret"

static void check_same(const struct lst_threema_callback *a, const struct lst_threema_callback *b)
{
    if (strcmp(a->from, b->from) != 0 || strcmp(a->to, b->to) != 0 ||
        memcmp(a->message_id_bytes, b->message_id_bytes, sizeof(a->message_id_bytes)) != 0 ||
        a->date != b->date || memcmp(a->nonce, b->nonce, sizeof(a->nonce)) != 0 ||
        a->box_len != b->box_len || memcmp(a->box, b->box, a->box_len) != 0 ||
        (a->nickname == NULL) != (b->nickname == NULL) ||
        (a->nickname != NULL && strcmp(a->nickname, b->nickname) != 0))
        abort();
}

static void rebuild(const struct lst_threema_callback *cb)
{
    struct lst_buf body;
    struct lst_threema_callback again;
    lst_buf_init(&body);
    if (lst_threema_callback_build(cb, SECRET, &body, NULL) != LST_OK)
        abort(); /* everything parse accepts must be buildable */
    if (lst_threema_callback_verify(body.data, body.len, SECRET, NULL) != LST_OK)
        abort();
    if (lst_threema_callback_parse(body.data, body.len, SECRET, &again, NULL) != LST_OK)
        abort();
    check_same(cb, &again);
    lst_threema_callback_cleanup(&again);
    lst_buf_cleanup(&body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        lst_threema_init();
        init = 1;
    }
    /* Copy into an exact-size allocation so ASan sees reads past the end. */
    char *body = malloc(size + 1);
    if (body == NULL)
        return 0;
    memcpy(body, data, size);
    body[size] = '\0';
    struct lst_threema_callback cb;
    struct lst_buf why;
    lst_buf_init(&why);
    (void)lst_threema_callback_verify(body, size, SECRET, &why);
    if (lst_threema_callback_parse(body, size, SECRET, &cb, &why) == LST_OK) {
        rebuild(&cb);
        struct lst_threema_msg m;
        if (lst_threema_msg_decode(cb.box, cb.box_len, &m, &why) == LST_OK)
            lst_threema_msg_cleanup(&m);
        lst_threema_callback_cleanup(&cb);
    }
    lst_buf_cleanup(&why);
    free(body);
    return 0;
}
