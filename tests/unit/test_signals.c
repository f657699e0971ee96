/* Unit tests of the stop flag and signal handling, with real signals raised in-process. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "lst/signals.h"
#include "lst/util.h"
#include "lst_test.h"

static void test_request_stop(void)
{
    lst_signals_reset();
    CHECK(!lst_stop_requested());
    lst_request_stop();
    CHECK(lst_stop_requested());
    /* Already stopped: returns at once. */
    int64_t t0 = lst_mono_ms();
    CHECK(lst_signals_wait_ms(10000));
    CHECK(lst_mono_ms() - t0 < 1000);
    lst_signals_reset();
    CHECK(!lst_stop_requested());
}

static void test_sigterm_and_sigint_set_flag(void)
{
    REQUIRE(lst_signals_install() == LST_OK);
    REQUIRE(lst_signals_install() == LST_OK); /* idempotent */
    lst_signals_reset();
    CHECK_EQ(raise(SIGTERM), 0);
    CHECK(lst_stop_requested()); /* and the process is still alive */
    lst_signals_reset();
    CHECK_EQ(raise(SIGINT), 0);
    CHECK(lst_stop_requested());
    lst_signals_reset();
}

static void test_sigpipe_ignored(void)
{
    REQUIRE(lst_signals_install() == LST_OK);
    CHECK_EQ(raise(SIGPIPE), 0); /* would kill the process if not ignored */
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    close(fds[0]);
    errno = 0;
    ssize_t n = write(fds[1], "x", 1);
    CHECK(n == -1);
    CHECK_EQ(errno, EPIPE);
    close(fds[1]);
    CHECK(!lst_stop_requested());
}

static void test_wait_times_out(void)
{
    lst_signals_reset();
    int64_t t0 = lst_mono_ms();
    CHECK(!lst_signals_wait_ms(120));
    int64_t elapsed = lst_mono_ms() - t0;
    CHECK(elapsed >= 120);
    CHECK(elapsed < 5000);
    CHECK(!lst_signals_wait_ms(0));
    CHECK(!lst_signals_wait_ms(-5));
}

static void *send_sigterm_later(void *p)
{
    (void)p;
    lst_sleep_ms(100, NULL);
    /* Process-directed: the kernel may deliver it to either thread. */
    kill(getpid(), SIGTERM);
    return NULL;
}

static void *request_stop_later(void *p)
{
    (void)p;
    lst_sleep_ms(100, NULL);
    lst_request_stop();
    return NULL;
}

/* Waits up to 10 s for the stop another thread causes; it must end long before. */
static void check_wait_ends_early(void *(*fn)(void *))
{
    lst_signals_reset();
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, fn, NULL) == 0);
    int64_t t0 = lst_mono_ms();
    CHECK(lst_signals_wait_ms(10000));
    int64_t elapsed = lst_mono_ms() - t0;
    CHECK(elapsed >= 50);
    CHECK(elapsed < 3000);
    pthread_join(t, NULL);
    lst_signals_reset();
}

static void test_wait_ends_on_sigterm(void)
{
    REQUIRE(lst_signals_install() == LST_OK);
    check_wait_ends_early(send_sigterm_later);
}

static void test_wait_ends_on_request_from_thread(void)
{
    check_wait_ends_early(request_stop_later);
}

LST_TEST_MAIN(T(test_request_stop), T(test_sigterm_and_sigint_set_flag), T(test_sigpipe_ignored),
              T(test_wait_times_out), T(test_wait_ends_on_sigterm),
              T(test_wait_ends_on_request_from_thread))
