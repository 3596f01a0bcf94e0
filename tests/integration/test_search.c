/*
 * test_search.c - `kbpipe search` (src/search/cmd_search.c) and `kbpipe
 * eval` (src/search/cmd_eval.c) against real PostgreSQL: the full schema
 * (every migration) in a private schema,
 * projects loaded through src/load with real kbpipe-hash-v1 vectors, and
 * the kbpipe binary run as a user would run it.  Group cmd_search.c:
 * ranking, --json, the search_queries log, learnings with --use, models
 * that must be refused, an unknown project, bad options, and a remote model
 * reached through --pipeline (a stub OpenAI-compatible server on 127.0.0.1
 * that answers with kbpipe-hash-v1 vectors); the modes, the log's
 * search_type, filters (a selective one still returns k rows), hidden
 * duplicates and --use.  Group cmd_eval.c: the scores, the misses, a bad
 * question line.
 */
#include "kbtest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed/embed.h"
#include "load/load.h"

#define PROJECT "search-test"

struct doc {
    const char *path, *title, *heading, *text;
};

/* Four documents on different subjects; each is one chunk. */
static const struct doc DOCS[] = {
    { "ops/secrets.md", "Secrets handbook", "Secrets > Rotation",
      "# Rotation\n\nRotate the master encryption key every 90 days.\n"
      "To rotate it, insert the new key, re-encrypt every secret, then flip is_active.\n"
      "Keep the old key for 30 days.\n" },
    { "ops/ports.md", "Port allocation", "Ports > Ranges",
      "# Ranges\n\nEach service type gets a port range from port_ranges.\n"
      "The allocator hands out the lowest free port of the range and records it.\n" },
    { "ops/backups.md", "Backups", "Backups > Nightly dumps",
      "# Nightly dumps\n\npg_dump runs every night at 02:00 and keeps fourteen dumps.\n"
      "Restore a dump with pg_restore into an empty database.\n" },
    { "ops/deploy.md", "Deploying", "Deploying > Releases",
      "# Releases\n\nA release is a git tag; CI builds the image and deploys it to staging.\n"
      "Promote to production after the smoke tests pass.\n" },
};
#define N_DOCS (int)(sizeof DOCS / sizeof DOCS[0])

struct learning {
    const char *title, *category, *text;
};

static const struct learning LEARNINGS[] = {
    { "Index foreign key columns", "database",
      "PostgreSQL does not index foreign keys; add an index on every foreign key column." },
    { "Vacuum after bulk deletes", "database",
      "A bulk delete leaves dead tuples; run VACUUM ANALYZE after it." },
    { "Reserve ports held by hand-started servers", "ports",
      "A server started by hand holds its port without an allocation row; reserve it." },
};
#define N_LEARNINGS (int)(sizeof LEARNINGS / sizeof LEARNINGS[0])


