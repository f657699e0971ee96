/* Unit tests of the metrics registry and its Prometheus text rendering. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "lst/metrics.h"
#include "lst/util.h"
#include "lst_test.h"

static bool contains(const char *hay, const char *needle)
{
    return hay != NULL && strstr(hay, needle) != NULL;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_create_destroy(void)
{
    lst_metrics_destroy(NULL);
    struct lst_metrics *m = lst_metrics_create();
    REQUIRE(m != NULL);
    struct lst_buf out;
    lst_buf_init(&out);
    CHECK_EQ(lst_metrics_render(m, &out), LST_OK);
    CHECK_EQ(out.len, 0);
    lst_buf_cleanup(&out);
    lst_metrics_destroy(m);
}

static void test_counter_get_or_create(void)
{
    struct lst_metrics *m = lst_metrics_create();
    REQUIRE(m != NULL);
    struct lst_counter *a = lst_metrics_counter(m, "lst_sent_total", "Sends.", "code=\"200\"");
    struct lst_counter *b = lst_metrics_counter(m, "lst_sent_total", "Sends.", "code=\"200\"");
    struct lst_counter *c = lst_metrics_counter(m, "lst_sent_total", "Sends.", "code=\"429\"");
    struct lst_counter *d = lst_metrics_counter(m, "lst_sent_total", "Sends.", NULL);
    REQUIRE(a != NULL && c != NULL && d != NULL);
    CHECK(a == b);
    CHECK(a != c);
    CHECK(c != d);
    CHECK(d == lst_metrics_counter(m, "lst_sent_total", "Sends.", ""));
    lst_counter_inc(a);
    lst_counter_add(b, 41);
    lst_counter_inc(c);
    CHECK_EQ(lst_counter_value(a), 42);
    CHECK_EQ(lst_counter_value(c), 1);
    CHECK_EQ(lst_counter_value(d), 0);
    lst_metrics_destroy(m);
}

static void test_invalid_names_labels_and_clashes(void)
{
    struct lst_metrics *m = lst_metrics_create();
    REQUIRE(m != NULL);
    CHECK(lst_metrics_counter(m, "", "h", NULL) == NULL);
    CHECK(lst_metrics_counter(m, NULL, "h", NULL) == NULL);
    CHECK(lst_metrics_counter(m, "1abc", "h", NULL) == NULL);
    CHECK(lst_metrics_counter(m, "a-b", "h", NULL) == NULL);
    CHECK(lst_metrics_counter(m, "a b", "h", NULL) == NULL);
    CHECK(lst_metrics_counter(m, "_ok:name_1", "h", NULL) != NULL);
    CHECK(lst_metrics_counter(m, ":colon", "h", NULL) != NULL);
    CHECK(lst_metrics_counter(NULL, "x", "h", NULL) == NULL);

    CHECK(lst_metrics_counter(m, "l", "h", "a=b") == NULL);
    CHECK(lst_metrics_counter(m, "l", "h", "a=\"b") == NULL);
    CHECK(lst_metrics_counter(m, "l", "h", "1a=\"b\"") == NULL);
    CHECK(lst_metrics_counter(m, "l", "h", "a=\"b\",") == NULL);
    CHECK(lst_metrics_counter(m, "l", "h", "a=\"b\"c=\"d\"") == NULL);
    CHECK(lst_metrics_counter(m, "l", "h", "a=\"x\ny\"") == NULL);
    CHECK(lst_metrics_counter(m, "l", "h", "a=\"\\t\"") == NULL);
    CHECK(lst_metrics_counter(m, "l", "h", "a:b=\"1\"") == NULL);
    CHECK(lst_metrics_counter(m, "l", "h", "a=\"\\\"q\\\\\\n\",b_2=\"\"") != NULL);

    /* The same name with another type (or other histogram bounds) is refused. */
    CHECK(lst_metrics_counter(m, "clash", "h", NULL) != NULL);
    CHECK(lst_metrics_gauge(m, "clash", "h", NULL) == NULL);
    CHECK(lst_metrics_gauge(m, "clash", "h", "x=\"1\"") == NULL);
    static const double b1[] = {1, 2}, b2[] = {1, 3}, bad[] = {2, 1};
    CHECK(lst_metrics_histogram(m, "clash", "h", NULL, b1, 2) == NULL);
    CHECK(lst_metrics_histogram(m, "hist", "h", NULL, b1, 2) != NULL);
    CHECK(lst_metrics_histogram(m, "hist", "h", "a=\"1\"", b1, 2) != NULL);
    CHECK(lst_metrics_histogram(m, "hist", "h", "a=\"2\"", b2, 2) == NULL);
    CHECK(lst_metrics_histogram(m, "hist", "h", "a=\"3\"", b1, 1) == NULL);
    CHECK(lst_metrics_histogram(m, "hist2", "h", NULL, bad, 2) == NULL);
    CHECK(lst_metrics_histogram(m, "hist3", "h", "le=\"1\"", b1, 2) == NULL);
    double many[33];
    for (size_t i = 0; i < 33; i++)
        many[i] = (double)i;
    CHECK(lst_metrics_histogram(m, "hist4", "h", NULL, many, 33) == NULL);
    CHECK(lst_metrics_histogram(m, "hist4", "h", NULL, many, 32) != NULL);
    const double nan_bound[] = {1, (double)NAN};
    CHECK(lst_metrics_histogram(m, "hist5", "h", NULL, nan_bound, 2) == NULL);
    lst_metrics_destroy(m);
}

