/*
 * query.c - the SQL of `kbpipe search`, through src/db: the project's id,
 * the models its rows were embedded with, and the search itself with its
 * log row and --use counts in one transaction, so the log never names
 * results that were not shown.  HNSW with a project filter may find fewer
 * than k rows among its ef_search candidates, so the transaction raises
 * hnsw.ef_search to k and, where pgvector has it (>= 0.8), turns on
 * hnsw.iterative_scan (docs/schema.md).
 */
#include <stdlib.h>
#include <string.h>

#include "search_int.h"

/* See search_int.h. */
enum kb_code search_survey_models(struct db_conn *conn, const struct search_args *a,
                                  const char *project_id, struct db_rows **rows_out,
                                  struct kb_err *err)
{
    const char *sql = a->is_learnings
        ? "SELECT metadata->>'embedding_model', count(*) FROM learnings"
          " WHERE project_id = $1 AND embedding IS NOT NULL"
          "   AND ($2::text IS NULL OR category = $2)"
          " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 6"
        : "SELECT metadata->>'embedding_model', count(*) FROM knowledge_chunks"
          " WHERE project_id = $1 AND embedding IS NOT NULL"
          " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 6";
    const char *p[] = { project_id, a->category };
    return db_exec(conn, sql, a->is_learnings ? 2 : 1, p, rows_out, err);
}

/* See search_int.h. */
enum kb_code search_run(struct db_conn *conn, const struct search_args *a,
                        const char *project_id, const char *model, const char *vec,
                        struct db_rows **rows_out, struct hit **hits_out, struct kb_err *err)
{
    enum kb_code rc = db_begin(conn, err);
    if (rc != KB_OK)
        return rc;
    /* the cast loads pgvector first, so current_setting sees its parameters */
    struct db_rows *g = NULL;
    char ef[16];
    snprintf(ef, sizeof ef, "%d", a->k > 40 ? a->k : 40);
    const char *pg[] = { ef };
    rc = db_exec(conn, "SELECT '[1]'::vector IS NOT NULL,"
                       " current_setting('hnsw.iterative_scan', true) IS NOT NULL", 0, NULL,
                 &g, err);
    if (rc == KB_OK)
        rc = db_exec(conn, strcmp(db_rows_get(g, 0, 1), "t") == 0
                     ? "SELECT set_config('hnsw.ef_search', $1, true),"
                       " set_config('hnsw.iterative_scan', 'relaxed_order', true)"
                     : "SELECT set_config('hnsw.ef_search', $1, true)", 1, pg, NULL, err);
    db_rows_free(g);

