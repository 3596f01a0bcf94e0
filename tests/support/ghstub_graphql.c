/*
 * ghstub_graphql.c - the GitHub stub's GraphQL endpoint (ghstub.h): the
 * discussions of GH_STUB_REPO, answered in the shape GitHub's GraphQL API
 * gives for the three queries of src/ingest/github_discussions.c, told
 * apart by their operation name (KbDiscussions, KbDiscussionComments,
 * KbCommentReplies).  Connections page by `first` and an opaque `after`
 * cursor ("Y3Vyc29yOn" + the offset: base64 of "cursor:" as GitHub's
 * start); the listing is ordered updatedAt DESC, number DESC on ties.
 */
#include "ghstub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kbtest.h"

#define CURSOR_PREFIX "Y3Vyc29yOn"

/* ---- the data ------------------------------------------------------------------- */

static json_t *make_comment(const char *id, int k, int c, int r)
{
    char *body = r < 0 ? kb_xasprintf("Comment %d on discussion %d", c + 1, k)
                       : kb_xasprintf("Reply %d to comment %d on discussion %d", r + 1, c + 1, k);
    char *url = kb_xasprintf("https://github.com/%s/discussions/%d#discussioncomment-%s",
                             GH_STUB_REPO, 100 + k, id);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:{s:s}}", "id", id, "body", body, "url", url,
                          "createdAt", r < 0 ? "2026-11-11T08:00:00Z" : "2026-11-11T09:00:00Z",
                          "author", "login", r < 0 ? "dave" : "erin");
    free(body);
    free(url);
    return o;
}

static json_t *make_discussion(int k, const char *suffix, int day)
{
    char updated[32], url[128], id[32];
    snprintf(updated, sizeof updated, "2026-11-%02dT12:00:00Z", day);
    snprintf(url, sizeof url, "https://github.com/%s/discussions/%d", GH_STUB_REPO, 100 + k);
    snprintf(id, sizeof id, "D_kwDO%d", k);
    char *title = kb_xasprintf("Discussion %d%s", k, suffix);
    char *body = kb_xasprintf("Body of discussion %d.\r\nWith a second line.", k);
    json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:b, s:{s:s}, s:{s:s},"
                          " s:{s:[{s:s}]}}",
                          "id", id, "number", 100 + k, "title", title, "body", body, "url", url,
                          "createdAt", "2026-11-10T07:00:00Z", "updatedAt", updated,
                          "closed", k == 2, "author", "login", "alice", "category", "name",
                          k % 2 ? "Q&A" : "Ideas", "labels", "nodes", "name", "help");
    json_object_set_new(o, "closedAt", k == 2 ? json_string("2026-11-12T07:00:00Z") : json_null());
    json_object_set_new(o, "isAnswered", k % 2 ? json_boolean(k % 3 == 0) : json_null());
    json_t *all = json_array();
    for (int c = 0; c < k % 4; c++) {
        char cid[48];
        snprintf(cid, sizeof cid, "DC_%d_%d", k, c);
        json_t *cm = make_comment(cid, k, c, -1);
        json_t *replies = json_array();
        for (int r = 0; r < (c == 2 ? 3 : c); r++) {
            char rid[48];
            snprintf(rid, sizeof rid, "DC_%d_%d_%d", k, c, r);
            json_array_append_new(replies, make_comment(rid, k, c, r));
        }
        json_object_set_new(cm, "allReplies", replies);
        json_array_append_new(all, cm);
    }
    json_object_set_new(o, "allComments", all);
    free(title);
    free(body);
    return o;
}

void ghstub_discussions(struct gh_stub *s, int n)
{
    json_decref(s->discussions);
    s->discussions = json_array();
    for (int k = 1; k <= n; k++)
        json_array_append_new(s->discussions, make_discussion(k, "", 10 + k));
}

static size_t find_discussion(const struct gh_stub *s, long number)
{
    size_t i;
    json_t *o;
    json_array_foreach(s->discussions, i, o)
        if (json_integer_value(json_object_get(o, "number")) == number)
            return i;
    fail_msg("the stub has no discussion #%ld", number);
    return 0;
}

