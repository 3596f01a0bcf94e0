/*
 * github_http.c - requests to the GitHub REST API (GET) and its GraphQL
 * API (POST) with libcurl, for the type: github reader (github.c,
 * github_discussions.c): the token and the headers GitHub asks for,
 * conditional requests (If-None-Match), the Link header's next page, a
 * GraphQL answer's `errors`, and the waits, each bounded:
 *
 *   answer                                         what happens
 *   5xx, network error, timeout                    retried max_retries times after
 *                                                  retry_base_ms x 2^(try-1) (at most
 *                                                  60 s), or Retry-After when sent
 *   403/429 + X-RateLimit-Remaining: 0 (primary)   wait until X-RateLimit-Reset + 1 s
 *   403/429 + Retry-After (secondary)              wait Retry-After seconds
 *   429, or 403 saying "secondary rate limit"      wait 60 s (GitHub: "at least one
 *                                                  minute") and retry
 *   401, 403, 404, other 4xx                       KB_E_IO naming the repository
 *   200 + X-RateLimit-Remaining: 0                 the next request waits for the reset
 *   GraphQL 200 whose errors hold RATE_LIMITED     wait until X-RateLimit-Reset + 1 s (or
 *                                                  Retry-After, else 60 s) and retry
 *   GraphQL 200 with any other `errors`            KB_E_IO naming the repository, the
 *                                                  error's type and message
 *
 * A wait longer than max_wait seconds fails at once, saying when the limit
 * resets, so a cron job never hangs for an hour unasked; so does a server
 * that is still rate limiting after GH_MAX_WAITS waits for one request.  The token sits
 * only in the request headers; no message, URL or log line holds it.  A
 * next-page URL on another host than base_url is refused, so the token
 * never goes where the pipeline did not send it.
 */
#include "ingest_int.h"
#include "util/curl_lib.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define GH_MAX_BACKOFF_MS 60000L
#define GH_SECONDARY_WAIT_S 60L
#define GH_MAX_BODY (256L * 1024 * 1024)   /* one page: 100 issues are ~1 MB */
#define GH_MAX_WAITS 20                     /* rate-limit waits for one request */

struct gh_http {
    const struct kb_curl *cu;      /* libcurl's calls (util/curl_lib.h) */
    CURL *e;
    struct curl_slist *headers;    /* holds the token: curl frees it */
    const struct ingest_github_opts *o;
    time_t wait_until;             /* primary limit exhausted: no request before */
    long n_requests;
};

