/*
 * db.h - the public face of src/db: connections, queries, migrations and
 * seeding.  libpq lives behind this folder (and src/load, which COPYs):
 * other folders see struct db_conn and struct db_rows, never PGconn or
 * PGresult.  Every query is parameterized; identifiers go through
 * db_ident().
 */
#ifndef KB_DB_H
#define KB_DB_H

#include "util/util.h"

struct db_conn;   /* fields live in conn.c */
struct db_rows;   /* a query result; fields live in query.c */

/*
 * Resolve the connection string: `explicit_conninfo` (from --db) when not
 * NULL, else $DATABASE_URL, else the PG* variables (libpq reads them), else
 * the variables of a .env file in the working directory (DATABASE_URL, then
 * PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE).  Returns a string the caller
 * frees; "" means "libpq defaults from PG* variables".  *origin_out (may be
 * NULL) is set to a static text naming where it came from.
 */
char *db_conninfo_resolve(const char *explicit_conninfo, const char **origin_out);

/* A copy of conninfo with any password replaced by "****"; caller frees. */
char *db_conninfo_redacted(const char *conninfo);

/*
 * Connect.  On KB_E_DB the message names the (redacted) target and the
 * server's reason, and *out is NULL.  The session runs with
 * client_min_messages=warning and application_name=kbpipe.
 */
enum kb_code db_connect(const char *conninfo, struct db_conn **out, struct kb_err *err);
void db_close(struct db_conn *conn);   /* NULL is a no-op */

/*
 * The session's first round trip, made by db_connect() on every connection:
 * SET client_min_messages = warning, and in the same simple query (once per
 * process and database: the last database where all were in place is
 * remembered) the extension check.  KB_E_DB when kbpipe's migrations were
 * applied here (schema_migrations exists) but an extension they need
 * (uuid-ossp, pgcrypto, vector) is not installed: the message names it and
 * the CREATE EXTENSION to run (a second statement, only then, asks whether
 * migration 001 was applied); KB_E_DB when the server refuses the query.
 */
enum kb_code db_session_setup(struct db_conn *conn, struct kb_err *err);

/*
 * Connect the way every command does: db_conninfo_resolve(kb_cli.db), then
 * db_connect().  With -v the (redacted) target and where it came from are
 * logged.
 */
enum kb_code db_open(struct db_conn **out, struct kb_err *err);

/*
 * db_connect() and db_open() without the session's first round trip: the
 * caller's first statement (one db_exec, extended protocol) must either
 * carry it, with DB_SESSION_COLUMNS at column `col` of its SELECT list (3
 * columns), and hand its rows to db_session_verify() before anything else
 * (the run's first statement), or set client_min_messages itself and hand
 * the command's failure to db_session_diagnose() (`kbpipe search` and
 * `eval`); a new backend's first statement costs its cold catalog caches
 * once, not twice (docs/search.md, "Fixed cost of a search").  Failures
 * as db_connect().
 */
enum kb_code db_connect_deferred(const char *conninfo, struct db_conn **out,
                                 struct kb_err *err);
enum kb_code db_open_deferred(struct db_conn **out, struct kb_err *err);

/* The name of an extension migration 001 needs that is missing, or NULL. */
#define DB_SESSION_MISSING_EXTENSION \
    "(SELECT e.name FROM unnest(ARRAY['uuid-ossp', 'pgcrypto', 'vector']) AS e(name)" \
    "  WHERE NOT EXISTS (SELECT 1 FROM pg_extension x WHERE x.extname = e.name)" \
    "  ORDER BY e.name DESC LIMIT 1)"
/* db_session_setup's work as three columns of a SELECT: the session's
 * client_min_messages = warning (set_config, for the session), whether
 * schema_migrations exists, the missing extension */
#define DB_SESSION_COLUMNS \
    "set_config('client_min_messages', 'warning', false) IS NOT NULL," \
    " to_regclass('schema_migrations') IS NOT NULL, " DB_SESSION_MISSING_EXTENSION
#define DB_SESSION_NCOLS 3

/*
 * The extension check of a deferred connection, on the rows of its first
 * statement (DB_SESSION_COLUMNS at column `col` of row 0): the errors of
 * db_session_setup(), nothing when the check passed in this process before.
 */
enum kb_code db_session_verify(struct db_conn *conn, const struct db_rows *rows, int col,
                               struct kb_err *err);

/*
 * The extension check of a deferred connection whose command skipped it
 * (db_connect_deferred), run once the command failed with rc (err set),
 * so a search that works never pays for it: when kbpipe's migrations are
 * applied here and an extension they need is missing, err becomes
 * db_session_setup()'s message about it (KB_E_DB), which explains the
 * failure (a function or column dropped with the extension); otherwise,
 * or when the check cannot run, rc and err are returned as they came.
 * Call it outside a failed transaction (after db_rollback).
 */
enum kb_code db_session_diagnose(struct db_conn *conn, enum kb_code rc, struct kb_err *err);

