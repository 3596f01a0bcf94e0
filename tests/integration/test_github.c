/*
 * test_github.c - the type: github reader (src/ingest/github.c,
 * github_http.c) against the GitHub stub of tests/support/ghstub.h:
 * Link pagination, comments, since=, ETag and 304, a 403 primary rate
 * limit waited out until its reset (or refused beyond max_wait), 502s
 * retried, 401/403/404 naming the repository, a next link on another host
 * refused, a bad issue located and skipped, and the same documents as the
 * export reader (group github.c); the pipeline keys (group schema.c).
 * Discussions: test_github_discussions.c; `kbpipe run` with the database:
 * test_github_run.c.
 */
#include "kbtest.h"
#include "ghread.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ingest/ingest.h"

#define TOKEN GH_STUB_TOKEN
#define REPO GH_STUB_REPO

static void github__pagination_comments_and_marks(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start(f, 5);
    f->src.u.github.per_page = 2;
    struct gh_read r;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_OK);
    assert_int_equal(r.n_docs, 4);              /* #4 is a pull request: skipped */
    assert_int_equal(f->s.n_listings, 3);         /* 5 issues, 2 a page: 3 pages via Link */
    assert_int_equal(f->s.n_auth_ok, f->s.n_requests);
    assert_non_null(strstr(r.docs.data, "acme/api#5\tIssue 5\t"));
    assert_non_null(strstr(r.docs.data, "Comment by carol on 2026-10-02T09:00:00Z:\n\n"
                                        "Comment 2 on #5"));
    assert_null(strchr(r.docs.data, '\r'));     /* CR LF normalized */
    /* the newest updated_at seen, and no ETag for a listing of several pages */
    assert_non_null(strstr(r.marks.data, "since acme/api=2026-11-05T10:00:00Z\n"));
    assert_null(strstr(r.marks.data, "etag acme/api=2"));
    f->src.u.github.include_pull_requests = 1;
    struct gh_read r2;
    gh_read_all(&f->src, NULL, &r2);
    assert_int_equal(r2.n_docs, 5);
    gh_read_release(&r2);
    gh_read_release(&r);
}

static void github__since_asks_only_what_changed(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start(f, 5);
    struct gh_read r;
    gh_read_all(&f->src, "since acme/api=2026-11-03T10:00:00Z\n", &r);
    assert_int_equal(r.rc, KB_OK);
    assert_string_equal(f->s.last_since, "2026-11-03T10:00:00Z");
    assert_int_equal(r.n_docs, 2);              /* #3 (the boundary) and #5; #4 a PR */
    assert_null(strstr(r.docs.data, "acme/api#1\t"));
    assert_int_equal(f->s.n_comment_requests, 1); /* #3 has none: only #5's are asked */
    gh_read_release(&r);
    /* a stored mark that is not a time never reaches the URL: everything is fetched */
    gh_read_all(&f->src, "since acme/api=2026-11-03&state=closed\n", &r);
    assert_int_equal(r.rc, KB_OK);
    assert_string_equal(f->s.last_since, "");
    assert_int_equal(r.n_docs, 4);
    assert_null(strstr(f->s.log.data, "state=closed"));
    gh_read_release(&r);
}

static void github__etag_304_on_an_unchanged_listing(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start(f, 3);
    struct gh_read r1, r2, r3;
    gh_read_all(&f->src, NULL, &r1);                 /* full: mark day 3, one page */
    gh_read_all(&f->src, r1.marks.data, &r2);        /* since day 3: #3 again, ETag kept */
    assert_int_equal(r2.n_docs, 1);
    assert_non_null(strstr(r2.marks.data, "etag acme/api=2026-11-03T10:00:00Z W/\""));
    int before = f->s.n_requests;
    gh_read_all(&f->src, r2.marks.data, &r3);        /* nothing changed: 304, no comments asked */
    assert_int_equal(r3.rc, KB_OK);
    assert_int_equal(r3.n_docs, 0);
    assert_int_equal(f->s.n_304, 1);
    assert_int_equal(f->s.n_requests, before + 1);
    assert_string_equal(r3.marks.data, r2.marks.data);
    ghstub_edit(&f->s, 2, 9);                     /* a change: 200 again, the edit comes */
    struct gh_read r4;
    gh_read_all(&f->src, r3.marks.data, &r4);
    assert_int_equal(f->s.n_304, 1);
    assert_non_null(strstr(r4.docs.data, "Issue 2 (edited)"));
    assert_non_null(strstr(r4.marks.data, "since acme/api=2026-11-09T10:00:00Z\n"));
    gh_read_release(&r1);
    gh_read_release(&r2);
    gh_read_release(&r3);
    gh_read_release(&r4);
}

