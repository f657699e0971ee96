/* The blob store: what upload_blob received and what phones upload for their photos, served
 * by GET /blobs/{id}. In memory, newest first; beyond max_bytes the oldest blobs are evicted
 * (the real Gateway deletes blobs after a while too, so clients must cope with a 404). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lst/threema.h"
#include "sim.h"

lst_err sim_blobs_init(struct sim_blobs *b, size_t max_bytes)
{
    memset(b, 0, sizeof(*b));
    b->max_bytes = max_bytes;
    return pthread_mutex_init(&b->lock, NULL) == 0 ? LST_OK : LST_ERR_NOMEM;
}

static void free_chain(struct sim_blob *p)
{
    while (p != NULL) {
        struct sim_blob *next = p->next;
        free(p->data);
        free(p);
        p = next;
    }
}

void sim_blobs_cleanup(struct sim_blobs *b)
{
    free_chain(b->head);
    b->head = NULL;
    pthread_mutex_destroy(&b->lock);
}

void sim_blobs_clear(struct sim_blobs *b)
{
    pthread_mutex_lock(&b->lock);
    free_chain(b->head);
    b->head = NULL;
    b->count = 0;
    b->bytes = 0;
    pthread_mutex_unlock(&b->lock);
}

/* Drops the oldest blobs (the tail) until the store fits. Called with the lock held. */
static void evict(struct sim_blobs *b)
{
    while (b->bytes > b->max_bytes && b->head != NULL && b->head->next != NULL) {
        struct sim_blob **pp = &b->head;
        while ((*pp)->next != NULL)
            pp = &(*pp)->next;
        b->bytes -= (*pp)->len;
        b->count--;
        free_chain(*pp);
        *pp = NULL;
    }
}

lst_err sim_blobs_put(struct sim_blobs *b, const void *data, size_t len, bool persist,
                      char id_out[2 * SIM_BLOBID_LEN + 1])
{
    struct sim_blob *blob = calloc(1, sizeof(*blob));
    if (blob == NULL)
        return LST_ERR_NOMEM;
    blob->data = malloc(len > 0 ? len : 1);
    if (blob->data == NULL) {
        free(blob);
        return LST_ERR_NOMEM;
    }
    memcpy(blob->data, data, len);
    blob->len = len;
    blob->persist = persist;
    uint8_t raw[SIM_BLOBID_LEN];
    randombytes_buf(raw, sizeof(raw));
    lst_threema_hex_encode(raw, sizeof(raw), blob->id, sizeof(blob->id));
    memcpy(id_out, blob->id, sizeof(blob->id));
    pthread_mutex_lock(&b->lock);
    blob->next = b->head;
    b->head = blob;
    b->count++;
    b->bytes += len;
    evict(b);
    pthread_mutex_unlock(&b->lock);
    return LST_OK;
}

lst_err sim_blobs_get(struct sim_blobs *b, const char *id, struct lst_buf *out)
{
    lst_err err = LST_ERR_NOT_FOUND;
    pthread_mutex_lock(&b->lock);
    for (struct sim_blob *p = b->head; p != NULL; p = p->next) {
        if (strcasecmp(p->id, id) == 0) {
            err = lst_buf_append(out, p->data, p->len);
            break;
        }
    }
    pthread_mutex_unlock(&b->lock);
    return err;
}