static void test_null_series_are_noops(void)
{
    lst_counter_inc(NULL);
    lst_counter_add(NULL, 5);
    lst_gauge_set(NULL, 1.0);
    lst_gauge_add(NULL, 1.0);
    lst_histogram_observe(NULL, 1.0);
    CHECK_EQ(lst_counter_value(NULL), 0);
    CHECK(lst_gauge_value(NULL) == 0.0);
    CHECK_EQ(lst_histogram_count(NULL), 0);
}

static void test_gauge(void)
{
    struct lst_metrics *m = lst_metrics_create();
    REQUIRE(m != NULL);
    struct lst_gauge *g = lst_metrics_gauge(m, "lst_inflight", "In flight.", NULL);
    REQUIRE(g != NULL);
    CHECK(lst_gauge_value(g) == 0.0);
    lst_gauge_set(g, 2.5);
    lst_gauge_add(g, -4.0);
    CHECK(lst_gauge_value(g) == -1.5);
    struct lst_buf out;
    lst_buf_init(&out);
    CHECK_EQ(lst_metrics_render(m, &out), LST_OK);
    CHECK_STREQ(out.data, "# HELP lst_inflight In flight.\n"
                          "# TYPE lst_inflight gauge\n"
                          "lst_inflight -1.5\n");
    lst_gauge_set(g, 0.1);
    lst_buf_reset(&out);
    lst_metrics_render(m, &out);
    CHECK(contains(out.data, "\nlst_inflight 0.1\n"));
    lst_gauge_set(g, HUGE_VAL);
    lst_buf_reset(&out);
    lst_metrics_render(m, &out);
    CHECK(contains(out.data, "\nlst_inflight +Inf\n"));
    lst_gauge_set(g, (double)NAN);
    lst_buf_reset(&out);
    lst_metrics_render(m, &out);
    CHECK(contains(out.data, "\nlst_inflight NaN\n"));
    lst_gauge_set(g, 1e21);
    lst_buf_reset(&out);
    lst_metrics_render(m, &out);
    CHECK(contains(out.data, "\nlst_inflight 1e+21\n"));
    lst_buf_cleanup(&out);
    lst_metrics_destroy(m);
}

