/*
 * schema.c - the expected shape of a pipeline file, applied to the node
 * tree: every section's keys and their types, defaults, and the meaning
 * checks that need neither disk nor database.
 *
 * Each problem is added to the pipeline's list and the walk goes on, so
 * one `kbpipe validate` names every mistake.  Messages give the key path,
 * what was expected and what was found:
 *
 *   docs.yaml:7:9: chunking.size must be an integer from 1 to 100000
 *       (e.g. size: 512), found 'big'
 *   docs.yaml:12:3: unknown key 'overlapp' in chunking (did you mean
 *       'overlap'?); expected one of: splitter, unit, size, overlap
 */
#include "pipeline_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ctx {
    struct kb_pipeline *p;
    struct kb_arena *a;
};

static const char *kind_name(const struct node *n)
{
    if (n->kind == NODE_MAP)
        return "a mapping";
    if (n->kind == NODE_SEQ)
        return "a list";
    return "a scalar";
}

/* found: 'text' for scalars, "a mapping" / "a list" otherwise */
static const char *found(struct ctx *c, const struct node *n)
{
    if (n->kind != NODE_SCALAR)
        return kind_name(n);
    if (n->is_plain && (n->value[0] == '\0' || !strcmp(n->value, "~") || !strcmp(n->value, "null")))
        return "nothing (null)";
    return kb_arena_printf(c->a, "'%.60s'", n->value);
}

static void remember(struct ctx *c, const char *key, const struct node *n)
{
    pipeline_origin_add(c->p, key, &n->at);
}

static const struct node *lookup(const struct node *map, const char *key)
{
    for (int i = 0; map && map->kind == NODE_MAP && i < map->n; i++)
        if (strcmp(map->keys[i]->value, key) == 0)
            return map->vals[i];
    return NULL;
}

static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    int d[41][41];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

/* Unknown keys of `map` (allowed: NULL-terminated) are problems. */
static void check_keys(struct ctx *c, const struct node *map, const char *section,
                       const char *const *allowed)
{
    for (int i = 0; i < map->n; i++) {
        const char *k = map->keys[i]->value;
        int ok = 0, best = 99;
        const char *near = NULL;
        for (const char *const *a = allowed; *a; a++) {
            if (strcmp(*a, k) == 0)
                ok = 1;
            int d = edit_distance(*a, k);
            if (d < best) {
                best = d;
                near = *a;
            }
        }
        if (ok)
            continue;
        struct kb_buf list;
        kb_buf_init(&list);
        for (const char *const *a = allowed; *a; a++)
            kb_buf_printf(&list, "%s%s", a == allowed ? "" : ", ", *a);
        char hint[128] = "";
        if (near && best <= 2)
            snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
        pipeline_diag_add(c->p, &map->keys[i]->at, "unknown key '%.60s' in %s%s; expected one "
                          "of: %s", k, section, hint, list.data);
        kb_buf_release(&list);
    }
}

/* A mapping, or a problem; NULL when absent or wrong. */
static const struct node *want_map(struct ctx *c, const struct node *n, const char *key,
                                   const char *example)
{
    if (n == NULL)
        return NULL;
    remember(c, key, n);
    if (n->kind == NODE_MAP)
        return n;
    if (n->kind == NODE_SCALAR && n->is_plain && n->value[0] == '\0')
        return NULL;   /* "chunking:" with nothing under it: all defaults */
    pipeline_diag_add(c->p, &n->at, "%s must be a mapping (e.g. %s), found %s", key, example,
                      found(c, n));
    return NULL;
}

static int is_null(const struct node *n)
{
    return n->kind == NODE_SCALAR && n->is_plain &&
           (n->value[0] == '\0' || !strcmp(n->value, "~") || !strcmp(n->value, "null"));
}

/* A non-empty string; NULL (and a problem) when wrong; absent: *out untouched. */
static int want_str(struct ctx *c, const struct node *n, const char *key, const char **out)
{
    if (n == NULL)
        return 0;
    remember(c, key, n);
    if (n->kind != NODE_SCALAR || is_null(n) || n->value[0] == '\0') {
        if (!n->has_unset_var)   /* the unset variable is the problem, already said */
            pipeline_diag_add(c->p, &n->at, "%s must be a non-empty string, found %s", key,
                              found(c, n));
        return 0;
    }
    *out = kb_arena_strdup(c->a, n->value);
    return 1;
}