static void hash_of(const char *text, char out[65])
{
    /* any 64 hex characters will do: nothing here reuses vectors */
    unsigned h = 2166136261u;
    for (const char *p = text; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (int i = 0; i < 8; i++)
        snprintf(out + 8 * i, 9, "%08x", h + (unsigned)i);
}

/* Give every row of the batch its kbpipe-hash-v1 vector. */
static void embed_rows(struct load_batch *b)
{
    float *m = load_batch_matrix(b);
    unsigned char *has = load_batch_has_vector(b);
    for (int r = 0; r < load_batch_rows(b); r++) {
        size_t len;
        const char *text = load_batch_row_text(b, r, &len);
        embed_hash_text(text, len, m + (size_t)r * KB_LOAD_DIM);
        has[r] = 1;
    }
}

/*
 * Load DOCS (the first n_docs) as chunks and LEARNINGS as learnings of
 * `project`, their metadata saying `model` (NULL: the first half say
 * "model-a", the rest "model-b").  The vectors are always hash vectors.
 */
static void load_project(struct kbtest_db *t, const char *project, const char *model,
                         int n_docs, int with_learnings)
{
    struct kb_err err = { 0 };
    struct load_opts o;
    load_opts_defaults(&o);
    o.pipeline = project;
    o.project = project;
    struct load_session *s;
    assert_int_equal(load_session_open(t->conn, &o, &s, &err), KB_OK);
    struct load_batch *b = load_batch_new(s);
    for (int i = 0; i < n_docs; i++) {
        const struct doc *d = &DOCS[i];
        const char *m = model ? model : i < n_docs / 2 ? "model-a" : "model-b";
        struct load_source src = { .source_type = "file", .source_id = d->path,
                                   .title = d->title, .file_path = d->path };
        hash_of(d->text, src.doc_hash);
        int si = load_batch_add_source(b, &src);
        char *meta = kb_xasprintf("{\"embedding_model\":\"%s\",\"heading_path\":\"%s\"}", m,
                                  d->heading);
        struct load_chunk c = { .chunk_index = 0, .content = d->text, .len = strlen(d->text),
                                .token_count = 20, .metadata_json = meta };
        hash_of(d->text, c.content_hash);
        load_batch_add_chunk(b, si, &c);
        free(meta);
    }
    for (int i = 0; with_learnings && i < N_LEARNINGS; i++) {
        const struct learning *l = &LEARNINGS[i];
        char id[32];
        snprintf(id, sizeof id, "learnings.csv#%d", i + 1);
        struct load_source src = { .source_type = "csv", .source_id = id, .title = l->title,
                                   .is_learning = 1 };
        hash_of(l->text, src.doc_hash);
        int si = load_batch_add_source(b, &src);
        char *meta = kb_xasprintf("{\"embedding_model\":\"%s\"}", model ? model : "model-a");
        struct load_learning ll = { .title = l->title, .content = l->text,
                                    .learning_type = "best_practice", .category = l->category,
                                    .confidence_score = "0.8", .metadata_json = meta };
        hash_of(l->text, ll.content_hash);
        load_batch_add_learning(b, si, &ll);
        free(meta);
    }
    embed_rows(b);
    assert_int_equal(load_batch_flush(s, b, &err), KB_OK);
    load_batch_free(b);
    assert_int_equal(load_session_finish(s, 0, &err), KB_OK);
    assert_int_equal(load_session_close(s, "succeeded", NULL, &err), KB_OK);
}

/* Run `kbpipe search ARGS`; returns the exit status, *out / *errout owned. */
static int search(char **out, char **errout, const char *args)
{
    return kbtest_sh(out, errout, "%s --db \"$KBPIPE_TEST_DSN\" search %s", kbtest_bin(), args);
}

static void expect(struct kbtest_db *t, const char *sql, const char *want)
{
    char *got = kbtest_query(t, sql);
    if (strcmp(got, want) != 0)
        fail_msg("%s\n  got:  %s\n  want: %s", sql, got, want);
    free(got);
}

static void expect_in(const char *what, const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        fail_msg("%s lacks \"%s\":\n%s", what, needle, text);
}

static json_t *parse_json(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (j == NULL)
        fail_msg("--json output is not JSON (%s):\n%s", jerr.text, text);
    return j;
}

static void search__ranks_the_relevant_document_first(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    load_project(t, PROJECT, EMBED_HASH_MODEL, N_DOCS, 0);
    static const struct { const char *query, *first, *snippet_word; } cases[] = {
        { "how do I rotate the master encryption key?", "Secrets handbook", "re-encrypt" },
        { "which port range does a service get", "Port allocation", "lowest free port" },
        { "restore the nightly pg_dump", "Backups", "pg_restore" },
        { "deploy a release to production", "Deploying", "Promote to production" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *errout;
        char *args = kb_xasprintf("--project " PROJECT " -k 2 '%s'", cases[i].query);
        assert_int_equal(search(&out, &errout, args), 0);
        assert_string_equal(errout, "");
        /* " 1. 0.412  Secrets handbook  (ops/secrets.md)" */
        char *first_line = kb_xstrndup(out, strcspn(out, "\n"));
        expect_in("first result", first_line, " 1. 0.");
        expect_in("first result", first_line, cases[i].first);
        expect_in("output", out, "\n 2. ");
        /* the best-matching lines of the winning chunk come before result 2 */
        char *second = strstr(out, "\n 2. ");
        *second = '\0';
        expect_in("snippet", out, cases[i].snippet_word);
        expect_in("snippet", out, "\n    | ");
        free(first_line);
        free(out);
        free(errout);
        free(args);
    }
    /* title, path and heading path; several words make one query */
    char *out, *errout;
    assert_int_equal(search(&out, &errout, "--project " PROJECT " -k 1 rotate the key"), 0);
    expect_in("result", out, " 1. 0.");
    expect_in("result", out, "Secrets handbook  (ops/secrets.md)\n    Secrets > Rotation\n");
    expect_in("snippet", out, "    | To rotate it, insert the new key, re-encrypt every secret");
    free(out);
    free(errout);
}

static void search__json_has_the_fields(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    load_project(t, PROJECT, EMBED_HASH_MODEL, N_DOCS, 0);
    char *out, *errout;
    assert_int_equal(search(&out, &errout, "--project " PROJECT " -k 3 --json --mode vector "
                                           "'rotate the encryption key'"), 0);
    json_t *arr = parse_json(out);
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 3);
    double prev = 2.0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *o = json_array_get(arr, i);
        assert_int_equal(json_integer_value(json_object_get(o, "rank")), (json_int_t)i + 1);
        double sim = json_number_value(json_object_get(o, "similarity"));
        assert_true(json_is_real(json_object_get(o, "similarity")));
        assert_true(sim <= prev && sim > -1.0 && sim <= 1.0);
        prev = sim;
        static const char *const strings[] = { "chunk_id", "source_type", "source_id",
                                               "knowledge_source_id", "title", "path",
                                               "heading_path", "content" };
        for (size_t k = 0; k < sizeof strings / sizeof strings[0]; k++)
            if (!json_is_string(json_object_get(o, strings[k])))
                fail_msg("result %zu: \"%s\" is not a string:\n%s", i, strings[k], out);
        assert_true(json_is_integer(json_object_get(o, "chunk_index")));
        assert_true(json_is_null(json_object_get(o, "url")));
        json_t *snip = json_object_get(o, "snippet");
        assert_true(json_is_array(snip));
        assert_true(json_array_size(snip) >= 1 && json_array_size(snip) <= 3);
    }
    json_t *top = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(top, "title")), "Secrets handbook");
    assert_string_equal(json_string_value(json_object_get(top, "source_id")), "ops/secrets.md");
    assert_string_equal(json_string_value(json_object_get(top, "heading_path")),
                        "Secrets > Rotation");
    assert_string_equal(json_string_value(json_object_get(top, "content")), DOCS[0].text);
    expect_in("snippet", json_string_value(json_array_get(json_object_get(top, "snippet"), 0)),
              "encryption key");
    /* the id is the stored chunk's */
    char *sql = kb_xasprintf("SELECT count(*) FROM knowledge_chunks WHERE id = '%s'",
                             json_string_value(json_object_get(top, "chunk_id")));
    expect(t, sql, "1");
    free(sql);
    json_decref(arr);
    free(out);
    free(errout);

    /* nothing at or above the threshold: an empty array */
    assert_int_equal(search(&out, &errout, "--project " PROJECT " --json --mode vector "
                                           "--min-similarity 0.99 'rotate the encryption key'"), 0);
    arr = parse_json(out);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
    free(out);
    free(errout);
}

