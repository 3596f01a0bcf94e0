/*
 * github.c - type: github.  The issues (optionally pull requests) of each
 * repository in `repos`, with their comments, from the GitHub REST API:
 *
 *   GET {base_url}/repos/{owner}/{repo}/issues?state=all&sort=updated
 *       &direction=asc&per_page=N[&since=MARK]      then each Link rel="next"
 *   GET {base_url}/repos/{owner}/{repo}/issues/{n}/comments?per_page=N
 *       for an issue whose "comments" count is not 0, also paginated
 *
 * Each issue becomes the document issue_doc.c builds, the one the
 * github_issues export reader builds from the same issue: same source_id
 * (owner/repo#N, the repository as GitHub spells it in repository_url),
 * text and metadata, so moving a project from exports to the API
 * re-embeds nothing.  A page is held in memory at a time, never a repository.
 *
 * Marks (the source state, ingest.h), per repository:
 *   "since owner/repo"   the newest updated_at seen: the next run asks
 *                        ?since= it.  GitHub's since is inclusive, so the
 *                        newest issue comes again (unchanged: its hash
 *                        skips it), and nothing updated in that second is
 *                        missed.
 *   "etag owner/repo"    "SINCE ETAG" of a listing that was one page: the
 *                        next run with the same since sends If-None-Match,
 *                        and GitHub's 304 (nothing changed) costs no quota.
 *                        With direction=asc a change lands on the last
 *                        page, so a listing of several pages keeps no ETag.
 * An issue updated while the listing is paged comes twice (it moves to
 * the end): the second time it is skipped with a note and the mark is
 * held back to its updated_at, so the next run fetches it again.
 *
 * With include_discussions, a repository's discussions follow its issues
 * (github_discussions.c, GraphQL), with their own mark.
 */
#include "ingest_int.h"

#include <stdlib.h>
#include <string.h>

#define GH_MAX_ISSUE_NUMBER 100000000L   /* beyond any repository: the seen bitmap's bound */

struct github_state {
    struct gh_http *http;
    const char *base;              /* base_url without a trailing '/' */
    char *base_owned;
    int repo_i;                    /* the repository being listed */
    char *url;                     /* its next page to fetch; NULL: listing done */
    char *page_url;                /* the page in `page`, for origins */
    int n_pages;
    json_t *page;                  /* the current page's array */
    size_t page_i;
    const char *since;             /* the stored mark of this repository (since_buf), or NULL */
    char since_buf[64];
    char newest[64];               /* the newest updated_at seen ("" none) */
    char held[64];                 /* the oldest updated_at seen twice ("" none) */
    char etag[300];                /* "SINCE ETAG" of the first page */
    unsigned char *seen;           /* bitmap of the issue numbers of this repository */
    size_t seen_len;
    struct gh_discussions *disc;   /* include_discussions, else NULL */
    int is_disc_done;              /* this repository's discussions are listed */
    int is_done;
};

static const char *repo_name(const struct ingest_reader *rd, const struct github_state *st)
{
    return rd->src->u.github.repos.v[st->repo_i];
}

int gh_seen_mark(unsigned char **bits, size_t *len, long number)
{
    size_t byte = (size_t)number / 8;
    if (byte >= *len) {
        size_t n = byte * 2 + 64;
        *bits = kb_xrealloc(*bits, n);
        memset(*bits + *len, 0, n - *len);
        *len = n;
    }
    unsigned char bit = (unsigned char)(1u << (number % 8));
    int was = ((*bits)[byte] & bit) != 0;
    (*bits)[byte] |= bit;
    return was;
}

/* 1 when number was seen before in this repository; marks it seen. */
static int seen_before(struct github_state *st, long number)
{
    return gh_seen_mark(&st->seen, &st->seen_len, number);
}

/* 1 when s can go into the URL as it is: an ISO 8601 time ("2026-11-25T02:30:00Z"). */
static int is_timestamp(const char *s)
{
    size_t n = strlen(s);
    return n >= 10 && n < 40 && strspn(s, "0123456789-:TZ.") == n;
}