static void github__rate_limit_waits_for_the_reset(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start(f, 2);
    f->s.rate_limit_once = 1;
    f->s.reset_in = 1;
    struct gh_read r;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_OK);
    assert_int_equal(r.n_docs, 2);
    assert_int_equal(f->s.n_listings, 1);         /* the one after the 403 */
    assert_int_equal(f->s.n_early, 0);            /* not before X-RateLimit-Reset */
    gh_read_release(&r);

    /* a reset beyond max_wait: a clear error at once, naming the repository */
    f->s.rate_limit_once = 1;
    f->s.reset_in = 3600;
    f->src.u.github.max_wait_s = 2;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_E_IO);
    assert_string_equal(r.err.origin, REPO);
    assert_non_null(strstr(r.err.msg, "primary rate limit exhausted"));
    assert_non_null(strstr(r.err.msg, "max_wait (2 s)"));
    assert_string_equal(r.marks.data ? r.marks.data : "", "");   /* no marks to store */
    gh_read_release(&r);
}

static void github__secondary_limit_and_exhausted_quota_are_waited_out(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start(f, 2);
    f->s.n_retry_after = 1;                     /* 403 + Retry-After: 1 */
    f->s.retry_after_s = 1;
    struct gh_read r;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_OK);
    assert_int_equal(r.n_docs, 2);
    assert_int_equal(f->s.n_early, 0);            /* nothing sent before Retry-After ended */
    gh_read_release(&r);

    f->s.reset_at = 0;
    f->s.exhaust_on_listing = 1;                  /* 200, remaining 0: the comments wait */
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_OK);
    assert_int_equal(r.n_docs, 2);
    assert_true(f->s.n_comment_requests >= 1);
    assert_int_equal(f->s.n_early, 0);
    gh_read_release(&r);

    f->s.exhaust_on_listing = 0;
    f->s.reset_at = 0;
    f->s.n_retry_after = 100;                   /* rate limited for ever: an error, not a loop */
    f->s.retry_after_s = 0;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_E_IO);
    assert_non_null(strstr(r.err.msg, "still answers 403 (secondary rate limit (Retry-After)) "
                                      "after 20 waits"));
    assert_int_equal(f->s.n_retry_after, 100 - 21);
    gh_read_release(&r);
}

/* SIGTERM from another thread 0.3 s from now, as `kill` would send it. */
static void *term_soon(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 300 * 1000000L };
    nanosleep(&ts, NULL);
    kill(getpid(), SIGTERM);
    return NULL;
}

/* Read the source while a SIGTERM comes 0.3 s in; the seconds it took. */
static double read_signalled(const struct ingest_source *src, struct gh_read *r)
{
    kb_signals_catch();
    pthread_t th;
    pthread_create(&th, NULL, term_soon, NULL);
    double t0 = kb_now();
    gh_read_all(src, NULL, r);
    double took = kb_now() - t0;
    pthread_join(th, NULL);
    kb_signals_catch();                 /* the flag cleared for the next test */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    return took;
}

static void github__a_signal_cuts_a_wait_short(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start(f, 2);
    f->src.u.github.max_wait_s = 600;
    f->s.rate_limit_once = 1;             /* a rate limit that resets in 5 minutes */
    f->s.reset_in = 300;
    struct gh_read r;
    double took = read_signalled(&f->src, &r);
    assert_int_equal(r.rc, KB_E_INTERRUPTED);
    assert_non_null(strstr(r.err.msg, "interrupted while waiting for GitHub's rate limit"));
    assert_true(took < 60.0);             /* not the 300 s of the reset */
    assert_string_equal(r.marks.data ? r.marks.data : "", "");
    gh_read_release(&r);

    f->s.rate_limit_once = 0;
    f->s.n_502 = 100;                     /* retries a minute apart */
    f->src.u.github.retry_base_ms = 60000;
    took = read_signalled(&f->src, &r);
    assert_int_equal(r.rc, KB_E_INTERRUPTED);
    assert_non_null(strstr(r.err.msg, "interrupted while waiting to retry"));
    assert_true(took < 30.0);
    gh_read_release(&r);
}

