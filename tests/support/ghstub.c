/*
 * ghstub.c - the GitHub REST API stub of ghstub.h.
 */
#include "ghstub.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kbtest.h"

/* ---- the stub's data -------------------------------------------------------- */

/* issue k of GH_STUB_REPO, updated at 2026-11-0K, with k % 3 comments; #4 a pull request */
static json_t *make_issue(int k, const char *title_suffix)
{
    char updated[32], url[128], html[128];
    snprintf(updated, sizeof updated, "2026-11-%02dT10:00:00Z", k);
    snprintf(url, sizeof url, "https://api.github.com/repos/%s", GH_STUB_REPO);
    snprintf(html, sizeof html, "https://github.com/%s/issues/%d", GH_STUB_REPO, k);
    char *title = kb_xasprintf("Issue %d%s", k, title_suffix);
    char *body = kb_xasprintf("Body of issue %d.\r\nSecond line, caf\xc3\xa9.", k);
    json_t *o = json_pack("{s:I, s:i, s:s, s:s, s:s, s:{s:s}, s:[{s:s},{s:s}], s:i, s:s, "
                          "s:s, s:n, s:s, s:s}",
                          "id", (json_int_t)(5000 + k), "number", k, "title", title,
                          "body", body, "state", k % 2 ? "open" : "closed",
                          "user", "login", "alice", "labels", "name", "bug", "name", "p1",
                          "comments", k % 3, "created_at", "2026-10-01T09:00:00Z",
                          "updated_at", updated, "closed_at", "html_url", html,
                          "repository_url", url);
    if (k == 4)
        json_object_set_new(o, "pull_request", json_pack("{s:s}", "url", html));
    free(title);
    free(body);
    return o;
}

static void stub_data(struct gh_stub *s, int n_issues)
{
    s->issues = json_array();
    s->comments = json_array();
    for (int k = 1; k <= n_issues; k++) {
        json_array_append_new(s->issues, make_issue(k, ""));
        for (int c = 0; c < k % 3; c++) {
            char *iu = kb_xasprintf("https://api.github.com/repos/%s/issues/%d", GH_STUB_REPO, k);
            char *body = kb_xasprintf("Comment %d on #%d", c + 1, k);
            json_array_append_new(s->comments,
                                  json_pack("{s:I, s:s, s:{s:s}, s:s, s:s, s:s}", "id",
                                            (json_int_t)(9000 + 10 * k + c), "body", body,
                                            "user", "login", c ? "carol" : "bob",
                                            "created_at", "2026-10-02T09:00:00Z",
                                            "html_url", "https://github.com/acme/api#c",
                                            "issue_url", iu));
            free(iu);
            free(body);
        }
    }
}

/* Replace issue k by a new version (edited title, updated on day `day`). */
void ghstub_edit(struct gh_stub *s, int k, int day)
{
    json_t *o = make_issue(k, " (edited)");
    char updated[32];
    snprintf(updated, sizeof updated, "2026-11-%02dT10:00:00Z", day);
    json_object_set_new(o, "updated_at", json_string(updated));
    json_array_set_new(s->issues, (size_t)k - 1, o);
}

/* ---- the stub's answers ------------------------------------------------------ */

static long query_long(const char *q, const char *key, long dflt)
{
    char pat[32];
    snprintf(pat, sizeof pat, "%s=", key);
    for (const char *p = q; p && (p = strstr(p, pat)) != NULL; p++)
        if (p == q || p[-1] == '?' || p[-1] == '&')
            return strtol(p + strlen(pat), NULL, 10);
    return dflt;
}

static void query_str(const char *q, const char *key, char *out, size_t n)
{
    char pat[32];
    snprintf(pat, sizeof pat, "%s=", key);
    out[0] = '\0';
    for (const char *p = q; p && (p = strstr(p, pat)) != NULL; p++)
        if (p == q || p[-1] == '?' || p[-1] == '&') {
            p += strlen(pat);
            size_t k = strcspn(p, "& ");
            snprintf(out, n, "%.*s", (int)(k < n ? k : n - 1), p);
            return;
        }
}

