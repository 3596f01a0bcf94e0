/*
 * runs.c - closing the kbpipe_runs rows that dead processes left `running`.
 *
 * A run holds an advisory lock (its pipeline's, or its shard's) on its
 * connection from before its row is inserted until the row is closed, and
 * the row records that connection's server process (backend_pid, migration
 * 009) besides the client's host and pid.  A process killed with SIGKILL, an
 * OOM kill or a server stop ends that connection, and the server drops its
 * locks; so a `running` row whose backend holds no advisory lock any more
 * (or that records no backend: rows written before 009) belongs to a run
 * that can never close it, and is closed as `abandoned`.
 */
#include "db/db_int.h"

#include <stdlib.h>
#include <string.h>

/* See db.h. */
enum kb_code db_runs_has_pending(struct db_conn *conn, int *has_pending, struct kb_err *err)
{
    *has_pending = 0;
    struct db_rows *rows;
    enum kb_code rc = db_exec(conn, "SELECT to_regclass('kbpipe_pending') IS NOT NULL", 0, NULL,
                              &rows, err);
    if (rc != KB_OK)
        return rc;
    *has_pending = strcmp(db_rows_get(rows, 0, 0), "t") == 0;
    db_rows_free(rows);
    return KB_OK;
}

/* See db.h. */
enum kb_code db_runs_close_abandoned(struct db_conn *conn, const char *pipeline,
                                     int is_migrated, long *n_closed, struct kb_err *err)
{
    if (n_closed)
        *n_closed = 0;
    const char *p[] = { pipeline };
    struct db_rows *rows;
    enum kb_code rc = is_migrated ? KB_OK : db_runs_has_pending(conn, &is_migrated, err);
    if (rc != KB_OK)
        return rc;
    if (!is_migrated)
        return KB_OK;   /* no backend_pid column yet */
    /* pg_stat_activity may hide backend_start of other roles' sessions: a
     * hidden one is taken as the run's own */
    rc = db_exec(conn,
        "UPDATE kbpipe_runs r SET status = 'abandoned', finished_at = now()"
        " WHERE r.status = 'running' AND ($1::text IS NULL OR r.pipeline = $1)"
        "  AND (r.backend_pid IS NULL OR NOT EXISTS ("
        "   SELECT 1 FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
        "   WHERE l.locktype = 'advisory' AND l.granted AND l.pid = r.backend_pid"
        "    AND (a.backend_start IS NULL OR a.backend_start <= r.started_at)))"
        " RETURNING r.id, r.pipeline, coalesce(r.host, '?'), coalesce(r.pid::text, '?')",
        1, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    for (int r = 0; r < db_rows_count(rows); r++)
        log_warn("run %s of pipeline %s (host %s, pid %s) ended without closing its record; "
                 "marked abandoned (the next run of the pipeline finishes what it owed)",
                 db_rows_get(rows, r, 0), db_rows_get(rows, r, 1), db_rows_get(rows, r, 2),
                 db_rows_get(rows, r, 3));
    if (n_closed)
        *n_closed = db_rows_count(rows);
    db_rows_free(rows);
    return KB_OK;
}
