/*
 * curl_lib.c - libcurl opened with dlopen at the first request, not
 * linked: with the 9 libraries it alone brings (nghttp2, idn2, rtmp, ssh2,
 * psl, zstd, brotli, ...), loading and relocating it cost every kbpipe
 * process at start, `--version` and `search` included, though only the
 * github source type and the openai embedder make requests
 * (docs/loading.md, "What kbpipe controls", (4)).  As for poppler-glib,
 * libxml2 and OpenBLAS (dl.c), the headers give the types and the calls go
 * through a table filled once.
 *
 * curl_global_init is not thread-safe in every libcurl build, and must
 * run before any other call: it runs here, once, inside the pthread_once
 * that opens the library, whichever thread gets there first (a client is
 * made by embed_embedder_new, at a run's start or for a search's query,
 * and by gh_http_new, when a github source opens).  curl_global_cleanup
 * never runs: the library stays loaded until the process ends (before,
 * each client paired its own init and cleanup, refcounted by libcurl).
 */
#include "util/curl_lib.h"

#include <pthread.h>
#include <stdio.h>

static struct kb_curl curl;
static int curl_is_loaded;
static char curl_why[300];
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

/* Debian's soname (package libcurl4, the OpenSSL flavour), then the dev link. */
static const char *const CURL_LIBS[] = { "libcurl.so.4", "libcurl.so" };
/* a name no system has: the fault point util.curl_open opens it instead */
static const char *const CURL_MISSING[] = { "libcurl-kbpipe-fault.so.4" };

static void curl_load(void)
{
    void *h = kb_fault("util.curl_open")
                  ? kb_dl_open(CURL_MISSING, 1, curl_why, sizeof curl_why)
                  : kb_dl_open(CURL_LIBS, sizeof CURL_LIBS / sizeof CURL_LIBS[0], curl_why,
                               sizeof curl_why);
    if (h == NULL)
        return;
    CURLcode (*global_init)(long flags) = NULL;
#define CURL_SYM(field, name) \
    kb_dl_sym(h, CURL_LIBS[0], name, &curl.field, sizeof curl.field, curl_why, sizeof curl_why)
    int is_found = kb_dl_sym(h, CURL_LIBS[0], "curl_global_init", &global_init,
                             sizeof global_init, curl_why, sizeof curl_why) &&
                   CURL_SYM(easy_init, "curl_easy_init") &&
                   CURL_SYM(easy_cleanup, "curl_easy_cleanup") &&
                   CURL_SYM(easy_reset, "curl_easy_reset") &&
                   CURL_SYM(easy_setopt, "curl_easy_setopt") &&
                   CURL_SYM(easy_getinfo, "curl_easy_getinfo") &&
                   CURL_SYM(easy_perform, "curl_easy_perform") &&
                   CURL_SYM(easy_strerror, "curl_easy_strerror") &&
                   CURL_SYM(slist_append, "curl_slist_append") &&
                   CURL_SYM(slist_free_all, "curl_slist_free_all") &&
                   CURL_SYM(getdate, "curl_getdate") &&
                   CURL_SYM(multi_init, "curl_multi_init") &&
                   CURL_SYM(multi_cleanup, "curl_multi_cleanup") &&
                   CURL_SYM(multi_add_handle, "curl_multi_add_handle") &&
                   CURL_SYM(multi_remove_handle, "curl_multi_remove_handle") &&
                   CURL_SYM(multi_perform, "curl_multi_perform") &&
                   CURL_SYM(multi_info_read, "curl_multi_info_read") &&
                   CURL_SYM(multi_poll, "curl_multi_poll");   /* 7.66.0 */
#undef CURL_SYM
    if (!is_found)
        return;
    if (global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(curl_why, sizeof curl_why, "curl_global_init failed");
        return;
    }
    curl_is_loaded = 1;
}

/* See curl_lib.h. */
enum kb_code kb_curl_open(const char *who, const struct kb_curl **out, struct kb_err *err)
{
    pthread_once(&curl_once, curl_load);
    *out = NULL;
    if (!curl_is_loaded)
        return KB_FAIL(err, KB_E_CONFIG, NULL, "%s needs libcurl, which cannot be loaded "
                       "(%.200s); install it (Debian: apt-get install libcurl4)", who, curl_why);
    *out = &curl;
    return KB_OK;
}
