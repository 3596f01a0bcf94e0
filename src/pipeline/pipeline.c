/*
 * pipeline.c - reading a pipeline (pipeline_load), the checks against the
 * disk (pipeline_check), the problem list and the origins of values.
 *
 * Problems are kept in file order and printed like a compiler's:
 *   kbpipe: pipelines/docs.yaml:14:15: chunking.overlap (600) must be smaller ...
 * The pipeline owns one arena holding every string, list and origin, so
 * pipeline_free() is one call whatever was read.
 */
#include "pipeline_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DIAGS 200

void pipeline_diag_add(struct kb_pipeline *p, const struct kb_origin *at, const char *fmt, ...)
{
    struct pipeline_priv *v = p->priv;
    p->n_diags++;
    if (v->n_diags >= MAX_DIAGS)
        return;   /* counted, not kept: the first 200 are plenty to act on */
    if (v->n_diags == v->cap_diags) {
        v->cap_diags = v->cap_diags ? v->cap_diags * 2 : 16;
        v->diags = kb_xrealloc(v->diags, sizeof *v->diags * (size_t)v->cap_diags);
    }
    struct diag *d = &v->diags[v->n_diags];
    d->seq = v->n_diags++;
    struct kb_origin o = at ? *at : (struct kb_origin){ .path = p->path };
    if (o.path == NULL)
        o.path = p->path;
    d->line = o.line;
    d->col = o.col;
    kb_origin_format(&o, d->origin, sizeof d->origin);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    kb_redact_in(d->msg, sizeof d->msg);   /* a quoted base_url or conninfo shows no password */
    v->is_sorted = 0;
}

void pipeline_origin_add(struct kb_pipeline *p, const char *key, const struct kb_origin *at)
{
    struct pipeline_priv *v = p->priv;
    if (v->n_origins == v->cap_origins) {
        v->cap_origins = v->cap_origins ? v->cap_origins * 2 : 64;
        v->origins = kb_xrealloc(v->origins, sizeof *v->origins * (size_t)v->cap_origins);
    }
    v->origins[v->n_origins].key = kb_arena_strdup(v->arena, key);
    v->origins[v->n_origins].at = *at;
    v->n_origins++;
}

const struct kb_origin *pipeline_origin(const struct kb_pipeline *p, const char *key)
{
    for (int i = 0; i < p->priv->n_origins; i++)
        if (strcmp(p->priv->origins[i].key, key) == 0)
            return &p->priv->origins[i].at;
    return NULL;
}