/* Start listing repository st->repo_i: its URL with the stored since. */
static void repo_start(struct ingest_reader *rd, struct github_state *st)
{
    const struct ingest_github_opts *o = &rd->src->u.github;
    const char *repo = repo_name(rd, st);
    char key[300];
    snprintf(key, sizeof key, "since %s", repo);
    const char *stored = ingest_state_lookup(rd, key);
    /* a copy: putting the new mark frees the stored string */
    st->since = stored && is_timestamp(stored) ? st->since_buf : NULL;
    if (st->since)
        snprintf(st->since_buf, sizeof st->since_buf, "%s", stored);
    else if (stored) {
        char q[200];
        log_warn("source %s: the stored mark '%s' of %s is not an ISO 8601 time; fetching "
                 "everything", rd->src->name, ingest_quote(q, sizeof q, stored, strlen(stored)),
                 repo);
    }
    free(st->url);
    /* since is kbpipe's own ISO 8601 text (digits, '-', ':', 'T', 'Z'): no escaping */
    st->url = kb_xasprintf("%s/repos/%s/issues?state=all&sort=updated&direction=asc"
                           "&per_page=%d%s%s", st->base, repo, o->per_page,
                           st->since ? "&since=" : "", st->since ? st->since : "");
    st->n_pages = 0;
    st->newest[0] = st->held[0] = st->etag[0] = '\0';
    if (st->seen)
        memset(st->seen, 0, st->seen_len);
    st->is_disc_done = st->disc == NULL;
    if (st->disc)
        gh_discussions_start(rd, st->disc, repo);
}

/* The listing of this repository is over: put its new marks. */
static void repo_finish(struct ingest_reader *rd, struct github_state *st)
{
    const char *repo = repo_name(rd, st);
    char key[300];
    snprintf(key, sizeof key, "since %s", repo);
    const char *mark = st->newest[0] ? st->newest : st->since;
    if (st->held[0] && (mark == NULL || strcmp(st->held, mark) < 0))
        mark = st->held;
    if (mark)
        ingest_state_set(rd, key, mark);
    /* the ETag answers only the URL it came with: keep it when the next run
     * asks the same (its since is this one's) of a one-page listing */
    snprintf(key, sizeof key, "etag %s", repo);
    if (st->n_pages == 1 && st->etag[0] && st->since && mark && strcmp(mark, st->since) == 0)
        ingest_state_set(rd, key, st->etag);
    else if (st->n_pages > 0)
        ingest_state_set(rd, key, "");
}

/* KB_E_IO when GitHub's answer is not the JSON array a listing is. */
static enum kb_code parse_array(const struct gh_response *r, const char *repo, const char *url,
                                json_t **out, struct kb_err *err)
{
    json_error_t je;
    *out = json_loadb(r->body.data ? r->body.data : "", r->body.len, JSON_ALLOW_NUL, &je);
    if (json_is_array(*out))
        return KB_OK;
    json_decref(*out);
    *out = NULL;
    char where[300];
    snprintf(where, sizeof where, "%s", url);
    where[strcspn(where, "?")] = '\0';
    return KB_FAIL_AT(err, KB_E_IO, repo, "GET %s answered %s, not a JSON array; check "
                      "base_url points at the GitHub REST API (e.g. https://api.github.com)",
                      where, je.text[0] ? je.text : "another JSON value");
}

/* Refuse a next page on another host: the token goes only to base_url. */
static enum kb_code next_page(struct github_state *st, const char *repo, char **url,
                              struct kb_err *err)
{
    if (*url == NULL || gh_url_same_origin(st->base, *url))
        return KB_OK;
    char q[128];
    enum kb_code rc = KB_FAIL_AT(err, KB_E_IO, repo, "the Link header's next page '%s' is not "
                                 "on base_url %s; kbpipe does not send the token elsewhere: "
                                 "check base_url", ingest_quote(q, sizeof q, *url, strlen(*url)),
                                 st->base);
    free(*url);
    *url = NULL;
    return rc;
}

