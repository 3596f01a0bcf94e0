/*
 * extensions.c - the PostgreSQL extensions kbpipe's schema is built on, and
 * the two messages about them (issue 13 point 8):
 *
 *   * an extension missing from a migrated database (DROP EXTENSION vector
 *     CASCADE): the first connection of a process to a database checks
 *     pg_extension, so `run`, `search` and `migrate verify` name the
 *     extension and the CREATE EXTENSION to run instead of `column
 *     "embedding" does not exist` or an interrupted load. The check rides
 *     in the connection's first round trip, with its SET (one simple
 *     query of two statements: db_session_setup below; for a deferred
 *     connection, `run`'s and `search`'s, three columns of the command's
 *     first statement: db_session_verify; `search` and `eval`, whose
 *     first statement skips it, run it only when they fail:
 *     db_session_diagnose), and runs once per process and database: a
 *     run opens up to three connections to one database, and only the
 *     first checks (the last database that passed
 *     is remembered). Only when an extension is missing does a second
 *     statement ask whether kbpipe's migration 001 was applied there;
 *   * a role that may not create an extension (SQLSTATE 42501 from CREATE
 *     EXTENSION during `migrate up`): the message points at privileges, not
 *     at the migration file.
 */
#include "db/db_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* What migration 001 creates, and what each is for (for the message). */
static const struct {
    const char *name, *purpose;
} kb_extensions[] = {
    { "uuid-ossp", "uuid_generate_v4(), the default of every id" },
    { "pgcrypto", "digest() and the encryption of secrets" },
    { "vector", "pgvector: the embedding columns and their HNSW indexes" },
};

static const char *purpose_of(const char *name)
{
    for (size_t i = 0; i < sizeof kb_extensions / sizeof kb_extensions[0]; i++)
        if (strcmp(kb_extensions[i].name, name) == 0)
            return kb_extensions[i].purpose;
    return "kbpipe's schema";
}

/* The database (host, port, name) whose extensions this process found in
 * place: connections of a run open from several threads. */
static pthread_mutex_t checked_lock = PTHREAD_MUTEX_INITIALIZER;
static char checked_db[512];

static void target_key(const struct db_conn *conn, char *key, size_t n)
{
    const char *host = PQhost(conn->pg), *port = PQport(conn->pg), *db = PQdb(conn->pg);
    snprintf(key, n, "%s\x1f%s\x1f%s", host ? host : "", port ? port : "", db ? db : "");
}

static int is_checked(const char *key)
{
    pthread_mutex_lock(&checked_lock);
    int is_same = checked_db[0] != '\0' && strcmp(checked_db, key) == 0;
    pthread_mutex_unlock(&checked_lock);
    return is_same;
}

static void set_checked(const char *key)
{
    pthread_mutex_lock(&checked_lock);
    snprintf(checked_db, sizeof checked_db, "%s", key);
    pthread_mutex_unlock(&checked_lock);
}

/* The message for an extension missing from a migrated database. */
static enum kb_code missing_error(struct db_conn *conn, const char *name, struct kb_err *err)
{
    const char *db = PQdb(conn->pg);
    return KB_FAIL(err, KB_E_DB, NULL,
                   "the extension \"%s\" (%s) is not installed in database \"%s\", though "
                   "kbpipe's migrations are applied there (was it dropped? DROP EXTENSION ... "
                   "CASCADE also drops the columns that use it); ask a superuser to run "
                   "CREATE EXTENSION \"%s\"; in \"%s\", then 'kbpipe migrate verify'",
                   name, purpose_of(name), db ? db : "?", name, db ? db : "?");
}

/*
 * One simple query, one round trip: the SET every connection makes, and
 * (unless this database passed already) whether schema_migrations exists
 * and which extensions are missing, the first in reverse name order.  The
 * extension list is read from pg_extension whatever schema_migrations
 * holds; only a missing one is worth the second statement.  A deferred
 * connection (db_connect_deferred) has its first statement carry the same
 * work as DB_SESSION_COLUMNS (db.h) instead.
 */
#define SETUP_SET "SET client_min_messages = warning"
#define SETUP_CHECK SETUP_SET "; SELECT to_regclass('schema_migrations') IS NOT NULL, " \
    DB_SESSION_MISSING_EXTENSION

/* What the check found: migrated (has_table) and the missing extension
 * (NULL: none); the second statement only when one is missing. */