static int diag_cmp(const void *a, const void *b)
{
    const struct diag *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void sort_diags(const struct kb_pipeline *p)
{
    struct pipeline_priv *v = p->priv;
    if (!v->is_sorted && v->n_diags > 1)
        qsort(v->diags, (size_t)v->n_diags, sizeof *v->diags, diag_cmp);
    v->is_sorted = 1;
}

const char *pipeline_diag(const struct kb_pipeline *p, int i, const char **origin)
{
    sort_diags(p);
    if (i < 0 || i >= p->priv->n_diags)
        return NULL;
    if (origin)
        *origin = p->priv->diags[i].origin;
    return p->priv->diags[i].msg;
}

void pipeline_diags_print(const struct kb_pipeline *p, FILE *out)
{
    sort_diags(p);
    for (int i = 0; i < p->priv->n_diags; i++)
        fprintf(out, "kbpipe: %s: %s\n", p->priv->diags[i].origin, p->priv->diags[i].msg);
    if (p->n_diags > p->priv->n_diags)
        fprintf(out, "kbpipe: %s: ... and %d more problems\n", p->path,
                p->n_diags - p->priv->n_diags);
}

static enum kb_code summary(struct kb_pipeline *p, struct kb_err *err)
{
    if (p->n_diags == 0)
        return KB_OK;
    struct kb_origin at = { .path = p->path };
    return KB_FAIL(err, KB_E_CONFIG, &at, "%d problem%s found; fix %s and run kbpipe validate "
                   "again", p->n_diags, p->n_diags == 1 ? "" : "s",
                   p->n_diags == 1 ? "it" : "them");
}

enum kb_code pipeline_load(const char *path, struct kb_pipeline **out, struct kb_err *err)
{
    *out = NULL;
    struct kb_pipeline *p = kb_xcalloc(1, sizeof *p);
    p->priv = kb_xcalloc(1, sizeof *p->priv);
    p->priv->arena = kb_arena_new();
    p->path = kb_arena_strdup(p->priv->arena, path);
    struct kb_arena *tree = kb_arena_new();
    struct node *root;
    enum kb_code rc = pipeline_yaml_read(p, tree, &root, err);
    if (rc != KB_OK) {
        kb_arena_free(tree);
        pipeline_free(p);
        return rc;
    }
    if (root == NULL && p->n_diags == 0) {
        struct kb_origin at = { .path = p->path, .line = 1, .col = 1 };
        pipeline_diag_add(p, &at, "the file is empty; a pipeline needs name:, project: and "
                          "sources: (see docs/pipelines.md)");
    }
    if (root)
        pipeline_schema_apply(p, root);
    kb_arena_free(tree);
    *out = p;
    return summary(p, err);
}

/* base_dir joined with path (path as-is when absolute or base is "."); caller frees. */
static char *join(const char *base_dir, const char *path)
{
    if (path[0] == '/' || base_dir == NULL || !strcmp(base_dir, "."))
        return kb_xstrdup(path);
    return kb_xasprintf("%s/%s", base_dir, path);
}

static const char *where_from(const char *base_dir)
{
    return base_dir && strcmp(base_dir, ".") ? base_dir : "the working directory";
}

/* A problem unless base_dir/path is a readable regular file. */
static void check_file(struct kb_pipeline *p, const char *base_dir, const char *path,
                       const char *key)
{
    if (path == NULL)
        return;
    char *full = join(base_dir, path);
    struct stat sb;
    const struct kb_origin *at = pipeline_origin(p, key);
    if (stat(full, &sb) != 0)
        pipeline_diag_add(p, at, "%s: '%.80s' %s (relative paths start at %s)", key, full,
                          errno == ENOENT ? "does not exist" : strerror(errno),
                          where_from(base_dir));
    else if (S_ISDIR(sb.st_mode))
        pipeline_diag_add(p, at, "%s: '%.80s' is a folder; name the file itself", key, full);
    else if (!S_ISREG(sb.st_mode))
        pipeline_diag_add(p, at, "%s: '%.80s' is not a file", key, full);
    else if (access(full, R_OK) != 0)
        pipeline_diag_add(p, at, "%s: '%.80s' cannot be read: %s", key, full, strerror(errno));
    free(full);
}

static void check_files(struct kb_pipeline *p, int i, const char *base_dir)
{
    const struct ingest_source *s = &p->sources[i];
    const struct ingest_files_opts *o = &s->u.files;
    int ok = 1;
    for (int r = 0; r < o->roots.n; r++) {
        char *full = join(base_dir, o->roots.v[r]);
        struct stat sb;
        if (stat(full, &sb) != 0) {
            pipeline_diag_add(p, &o->roots.at[r], "sources[%d].roots[%d]: '%.80s' %s "
                              "(relative paths start at %s)", i, r, full,
                              errno == ENOENT ? "does not exist" : strerror(errno),
                              where_from(base_dir));
            ok = 0;
        }
        free(full);
    }
    if (o->roots.n == 0)
        return;
    /* globs are checked against the roots that exist */
    struct ingest_source live = *s;
    const char **v = kb_xcalloc((size_t)o->roots.n, sizeof *v);
    struct kb_origin *vat = kb_xcalloc((size_t)o->roots.n, sizeof *vat);
    live.u.files.roots.v = v;
    live.u.files.roots.at = vat;
    live.u.files.roots.n = 0;
    for (int r = 0; r < o->roots.n; r++) {
        char *full = join(base_dir, o->roots.v[r]);
        struct stat sb;
        if (stat(full, &sb) == 0) {
            v[live.u.files.roots.n] = o->roots.v[r];
            vat[live.u.files.roots.n++] = o->roots.at[r];
        }
        free(full);
    }
    long *hits = kb_xcalloc((size_t)o->include.n + 1, sizeof *hits), n_files = 0;
    struct kb_err e = { 0 };
    if (live.u.files.roots.n == 0) {
        /* nothing to match against: the missing roots are the problem */
    } else if (ingest_files_count(&live, base_dir, hits, &n_files, &e) != KB_OK) {
        pipeline_diag_add(p, &o->roots.at[0], "%s", e.msg);
    } else {
        for (int g = 0; g < o->include.n; g++)
            if (hits[g] == 0)
                pipeline_diag_add(p, &o->include.at[g], "sources[%d].include[%d]: glob '%.80s' "
                                  "matches no file under the roots; fix the glob or remove it",
                                  i, g, o->include.v[g]);
        if (n_files == 0 && o->include.n == 0)
            pipeline_diag_add(p, &o->roots.at[0], "sources[%d]: the roots hold no files%s", i,
                              o->exclude.n ? " that the exclude globs let through" : "");
    }
    (void)ok;
    free(hits);
    free(v);
    free(vat);
}

static int has_col(char **cols, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(cols[i], name) == 0)
            return 1;
    return 0;
}

