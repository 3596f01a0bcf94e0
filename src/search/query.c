/*
 * query.c - the SQL of `kbpipe search` and `kbpipe eval`, through src/db:
 * the project's id; the ranking, one call of kbpipe_search_ranked
 * (migration 008: the vector and text legs, filters and reciprocal rank
 * fusion in the server, with pgvector's iterative HNSW scan so a selective
 * filter still yields k rows), joined here with the rows it ranks, as
 * search_hybrid_chunks and search_hybrid_learnings join them (calling the
 * ranking directly spares a new backend planning that SQL wrapper: its
 * SET clause keeps it from being inlined; docs/search.md); and for
 * search, the ranking, then its log row (with --use, and the use counts,
 * in one transaction), so the log never names results that were not shown.
 */
#include <stdlib.h>
#include <string.h>

#include "search_int.h"

/* See search_int.h. */
enum kb_code search_rank(struct db_conn *conn, const struct search_args *a,
                         const char *project_id, const char *vec, struct db_rows **rows_out,
                         struct kb_err *err)
{
    char k[16], minsim[32];
    snprintf(k, sizeof k, "%d", a->k);
    snprintf(minsim, sizeof minsim, "%.17g", a->min_similarity);
    json_t *f = search_filters_json(a);
    char *fj = json_dumps(f, JSON_COMPACT);
    json_decref(f);
    /* vector mode keeps its threshold (default 0); the fused modes have none */
    const char *p[] = { vec, a->query, project_id, k, search_mode_names[a->mode], fj,
                        a->mode == SEARCH_VECTOR ? minsim : NULL,
                        a->is_with_duplicates ? "true" : "false" };
    enum kb_code rc;
    if (a->is_learnings)
        rc = db_exec(conn,
                     "SELECT l.id, CASE WHEN $5 = 'vector' THEN f.similarity"
                     "  ELSE f.score END, l.title, NULL, NULL, l.content, l.learning_type,"
                     " l.category, l.confidence_score, NULL, NULL,"
                     " f.score, f.similarity, f.text_rank, f.vector_position, f.text_position,"
                     " NULL, l.metadata->>'duplicate_of'"
                     " FROM kbpipe_search_ranked('learnings', $1::vector, $2, $3::uuid, $4::int,"
                     "                           $5, $6::jsonb, $8::bool, 60, NULL) f"
                     " JOIN learnings l ON l.id = f.id"
                     " WHERE $7::float8 IS NULL OR f.similarity >= $7::float8"
                     " ORDER BY f.ord", 8, p, rows_out, err);
    else
        rc = db_exec(conn,
                     "SELECT c.id, CASE WHEN $5 = 'vector' THEN f.similarity"
                     "  ELSE f.score END, s.title, coalesce(s.file_path, s.source_id),"
                     " c.metadata->>'heading_path', c.content, c.chunk_index, s.source_type,"
                     " s.source_id, s.id, s.url,"
                     " f.score, f.similarity, f.text_rank, f.vector_position, f.text_position,"
                     " s.file_path, NULL"
                     " FROM kbpipe_search_ranked('chunks', $1::vector, $2, $3::uuid, $4::int,"
                     "                           $5, $6::jsonb, true, 60, NULL) f"
                     " JOIN knowledge_chunks c ON c.id = f.id"
                     " JOIN knowledge_sources s ON s.id = c.source_id"
                     " WHERE $7::float8 IS NULL OR f.similarity >= $7::float8"
                     " ORDER BY f.ord", 7, p, rows_out, err);
    free(fj);
    if (rc != KB_OK && strstr(err->msg, "does not exist"))
        kb_err_prefix(err, "the schema is older than kbpipe (run 'kbpipe migrate up')");
    return rc;
}