static int want_long(struct ctx *c, const struct node *n, const char *key, long lo, long hi,
                     const char *example, long *out)
{
    if (n == NULL)
        return 0;
    remember(c, key, n);
    char *end = NULL;
    errno = 0;
    long v = n->kind == NODE_SCALAR ? strtol(n->value, &end, 10) : 0;
    if (n->kind != NODE_SCALAR || end == n->value || *end != '\0' || errno || v < lo || v > hi) {
        pipeline_diag_add(c->p, &n->at, "%s must be an integer from %ld to %ld (e.g. %s), "
                          "found %s", key, lo, hi, example, found(c, n));
        return 0;
    }
    *out = v;
    return 1;
}

static int want_int(struct ctx *c, const struct node *n, const char *key, long lo, long hi,
                    const char *example, int *out)
{
    long v;
    if (!want_long(c, n, key, lo, hi, example, &v))
        return 0;
    *out = (int)v;
    return 1;
}

static int want_double(struct ctx *c, const struct node *n, const char *key, double lo, double hi,
                       const char *example, double *out)
{
    if (n == NULL)
        return 0;
    remember(c, key, n);
    char *end = NULL;
    double v = n->kind == NODE_SCALAR ? strtod(n->value, &end) : 0;
    if (n->kind != NODE_SCALAR || end == n->value || *end != '\0' || !isfinite(v) || v < lo ||
        v > hi) {
        pipeline_diag_add(c->p, &n->at, "%s must be a number from %g to %g (e.g. %s), found %s",
                          key, lo, hi, example, found(c, n));
        return 0;
    }
    *out = v;
    return 1;
}

static int want_bool(struct ctx *c, const struct node *n, const char *key, int *out)
{
    if (n == NULL)
        return 0;
    remember(c, key, n);
    if (n->kind == NODE_SCALAR && n->is_plain) {
        static const char *const yes[] = { "true", "True", "TRUE", "yes", "on" };
        static const char *const no[] = { "false", "False", "FALSE", "no", "off" };
        for (size_t i = 0; i < 5; i++) {
            if (!strcmp(n->value, yes[i])) {
                *out = 1;
                return 1;
            }
            if (!strcmp(n->value, no[i])) {
                *out = 0;
                return 1;
            }
        }
    }
    pipeline_diag_add(c->p, &n->at, "%s must be true or false, found %s", key, found(c, n));
    return 0;
}

/* One of names[] (NULL-terminated): *out = its index. */
static int want_enum(struct ctx *c, const struct node *n, const char *key,
                     const char *const *names, int *out)
{
    if (n == NULL)
        return 0;
    remember(c, key, n);
    if (n->kind == NODE_SCALAR)
        for (int i = 0; names[i]; i++)
            if (strcmp(n->value, names[i]) == 0) {
                *out = i;
                return 1;
            }
    struct kb_buf list;
    kb_buf_init(&list);
    for (int i = 0; names[i]; i++)
        kb_buf_printf(&list, "%s%s", i == 0 ? "" : names[i + 1] ? ", " : " or ", names[i]);
    pipeline_diag_add(c->p, &n->at, "%s must be %s, found %s", key, list.data, found(c, n));
    kb_buf_release(&list);
    return 0;
}