static void check_csv(struct kb_pipeline *p, int i, const char *base_dir, int with_header)
{
    const struct ingest_source *s = &p->sources[i];
    const struct ingest_csv_opts *o = &s->u.csv;
    char key[64];
    snprintf(key, sizeof key, "sources[%d].path", i);
    int before = p->n_diags;
    check_file(p, base_dir, o->path, key);
    if (p->n_diags != before || o->path == NULL || !with_header)
        return;
    char **cols = NULL;
    int n = 0;
    struct kb_err e = { 0 };
    if (ingest_csv_header(s, base_dir, &cols, &n, &e) != KB_OK) {
        pipeline_diag_add(p, pipeline_origin(p, key), "%s: %s", e.origin, e.msg);
        return;
    }
    struct kb_buf names;
    kb_buf_init(&names);
    for (int c = 0; c < n && names.len < 300; c++)
        kb_buf_printf(&names, "%s%s", c ? ", " : "", cols[c]);
    const struct ingest_csv_columns *m = &o->columns;
    const struct { const char *field, *col; } map[] = {
        { "title", m->title }, { "content", m->content }, { "url", m->url },
        { "author", m->author }, { "learning_type", m->learning_type },
        { "category", m->category }, { "tags", m->tags },
        { "confidence_score", m->confidence_score }, { "impact_level", m->impact_level },
    };
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
        if (map[k].col && !has_col(cols, n, map[k].col)) {
            char ck[96];
            snprintf(ck, sizeof ck, "sources[%d].columns.%s", i, map[k].field);
            pipeline_diag_add(p, pipeline_origin(p, ck), "%s: column '%.60s' is not in the "
                              "header of %.80s; the header has: %s", ck, map[k].col, o->path,
                              names.data ? names.data : "");
        }
    }
    if (m->content == NULL && !has_col(cols, n, "content"))
        pipeline_diag_add(p, &s->at, "sources[%d]: %.80s has no 'content' column; map one with "
                          "columns: {content: COLUMN} (the header has: %s)", i, o->path,
                          names.data ? names.data : "");
    for (int k = 0; k < m->metadata.n; k++)
        if (!has_col(cols, n, m->metadata.v[k]))
            pipeline_diag_add(p, &m->metadata.at[k], "sources[%d].columns.metadata[%d]: column "
                              "'%.60s' is not in the header of %.80s; the header has: %s", i, k,
                              m->metadata.v[k], o->path, names.data ? names.data : "");
    for (int k = 0; k < o->key.n; k++)
        if (!has_col(cols, n, o->key.v[k]))
            pipeline_diag_add(p, &o->key.at[k], "sources[%d].key: column '%.60s' is not in the "
                              "header of %.80s; the header has: %s", i, o->key.v[k], o->path,
                              names.data ? names.data : "");
    if (o->key.n == 0 && !has_col(cols, n, "id"))
        pipeline_diag_add(p, &s->at, "sources[%d]: %.80s has no 'id' column; set key: to the "
                          "column(s) that identify a row (the header has: %s)", i, o->path,
                          names.data ? names.data : "");
    kb_buf_release(&names);
    for (int c = 0; c < n; c++)
        free(cols[c]);
    free(cols);
}

