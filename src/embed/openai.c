/*
 * openai.c - the client for OpenAI-compatible POST {base_url}/embeddings
 * endpoints, over libcurl's multi interface.
 *
 * The PENDING rows of a batch are cut into requests of at most
 * max_items_per_request inputs and max_tokens_per_request tokens (the
 * rows' exact counts; bytes / 3 + 1 when a count is unknown; a single row
 * over the limit goes alone).  Up to max_in_flight requests run at once.
 * A request that fails in a way that may pass - HTTP 429, 5xx, a timeout,
 * a refused or dropped connection - is tried again, up to max_retries
 * times, after the server's Retry-After (or retry-after-ms) when it sent
 * one, else after an exponential backoff with jitter:
 *     delay = b/2 + uniform(0, b/2),   b = min(retry_max_ms, retry_base_ms * 2^(attempt-1))
 * while the other requests keep going.  Any other 4xx stops the batch with
 * the server's message.  The key is read once from the environment
 * variable the pipeline names; it goes into the Authorization header and
 * nowhere else: never into a message or a log line (masked if a server
 * echoes it back).  A base_url holding user:PASSWORD@ is shown masked
 * (kb_redact, through every KB_FAIL and log line).
 */
#include "embed/embed_int.h"
#include "util/curl_lib.h"

#include <errno.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct openai_client {
    const struct kb_curl *cu;    /* libcurl's calls (util/curl_lib.h) */
    const struct embed_openai_opts *o;
    const char *model;
    char *url;
    char *key;                   /* NULL: no Authorization header */
    struct curl_slist *headers;
    CURLM *multi;
    long n_requests;
    /* requests on the wire now: written by the embedding thread, read by
     * the progress line's thread (openai_client_in_flight) */
    _Atomic int n_in_flight;
};

struct request {
    struct openai_client *c;
    int *rows;                   /* batch rows, in input order */
    int n;
    char *body;
    int attempts;                /* sent so far */
    double not_before;           /* kb_now() time it may be sent (again) */
    long retry_after_ms;         /* from the last answer's headers; -1 none */
    struct kb_buf answer;
    CURL *easy;
    int is_done;
    char what[200];              /* "request of 64 chunks from docs/a.md#0" */
};

/* ---- setup --------------------------------------------------------------- */

static enum kb_code check_opts(const struct embed_openai_opts *o, struct kb_err *err)
{
    if (!o->base_url || !(kb_starts_with(o->base_url, "http://") ||
                          kb_starts_with(o->base_url, "https://"))) {
        /* masked before it is cut to 80 bytes: a cut could hide the '@' */
        char *shown = kb_redact(o->base_url ? o->base_url : "");
        enum kb_code rc = KB_FAIL_AT(err, KB_E_CONFIG, "embedding.base_url",
                                     "base_url '%.80s' is not an http(s) URL; set it to the "
                                     "API root, e.g. https://api.openai.com/v1", shown);
        free(shown);
        return rc;
    }
    if (o->dimensions != 0 && o->dimensions != KB_EMBED_DIM)
        return KB_FAIL_AT(err, KB_E_CONFIG, "embedding.dimensions",
                          "dimensions is %d; the schema stores %d-dimension vectors",
                          o->dimensions, KB_EMBED_DIM);
    if (o->max_items_per_request < 1 || o->max_items_per_request > 2048)
        return KB_FAIL_AT(err, KB_E_CONFIG, "embedding.batch_size",
                          "%d texts per request; use 1 to 2048", o->max_items_per_request);
    if (o->max_tokens_per_request < 1 || o->max_in_flight < 1 || o->max_in_flight > 64 ||
        o->timeout_ms < 1 || o->max_retries < 0 || o->retry_base_ms < 0 || o->retry_max_ms < 0)
        return KB_FAIL_AT(err, KB_E_CONFIG, "embedding",
                          "max_tokens_per_request and timeout_ms must be positive, "
                          "max_in_flight 1 to 64, retries and delays not negative");
    return KB_OK;
}

