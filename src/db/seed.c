/*
 * seed.c - load the development seed data (the JSON files of samples/seed)
 * into the supervisor-service schema, idempotently.
 *
 * Each file is a JSON array of objects; the whole file text is one query
 * parameter and the server unpacks it with jsonb_to_recordset, so kbpipe
 * parses no JSON here and every statement is parameterized.  Files load in
 * dependency order (projects before the epics that name them, ...).
 *
 * Idempotency: a row is identified by its natural key (projects.name,
 * port_ranges.range_name, estimation_factors.factor_name,
 * secret_templates.template_name, epics (project, epic_id), issues
 * (project, issue_number), tasks (project, title)) and inserted only when
 * that key is absent (WHERE NOT EXISTS: 001-005 have no unique keys for
 * these).  Existing rows are never updated, so a second run writes nothing
 * and local edits survive; --reset empties the seeded tables first.  Seeds
 * serialize on an advisory lock, so two concurrent runs cannot both insert.
 *
 * Everything happens in one transaction: a failure leaves the database as
 * it was.  Before touching the database each file is read and checked for
 * NUL bytes and invalid UTF-8; inside the transaction a check query names
 * the first duplicate key or unresolved reference of a file.
 */
#include "db/db_int.h"

#include <stdlib.h>
#include <string.h>

struct seed_file {
    const char *name;        /* file name in the seed folder */
    const char *label;       /* for messages: "projects", "port ranges", ... */
    const char *check_sql;   /* $1 = file text; rows = problems, as text */
    const char *insert_sql;  /* $1 = file text; one row: the count inserted */
};

