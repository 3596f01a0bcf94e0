/*
 * backfill.c - the SQL of `kbpipe embed backfill` (src/pipeline/cmd_backfill.c
 * conducts it): find a project's rows whose vector is missing or stale, and
 * write the new vectors back, one batch per transaction.
 *
 * A row is stale when
 *   embedding IS NULL                        the service inserted it bare;
 *   stored hash <> SHA-256 of its text       the service edited its text;
 *   metadata->>'embedding_model' <> model    another provider's vector.
 * The text and the hash are what src/pipeline/run_document.c computes for
 * `kbpipe run`, computed here by the server (sha256(convert_to(text,
 * 'UTF8')) gives the bytes chunk_hash_hex hashes in a UTF-8 database):
 *   knowledge_chunks  content                       hash in content_hash
 *   learnings         title || E'\n\n' || content   hash in metadata->>'content_hash'
 * so a backfilled row is one that `kbpipe run` would not find stale, and
 * its vector is the one the run would have written for the same text.
 *
 * Reading is keyset-paginated: each batch is the next batch_rows stale rows
 * with id > the last id read, in id order, over the (project_id, id) index
 * of migration 013; a run reads each row of the project once and never
 * comes back to a row it skipped (a rejected or edited row waits for the
 * next run).  Writing is one transaction per batch: binary COPY of (id,
 * hash, vector) into a temporary table, then one UPDATE ... FROM it, whose
 * WHERE re-checks that the row's text still hashes to what was embedded
 * (under READ COMMITTED a row updated concurrently is re-checked in its new
 * version), so a row edited between read and write keeps its new text and
 * its stale marks, and the next run embeds it.  A kill loses at most the
 * batch in flight; a re-run finds only what is still stale.
 */
#include "load/load_int.h"

#include <stdlib.h>
#include <string.h>

/* what db_project_check names in its message: "embed backfill: no project named 'x'; ..." */
#define BACKFILL_COMMAND "embed backfill"

struct load_backfill {
    struct db_conn *conn;
    enum load_backfill_table table;
    char project_id[40];
    char *model;
    int batch_rows;
    char last_id[40];           /* "" before the first batch */
    struct kb_arena *arena;     /* the batch's texts */
    int n;
    char (*ids)[40];
    char (*hashes)[65];
    const char **texts;
    size_t *lens;
    float *matrix;              /* batch_rows x KB_LOAD_DIM */
    unsigned char *has_vector;
    struct load_backfill_counts counts;
};

/* See load.h. */
enum kb_code load_backfill_open(struct db_conn *conn, const char *project,
                                enum load_backfill_table table, const char *model,
                                int batch_rows, struct load_backfill **out, struct kb_err *err)
{
    *out = NULL;
    char *project_id;
    enum kb_code rc = db_project_check(conn, project, BACKFILL_COMMAND, &project_id, err);
    if (rc != KB_OK)
        return rc;
    struct load_backfill *b = kb_xcalloc(1, sizeof *b);
    snprintf(b->project_id, sizeof b->project_id, "%s", project_id);
    free(project_id);
    b->conn = conn;
    b->table = table;
    b->model = kb_xstrdup(model);
    b->batch_rows = batch_rows > 0 ? batch_rows : 500;
    b->arena = kb_arena_new();
    size_t n = (size_t)b->batch_rows;
    b->ids = kb_xcalloc(n, sizeof *b->ids);
    b->hashes = kb_xcalloc(n, sizeof *b->hashes);
    b->texts = kb_xcalloc(n, sizeof *b->texts);
    b->lens = kb_xcalloc(n, sizeof *b->lens);
    b->matrix = kb_xcalloc(n * KB_LOAD_DIM, sizeof *b->matrix);
    b->has_vector = kb_xcalloc(n, 1);
    *out = b;
    return KB_OK;
}

/* See load.h. */
void load_backfill_free(struct load_backfill *b)
{
    if (b == NULL)
        return;
    kb_arena_free(b->arena);
    free(b->model);
    free(b->ids);
    free(b->hashes);
    free(b->texts);
    free(b->lens);
    free(b->matrix);
    free(b->has_vector);
    free(b);
}

/* The stale rows after $2 (">=" from the start: no id is skipped), text and
 * its hash computed once in a LATERAL; $1 project, $3 model, $4 limit. */
