/*
 * sql.c - type: sql, the rows of a query as documents (issue 18).
 *
 * The reader opens its own connection (the pipeline's database, or the
 * conninfo in $database_env), so the loader's connection stays free for
 * writing.  At the first ingest_next, when the stored marks are known:
 *
 *   1. BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY: one snapshot for
 *      the whole read, and no statement of the query can write;
 *   2. SELECT * FROM (query) AS kb_q LIMIT 0: the query's columns, so a
 *      mapped or templated column that is missing is named (with the
 *      columns there are) before any row is read;
 *   3. DECLARE kb_sql NO SCROLL CURSOR FOR SELECT * FROM (query) AS kb_q
 *        [WHERE kb_q.WM IS NULL OR kb_q.WM >= $1]   -- a stored mark
 *        [ORDER BY kb_q.WM NULLS FIRST]              -- a watermark
 *      then FETCH fetch_rows at a time, each FETCH read a row at a time
 *      (libpq's single-row mode): memory holds one row, never the result
 *      (tests/integration/run_sql_source.sh measures 300k rows).  With
 *      max_record_size (default 8 MB), the cursor selects each column as
 *      CASE WHEN octet_length(kb_q::text) <= max THEN col END, then the
 *      start of the source_id and that size: a row over the limit comes
 *      as NULLs and is rejected, located, without its bytes being sent.
 *
 * The watermark: rows come in watermark order, so the last non-NULL one
 * read is the highest; it is the reader's mark "watermark", which the run
 * stores only after it succeeded.  The next run asks for rows >= the mark
 * (not >): a row committed after the read with the same watermark as the
 * last one read is still found, and rows read again are unchanged
 * documents that the document hash skips.  A row whose watermark is NULL
 * is read every run.
 *
 * Rows are documents: source_type "sql", the source_id column, the title
 * and url columns (optional), the text column or the template, and the
 * metadata (the remaining or the listed columns, each a JSON string or
 * null).  A NULL or empty source_id or text is the row's reject, located
 * "PIPELINE: source NAME: row N".
 */
#include "ingest_int.h"

#include <stdlib.h>
#include <string.h>

#include "db/db.h"

#define SQL_MAX_QUERY_FILE (1L * 1024 * 1024)

/* A piece of the template: literal text, or a column (index into the columns). */
struct tpl_part {
    const char *lit;               /* owned by sql_state.tpl_text, not NUL-terminated */
    size_t len;
    char *col;                     /* the column's name, or NULL for a literal */
    int ci;                        /* the column's index once known */
};

struct sql_state {
    struct db_conn *conn;
    char *query;                   /* the SQL, trailing blanks and ';' removed */
    char *origin_path;             /* "PIPELINE: source NAME" */
    int is_started, is_done;
    struct db_stream *stream;      /* the current FETCH, read a row at a time */
    const struct db_rows *rows;    /* its current row (owned by the stream) */
    int i_row, n_rows;
    long n_fetched;                /* rows the current FETCH gave so far */
    long row_no;                   /* rows read, 1-based for messages */
    int n_cols;
    char **cols;                   /* the query's column names */
    int ci_id, ci_title, ci_text, ci_url, ci_wm;
    unsigned char *is_meta;        /* per column: 1 in the metadata */
    struct tpl_part *tpl;
    int n_tpl;
    struct kb_buf text;            /* the template's text of the current row */
    char *wm_last;                 /* the highest watermark read */
};

/* ---- the template --------------------------------------------------------- */