/* pgvector's text form of the query's hash vector. */
static char *hash_literal(const char *query)
{
    float v[KB_EMBED_DIM];
    embed_hash_text(query, strlen(query), v);
    struct kb_buf b;
    kb_buf_init(&b);
    kb_buf_putc(&b, '[');
    for (int i = 0; i < KB_EMBED_DIM; i++)
        kb_buf_printf(&b, "%s%.9g", i ? "," : "", (double)v[i]);
    kb_buf_putc(&b, ']');
    return kb_buf_detach(&b);
}

static void search__logs_the_query(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    load_project(t, PROJECT, EMBED_HASH_MODEL, N_DOCS, 0);
    char *out, *errout;
    assert_int_equal(search(&out, &errout, "--project " PROJECT " -k 3 --json --mode vector "
                                           "'restore a dump'"), 0);
    json_t *arr = parse_json(out);
    json_t *top = json_array_get(arr, 0);
    char want[160];
    snprintf(want, sizeof want, "restore a dump|knowledge|3|%s|%.4f",
             json_string_value(json_object_get(top, "chunk_id")),
             json_number_value(json_object_get(top, "similarity")));
    expect(t, "SELECT q.query_text || '|' || q.search_type || '|' || q.result_count || '|' ||"
              " q.top_result_id || '|' || round(q.top_result_similarity::numeric, 4)"
              " FROM search_queries q JOIN projects p ON p.id = q.project_id"
              " WHERE p.name = '" PROJECT "'", want);
    /* the logged embedding is the query's hash vector, the one that was searched with */
    char *lit = hash_literal("restore a dump");
    char *sql = kb_xasprintf("SELECT round((query_embedding <=> '%s')::numeric, 6) = 0"
                             " FROM search_queries", lit);
    expect(t, sql, "t");
    free(sql);
    free(lit);
    expect(t, "SELECT round((1 - (q.query_embedding <=> c.embedding))::numeric, 6) ="
              " round(q.top_result_similarity::numeric, 6)"
              " FROM search_queries q JOIN knowledge_chunks c ON c.id = q.top_result_id", "t");
    expect(t, "SELECT filters->>'k' || ',' || (filters->>'min_similarity')::float8 || ',' ||"
              " (metadata->>'embedding_model') FROM search_queries", "3,0,kbpipe-hash-v1");
    json_decref(arr);
    free(out);
    free(errout);

    /* a search that finds nothing is logged too: count 0, no top result */
    assert_int_equal(search(&out, &errout, "--project " PROJECT " --mode vector "
                                           "--min-similarity 0.99 'restore a dump'"), 0);
    expect_in("empty result", out, "no chunks in project '" PROJECT "' match");
    expect(t, "SELECT result_count || ',' || (top_result_id IS NULL) || ','"
              " || (top_result_similarity IS NULL) FROM search_queries"
              " ORDER BY created_at DESC LIMIT 1", "0,true,true");
    expect(t, "SELECT count(*) FROM search_queries", "2");
    free(out);
    free(errout);
}

