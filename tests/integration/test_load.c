/*
 * test_load.c - src/load against real PostgreSQL with the full schema
 * (migrations 001-006 applied into a private schema): batches, atomic
 * replacement, change detection, --full deletion, faults, the index
 * strategy and its repair; and `kbpipe run` through the OpenAI-compatible
 * client against a stub server (tests/support), for the reuse of stored
 * vectors.  Groups: batch.c, session.c, index.c, cmd_run.c (src/pipeline's,
 * through the kbpipe binary).
 */
#include "kbtest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "load/load.h"

static void opts_for(struct load_opts *o, const char *pipeline)
{
    load_opts_defaults(o);
    o->pipeline = pipeline;
    o->project = "load-test";
    o->batch_rows = 100;
}

/* A deterministic unit vector for a seed. */
static void unit_vector(float *v, unsigned seed)
{
    double norm = 0;
    for (int i = 0; i < KB_LOAD_DIM; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) & 0xFFFF) / 65536.0f - 0.5f;
        norm += (double)v[i] * v[i];
    }
    for (int i = 0; i < KB_LOAD_DIM; i++)
        v[i] = (float)(v[i] / sqrt(norm));
}

static void hash_of(const char *text, char out[65])
{
    /* not the chunker's hash: any 64 hex characters will do here */
    unsigned h = 2166136261u;
    for (const char *p = text; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (int i = 0; i < 8; i++)
        snprintf(out + 8 * i, 9, "%08x", h + (unsigned)i);
}

/* Add a source with n chunks "<id> chunk k <version>"; vectors filled. */
static void add_doc(struct load_batch *b, const char *id, int n, const char *version)
{
    struct load_source src = { .source_type = "file", .source_id = id, .title = id,
                               .file_path = id, .metadata_json = "{\"kind\":\"test\"}" };
    char text[128];
    snprintf(text, sizeof text, "%s %s", id, version);
    hash_of(text, src.doc_hash);
    int si = load_batch_add_source(b, &src);
    for (int k = 0; k < n; k++) {
        char content[128];
        snprintf(content, sizeof content, "%s chunk %d %s 'quoted' \\ é", id, k, version);
        struct load_chunk c = { .chunk_index = k, .content = content, .len = strlen(content),
                                .token_count = 7,
                                .metadata_json = "{\"embedding_model\":\"test-model\"}" };
        hash_of(content, c.content_hash);
        load_batch_add_chunk(b, si, &c);
    }
    float *m = load_batch_matrix(b);
    unsigned char *has = load_batch_has_vector(b);
    for (int r = 0; r < load_batch_rows(b); r++)
        if (!has[r]) {
            unit_vector(m + (size_t)r * KB_LOAD_DIM, (unsigned)r + 1u);
            has[r] = 1;
        }
}

static void expect(struct kbtest_db *t, const char *sql, const char *want)
{
    char *got = kbtest_query(t, sql);
    if (strcmp(got, want) != 0)
        fail_msg("%s\n  got:  %s\n  want: %s", sql, got, want);
    free(got);
}

static void load_batch_flush__writes_sources_and_chunks(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct kb_err err = { 0 };
    struct load_opts o;
    opts_for(&o, "p1");
    struct load_session *s;
    assert_int_equal(load_session_open(t->conn, &o, &s, &err), KB_OK);
    struct load_batch *b = load_batch_new(s);
    assert_int_equal(load_source_unchanged(s, "file", "a.md", "00"), 0);
    add_doc(b, "a.md", 3, "v1");
    add_doc(b, "b.md", 2, "v1");
    assert_int_equal(load_batch_flush(s, b, &err), KB_OK);
    assert_int_equal(load_batch_rows(b), 0);
    assert_int_equal(load_session_counts(s)->chunks_written, 5);
    load_batch_free(b);
    assert_int_equal(load_session_close(s, "succeeded", "{\"ok\":true}", &err), KB_OK);
    expect(t, "SELECT count(*) FROM knowledge_sources WHERE pipeline = 'p1'", "2");
    expect(t, "SELECT string_agg(chunk_index::text, ',' ORDER BY chunk_index) FROM "
              "knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id "
              "WHERE s.source_id = 'a.md'", "0,1,2");
    /* text and vectors survive the binary round trip */
    expect(t, "SELECT content FROM knowledge_chunks WHERE chunk_index = 1 AND content LIKE 'a.md%'",
           "a.md chunk 1 v1 'quoted' \\ é");
    expect(t, "SELECT round((embedding <#> embedding)::numeric, 4) FROM knowledge_chunks LIMIT 1",
           "-1.0000");
    expect(t, "SELECT vector_dims(embedding) FROM knowledge_chunks LIMIT 1", "1536");
    expect(t, "SELECT status || ':' || (counts->>'chunks_written') || ':' || (report->>'ok') "
              "FROM kbpipe_runs", "succeeded:5:true");
    expect(t, "SELECT count(*) FROM projects WHERE name = 'load-test'", "1");
}

/* A batch is full at batch_rows rows, and at batch_rows sources with no row
 * (empty documents), which would otherwise pile up in one batch. */
static void load_batch_is_full__rows_or_sources(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct kb_err err = { 0 };
    struct load_opts o;
    opts_for(&o, "p1");
    o.batch_rows = 4;
    struct load_session *s;
    assert_int_equal(load_session_open(t->conn, &o, &s, &err), KB_OK);
    struct load_batch *b = load_batch_new(s);
    add_doc(b, "a.md", 3, "v1");
    assert_false(load_batch_is_full(b));
    add_doc(b, "b.md", 1, "v1");
    assert_true(load_batch_is_full(b));          /* 4 rows */
    assert_int_equal(load_batch_flush(s, b, &err), KB_OK);
    static const char *const empty[] = { "e1.md", "e2.md", "e3.md", "e4.md" };
    for (int i = 0; i < 4; i++) {
        assert_false(load_batch_is_full(b));
        add_doc(b, empty[i], 0, "v1");
    }
    assert_int_equal(load_batch_rows(b), 0);
    assert_true(load_batch_is_full(b));          /* 4 sources, no row */
    assert_int_equal(load_batch_flush(s, b, &err), KB_OK);
    assert_int_equal(load_session_close(s, "succeeded", NULL, &err), KB_OK);
    expect(t, "SELECT count(*) FROM knowledge_sources", "6");
    expect(t, "SELECT count(*) FROM knowledge_chunks", "4");
    load_batch_free(b);
}

static void load_source_unchanged__and_replacement(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct kb_err err = { 0 };
    struct load_opts o;
    opts_for(&o, "p1");
    struct load_session *s;
    assert_int_equal(load_session_open(t->conn, &o, &s, &err), KB_OK);
    struct load_batch *b = load_batch_new(s);
    add_doc(b, "a.md", 3, "v1");
    add_doc(b, "b.md", 2, "v1");
    assert_int_equal(load_batch_flush(s, b, &err), KB_OK);
    assert_int_equal(load_session_close(s, "succeeded", NULL, &err), KB_OK);

    assert_int_equal(load_session_open(t->conn, &o, &s, &err), KB_OK);
    load_batch_free(b);   /* a batch belongs to the session it was made for */
    b = load_batch_new(s);
    char h[65];
    hash_of("a.md v1", h);
    assert_int_equal(load_source_unchanged(s, "file", "a.md", h), 1);
    hash_of("b.md v2", h);
    assert_int_equal(load_source_unchanged(s, "file", "b.md", h), 0);
    add_doc(b, "b.md", 4, "v2");
    assert_int_equal(load_batch_flush(s, b, &err), KB_OK);
    assert_int_equal(load_session_counts(s)->chunks_deleted, 2);
    assert_int_equal(load_session_close(s, "succeeded", NULL, &err), KB_OK);
    expect(t, "SELECT count(*) || ':' || min(content) FROM knowledge_chunks c JOIN "
              "knowledge_sources s ON s.id = c.source_id WHERE s.source_id = 'b.md'",
           "4:b.md chunk 0 v2 'quoted' \\ é");
    expect(t, "SELECT count(*) FROM knowledge_chunks", "7");
    load_batch_free(b);
}

static void load_batch_flush__fault_leaves_database_as_before(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct kb_err err = { 0 };
    struct load_opts o;
    opts_for(&o, "p1");
    struct load_session *s;
    assert_int_equal(load_session_open(t->conn, &o, &s, &err), KB_OK);
    struct load_batch *b = load_batch_new(s);
    add_doc(b, "a.md", 3, "v1");
    assert_int_equal(load_batch_flush(s, b, &err), KB_OK);
    add_doc(b, "a.md", 1, "v2");
    setenv("KBPIPE_FAULT", "load.flush", 1);
    assert_int_equal(load_batch_flush(s, b, &err), KB_E_DB);
    unsetenv("KBPIPE_FAULT");
    assert_non_null(strstr(err.msg, "as before"));
    /* the old chunks and the old doc_hash: the next run redoes the change */
    char v1[65];
    hash_of("a.md v1", v1);
    expect(t, "SELECT count(*) FROM knowledge_chunks", "3");
    char *stored = kbtest_query(t, "SELECT doc_hash FROM knowledge_sources");
    assert_string_equal(stored, v1);
    free(stored);
    expect(t, "SELECT min(content) FROM knowledge_chunks", "a.md chunk 0 v1 'quoted' \\ é");
    load_batch_free(b);
    assert_int_equal(load_session_close(s, "failed", NULL, &err), KB_OK);
}

static void load_session_close__full_deletes_unseen_only(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct kb_err err = { 0 };
    struct load_opts o;
    opts_for(&o, "p1");
    struct load_session *s;
    assert_int_equal(load_session_open(t->conn, &o, &s, &err), KB_OK);
    struct load_batch *b = load_batch_new(s);
    add_doc(b, "a.md", 2, "v1");
    add_doc(b, "b.md", 2, "v1");
    assert_int_equal(load_batch_flush(s, b, &err), KB_OK);
    assert_int_equal(load_session_close(s, "succeeded", NULL, &err), KB_OK);
    /* another pipeline's source must survive p1's --full */
    opts_for(&o, "p2");
    assert_int_equal(load_session_open(t->conn, &o, &s, &err), KB_OK);
    load_batch_free(b);   /* a batch belongs to the session it was made for */
    b = load_batch_new(s);
    add_doc(b, "c.md", 1, "v1");
    assert_int_equal(load_batch_flush(s, b, &err), KB_OK);
    assert_int_equal(load_session_close(s, "succeeded", NULL, &err), KB_OK);

    opts_for(&o, "p1");
    assert_int_equal(load_session_open(t->conn, &o, &s, &err), KB_OK);
    char h[65];
    hash_of("a.md v1", h);
    assert_int_equal(load_source_unchanged(s, "file", "a.md", h), 1);
    assert_int_equal(load_session_finish(s, 1, &err), KB_OK);
    assert_int_equal(load_session_close(s, "succeeded", NULL, &err), KB_OK);
    expect(t, "SELECT string_agg(source_id, ',' ORDER BY source_id) FROM knowledge_sources",
           "a.md,c.md");
    expect(t, "SELECT count(*) FROM knowledge_chunks", "3");
    load_batch_free(b);
}

static void load_session_open__second_run_of_a_pipeline_is_refused(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct kb_err err = { 0 };
    struct load_opts o;
    opts_for(&o, "locked");
    struct load_session *s;
    assert_int_equal(load_session_open(t->conn, &o, &s, &err), KB_OK);
    struct db_conn *other;
    assert_int_equal(db_connect(t->conninfo, &other, &err), KB_OK);
    o.wait_for_lock = 0;
    struct load_session *s2 = NULL;
    assert_int_equal(load_session_open(other, &o, &s2, &err), KB_E_DB);
    assert_non_null(strstr(err.msg, "already running"));
    /* a different pipeline is not blocked */
    opts_for(&o, "unlocked");
    o.wait_for_lock = 0;
    assert_int_equal(load_session_open(other, &o, &s2, &err), KB_OK);
    assert_int_equal(load_session_close(s2, "succeeded", NULL, &err), KB_OK);
    assert_int_equal(load_session_close(s, "succeeded", NULL, &err), KB_OK);
    db_close(other);
}

/* stderr (the log) goes to a scratch file from begin to end; end returns
 * what was written there (the caller frees it). */
struct log_capture {
    int saved_fd;
    FILE *f;
    enum kb_log_level saved_level;
};

static void capture_begin(struct log_capture *c)
{
    fflush(stderr);
    c->f = tmpfile();
    assert_non_null(c->f);
    c->saved_fd = dup(2);
    dup2(fileno(c->f), 2);
    c->saved_level = log_get_level();
    log_set_level(KB_LOG_DEBUG);
}

static char *capture_end(struct log_capture *c)
{
    fflush(stderr);
    log_set_level(c->saved_level);
    dup2(c->saved_fd, 2);
    close(c->saved_fd);
    long n = ftell(c->f);
    char *text = kb_xcalloc(1, (size_t)(n > 0 ? n : 0) + 1);
    rewind(c->f);
    if (n > 0 && fread(text, 1, (size_t)n, c->f) != (size_t)n)
        fail_msg("cannot read the captured log");
    fclose(c->f);
    return text;
}

static void load_index__rebuild_strategy_and_repair(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct kb_err err = { 0 };
    const char *count_hnsw =
        "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = 'knowledge_chunks'::regclass "
        "AND am.amname = 'hnsw'";
    /* the full-text index, which the strategy drops and rebuilds beside it */
    const char *count_gin =
        "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = 'knowledge_chunks'::regclass "
        "AND am.amname = 'gin' AND c.relname = 'idx_knowledge_chunks_search_tsv' "
        "AND i.indisvalid";
    expect(t, count_hnsw, "1");
    expect(t, count_gin, "1");
    struct load_opts o;
    opts_for(&o, "p1");
    o.index_strategy = LOAD_INDEX_REBUILD;
    struct load_session *s;
    assert_int_equal(load_session_open(t->conn, &o, &s, &err), KB_OK);
    struct load_batch *b = load_batch_new(s);
    add_doc(b, "a.md", 5, "v1");
    struct log_capture cap;
    capture_begin(&cap);
    assert_int_equal(load_batch_flush(s, b, &err), KB_OK);
    char *log = capture_end(&cap);
    /* rebuild drops the index whatever the counts: the table is not counted */
    if (strstr(log, "counting the rows") != NULL || strstr(log, "index_strategy rebuild") == NULL)
        fail_msg("rebuild counted the table, or dropped nothing:\n%s", log);
    if (strstr(log, "dropped full-text index idx_knowledge_chunks_search_tsv") == NULL)
        fail_msg("rebuild did not log the full-text index's drop:\n%s", log);
    free(log);
    expect(t, count_hnsw, "0");
    expect(t, count_gin, "0");
    expect(t, "SELECT count(*) FROM kbpipe_dropped_indexes", "2");
    /* the run is "killed" here: the notes survive; verify sees the gap */
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(db_schema_verify(t->conn, devnull, &err), KB_E_DB);
    assert_non_null(strstr(err.msg, "knowledge_chunks"));
    assert_int_equal(load_session_finish(s, 0, &err), KB_OK);
    assert_int_equal(load_session_close(s, "succeeded", NULL, &err), KB_OK);
    expect(t, count_hnsw, "1");
    expect(t, count_gin, "1");
    expect(t, "SELECT count(*) FROM kbpipe_dropped_indexes", "0");
    assert_int_equal(db_schema_verify(t->conn, devnull, &err), KB_OK);

    /* auto keeps the index for a small load into a larger table */
    o.index_strategy = LOAD_INDEX_AUTO;
    o.rebuild_min_rows = 1;
    o.rebuild_ratio = 10.0;
    assert_int_equal(load_session_open(t->conn, &o, &s, &err), KB_OK);
    load_batch_free(b);   /* a batch belongs to the session it was made for */
    b = load_batch_new(s);
    add_doc(b, "b.md", 2, "v1");
    capture_begin(&cap);
    assert_int_equal(load_batch_flush(s, b, &err), KB_OK);
    log = capture_end(&cap);
    if (strstr(log, "index strategy auto: counting the rows of knowledge_chunks") == NULL)
        fail_msg("auto decided without counting the table:\n%s", log);
    free(log);
    expect(t, count_hnsw, "1");
    expect(t, count_gin, "1");
    assert_int_equal(load_session_close(s, "succeeded", NULL, &err), KB_OK);
    expect(t, "SELECT count(*) FROM kbpipe_dropped_indexes", "0");

    /* notes left by a killed run (the HNSW and the full-text index): verify
     * names both, --repair rebuilds both from their notes */
    assert_int_equal(db_exec_script(t->conn,
        "INSERT INTO kbpipe_dropped_indexes (index_name, table_name, indexdef) "
        "SELECT c.relname, 'knowledge_chunks', pg_get_indexdef(c.oid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
        "WHERE i.indrelid = 'knowledge_chunks'::regclass AND (am.amname = 'hnsw' "
        "OR c.relname = 'idx_knowledge_chunks_search_tsv');"
        "DO $$ DECLARE r record; BEGIN FOR r IN SELECT index_name FROM kbpipe_dropped_indexes "
        "LOOP EXECUTE format('DROP INDEX %I', r.index_name); END LOOP; END $$;", NULL, &err),
        KB_OK);
    expect(t, count_hnsw, "0");
    expect(t, count_gin, "0");
    char *listing = NULL;
    size_t listing_len = 0;
    FILE *out = open_memstream(&listing, &listing_len);
    assert_int_equal(db_schema_verify(t->conn, out, &err), KB_E_DB);
    fclose(out);
    if (strstr(listing, "HNSW index on embedding is missing") == NULL ||
        strstr(listing, "the index idx_knowledge_chunks_search_tsv is missing") == NULL)
        fail_msg("verify did not name both missing indexes:\n%s", listing);
    /* the noted full-text index is reported once, through its note */
    if (strstr(listing, "GIN) index on search_tsv is missing") != NULL)
        fail_msg("verify reported the noted full-text index twice:\n%s", listing);
    assert_non_null(strstr(err.msg, "has no HNSW index"));   /* HNSW first */
    free(listing);
    assert_int_equal(db_schema_repair(t->conn, &err), KB_OK);
    expect(t, count_hnsw, "1");
    expect(t, count_gin, "1");
    expect(t, "SELECT count(*) FROM kbpipe_dropped_indexes", "0");
    assert_int_equal(db_schema_verify(t->conn, devnull, &err), KB_OK);
    fclose(devnull);
    load_batch_free(b);
}

/* The valid GIN indexes on `table`'s search_tsv, as their definitions
 * without the test's schema. */
static char *gin_defs_sql(const char *table)
{
    return kb_xasprintf(
        "SELECT coalesce(string_agg(replace(pg_get_indexdef(i.indexrelid), "
        "current_schema() || '.', ''), '; '), '') FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
        "WHERE i.indrelid = '%s'::regclass AND am.amname = 'gin' AND i.indisvalid "
        "AND pg_get_indexdef(i.indexrelid) LIKE '%%(search_tsv)%%'", table);
}

/* A full-text index dropped by hand (no kbpipe_dropped_indexes note):
 * verify names it and its table, --repair rebuilds migration 008's
 * definition, any valid GIN index on search_tsv satisfies verify, and a
 * name taken by another index makes --repair fail naming it. */
static void schema_verify__full_text_index_dropped_by_hand(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    const char *tables[] = { "knowledge_chunks", "learnings" };
    for (size_t i = 0; i < 2; i++) {
        struct kb_err err = { 0 };
        char *defs = gin_defs_sql(tables[i]);
        char *want = kb_xasprintf("CREATE INDEX idx_%s_search_tsv ON %s USING gin "
                                  "(search_tsv)", tables[i], tables[i]);
        char *drop = kb_xasprintf("DROP INDEX idx_%s_search_tsv", tables[i]);
        char *idx_name = kb_xasprintf("idx_%s_search_tsv", tables[i]);
        expect(t, defs, want);
        assert_int_equal(db_schema_verify(t->conn, stderr, &err), KB_OK);
        assert_int_equal(db_exec_script(t->conn, drop, NULL, &err), KB_OK);
        expect(t, defs, "");
        expect(t, "SELECT count(*) FROM kbpipe_dropped_indexes", "0");
        char *listing = NULL;
        size_t listing_len = 0;
        FILE *out = open_memstream(&listing, &listing_len);
        assert_int_equal(db_schema_verify(t->conn, out, &err), KB_E_DB);
        fclose(out);
        if (strstr(listing, tables[i]) == NULL || strstr(listing, idx_name) == NULL ||
            strstr(listing, "GIN) index on search_tsv is missing") == NULL)
            fail_msg("verify did not name %s and its table:\n%s", idx_name, listing);
        if (strstr(err.msg, tables[i]) == NULL || strstr(err.msg, idx_name) == NULL ||
            strstr(err.msg, "--repair") == NULL)
            fail_msg("verify's error does not name %s, its table and --repair: %s", idx_name,
                     err.msg);
        free(listing);
        assert_int_equal(db_schema_repair(t->conn, &err), KB_OK);
        expect(t, defs, want);
        assert_int_equal(db_schema_verify(t->conn, stderr, &err), KB_OK);

        /* whatever its name: a GIN index of another name on search_tsv passes */
        char *rename = kb_xasprintf("ALTER INDEX idx_%s_search_tsv RENAME TO kb_it_tsv_%zu",
                                    tables[i], i);
        assert_int_equal(db_exec_script(t->conn, rename, NULL, &err), KB_OK);
        assert_int_equal(db_schema_verify(t->conn, stderr, &err), KB_OK);
        free(rename);
        rename = kb_xasprintf("ALTER INDEX kb_it_tsv_%zu RENAME TO idx_%s_search_tsv", i,
                              tables[i]);
        assert_int_equal(db_exec_script(t->conn, rename, NULL, &err), KB_OK);
        free(rename);

        /* the name taken by an index that is not a GIN on search_tsv */
        char *squat = kb_xasprintf("%s; CREATE INDEX idx_%s_search_tsv ON %s (id)", drop,
                                   tables[i], tables[i]);
        assert_int_equal(db_exec_script(t->conn, squat, NULL, &err), KB_OK);
        assert_int_equal(db_schema_verify(t->conn, stderr, &err), KB_E_DB);
        assert_int_equal(db_schema_repair(t->conn, &err), KB_E_DB);
        if (strstr(err.msg, idx_name) == NULL || strstr(err.msg, "DROP INDEX") == NULL)
            fail_msg("repair over a taken name does not say which index to drop: %s", err.msg);
        char *restore = kb_xasprintf("%s; CREATE INDEX idx_%s_search_tsv ON %s USING gin "
                                     "(search_tsv)", drop, tables[i], tables[i]);
        assert_int_equal(db_exec_script(t->conn, restore, NULL, &err), KB_OK);
        assert_int_equal(db_schema_verify(t->conn, stderr, &err), KB_OK);
        free(restore);
        free(squat);
        free(idx_name);
        free(drop);
        free(want);
        free(defs);
    }
}

static void load_batch_add_issue__upserts_issues_and_comments(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct kb_err err = { 0 };
    struct load_opts o;
    opts_for(&o, "issues");
    struct load_session *s;
    const char *labels[] = { "bug", "db" };
    struct load_comment comments[] = {
        { .author = "ann", .body = "first", .created_at = "2026-01-02T00:00:00Z", .github_id = "11" },
        { .author = NULL, .body = "second \"quoted\"", .github_id = "I_node" },
    };
    struct load_issue is = { .repo = "o/r", .number = 7, .github_id = "777", .title = "Port clash",
                             .body = "body", .state = "OPEN", .author = "bob",
                             .url = "https://github.com/o/r/issues/7",
                             .created_at = "2026-01-01T00:00:00Z", .labels = labels,
                             .n_labels = 2, .comments = comments, .n_comments = 2 };
    for (int round = 0; round < 2; round++) {
        assert_int_equal(load_session_open(t->conn, &o, &s, &err), KB_OK);
        struct load_batch *b = load_batch_new(s);
        add_doc(b, "o/r#7", 1, round ? "v2" : "v1");
        load_batch_add_issue(b, 0, &is);
        assert_int_equal(load_batch_flush(s, b, &err), KB_OK);
        load_batch_free(b);
        assert_int_equal(load_session_close(s, "succeeded", NULL, &err), KB_OK);
        is.state = "CLOSED";
        is.closed_at = "2026-02-01T00:00:00Z";
        is.n_comments = 1;
    }
    expect(t, "SELECT issue_number || ':' || status || ':' || array_to_string(labels, ',') || ':' "
              "|| github_id || ':' || (closed_at IS NOT NULL) FROM issues", "7:closed:bug,db:777:true");
    expect(t, "SELECT count(*) || ':' || min(author) || ':' || min(content) FROM comments", "1:ann:first");
}

/*
 * The issue's and comments' metadata keep every character of what they
 * name: quotes, backslashes, control characters and non-ASCII text go in
 * as JSON strings (jansson), not stripped or passed through unescaped.
 */
static void load_batch_add_issue__metadata_keeps_every_character(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct kb_err err = { 0 };
    struct load_opts o;
    opts_for(&o, "issues-meta");
    struct load_session *s;
    struct load_comment comments[] = {
        { .author = "ann", .body = "c", .url = "https://x/\"q\"\\\tend" },
    };
    struct load_issue is = { .repo = "o/\"r\\é", .number = 8, .github_id = "I_\"n\\\n",
                             .title = "t", .body = "b", .state = "open",
                             .url = "https://github.com/o/r/issues/8", .comments = comments,
                             .n_comments = 1 };
    assert_int_equal(load_session_open(t->conn, &o, &s, &err), KB_OK);
    struct load_batch *b = load_batch_new(s);
    add_doc(b, "o/r#8", 1, "v1");
    load_batch_add_issue(b, 0, &is);
    assert_int_equal(load_batch_flush(s, b, &err), KB_OK);
    load_batch_free(b);
    assert_int_equal(load_session_close(s, "succeeded", NULL, &err), KB_OK);
    expect(t, "SELECT (metadata->>'repo' = E'o/\"r\\\\\u00e9') || ':' || "
              "(metadata->>'node_id' = E'I_\"n\\\\\\n') || ':' || (metadata->>'source') FROM issues",
           "true:true:kbpipe");
    expect(t, "SELECT (metadata->>'url' = E'https://x/\"q\"\\\\\\tend') || ':' || "
              "(metadata->>'position') FROM comments", "true:0");
}

/* ---- cmd_run.c: vectors reused by (content_hash, model) ----------------- */

static const char RUN_PIPELINE[] =
    "name: %s\nproject: %s\n"
    "chunking: {splitter: markdown, size: 40, overlap: 0}\n"
    "embedding:\n  provider: openai\n  model: stub-embed-1\n  dimensions: 1536\n"
    "  base_url: http://127.0.0.1:%d/v1\n  api_key_env: KBT_RUN_KEY\n  max_retries: 0\n"
    "sources:\n  - name: docs\n    type: files\n    roots: [docs]\n"
    "dedup: {enabled: false}\n";

static const char RUN_DOC[] =
    "# Ports\n\n## Allocate\n\nCall allocate_port with the project, the range and the service "
    "name; it returns a port that no other service holds.\n\n"
    "## Release\n\nCall release_port when the service stops, so the port returns to %s.\n\n"
    "## Expire\n\nReservations that pass their expiry are removed by "
    "cleanup_expired_reservations, which the nightly job runs.\n";

/* `kbpipe run NAME.yaml -q` in dir; fails the test unless it exits 0. */
static void run_pipeline(const char *dir, const char *name)
{
    char *err_out = NULL;
    int rc = kbtest_sh(NULL, &err_out, "cd '%s' && '%s' --db \"$KBPIPE_TEST_DSN\" -q run %s.yaml",
                       dir, kbtest_bin(), name);
    if (rc != 0)
        fail_msg("kbpipe run %s exited %d:\n%s", name, rc, err_out);
    free(err_out);
}

static void write_run_files(const char *dir, const char *name, const char *project, int port,
                            const char *pool)
{
    char *path = kb_xasprintf("%s/%s.yaml", dir, name);
    char *text = kb_xasprintf(RUN_PIPELINE, name, project, port);
    kbtest_write(path, text);
    free(text);
    free(path);
    path = kb_xasprintf("%s/docs/ports.md", dir);
    text = kb_xasprintf(RUN_DOC, pool);
    kbtest_write(path, text);
    free(text);
    free(path);
}

/*
 * The embedder is asked only for chunks whose (content_hash, model) has no
 * stored vector: an unchanged re-run requests nothing, another pipeline and
 * project over the same text reuse the first one's vectors, and an edited
 * paragraph sends that paragraph's chunk alone.
 */
static void cmd_run__reuse_requests_nothing(void **state)
{
    struct kbtest_db *t = *state;
    KBTEST_NEED_DB(t);
    struct kbtest_stub s;
    kbtest_stub_start(&s);
    setenv("KBT_RUN_KEY", "sk-test", 1);
    char *ranks = kb_xasprintf("%s/data/cl100k_base.json", kbtest_root());
    setenv("KBPIPE_TOKENIZER_FILE", ranks, 0);   /* the runs start in a temporary folder */
    free(ranks);
    setenv("NO_PROXY", "127.0.0.1", 1);
    setenv("no_proxy", "127.0.0.1", 1);
    char *dir = kbtest_tmpdir();
    char *docs = kb_xasprintf("%s/docs", dir);
    assert_int_equal(kbtest_sh(NULL, NULL, "mkdir -p '%s'", docs), 0);

    write_run_files(dir, "p1", "reuse-a", s.port, "the pool");
    run_pipeline(dir, "p1");
    char *n = kbtest_query(t, "SELECT count(*) FROM knowledge_chunks");
    int n_chunks = atoi(n);
    free(n);
    assert_true(n_chunks >= 3);                  /* one chunk per section at least */
    assert_int_equal(s.n_inputs, n_chunks);      /* every chunk embedded once */
    assert_string_equal(s.model, "stub-embed-1");
    int n_requests = s.n_requests;

    run_pipeline(dir, "p1");                     /* unchanged */
    assert_int_equal(s.n_requests, n_requests);
    assert_int_equal(s.n_inputs, n_chunks);

    write_run_files(dir, "p2", "reuse-b", s.port, "the pool");
    run_pipeline(dir, "p2");                     /* same texts, another project */
    assert_int_equal(s.n_requests, n_requests);
    char want[32];
    snprintf(want, sizeof want, "2:%d", 2 * n_chunks);
    expect(t, "SELECT count(DISTINCT project_id) || ':' || count(*) FROM knowledge_chunks", want);

    write_run_files(dir, "p1", "reuse-a", s.port, "the range's free pool");
    run_pipeline(dir, "p1");                     /* one paragraph edited */
    assert_int_equal(s.n_requests, n_requests + 1);
    assert_int_equal(s.n_inputs, n_chunks + 1);
    expect(t, "SELECT count(*) FROM knowledge_chunks c JOIN projects p ON p.id = c.project_id "
              "WHERE p.name = 'reuse-a' AND c.content LIKE '%free pool%'", "1");

    kbtest_stub_stop(&s);
    unsetenv("KBT_RUN_KEY");
    kbtest_rmtree(dir);
    free(docs);
    free(dir);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest batch_tests[] = {
        cmocka_unit_test_setup_teardown(load_batch_flush__writes_sources_and_chunks, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(load_batch_is_full__rows_or_sources, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(load_source_unchanged__and_replacement, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(load_batch_flush__fault_leaves_database_as_before, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(load_batch_add_issue__upserts_issues_and_comments, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(load_batch_add_issue__metadata_keeps_every_character, kbtest_migrated_setup, kbtest_migrated_teardown),
    };
    const struct CMUnitTest session_tests[] = {
        cmocka_unit_test_setup_teardown(load_session_close__full_deletes_unseen_only, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(load_session_open__second_run_of_a_pipeline_is_refused, kbtest_migrated_setup, kbtest_migrated_teardown),
    };
    const struct CMUnitTest index_tests[] = {
        cmocka_unit_test_setup_teardown(load_index__rebuild_strategy_and_repair, kbtest_migrated_setup, kbtest_migrated_teardown),
        cmocka_unit_test_setup_teardown(schema_verify__full_text_index_dropped_by_hand, kbtest_migrated_setup, kbtest_migrated_teardown),
    };
    const struct CMUnitTest run_tests[] = {
        cmocka_unit_test_setup_teardown(cmd_run__reuse_requests_nothing, kbtest_migrated_setup, kbtest_migrated_teardown),
    };
    int failed = cmocka_run_group_tests_name("batch.c", batch_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("session.c", session_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("index.c", index_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("cmd_run.c", run_tests, NULL, NULL);
    return failed ? 1 : 0;
}