void ghstub_respond(int fd, int status, const char *extra_headers, const char *body)
{
    const char *reason = status == 200 ? "OK" : status == 304 ? "Not Modified" : "Error";
    char *head = kb_xasprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
                              reason, strlen(body), extra_headers ? extra_headers : "");
    send(fd, head, strlen(head), MSG_NOSIGNAL);
    send(fd, body, strlen(body), MSG_NOSIGNAL);
    free(head);
}

/* One page of `all` (page from 1) as JSON text, and the Link header when more follow. */
static char *page_of(struct gh_stub *s, json_t *all, const char *path, const char *query,
                     char *link, size_t link_len)
{
    long per_page = query_long(query, "per_page", 30), page = query_long(query, "page", 1);
    json_t *out = json_array();
    size_t n = json_array_size(all);
    for (size_t i = (size_t)((page - 1) * per_page); i < n && i < (size_t)(page * per_page); i++)
        json_array_append(out, json_array_get(all, i));
    link[0] = '\0';
    if ((size_t)(page * per_page) < n) {
        char since[64];
        query_str(query, "since", since, sizeof since);
        snprintf(link, link_len, "Link: <http://%s:%d%s?per_page=%ld&page=%ld%s%s>; "
                 "rel=\"next\", <http://127.0.0.1:%d%s?page=99>; rel=\"last\"\r\n",
                 s->link_elsewhere ? "127.0.0.2" : "127.0.0.1", s->port, path, per_page,
                 page + 1, since[0] ? "&since=" : "", since, s->port, path);
    }
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    return text;
}

static void stub_serve(struct gh_stub *s, int fd)
{
    struct kb_buf in;
    kb_buf_init(&in);
    size_t body_len, body_at;
    if ((body_at = kbtest_http_read(fd, &in, &body_len)) == 0) {
        kb_buf_release(&in);
        return;
    }
    char method[16] = "", whole[1024] = "";
    sscanf(in.data, "%15s %1023s", method, whole);
    s->n_requests++;
    if (strcmp(method, "POST") != 0)
        kb_buf_printf(&s->log, "%s\n", whole);
    if (strstr(in.data, "Authorization: Bearer " GH_STUB_TOKEN "\r\n"))
        s->n_auth_ok++;
    /* GitHub Enterprise Server's REST API lives under /api/v3 */
    const char *target = strncmp(whole, "/api/v3/", 8) == 0 ? whole + 7 : whole;
    if (strcmp(method, "POST") == 0 && !s->force_status &&
        (strcmp(whole, "/graphql") == 0 || strcmp(whole, "/api/graphql") == 0)) {
        ghstub_graphql_serve(s, fd, in.data, body_at, body_len);
        kb_buf_release(&in);
        return;
    }
    const char *q = strchr(target, '?');
    char path[512];
    snprintf(path, sizeof path, "%.*s", (int)(q ? q - target : (long)strlen(target)), target);
    const char *query = q ? q + 1 : "";
    char issues_path[128];
    snprintf(issues_path, sizeof issues_path, "/repos/%s/issues", GH_STUB_REPO);
    int is_listing = strcmp(path, issues_path) == 0;
    if (s->reset_at && (long)time(NULL) < s->reset_at)
        s->n_early++;
    if (s->force_status) {
        ghstub_respond(fd, s->force_status, NULL, "{\"message\":\"Bad credentials\"}");
    } else if (s->n_502 > 0) {
        s->n_502--;
        ghstub_respond(fd, 502, NULL, "{\"message\":\"Server Error\"}");
    } else if (is_listing && s->rate_limit_once) {
        s->rate_limit_once = 0;
        s->reset_at = (long)time(NULL) + (s->reset_in ? s->reset_in : 1);
        char h[128];
        snprintf(h, sizeof h, "X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: %ld\r\n",
                 s->reset_at);
        ghstub_respond(fd, 403, h, "{\"message\":\"API rate limit exceeded\"}");
    } else if (is_listing && s->n_retry_after > 0) {
        s->n_retry_after--;
        s->reset_at = (long)time(NULL) + s->retry_after_s;
        char h[64];
        snprintf(h, sizeof h, "Retry-After: %d\r\n", s->retry_after_s);
        ghstub_respond(fd, 403, h, "{\"message\":\"You have exceeded a secondary rate limit\"}");
    } else if (is_listing) {
        s->n_listings++;
        char since[64];
        query_str(query, "since", since, sizeof since);
        snprintf(s->last_since, sizeof s->last_since, "%s", since);
        /* updated_at >= since, oldest first (the stub's issues are in that order
         * unless edited: sort by updated_at) */
        json_t *sel = json_array();
        for (int day = 1; day <= 31; day++) {
            size_t i;
            json_t *o;
            json_array_foreach(s->issues, i, o) {
                const char *u = json_string_value(json_object_get(o, "updated_at"));
                if (atoi(u + 8) == day && (since[0] == '\0' || strcmp(u, since) >= 0))
                    json_array_append(sel, o);
            }
        }
        char link[512];
        char *body = page_of(s, sel, path, query, link, sizeof link);
        /* a weak ETag of the page's bytes */
        unsigned h = 2166136261u;
        for (const char *p = body; *p; p++)
            h = (h ^ (unsigned char)*p) * 16777619u;
        char hdr[800], etag[32];
        snprintf(etag, sizeof etag, "W/\"%08x\"", h);
        if (s->exhaust_on_listing)
            s->reset_at = (long)time(NULL) + 1;
        snprintf(hdr, sizeof hdr, "ETag: %s\r\nX-RateLimit-Remaining: %d\r\n"
                 "X-RateLimit-Reset: %ld\r\n%s", etag, s->exhaust_on_listing ? 0 : 4999,
                 s->reset_at ? s->reset_at : (long)time(NULL) + 3600, link);
        char inm[64];
        snprintf(inm, sizeof inm, "If-None-Match: %s\r\n", etag);
        if (strstr(in.data, "If-None-Match:"))
            s->n_etag_sent++;
        if (strstr(in.data, inm)) {
            s->n_304++;
            ghstub_respond(fd, 304, hdr, "");
        } else {
            ghstub_respond(fd, 200, hdr, body);
        }
        free(body);
        json_decref(sel);
    } else if (strncmp(path, issues_path, strlen(issues_path)) == 0 &&
               strstr(path, "/comments")) {
        s->n_comment_requests++;
        long number = strtol(path + strlen(issues_path) + 1, NULL, 10);
        char *iu = kb_xasprintf("https://api.github.com/repos/%s/issues/%ld", GH_STUB_REPO, number);
        json_t *sel = json_array();
        size_t i;
        json_t *c;
        json_array_foreach(s->comments, i, c)
            if (strcmp(json_string_value(json_object_get(c, "issue_url")), iu) == 0)
                json_array_append(sel, c);
        char link[512];
        char *body = page_of(s, sel, path, query, link, sizeof link);
        ghstub_respond(fd, 200, link, body);
        free(body);
        free(iu);
        json_decref(sel);
    } else {
        ghstub_respond(fd, 404, NULL, "{\"message\":\"Not Found\"}");
    }
    kb_buf_release(&in);
}

