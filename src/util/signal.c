/*
 * signal.c - SIGINT and SIGTERM for the long commands (`kbpipe run`).
 *
 * The first signal only sets a flag: the run loop stops taking new work,
 * lets the batch being written commit or roll back, records the run as
 * `interrupted` and returns KB_E_INTERRUPTED, which main maps to 128 + the
 * signal's number (130 for SIGINT, 143 for SIGTERM: what a shell reports
 * for a process the signal ended).  The handler is installed with
 * SA_RESETHAND, so a second signal finds the default action and ends the
 * process at once.  SA_RESTART keeps reads and writes going meanwhile.
 * The flag is the only mutable global of kbpipe beyond the parsed options:
 * a signal handler can reach nothing else.
 */
#include "util.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t received;

static void on_signal(int signo) { received = signo; }

/* See util.h. */
void kb_signals_catch(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    received = 0;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* See util.h. */
int kb_signal_received(void) { return received; }
