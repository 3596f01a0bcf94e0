/*
 * github_discussions.c - the discussions of a type: github source's
 * repositories (include_discussions: true), with their comments and the
 * comments' replies, from GitHub's GraphQL API (REST serves none).  Each
 * request is a POST of {"query", "variables"} built with jansson to
 * graphql_url through github_http.c (token, waits, retries, errors):
 *
 *   KbDiscussions          a page of per_page discussions, newest updatedAt
 *                          first (orderBy UPDATED_AT DESC), each with its
 *                          first min(per_page, 50) comments and each
 *                          comment's first min(per_page, 20) replies; the
 *                          next page after pageInfo.endCursor while
 *                          hasNextPage
 *   KbDiscussionComments   a discussion's further comments (by number)
 *   KbCommentReplies       a comment's further replies (by node id)
 *
 * At most per_page x (100 labels + 50 x (1 + 20)) = 115,000 nodes a
 * request, under GitHub's 500,000.  Each discussion becomes the document
 * issue_doc.c describes (source_id owner/repo/discussions#N).
 *
 * The mark, per repository: "discussions since owner/repo", the newest
 * updatedAt seen.  The next run pages only until the first discussion
 * updated before it (DESC order: all after it are older); one updated in
 * that very second comes again and is skipped as unchanged by its hash.  A
 * discussion updated while the listing is paged moves to the front (already
 * read) and, since its new updatedAt is past the mark, comes next run; one
 * it pushes onto the next page comes twice and is read once.
 */
#include "ingest_int.h"

#include <stdlib.h>
#include <string.h>

#define GH_DISC_MAX_COMMENTS 50     /* first comments a discussion comes with */
#define GH_DISC_MAX_REPLIES 20      /* first replies a comment comes with */
#define GH_DISC_MAX_NUMBER 100000000L

#define GH_COMMENT_FIELDS \
    " fragment KbComment on DiscussionComment { id body url createdAt author { login }" \
    " replies(first: $repliesFirst) { pageInfo { hasNextPage endCursor }" \
    " nodes { id body url createdAt author { login } } } }"

static const char LIST_QUERY[] =
    "query KbDiscussions($owner: String!, $name: String!, $first: Int!, $after: String,"
    " $commentsFirst: Int!, $repliesFirst: Int!) {"
    " repository(owner: $owner, name: $name) {"
    " discussions(first: $first, after: $after, orderBy: {field: UPDATED_AT, direction: DESC}) {"
    " pageInfo { hasNextPage endCursor }"
    " nodes { id number title body url createdAt updatedAt closed closedAt isAnswered"
    " author { login } category { name } labels(first: 100) { nodes { name } }"
    " comments(first: $commentsFirst) { pageInfo { hasNextPage endCursor }"
    " nodes { ...KbComment } } } } } }" GH_COMMENT_FIELDS;

static const char COMMENTS_QUERY[] =
    "query KbDiscussionComments($owner: String!, $name: String!, $number: Int!, $first: Int!,"
    " $after: String, $repliesFirst: Int!) {"
    " repository(owner: $owner, name: $name) { discussion(number: $number) {"
    " comments(first: $first, after: $after) { pageInfo { hasNextPage endCursor }"
    " nodes { ...KbComment } } } } }" GH_COMMENT_FIELDS;

static const char REPLIES_QUERY[] =
    "query KbCommentReplies($id: ID!, $first: Int!, $after: String) {"
    " node(id: $id) { ... on DiscussionComment {"
    " replies(first: $first, after: $after) { pageInfo { hasNextPage endCursor }"
    " nodes { id body url createdAt author { login } } } } } }";

