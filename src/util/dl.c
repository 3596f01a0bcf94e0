/*
 * dl.c - opening a shared library at its first use (dlopen), for the
 * libraries most kbpipe processes never call: poppler-glib (src/ingest/
 * pdf.c), libxml2 (src/ingest/html.c) and OpenBLAS (src/embed/blas.c).
 * Each loader keeps its own table of functions and its own policy for a
 * missing library (a PDF or HTML file is rejected, OpenBLAS aborts); what
 * they share is here: the names tried in order, and dlsym into a function
 * pointer with the missing symbol named.
 */
#include "util/util.h"

#include <dlfcn.h>
#include <string.h>

/* See util.h. */
void *kb_dl_open(const char *const *names, size_t n, char *why, size_t why_len)
{
    void *h = NULL;
    for (size_t i = 0; i < n && h == NULL; i++)
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *e = dlerror();
        snprintf(why, why_len, "%s", e ? e : "not found");
    }
    return h;
}

/* See util.h. */
int kb_dl_sym(void *h, const char *lib, const char *name, void *fn, size_t size, char *why,
              size_t why_len)
{
    void *p = dlsym(h, name);   /* the library's dependencies are searched too */
    if (p == NULL) {
        snprintf(why, why_len, "%s has no symbol %s", lib, name);
        return 0;
    }
    memcpy(fn, &p, size);   /* POSIX: a data pointer from dlsym holds a function's address */
    return 1;
}