/* Dependency order: projects first, tasks last. */
static const struct seed_file seed_files[] = {
    { "projects.json", "projects",
      "SELECT format('project %s appears %s times', name, count(*))"
      "  FROM jsonb_to_recordset($1::jsonb) AS r(name text)"
      " GROUP BY name HAVING count(*) > 1 LIMIT 1",
      "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(name text, path text,"
      "             description text, status text, metadata jsonb)),"
      " ins AS (INSERT INTO projects (name, path, description, status, metadata)"
      "   SELECT r.name, r.path, r.description, coalesce(r.status, 'active'),"
      "          coalesce(r.metadata, '{}')"
      "     FROM r WHERE NOT EXISTS (SELECT 1 FROM projects p WHERE p.name = r.name)"
      "   RETURNING 1)"
      " SELECT count(*) FROM ins" },
    { "port_ranges.json", "port ranges",
      "SELECT format('range %s appears %s times', range_name, count(*))"
      "  FROM jsonb_to_recordset($1::jsonb) AS r(range_name text)"
      " GROUP BY range_name HAVING count(*) > 1 LIMIT 1",
      "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(range_name text,"
      "             start_port integer, end_port integer, description text, is_active boolean,"
      "             metadata jsonb)),"
      " ins AS (INSERT INTO port_ranges (range_name, start_port, end_port, description,"
      "                                  is_active, metadata)"
      "   SELECT r.range_name, r.start_port, r.end_port, r.description,"
      "          coalesce(r.is_active, true), coalesce(r.metadata, '{}')"
      "     FROM r WHERE NOT EXISTS (SELECT 1 FROM port_ranges x"
      "                               WHERE x.range_name = r.range_name)"
      "   RETURNING 1)"
      " SELECT count(*) FROM ins" },
    { "estimation_factors.json", "estimation factors",
      "SELECT format('factor %s appears %s times', factor_name, count(*))"
      "  FROM jsonb_to_recordset($1::jsonb) AS r(factor_name text)"
      " GROUP BY factor_name HAVING count(*) > 1 LIMIT 1",
      "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(factor_name text,"
      "             description text, impact_type text, average_impact numeric, metadata jsonb)),"
      " ins AS (INSERT INTO estimation_factors (factor_name, description, impact_type,"
      "                                         average_impact, metadata)"
      "   SELECT r.factor_name, r.description, coalesce(r.impact_type, 'multiplier'),"
      "          r.average_impact, coalesce(r.metadata, '{}')"
      "     FROM r WHERE NOT EXISTS (SELECT 1 FROM estimation_factors x"
      "                               WHERE x.factor_name = r.factor_name)"
      "   RETURNING 1)"
      " SELECT count(*) FROM ins" },
    { "secret_templates.json", "secret templates",
      "SELECT format('template %s appears %s times', template_name, count(*))"
      "  FROM jsonb_to_recordset($1::jsonb) AS r(template_name text)"
      " GROUP BY template_name HAVING count(*) > 1 LIMIT 1",
      "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(template_name text,"
      "             secret_type text, description text, validation_pattern text,"
      "             rotation_interval_days integer, metadata jsonb)),"
      " ins AS (INSERT INTO secret_templates (template_name, secret_type, description,"
      "                                       validation_pattern, rotation_interval_days, metadata)"
      "   SELECT r.template_name, r.secret_type, r.description, r.validation_pattern,"
      "          r.rotation_interval_days, coalesce(r.metadata, '{}')"
      "     FROM r WHERE NOT EXISTS (SELECT 1 FROM secret_templates x"
      "                               WHERE x.template_name = r.template_name)"
      "   RETURNING 1)"
      " SELECT count(*) FROM ins" },
    { "epics.json", "epics",
      "SELECT format('epic %s/%s appears %s times', project, epic_id, count(*))"
      "  FROM jsonb_to_recordset($1::jsonb) AS r(project text, epic_id text)"
      " GROUP BY project, epic_id HAVING count(*) > 1"
      " UNION ALL "
      "SELECT format('epic %s names project %s, which is not in projects.json',"
      "              r.epic_id, coalesce(r.project, 'null'))"
      "  FROM jsonb_to_recordset($1::jsonb) AS r(project text, epic_id text)"
      " WHERE NOT EXISTS (SELECT 1 FROM projects p WHERE p.name = r.project)"
      " LIMIT 1",
      "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(project text, epic_id text,"
      "             title text, description text, status text, priority text,"
      "             estimated_hours numeric, actual_hours numeric, complexity text,"
      "             dependencies text[], metadata jsonb)),"
      " ins AS (INSERT INTO epics (project_id, epic_id, title, description, status, priority,"
      "                            estimated_hours, actual_hours, complexity, dependencies,"
      "                            metadata, completed_at)"
      "   SELECT p.id, r.epic_id, r.title, r.description, coalesce(r.status, 'planned'),"
      "          coalesce(r.priority, 'medium'), r.estimated_hours, r.actual_hours, r.complexity,"
      "          coalesce(r.dependencies, '{}'), coalesce(r.metadata, '{}'),"
      "          CASE WHEN r.status = 'completed' THEN now() END"
      "     FROM r JOIN projects p ON p.name = r.project"
      "    WHERE NOT EXISTS (SELECT 1 FROM epics e"
      "                       WHERE e.project_id = p.id AND e.epic_id = r.epic_id)"
      "   RETURNING 1)"
      " SELECT count(*) FROM ins" },
    { "issues.json", "issues",
      "SELECT format('issue %s#%s appears %s times', project, issue_number, count(*))"
      "  FROM jsonb_to_recordset($1::jsonb) AS r(project text, issue_number integer)"
      " GROUP BY project, issue_number HAVING count(*) > 1"
      " UNION ALL "
      "SELECT format('issue #%s names project %s, which is not in projects.json',"
      "              r.issue_number, coalesce(r.project, 'null'))"
      "  FROM jsonb_to_recordset($1::jsonb) AS r(project text, issue_number integer)"
      " WHERE NOT EXISTS (SELECT 1 FROM projects p WHERE p.name = r.project)"
      " UNION ALL "
      "SELECT format('issue %s#%s names epic %s, which is not in epics.json',"
      "              r.project, r.issue_number, r.epic)"
      "  FROM jsonb_to_recordset($1::jsonb) AS r(project text, issue_number integer, epic text)"
      " WHERE r.epic IS NOT NULL AND NOT EXISTS (SELECT 1 FROM epics e JOIN projects p"
      "       ON p.id = e.project_id WHERE p.name = r.project AND e.epic_id = r.epic)"
      " LIMIT 1",
      "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(project text, epic text,"
      "             issue_number integer, title text, description text, status text,"
      "             priority text, labels text[], assignee text, github_url text,"
      "             metadata jsonb)),"
      " ins AS (INSERT INTO issues (project_id, epic_id, issue_number, title, description,"
      "                             status, priority, labels, assignee, github_url, metadata,"
      "                             closed_at)"
      "   SELECT p.id, e.id, r.issue_number, r.title, r.description, coalesce(r.status, 'open'),"
      "          coalesce(r.priority, 'medium'), coalesce(r.labels, '{}'), r.assignee,"
      "          r.github_url, coalesce(r.metadata, '{}'),"
      "          CASE WHEN r.status = 'closed' THEN now() END"
      "     FROM r JOIN projects p ON p.name = r.project"
      "     LEFT JOIN epics e ON e.project_id = p.id AND e.epic_id = r.epic"
      "    WHERE NOT EXISTS (SELECT 1 FROM issues i"
      "                       WHERE i.project_id = p.id AND i.issue_number = r.issue_number)"
      "   RETURNING 1)"
      " SELECT count(*) FROM ins" },
    { "tasks.json", "tasks",
      "SELECT format('task %s/%s appears %s times', project, title, count(*))"
      "  FROM jsonb_to_recordset($1::jsonb) AS r(project text, title text)"
      " GROUP BY project, title HAVING count(*) > 1"
      " UNION ALL "
      "SELECT format('task %s names project %s, which is not in projects.json',"
      "              r.title, coalesce(r.project, 'null'))"
      "  FROM jsonb_to_recordset($1::jsonb) AS r(project text, title text)"
      " WHERE NOT EXISTS (SELECT 1 FROM projects p WHERE p.name = r.project)"
      " UNION ALL "
      "SELECT format('task %s names epic %s, which is not in epics.json', r.title, r.epic)"
      "  FROM jsonb_to_recordset($1::jsonb) AS r(project text, title text, epic text)"
      " WHERE r.epic IS NOT NULL AND NOT EXISTS (SELECT 1 FROM epics e JOIN projects p"
      "       ON p.id = e.project_id WHERE p.name = r.project AND e.epic_id = r.epic)"
      " UNION ALL "
      "SELECT format('task %s names issue #%s, which is not in issues.json',"
      "              r.title, r.issue_number)"
      "  FROM jsonb_to_recordset($1::jsonb) AS r(project text, title text, issue_number integer)"
      " WHERE r.issue_number IS NOT NULL AND NOT EXISTS (SELECT 1 FROM issues i JOIN projects p"
      "       ON p.id = i.project_id WHERE p.name = r.project AND i.issue_number = r.issue_number)"
      " LIMIT 1",
      "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(project text, epic text,"
      "             issue_number integer, title text, description text, status text,"
      "             order_index integer, estimated_minutes integer, actual_minutes integer,"
      "             metadata jsonb)),"
      " ins AS (INSERT INTO tasks (project_id, epic_id, issue_id, title, description, status,"
      "                            order_index, estimated_minutes, actual_minutes, metadata,"
      "                            completed_at)"
      "   SELECT p.id, e.id, i.id, r.title, r.description, coalesce(r.status, 'pending'),"
      "          coalesce(r.order_index, 0), r.estimated_minutes, r.actual_minutes,"
      "          coalesce(r.metadata, '{}'),"
      "          CASE WHEN r.status = 'completed' THEN now() END"
      "     FROM r JOIN projects p ON p.name = r.project"
      "     LEFT JOIN epics e ON e.project_id = p.id AND e.epic_id = r.epic"
      "     LEFT JOIN issues i ON i.project_id = p.id AND i.issue_number = r.issue_number"
      "    WHERE NOT EXISTS (SELECT 1 FROM tasks t"
      "                       WHERE t.project_id = p.id AND t.title = r.title)"
      "   RETURNING 1)"
      " SELECT count(*) FROM ins" },
};