static void github__5xx_retried_with_backoff(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start(f, 2);
    f->s.n_502 = 2;
    struct gh_read r;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_OK);
    assert_int_equal(r.n_docs, 2);
    assert_int_equal(gh_count_of(f->s.log.data, "/repos/acme/api/issues?"), 3);  /* 502, 502, 200 */
    gh_read_release(&r);

    f->s.n_502 = 100;                             /* retries spent: an error, not a hang */
    f->src.u.github.max_retries = 2;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_E_IO);
    assert_non_null(strstr(r.err.msg, "failed after 3 attempt(s): HTTP 502"));
    gh_read_release(&r);
}

static void github__client_errors_name_the_repository(void **state)
{
    struct gh_fx *f = *state;
    static const struct { int status; const char *says; } cases[] = {
        { 401, "401 Unauthorized ('Bad credentials'): the token in KBT_GH_TOKEN is wrong" },
        { 403, "403 Forbidden" },
        { 404, "404 Not Found ('Bad credentials'): the repository does not exist" },
    };
    gh_fx_start(f, 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        f->s.force_status = cases[i].status;
        struct gh_read r;
        gh_read_all(&f->src, NULL, &r);
        assert_int_equal(r.rc, KB_E_IO);
        assert_string_equal(r.err.origin, REPO);
        if (strstr(r.err.msg, cases[i].says) == NULL)
            fail_msg("%s\nnot in: %s", cases[i].says, r.err.msg);
        assert_null(strstr(r.err.msg, TOKEN));
        gh_read_release(&r);
    }
    assert_int_equal(f->s.n_requests, 3);         /* none retried */
}

static void github__next_page_on_another_host_is_refused(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start(f, 3);
    f->s.link_elsewhere = 1;
    f->src.u.github.per_page = 1;
    struct gh_read r;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_E_IO);
    assert_non_null(strstr(r.err.msg, "does not send the token elsewhere"));
    assert_int_equal(f->s.n_listings, 1);
    gh_read_release(&r);
}

static void github__bad_issue_is_located_and_the_rest_goes_on(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start(f, 3);
    json_object_del(json_array_get(f->s.issues, 1), "title");  /* #2 */
    json_object_set_new(json_array_get(f->s.issues, 2), "body", /* #3 */
                        json_stringn("NUL\0here", 8));
    struct gh_read r;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_OK);
    assert_int_equal(r.n_docs, 1);
    assert_int_equal(r.n_bad, 2);
    char want[128];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/repos/acme/api/issues?", f->s.port);
    assert_non_null(strstr(r.err.origin, want));
    assert_non_null(strstr(r.err.origin, ": row 3"));
    assert_non_null(strstr(r.err.msg, "acme/api#3: body holds a NUL character (\\u0000) at "
                                      "byte 3"));
    gh_read_release(&r);
}

static void export_then_api__same_documents(void **state)
{
    (void)state;
    struct gh_stub s;
    ghstub_start(&s, 6);
    char *dir = kbtest_tmpdir();
    ghstub_write_exports(&s, dir);
    struct ingest_source ex;
    ingest_source_defaults(&ex, INGEST_GITHUB_ISSUES);
    ex.name = "gh";
    char *ip = kb_xasprintf("%s/issues.json", dir), *cp = kb_xasprintf("%s/comments.json", dir);
    ex.u.issues.path = ip;
    ex.u.issues.comments_path = cp;
    struct ingest_source api;
    char base[64];
    gh_source_for(&api, &s, base, sizeof base);
    struct gh_read a, b;
    gh_read_all(&ex, NULL, &a);
    gh_read_all(&api, NULL, &b);
    assert_int_equal(a.rc, KB_OK);
    assert_int_equal(b.rc, KB_OK);
    assert_int_equal(a.n_docs, 5);
    /* id, title, url, author, metadata and text byte for byte: the same hashes */
    assert_string_equal(a.docs.data, b.docs.data);
    gh_read_release(&a);
    gh_read_release(&b);
    free(ip);
    free(cp);
    kbtest_rmtree(dir);
    free(dir);
    ghstub_stop(&s);
}