enum kb_code openai_client_new(const struct embed_openai_opts *o, const char *model,
                               struct openai_client **out, struct kb_err *err)
{
    *out = NULL;
    enum kb_code rc = check_opts(o, err);
    if (rc != KB_OK)
        return rc;
    const char *key = NULL;
    if (o->api_key_env && o->api_key_env[0]) {
        key = getenv(o->api_key_env);
        if (!key || !key[0])
            return KB_FAIL_AT(err, KB_E_CONFIG, "embedding.api_key_env",
                              "the environment variable %.64s is not set; export it with the "
                              "API key (kbpipe never reads a key from the pipeline file)",
                              o->api_key_env);
    }
    const struct kb_curl *cu;
    rc = kb_curl_open("the openai embedding provider", &cu, err);
    if (rc != KB_OK)
        return rc;
    struct openai_client *c = kb_xcalloc(1, sizeof *c);
    c->cu = cu;
    c->o = o;
    c->model = model;
    size_t n = strlen(o->base_url);
    while (n > 0 && o->base_url[n - 1] == '/')
        n--;
    c->url = n >= 11 && memcmp(o->base_url + n - 11, "/embeddings", 11) == 0
                 ? kb_xstrndup(o->base_url, n)
                 : kb_xasprintf("%.*s/embeddings", (int)n, o->base_url);
    c->headers = cu->slist_append(NULL, "Content-Type: application/json");
    c->headers = cu->slist_append(c->headers, "Expect:");
    if (key) {
        c->key = kb_xstrdup(key);
        char *h = kb_xasprintf("Authorization: Bearer %s", key);
        c->headers = cu->slist_append(c->headers, h);
        sodium_memzero(h, strlen(h));
        free(h);
    }
    c->multi = cu->multi_init();
    *out = c;
    return KB_OK;
}

void openai_client_free(struct openai_client *c)
{
    if (!c)
        return;
    c->cu->multi_cleanup(c->multi);
    c->cu->slist_free_all(c->headers);   /* holds the key: curl frees it */
    if (c->key) {
        sodium_memzero(c->key, strlen(c->key));
        free(c->key);
    }
    free(c->url);
    free(c);
}

long openai_client_requests(const struct openai_client *c)
{
    return c->n_requests;
}

/* ---- one request --------------------------------------------------------- */

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
    kb_buf_append(&((struct request *)user)->answer, p, size * n);
    return size * n;
}

/*
 * The wait one response header line asks for, in ms: "retry-after-ms: 150"
 * -> 150 (*is_ms = 1; it wins over Retry-After), "Retry-After: 2" -> 2000,
 * "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT" -> the ms from `now` until
 * then (0 when it is past).  -1 for any other line or value.  Unit-tested
 * in test_embed_openai.c (retry_after_header_ms__forms).
 */
KB_TESTABLE long retry_after_header_ms(const char *line, time_t now, int *is_ms)
{
    *is_ms = 0;
    size_t name_len;
    if (strncasecmp(line, "retry-after-ms:", 15) == 0) {
        *is_ms = 1;
        name_len = 15;
    } else if (strncasecmp(line, "retry-after:", 12) == 0) {
        name_len = 12;
    } else {
        return -1;
    }
    char v[128];
    snprintf(v, sizeof v, "%s", line + name_len);
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        v[--n] = '\0';
    const char *p = v + strspn(v, " \t");
    if (*p >= '0' && *p <= '9' && p[strspn(p, "0123456789")] == '\0') {
        errno = 0;
        long x = strtol(p, NULL, 10);
        if (errno || x > 86400L * 1000)   /* more than a day: clamp, never overflow */
            x = 86400L * 1000;
        return *is_ms ? x : (x > 86400 ? 86400L * 1000 : x * 1000);
    }
    if (*is_ms)
        return -1;
    /* an HTTP date, read by libcurl: loaded already when an answer came */
    const struct kb_curl *cu;
    struct kb_err no_curl;
    if (kb_curl_open("reading a Retry-After date", &cu, &no_curl) != KB_OK)
        return -1;
    time_t t = cu->getdate(p, &now);
    if (t < 0)
        return -1;
    return t > now ? (t - now > 86400 ? 86400L * 1000 : (long)(t - now) * 1000) : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *user)
{
    struct request *rq = user;
    size_t len = size * n;
    char line[128];
    if (len >= sizeof line)
        return len;
    memcpy(line, p, len);
    line[len] = '\0';
    int is_ms;
    long ms = retry_after_header_ms(line, time(NULL), &is_ms);
    if (ms >= 0 && (is_ms || rq->retry_after_ms < 0))
        rq->retry_after_ms = ms;
    return len;
}