/* A string or a list of strings into *out (with each item's origin). */
static void want_strs(struct ctx *c, const struct node *n, const char *key, struct ingest_strs *out)
{
    if (n == NULL)
        return;
    remember(c, key, n);
    if (n->kind == NODE_SCALAR && !is_null(n)) {
        out->v = kb_arena_alloc(c->a, sizeof *out->v);
        struct kb_origin *at = kb_arena_alloc(c->a, sizeof *at);
        out->v[0] = kb_arena_strdup(c->a, n->value);
        *at = n->at;
        out->at = at;
        out->n = 1;
        return;
    }
    if (n->kind != NODE_SEQ) {
        pipeline_diag_add(c->p, &n->at, "%s must be a string or a list of strings (e.g. "
                          "[\"a\", \"b\"]), found %s", key, found(c, n));
        return;
    }
    out->v = kb_arena_alloc(c->a, sizeof *out->v * (size_t)(n->n + 1));
    struct kb_origin *at = kb_arena_alloc(c->a, sizeof *at * (size_t)(n->n + 1));
    out->at = at;
    out->n = 0;
    for (int i = 0; i < n->n; i++) {
        const struct node *it = n->vals[i];
        char *ik = kb_arena_printf(c->a, "%s[%d]", key, i);
        remember(c, ik, it);
        if (it->kind != NODE_SCALAR || is_null(it) || it->value[0] == '\0') {
            pipeline_diag_add(c->p, &it->at, "%s must be a non-empty string, found %s", ik,
                              found(c, it));
            continue;
        }
        at[out->n] = it->at;
        out->v[out->n++] = kb_arena_strdup(c->a, it->value);
    }
}

static void want_char(struct ctx *c, const struct node *n, const char *key, char *out)
{
    const char *s = NULL;
    if (!want_str(c, n, key, &s))
        return;
    if (!strcmp(s, "\\t") || !strcmp(s, "tab") || !strcmp(s, "\t"))
        *out = '\t';
    else if (strlen(s) == 1 && s[0] != '\n' && s[0] != '\r')
        *out = s[0];
    else
        pipeline_diag_add(c->p, &n->at, "%s must be one character (e.g. \",\" or \"\\t\"), "
                          "found '%.20s'", key, s);
}

/* A byte size: 1048576, "512KB", "8MB", "1GB" (powers of 1024). */
static void want_size(struct ctx *c, const struct node *n, const char *key, long *out)
{
    if (n == NULL)
        return;
    remember(c, key, n);
    char *end = NULL;
    errno = 0;
    double v = n->kind == NODE_SCALAR ? strtod(n->value, &end) : -1;
    long mult = 0;
    if (end && end != n->value) {
        while (*end == ' ')
            end++;
        if (*end == '\0' || !strcasecmp(end, "B"))
            mult = 1;
        else if (!strcasecmp(end, "KB") || !strcasecmp(end, "K") || !strcasecmp(end, "KiB"))
            mult = 1024;
        else if (!strcasecmp(end, "MB") || !strcasecmp(end, "M") || !strcasecmp(end, "MiB"))
            mult = 1024L * 1024;
        else if (!strcasecmp(end, "GB") || !strcasecmp(end, "G") || !strcasecmp(end, "GiB"))
            mult = 1024L * 1024 * 1024;
    }
    if (mult == 0 || !(v >= 1) || v * (double)mult > 1e15) {
        pipeline_diag_add(c->p, &n->at, "%s must be a size in bytes, or with KB, MB or GB "
                          "(e.g. 8MB), found %s", key, found(c, n));
        return;
    }
    *out = (long)(v * (double)mult);
}

static int valid_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return 0;
    return 1;
}

/* ---- sections ------------------------------------------------------------ */

static void read_chunking(struct ctx *c, const struct node *root)
{
    struct pipeline_chunking *ch = &c->p->chunking;
    ch->size = 512;
    ch->overlap = 64;
    const struct node *m = want_map(c, lookup(root, "chunking"), "chunking",
                                    "chunking: {splitter: markdown, size: 512, overlap: 64}");
    if (m == NULL)
        return;
    static const char *const keys[] = { "splitter", "unit", "size", "overlap", NULL };
    check_keys(c, m, "chunking", keys);
    static const char *const splitters[] = { "markdown", "recursive", "fixed", NULL };
    static const char *const units[] = { "tokens", "chars", NULL };
    int v;
    if (want_enum(c, lookup(m, "splitter"), "chunking.splitter", splitters, &v))
        ch->splitter = (enum pipeline_splitter)v;
    if (want_enum(c, lookup(m, "unit"), "chunking.unit", units, &v))
        ch->unit = (enum pipeline_unit)v;
    want_int(c, lookup(m, "size"), "chunking.size", 1, 100000, "size: 512", &ch->size);
    int size_ok = lookup(m, "size") == NULL || ch->size >= 1;
    if (want_int(c, lookup(m, "overlap"), "chunking.overlap", 0, 100000, "overlap: 64",
                 &ch->overlap) || lookup(m, "overlap") == NULL) {
        if (size_ok && ch->overlap >= ch->size) {
            const struct node *at = lookup(m, "overlap") ? lookup(m, "overlap") : lookup(m, "size");
            pipeline_diag_add(c->p, &(at ? at : m)->at, "chunking.overlap (%d) must be smaller "
                              "than chunking.size (%d); a common choice is about 1/8 of the "
                              "size", ch->overlap, ch->size);
        }
    }
}

