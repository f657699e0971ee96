/* Process signals and the stop flag: the one global of a service (a volatile sig_atomic_t,
 * the only type a signal handler may portably write).
 *
 * A service main calls lst_signals_install() first, before any library starts a thread, then
 * runs its loop until lst_stop_requested(); worker threads poll the same flag. SIGTERM
 * (docker stop, systemd) and SIGINT (Ctrl-C) request a stop; SIGPIPE is ignored, because a
 * peer closing a socket that libcurl, libmicrohttpd or hiredis writes to must give EPIPE,
 * never kill the process. */
#ifndef LST_SIGNALS_H
#define LST_SIGNALS_H

#include <stdbool.h>
#include <stdint.h>

#include "lst/error.h"

/* Installs the SIGTERM/SIGINT handlers (without SA_RESTART, so a blocking call in the thread
 * that receives the signal returns EINTR and the loop notices promptly) and ignores SIGPIPE.
 * LST_ERR_IO when sigaction fails. Safe to call more than once. */
lst_err lst_signals_install(void);

/* True once SIGTERM/SIGINT arrived or lst_request_stop was called. Async-signal-safe. */
bool lst_stop_requested(void);

/* Requests a stop as a signal would (tests, fatal paths such as a dead Kafka producer).
 * Async-signal-safe. */
void lst_request_stop(void);

/* Clears the flag (tests only: a service never un-stops). */
void lst_signals_reset(void);

/* Sleeps until a stop is requested or ms milliseconds have passed, whichever comes first.
 * Returns true when a stop is requested (also when it already was at the call). ms <= 0
 * just checks the flag. */
bool lst_signals_wait_ms(int64_t ms);

#endif