enum kb_code ingest_sql_template_check(const char *tmpl,
                                       void (*each)(void *arg, const char *name, size_t len),
                                       void *arg, struct kb_err *err)
{
    for (const char *p = tmpl; *p; p++) {
        if (*p == '}') {
            if (p[1] != '}')
                return KB_FAIL(err, KB_E_CONFIG, NULL, "the template has a lone '}' at byte "
                               "%ld; write '}}' for a brace", (long)(p - tmpl));
            p++;
            continue;
        }
        if (*p != '{')
            continue;
        if (p[1] == '{') {
            p++;
            continue;
        }
        const char *e = p + 1 + strcspn(p + 1, "{}\n");
        if (*e != '}')
            return KB_FAIL(err, KB_E_CONFIG, NULL, "the template's '{%.*s' at byte %ld is never "
                           "closed; write {COLUMN}, or '{{' for a brace",
                           (int)(e - p - 1 > 60 ? 60 : e - p - 1), p + 1, (long)(p - tmpl));
        size_t len = (size_t)(e - p - 1);
        int ok = len > 0;
        for (const char *q = p + 1; ok && q < e; q++)
            ok = (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
                 (*q >= '0' && *q <= '9') || strchr("_.- ", *q) != NULL;
        if (!ok)
            return KB_FAIL(err, KB_E_CONFIG, NULL, "the template's '{%.*s}' at byte %ld is not "
                           "a column name (letters, digits, '_', '.', '-', ' '); write "
                           "{COLUMN}, or '{{' for a brace", (int)(len > 60 ? 60 : len), p + 1,
                           (long)(p - tmpl));
        if (each)
            each(arg, p + 1, len);
        p = e;
    }
    return KB_OK;
}

static void tpl_add(struct sql_state *st, const char *lit, size_t len, const char *col,
                    size_t col_len)
{
    st->tpl = kb_xrealloc(st->tpl, sizeof *st->tpl * (size_t)(st->n_tpl + 1));
    struct tpl_part *t = &st->tpl[st->n_tpl++];
    t->lit = lit;
    t->len = len;
    t->col = col ? kb_xasprintf("%.*s", (int)col_len, col) : NULL;
    t->ci = -1;
}

/* The template as parts: literal runs (braces doubled stay doubled, undone
 * when rendered) and columns. */
static void tpl_parse(struct sql_state *st, const char *tmpl)
{
    const char *from = tmpl;
    for (const char *p = tmpl; *p; p++) {
        if ((*p == '{' || *p == '}') && p[1] == *p) {
            p++;
            continue;
        }
        if (*p != '{')
            continue;
        const char *e = strchr(p + 1, '}');   /* checked: the template is valid */
        if (p > from)
            tpl_add(st, from, (size_t)(p - from), NULL, 0);
        tpl_add(st, NULL, 0, p + 1, (size_t)(e - p - 1));
        p = e;
        from = e + 1;
    }
    if (*from)
        tpl_add(st, from, strlen(from), NULL, 0);
}

/* A literal part into b, "{{" and "}}" as one brace. */
static void tpl_literal(struct kb_buf *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        kb_buf_putc(b, s[i]);
        if ((s[i] == '{' || s[i] == '}') && i + 1 < len && s[i + 1] == s[i])
            i++;
    }
}

/* ---- the query ------------------------------------------------------------ */

static int find_col(const struct sql_state *st, const char *name)
{
    for (int i = 0; i < st->n_cols; i++)
        if (strcmp(st->cols[i], name) == 0)
            return i;
    return -1;
}

/* KB_E_CONFIG naming a column the query does not return, and those it does. */
static enum kb_code no_column(struct ingest_reader *rd, const char *what, const char *name,
                              struct kb_err *err)
{
    struct sql_state *st = rd->state;
    struct kb_buf have;
    kb_buf_init(&have);
    for (int i = 0; i < st->n_cols && have.len < 200; i++)
        kb_buf_printf(&have, "%s%s", i ? ", " : "", st->cols[i]);
    KB_FAIL(err, KB_E_CONFIG, &rd->src->u.sql.query_at,
            "%s names column '%.60s', which the query does not return (it returns: %s); fix "
            "the name or add the column to the query", what, name,
            have.data ? have.data : "no columns");
    kb_buf_release(&have);
    return KB_E_CONFIG;
}

