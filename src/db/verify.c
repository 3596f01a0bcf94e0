/*
 * verify.c - checks that the live schema still has what kbpipe relies on
 * beyond the migration files themselves.  Today: the HNSW indexes on
 * knowledge_chunks.embedding and learnings.embedding, which a bulk load
 * drops and rebuilds (src/load, index strategy "auto"); a load killed
 * between the two leaves the table without its index, and this finds it.
 * A missing embedding column (dropped along with the vector extension) is
 * named as such, not blamed on a load.  The full-text (GIN) index on
 * knowledge_chunks.search_tsv, which the same load drops beside the HNSW
 * index, is checked and rebuilt through its kbpipe_dropped_indexes note.
 * A search_tsv column (migration 008) with no valid GIN index among whose
 * columns it is, whatever the index's name, and no note either (the index
 * was dropped outside a load), is reported too, after the HNSW indexes and
 * the notes, and rebuilt from migration 008's definition.
 */
#include "db/db_int.h"

#include <stdlib.h>
#include <string.h>

static const char *const vector_tables[] = { "knowledge_chunks", "learnings" };

/* the dimension of the embedding columns (migrations/005) */
#define KB_EMBED_DIM_DB 1536

/* What the live schema has of `table`'s embedding: the table (in the
 * current schema path), its embedding column, a valid HNSW index on it. */
struct vector_state { int has_table, has_column, has_index; };

