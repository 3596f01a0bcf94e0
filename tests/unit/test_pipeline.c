/*
 * test_pipeline.c - src/pipeline: the ready pipelines in pipelines/ are
 * valid; every broken file in tests/data/pipeline/bad/ prints exactly the
 * problems in its .expected (all of them, in file order, as `kbpipe
 * validate` prints them); defaults, interpolation and origins.
 * KBPIPE_REGEN=1 rewrites the .expected files (review the diff).
 * Groups: pipeline.c, yaml.c, schema.c.  Runs from the repository root.
 */
#include "kbtest.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/pipeline.h"

#define BAD "tests/data/pipeline/bad/"

static char *read_text(const char *path)
{
    struct kb_buf b;
    struct kb_err err = { 0 };
    kb_buf_init(&b);
    if (kb_buf_read_file(&b, path, &err) != KB_OK)
        return NULL;
    return kb_buf_detach(&b);
}

/* What `kbpipe validate FILE` prints on stderr, problems and summary. */
static char *validate_output(const char *path)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    struct kb_pipeline *p = NULL;
    struct kb_err err = { 0 };
    enum kb_code rc = pipeline_load(path, &p, &err);
    if (rc == KB_OK || rc == KB_E_CONFIG) {
        enum kb_code rc2 = pipeline_check(p, ".", &err);
        if (rc == KB_OK)
            rc = rc2;
    }
    if (p)
        pipeline_diags_print(p, f);
    if (rc != KB_OK)
        fprintf(f, "kbpipe: %s: %s\n", err.origin, err.msg);
    else
        fprintf(f, "valid\n");
    pipeline_free(p);
    fclose(f);
    return out;
}

static void pipeline_load__ready_pipelines_are_valid(void **state)
{
    (void)state;
    DIR *d = opendir("pipelines");
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < 6 || strcmp(e->d_name + l - 5, ".yaml") != 0)
            continue;
        char *path = kb_xasprintf("pipelines/%s", e->d_name);
        char *got = validate_output(path);
        if (strcmp(got, "valid\n") != 0)
            fail_msg("%s is not valid:\n%s", path, got);
        free(got);
        free(path);
        n++;
    }
    closedir(d);
    assert_true(n >= 4);
}

static void pipeline_load__bad_files(void **state)
{
    (void)state;
    DIR *d = opendir(BAD);
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".yaml") != 0)
            continue;
        char *path = kb_xasprintf(BAD "%s", e->d_name);
        char *exp_path = kb_xasprintf("%.*s.expected", (int)(strlen(path) - 5), path);
        char *got = validate_output(path);
        if (getenv("KBPIPE_REGEN"))
            kbtest_write(exp_path, got);
        char *want = read_text(exp_path);
        if (want == NULL)
            fail_msg("%s: missing; it would hold:\n%s", exp_path, got);
        if (strcmp(got, want) != 0)
            fail_msg("%s:\n--- expected\n%s--- got\n%s", path, want, got);
        assert_null(strstr(got, "valid\n") == got ? got : NULL);   /* every one is invalid */
        free(want);
        free(got);
        free(exp_path);
        free(path);
        n++;
    }
    closedir(d);
    assert_true(n >= 10);
}

static void pipeline_load__defaults_and_origins(void **state)
{
    (void)state;
    struct kb_pipeline *p;
    struct kb_err err = { 0 };
    assert_int_equal(pipeline_load("pipelines/learnings.yaml", &p, &err), KB_OK);
    assert_string_equal(p->name, "learnings");
    assert_string_equal(p->project, "supervisor-service");
    assert_int_equal(p->chunking.size, 512);
    assert_int_equal(p->chunking.overlap, 64);
    assert_int_equal(p->chunking.splitter, PIPELINE_SPLIT_MARKDOWN);
    assert_int_equal(p->embedding.dimensions, KB_PIPELINE_DIM);
    assert_int_equal(p->embedding.provider, PIPELINE_EMBED_HASH);
    assert_int_equal(p->load.batch_rows, 1000);
    assert_int_equal(p->dedup.is_enabled, 1);
    assert_string_equal(p->reject_file, "build/rejects/learnings.jsonl");
    assert_int_equal(p->n_sources, 1);
    const struct ingest_source *s = &p->sources[0];
    assert_int_equal(s->type, INGEST_CSV);
    assert_int_equal(s->target, KB_TARGET_LEARNINGS);
    assert_int_equal(s->on_error, INGEST_ON_ERROR_SKIP);
    assert_int_equal(s->max_errors, 10);
    assert_int_equal(s->u.csv.tags_separator, ';');
    assert_string_equal(s->u.csv.key.v[0], "id");
    const struct kb_origin *at = pipeline_origin(p, "sources[0].columns.tags");
    assert_non_null(at);
    assert_int_equal(at->line, 20);
    assert_int_equal(at->col, 13);
    assert_null(pipeline_origin(p, "chunking.size"));   /* a default: not in the file */
    pipeline_free(p);
}

