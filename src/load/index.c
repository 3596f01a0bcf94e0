/*
 * index.c - the index strategy for knowledge_chunks: its HNSW index on
 * embedding and its full-text index on search_tsv.
 *
 * Inserting into a live HNSW index costs far more per row than building the
 * index once after the load (DESIGN.md measured 10,000 rows of 1536 dims: 66 s
 * into an indexed table; 0.75 s + 11.5 s with the index built after).  So:
 *
 *   keep     always insert into the live index;
 *   rebuild  drop it before the first batch, rebuild after the load;
 *   auto     drop it before the first batch when the whole load's rows
 *            (the exact count when the scan is over, else the look-ahead's
 *            estimate, load_session_expect_rows; else the rows written so
 *            far plus this batch) are at least rebuild_min_rows (default
 *            1000) and more than rebuild_ratio (default 0.2) x the rows the
 *            table had when the run began; otherwise keep it
 *            (docs/loading.md gives the measurement behind the defaults);
 *            but never while other projects hold more than
 *            keep_for_other_rows (default 10,000) rows of the table: the
 *            index is the table's, and without it their searches scan
 *            (docs/loading.md, "The index and other projects", measures it).
 *
 * The indexes it drops and rebuilds: every HNSW index of the table and the
 * full-text (GIN) index on search_tsv (idx_knowledge_chunks_search_tsv,
 * migrations/008): a live GIN index costs the load more than building it
 * once after (bench/gin.sh: even at 20,000 chunks, 1.30x at 100,000;
 * docs/loading.md, "The full-text index").  Both go together, under the
 * same rule, so other projects keep their text search as they keep their
 * vector search.  learnings' indexes are never dropped (its load does not
 * use the strategy).
 *
 * The drop happens inside a batch's transaction and records the index's
 * definition in kbpipe_dropped_indexes in that same transaction, so a run
 * killed before the rebuild leaves a note the next run (and `kbpipe migrate
 * verify`) acts on; the rebuild deletes the note in its own transaction.
 */
#include "load/load_int.h"

#include <stdlib.h>
#include <string.h>

/* The exact counts (all rows, other projects' rows), taken once, before
 * this run's first row is written. */