/*
 * Recompute the common words of project (a name) for its chunks and/or
 * learnings (migration 018's kbpipe_refresh_common_lexemes): the words in
 * more than a fifth of a sample of its rows, which search's OR form leaves
 * out.  Its own statement, after the caller's writes are committed.
 * Always KB_OK: on a schema before 018, or when the statement fails, it
 * warns (saying the data are stored) and leaves the list as it was, since
 * nothing is lost but the statistic; err is left empty.
 */
enum kb_code db_common_words_refresh(struct db_conn *conn, const char *project, int is_chunks,
                                     int is_learnings, struct kb_err *err);

/*
 * Run one parameterized statement (params are text, NULL = SQL NULL).
 * With out != NULL the result rows are returned (caller frees with
 * db_rows_free); otherwise they are discarded.  On failure KB_E_DB with
 * the server's message (and hint), *out untouched.
 */
enum kb_code db_exec(struct db_conn *conn, const char *sql, int n_params,
                     const char *const *params, struct db_rows **out, struct kb_err *err);

/*
 * Run one parameterized statement as db_exec does and call fn once per row
 * of its result, in order, with the row's cells: cols[c] is column c's
 * text, NULL for an SQL NULL, borrowed until fn returns.  Stops at fn's
 * first failure and returns it (the rest of the rows are not seen); the
 * result is freed before returning.  For readers that turn each row into
 * their own record, so none writes the db_exec / loop / db_rows_free shape
 * again.
 */
enum kb_code db_exec_each(struct db_conn *conn, const char *sql, int n_params,
                          const char *const *params,
                          enum kb_code (*fn)(const char *const *cols, void *ctx,
                                             struct kb_err *err),
                          void *ctx, struct kb_err *err);

/*
 * A statement whose rows are read one at a time (libpq's single-row mode),
 * so memory holds one row, never the result: for readers of rows of any
 * size (the SQL source's FETCH).  db_stream_open sends it; each
 * db_stream_next sets *row_out to the next row (a one-row db_rows owned
 * by the stream until the next call; if the server refused single-row
 * mode, all the rows at once), or to NULL at the end; a failure of the
 * statement comes from the db_stream_next that meets it.  db_stream_close
 * reads what is left (the connection must end the statement) and frees.
 * No other statement may run on the connection while a stream is open.
 */
struct db_stream;
enum kb_code db_stream_open(struct db_conn *conn, const char *sql, int n_params,
                            const char *const *params, struct db_stream **out,
                            struct kb_err *err);
enum kb_code db_stream_next(struct db_stream *s, const struct db_rows **row_out,
                            struct kb_err *err);
void db_stream_close(struct db_stream *s);

/*
 * Run a script of several statements with the simple query protocol (no
 * parameters: only for SQL kbpipe ships, e.g. migrations).  On failure
 * *err_pos_out (may be NULL) is the 1-based character position the server
 * reported, or 0.
 */
enum kb_code db_exec_script(struct db_conn *conn, const char *sql, int *err_pos_out,
                            struct kb_err *err);

/* BEGIN / COMMIT / ROLLBACK.  db_rollback never fails loudly. */
enum kb_code db_begin(struct db_conn *conn, struct kb_err *err);
enum kb_code db_commit(struct db_conn *conn, struct kb_err *err);
void db_rollback(struct db_conn *conn);

int db_rows_count(const struct db_rows *rows);
int db_rows_cols(const struct db_rows *rows);
/* Borrowed text of a cell ("" for NULL); valid until db_rows_free. */
const char *db_rows_get(const struct db_rows *rows, int row, int col);
int db_rows_isnull(const struct db_rows *rows, int row, int col);
const char *db_rows_colname(const struct db_rows *rows, int col);
void db_rows_free(struct db_rows *rows);   /* NULL is a no-op */

/* Print rows as an aligned text table (numbers right-aligned, long cells
 * cut at 48 characters) or as a JSON array of objects (built with jansson,
 * compact, one line ending in a newline: print.c says how each type is
 * written). */
void db_print_table(const struct db_rows *rows, FILE *out);
void db_print_json(const struct db_rows *rows, FILE *out);

/* Quote an identifier (PQescapeIdentifier); caller frees. */
char *db_ident(struct db_conn *conn, const char *name);

/* The server's error/notice context for -v: the redacted conninfo. */
const char *db_target(const struct db_conn *conn);

/*
 * *has_pending = 1 when the kbpipe_pending table exists, i.e. migration 009
 * (the one kbpipe_runs.backend_pid and the owed work came with) is applied;
 * else 0.  KB_E_DB on a failed statement.
 */
enum kb_code db_runs_has_pending(struct db_conn *conn, int *has_pending, struct kb_err *err);

/*
 * Close as `abandoned` the kbpipe_runs rows of `pipeline` (NULL: of every
 * pipeline) left `running` by a process that is gone: their backend holds
 * no advisory lock any more (runs.c says why that is exact).  Logs one
 * warning per row closed; *n_closed (may be NULL) counts them.  Before
 * migration 009 it does nothing: is_migrated 1 says the caller knows 009
 * is applied (db_runs_has_pending), 0 has it checked here.  KB_E_DB on a
 * failed statement.
 */
