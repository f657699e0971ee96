/* Threema protocol: end-to-end crypto (crypto_box with precomputed shared keys), the shared-key
 * cache and blob crypto (crypto_secretbox with the fixed nonces). */
#include "lst/threema.h"
#include "threema_internal.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* The sizes in the header are the protocol's; libsodium's must agree. */
_Static_assert(crypto_box_NONCEBYTES == LST_THREEMA_NONCE_SIZE, "box nonce size");
_Static_assert(crypto_box_BEFORENMBYTES == LST_THREEMA_KEY_SIZE, "shared key size");
_Static_assert(crypto_box_PUBLICKEYBYTES == LST_THREEMA_KEY_SIZE, "public key size");
_Static_assert(crypto_box_SECRETKEYBYTES == LST_THREEMA_KEY_SIZE, "secret key size");
_Static_assert(crypto_box_MACBYTES == LST_THREEMA_BOX_OVERHEAD, "box tag size");
_Static_assert(crypto_secretbox_KEYBYTES == LST_THREEMA_KEY_SIZE, "secretbox key size");
_Static_assert(crypto_secretbox_NONCEBYTES == LST_THREEMA_NONCE_SIZE, "secretbox nonce size");
_Static_assert(crypto_secretbox_MACBYTES == LST_THREEMA_BOX_OVERHEAD, "secretbox tag size");

/* Bound on what we encrypt or decrypt in one call; blobs may be large, but not this large. */
#define CRYPT_MAX ((size_t)1 << 30)

lst_err lst_threema_shared_init(struct lst_threema_shared *s,
                                const uint8_t our_sk[LST_THREEMA_KEY_SIZE],
                                const uint8_t their_pk[LST_THREEMA_KEY_SIZE])
{
    if (lst_threema_key_is_zero(their_pk) || lst_threema_key_is_zero(our_sk)) {
        sodium_memzero(s->k, sizeof(s->k));
        return LST_ERR_CRYPTO;
    }
    /* beforenm fails (-1) when the X25519 result is all zero, i.e. a low-order peer key. */
    if (crypto_box_beforenm(s->k, their_pk, our_sk) != 0) {
        sodium_memzero(s->k, sizeof(s->k));
        return LST_ERR_CRYPTO;
    }
    return LST_OK;
}

void lst_threema_shared_cleanup(struct lst_threema_shared *s)
{
    if (s != NULL)
        sodium_memzero(s->k, sizeof(s->k));
}

/* Makes out exactly n bytes long (content undefined) so a libsodium call can write into it. */
static lst_err buf_size(struct lst_buf *out, size_t n)
{
    lst_buf_reset(out);
    if (n == 0)
        return LST_OK;
    if (out->cap < n + 1) {
        /* Appending zeroes grows the buffer through its own allocator. */
        static const char zeros[256];
        while (out->len < n) {
            size_t chunk = n - out->len < sizeof(zeros) ? n - out->len : sizeof(zeros);
            lst_err err = lst_buf_append(out, zeros, chunk);
            if (err != LST_OK) {
                lst_buf_reset(out);
                return err;
            }
        }
        return LST_OK;
    }
    out->len = n;
    out->data[n] = '\0';
    return LST_OK;
}

lst_err lst_threema_encrypt_nonce(const struct lst_threema_shared *s, const uint8_t *plain,
                                  size_t len, const uint8_t nonce[LST_THREEMA_NONCE_SIZE],
                                  struct lst_buf *box)
{
    if (len > CRYPT_MAX) {
        lst_buf_reset(box);
        return LST_ERR_TOO_LARGE;
    }
    lst_err err = buf_size(box, len + crypto_box_MACBYTES);
    if (err != LST_OK)
        return err;
    if (crypto_box_easy_afternm((uint8_t *)box->data, plain, len, nonce, s->k) != 0) {
        lst_buf_reset(box);
        return LST_ERR_CRYPTO;
    }
    return LST_OK;
}

lst_err lst_threema_encrypt(const struct lst_threema_shared *s, const uint8_t *plain, size_t len,
                            uint8_t nonce[LST_THREEMA_NONCE_SIZE], struct lst_buf *box)
{
    randombytes_buf(nonce, LST_THREEMA_NONCE_SIZE);
    return lst_threema_encrypt_nonce(s, plain, len, nonce, box);
}

