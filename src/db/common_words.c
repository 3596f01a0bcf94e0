/*
 * common_words.c - keeping a project's common words, the statistic the
 * search's text leg leaves out of its OR form (migration 018,
 * kbpipe_common_lexemes; docs/search.md, "Common words").  `kbpipe run`
 * calls it after a run that wrote or deleted rows of the project, `kbpipe
 * delete` after its deletions: the words found in more than a fifth of a
 * sample of the project's rows (the first 2,000 by id), recomputed by
 * kbpipe_refresh_common_lexemes in the server.
 */
#include "db/db_int.h"

#include <string.h>

/* See db.h. */
enum kb_code db_common_words_refresh(struct db_conn *conn, const char *project, int is_chunks,
                                     int is_learnings, struct kb_err *err)
{
    if (!is_chunks && !is_learnings)
        return KB_OK;
    const char *p[] = { project, is_chunks ? "true" : "false", is_learnings ? "true" : "false" };
    struct db_rows *rows;
    enum kb_code rc = db_exec(conn,
                              "SELECT CASE WHEN $2::bool THEN"
                              "         kbpipe_refresh_common_lexemes(p.id, 'chunks') END,"
                              "       CASE WHEN $3::bool THEN"
                              "         kbpipe_refresh_common_lexemes(p.id, 'learnings') END"
                              "  FROM projects p WHERE p.name = $1",
                              3, p, &rows, err);
    if (rc != KB_OK && strcmp(db_conn_sqlstate(conn), "42883") == 0) {
        /* undefined_function: a schema before migration 018; what was
         * written is stored, only the search's statistic is not kept */
        log_warn("project '%s': the schema has no kbpipe_refresh_common_lexemes (migration "
                 "018), so search keeps no list of its common words; run 'kbpipe migrate up'",
                 project);
        return KB_OK;
    }
    if (rc != KB_OK) {
        /* a statistic, not data: what the caller wrote stays, and so does
         * its outcome (a delete still prints what is gone) */
        log_warn("project '%s': its common words were not recomputed (%s); the data are "
                 "stored, and the next run that writes recomputes them", project, err->msg);
        *err = (struct kb_err){ 0 };
        return KB_OK;
    }
    if (db_rows_count(rows) > 0)
        log_info("project '%s': common words recomputed (chunks %s, learnings %s)", project,
                 db_rows_isnull(rows, 0, 0) ? "-" : db_rows_get(rows, 0, 0),
                 db_rows_isnull(rows, 0, 1) ? "-" : db_rows_get(rows, 0, 1));
    db_rows_free(rows);
    return KB_OK;
}