/* The search_queries row of a search that found n rows (hits). */
static enum kb_code log_query(struct db_conn *conn, const struct search_args *a,
                              const char *project_id, const char *model, const char *vec,
                              const struct db_rows *rows, const struct hit *hits, int n,
                              struct kb_err *err)
{
    json_t *filters = search_filters_json(a);
    json_object_set_new(filters, "k", json_integer(a->k));
    json_object_set_new(filters, "mode", json_string(search_mode_names[a->mode]));
    if (a->mode == SEARCH_VECTOR)
        json_object_set_new(filters, "min_similarity", json_real(a->min_similarity));
    if (a->is_with_duplicates)
        json_object_set_new(filters, "with_duplicates", json_true());
    json_t *meta = json_pack("{s:s, s:o, s:s}", "client", "kbpipe search", "embedding_model",
                             search_json_text(model), "target",
                             a->is_learnings ? "learnings" : "chunks");
    /* top_result_id refers to knowledge_chunks, so a learning goes in metadata */
    if (a->is_learnings && n > 0)
        json_object_set_new(meta, "top_learning_id", search_json_text(hits[0].id));
    char *fj = json_dumps(filters, JSON_COMPACT), *mj = json_dumps(meta, JSON_COMPACT);
    char count[16];
    snprintf(count, sizeof count, "%d", n);
    const char *type = a->mode == SEARCH_HYBRID ? "hybrid" : a->mode == SEARCH_TEXT ? "text"
                       : a->is_learnings ? "learnings" : "knowledge";
    const char *top_sim = n > 0 && !db_rows_isnull(rows, 0, SEARCH_COL_SIMILARITY)
                          ? db_rows_get(rows, 0, SEARCH_COL_SIMILARITY) : NULL;
    const char *p[] = { project_id, a->query, vec, type, count,
                        n > 0 && !a->is_learnings ? hits[0].id : NULL, top_sim, fj, mj };
    /* Without --use the row commits alone and need not wait for its WAL
     * flush (synchronous_commit off for this statement's transaction): a
     * server crash can lose the last queries' log rows, never make them
     * half-written, and the flush was most of the statement's time (~4-8
     * ms, docs/search.md "Cost").  With --use the counts commit with it,
     * durably. */
    enum kb_code rc = db_exec(conn,
                              a->is_use
                              ? "INSERT INTO search_queries (project_id, query_text, query_embedding,"
                                " search_type, result_count, top_result_id, top_result_similarity,"
                                " filters, metadata)"
                                " VALUES ($1::uuid, $2, $3::vector, $4, $5::int, $6::uuid,"
                                "         $7::float8, $8::jsonb, $9::jsonb)"
                              : "WITH o AS (SELECT set_config('synchronous_commit', 'off', true))"
                                " INSERT INTO search_queries (project_id, query_text, query_embedding,"
                                " search_type, result_count, top_result_id, top_result_similarity,"
                                " filters, metadata)"
                                " SELECT $1::uuid, $2, $3::vector, $4, $5::int, $6::uuid,"
                                "        $7::float8, $8::jsonb, $9::jsonb FROM o", 9, p, NULL, err);
    free(fj);
    free(mj);
    json_decref(filters);
    json_decref(meta);
    return rc;
}

/* See search_int.h. */
enum kb_code search_run(struct db_conn *conn, const struct search_args *a,
                        const char *project_id, const char *model, const char *vec,
                        struct db_rows **rows_out, struct hit **hits_out, struct kb_err *err)
{
    /* --use counts uses in the log's transaction; without it the ranking
     * (a read) and the log row (one INSERT) need none: the log is written
     * before anything is printed, and a failed INSERT prints nothing, so the
     * log still never names results that were not shown, in two round
     * trips instead of four */
    int is_txn = a->is_use;
    enum kb_code rc = is_txn ? db_begin(conn, err) : KB_OK;
    if (rc != KB_OK)
        return rc;
    struct db_rows *rows = NULL;
    rc = search_rank(conn, a, project_id, vec, &rows, err);
    int n = rows ? db_rows_count(rows) : 0;
    struct hit *hits = kb_xcalloc((size_t)n + 1, sizeof *hits);
    for (int i = 0; i < n; i++) {
        struct hit *h = &hits[i];
        h->id = db_rows_get(rows, i, 0);
        h->similarity = strtod(db_rows_get(rows, i, 1), NULL);
        h->title = db_rows_isnull(rows, i, 2) || !*db_rows_get(rows, i, 2)
                   ? NULL : db_rows_get(rows, i, 2);
        h->path = db_rows_isnull(rows, i, 3) ? NULL : db_rows_get(rows, i, 3);
        h->heading = db_rows_isnull(rows, i, 4) ? NULL : db_rows_get(rows, i, 4);
        h->content = db_rows_get(rows, i, 5);
        h->duplicate_of = db_rows_isnull(rows, i, SEARCH_COL_DUPLICATE_OF)
                          ? NULL : db_rows_get(rows, i, SEARCH_COL_DUPLICATE_OF);
        h->usage_count = -1;
        if (h->title == NULL && h->path == NULL)
            h->title = h->id;
    }
    if (rc == KB_OK)
        rc = log_query(conn, a, project_id, model, vec, rows, hits, n, err);
    /* a duplicate (shown with --with-duplicates) is never counted: its keeper
     * is the one used; the others are counted in one statement */
    struct kb_buf ids = { 0 };
    for (int i = 0; a->is_use && i < n; i++)
        if (!hits[i].duplicate_of)
            kb_buf_printf(&ids, "%s%s", ids.len ? "," : "{", hits[i].id);
    if (rc == KB_OK && ids.len) {
        kb_buf_putc(&ids, '}');
        struct db_rows *u = NULL;
        const char *p[] = { ids.data };
        rc = db_exec(conn, "SELECT u.id, increment_learning_usage(u.id)"
                           "  FROM unnest($1::uuid[]) u(id)", 1, p, &u, err);
        for (int r = 0; rc == KB_OK && r < db_rows_count(u); r++)
            for (int i = 0; i < n; i++)
                if (strcmp(hits[i].id, db_rows_get(u, r, 0)) == 0)
                    hits[i].usage_count = atoi(db_rows_get(u, r, 1));
        db_rows_free(u);
    }
    kb_buf_release(&ids);
    if (rc == KB_OK && is_txn)
        rc = db_commit(conn, err);
    if (rc != KB_OK) {
        if (is_txn)
            db_rollback(conn);
        db_rows_free(rows);
        free(hits);
        return rc;
    }
    *rows_out = rows;
    *hits_out = hits;
    return KB_OK;
}

