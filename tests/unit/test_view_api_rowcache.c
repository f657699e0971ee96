/* The view API's rendered-row cache (services/view-api/rowcache.c) on its own: versions only
 * move forward, the capacity holds with the least recently used row leaving first, and what
 * /metrics says about it (lookups by result, evictions, rows held) is what happened; entries
 * checked by content (the history's recipient states) hit only with the same check bytes. The
 * service-tier test (tests/system/view_api_service.c) covers the cache behind real pages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lst_test.h"
#include "view_api.h"

static const struct va_row_fields FIELDS = {
    .has_cat = true, .cat = "tour", .has_dir = true, .dir = "out"};

static void put(struct va_rowcache *c, const char *id, int64_t v)
{
    char json[64];
    int n = snprintf(json, sizeof(json), "{\"id\":\"%s\",\"v\":%lld}", id, (long long)v);
    va_rowcache_put(c, id, v, &FIELDS, json, (size_t)n);
}

static bool has(struct va_rowcache *c, const char *id, int64_t v)
{
    struct va_row_fields f;
    struct lst_buf json;
    lst_buf_init(&json);
    bool hit = va_rowcache_get(c, id, v, &f, &json);
    lst_buf_cleanup(&json);
    return hit;
}

static size_t rows(struct va_rowcache *c)
{
    uint64_t hits, misses;
    size_t n;
    va_rowcache_stats(c, &hits, &misses, &n);
    return n;
}

/* The value of one series in the rendered registry ("name{labels} value"), -1 if absent. */
static double metric(struct lst_metrics *m, const char *series)
{
    struct lst_buf out;
    double v = -1;
    lst_buf_init(&out);
    CHECK_EQ(lst_metrics_render(m, &out), LST_OK);
    for (const char *p = out.data; p != NULL && *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t len = strlen(series);
        if (strncmp(p, series, len) == 0 && p[len] == ' ')
            v = strtod(p + len + 1, NULL);
        p = eol != NULL ? eol + 1 : NULL;
    }
    lst_buf_cleanup(&out);
    return v;
}

static void test_disabled(void)
{
    struct va_rowcache *c = (struct va_rowcache *)1;
    CHECK_EQ(va_rowcache_create(0, NULL, "row", &c), LST_OK);
    CHECK(c == NULL);
    CHECK_EQ(rows(NULL), 0u);
    va_rowcache_clear(NULL);
    va_rowcache_destroy(NULL);
}

static void test_versions(void)
{
    struct va_rowcache *c = NULL;
    REQUIRE(va_rowcache_create(1000, NULL, "row", &c) == LST_OK);
    put(c, "A", 5);
    struct va_row_fields f;
    struct lst_buf json;
    lst_buf_init(&json);
    CHECK(va_rowcache_get(c, "A", 5, &f, &json));
    CHECK_STREQ(json.data, "{\"id\":\"A\",\"v\":5}");
    CHECK_STREQ(f.cat, "tour");
    CHECK(f.has_dir && !f.has_kind);
    lst_buf_cleanup(&json);
    CHECK(!has(c, "A", 4)); /* an older page's version is not this row */
    CHECK(has(c, "A", 5));  /* ... and does not drop it */
    put(c, "A", 3);         /* a page that read an older state late: ignored */
    CHECK(has(c, "A", 5));
    put(c, "A", 7);
    CHECK(!has(c, "A", 5));
    CHECK(has(c, "A", 7));
    CHECK(!has(c, "A", 8)); /* the hash moved on: the cached row is dropped for good */
    CHECK(!has(c, "A", 7));
    CHECK_EQ(rows(c), 0u);
    CHECK(!has(c, "B", 1));
    va_rowcache_destroy(c);
}

/* Three IDs that share a shard: with a capacity of 16 each of the 16 shards holds one row, so
 * two IDs share one when putting the second drops the first. */
static int same_shard(char ids[3][8])
{
    struct va_rowcache *c = NULL;
    CHECK_EQ(va_rowcache_create(16, NULL, "row", &c), LST_OK);
    if (c == NULL)
        return 0;
    snprintf(ids[0], 8, "I0");
    int found = 1;
    for (int i = 1; i < 2000 && found < 3; i++) {
        char id[8];
        snprintf(id, sizeof(id), "I%d", i);
        va_rowcache_clear(c);
        put(c, ids[0], 1);
        put(c, id, 1);
        if (!has(c, ids[0], 1))
            snprintf(ids[found++], 8, "%s", id);
    }
    va_rowcache_destroy(c);
    return found;
}

