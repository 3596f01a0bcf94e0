/*
 * ghstub.h - a GitHub REST API stub on 127.0.0.1 for the tests of the
 * type: github source (test_github.c, test_github_run.c).  It serves the
 * issues of one repository (GH_STUB_REPO) like the API: the listing by
 * updated_at with since= and Link pagination, an ETag per page and 304 for
 * If-None-Match, the comments per issue; and faults on demand: 502s, a
 * 403 primary rate limit with its reset, one status for everything
 * (401/403/404), next links on another host.  One thread, one request per
 * connection; it stops by itself after GH_STUB_MAX_REQUESTS requests, so a
 * looping client cannot hang a test.
 */
#ifndef KB_GHSTUB_H
#define KB_GHSTUB_H

#include <pthread.h>

#include <jansson.h>

#include "util/util.h"

#define GH_STUB_MAX_REQUESTS 400
#define GH_STUB_TOKEN "ghp_kbpipeTestSecret0123456789"
#define GH_STUB_REPO "acme/api"

struct gh_stub {
    int fd, port;
    pthread_t thread;
    json_t *issues;                /* REST issue objects of REPO */
    json_t *comments;              /* REST comment objects (issue_url says whose) */
    /* faults */
    int n_502;                     /* answer this many requests 502 first */
    int rate_limit_once;           /* the first listing: 403, remaining 0, reset +1 s */
    int n_retry_after;             /* answer this many listings 403 + Retry-After */
    int retry_after_s;             /* ... with this many seconds */
    int exhaust_on_listing;        /* listings: 200 with remaining 0, reset +1 s */
    long reset_at;                 /* the reset (or Retry-After's end) announced, epoch s */
    long reset_in;                 /* seconds ahead for the reset (default 1) */
    int force_status;              /* answer every request with it (401, 403, 404) */
    int link_elsewhere;            /* next-page links point at another host */
    /* what it saw */
    int n_requests, n_listings, n_comment_requests, n_304, n_auth_ok, n_etag_sent;
    int n_early;                   /* requests that came before reset_at */
    char last_since[64];           /* since= of the last listing ("" none) */
    struct kb_buf log;             /* one request line per request */
};

/*
 * Start serving n_issues issues: #k updated on 2026-11-0k at 10:00 UTC,
 * with k % 3 comments; #4 a pull request.  Fails the test if it cannot
 * listen.  Stop it (and free its data) with ghstub_stop.
 */
void ghstub_start(struct gh_stub *s, int n_issues);
void ghstub_stop(struct gh_stub *s);

/* Replace issue #k by an edited version (title "Issue K (edited)") updated on day `day`. */
void ghstub_edit(struct gh_stub *s, int k, int day);

/* Write the stub's data as REST exports dir/issues.json and dir/comments.json. */
void ghstub_write_exports(const struct gh_stub *s, const char *dir);

#endif /* KB_GHSTUB_H */
