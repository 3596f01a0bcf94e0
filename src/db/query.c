/*
 * query.c - running statements and reading their rows.  Every statement
 * with values goes through PQexecParams (text parameters); scripts without
 * parameters (shipped SQL such as migrations) through PQexec.
 */
#include "db/db_int.h"

#include <stdlib.h>
#include <string.h>

enum kb_code db_result_error(struct db_conn *conn, const PGresult *res, const char *what,
                             struct kb_err *err)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(conn->sqlstate, sizeof conn->sqlstate, "%s", state ? state : "");
    char ext[64];
    if (db_extension_denied(state, primary, ext, sizeof ext))
        return db_extension_denied_error(conn, ext, err);
    char buf[400];
    if (primary == NULL) {
        snprintf(buf, sizeof buf, "%s", PQerrorMessage(conn->pg));
        size_t n = strlen(buf);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
            buf[--n] = '\0';
        for (char *c = buf; *c; c++)
            if (*c == '\n')
                *c = ' ';
        primary = buf[0] ? buf : "the connection was lost";
    }
    return KB_FAIL(err, KB_E_DB, NULL, "%s: %s%s%s%s%s%s", what, primary,
                   detail ? " (" : "", detail ? detail : "", detail ? ")" : "",
                   hint ? "; " : "", hint ? hint : "");
}

static enum kb_code check_result(struct db_conn *conn, PGresult *res, const char *sql,
                                 struct kb_err *err)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return KB_OK;
    char what[96];
    /* name the statement by its first words, never its values */
    snprintf(what, sizeof what, "query \"%.60s%s\"", sql, strlen(sql) > 60 ? "..." : "");
    for (char *c = what; *c; c++)
        if (*c == '\n' || *c == '\t')
            *c = ' ';
    return db_result_error(conn, res, what, err);
}

enum kb_code db_exec(struct db_conn *conn, const char *sql, int n_params,
                     const char *const *params, struct db_rows **out, struct kb_err *err)
{
    PGresult *res = PQexecParams(conn->pg, sql, n_params, NULL, params, NULL, NULL, 0);
    enum kb_code rc = check_result(conn, res, sql, err);
    if (rc != KB_OK || out == NULL) {
        PQclear(res);
        return rc;
    }
    struct db_rows *rows = kb_xmalloc(sizeof *rows);
    rows->res = res;
    *out = rows;
    return KB_OK;
}

/* See db.h. */
enum kb_code db_exec_each(struct db_conn *conn, const char *sql, int n_params,
                          const char *const *params,
                          enum kb_code (*fn)(const char *const *cols, void *ctx,
                                             struct kb_err *err),
                          void *ctx, struct kb_err *err)
{
    struct db_rows *rows;
    enum kb_code rc = db_exec(conn, sql, n_params, params, &rows, err);
    if (rc != KB_OK)
        return rc;
    int n = db_rows_count(rows), m = db_rows_cols(rows);
    const char **cols = kb_xcalloc((size_t)(m ? m : 1), sizeof *cols);
    for (int r = 0; r < n && rc == KB_OK; r++) {
        for (int c = 0; c < m; c++)
            cols[c] = db_rows_isnull(rows, r, c) ? NULL : db_rows_get(rows, r, c);
        rc = fn(cols, ctx, err);
    }
    free(cols);
    db_rows_free(rows);
    return rc;
}

struct db_stream {
    struct db_conn *conn;
    struct db_rows row;            /* the row db_stream_next gave, cleared at the next */
    int is_done;
    char sql[64];                  /* the statement's first words, for messages */
};

/* See db.h. */
enum kb_code db_stream_open(struct db_conn *conn, const char *sql, int n_params,
                            const char *const *params, struct db_stream **out,
                            struct kb_err *err)
{
    *out = NULL;
    if (!PQsendQueryParams(conn->pg, sql, n_params, NULL, params, NULL, NULL, 0))
        return check_result(conn, NULL, sql, err);   /* names it with PQerrorMessage */
    (void)PQsetSingleRowMode(conn->pg);   /* if refused, the rows come as one result */
    struct db_stream *s = kb_xcalloc(1, sizeof *s);
    s->conn = conn;
    snprintf(s->sql, sizeof s->sql, "%s", sql);
    *out = s;
    return KB_OK;
}

/* See db.h. */
enum kb_code db_stream_next(struct db_stream *s, const struct db_rows **row_out,
                            struct kb_err *err)
{
    *row_out = NULL;
    PQclear(s->row.res);
    s->row.res = NULL;
    enum kb_code rc = KB_OK;
    while (!s->is_done) {
        PGresult *res = PQgetResult(s->conn->pg);
        if (res == NULL) {
            s->is_done = 1;
            break;
        }
        ExecStatusType st = PQresultStatus(res);
        if ((st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) && PQntuples(res) > 0 &&
            rc == KB_OK) {
            s->row.res = res;
            *row_out = &s->row;
            return KB_OK;
        }
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && rc == KB_OK)
            rc = check_result(s->conn, res, s->sql, err);
        PQclear(res);   /* the end, or a failure: read on until libpq says it is over */
    }
    return rc;
}

/* See db.h. */
void db_stream_close(struct db_stream *s)
{
    if (s == NULL)
        return;
    PQclear(s->row.res);
    PGresult *res;
    while (!s->is_done && (res = PQgetResult(s->conn->pg)) != NULL)
        PQclear(res);
    free(s);
}

enum kb_code db_exec_script(struct db_conn *conn, const char *sql, int *err_pos_out,
                            struct kb_err *err)
{
    if (err_pos_out)
        *err_pos_out = 0;
    PGresult *res = PQexec(conn->pg, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
        PQclear(res);
        return KB_OK;
    }
    const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
    if (err_pos_out && pos)
        *err_pos_out = atoi(pos);
    enum kb_code rc = db_result_error(conn, res, "the server refused it", err);
    PQclear(res);
    return rc;
}

enum kb_code db_begin(struct db_conn *conn, struct kb_err *err)
{
    return db_exec(conn, "BEGIN", 0, NULL, NULL, err);
}

enum kb_code db_commit(struct db_conn *conn, struct kb_err *err)
{
    return db_exec(conn, "COMMIT", 0, NULL, NULL, err);
}

void db_rollback(struct db_conn *conn)
{
    PQclear(PQexec(conn->pg, "ROLLBACK"));
}

int db_rows_count(const struct db_rows *rows) { return PQntuples(rows->res); }
int db_rows_cols(const struct db_rows *rows) { return PQnfields(rows->res); }

const char *db_rows_get(const struct db_rows *rows, int row, int col)
{
    return PQgetvalue(rows->res, row, col);
}

int db_rows_isnull(const struct db_rows *rows, int row, int col)
{
    return PQgetisnull(rows->res, row, col);
}

const char *db_rows_colname(const struct db_rows *rows, int col)
{
    return PQfname(rows->res, col);
}

void db_rows_free(struct db_rows *rows)
{
    if (rows == NULL)
        return;
    PQclear(rows->res);
    free(rows);
}

char *db_ident(struct db_conn *conn, const char *name)
{
    char *q = PQescapeIdentifier(conn->pg, name, strlen(name));
    if (q == NULL)
        return kb_xstrdup("\"?\"");
    char *out = kb_xstrdup(q);
    PQfreemem(q);
    return out;
}
