/*
 * test_embed_openai.c - the OpenAI-compatible client (src/embed/openai*.c)
 * against a stub server on 127.0.0.1 that the test starts itself: a thread
 * listening on port 0, one thread per connection, answering POST
 * /v1/embeddings the way each case needs.  A good answer's vectors are the
 * kbpipe-hash-v1 vectors of the inputs times 3, so every row can be checked
 * against the text it came from.
 *
 * Group openai.c: batching by items and by tokens (the server never sees
 * more than max_tokens_per_request tokens in a request of several texts),
 * at most max_in_flight requests at once, 429 with Retry-After (in
 * seconds, as an HTTP date, retry-after-ms) and 503 with Retry-After, the
 * other requests going on while one waits, 500 then success, giving up,
 * 400 with the server's message, the key sent but never shown, timeouts,
 * wrong dimension count (naming the chunk), NaN / Inf / zero vectors
 * rejecting their row by its origin, indexes out of order and repeated, no
 * request for rows that already have vectors (reuse); and, opened by
 * KB_TESTABLE, retry_delay_ms (exponential growth, jitter bounds, the cap,
 * Retry-After over the backoff) and retry_after_header_ms.  Waits stay
 * short: retry-after-ms of at most 400 ms, Retry-After: 0 or a past date
 * against a 2-4 s backoff that a wrong client would have to sit out.
 */
#include "kbtest.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "embed/embed.h"

#define DIM KB_EMBED_DIM
#define MAX_REQ 64
#define KEY "sk-test-SECRET-key-123"

enum scenario {
    OK = 0, OK_SLOW, R429, E500_ONCE, E500_ALWAYS, E400, E401_ECHO, HANG, DIM768, REVERSED,
    DUP_INDEX,
    FIRST_FAILS,   /* request 0 gets first_status + first_headers, the rest OK */
    BAD_VALUE,     /* input 1: element 7 written as bad_literal (NULL: all zeros) */
    DIM_ONE        /* input 1 alone has 768 dimensions */
};

/* The marker the answer holds where BAD_VALUE writes its literal. */
#define MARKER_NUMBER 1234567.0
#define MARKER_TEXT "1234567.0"

struct stub {
    int fd, port;
    enum scenario sc;
    pthread_t listener;
    pthread_t handlers[MAX_REQ];
    int n_handlers;
    atomic_int stop;
    pthread_mutex_t mu;
    int n_requests, active, max_active;
    double at[MAX_REQ];          /* arrival times (kb_now) */
    int n_inputs[MAX_REQ];
    long n_tokens[MAX_REQ];      /* sum of tokens[] over the request's inputs */
    char auth[128], path[128];
    /* set by a case before the first request */
    const int *tokens;           /* per TEXTS entry (NULL: 0) */
    int first_status;
    const char *first_headers;
    const char *bad_literal;
};

struct conn {
    struct stub *s;
    int fd;
};

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

static void respond(int fd, int status, const char *extra_headers, const char *body)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%s\r\n", status, strlen(body), extra_headers);
    send_all(fd, head, (size_t)n);
    send_all(fd, body, strlen(body));
}

/* The good answer to `inputs`, in the order and shape the scenario wants. */
static char *answer(const struct stub *st, json_t *inputs)
{
    enum scenario sc = st->sc;
    size_t n = json_array_size(inputs);
    json_t *data = json_array();
    float v[DIM];
    for (size_t k = 0; k < n; k++) {
        size_t i = sc == REVERSED ? n - 1 - k : k;
        int dim = sc == DIM768 || (sc == DIM_ONE && i == 1) ? 768 : DIM;
        const char *text = json_string_value(json_array_get(inputs, i));
        embed_hash_text(text, strlen(text), v);
        json_t *vec = json_array();
        for (int j = 0; j < dim; j++)
            json_array_append_new(vec, json_real(sc == BAD_VALUE && i == 1
                                                     ? (st->bad_literal == NULL ? 0.0
                                                        : j == 7 ? MARKER_NUMBER : 3.0 * v[j])
                                                     : 3.0 * v[j]));
        json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding", "index",
                                              (json_int_t)(sc == DUP_INDEX ? 0 : i), "embedding",
                                              vec));
    }
    json_t *root = json_pack("{s:s, s:o, s:s}", "object", "list", "data", data, "model", "stub");
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    char *m = sc == BAD_VALUE && st->bad_literal ? strstr(s, MARKER_TEXT) : NULL;
    if (m) {   /* what jansson will not write: NaN, Infinity, ... as the server sent them */
        char *t = kb_xasprintf("%.*s%s%s", (int)(m - s), s, st->bad_literal,
                               m + strlen(MARKER_TEXT));
        free(s);
        s = t;
    }
    return s;
}

