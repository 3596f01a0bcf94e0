/*
 * issue_doc.c - one GitHub issue into a document, shared by the export
 * reader (issues.c, type: github_issues) and the API reader (github.c,
 * type: github), so that both give the same source_id, text and metadata
 * byte for byte: a project that moves from exports to the API finds every
 * document hash unchanged and re-embeds nothing (test_github.c,
 * export_then_api__same_hashes).
 *
 * The document of an issue:
 *   source_id   owner/repo#N
 *   text        "# TITLE\n\nBODY\n", then per comment
 *               "\n---\nComment by AUTHOR on CREATED_AT:\n\nBODY\n"
 *   metadata    {"repo", "number", "state" (lower case), "labels",
 *                "author", "created_at", "updated_at", "closed_at",
 *                "comments" (how many)} in that order, absent ones left out
 *
 * A discussion (github_discussions.c, GraphQL) in the same layout:
 *   source_type github_discussion
 *   source_id   owner/repo/discussions#N (a repository name holds no '/',
 *               so it is never an issue's owner/repo#N)
 *   text        "# TITLE\n\nBODY\n", then per comment as above, each reply
 *               after its comment as "\n---\nReply by AUTHOR on CREATED_AT:\n\nBODY\n"
 *   metadata    {"repo", "number", "state" ("open"/"closed"), "category",
 *                "answered" (Q&A categories only), "labels", "author",
 *                "created_at", "updated_at", "closed_at", "url",
 *                "comments" (comments and replies)}, absent ones left out
 */
#include "ingest_int.h"

#include <ctype.h>
#include <string.h>

const char *ingest_jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const char *login(json_t *o, const char *key)
{
    json_t *u = json_object_get(o, key);
    return json_is_object(u) ? ingest_jstr(u, "login") : NULL;
}

static const char *adup(struct kb_arena *a, const char *s)
{
    return s ? kb_arena_strdup(a, s) : NULL;
}

/* An id (number or string) as text. */
static const char *id_text(struct kb_arena *a, json_t *o)
{
    json_t *v = json_object_get(o, "id");
    if (json_is_integer(v))
        return kb_arena_printf(a, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return json_is_string(v) ? kb_arena_strdup(a, json_string_value(v)) : NULL;
}

/* "owner/repo" from https://github.com/o/r/... or https://api.github.com/repos/o/r/... */
static const char *repo_of(struct kb_arena *a, const char *url)
{
    if (url == NULL)
        return NULL;
    const char *p = strstr(url, "://");
    if (p == NULL)
        return NULL;
    p = strchr(p + 3, '/');
    if (p == NULL)
        return NULL;
    p++;
    if (strncmp(p, "repos/", 6) == 0)
        p += 6;
    const char *slash = strchr(p, '/');
    if (slash == NULL || slash == p)
        return NULL;
    const char *end = strchr(slash + 1, '/');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n <= (size_t)(slash - p) + 1)
        return NULL;
    return kb_arena_strndup(a, p, n);
}

static void cut(struct kb_buf *b, size_t len)
{
    b->len = len;
    if (b->data)
        b->data[len] = '\0';
}

int ingest_json_find_nul(json_t *v, struct kb_buf *path, size_t *nul_at)
{
    size_t mark = path->len;
    if (json_is_string(v)) {
        const char *p = memchr(json_string_value(v), '\0', json_string_length(v));
        if (p)
            *nul_at = (size_t)(p - json_string_value(v));
        return p != NULL;
    }
    if (json_is_object(v)) {
        const char *key;
        json_t *m;
        json_object_foreach(v, key, m) {
            kb_buf_printf(path, "%s%.60s", path->len ? "." : "", key);
            if (ingest_json_find_nul(m, path, nul_at))
                return 1;
            cut(path, mark);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m) {
            kb_buf_printf(path, "[%zu]", i);
            if (ingest_json_find_nul(m, path, nul_at))
                return 1;
            cut(path, mark);
        }
    }
    return 0;
}

void ingest_comment_fields(struct kb_arena *a, json_t *c, int is_rest, struct ingest_comment *cm)
{
    cm->author = adup(a, login(c, is_rest ? "user" : "author"));
    cm->body = adup(a, ingest_jstr(c, "body"));
    cm->created_at = adup(a, ingest_jstr(c, is_rest ? "created_at" : "createdAt"));
    cm->url = adup(a, ingest_jstr(c, is_rest ? "html_url" : "url"));
    cm->github_id = id_text(a, c);
}