lst_err lst_threema_decrypt(const struct lst_threema_shared *s,
                            const uint8_t nonce[LST_THREEMA_NONCE_SIZE], const uint8_t *box,
                            size_t box_len, struct lst_buf *plain)
{
    lst_buf_reset(plain);
    if (box_len < crypto_box_MACBYTES)
        return LST_ERR_INVALID;
    if (box_len > CRYPT_MAX)
        return LST_ERR_TOO_LARGE;
    lst_err err = buf_size(plain, box_len - crypto_box_MACBYTES);
    if (err != LST_OK)
        return err;
    /* An empty plaintext still needs a valid pointer to write into. */
    uint8_t dummy;
    uint8_t *dst = plain->len > 0 ? (uint8_t *)plain->data : &dummy;
    if (crypto_box_open_easy_afternm(dst, box, box_len, nonce, s->k) != 0) {
        lst_buf_reset(plain);
        return LST_ERR_CRYPTO;
    }
    return LST_OK;
}

/* ---- shared-key cache ------------------------------------------------------------------- */

/* A hash table (chained, bucket = first bytes of the public key, which are uniformly random
 * for real keys; a hostile key only lengthens its own chain, bounded by capacity) plus a
 * doubly linked LRU list threaded through the same entries. */
struct entry {
    uint8_t pk[LST_THREEMA_KEY_SIZE];
    struct lst_threema_shared shared;
    struct entry *hnext;               /* bucket chain */
    struct entry *lru_prev, *lru_next; /* most recent at head */
};

struct lst_threema_keycache {
    pthread_mutex_t lock;
    bool lock_ok;
    uint8_t sk[LST_THREEMA_KEY_SIZE];
    size_t capacity, size, nbuckets;
    struct entry **buckets;
    struct entry *entries; /* capacity entries, allocated once */
    struct entry *free_list;
    struct entry *lru_head, *lru_tail;
    uint64_t hits, misses;
};

static size_t bucket_of(const struct lst_threema_keycache *c, const uint8_t pk[32])
{
    uint64_t h;
    memcpy(&h, pk, sizeof(h));
    return (size_t)(h % c->nbuckets);
}

lst_err lst_threema_keycache_create(const uint8_t our_sk[LST_THREEMA_KEY_SIZE], size_t capacity,
                                    struct lst_threema_keycache **out)
{
    *out = NULL;
    if (capacity == 0 || capacity > (1u << 24) || lst_threema_key_is_zero(our_sk))
        return LST_ERR_INVALID;
    struct lst_threema_keycache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return LST_ERR_NOMEM;
    memcpy(c->sk, our_sk, sizeof(c->sk));
    c->capacity = capacity;
    c->nbuckets = capacity < 16 ? 16 : capacity; /* load factor <= 1 */
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    c->entries = calloc(capacity, sizeof(*c->entries));
    if (c->buckets == NULL || c->entries == NULL) {
        lst_threema_keycache_destroy(c);
        return LST_ERR_NOMEM;
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        lst_threema_keycache_destroy(c);
        return LST_ERR_NOMEM;
    }
    c->lock_ok = true;
    for (size_t i = 0; i < capacity; i++) {
        c->entries[i].hnext = c->free_list;
        c->free_list = &c->entries[i];
    }
    *out = c;
    return LST_OK;
}

void lst_threema_keycache_destroy(struct lst_threema_keycache *c)
{
    if (c == NULL)
        return;
    sodium_memzero(c->sk, sizeof(c->sk));
    if (c->entries != NULL) {
        sodium_memzero(c->entries, c->capacity * sizeof(*c->entries));
        free(c->entries);
    }
    free(c->buckets);
    if (c->lock_ok)
        pthread_mutex_destroy(&c->lock);
    free(c);
}