static void pipeline_load__csv_options(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;   /* the source's option lines */
        char delim, quote;
        int n_key;
        const char *key0, *key1;
    } cases[] = {
        { "delimiter: \";\"\n    quote: \"'\"\n", ';', '\'', 0, NULL, NULL },
        { "delimiter: \"\\t\"\n", '\t', '"', 0, NULL, NULL },     /* the escape */
        { "delimiter: tab\n    quote: \"|\"\n", '\t', '|', 0, NULL, NULL },
        { "delimiter: \"\t\"\n", '\t', '"', 0, NULL, NULL },      /* a real tab */
        { "key: [project, id]\n", ',', '"', 2, "project", "id" },
        { "key: uid\n", ',', '"', 1, "uid", NULL },
    };
    char *dir = kbtest_tmpdir();
    char *path = kb_xasprintf("%s/csv.yaml", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = kb_xasprintf("name: t\nproject: p\nsources:\n  - name: rows\n    type: csv\n"
                                  "    path: samples/learnings/learnings.csv\n    %s",
                                  cases[i].yaml);
        kbtest_write(path, text);
        struct kb_pipeline *p;
        struct kb_err err = { 0 };
        if (pipeline_load(path, &p, &err) != KB_OK)
            fail_msg("case %zu: %s: %s", i, err.origin, err.msg);
        const struct ingest_csv_opts *o = &p->sources[0].u.csv;
        assert_int_equal(o->delimiter, cases[i].delim);
        assert_int_equal(o->quote, cases[i].quote);
        assert_int_equal(o->key.n, cases[i].n_key);
        if (cases[i].key0)
            assert_string_equal(o->key.v[0], cases[i].key0);
        if (cases[i].key1)
            assert_string_equal(o->key.v[1], cases[i].key1);
        pipeline_free(p);
        free(text);
    }
    kbtest_rmtree(dir);
    free(path);
    free(dir);
}

static void pipeline_interpolate__variables(void **state)
{
    (void)state;
    char *dir = kbtest_tmpdir();
    char *path = kb_xasprintf("%s/env.yaml", dir);
    kbtest_write(path, "name: ${KBT_NAME}\nproject: ${KBT_EMPTY:-fallback}\n"
                       "connection: \"host=${KBT_HOST:-localhost} port=$$5\"\n"
                       "sources:\n  - {name: d, type: files, roots: [samples/docs]}\n");
    setenv("KBT_NAME", "from-env", 1);
    setenv("KBT_EMPTY", "", 1);
    unsetenv("KBT_HOST");
    struct kb_pipeline *p;
    struct kb_err err = { 0 };
    assert_int_equal(pipeline_load(path, &p, &err), KB_OK);
    assert_string_equal(p->name, "from-env");
    assert_string_equal(p->project, "fallback");   /* empty counts as unset with :- */
    assert_string_equal(p->connection, "host=localhost port=$5");
    pipeline_free(p);
    unsetenv("KBT_NAME");
    assert_int_equal(pipeline_load(path, &p, &err), KB_E_CONFIG);
    const char *origin;
    const char *msg = pipeline_diag(p, 0, &origin);
    assert_non_null(msg);
    assert_true(strstr(origin, "env.yaml:1:7") != NULL);
    assert_string_equal(msg, "environment variable KBT_NAME is not set; export it or write "
                             "${KBT_NAME:-default}");
    pipeline_free(p);
    kbtest_rmtree(dir);
    free(dir);
    free(path);
}

/* "[[[[..." 200,000 deep overflowed the stack of the node reader. */
static void pipeline_load__deep_nesting(void **state)
{
    (void)state;
    static const struct { const char *open; int depth; int is_ok; } cases[] = {
        { "[", 200000, 0 },
        { "{a: ", 200000, 0 },
        { "[", 65, 0 },     /* one past the limit */
        { "[", 60, 1 },     /* deep, but read: the problem is then name: not being text */
    };
    char *dir = kbtest_tmpdir();
    char *path = kb_xasprintf("%s/deep.yaml", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kb_buf b;
        kb_buf_init(&b);
        kb_buf_puts(&b, "name: ");
        for (int k = 0; k < cases[i].depth; k++)
            kb_buf_puts(&b, cases[i].open);
        kbtest_write(path, b.data);
        kb_buf_release(&b);
        struct kb_pipeline *p;
        struct kb_err err = { 0 };
        assert_int_equal(pipeline_load(path, &p, &err), KB_E_CONFIG);
        const char *msg = pipeline_diag(p, 0, NULL);
        assert_non_null(msg);
        assert_int_equal(strstr(msg, "nested more than 64 deep") != NULL, !cases[i].is_ok);
        pipeline_free(p);
    }
    kbtest_rmtree(dir);
    free(dir);
    free(path);
}

