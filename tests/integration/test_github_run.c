/*
 * test_github_run.c - `kbpipe run` with a type: github source against the
 * GitHub stub (tests/support/ghstub.h) and real PostgreSQL: the marks are
 * stored in kbpipe_source_state only after a run that succeeded, a nightly
 * run asks only for what changed (since=, then 304 on an unchanged
 * listing), --full fetches everything and deletes what vanished, and a
 * project loaded from exports moves to the API without re-embedding;
 * discussions (include_discussions, the stub's GraphQL endpoint) load as
 * sources with their metadata, re-run without writing, and --full deletes
 * one the stub no longer returns.
 * Group cmd_run.c.
 */
#include "kbtest.h"
#include "ghstub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN GH_STUB_TOKEN
#define REPO GH_STUB_REPO

static void expect(struct kbtest_db *t, const char *sql, const char *want)
{
    char *got = kbtest_query(t, sql);
    if (strcmp(got, want) != 0)
        fail_msg("%s\n  got:  %s\n  want: %s", sql, got, want);
    free(got);
}

/* pipeline gh in dir: a github source on the stub (extra: more source keys) */
static void write_pipeline(const char *dir, const struct gh_stub *s, const char *extra)
{
    char *path = kb_xasprintf("%s/gh.yaml", dir);
    char *text = kb_xasprintf("name: gh\nproject: gh-test\nsources:\n"
                              "  - name: issues\n    type: github\n    repos: [%s]\n"
                              "    token_env: KBT_GH_TOKEN\n"
                              "    base_url: http://127.0.0.1:%d\n    retry_base_ms: 10\n"
                              "    max_retries: 1\n    max_wait: 5\n%s",
                              REPO, s->port, extra ? extra : "");
    kbtest_write(path, text);
    free(text);
    free(path);
}

/* kbpipe run gh.yaml [args] -v in dir: its exit status; stdout+stderr in *out. */
static int run_gh(const char *dir, const char *args, char **out)
{
    char *o = NULL, *e = NULL;
    setenv("KBT_GH_TOKEN", TOKEN, 1);
    char *ranks = kb_xasprintf("%s/data/cl100k_base.json", kbtest_root());
    setenv("KBPIPE_TOKENIZER_FILE", ranks, 0);   /* the runs start in a temporary folder */
    free(ranks);
    int rc = kbtest_sh(&o, &e, "cd '%s' && '%s' --db \"$KBPIPE_TEST_DSN\" -v run gh.yaml "
                       "--report report.json %s", dir, kbtest_bin(), args ? args : "");
    *out = kb_xasprintf("%s%s", o ? o : "", e ? e : "");
    free(o);
    free(e);
    return rc;
}

static const char MARK_SQL[] = "SELECT coalesce(string_agg(key || '=' || left(value, 22), ';' "
                               "ORDER BY key), '') FROM kbpipe_source_state "
                               "WHERE pipeline = 'gh' AND source_name = 'issues'";
static const char LAST_RUN_SQL[] = "SELECT status || ' new=' || (counts->>'sources_new') || "
                                   "' changed=' || (counts->>'sources_changed') || ' deleted=' "
                                   "|| (counts->>'sources_deleted') FROM kbpipe_runs "
                                   "ORDER BY id DESC LIMIT 1";

/* A test's stub serving n_issues issues and its scratch folder (returned). */
static char *gh_begin(struct gh_stub *s, int n_issues)
{
    ghstub_start(s, n_issues);
    return kbtest_tmpdir();
}

/* The end of a test: the folder removed, the stub stopped. */
static void gh_end(struct gh_stub *s, char *dir)
{
    kbtest_rmtree(dir);
    free(dir);
    ghstub_stop(s);
}