static void start(struct request *rq)
{
    struct openai_client *c = rq->c;
    const struct kb_curl *cu = c->cu;
    const struct embed_openai_opts *o = c->o;
    CURL *e = cu->easy_init();
    kb_buf_reset(&rq->answer);
    rq->retry_after_ms = -1;
    cu->easy_setopt(e, CURLOPT_URL, c->url);
    cu->easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    cu->easy_setopt(e, CURLOPT_POSTFIELDS, rq->body);
    cu->easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(rq->body));
    cu->easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    cu->easy_setopt(e, CURLOPT_WRITEDATA, rq);
    cu->easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    cu->easy_setopt(e, CURLOPT_HEADERDATA, rq);
    cu->easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    cu->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(o->timeout_ms < 10000 ? o->timeout_ms
                                                                                 : 10000));
    cu->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    cu->easy_setopt(e, CURLOPT_USERAGENT, "kbpipe/" KB_VERSION);
    cu->easy_setopt(e, CURLOPT_PRIVATE, rq);
    rq->easy = e;
    rq->attempts++;
    c->n_requests++;
    cu->multi_add_handle(c->multi, e);
}

static void stop(struct request *rq)
{
    if (!rq->easy)
        return;
    const struct kb_curl *cu = rq->c->cu;
    cu->multi_remove_handle(rq->c->multi, rq->easy);
    cu->easy_cleanup(rq->easy);
    rq->easy = NULL;
}

/* The next wait before retrying, in ms (see the top of the file). */
KB_TESTABLE long retry_delay_ms(const struct embed_openai_opts *o, int attempts,
                                long retry_after_ms)
{
    if (retry_after_ms >= 0) {
        /* a little jitter on top, so requests told the same time spread out */
        long extra = retry_after_ms / 10 < 1000 ? retry_after_ms / 10 : 1000;
        return retry_after_ms + (extra > 0 ? (long)randombytes_uniform((uint32_t)extra + 1) : 0);
    }
    double b = o->retry_base_ms;
    for (int i = 1; i < attempts && b < o->retry_max_ms; i++)
        b *= 2;
    if (b > o->retry_max_ms)
        b = o->retry_max_ms;
    long half = (long)(b / 2);
    return half + (long)randombytes_uniform((uint32_t)half + 1);
}