struct gh_discussions {
    struct gh_http *http;          /* borrowed from github.c */
    char *url;                     /* the GraphQL endpoint */
    int per_page;
    const char *repo;              /* the repository listed (borrowed) */
    char owner[128], name[128];
    json_t *page;                  /* the current page's nodes */
    size_t page_i;
    char *cursor;                  /* where the next page starts; NULL: first page */
    int has_next;                  /* a page (the first, or after cursor) is to be fetched */
    int n_pages;
    char *page_origin;             /* "URL (owner/repo discussions, page N)" */
    char since[64];                /* the stored mark ("" none) */
    char newest[64];               /* the newest updatedAt seen ("" none) */
    unsigned char *seen;           /* numbers read in this listing */
    size_t seen_len;
};

/* One discussion's comments as they are gathered (arena-owned array). */
struct thread {
    struct gh_discussions *d;
    struct kb_arena *arena;
    struct ingest_issue *is;
    int cap;
    const struct kb_origin *at;
};

struct gh_discussions *gh_discussions_new(struct gh_http *http, const char *graphql_url,
                                          int per_page)
{
    struct gh_discussions *d = kb_xcalloc(1, sizeof *d);
    d->http = http;
    d->url = kb_xstrdup(graphql_url);
    d->per_page = per_page;
    return d;
}

void gh_discussions_free(struct gh_discussions *d)
{
    if (d == NULL)
        return;
    json_decref(d->page);
    free(d->url);
    free(d->cursor);
    free(d->page_origin);
    free(d->seen);
    free(d);
}

/* 1 when s is an ISO 8601 time as GitHub writes them ("2026-11-25T02:30:00Z"). */
static int is_timestamp(const char *s)
{
    size_t n = strlen(s);
    return n >= 10 && n < 40 && strspn(s, "0123456789-:TZ.") == n;
}

static void mark_key(char *key, size_t n, const char *repo)
{
    snprintf(key, n, "discussions since %s", repo);
}

void gh_discussions_start(struct ingest_reader *rd, struct gh_discussions *d, const char *repo)
{
    d->repo = repo;
    const char *slash = strchr(repo, '/');
    snprintf(d->owner, sizeof d->owner, "%.*s", (int)(slash - repo), repo);
    snprintf(d->name, sizeof d->name, "%s", slash + 1);
    json_decref(d->page);
    d->page = NULL;
    d->page_i = 0;
    free(d->cursor);
    d->cursor = NULL;
    d->has_next = 1;
    d->n_pages = 0;
    d->newest[0] = d->since[0] = '\0';
    if (d->seen)
        memset(d->seen, 0, d->seen_len);
    char key[300];
    mark_key(key, sizeof key, repo);
    const char *stored = ingest_state_lookup(rd, key);
    if (stored && is_timestamp(stored))
        snprintf(d->since, sizeof d->since, "%s", stored);
    else if (stored) {
        char q[200];
        log_warn("source %s: the stored mark '%s' of %s's discussions is not an ISO 8601 "
                 "time; fetching them all", rd->src->name,
                 ingest_quote(q, sizeof q, stored, strlen(stored)), repo);
    }
}

/* min(per_page, cap): the page size of a nested connection. */
static int first_of(const struct gh_discussions *d, int cap)
{
    return d->per_page < cap ? d->per_page : cap;
}

/* POST query with `vars` (taken); *conn is the connection at data.path[0].path[1]..., borrowed
 * from *data (the caller json_decrefs *data).  KB_E_IO when it is missing. */
static enum kb_code ask(struct gh_discussions *d, const char *query, json_t *vars,
                        const char *const *path, json_t **data, json_t **conn,
                        struct kb_err *err)
{
    json_t *req = json_pack("{s:s, s:o}", "query", query, "variables", vars);
    enum kb_code rc = gh_http_graphql(d->http, d->url, req, d->repo, data, err);
    json_decref(req);
    if (rc != KB_OK)
        return rc;
    json_t *v = *data;
    for (int i = 0; path[i] && json_is_object(v); i++)
        v = json_object_get(v, path[i]);
    if (json_is_object(v) && json_is_array(json_object_get(v, "nodes"))) {
        *conn = v;
        return KB_OK;
    }
    json_decref(*data);
    *data = NULL;
    return KB_FAIL_AT(err, KB_E_IO, d->repo, "GitHub GraphQL answered no %s.%s.nodes (the "
                      "repository or the discussion is gone, or discussions are off); check "
                      "repos: and graphql_url", path[0], path[1]);
}