#define N_SEED_FILES (sizeof seed_files / sizeof seed_files[0])
_Static_assert(N_SEED_FILES <= DB_SEED_MAX_TABLES, "raise DB_SEED_MAX_TABLES in db.h");

/*
 * What --reset removes, in order.  Deleting the projects takes everything
 * that belongs to them (epics, issues, tasks, secrets, port allocations,
 * knowledge) by ON DELETE CASCADE; port ranges can then go.
 */
static const char *const reset_sql[] = {
    "WITH d AS (DELETE FROM projects RETURNING 1) SELECT count(*) FROM d",
    "WITH d AS (DELETE FROM port_ranges RETURNING 1) SELECT count(*) FROM d",
    "WITH d AS (DELETE FROM estimation_factors RETURNING 1) SELECT count(*) FROM d",
    "WITH d AS (DELETE FROM secret_templates RETURNING 1) SELECT count(*) FROM d",
};

const char *db_seed_dir(const char *override)
{
    static char installed[4200];
    return db_data_dir(override, "KBPIPE_SEED_DIR", "samples/seed", "seed", installed,
                       sizeof installed);
}

/* Read one seed file; KB_E_INPUT when it holds a NUL byte or invalid UTF-8. */
static enum kb_code read_seed_file(const char *path, struct kb_buf *out, struct kb_err *err)
{
    enum kb_code rc = kb_buf_read_file(out, path, err);
    if (rc != KB_OK) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n,
                 "; give the seed folder with --dir (default: $KBPIPE_SEED_DIR, "
                 "./samples/seed, else the installed share/kbpipe/seed)");
        return rc;
    }
    if (out->len == 0 || out->data == NULL)
        return KB_FAIL_AT(err, KB_E_INPUT, path,
                          "the file is empty; write a JSON array, [] for no rows");
    size_t n = strlen(out->data);
    if (n != out->len)
        return KB_FAIL_AT(err, KB_E_INPUT, path,
                          "NUL byte at offset %zu; seed files are UTF-8 JSON text", n);
    size_t ok = kb_utf8_valid_prefix(out->data, out->len);
    if (ok != out->len)
        return KB_FAIL_AT(err, KB_E_INPUT, path,
                          "invalid UTF-8 at byte offset %zu; save the file as UTF-8", ok);
    return KB_OK;
}

