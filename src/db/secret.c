/*
 * secret.c - the session work behind `kbpipe secret` (cmd_secret.c): the
 * master passphrase from the environment, a session that keeps it out of
 * the server log, and the calls of the schema's functions (migrations 002
 * and 007: store_secret, get_secret, secret_list, rotate_encryption_key,
 * rotate_master_key) and the audit query.
 *
 * The passphrase comes from $KBPIPE_MASTER_KEY or the file named by
 * $KBPIPE_MASTER_KEY_FILE (its one trailing newline dropped), never from an
 * argument.  It reaches the server only as a bound parameter of
 * set_config('kbpipe.master_key', $1, false), after the session tried
 * SET log_parameter_max_length = 0 (superusers only: with log_statement =
 * all the server logs a bound statement's parameters unless it is 0) and
 * set log_parameter_max_length_on_error = 0.  Values travel the same way.
 * The server's WARNINGs (a failed get_secret says why) are caught, not
 * printed by libpq.
 */
#include "db/db_int.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the passphrase ------------------------------------------------------ */

enum kb_code secret_key_load(const char *var, char **out, struct kb_err *err)
{
    *out = NULL;
    char file_var[64];
    snprintf(file_var, sizeof file_var, "%s_FILE", var);
    const char *env = getenv(var), *path = getenv(file_var);
    if (env && *env && path && *path)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "both %s and %s are set; unset one of them", var, file_var);
    if (env && *env) {
        *out = kb_xstrdup(env);
        return KB_OK;
    }
    if (!(path && *path))
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "no passphrase: set %s, or %s to a file holding it (never an argument, "
                       "so it stays out of ps and shell history)", var, file_var);
    struct kb_buf b;
    kb_buf_init(&b);
    enum kb_code rc = kb_buf_read_file(&b, path, err);
    if (rc != KB_OK) {
        kb_buf_release(&b);
        return rc;
    }
    if (b.len > 0 && b.data[b.len - 1] == '\n')
        b.data[--b.len] = '\0';
    if (b.len > 0 && b.data[b.len - 1] == '\r')
        b.data[--b.len] = '\0';
    if (b.len == 0 || strlen(b.data) != b.len) {
        explicit_bzero(b.data, b.cap);
        kb_buf_release(&b);
        return KB_FAIL_AT(err, KB_E_INPUT, path,
                          "the passphrase file (%s) is empty or holds a NUL byte; write the "
                          "passphrase on its one line", file_var);
    }
    *out = kb_buf_detach(&b);
    return KB_OK;
}

void secret_key_free(char *key)
{
    if (key == NULL)
        return;
    explicit_bzero(key, strlen(key));
    free(key);
}

/* ---- the session --------------------------------------------------------- */

/* The server's last WARNING (a failed get_secret says why), instead of libpq
 * printing it. */
static void keep_warning(void *arg, const PGresult *res)
{
    char *last = arg;
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(last, SECRET_WARNING_LEN, "%s", msg ? msg : "");
}

enum kb_code secret_session_open(struct db_conn *conn, const char *key, char *warning,
                                 struct kb_err *err)
{
    warning[0] = '\0';
    PQsetNoticeReceiver(conn->pg, keep_warning, warning);
    enum kb_code rc = db_exec(conn, "SET log_parameter_max_length_on_error = 0", 0, NULL,
                              NULL, err);
    if (rc != KB_OK)
        return rc;
    struct kb_err ignored;
    if (db_exec(conn, "SET log_parameter_max_length = 0", 0, NULL, NULL, &ignored) != KB_OK) {
        /* only a superuser may; say so when the server would log parameters */
        struct db_rows *rows;
        if (db_exec(conn,
                    "SELECT current_setting('log_statement') = 'all' OR "
                    "current_setting('log_min_duration_statement') <> '-1'",
                    0, NULL, &rows, &ignored) == KB_OK) {
            if (strcmp(db_rows_get(rows, 0, 0), "t") == 0)
                log_warn("the server logs statements with their parameters and this role may "
                         "not SET log_parameter_max_length = 0: the passphrase and values may "
                         "reach the server log (docs/operations.md, \"Secrets\")");
            db_rows_free(rows);
        }
    }
    if (key == NULL)
        return KB_OK;
    const char *p[] = { key };
    return db_exec(conn, "SELECT set_config('kbpipe.master_key', $1, false)", 1, p, NULL, err);
}

const char *secret_accessor(const char *as)
{
    if (as && *as)
        return as;
    const struct passwd *pw = getpwuid(geteuid());
    if (pw && pw->pw_name && *pw->pw_name)
        return pw->pw_name;
    const char *user = getenv("USER");
    return user && *user ? user : "unknown";
}

enum kb_code secret_project_id(struct db_conn *conn, const char *project, char **id_out,
                               struct kb_err *err)
{
    *id_out = NULL;
    if (project == NULL)   /* --shared: project_id NULL */
        return KB_OK;
    enum kb_code rc = db_project_check(conn, project, "secret", id_out, err);
    if (rc == KB_E_INPUT)   /* the same miss, with the way to a secret of no project */
        rc = KB_FAIL(err, KB_E_INPUT, NULL,
                     "no project named '%.80s'; 'kbpipe stats' lists the projects "
                     "(--shared for secrets of no project)", project);
    return rc;
}