static void cmd_run__nightly_runs_fetch_only_what_changed(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct gh_stub s;
    char *dir = gh_begin(&s, 5), *out;
    write_pipeline(dir, &s, NULL);

    assert_int_equal(run_gh(dir, NULL, &out), 0);          /* first run: everything */
    assert_string_equal(s.last_since, "");
    expect(t, LAST_RUN_SQL, "succeeded new=4 changed=0 deleted=0");
    expect(t, MARK_SQL, "since acme/api=2026-11-05T10:00:00Z");
    assert_null(strstr(out, TOKEN));
    free(out);

    assert_int_equal(run_gh(dir, NULL, &out), 0);          /* nightly: since the mark */
    if (strcmp(s.last_since, "2026-11-05T10:00:00Z") != 0)
        fail_msg("since not asked:\n%s", out);
    expect(t, LAST_RUN_SQL, "succeeded new=0 changed=0 deleted=0");
    expect(t, MARK_SQL, "etag acme/api=2026-11-05T10:00:00Z W;since acme/api=2026-11-05T10:00:00Z");
    free(out);

    int before = s.n_requests;
    assert_int_equal(run_gh(dir, NULL, &out), 0);          /* unchanged: one 304, no quota */
    assert_int_equal(s.n_304, 1);
    assert_int_equal(s.n_requests, before + 1);
    free(out);

    ghstub_edit(&s, 2, 9);
    assert_int_equal(run_gh(dir, NULL, &out), 0);          /* #2 edited: it alone changes */
    expect(t, LAST_RUN_SQL, "succeeded new=0 changed=1 deleted=0");
    expect(t, "SELECT title FROM knowledge_sources WHERE source_id = 'acme/api#2'",
           "Issue 2 (edited)");
    expect(t, MARK_SQL, "since acme/api=2026-11-09T10:00:00Z");
    assert_null(strstr(out, TOKEN));
    free(out);

    char *report = kb_xasprintf("%s/report.json", dir), *text = NULL;
    assert_int_equal(kbtest_sh(&text, NULL, "cat '%s'", report), 0);
    assert_null(strstr(text, TOKEN));
    free(text);
    free(report);
    expect(t, "SELECT count(*) FROM kbpipe_runs WHERE report::text LIKE '%" TOKEN "%'", "0");
    gh_end(&s, dir);
}

static void cmd_run__failed_or_partial_runs_keep_the_old_marks(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct gh_stub s;
    char *dir = gh_begin(&s, 3), *out;
    write_pipeline(dir, &s, "    on_error: skip\n");
    assert_int_equal(run_gh(dir, NULL, &out), 0);
    free(out);
    expect(t, MARK_SQL, "since acme/api=2026-11-03T10:00:00Z");

    ghstub_edit(&s, 1, 7);                                   /* a change, then failures */
    s.force_status = 401;
    assert_int_equal(run_gh(dir, NULL, &out), 1);
    if (strstr(out, "acme/api: source issues: GitHub answered 401 Unauthorized") == NULL)
        fail_msg("no 401 message naming the repository in:\n%s", out);
    assert_null(strstr(out, TOKEN));
    free(out);
    s.force_status = 0;
    expect(t, MARK_SQL, "since acme/api=2026-11-03T10:00:00Z");

    json_object_del(json_array_get(s.issues, 0), "title");   /* #1 bad: rejected */
    assert_int_equal(run_gh(dir, NULL, &out), 3);
    free(out);
    expect(t, LAST_RUN_SQL, "partial new=0 changed=0 deleted=0");
    expect(t, MARK_SQL, "since acme/api=2026-11-03T10:00:00Z");   /* #1 is asked again */

    ghstub_edit(&s, 1, 8);                                   /* fixed on GitHub */
    assert_int_equal(run_gh(dir, NULL, &out), 0);
    free(out);
    assert_string_equal(s.last_since, "2026-11-03T10:00:00Z");
    expect(t, LAST_RUN_SQL, "succeeded new=0 changed=1 deleted=0");
    expect(t, MARK_SQL, "since acme/api=2026-11-08T10:00:00Z");
    gh_end(&s, dir);
}