static enum kb_code vector_state_read(struct db_conn *conn, const char *table,
                                      struct vector_state *st, struct kb_err *err)
{
    const char *p[] = { table };
    struct db_rows *rows;
    enum kb_code rc = db_exec(conn,
        "SELECT to_regclass($1) IS NOT NULL, EXISTS ("
        "  SELECT 1 FROM pg_attribute a WHERE a.attrelid = to_regclass($1)"
        "  AND a.attname = 'embedding' AND NOT a.attisdropped), EXISTS ("
        "  SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        "  JOIN pg_am am ON am.oid = c.relam"
        "  WHERE i.indrelid = to_regclass($1) AND am.amname = 'hnsw' AND i.indisvalid)",
        1, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    st->has_table = strcmp(db_rows_get(rows, 0, 0), "t") == 0;
    st->has_column = strcmp(db_rows_get(rows, 0, 1), "t") == 0;
    st->has_index = strcmp(db_rows_get(rows, 0, 2), "t") == 0;
    db_rows_free(rows);
    return KB_OK;
}

/* 1 when `table` exists with its embedding column and lacks an HNSW index. */
static enum kb_code hnsw_missing(struct db_conn *conn, const char *table, int *missing,
                                 struct kb_err *err)
{
    struct vector_state st;
    enum kb_code rc = vector_state_read(conn, table, &st, err);
    *missing = rc == KB_OK && st.has_table && st.has_column && !st.has_index;
    return rc;
}

/* The notes of kbpipe_dropped_indexes for indexes other than HNSW (the
 * full-text index a load drops beside it) whose index does not exist:
 * rows of (index_name, indexdef, table_name).  Fails without a message
 * when there is no note table (migrations before 006). */
static enum kb_code other_notes(struct db_conn *conn, struct db_rows **rows)
{
    struct kb_err ignored;
    *rows = NULL;
    return db_exec(conn,
                   "SELECT index_name, indexdef, table_name FROM kbpipe_dropped_indexes"
                   " WHERE indexdef NOT LIKE '% USING hnsw %'"
                   "   AND to_regclass(quote_ident(index_name)) IS NULL ORDER BY index_name",
                   0, NULL, rows, &ignored);
}

/* 1 when `table` has its search_tsv column (migration 008) and no valid GIN
 * index has that column among its keys, whatever the index's name; 0 for a
 * missing table or column (migrations before 008). */
static enum kb_code gin_missing(struct db_conn *conn, const char *table, int *missing,
                                struct kb_err *err)
{
    const char *p[] = { table };
    struct db_rows *rows;
    *missing = 0;
    enum kb_code rc = db_exec(conn,
        "SELECT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = to_regclass($1)"
        "  AND a.attname = 'search_tsv' AND NOT a.attisdropped AND NOT EXISTS ("
        "    SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        "    JOIN pg_am am ON am.oid = c.relam"
        "    WHERE i.indrelid = a.attrelid AND am.amname = 'gin' AND i.indisvalid"
        "    AND a.attnum = ANY (i.indkey)))",
        1, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    *missing = strcmp(db_rows_get(rows, 0, 0), "t") == 0;
    db_rows_free(rows);
    return KB_OK;
}

/* 1 when one of `notes` (rows of other_notes, may be NULL) is a GIN index on
 * `table`'s search_tsv: that note already names the missing index. */
static int gin_noted(const struct db_rows *notes, const char *table)
{
    int n = notes != NULL ? db_rows_count(notes) : 0;
    for (int r = 0; r < n; r++) {
        const char *def = db_rows_get(notes, r, 1);
        if (strcmp(db_rows_get(notes, r, 2), table) == 0 && strstr(def, " USING gin ") != NULL &&
            strstr(def, "search_tsv") != NULL)
            return 1;
    }
    return 0;
}

enum kb_code db_schema_verify(struct db_conn *conn, FILE *out, struct kb_err *err)
{
    int n_missing = 0;
    const char *first = NULL;
    for (size_t i = 0; i < sizeof vector_tables / sizeof vector_tables[0]; i++) {
        struct vector_state st;
        enum kb_code rc = vector_state_read(conn, vector_tables[i], &st, err);
        if (rc != KB_OK)
            return rc;
        if (st.has_table && !st.has_column) {
            /* DROP EXTENSION vector CASCADE takes the column (and its index) along */
            fprintf(out, "%s: the embedding column is missing\n", vector_tables[i]);
            return KB_FAIL(err, KB_E_DB, NULL,
                           "%s has no embedding column: it was dropped with the vector "
                           "extension (DROP EXTENSION vector CASCADE); add it back with ALTER "
                           "TABLE %s ADD COLUMN embedding vector(%d), then run "
                           "'kbpipe migrate verify --repair' and the pipelines with --full",
                           vector_tables[i], vector_tables[i], KB_EMBED_DIM_DB);
        }
        if (st.has_table && !st.has_index) {
            fprintf(out, "%s: the HNSW index on embedding is missing (a load was "
                         "interrupted after dropping it)\n", vector_tables[i]);
            if (!n_missing++)
                first = vector_tables[i];
        }
    }
    struct db_rows *notes = NULL;
    if (other_notes(conn, &notes) != KB_OK)
        notes = NULL;   /* no note table: migrations before 006 */
    int n_notes = notes != NULL ? db_rows_count(notes) : 0;
    for (int r = 0; r < n_notes; r++)
        fprintf(out, "%s: the index %s is missing (a load was interrupted after "
                     "dropping it)\n", db_rows_get(notes, r, 2), db_rows_get(notes, r, 0));
    /* a full-text index dropped outside a load: no note names it */
    int n_gin = 0;
    const char *first_gin = NULL;
    for (size_t i = 0; i < sizeof vector_tables / sizeof vector_tables[0]; i++) {
        int missing = 0;
        enum kb_code rc = gin_missing(conn, vector_tables[i], &missing, err);
        if (rc != KB_OK) {
            db_rows_free(notes);
            return rc;
        }
        if (!missing || gin_noted(notes, vector_tables[i]))
            continue;
        fprintf(out, "%s: the full-text (GIN) index on search_tsv is missing "
                     "(idx_%s_search_tsv of migration 008, dropped outside a load); every "
                     "text search scans the table\n", vector_tables[i], vector_tables[i]);
        if (!n_gin++)
            first_gin = vector_tables[i];
    }
    enum kb_code rc = KB_OK;
    if (n_missing)
        rc = KB_FAIL(err, KB_E_DB, NULL,
                     "%s has no HNSW index on embedding; the next 'kbpipe run' rebuilds "
                     "it, or run 'kbpipe migrate verify --repair'", first);
    else if (n_notes > 0)
        rc = KB_FAIL(err, KB_E_DB, NULL,
                     "%s has no index %s (a load dropped it); the next 'kbpipe run' rebuilds "
                     "it, or run 'kbpipe migrate verify --repair'",
                     db_rows_get(notes, 0, 2), db_rows_get(notes, 0, 0));
    else if (n_gin > 0)
        rc = KB_FAIL(err, KB_E_DB, NULL,
                     "%s has no GIN index on search_tsv (idx_%s_search_tsv was dropped outside "
                     "a load, so no run rebuilds it); run 'kbpipe migrate verify --repair'",
                     first_gin, first_gin);
    db_rows_free(notes);
    return rc;
}

/* The definition a bulk load recorded when it dropped the index, or NULL. */
static char *recorded_indexdef(struct db_conn *conn, const char *table)
{
    const char *p[] = { table };
    struct db_rows *rows;
    struct kb_err ignored;
    char *def = NULL;
    if (db_exec(conn,
                "SELECT indexdef FROM kbpipe_dropped_indexes WHERE table_name = $1 "
                "AND indexdef LIKE '% USING hnsw %' LIMIT 1",
                1, p, &rows, &ignored) != KB_OK)
        return NULL;   /* no such table: migrations before 006 */
    if (db_rows_count(rows) > 0 && kb_starts_with(db_rows_get(rows, 0, 0), "CREATE INDEX "))
        def = kb_xasprintf("CREATE INDEX IF NOT EXISTS %s", db_rows_get(rows, 0, 0) + 13);
    db_rows_free(rows);
    return def;
}

/* Rebuild `table`'s full-text index from migration 008's definition when
 * gin_missing finds none (run after the notes: a noted index is rebuilt
 * from its note first).  Fails naming the index when its name is taken by
 * an index that is not a valid GIN index on search_tsv. */
static enum kb_code gin_repair(struct db_conn *conn, const char *table, struct kb_err *err)
{
    int missing = 0;
    enum kb_code rc = gin_missing(conn, table, &missing, err);
    if (rc != KB_OK || !missing)
        return rc;
    char *idx_name = kb_xasprintf("idx_%s_search_tsv", table);
    char *idx = db_ident(conn, idx_name);
    char *tbl = db_ident(conn, table);
    char *sql = kb_xasprintf("CREATE INDEX IF NOT EXISTS %s ON %s USING gin (search_tsv)", idx,
                             tbl);
    log_info("rebuilding the full-text index %s on %s", idx_name, table);
    rc = db_exec(conn, "SET maintenance_work_mem = '512MB'", 0, NULL, NULL, err);
    if (rc == KB_OK)
        rc = db_exec(conn, sql, 0, NULL, NULL, err);
    if (rc == KB_OK)
        rc = gin_missing(conn, table, &missing, err);
    if (rc == KB_OK && missing)   /* IF NOT EXISTS found the name taken */
        rc = KB_FAIL(err, KB_E_DB, NULL,
                     "cannot rebuild the full-text index of %s: an index named %s exists but "
                     "is not a valid GIN index on %s.search_tsv (an interrupted CREATE INDEX "
                     "CONCURRENTLY leaves one invalid); DROP INDEX %s, then run 'kbpipe "
                     "migrate verify --repair' again",
                     table, idx_name, table, idx);
    free(sql);
    free(tbl);
    free(idx);
    free(idx_name);
    return rc;
}

enum kb_code db_schema_repair(struct db_conn *conn, struct kb_err *err)
{
    for (size_t i = 0; i < sizeof vector_tables / sizeof vector_tables[0]; i++) {
        int missing = 0;
        enum kb_code rc = hnsw_missing(conn, vector_tables[i], &missing, err);
        if (rc != KB_OK)
            return rc;
        if (!missing)
            continue;
        char *sql = recorded_indexdef(conn, vector_tables[i]);
        if (sql == NULL) {
            char *table = db_ident(conn, vector_tables[i]);
            char *idx_name = kb_xasprintf("idx_%s_embedding", vector_tables[i]);
            char *idx = db_ident(conn, idx_name);
            sql = kb_xasprintf("CREATE INDEX IF NOT EXISTS %s ON %s USING hnsw "
                               "(embedding vector_cosine_ops)", idx, table);
            free(idx);
            free(idx_name);
            free(table);
        }
        log_info("rebuilding the HNSW index on %s", vector_tables[i]);
        const char *p[] = { vector_tables[i] };
        rc = db_exec(conn, "SET maintenance_work_mem = '512MB'", 0, NULL, NULL, err);
        if (rc == KB_OK)
            rc = db_exec(conn, sql, 0, NULL, NULL, err);
        if (rc == KB_OK) {
            struct kb_err ignored;   /* the note table may not exist */
            db_exec(conn, "DELETE FROM kbpipe_dropped_indexes WHERE table_name = $1 "
                          "AND indexdef LIKE '% USING hnsw %'", 1, p, NULL, &ignored);
        }
        free(sql);
        if (rc != KB_OK)
            return rc;
    }
    /* the other indexes a load dropped (the full-text index), from their notes */
    struct db_rows *notes = NULL;
    if (other_notes(conn, &notes) != KB_OK)
        notes = NULL;   /* no note table: migrations before 006 */
    enum kb_code rc = KB_OK;
    for (int r = 0; rc == KB_OK && notes != NULL && r < db_rows_count(notes); r++) {
        const char *def = db_rows_get(notes, r, 1);
        if (!kb_starts_with(def, "CREATE INDEX ")) {
            rc = KB_FAIL(err, KB_E_DB, NULL,
                         "kbpipe_dropped_indexes has an unexpected definition for %s: '%.80s'; "
                         "create the index by hand and delete the note",
                         db_rows_get(notes, r, 0), def);
            break;
        }
        log_info("rebuilding the index %s on %s", db_rows_get(notes, r, 0),
                 db_rows_get(notes, r, 2));
        char *sql = kb_xasprintf("CREATE INDEX IF NOT EXISTS %s", def + 13);
        rc = db_exec(conn, "SET maintenance_work_mem = '512MB'", 0, NULL, NULL, err);
        if (rc == KB_OK)
            rc = db_exec(conn, sql, 0, NULL, NULL, err);
        free(sql);
        const char *p[] = { db_rows_get(notes, r, 0) };
        if (rc == KB_OK)
            rc = db_exec(conn, "DELETE FROM kbpipe_dropped_indexes WHERE index_name = $1", 1, p,
                         NULL, err);
    }
    db_rows_free(notes);
    /* then a full-text index dropped outside a load (no note) */
    for (size_t i = 0; rc == KB_OK && i < sizeof vector_tables / sizeof vector_tables[0]; i++)
        rc = gin_repair(conn, vector_tables[i], err);
    return rc;
}
