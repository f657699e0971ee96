/* Service tier of the timeline's cursor pages (services/view-api/feed.c; docs/view-api.md,
 * "Timeline"): the real API in-process against a redis-server of the test's own, seeded in the
 * ledger's key layout (docs/ledger.md: m:<id>, x:all, x:dep:<d>, xc:<cat>:all,
 * xc:<cat>:dep:<d>). Paging must return exactly the items of an order computed here, without
 * the view's code (newest first, equal times by descending ID, hidden categories and other
 * departments left out), each once, no gaps:
 *   - every page size through a group of 30 items sharing one millisecond, with and without
 *     a hidden category (about a third of the items) and a department;
 *   - from cursors placed on every entry of that group and its neighbours (hidden ones too)
 *     and between entries;
 *   - with items deleted between two pages: the cursor's own item, the entries after it, an
 *     item already shown, the hash of the next item alone;
 *   - no empty last page: a page that ends exactly with the data has no next_cursor (a walk
 *     takes exactly ceil(n / limit) pages), while a page cut by the scan bound
 *     (LST_VIEW_SCAN_MAX) has one, also with fewer items than the limit or none. */
#include "view_api_common.h"

#define PFX      "lst:lg:"
#define GROUP_AT 5000LL
#define HIDDEN   "noise"
#define NMAX     64

struct item {
    char id[32];
    long long at;
    const char *cat;
    const char *dep; /* NULL: in no department index */
    bool gone;       /* deleted from Redis */
    bool hash_only;  /* only its hash was deleted, the index entries stay */
    bool seen;       /* returned by a page before it was deleted */
};

struct query {
    const char *params;    /* the filter part of the URL */
    const char *hidden[2]; /* categories left out */
    const char *deps[2];   /* departments asked for; none: every item */
};

/* Each query drives the page through a different path of feed.c: x:all or x:dep:<d> read
 * exactly as far as the page goes; the hidden categories' own indexes dropping entries
 * without their hashes (one or two of them); two departments, so x:all with ZSCORE checks in
 * batches that carry their scores. */
static const struct query QUERIES[] = {
    {"", {NULL}, {NULL}},
    {"&hidden=" HIDDEN, {HIDDEN}, {NULL}},
    {"&department=Fernverkehr", {NULL}, {"Fernverkehr"}},
    {"&department=Fernverkehr&hidden=" HIDDEN, {HIDDEN}, {"Fernverkehr"}},
    {"&hidden=" HIDDEN ",info", {HIDDEN, "info"}, {NULL}},
    {"&department=Fernverkehr,Nahverkehr&hidden=" HIDDEN, {HIDDEN}, {"Fernverkehr", "Nahverkehr"}},
};

static const int LIMITS[] = {1, 2, 3, 7, 50};

static struct harness H;
static struct item ITEMS[NMAX];
static size_t NITEMS;

/* ---- the data ---- */

static unsigned rnd_state = 20261206u;

static unsigned rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 16) & 0x7fffu;
}

/* Outgoing ULIDs and incoming "<threema id>:<message id>" share the group, and an ID's byte
 * order is not the order the items were added in. */
static void add_item(long long at)
{
    static const char *const deps[] = {"Fernverkehr", "Nahverkehr", NULL};
    static const char *const cats[] = {HIDDEN, "dispo", "info"};
    unsigned k = (unsigned)NITEMS;
    struct item *it = &ITEMS[NITEMS++];
    memset(it, 0, sizeof(*it));
    if (k % 4 == 3)
        snprintf(it->id, sizeof(it->id), "ABCDEFGH:%016x", k * 2654435761u);
    else
        snprintf(it->id, sizeof(it->id), "01J0000000000000000000%04u", (k * 37u) % 1000u);
    it->at = at;
    it->cat = cats[rnd() % 3];
    it->dep = deps[rnd() % 3];
}

static void make_items(void)
{
    static const long long above[] = {9000, 8000, 7000, 6200, 6200, 6100, 6000, 6000, 6000, 5001};
    static const long long below[] = {4999, 4000, 4000, 3000, 2000, 1500, 1000, 900, 800, 700};
    for (size_t i = 0; i < LST_ARRAY_LEN(above); i++)
        add_item(above[i]);
    for (int i = 0; i < 30; i++)
        add_item(GROUP_AT);
    for (size_t i = 0; i < LST_ARRAY_LEN(below); i++)
        add_item(below[i]);
}

