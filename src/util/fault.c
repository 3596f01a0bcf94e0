/*
 * fault.c - named fault points for tests (as SQLite's sqlite3FaultSim).
 * A test arms one point with KBPIPE_FAULT="load.flush" (fail at the first
 * hit) or "load.flush:3" (the third hit), runs kbpipe, and checks that the
 * database is as before.  Release builds compile the check away.
 */
#include "util.h"

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
    long nth = spec[n] == ':' ? strtol(spec + n + 1, NULL, 10) : 1;
    return ++hits == nth;
#else
    (void)point;
    return 0;
#endif
}