void ghstub_discussion_edit(struct gh_stub *s, int k, int day)
{
    json_array_set_new(s->discussions, find_discussion(s, 100 + k),
                       make_discussion(k, " (edited)", day));
}

void ghstub_discussion_remove(struct gh_stub *s, int k)
{
    json_array_remove(s->discussions, find_discussion(s, 100 + k));
}

/* ---- the answers ------------------------------------------------------------------ */

/* A connection over `all` from the `after` cursor, `first` nodes, each made by `node`. */
static json_t *connection(json_t *all, json_t *after, json_t *first, json_t *(*node)(
                              json_t *, json_t *), json_t *vars)
{
    size_t from = 0;
    if (json_is_string(after))
        from = (size_t)atol(json_string_value(after) + strlen(CURSOR_PREFIX));
    size_t n = (size_t)json_integer_value(first), total = json_array_size(all);
    json_t *nodes = json_array();
    for (size_t i = from; i < total && i < from + n; i++)
        json_array_append_new(nodes, node(json_array_get(all, i), vars));
    size_t end = from + json_array_size(nodes);
    char cursor[64];
    snprintf(cursor, sizeof cursor, CURSOR_PREFIX "%zu", end);
    return json_pack("{s:{s:b, s:s}, s:o}", "pageInfo", "hasNextPage", end < total,
                     "endCursor", cursor, "nodes", nodes);
}

static json_t *reply_node(json_t *r, json_t *vars)
{
    (void)vars;
    return json_deep_copy(r);
}

/* A copy of x whose stored children (x.all_key) become its first page,
 * x.key, of vars.first_var children, each made by `child`. */
static json_t *with_first_page(json_t *x, const char *all_key, const char *key,
                               const char *first_var, json_t *(*child)(json_t *, json_t *),
                               json_t *vars)
{
    json_t *o = json_deep_copy(x);
    json_object_del(o, all_key);
    json_object_set_new(o, key, connection(json_object_get(x, all_key), NULL,
                                           json_object_get(vars, first_var), child, vars));
    return o;
}

static json_t *comment_node(json_t *c, json_t *vars)
{
    return with_first_page(c, "allReplies", "replies", "repliesFirst", reply_node, vars);
}

static json_t *discussion_node(json_t *d, json_t *vars)
{
    return with_first_page(d, "allComments", "comments", "commentsFirst", comment_node, vars);
}

/* updatedAt DESC, then number DESC */
static int newer_first(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(json_string_value(json_object_get(y, "updatedAt")),
                   json_string_value(json_object_get(x, "updatedAt")));
    if (c)
        return c;
    return (int)(json_integer_value(json_object_get(y, "number")) -
                 json_integer_value(json_object_get(x, "number")));
}

static json_t *listing(struct gh_stub *s, json_t *vars)
{
    size_t n = json_array_size(s->discussions);
    json_t **v = kb_xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(s->discussions, i);
    qsort(v, n, sizeof *v, newer_first);
    json_t *sorted = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(sorted, v[i]);
    free(v);
    json_t *conn = connection(sorted, json_object_get(vars, "after"),
                              json_object_get(vars, "first"), discussion_node, vars);
    json_decref(sorted);
    s->n_discussion_pages++;
    return json_pack("{s:{s:o}}", "repository", "discussions", conn);
}

static json_t *comments(struct gh_stub *s, json_t *vars)
{
    long number = (long)json_integer_value(json_object_get(vars, "number"));
    json_t *d = json_array_get(s->discussions, find_discussion(s, number));
    s->n_comment_pages++;
    return json_pack("{s:{s:{s:o}}}", "repository", "discussion", "comments",
                     connection(json_object_get(d, "allComments"), json_object_get(vars, "after"),
                                json_object_get(vars, "first"), comment_node, vars));
}

