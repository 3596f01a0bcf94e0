/*
 * db_int.h - shared by the files of src/db only.
 */
#ifndef KB_DB_INT_H
#define KB_DB_INT_H

#include "db/db_pq.h"

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

#endif /* KB_DB_INT_H */