static void read_embedding(struct ctx *c, const struct node *root)
{
    struct pipeline_embedding *e = &c->p->embedding;
    e->dimensions = KB_PIPELINE_DIM;
    e->batch_size = 64;
    e->timeout_ms = 60000;
    e->max_retries = 5;
    e->max_in_flight = 4;
    e->max_tokens_per_request = 300000;
    const struct node *m = want_map(c, lookup(root, "embedding"), "embedding",
                                    "embedding: {provider: hash}");
    if (m == NULL) {
        e->model = "kbpipe-hash-v1";
        return;
    }
    static const char *const keys[] = { "provider", "model", "dimensions", "base_url",
                                        "api_key_env", "batch_size", "timeout_ms",
                                        "max_retries", "max_in_flight",
                                        "max_tokens_per_request", "file", "format", NULL };
    check_keys(c, m, "embedding", keys);
    static const char *const providers[] = { "hash", "import", "openai", NULL };
    static const char *const formats[] = { "jsonl", "csv", "openai_batch", NULL };
    int v;
    if (want_enum(c, lookup(m, "provider"), "embedding.provider", providers, &v))
        e->provider = (enum pipeline_provider)v;
    want_str(c, lookup(m, "model"), "embedding.model", &e->model);
    want_str(c, lookup(m, "base_url"), "embedding.base_url", &e->base_url);
    want_str(c, lookup(m, "api_key_env"), "embedding.api_key_env", &e->api_key_env);
    want_str(c, lookup(m, "file"), "embedding.file", &e->import_file);
    if (want_enum(c, lookup(m, "format"), "embedding.format", formats, &v))
        e->import_format = (enum pipeline_import_format)v;
    want_int(c, lookup(m, "batch_size"), "embedding.batch_size", 1, 2048, "batch_size: 64",
             &e->batch_size);
    want_int(c, lookup(m, "timeout_ms"), "embedding.timeout_ms", 100, 3600000,
             "timeout_ms: 60000", &e->timeout_ms);
    want_int(c, lookup(m, "max_retries"), "embedding.max_retries", 0, 100, "max_retries: 5",
             &e->max_retries);
    /* 64: more connections than a rate limit usefully allows (openai.c checks it too) */
    want_int(c, lookup(m, "max_in_flight"), "embedding.max_in_flight", 1, 64,
             "max_in_flight: 4", &e->max_in_flight);
    /* OpenAI's own limit is 300,000 per request; a local server may want far fewer */
    want_int(c, lookup(m, "max_tokens_per_request"), "embedding.max_tokens_per_request", 1,
             10000000, "max_tokens_per_request: 300000", &e->max_tokens_per_request);
    const struct node *dn = lookup(m, "dimensions");
    long dims;
    if (dn && want_long(c, dn, "embedding.dimensions", 1, 100000, "dimensions: 1536", &dims) &&
        dims != KB_PIPELINE_DIM)
        pipeline_diag_add(c->p, &dn->at, "embedding.dimensions is %ld, but the schema stores "
                          "vector(%d); use a %d-dimension model (e.g. text-embedding-3-small) "
                          "or remove the key", dims, KB_PIPELINE_DIM, KB_PIPELINE_DIM);

    const struct node *pn = lookup(m, "provider");
    const struct kb_origin *pat = pn ? &pn->at : &m->at;
    if (e->provider == PIPELINE_EMBED_OPENAI) {
        static const char *const need[] = { "base_url", "model", "api_key_env" };
        static const char *const eg[] = { "base_url: https://api.openai.com/v1",
                                          "model: text-embedding-3-small",
                                          "api_key_env: OPENAI_API_KEY" };
        for (int i = 0; i < 3; i++)
            if (lookup(m, need[i]) == NULL)
                pipeline_diag_add(c->p, pat, "embedding.provider openai needs embedding.%s "
                                  "(e.g. %s)", need[i], eg[i]);
    } else if (e->provider == PIPELINE_EMBED_IMPORT) {
        if (lookup(m, "file") == NULL)
            pipeline_diag_add(c->p, pat, "embedding.provider import needs embedding.file, the "
                              "vectors to import (e.g. file: vectors.jsonl)");
        if (e->model == NULL)
            e->model = "imported";
    } else if (e->model == NULL) {
        e->model = "kbpipe-hash-v1";
    } else if (strcmp(e->model, "kbpipe-hash-v1") != 0) {
        const struct node *mn = lookup(m, "model");
        pipeline_diag_add(c->p, mn ? &mn->at : pat, "embedding.model '%s' is not the hash "
                          "provider's model; the built-in embedder is 'kbpipe-hash-v1' (or "
                          "remove the key)", e->model);
    }
}

