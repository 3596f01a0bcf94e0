/*
 * datadir.c - where an installed kbpipe keeps its data (migrations, the
 * token rank table): PREFIX/share/kbpipe.  The folder is found relative to
 * the running executable first (/proc/self/exe -> BIN/../share/kbpipe), so
 * a binary built with one PREFIX and installed under another (make install
 * PREFIX=... after make, a DESTDIR staging tree moved into place, a copied
 * tree) still finds its files; KB_DATADIR, compiled from PREFIX, is the
 * fallback.  docs/operations.md, "Installing".
 */
#include "util/util.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef KB_DATADIR
#define KB_DATADIR "/usr/local/share/kbpipe"
#endif

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* BIN/../share/kbpipe for the running executable, into out; 0 when unknown. */
static int exe_datadir(char *out, size_t n)
{
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return 0;
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return 0;
    *slash = '\0';                                   /* the bin/ folder */
    int w = snprintf(out, n, "%s/../share/kbpipe", exe);
    return w > 0 && (size_t)w < n && is_dir(out);
}

static char found[PATH_MAX + 32];
static pthread_once_t found_once = PTHREAD_ONCE_INIT;

static void find_datadir(void)
{
    if (!exe_datadir(found, sizeof found))
        snprintf(found, sizeof found, "%s", KB_DATADIR);
}

const char *kb_datadir(void)
{
    pthread_once(&found_once, find_datadir);
    return found;
}
