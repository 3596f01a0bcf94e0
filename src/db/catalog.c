/*
 * catalog.c - what the catalogue commands (stats, sources, show, delete)
 * share: the check that a named project exists, so a misspelt name is an
 * error naming it rather than an empty listing.
 */
#include "db/db_int.h"

enum kb_code db_project_check(struct db_conn *conn, const char *project, const char *command,
                              struct kb_err *err)
{
    struct db_rows *rows = NULL;
    const char *p[] = { project };
    enum kb_code rc = db_exec(conn, "SELECT 1 FROM projects WHERE name = $1", 1, p, &rows, err);
    if (rc == KB_OK && db_rows_count(rows) == 0)
        rc = KB_FAIL(err, KB_E_INPUT, NULL,
                     "%s: no project named '%.80s'; 'kbpipe stats' lists the projects",
                     command, project);
    db_rows_free(rows);
    return rc;
}
