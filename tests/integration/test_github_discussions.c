/*
 * test_github_discussions.c - the discussions of a type: github source
 * (include_discussions; src/ingest/github_discussions.c and the GraphQL
 * half of github_http.c) against the GraphQL endpoint of the GitHub stub
 * (tests/support/ghstub_graphql.c): cursor pages, a discussion's further
 * comments and a comment's further replies, the document and its
 * metadata, the since mark stopping the listing, one discussion updated
 * while listed, a bad discussion located and skipped, an `errors` answer, 401/403, RATE_LIMITED then success, 502
 * then success, the endpoint's default from base_url.  Group
 * github_discussions.c.  `kbpipe run` with the database: test_github_run.c.
 */
#include "kbtest.h"
#include "ghread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN GH_STUB_TOKEN
#define REPO GH_STUB_REPO

/* The line of docs whose source_id is `id` (a new string), or fail. */
static char *doc_of(const char *docs, const char *id)
{
    char *key = kb_xasprintf("\n%s\t", id);
    char *all = kb_xasprintf("\n%s", docs);   /* every line starts after a '\n' */
    const char *p = strstr(all, key);
    free(key);
    if (p == NULL)
        fail_msg("no document %s in:\n%s", id, docs);
    char *out = NULL;
    if (p) {
        /* a document's text holds newlines: it ends where the next source_id starts */
        const char *end = strstr(p + 1, "\nacme/api");
        out = kb_xasprintf("%.*s", (int)(end ? end - p - 1 : (long)strlen(p + 1)), p + 1);
    }
    free(all);
    return out;
}

static void discussions__pages_comments_replies_and_mark(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start_discussions(f, 1, 3);
    f->src.u.github.per_page = 2;
    struct gh_read r;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_OK);
    assert_int_equal(r.n_docs, 4);                  /* issue #1 and discussions #101-#103 */
    assert_int_equal(f->s.n_discussion_pages, 2);   /* 3 discussions, 2 a page, by cursor */
    assert_non_null(strstr(f->s.log.data, "POST /graphql KbDiscussions after=null\n"
                                           "POST /graphql KbDiscussionComments"));
    assert_int_equal(f->s.n_comment_pages, 1);      /* #103's third comment */
    assert_int_equal(f->s.n_reply_pages, 1);        /* its third comment's third reply */
    assert_int_equal(f->s.n_gql_auth_ok, f->s.n_graphql);
    char *d3 = doc_of(r.docs.data, "acme/api/discussions#103");
    static const char want3[] =
        "acme/api/discussions#103\tDiscussion 3\thttps://github.com/acme/api/discussions/103"
        "\talice\t{\"repo\":\"acme/api\",\"number\":103,\"state\":\"open\",\"category\":\"Q&A\","
        "\"answered\":true,\"labels\":[\"help\"],\"author\":\"alice\","
        "\"created_at\":\"2026-11-10T07:00:00Z\",\"updated_at\":\"2026-11-13T12:00:00Z\","
        "\"url\":\"https://github.com/acme/api/discussions/103\",\"comments\":7}\t"
        "# Discussion 3\n\nBody of discussion 3.\nWith a second line.\n"
        "\n---\nComment by dave on 2026-11-11T08:00:00Z:\n\nComment 1 on discussion 3\n"
        "\n---\nComment by dave on 2026-11-11T08:00:00Z:\n\nComment 2 on discussion 3\n"
        "\n---\nReply by erin on 2026-11-11T09:00:00Z:\n\nReply 1 to comment 2 on discussion 3\n"
        "\n---\nComment by dave on 2026-11-11T08:00:00Z:\n\nComment 3 on discussion 3\n"
        "\n---\nReply by erin on 2026-11-11T09:00:00Z:\n\nReply 1 to comment 3 on discussion 3\n"
        "\n---\nReply by erin on 2026-11-11T09:00:00Z:\n\nReply 2 to comment 3 on discussion 3\n"
        "\n---\nReply by erin on 2026-11-11T09:00:00Z:\n\nReply 3 to comment 3 on discussion 3\n";
    assert_string_equal(d3, want3);
    free(d3);
    char *d2 = doc_of(r.docs.data, "acme/api/discussions#102");   /* closed, not Q&A */
    assert_non_null(strstr(d2, "\"state\":\"closed\",\"category\":\"Ideas\",\"labels\""));
    assert_non_null(strstr(d2, "\"closed_at\":\"2026-11-12T07:00:00Z\""));
    free(d2);
    assert_non_null(strstr(r.docs.data, "acme/api#1\tIssue 1\t"));   /* never #101's id */
    assert_non_null(strstr(r.marks.data, "discussions since acme/api=2026-11-13T12:00:00Z\n"));
    assert_non_null(strstr(r.marks.data, "since acme/api=2026-11-01T10:00:00Z\n"));
    gh_read_release(&r);
}

