/*
 * schema.c - the expected shape of a pipeline file, applied to the node
 * tree: every section's keys and their types, defaults, and the meaning
 * checks that need neither disk nor database.  The typed value readers
 * (schema_want_*) are schema_values.c.
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
#include <string.h>

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

static void read_chunking(struct schema_ctx *c, const struct node *root)
{
    struct pipeline_chunking *ch = &c->p->chunking;
    ch->size = 512;
    ch->overlap = 64;
    const struct node *m = schema_want_map(c, schema_lookup(root, "chunking"), "chunking",
                                    "chunking: {splitter: markdown, size: 512, overlap: 64}");
    if (m == NULL)
        return;
    static const char *const keys[] = { "splitter", "unit", "size", "overlap", NULL };
    schema_check_keys(c, m, "chunking", keys);
    static const char *const splitters[] = { "markdown", "recursive", "fixed", NULL };
    static const char *const units[] = { "tokens", "chars", NULL };
    int v;
    if (schema_want_enum(c, schema_lookup(m, "splitter"), "chunking.splitter", splitters, &v))
        ch->splitter = (enum pipeline_splitter)v;
    if (schema_want_enum(c, schema_lookup(m, "unit"), "chunking.unit", units, &v))
        ch->unit = (enum pipeline_unit)v;
    schema_want_int(c, schema_lookup(m, "size"), "chunking.size", 1, 100000, "size: 512",
                    &ch->size);
    int size_ok = schema_lookup(m, "size") == NULL || ch->size >= 1;
    if (schema_want_int(c, schema_lookup(m, "overlap"), "chunking.overlap", 0, 100000,
                        "overlap: 64",
                 &ch->overlap) || schema_lookup(m, "overlap") == NULL) {
        if (size_ok && ch->overlap >= ch->size) {
            const struct node *at = schema_lookup(m, "overlap") ? schema_lookup(m, "overlap")
                                                                : schema_lookup(m, "size");
            pipeline_diag_add(c->p, &(at ? at : m)->at, "chunking.overlap (%d) must be smaller "
                              "than chunking.size (%d); a common choice is about 1/8 of the "
                              "size", ch->overlap, ch->size);
        }
    }
}

static void read_embedding(struct schema_ctx *c, const struct node *root)
{
    struct pipeline_embedding *e = &c->p->embedding;
    e->dimensions = KB_PIPELINE_DIM;
    e->batch_size = 64;
    e->timeout_ms = 60000;
    e->max_retries = 5;
    e->max_in_flight = 4;
    e->max_tokens_per_request = 300000;
    const struct node *m = schema_want_map(c, schema_lookup(root, "embedding"), "embedding",
                                    "embedding: {provider: hash}");
    if (m == NULL) {
        e->model = "kbpipe-hash-v1";
        return;
    }
    static const char *const keys[] = { "provider", "model", "dimensions", "base_url",
                                        "api_key_env", "batch_size", "timeout_ms",
                                        "max_retries", "max_in_flight",
                                        "max_tokens_per_request", "file", "format", NULL };
    schema_check_keys(c, m, "embedding", keys);
    static const char *const providers[] = { "hash", "import", "openai", NULL };
    static const char *const formats[] = { "jsonl", "csv", "openai_batch", NULL };
    int v;
    if (schema_want_enum(c, schema_lookup(m, "provider"), "embedding.provider", providers, &v))
        e->provider = (enum pipeline_provider)v;
    schema_want_str(c, schema_lookup(m, "model"), "embedding.model", &e->model);
    schema_want_str(c, schema_lookup(m, "base_url"), "embedding.base_url", &e->base_url);
    schema_want_str(c, schema_lookup(m, "api_key_env"), "embedding.api_key_env", &e->api_key_env);
    schema_want_str(c, schema_lookup(m, "file"), "embedding.file", &e->import_file);
    if (schema_want_enum(c, schema_lookup(m, "format"), "embedding.format", formats, &v))
        e->import_format = (enum pipeline_import_format)v;
    schema_want_int(c, schema_lookup(m, "batch_size"), "embedding.batch_size", 1, 2048,
                    "batch_size: 64",
             &e->batch_size);
    schema_want_int(c, schema_lookup(m, "timeout_ms"), "embedding.timeout_ms", 100, 3600000,
             "timeout_ms: 60000", &e->timeout_ms);
    schema_want_int(c, schema_lookup(m, "max_retries"), "embedding.max_retries", 0, 100,
                    "max_retries: 5",
             &e->max_retries);
    /* 64: more connections than a rate limit usefully allows (openai.c checks it too) */
    schema_want_int(c, schema_lookup(m, "max_in_flight"), "embedding.max_in_flight", 1, 64,
             "max_in_flight: 4", &e->max_in_flight);
    /* OpenAI's own limit is 300,000 per request; a local server may want far fewer */
    schema_want_int(c, schema_lookup(m, "max_tokens_per_request"),
                    "embedding.max_tokens_per_request", 1,
             10000000, "max_tokens_per_request: 300000", &e->max_tokens_per_request);
    const struct node *dn = schema_lookup(m, "dimensions");
    long dims;
    if (dn && schema_want_long(c, dn, "embedding.dimensions", 1, 100000, "dimensions: 1536",
                               &dims) &&
        dims != KB_PIPELINE_DIM)
        pipeline_diag_add(c->p, &dn->at, "embedding.dimensions is %ld, but the schema stores "
                          "vector(%d); use a %d-dimension model (e.g. text-embedding-3-small) "
                          "or remove the key", dims, KB_PIPELINE_DIM, KB_PIPELINE_DIM);

    const struct node *pn = schema_lookup(m, "provider");
    const struct kb_origin *pat = pn ? &pn->at : &m->at;
    if (e->provider == PIPELINE_EMBED_OPENAI) {
        static const char *const need[] = { "base_url", "model", "api_key_env" };
        static const char *const eg[] = { "base_url: https://api.openai.com/v1",
                                          "model: text-embedding-3-small",
                                          "api_key_env: OPENAI_API_KEY" };
        for (int i = 0; i < 3; i++)
            if (schema_lookup(m, need[i]) == NULL)
                pipeline_diag_add(c->p, pat, "embedding.provider openai needs embedding.%s "
                                  "(e.g. %s)", need[i], eg[i]);
    } else if (e->provider == PIPELINE_EMBED_IMPORT) {
        if (schema_lookup(m, "file") == NULL)
            pipeline_diag_add(c->p, pat, "embedding.provider import needs embedding.file, the "
                              "vectors to import (e.g. file: vectors.jsonl)");
        if (e->model == NULL)
            e->model = "imported";
    } else if (e->model == NULL) {
        e->model = "kbpipe-hash-v1";
    } else if (strcmp(e->model, "kbpipe-hash-v1") != 0) {
        const struct node *mn = schema_lookup(m, "model");
        pipeline_diag_add(c->p, mn ? &mn->at : pat, "embedding.model '%s' is not the hash "
                          "provider's model; the built-in embedder is 'kbpipe-hash-v1' (or "
                          "remove the key)", e->model);
    }
}