void ingest_issue_fields(struct kb_arena *a, json_t *o, int is_rest, const char *repo,
                         struct ingest_issue *is)
{
    is->number = (long)json_integer_value(json_object_get(o, "number"));
    is->title = adup(a, ingest_jstr(o, "title"));
    is->body = adup(a, ingest_jstr(o, "body"));
    is->github_id = id_text(a, o);
    is->url = adup(a, ingest_jstr(o, is_rest ? "html_url" : "url"));
    is->author = adup(a, login(o, is_rest ? "user" : "author"));
    const char *state = ingest_jstr(o, "state");
    if (state) {
        char *s = kb_arena_strdup(a, state);
        for (char *p = s; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        is->state = s;
    }
    is->created_at = adup(a, ingest_jstr(o, is_rest ? "created_at" : "createdAt"));
    is->updated_at = adup(a, ingest_jstr(o, is_rest ? "updated_at" : "updatedAt"));
    is->closed_at = adup(a, ingest_jstr(o, is_rest ? "closed_at" : "closedAt"));
    const char *repo_url = is_rest ? ingest_jstr(o, "repository_url") : NULL;
    is->repo = repo ? repo : repo_of(a, repo_url ? repo_url : is->url);
    json_t *labels = json_object_get(o, "labels"), *l;
    size_t i;
    is->labels = kb_arena_calloc(a, sizeof *is->labels * (json_array_size(labels) + 1));
    json_array_foreach(labels, i, l) {
        const char *name = json_is_string(l) ? json_string_value(l) : ingest_jstr(l, "name");
        if (name)
            is->labels[is->n_labels++] = kb_arena_strdup(a, name);
    }
}

/* The metadata object the top of this file describes, as JSON text in the arena. */
static const char *issue_metadata(struct kb_arena *a, const struct ingest_issue *is)
{
    json_t *meta = json_object();
    json_object_set_new(meta, "repo", json_string(is->repo));
    json_object_set_new(meta, "number", json_integer(is->number));
    if (is->state)
        json_object_set_new(meta, "state", json_string(is->state));
    json_t *jl = json_array();
    for (int k = 0; k < is->n_labels; k++)
        json_array_append_new(jl, json_string(is->labels[k]));
    json_object_set_new(meta, "labels", jl);
    if (is->author)
        json_object_set_new(meta, "author", json_string(is->author));
    if (is->created_at)
        json_object_set_new(meta, "created_at", json_string(is->created_at));
    if (is->updated_at)
        json_object_set_new(meta, "updated_at", json_string(is->updated_at));
    if (is->closed_at)
        json_object_set_new(meta, "closed_at", json_string(is->closed_at));
    json_object_set_new(meta, "comments", json_integer(is->n_comments));
    const char *text = ingest_json_text(a, meta);
    json_decref(meta);
    return text;
}

/*
 * The text of a thread (title, body, comments) normalized into the arena:
 * *text, *tlen.  KB_E_INPUT (text the normalizer refuses) names `at`.
 */
static enum kb_code thread_text(struct kb_arena *arena, const struct ingest_issue *is,
                                const struct kb_origin *at, const char *what, char **text,
                                size_t *tlen, struct kb_err *err)
{
    struct kb_buf t;
    kb_buf_init(&t);
    kb_buf_printf(&t, "# %s\n\n", is->title);
    if (is->body && is->body[0])
        kb_buf_printf(&t, "%s\n", is->body);
    for (int k = 0; k < is->n_comments; k++) {
        const struct ingest_comment *c = &is->comments[k];
        kb_buf_printf(&t, "\n---\n%s by %s%s%s:\n\n%s\n", c->is_reply ? "Reply" : "Comment",
                      c->author ? c->author : "someone", c->created_at ? " on " : "",
                      c->created_at ? c->created_at : "", c->body ? c->body : "");
    }
    enum kb_code rc = ingest_text_normalize(t.data, t.len, INGEST_UTF8_REPLACE, at, what, arena,
                                            text, tlen, err);
    kb_buf_release(&t);
    if (rc != KB_OK)
        kb_origin_format(at, err->origin, sizeof err->origin);
    return rc;
}

/* One thread (an issue's or a discussion's) as a document of source_type
 * `type`, its text the thread's (thread_text); the caller sets what
 * differs: source id, metadata, the issue record, learning fields. */
static enum kb_code thread_document(struct ingest_reader *rd, struct kb_arena *arena,
                                    const struct ingest_issue *is, const char *type,
                                    const struct kb_origin *at, const char *file_path,
                                    struct kb_document **out, struct kb_err *err)
{
    char *text;
    size_t tlen;
    char what[64];
    snprintf(what, sizeof what, "%s #%ld",
             strcmp(type, "github_issue") == 0 ? "issue" : "discussion", is->number);
    enum kb_code rc = thread_text(arena, is, at, what, &text, &tlen, err);
    if (rc != KB_OK)
        return rc;
    struct kb_document *d = ingest_doc_new(rd, arena, type);
    d->title = is->title;
    d->url = is->url;
    d->author = is->author;
    d->file_path = kb_arena_strdup(arena, file_path);
    d->text = text;
    d->len = tlen;
    d->origin = *at;
    d->origin.path = d->file_path;
    if (d->target == KB_TARGET_LEARNINGS) {
        d->tags = is->labels;
        d->n_tags = is->n_labels;
    }
    *out = d;
    return KB_OK;
}

enum kb_code ingest_issue_document(struct ingest_reader *rd, struct kb_arena *arena,
                                   const struct ingest_issue *is, const struct kb_origin *at,
                                   const char *file_path, struct kb_document **out,
                                   struct kb_err *err)
{
    struct kb_document *d;
    enum kb_code rc = thread_document(rd, arena, is, "github_issue", at, file_path, &d, err);
    if (rc != KB_OK)
        return rc;
    d->source_id = kb_arena_printf(arena, "%s#%ld", is->repo, is->number);
    d->issue = is;
    d->metadata_json = issue_metadata(arena, is);
    if (d->target == KB_TARGET_LEARNINGS)
        d->learning_type = "issue";
    *out = d;
    return KB_OK;
}

/* The metadata of a discussion (the top of this file), as JSON text in the arena. */
static const char *discussion_metadata(struct kb_arena *a, const struct ingest_issue *is,
                                       const char *category, int answered)
{
    json_t *meta = json_object();
    json_object_set_new(meta, "repo", json_string(is->repo));
    json_object_set_new(meta, "number", json_integer(is->number));
    if (is->state)
        json_object_set_new(meta, "state", json_string(is->state));
    if (category)
        json_object_set_new(meta, "category", json_string(category));
    if (answered >= 0)
        json_object_set_new(meta, "answered", json_boolean(answered));
    json_t *jl = json_array();
    for (int k = 0; k < is->n_labels; k++)
        json_array_append_new(jl, json_string(is->labels[k]));
    json_object_set_new(meta, "labels", jl);
    const char *const keys[] = { "author", "created_at", "updated_at", "closed_at", "url" };
    const char *const vals[] = { is->author, is->created_at, is->updated_at, is->closed_at,
                                 is->url };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (vals[k])
            json_object_set_new(meta, keys[k], json_string(vals[k]));
    json_object_set_new(meta, "comments", json_integer(is->n_comments));
    const char *text = ingest_json_text(a, meta);
    json_decref(meta);
    return text;
}

enum kb_code ingest_discussion_document(struct ingest_reader *rd, struct kb_arena *arena,
                                        const struct ingest_issue *is, const char *category,
                                        int answered, const struct kb_origin *at,
                                        const char *file_path, struct kb_document **out,
                                        struct kb_err *err)
{
    struct kb_document *d;
    enum kb_code rc = thread_document(rd, arena, is, "github_discussion", at, file_path, &d,
                                      err);
    if (rc != KB_OK)
        return rc;
    d->source_id = kb_arena_printf(arena, "%s/discussions#%ld", is->repo, is->number);
    d->issue = NULL;   /* not an issue: never upserted into the issues table */
    d->metadata_json = discussion_metadata(arena, is, category, answered);
    if (d->target == KB_TARGET_LEARNINGS) {
        d->learning_type = "discussion";
        d->category = category;
    }
    *out = d;
    return KB_OK;
}