/* The sum of s->tokens over the texts of a request. */
static long tokens_of_inputs(const struct stub *s, json_t *inputs);

static void *handle(void *arg)
{
    struct conn *c = arg;
    struct stub *s = c->s;
    struct kb_buf in;
    kb_buf_init(&in);
    size_t content_length;
    size_t body_at = kbtest_http_read(c->fd, &in, &content_length);
    if (!body_at) {
        close(c->fd);
        kb_buf_release(&in);
        free(c);
        return NULL;
    }
    json_t *req = json_loadb(in.data + body_at, content_length, 0, NULL);
    json_t *inputs = json_object_get(req, "input");
    pthread_mutex_lock(&s->mu);
    int no = s->n_requests++;
    if (no < MAX_REQ) {
        s->at[no] = kb_now();
        s->n_inputs[no] = (int)json_array_size(inputs);
        s->n_tokens[no] = tokens_of_inputs(s, inputs);
    }
    char *auth = strcasestr(in.data, "authorization: ");
    if (auth)
        snprintf(s->auth, sizeof s->auth, "%.*s", (int)strcspn(auth + 15, "\r\n"), auth + 15);
    snprintf(s->path, sizeof s->path, "%.*s", (int)strcspn(in.data, "\r\n"), in.data);
    if (++s->active > s->max_active)
        s->max_active = s->active;
    pthread_mutex_unlock(&s->mu);

    if (s->sc == OK_SLOW)
        usleep(60 * 1000);
    /* done before the answer goes out: the client may send its next request
     * as soon as it reads this one's answer, and on a loaded machine this
     * thread could otherwise still count it (one too many "at once") */
    pthread_mutex_lock(&s->mu);
    s->active--;
    pthread_mutex_unlock(&s->mu);
    if (s->sc == HANG) {
        for (int i = 0; i < 300 && !atomic_load(&s->stop); i++)
            usleep(10 * 1000);
    } else if (s->sc == FIRST_FAILS && no == 0) {
        respond(c->fd, s->first_status, s->first_headers,
                "{\"error\":{\"message\":\"Try again later\"}}");
    } else if (s->sc == R429 && no == 0) {
        respond(c->fd, 429, "retry-after-ms: 150\r\nRetry-After: 1\r\n",
                "{\"error\":{\"message\":\"Rate limit reached for requests\",\"type\":"
                "\"requests\"}}");
    } else if ((s->sc == E500_ONCE && no == 0) || s->sc == E500_ALWAYS) {
        respond(c->fd, 500, "", "{\"error\":{\"message\":\"The server had an error\"}}");
    } else if (s->sc == E400) {
        respond(c->fd, 400, "",
                "{\"error\":{\"message\":\"This model's maximum context length is 8192 "
                "tokens\",\"type\":\"invalid_request_error\"}}");
    } else if (s->sc == E401_ECHO) {
        respond(c->fd, 401, "", "{\"error\":{\"message\":\"Incorrect API key provided: " KEY
                                "\"}}");
    } else {
        char *body = answer(s, inputs);
        respond(c->fd, 200, "", body);
        free(body);
    }
    json_decref(req);
    close(c->fd);
    kb_buf_release(&in);
    free(c);
    return NULL;
}