static enum kb_code verify(struct db_conn *conn, const char *key, int has_table,
                           const char *missing, struct kb_err *err)
{
    /* only once migration 001 (which creates them) is applied here: before,
     * or after it failed, migrate up is what creates them */
    if (!has_table)
        return KB_OK;
    if (missing == NULL || missing[0] == '\0') {
        set_checked(key);   /* every extension there: migrated or not, nothing to say */
        return KB_OK;
    }
    char name[32];
    snprintf(name, sizeof name, "%s", missing);
    /* version::text: a schema_migrations of another tool must not break the
     * connection; if it cannot be read this way, the check says nothing */
    struct db_rows *rows;
    struct kb_err ignored;
    if (db_exec(conn, "SELECT 1 FROM schema_migrations WHERE version::text = '1'", 0, NULL,
                &rows, &ignored) != KB_OK)
        return KB_OK;
    int is_migrated = db_rows_count(rows) > 0;
    db_rows_free(rows);
    return is_migrated ? missing_error(conn, name, err) : KB_OK;
}

/* SETUP_CHECK's row: whether schema_migrations exists and the missing
 * extension ("" for none); no row reads as neither. */
static void read_check(const PGresult *res, int *has_table, char name[32])
{
    int is_row = PQntuples(res) == 1;
    *has_table = is_row && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    snprintf(name, 32, "%s", is_row && !PQgetisnull(res, 0, 1) ? PQgetvalue(res, 0, 1) : "");
}

enum kb_code db_session_setup(struct db_conn *conn, struct kb_err *err)
{
    char key[sizeof checked_db];
    target_key(conn, key, sizeof key);
    int is_known = is_checked(key);
    if (!is_known)
        log_debug("checking the extensions of database %s",
                  PQdb(conn->pg) ? PQdb(conn->pg) : "?");
    /* NOTICEs (e.g. "relation already exists, skipping") are not news */
    PGresult *res = PQexec(conn->pg, is_known ? SETUP_SET : SETUP_CHECK);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        enum kb_code rc = db_result_error(conn, res, "setting up the session", err);
        PQclear(res);
        return rc;
    }
    if (is_known) {
        PQclear(res);
        return KB_OK;
    }
    int has_table;
    char name[32];
    read_check(res, &has_table, name);
    PQclear(res);
    return verify(conn, key, has_table, name, err);
}

/* See db.h. */
enum kb_code db_session_verify(struct db_conn *conn, const struct db_rows *rows, int col,
                               struct kb_err *err)
{
    char key[sizeof checked_db];
    target_key(conn, key, sizeof key);
    if (is_checked(key))
        return KB_OK;
    log_debug("checking the extensions of database %s", PQdb(conn->pg) ? PQdb(conn->pg) : "?");
    int has_table = strcmp(db_rows_get(rows, 0, col + 1), "t") == 0;
    return verify(conn, key, has_table,
                  db_rows_isnull(rows, 0, col + 2) ? NULL : db_rows_get(rows, 0, col + 2), err);
}

/* See db.h. */
enum kb_code db_session_diagnose(struct db_conn *conn, enum kb_code rc, struct kb_err *err)
{
    if (rc == KB_OK || conn == NULL || PQstatus(conn->pg) != CONNECTION_OK)
        return rc;
    log_debug("checking the extensions of database %s after a failure",
              PQdb(conn->pg) ? PQdb(conn->pg) : "?");
    PGresult *res = PQexec(conn->pg, SETUP_CHECK);
    int has_table = 0;
    char name[32] = "";
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        read_check(res, &has_table, name);
    PQclear(res);
    if (!has_table || name[0] == '\0')   /* nothing missing, or the check itself failed */
        return rc;
    char key[sizeof checked_db];
    target_key(conn, key, sizeof key);
    struct kb_err found = { 0 };
    if (verify(conn, key, has_table, name, &found) == KB_OK)
        return rc;   /* not kbpipe's migrated schema: the failure stands */
    *err = found;
    return found.code;
}

int db_extension_denied(const char *sqlstate, const char *primary, char *name, size_t n)
{
    static const char prefix[] = "permission denied to create extension \"";
    if (sqlstate == NULL || strcmp(sqlstate, "42501") != 0 || primary == NULL ||
        !kb_starts_with(primary, prefix))
        return 0;
    const char *s = primary + sizeof prefix - 1;
    const char *e = strchr(s, '"');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    snprintf(name, n, "%.*s", (int)(len < n ? len : n - 1), s);
    return 1;
}

enum kb_code db_extension_denied_error(struct db_conn *conn, const char *name,
                                       struct kb_err *err)
{
    const char *role = PQuser(conn->pg), *db = PQdb(conn->pg);
    return KB_FAIL(err, KB_E_DB, NULL,
                   "role \"%s\" may not create extension \"%s\" (%s); ask a superuser to run "
                   "CREATE EXTENSION \"%s\"; in database \"%s\" (a trusted extension also "
                   "works after GRANT CREATE ON DATABASE \"%s\" TO \"%s\"), then run "
                   "'kbpipe migrate up' again",
                   role ? role : "?", name, purpose_of(name), name, db ? db : "?",
                   db ? db : "?", role ? role : "?");
}