static void read_load(struct schema_ctx *c, const struct node *root)
{
    struct pipeline_load *l = &c->p->load;
    l->batch_rows = 1000;
    l->rebuild_ratio = 0.2;
    l->rebuild_min_rows = 1000;
    const struct node *m = schema_want_map(c, schema_lookup(root, "load"), "load",
                                    "load: {batch_rows: 1000, index_strategy: auto}");
    if (m == NULL)
        return;
    static const char *const keys[] = { "batch_rows", "index_strategy", "rebuild_ratio",
                                        "rebuild_min_rows", NULL };
    schema_check_keys(c, m, "load", keys);
    static const char *const strategies[] = { "auto", "keep", "rebuild", NULL };
    int v;
    schema_want_int(c, schema_lookup(m, "batch_rows"), "load.batch_rows", 1, 1000000,
                    "batch_rows: 1000",
             &l->batch_rows);
    if (schema_want_enum(c, schema_lookup(m, "index_strategy"), "load.index_strategy", strategies,
                         &v))
        l->index_strategy = (enum pipeline_index_strategy)v;
    schema_want_double(c, schema_lookup(m, "rebuild_ratio"), "load.rebuild_ratio", 0, 1000,
                       "rebuild_ratio: 0.2",
                &l->rebuild_ratio);
    schema_want_long(c, schema_lookup(m, "rebuild_min_rows"), "load.rebuild_min_rows", 0,
                     1000000000L,
              "rebuild_min_rows: 1000", &l->rebuild_min_rows);
}

