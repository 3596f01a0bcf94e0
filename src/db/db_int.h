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

struct db_rows {
    PGresult *res;
};

#endif /* KB_DB_INT_H */