static void search__learnings_and_use(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    load_project(t, PROJECT, EMBED_HASH_MODEL, N_DOCS, 1);
    char *out, *errout;
    /* without --use nothing is counted */
    assert_int_equal(search(&out, &errout, "--project " PROJECT " --learnings -k 1 "
                                           "'index foreign keys'"), 0);
    expect_in("learning", out, " 1. 0.");
    expect_in("learning", out, "Index foreign key columns  [best_practice; database; "
                               "confidence 0.80]\n");
    expect(t, "SELECT sum(usage_count) FROM learnings", "0");
    free(out);
    free(errout);

    /* --use counts one use of each learning shown, and only of those */
    for (int round = 1; round <= 2; round++) {
        assert_int_equal(search(&out, &errout, "--project " PROJECT " --learnings --category "
                                               "database -k 2 --use --json --mode vector "
                                               "'index foreign keys'"), 0);
        json_t *arr = parse_json(out);
        assert_int_equal(json_array_size(arr), 2);
        for (size_t i = 0; i < 2; i++) {
            json_t *o = json_array_get(arr, i);
            assert_string_equal(json_string_value(json_object_get(o, "category")), "database");
            assert_int_equal(json_integer_value(json_object_get(o, "usage_count")), round);
            assert_true(json_is_string(json_object_get(o, "learning_id")));
        }
        assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "title")),
                            "Index foreign key columns");
        char want[64];
        snprintf(want, sizeof want, "%d,%d,0", round, round);
        expect(t, "SELECT string_agg(usage_count::text, ',' ORDER BY category, title DESC)"
                  " FROM learnings", want);
        expect(t, "SELECT count(*) FROM learnings WHERE last_used_at IS NOT NULL", "2");
        /* the log: learnings search, top learning in metadata (top_result_id is a chunk's) */
        char *sql = kb_xasprintf(
            "SELECT search_type || ',' || result_count || ',' || (top_result_id IS NULL) || ','"
            " || (metadata->>'top_learning_id' = '%s') || ',' || (filters->>'category')"
            " FROM search_queries ORDER BY created_at DESC LIMIT 1",
            json_string_value(json_object_get(json_array_get(arr, 0), "learning_id")));
        expect(t, sql, "learnings,2,true,true,database");
        free(sql);
        json_decref(arr);
        free(out);
        free(errout);
    }
}

static void search__refuses_rows_of_another_model(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    load_project(t, "remote-proj", "text-embedding-3-small", N_DOCS, 0);
    load_project(t, "mixed-proj", NULL, N_DOCS, 0);
    char *out, *errout;
    int rc = search(&out, &errout, "--project remote-proj 'rotate the key'");
    assert_int_not_equal(rc, 0);
    assert_string_equal(out, "");
    expect_in("refusal", errout, "kbpipe: project 'remote-proj' was embedded with model "
                                 "'text-embedding-3-small'");
    expect_in("refusal", errout, "add --pipeline FILE");
    free(out);
    free(errout);

    rc = search(&out, &errout, "--project mixed-proj 'rotate the key'");
    assert_int_equal(rc, 1);
    expect_in("refusal", errout, "project 'mixed-proj' has chunks embedded with 2 models: "
                                 "'model-a' (2 rows), 'model-b' (2 rows)");
    free(out);
    free(errout);
    expect(t, "SELECT count(*) FROM search_queries", "0");
}

static void search__unknown_project(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    char *out, *errout;
    assert_int_equal(search(&out, &errout, "--project nope 'anything'"), 1);
    expect_in("error", errout, "kbpipe: no project named 'nope': the database has no projects");
    free(out);
    free(errout);
    load_project(t, PROJECT, EMBED_HASH_MODEL, 1, 0);
    assert_int_equal(search(&out, &errout, "--project nope 'anything'"), 1);
    expect_in("error", errout, "kbpipe: no project named 'nope'; the projects are: " PROJECT);
    assert_string_equal(out, "");
    free(out);
    free(errout);
}