static json_t *replies(struct gh_stub *s, json_t *vars)
{
    const char *id = json_string_value(json_object_get(vars, "id"));
    size_t i, j;
    json_t *d, *c;
    s->n_reply_pages++;
    json_array_foreach(s->discussions, i, d)
        json_array_foreach(json_object_get(d, "allComments"), j, c)
            if (strcmp(json_string_value(json_object_get(c, "id")), id) == 0)
                return json_pack("{s:{s:o}}", "node", "replies",
                                 connection(json_object_get(c, "allReplies"),
                                            json_object_get(vars, "after"),
                                            json_object_get(vars, "first"), reply_node, vars));
    return json_pack("{s:n}", "node");
}

static void send_json(int fd, int status, const char *headers, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    ghstub_respond(fd, status, headers, text);
    free(text);
    json_decref(j);
}

void ghstub_graphql_serve(struct gh_stub *s, int fd, const char *in, size_t body_at,
                          size_t body_len)
{
    json_t *req = json_loadb(in + body_at, body_len, 0, NULL);
    const char *query = json_string_value(json_object_get(req, "query"));
    json_t *vars = json_object_get(req, "variables");
    const char *op = query && strstr(query, "query KbDiscussions(") ? "KbDiscussions"
                   : query && strstr(query, "query KbDiscussionComments(") ? "KbDiscussionComments"
                   : query && strstr(query, "query KbCommentReplies(") ? "KbCommentReplies" : "?";
    char *after = json_dumps(json_object_get(vars, "after"), JSON_ENCODE_ANY);
    char path[256] = "";
    sscanf(in, "POST %255s", path);
    kb_buf_printf(&s->log, "POST %s %s after=%s\n", path, op, after ? after : "none");
    free(after);
    if (strstr(in, "Authorization: Bearer " GH_STUB_TOKEN "\r\n"))
        s->n_gql_auth_ok++;
    if (s->reset_at && (long)time(NULL) < s->reset_at)
        s->n_early++;
    char headers[128];
    snprintf(headers, sizeof headers, "X-RateLimit-Remaining: 4999\r\nX-RateLimit-Reset: %ld\r\n",
             (long)time(NULL) + 3600);
    if (s->n_502_graphql > 0) {
        s->n_502_graphql--;
        ghstub_respond(fd, 502, NULL, "{\"message\":\"Server Error\"}");
    } else if (req == NULL || strcmp(op, "?") == 0) {
        ghstub_respond(fd, 400, NULL, "{\"message\":\"Problems parsing JSON\"}");
    } else if (s->graphql_rate_limited_once) {
        s->graphql_rate_limited_once = 0;
        s->reset_at = (long)time(NULL) + (s->reset_in ? s->reset_in : 1);
        snprintf(headers, sizeof headers, "X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: %ld\r\n",
                 s->reset_at);
        send_json(fd, 200, headers,
                  json_pack("{s:[{s:s, s:s}]}", "errors", "type", "RATE_LIMITED", "message",
                            "API rate limit exceeded for user ID 1."));
    } else if (s->graphql_status) {
        ghstub_respond(fd, s->graphql_status, NULL, "{\"message\":\"Resource not accessible "
                       "by personal access token\"}");
    } else if (s->graphql_error) {
        const char *msg = strcmp(s->graphql_error, "NOT_FOUND") == 0
            ? "Could not resolve to a Repository with the name 'acme/api'."
            : "This query requests up to 1,150,000 possible nodes which exceeds the maximum "
              "limit of 500,000.";
        send_json(fd, 200, headers,
                  json_pack("{s:{s:n}, s:[{s:s, s:[s], s:[{s:i, s:i}], s:s}]}", "data",
                            "repository", "errors", "type", s->graphql_error, "path",
                            "repository", "locations", "line", 1, "column", 2, "message", msg));
    } else {
        int is_listing = strcmp(op, "KbDiscussions") == 0;
        json_t *data = is_listing ? listing(s, vars)
                     : strcmp(op, "KbDiscussionComments") == 0 ? comments(s, vars)
                     : replies(s, vars);
        s->n_graphql++;
        send_json(fd, 200, headers, json_pack("{s:o}", "data", data));
        if (is_listing && json_is_null(json_object_get(vars, "after")) &&
            s->edit_after_first_page) {
            ghstub_discussion_edit(s, s->edit_after_first_page, 25);
            s->edit_after_first_page = 0;
        }
    }
    json_decref(req);
}