static enum kb_code rows_at_start(struct load_session *s, struct kb_err *err)
{
    if (s->rows_at_start >= 0)
        return KB_OK;
    log_debug("index strategy auto: counting the rows of knowledge_chunks");
    struct db_rows *rows;
    const char *p[] = { s->project_id };
    enum kb_code rc = db_exec(s->conn,
                              "SELECT count(*), count(*) FILTER (WHERE project_id <> $1) "
                              "FROM knowledge_chunks", 1, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    s->rows_at_start = atol(db_rows_get(rows, 0, 0));
    s->rows_of_others = atol(db_rows_get(rows, 0, 1));
    db_rows_free(rows);
    return KB_OK;
}

enum kb_code load_index_before_copy(struct load_session *s, long incoming, struct kb_err *err)
{
    if (s->index_dropped || incoming == 0 || s->opts.index_strategy == LOAD_INDEX_KEEP)
        return KB_OK;
    int is_auto = s->opts.index_strategy == LOAD_INDEX_AUTO;
    /* only auto weighs the load against the table: rebuild drops the index
     * whatever the counts, so it never counts the whole table */
    enum kb_code rc = is_auto ? rows_at_start(s, err) : KB_OK;
    if (rc != KB_OK)
        return rc;
    long after = s->rows_written + incoming;
    if (s->rows_expected > after)
        after = s->rows_expected;   /* decide on the whole load, not the first batches */
    if (is_auto && (after < s->opts.rebuild_min_rows ||
                    (double)after <= s->opts.rebuild_ratio * (double)s->rows_at_start))
        return KB_OK;
    if (is_auto && s->rows_of_others > s->opts.keep_for_other_rows) {
        if (!s->is_index_kept_logged)
            log_info("keeping the HNSW index and the full-text index for the load: other "
                     "projects hold %ld rows and search through them (docs/loading.md, \"The "
                     "index and other projects\")",
                     s->rows_of_others);
        s->is_index_kept_logged = 1;
        return KB_OK;
    }
    char run_id[32];
    snprintf(run_id, sizeof run_id, "%ld", s->run_id);
    const char *p[] = { run_id };
    struct db_rows *rows;
    /* remember, then drop, every HNSW index on the table and every GIN
     * index on search_tsv (the full-text index) */
    rc = db_exec(s->conn,
        "INSERT INTO kbpipe_dropped_indexes (index_name, table_name, indexdef, run_id)"
        " SELECT c.relname, 'knowledge_chunks', pg_get_indexdef(c.oid), $1::bigint"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_am am ON am.oid = c.relam"
        " WHERE i.indrelid = 'knowledge_chunks'::regclass AND (am.amname = 'hnsw'"
        "   OR (am.amname = 'gin' AND EXISTS (SELECT 1 FROM pg_attribute a"
        "       WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
        "         AND a.attname = 'search_tsv')))"
        " ON CONFLICT (index_name) DO NOTHING"
        " RETURNING index_name, CASE WHEN indexdef LIKE '% USING hnsw %' THEN 'HNSW'"
        "                            ELSE 'full-text' END",
        1, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    for (int r = 0; r < db_rows_count(rows) && rc == KB_OK; r++) {
        char *ident = db_ident(s->conn, db_rows_get(rows, r, 0));
        char *sql = kb_xasprintf("DROP INDEX %s", ident);
        rc = db_exec(s->conn, sql, 0, NULL, NULL, err);
        if (is_auto)
            log_info("dropped %s index %s for the load (%ld incoming rows, %ld in the "
                     "table); it is rebuilt when the run ends", db_rows_get(rows, r, 1),
                     db_rows_get(rows, r, 0), after, s->rows_at_start);
        else
            log_info("dropped %s index %s for the load (index_strategy rebuild, %ld "
                     "incoming rows); it is rebuilt when the run ends",
                     db_rows_get(rows, r, 1), db_rows_get(rows, r, 0), after);
        free(sql);
        free(ident);
    }
    db_rows_free(rows);
    if (rc == KB_OK)
        s->index_dropped = 1;
    return rc;
}

/* See load.h. */
int load_session_is_rebuilding(const struct load_session *s)
{
    return s != NULL && s->is_rebuilding;
}

/* See load.h. */
void load_session_rebuild_steps(const struct load_session *s, int *done, int *total)
{
    *done = s ? s->rebuild_done : 0;
    *total = s ? s->rebuild_total : 0;
}

enum kb_code load_index_rebuild(struct load_session *s, struct kb_err *err)
{
    s->is_rebuilding = 1;   /* until the end: the progress line polls meanwhile */
    enum kb_code rc = db_begin(s->conn, err);
    struct db_rows *rows = NULL;
    /* FOR UPDATE: two runs that both find the note rebuild once */
    if (rc == KB_OK)
        rc = db_exec(s->conn,
                     "SELECT index_name, indexdef FROM kbpipe_dropped_indexes "
                     "WHERE table_name = 'knowledge_chunks' FOR UPDATE",
                     0, NULL, &rows, err);
    if (rc == KB_OK)
        rc = db_exec(s->conn, "SET LOCAL maintenance_work_mem = '1GB'", 0, NULL, NULL, err);
    s->rebuild_done = 0;
    s->rebuild_total = rows ? db_rows_count(rows) : 0;
    for (int r = 0; rc == KB_OK && r < db_rows_count(rows); r++) {
        double t0 = kb_now();
        const char *def = db_rows_get(rows, r, 1);
        /* pg_get_indexdef gives "CREATE INDEX name ON ..." */
        const char *rest = kb_starts_with(def, "CREATE INDEX ") ? def + 13 : NULL;
        if (rest == NULL) {
            rc = KB_FAIL(err, KB_E_INTERNAL, NULL,
                         "internal error at load/index.c: unexpected index definition '%.80s'; "
                         "please report it", def);
            break;
        }
        char *sql = kb_xasprintf("CREATE INDEX IF NOT EXISTS %s", rest);
        rc = db_exec(s->conn, sql, 0, NULL, NULL, err);
        free(sql);
        const char *p[] = { db_rows_get(rows, r, 0) };
        if (rc == KB_OK)
            rc = db_exec(s->conn, "DELETE FROM kbpipe_dropped_indexes WHERE index_name = $1", 1,
                         p, NULL, err);
        if (rc == KB_OK) {
            s->rebuild_done++;
            log_info("rebuilt index %s in %.1f s", p[0], kb_now() - t0);
        }
    }
    db_rows_free(rows);
    if (rc == KB_OK && kb_fault("load.rebuild"))
        rc = KB_FAIL(err, KB_E_DB, NULL, "fault injected at load.rebuild");
    if (rc == KB_OK)
        rc = db_commit(s->conn, err);
    s->is_rebuilding = 0;
    if (rc != KB_OK) {
        db_rollback(s->conn);
        kb_err_prefix(err, "rebuilding the indexes the load dropped failed (the next run retries; "
                           "'kbpipe migrate verify --repair' also does)");
        return rc;
    }
    s->index_dropped = 0;
    s->counts.index_rebuilt = 1;
    return KB_OK;
}

/* See load.h. */
enum kb_code load_index_build_percent(struct db_conn *conn, int *percent, struct kb_err *err)
{
    /* pgvector's HNSW build reports tuples (loading) and blocks; whichever
     * has a total.  Only an index build on this database's vector tables. */
    struct db_rows *rows = NULL;
    enum kb_code rc = db_exec(conn,
                              "SELECT CASE WHEN tuples_total > 0 THEN 100 * tuples_done / tuples_total"
                              "            WHEN blocks_total > 0 THEN 100 * blocks_done / blocks_total"
                              "            ELSE 0 END"
                              "  FROM pg_stat_progress_create_index"
                              " WHERE datname = current_database()"
                              "   AND relid IN ('knowledge_chunks'::regclass, 'learnings'::regclass)"
                              " LIMIT 1",
                              0, NULL, &rows, err);
    *percent = -1;
    if (rc == KB_OK && db_rows_count(rows) == 1) {
        *percent = atoi(db_rows_get(rows, 0, 0));
        if (*percent > 100)
            *percent = 100;
    }
    db_rows_free(rows);
    return rc;
}