/* The query's columns, and every column the source names found among them. */
static enum kb_code resolve_columns(struct ingest_reader *rd, struct kb_err *err)
{
    struct sql_state *st = rd->state;
    const struct ingest_sql_opts *o = &rd->src->u.sql;
    char *sql = kb_xasprintf("SELECT * FROM (\n%s\n) AS kb_q LIMIT 0", st->query);
    struct db_rows *rows = NULL;
    enum kb_code rc = db_exec(st->conn, sql, 0, NULL, &rows, err);
    free(sql);
    if (rc != KB_OK) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return KB_FAIL(err, rc, &o->query_at, "the query failed: %s", msg);
    }
    st->n_cols = db_rows_cols(rows);
    st->cols = kb_xcalloc((size_t)(st->n_cols ? st->n_cols : 1), sizeof *st->cols);
    for (int i = 0; i < st->n_cols; i++)
        st->cols[i] = kb_xstrdup(db_rows_colname(rows, i));
    db_rows_free(rows);

    const struct { const char *name, *what; int *ci; } want[] = {
        { o->col_source_id, "columns.source_id", &st->ci_id },
        { o->col_title, "columns.title", &st->ci_title },
        { o->col_text, "columns.text", &st->ci_text },
        { o->col_url, "columns.url", &st->ci_url },
        { o->watermark, "watermark", &st->ci_wm },
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        *want[k].ci = -1;
        if (want[k].name && (*want[k].ci = find_col(st, want[k].name)) < 0)
            return no_column(rd, want[k].what, want[k].name, err);
    }
    for (int k = 0; k < st->n_tpl; k++)
        if (st->tpl[k].col && (st->tpl[k].ci = find_col(st, st->tpl[k].col)) < 0)
            return no_column(rd, "the template", st->tpl[k].col, err);
    st->is_meta = kb_xcalloc((size_t)(st->n_cols ? st->n_cols : 1), 1);
    if (o->has_metadata) {
        for (int k = 0; k < o->metadata.n; k++) {
            int ci = find_col(st, o->metadata.v[k]);
            if (ci < 0)
                return no_column(rd, "metadata", o->metadata.v[k], err);
            st->is_meta[ci] = 1;
        }
    } else {
        /* the remaining columns: not the document's fields nor the template's */
        for (int i = 0; i < st->n_cols; i++)
            st->is_meta[i] = i != st->ci_id && i != st->ci_title && i != st->ci_text &&
                             i != st->ci_url;
        for (int k = 0; k < st->n_tpl; k++)
            if (st->tpl[k].col)
                st->is_meta[st->tpl[k].ci] = 0;
    }
    return KB_OK;
}

