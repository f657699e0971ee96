/* libFuzzer target: a decrypted container (type | body | padding) from a phone.
 *
 * Beyond "no crash": whatever decodes and can be encoded again must decode again to the same
 * kind (and the same text for text messages), and the padding the encoder adds must be
 * accepted by the decoder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lst/threema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool encodable(enum lst_threema_msg_kind k)
{
    return k == LST_THREEMA_MSG_TEXT || k == LST_THREEMA_MSG_LOCATION ||
           k == LST_THREEMA_MSG_FILE || k == LST_THREEMA_MSG_RECEIPT || k == LST_THREEMA_MSG_TYPING;
}

static void reencode(const struct lst_threema_msg *m, uint8_t padding)
{
    struct lst_buf c;
    struct lst_threema_msg again;
    lst_buf_init(&c);
    if (lst_threema_msg_encode(m, padding, &c, NULL) == LST_OK) {
        if (lst_threema_msg_decode((const uint8_t *)c.data, c.len, &again, NULL) != LST_OK)
            abort();
        if (again.kind != m->kind)
            abort();
        if (m->kind == LST_THREEMA_MSG_TEXT &&
            (again.text_len != m->text_len || memcmp(again.text, m->text, m->text_len) != 0))
            abort();
        if (m->kind == LST_THREEMA_MSG_RECEIPT &&
            (again.receipt.count != m->receipt.count || again.receipt.status != m->receipt.status))
            abort();
        lst_threema_msg_cleanup(&again);
    }
    lst_buf_cleanup(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        lst_threema_init();
        init = 1;
    }
    uint8_t *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size);
    struct lst_threema_msg m;
    struct lst_buf why;
    lst_buf_init(&why);
    if (lst_threema_msg_decode(copy, size, &m, &why) == LST_OK) {
        if (encodable(m.kind))
            reencode(&m, size > 0 ? copy[0] : 0);
        lst_threema_msg_cleanup(&m);
    }
    /* The body decoders directly, without the padding gate: first byte is the type. */
    if (size > 0 && lst_threema_msg_decode_body(copy[0], copy + 1, size - 1, &m, &why) == LST_OK)
        lst_threema_msg_cleanup(&m);
    lst_buf_cleanup(&why);
    free(copy);
    return 0;
}
