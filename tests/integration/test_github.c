/*
 * test_github.c - type: github (src/ingest/github.c, github_http.c)
 * against a GitHub stub on 127.0.0.1 that answers like the REST API:
 * issues listed by updated_at with since= and Link pagination, comments
 * per issue, ETags and 304, and injected faults (502s, a 403 primary rate
 * limit with its reset, 401/403/404).  The reader is tested directly
 * (group github.c), then `kbpipe run` against real PostgreSQL (group
 * cmd_run.c): marks stored only after success, nightly runs fetching only
 * what changed, --full, and an export-loaded project moving to the API
 * without re-embedding anything.
 *
 * The stub serves one thread, one request per connection, and stops by
 * itself after GH_STUB_MAX_REQUESTS requests, so a looping client cannot
 * hang the test.
 */
#include "kbtest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ingest/ingest.h"

#define GH_STUB_MAX_REQUESTS 400
#define TOKEN "ghp_kbpipeTestSecret0123456789"
#define REPO "acme/api"

struct gh_stub {
    int fd, port;
    pthread_t thread;
    json_t *issues;                /* REST issue objects of REPO */
    json_t *comments;              /* REST comment objects (issue_url says whose) */
    /* faults */
    int n_502;                     /* answer this many requests 502 first */
    int rate_limit_once;           /* the first listing: 403, remaining 0, reset +1 s */
    long reset_at;                 /* that reset (epoch s) */
    long reset_in;                 /* seconds ahead for the reset (default 1) */
    int force_status;              /* answer every request with it (401, 403, 404) */
    int link_elsewhere;            /* next-page links point at another host */
    /* what it saw */
    int n_requests, n_listings, n_comment_requests, n_304, n_auth_ok, n_early, n_etag_sent;
    char last_since[64];           /* since= of the last listing ("" none) */
    struct kb_buf log;             /* one request line per request */
};

/* ---- the stub's data -------------------------------------------------------- */