static void read_dedup(struct schema_ctx *c, const struct node *root, int has_learnings)
{
    struct pipeline_dedup *d = &c->p->dedup;
    d->is_enabled = has_learnings;
    d->threshold = -1;                 /* the model's calibrated default */
    d->action = PIPELINE_DEDUP_MARK;
    const struct node *m = schema_want_map(c, schema_lookup(root, "dedup"), "dedup",
                                    "dedup: {enabled: true, threshold: 0.7, action: mark}");
    if (m == NULL)
        return;
    static const char *const keys[] = { "enabled", "threshold", "action", NULL };
    schema_check_keys(c, m, "dedup", keys);
    static const char *const actions[] = { "report", "mark", "merge", NULL };
    int v;
    schema_want_bool(c, schema_lookup(m, "enabled"), "dedup.enabled", &d->is_enabled);
    schema_want_double(c, schema_lookup(m, "threshold"), "dedup.threshold", 0, 1, "threshold: 0.7",
                &d->threshold);
    if (schema_want_enum(c, schema_lookup(m, "action"), "dedup.action", actions, &v))
        d->action = (enum pipeline_dedup_action)v;
}

static void read_csv_columns(struct schema_ctx *c, const struct node *n, const char *key,
                             struct ingest_csv_columns *cols)
{
    const struct node *m = schema_want_map(c, n, key, "columns: {title: title, content: body}");
    if (m == NULL)
        return;
    static const char *const keys[] = { "title", "content", "url", "author", "learning_type",
                                        "category", "tags", "confidence_score", "impact_level",
                                        "metadata", NULL };
    schema_check_keys(c, m, key, keys);
    const char **dst[] = { &cols->title, &cols->content, &cols->url, &cols->author,
                           &cols->learning_type, &cols->category, &cols->tags,
                           &cols->confidence_score, &cols->impact_level };
    for (size_t i = 0; i < sizeof dst / sizeof dst[0]; i++)
        schema_want_str(c, schema_lookup(m, keys[i]), kb_arena_printf(c->a, "%s.%s", key, keys[i]),
                        dst[i]);
    schema_want_strs(c, schema_lookup(m, "metadata"), kb_arena_printf(c->a, "%s.metadata", key),
                     &cols->metadata);
}