static void test_histogram_render(void)
{
    struct lst_metrics *m = lst_metrics_create();
    REQUIRE(m != NULL);
    static const double bounds[] = {0.5, 1, 5};
    struct lst_histogram *h =
        lst_metrics_histogram(m, "lst_latency_seconds", "Latency.", "op=\"send\"", bounds, 3);
    struct lst_histogram *h0 =
        lst_metrics_histogram(m, "lst_latency_seconds", "Latency.", NULL, bounds, 3);
    REQUIRE(h != NULL && h0 != NULL);
    lst_histogram_observe(h, 0.25);
    lst_histogram_observe(h, 1.0); /* upper bounds are inclusive */
    lst_histogram_observe(h, 3.0);
    lst_histogram_observe(h, 10.0);
    lst_histogram_observe(h, (double)NAN); /* ignored */
    CHECK_EQ(lst_histogram_count(h), 4);
    struct lst_buf out;
    lst_buf_init(&out);
    CHECK_EQ(lst_metrics_render(m, &out), LST_OK);
    CHECK_STREQ(out.data, "# HELP lst_latency_seconds Latency.\n"
                          "# TYPE lst_latency_seconds histogram\n"
                          "lst_latency_seconds_bucket{op=\"send\",le=\"0.5\"} 1\n"
                          "lst_latency_seconds_bucket{op=\"send\",le=\"1\"} 2\n"
                          "lst_latency_seconds_bucket{op=\"send\",le=\"5\"} 3\n"
                          "lst_latency_seconds_bucket{op=\"send\",le=\"+Inf\"} 4\n"
                          "lst_latency_seconds_sum{op=\"send\"} 14.25\n"
                          "lst_latency_seconds_count{op=\"send\"} 4\n"
                          "lst_latency_seconds_bucket{le=\"0.5\"} 0\n"
                          "lst_latency_seconds_bucket{le=\"1\"} 0\n"
                          "lst_latency_seconds_bucket{le=\"5\"} 0\n"
                          "lst_latency_seconds_bucket{le=\"+Inf\"} 0\n"
                          "lst_latency_seconds_sum 0\n"
                          "lst_latency_seconds_count 0\n");
    lst_buf_cleanup(&out);
    lst_metrics_destroy(m);
}

static void test_latency_buckets(void)
{
    CHECK_EQ(lst_metrics_latency_nbuckets, 14);
    CHECK(lst_metrics_latency_buckets[0] == 0.001);
    CHECK(lst_metrics_latency_buckets[lst_metrics_latency_nbuckets - 1] == 30.0);
    for (size_t i = 1; i < lst_metrics_latency_nbuckets; i++)
        CHECK(lst_metrics_latency_buckets[i] > lst_metrics_latency_buckets[i - 1]);
    struct lst_metrics *m = lst_metrics_create();
    REQUIRE(m != NULL);
    struct lst_histogram *h = lst_metrics_histogram(
        m, "lat", "L.", NULL, lst_metrics_latency_buckets, lst_metrics_latency_nbuckets);
    REQUIRE(h != NULL);
    lst_histogram_observe(h, 0.003);
    struct lst_buf out;
    lst_buf_init(&out);
    CHECK_EQ(lst_metrics_render(m, &out), LST_OK);
    CHECK(contains(out.data, "lat_bucket{le=\"0.0025\"} 0\nlat_bucket{le=\"0.005\"} 1\n"));
    CHECK(contains(out.data, "lat_bucket{le=\"30\"} 1\nlat_bucket{le=\"+Inf\"} 1\n"));
    CHECK(contains(out.data, "lat_sum 0.003\nlat_count 1\n"));
    lst_buf_cleanup(&out);
    lst_metrics_destroy(m);
}

static void test_grouping_and_help_escaping(void)
{
    struct lst_metrics *m = lst_metrics_create();
    REQUIRE(m != NULL);
    struct lst_counter *a = lst_metrics_counter(m, "req_total", "Requests \\ by\ncode.", "c=\"1\"");
    struct lst_gauge *g = lst_metrics_gauge(m, "up", NULL, NULL);
    struct lst_counter *b = lst_metrics_counter(m, "req_total", "Other help.", "c=\"2\"");
    REQUIRE(a != NULL && g != NULL && b != NULL);
    lst_counter_add(a, 3);
    lst_counter_add(b, 7);
    lst_gauge_set(g, 1);
    struct lst_buf out;
    lst_buf_init(&out);
    CHECK_EQ(lst_metrics_render(m, &out), LST_OK);
    CHECK_STREQ(out.data, "# HELP req_total Requests \\\\ by\\ncode.\n"
                          "# TYPE req_total counter\n"
                          "req_total{c=\"1\"} 3\n"
                          "req_total{c=\"2\"} 7\n"
                          "# HELP up \n"
                          "# TYPE up gauge\n"
                          "up 1\n");
    CHECK_EQ(count_of(out.data, "# TYPE req_total"), 1);
    lst_buf_cleanup(&out);
    lst_metrics_destroy(m);
}