/* Run sql with $1 = text and read its one integer result into *n. */
static enum kb_code exec_count(struct db_conn *conn, const char *sql, const char *text, long *n,
                               struct kb_err *err)
{
    struct db_rows *rows;
    const char *params[] = { text };
    enum kb_code rc = db_exec(conn, sql, text ? 1 : 0, params, &rows, err);
    if (rc != KB_OK)
        return rc;
    *n = db_rows_count(rows) == 1 ? strtol(db_rows_get(rows, 0, 0), NULL, 10) : 0;
    db_rows_free(rows);
    return KB_OK;
}

/*
 * Run a statement on one file's text.  A data error of the server (bad
 * JSON, a NULL in a required field, a value a CHECK refuses: SQLSTATE
 * classes 22 and 23) is the file's fault and becomes KB_E_INPUT naming it.
 */
static enum kb_code exec_on_file(struct db_conn *conn, const char *path, const char *sql,
                                 const char *text, struct db_rows **out, struct kb_err *err)
{
    const char *params[] = { text };
    PGresult *res = PQexecParams(conn->pg, sql, 1, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK) {
        struct db_rows *rows = kb_xmalloc(sizeof *rows);
        rows->res = res;
        *out = rows;
        return KB_OK;
    }
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    int is_input = state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0);
    db_result_error(conn, res, path, err);
    PQclear(res);
    if (is_input) {
        err->code = KB_E_INPUT;
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, "; fix the file and run 'kbpipe seed' again");
    }
    return err->code;
}

/* Check then load one file inside the open transaction; *n_added counts rows. */
static enum kb_code load_file(struct db_conn *conn, const struct seed_file *f, const char *path,
                              const char *text, long *n_added, struct kb_err *err)
{
    struct db_rows *rows;
    enum kb_code rc = exec_on_file(conn, path, f->check_sql, text, &rows, err);
    if (rc != KB_OK)
        return rc;
    if (db_rows_count(rows) > 0) {
        rc = KB_FAIL_AT(err, KB_E_INPUT, path, "%.300s; fix the file and run 'kbpipe seed' again",
                        db_rows_get(rows, 0, 0));
        db_rows_free(rows);
        return rc;
    }
    db_rows_free(rows);
    rc = exec_on_file(conn, path, f->insert_sql, text, &rows, err);
    if (rc != KB_OK)
        return rc;
    *n_added = strtol(db_rows_get(rows, 0, 0), NULL, 10);
    db_rows_free(rows);
    log_debug("seed: %s: %ld new %s", path, *n_added, f->label);
    return KB_OK;
}

enum kb_code db_seed_load(struct db_conn *conn, const char *dir, int is_reset,
                          struct db_seed_counts *counts, struct kb_err *err)
{
    struct kb_buf text[N_SEED_FILES];
    char *path[N_SEED_FILES];
    enum kb_code rc = KB_OK;
    size_t n_read = 0;
    memset(counts, 0, sizeof *counts);

    /* every file is read and checked before the database is touched */
    for (; n_read < N_SEED_FILES && rc == KB_OK; n_read++) {
        path[n_read] = kb_xasprintf("%s/%s", dir, seed_files[n_read].name);
        kb_buf_init(&text[n_read]);
        rc = read_seed_file(path[n_read], &text[n_read], err);
    }
    if (rc == KB_OK)
        rc = db_begin(conn, err);
    if (rc == KB_OK) {
        /* one seed at a time: a second waits, then finds its rows present */
        rc = db_exec(conn, "SELECT pg_advisory_xact_lock(hashtext('kbpipe.seed'))", 0, NULL,
                     NULL, err);
        for (size_t i = 0; rc == KB_OK && is_reset && i < sizeof reset_sql / sizeof *reset_sql;
             i++) {
            long n = 0;
            rc = exec_count(conn, reset_sql[i], NULL, &n, err);
            counts->n_removed += n;
        }
        for (size_t i = 0; rc == KB_OK && i < N_SEED_FILES; i++) {
            long n = 0;
            rc = load_file(conn, &seed_files[i], path[i], text[i].data, &n, err);
            counts->n_added += n;
            counts->tables[counts->n_tables].label = seed_files[i].label;
            counts->tables[counts->n_tables++].n_added = n;
        }
        if (rc == KB_OK && kb_fault("seed.commit"))
            rc = KB_FAIL(err, KB_E_DB, NULL, "fault injected before commit (seed.commit)");
        if (rc == KB_OK)
            rc = db_commit(conn, err);
        else
            db_rollback(conn);
        if (rc != KB_OK)
            memset(counts, 0, sizeof *counts);
    }
    for (size_t i = 0; i < n_read; i++) {
        kb_buf_release(&text[i]);
        free(path[i]);
    }
    return rc;
}