static void search__bad_options_exit_2(void **state)
{
    (void)state;   /* no database: these fail before connecting */
    static const struct { const char *args, *message; } cases[] = {
        { "--project p -k 0 q", "-k '0' is not a count" },
        { "--project p -k many q", "-k 'many' is not a count" },
        { "--project p -k", "option '-k' needs a value" },
        { "--project p --min-similarity 1.5 q", "--min-similarity '1.5' is not a similarity" },
        { "--project p --min-similarity x q", "--min-similarity 'x' is not a similarity" },
        { "--project p --frobnicate q", "unknown option '--frobnicate'" },
        { "--project p -z q", "unknown option '-z'" },
        { "'some query'", "search needs --project NAME" },
        { "--project p", "search needs the query text" },
        { "--project p --use q", "--use counts uses of learnings; add --learnings" },
        { "--project p --category db q", "--category filters learnings; add --learnings" },
        { "--project p --tag db q", "--tag filters learnings; add --learnings" },
        { "--project p --with-duplicates q", "--with-duplicates shows learnings; add --learnings" },
        { "--project p --mode fuzzy q", "--mode 'fuzzy' is not a mode; give vector, text or hybrid" },
        { "--project p --learnings --path 'a/*' q", "--path filters chunks by their source" },
        { "--project p --learnings --source-type file q", "--source-type filters chunks" },
        { "--project p --min-similarity 0.2 q", "--min-similarity is a cosine threshold of --mode vector" },
        { "--project p --mode text --min-similarity 0.2 q", "in text mode" },
        { "--project p --path '' q", "option '--path' needs a value, got an empty one" },
        { "--project p --since", "option '--since' needs a value" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *errout;
        int rc = kbtest_sh(&out, &errout, "%s --db 'host=/nonexistent' search %s",
                           kbtest_bin(), cases[i].args);
        if (rc != 2 || strstr(errout, cases[i].message) == NULL)
            fail_msg("search %s: exit %d, stderr:\n%s\nwant exit 2 and \"%s\"", cases[i].args,
                     rc, errout, cases[i].message);
        free(out);
        free(errout);
    }
    char *out, *errout;
    assert_int_equal(kbtest_sh(&out, &errout, "%s search --help", kbtest_bin()), 0);
    expect_in("--help", out, "usage: kbpipe search --project NAME");
    expect_in("--help", out, "Examples:\n  kbpipe search --project ");
    free(out);
    free(errout);
}

/* ---- a remote model through --pipeline ---------------------------------- */

static void search__remote_model_through_pipeline(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    load_project(t, "remote-proj", "stub-embed-1", N_DOCS, 0);
    struct kbtest_stub s;
    kbtest_stub_start(&s);
    char *dir = kbtest_tmpdir();
    char *good = kb_xasprintf("%s/good.yaml", dir), *other = kb_xasprintf("%s/other.yaml", dir);
    static const char PIPELINE[] =
        "name: remote\nproject: remote-proj\n"
        "embedding:\n  provider: openai\n  model: %s\n  dimensions: 1536\n"
        "  base_url: http://127.0.0.1:%d/v1\n  api_key_env: KBT_SEARCH_KEY\n  max_retries: 0\n"
        "sources:\n  - name: docs\n    type: files\n    roots: [docs]\n";
    char *text = kb_xasprintf(PIPELINE, "stub-embed-1", s.port);
    kbtest_write(good, text);
    free(text);
    text = kb_xasprintf(PIPELINE, "stub-embed-2", s.port);
    kbtest_write(other, text);
    free(text);
    setenv("KBT_SEARCH_KEY", "sk-test", 1);
    setenv("NO_PROXY", "127.0.0.1", 1);
    setenv("no_proxy", "127.0.0.1", 1);

    char *out, *errout;
    char *args = kb_xasprintf("--project remote-proj --pipeline '%s' -k 1 'restore a pg_dump'",
                              good);
    int rc = search(&out, &errout, args);
    if (rc != 0)
        fail_msg("search through the stub failed (%d):\n%s", rc, errout);
    expect_in("remote result", out, " 1. 0.");
    expect_in("remote result", out, "Backups  (ops/backups.md)");
    assert_int_equal(s.n_requests, 1);
    assert_string_equal(s.model, "stub-embed-1");
    expect(t, "SELECT metadata->>'embedding_model' FROM search_queries", "stub-embed-1");
    free(args);
    free(out);
    free(errout);

    /* a pipeline of another model is refused before any request */
    args = kb_xasprintf("--project remote-proj --pipeline '%s' 'restore a pg_dump'", other);
    rc = search(&out, &errout, args);
    assert_int_not_equal(rc, 0);
    expect_in("refusal", errout, "the pipeline's model is 'stub-embed-2', but project "
                                 "'remote-proj' was embedded with 'stub-embed-1'");
    expect_in("refusal", errout, "other.yaml:");   /* the origin: where the model is set */
    assert_int_equal(s.n_requests, 1);
    free(args);
    free(out);
    free(errout);

    /* a hash project searched with a remote pipeline: refused too */
    load_project(t, PROJECT, EMBED_HASH_MODEL, 1, 0);
    args = kb_xasprintf("--project " PROJECT " --pipeline '%s' 'x'", good);
    assert_int_not_equal(search(&out, &errout, args), 0);
    expect_in("refusal", errout, "search without --pipeline");
    free(args);
    free(out);
    free(errout);

    kbtest_stub_stop(&s);
    unsetenv("KBT_SEARCH_KEY");
    kbtest_rmtree(dir);
    free(dir);
    free(good);
    free(other);
}

/* ---- modes, filters, duplicates (issue 15) --------------------------------- */

static void search__modes_and_the_log(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    load_project(t, PROJECT, EMBED_HASH_MODEL, N_DOCS, 0);
    static const struct { const char *mode, *logged, *shown; } cases[] = {
        { "", "hybrid", " 1. 0.0" },             /* the default; a fusion score */
        { "--mode hybrid", "hybrid", " 1. 0.0" },
        { "--mode text", "text", " 1. 0.0" },
        { "--mode vector", "knowledge", " 1. 0." },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *errout;
        char *args = kb_xasprintf("--project " PROJECT " -k 2 %s 'restore the nightly pg_dump'",
                                  cases[i].mode);
        assert_int_equal(search(&out, &errout, args), 0);
        expect_in("first result", out, cases[i].shown);
        char *first_line = kb_xstrndup(out, strcspn(out, "\n"));
        expect_in("first result", first_line, "Backups  (ops/backups.md)");
        char want[64];
        snprintf(want, sizeof want, "%s|%s", cases[i].logged,
                 *cases[i].mode ? cases[i].mode + 7 : "hybrid");
        expect(t, "SELECT search_type || '|' || (filters->>'mode') FROM search_queries"
                  " ORDER BY created_at DESC, id LIMIT 1", want);
        free(first_line);
        free(args);
        free(out);
        free(errout);
    }
    /* text mode embeds nothing: no query_embedding logged, websearch syntax works */
    expect(t, "SELECT count(*) FROM search_queries WHERE search_type = 'text'"
              " AND query_embedding IS NULL", "1");
    char *out, *errout;
    assert_int_equal(search(&out, &errout, "--project " PROJECT " --mode text --json "
                                           "'port -lowest'"), 0);
    json_t *arr = parse_json(out);
    assert_int_equal(json_array_size(arr), 0);   /* the only 'port' chunk says 'lowest' */
    json_decref(arr);
    free(out);
    free(errout);
    /* a word only the text leg matches exactly: hybrid still puts its document first */
    assert_int_equal(search(&out, &errout, "--project " PROJECT " -k 1 --json pg_restore"), 0);
    arr = parse_json(out);
    json_t *top = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(top, "source_id")), "ops/backups.md");
    assert_int_equal(json_integer_value(json_object_get(top, "text_rank")), 1);
    assert_true(json_is_real(json_object_get(top, "score")));
    assert_true(json_is_real(json_object_get(top, "text_score")));
    json_decref(arr);
    free(out);
    free(errout);
}