static void read_load(struct ctx *c, const struct node *root)
{
    struct pipeline_load *l = &c->p->load;
    l->batch_rows = 1000;
    l->rebuild_ratio = 0.2;
    l->rebuild_min_rows = 1000;
    const struct node *m = want_map(c, lookup(root, "load"), "load",
                                    "load: {batch_rows: 1000, index_strategy: auto}");
    if (m == NULL)
        return;
    static const char *const keys[] = { "batch_rows", "index_strategy", "rebuild_ratio",
                                        "rebuild_min_rows", NULL };
    check_keys(c, m, "load", keys);
    static const char *const strategies[] = { "auto", "keep", "rebuild", NULL };
    int v;
    want_int(c, lookup(m, "batch_rows"), "load.batch_rows", 1, 1000000, "batch_rows: 1000",
             &l->batch_rows);
    if (want_enum(c, lookup(m, "index_strategy"), "load.index_strategy", strategies, &v))
        l->index_strategy = (enum pipeline_index_strategy)v;
    want_double(c, lookup(m, "rebuild_ratio"), "load.rebuild_ratio", 0, 1000, "rebuild_ratio: 0.2",
                &l->rebuild_ratio);
    want_long(c, lookup(m, "rebuild_min_rows"), "load.rebuild_min_rows", 0, 1000000000L,
              "rebuild_min_rows: 1000", &l->rebuild_min_rows);
}

static void read_dedup(struct ctx *c, const struct node *root, int has_learnings)
{
    struct pipeline_dedup *d = &c->p->dedup;
    d->is_enabled = has_learnings;
    d->threshold = -1;                 /* the model's calibrated default */
    d->action = PIPELINE_DEDUP_MARK;
    const struct node *m = want_map(c, lookup(root, "dedup"), "dedup",
                                    "dedup: {enabled: true, threshold: 0.7, action: mark}");
    if (m == NULL)
        return;
    static const char *const keys[] = { "enabled", "threshold", "action", NULL };
    check_keys(c, m, "dedup", keys);
    static const char *const actions[] = { "report", "mark", "merge", NULL };
    int v;
    want_bool(c, lookup(m, "enabled"), "dedup.enabled", &d->is_enabled);
    want_double(c, lookup(m, "threshold"), "dedup.threshold", 0, 1, "threshold: 0.7",
                &d->threshold);
    if (want_enum(c, lookup(m, "action"), "dedup.action", actions, &v))
        d->action = (enum pipeline_dedup_action)v;
}

static void read_csv_columns(struct ctx *c, const struct node *n, const char *key,
                             struct ingest_csv_columns *cols)
{
    const struct node *m = want_map(c, n, key, "columns: {title: title, content: body}");
    if (m == NULL)
        return;
    static const char *const keys[] = { "title", "content", "url", "author", "learning_type",
                                        "category", "tags", "confidence_score", "impact_level",
                                        "metadata", NULL };
    check_keys(c, m, key, keys);
    const char **dst[] = { &cols->title, &cols->content, &cols->url, &cols->author,
                           &cols->learning_type, &cols->category, &cols->tags,
                           &cols->confidence_score, &cols->impact_level };
    for (size_t i = 0; i < sizeof dst / sizeof dst[0]; i++)
        want_str(c, lookup(m, keys[i]), kb_arena_printf(c->a, "%s.%s", key, keys[i]), dst[i]);
    want_strs(c, lookup(m, "metadata"), kb_arena_printf(c->a, "%s.metadata", key), &cols->metadata);
}

