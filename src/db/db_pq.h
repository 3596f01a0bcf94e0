/*
 * db_pq.h - the libpq handle behind a struct db_conn, for the folders that
 * speak libpq themselves (src/db, src/load: COPY).  No other folder includes
 * this header.
 */
#ifndef KB_DB_PQ_H
#define KB_DB_PQ_H

#include <libpq-fe.h>

#include "db/db.h"

PGconn *db_conn_pg(struct db_conn *conn);

/* Fill err from a failed PGresult (message, hint, position); returns KB_E_DB. */
enum kb_code db_result_error(struct db_conn *conn, const PGresult *res, const char *what,
                             struct kb_err *err);

#endif /* KB_DB_PQ_H */