static void test_lru_and_metrics(void)
{
    char ids[3][8];
    REQUIRE(same_shard(ids) == 3);
    struct lst_metrics *m = lst_metrics_create();
    struct va_rowcache *c = NULL;
    REQUIRE(m != NULL);
    REQUIRE(va_rowcache_create(32, m, "row", &c) == LST_OK); /* two rows per shard */
    put(c, ids[0], 1);
    put(c, ids[1], 1);
    CHECK(has(c, ids[0], 1)); /* ids[0] is now the more recent of the two */
    put(c, ids[2], 1);        /* the shard is full: ids[1], the least recent, leaves */
    CHECK(has(c, ids[0], 1));
    CHECK(has(c, ids[2], 1));
    CHECK(!has(c, ids[1], 1));
    CHECK_EQ(metric(m, "lst_view_row_cache_evictions_total"), 1.0);
    CHECK_EQ(metric(m, "lst_view_row_cache_lookups_total{result=\"hit\"}"), 3.0);
    CHECK_EQ(metric(m, "lst_view_row_cache_lookups_total{result=\"miss\"}"), 1.0);
    CHECK_EQ(metric(m, "lst_view_row_cache_rows"), 2.0);

    /* many rows: never more than the capacity, and the gauge agrees with the count */
    for (int i = 0; i < 1000; i++) {
        char id[16];
        snprintf(id, sizeof(id), "R%d", i);
        put(c, id, i + 1);
    }
    CHECK(rows(c) <= 32u);
    CHECK(rows(c) >= 16u); /* 1,000 IDs fill every shard */
    CHECK_EQ(metric(m, "lst_view_row_cache_rows"), (double)rows(c));
    CHECK_EQ(metric(m, "lst_view_row_cache_evictions_total"), 1.0 + 1002.0 - (double)rows(c));
    va_rowcache_clear(c);
    CHECK_EQ(rows(c), 0u);
    CHECK_EQ(metric(m, "lst_view_row_cache_rows"), 0.0);
    va_rowcache_destroy(c);
    lst_metrics_destroy(m);
}

/* Entries checked by content (the history's recipient states, feed.c): a hit needs the very
 * check bytes stored, any change of them (state JSON, visibility) is a miss, and a put
 * replaces, whatever came before; an empty check is never cached. */
static bool has_by(struct va_rowcache *c, const char *id, const char *check, const char *want)
{
    struct lst_buf json;
    lst_buf_init(&json);
    bool hit = va_rowcache_get_by(c, id, check, strlen(check), &json);
    if (hit)
        CHECK_STREQ(json.data, want);
    lst_buf_cleanup(&json);
    return hit;
}

static void test_by_content(void)
{
    struct va_rowcache *c = NULL;
    struct lst_metrics *m = lst_metrics_create();
    REQUIRE(m != NULL);
    REQUIRE(va_rowcache_create(1000, m, "state", &c) == LST_OK);
    const char *s1 = "0{\"st\":\"read\",\"r\":3}", *s2 = "0{\"st\":\"read\",\"r\":3,\"d\":2}";
    CHECK(!has_by(c, "M/E", s1, ""));
    va_rowcache_put_by(c, "M/E", s1, strlen(s1), "{\"a\":1}", 7);
    CHECK(has_by(c, "M/E", s1, "{\"a\":1}"));
    CHECK(!has_by(c, "M/E", s2, ""));  /* the state changed (a later receipt's time) */
    CHECK(!has_by(c, "M/E2", s1, "")); /* another recipient */
    CHECK(!has_by(c, "M/E", "1{\"st\":\"read\",\"r\":3}", "")); /* another visibility */
    CHECK(!has_by(c, "M/E", "0{\"st\":\"read\"", ""));          /* a prefix */
    CHECK(has_by(c, "M/E", s1, "{\"a\":1}"));                   /* misses leave the entry */
    va_rowcache_put_by(c, "M/E", s2, strlen(s2), "{\"a\":2}", 7);
    CHECK(!has_by(c, "M/E", s1, "")); /* replaced: one entry per key */
    CHECK(has_by(c, "M/E", s2, "{\"a\":2}"));
    va_rowcache_put_by(c, "M/E", s1, strlen(s1), "{\"a\":1}", 7); /* back: no versions here */
    CHECK(has_by(c, "M/E", s1, "{\"a\":1}"));
    CHECK_EQ(rows(c), 1u);
    va_rowcache_put_by(c, "M/X", "", 0, "{}", 2);
    CHECK(!has_by(c, "M/X", "", ""));
    CHECK_EQ(rows(c), 1u);
    /* its own series: "state", not the timeline rows' (an empty check never looks up) */
    CHECK_EQ(metric(m, "lst_view_state_cache_lookups_total{result=\"hit\"}"), 4.0);
    CHECK_EQ(metric(m, "lst_view_state_cache_lookups_total{result=\"miss\"}"), 6.0);
    CHECK_EQ(metric(m, "lst_view_state_cache_states"), 1.0);
    CHECK(metric(m, "lst_view_row_cache_rows") < 0);
    va_rowcache_destroy(c);
    lst_metrics_destroy(m);
}

LST_TEST_MAIN(T(test_disabled), T(test_versions), T(test_lru_and_metrics), T(test_by_content))
