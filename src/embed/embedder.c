/*
 * embedder.c - the one interface over the three providers: options and
 * their defaults, batches, and embed_batch_compute(), which hands PENDING
 * rows to the provider and normalizes what comes back.  A row that cannot
 * get a vector is rejected alone, with its origin; the provider failing
 * fails the call.
 */
#include "embed/embed_int.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct embed_embedder {
    const struct embed_opts *opts;
    const char *model;
    struct import_store *store;      /* import */
    struct openai_client *client;    /* openai */
};

void embed_opts_defaults(struct embed_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->provider = EMBED_HASH;
    opts->openai.base_url = "https://api.openai.com/v1";
    opts->openai.api_key_env = "OPENAI_API_KEY";
    opts->openai.dimensions = KB_EMBED_DIM;
    opts->openai.max_items_per_request = 64;
    opts->openai.max_tokens_per_request = 300000;
    opts->openai.max_in_flight = 4;
    opts->openai.timeout_ms = 60000;
    opts->openai.max_retries = 5;
    opts->openai.retry_base_ms = 500;
    opts->openai.retry_max_ms = 30000;
    opts->import.format = EMBED_IMPORT_JSONL;
    opts->import.csv_vector_column = "embedding";
}

const char *embed_provider_name(enum embed_provider p)
{
    switch (p) {
    case EMBED_HASH: return "hash";
    case EMBED_IMPORT: return "import";
    case EMBED_OPENAI: return "openai";
    }
    return "?";
}

const char *embed_import_format_name(enum embed_import_format f)
{
    switch (f) {
    case EMBED_IMPORT_JSONL: return "jsonl";
    case EMBED_IMPORT_CSV: return "csv";
    case EMBED_IMPORT_OPENAI_BATCH: return "openai_batch";
    }
    return "?";
}

/* ---- batches ------------------------------------------------------------- */

void embed_batch_init(struct embed_batch *b, int n)
{
    memset(b, 0, sizeof *b);
    b->n = n;
    b->vectors = kb_xcalloc((size_t)(n > 0 ? n : 1) * KB_EMBED_DIM, sizeof(float));
    b->rows = kb_xcalloc((size_t)(n > 0 ? n : 1), sizeof(struct embed_row));
    b->owns_storage = 1;
}

void embed_batch_wrap(struct embed_batch *b, float *vectors, struct embed_row *rows, int n)
{
    memset(b, 0, sizeof *b);
    b->n = n;
    b->vectors = vectors;
    b->rows = rows;
}

void embed_batch_release(struct embed_batch *b)
{
    if (b->owns_storage) {
        free(b->vectors);
        free(b->rows);
    }
    kb_arena_free(b->arena);
    memset(b, 0, sizeof *b);
}

float *embed_batch_row(struct embed_batch *b, int i)
{
    return b->vectors + (size_t)i * KB_EMBED_DIM;
}

void embed_row_reject(struct embed_batch *b, int i, struct kb_err *err, int *n_rejected,
                      const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!b->arena)
        b->arena = kb_arena_new();
    struct embed_row *r = &b->rows[i];
    const char *origin = r->origin ? r->origin : "";
    r->state = EMBED_ROW_REJECTED;
    r->reject = kb_arena_printf(b->arena, "%s%s%s", origin, *origin ? ": " : "", msg);
    if (*n_rejected == 0)
        KB_FAIL_AT(err, KB_E_INPUT, origin, "%s", msg);
    (*n_rejected)++;
    b->counts.rejected++;
}

/* ---- embedders ----------------------------------------------------------- */

enum kb_code embed_embedder_new(const struct embed_opts *opts, struct embed_embedder **out,
                                struct kb_err *err)
{
    *out = NULL;
    struct embed_embedder *e = kb_xcalloc(1, sizeof *e);
    e->opts = opts;
    e->model = opts->model && opts->model[0] ? opts->model
               : opts->provider == EMBED_HASH ? EMBED_HASH_MODEL
                                              : NULL;
    enum kb_code rc = KB_OK;
    if (!e->model) {
        rc = KB_FAIL_AT(err, KB_E_CONFIG, "embedding.model",
                        "the %s provider needs a model name; set embedding.model to the model "
                        "that makes the vectors", embed_provider_name(opts->provider));
    } else if (opts->provider == EMBED_HASH && strcmp(e->model, EMBED_HASH_MODEL) != 0) {
        rc = KB_FAIL_AT(err, KB_E_CONFIG, "embedding.model",
                        "the hash provider makes '%s' vectors, not '%.80s'; remove "
                        "embedding.model or set it to %s", EMBED_HASH_MODEL, e->model,
                        EMBED_HASH_MODEL);
    } else if (opts->provider == EMBED_IMPORT) {
        long n_dup = 0;
        rc = import_read(&opts->import, &e->store, &n_dup, err);
        if (rc == KB_OK && n_dup > 0)
            log_info("%s: %ld keys appear more than once; the first vector of each is used",
                     opts->import.path, n_dup);
    } else if (opts->provider == EMBED_OPENAI) {
        rc = openai_client_new(&opts->openai, e->model, &e->client, err);
    }
    if (rc != KB_OK) {
        embed_embedder_free(e);
        return rc;
    }
    *out = e;
    return KB_OK;
}