/* Load n_common + n_rare one-chunk files: common/N.md about backups, rare/N.md about ports. */
static void load_many(struct kbtest_db *t, int n_common, int n_rare)
{
    struct kb_err err = { 0 };
    struct load_opts o;
    load_opts_defaults(&o);
    o.pipeline = "many";
    o.project = "many";
    struct load_session *s;
    assert_int_equal(load_session_open(t->conn, &o, &s, &err), KB_OK);
    struct load_batch *b = load_batch_new(s);
    for (int i = 0; i < n_common + n_rare; i++) {
        int is_rare = i >= n_common;
        char path[64], text[200];
        snprintf(path, sizeof path, "%s/%d.md", is_rare ? "rare" : "common", i);
        snprintf(text, sizeof text, is_rare ? "Port ranges: note %d on the allocator.\n"
                                            : "Backups: pg_dump runs nightly, note %d; restore "
                                              "a dump with pg_restore.\n", i);
        struct load_source src = { .source_type = is_rare ? "csv" : "file", .source_id = path,
                                   .title = path, .file_path = path };
        hash_of(text, src.doc_hash);
        int si = load_batch_add_source(b, &src);
        struct load_chunk c = { .chunk_index = 0, .content = text, .len = strlen(text),
                                .token_count = 12,
                                .metadata_json = "{\"embedding_model\":\"kbpipe-hash-v1\"}" };
        hash_of(text, c.content_hash);
        load_batch_add_chunk(b, si, &c);
    }
    embed_rows(b);
    assert_int_equal(load_batch_flush(s, b, &err), KB_OK);
    load_batch_free(b);
    assert_int_equal(load_session_finish(s, 0, &err), KB_OK);
    assert_int_equal(load_session_close(s, "succeeded", NULL, &err), KB_OK);
}

