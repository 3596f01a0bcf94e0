/*
 * schema_sql.c - the keys of a type: sql source (issue 18), for schema.c:
 * query or query_file (one of them; a query_file is relative to the
 * pipeline file's folder), columns {source_id, title, text, url}, or a
 * template over columns instead of columns.text, metadata, watermark,
 * database_env, fetch_rows.  What needs the database (the query's columns)
 * is checked when the source opens, before any row is read.
 *
 *   supervisor.yaml:14:5: unknown key 'watermak' in a sql source (did you
 *       mean 'watermark'?); expected one of: name, type, ...
 *   supervisor.yaml:19:15: sources[0].template: the template's '{title' at
 *       byte 0 is never closed; write {COLUMN}, or '{{' for a brace
 */
#include "pipeline_int.h"

#include <ctype.h>
#include <string.h>

/* An environment variable's name: letters, digits, '_', not starting with a digit. */
static int is_env_name(const char *s)
{
    int ok = isalpha((unsigned char)s[0]) || s[0] == '_';
    for (const char *p = s; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || *p == '_';
    return ok;
}

/* path relative to the folder of the pipeline file `pipe` (as-is when absolute). */
static const char *beside(struct kb_arena *a, const char *pipe, const char *path)
{
    const char *slash = pipe ? strrchr(pipe, '/') : NULL;
    if (path[0] == '/' || slash == NULL)
        return path;
    return kb_arena_printf(a, "%.*s/%s", (int)(slash - pipe), pipe, path);
}

static void read_columns(struct schema_ctx *c, const struct node *m, const char *pre,
                         struct ingest_sql_opts *o)
{
    const struct node *cm = schema_want_map(c, schema_lookup(m, "columns"),
                                            kb_arena_printf(c->a, "%s.columns", pre),
                                            "columns: {source_id: id, title: title, text: body}");
    if (cm == NULL)
        return;
    static const char *const keys[] = { "source_id", "title", "text", "url", NULL };
    schema_check_keys(c, cm, kb_arena_printf(c->a, "%s.columns", pre), keys);
    const char **dst[] = { &o->col_source_id, &o->col_title, &o->col_text, &o->col_url };
    for (size_t i = 0; i < sizeof dst / sizeof dst[0]; i++)
        schema_want_str(c, schema_lookup(cm, keys[i]),
                        kb_arena_printf(c->a, "%s.columns.%s", pre, keys[i]), dst[i]);
}

void schema_read_sql(struct schema_ctx *c, const struct node *m, const char *pre,
                     struct ingest_source *src)
{
#define K(name) kb_arena_printf(c->a, "%s.%s", pre, name)
    struct ingest_sql_opts *o = &src->u.sql;
    static const char *const keys[] = { "name", "type", "target", "on_error", "max_errors",
                                        "query", "query_file", "columns", "template",
                                        "metadata", "watermark", "database_env", "fetch_rows",
                                        "max_record_size",
                                        NULL };
    schema_check_keys(c, m, "a sql source", keys);
    const struct node *qn = schema_lookup(m, "query"), *fn = schema_lookup(m, "query_file");
    if (qn && fn)
        pipeline_diag_add(c->p, &fn->at, "%s has both 'query' and 'query_file'; keep one", pre);
    else if (qn == NULL && fn == NULL)
        pipeline_diag_add(c->p, &m->at, "%s (sql) has no 'query'; add query: SELECT ... (or "
                          "query_file: FILE.sql, relative to the pipeline file)", pre);
    if (qn && schema_want_str(c, qn, K("query"), &o->query))
        o->query_at = qn->at;
    if (fn && !qn && schema_want_str(c, fn, K("query_file"), &o->query_file)) {
        o->query_file = beside(c->a, c->p->path, o->query_file);
        o->query_at = fn->at;
    }
    if (schema_lookup(m, "columns") == NULL)
        pipeline_diag_add(c->p, &m->at, "%s (sql) has no 'columns'; add columns: {source_id: "
                          "COLUMN, text: COLUMN} (title: and url: are optional)", pre);
    read_columns(c, m, pre, o);
    const struct node *tn = schema_lookup(m, "template");
    if (schema_want_str(c, tn, K("template"), &o->template_text)) {
        struct kb_err terr = { 0 };
        if (ingest_sql_template_check(o->template_text, NULL, NULL, &terr) != KB_OK)
            pipeline_diag_add(c->p, &tn->at, "%s: %s", K("template"), terr.msg);
    }
    const struct node *cm = schema_lookup(m, "columns");
    if (cm && cm->kind == NODE_MAP && schema_lookup(cm, "source_id") == NULL)
        pipeline_diag_add(c->p, &cm->at, "%s.columns has no 'source_id'; add source_id: COLUMN "
                          "(the column that identifies a row)", pre);
    if (cm && cm->kind == NODE_MAP && schema_lookup(cm, "text") == NULL && tn == NULL)
        pipeline_diag_add(c->p, &cm->at, "%s.columns has no 'text'; add text: COLUMN, or a "
                          "template: over several columns", pre);
    if (tn && cm && cm->kind == NODE_MAP && schema_lookup(cm, "text"))
        pipeline_diag_add(c->p, &tn->at, "%s has both columns.text and 'template'; keep one",
                          pre);
    const struct node *mn = schema_lookup(m, "metadata");
    if (mn) {
        o->has_metadata = 1;
        if (!(mn->kind == NODE_SEQ && mn->n == 0))
            schema_want_strs(c, mn, K("metadata"), &o->metadata);
    }
    schema_want_str(c, schema_lookup(m, "watermark"), K("watermark"), &o->watermark);
    const struct node *dn = schema_lookup(m, "database_env");
    if (schema_want_str(c, dn, K("database_env"), &o->database_env) &&
        !is_env_name(o->database_env))
        pipeline_diag_add(c->p, &dn->at, "%s.database_env must name an environment variable "
                          "(e.g. database_env: SERVICE_DATABASE_URL) and never hold the "
                          "conninfo itself (the value is not shown)", pre);
    schema_want_int(c, schema_lookup(m, "fetch_rows"), K("fetch_rows"), 1, 100000,
                    "fetch_rows: 500", &o->fetch_rows);
    schema_want_size(c, schema_lookup(m, "max_record_size"), K("max_record_size"),
                     &o->max_record_size);
    if (src->target == KB_TARGET_LEARNINGS)
        pipeline_diag_add(c->p, &schema_lookup(m, "target")->at, "%s: a sql source loads into "
                          "knowledge only; remove target: learnings", pre);
#undef K
}