enum kb_code gh_http_new(const struct ingest_github_opts *o, const char *token,
                         struct gh_http **out, struct kb_err *err)
{
    *out = NULL;
    const struct kb_curl *cu;
    enum kb_code rc = kb_curl_open("the github source type (GitHub's API)", &cu, err);
    if (rc != KB_OK)
        return rc;
    struct gh_http *h = kb_xcalloc(1, sizeof *h);
    h->cu = cu;
    h->o = o;
    h->e = cu->easy_init();
    h->headers = cu->slist_append(NULL, "Accept: application/vnd.github+json");
    h->headers = cu->slist_append(h->headers, "X-GitHub-Api-Version: 2022-11-28");
    if (token && token[0]) {
        char *auth = kb_xasprintf("Authorization: Bearer %s", token);
        h->headers = cu->slist_append(h->headers, auth);
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    *out = h;
    return KB_OK;
}

void gh_http_free(struct gh_http *h)
{
    if (h == NULL)
        return;
    h->cu->easy_cleanup(h->e);
    h->cu->slist_free_all(h->headers);
    free(h);
}

long gh_http_requests(const struct gh_http *h)
{
    return h->n_requests;
}

void gh_response_init(struct gh_response *r)
{
    memset(r, 0, sizeof *r);
    kb_buf_init(&r->body);
}

void gh_response_release(struct gh_response *r)
{
    kb_buf_release(&r->body);
    free(r->next_url);
    gh_response_init(r);
}

/* Clear what one attempt's answer sets. */
static void response_reset(struct gh_response *r)
{
    r->status = 0;
    kb_buf_reset(&r->body);
    r->etag[0] = '\0';
    free(r->next_url);
    r->next_url = NULL;
    r->rl_remaining = r->rl_reset = r->retry_after = -1;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct gh_response *r = arg;
    if (r->body.len + size * n > (size_t)GH_MAX_BODY)
        return 0;   /* curl fails the transfer: CURLE_WRITE_ERROR */
    kb_buf_append(&r->body, p, size * n);
    return size * n;
}

/*
 * The URL of rel="next" in a Link header value:
 *   <https://api.github.com/repositories/1/issues?page=2>; rel="next", <...>; rel="last"
 * -> a new string, or NULL when there is none.  Unit test: test_ingest.c
 * (gh_link_next__forms).
 */
KB_TESTABLE char *gh_link_next(const char *v)
{
    for (const char *p = v; (p = strchr(p, '<')) != NULL;) {
        const char *end = strchr(p, '>');
        if (end == NULL)
            return NULL;
        const char *stop = strchr(end, ',');
        const char *rel = strstr(end, "rel=\"next\"");
        if (rel && (stop == NULL || rel < stop))
            return kb_xasprintf("%.*s", (int)(end - p - 1), p + 1);
        p = end;
    }
    return NULL;
}

static long header_long(const char *v)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    return errno || end == v || n < 0 ? -1 : n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct gh_response *r = arg;
    size_t len = size * n;
    char line[2048];
    size_t k = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, p, k);
    while (k && (line[k - 1] == '\r' || line[k - 1] == '\n'))
        k--;
    line[k] = '\0';
    char *colon = strchr(line, ':');
    if (colon == NULL)
        return len;
    *colon = '\0';
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (strcasecmp(line, "etag") == 0)
        snprintf(r->etag, sizeof r->etag, "%s", v);
    else if (strcasecmp(line, "link") == 0) {
        free(r->next_url);
        r->next_url = gh_link_next(v);
    } else if (strcasecmp(line, "x-ratelimit-remaining") == 0)
        r->rl_remaining = header_long(v);
    else if (strcasecmp(line, "x-ratelimit-reset") == 0)
        r->rl_reset = header_long(v);
    else if (strcasecmp(line, "retry-after") == 0)
        r->retry_after = header_long(v);
    return len;
}

/* "HH:MM:SS UTC" of an epoch time, for messages. */
static const char *clock_text(time_t t, char *buf, size_t n)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%H:%M:%S UTC", &tm);
    return buf;
}

/* Wait `s` seconds when max_wait allows it, else KB_E_IO saying why and until when. */
static enum kb_code wait_for(struct gh_http *h, long s, const char *why, const char *repo,
                             struct kb_err *err)
{
    if (s > h->o->max_wait_s) {
        char at[32];
        return KB_FAIL_AT(err, KB_E_IO, repo, "GitHub %s: the next request is allowed at %s, "
                          "in %ld s, longer than max_wait (%ld s); run again later, raise "
                          "max_wait, or set token_env for a larger quota",
                          why, clock_text(time(NULL) + s, at, sizeof at), s, h->o->max_wait_s);
    }
    log_info("%s: GitHub %s; waiting %ld s", repo, why, s);
    if (s > 0 && kb_sleep_ms(s * 1000))
        return KB_FAIL_AT(err, KB_E_INTERRUPTED, repo, "interrupted while waiting for GitHub's "
                          "rate limit");
    return KB_OK;
}

/* The backoff before retry `attempt` (1-based): base x 2^(attempt-1), at most 60 s. */
static long backoff_ms(const struct ingest_github_opts *o, int attempt)
{
    long ms = o->retry_base_ms;
    for (int i = 1; i < attempt && ms < GH_MAX_BACKOFF_MS; i++)
        ms *= 2;
    return ms < GH_MAX_BACKOFF_MS ? ms : GH_MAX_BACKOFF_MS;
}

/* The "message" of a GitHub error body, quoted for a message; "" when none. */
static const char *api_message(const struct gh_response *r, char *buf, size_t n)
{
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    const char *m = json_is_object(j) ? ingest_jstr(j, "message") : NULL;
    if (m)
        snprintf(buf, n, " ('%.120s')", m);
    else
        buf[0] = '\0';
    json_decref(j);
    return buf;
}