void embed_embedder_free(struct embed_embedder *e)
{
    if (!e)
        return;
    import_store_free(e->store);
    openai_client_free(e->client);
    free(e);
}

const char *embed_embedder_model(const struct embed_embedder *e)
{
    return e->model;
}

int embed_embedder_has_vector(const struct embed_embedder *e, const struct embed_row *r)
{
    long line;
    if (!e->store)
        return 0;
    if (r->content_hash && import_store_find_hash(e->store, r->content_hash, &line))
        return 1;
    return r->source_id && import_store_find_source(e->store, r->source_id, r->chunk_index, &line);
}

long embed_embedder_requests(const struct embed_embedder *e)
{
    return e->client ? openai_client_requests(e->client) : 0;
}

/* See embed.h. */
int embed_embedder_in_flight(const struct embed_embedder *e)
{
    return e && e->client ? openai_client_in_flight(e->client) : 0;
}

/* A share of a batch's rows for hash_rows(): first, first + step, ... */
struct hash_share {
    struct embed_batch *b;
    int first, step;
};

/* The kbpipe-hash-v1 vectors of rows first, first + step, ... (pending only). */
static void *hash_rows(void *arg)
{
    struct hash_share *h = arg;
    for (int i = h->first; i < h->b->n; i += h->step) {
        struct embed_row *r = &h->b->rows[i];
        if (r->state == EMBED_ROW_PENDING)
            embed_hash_text(r->text, r->len, embed_batch_row(h->b, i));
    }
    return NULL;
}

/*
 * The hash embedder is the run thread's main cost (docs/loading.md), and
 * pure: a batch of HASH_MIN_SHARED rows or more is shared with one helper
 * thread (the machines have two cores; the writer thread mostly waits on
 * the server), interleaved so both halves get alike texts.  The rows'
 * states and counts are set afterwards, by this thread alone.
 */
#define HASH_MIN_SHARED 64

static enum kb_code compute_hash(struct embed_batch *b)
{
    struct hash_share mine = { b, 0, 1 }, other = { b, 1, 2 };
    pthread_t helper;
    int is_shared = b->n >= HASH_MIN_SHARED &&
                    pthread_create(&helper, NULL, hash_rows, &other) == 0;
    if (is_shared)
        mine.step = 2;
    hash_rows(&mine);
    if (is_shared)
        pthread_join(helper, NULL);
    for (int i = 0; i < b->n; i++) {
        struct embed_row *r = &b->rows[i];
        if (r->state != EMBED_ROW_PENDING)
            continue;
        r->state = EMBED_ROW_COMPUTED;
        b->counts.computed++;
    }
    return KB_OK;
}

static enum kb_code compute_import(struct embed_embedder *e, struct embed_batch *b,
                                   struct kb_err *err)
{
    int n_rejected = 0;
    char why[96];
    const char *path = e->opts->import.path;
    for (int i = 0; i < b->n; i++) {
        struct embed_row *r = &b->rows[i];
        if (r->state != EMBED_ROW_PENDING)
            continue;
        long line = 0;
        const float *v = NULL;
        if (r->content_hash)
            v = import_store_find_hash(e->store, r->content_hash, &line);
        if (!v && r->source_id)
            v = import_store_find_source(e->store, r->source_id, r->chunk_index, &line);
        if (!v) {
            embed_row_reject(b, i, err, &n_rejected,
                             "no vector in %s for content hash %.16s...; embed the missing "
                             "chunks ('kbpipe embed export') and add them to the file",
                             path, r->content_hash ? r->content_hash : "(none)");
            continue;
        }
        float *dst = embed_batch_row(b, i);
        memcpy(dst, v, KB_EMBED_DIM * sizeof *dst);
        if (embed_normalize_one(dst, KB_EMBED_DIM, why, sizeof why) != 0) {
            embed_row_reject(b, i, err, &n_rejected,
                             "the vector at %s:%ld %s; fix or remove that line", path, line,
                             why);
            continue;
        }
        r->state = EMBED_ROW_IMPORTED;
        b->counts.imported++;
    }
    return n_rejected ? KB_PARTIAL : KB_OK;
}

enum kb_code embed_batch_compute(struct embed_embedder *e, struct embed_batch *b,
                                 struct kb_err *err)
{
    switch (e->opts->provider) {
    case EMBED_HASH: return compute_hash(b);
    case EMBED_IMPORT: return compute_import(e, b, err);
    case EMBED_OPENAI: return openai_embed_batch(e->client, b, err);
    }
    return KB_FAIL(err, KB_E_INTERNAL, NULL,
                   "internal error: unknown embedding provider %d; please report it",
                   (int)e->opts->provider);
}
