/* lst/gateway_rate.h against a real redis-server: two limiters on the same keys stand for
 * gateway-out and gateway-in, which share one Gateway account. */
#include <pthread.h>
#include <stdatomic.h>

#include "lst/gateway_rate.h"
#include "lst/log.h"
#include "lst/util.h"
#include "lst_test.h"
#include "redis_fixture.h"

#define PREFIX "test:rl:"

static struct lst_redis *connect_to(int port, int timeout_ms)
{
    const struct lst_redis_config rc = {
        .port = port, .timeout_ms = timeout_ms, .reconnect_attempts = 1};
    struct lst_redis *r = NULL;
    return lst_redis_create(&rc, &r) == LST_OK ? r : NULL;
}

static struct lst_gateway_rate *limiter_t(int port, double limit, bool fail_open, int timeout_ms)
{
    const struct lst_gateway_rate_config cfg = {.limit = limit,
                                                .floor = 1,
                                                .key_prefix = PREFIX,
                                                .service = "test",
                                                .fail_open = fail_open};
    struct lst_gateway_rate *r = NULL;
    struct lst_redis *redis = connect_to(port, timeout_ms);
    if (redis == NULL || lst_gateway_rate_create(&cfg, redis, &r) != LST_OK)
        return NULL;
    return r;
}

static struct lst_gateway_rate *limiter(int port, double limit, bool fail_open)
{
    return limiter_t(port, limit, fail_open, 300);
}

#define MAX_GRANTS 4096

struct taker {
    struct lst_gateway_rate *rate;
    int64_t until; /* monotonic ms */
    int64_t at[MAX_GRANTS];
    int n;
};

static void *take_until(void *arg)
{
    struct taker *t = arg;
    while (t->n < MAX_GRANTS && lst_gateway_rate_acquire(t->rate, t->until, NULL, NULL))
        t->at[t->n++] = lst_mono_ms();
    return NULL;
}

/* The most grants of both takers within any 1,000 ms. */
static int peak_per_second(const struct taker *a, const struct taker *b)
{
    int64_t all[2 * MAX_GRANTS];
    int n = 0, best = 0;
    for (int i = 0; i < a->n; i++)
        all[n++] = a->at[i];
    for (int i = 0; i < b->n; i++)
        all[n++] = b->at[i];
    for (int i = 0; i < n; i++) {
        int in = 0;
        for (int j = 0; j < n; j++)
            in += all[j] >= all[i] && all[j] < all[i] + 1000;
        best = in > best ? in : best;
    }
    return best;
}

/* Two processes' limiters on one budget of 40/s: together they stay within it (a sliding
 * second spans at most 11 of the 100 ms windows, so 44), and both get their share. */
static void test_two_limiters_share_one_budget(void)
{
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    static struct taker a, b;
    a.rate = limiter(f.port, 40, false);
    b.rate = limiter(f.port, 40, true);
    REQUIRE(a.rate != NULL && b.rate != NULL);
    a.until = b.until = lst_mono_ms() + 2500;
    pthread_t ta, tb;
    REQUIRE(pthread_create(&ta, NULL, take_until, &a) == 0);
    REQUIRE(pthread_create(&tb, NULL, take_until, &b) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    int peak = peak_per_second(&a, &b);
    fprintf(stderr, "  grants: %d + %d in 2.5 s, at most %d in one second\n", a.n, b.n, peak);
    CHECK(peak <= 44);
    CHECK(a.n + b.n >= 60); /* 2.5 s of 40/s is 100; the first window may be partly gone */
    CHECK(a.n > 0 && b.n > 0);
    lst_gateway_rate_destroy(a.rate);
    lst_gateway_rate_destroy(b.rate);
    redis_fixture_stop(&f);
}

/* A greedy caller (gateway-out in a long broadcast) takes all it can of 100/s for 1.5 s while
 * another (gateway-in) asks once every 100 ms with gateway-in's 250 ms wait: the other is not
 * starved (each process refills at most once at a time, so at a window's start both get a
 * turn), and together they stay within the rate. */
static void test_greedy_caller_does_not_starve_another(void)
{
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    static struct taker greedy;
    greedy.rate = limiter(f.port, 100, false);
    struct lst_gateway_rate *other = limiter(f.port, 100, true);
    REQUIRE(greedy.rate != NULL && other != NULL);
    int64_t t0 = lst_mono_ms();
    greedy.until = t0 + 1500;
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, take_until, &greedy) == 0);
    int got = 0;
    for (int i = 0; i < 10; i++) {
        lst_sleep_ms(t0 + 300 + 100 * i - lst_mono_ms(), NULL);
        got += lst_gateway_rate_acquire(other, lst_mono_ms() + 250, NULL, NULL);
    }
    pthread_join(t, NULL);
    fprintf(stderr, "  the other caller: %d of 10 asks got a token; the greedy one took %d\n", got,
            greedy.n);
    CHECK(got >= 9);
    CHECK(greedy.n + got <= 160); /* 1.5 s spans at most 16 windows of 10 tokens */
    lst_gateway_rate_destroy(greedy.rate);
    lst_gateway_rate_destroy(other);
    redis_fixture_stop(&f);
}