/* pageInfo's endCursor when hasNextPage, else NULL (a new string). */
static char *next_cursor(json_t *conn)
{
    json_t *pi = json_object_get(conn, "pageInfo");
    const char *c = json_is_object(pi) ? ingest_jstr(pi, "endCursor") : NULL;
    return json_is_true(json_object_get(pi, "hasNextPage")) && c ? kb_xstrdup(c) : NULL;
}

/* Append comment (or reply) c to the thread; KB_E_INPUT for a NUL in it. */
static enum kb_code add_comment(struct thread *t, json_t *c, int is_reply, struct kb_err *err)
{
    if (!json_is_object(c))
        return KB_OK;
    struct ingest_issue *is = t->is;
    struct kb_buf path;
    kb_buf_init(&path);
    size_t nul_at = 0;
    enum kb_code rc = KB_OK;
    if (ingest_json_find_nul(c, &path, &nul_at))
        rc = KB_FAIL(err, KB_E_INPUT, t->at, "%s/discussions#%ld: %s %d's %s holds a NUL "
                     "character (\\u0000) at byte %zu; edit it on GitHub", t->d->repo,
                     is->number, is_reply ? "reply" : "comment", is->n_comments + 1, path.data,
                     nul_at);
    kb_buf_release(&path);
    if (rc != KB_OK)
        return rc;
    if (is->n_comments == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        struct ingest_comment *n = kb_arena_calloc(t->arena, sizeof *n * (size_t)t->cap);
        if (is->n_comments)
            memcpy(n, is->comments, sizeof *n * (size_t)is->n_comments);
        is->comments = n;
    }
    struct ingest_comment *cm = &is->comments[is->n_comments++];
    ingest_comment_fields(t->arena, c, 0, cm);
    cm->is_reply = is_reply;
    return KB_OK;
}

/* A comment, its replies on hand, then its further replies page by page. */
static enum kb_code add_comment_thread(struct thread *t, json_t *c, struct kb_err *err)
{
    enum kb_code rc = add_comment(t, c, 0, err);
    json_t *replies = json_object_get(c, "replies"), *r;
    size_t i;
    json_array_foreach(json_object_get(replies, "nodes"), i, r)
        if (rc == KB_OK)
            rc = add_comment(t, r, 1, err);
    char *cursor = rc == KB_OK ? next_cursor(replies) : NULL;
    const char *id = ingest_jstr(c, "id");
    while (cursor && id && rc == KB_OK) {
        static const char *const path[] = { "node", "replies", NULL };
        json_t *data, *conn;
        rc = ask(t->d, REPLIES_QUERY, json_pack("{s:s, s:i, s:s}", "id", id, "first",
                                                first_of(t->d, 100), "after", cursor),
                 path, &data, &conn, err);
        free(cursor);
        cursor = NULL;
        if (rc != KB_OK)
            break;
        json_array_foreach(json_object_get(conn, "nodes"), i, r)
            if (rc == KB_OK)
                rc = add_comment(t, r, 1, err);
        cursor = rc == KB_OK ? next_cursor(conn) : NULL;
        json_decref(data);
    }
    free(cursor);
    return rc;
}

