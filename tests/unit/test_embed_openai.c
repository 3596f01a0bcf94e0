/*
 * test_embed_openai.c - the OpenAI-compatible client (src/embed/openai*.c)
 * against a stub server on 127.0.0.1 that the test starts itself: a thread
 * listening on port 0, one thread per connection, answering POST
 * /v1/embeddings the way each case needs.  A good answer's vectors are the
 * kbpipe-hash-v1 vectors of the inputs times 3, so every row can be checked
 * against the text it came from.
 *
 * Group openai.c: batching by items and by tokens, requests in flight,
 * 429 with Retry-After, 500 then success, giving up, 400 with the server's
 * message, the key sent but never shown, timeouts, wrong dimension count,
 * indexes out of order and repeated, and no request for rows that already
 * have vectors (reuse).
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
    DUP_INDEX
};

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
    char auth[128], path[128];
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
static char *answer(enum scenario sc, json_t *inputs)
{
    size_t n = json_array_size(inputs);
    int dim = sc == DIM768 ? 768 : DIM;
    json_t *data = json_array();
    float v[DIM];
    for (size_t k = 0; k < n; k++) {
        size_t i = sc == REVERSED ? n - 1 - k : k;
        const char *text = json_string_value(json_array_get(inputs, i));
        embed_hash_text(text, strlen(text), v);
        json_t *vec = json_array();
        for (int j = 0; j < dim; j++)
            json_array_append_new(vec, json_real(3.0 * v[j]));
        json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding", "index",
                                              (json_int_t)(sc == DUP_INDEX ? 0 : i), "embedding",
                                              vec));
    }
    json_t *root = json_pack("{s:s, s:o, s:s}", "object", "list", "data", data, "model", "stub");
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

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
    if (s->sc == HANG) {
        for (int i = 0; i < 300 && !atomic_load(&s->stop); i++)
            usleep(10 * 1000);
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
        char *body = answer(s->sc, inputs);
        respond(c->fd, 200, "", body);
        free(body);
    }
    pthread_mutex_lock(&s->mu);
    s->active--;
    pthread_mutex_unlock(&s->mu);
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

static void one_item_4_in_flight(struct embed_opts *o)
{
    o->openai.max_items_per_request = 1;
    o->openai.max_in_flight = 4;
}

static void openai_embed__requests_in_flight(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(OK_SLOW, 8, one_item_4_in_flight);
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(f->e, &f->b, &err), KB_OK);
    check_rows(f);
    assert_int_equal(f->stub->n_requests, 8);
    assert_true(f->stub->max_active >= 2);
    assert_true(f->stub->max_active <= 4);
    fixture_free(f);
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
    assert_non_null(strstr(err.msg, "a vector of 768 dimensions, kbpipe needs 1536"));
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
    };
    return cmocka_run_group_tests_name("openai.c", openai_c, group_setup, NULL) ? 1 : 0;
}