/* KB_E_IO for a 4xx answer that waiting will not fix, naming the repository. */
static enum kb_code client_error(const struct gh_http *h, const struct gh_response *r,
                                 int is_graphql, const char *repo, struct kb_err *err)
{
    char m[160];
    api_message(r, m, sizeof m);
    const char *tv = h->o->token_env;
    switch (r->status) {
    case 401:
        return KB_FAIL_AT(err, KB_E_IO, repo, "GitHub answered 401 Unauthorized%s: the token "
                          "in %s is wrong or expired; set a valid token", m,
                          tv ? tv : "(none: token_env is not set)");
    case 403:
        if (is_graphql)
            return KB_FAIL_AT(err, KB_E_IO, repo, "GitHub answered 403 Forbidden%s: the token%s%s "
                              "may not read this repository's discussions; grant it read access "
                              "to discussions (classic tokens: public_repo, or repo for a private "
                              "repository)", m, tv ? " in " : "", tv ? tv : "");
        return KB_FAIL_AT(err, KB_E_IO, repo, "GitHub answered 403 Forbidden%s: the token%s%s "
                          "may not read this repository's issues; grant it read access to "
                          "issues (and pull requests)", m, tv ? " in " : "", tv ? tv : "");
    case 404:
        if (is_graphql)
            return KB_FAIL_AT(err, KB_E_IO, repo, "GitHub answered 404 Not Found%s for the GraphQL "
                              "API; check graphql_url (e.g. https://api.github.com/graphql)", m);
        return KB_FAIL_AT(err, KB_E_IO, repo, "GitHub answered 404 Not Found%s: the repository "
                          "does not exist or the token cannot see it; check repos: and the "
                          "token's access", m);
    default:
        return KB_FAIL_AT(err, KB_E_IO, repo, "GitHub answered %ld%s; check the source's "
                          "settings", r->status, m);
    }
}

/* 1 when the answer is a GraphQL one whose `errors` hold a RATE_LIMITED error. */
static int graphql_rate_limited(const struct gh_response *r)
{
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    json_t *errors = json_is_object(j) ? json_object_get(j, "errors") : NULL, *e;
    size_t i;
    int is = 0;
    json_array_foreach(errors, i, e) {
        const char *type = json_is_object(e) ? ingest_jstr(e, "type") : NULL;
        if (type && strcmp(type, "RATE_LIMITED") == 0)
            is = 1;
    }
    json_decref(j);
    return is;
}

/* 1 when a 403/429 (or a GraphQL RATE_LIMITED) is a rate limit (then *wait_s is how long to wait). */
static int rate_limited(const struct gh_response *r, int is_graphql, long *wait_s,
                        const char **why)
{
    int is_gql_limit = is_graphql && (r->status == 200 || r->status == 403) &&
                       graphql_rate_limited(r);
    if (r->status != 403 && r->status != 429 && !is_gql_limit)
        return 0;
    if (r->rl_remaining == 0 && r->rl_reset >= 0) {
        long s = r->rl_reset - (long)time(NULL) + 1;
        *wait_s = s > 0 ? s : 1;
        *why = is_gql_limit ? "GraphQL rate limit (RATE_LIMITED)" : "primary rate limit exhausted";
        return 1;
    }
    if (r->retry_after >= 0) {
        *wait_s = r->retry_after;
        *why = "secondary rate limit (Retry-After)";
        return 1;
    }
    char m[160];
    if (is_gql_limit || r->status == 429 || strstr(api_message(r, m, sizeof m), "rate limit")) {
        *wait_s = GH_SECONDARY_WAIT_S;
        *why = is_gql_limit ? "GraphQL rate limit (RATE_LIMITED)" : "secondary rate limit";
        return 1;
    }
    return 0;
}

