/*
 * signal.c - SIGINT and SIGTERM for the long commands (`kbpipe run`).
 *
 * The first signal only sets a flag: the run loop stops taking new work,
 * lets the batch being written commit or roll back, records the run as
 * `interrupted` and returns KB_E_INTERRUPTED, which main maps to 128 + the
 * signal's number (130 for SIGINT, 143 for SIGTERM: what a shell reports
 * for a process the signal ended).  A second signal ends the process at
 * once (the default action, raised again), unless it comes within
 * KB_SIGNAL_REPEAT_MS of the first: timeout(1) and some supervisors send one
 * signal twice, to the process and to its process group, and that is one
 * request to stop, not two.  A person's second Ctrl-C is later than that.
 * SA_RESTART keeps reads and writes going meanwhile.  The handler uses
 * only async-signal-safe calls (clock_gettime, signal, raise).  The flag
 * and the first signal's time are the only mutable globals of kbpipe
 * beyond the parsed options: a signal handler can reach nothing else.
 */
#include "util.h"

#include <signal.h>
#include <string.h>

#include <time.h>

#define KB_SIGNAL_REPEAT_MS 1000

static volatile sig_atomic_t received;
static struct timespec first_at;   /* written by the handler before `received` */

static long ms_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static void on_signal(int signo)
{
    if (!received) {
        clock_gettime(CLOCK_MONOTONIC, &first_at);
        received = signo;
        return;
    }
    if (ms_since(&first_at) < KB_SIGNAL_REPEAT_MS)
        return;   /* the same request forwarded twice (timeout(1): child and group) */
    signal(signo, SIG_DFL);
    raise(signo);
}

/* See util.h. */
void kb_signals_catch(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    received = 0;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* See util.h. */
int kb_signal_received(void) { return received; }

/* See util.h. */
int kb_sleep_ms(long ms)
{
    while (ms > 0 && !received) {
        long slice = ms < 200 ? ms : 200;   /* a signal is noticed within 0.2 s */
        struct timespec ts = { slice / 1000, (slice % 1000) * 1000000L };
        nanosleep(&ts, NULL);               /* EINTR: the loop tests `received` */
        ms -= slice;
    }
    return received != 0;
}