/* The transaction, the columns and the cursor (the stored mark is known now). */
static enum kb_code start(struct ingest_reader *rd, struct kb_err *err)
{
    struct sql_state *st = rd->state;
    const struct ingest_sql_opts *o = &rd->src->u.sql;
    st->is_started = 1;
    enum kb_code rc = db_exec(st->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0,
                              NULL, NULL, err);
    if (rc == KB_OK)
        rc = resolve_columns(rd, err);
    if (rc != KB_OK)
        return rc;
    const char *mark = o->watermark ? ingest_state_lookup(rd, "watermark") : NULL;
    if (mark)
        st->wm_last = kb_xstrdup(mark);   /* no newer row: the mark stays */
    struct kb_buf sql;
    kb_buf_init(&sql);
    if (o->max_record_size > 0) {
        /* a row over the limit comes back as NULLs, its size and the start
         * of its id, so it is rejected without being read */
        kb_buf_puts(&sql, "DECLARE kb_sql NO SCROLL CURSOR FOR SELECT ");
        for (int i = 0; i < st->n_cols; i++) {
            char *c = db_ident(st->conn, st->cols[i]);
            kb_buf_printf(&sql, "CASE WHEN kb_sz.n <= %ld THEN kb_q.%s END AS %s, ",
                          o->max_record_size, c, c);
            free(c);
        }
        char *id = db_ident(st->conn, o->col_source_id);
        kb_buf_printf(&sql, "left(kb_q.%s::text, 200), kb_sz.n FROM (\n%s\n) AS kb_q CROSS "
                      "JOIN LATERAL (SELECT octet_length(kb_q::text) AS n) AS kb_sz", id,
                      st->query);
        free(id);
    } else {
        kb_buf_printf(&sql, "DECLARE kb_sql NO SCROLL CURSOR FOR SELECT * FROM (\n%s\n) AS "
                      "kb_q", st->query);
    }
    if (o->watermark) {
        char *wm = db_ident(st->conn, o->watermark);
        /* $1 takes the column's type: the mark is the text the server gave */
        if (mark)
            kb_buf_printf(&sql, " WHERE kb_q.%s IS NULL OR kb_q.%s >= $1", wm, wm);
        kb_buf_printf(&sql, " ORDER BY kb_q.%s NULLS FIRST", wm);
        free(wm);
    }
    const char *params[] = { mark };
    rc = db_exec(st->conn, sql.data, mark ? 1 : 0, params, NULL, err);
    kb_buf_release(&sql);
    if (rc != KB_OK) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return KB_FAIL(err, rc, &o->query_at, "the query failed: %s%s", msg,
                       mark ? " (with the stored watermark; run with --full to read every "
                       "row)" : "");
    }
    if (mark)
        log_debug("source %s: rows with %s >= %s", rd->src->name, o->watermark, mark);
    return KB_OK;
}

/* ---- rows ------------------------------------------------------------------- */

/* A row's reject: KB_E_INPUT at row N, with the source_id (if any) as its bytes. */
static enum kb_code row_bad(struct ingest_reader *rd, const struct kb_origin *at,
                            const char *id, struct kb_err *err, const char *fmt,
                            const char *col, const char *what)
{
    ingest_bad_set(rd, at, 0, id, id ? strlen(id) : 0);
    return KB_FAIL(err, KB_E_INPUT, at, fmt, col, what);
}