/* A 429 seen by one process halves the rate the other one uses. */
static void test_429_lowers_the_rate_for_all(void)
{
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    struct lst_metrics *m = lst_metrics_create();
    REQUIRE(m != NULL);
    struct lst_gauge *seen_by_b = lst_metrics_gauge(m, "rate_b", "b's effective rate", NULL);
    struct lst_counter *waits_b = lst_metrics_counter(m, "waits_b", "b's waits", NULL);
    struct lst_gateway_rate *a = limiter(f.port, 200, false), *b = limiter(f.port, 200, false);
    REQUIRE(a != NULL && b != NULL);
    lst_gateway_rate_set_metrics(b, seen_by_b, waits_b);
    CHECK(lst_gauge_value(seen_by_b) == 200.0);
    lst_gateway_rate_on_429(a);
    /* b learns the shared rate with its next refill, at the latest in the next window */
    for (int i = 0; i < 30 && lst_gauge_value(seen_by_b) == 200.0; i++)
        CHECK(lst_gateway_rate_acquire(b, lst_mono_ms() + 1000, NULL, NULL));
    CHECK(lst_gauge_value(seen_by_b) == 100.0);
    lst_gateway_rate_on_429(a); /* within the same second: not halved again */
    CHECK(lst_gateway_rate_acquire(b, lst_mono_ms() + 1000, NULL, NULL));
    lst_sleep_ms(150, NULL);
    CHECK(lst_gateway_rate_acquire(b, lst_mono_ms() + 1000, NULL, NULL));
    CHECK(lst_gauge_value(seen_by_b) == 100.0);
    lst_gateway_rate_destroy(a);
    lst_gateway_rate_destroy(b);
    lst_metrics_destroy(m);
    redis_fixture_stop(&f);
}

/* At 1/s the next token is a second away: a caller with a shorter deadline gives up. */
static void test_deadline_gives_up(void)
{
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    struct lst_gateway_rate *r = limiter(f.port, 1, false);
    REQUIRE(r != NULL);
    CHECK(lst_gateway_rate_acquire(r, lst_mono_ms() + 3000, NULL, NULL));
    int64_t t0 = lst_mono_ms();
    CHECK(!lst_gateway_rate_acquire(r, t0 + 200, NULL, NULL));
    int64_t took = lst_mono_ms() - t0;
    CHECK(took >= 150 && took < 1000);
    lst_gateway_rate_destroy(r);
    redis_fixture_stop(&f);
}

