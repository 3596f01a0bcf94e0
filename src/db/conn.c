/*
 * conn.c - finding and opening the database connection.
 *
 * Resolution order (DESIGN.md, spec "Database Connection"): --db, then
 * DATABASE_URL, then the PG* variables (libpq reads them itself), then a
 * .env file in the working directory holding DATABASE_URL or PG* lines.
 * Passwords never leave this file in clear: every message shows
 * db_conninfo_redacted().
 */
#include "db/db_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *const pg_vars[] = { "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD",
                                       "PGDATABASE", "PGSERVICE", "PGHOSTADDR" };

static int any_pg_var_set(void)
{
    for (size_t i = 0; i < sizeof pg_vars / sizeof pg_vars[0]; i++) {
        const char *v = getenv(pg_vars[i]);
        if (v && *v)
            return 1;
    }
    return 0;
}

/* Append "key='value'" to b, quoting as libpq's conninfo parser expects. */
static void conninfo_add(struct kb_buf *b, const char *key, const char *value)
{
    if (b->len)
        kb_buf_putc(b, ' ');
    kb_buf_printf(b, "%s='", key);
    for (const char *p = value; *p; p++) {
        if (*p == '\'' || *p == '\\')
            kb_buf_putc(b, '\\');
        kb_buf_putc(b, *p);
    }
    kb_buf_putc(b, '\'');
}

/*
 * Read ./.env (dotenv.c); returns a conninfo or NULL when it holds no
 * connection settings.  Prints a warning per line it cannot read, naming
 * .env:LINE and never the line (it may hold a password).
 */
static char *conninfo_from_dotenv_warn(void)
{
    static const struct { const char *var, *key; } map[] = {
        { "PGHOST", "host" }, { "PGPORT", "port" }, { "PGUSER", "user" },
        { "PGPASSWORD", "password" }, { "PGDATABASE", "dbname" },
    };
    struct kb_buf text;
    struct kb_err err = { 0 };
    kb_buf_init(&text);
    if (kb_buf_read_file(&text, ".env", &err) != KB_OK) {
        kb_buf_release(&text);
        return NULL;
    }
    struct db_dotenv env;
    db_dotenv_parse(text.data ? text.data : "", text.len, &env);
    kb_buf_release(&text);
    for (size_t i = 0; i < env.n; i++)
        if (env.items[i].warning)
            log_warn(".env:%ld: %s", env.items[i].line, env.items[i].warning);
    const char *url = db_dotenv_get(&env, "DATABASE_URL");
    char *out = NULL;
    if (url && *url) {
        out = kb_xstrdup(url);
    } else {
        struct kb_buf kv;
        kb_buf_init(&kv);
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
            const char *v = db_dotenv_get(&env, map[i].var);
            if (v && *v)
                conninfo_add(&kv, map[i].key, v);
        }
        out = kv.len ? kb_buf_detach(&kv) : NULL;
        kb_buf_release(&kv);
    }
    db_dotenv_release(&env);
    return out;
}

char *db_conninfo_resolve(const char *explicit_conninfo, const char **origin_out)
{
    const char *origin;
    char *out;
    const char *url = getenv("DATABASE_URL");
    if (explicit_conninfo) {
        origin = "--db";
        out = kb_xstrdup(explicit_conninfo);
    } else if (url && *url) {
        origin = "DATABASE_URL";
        out = kb_xstrdup(url);
    } else if (any_pg_var_set()) {
        origin = "PG* environment variables";
        out = kb_xstrdup("");
    } else if ((out = conninfo_from_dotenv_warn()) != NULL) {
        origin = ".env";
    } else {
        origin = "libpq defaults";
        out = kb_xstrdup("");
    }
    if (origin_out)
        *origin_out = origin;
    return out;
}

char *db_conninfo_redacted(const char *conninfo)
{
    return kb_redact(conninfo);   /* every form: src/util/redact.c */
}

/* db_connect, with the session's first round trip (is_deferred 0) or without. */
static enum kb_code connect_as(const char *conninfo, int is_deferred, struct db_conn **out,
                               struct kb_err *err)
{
    *out = NULL;
    /* expand_dbname=1: the first value may be a URL or a key=value string;
     * no other key is passed, so options in it (or PGOPTIONS) stay in force */
    const char *keys[] = { "fallback_application_name", "dbname", NULL };
    const char *vals[] = { "kbpipe", conninfo && *conninfo ? conninfo : NULL, NULL };
    if (vals[1] == NULL)
        keys[1] = NULL;
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    char *shown = db_conninfo_redacted(conninfo ? conninfo : "");
    if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
        char reason[400];
        snprintf(reason, sizeof reason, "%s", pg ? PQerrorMessage(pg) : "out of memory");
        size_t n = strlen(reason);
        while (n > 0 && (reason[n - 1] == '\n' || reason[n - 1] == ' '))
            reason[--n] = '\0';
        for (char *c = reason; *c; c++)
            if (*c == '\n')
                *c = ' ';
        PQfinish(pg);
        enum kb_code rc = KB_FAIL(err, KB_E_DB, NULL,
                                  "cannot connect to the database (%s): %s; check --db, "
                                  "DATABASE_URL or the PG* variables (is the server running?)",
                                  *shown ? shown : "PG* defaults", reason);
        free(shown);
        return rc;
    }
    struct db_conn *c = kb_xcalloc(1, sizeof *c);
    c->pg = pg;
    c->target = shown;
    enum kb_code rc = is_deferred ? KB_OK
                                  : db_session_setup(c, err);   /* one round trip: extensions.c */
    if (rc != KB_OK) {
        db_close(c);
        return rc;
    }
    *out = c;
    return KB_OK;
}

enum kb_code db_connect(const char *conninfo, struct db_conn **out, struct kb_err *err)
{
    return connect_as(conninfo, 0, out, err);
}

/* See db.h. */
enum kb_code db_connect_deferred(const char *conninfo, struct db_conn **out,
                                 struct kb_err *err)
{
    return connect_as(conninfo, 1, out, err);
}

void db_close(struct db_conn *conn)
{
    if (conn == NULL)
        return;
    PQfinish(conn->pg);
    free(conn->target);
    free(conn);
}

PGconn *db_conn_pg(struct db_conn *conn) { return conn->pg; }

const char *db_conn_sqlstate(const struct db_conn *conn) { return conn->sqlstate; }

const char *db_target(const struct db_conn *conn) { return conn->target; }

/* db_open, deferred or not. */
static enum kb_code open_as(int is_deferred, struct db_conn **out, struct kb_err *err)
{
    const char *origin = NULL;
    char *conninfo = db_conninfo_resolve(kb_cli.db, &origin);
    enum kb_code rc = connect_as(conninfo, is_deferred, out, err);
    if (rc == KB_OK)
        log_info("connected to %s (from %s)",
                 *db_target(*out) ? db_target(*out) : "PG* defaults", origin);
    free(conninfo);
    return rc;
}

enum kb_code db_open(struct db_conn **out, struct kb_err *err)
{
    return open_as(0, out, err);
}

/* See db.h. */
enum kb_code db_open_deferred(struct db_conn **out, struct kb_err *err)
{
    return open_as(1, out, err);
}