static void read_source(struct ctx *c, const struct node *m, int i, struct ingest_source *src)
{
    const char *pre = kb_arena_printf(c->a, "sources[%d]", i);
#define K(name) kb_arena_printf(c->a, "%s.%s", pre, name)
    static const char *const types[] = { "files", "csv", "github_issues", NULL };
    int type = -1;
    const struct node *tn = lookup(m, "type");
    if (tn == NULL)
        pipeline_diag_add(c->p, &m->at, "%s has no 'type'; add type: files, csv or "
                          "github_issues", pre);
    else
        want_enum(c, tn, K("type"), types, &type);
    ingest_source_defaults(src, type < 0 ? INGEST_FILES : (enum ingest_type)type);
    src->at = m->at;
    remember(c, pre, m);
    if (!want_str(c, lookup(m, "name"), K("name"), &src->name)) {
        if (lookup(m, "name") == NULL)
            pipeline_diag_add(c->p, &m->at, "%s has no 'name'; add name: SOME_NAME (it names "
                              "the source in reports and rejects)", pre);
        src->name = pre;
    } else if (!valid_name(src->name)) {
        pipeline_diag_add(c->p, &lookup(m, "name")->at, "%s.name '%.60s' may hold only letters, "
                          "digits, '-', '_' and '.'", pre, src->name);
    }
    static const char *const targets[] = { "knowledge", "learnings", NULL };
    static const char *const on_error[] = { "fail", "skip", NULL };
    int v;
    if (want_enum(c, lookup(m, "target"), K("target"), targets, &v))
        src->target = (enum kb_target)v;
    if (want_enum(c, lookup(m, "on_error"), K("on_error"), on_error, &v))
        src->on_error = (enum ingest_on_error)v;
    want_long(c, lookup(m, "max_errors"), K("max_errors"), 0, 1000000000L, "max_errors: 100",
              &src->max_errors);
    if (type < 0)
        return;   /* the type's own keys cannot be checked */

    const char *section = kb_arena_printf(c->a, "a %s source", types[type]);
    if (type == INGEST_FILES) {
        static const char *const keys[] = { "name", "type", "target", "on_error", "max_errors",
                                            "roots", "include", "exclude", "max_file_size",
                                            "on_invalid_utf8", "front_matter", "format",
                                            "drop", "max_pages", NULL };
        check_keys(c, m, section, keys);
        struct ingest_files_opts *o = &src->u.files;
        if (lookup(m, "roots") == NULL)
            pipeline_diag_add(c->p, &m->at, "%s (files) has no 'roots'; add roots: [FOLDER]",
                              pre);
        want_strs(c, lookup(m, "roots"), K("roots"), &o->roots);
        want_strs(c, lookup(m, "include"), K("include"), &o->include);
        want_strs(c, lookup(m, "exclude"), K("exclude"), &o->exclude);
        want_size(c, lookup(m, "max_file_size"), K("max_file_size"), &o->max_file_size);
        static const char *const utf8[] = { "reject", "replace", NULL };
        if (want_enum(c, lookup(m, "on_invalid_utf8"), K("on_invalid_utf8"), utf8, &v))
            o->on_invalid_utf8 = (enum ingest_on_utf8)v;
        want_bool(c, lookup(m, "front_matter"), K("front_matter"), &o->front_matter);
        static const char *const formats[] = { "auto", "markdown", "text", "code", "html",
                                               "pdf", NULL };
        if (want_enum(c, lookup(m, "format"), K("format"), formats, &v))
            o->format = (enum ingest_file_format)v;
        want_int(c, lookup(m, "max_pages"), K("max_pages"), 1, 1000000, "max_pages: 2000",
                 &o->max_pages);
        want_strs(c, lookup(m, "drop"), K("drop"), &o->drop);
        for (int k = 0; k < o->drop.n; k++)
            if (!ingest_html_selector_valid(o->drop.v[k]))
                pipeline_diag_add(c->p, &o->drop.at[k], "%s[%d] '%.60s' is not a selector "
                                  "kbpipe knows; use a tag, .class or #id, or a tag with "
                                  "them (e.g. nav, .sidebar, div#toc)", K("drop"), k,
                                  o->drop.v[k]);
    } else if (type == INGEST_CSV) {
        static const char *const keys[] = { "name", "type", "target", "on_error", "max_errors",
                                            "path", "delimiter", "quote", "key", "columns",
                                            "tags_separator", "max_record_size",
                                            "on_invalid_utf8", NULL };
        check_keys(c, m, section, keys);
        struct ingest_csv_opts *o = &src->u.csv;
        if (lookup(m, "path") == NULL)
            pipeline_diag_add(c->p, &m->at, "%s (csv) has no 'path'; add path: FILE.csv", pre);
        want_str(c, lookup(m, "path"), K("path"), &o->path);
        want_char(c, lookup(m, "delimiter"), K("delimiter"), &o->delimiter);
        want_char(c, lookup(m, "quote"), K("quote"), &o->quote);
        want_char(c, lookup(m, "tags_separator"), K("tags_separator"), &o->tags_separator);
        want_strs(c, lookup(m, "key"), K("key"), &o->key);
        read_csv_columns(c, lookup(m, "columns"), K("columns"), &o->columns);
        want_size(c, lookup(m, "max_record_size"), K("max_record_size"), &o->max_record_size);
        static const char *const utf8[] = { "reject", "replace", NULL };
        if (want_enum(c, lookup(m, "on_invalid_utf8"), K("on_invalid_utf8"), utf8, &v))
            o->on_invalid_utf8 = (enum ingest_on_utf8)v;
        if (o->delimiter == o->quote)
            pipeline_diag_add(c->p, &m->at, "%s: delimiter and quote are both '%c'; they must "
                              "differ", pre, o->delimiter);
    } else {
        static const char *const keys[] = { "name", "type", "target", "on_error", "max_errors",
                                            "path", "comments", "repo", "format",
                                            "include_pull_requests", "upsert_issues",
                                            "max_record_size", NULL };
        check_keys(c, m, section, keys);
        struct ingest_issues_opts *o = &src->u.issues;
        if (lookup(m, "path") == NULL)
            pipeline_diag_add(c->p, &m->at, "%s (github_issues) has no 'path'; add path: "
                              "issues.json", pre);
        want_str(c, lookup(m, "path"), K("path"), &o->path);
        want_str(c, lookup(m, "comments"), K("comments"), &o->comments_path);
        if (want_str(c, lookup(m, "repo"), K("repo"), &o->repo)) {
            const char *s = strchr(o->repo, '/');
            if (s == NULL || s == o->repo || s[1] == '\0' || strchr(s + 1, '/'))
                pipeline_diag_add(c->p, &lookup(m, "repo")->at, "%s.repo must be OWNER/NAME "
                                  "(e.g. acme/supervisor-service), found '%.60s'", pre, o->repo);
        }
        static const char *const formats[] = { "auto", "gh", "rest", NULL };
        if (want_enum(c, lookup(m, "format"), K("format"), formats, &v))
            o->format = (enum ingest_issue_format)v;
        want_bool(c, lookup(m, "include_pull_requests"), K("include_pull_requests"),
                  &o->include_pull_requests);
        want_bool(c, lookup(m, "upsert_issues"), K("upsert_issues"), &o->upsert_issues);
        want_size(c, lookup(m, "max_record_size"), K("max_record_size"), &o->max_record_size);
    }
#undef K
}

