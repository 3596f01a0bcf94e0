/*
 * state.c - the marks a source keeps between runs, in kbpipe_source_state
 * (migration 011): key/value strings per (project, pipeline, source name).
 * An API source's reader reports them (ingest.h, "source state"); the run
 * reads them before the source and writes them, in one transaction, only
 * once the run succeeded, so a failed or partial run leaves the old marks
 * and the next run asks again for the same changes.
 */
#include "load/load_int.h"

#include <stdlib.h>
#include <string.h>

enum kb_code load_state_read(struct db_conn *conn, const char *project_id, const char *pipeline,
                             const char *source,
                             void (*fn)(void *arg, const char *key, const char *value),
                             void *arg, struct kb_err *err)
{
    if (project_id == NULL)
        return KB_OK;   /* a dry run before the project exists: nothing stored */
    const char *p[] = { project_id, pipeline, source };
    struct db_rows *rows;
    enum kb_code rc = db_exec(conn, "SELECT key, value FROM kbpipe_source_state "
                              "WHERE project_id = $1 AND pipeline = $2 AND source_name = $3 "
                              "ORDER BY key", 3, p, &rows, err);
    if (rc != KB_OK) {
        kb_err_prefix(err, "reading the marks of source %s (is migration 011 applied? run "
                      "kbpipe migrate up)", source);
        return rc;
    }
    for (int i = 0; i < db_rows_count(rows); i++)
        fn(arg, db_rows_get(rows, i, 0), db_rows_get(rows, i, 1));
    db_rows_free(rows);
    return KB_OK;
}

enum kb_code load_state_write(struct db_conn *conn, const char *project_id, const char *pipeline,
                              const struct load_marks *m, struct kb_err *err)
{
    if (project_id == NULL || m->n == 0)
        return KB_OK;
    enum kb_code rc = db_begin(conn, err);
    for (int i = 0; i < m->n && rc == KB_OK; i++) {
        const char *p[] = { project_id, pipeline, m->source[i], m->key[i], m->value[i] };
        if (m->value[i][0] == '\0')   /* "" takes the mark away */
            rc = db_exec(conn, "DELETE FROM kbpipe_source_state WHERE project_id = $1 AND "
                         "pipeline = $2 AND source_name = $3 AND key = $4", 4, p, NULL, err);
        else
            rc = db_exec(conn, "INSERT INTO kbpipe_source_state AS s (project_id, pipeline, "
                         "source_name, key, value) VALUES ($1, $2, $3, $4, $5) "
                         "ON CONFLICT (project_id, pipeline, source_name, key) DO UPDATE "
                         "SET value = EXCLUDED.value, updated_at = now() "
                         "WHERE s.value IS DISTINCT FROM EXCLUDED.value", 5, p, NULL, err);
    }
    if (rc == KB_OK)
        return db_commit(conn, err);
    db_rollback(conn);
    kb_err_prefix(err, "storing the sources' marks (the next run fetches the same changes "
                  "again)");
    return rc;
}

void load_marks_add(struct load_marks *m, const char *source, const char *key,
                    const char *value)
{
    size_t n = (size_t)m->n + 1;
    m->source = kb_xrealloc(m->source, n * sizeof *m->source);
    m->key = kb_xrealloc(m->key, n * sizeof *m->key);
    m->value = kb_xrealloc(m->value, n * sizeof *m->value);
    m->source[m->n] = kb_xstrdup(source);
    m->key[m->n] = kb_xstrdup(key);
    m->value[m->n] = kb_xstrdup(value);
    m->n++;
}

void load_marks_release(struct load_marks *m)
{
    for (int i = 0; i < m->n; i++) {
        free(m->source[i]);
        free(m->key[i]);
        free(m->value[i]);
    }
    free(m->source);
    free(m->key);
    free(m->value);
    memset(m, 0, sizeof *m);
}