static void seed_item(const struct item *it)
{
    bool in = strchr(it->id, ':') != NULL;
    rcmd(&H, "HSET " PFX "m:%s id %s dir %s at %lld cat %s kind text text %s", it->id, it->id,
         in ? "in" : "out", it->at, it->cat, "Rampe 4");
    seed_ix(&H, it->id, it->at, it->cat, "all");
    if (it->dep != NULL) {
        char k[64];
        snprintf(k, sizeof(k), "dep:%s", it->dep);
        rcmd(&H, "HSET " PFX "m:%s dep %s", it->id, it->dep);
        seed_ix(&H, it->id, it->at, it->cat, k);
    }
}

/* As the ledger's erasure and retention do: the hash and every index entry. */
static void delete_item(struct item *it, bool hash_only)
{
    rcmd(&H, "DEL " PFX "m:%s", it->id);
    if (!hash_only) {
        rcmd(&H, "ZREM " PFX "x:all %s", it->id);
        rcmd(&H, "ZREM " PFX "xc:%s:all %s", it->cat, it->id);
        if (it->dep != NULL) {
            rcmd(&H, "ZREM " PFX "x:dep:%s %s", it->dep, it->id);
            rcmd(&H, "ZREM " PFX "xc:%s:dep:%s %s", it->cat, it->dep, it->id);
        }
    }
    it->gone = true;
    it->hash_only = hash_only;
}

static void restore_items(void)
{
    for (size_t i = 0; i < NITEMS; i++) {
        if (ITEMS[i].gone)
            seed_item(&ITEMS[i]);
        ITEMS[i].gone = ITEMS[i].hash_only = ITEMS[i].seen = false;
    }
}

/* ---- the expected order, computed here ---- */

/* Whether (at a, id a) comes before (at b, id b): newer first, equal times by descending
 * ID in byte order (ZREVRANGEBYSCORE's order of equal scores). */
static bool before(long long at_a, const char *id_a, long long at_b, const char *id_b)
{
    return at_a > at_b || (at_a == at_b && strcmp(id_a, id_b) > 0);
}

static bool in_driving_index(const struct item *it, const struct query *q)
{
    if (q->deps[0] == NULL)
        return true;
    for (size_t i = 0; i < LST_ARRAY_LEN(q->deps) && q->deps[i] != NULL; i++) {
        if (it->dep != NULL && strcmp(it->dep, q->deps[i]) == 0)
            return true;
    }
    return false;
}

static bool wanted(const struct item *it, const struct query *q)
{
    if (it->gone && !it->seen)
        return false;
    for (size_t i = 0; i < LST_ARRAY_LEN(q->hidden) && q->hidden[i] != NULL; i++) {
        if (strcmp(it->cat, q->hidden[i]) == 0)
            return false;
    }
    return in_driving_index(it, q);
}

/* Indexes of ITEMS in timeline order (insertion sort: a few dozen items). */
static size_t sorted(size_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < NITEMS; i++) {
        size_t j = n++;
        while (j > 0 &&
               before(ITEMS[i].at, ITEMS[i].id, ITEMS[out[j - 1]].at, ITEMS[out[j - 1]].id)) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = i;
    }
    return n;
}

/* The items the query shows, in order, after the cursor (at, id) when id is not NULL. */
static size_t expected(const struct query *q, long long at, const char *id, size_t *out)
{
    size_t all[NMAX], n = 0, total = sorted(all);
    for (size_t i = 0; i < total; i++) {
        const struct item *it = &ITEMS[all[i]];
        if (wanted(it, q) && (id == NULL || before(at, id, it->at, it->id)))
            out[n++] = all[i];
    }
    return n;
}

static size_t find_item(const char *id)
{
    for (size_t i = 0; id != NULL && i < NITEMS; i++) {
        if (strcmp(ITEMS[i].id, id) == 0)
            return i;
    }
    return SIZE_MAX;
}

/* ---- walking the pages ---- */