static int is_transient(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

/* Put a 200 answer's vectors into the batch; KB_E_EMBED when it is malformed. */
static enum kb_code accept_answer(struct request *rq, struct embed_batch *b, int *n_rejected,
                                  struct kb_err *first_reject, struct kb_err *err)
{
    enum kb_code rc = openai_response_parse(rq->answer.data, rq->answer.len, b, rq->rows, rq->n,
                                            rq->what, err);
    if (rc != KB_OK)
        return rc;
    char why[96];
    for (int k = 0; k < rq->n; k++) {
        int i = rq->rows[k];
        if (embed_normalize_one(embed_batch_row(b, i), KB_EMBED_DIM, why, sizeof why) != 0) {
            embed_row_reject(b, i, first_reject, n_rejected,
                             "the embedding server returned a vector that %s; retry later or "
                             "report it to the provider", why);
            continue;
        }
        b->rows[i].state = EMBED_ROW_COMPUTED;
        b->counts.computed++;
    }
    return KB_OK;
}

/*
 * A transfer ended.  Returns KB_OK when done or scheduled again,
 * KB_E_EMBED when the batch must stop.
 */
static enum kb_code finish(struct request *rq, CURLcode cc, struct embed_batch *b,
                           int *n_rejected, struct kb_err *first_reject, struct kb_err *err)
{
    const struct embed_openai_opts *o = rq->c->o;
    const struct kb_curl *cu = rq->c->cu;
    long status = 0;
    cu->easy_getinfo(rq->easy, CURLINFO_RESPONSE_CODE, &status);
    char reason[300];
    int is_retryable;
    if (cc == CURLE_OK && status >= 200 && status < 300) {
        stop(rq);
        rq->is_done = 1;
        return accept_answer(rq, b, n_rejected, first_reject, err);
    }
    if (cc != CURLE_OK) {
        is_retryable = is_transient(cc);
        snprintf(reason, sizeof reason, "%s%s", cu->easy_strerror(cc),
                 cc == CURLE_OPERATION_TIMEDOUT ? " (raise embedding.timeout_ms if the server "
                                                  "is just slow)" : "");
    } else {
        char msg[240];
        openai_error_message(rq->answer.data ? rq->answer.data : "", rq->answer.len,
                             rq->c->key, msg, sizeof msg);
        is_retryable = status == 429 || status >= 500;
        snprintf(reason, sizeof reason, "HTTP %ld: %s", status, msg);
    }
    stop(rq);
    if (!is_retryable)
        return KB_FAIL_AT(err, KB_E_EMBED, rq->c->url,
                          "%s: %s; %s", rq->what, reason,
                          status == 401 || status == 403
                              ? "check the key in the variable embedding.api_key_env names"
                          : status == 404 ? "check embedding.base_url and embedding.model"
                                          : "fix the request settings (model, base_url, "
                                            "batch_size) and run again");
    if (rq->attempts > o->max_retries)
        return KB_FAIL_AT(err, KB_E_EMBED, rq->c->url,
                          "%s: gave up after %d attempts; last: %s; run again later (vectors "
                          "already fetched are kept)", rq->what, rq->attempts, reason);
    long delay = retry_delay_ms(o, rq->attempts, rq->retry_after_ms);
    rq->not_before = kb_now() + delay / 1000.0;
    log_info("%s: %s; retry %d of %d in %.1f s", rq->what, reason, rq->attempts, o->max_retries,
             delay / 1000.0);
    return KB_OK;
}

/* ---- a batch ------------------------------------------------------------- */

static int tokens_of(const struct embed_row *r)
{
    if (r->token_count > 0)
        return r->token_count;
    return (int)(r->len / 3 + 1);   /* no count given: a safe over-estimate for English */
}

/* Cut the pending rows into requests; returns how many. */
static int plan(struct openai_client *c, struct embed_batch *b, struct request **out,
                int *n_rejected, struct kb_err *first_reject)
{
    const struct embed_openai_opts *o = c->o;
    struct request *rqs = NULL;
    int n_rqs = 0, cap = 0;
    struct request *cur = NULL;
    long cur_tokens = 0;
    for (int i = 0; i < b->n; i++) {
        struct embed_row *r = &b->rows[i];
        if (r->state != EMBED_ROW_PENDING)
            continue;
        if (r->len == 0 || kb_utf8_valid_prefix(r->text, r->len) != r->len) {
            embed_row_reject(b, i, first_reject, n_rejected,
                             r->len == 0 ? "the text is empty; an embedding API refuses it"
                                         : "the text is not valid UTF-8; fix the source");
            continue;
        }
        int t = tokens_of(r);
        if (!cur || cur->n >= o->max_items_per_request ||
            cur_tokens + t > o->max_tokens_per_request) {
            if (n_rqs == cap) {
                cap = cap ? 2 * cap : 8;
                rqs = kb_xrealloc(rqs, (size_t)cap * sizeof *rqs);
            }
            cur = &rqs[n_rqs++];
            memset(cur, 0, sizeof *cur);
            cur->c = c;
            cur->rows = kb_xmalloc((size_t)o->max_items_per_request * sizeof(int));
            kb_buf_init(&cur->answer);
            cur_tokens = 0;
        }
        cur->rows[cur->n++] = i;
        cur_tokens += t;
    }
    for (int k = 0; k < n_rqs; k++) {
        struct request *rq = &rqs[k];
        rq->body = openai_body_build(c->model, o->dimensions, b, rq->rows, rq->n);
        const char *first = b->rows[rq->rows[0]].origin;
        snprintf(rq->what, sizeof rq->what, "request of %d chunk%s from %.120s", rq->n,
                 rq->n == 1 ? "" : "s", first ? first : "?");
    }
    *out = rqs;
    return n_rqs;
}

enum kb_code openai_embed_batch(struct openai_client *c, struct embed_batch *b,
                                struct kb_err *err)
{
    const struct kb_curl *cu = c->cu;
    int n_rejected = 0;
    struct kb_err first_reject = { 0 };
    struct request *rqs;
    int n_rqs = plan(c, b, &rqs, &n_rejected, &first_reject);
    int n_left = n_rqs, n_active = 0, next = 0;
    enum kb_code rc = KB_OK;
    while (rc == KB_OK && n_left > 0) {
        double now = kb_now();
        /* start what may start: new requests in order, and retries whose time came */
        for (int k = 0; k < n_rqs && n_active < c->o->max_in_flight; k++) {
            struct request *rq = &rqs[k];
            if (rq->is_done || rq->easy || (rq->attempts == 0 && k > next) ||
                rq->not_before > now)
                continue;
            start(rq);
            atomic_store(&c->n_in_flight, ++n_active);
            if (k == next)
                next++;
        }
        int running;
        cu->multi_perform(c->multi, &running);
        CURLMsg *m;
        int n_msgs;
        while (rc == KB_OK && (m = cu->multi_info_read(c->multi, &n_msgs))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            struct request *rq;
            cu->easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&rq);
            CURLcode cc = m->data.result;
            atomic_store(&c->n_in_flight, --n_active);
            rc = finish(rq, cc, b, &n_rejected, &first_reject, err);
            if (rq->is_done)
                n_left--;
        }
        if (rc != KB_OK || n_left == 0)
            break;
        /* sleep until a transfer moves or the next retry is due (at most 1 s) */
        double wake = kb_now() + 1.0;
        for (int k = 0; k < n_rqs; k++)
            if (!rqs[k].is_done && !rqs[k].easy && rqs[k].attempts > 0 &&
                rqs[k].not_before < wake)
                wake = rqs[k].not_before;
        if (n_active < c->o->max_in_flight && next < n_rqs)
            wake = 0;   /* a new request can start now */
        long wait_ms = (long)((wake - kb_now()) * 1000);
        if (wait_ms < 0)
            wait_ms = 0;
        if (n_active > 0 && wait_ms > 1000)
            wait_ms = 1000;
        cu->multi_poll(c->multi, NULL, 0, (int)wait_ms, NULL);
    }
    atomic_store(&c->n_in_flight, 0);   /* a failure stops what is still running */
    for (int k = 0; k < n_rqs; k++) {
        stop(&rqs[k]);
        free(rqs[k].rows);
        free(rqs[k].body);
        kb_buf_release(&rqs[k].answer);
    }
    free(rqs);
    if (rc != KB_OK)
        return rc;
    if (n_rejected > 0) {
        *err = first_reject;
        return KB_PARTIAL;
    }
    return KB_OK;
}

/* See embed_int.h. */
int openai_client_in_flight(const struct openai_client *c)
{
    return atomic_load(&c->n_in_flight);
}
