/*
 * db_int.h - shared by the files of src/db only.
 */
#ifndef KB_DB_INT_H
#define KB_DB_INT_H

#include "db/db_pq.h"

struct db_conn {
    PGconn *pg;
    char *target;   /* redacted conninfo, for messages */
};

struct db_rows {
    PGresult *res;
};

#endif /* KB_DB_INT_H */
