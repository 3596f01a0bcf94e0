/*
 * test_search_eval.c - the question files of `kbpipe eval` and their
 * scores (src/search/eval.c), without a database.  Group eval.c: reading
 * (comments, CRLF, several expectations, every bad line with its file:line
 * message), ranking by distinct source with globs, recall / MRR sums and
 * the percentile.
 */
#include "kbtest.h"

#include <stdlib.h>
#include <string.h>

#include "search/search_int.h"

static char *write_tmp(char **dir, const char *text)
{
    *dir = kbtest_tmpdir();
    char *path = kb_xasprintf("%s/q.tsv", *dir);
    kbtest_write(path, text);
    return path;
}

static void search_eval_read__good(void **state)
{
    (void)state;
    char *dir;
    char *path = write_tmp(&dir, "# a comment\n\nHow do I pin versions?\tpip/topics/repeatable-installs.md\r\n"
                                 "shims?\tpyenv/README.md\tpyenv/COMMANDS.md\n"
                                 "last line, no newline\tpip/*");
    struct eval_set s;
    struct kb_err err = { 0 };
    assert_int_equal(search_eval_read(path, &s, &err), KB_OK);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.items[0].text, "How do I pin versions?");
    assert_int_equal(s.items[0].n_expected, 1);
    assert_string_equal(s.items[0].expected[0], "pip/topics/repeatable-installs.md");
    assert_int_equal(s.items[0].line, 3);
    assert_int_equal(s.items[1].n_expected, 2);
    assert_string_equal(s.items[1].expected[1], "pyenv/COMMANDS.md");
    assert_string_equal(s.items[2].expected[0], "pip/*");
    assert_int_equal(s.items[2].line, 5);
    search_eval_release(&s);
    kbtest_rmtree(dir);
    free(dir);
    free(path);
}

static void search_eval_read__bad(void **state)
{
    (void)state;
#define T(s) s, sizeof s - 1
    static const struct { const char *text; size_t len; int line; const char *msg; } cases[] = {
        { T("ok\ta.md\nno tab here\n"), 2, "expected QUESTION<TAB>EXPECTED SOURCE" },
        { T("\ta.md\n"), 1, "expected QUESTION<TAB>EXPECTED SOURCE" },
        { T("q\t\n"), 1, "expected source 1 is empty" },
        { T("q\ta\t\n"), 1, "expected source 2 is empty" },
        { T("q\ta\xff\n"), 1, "not UTF-8" },
        { T("q\ta\0b\n"), 1, "not UTF-8" },
        { T("q\t1\t2\t3\t4\t5\t6\t7\t8\t9\n"), 1, "9 expected sources; at most 8" },
        { T("# only a comment\n\n"), 0, "no questions in the file" },
        { T(""), 0, "no questions in the file" },
    };
#undef T
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = kbtest_tmpdir();
        char *path = kb_xasprintf("%s/q.tsv", dir);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fwrite(cases[i].text, 1, cases[i].len, f);
        fclose(f);
        struct eval_set s;
        struct kb_err err = { 0 };
        assert_int_equal(search_eval_read(path, &s, &err), KB_E_INPUT);
        if (strstr(err.msg, cases[i].msg) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].msg);
        char *want = cases[i].line ? kb_xasprintf("%s:%d", path, cases[i].line) : kb_xstrdup(path);
        assert_string_equal(err.origin, want);
        free(want);
        search_eval_release(&s);
        kbtest_rmtree(dir);
        free(dir);
        free(path);
    }
    struct eval_set s;
    struct kb_err err = { 0 };
    assert_int_equal(search_eval_read("/nonexistent/q.tsv", &s, &err), KB_E_IO);
    search_eval_release(&s);
}

static void search_eval_rank__distinct_sources(void **state)
{
    (void)state;
    const char *ids[] = { "a.md", "a.md", "b.md", "owner/repo#7", "docs/x/c.md" };
    const char *paths[] = { "a.md", "a.md", "b.md", "issues.json", "docs/x/c.md" };
    static const struct { const char *expected; int rank; } cases[] = {
        { "a.md", 1 },
        { "b.md", 2 },            /* the second chunk of a.md is no rank of its own */
        { "owner/repo#7", 3 },
        { "issues.json", 3 },     /* by file path */
        { "docs/*.md", 4 },       /* * crosses / */
        { "?.md", 1 },
        { "nothere.md", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct eval_question q = { .text = "q", .n_expected = 1, .expected = { cases[i].expected } };
        assert_int_equal(search_eval_rank(&q, ids, paths, 5), cases[i].rank);
    }
    struct eval_question two = { .text = "q", .n_expected = 2, .expected = { "zz", "b.md" } };
    assert_int_equal(search_eval_rank(&two, ids, NULL, 5), 2);
    assert_int_equal(search_eval_rank(&two, ids, NULL, 0), 0);
}

static void search_eval_score_add__sums(void **state)
{
    (void)state;
    struct eval_score s = { 0 };
    int ranks[] = { 1, 2, 5, 6, 0 };
    for (int i = 0; i < 5; i++)
        search_eval_score_add(&s, ranks[i], 5);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.n_at_1, 1);
    assert_int_equal(s.n_at_k, 3);
    assert_float_equal(s.rr_sum, 1.0 + 0.5 + 0.2, 1e-12);
    double v[] = { 5, 1, 4, 2, 3, 10, 9, 8, 7, 6, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11 };
    assert_float_equal(search_eval_percentile(v, 20, 50), 10, 0);
    assert_float_equal(search_eval_percentile(v, 20, 95), 19, 0);
    assert_float_equal(search_eval_percentile(v, 1, 95), 1, 0);
    assert_float_equal(search_eval_percentile(v, 0, 95), 0, 0);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest eval_tests[] = {
        cmocka_unit_test(search_eval_read__good),
        cmocka_unit_test(search_eval_read__bad),
        cmocka_unit_test(search_eval_rank__distinct_sources),
        cmocka_unit_test(search_eval_score_add__sums),
    };
    return cmocka_run_group_tests_name("eval.c", eval_tests, NULL, NULL) ? 1 : 0;
}
