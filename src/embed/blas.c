/*
 * blas.c - the four CBLAS calls of src/embed (normalize.c, similarity.c),
 * from OpenBLAS opened with dlopen at the first call instead of linked.
 *
 * Linked, libopenblas is loaded and initialized by every kbpipe process
 * before main (about 7 ms of CPU, and its constructor starts a thread pool
 * of one thread per core), although most commands never call it: --version,
 * search, stats, and a run that embeds nothing (an unchanged re-run).
 * Loaded here it costs only the processes that normalize a vector or
 * compare them.  "libopenblas.so.0" is the name Debian's alternatives
 * (pthread, openmp, serial) all provide.
 *
 * A missing library is fatal and loud, as running out of memory is (the
 * linked binary would not have started at all): kbpipe prints what to
 * install and aborts.
 */
#include "embed/embed_int.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct embed_blas blas;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static const char *const BLAS_LIBS[] = { "libopenblas.so.0", "libopenblas.so" };

static void die(const char *what)
{
    fprintf(stderr, "kbpipe: cannot load OpenBLAS (%s): %s; install it (Debian: apt-get "
                    "install libopenblas0)\n", BLAS_LIBS[0], what);
    abort();
}

static void sym(void *h, const char *name, void *fn, size_t size)
{
    void *p = dlsym(h, name);
    if (p == NULL)
        die(name);
    memcpy(fn, &p, size);   /* POSIX: dlsym's pointer holds the function's address */
}

static void load(void)
{
    void *h = NULL;
    for (size_t i = 0; i < sizeof BLAS_LIBS / sizeof BLAS_LIBS[0] && h == NULL; i++)
        h = dlopen(BLAS_LIBS[i], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *e = dlerror();
        die(e ? e : "not found");
    }
    sym(h, "cblas_dsdot", &blas.dsdot, sizeof blas.dsdot);
    sym(h, "cblas_isamax", &blas.isamax, sizeof blas.isamax);
    sym(h, "cblas_sscal", &blas.sscal, sizeof blas.sscal);
    sym(h, "cblas_sgemm", &blas.sgemm, sizeof blas.sgemm);
}

/* See embed_int.h. */
const struct embed_blas *embed_blas(void)
{
    pthread_once(&blas_once, load);
    return &blas;
}