static void *listen_loop(void *arg)
{
    struct stub *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = { s->fd, POLLIN, 0 };
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            continue;
        if (s->n_handlers == MAX_REQ) {
            close(fd);
            continue;
        }
        struct conn *c = kb_xmalloc(sizeof *c);
        c->s = s;
        c->fd = fd;
        pthread_create(&s->handlers[s->n_handlers++], NULL, handle, c);
    }
    return NULL;
}

static struct stub *stub_start(enum scenario sc)
{
    struct stub *s = kb_xcalloc(1, sizeof *s);
    s->sc = sc;
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { 0 };
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 64), 0);
    socklen_t len = sizeof a;
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->listener, NULL, listen_loop, s);
    return s;
}

static void stub_stop(struct stub *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->listener, NULL);
    for (int i = 0; i < s->n_handlers; i++)
        pthread_join(s->handlers[i], NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- fixture ------------------------------------------------------------- */

static const char *const TEXTS[] = {
    "Restart the API server after changing the password.",
    "Port ranges are allocated per service type.",
    "The HNSW index is rebuilt after a large import.",
    "Secrets are encrypted before they are stored.",
    "Migrations run in order, each in a transaction.",
    "Estimates improve as executions are recorded.",
    "Connection refused: is PostgreSQL running?",
    "Learnings are deduplicated by cosine similarity.",
};
#define N_TEXTS 8

static long tokens_of_inputs(const struct stub *s, json_t *inputs)
{
    long sum = 0;
    for (size_t k = 0; s->tokens && k < json_array_size(inputs); k++) {
        const char *text = json_string_value(json_array_get(inputs, k));
        for (int i = 0; i < N_TEXTS; i++)
            if (text && strcmp(text, TEXTS[i]) == 0)
                sum += s->tokens[i];
    }
    return sum;
}

struct fixture {
    struct stub *stub;
    struct embed_opts opts;
    char url[64];
    struct embed_embedder *e;
    struct embed_batch b;
    char origins[N_TEXTS][32];
};

static struct fixture *fixture_new(enum scenario sc, int n_rows, void (*tune)(struct embed_opts *))
{
    struct fixture *f = kb_xcalloc(1, sizeof *f);
    f->stub = stub_start(sc);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/v1/", f->stub->port);
    embed_opts_defaults(&f->opts);
    f->opts.provider = EMBED_OPENAI;
    f->opts.model = "text-embedding-3-small";
    f->opts.openai.base_url = f->url;
    f->opts.openai.api_key_env = "KBPIPE_TEST_OPENAI_KEY";
    f->opts.openai.retry_base_ms = 1;
    f->opts.openai.retry_max_ms = 5;
    f->opts.openai.timeout_ms = 5000;
    if (tune)
        tune(&f->opts);
    struct kb_err err = { 0 };
    if (embed_embedder_new(&f->opts, &f->e, &err) != KB_OK)
        fail_msg("%s", err.msg);
    embed_batch_init(&f->b, n_rows);
    for (int i = 0; i < n_rows; i++) {
        snprintf(f->origins[i], sizeof f->origins[i], "docs/t.md#%d", i);
        f->b.rows[i].text = TEXTS[i];
        f->b.rows[i].len = strlen(TEXTS[i]);
        f->b.rows[i].origin = f->origins[i];
    }
    return f;
}

static void fixture_free(struct fixture *f)
{
    embed_batch_release(&f->b);
    embed_embedder_free(f->e);
    stub_stop(f->stub);
    free(f);
}

/* Every row i is COMPUTED and holds the unit hash vector of TEXTS[i]. */
static void check_rows(struct fixture *f)
{
    float v[DIM];
    for (int i = 0; i < f->b.n; i++) {
        if (f->b.rows[i].state == EMBED_ROW_REUSED)
            continue;
        assert_int_equal(f->b.rows[i].state, EMBED_ROW_COMPUTED);
        embed_hash_text(TEXTS[i], strlen(TEXTS[i]), v);
        const float *got = embed_batch_row(&f->b, i);
        for (int j = 0; j < DIM; j++)
            if (fabsf(got[j] - v[j]) > 1e-6f)
                fail_msg("row %d element %d: %g, want %g", i, j, got[j], v[j]);
    }
}

static int group_setup(void **state)
{
    (void)state;
    setenv("KBPIPE_TEST_OPENAI_KEY", KEY, 1);
    setenv("NO_PROXY", "127.0.0.1", 1);   /* a proxy in the environment must not see the stub */
    setenv("no_proxy", "127.0.0.1", 1);
    log_set_level(KB_LOG_QUIET);           /* retries are logged at info level */
    return 0;
}

/* ---- cases --------------------------------------------------------------- */

static void items_2_in_flight_2(struct embed_opts *o)
{
    o->openai.max_items_per_request = 2;
    o->openai.max_in_flight = 2;
}

static void openai_embed__success_batches_by_items(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(OK, 5, items_2_in_flight_2);
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_OK);
    check_rows(f);
    assert_int_equal(f->b.counts.computed, 5);
    assert_int_equal(f->stub->n_requests, 3);
    int total = 0;
    for (int i = 0; i < 3; i++) {
        assert_true(f->stub->n_inputs[i] <= 2);
        total += f->stub->n_inputs[i];
    }
    assert_int_equal(total, 5);
    assert_string_equal(f->stub->auth, "Bearer " KEY);
    assert_string_equal(f->stub->path, "POST /v1/embeddings HTTP/1.1");
    fixture_free(f);
}