/* Every comment of discussion o (with replies), in thread order, into t->is. */
static enum kb_code gather_comments(struct thread *t, json_t *o, struct kb_err *err)
{
    struct gh_discussions *d = t->d;
    json_t *comments = json_object_get(o, "comments"), *c;
    size_t i;
    enum kb_code rc = KB_OK;
    json_array_foreach(json_object_get(comments, "nodes"), i, c)
        if (rc == KB_OK)
            rc = add_comment_thread(t, c, err);
    char *cursor = rc == KB_OK ? next_cursor(comments) : NULL;
    while (cursor && rc == KB_OK) {
        static const char *const path[] = { "repository", "discussion", "comments", NULL };
        json_t *data, *conn;
        rc = ask(d, COMMENTS_QUERY,
                 json_pack("{s:s, s:s, s:I, s:i, s:s, s:i}", "owner", d->owner, "name", d->name,
                           "number", (json_int_t)t->is->number, "first",
                           first_of(d, GH_DISC_MAX_COMMENTS), "after", cursor, "repliesFirst",
                           first_of(d, GH_DISC_MAX_REPLIES)),
                 path, &data, &conn, err);
        free(cursor);
        cursor = NULL;
        if (rc != KB_OK)
            break;
        json_array_foreach(json_object_get(conn, "nodes"), i, c)
            if (rc == KB_OK)
                rc = add_comment_thread(t, c, err);
        cursor = rc == KB_OK ? next_cursor(conn) : NULL;
        json_decref(data);
    }
    free(cursor);
    return rc;
}

/* Fetch the next page of the listing into d->page. */
static enum kb_code fetch_page(struct gh_discussions *d, struct kb_err *err)
{
    static const char *const path[] = { "repository", "discussions", NULL };
    json_t *vars = json_pack("{s:s, s:s, s:i, s:i, s:i}", "owner", d->owner, "name", d->name,
                             "first", d->per_page, "commentsFirst",
                             first_of(d, GH_DISC_MAX_COMMENTS), "repliesFirst",
                             first_of(d, GH_DISC_MAX_REPLIES));
    json_object_set_new(vars, "after", d->cursor ? json_string(d->cursor) : json_null());
    json_t *data, *conn;
    enum kb_code rc = ask(d, LIST_QUERY, vars, path, &data, &conn, err);
    d->has_next = 0;
    if (rc != KB_OK)
        return rc;
    json_decref(d->page);
    d->page = json_incref(json_object_get(conn, "nodes"));
    d->page_i = 0;
    d->n_pages++;
    free(d->page_origin);
    d->page_origin = kb_xasprintf("%s (%s discussions, page %d)", d->url, d->repo, d->n_pages);
    free(d->cursor);
    d->cursor = next_cursor(conn);
    d->has_next = d->cursor != NULL;
    json_decref(data);
    return KB_OK;
}

/* 1: o is older than the mark, and so is the rest of the listing. */
static int before_mark(const struct gh_discussions *d, const char *updated)
{
    return d->since[0] && updated && strcmp(updated, d->since) < 0;
}