/* See search_int.h. */
enum kb_code search_check_times(struct db_conn *conn, const struct search_args *a,
                                struct kb_err *err)
{
    const char *opts[] = { "--since", "--until" }, *values[] = { a->since, a->until };
    for (int i = 0; i < 2; i++) {
        if (values[i] == NULL)
            continue;
        const char *p[] = { values[i] };
        struct kb_err e2 = { 0 };
        if (db_exec(conn, "SELECT $1::timestamptz", 1, p, NULL, &e2) == KB_OK)
            continue;
        /* only the value's own fault is a usage error; a lost connection is not */
        if (!strstr(e2.msg, "invalid input syntax") && !strstr(e2.msg, "out of range") &&
            !strstr(e2.msg, "date/time")) {
            *err = e2;
            return e2.code;
        }
        return KB_FAIL(err, KB_E_USAGE, NULL, "%s '%.40s' is not a date or time; give one "
                           "PostgreSQL reads, e.g. 2024-05-01 or '2024-05-01 12:00+02'",
                           opts[i], values[i]);
    }
    return KB_OK;
}

/* The "no project named" message for a name that projects does not hold:
 * a second statement, on this failure path only, for the names to suggest. */
static enum kb_code project_missing(struct db_conn *conn, const char *name, struct kb_err *err)
{
    struct db_rows *rows;
    enum kb_code rc = db_exec(conn,
        "SELECT (SELECT string_agg(name, ', ' ORDER BY name) FROM"
        "        (SELECT name FROM projects ORDER BY name LIMIT 6) n),"
        "       (SELECT count(*) FROM projects)", 0, NULL, &rows, err);
    if (rc != KB_OK)
        return rc;
    long n = atol(db_rows_get(rows, 0, 1));
    rc = n == 0
        ? KB_FAIL(err, KB_E_INPUT, NULL, "no project named '%.60s': the database has no "
                  "projects yet; load one with 'kbpipe run PIPELINE.yaml'", name)
        : KB_FAIL(err, KB_E_INPUT, NULL, "no project named '%.60s'; the projects are: "
                  "%.200s%s ('kbpipe stats' lists them all)", name,
                  db_rows_get(rows, 0, 0), n > 6 ? ", ..." : "");
    db_rows_free(rows);
    return rc;
}

/* See search_int.h. */
enum kb_code search_find_project(struct db_conn *conn, const char *name, const char *target,
                                 char id_out[40], struct db_rows **rows_out, int *n_models_out,
                                 struct kb_err *err)
{
    struct db_rows *rows;
    const char *p[] = { name, target };
    *rows_out = NULL;
    *n_models_out = 0;
    /* one round trip, the connection's first (deferred, session.c): the
     * session's client_min_messages, the project and its models (an index
     * lookup in kbpipe_embedding_models).  The extension check is not
     * here: it runs only when the command fails (db_session_diagnose), so a
     * search's first statement plans no catalog query a search that works
     * does not need (docs/search.md, "The first statement") */
    enum kb_code rc = db_exec(conn,
        "SELECT p.id, m.model, m.n_rows,"
        "       set_config('client_min_messages', 'warning', false) IS NOT NULL"
        "  FROM (SELECT (SELECT id FROM projects WHERE name = $1) AS id) p"
        "  LEFT JOIN LATERAL (SELECT model, n_rows FROM kbpipe_embedding_models"
        "    WHERE project_id = p.id AND target = $2"
        "    ORDER BY n_rows DESC, model LIMIT 6) m ON true",
        2, p, &rows, err);
    if (rc != KB_OK) {
        if (strstr(err->msg, "does not exist"))
            kb_err_prefix(err, "the schema is older than kbpipe (run 'kbpipe migrate up')");
        return rc;
    }
    if (db_rows_isnull(rows, 0, 0)) {
        db_rows_free(rows);
        return project_missing(conn, name, err);
    }
    snprintf(id_out, 40, "%s", db_rows_get(rows, 0, 0));
    *n_models_out = db_rows_isnull(rows, 0, SEARCH_COL_ROWS) ? 0 : db_rows_count(rows);
    *rows_out = rows;
    return KB_OK;
}