static void lru_unlink(struct lst_threema_keycache *c, struct entry *e)
{
    if (e->lru_prev != NULL)
        e->lru_prev->lru_next = e->lru_next;
    else
        c->lru_head = e->lru_next;
    if (e->lru_next != NULL)
        e->lru_next->lru_prev = e->lru_prev;
    else
        c->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(struct lst_threema_keycache *c, struct entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = c->lru_head;
    if (c->lru_head != NULL)
        c->lru_head->lru_prev = e;
    c->lru_head = e;
    if (c->lru_tail == NULL)
        c->lru_tail = e;
}

static struct entry *find(struct lst_threema_keycache *c, const uint8_t pk[32])
{
    for (struct entry *e = c->buckets[bucket_of(c, pk)]; e != NULL; e = e->hnext)
        if (memcmp(e->pk, pk, LST_THREEMA_KEY_SIZE) == 0)
            return e;
    return NULL;
}

static void remove_from_bucket(struct lst_threema_keycache *c, struct entry *victim)
{
    struct entry **pp = &c->buckets[bucket_of(c, victim->pk)];
    while (*pp != NULL && *pp != victim)
        pp = &(*pp)->hnext;
    if (*pp == victim)
        *pp = victim->hnext;
}

/* A free entry, evicting the least recently used one when full. */
static struct entry *take_entry(struct lst_threema_keycache *c)
{
    struct entry *e = c->free_list;
    if (e != NULL) {
        c->free_list = e->hnext;
        c->size++;
        return e;
    }
    e = c->lru_tail;
    lru_unlink(c, e);
    remove_from_bucket(c, e);
    sodium_memzero(&e->shared, sizeof(e->shared));
    return e;
}

lst_err lst_threema_keycache_get(struct lst_threema_keycache *c,
                                 const uint8_t their_pk[LST_THREEMA_KEY_SIZE],
                                 struct lst_threema_shared *out)
{
    struct lst_threema_shared fresh;
    pthread_mutex_lock(&c->lock);
    struct entry *e = find(c, their_pk);
    if (e != NULL) {
        c->hits++;
        lru_unlink(c, e);
        lru_push_front(c, e);
        *out = e->shared;
        pthread_mutex_unlock(&c->lock);
        return LST_OK;
    }
    c->misses++;
    pthread_mutex_unlock(&c->lock);

    /* The X25519 runs outside the lock; two threads missing on the same key both compute it,
     * and the second insert finds the first. */
    lst_err err = lst_threema_shared_init(&fresh, c->sk, their_pk);
    if (err != LST_OK)
        return err;
    pthread_mutex_lock(&c->lock);
    if (find(c, their_pk) == NULL) {
        e = take_entry(c);
        memcpy(e->pk, their_pk, LST_THREEMA_KEY_SIZE);
        e->shared = fresh;
        size_t b = bucket_of(c, their_pk);
        e->hnext = c->buckets[b];
        c->buckets[b] = e;
        lru_push_front(c, e);
    }
    pthread_mutex_unlock(&c->lock);
    *out = fresh;
    sodium_memzero(&fresh, sizeof(fresh));
    return LST_OK;
}

void lst_threema_keycache_stats(struct lst_threema_keycache *c, size_t *size, uint64_t *hits,
                                uint64_t *misses)
{
    pthread_mutex_lock(&c->lock);
    if (size != NULL)
        *size = c->size;
    if (hits != NULL)
        *hits = c->hits;
    if (misses != NULL)
        *misses = c->misses;
    pthread_mutex_unlock(&c->lock);
}

/* ---- blobs -------------------------------------------------------------------------------- */

static void blob_nonce(enum lst_threema_blob_kind kind, uint8_t nonce[LST_THREEMA_NONCE_SIZE])
{
    memset(nonce, 0, LST_THREEMA_NONCE_SIZE);
    nonce[LST_THREEMA_NONCE_SIZE - 1] = (uint8_t)kind;
}

static bool blob_kind_valid(enum lst_threema_blob_kind kind)
{
    return kind == LST_THREEMA_BLOB_FILE || kind == LST_THREEMA_BLOB_THUMBNAIL;
}

void lst_threema_blob_keygen(uint8_t key[LST_THREEMA_KEY_SIZE])
{
    crypto_secretbox_keygen(key);
}

lst_err lst_threema_blob_encrypt(const uint8_t key[LST_THREEMA_KEY_SIZE],
                                 enum lst_threema_blob_kind kind, const uint8_t *plain, size_t len,
                                 struct lst_buf *out)
{
    uint8_t nonce[LST_THREEMA_NONCE_SIZE];
    lst_buf_reset(out);
    if (!blob_kind_valid(kind))
        return LST_ERR_INVALID;
    if (len > CRYPT_MAX)
        return LST_ERR_TOO_LARGE;
    lst_err err = buf_size(out, len + crypto_secretbox_MACBYTES);
    if (err != LST_OK)
        return err;
    blob_nonce(kind, nonce);
    /* The fixed nonce is safe only because every file message has a fresh key. */
    if (crypto_secretbox_easy((uint8_t *)out->data, plain, len, nonce, key) != 0) {
        lst_buf_reset(out);
        return LST_ERR_CRYPTO;
    }
    return LST_OK;
}

lst_err lst_threema_blob_decrypt(const uint8_t key[LST_THREEMA_KEY_SIZE],
                                 enum lst_threema_blob_kind kind, const uint8_t *box, size_t len,
                                 struct lst_buf *out)
{
    uint8_t nonce[LST_THREEMA_NONCE_SIZE];
    uint8_t dummy;
    lst_buf_reset(out);
    if (!blob_kind_valid(kind) || len < crypto_secretbox_MACBYTES)
        return LST_ERR_INVALID;
    if (len > CRYPT_MAX)
        return LST_ERR_TOO_LARGE;
    lst_err err = buf_size(out, len - crypto_secretbox_MACBYTES);
    if (err != LST_OK)
        return err;
    blob_nonce(kind, nonce);
    uint8_t *dst = out->len > 0 ? (uint8_t *)out->data : &dummy;
    if (crypto_secretbox_open_easy(dst, box, len, nonce, key) != 0) {
        lst_buf_reset(out);
        return LST_ERR_CRYPTO;
    }
    return LST_OK;
}
