/*
 * db_int.h - shared by the files of src/db only.
 */
#ifndef KB_DB_INT_H
#define KB_DB_INT_H

#include "db/db_pq.h"

#include <jansson.h>
#include <stdio.h>

struct db_conn {
    PGconn *pg;
    char *target;   /* redacted conninfo, for messages */
    char sqlstate[6];   /* of the last failed statement, "" when none */
};

/*
 * extensions.c: 1 when a server error (sqlstate, primary message) is
 * "permission denied to create extension", with the extension's name in
 * name[n]; then db_extension_denied_error() fills err with a message about
 * privileges (who may create it, what to grant) and returns KB_E_DB.
 */
int db_extension_denied(const char *sqlstate, const char *primary, char *name, size_t n);
enum kb_code db_extension_denied_error(struct db_conn *conn, const char *name,
                                       struct kb_err *err);

/* The SQLSTATE of the last failed statement on conn ("" when none). */
const char *db_conn_sqlstate(const struct db_conn *conn);

/*
 * secret.c, for cmd_secret.c.  secret_key_load reads the passphrase from
 * $VAR or the file named by $VAR_FILE (KB_E_USAGE when neither or both are
 * set); the caller frees it with secret_key_free, which wipes it.
 * secret_session_open keeps parameters out of the server log where the
 * role may, catches the server's WARNINGs into warning[SECRET_WARNING_LEN]
 * (which must outlive the connection's use) and, with key != NULL, sets
 * kbpipe.master_key through a bound parameter.  secret_accessor is `as`,
 * else the OS user.  secret_project_id: the id of a project by name (NULL
 * for project NULL: the shared secrets); KB_E_INPUT for an unknown name.
 */
#define SECRET_WARNING_LEN 256
enum kb_code secret_key_load(const char *var, char **out, struct kb_err *err);
void secret_key_free(char *key);
enum kb_code secret_session_open(struct db_conn *conn, const char *key, char *warning,
                                 struct kb_err *err);
const char *secret_accessor(const char *as);
enum kb_code secret_project_id(struct db_conn *conn, const char *project, char **id_out,
                               struct kb_err *err);

struct db_rows {
    PGresult *res;
};

/*
 * print.c: JSON built with jansson.  db_rows_json returns a new array of
 * one object per row, keys the column names (the caller json_decref's it):
 * NULL as null, bool as true/false, integer, float and numeric columns as
 * JSON numbers (NaN and the infinities as null), json and jsonb as the
 * values they hold, all else as strings.  db_json_print writes j to out in
 * the one format of kbpipe's listings: compact, reals to 15 significant
 * digits (enough for every decimal of 15 digits to come out as the server
 * printed it, trailing zeros dropped), then a newline: a document a line.
 */
#define DB_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))
json_t *db_rows_json(const struct db_rows *rows);
void db_json_print(const json_t *j, FILE *out);

/*
 * A data folder as kbpipe finds its migrations (migrate.c): override (an
 * option), else $env_var, else the checkout's folder `checkout` (relative
 * to the current directory) when it exists, else kb_datadir()/installed,
 * written into buf.  The result is borrowed (override, the environment or
 * buf).
 */
const char *db_data_dir(const char *override, const char *env_var, const char *checkout,
                        const char *installed, char *buf, size_t n);

/* The seed folder (seed.c): --dir, $KBPIPE_SEED_DIR, ./samples/seed, else the
 * installed PREFIX/share/kbpipe/seed.  Borrowed. */
const char *db_seed_dir(const char *override);

/* ---- dotenv.c ------------------------------------------------------------ */

/* One entry of a .env file: a value, or a warning (value NULL) for a line
 * the reader could not read; name is NULL when the line gave none. */
struct db_dotenv_item {
    long line;             /* where the entry starts, 1-based */
    char *name, *value;
    const char *warning;   /* static text, never quoting the line */
};

struct db_dotenv {
    struct db_dotenv_item *items;   /* in file order */
    size_t n, cap;
};

/*
 * Read .env text (len bytes, may hold NULs) as dotenv does (dotenv.c says
 * which syntax); never fails: lines it cannot read become items with a
 * warning.  *env is overwritten; free it with db_dotenv_release().
 */
void db_dotenv_parse(const char *text, size_t len, struct db_dotenv *env);

/* The value of the last readable entry called name, or NULL; borrowed. */
const char *db_dotenv_get(const struct db_dotenv *env, const char *name);

void db_dotenv_release(struct db_dotenv *env);

#endif /* KB_DB_INT_H */