struct walk {
    const struct query *q;
    int limit;
    const char *start; /* the first page's cursor, NULL: from the newest */
    int max_pages;     /* 0: to the end */
    /* called after every page but the last; may change the data once */
    void (*after_page)(struct walk *w);
    int kind; /* for after_page */
    bool mutated, in_group;
    size_t got[4 * NMAX];
    size_t n;
    int pages;
};

/* One page; false when the walk cannot go on. Checks what holds for every page: items known,
 * at most limit of them, a full page continues after its last item, and only the scan
 * budget (LST_VIEW_SCAN_MAX, far above these indexes) cuts a page short. */
static bool page(struct walk *w, char *cursor, size_t cap)
{
    char path[256];
    struct http_result r;
    bool more = false;
    snprintf(path, sizeof(path), "/api/timeline?limit=%d%s%s%s", w->limit, w->q->params,
             cursor[0] != '\0' ? "&cursor=" : "", cursor);
    if (get(&H, path, TOKEN_DISPATCHER, &r) != 200) {
        fprintf(stderr, "GET %s: %ld %s\n", path, r.status, r.body.data ? r.body.data : "");
        lst_test_failed_checks++;
        http_result_cleanup(&r);
        return false;
    }
    size_t n = jlen(r.json, "items");
    const char *next = jstr(r.json, "next_cursor");
    CHECK(n != (size_t)-1 && n <= (size_t)w->limit);
    for (size_t i = 0; n != (size_t)-1 && i < n && w->n < LST_ARRAY_LEN(w->got); i++) {
        struct json_object *o = json_object_array_get_idx(jget(r.json, "items"), i);
        size_t idx = find_item(jstr(o, "id"));
        if (idx == SIZE_MAX || ITEMS[idx].at != jint(o, "at")) {
            fprintf(stderr, "GET %s: unknown item %s\n", path, S(jstr(o, "id")));
            lst_test_failed_checks++;
            continue;
        }
        w->got[w->n++] = idx;
    }
    if (next != NULL) {
        char want[96] = "";
        if (n > 0 && w->n > 0)
            snprintf(want, sizeof(want), "%lld_%s", ITEMS[w->got[w->n - 1]].at,
                     ITEMS[w->got[w->n - 1]].id);
        if (n != (size_t)w->limit || strcmp(next, want) != 0) {
            fprintf(stderr, "GET %s: %zu items, next_cursor %s, want %d items and %s\n", path, n,
                    next, w->limit, want);
            lst_test_failed_checks++;
        }
        snprintf(cursor, cap, "%s", next);
        more = true;
    }
    http_result_cleanup(&r);
    return more;
}

static void walk(struct walk *w)
{
    char cursor[128];
    snprintf(cursor, sizeof(cursor), "%s", w->start != NULL ? w->start : "");
    w->n = 0;
    w->pages = 0;
    for (int p = 0; p < 4 * NMAX; p++) {
        w->pages++;
        if (!page(w, cursor, sizeof(cursor)))
            return;
        if (w->max_pages > 0 && p + 1 >= w->max_pages)
            return;
        if (w->after_page != NULL)
            w->after_page(w);
    }
    fprintf(stderr, "%s limit %d: no end after %d pages\n", w->q->params, w->limit, 4 * NMAX);
    lst_test_failed_checks++;
}

static void print_ids(const char *label, const size_t *v, size_t n)
{
    fprintf(stderr, "  %s (%zu):", label, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %lld_%s%s", ITEMS[v[i]].at, ITEMS[v[i]].id,
                ITEMS[v[i]].gone ? "(deleted)" : "");
    fprintf(stderr, "\n");
}

/* The walk returned exactly want, in order; duplicates named separately (they are what a
 * broken cursor usually produces). */