static void test_label_escape(void)
{
    struct lst_buf b;
    lst_buf_init(&b);
    CHECK_EQ(lst_metrics_label_escape(&b, "a\"b\\c\nd"), LST_OK);
    CHECK_STREQ(b.data, "a\\\"b\\\\c\\nd");
    lst_buf_reset(&b);
    CHECK_EQ(lst_metrics_label_escape(&b, "M\xC3\xBCller"), LST_OK);
    CHECK_STREQ(b.data, "M\xC3\xBCller");
    lst_buf_reset(&b);
    CHECK_EQ(lst_metrics_label_escape(&b, "bad\xFF"), LST_OK);
    CHECK_STREQ(b.data, "bad?");
    /* Escaped text is accepted as label text by the registry. */
    struct lst_buf labels;
    lst_buf_init(&labels);
    lst_buf_puts(&labels, "name=\"");
    lst_metrics_label_escape(&labels, "x\"\\\ny");
    lst_buf_puts(&labels, "\"");
    struct lst_metrics *m = lst_metrics_create();
    REQUIRE(m != NULL);
    CHECK(lst_metrics_counter(m, "esc_total", "h", labels.data) != NULL);
    lst_metrics_destroy(m);
    lst_buf_cleanup(&labels);
    lst_buf_cleanup(&b);
}

#define THREADS    8
#define INCREMENTS 100000

struct worker_arg {
    struct lst_metrics *m;
};

static void *worker(void *p)
{
    struct worker_arg *arg = p;
    /* Each thread looks the series up itself: get-or-create under contention. */
    struct lst_counter *c = lst_metrics_counter(arg->m, "hits_total", "Hits.", "k=\"v\"");
    struct lst_gauge *g = lst_metrics_gauge(arg->m, "level", "Level.", NULL);
    static const double bounds[] = {0.5};
    struct lst_histogram *h = lst_metrics_histogram(arg->m, "obs", "Obs.", NULL, bounds, 1);
    for (int i = 0; i < INCREMENTS; i++) {
        lst_counter_inc(c);
        lst_gauge_add(g, 1.0);
        lst_histogram_observe(h, (i & 1) ? 1.0 : 0.0);
    }
    return NULL;
}

static void test_threads_exact_totals(void)
{
    struct lst_metrics *m = lst_metrics_create();
    REQUIRE(m != NULL);
    struct worker_arg arg = {m};
    pthread_t t[THREADS];
    int started = 0;
    for (int i = 0; i < THREADS; i++) {
        if (pthread_create(&t[i], NULL, worker, &arg) == 0)
            started++;
    }
    CHECK_EQ(started, THREADS);
    /* Render concurrently with the updates: must not crash or deadlock. */
    struct lst_buf out;
    lst_buf_init(&out);
    for (int i = 0; i < 20; i++) {
        lst_buf_reset(&out);
        CHECK_EQ(lst_metrics_render(m, &out), LST_OK);
    }
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    uint64_t want = (uint64_t)started * INCREMENTS;
    CHECK_EQ(lst_counter_value(lst_metrics_counter(m, "hits_total", "Hits.", "k=\"v\"")), want);
    CHECK(lst_gauge_value(lst_metrics_gauge(m, "level", "Level.", NULL)) == (double)want);
    static const double bounds[] = {0.5};
    struct lst_histogram *h = lst_metrics_histogram(m, "obs", "Obs.", NULL, bounds, 1);
    CHECK_EQ(lst_histogram_count(h), want);
    lst_buf_reset(&out);
    CHECK_EQ(lst_metrics_render(m, &out), LST_OK);
    char line[128];
    snprintf(line, sizeof(line), "hits_total{k=\"v\"} %llu\n", (unsigned long long)want);
    CHECK(contains(out.data, line));
    snprintf(line, sizeof(line), "obs_bucket{le=\"0.5\"} %llu\n", (unsigned long long)want / 2);
    CHECK(contains(out.data, line));
    snprintf(line, sizeof(line), "obs_sum %llu\nobs_count %llu\n", (unsigned long long)want / 2,
             (unsigned long long)want);
    CHECK(contains(out.data, line));
    lst_buf_cleanup(&out);
    lst_metrics_destroy(m);
}

LST_TEST_MAIN(T(test_create_destroy), T(test_counter_get_or_create),
              T(test_invalid_names_labels_and_clashes), T(test_null_series_are_noops),
              T(test_gauge), T(test_histogram_render), T(test_latency_buckets),
              T(test_grouping_and_help_escaping), T(test_label_escape),
              T(test_threads_exact_totals))