static enum kb_code row_document(struct ingest_reader *rd, struct kb_arena *arena,
                                 struct kb_document **out, struct kb_err *err)
{
    struct sql_state *st = rd->state;
    const struct ingest_sql_opts *o = &rd->src->u.sql;
    const struct db_rows *rows = st->rows;
    int i = st->i_row++;
    struct kb_origin at = { .path = st->origin_path, .row = ++st->row_no };
    if (o->max_record_size > 0 &&
        strtol(db_rows_get(rows, i, st->n_cols + 1), NULL, 10) > o->max_record_size) {
        const char *big_id = db_rows_get(rows, i, st->n_cols);
        return row_bad(rd, &at, big_id, err, "the row is %s bytes in its text form, over "
                       "max_record_size (%s); raise max_record_size, or select less of it",
                       db_rows_get(rows, i, st->n_cols + 1),
                       kb_arena_printf(arena, "%ld", o->max_record_size));
    }
    if (st->ci_wm >= 0 && !db_rows_isnull(rows, i, st->ci_wm)) {
        free(st->wm_last);   /* rows come in watermark order: the last is the highest */
        st->wm_last = kb_xstrdup(db_rows_get(rows, i, st->ci_wm));
    }
    const char *id = db_rows_get(rows, i, st->ci_id);
    if (db_rows_isnull(rows, i, st->ci_id) || *id == '\0')
        return row_bad(rd, &at, NULL, err, "column '%s' (source_id) is %s; every row needs "
                       "an id (e.g. coalesce it, or filter the row out in the query)",
                       o->col_source_id, db_rows_isnull(rows, i, st->ci_id) ? "NULL" : "empty");
    const char *text;
    size_t len;
    if (st->n_tpl > 0) {
        kb_buf_reset(&st->text);
        for (int k = 0; k < st->n_tpl; k++) {
            if (st->tpl[k].col)
                kb_buf_puts(&st->text, db_rows_get(rows, i, st->tpl[k].ci));   /* NULL: "" */
            else
                tpl_literal(&st->text, st->tpl[k].lit, st->tpl[k].len);
        }
        text = st->text.data ? st->text.data : "";
        len = st->text.len;
    } else {
        if (db_rows_isnull(rows, i, st->ci_text))
            return row_bad(rd, &at, id, err, "column '%s' (text) is %s; filter the row out "
                           "in the query, or coalesce the column", o->col_text, "NULL");
        text = db_rows_get(rows, i, st->ci_text);
        len = strlen(text);
    }
    struct kb_document *d = ingest_doc_new(rd, arena, "sql");
    d->origin = at;
    char *norm;
    enum kb_code rc = ingest_text_normalize(text, len, INGEST_UTF8_REPLACE, &at, "text", arena,
                                            &norm, &d->len, err);
    if (rc != KB_OK) {
        ingest_bad_set(rd, &at, 0, id, strlen(id));
        return rc;
    }
    d->text = norm;
    d->source_id = kb_arena_strdup(arena, id);
    if (st->ci_title >= 0 && !db_rows_isnull(rows, i, st->ci_title))
        d->title = kb_arena_strdup(arena, db_rows_get(rows, i, st->ci_title));
    if (st->ci_url >= 0 && !db_rows_isnull(rows, i, st->ci_url))
        d->url = kb_arena_strdup(arena, db_rows_get(rows, i, st->ci_url));
    json_t *meta = json_object();
    for (int c = 0; c < st->n_cols; c++)
        if (st->is_meta[c])
            json_object_set_new(meta, st->cols[c], db_rows_isnull(rows, i, c)
                                    ? json_null() : json_string(db_rows_get(rows, i, c)));
    d->metadata_json = ingest_json_text(arena, meta);
    json_decref(meta);
    *out = d;
    return KB_OK;
}

static enum kb_code sql_next(struct ingest_reader *rd, struct kb_arena *arena,
                             struct kb_document **out, struct kb_err *err)
{
    struct sql_state *st = rd->state;
    if (st->is_done)
        return KB_OK;
    enum kb_code rc = KB_OK;
    if (!st->is_started && (rc = start(rd, err)) != KB_OK) {
        st->is_done = 1;
        return rc;
    }
    /* FETCH fetch_rows at a time, each read a row at a time (single-row
     * mode: memory holds one row); a FETCH that gives no row is the end */
    while (rc == KB_OK && st->i_row >= st->n_rows) {
        if (st->stream == NULL) {
            char fetch[64];
            snprintf(fetch, sizeof fetch, "FETCH %d FROM kb_sql", rd->src->u.sql.fetch_rows);
            rc = db_stream_open(st->conn, fetch, 0, NULL, &st->stream, err);
            st->n_fetched = 0;
            if (rc != KB_OK)
                break;
        }
        rc = db_stream_next(st->stream, &st->rows, err);
        if (rc == KB_OK && st->rows) {
            st->i_row = 0;
            st->n_rows = db_rows_count(st->rows);
            st->n_fetched += st->n_rows;
            continue;
        }
        db_stream_close(st->stream);
        st->stream = NULL;
        st->i_row = st->n_rows = 0;
        if (rc == KB_OK && st->n_fetched == 0) {
            st->is_done = 1;
            rc = db_exec(st->conn, "COMMIT", 0, NULL, NULL, err);
            if (rc == KB_OK && st->wm_last)
                ingest_state_set(rd, "watermark", st->wm_last);
            return rc;
        }
    }
    if (rc != KB_OK) {
        kb_err_prefix(err, "reading row %ld", st->row_no + 1);
        st->is_done = 1;
        return rc;
    }
    return row_document(rd, arena, out, err);
}