/* The checks of pipeline_check; with_headers 0 leaves the CSV headers out. */
static enum kb_code check_all(struct kb_pipeline *p, const char *base_dir, int with_headers,
                              struct kb_err *err)
{
    for (int i = 0; i < p->n_sources; i++) {
        const struct ingest_source *s = &p->sources[i];
        char key[64];
        switch (s->type) {
        case INGEST_FILES:
            check_files(p, i, base_dir);
            break;
        case INGEST_CSV:
            check_csv(p, i, base_dir, with_headers);
            break;
        case INGEST_GITHUB_ISSUES:
            snprintf(key, sizeof key, "sources[%d].path", i);
            check_file(p, base_dir, s->u.issues.path, key);
            snprintf(key, sizeof key, "sources[%d].comments", i);
            check_file(p, base_dir, s->u.issues.comments_path, key);
            break;
        case INGEST_GITHUB:
            /* nothing on disk; token_env is checked when the source opens, since
             * validate often runs where the token is not (CI, a laptop) */
            break;
        case INGEST_SQL:
            /* the query's columns need the database: checked when the source opens */
            snprintf(key, sizeof key, "sources[%d].query_file", i);
            if (s->u.sql.query_file && access(s->u.sql.query_file, R_OK) != 0)
                pipeline_diag_add(p, pipeline_origin(p, key), "%s: '%.80s' cannot be read: %s "
                                  "(a relative query_file starts at the pipeline file's "
                                  "folder)", key, s->u.sql.query_file, strerror(errno));
            break;
        }
    }
    if (p->embedding.provider == PIPELINE_EMBED_IMPORT)
        check_file(p, base_dir, p->embedding.import_file, "embedding.file");
    return summary(p, err);
}

void pipeline_free(struct kb_pipeline *p)
{
    if (p == NULL)
        return;
    kb_arena_free(p->priv->arena);
    free(p->priv->diags);
    free(p->priv->origins);
    free(p->priv);
    free(p);
}

const char *pipeline_splitter_name(enum pipeline_splitter s)
{
    static const char *const n[] = { "markdown", "recursive", "fixed" };
    return (unsigned)s < 3 ? n[s] : "?";
}

const char *pipeline_unit_name(enum pipeline_unit u)
{
    return u == PIPELINE_UNIT_CHARS ? "chars" : "tokens";
}

const char *pipeline_provider_name(enum pipeline_provider p)
{
    static const char *const n[] = { "hash", "import", "openai" };
    return (unsigned)p < 3 ? n[p] : "?";
}

const char *pipeline_index_strategy_name(enum pipeline_index_strategy s)
{
    static const char *const n[] = { "auto", "keep", "rebuild" };
    return (unsigned)s < 3 ? n[s] : "?";
}

const char *pipeline_dedup_action_name(enum pipeline_dedup_action a)
{
    static const char *const n[] = { "report", "mark", "merge" };
    return (unsigned)a < 3 ? n[a] : "?";
}

enum kb_code pipeline_check(struct kb_pipeline *p, const char *base_dir, struct kb_err *err)
{
    return check_all(p, base_dir, 1, err);
}

/* See pipeline.h. */
enum kb_code pipeline_check_run(struct kb_pipeline *p, const char *base_dir, struct kb_err *err)
{
    return check_all(p, base_dir, 0, err);
}

/* See pipeline.h. */
enum kb_code pipeline_check_csv_header(struct kb_pipeline *p, int i, const char *base_dir,
                                       struct kb_err *err)
{
    if (p->sources[i].type == INGEST_CSV)
        check_csv(p, i, base_dir, 1);
    return summary(p, err);
}