static const char *next_sql(enum load_backfill_table t, int is_first)
{
    if (t == LOAD_BACKFILL_CHUNKS)
        return is_first
            ? "SELECT c.id, c.content, x.h FROM knowledge_chunks c"
              " CROSS JOIN LATERAL (SELECT encode(sha256(convert_to(c.content, 'UTF8')), 'hex')"
              "   AS h) x"
              " WHERE c.project_id = $1::uuid AND c.id >= $2::uuid"
              "   AND (c.embedding IS NULL OR c.metadata->>'embedding_model' IS DISTINCT FROM $3"
              "        OR c.content_hash IS DISTINCT FROM x.h)"
              " ORDER BY c.id LIMIT $4::int"
            : "SELECT c.id, c.content, x.h FROM knowledge_chunks c"
              " CROSS JOIN LATERAL (SELECT encode(sha256(convert_to(c.content, 'UTF8')), 'hex')"
              "   AS h) x"
              " WHERE c.project_id = $1::uuid AND c.id > $2::uuid"
              "   AND (c.embedding IS NULL OR c.metadata->>'embedding_model' IS DISTINCT FROM $3"
              "        OR c.content_hash IS DISTINCT FROM x.h)"
              " ORDER BY c.id LIMIT $4::int";
    return is_first
        ? "SELECT l.id, x.t, encode(sha256(convert_to(x.t, 'UTF8')), 'hex') FROM learnings l"
          " CROSS JOIN LATERAL (SELECT l.title || E'\\n\\n' || l.content AS t) x"
          " WHERE l.project_id = $1::uuid AND l.id >= $2::uuid"
          "   AND (l.embedding IS NULL OR l.metadata->>'embedding_model' IS DISTINCT FROM $3"
          "        OR l.metadata->>'content_hash' IS DISTINCT FROM"
          "           encode(sha256(convert_to(x.t, 'UTF8')), 'hex'))"
          " ORDER BY l.id LIMIT $4::int"
        : "SELECT l.id, x.t, encode(sha256(convert_to(x.t, 'UTF8')), 'hex') FROM learnings l"
          " CROSS JOIN LATERAL (SELECT l.title || E'\\n\\n' || l.content AS t) x"
          " WHERE l.project_id = $1::uuid AND l.id > $2::uuid"
          "   AND (l.embedding IS NULL OR l.metadata->>'embedding_model' IS DISTINCT FROM $3"
          "        OR l.metadata->>'content_hash' IS DISTINCT FROM"
          "           encode(sha256(convert_to(x.t, 'UTF8')), 'hex'))"
          " ORDER BY l.id LIMIT $4::int";
}

/* See load.h. */
enum kb_code load_backfill_next(struct load_backfill *b, int *n, struct kb_err *err)
{
    *n = 0;
    b->n = 0;
    kb_arena_reset(b->arena);
    int is_first = b->last_id[0] == '\0';
    char limit[16];
    snprintf(limit, sizeof limit, "%d", b->batch_rows);
    const char *p[] = { b->project_id,
                        is_first ? "00000000-0000-0000-0000-000000000000" : b->last_id,
                        b->model, limit };
    struct db_rows *rows;
    enum kb_code rc = db_exec(b->conn, next_sql(b->table, is_first), 4, p, &rows, err);
    if (rc != KB_OK) {
        kb_err_prefix(err, "reading the stale rows of %s",
                      b->table == LOAD_BACKFILL_CHUNKS ? "knowledge_chunks" : "learnings");
        return rc;
    }
    int count = db_rows_count(rows);
    for (int i = 0; i < count && i < b->batch_rows; i++) {
        snprintf(b->ids[i], sizeof b->ids[i], "%s", db_rows_get(rows, i, 0));
        const char *text = db_rows_get(rows, i, 1);
        b->lens[i] = strlen(text);
        b->texts[i] = kb_arena_strndup(b->arena, text, b->lens[i]);
        snprintf(b->hashes[i], sizeof b->hashes[i], "%s", db_rows_get(rows, i, 2));
        b->has_vector[i] = 0;
        b->n++;
    }
    db_rows_free(rows);
    if (b->n > 0)
        memcpy(b->last_id, b->ids[b->n - 1], sizeof b->last_id);
    b->counts.found += b->n;
    *n = b->n;
    return KB_OK;
}

/* See load.h (the accessors below too). */
const char *load_backfill_row_text(const struct load_backfill *b, int i, size_t *len)
{
    if (len)
        *len = b->lens[i];
    return b->texts[i];
}

const char *load_backfill_row_hash(const struct load_backfill *b, int i) { return b->hashes[i]; }
const char *load_backfill_row_id(const struct load_backfill *b, int i) { return b->ids[i]; }
float *load_backfill_matrix(struct load_backfill *b) { return b->matrix; }
unsigned char *load_backfill_has_vector(struct load_backfill *b) { return b->has_vector; }

/* See load.h. */
const struct load_backfill_counts *load_backfill_counts(const struct load_backfill *b)
{
    return &b->counts;
}

/* See load.h.  The lookup of load_batch_reuse (batch.c): any project's row
 * with the same text hash and model holds the same vector. */
enum kb_code load_backfill_reuse(struct load_backfill *b, int *n_reused, struct kb_err *err)
{
    const char **hashes = kb_xcalloc((size_t)b->n + 1, sizeof *hashes);
    for (int i = 0; i < b->n; i++)
        hashes[i] = b->hashes[i];
    enum kb_code rc = load_reuse_lookup(b->conn, hashes, b->n, b->model, b->matrix,
                                        b->has_vector, n_reused, err);
    free(hashes);
    b->counts.reused += *n_reused;
    return rc;
}