static void cmd_run__full_fetches_everything_and_deletes_what_vanished(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct gh_stub s;
    char *dir = gh_begin(&s, 5), *out;
    write_pipeline(dir, &s, NULL);
    assert_int_equal(run_gh(dir, NULL, &out), 0);
    free(out);
    json_array_remove(s.issues, 2);                        /* #3 deleted on GitHub */
    assert_int_equal(run_gh(dir, NULL, &out), 0);          /* incremental: cannot know */
    free(out);
    expect(t, "SELECT count(*) FROM knowledge_sources", "4");
    assert_int_equal(run_gh(dir, "--full", &out), 0);
    free(out);
    assert_string_equal(s.last_since, "");                 /* no since: a complete listing */
    expect(t, LAST_RUN_SQL, "succeeded new=0 changed=0 deleted=1");
    expect(t, "SELECT string_agg(source_id, ',' ORDER BY source_id) FROM knowledge_sources",
           "acme/api#1,acme/api#2,acme/api#5");
    gh_end(&s, dir);
}

static void cmd_run__shards_keep_their_own_marks_and_issues_are_upserted(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct gh_stub s;
    char *dir = gh_begin(&s, 5), *out;
    write_pipeline(dir, &s, "    upsert_issues: true\n");
    assert_int_equal(run_gh(dir, "--shard 1/2", &out), 0);
    free(out);
    assert_int_equal(run_gh(dir, "--shard 2/2", &out), 0);
    free(out);
    expect(t, "SELECT string_agg(pipeline || ':' || value, ',' ORDER BY pipeline) "
              "FROM kbpipe_source_state WHERE key = 'since acme/api'",
           "gh#1/2:2026-11-05T10:00:00Z,gh#2/2:2026-11-05T10:00:00Z");
    expect(t, "SELECT count(*) FROM knowledge_sources", "4");
    expect(t, "SELECT string_agg(issue_number || ' ' || title, ',' ORDER BY issue_number) "
              "FROM issues", "1 Issue 1,2 Issue 2,3 Issue 3,5 Issue 5");
    gh_end(&s, dir);
}

static void cmd_run__export_then_api_reembeds_nothing(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct gh_stub s;
    char *dir = gh_begin(&s, 6), *out;
    ghstub_write_exports(&s, dir);
    char *path = kb_xasprintf("%s/gh.yaml", dir);
    kbtest_write(path, "name: gh\nproject: gh-test\nsources:\n"
                       "  - name: issues\n    type: github_issues\n    path: issues.json\n"
                       "    comments: comments.json\n");
    assert_int_equal(run_gh(dir, NULL, &out), 0);
    free(out);
    expect(t, LAST_RUN_SQL, "succeeded new=5 changed=0 deleted=0");
    static const char HASHES[] = "SELECT md5(string_agg(s.source_id || s.doc_hash || c.id || "
                                 "c.content_hash, ',' ORDER BY s.source_id, c.chunk_index)) "
                                 "FROM knowledge_sources s JOIN knowledge_chunks c "
                                 "ON c.source_id = s.id";
    char *before = kbtest_query(t, HASHES);
    write_pipeline(dir, &s, NULL);                         /* the same source, now the API */
    assert_int_equal(run_gh(dir, "--full", &out), 0);
    free(out);
    expect(t, LAST_RUN_SQL, "succeeded new=0 changed=0 deleted=0");
    expect(t, "SELECT counts->>'chunks_written' FROM kbpipe_runs ORDER BY id DESC LIMIT 1", "0");
    expect(t, HASHES, before);                             /* same rows, nothing re-embedded */
    free(before);
    free(path);
    gh_end(&s, dir);
}