/* One node of a page: a document in *out, or nothing (a repeat, or the mark reached). */
static enum kb_code make_discussion(struct ingest_reader *rd, struct gh_discussions *d,
                                    struct kb_arena *arena, json_t *o, struct kb_document **out,
                                    struct kb_err *err)
{
    const char *repo = d->repo;
    struct kb_origin at = { .path = d->page_origin, .row = (long)d->page_i + 1 };
    json_t *num = json_object_get(o, "number");
    if (!json_is_object(o) || !json_is_integer(num) || json_integer_value(num) <= 0 ||
        json_integer_value(num) > GH_DISC_MAX_NUMBER)
        return KB_FAIL(err, KB_E_INPUT, &at, "not a discussion (no 'number' from 1 to %ld); "
                       "check graphql_url points at GitHub's GraphQL API", GH_DISC_MAX_NUMBER);
    long number = (long)json_integer_value(num);
    const char *updated = ingest_jstr(o, "updatedAt");
    if (before_mark(d, updated)) {
        d->has_next = 0;   /* DESC: the rest is older too */
        d->page_i = json_array_size(d->page);
        return KB_OK;
    }
    if (gh_seen_mark(&d->seen, &d->seen_len, number)) {
        log_debug("%s/discussions#%ld came twice (the listing moved while paged); read once",
                  repo, number);
        return KB_OK;
    }
    if (updated && strlen(updated) < sizeof d->newest && strcmp(updated, d->newest) > 0)
        snprintf(d->newest, sizeof d->newest, "%s", updated);
    struct kb_buf path;
    kb_buf_init(&path);
    size_t nul_at = 0;
    if (ingest_json_find_nul(o, &path, &nul_at)) {
        enum kb_code rc = KB_FAIL(err, KB_E_INPUT, &at, "%s/discussions#%ld: %s holds a NUL "
                                  "character (\\u0000) at byte %zu; edit the discussion on "
                                  "GitHub", repo, number, path.data, nul_at);
        kb_buf_release(&path);
        return rc;
    }
    kb_buf_release(&path);
    const char *title = ingest_jstr(o, "title");
    if (title == NULL || title[0] == '\0')
        return KB_FAIL(err, KB_E_INPUT, &at, "%s/discussions#%ld has no 'title'; check "
                       "graphql_url points at GitHub's GraphQL API", repo, number);
    struct ingest_issue *is = kb_arena_calloc(arena, sizeof *is);
    ingest_issue_fields(arena, o, 0, repo, is);
    json_t *closed = json_object_get(o, "closed");
    is->state = json_is_boolean(closed) ? (json_is_true(closed) ? "closed" : "open") : NULL;
    json_t *labels = json_object_get(json_object_get(o, "labels"), "nodes"), *l;
    size_t i;
    is->labels = kb_arena_calloc(arena, sizeof *is->labels * (json_array_size(labels) + 1));
    is->n_labels = 0;
    json_array_foreach(labels, i, l) {
        const char *name = json_is_object(l) ? ingest_jstr(l, "name") : NULL;
        if (name)
            is->labels[is->n_labels++] = kb_arena_strdup(arena, name);
    }
    const char *category = ingest_jstr(json_object_get(o, "category"), "name");
    json_t *ans = json_object_get(o, "isAnswered");
    int answered = json_is_boolean(ans) ? json_is_true(ans) : -1;
    struct thread t = { .d = d, .arena = arena, .is = is, .at = &at };
    enum kb_code rc = gather_comments(&t, o, err);
    if (rc != KB_OK)
        return rc;
    const char *file_path = is->url ? is->url : kb_arena_printf(arena, "%s/discussions/%ld",
                                                                repo, number);
    return ingest_discussion_document(rd, arena, is, category ? kb_arena_strdup(arena, category)
                                                              : NULL,
                                      answered, &at, file_path, out, err);
}

enum kb_code gh_discussions_next(struct ingest_reader *rd, struct gh_discussions *d,
                                 struct kb_arena *arena, struct kb_document **out,
                                 struct kb_err *err)
{
    *out = NULL;
    for (;;) {
        if (d->page && d->page_i < json_array_size(d->page)) {
            json_t *el = json_array_get(d->page, d->page_i);
            enum kb_code rc = make_discussion(rd, d, arena, el, out, err);
            if (rc == KB_E_INPUT) {
                char *bytes = json_dumps(el, JSON_COMPACT | JSON_ENCODE_ANY);
                struct kb_origin at = { .path = d->page_origin, .row = (long)d->page_i + 1 };
                ingest_bad_set(rd, &at, 0, bytes, bytes ? strlen(bytes) : 0);
                free(bytes);
            }
            if (d->page && d->page_i < json_array_size(d->page))
                d->page_i++;
            if (rc != KB_OK || *out != NULL)
                return rc;
            continue;
        }
        if (d->has_next) {
            enum kb_code rc = fetch_page(d, err);
            if (rc != KB_OK)
                return rc;
            continue;
        }
        /* the listing is over: the newest updatedAt seen, else the old mark */
        char key[300];
        mark_key(key, sizeof key, d->repo);
        const char *mark = d->newest[0] ? d->newest : d->since[0] ? d->since : NULL;
        if (mark)
            ingest_state_set(rd, key, mark);
        log_debug("%s: %d page(s) of discussions", d->repo, d->n_pages);
        return KB_OK;
    }
}