static void discussions__since_mark_stops_paging(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start_discussions(f, 0, 4);
    f->src.u.github.per_page = 3;
    struct gh_read r1, r2;
    gh_read_all(&f->src, NULL, &r1);                   /* mark: #104's day 14 */
    assert_int_equal(r1.n_docs, 4);
    assert_int_equal(f->s.n_discussion_pages, 2);
    ghstub_discussion_edit(&f->s, 1, 20);           /* #101 now first: 101, 104, 103, 102 */
    f->s.n_discussion_pages = 0;
    gh_read_all(&f->src, r1.marks.data, &r2);
    assert_int_equal(r2.rc, KB_OK);
    assert_int_equal(f->s.n_discussion_pages, 1);   /* #103 is older than the mark: stop */
    assert_int_equal(r2.n_docs, 2);                 /* #101 and #104 (the mark's second) */
    assert_non_null(strstr(r2.docs.data, "acme/api/discussions#101\tDiscussion 1 (edited)\t"));
    assert_non_null(strstr(r2.docs.data, "acme/api/discussions#104\t"));
    assert_null(strstr(r2.docs.data, "acme/api/discussions#103\t"));
    assert_non_null(strstr(r2.marks.data, "discussions since acme/api=2026-11-20T12:00:00Z\n"));
    gh_read_release(&r1);
    gh_read_release(&r2);
}

static void discussions__one_updated_while_listed_is_read_once_then_next_run(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start_discussions(f, 0, 4);
    f->src.u.github.per_page = 2;
    f->s.edit_after_first_page = 1;                /* 104, 103 | #101 moves up | 103, 102 */
    struct gh_read r1, r2;
    gh_read_all(&f->src, NULL, &r1);
    assert_int_equal(r1.rc, KB_OK);
    assert_int_equal(r1.n_docs, 3);                 /* #103 came twice, read once */
    assert_int_equal(gh_count_of(r1.docs.data, "acme/api/discussions#103\t"), 1);
    assert_null(strstr(r1.docs.data, "acme/api/discussions#101\t"));
    assert_non_null(strstr(r1.marks.data, "discussions since acme/api=2026-11-14T12:00:00Z\n"));
    gh_read_all(&f->src, r1.marks.data, &r2);          /* its updatedAt is past the mark */
    assert_non_null(strstr(r2.docs.data, "acme/api/discussions#101\tDiscussion 1 (edited)\t"));
    gh_read_release(&r1);
    gh_read_release(&r2);
}

static void discussions__bad_discussion_is_located_and_the_rest_goes_on(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start_discussions(f, 0, 3);
    json_object_del(json_array_get(f->s.discussions, 1), "title");      /* #102 */
    struct gh_read r;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_OK);
    assert_int_equal(r.n_docs, 2);
    assert_int_equal(r.n_bad, 1);
    char want[128];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/graphql (acme/api discussions, page 1): "
             "row 2", f->s.port);                   /* 103, 102, 101: #102 is row 2 */
    assert_string_equal(r.err.origin, want);
    assert_string_equal(r.err.msg, "acme/api/discussions#102 has no 'title'; check graphql_url "
                                   "points at GitHub's GraphQL API");
    gh_read_release(&r);
    json_object_set_new(json_array_get(f->s.discussions, 0), "body",       /* #101 */
                        json_stringn("NUL\0here", 8));
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_OK);
    assert_int_equal(r.n_docs, 1);
    assert_int_equal(r.n_bad, 2);
    assert_non_null(strstr(r.err.origin, "page 1): row 3"));
    assert_string_equal(r.err.msg, "acme/api/discussions#101: body holds a NUL character "
                                   "(\\u0000) at byte 3; edit the discussion on GitHub");
    gh_read_release(&r);
}