/* pipeline gh with discussions: the stub's GraphQL endpoint, 2 a page */
static void write_disc_pipeline(const char *dir, const struct gh_stub *s)
{
    char *extra = kb_xasprintf("    include_discussions: true\n"
                               "    graphql_url: http://127.0.0.1:%d/graphql\n"
                               "    per_page: 2\n    upsert_issues: true\n", s->port);
    write_pipeline(dir, s, extra);
    free(extra);
}

static void cmd_run__discussions_load_with_metadata_and_reruns_write_nothing(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct gh_stub s;
    char *dir = gh_begin(&s, 2), *out;
    ghstub_discussions(&s, 3);
    write_disc_pipeline(dir, &s);

    assert_int_equal(run_gh(dir, NULL, &out), 0);
    expect(t, LAST_RUN_SQL, "succeeded new=5 changed=0 deleted=0");   /* 2 issues, 3 discussions */
    assert_null(strstr(out, TOKEN));
    free(out);
    expect(t, "SELECT string_agg(source_type || ' ' || source_id || ' ' || title, ',' "
              "ORDER BY source_id) FROM knowledge_sources",
           "github_issue acme/api#1 Issue 1,github_issue acme/api#2 Issue 2,"
           "github_discussion acme/api/discussions#101 Discussion 1,"
           "github_discussion acme/api/discussions#102 Discussion 2,"
           "github_discussion acme/api/discussions#103 Discussion 3");
    expect(t, "SELECT url || ' ' || (metadata->>'category') || ' ' || (metadata->>'answered') "
              "|| ' ' || (metadata->>'state') || ' ' || (metadata->'labels'->>0) || ' ' || "
              "(metadata->>'author') || ' ' || (metadata->>'created_at') || ' ' || "
              "(metadata->>'updated_at') || ' ' || (metadata->>'comments') "
              "FROM knowledge_sources WHERE source_id = 'acme/api/discussions#103'",
           "https://github.com/acme/api/discussions/103 Q&A true open help alice "
           "2026-11-10T07:00:00Z 2026-11-13T12:00:00Z 7");
    expect(t, "SELECT count(*) FROM knowledge_chunks c JOIN knowledge_sources s ON "
              "c.source_id = s.id WHERE s.source_id = 'acme/api/discussions#103' AND "
              "c.content LIKE '%Reply 3 to comment 3 on discussion 3%'", "1");
    expect(t, "SELECT string_agg(issue_number::text, ',' ORDER BY issue_number) FROM issues",
           "1,2");                                      /* discussions are no issues */
    expect(t, MARK_SQL, "discussions since acme/api=2026-11-13T12:00:00Z;"
                        "since acme/api=2026-11-02T10:00:00Z");

    int pages = s.n_discussion_pages;
    assert_int_equal(run_gh(dir, NULL, &out), 0);          /* nothing changed: nothing written */
    free(out);
    expect(t, LAST_RUN_SQL, "succeeded new=0 changed=0 deleted=0");
    expect(t, "SELECT counts->>'chunks_written' FROM kbpipe_runs ORDER BY id DESC LIMIT 1", "0");
    assert_int_equal(s.n_discussion_pages, pages + 1);     /* one page: the rest is older */

    ghstub_discussion_edit(&s, 1, 20);
    assert_int_equal(run_gh(dir, NULL, &out), 0);          /* #101 edited: it alone changes */
    assert_null(strstr(out, TOKEN));
    free(out);
    expect(t, LAST_RUN_SQL, "succeeded new=0 changed=1 deleted=0");
    expect(t, "SELECT title FROM knowledge_sources WHERE source_id = 'acme/api/discussions#101'",
           "Discussion 1 (edited)");
    expect(t, "SELECT count(*) FROM kbpipe_runs WHERE report::text LIKE '%" TOKEN "%'", "0");
    gh_end(&s, dir);
}