/* Fetch the next page of the listing into st->page (NULL after a 304). */
static enum kb_code fetch_page(struct ingest_reader *rd, struct github_state *st,
                               struct kb_err *err)
{
    const char *repo = repo_name(rd, st);
    char key[300];
    snprintf(key, sizeof key, "etag %s", repo);
    const char *stored = ingest_state_lookup(rd, key);
    const char *etag = NULL;
    size_t since_len = st->since ? strlen(st->since) : 0;
    /* the stored ETag answers only the same first URL: the same since */
    if (st->n_pages == 0 && stored && st->since && strncmp(stored, st->since, since_len) == 0 &&
        stored[since_len] == ' ')
        etag = stored + since_len + 1;
    struct gh_response r;
    gh_response_init(&r);
    enum kb_code rc = gh_http_get(st->http, st->url, etag, repo, &r, err);
    free(st->page_url);
    st->page_url = st->url;
    st->url = NULL;
    if (rc == KB_OK && r.status == 304) {
        log_info("%s: nothing changed since %s (304 Not Modified)", repo, st->since);
        st->n_pages = 0;   /* keep the stored ETag */
        gh_response_release(&r);
        return KB_OK;
    }
    if (rc == KB_OK)
        rc = parse_array(&r, repo, st->page_url, &st->page, err);
    if (rc == KB_OK) {
        if (st->n_pages++ == 0 && r.etag[0] && st->since)
            snprintf(st->etag, sizeof st->etag, "%s %s", st->since, r.etag);
        st->page_i = 0;
        st->url = r.next_url;
        r.next_url = NULL;
        rc = next_page(st, repo, &st->url, err);
    }
    gh_response_release(&r);
    return rc;
}

/* Every comment of issue `number`, in thread order, into is->comments. */
static enum kb_code fetch_comments(struct ingest_reader *rd, struct github_state *st,
                                   struct kb_arena *arena, const char *repo, long number,
                                   const struct kb_origin *at, struct ingest_issue *is,
                                   struct kb_err *err)
{
    char *url = kb_xasprintf("%s/repos/%s/issues/%ld/comments?per_page=%d", st->base,
                             repo_name(rd, st), number, rd->src->u.github.per_page);
    int cap = 0;
    enum kb_code rc = KB_OK;
    while (url && rc == KB_OK) {
        struct gh_response r;
        gh_response_init(&r);
        json_t *arr = NULL;
        rc = gh_http_get(st->http, url, NULL, repo, &r, err);
        if (rc == KB_OK)
            rc = parse_array(&r, repo, url, &arr, err);
        free(url);
        url = r.next_url;
        r.next_url = NULL;
        gh_response_release(&r);
        if (rc == KB_OK)
            rc = next_page(st, repo, &url, err);
        size_t i;
        json_t *c;
        json_array_foreach(arr, i, c) {
            if (rc != KB_OK || !json_is_object(c))
                continue;
            struct kb_buf path;
            kb_buf_init(&path);
            size_t nul_at = 0;
            if (ingest_json_find_nul(c, &path, &nul_at))
                rc = KB_FAIL(err, KB_E_INPUT, at, "issue #%ld: comment %d's %s holds a NUL "
                             "character (\\u0000) at byte %zu; edit the comment on GitHub",
                             number, is->n_comments + 1, path.data, nul_at);
            kb_buf_release(&path);
            if (rc != KB_OK)
                continue;
            if (is->n_comments == cap) {
                cap = cap ? cap * 2 : 16;
                struct ingest_comment *n = kb_arena_calloc(arena, sizeof *n * (size_t)cap);
                if (is->n_comments)
                    memcpy(n, is->comments, sizeof *n * (size_t)is->n_comments);
                is->comments = n;
            }
            ingest_comment_fields(arena, c, 1, &is->comments[is->n_comments++]);
        }
        json_decref(arr);
    }
    free(url);
    return rc;
}

/* Keep the newest updated_at (ISO 8601 UTC texts order as their times). */
static void note_updated(char *mark, size_t n, const char *t, int newest)
{
    if (t == NULL || strlen(t) >= n)
        return;
    if (mark[0] == '\0' || (newest ? strcmp(t, mark) > 0 : strcmp(t, mark) < 0))
        snprintf(mark, n, "%s", t);
}