static void read_sources(struct ctx *c, const struct node *root)
{
    const struct node *n = lookup(root, "sources");
    if (n == NULL) {
        pipeline_diag_add(c->p, &root->at, "the pipeline has no 'sources'; add a list of "
                          "sources (see docs/pipelines.md)");
        return;
    }
    remember(c, "sources", n);
    if (n->kind != NODE_SEQ || n->n == 0) {
        pipeline_diag_add(c->p, &n->at, "sources must be a non-empty list of sources (each "
                          "- name: ..., type: ...), found %s",
                          n->kind == NODE_SEQ ? "an empty list" : found(c, n));
        return;
    }
    c->p->sources = kb_arena_calloc(c->a, sizeof *c->p->sources * (size_t)n->n);
    for (int i = 0; i < n->n; i++) {
        const struct node *m = n->vals[i];
        if (m->kind != NODE_MAP) {
            pipeline_diag_add(c->p, &m->at, "sources[%d] must be a mapping (name: ..., type: "
                              "...), found %s", i, found(c, m));
            continue;
        }
        struct ingest_source *src = &c->p->sources[c->p->n_sources];
        read_source(c, m, i, src);
        for (int k = 0; k < c->p->n_sources; k++)
            if (strcmp(c->p->sources[k].name, src->name) == 0)
                pipeline_diag_add(c->p, &m->at, "source name '%.60s' is used twice (first at "
                                  "line %ld); names must be unique", src->name,
                                  c->p->sources[k].at.line);
        c->p->n_sources++;
    }
}