static void cmd_run__full_deletes_a_discussion_that_vanished(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct gh_stub s;
    char *dir = gh_begin(&s, 1), *out;
    ghstub_discussions(&s, 3);
    write_disc_pipeline(dir, &s);
    assert_int_equal(run_gh(dir, NULL, &out), 0);
    free(out);
    ghstub_discussion_remove(&s, 2);                       /* #102 deleted on GitHub */
    assert_int_equal(run_gh(dir, NULL, &out), 0);          /* incremental: cannot know */
    free(out);
    expect(t, "SELECT count(*) FROM knowledge_sources", "4");
    assert_int_equal(run_gh(dir, "--full", &out), 0);
    free(out);
    expect(t, LAST_RUN_SQL, "succeeded new=0 changed=0 deleted=1");
    expect(t, "SELECT string_agg(source_id, ',' ORDER BY source_id) FROM knowledge_sources",
           "acme/api#1,acme/api/discussions#101,acme/api/discussions#103");
    gh_end(&s, dir);
}

/* A batch filled by sources alone (empty files: no row) goes to the writer
 * thread, which then owns the session's connection: the marks of the
 * github source after it are read on the read connection, never on the
 * writer's (run_flush.c, run_marks.c; a race before the fix). */
static void cmd_run__marks_after_a_rowless_batch_use_the_read_connection(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct gh_stub s;
    char *dir = gh_begin(&s, 5), *out = NULL, *errout = NULL;
    assert_int_equal(kbtest_sh(NULL, NULL, "mkdir -p '%s/empty' && cd '%s/empty' && "
                               ": >a.md && : >b.md && : >c.md", dir, dir), 0);
    char *path = kb_xasprintf("%s/gh.yaml", dir);
    char *text = kb_xasprintf("name: gh\nproject: gh-test\nload:\n  batch_rows: 2\nsources:\n"
                              "  - name: empty\n    type: files\n    roots: [empty]\n"
                              "  - name: issues\n    type: github\n    repos: [%s]\n"
                              "    token_env: KBT_GH_TOKEN\n"
                              "    base_url: http://127.0.0.1:%d\n    retry_base_ms: 10\n"
                              "    max_retries: 1\n    max_wait: 5\n", REPO, s.port);
    kbtest_write(path, text);
    setenv("KBT_GH_TOKEN", TOKEN, 1);
    char *ranks = kb_xasprintf("%s/data/cl100k_base.json", kbtest_root());
    setenv("KBPIPE_TOKENIZER_FILE", ranks, 0);
    int rc = kbtest_sh(&out, &errout, "cd '%s' && '%s' --db \"$KBPIPE_TEST_DSN\" -v -v run "
                       "gh.yaml", dir, kbtest_bin());
    if (rc != 0 || strstr(errout, "source issues: marks read on the read connection") == NULL)
        fail_msg("exit %d; the marks not read on the read connection:\n%s", rc, errout);
    expect(t, "SELECT count(*) FROM knowledge_sources WHERE source_id LIKE '%.md'", "3");
    expect(t, LAST_RUN_SQL, "succeeded new=7 changed=0 deleted=0");
    free(ranks);
    free(text);
    free(path);
    free(out);
    free(errout);
    gh_end(&s, dir);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest run_tests[] = {
        cmocka_unit_test_setup_teardown(cmd_run__nightly_runs_fetch_only_what_changed,
                                        kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(cmd_run__failed_or_partial_runs_keep_the_old_marks,
                                        kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(cmd_run__full_fetches_everything_and_deletes_what_vanished,
                                        kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(
            cmd_run__shards_keep_their_own_marks_and_issues_are_upserted,
            kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(cmd_run__export_then_api_reembeds_nothing,
                                        kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(
            cmd_run__discussions_load_with_metadata_and_reruns_write_nothing,
            kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(cmd_run__full_deletes_a_discussion_that_vanished,
                                        kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(
            cmd_run__marks_after_a_rowless_batch_use_the_read_connection,
            kbtest_migrated_setup, kbtest_migrated_teardown),
    };
    return cmocka_run_group_tests_name("cmd_run.c", run_tests, NULL, NULL) ? 1 : 0;
}