static void sql_close(struct ingest_reader *rd)
{
    struct sql_state *st = rd->state;
    if (st == NULL)
        return;
    db_stream_close(st->stream);   /* and the row it holds */
    db_close(st->conn);   /* an open transaction ends with the session: read only */
    for (int i = 0; i < st->n_cols; i++)
        free(st->cols[i]);
    free(st->cols);
    for (int k = 0; k < st->n_tpl; k++)
        free(st->tpl[k].col);
    free(st->tpl);
    free(st->is_meta);
    kb_buf_release(&st->text);
    free(st->wm_last);
    free(st->query);
    free(st->origin_path);
    free(st);
    rd->state = NULL;
}

/* The query text: query:, or the file query_file names; without trailing blanks and ';'. */
static enum kb_code load_query(struct ingest_reader *rd, char **out, struct kb_err *err)
{
    const struct ingest_sql_opts *o = &rd->src->u.sql;
    struct kb_buf b;
    kb_buf_init(&b);
    if (o->query) {
        kb_buf_puts(&b, o->query);
    } else {
        char *path = ingest_path_join(rd->base_dir, o->query_file);
        enum kb_code rc = kb_buf_read_file(&b, path, err);
        free(path);
        if (rc != KB_OK) {
            kb_buf_release(&b);
            return rc;
        }
        if ((long)b.len > SQL_MAX_QUERY_FILE || memchr(b.data ? b.data : "", '\0', b.len)) {
            kb_buf_release(&b);
            return KB_FAIL(err, KB_E_CONFIG, &o->query_at, "query_file '%.80s' is not a query "
                           "(over 1 MB, or binary); name the .sql file", o->query_file);
        }
    }
    size_t n = b.len;
    while (n && strchr(" \t\r\n;", b.data[n - 1]))
        n--;
    if (n == 0) {
        kb_buf_release(&b);
        return KB_FAIL(err, KB_E_CONFIG, &o->query_at, "the query is empty; write a SELECT");
    }
    b.data[n] = '\0';
    b.len = n;
    *out = kb_buf_detach(&b);
    return KB_OK;
}

enum kb_code ingest_sql_open(struct ingest_reader *rd, struct kb_err *err)
{
    const struct ingest_source *src = rd->src;
    const struct ingest_sql_opts *o = &src->u.sql;
    struct sql_state *st = kb_xcalloc(1, sizeof *st);
    rd->state = st;
    rd->next = sql_next;
    rd->close = sql_close;
    kb_buf_init(&st->text);
    st->ci_id = st->ci_title = st->ci_text = st->ci_url = st->ci_wm = -1;
    st->origin_path = kb_xasprintf("%s: source %s", src->at.path ? src->at.path : "pipeline",
                                   src->name);
    if (o->col_source_id == NULL || (o->col_text == NULL && o->template_text == NULL))
        return KB_FAIL(err, KB_E_CONFIG, &src->at, "columns.source_id and columns.text (or "
                       "template) are required");
    if (o->template_text) {
        enum kb_code rc = ingest_sql_template_check(o->template_text, NULL, NULL, err);
        if (rc != KB_OK)
            return rc;
        tpl_parse(st, o->template_text);
    }
    enum kb_code rc = load_query(rd, &st->query, err);
    if (rc != KB_OK)
        return rc;
    char *conninfo;
    if (o->database_env) {
        const char *v = getenv(o->database_env);
        if (v == NULL || *v == '\0')
            return KB_FAIL(err, KB_E_CONFIG, &src->at, "database_env names $%s, which is not "
                           "set; export it with the database's conninfo or URL",
                           o->database_env);
        conninfo = kb_xstrdup(v);
    } else {
        conninfo = db_conninfo_resolve(kb_cli.db, NULL);
    }
    rc = db_connect(conninfo, &st->conn, err);
    free(conninfo);
    if (rc != KB_OK && o->database_env)
        kb_err_prefix(err, "$%s", o->database_env);   /* run_source adds "source NAME" */
    return rc;
}