static void validate__bad_github_keys_are_located(void **state)
{
    (void)state;
    static const char *const want[] = {
        "p.yaml:6:23: sources[0].repos[1] must be OWNER/NAME (e.g. acme/supervisor-service), "
        "found 'acme'",
        "p.yaml:7:16: sources[0].token_env must name an environment variable (e.g. token_env: "
        "GITHUB_TOKEN) and never hold the token itself (the value is not shown)",
        "p.yaml:8:15: sources[0].base_url must be an https:// URL (e.g. "
        "https://github.example.com/api/v3), or http:// to this machine only, found "
        "'http://github.example.com'",
        "p.yaml:9:15: sources[0].per_page must be an integer from 1 to 100 (e.g. per_page: 100), "
        "found '500'",
        "p.yaml:10:5: unknown key 'repo' in a github source (did you mean 'repos'?)",
        "p.yaml:11:5: sources[1] (github) has no 'repos'; add repos: [OWNER/NAME]",
        "p.yaml:15:26: sources[2].include_discussions needs token_env: GitHub's GraphQL API "
        "answers no anonymous request",
        "p.yaml:16:18: sources[2].graphql_url must be an https:// URL (e.g. "
        "https://github.example.com/api/graphql), or http:// to this machine only, found "
        "'http://github.example.com/graphql'",
    };
    char *dir = kbtest_tmpdir();
    char *path = kb_xasprintf("%s/p.yaml", dir);
    kbtest_write(path, "name: p\nproject: p\nsources:\n"
                       "  - name: gh\n    type: github\n"
                       "    repos: [acme/api, acme]\n"
                       "    token_env: " TOKEN "-x\n"
                       "    base_url: http://github.example.com\n"
                       "    per_page: 500\n"
                       "    repo: acme/api\n"
                       "  - {name: gh2, type: github}\n"
                       "  - name: gh3\n    type: github\n    repos: [acme/api]\n"
                       "    include_discussions: true\n"
                       "    graphql_url: http://github.example.com/graphql\n");
    char *out = NULL, *errout = NULL;
    int rc = kbtest_sh(&out, &errout, "cd '%s' && '%s' validate p.yaml", dir, kbtest_bin());
    assert_int_equal(rc, 2);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(errout, want[i]) == NULL)
            fail_msg("missing: %s\nin:\n%s", want[i], errout);
    assert_null(strstr(errout, TOKEN));
    assert_null(strstr(out, TOKEN));
    free(out);
    free(errout);
    free(path);
    kbtest_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest reader_tests[] = {
        GH_FX_TEST(github__pagination_comments_and_marks),
        GH_FX_TEST(github__since_asks_only_what_changed),
        GH_FX_TEST(github__etag_304_on_an_unchanged_listing),
        GH_FX_TEST(github__rate_limit_waits_for_the_reset),
        GH_FX_TEST(github__a_signal_cuts_a_wait_short),
        GH_FX_TEST(github__secondary_limit_and_exhausted_quota_are_waited_out),
        GH_FX_TEST(github__5xx_retried_with_backoff),
        GH_FX_TEST(github__client_errors_name_the_repository),
        GH_FX_TEST(github__next_page_on_another_host_is_refused),
        GH_FX_TEST(github__bad_issue_is_located_and_the_rest_goes_on),
        cmocka_unit_test(export_then_api__same_documents),
    };
    const struct CMUnitTest schema_tests[] = {
        cmocka_unit_test(validate__bad_github_keys_are_located),
    };
    int failed = cmocka_run_group_tests_name("github.c", reader_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("schema.c", schema_tests, NULL, NULL);
    return failed ? 1 : 0;
}