static void cmd_validate__exit_codes(void **state)
{
    (void)state;
    struct kb_err err = { 0 };
    char *ok[] = { "validate", "pipelines/docs.yaml", NULL };
    kb_cli.is_quiet = 1;
    assert_int_equal(cmd_validate(2, ok, &err), KB_OK);
    char *bad[] = { "validate", BAD "overlap.yaml", NULL };
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w");
    enum kb_code rc = cmd_validate(2, bad, &err);
    fclose(stderr);
    stderr = saved;
    assert_int_equal(rc, KB_E_CONFIG);
    assert_int_equal(kb_code_exit_status(rc), 2);
    char *none[] = { "validate", NULL };
    assert_int_equal(cmd_validate(1, none, &err), KB_E_USAGE);
    kb_cli.is_quiet = 0;
}


static void collect_col(void *arg, const char *name, size_t len)
{
    kb_buf_printf(arg, "%.*s,", (int)len, name);
}

/* type: sql: defaults, query_file beside the pipeline file, the template's syntax */
static void pipeline_load__sql_source(void **state)
{
    (void)state;
    struct kb_pipeline *p;
    struct kb_err err = { 0 };
    assert_int_equal(pipeline_load("tests/data/pipeline/sql/notes.yaml", &p, &err), KB_OK);
    assert_int_equal(pipeline_check(p, ".", &err), KB_OK);
    assert_int_equal(p->n_sources, 2);
    const struct ingest_sql_opts *a = &p->sources[0].u.sql, *b = &p->sources[1].u.sql;
    assert_int_equal(p->sources[0].type, INGEST_SQL);
    assert_string_equal(a->query, "SELECT id, body FROM notes");
    assert_null(a->query_file);
    assert_int_equal(a->fetch_rows, INGEST_SQL_DEFAULT_FETCH_ROWS);
    assert_int_equal(a->has_metadata, 0);
    assert_null(a->watermark);
    assert_null(a->database_env);
    assert_int_equal(a->query_at.line, 6);
    assert_null(b->query);
    assert_string_equal(b->query_file, "tests/data/pipeline/sql/notes.sql");
    assert_string_equal(b->template_text, "# {title}\n\n{body} {{literal}}");
    assert_int_equal(b->has_metadata, 1);
    assert_int_equal(b->metadata.n, 0);
    assert_string_equal(b->watermark, "updated_at");
    assert_string_equal(b->database_env, "NOTES_DB");
    assert_int_equal(b->fetch_rows, 50);
    assert_string_equal(ingest_type_name(INGEST_SQL), "sql");
    pipeline_free(p);

    static const struct { const char *tmpl; enum kb_code rc; const char *cols; } cases[] = {
        { "{title}\n\n{body}", KB_OK, "title,body," },
        { "{{not a column}} {a.b-c d_e}", KB_OK, "a.b-c d_e," },
        { "no columns", KB_OK, "" },
        { "{title", KB_E_CONFIG, "" },          /* never closed */
        { "{ti\ntle}", KB_E_CONFIG, "" },      /* a line break inside */
        { "{}", KB_E_CONFIG, "" },              /* no name */
        { "{a/b}", KB_E_CONFIG, "" },           /* not a column name */
        { "a } b", KB_E_CONFIG, "" },           /* a lone brace */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kb_buf cols;
        kb_buf_init(&cols);
        enum kb_code rc = ingest_sql_template_check(cases[i].tmpl, collect_col, &cols, &err);
        assert_int_equal(rc, cases[i].rc);
        if (rc == KB_OK)
            assert_string_equal(cols.data ? cols.data : "", cases[i].cols);
        kb_buf_release(&cols);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    if (chdir(kbtest_root()) != 0) {
        fprintf(stderr, "test_pipeline: cannot enter %s\n", kbtest_root());
        return 1;
    }
    const struct CMUnitTest pipeline_tests[] = {
        cmocka_unit_test(pipeline_load__ready_pipelines_are_valid),
        cmocka_unit_test(pipeline_load__bad_files),
        cmocka_unit_test(pipeline_load__defaults_and_origins),
        cmocka_unit_test(pipeline_load__csv_options),
        cmocka_unit_test(pipeline_load__sql_source),
        cmocka_unit_test(cmd_validate__exit_codes),
    };
    const struct CMUnitTest yaml_tests[] = {
        cmocka_unit_test(pipeline_interpolate__variables),
        cmocka_unit_test(pipeline_load__deep_nesting),
    };
    int failed = cmocka_run_group_tests_name("pipeline.c", pipeline_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("yaml.c", yaml_tests, NULL, NULL);
    return failed ? 1 : 0;
}