/* One attempt (a POST of `post` when it is not NULL): *cc is curl's result; the answer in *r. */
static void perform(struct gh_http *h, const char *url, const char *etag, const char *post,
                    struct gh_response *r, CURLcode *cc)
{
    const struct kb_curl *cu = h->cu;
    struct curl_slist *hs = h->headers, *extra = NULL;
    if ((etag && etag[0]) || post) {
        char *line = post ? kb_xstrdup("Content-Type: application/json")
                          : kb_xasprintf("If-None-Match: %s", etag);
        extra = cu->slist_append(NULL, line);
        free(line);
        extra->next = h->headers;   /* borrowed: unlinked below */
        hs = extra;
    }
    CURL *e = h->e;
    cu->easy_reset(e);
    cu->easy_setopt(e, CURLOPT_URL, url);
    cu->easy_setopt(e, CURLOPT_HTTPHEADER, hs);
    cu->easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    cu->easy_setopt(e, CURLOPT_WRITEDATA, r);
    cu->easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    cu->easy_setopt(e, CURLOPT_HEADERDATA, r);
    cu->easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)h->o->timeout_ms);
    cu->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    cu->easy_setopt(e, CURLOPT_USERAGENT, "kbpipe/" KB_VERSION);
    cu->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (post) {
        cu->easy_setopt(e, CURLOPT_POSTFIELDS, post);
        cu->easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(post));
    }
    response_reset(r);
    *cc = cu->easy_perform(e);
    h->n_requests++;
    cu->easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    if (extra) {
        extra->next = NULL;
        cu->slist_free_all(extra);
    }
}

/* The URL without its query, for messages ("GET https://.../issues"). */
static const char *url_path(const char *url, char *buf, size_t n)
{
    size_t k = strcspn(url, "?");
    snprintf(buf, n, "%.*s", (int)(k < 200 ? k : 200), url);
    return buf;
}

/*
 * One request with its waits and retries: GET url (If-None-Match: etag), or
 * POST `post` (JSON) to it; see gh_http_get.
 */
static enum kb_code request(struct gh_http *h, const char *url, const char *etag,
                            const char *post, const char *repo, struct gh_response *r,
                            struct kb_err *err)
{
    const char *method = post ? "POST" : "GET";
    const char *url_key = post ? "graphql_url" : "base_url";
    char where[256];
    int n_waits = 0;
    for (int attempt = 1;; attempt++) {
        time_t now = time(NULL);
        if (h->wait_until > now) {
            enum kb_code rc = wait_for(h, (long)(h->wait_until - now), "primary rate limit "
                                       "exhausted", repo, err);
            if (rc != KB_OK)
                return rc;
        }
        h->wait_until = 0;
        CURLcode cc;
        perform(h, url, etag, post, r, &cc);
        long wait_s;
        const char *why;
        if (cc == CURLE_OK && rate_limited(r, post != NULL, &wait_s, &why)) {
            /* waits for a rate limit are not retries: GitHub said when */
            attempt--;
            if (++n_waits > GH_MAX_WAITS)
                return KB_FAIL_AT(err, KB_E_IO, repo, "GitHub still answers %ld (%s) after %d "
                                  "waits for %s %s; run again later", r->status, why,
                                  GH_MAX_WAITS, method, url_path(url, where, sizeof where));
            enum kb_code rc = wait_for(h, wait_s, why, repo, err);
            if (rc != KB_OK)
                return rc;
            continue;
        }
        if (cc == CURLE_OK && r->status < 500) {
            if (r->rl_remaining == 0 && r->rl_reset > 0)
                h->wait_until = (time_t)r->rl_reset + 1;
            if (r->status == 200 || r->status == 304)
                return KB_OK;
            return client_error(h, r, post != NULL, repo, err);
        }
        char reason[200];
        if (cc != CURLE_OK)
            snprintf(reason, sizeof reason, "%s", h->cu->easy_strerror(cc));
        else
            snprintf(reason, sizeof reason, "HTTP %ld", r->status);
        if (attempt > h->o->max_retries)
            return KB_FAIL_AT(err, KB_E_IO, repo, "%s %s failed after %d attempt(s): %s; "
                              "check %s and the network, or run again later", method,
                              url_path(url, where, sizeof where), attempt, reason, url_key);
        long ms = r->retry_after >= 0 ? r->retry_after * 1000 : backoff_ms(h->o, attempt);
        if (ms > h->o->max_wait_s * 1000)
            ms = h->o->max_wait_s * 1000;
        log_info("%s: %s %s: %s; retry %d of %d in %ld ms", repo, method,
                 url_path(url, where, sizeof where), reason, attempt, h->o->max_retries, ms);
        if (kb_sleep_ms(ms))
            return KB_FAIL_AT(err, KB_E_INTERRUPTED, repo, "interrupted while waiting to retry "
                              "%s %s", method, url_path(url, where, sizeof where));
    }
}

