/* The rendered-row cache of the timeline pages: an item's JSON as item_json wrote it, keyed by
 * (id, v), v being the version the ledger sets in m:<id> on every change of the hash
 * (docs/ledger.md). A page reads only v for each entry and takes the row from here when the
 * version matches; rendering depends on nothing but the hash and the process-wide read
 * visibility, so a row serves every user. Besides the JSON, an entry keeps the hash fields the
 * page's filters check (category, kind, direction, whether handled), so a hit needs no hash
 * at all.
 *
 * One entry per ID (a newer version replaces the older), in NSHARD shards of their own lock,
 * each an intrusive hash table and an LRU list; a shard evicts its least recently used entry
 * above its share of the capacity.
 *
 * The same structure, in an instance of its own, keeps the history's rendered recipient states
 * (va_rowcache_get_by/put_by): there the entry is checked by content, not by version, because
 * a recipient's state r:<mid> can change without m:<mid> getting a new v (a later receipt's
 * time, a Threema message ID, a failure reason: the ledger touches m: only when the state name
 * moves). The caller's check bytes hold everything the fragment is a function of (the read
 * visibility and the stored state JSON), so a hit is exactly what rendering would give. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "view_api.h"

#define NSHARD 16

struct link {
    struct link *prev, *next; /* LRU, most recent first */
};

struct row {
    struct link l;     /* first: a row is its link */
    struct row *hnext; /* bucket chain */
    uint64_t hash;
    int64_t v;
    struct va_row_fields f;
    size_t len;      /* of the JSON */
    size_t checklen; /* of check (0: a row, checked by version) */
    char *check;     /* the content a keyed entry stands for, after the ID */
    char *json;      /* points into the same allocation, after check */
    char id[];       /* NUL-terminated */
};

struct shard {
    pthread_mutex_t lock;
    struct row **buckets;
    size_t nbuckets; /* a power of two */
    size_t n, cap;
    struct link lru; /* sentinel: lru.next the most recent, lru.prev the least */
};

struct va_rowcache {
    struct shard s[NSHARD];
    /* on /metrics; the counters count whatever registered (NULL series are no-ops), so the
     * stats below keep their own atomics */
    struct lst_counter *m_hits, *m_misses, *m_evicted;
    struct lst_gauge *m_rows;
    atomic_ullong hits, misses;
};

static uint64_t hash_id(const char *id)
{
    uint64_t h = UINT64_C(1469598103934665603); /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++)
        h = (h ^ *p) * UINT64_C(1099511628211);
    return h;
}

/* Each family's series are spelt out in the calls: tests/deploy checks the dashboard's names
 * against the names the sources register. */
static void init_row_metrics(struct va_rowcache *c, struct lst_metrics *m)
{
    static const char help[] = "Timeline rows looked up in the row cache, by result";
    c->m_hits = lst_metrics_counter(m, "lst_view_row_cache_lookups_total", help, "result=\"hit\"");
    c->m_misses =
        lst_metrics_counter(m, "lst_view_row_cache_lookups_total", help, "result=\"miss\"");
    c->m_evicted = lst_metrics_counter(m, "lst_view_row_cache_evictions_total",
                                       "Rows dropped to stay within LST_VIEW_ROW_CACHE", NULL);
    c->m_rows = lst_metrics_gauge(m, "lst_view_row_cache_rows", "Rendered rows held", NULL);
}

static void init_state_metrics(struct va_rowcache *c, struct lst_metrics *m)
{
    static const char help[] = "History recipient states looked up in the state cache, by result";
    c->m_hits =
        lst_metrics_counter(m, "lst_view_state_cache_lookups_total", help, "result=\"hit\"");
    c->m_misses =
        lst_metrics_counter(m, "lst_view_state_cache_lookups_total", help, "result=\"miss\"");
    c->m_evicted = lst_metrics_counter(m, "lst_view_state_cache_evictions_total",
                                       "States dropped to stay within LST_VIEW_ROW_CACHE", NULL);
    c->m_rows =
        lst_metrics_gauge(m, "lst_view_state_cache_states", "Rendered recipient states held", NULL);
}

lst_err va_rowcache_create(int64_t capacity, struct lst_metrics *metrics, const char *family,
                           struct va_rowcache **out)
{
    *out = NULL;
    if (capacity <= 0)
        return LST_OK; /* disabled */
    struct va_rowcache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return LST_ERR_NOMEM;
    if (metrics != NULL)
        (strcmp(family, "state") == 0 ? init_state_metrics : init_row_metrics)(c, metrics);
    for (size_t i = 0; i < NSHARD; i++) {
        struct shard *s = &c->s[i];
        s->cap = (size_t)(capacity + NSHARD - 1) / NSHARD;
        s->nbuckets = 16;
        while (s->nbuckets < s->cap)
            s->nbuckets *= 2;
        s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
        s->lru.next = s->lru.prev = &s->lru;
        pthread_mutex_init(&s->lock, NULL);
        if (s->buckets == NULL) {
            va_rowcache_destroy(c);
            return LST_ERR_NOMEM;
        }
    }
    *out = c;
    return LST_OK;
}