static void check_walk(const struct walk *w, const size_t *want, size_t nwant, const char *what)
{
    bool same = w->n == nwant && memcmp(w->got, want, nwant * sizeof(*want)) == 0;
    for (size_t i = 0; i < w->n; i++) {
        for (size_t j = i + 1; j < w->n; j++) {
            if (w->got[i] == w->got[j]) {
                fprintf(stderr, "%s: %s limit %d: %s returned twice\n", what, w->q->params,
                        w->limit, ITEMS[w->got[i]].id);
                lst_test_failed_checks++;
            }
        }
    }
    if (!same) {
        fprintf(stderr, "%s: query '%s' limit %d cursor %s: wrong items\n", what, w->q->params,
                w->limit, w->start != NULL ? w->start : "-");
        print_ids("got ", w->got, w->n);
        print_ids("want", want, nwant);
        lst_test_failed_checks++;
    }
}

/* An unchanged walk of n items took exactly the pages they fill: the page that ends with the
 * data has no cursor (no empty page after it), and no page but the last one is short. */
static void check_pages(const struct walk *w, size_t n)
{
    int want = n == 0 ? 1 : (int)((n + (size_t)w->limit - 1) / (size_t)w->limit);
    if (w->pages != want) {
        fprintf(stderr, "pages: query '%s' limit %d cursor %s: %d pages for %zu items, want %d\n",
                w->q->params, w->limit, w->start != NULL ? w->start : "-", w->pages, n, want);
        lst_test_failed_checks++;
    }
}

/* ---- the cases ---- */

/* Every query, every page size, from the newest to the end. */
static void test_pages_through_equal_times(void)
{
    size_t want[NMAX];
    for (size_t q = 0; q < LST_ARRAY_LEN(QUERIES); q++) {
        size_t n = expected(&QUERIES[q], 0, NULL, want), group = 0;
        for (size_t i = 0; i < n; i++)
            group += ITEMS[want[i]].at == GROUP_AT;
        CHECK(group >= 4); /* the data puts several items of each query into the group */
        for (size_t l = 0; l < LST_ARRAY_LEN(LIMITS); l++) {
            struct walk w = {.q = &QUERIES[q], .limit = LIMITS[l]};
            walk(&w);
            check_walk(&w, want, n, "walk");
            check_pages(&w, n);
        }
    }
}

/* Cursors on every entry of the group and its neighbours, hidden ones and those of other
 * departments included, and between entries: the first page, and a walk to the end. */
static void cursors_at(const char *cursor, long long at, const char *id)
{
    static const int limits[] = {1, 3, 50};
    size_t want[NMAX];
    for (size_t q = 0; q < LST_ARRAY_LEN(QUERIES); q++) {
        size_t n = expected(&QUERIES[q], at, id, want);
        for (size_t l = 0; l < LST_ARRAY_LEN(limits); l++) {
            struct walk w = {.q = &QUERIES[q], .limit = limits[l], .start = cursor};
            w.max_pages = limits[l] == 3 ? 0 : 1;
            walk(&w);
            check_walk(&w, want, w.max_pages == 1 && n > w.n ? w.n : n, "cursor");
            if (w.max_pages == 1)
                CHECK_EQ(w.n, n < (size_t)limits[l] ? n : (size_t)limits[l]);
            else
                check_pages(&w, n);
        }
    }
}

static void test_cursor_inside_group(void)
{
    size_t all[NMAX], n = sorted(all);
    char cursor[96], between[40];
    int hidden_on_cursor = 0;
    for (size_t i = 0; i < n; i++) {
        const struct item *it = &ITEMS[all[i]];
        if (it->at < GROUP_AT - 1 || it->at > GROUP_AT + 1)
            continue;
        hidden_on_cursor += strcmp(it->cat, HIDDEN) == 0;
        snprintf(cursor, sizeof(cursor), "%lld_%s", it->at, it->id);
        cursors_at(cursor, it->at, it->id);
        /* an ID just above this one: the cursor of an entry deleted since */
        snprintf(between, sizeof(between), "%s0", it->id);
        snprintf(cursor, sizeof(cursor), "%lld_%s", it->at, between);
        cursors_at(cursor, it->at, between);
    }
    CHECK(hidden_on_cursor >= 5);
    /* below and above every ID of the group: it is skipped whole, or shown whole */
    cursors_at("5000_*", GROUP_AT, "*");
    cursors_at("5000_zzzz", GROUP_AT, "zzzz");
}