enum kb_code gh_http_get(struct gh_http *h, const char *url, const char *etag, const char *repo,
                         struct gh_response *r, struct kb_err *err)
{
    return request(h, url, etag, NULL, repo, r, err);
}

/* What to do about a GraphQL error of `type`, for the message's end. */
static const char *graphql_advice(const char *type)
{
    if (strcmp(type, "NOT_FOUND") == 0)
        return "the repository does not exist or the token cannot see it; check repos: and "
               "the token's access";
    if (strcmp(type, "FORBIDDEN") == 0 || strcmp(type, "INSUFFICIENT_SCOPES") == 0)
        return "grant the token read access to discussions (classic tokens: public_repo, or "
               "repo for a private repository)";
    if (strcmp(type, "MAX_NODE_LIMIT_EXCEEDED") == 0)
        return "lower per_page";
    return "check graphql_url and the token, or run again later";
}

enum kb_code gh_http_graphql(struct gh_http *h, const char *url, json_t *req, const char *repo,
                             json_t **data, struct kb_err *err)
{
    *data = NULL;
    char *post = json_dumps(req, JSON_COMPACT);
    struct gh_response r;
    gh_response_init(&r);
    enum kb_code rc = request(h, url, NULL, post, repo, &r, err);
    free(post);
    json_error_t je;
    json_t *j = rc == KB_OK ? json_loadb(r.body.data ? r.body.data : "", r.body.len,
                                         JSON_ALLOW_NUL, &je) : NULL;
    char where[256];
    if (rc == KB_OK && !json_is_object(j))
        rc = KB_FAIL_AT(err, KB_E_IO, repo, "POST %s answered %s, not a GraphQL answer; check "
                        "graphql_url points at GitHub's GraphQL API (e.g. "
                        "https://api.github.com/graphql)", url_path(url, where, sizeof where),
                        j ? "another JSON value" : je.text);
    json_t *errors = rc == KB_OK ? json_object_get(j, "errors") : NULL;
    if (json_array_size(errors) > 0) {
        json_t *e0 = json_array_get(errors, 0);
        const char *type = json_is_object(e0) ? ingest_jstr(e0, "type") : NULL;
        const char *msg = json_is_object(e0) ? ingest_jstr(e0, "message") : NULL;
        char more[48] = "";
        if (json_array_size(errors) > 1)
            snprintf(more, sizeof more, " (and %zu more)", json_array_size(errors) - 1);
        rc = KB_FAIL_AT(err, KB_E_IO, repo, "GitHub GraphQL answered %s ('%.160s')%s; %s",
                        type ? type : "an error", msg ? msg : "no message", more,
                        graphql_advice(type ? type : ""));
    }
    if (rc == KB_OK && !json_is_object(json_object_get(j, "data")))
        rc = KB_FAIL_AT(err, KB_E_IO, repo, "POST %s answered no 'data'; check graphql_url "
                        "points at GitHub's GraphQL API (e.g. https://api.github.com/graphql)",
                        url_path(url, where, sizeof where));
    if (rc == KB_OK)
        *data = json_incref(json_object_get(j, "data"));
    json_decref(j);
    gh_response_release(&r);
    return rc;
}

int gh_url_same_origin(const char *base, const char *url)
{
    /* scheme://host[:port] of base must prefix url, followed by '/' or nothing */
    const char *p = strstr(base, "://");
    if (p == NULL)
        return 0;
    size_t n = (size_t)(p + 3 - base);
    n += strcspn(base + n, "/");
    return strncmp(base, url, n) == 0 && (url[n] == '/' || url[n] == '\0');
}