enum kb_code db_runs_close_abandoned(struct db_conn *conn, const char *pipeline, int is_migrated,
                                     long *n_closed, struct kb_err *err);

/*
 * Migrations (migrate.c).  `dir` holds NNN_name.sql files, each with a
 * "-- migrate:up" and a "-- migrate:down" section; applied ones are
 * recorded in schema_migrations (version, name, checksum, applied_at,
 * duration_ms) in the current schema.
 */

/* The folder to read: override (--dir), else $KBPIPE_MIGRATIONS_DIR, else
 * ./migrations when it exists, else kb_datadir()/migrations (the installed
 * PREFIX/share/kbpipe next to the executable, else KB_DATADIR).  Borrowed. */
const char *db_migrations_dir(const char *override);

/*
 * Apply up to max_steps (<= 0: all) pending migrations in order, each in
 * its own transaction, under an advisory lock (a concurrent run waits, then
 * finds nothing to do).  A failing migration is rolled back whole and
 * schema_migrations is untouched; err names file:line and the server's
 * message.  *n_applied (may be NULL) counts what was applied.
 */
enum kb_code db_migrate_up(struct db_conn *conn, const char *dir, int max_steps,
                           int *n_applied, struct kb_err *err);

/* Roll back the last n applied migrations (newest first), each in its own
 * transaction, with the same lock and failure rules as up. */
enum kb_code db_migrate_down(struct db_conn *conn, const char *dir, int n,
                             int *n_reverted, struct kb_err *err);

/* Print applied / pending / changed / missing per migration to `out`. */
enum kb_code db_migrate_status(struct db_conn *conn, const char *dir, FILE *out,
                               struct kb_err *err);

/* KB_E_DB when an applied file changed or vanished, or the schema lacks an
 * object kbpipe needs (e.g. an HNSW index dropped by a killed load). */
enum kb_code db_migrate_verify(struct db_conn *conn, const char *dir, FILE *out,
                               struct kb_err *err);

/* Schema checks beyond the files (verify.c): HNSW indexes present. */
enum kb_code db_schema_verify(struct db_conn *conn, FILE *out, struct kb_err *err);
/* Rebuild what db_schema_verify finds missing. */
enum kb_code db_schema_repair(struct db_conn *conn, struct kb_err *err);

/* Write dir/NNN_name.sql (next number) with empty up and down sections;
 * *path_out (caller frees) is its path. */
enum kb_code db_migrate_create(const char *dir, const char *name, char **path_out,
                               struct kb_err *err);

/*
 * Seeding (seed.c): load the seed files of `dir` (projects.json, ...) in
 * one transaction, adding only rows whose natural key is absent; with
 * is_reset the seeded tables are emptied first.  On failure nothing is
 * changed, *counts is zeroed and err names the file (KB_E_INPUT for bad
 * data, KB_E_IO for an unreadable file).
 */
#define DB_SEED_MAX_TABLES 16
struct db_seed_counts {
    long n_added, n_removed;
    int n_tables;                 /* every seed file, in load order */
    struct {
        const char *label;        /* "projects", "port ranges", ...; static */
        long n_added;
    } tables[DB_SEED_MAX_TABLES];
};
enum kb_code db_seed_load(struct db_conn *conn, const char *dir, int is_reset,
                          struct db_seed_counts *counts, struct kb_err *err);

/*
 * Commands owned by src/db.  Each is called by main.c with argv[0] = the
 * command name and the global options (--db, -q, -v) already removed.
 */
/*
 * KB_OK when a project named `project` exists, and then, if id_out is not
 * NULL, *id_out its id (the caller frees it); else KB_E_INPUT naming it and
 * `command` (e.g. "delete"), or KB_E_DB, with *id_out NULL.  Reads only.
 */
enum kb_code db_project_check(struct db_conn *conn, const char *project, const char *command,
                              char **id_out, struct kb_err *err);

/*
 * The catalogue commands (issue 16), each `kbpipe <name> --help`:
 * `sources` and `show` (cmd_sources.c) read; `delete` (cmd_delete.c) removes
 * sources, their chunks and learnings in one transaction.
 */
enum kb_code cmd_delete(int argc, char **argv, struct kb_err *err);
enum kb_code cmd_sources(int argc, char **argv, struct kb_err *err);
enum kb_code cmd_show(int argc, char **argv, struct kb_err *err);
enum kb_code cmd_export(int argc, char **argv, struct kb_err *err);

enum kb_code cmd_migrate(int argc, char **argv, struct kb_err *err);
enum kb_code cmd_stats(int argc, char **argv, struct kb_err *err);
enum kb_code cmd_seed(int argc, char **argv, struct kb_err *err);
enum kb_code cmd_secret(int argc, char **argv, struct kb_err *err);

#endif /* KB_DB_H */