static void search__filters(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    load_many(t, 200, 5);
    /* the query is about backups: the 5 rare rows are far from it, yet a filter finds all */
    static const struct { const char *filter; int n; const char *prefix; } cases[] = {
        { "--path 'rare/*'", 5, "rare/" },
        { "--source-type csv", 5, "rare/" },
        { "--source-type csv --source-type file", 8, NULL },
        { "--path 'rare/20?.md'", 5, "rare/" },
        { "--path 'common/1?.md'", 8, "common/1" },
        { "--path 'rare/*' --source-type file", 0, NULL },
        { "--since 2000-01-01 --until 2999-01-01 --path 'rare/*'", 5, "rare/" },
        { "--since 2999-01-01", 0, NULL },
    };
    for (size_t m = 0; m < 3; m++) {
        static const char *const modes[] = { "vector", "hybrid", "text" };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char *out, *errout;
            char *args = kb_xasprintf("--project many -k 8 --json --mode %s %s "
                                      "'restore a nightly pg_dump with pg_restore'", modes[m],
                                      cases[i].filter);
            assert_int_equal(search(&out, &errout, args), 0);
            json_t *arr = parse_json(out);
            int want = cases[i].n;
            if (m == 2 && cases[i].prefix && strcmp(cases[i].prefix, "rare/") == 0)
                want = 0;   /* text: the rare rows share no word with the query */
            if ((int)json_array_size(arr) != want)
                fail_msg("%s %s: %zu results, want %d:\n%s", modes[m], cases[i].filter,
                         json_array_size(arr), want, out);
            for (size_t j = 0; cases[i].prefix && j < json_array_size(arr); j++)
                expect_in("filtered result", json_string_value(json_object_get(
                          json_array_get(arr, j), "source_id")), cases[i].prefix);
            json_decref(arr);
            free(args);
            free(out);
            free(errout);
        }
    }
    expect(t, "SELECT filters->>'path' || ',' || (filters->'source_type')::text FROM search_queries"
              " WHERE filters ? 'path' AND filters ? 'source_type' LIMIT 1",
           "rare/*,[\"file\"]");
    /* a date the server cannot read is a usage error naming the option */
    char *out, *errout;
    assert_int_equal(search(&out, &errout, "--project many --since 'next tuesdayish' q"), 2);
    expect_in("bad --since", errout, "--since 'next tuesdayish' is not a date or time");
    free(out);
    free(errout);
}

static void search__hides_duplicates(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    load_project(t, PROJECT, EMBED_HASH_MODEL, N_DOCS, 1);
    /* what `kbpipe dedup --action mark` records */
    expect(t, "WITH u AS (UPDATE learnings SET metadata = metadata || jsonb_build_object("
              "'duplicate_of', (SELECT id FROM learnings WHERE title = 'Vacuum after bulk deletes'))"
              " WHERE title = 'Index foreign key columns' RETURNING 1) SELECT count(*) FROM u", "1");
    char *out, *errout;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(search(&out, &errout, "--project " PROJECT " --learnings -k 3 --use "
                                               "'index foreign key columns'"), 0);
        if (strstr(out, "Index foreign key columns"))
            fail_msg("a marked duplicate was shown:\n%s", out);
        expect_in("learnings", out, "Vacuum after bulk deletes");
        free(out);
        free(errout);
    }
    expect(t, "SELECT usage_count FROM learnings WHERE title = 'Index foreign key columns'", "0");
    expect(t, "SELECT usage_count FROM learnings WHERE title = 'Vacuum after bulk deletes'", "2");
    /* --with-duplicates shows it, and --use still does not count it */
    assert_int_equal(search(&out, &errout, "--project " PROJECT " --learnings -k 3 --use "
                                           "--with-duplicates 'index foreign key columns'"), 0);
    expect_in("learnings", out, "Index foreign key columns");
    expect_in("learnings", out, "duplicate of ");
    expect(t, "SELECT usage_count FROM learnings WHERE title = 'Index foreign key columns'", "0");
    free(out);
    free(errout);
}

/* ---- kbpipe eval ----------------------------------------------------------- */

static int eval(char **out, char **errout, const char *args)
{
    return kbtest_sh(out, errout, "%s --db \"$KBPIPE_TEST_DSN\" eval %s", kbtest_bin(), args);
}