void va_rowcache_destroy(struct va_rowcache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < NSHARD; i++) {
        struct shard *s = &c->s[i];
        if (s->buckets == NULL)
            continue;
        for (struct link *r = s->lru.next; r != &s->lru;) {
            struct link *next = r->next;
            free(r);
            r = next;
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    free(c);
}

static struct shard *shard_of(struct va_rowcache *c, uint64_t h)
{
    return &c->s[(h >> 56) % NSHARD];
}

static struct row **slot(struct shard *s, uint64_t h, const char *id)
{
    struct row **p = &s->buckets[h & (s->nbuckets - 1)];
    while (*p != NULL && ((*p)->hash != h || strcmp((*p)->id, id) != 0))
        p = &(*p)->hnext;
    return p;
}

static void lru_unlink(struct row *r)
{
    r->l.prev->next = r->l.next;
    r->l.next->prev = r->l.prev;
}

static void lru_front(struct shard *s, struct row *r)
{
    r->l.next = s->lru.next;
    r->l.prev = &s->lru;
    s->lru.next->prev = &r->l;
    s->lru.next = &r->l;
}

/* Unlinks *p (the table slot of r) and frees it. */
static void drop(struct va_rowcache *c, struct shard *s, struct row **p)
{
    struct row *r = *p;
    *p = r->hnext;
    lru_unlink(r);
    s->n--;
    free(r);
    lst_gauge_add(c->m_rows, -1.0);
}

/* A hit: v equal and, for an entry checked by content, the same check bytes. An outdated row
 * (an older version) is dropped for good, versions only grow. */
static bool lookup(struct va_rowcache *c, const char *id, int64_t v, const char *check,
                   size_t checklen, struct va_row_fields *f, struct lst_buf *json)
{
    uint64_t h = hash_id(id);
    struct shard *s = shard_of(c, h);
    bool hit = false;
    pthread_mutex_lock(&s->lock);
    struct row **p = slot(s, h, id);
    struct row *r = *p;
    if (r != NULL && r->v == v && r->checklen == checklen &&
        (checklen == 0 || memcmp(r->check, check, checklen) == 0)) {
        lru_unlink(r);
        lru_front(s, r);
        if (f != NULL)
            *f = r->f;
        lst_buf_append(json, r->json, r->len);
        hit = true;
    } else if (r != NULL && checklen == 0 && r->v < v) {
        drop(c, s, p);
    }
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add_explicit(hit ? &c->hits : &c->misses, 1, memory_order_relaxed);
    lst_counter_inc(hit ? c->m_hits : c->m_misses);
    return hit;
}

bool va_rowcache_get(struct va_rowcache *c, const char *id, int64_t v, struct va_row_fields *f,
                     struct lst_buf *json)
{
    return lookup(c, id, v, NULL, 0, f, json);
}

bool va_rowcache_get_by(struct va_rowcache *c, const char *id, const char *check, size_t checklen,
                        struct lst_buf *json)
{
    return checklen > 0 && lookup(c, id, 0, check, checklen, NULL, json);
}

/* Stores the entry of id; a row is kept unless a newer version is cached already, an entry
 * checked by content always replaces the one before (a page that read an older state may put
 * it last: harmless, a hit needs the very content it was rendered from). */
static void store(struct va_rowcache *c, const char *id, int64_t v, const struct va_row_fields *f,
                  const char *check, size_t checklen, const char *json, size_t len)
{
    size_t idlen = strlen(id);
    struct row *n = malloc(sizeof(*n) + idlen + 1 + checklen + len);
    if (n == NULL)
        return; /* a cache: nothing lost but time */
    n->hash = hash_id(id);
    n->v = v;
    if (f != NULL)
        n->f = *f;
    else
        memset(&n->f, 0, sizeof(n->f));
    n->len = len;
    n->checklen = checklen;
    memcpy(n->id, id, idlen + 1);
    n->check = n->id + idlen + 1;
    if (checklen > 0)
        memcpy(n->check, check, checklen);
    n->json = n->check + checklen;
    memcpy(n->json, json, len);
    struct shard *s = shard_of(c, n->hash);
    pthread_mutex_lock(&s->lock);
    struct row **p = slot(s, n->hash, id);
    if (*p != NULL && checklen == 0 && (*p)->v > v) {
        /* a page that read an older state than another page already cached */
        pthread_mutex_unlock(&s->lock);
        free(n);
        return;
    }
    if (*p != NULL)
        drop(c, s, p);
    n->hnext = s->buckets[n->hash & (s->nbuckets - 1)];
    s->buckets[n->hash & (s->nbuckets - 1)] = n;
    lru_front(s, n);
    s->n++;
    lst_gauge_add(c->m_rows, 1.0);
    while (s->n > s->cap) {
        struct row *old = (struct row *)(void *)s->lru.prev;
        drop(c, s, slot(s, old->hash, old->id));
        lst_counter_inc(c->m_evicted);
    }
    pthread_mutex_unlock(&s->lock);
}

void va_rowcache_put(struct va_rowcache *c, const char *id, int64_t v,
                     const struct va_row_fields *f, const char *json, size_t len)
{
    store(c, id, v, f, NULL, 0, json, len);
}

void va_rowcache_put_by(struct va_rowcache *c, const char *id, const char *check, size_t checklen,
                        const char *json, size_t len)
{
    if (checklen > 0)
        store(c, id, 0, NULL, check, checklen, json, len);
}

void va_rowcache_clear(struct va_rowcache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < NSHARD; i++) {
        struct shard *s = &c->s[i];
        pthread_mutex_lock(&s->lock);
        for (size_t b = 0; b < s->nbuckets; b++) {
            while (s->buckets[b] != NULL)
                drop(c, s, &s->buckets[b]);
        }
        pthread_mutex_unlock(&s->lock);
    }
}

void va_rowcache_stats(struct va_rowcache *c, uint64_t *hits, uint64_t *misses, size_t *rows)
{
    *hits = *misses = 0;
    *rows = 0;
    if (c == NULL)
        return;
    *hits = atomic_load(&c->hits);
    *misses = atomic_load(&c->misses);
    for (size_t i = 0; i < NSHARD; i++) {
        pthread_mutex_lock(&c->s[i].lock);
        *rows += c->s[i].n;
        pthread_mutex_unlock(&c->s[i].lock);
    }
}
