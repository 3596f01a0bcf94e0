/*
 * catalog.c - what the catalogue commands (stats, sources, show, delete,
 * export) share with `secret` and `embed backfill` (src/load/backfill.c):
 * the check that a named project exists, so a misspelt name is an error
 * naming it, with one message and exit status 1, rather than an empty
 * listing.
 */
#include "db/db_int.h"

/* See db.h. */
enum kb_code db_project_check(struct db_conn *conn, const char *project, const char *command,
                              char **id_out, struct kb_err *err)
{
    if (id_out)
        *id_out = NULL;
    struct db_rows *rows = NULL;
    const char *p[] = { project };
    enum kb_code rc = db_exec(conn, "SELECT id FROM projects WHERE name = $1", 1, p, &rows, err);
    if (rc == KB_OK && db_rows_count(rows) == 0)
        rc = KB_FAIL(err, KB_E_INPUT, NULL,
                     "%s: no project named '%.80s'; 'kbpipe stats' lists the projects",
                     command, project);
    else if (rc == KB_OK && id_out)
        *id_out = kb_xstrdup(db_rows_get(rows, 0, 0));
    db_rows_free(rows);
    return rc;
}