/* issue k of REPO, updated at 2026-11-0K, with k % 3 comments; #4 a pull request */
static json_t *make_issue(int k, const char *title_suffix)
{
    char updated[32], url[128], html[128];
    snprintf(updated, sizeof updated, "2026-11-%02dT10:00:00Z", k);
    snprintf(url, sizeof url, "https://api.github.com/repos/%s", REPO);
    snprintf(html, sizeof html, "https://github.com/%s/issues/%d", REPO, k);
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
            char *iu = kb_xasprintf("https://api.github.com/repos/%s/issues/%d", REPO, k);
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
static void stub_edit(struct gh_stub *s, int k, int day)
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

static void respond(int fd, int status, const char *extra_headers, const char *body)
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
    size_t body_len;
    if (kbtest_http_read(fd, &in, &body_len) == 0) {
        kb_buf_release(&in);
        return;
    }
    char target[1024] = "";
    sscanf(in.data, "GET %1023s", target);
    s->n_requests++;
    kb_buf_printf(&s->log, "%s\n", target);
    if (strstr(in.data, "Authorization: Bearer " TOKEN "\r\n"))
        s->n_auth_ok++;
    char *q = strchr(target, '?');
    char path[512];
    snprintf(path, sizeof path, "%.*s", (int)(q ? q - target : (long)strlen(target)), target);
    const char *query = q ? q + 1 : "";
    char issues_path[128];
    snprintf(issues_path, sizeof issues_path, "/repos/%s/issues", REPO);
    int is_listing = strcmp(path, issues_path) == 0;
    if (s->force_status) {
        respond(fd, s->force_status, NULL, "{\"message\":\"Bad credentials\"}");
    } else if (s->n_502 > 0) {
        s->n_502--;
        respond(fd, 502, NULL, "{\"message\":\"Server Error\"}");
    } else if (is_listing && s->rate_limit_once) {
        s->rate_limit_once = 0;
        s->reset_at = (long)time(NULL) + (s->reset_in ? s->reset_in : 1);
        char h[128];
        snprintf(h, sizeof h, "X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: %ld\r\n",
                 s->reset_at);
        respond(fd, 403, h, "{\"message\":\"API rate limit exceeded\"}");
    } else if (is_listing) {
        if (s->reset_at && (long)time(NULL) < s->reset_at)
            s->n_early++;
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
        snprintf(hdr, sizeof hdr, "ETag: %s\r\nX-RateLimit-Remaining: 4999\r\n%s", etag, link);
        char inm[64];
        snprintf(inm, sizeof inm, "If-None-Match: %s\r\n", etag);
        if (strstr(in.data, "If-None-Match:"))
            s->n_etag_sent++;
        if (strstr(in.data, inm)) {
            s->n_304++;
            respond(fd, 304, hdr, "");
        } else {
            respond(fd, 200, hdr, body);
        }
        free(body);
        json_decref(sel);
    } else if (strncmp(path, issues_path, strlen(issues_path)) == 0 &&
               strstr(path, "/comments")) {
        s->n_comment_requests++;
        long number = strtol(path + strlen(issues_path) + 1, NULL, 10);
        char *iu = kb_xasprintf("https://api.github.com/repos/%s/issues/%ld", REPO, number);
        json_t *sel = json_array();
        size_t i;
        json_t *c;
        json_array_foreach(s->comments, i, c)
            if (strcmp(json_string_value(json_object_get(c, "issue_url")), iu) == 0)
                json_array_append(sel, c);
        char link[512];
        char *body = page_of(s, sel, path, query, link, sizeof link);
        respond(fd, 200, link, body);
        free(body);
        free(iu);
        json_decref(sel);
    } else {
        respond(fd, 404, NULL, "{\"message\":\"Not Found\"}");
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

static void stub_start(struct gh_stub *s, int n_issues)
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

static void stub_stop(struct gh_stub *s)
{
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->fd);
    json_decref(s->issues);
    json_decref(s->comments);
    kb_buf_release(&s->log);
}

/* ---- reading a github source directly --------------------------------------- */

struct read_result {
    int n_docs, n_bad;
    enum kb_code rc;               /* the first error other than KB_E_INPUT, or KB_OK */
    struct kb_err err;             /* the last error */
    struct kb_buf docs;            /* "source_id\ttitle\turl\tauthor\tmetadata\ttext\n" each */
    struct kb_buf marks;           /* "key=value\n" each, when the reader ended */
};

static void source_for(struct ingest_source *src, const struct gh_stub *s, char *base,
                       size_t n)
{
    ingest_source_defaults(src, INGEST_GITHUB);
    src->name = "gh";
    snprintf(base, n, "http://127.0.0.1:%d", s->port);
    static const char *repos[] = { REPO };
    src->u.github.repos.v = repos;
    src->u.github.repos.n = 1;
    src->u.github.base_url = base;
    src->u.github.token_env = "KBT_GH_TOKEN";
    src->u.github.retry_base_ms = 10;
    src->u.github.max_wait_s = 5;
    setenv("KBT_GH_TOKEN", TOKEN, 1);
}

static void doc_line(struct kb_buf *b, const struct kb_document *d)
{
    kb_buf_printf(b, "%s\t%s\t%s\t%s\t%s\t%s\n", d->source_id, d->title ? d->title : "",
                  d->url ? d->url : "", d->author ? d->author : "", d->metadata_json, d->text);
}

/* Read the whole source; `marks_in` ("key=value\n"...) are given to the reader first. */
static void read_all(const struct ingest_source *src, const char *marks_in,
                     struct read_result *out)
{
    memset(out, 0, sizeof *out);
    kb_buf_init(&out->docs);
    kb_buf_init(&out->marks);
    struct ingest_reader *rd;
    out->rc = ingest_open(src, ".", &rd, &out->err);
    if (out->rc != KB_OK)
        return;
    for (const char *p = marks_in; p && *p;) {
        const char *eq = strchr(p, '='), *nl = strchr(p, '\n');
        char *key = kb_xasprintf("%.*s", (int)(eq - p), p);
        char *value = kb_xasprintf("%.*s", (int)(nl - eq - 1), eq + 1);
        ingest_state_set(rd, key, value);
        free(key);
        free(value);
        p = nl + 1;
    }
    struct kb_arena *arena = kb_arena_new();
    for (;;) {
        struct kb_document *d;
        struct kb_err e = { 0 };
        enum kb_code rc = ingest_next(rd, arena, &d, &e);
        if (rc == KB_E_INPUT) {
            out->n_bad++;
            out->err = e;
            continue;
        }
        if (rc != KB_OK) {
            out->rc = rc;
            out->err = e;
            break;
        }
        if (d == NULL)
            break;
        out->n_docs++;
        doc_line(&out->docs, d);
        kb_arena_reset(arena);
    }
    const char *k, *v;
    for (int i = 0; out->rc == KB_OK && ingest_state_get(rd, i, &k, &v); i++)
        kb_buf_printf(&out->marks, "%s=%s\n", k, v);
    kb_arena_free(arena);
    ingest_close(rd);
}

static void result_release(struct read_result *r)
{
    kb_buf_release(&r->docs);
    kb_buf_release(&r->marks);
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void github__pagination_comments_and_marks(void **state)
{
    (void)state;
    struct gh_stub s;
    stub_start(&s, 5);
    struct ingest_source src;
    char base[64];
    source_for(&src, &s, base, sizeof base);
    src.u.github.per_page = 2;
    struct read_result r;
    read_all(&src, NULL, &r);
    assert_int_equal(r.rc, KB_OK);
    assert_int_equal(r.n_docs, 4);              /* #4 is a pull request: skipped */
    assert_int_equal(s.n_listings, 3);          /* 5 issues, 2 a page: 3 pages via Link */
    assert_int_equal(s.n_auth_ok, s.n_requests);
    assert_non_null(strstr(r.docs.data, "acme/api#5\tIssue 5\t"));
    assert_non_null(strstr(r.docs.data, "Comment by carol on 2026-10-02T09:00:00Z:\n\n"
                                        "Comment 2 on #5"));
    assert_null(strchr(r.docs.data, '\r'));     /* CR LF normalized */
    /* the newest updated_at seen, and no ETag for a listing of several pages */
    assert_non_null(strstr(r.marks.data, "since acme/api=2026-11-05T10:00:00Z\n"));
    assert_null(strstr(r.marks.data, "etag acme/api=W/"));
    src.u.github.include_pull_requests = 1;
    struct read_result r2;
    read_all(&src, NULL, &r2);
    assert_int_equal(r2.n_docs, 5);
    result_release(&r2);
    result_release(&r);
    stub_stop(&s);
}

static void github__since_asks_only_what_changed(void **state)
{
    (void)state;
    struct gh_stub s;
    stub_start(&s, 5);
    struct ingest_source src;
    char base[64];
    source_for(&src, &s, base, sizeof base);
    struct read_result r;
    read_all(&src, "since acme/api=2026-11-03T10:00:00Z\n", &r);
    assert_int_equal(r.rc, KB_OK);
    assert_string_equal(s.last_since, "2026-11-03T10:00:00Z");
    assert_int_equal(r.n_docs, 2);              /* #3 (the boundary) and #5; #4 a PR */
    assert_null(strstr(r.docs.data, "acme/api#1\t"));
    assert_int_equal(s.n_comment_requests, 1);  /* #3 has none: only #5's are asked */
    result_release(&r);
    stub_stop(&s);
}

static void github__etag_304_on_an_unchanged_listing(void **state)
{
    (void)state;
    struct gh_stub s;
    stub_start(&s, 3);
    struct ingest_source src;
    char base[64];
    source_for(&src, &s, base, sizeof base);
    struct read_result r1, r2, r3;
    read_all(&src, NULL, &r1);                  /* full: mark day 3, one page */
    read_all(&src, r1.marks.data, &r2);         /* since day 3: #3 again, ETag kept */
    assert_int_equal(r2.n_docs, 1);
    assert_non_null(strstr(r2.marks.data, "etag acme/api=2026-11-03T10:00:00Z W/\""));
    int before = s.n_requests;
    read_all(&src, r2.marks.data, &r3);         /* nothing changed: 304, no comments asked */
    assert_int_equal(r3.rc, KB_OK);
    assert_int_equal(r3.n_docs, 0);
    assert_int_equal(s.n_304, 1);
    assert_int_equal(s.n_requests, before + 1);
    assert_string_equal(r3.marks.data, r2.marks.data);
    stub_edit(&s, 2, 9);                        /* a change: 200 again, the edit comes */
    struct read_result r4;
    read_all(&src, r3.marks.data, &r4);
    assert_int_equal(s.n_304, 1);
    assert_non_null(strstr(r4.docs.data, "Issue 2 (edited)"));
    assert_non_null(strstr(r4.marks.data, "since acme/api=2026-11-09T10:00:00Z\n"));
    result_release(&r1);
    result_release(&r2);
    result_release(&r3);
    result_release(&r4);
    stub_stop(&s);
}

static void github__rate_limit_waits_for_the_reset(void **state)
{
    (void)state;
    struct gh_stub s;
    stub_start(&s, 2);
    s.rate_limit_once = 1;
    s.reset_in = 1;
    struct ingest_source src;
    char base[64];
    source_for(&src, &s, base, sizeof base);
    struct read_result r;
    read_all(&src, NULL, &r);
    assert_int_equal(r.rc, KB_OK);
    assert_int_equal(r.n_docs, 2);
    assert_int_equal(s.n_listings, 1);          /* the one after the 403 */
    assert_int_equal(s.n_early, 0);             /* not before X-RateLimit-Reset */
    result_release(&r);

    /* a reset beyond max_wait: a clear error at once, naming the repository */
    s.rate_limit_once = 1;
    s.reset_in = 3600;
    src.u.github.max_wait_s = 2;
    read_all(&src, NULL, &r);
    assert_int_equal(r.rc, KB_E_IO);
    assert_string_equal(r.err.origin, REPO);
    assert_non_null(strstr(r.err.msg, "primary rate limit exhausted"));
    assert_non_null(strstr(r.err.msg, "max_wait (2 s)"));
    assert_string_equal(r.marks.data ? r.marks.data : "", "");   /* no marks to store */
    result_release(&r);
    stub_stop(&s);
}

static void github__5xx_retried_with_backoff(void **state)
{
    (void)state;
    struct gh_stub s;
    stub_start(&s, 2);
    s.n_502 = 2;
    struct ingest_source src;
    char base[64];
    source_for(&src, &s, base, sizeof base);
    struct read_result r;
    read_all(&src, NULL, &r);
    assert_int_equal(r.rc, KB_OK);
    assert_int_equal(r.n_docs, 2);
    assert_int_equal(count_of(s.log.data, "/repos/acme/api/issues?"), 3);   /* 502, 502, 200 */
    result_release(&r);

    s.n_502 = 100;                              /* retries spent: an error, not a hang */
    src.u.github.max_retries = 2;
    read_all(&src, NULL, &r);
    assert_int_equal(r.rc, KB_E_IO);
    assert_non_null(strstr(r.err.msg, "failed after 3 attempt(s): HTTP 502"));
    result_release(&r);
    stub_stop(&s);
}

static void github__client_errors_name_the_repository(void **state)
{
    (void)state;
    static const struct { int status; const char *says; } cases[] = {
        { 401, "401 Unauthorized ('Bad credentials'): the token in KBT_GH_TOKEN is wrong" },
        { 403, "403 Forbidden" },
        { 404, "404 Not Found ('Bad credentials'): the repository does not exist" },
    };
    struct gh_stub s;
    stub_start(&s, 1);
    struct ingest_source src;
    char base[64];
    source_for(&src, &s, base, sizeof base);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s.force_status = cases[i].status;
        struct read_result r;
        read_all(&src, NULL, &r);
        assert_int_equal(r.rc, KB_E_IO);
        assert_string_equal(r.err.origin, REPO);
        assert_non_null(strstr(r.err.msg, cases[i].says));
        assert_null(strstr(r.err.msg, TOKEN));
        result_release(&r);
    }
    assert_int_equal(s.n_requests, 3);          /* none retried */
    stub_stop(&s);
}

static void github__next_page_on_another_host_is_refused(void **state)
{
    (void)state;
    struct gh_stub s;
    stub_start(&s, 3);
    s.link_elsewhere = 1;
    struct ingest_source src;
    char base[64];
    source_for(&src, &s, base, sizeof base);
    src.u.github.per_page = 1;
    struct read_result r;
    read_all(&src, NULL, &r);
    assert_int_equal(r.rc, KB_E_IO);
    assert_non_null(strstr(r.err.msg, "does not send the token elsewhere"));
    assert_int_equal(s.n_listings, 1);
    result_release(&r);
    stub_stop(&s);
}

static void github__bad_issue_is_located_and_the_rest_goes_on(void **state)
{
    (void)state;
    struct gh_stub s;
    stub_start(&s, 3);
    json_object_del(json_array_get(s.issues, 1), "title");   /* #2 */
    struct ingest_source src;
    char base[64];
    source_for(&src, &s, base, sizeof base);
    struct read_result r;
    read_all(&src, NULL, &r);
    assert_int_equal(r.rc, KB_OK);
    assert_int_equal(r.n_docs, 2);
    assert_int_equal(r.n_bad, 1);
    char want[128];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/repos/acme/api/issues?", s.port);
    assert_non_null(strstr(r.err.origin, want));
    assert_non_null(strstr(r.err.origin, ": row 2"));
    assert_non_null(strstr(r.err.msg, "acme/api#2 has no 'title'"));
    result_release(&r);
    stub_stop(&s);
}

/* Write the stub's data as REST exports (issues.json, comments.json) in dir. */
static void write_exports(const struct gh_stub *s, const char *dir)
{
    char *p = kb_xasprintf("%s/issues.json", dir);
    assert_int_equal(json_dump_file(s->issues, p, JSON_INDENT(1)), 0);
    free(p);
    p = kb_xasprintf("%s/comments.json", dir);
    assert_int_equal(json_dump_file(s->comments, p, JSON_INDENT(1)), 0);
    free(p);
}

static void export_then_api__same_documents(void **state)
{
    (void)state;
    struct gh_stub s;
    stub_start(&s, 6);
    char *dir = kbtest_tmpdir();
    write_exports(&s, dir);
    struct ingest_source ex;
    ingest_source_defaults(&ex, INGEST_GITHUB_ISSUES);
    ex.name = "gh";
    char *ip = kb_xasprintf("%s/issues.json", dir), *cp = kb_xasprintf("%s/comments.json", dir);
    ex.u.issues.path = ip;
    ex.u.issues.comments_path = cp;
    struct ingest_source api;
    char base[64];
    source_for(&api, &s, base, sizeof base);
    struct read_result a, b;
    read_all(&ex, NULL, &a);
    read_all(&api, NULL, &b);
    assert_int_equal(a.rc, KB_OK);
    assert_int_equal(b.rc, KB_OK);
    assert_int_equal(a.n_docs, 5);
    /* id, title, url, author, metadata and text byte for byte: the same hashes */
    assert_string_equal(a.docs.data, b.docs.data);
    result_release(&a);
    result_release(&b);
    free(ip);
    free(cp);
    kbtest_rmtree(dir);
    free(dir);
    stub_stop(&s);
}

static void validate__bad_github_keys_are_located(void **state)
{
    (void)state;
    static const char *const want[] = {
        "p.yaml:6:23: sources[0].repos[1] must be OWNER/NAME (e.g. acme/supervisor-service), "
        "found 'acme'",
        "p.yaml:7:16: sources[0].token_env must name an environment variable (e.g. token_env: "
        "GITHUB_TOKEN) and never hold the token itself (the value is not shown)",
        "p.yaml:8:15: sources[0].base_url must be an https:// URL (e.g. "
        "https://github.example.com/api/v3), or http:// to this machine only, found "
        "'http://github.example.com'",
        "p.yaml:9:15: sources[0].per_page must be an integer from 1 to 100 (e.g. per_page: 100), "
        "found '500'",
        "p.yaml:10:5: unknown key 'repo' in a github source (did you mean 'repos'?)",
        "p.yaml:11:5: sources[1] (github) has no 'repos'; add repos: [OWNER/NAME]",
    };
    char *dir = kbtest_tmpdir();
    char *path = kb_xasprintf("%s/p.yaml", dir);
    kbtest_write(path, "name: p\nproject: p\nsources:\n"
                       "  - name: gh\n    type: github\n"
                       "    repos: [acme/api, acme]\n"
                       "    token_env: " TOKEN "-x\n"
                       "    base_url: http://github.example.com\n"
                       "    per_page: 500\n"
                       "    repo: acme/api\n"
                       "  - {name: gh2, type: github}\n");
    char *out = NULL, *errout = NULL;
    int rc = kbtest_sh(&out, &errout, "cd '%s' && '%s' validate p.yaml", dir, kbtest_bin());
    assert_int_equal(rc, 2);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(errout, want[i]) == NULL)
            fail_msg("missing: %s\nin:\n%s", want[i], errout);
    assert_null(strstr(errout, TOKEN));
    assert_null(strstr(out, TOKEN));
    free(out);
    free(errout);
    free(path);
    kbtest_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest reader_tests[] = {
        cmocka_unit_test(github__pagination_comments_and_marks),
        cmocka_unit_test(github__since_asks_only_what_changed),
        cmocka_unit_test(github__etag_304_on_an_unchanged_listing),
        cmocka_unit_test(github__rate_limit_waits_for_the_reset),
        cmocka_unit_test(github__5xx_retried_with_backoff),
        cmocka_unit_test(github__client_errors_name_the_repository),
        cmocka_unit_test(github__next_page_on_another_host_is_refused),
        cmocka_unit_test(github__bad_issue_is_located_and_the_rest_goes_on),
        cmocka_unit_test(export_then_api__same_documents),
    };
    const struct CMUnitTest schema_tests[] = {
        cmocka_unit_test(validate__bad_github_keys_are_located),
    };
    int failed = cmocka_run_group_tests_name("github.c", reader_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("schema.c", schema_tests, NULL, NULL);
    return failed ? 1 : 0;
}