static void *stub_loop(void *arg)
{
    struct gh_stub *s = arg;
    for (int i = 0; i < GH_STUB_MAX_REQUESTS; i++) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            return NULL;   /* shut down */
        stub_serve(s, c);
        close(c);
    }
    return NULL;
}

void ghstub_start(struct gh_stub *s, int n_issues)
{
    memset(s, 0, sizeof *s);
    kb_buf_init(&s->log);
    stub_data(s, n_issues);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s->fd, 8) != 0 || getsockname(s->fd, (struct sockaddr *)&a, &len) != 0)
        fail_msg("cannot start the GitHub stub");
    s->port = ntohs(a.sin_port);
    setenv("NO_PROXY", "127.0.0.1", 1);
    setenv("no_proxy", "127.0.0.1", 1);
    pthread_create(&s->thread, NULL, stub_loop, s);
}

void ghstub_stop(struct gh_stub *s)
{
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->fd);
    json_decref(s->issues);
    json_decref(s->comments);
    json_decref(s->discussions);
    kb_buf_release(&s->log);
}

/* Write the stub's data as REST exports (issues.json, comments.json) in dir. */
void ghstub_write_exports(const struct gh_stub *s, const char *dir)
{
    char *p = kb_xasprintf("%s/issues.json", dir);
    assert_int_equal(json_dump_file(s->issues, p, JSON_INDENT(1)), 0);
    free(p);
    p = kb_xasprintf("%s/comments.json", dir);
    assert_int_equal(json_dump_file(s->comments, p, JSON_INDENT(1)), 0);
    free(p);
}
