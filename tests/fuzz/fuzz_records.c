/* libFuzzer target: the Kafka record codecs (lst/records.h). The first byte picks the record
 * type, the rest is the record's JSON. Beyond "no crash": a record that decodes encodes, and
 * the encoding decodes again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lst/records.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t count = 0;
    const struct lst_rec_type *types = lst_rec_types(&count);
    if (size < 1 || count == 0)
        return 0;
    const struct lst_rec_type *t = &types[data[0] % count];
    char *json = malloc(size); /* exact size: ASan catches reads past len */
    void *rec = calloc(1, t->size);
    void *again = calloc(1, t->size);
    struct lst_buf why, out;
    lst_buf_init(&why);
    lst_buf_init(&out);
    if (json == NULL || rec == NULL || again == NULL)
        goto out;
    memcpy(json, data + 1, size - 1);
    if (lst_rec_decode(t, json, size - 1, rec, &why) == LST_OK) {
        if (lst_rec_encode(t, rec, &out) != LST_OK)
            abort();
        if (lst_rec_decode(t, out.data, out.len, again, &why) != LST_OK)
            abort();
        lst_rec_cleanup(t, again);
        lst_rec_cleanup(t, rec);
    }
out:
    lst_buf_cleanup(&why);
    lst_buf_cleanup(&out);
    free(again);
    free(rec);
    free(json);
    return 0;
}
