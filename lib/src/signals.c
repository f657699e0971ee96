/* The stop flag and signal handling. See lst/signals.h. */
#include "lst/signals.h"

#include <signal.h>
#include <string.h>
#include <time.h>

#include "lst/util.h"

/* The longest single sleep in lst_signals_wait_ms: the worst-case delay between a stop request
 * and the waiter noticing it when the signal went to another thread. */
#define WAIT_SLICE_MS 50

/* The project's one global (see style.md): written by the handler, read by every loop. */
static volatile sig_atomic_t g_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

lst_err lst_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a nanosleep/poll/read interrupted by SIGTERM returns EINTR instead of
     * silently resuming, so the interrupted loop re-checks the flag at once. */
    sa.sa_flags = 0;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return LST_ERR_IO;

    struct sigaction ign;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    if (sigaction(SIGPIPE, &ign, NULL) != 0)
        return LST_ERR_IO;
    return LST_OK;
}

bool lst_stop_requested(void)
{
    return g_stop != 0;
}

void lst_request_stop(void)
{
    g_stop = 1;
}

void lst_signals_reset(void)
{
    g_stop = 0;
}

/* Why short bounded sleeps and not sigtimedwait: sigtimedwait only works when SIGTERM is
 * blocked in every thread of the process, which would have to happen before librdkafka,
 * libmicrohttpd and libcurl start theirs, and then the signal is consumed by the waiter
 * instead of setting the flag the other loops poll. A signal that lands on another thread (or
 * lst_request_stop from another thread) does not interrupt our nanosleep, so we sleep in
 * slices of at most WAIT_SLICE_MS and re-check the flag: at most that much added latency on
 * shutdown, no dependency on which thread the kernel picks, and no pipes or fds to manage.
 * When the signal does hit this thread, nanosleep returns EINTR (no SA_RESTART) and we
 * notice immediately. */
bool lst_signals_wait_ms(int64_t ms)
{
    int64_t deadline = lst_mono_ms() + (ms > 0 ? ms : 0);
    while (!lst_stop_requested()) {
        int64_t left = deadline - lst_mono_ms();
        if (left <= 0)
            break;
        int64_t step = left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)step * 1000000L};
        /* EINTR just ends this slice early; the loop re-checks the flag and the deadline. */
        nanosleep(&ts, NULL);
    }
    return lst_stop_requested();
}