static void eval__scores_the_modes(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    load_project(t, PROJECT, EMBED_HASH_MODEL, N_DOCS, 0);
    char *dir = kbtest_tmpdir();
    char *q = kb_xasprintf("%s/q.tsv", dir);
    kbtest_write(q, "# question<TAB>expected\n"
                    "how do I rotate the master encryption key?\tops/secrets.md\n"
                    "restore the nightly pg_dump\tops/back*.md\n"
                    "promote a release to production\tnothing.md\tops/deploy.md\n"
                    "zebra giraffe okapi\tops/ports.md\n");
    char *out, *errout;
    char *args = kb_xasprintf("'%s' --project " PROJECT " -k 2 --json", q);
    assert_int_equal(eval(&out, &errout, args), 0);
    json_t *o = parse_json(out);
    assert_int_equal(json_integer_value(json_object_get(o, "questions")), 4);
    json_t *modes = json_object_get(o, "modes");
    assert_int_equal(json_array_size(modes), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *m = json_array_get(modes, i);
        json_t *misses = json_object_get(m, "misses");
        /* three questions are answerable, the fourth shares no word with anything */
        double r1 = json_number_value(json_object_get(m, "recall_at_1"));
        assert_float_equal(r1, (4.0 - (double)json_array_size(misses)) / 4.0, 1e-9);
        assert_true(json_array_size(misses) >= 1);
        json_t *last = json_array_get(misses, json_array_size(misses) - 1);
        assert_int_equal(json_integer_value(json_object_get(last, "line")), 5);
        assert_true(json_number_value(json_object_get(m, "query_ms_p95")) >=
                    json_number_value(json_object_get(m, "query_ms_p50")));
    }
    assert_string_equal(json_string_value(json_object_get(json_array_get(modes, 2), "mode")),
                        "hybrid");
    assert_float_equal(json_number_value(json_object_get(json_array_get(modes, 2), "recall_at_1")),
                       0.75, 1e-9);
    json_decref(o);
    free(out);
    free(errout);
    free(args);
    expect(t, "SELECT count(*) FROM search_queries", "0");   /* eval logs nothing */

    /* the table for people, one mode */
    args = kb_xasprintf("'%s' --project " PROJECT " --mode text", q);
    assert_int_equal(eval(&out, &errout, args), 0);
    expect_in("eval", out, "4 questions (");
    expect_in("eval", out, "\ntext        0.750     0.750   0.750");
    expect_in("eval", out, "misses (expected source not first):\n  text   ");
    expect_in("eval", out, "q.tsv:5  not found  \"zebra giraffe okapi\"  expected ops/ports.md");
    free(out);
    free(errout);
    free(args);

    /* --fetch 1: one chunk a question, so a source is first or not found;
     * the JSON and the header say how many were retrieved */
    args = kb_xasprintf("'%s' --project " PROJECT " --mode hybrid -k 2 --fetch 1 --json", q);
    assert_int_equal(eval(&out, &errout, args), 0);
    o = parse_json(out);
    assert_int_equal(json_integer_value(json_object_get(o, "fetch")), 1);
    json_t *fm = json_array_get(json_object_get(o, "modes"), 0);
    json_t *fmiss = json_object_get(fm, "misses");
    assert_true(json_array_size(fmiss) >= 1);
    for (size_t i = 0; i < json_array_size(fmiss); i++)
        assert_true(json_is_null(json_object_get(json_array_get(fmiss, i), "rank")));
    assert_float_equal(json_number_value(json_object_get(fm, "recall_at_k")),
                       json_number_value(json_object_get(fm, "recall_at_1")), 1e-9);
    json_decref(o);
    free(out);
    free(errout);
    free(args);
    args = kb_xasprintf("'%s' --project " PROJECT " --mode text --fetch 7", q);
    assert_int_equal(eval(&out, &errout, args), 0);
    expect_in("eval", out, ", k = 5, 7 chunks retrieved a question\n");
    free(out);
    free(errout);
    free(args);
    args = kb_xasprintf("'%s' --project " PROJECT " --fetch 0", q);
    assert_int_equal(eval(&out, &errout, args), 2);
    expect_in("error", errout, "--fetch '0' is not a count");
    free(out);
    free(errout);
    free(args);

    /* a bad line: its file:line, exit 1, nothing run */
    kbtest_write(q, "good question\tops/a.md\nno tab on this line\n");
    args = kb_xasprintf("'%s' --project " PROJECT, q);
    assert_int_equal(eval(&out, &errout, args), 1);
    expect_in("error", errout, "q.tsv:2: expected QUESTION<TAB>EXPECTED SOURCE");
    assert_string_equal(out, "");
    free(out);
    free(errout);
    free(args);
    kbtest_rmtree(dir);
    free(dir);
    free(q);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(search__ranks_the_relevant_document_first, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(search__json_has_the_fields, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(search__logs_the_query, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(search__learnings_and_use, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(search__refuses_rows_of_another_model, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(search__unknown_project, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test(search__bad_options_exit_2),
        cmocka_unit_test_setup_teardown(search__remote_model_through_pipeline, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(search__modes_and_the_log, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(search__filters, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(search__hides_duplicates, kbtest_migrated_setup, kbtest_migrated_teardown),
    };
    const struct CMUnitTest eval_tests[] = {
        cmocka_unit_test_setup_teardown(eval__scores_the_modes, kbtest_migrated_setup, kbtest_migrated_teardown),
    };
    int failed = cmocka_run_group_tests_name("cmd_search.c", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("cmd_eval.c", eval_tests, NULL, NULL);
    return failed ? 1 : 0;
}