static void tokens_250(struct embed_opts *o)
{
    o->openai.max_tokens_per_request = 250;
    o->openai.max_in_flight = 1;
}

static void openai_embed__batches_by_tokens(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(OK, 6, tokens_250);
    static const int tokens[] = { 100, 100, 100, 1000, 50, 200 };
    for (int i = 0; i < 6; i++)
        f->b.rows[i].token_count = tokens[i];
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_OK);
    check_rows(f);
    /* [100,100] [100] [1000 alone: over the limit by itself] [50,200] */
    static const int want[] = { 2, 1, 1, 2 };
    assert_int_equal(f->stub->n_requests, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(f->stub->n_inputs[i], want[i]);
    fixture_free(f);
}

static int in_flight_n;   /* the case's max_in_flight */

static void one_item_n_in_flight(struct embed_opts *o)
{
    o->openai.max_items_per_request = 1;
    o->openai.max_in_flight = in_flight_n;
}

static void openai_embed__requests_in_flight(void **state)
{
    (void)state;
    static const int cases[] = { 1, 2, 3, 4 };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        in_flight_n = cases[c];
        /* 8 one-text requests; the server holds each for 60 ms */
        struct fixture *f = fixture_new(OK_SLOW, 8, one_item_n_in_flight);
        struct kb_err err = { 0 };
        assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_OK);
        check_rows(f);
        assert_int_equal(f->stub->n_requests, 8);
        /* never more than asked for; and more than one at once when allowed */
        if (f->stub->max_active > in_flight_n || (in_flight_n > 1 && f->stub->max_active < 2))
            fail_msg("max_in_flight %d: the server saw %d requests at once", in_flight_n,
                     f->stub->max_active);
        fixture_free(f);
    }
}

static long token_bound;

static void tokens_bound_3_in_flight(struct embed_opts *o)
{
    o->openai.max_tokens_per_request = (int)token_bound;
    o->openai.max_in_flight = 3;
}

static void openai_embed__requests_respect_token_bound(void **state)
{
    (void)state;
    static const int tokens[N_TEXTS] = { 120, 80, 200, 40, 90, 300, 10, 160 };   /* sum 1000 */
    static const struct { long bound; int n_requests; } cases[] = {
        { 1000, 1 },    /* exactly fits: one request */
        { 999, 2 },
        { 250, 0 },     /* 0: as many as it takes */
        { 100, 0 },     /* 120, 200, 300 and 160 go alone, over the bound */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        token_bound = cases[c].bound;
        struct fixture *f = fixture_new(OK, N_TEXTS, tokens_bound_3_in_flight);
        f->stub->tokens = tokens;
        for (int i = 0; i < N_TEXTS; i++)
            f->b.rows[i].token_count = tokens[i];
        struct kb_err err = { 0 };
        assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_OK);
        check_rows(f);
        int total = 0;
        for (int k = 0; k < f->stub->n_requests; k++) {
            total += f->stub->n_inputs[k];
            /* over the bound only as a single text that is over it by itself */
            if (f->stub->n_tokens[k] > token_bound && f->stub->n_inputs[k] != 1)
                fail_msg("bound %ld: request %d holds %d texts of %ld tokens", token_bound, k,
                         f->stub->n_inputs[k], f->stub->n_tokens[k]);
        }
        assert_int_equal(total, N_TEXTS);
        if (cases[c].n_requests)
            assert_int_equal(f->stub->n_requests, cases[c].n_requests);
        fixture_free(f);
    }
}