/* No Redis: a fail-open limiter lets calls through, a closed one makes them wait. */
static void test_redis_down_open_or_closed(void)
{
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    int port = f.port;
    redis_fixture_stop(&f); /* nothing listens there now */
    lst_log_set_level(LST_LOG_ERROR);
    struct lst_gateway_rate *open = limiter(port, 10, true), *closed = limiter(port, 10, false);
    REQUIRE(open != NULL && closed != NULL);
    int64_t t0 = lst_mono_ms();
    for (int i = 0; i < 50; i++) /* more than a second's budget: none is counted */
        CHECK(lst_gateway_rate_acquire(open, t0 + 5000, NULL, NULL));
    CHECK(lst_mono_ms() - t0 < 2000);
    CHECK(!lst_gateway_rate_acquire(closed, lst_mono_ms() + 300, NULL, NULL));
    lst_log_set_level(LST_LOG_WARN);
    lst_gateway_rate_destroy(open);
    lst_gateway_rate_destroy(closed);
}

static void *acquire_once(void *arg)
{
    static bool ok;
    ok = lst_gateway_rate_acquire(arg, lst_mono_ms() + 5000, NULL, NULL);
    return &ok;
}

/* A stalled Redis (SIGSTOP): while one caller's refill waits out the Redis timeout, a
 * fail-open limiter lets the others through instead of making them wait too. */
static void test_redis_stalled_fail_open(void)
{
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    struct lst_gateway_rate *r = limiter_t(f.port, 10, true, 1500);
    REQUIRE(r != NULL);
    CHECK(lst_gateway_rate_acquire(r, lst_mono_ms() + 1000, NULL, NULL)); /* connected */
    lst_sleep_ms(150, NULL); /* the next window: no tokens left over */
    lst_log_set_level(LST_LOG_ERROR);
    REQUIRE(kill(f.pid, SIGSTOP) == 0);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, acquire_once, r) == 0);
    lst_sleep_ms(20, NULL); /* t's refill is waiting for the stopped server */
    int64_t t0 = lst_mono_ms();
    CHECK(lst_gateway_rate_acquire(r, t0 + 1000, NULL, NULL));
    int64_t took = lst_mono_ms() - t0;
    CHECK(took < 700); /* not the 1,500 ms Redis timeout */
    kill(f.pid, SIGCONT);
    void *res = NULL;
    pthread_join(t, &res);
    CHECK(res != NULL && *(bool *)res);
    lst_log_set_level(LST_LOG_WARN);
    lst_gateway_rate_destroy(r);
    redis_fixture_stop(&f);
}

/* A restarted Redis: the limiter reconnects and goes on granting (the window counters are
 * gone with the server, which at worst gives one window's budget twice). */
static void test_redis_restart(void)
{
    struct redis_fixture f;
    REQUIRE(redis_fixture_start(&f, NULL));
    struct lst_gateway_rate *r = limiter(f.port, 50, false);
    REQUIRE(r != NULL);
    CHECK(lst_gateway_rate_acquire(r, lst_mono_ms() + 1000, NULL, NULL));
    REQUIRE(redis_fixture_restart(&f));
    lst_log_set_level(LST_LOG_ERROR);
    for (int i = 0; i < 20; i++)
        CHECK(lst_gateway_rate_acquire(r, lst_mono_ms() + 3000, NULL, NULL));
    lst_log_set_level(LST_LOG_WARN);
    lst_gateway_rate_destroy(r);
    redis_fixture_stop(&f);
}

/* A limit of 0 is no limit: no Redis is asked. */
static void test_zero_is_unlimited(void)
{
    struct lst_gateway_rate *r = limiter(1, 0, false); /* port 1: never connected */
    REQUIRE(r != NULL);
    int64_t wait = -1;
    for (int i = 0; i < 1000; i++)
        CHECK(lst_gateway_rate_acquire(r, 0, NULL, NULL));
    CHECK(lst_gateway_rate_try(r, &wait));
    CHECK_EQ(wait, 0);
    lst_gateway_rate_destroy(r);
}

LST_TEST_MAIN(T(test_two_limiters_share_one_budget), T(test_greedy_caller_does_not_starve_another),
              T(test_429_lowers_the_rate_for_all), T(test_deadline_gives_up),
              T(test_redis_down_open_or_closed), T(test_redis_stalled_fail_open),
              T(test_redis_restart), T(test_zero_is_unlimited))