/* One element of a listing page: a document in *out, or a skip (*out NULL). */
static enum kb_code make_issue(struct ingest_reader *rd, struct github_state *st,
                               struct kb_arena *arena, json_t *o, struct kb_document **out,
                               struct kb_err *err)
{
    const struct ingest_github_opts *opt = &rd->src->u.github;
    const char *repo = repo_name(rd, st);
    struct kb_origin at = { .path = st->page_url, .row = (long)st->page_i + 1 };
    json_t *num = json_object_get(o, "number");
    if (!json_is_object(o) || !json_is_integer(num) || json_integer_value(num) <= 0 ||
        json_integer_value(num) > GH_MAX_ISSUE_NUMBER)
        return KB_FAIL(err, KB_E_INPUT, &at, "not an issue (no 'number' from 1 to %ld); "
                       "check base_url points at the GitHub REST API", GH_MAX_ISSUE_NUMBER);
    long number = (long)json_integer_value(num);
    const char *updated = ingest_jstr(o, "updated_at");
    if (seen_before(st, number)) {
        note_updated(st->held, sizeof st->held, updated ? updated : "", 0);
        char where[300];
        kb_origin_format(&at, where, sizeof where);
        ingest_note(rd, where, "%s#%ld came twice (updated while listed); the next run "
                    "fetches it again", repo, number);
        return KB_OK;
    }
    note_updated(st->newest, sizeof st->newest, updated, 1);
    if (json_object_get(o, "pull_request") && !opt->include_pull_requests) {
        char where[300];
        kb_origin_format(&at, where, sizeof where);
        ingest_note(rd, where, "%s#%ld is a pull request, skipped (set include_pull_requests: "
                    "true to load them)", repo, number);
        return KB_OK;
    }
    struct kb_buf path;
    kb_buf_init(&path);
    size_t nul_at = 0;
    if (ingest_json_find_nul(o, &path, &nul_at)) {
        enum kb_code rc = KB_FAIL(err, KB_E_INPUT, &at, "%s#%ld: %s holds a NUL character "
                                  "(\\u0000) at byte %zu; edit the issue on GitHub", repo,
                                  number, path.data, nul_at);
        kb_buf_release(&path);
        return rc;
    }
    kb_buf_release(&path);
    const char *title = ingest_jstr(o, "title");
    if (title == NULL || title[0] == '\0')
        return KB_FAIL(err, KB_E_INPUT, &at, "%s#%ld has no 'title'; check base_url points at "
                       "the GitHub REST API", repo, number);
    struct ingest_issue *is = kb_arena_calloc(arena, sizeof *is);
    ingest_issue_fields(arena, o, 1, NULL, is);
    if (is->repo == NULL)
        is->repo = repo;
    json_t *nc = json_object_get(o, "comments");
    if (json_is_integer(nc) && json_integer_value(nc) > 0) {
        enum kb_code rc = fetch_comments(rd, st, arena, repo, number, &at, is, err);
        if (rc != KB_OK)
            return rc;
    }
    char *file_path = kb_arena_printf(arena, "%s/repos/%s/issues/%ld", st->base, repo, number);
    return ingest_issue_document(rd, arena, is, &at, file_path, out, err);
}