enum del_kind {
    DEL_BOUNDARY,     /* the cursor's own item */
    DEL_NEXT_ENTRY,   /* the entry after it in the driving index (maybe hidden) */
    DEL_RUN,          /* the cursor's item and the three entries after it */
    DEL_NEXT_VISIBLE, /* the item the next page starts with */
    DEL_SEEN,         /* an item an earlier page returned */
    DEL_HASH_ONLY,    /* the next item's hash, its index entries stay */
    DEL__COUNT
};

static void delete_rel(struct walk *w, size_t idx, bool hash_only)
{
    for (size_t i = 0; i < w->n; i++)
        ITEMS[idx].seen = ITEMS[idx].seen || w->got[i] == idx;
    delete_item(&ITEMS[idx], hash_only);
}

/* After the first page that ends inside the group (with more of the group after it in the
 * driving index), else after the first page: deletes as w->kind says, once. */
static void delete_between_pages(struct walk *w)
{
    size_t ord[NMAX], n = 0, all[NMAX], total = sorted(all), p = SIZE_MAX;
    if (w->mutated || w->n == 0)
        return;
    for (size_t i = 0; i < total; i++) {
        if (in_driving_index(&ITEMS[all[i]], w->q))
            ord[n++] = all[i];
    }
    for (size_t i = 0; i < n; i++)
        p = ord[i] == w->got[w->n - 1] ? i : p;
    if (p == SIZE_MAX)
        return;
    bool in_group = ITEMS[ord[p]].at == GROUP_AT && p + 1 < n && ITEMS[ord[p + 1]].at == GROUP_AT;
    size_t future_in_group = 0;
    for (size_t i = p + 1; i < n; i++)
        future_in_group += ITEMS[ord[i]].at == GROUP_AT && wanted(&ITEMS[ord[i]], w->q);
    if (!in_group && future_in_group > 0)
        return; /* wait for a page that ends inside the group */
    w->mutated = true;
    w->in_group = in_group;
    size_t next_visible = p + 1;
    while (next_visible < n && !wanted(&ITEMS[ord[next_visible]], w->q))
        next_visible++;
    switch ((enum del_kind)w->kind) {
    case DEL_BOUNDARY:
        delete_rel(w, ord[p], false);
        break;
    case DEL_NEXT_ENTRY:
        if (p + 1 < n)
            delete_rel(w, ord[p + 1], false);
        break;
    case DEL_RUN:
        for (size_t i = p; i < n && i <= p + 3; i++)
            delete_rel(w, ord[i], false);
        break;
    case DEL_NEXT_VISIBLE:
    case DEL_HASH_ONLY:
        if (next_visible < n)
            delete_rel(w, ord[next_visible], w->kind == DEL_HASH_ONLY);
        break;
    case DEL_SEEN:
        delete_rel(w, w->got[0], false);
        break;
    case DEL__COUNT:
        break;
    }
}

static void test_delete_between_pages(void)
{
    size_t want[NMAX];
    for (int kind = 0; kind < DEL__COUNT; kind++) {
        for (size_t q = 0; q < LST_ARRAY_LEN(QUERIES); q++) {
            for (size_t l = 0; l < LST_ARRAY_LEN(LIMITS); l++) {
                struct walk w = {.q = &QUERIES[q],
                                 .limit = LIMITS[l],
                                 .after_page = delete_between_pages,
                                 .kind = kind};
                walk(&w);
                size_t n = expected(&QUERIES[q], 0, NULL, want);
                check_walk(&w, want, n, "delete");
                CHECK(w.mutated || LIMITS[l] > 7);
                /* pages of 1 to 3 items always end inside the group once */
                CHECK(w.in_group || LIMITS[l] > 3);
                restore_items();
            }
        }
    }
}

/* ---- the scan bound ---- */

#define BULK_N 250

/* Positions (newest first) of the few "rare" items among BULK_N of department Bulk (not in
 * x:all, so the walks above do not see them): gaps of more than a batch (100 entries). */
static const int RARE[] = {0, 30, 240};

static bool bulk_rare(int i)
{
    for (size_t k = 0; k < LST_ARRAY_LEN(RARE); k++) {
        if (RARE[k] == i)
            return true;
    }
    return false;
}

