/*
 * curl_lib.h - libcurl's calls as function pointers, filled once from the
 * library opened with dlopen at its first use (curl_lib.c).  Only the two
 * folders that make HTTP requests include it: src/ingest (github_http.c,
 * the GitHub API) and src/embed (openai.c, the OpenAI-compatible
 * embedder).  It is a second public header of src/util, apart from
 * util.h, so that the files that never make a request do not read
 * <curl/curl.h>; libcurl's headers give the types, no call is linked.
 */
#ifndef KB_CURL_LIB_H
#define KB_CURL_LIB_H

#include <curl/curl.h>
#include <time.h>

#include "util/util.h"

/* The libcurl calls kbpipe makes; the names drop curl_'s prefix. */
struct kb_curl {
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *e);
    void (*easy_reset)(CURL *e);
    CURLcode (*easy_setopt)(CURL *e, CURLoption option, ...);
    CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
    CURLcode (*easy_perform)(CURL *e);
    const char *(*easy_strerror)(CURLcode cc);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
    void (*slist_free_all)(struct curl_slist *list);
    time_t (*getdate)(const char *s, const time_t *unused);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *m);
    CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
    CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
    CURLMcode (*multi_perform)(CURLM *m, int *n_running);
    CURLMsg *(*multi_info_read)(CURLM *m, int *n_msgs);
    CURLMcode (*multi_poll)(CURLM *m, struct curl_waitfd extra_fds[], unsigned int n_extra,
                            int timeout_ms, int *n_fds);
};

/*
 * The libcurl table, *out pointing at it (borrowed: it lives until the
 * process ends).  The first call of the process opens libcurl.so.4 and
 * calls curl_global_init(CURL_GLOBAL_DEFAULT), once, under pthread_once,
 * so threads may call this at the same time; later calls return the same
 * table or the same failure.  `who` names what needs libcurl ("the github
 * source type"): on a library that cannot be opened, lacks a call or fails
 * to initialize, KB_E_CONFIG with a message naming `who`, the reason, and
 * the package to install (libcurl4), and *out is NULL.
 */
enum kb_code kb_curl_open(const char *who, const struct kb_curl **out, struct kb_err *err);

#endif