static void openai_embed__429_honours_retry_after(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(R429, 2, NULL);
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_OK);
    check_rows(f);
    assert_int_equal(f->stub->n_requests, 2);
    assert_int_equal(embed_embedder_requests(f->e), 2);
    /* retry-after-ms: 150 wins over the 1-5 ms backoff (and over Retry-After: 1) */
    double gap = f->stub->at[1] - f->stub->at[0];
    if (gap < 0.150 || gap > 0.9)
        fail_msg("retried after %.3f s; the server asked for 0.150 s", gap);
    fixture_free(f);
}

static void openai_embed__500_then_success(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(E500_ONCE, 3, NULL);
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_OK);
    check_rows(f);
    assert_int_equal(f->stub->n_requests, 2);
    fixture_free(f);
}

static void two_retries(struct embed_opts *o)
{
    o->openai.max_retries = 2;
}

static void openai_embed__gives_up_after_retries(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(E500_ALWAYS, 2, two_retries);
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_E_EMBED);
    assert_int_equal(f->stub->n_requests, 3);
    assert_non_null(strstr(err.msg, "gave up after 3 attempts; last: HTTP 500: The server had "
                                    "an error"));
    assert_int_equal(f->b.rows[0].state, EMBED_ROW_PENDING);
    fixture_free(f);
}

static void openai_embed__400_not_retried(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(E400, 2, NULL);
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_E_EMBED);
    assert_int_equal(f->stub->n_requests, 1);
    assert_non_null(strstr(err.msg, "request of 2 chunks from docs/t.md#0: HTTP 400: This "
                                    "model's maximum context length is 8192 tokens;"));
    fixture_free(f);
}

static void openai_embed__key_never_shown(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(E401_ECHO, 1, NULL);
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_E_EMBED);
    assert_int_equal(f->stub->n_requests, 1);
    assert_string_equal(f->stub->auth, "Bearer " KEY);   /* sent ... */
    assert_null(strstr(err.msg, KEY));                     /* ... never shown */
    assert_null(strstr(err.origin, KEY));
    assert_non_null(strstr(err.msg, "HTTP 401: Incorrect API key provided: ***"));
    assert_non_null(strstr(err.msg, "api_key_env"));
    fixture_free(f);
}

static void short_timeout(struct embed_opts *o)
{
    o->openai.timeout_ms = 300;
    o->openai.max_retries = 1;
}

static void openai_embed__timeout(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(HANG, 1, short_timeout);
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_E_EMBED);
    assert_int_equal(f->stub->n_requests, 2);
    assert_non_null(strstr(err.msg, "gave up after 2 attempts; last: Timeout was reached"));
    assert_non_null(strstr(err.msg, "timeout_ms"));
    fixture_free(f);
}

static void openai_embed__wrong_dimension(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(DIM768, 2, NULL);
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_E_EMBED);
    assert_int_equal(f->stub->n_requests, 1);   /* not retried: it would not change */
    assert_non_null(strstr(err.msg, "a vector of 768 dimensions for docs/t.md#0, kbpipe needs "
                                    "1536"));
    assert_int_equal(f->b.rows[0].state, EMBED_ROW_PENDING);
    fixture_free(f);
}

static void openai_embed__indexes_out_of_order(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(REVERSED, 5, NULL);
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_OK);
    check_rows(f);   /* placed by "index", not by position */
    fixture_free(f);
}