    char k[16], minsim[32];
    snprintf(k, sizeof k, "%d", a->k);
    snprintf(minsim, sizeof minsim, "%.17g", a->min_similarity);
    struct db_rows *rows = NULL;
    if (a->is_learnings) {
        const char *p[] = { vec, project_id, a->category, k, minsim };
        if (rc == KB_OK)
            rc = db_exec(conn,
                         "SELECT r.learning_id, r.similarity, r.title, NULL, NULL, r.content,"
                         " r.learning_type, r.category, r.confidence_score"
                         " FROM search_learnings($1::vector, $2::uuid, $3::text, $4::int,"
                         "                       $5::float8) r"
                         " ORDER BY r.similarity DESC, r.learning_id", 5, p, &rows, err);
    } else {
        const char *p[] = { vec, project_id, k, minsim };
        if (rc == KB_OK)
            rc = db_exec(conn,
                         "SELECT r.chunk_id, r.similarity, s.title,"
                         " coalesce(s.file_path, s.source_id), r.metadata->>'heading_path',"
                         " r.content, c.chunk_index, s.source_type, s.source_id, s.id, s.url"
                         " FROM search_knowledge_chunks($1::vector, $2::uuid, $3::int,"
                         "                              $4::float8) r"
                         " JOIN knowledge_sources s ON s.id = r.source_id"
                         " JOIN knowledge_chunks c ON c.id = r.chunk_id"
                         " ORDER BY r.similarity DESC, r.chunk_id", 4, p, &rows, err);
    }
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
        h->usage_count = -1;
        if (h->title == NULL && h->path == NULL)
            h->title = h->id;
    }

    /* the log: top_result_id refers to knowledge_chunks, so a learning goes in metadata */
    if (rc == KB_OK) {
        json_t *filters = json_pack("{s:i, s:f}", "k", a->k, "min_similarity", a->min_similarity);
        if (a->category)
            json_object_set_new(filters, "category", search_json_text(a->category));
        json_t *meta = json_pack("{s:s, s:s}", "client", "kbpipe search",
                                 "embedding_model", model);
        if (a->is_learnings && n > 0)
            json_object_set_new(meta, "top_learning_id", search_json_text(hits[0].id));
        char *fj = json_dumps(filters, JSON_COMPACT), *mj = json_dumps(meta, JSON_COMPACT);
        char count[16], top_sim[32];
        snprintf(count, sizeof count, "%d", n);
        snprintf(top_sim, sizeof top_sim, "%s", n > 0 ? db_rows_get(rows, 0, 1) : "");
        const char *p[] = { project_id, a->query, vec,
                            a->is_learnings ? "learnings" : "knowledge", count,
                            n > 0 && !a->is_learnings ? hits[0].id : NULL,
                            n > 0 ? top_sim : NULL, fj, mj };
        rc = db_exec(conn,
                     "INSERT INTO search_queries (project_id, query_text, query_embedding,"
                     " search_type, result_count, top_result_id, top_result_similarity,"
                     " filters, metadata)"
                     " VALUES ($1::uuid, $2, $3::vector, $4, $5::int, $6::uuid, $7::float8,"
                     "         $8::jsonb, $9::jsonb)", 9, p, NULL, err);
        free(fj);
        free(mj);
        json_decref(filters);
        json_decref(meta);
    }
    for (int i = 0; rc == KB_OK && a->is_use && i < n; i++) {
        struct db_rows *u;
        const char *p[] = { hits[i].id };
        rc = db_exec(conn, "SELECT increment_learning_usage($1::uuid)", 1, p, &u, err);
        if (rc == KB_OK)
            hits[i].usage_count = atoi(db_rows_get(u, 0, 0));
        db_rows_free(u);
    }
    if (rc == KB_OK)
        rc = db_commit(conn, err);
    if (rc != KB_OK) {
        db_rollback(conn);
        if (strstr(err->msg, "does not exist"))
            kb_err_prefix(err, "the schema is incomplete (run 'kbpipe migrate up')");
        db_rows_free(rows);
        free(hits);
        return rc;
    }
    *rows_out = rows;
    *hits_out = hits;
    return KB_OK;
}

/* See search_int.h. */
enum kb_code search_find_project(struct db_conn *conn, const char *name, char id_out[40],
                                 struct kb_err *err)
{
    struct db_rows *rows;
    const char *p[] = { name };
    enum kb_code rc = db_exec(conn,
        "SELECT (SELECT id FROM projects WHERE name = $1),"
        " (SELECT string_agg(name, ', ' ORDER BY name) FROM"
        "   (SELECT name FROM projects ORDER BY name LIMIT 6) n), (SELECT count(*) FROM projects)",
        1, p, &rows, err);
    if (rc != KB_OK) {
        if (strstr(err->msg, "does not exist"))
            kb_err_prefix(err, "the schema is incomplete (run 'kbpipe migrate up')");
        return rc;
    }
    if (db_rows_isnull(rows, 0, 0)) {
        long n = atol(db_rows_get(rows, 0, 2));
        rc = n == 0
            ? KB_FAIL(err, KB_E_INPUT, NULL, "no project named '%.60s': the database has no "
                      "projects yet; load one with 'kbpipe run PIPELINE.yaml'", name)
            : KB_FAIL(err, KB_E_INPUT, NULL, "no project named '%.60s'; the projects are: "
                      "%.200s%s ('kbpipe stats' lists them all)", name, db_rows_get(rows, 0, 1),
                      n > 6 ? ", ..." : "");
    } else {
        snprintf(id_out, 40, "%s", db_rows_get(rows, 0, 0));
    }
    db_rows_free(rows);
    return rc;
}