static void seed_bulk(void)
{
    for (int i = 0; i < BULK_N; i++) {
        const char *cat = bulk_rare(i) ? "rare" : "bulk";
        long long at = 100000 - i;
        char id[32];
        snprintf(id, sizeof(id), "01J00000000000000000B%05d", i);
        rcmd(&H, "HSET " PFX "m:%s id %s dir out at %lld cat %s kind text dep Bulk", id, id, at,
             cat);
        seed_ix(&H, id, at, cat, "dep:Bulk");
    }
}

/* Walks category=rare,other over x:dep:Bulk (two categories: every hash is read and checked)
 * with limit: the rare items in order, each once; the last page has no cursor and is not
 * empty (the data ends with a rare item's page or the scan ends at the index's end). Returns
 * how many pages carried a cursor with fewer items than the limit (cut by the scan bound). */
static int walk_bulk(int limit, int *pages)
{
    char cursor[96] = "", path[256];
    int short_pages = 0, got = 0;
    *pages = 0;
    for (int p = 0; p < 20; p++) {
        struct http_result r;
        snprintf(path, sizeof(path),
                 "/api/timeline?department=Bulk&category=rare,other&limit=%d%s%s", limit,
                 cursor[0] ? "&cursor=" : "", cursor);
        if (get(&H, path, TOKEN_DISPATCHER, &r) != 200) {
            fprintf(stderr, "GET %s: %ld\n", path, r.status);
            lst_test_failed_checks++;
            http_result_cleanup(&r);
            return -1;
        }
        (*pages)++;
        size_t n = jlen(r.json, "items");
        for (size_t i = 0; i < n; i++) {
            char want[32];
            snprintf(want, sizeof(want), "01J00000000000000000B%05d",
                     got < (int)LST_ARRAY_LEN(RARE) ? RARE[got] : -1);
            CHECK_STREQ(jstr(json_object_array_get_idx(jget(r.json, "items"), i), "id"), want);
            got++;
        }
        const char *next = jstr(r.json, "next_cursor");
        short_pages += next != NULL && n < (size_t)limit;
        snprintf(cursor, sizeof(cursor), "%s", next != NULL ? next : "");
        http_result_cleanup(&r);
        if (cursor[0] == '\0')
            break;
    }
    CHECK_EQ(got, (int)LST_ARRAY_LEN(RARE));
    CHECK(cursor[0] == '\0');
    return short_pages;
}

static void test_scan_bound(void)
{
    int pages = 0;
    seed_bulk();
    /* unbounded (the default 5000): pages are full but the last, which has no cursor */
    CHECK_EQ(walk_bulk(1, &pages), 0);
    CHECK_EQ(pages, 3);
    CHECK_EQ(walk_bulk(2, &pages), 0);
    CHECK_EQ(pages, 2);
    CHECK_EQ(walk_bulk(3, &pages), 0);
    CHECK_EQ(pages, 1); /* ends exactly with the data: no empty page after it */
    /* a page examines one batch of 100 entries, then stops at the bound with a cursor after
     * the last entry examined. Limit 1: [0] (30 found ahead) | [30] (nothing ahead up to
     * 100) | [] (101..200: none, still a cursor) | [240], the end. Limit 4: [0, 30] | [] |
     * [240]. The walk gets every item all the same. */
    int64_t saved = H.api.cfg.scan_max;
    H.api.cfg.scan_max = 100;
    CHECK_EQ(walk_bulk(1, &pages), 1);
    CHECK_EQ(pages, 4);
    CHECK_EQ(walk_bulk(4, &pages), 2);
    CHECK_EQ(pages, 3);
    H.api.cfg.scan_max = saved;
}

static void test_start(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!harness_start(&H, NULL, NULL, NULL)) {
        fprintf(stderr, "harness did not start\n");
        exit(1);
    }
    make_items();
    for (size_t i = 0; i < NITEMS; i++)
        seed_item(&ITEMS[i]);
}

static void test_stop(void)
{
    harness_stop(&H);
    curl_global_cleanup();
}

LST_TEST_MAIN(T(test_start), T(test_pages_through_equal_times), T(test_cursor_inside_group),
              T(test_delete_between_pages), T(test_scan_bound), T(test_stop))