static void discussions__graphql_errors_name_the_repository(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start_discussions(f, 1, 2);
    f->s.graphql_error = "NOT_FOUND";
    struct gh_read r;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_E_IO);
    assert_string_equal(r.err.origin, REPO);
    assert_string_equal(r.err.msg, "GitHub GraphQL answered NOT_FOUND ('Could not resolve to a "
                                   "Repository with the name 'acme/api'.'); the repository does "
                                   "not exist or the token cannot see it; check repos: and the "
                                   "token's access");
    assert_string_equal(r.marks.data ? r.marks.data : "", "");   /* no marks to store */
    gh_read_release(&r);

    f->s.graphql_error = "MAX_NODE_LIMIT_EXCEEDED";
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_E_IO);
    assert_non_null(strstr(r.err.msg, "GitHub GraphQL answered MAX_NODE_LIMIT_EXCEEDED ('This "
                                      "query requests up to 1,150,000 possible nodes"));
    assert_non_null(strstr(r.err.msg, "; lower per_page"));
    gh_read_release(&r);

    static const struct { int status; const char *says; } cases[] = {
        { 401, "GitHub answered 401 Unauthorized ('Resource not accessible by personal access "
               "token'): the token in KBT_GH_TOKEN is wrong or expired" },
        { 403, "GitHub answered 403 Forbidden ('Resource not accessible by personal access "
               "token'): the token in KBT_GH_TOKEN may not read this repository's discussions" },
    };
    f->s.graphql_error = NULL;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        f->s.graphql_status = cases[i].status;
        int before = f->s.n_requests;
        gh_read_all(&f->src, NULL, &r);
        assert_int_equal(r.rc, KB_E_IO);
        assert_string_equal(r.err.origin, REPO);
        if (strstr(r.err.msg, cases[i].says) == NULL)
            fail_msg("%s\nnot in: %s", cases[i].says, r.err.msg);
        assert_null(strstr(r.err.msg, TOKEN));
        assert_int_equal(f->s.n_requests, before + 3);  /* issues, #1's comments, one POST */
        gh_read_release(&r);
    }
}

static void discussions__rate_limited_then_success(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start_discussions(f, 0, 2);
    f->s.graphql_rate_limited_once = 1;             /* 200 + RATE_LIMITED, reset in 1 s */
    f->s.reset_in = 1;
    struct gh_read r;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_OK);
    assert_int_equal(r.n_docs, 2);
    assert_int_equal(f->s.n_early, 0);              /* nothing sent before the reset */
    assert_int_equal(f->s.n_discussion_pages, 1);
    gh_read_release(&r);

    f->s.graphql_rate_limited_once = 1;             /* a reset beyond max_wait: fails at once */
    f->s.reset_in = 3600;
    f->s.reset_at = 0;
    f->src.u.github.max_wait_s = 2;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_E_IO);
    assert_string_equal(r.err.origin, REPO);
    assert_non_null(strstr(r.err.msg, "GitHub GraphQL rate limit (RATE_LIMITED): the next "
                                      "request is allowed at"));
    assert_non_null(strstr(r.err.msg, "max_wait (2 s)"));
    gh_read_release(&r);
}

static void discussions__5xx_retried_with_backoff(void **state)
{
    struct gh_fx *f = *state;
    gh_fx_start_discussions(f, 0, 2);
    f->s.n_502_graphql = 1;
    struct gh_read r;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_OK);
    assert_int_equal(r.n_docs, 2);
    assert_int_equal(gh_count_of(f->s.log.data, "KbDiscussions after=null"), 2);  /* 502, 200 */
    gh_read_release(&r);

    f->s.n_502_graphql = 100;
    f->src.u.github.max_retries = 1;
    gh_read_all(&f->src, NULL, &r);
    assert_int_equal(r.rc, KB_E_IO);
    assert_non_null(strstr(r.err.msg, "/graphql failed after 2 attempt(s): HTTP 502; check "
                                      "graphql_url"));
    gh_read_release(&r);
}

static void discussions__endpoint_follows_base_url(void **state)
{
    struct gh_fx *f = *state;
    static const struct { const char *base_path, *posted; } cases[] = {
        { "", "POST /graphql " },                 /* api.github.com -> /graphql */
        { "/api/v3", "POST /api/graphql " },      /* Enterprise: /api/v3 -> /api/graphql */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gh_fx_start_discussions(f, 1, 1);
        f->src.u.github.graphql_url = NULL;
        snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d%s", f->s.port, cases[i].base_path);
        struct gh_read r;
        gh_read_all(&f->src, NULL, &r);
        assert_int_equal(r.rc, KB_OK);
        assert_int_equal(r.n_docs, 2);
        assert_non_null(strstr(f->s.log.data, cases[i].posted));
        gh_read_release(&r);
        gh_fx_stop(f);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        GH_FX_TEST(discussions__pages_comments_replies_and_mark),
        GH_FX_TEST(discussions__since_mark_stops_paging),
        GH_FX_TEST(discussions__one_updated_while_listed_is_read_once_then_next_run),
        GH_FX_TEST(discussions__bad_discussion_is_located_and_the_rest_goes_on),
        GH_FX_TEST(discussions__graphql_errors_name_the_repository),
        GH_FX_TEST(discussions__rate_limited_then_success),
        GH_FX_TEST(discussions__5xx_retried_with_backoff),
        GH_FX_TEST(discussions__endpoint_follows_base_url),
    };
    return cmocka_run_group_tests_name("github_discussions.c", tests, NULL, NULL) ? 1 : 0;
}