static enum kb_code github_next(struct ingest_reader *rd, struct kb_arena *arena,
                                struct kb_document **out, struct kb_err *err)
{
    struct github_state *st = rd->state;
    const struct ingest_github_opts *o = &rd->src->u.github;
    while (!st->is_done) {
        if (st->page && st->page_i < json_array_size(st->page)) {
            json_t *el = json_array_get(st->page, st->page_i);
            enum kb_code rc = make_issue(rd, st, arena, el, out, err);
            if (rc == KB_E_INPUT) {
                char *bytes = json_dumps(el, JSON_COMPACT | JSON_ENCODE_ANY);
                json_t *num = json_is_object(el) ? json_object_get(el, "number") : NULL;
                struct kb_origin at = { .path = st->page_url, .row = (long)st->page_i + 1 };
                ingest_bad_set(rd, &at, json_is_integer(num) ? (long)json_integer_value(num) : 0,
                               bytes, bytes ? strlen(bytes) : 0);
                free(bytes);
            }
            st->page_i++;
            if (rc != KB_OK && rc != KB_E_INPUT)
                st->is_done = 1;   /* fatal to the source: its marks are not to be kept */
            if (rc != KB_OK || *out != NULL)
                return rc;
            continue;
        }
        json_decref(st->page);
        st->page = NULL;
        if (st->url) {
            enum kb_code rc = fetch_page(rd, st, err);
            if (rc != KB_OK) {
                st->is_done = 1;
                return rc;
            }
            continue;
        }
        if (!st->is_disc_done) {
            enum kb_code rc = gh_discussions_next(rd, st->disc, arena, out, err);
            if (rc != KB_OK && rc != KB_E_INPUT)
                st->is_done = 1;   /* fatal to the source: its marks are not to be kept */
            if (rc != KB_OK || *out != NULL)
                return rc;
            st->is_disc_done = 1;
            continue;
        }
        repo_finish(rd, st);
        if (++st->repo_i >= o->repos.n) {
            st->is_done = 1;
            log_debug("source %s: %ld GitHub request(s)", rd->src->name,
                      gh_http_requests(st->http));
            break;
        }
        repo_start(rd, st);
    }
    return KB_OK;
}

static void github_close(struct ingest_reader *rd)
{
    struct github_state *st = rd->state;
    if (st == NULL)
        return;
    gh_discussions_free(st->disc);
    gh_http_free(st->http);
    json_decref(st->page);
    free(st->url);
    free(st->page_url);
    free(st->seen);
    free(st->base_owned);
    free(st);
}

/* The first fetch waits for the first ingest_next: the conductor gives the
 * stored marks between open and next. */
static enum kb_code github_first(struct ingest_reader *rd, struct kb_arena *arena,
                                 struct kb_document **out, struct kb_err *err)
{
    struct github_state *st = rd->state;
    rd->next = github_next;
    if (rd->src->u.github.repos.n == 0) {
        st->is_done = 1;
        return KB_OK;
    }
    repo_start(rd, st);
    return github_next(rd, arena, out, err);
}

enum kb_code ingest_github_open(struct ingest_reader *rd, struct kb_err *err)
{
    const struct ingest_github_opts *o = &rd->src->u.github;
    struct github_state *st = kb_xcalloc(1, sizeof *st);
    rd->state = st;
    rd->next = github_first;
    rd->close = github_close;
    const char *base = o->base_url ? o->base_url : INGEST_GITHUB_DEFAULT_URL;
    st->base_owned = kb_xstrdup(base);
    size_t n = strlen(st->base_owned);
    while (n > 0 && st->base_owned[n - 1] == '/')
        st->base_owned[--n] = '\0';
    st->base = st->base_owned;
    const char *token = NULL;
    if (o->token_env) {
        token = getenv(o->token_env);
        if (token == NULL || token[0] == '\0')
            return KB_FAIL_AT(err, KB_E_CONFIG, rd->src->name, "the variable %.60s (token_env) "
                              "is not set or empty; export it with the GitHub token",
                              o->token_env);
    }
    enum kb_code rc = gh_http_new(o, token, &st->http, err);
    if (rc == KB_OK && o->include_discussions) {
        char *gql = ingest_github_graphql_url(o);
        st->disc = gh_discussions_new(st->http, gql, o->per_page);
        free(gql);
    }
    return rc;
}

char *ingest_github_graphql_url(const struct ingest_github_opts *o)
{
    if (o->graphql_url)
        return kb_xstrdup(o->graphql_url);
    const char *base = o->base_url ? o->base_url : INGEST_GITHUB_DEFAULT_URL;
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    static const char v3[] = "/api/v3";
    if (n >= sizeof v3 - 1 && strncmp(base + n - (sizeof v3 - 1), v3, sizeof v3 - 1) == 0)
        return kb_xasprintf("%.*s/api/graphql", (int)(n - (sizeof v3 - 1)), base);
    return kb_xasprintf("%.*s/graphql", (int)n, base);
}
