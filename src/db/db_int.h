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