/* OWNER/NAME: GitHub's characters (letters, digits, '-', '_', '.'), one slash. */
static void check_repo(struct schema_ctx *c, const struct node *n, const char *key,
                       const char *repo)
{
    const char *s = strchr(repo, '/');
    int ok = s != NULL && s != repo && s[1] != '\0' && strchr(s + 1, '/') == NULL;
    for (const char *p = repo; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || strchr("-_./", *p) != NULL;
    if (!ok)
        pipeline_diag_add(c->p, &n->at, "%s must be OWNER/NAME (e.g. acme/supervisor-service), "
                          "found '%.60s'", key, repo);
}

/* http:// sends the token in clear: only to this machine (a test server). */
static void check_base_url(struct schema_ctx *c, const struct node *n, const char *key,
                           const char *url, const char *example)
{
    static const char *const local[] = { "http://127.0.0.1", "http://localhost", "http://[::1]" };
    int ok = strncmp(url, "https://", 8) == 0;
    for (size_t i = 0; !ok && i < sizeof local / sizeof local[0]; i++) {
        size_t len = strlen(local[i]);
        ok = strncmp(url, local[i], len) == 0 && strchr(":/", url[len]) != NULL;
    }
    if (!ok)
        pipeline_diag_add(c->p, &n->at, "%s must be an https:// URL (e.g. %s), or http:// to "
                          "this machine only, found '%.60s'", key, example, url);
}

/* The keys of a type: github source (the common ones are read by read_source). */
static void read_github(struct schema_ctx *c, const struct node *m, const char *pre,
                        struct ingest_github_opts *o)
{
#define K(name) kb_arena_printf(c->a, "%s.%s", pre, name)
    static const char *const keys[] = { "name", "type", "target", "on_error", "max_errors",
                                        "repos", "token_env", "base_url",
                                        "include_pull_requests", "include_discussions",
                                        "graphql_url", "upsert_issues", "per_page",
                                        "timeout_ms", "max_retries", "retry_base_ms", "max_wait",
                                        NULL };
    schema_check_keys(c, m, "a github source", keys);
    if (schema_lookup(m, "repos") == NULL)
        pipeline_diag_add(c->p, &m->at, "%s (github) has no 'repos'; add repos: [OWNER/NAME]",
                          pre);
    schema_want_strs(c, schema_lookup(m, "repos"), K("repos"), &o->repos);
    for (int i = 0; i < o->repos.n; i++) {
        struct node at = { .kind = NODE_SCALAR, .at = o->repos.at[i] };
        check_repo(c, &at, kb_arena_printf(c->a, "%s.repos[%d]", pre, i), o->repos.v[i]);
        for (int k = 0; k < i; k++)
            if (strcmp(o->repos.v[k], o->repos.v[i]) == 0)
                pipeline_diag_add(c->p, &o->repos.at[i], "%s.repos lists '%.60s' twice; list "
                                  "each repository once", pre, o->repos.v[i]);
    }
    if (schema_want_str(c, schema_lookup(m, "token_env"), K("token_env"), &o->token_env)) {
        int ok = isalpha((unsigned char)o->token_env[0]) || o->token_env[0] == '_';
        for (const char *p = o->token_env; ok && *p; p++)
            ok = isalnum((unsigned char)*p) || *p == '_';
        if (!ok)
            pipeline_diag_add(c->p, &schema_lookup(m, "token_env")->at, "%s.token_env must name an "
                              "environment variable (e.g. token_env: GITHUB_TOKEN) and never "
                              "hold the token itself (the value is not shown)", pre);
    }
    if (schema_want_str(c, schema_lookup(m, "base_url"), K("base_url"), &o->base_url))
        check_base_url(c, schema_lookup(m, "base_url"), K("base_url"), o->base_url,
                       "https://github.example.com/api/v3");
    schema_want_bool(c, schema_lookup(m, "include_pull_requests"), K("include_pull_requests"),
              &o->include_pull_requests);
    schema_want_bool(c, schema_lookup(m, "include_discussions"), K("include_discussions"),
                     &o->include_discussions);
    if (schema_want_str(c, schema_lookup(m, "graphql_url"), K("graphql_url"), &o->graphql_url))
        check_base_url(c, schema_lookup(m, "graphql_url"), K("graphql_url"), o->graphql_url,
                       "https://github.example.com/api/graphql");
    if (o->include_discussions && o->token_env == NULL)
        pipeline_diag_add(c->p, &schema_lookup(m, "include_discussions")->at, "%s."
                          "include_discussions needs token_env: GitHub's GraphQL API answers "
                          "no anonymous request", pre);
    schema_want_bool(c, schema_lookup(m, "upsert_issues"), K("upsert_issues"), &o->upsert_issues);
    schema_want_int(c, schema_lookup(m, "per_page"), K("per_page"), 1, 100, "per_page: 100", &o->per_page);
    schema_want_int(c, schema_lookup(m, "timeout_ms"), K("timeout_ms"), 100, 3600000, "timeout_ms: 30000",
             &o->timeout_ms);
    schema_want_int(c, schema_lookup(m, "max_retries"), K("max_retries"), 0, 100, "max_retries: 5",
             &o->max_retries);
    schema_want_int(c, schema_lookup(m, "retry_base_ms"), K("retry_base_ms"), 1, 60000, "retry_base_ms: 1000",
             &o->retry_base_ms);
    schema_want_long(c, schema_lookup(m, "max_wait"), K("max_wait"), 0, 86400, "max_wait: 3600",
              &o->max_wait_s);
#undef K
}

static void read_source(struct schema_ctx *c, const struct node *m, int i,
                        struct ingest_source *src)
{
    const char *pre = kb_arena_printf(c->a, "sources[%d]", i);
#define K(name) kb_arena_printf(c->a, "%s.%s", pre, name)
    static const char *const types[] = { "files", "csv", "github_issues", "github", "sql",
                                         NULL };
    int type = -1;
    const struct node *tn = schema_lookup(m, "type");
    if (tn == NULL)
        pipeline_diag_add(c->p, &m->at, "%s has no 'type'; add type: files, csv, "
                          "github_issues, github or sql", pre);
    else
        schema_want_enum(c, tn, K("type"), types, &type);
    ingest_source_defaults(src, type < 0 ? INGEST_FILES : (enum ingest_type)type);
    src->at = m->at;
    schema_remember(c, pre, m);
    if (!schema_want_str(c, schema_lookup(m, "name"), K("name"), &src->name)) {
        if (schema_lookup(m, "name") == NULL)
            pipeline_diag_add(c->p, &m->at, "%s has no 'name'; add name: SOME_NAME (it names "
                              "the source in reports and rejects)", pre);
        src->name = pre;
    } else if (!valid_name(src->name)) {
        pipeline_diag_add(c->p, &schema_lookup(m, "name")->at,
                          "%s.name '%.60s' may hold only letters, "
                          "digits, '-', '_' and '.'", pre, src->name);
    }
    static const char *const targets[] = { "knowledge", "learnings", NULL };
    static const char *const on_error[] = { "fail", "skip", NULL };
    int v;
    if (schema_want_enum(c, schema_lookup(m, "target"), K("target"), targets, &v))
        src->target = (enum kb_target)v;
    if (schema_want_enum(c, schema_lookup(m, "on_error"), K("on_error"), on_error, &v))
        src->on_error = (enum ingest_on_error)v;
    schema_want_long(c, schema_lookup(m, "max_errors"), K("max_errors"), 0, 1000000000L,
                     "max_errors: 100",
              &src->max_errors);
    if (type < 0)
        return;   /* the type's own keys cannot be checked */

    const char *section = kb_arena_printf(c->a, "a %s source", types[type]);
    if (type == INGEST_FILES) {
        static const char *const keys[] = { "name", "type", "target", "on_error", "max_errors",
                                            "roots", "include", "exclude", "max_file_size",
                                            "on_invalid_utf8", "front_matter", "format",
                                            "drop", "max_pages", NULL };
        schema_check_keys(c, m, section, keys);
        struct ingest_files_opts *o = &src->u.files;
        if (schema_lookup(m, "roots") == NULL)
            pipeline_diag_add(c->p, &m->at, "%s (files) has no 'roots'; add roots: [FOLDER]",
                              pre);
        schema_want_strs(c, schema_lookup(m, "roots"), K("roots"), &o->roots);
        schema_want_strs(c, schema_lookup(m, "include"), K("include"), &o->include);
        schema_want_strs(c, schema_lookup(m, "exclude"), K("exclude"), &o->exclude);
        schema_want_size(c, schema_lookup(m, "max_file_size"), K("max_file_size"),
                         &o->max_file_size);
        static const char *const utf8[] = { "reject", "replace", NULL };
        if (schema_want_enum(c, schema_lookup(m, "on_invalid_utf8"), K("on_invalid_utf8"), utf8,
                             &v))
            o->on_invalid_utf8 = (enum ingest_on_utf8)v;
        schema_want_bool(c, schema_lookup(m, "front_matter"), K("front_matter"), &o->front_matter);
        static const char *const formats[] = { "auto", "markdown", "text", "code", "html",
                                               "pdf", NULL };
        if (schema_want_enum(c, schema_lookup(m, "format"), K("format"), formats, &v))
            o->format = (enum ingest_file_format)v;
        schema_want_int(c, schema_lookup(m, "max_pages"), K("max_pages"), 1, 1000000,
                        "max_pages: 2000", &o->max_pages);
        schema_want_strs(c, schema_lookup(m, "drop"), K("drop"), &o->drop);
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
        schema_check_keys(c, m, section, keys);
        struct ingest_csv_opts *o = &src->u.csv;
        if (schema_lookup(m, "path") == NULL)
            pipeline_diag_add(c->p, &m->at, "%s (csv) has no 'path'; add path: FILE.csv", pre);
        schema_want_str(c, schema_lookup(m, "path"), K("path"), &o->path);
        schema_want_char(c, schema_lookup(m, "delimiter"), K("delimiter"), &o->delimiter);
        schema_want_char(c, schema_lookup(m, "quote"), K("quote"), &o->quote);
        schema_want_char(c, schema_lookup(m, "tags_separator"), K("tags_separator"),
                         &o->tags_separator);
        schema_want_strs(c, schema_lookup(m, "key"), K("key"), &o->key);
        read_csv_columns(c, schema_lookup(m, "columns"), K("columns"), &o->columns);
        schema_want_size(c, schema_lookup(m, "max_record_size"), K("max_record_size"),
                         &o->max_record_size);
        static const char *const utf8[] = { "reject", "replace", NULL };
        if (schema_want_enum(c, schema_lookup(m, "on_invalid_utf8"), K("on_invalid_utf8"), utf8,
                             &v))
            o->on_invalid_utf8 = (enum ingest_on_utf8)v;
        if (o->delimiter == o->quote)
            pipeline_diag_add(c->p, &m->at, "%s: delimiter and quote are both '%c'; they must "
                              "differ", pre, o->delimiter);
    } else if (type == INGEST_GITHUB) {
        read_github(c, m, pre, &src->u.github);
    } else if (type == INGEST_SQL) {
        schema_read_sql(c, m, pre, src);
    } else {
        static const char *const keys[] = { "name", "type", "target", "on_error", "max_errors",
                                            "path", "comments", "repo", "format",
                                            "include_pull_requests", "upsert_issues",
                                            "max_record_size", NULL };
        schema_check_keys(c, m, section, keys);
        struct ingest_issues_opts *o = &src->u.issues;
        if (schema_lookup(m, "path") == NULL)
            pipeline_diag_add(c->p, &m->at, "%s (github_issues) has no 'path'; add path: "
                              "issues.json", pre);
        schema_want_str(c, schema_lookup(m, "path"), K("path"), &o->path);
        schema_want_str(c, schema_lookup(m, "comments"), K("comments"), &o->comments_path);
        if (schema_want_str(c, schema_lookup(m, "repo"), K("repo"), &o->repo))
            check_repo(c, schema_lookup(m, "repo"), K("repo"), o->repo);
        static const char *const formats[] = { "auto", "gh", "rest", NULL };
        if (schema_want_enum(c, schema_lookup(m, "format"), K("format"), formats, &v))
            o->format = (enum ingest_issue_format)v;
        schema_want_bool(c, schema_lookup(m, "include_pull_requests"), K("include_pull_requests"),
                  &o->include_pull_requests);
        schema_want_bool(c, schema_lookup(m, "upsert_issues"), K("upsert_issues"),
                         &o->upsert_issues);
        schema_want_size(c, schema_lookup(m, "max_record_size"), K("max_record_size"),
                         &o->max_record_size);
    }
#undef K
}

static void read_sources(struct schema_ctx *c, const struct node *root)
{
    const struct node *n = schema_lookup(root, "sources");
    if (n == NULL) {
        pipeline_diag_add(c->p, &root->at, "the pipeline has no 'sources'; add a list of "
                          "sources (see docs/pipelines.md)");
        return;
    }
    schema_remember(c, "sources", n);
    if (n->kind != NODE_SEQ || n->n == 0) {
        pipeline_diag_add(c->p, &n->at, "sources must be a non-empty list of sources (each "
                          "- name: ..., type: ...), found %s",
                          n->kind == NODE_SEQ ? "an empty list" : schema_found(c, n));
        return;
    }
    c->p->sources = kb_arena_calloc(c->a, sizeof *c->p->sources * (size_t)n->n);
    for (int i = 0; i < n->n; i++) {
        const struct node *m = n->vals[i];
        if (m->kind != NODE_MAP) {
            pipeline_diag_add(c->p, &m->at, "sources[%d] must be a mapping (name: ..., type: "
                              "...), found %s", i, schema_found(c, m));
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
    struct schema_ctx c = { .p = p, .a = p->priv->arena };
    if (root->kind != NODE_MAP) {
        pipeline_diag_add(p, &root->at, "a pipeline must be a mapping (name:, project:, "
                          "sources: ...), found %s", schema_kind_name(root));
        return;
    }
    static const char *const keys[] = { "name", "project", "connection", "mode", "reject_file",
                                        "chunking", "embedding", "load", "dedup", "sources",
                                        NULL };
    schema_check_keys(&c, root, "the pipeline", keys);
    if (!schema_want_str(&c, schema_lookup(root, "name"), "name", &p->name)) {
        if (schema_lookup(root, "name") == NULL)
            pipeline_diag_add(p, &root->at, "the pipeline has no 'name'; add name: NAME (it "
                              "keys the pipeline's sources and its lock)");
    } else if (!valid_name(p->name)) {
        pipeline_diag_add(p, &schema_lookup(root, "name")->at,
                          "name '%.60s' may hold only letters, "
                          "digits, '-', '_' and '.'", p->name);
    }
    const struct node *pn = schema_lookup(root, "project");
    if (pn == NULL) {
        pipeline_diag_add(p, &root->at, "the pipeline has no 'project'; add project: NAME "
                          "(created when missing)");
    } else if (pn->kind == NODE_MAP) {
        schema_remember(&c, "project", pn);
        static const char *const pkeys[] = { "name", "path", "description", NULL };
        schema_check_keys(&c, pn, "project", pkeys);
        if (!schema_want_str(&c, schema_lookup(pn, "name"), "project.name", &p->project) &&
            schema_lookup(pn, "name") == NULL)
            pipeline_diag_add(p, &pn->at, "project has no 'name'; add name: NAME");
        schema_want_str(&c, schema_lookup(pn, "path"), "project.path", &p->project_path);
        schema_want_str(&c, schema_lookup(pn, "description"), "project.description",
                        &p->project_description);
    } else {
        schema_want_str(&c, pn, "project", &p->project);
    }
    const struct node *cn = schema_lookup(root, "connection");
    if (cn && !schema_is_null(cn) && !(cn->kind == NODE_SCALAR && cn->value[0] == '\0'))
        schema_want_str(&c, cn, "connection", &p->connection);
    static const char *const modes[] = { "incremental", "full", NULL };
    int v;
    if (schema_want_enum(&c, schema_lookup(root, "mode"), "mode", modes, &v))
        p->mode = (enum pipeline_mode)v;
    schema_want_str(&c, schema_lookup(root, "reject_file"), "reject_file", &p->reject_file);
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
