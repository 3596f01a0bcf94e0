/*
 * fault.c - named fault points for tests (as SQLite's sqlite3FaultSim).
 * A test arms one point with KBPIPE_FAULT="load.flush" (fail at the first
 * hit) or "load.flush:3" (the third hit), runs kbpipe, and checks that the
 * database is as before.  A trailing ":kill" ("load.dedup:1:kill") makes
 * the hit a SIGKILL of the process instead of a failure: a kill -9 at an
 * exact instant, for the resume tests (tests/integration/run_resume.sh).
 * Release builds compile the check away.
 */
#include "util.h"

#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

int kb_fault(const char *point)
{
#ifdef KB_FAULTS
    static long hits;
    static char armed[128];
    const char *spec = getenv("KBPIPE_FAULT");
    if (spec == NULL || *spec == '\0')
        return 0;
    if (strncmp(armed, spec, sizeof armed - 1) != 0) {   /* newly armed: count anew */
        snprintf(armed, sizeof armed, "%s", spec);
        hits = 0;
    }
    size_t n = strlen(point);
    if (strncmp(spec, point, n) != 0 || (spec[n] != '\0' && spec[n] != ':'))
        return 0;
    char *end = (char *)spec + n;
    long nth = spec[n] == ':' ? strtol(spec + n + 1, &end, 10) : 1;
    if (++hits != nth)
        return 0;
    if (strcmp(end, ":kill") == 0)
        raise(SIGKILL);
    return 1;
#else
    (void)point;
    return 0;
#endif
}