/* COPY the batch's rows that have a vector into the staging table. */
static enum kb_code stage_rows(struct load_backfill *b, long *n_staged, struct kb_err *err)
{
    *n_staged = 0;
    enum kb_code rc = db_exec(b->conn,
        "CREATE TEMP TABLE IF NOT EXISTS kb_backfill_stage ("
        " id uuid, content_hash text, embedding vector(1536)) ON COMMIT DELETE ROWS",
        0, NULL, NULL, err);
    if (rc != KB_OK)
        return rc;
    struct load_copy *c;
    rc = load_copy_begin(db_conn_pg(b->conn),
                         "COPY kb_backfill_stage FROM STDIN WITH (FORMAT binary)", &c, err);
    if (rc != KB_OK)
        return rc;
    for (int i = 0; i < b->n && rc == KB_OK; i++) {
        if (!b->has_vector[i])
            continue;
        unsigned char id[16];
        load_uuid_parse(b->ids[i], id);
        load_copy_tuple(c, 3);
        load_copy_uuid(c, id);
        load_copy_text(c, b->hashes[i], 64);
        load_copy_vector(c, b->matrix + (size_t)i * KB_LOAD_DIM, KB_LOAD_DIM);
        rc = load_copy_maybe_flush(c, err);
    }
    if (rc != KB_OK) {
        load_copy_abort(c);
        return rc;
    }
    return load_copy_end(c, n_staged, err);
}

/* One UPDATE ... FROM the staging table; $1 project, $2 model.  The hash
 * re-computed in the WHERE is the guard against an edit since the read. */
static const char *update_sql(enum load_backfill_table t)
{
    if (t == LOAD_BACKFILL_CHUNKS)
        return "WITH u AS (UPDATE knowledge_chunks c SET embedding = s.embedding,"
               "   content_hash = s.content_hash,"
               "   metadata = c.metadata || jsonb_build_object('embedding_model', $2::text)"
               "  FROM kb_backfill_stage s"
               "  WHERE c.id = s.id AND c.project_id = $1::uuid"
               "    AND encode(sha256(convert_to(c.content, 'UTF8')), 'hex') = s.content_hash"
               "  RETURNING 1) SELECT count(*) FROM u";
    return "WITH u AS (UPDATE learnings l SET embedding = s.embedding,"
           "   metadata = l.metadata || jsonb_build_object('content_hash', s.content_hash,"
           "                                               'embedding_model', $2::text)"
           "  FROM kb_backfill_stage s"
           "  WHERE l.id = s.id AND l.project_id = $1::uuid"
           "    AND encode(sha256(convert_to(l.title || E'\\n\\n' || l.content, 'UTF8')), 'hex')"
           "        = s.content_hash"
           "  RETURNING 1) SELECT count(*) FROM u";
}

/* See load.h. */
enum kb_code load_backfill_write(struct load_backfill *b, struct kb_err *err)
{
    int n_ready = 0;
    for (int i = 0; i < b->n; i++)
        n_ready += b->has_vector[i] != 0;
    if (n_ready == 0)
        return KB_OK;
    long n_staged = 0, n_updated = 0;
    enum kb_code rc = db_begin(b->conn, err);
    if (rc == KB_OK)
        rc = stage_rows(b, &n_staged, err);
    /* a kill here (KBPIPE_FAULT=load.backfill:N:kill) loses this batch only */
    if (rc == KB_OK && kb_fault("load.backfill"))
        rc = KB_FAIL(err, KB_E_DB, NULL, "fault injected at load.backfill");
    if (rc == KB_OK) {
        const char *p[] = { b->project_id, b->model };
        struct db_rows *rows;
        rc = db_exec(b->conn, update_sql(b->table), 2, p, &rows, err);
        if (rc == KB_OK) {
            n_updated = atol(db_rows_get(rows, 0, 0));
            db_rows_free(rows);
        }
    }
    if (rc == KB_OK)
        rc = db_commit(b->conn, err);
    if (rc != KB_OK) {
        db_rollback(b->conn);
        kb_err_prefix(err, "batch of %d row(s) not written (those rows are as before it)",
                      n_ready);
        return rc;
    }
    b->counts.updated += n_updated;
    b->counts.edited += n_staged - n_updated;
    b->counts.batches++;
    return KB_OK;
}

/* See load.h. */
enum kb_code load_project_models(struct db_conn *conn, const char *project, char *out,
                                 size_t out_len, int *n_models, struct kb_err *err)
{
    char *project_id;
    enum kb_code rc = db_project_check(conn, project, BACKFILL_COMMAND, &project_id, err);
    if (rc != KB_OK)
        return rc;
    const char *p[] = { project_id };
    struct db_rows *rows;
    rc = db_exec(conn,
                 "SELECT coalesce(string_agg(DISTINCT model, ', ' ORDER BY model), ''),"
                 "       count(DISTINCT model)"
                 " FROM kbpipe_embedding_models WHERE project_id = $1::uuid",
                 1, p, &rows, err);
    free(project_id);
    if (rc != KB_OK)
        return rc;
    snprintf(out, out_len, "%s", db_rows_get(rows, 0, 0));
    *n_models = atoi(db_rows_get(rows, 0, 1));
    db_rows_free(rows);
    return KB_OK;
}
