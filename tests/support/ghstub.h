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
 *
 * POST /graphql (and /api/graphql; REST paths also under /api/v3, as GitHub
 * Enterprise Server serves them) answers the three queries of
 * src/ingest/github_discussions.c (ghstub_graphql.c) in the shape GitHub
 * gives: the discussions newest updatedAt first with cursor pages, a
 * discussion's comments, a comment's replies; faults: an `errors` answer,
 * RATE_LIMITED with its reset.
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
    int n_502;                     /* answer this many GETs 502 first */
    int rate_limit_once;           /* the first listing: 403, remaining 0, reset +1 s */
    int n_retry_after;             /* answer this many listings 403 + Retry-After */
    int retry_after_s;             /* ... with this many seconds */
    int exhaust_on_listing;        /* listings: 200 with remaining 0, reset +1 s */
    long reset_at;                 /* the reset (or Retry-After's end) announced, epoch s */
    long reset_in;                 /* seconds ahead for the reset (default 1) */
    int force_status;              /* answer every request with it (401, 403, 404) */
    int link_elsewhere;            /* next-page links point at another host */
    json_t *discussions;           /* GraphQL Discussion objects; each holds all its comments
                                      in "allComments", each comment its "allReplies" */
    int n_502_graphql;             /* answer this many POSTs 502 first */
    const char *graphql_error;     /* every POST: 200 + errors of this type (NOT_FOUND,
                                      MAX_NODE_LIMIT_EXCEEDED), data.repository null */
    int graphql_status;            /* answer every POST with it (401, 403) */
    int edit_after_first_page;     /* k: after a listing's first page, #(100+k) is updated
                                      (day 25): it moves to the front while listed */
    int graphql_rate_limited_once; /* the next POST: 200 + errors RATE_LIMITED, remaining 0,
                                      reset in reset_in s */
    /* what it saw */
    int n_requests, n_listings, n_comment_requests, n_304, n_auth_ok, n_etag_sent;
    int n_early;                   /* requests that came before reset_at */
    char last_since[64];           /* since= of the last listing ("" none) */
    int n_graphql;                 /* POSTs answered 200 with data (any query) */
    int n_discussion_pages, n_comment_pages, n_reply_pages;   /* of them, per query */
    int n_gql_auth_ok;             /* POSTs that carried the token */
    struct kb_buf log;             /* one line per request: the GET target, or
                                      "POST PATH OPERATION after=CURSOR" */
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

/*
 * Serve n discussions besides the issues: #(100+k) updated on 2026-11-(10+k)
 * at 12:00 UTC, in category "Q&A" (k odd; answered when k % 3 == 0) or
 * "Ideas", closed when k == 2, label "help"; k % 4 comments, comment c
 * (from 0) with c replies, but comment 2 with 3.
 */
void ghstub_discussions(struct gh_stub *s, int n);

/* Edit discussion #(100+k): title "Discussion K (edited)", updated on day `day`. */
void ghstub_discussion_edit(struct gh_stub *s, int k, int day);

/* Remove discussion #(100+k) (deleted on GitHub). */
void ghstub_discussion_remove(struct gh_stub *s, int k);

/* ---- shared by ghstub.c and ghstub_graphql.c ---- */

/* Send one HTTP answer with a JSON body; extra_headers end in CRLF each. */
void ghstub_respond(int fd, int status, const char *extra_headers, const char *body);

/* Answer a POST to a GraphQL path: the request's bytes in `in`, its body at body_at. */
void ghstub_graphql_serve(struct gh_stub *s, int fd, const char *in, size_t body_at,
                          size_t body_len);

/* Write the stub's data as REST exports dir/issues.json and dir/comments.json. */
void ghstub_write_exports(const struct gh_stub *s, const char *dir);

#endif /* KB_GHSTUB_H */