static void openai_embed__repeated_index(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(DUP_INDEX, 3, NULL);
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_E_EMBED);
    assert_non_null(strstr(err.msg, "has index 0, which is a repeat"));
    fixture_free(f);
}

/* A backoff of 2-4 s: a retry sooner than that followed the server's header. */
static void slow_backoff(struct embed_opts *o)
{
    o->openai.retry_base_ms = 4000;
    o->openai.retry_max_ms = 4000;
}

static void openai_embed__retry_after_forms(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *headers;
        double lo, hi;   /* the gap between the first answer and the retry, s */
    } cases[] = {
        { 429, "Retry-After: 0\r\n", 0, 1.0 },                                 /* seconds alone */
        { 429, "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n", 0, 1.0 },     /* a past date */
        { 503, "Retry-After: 0\r\n", 0, 1.0 },                                 /* on a 5xx */
        { 503, "retry-after-ms: 120\r\n", 0.120, 1.0 },
        { 500, "retry-after-ms: 80\r\nRetry-After: 7\r\n", 0.080, 1.0 },     /* ms wins */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct fixture *f = fixture_new(FIRST_FAILS, 2, slow_backoff);
        f->stub->first_status = cases[c].status;
        f->stub->first_headers = cases[c].headers;
        struct kb_err err = { 0 };
        assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_OK);
        check_rows(f);
        assert_int_equal(f->stub->n_requests, 2);
        double gap = f->stub->at[1] - f->stub->at[0];
        if (gap < cases[c].lo || gap > cases[c].hi)
            fail_msg("HTTP %d with '%.40s': retried after %.3f s, want %.3f to %.3f s",
                     cases[c].status, cases[c].headers, gap, cases[c].lo, cases[c].hi);
        fixture_free(f);
    }
}

static void one_item_2_in_flight(struct embed_opts *o)
{
    o->openai.max_items_per_request = 1;
    o->openai.max_in_flight = 2;
}

static void openai_embed__others_go_on_during_a_wait(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(FIRST_FAILS, 4, one_item_2_in_flight);
    f->stub->first_status = 429;
    f->stub->first_headers = "retry-after-ms: 400\r\n";
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_OK);
    check_rows(f);
    assert_int_equal(f->stub->n_requests, 5);
    assert_true(f->stub->max_active <= 2);
    /* the three other requests were sent while the first one waited its 400 ms;
     * its retry came last */
    for (int k = 1; k <= 3; k++)
        if (f->stub->at[k] - f->stub->at[0] >= 0.400)
            fail_msg("request %d was sent %.3f s after the 429: it waited for the retry", k,
                     f->stub->at[k] - f->stub->at[0]);
    if (f->stub->at[4] - f->stub->at[0] < 0.400)
        fail_msg("retried after %.3f s; the server asked for 0.400 s",
                 f->stub->at[4] - f->stub->at[0]);
    fixture_free(f);
}

static void openai_embed__bad_vector_rejects_its_row(void **state)
{
    (void)state;
    static const struct { const char *literal, *why; } cases[] = {
        { "NaN", "contains NaN at element 7" },          /* Python's json */
        { "Infinity", "contains Inf at element 7" },
        { "-Infinity", "contains -Inf at element 7" },
        { "-inf", "contains -Inf at element 7" },        /* C's printf */
        { "null", "contains NaN at element 7" },         /* JavaScript's NaN */
        { NULL, "is a zero vector" },                    /* every element 0 */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct fixture *f = fixture_new(BAD_VALUE, 3, NULL);
        f->stub->bad_literal = cases[c].literal;
        struct kb_err err = { 0 };
        assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_PARTIAL);
        assert_int_equal(f->stub->n_requests, 1);
        /* the row alone is rejected, named by its origin; the others keep their vectors */
        assert_int_equal(f->b.rows[1].state, EMBED_ROW_REJECTED);
        assert_string_equal(err.origin, "docs/t.md#1");
        if (!strstr(err.msg, cases[c].why))
            fail_msg("%s: '%s' lacks '%s'", cases[c].literal ? cases[c].literal : "zeros",
                     err.msg, cases[c].why);
        assert_true(strncmp(f->b.rows[1].reject, "docs/t.md#1: ", 13) == 0);
        assert_non_null(strstr(f->b.rows[1].reject, cases[c].why));
        assert_int_equal(f->b.counts.rejected, 1);
        assert_int_equal(f->b.counts.computed, 2);
        f->b.rows[1].state = EMBED_ROW_REUSED;   /* check_rows skips it */
        check_rows(f);
        fixture_free(f);
    }
}

