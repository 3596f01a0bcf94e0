/*
 * blas.c - the CBLAS call of src/embed (cblas_sgemm, similarity.c), from
 * OpenBLAS opened with dlopen at the first call instead of linked.
 * (normalize.c's three level-1 calls became plain loops: one vector at a
 * time never repaid loading the library.)
 *
 * Linked, libopenblas is loaded and initialized by every kbpipe process
 * before main (about 7 ms of CPU, and its constructor starts a thread pool
 * of one thread per core), although most commands never call it: --version,
 * search, stats, and a run without dedup.  Loaded here it costs only the
 * processes that compare many vectors (the dedup pass, `kbpipe dedup`).
 * "libopenblas.so.0" is the name Debian's alternatives (pthread, openmp,
 * serial) all provide.
 *
 * A missing library is fatal and loud, as running out of memory is (the
 * linked binary would not have started at all): kbpipe prints what to
 * install and aborts.
 */
#include "embed/embed_int.h"

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

static void load(void)
{
    char why[300];
    void *h = kb_dl_open(BLAS_LIBS, sizeof BLAS_LIBS / sizeof BLAS_LIBS[0], why, sizeof why);
    if (h == NULL ||
        !kb_dl_sym(h, BLAS_LIBS[0], "cblas_sgemm", &blas.sgemm, sizeof blas.sgemm, why,
                   sizeof why))
        die(why);
}

/* See embed_int.h. */
const struct embed_blas *embed_blas(void)
{
    pthread_once(&blas_once, load);
    return &blas;
}