void pipeline_schema_apply(struct kb_pipeline *p, const struct node *root)
{
    struct ctx c = { .p = p, .a = p->priv->arena };
    if (root->kind != NODE_MAP) {
        pipeline_diag_add(p, &root->at, "a pipeline must be a mapping (name:, project:, "
                          "sources: ...), found %s", kind_name(root));
        return;
    }
    static const char *const keys[] = { "name", "project", "connection", "mode", "reject_file",
                                        "chunking", "embedding", "load", "dedup", "sources",
                                        NULL };
    check_keys(&c, root, "the pipeline", keys);
    if (!want_str(&c, lookup(root, "name"), "name", &p->name)) {
        if (lookup(root, "name") == NULL)
            pipeline_diag_add(p, &root->at, "the pipeline has no 'name'; add name: NAME (it "
                              "keys the pipeline's sources and its lock)");
    } else if (!valid_name(p->name)) {
        pipeline_diag_add(p, &lookup(root, "name")->at, "name '%.60s' may hold only letters, "
                          "digits, '-', '_' and '.'", p->name);
    }
    const struct node *pn = lookup(root, "project");
    if (pn == NULL) {
        pipeline_diag_add(p, &root->at, "the pipeline has no 'project'; add project: NAME "
                          "(created when missing)");
    } else if (pn->kind == NODE_MAP) {
        remember(&c, "project", pn);
        static const char *const pkeys[] = { "name", "path", "description", NULL };
        check_keys(&c, pn, "project", pkeys);
        if (!want_str(&c, lookup(pn, "name"), "project.name", &p->project) &&
            lookup(pn, "name") == NULL)
            pipeline_diag_add(p, &pn->at, "project has no 'name'; add name: NAME");
        want_str(&c, lookup(pn, "path"), "project.path", &p->project_path);
        want_str(&c, lookup(pn, "description"), "project.description", &p->project_description);
    } else {
        want_str(&c, pn, "project", &p->project);
    }
    const struct node *cn = lookup(root, "connection");
    if (cn && !is_null(cn) && !(cn->kind == NODE_SCALAR && cn->value[0] == '\0'))
        want_str(&c, cn, "connection", &p->connection);
    static const char *const modes[] = { "incremental", "full", NULL };
    int v;
    if (want_enum(&c, lookup(root, "mode"), "mode", modes, &v))
        p->mode = (enum pipeline_mode)v;
    want_str(&c, lookup(root, "reject_file"), "reject_file", &p->reject_file);
    read_chunking(&c, root);
    read_embedding(&c, root);
    read_load(&c, root);
    read_sources(&c, root);
    int has_learnings = 0;
    for (int i = 0; i < p->n_sources; i++)
        has_learnings |= p->sources[i].target == KB_TARGET_LEARNINGS;
    read_dedup(&c, root, has_learnings);
    if (p->reject_file == NULL && p->name)
        p->reject_file = kb_arena_printf(c.a, "build/rejects/%s.jsonl", p->name);
}