static void openai_embed__wrong_dimension_names_the_chunk(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(DIM_ONE, 3, NULL);
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_E_EMBED);
    assert_int_equal(f->stub->n_requests, 1);
    /* the request is refused (a model that makes other vectors is a setting to fix),
     * naming the chunk whose vector was wrong, not just the request's first */
    assert_non_null(strstr(err.msg, "a vector of 768 dimensions for docs/t.md#1, kbpipe needs "
                                    "1536"));
    assert_string_equal(err.origin, "request of 3 chunks from docs/t.md#0");
    for (int i = 0; i < 3; i++)
        assert_int_equal(f->b.rows[i].state, EMBED_ROW_PENDING);
    fixture_free(f);
}

/* ---- retry timing (openai.c, opened by KB_TESTABLE) ---------------------- */

long retry_delay_ms(const struct embed_openai_opts *o, int attempts, long retry_after_ms);
long retry_after_header_ms(const char *line, time_t now, int *is_ms);

static void retry_delay_ms__backoff_jitter_cap(void **state)
{
    (void)state;
    struct embed_openai_opts o = { .retry_base_ms = 100, .retry_max_ms = 1000 };
    /* b = min(1000, 100 * 2^(attempt-1)); the delay is in [b/2, b] and spreads over it */
    static const long b_of[] = { 0, 100, 200, 400, 800, 1000, 1000, 1000 };
    for (int attempt = 1; attempt <= 7; attempt++) {
        long b = b_of[attempt], lo = b, hi = 0;
        for (int k = 0; k < 400; k++) {
            long d = retry_delay_ms(&o, attempt, -1);
            if (d < b / 2 || d > b)
                fail_msg("attempt %d: %ld ms, outside [%ld, %ld]", attempt, d, b / 2, b);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* jitter: 400 draws cover most of the range (a miss has odds below 1e-15) */
        if (lo > b / 2 + b / 10 || hi < b - b / 10)
            fail_msg("attempt %d: draws only from %ld to %ld of [%ld, %ld]", attempt, lo, hi,
                     b / 2, b);
    }
    /* the cap holds for any attempt count, with no overflow */
    for (int attempt = 8; attempt < 100000; attempt = attempt * 3 + 1) {
        long d = retry_delay_ms(&o, attempt, -1);
        assert_true(d >= 500 && d <= 1000);
    }
    /* no backoff configured: no wait */
    struct embed_openai_opts zero = { 0 };
    assert_int_equal(retry_delay_ms(&zero, 3, -1), 0);
}

static void retry_delay_ms__retry_after_wins(void **state)
{
    (void)state;
    struct embed_openai_opts o = { .retry_base_ms = 5000, .retry_max_ms = 30000 };
    /* the server's wait, plus at most 10% (at most 1 s) jitter, whatever the backoff
     * says; not capped by retry_max_ms */
    static const struct { long asked, lo, hi; } cases[] = {
        { 0, 0, 0 },
        { 5, 5, 5 },   /* 10% of 5 ms rounds to no jitter */
        { 150, 150, 165 },
        { 2000, 2000, 2200 },
        { 20000, 20000, 21000 },
        { 120000, 120000, 121000 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int attempt = 1; attempt <= 6; attempt += 5)
            for (int k = 0; k < 100; k++) {
                long d = retry_delay_ms(&o, attempt, cases[c].asked);
                if (d < cases[c].lo || d > cases[c].hi)
                    fail_msg("asked %ld ms, attempt %d: %ld ms", cases[c].asked, attempt, d);
            }
}

static void retry_after_header_ms__forms(void **state)
{
    (void)state;
    const time_t now = 1445412480;   /* Wed, 21 Oct 2015 07:28:00 GMT */
    static const struct { const char *line; long ms; int is_ms; } cases[] = {
        { "Retry-After: 2\r\n", 2000, 0 },
        { "retry-after:0\r\n", 0, 0 },
        { "RETRY-AFTER-MS: 150\r\n", 150, 1 },
        { "retry-after-ms:  7 \r\n", 7, 1 },
        { "Retry-After: Wed, 21 Oct 2015 07:28:30 GMT\r\n", 30000, 0 },
        { "Retry-After: Wed, 21 Oct 2015 07:27:00 GMT\r\n", 0, 0 },   /* past: at once */
        { "Retry-After: 99999999999999999999\r\n", 86400000, 0 },   /* clamped to a day */
        { "Retry-After: soon\r\n", -1, 0 },
        { "Retry-After: 1.5\r\n", -1, 0 },
        { "Retry-After: \r\n", -1, 0 },
        { "retry-after-ms: later\r\n", -1, 1 },
        { "Content-Type: application/json\r\n", -1, 0 },
        { "HTTP/1.1 429 Too Many Requests\r\n", -1, 0 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int is_ms = -1;
        long ms = retry_after_header_ms(cases[c].line, now, &is_ms);
        if (ms != cases[c].ms || is_ms != cases[c].is_ms)
            fail_msg("'%.40s': %ld ms (is_ms %d), want %ld (%d)", cases[c].line, ms, is_ms,
                     cases[c].ms, cases[c].is_ms);
    }
}

static void openai_embed__reuse_requests_nothing(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(OK, 4, NULL);
    /* rows the database already had (the lead's load_batch_reuse) are not sent */
    f->b.rows[1].state = EMBED_ROW_REUSED;
    f->b.rows[3].state = EMBED_ROW_REUSED;
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_OK);
    assert_int_equal(f->stub->n_requests, 1);
    assert_int_equal(f->stub->n_inputs[0], 2);
    assert_int_equal(f->b.counts.computed, 2);
    check_rows(f);
    /* a second pass over the same rows: every row has its vector, nothing is sent */
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_OK);
    assert_int_equal(f->stub->n_requests, 1);
    assert_int_equal(embed_embedder_requests(f->e), 1);
    fixture_free(f);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest openai_c[] = {
        cmocka_unit_test(openai_embed__success_batches_by_items),
        cmocka_unit_test(openai_embed__batches_by_tokens),
        cmocka_unit_test(openai_embed__requests_in_flight),
        cmocka_unit_test(openai_embed__429_honours_retry_after),
        cmocka_unit_test(openai_embed__500_then_success),
        cmocka_unit_test(openai_embed__gives_up_after_retries),
        cmocka_unit_test(openai_embed__400_not_retried),
        cmocka_unit_test(openai_embed__key_never_shown),
        cmocka_unit_test(openai_embed__timeout),
        cmocka_unit_test(openai_embed__wrong_dimension),
        cmocka_unit_test(openai_embed__indexes_out_of_order),
        cmocka_unit_test(openai_embed__repeated_index),
        cmocka_unit_test(openai_embed__reuse_requests_nothing),
        cmocka_unit_test(openai_embed__requests_respect_token_bound),
        cmocka_unit_test(openai_embed__retry_after_forms),
        cmocka_unit_test(openai_embed__others_go_on_during_a_wait),
        cmocka_unit_test(openai_embed__bad_vector_rejects_its_row),
        cmocka_unit_test(openai_embed__wrong_dimension_names_the_chunk),
        cmocka_unit_test(retry_delay_ms__backoff_jitter_cap),
        cmocka_unit_test(retry_delay_ms__retry_after_wins),
        cmocka_unit_test(retry_after_header_ms__forms),
    };
    return cmocka_run_group_tests_name("openai.c", openai_c, group_setup, NULL) ? 1 : 0;
}
