/*
 * embed.h - the public face of src/embed: chunks in, 1536-dim unit vectors
 * out.  docs/embeddings.md is the user's page.
 *
 * Three providers behind one interface (struct embed_embedder):
 *   hash    kbpipe-hash-v1: offline, deterministic feature hashing of the
 *           text (hash.c); the default.
 *   import  vectors computed elsewhere, read once into an index keyed by
 *           content_hash or (source_id, chunk_index) (import.c, store.c);
 *           `kbpipe embed export` writes the OpenAI Batch API request file
 *           (export.c) whose output this provider reads back.
 *   openai  any OpenAI-compatible POST /embeddings endpoint through libcurl,
 *           several requests in flight, retries with backoff (openai*.c).
 *
 * Work is done on a struct embed_batch: a contiguous row-major n x
 * KB_EMBED_DIM float matrix (later stages may hand it to sgemm as it is)
 * with one struct embed_row per row.  Rows whose state is not
 * EMBED_ROW_PENDING (reused from the database, imported earlier) are left
 * alone by embed_batch_compute().  Every vector that compute writes is
 * checked and L2-normalized with CBLAS (normalize.c); a bad one rejects its
 * row, never the batch.  libcurl and cblas live in this folder only.
 */
#ifndef KB_EMBED_H
#define KB_EMBED_H

#include <stddef.h>
#include <stdio.h>

#include "util/util.h"

#define KB_EMBED_DIM 1536                     /* the schema's vector(1536) */
#define EMBED_HASH_MODEL "kbpipe-hash-v1"     /* fixed forever; a new algorithm gets a new name */

enum embed_provider { EMBED_HASH = 0, EMBED_IMPORT, EMBED_OPENAI };

enum embed_import_format {
    EMBED_IMPORT_JSONL = 0,      /* {"content_hash"|"source_id"+"chunk_index", "embedding": [...]} */
    EMBED_IMPORT_CSV,            /* a header row; key column(s) and a vector column */
    EMBED_IMPORT_OPENAI_BATCH    /* the Batch API output file, matched by custom_id */
};

struct embed_openai_opts {
    const char *base_url;        /* "https://api.openai.com/v1"; "/embeddings" is appended */
    const char *api_key_env;     /* the variable holding the key (NULL or "": no key sent) */
    int dimensions;              /* sent as "dimensions"; must be KB_EMBED_DIM (0: don't send) */
    int max_items_per_request;   /* default 64 */
    int max_tokens_per_request;  /* default 300000 (OpenAI's limit per request) */
    int max_in_flight;           /* requests at once; default 4 */
    int timeout_ms;              /* per request; default 60000 */
    int max_retries;             /* on 429, 5xx, timeouts and lost connections; default 5 */
    int retry_base_ms;           /* first backoff; doubles per attempt; default 500 */
    int retry_max_ms;            /* cap of one backoff (not of Retry-After); default 30000 */
};

struct embed_import_opts {
    const char *path;            /* the vectors file */
    enum embed_import_format format;
    const char *csv_vector_column;   /* default "embedding" */
};

/* Plain data; the run command fills it from the pipeline's embedding: block. */
struct embed_opts {
    enum embed_provider provider;
    const char *model;           /* recorded with every vector; NULL: EMBED_HASH_MODEL for hash */
    struct embed_openai_opts openai;
    struct embed_import_opts import;
};

/* Fill *opts with the defaults: hash provider and the values listed above. */
void embed_opts_defaults(struct embed_opts *opts);

/* "hash", "import", "openai"; "jsonl", "csv", "openai_batch" (static strings). */
const char *embed_provider_name(enum embed_provider p);
const char *embed_import_format_name(enum embed_import_format f);

/* ---- batches ------------------------------------------------------------ */

enum embed_row_state {
    EMBED_ROW_PENDING = 0,       /* needs a vector: compute fills it */
    EMBED_ROW_REUSED,            /* the caller filled it (e.g. from the database) */
    EMBED_ROW_IMPORTED,          /* compute found it in the import file */
    EMBED_ROW_COMPUTED,          /* compute made it (hash) or fetched it (openai) */
    EMBED_ROW_REJECTED           /* no usable vector: see reject */
};

/* One row of a batch; every pointer is borrowed from the caller. */
struct embed_row {
    const char *text;            /* the chunk's text, len bytes */
    size_t len;
    const char *content_hash;    /* 64 hex digits (import key, Batch custom_id) */
    const char *source_id;       /* import key with chunk_index; may be NULL */
    int chunk_index;
    const char *origin;          /* "docs/a.md#3": named in every message about the row */
    int token_count;             /* exact cl100k_base count; 0 = unknown (estimated) */
    enum embed_row_state state;
    const char *reject;          /* EMBED_ROW_REJECTED: why (lives in the batch) */
};

struct embed_counts {
    long computed, imported, rejected;
};

struct embed_batch {
    int n;
    float *vectors;              /* n x KB_EMBED_DIM, row-major */
    struct embed_row *rows;      /* n */
    struct embed_counts counts;  /* added to by every embed_batch_compute() */
    struct kb_arena *arena;      /* reject messages; owned */
    int owns_storage;            /* vectors and rows were allocated by init */
};

/*
 * An owned batch of n rows: vectors zeroed, rows zeroed (all PENDING).  The
 * caller fills rows[i]; release with embed_batch_release().
 */
void embed_batch_init(struct embed_batch *b, int n);

/*
 * A batch over the caller's storage (e.g. load_batch_matrix() and rows made
 * from the load batch): nothing is copied, and release frees only what the
 * batch allocated itself (reject messages).
 */
void embed_batch_wrap(struct embed_batch *b, float *vectors, struct embed_row *rows, int n);

/* Free what the batch owns; *b may then be initialized again. */
void embed_batch_release(struct embed_batch *b);

/* Row i's vector: KB_EMBED_DIM floats. */
float *embed_batch_row(struct embed_batch *b, int i);

/* ---- embedders ---------------------------------------------------------- */

struct embed_embedder;   /* fields live in embedder.c */

/*
 * Make the embedder opts describes; opts and its strings must outlive it.
 * hash: nothing to do.  import: reads and indexes the whole file now
 * (KB_E_INPUT naming file:line for malformed lines and wrong dimensions,
 * KB_E_IO when unreadable).  openai: reads the key from the environment
 * (KB_E_CONFIG when the variable is unset) and opens libcurl, the first
 * time in the process (KB_E_CONFIG naming the package libcurl4 when it
 * cannot be loaded: util/curl_lib.h).  KB_E_CONFIG
 * for settings that cannot work.  On failure *out is NULL.
 */
enum kb_code embed_embedder_new(const struct embed_opts *opts, struct embed_embedder **out,
                                struct kb_err *err);
void embed_embedder_free(struct embed_embedder *e);        /* NULL is a no-op */

/* The model name recorded with the vectors (borrowed). */
const char *embed_embedder_model(const struct embed_embedder *e);

/*
 * Fill every PENDING row of b and set its state: COMPUTED (hash, openai),
 * IMPORTED (import), or REJECTED with a message naming the row's origin
 * (not in the import file, NaN/Inf/zero vector).  Written vectors are unit
 * length.  KB_OK: every row has a vector.  KB_PARTIAL: some rows were
 * rejected (err describes the first; the caller rejects those rows and
 * keeps the rest).  KB_E_EMBED: the provider failed (server error after
 * the retries, a 4xx, a malformed response): rows of requests that
 * succeeded keep their vectors, the others stay PENDING.
 */
enum kb_code embed_batch_compute(struct embed_embedder *e, struct embed_batch *b,
                                 struct kb_err *err);

/*
 * 1 when the import provider's file holds a vector for the row (by
 * content_hash, else source_id + chunk_index), good or bad; 0 when it has
 * none, and always 0 for the other providers.  What `kbpipe embed export`
 * asks, without computing or normalizing anything.
 */
int embed_embedder_has_vector(const struct embed_embedder *e, const struct embed_row *r);

/*
 * The number of HTTP requests the openai embedder sent so far, retries
 * included (0 for the other providers): what a reuse test checks.
 */
long embed_embedder_requests(const struct embed_embedder *e);

/*
 * How many HTTP requests the openai embedder has on the wire right now (at
 * most its max_in_flight; 0 between batches, and always 0 for the other
 * providers, which make no requests).  Safe to call from another thread
 * while embed_batch_compute runs: the progress line reads it.
 */
int embed_embedder_in_flight(const struct embed_embedder *e);

/* ---- normalization (normalize.c) ------------------------------------------ */

/*
 * Check and L2-normalize n rows of `dim` floats in place (row-major).  A
 * row is refused when dim is not KB_EMBED_DIM, or it holds NaN or Inf, or
 * its norm is zero (below 1e-30).  Good rows become unit length (within
 * 1e-6: the norm is accumulated in double, as pgvector's l2_normalize
 * does).  KB_E_INPUT on the first bad row, with origins[i] (may be NULL) as
 * the origin; rows before it are normalized, it and the rows after are
 * untouched.
 */
enum kb_code embed_normalize_rows(float *m, int n, int dim, const char *const *origins,
                                  struct kb_err *err);

/*
 * One row: 0 when v was normalized, else why not, as text for a message
 * ("contains NaN at element 7", "is a zero vector"), written into
 * why[why_len]; v is then untouched.
 */
int embed_normalize_one(float *v, int dim, char *why, size_t why_len);

/* ---- the hash embedder (hash.c) ------------------------------------------- */

/*
 * out = the kbpipe-hash-v1 vector of text[0..len) (any bytes), unit length.
 * Deterministic across runs, machines and versions.  Never fails: text with
 * no words still gets a vector (from its characters).
 */
void embed_hash_text(const char *text, size_t len, float out[KB_EMBED_DIM]);

/* ---- similar pairs (similarity.c) ----------------------------------------- */

/* Two rows i < j of a matrix and their cosine similarity. */
struct embed_pair {
    int i, j;
    float similarity;
};

/* How many partners above the threshold each row keeps (similarity.c). */
#define EMBED_PAIRS_PER_ROW 16

/*
 * The pairs of rows of the row-major n x dim matrix m (unit vectors) whose
 * dot product is at least threshold, by blocked cblas_sgemm (256 rows at a
 * time, so memory is 256 x n floats whatever n is).  Each row keeps its
 * EMBED_PAIRS_PER_ROW most similar partners and a pair is returned when
 * either row kept it, so there are at most EMBED_PAIRS_PER_ROW x n pairs;
 * below that bound every pair above the threshold is returned.  *pairs_out
 * (caller frees; NULL when none) gets them with i < j, in row order;
 * returns how many.
 */
int embed_similar_pairs(const float *m, int n, int dim, float threshold,
                        struct embed_pair **pairs_out);

/*
 * Each row's nearest neighbour: best[i] = the largest dot product of row i
 * of the row-major n x dim matrix m (unit vectors: the cosine similarity)
 * with any other row, by the same blocked cblas_sgemm as
 * embed_similar_pairs (so the same float arithmetic as the dedup pass).
 * best has n entries; with n < 2 there is no other row and best[0] is -2.
 * Cost: n^2 x dim multiply-adds, memory 256 x n floats besides m.
 */
void embed_nearest_similarity(const float *m, int n, int dim, float *best);

/* ---- the Batch API request file (export.c) ------------------------------- */

struct embed_export_item {
    const char *custom_id;       /* the chunk's content_hash: import matches on it */
    const char *text;
    size_t len;
};

/*
 * Write one Batch API request line per item to out:
 *   {"custom_id":ID,"method":"POST","url":"/v1/embeddings",
 *    "body":{"model":MODEL,"input":TEXT,"dimensions":1536}}
 * KB_E_IO (naming `out_name`) when a write fails; KB_E_INPUT when a text is
 * not valid UTF-8.  OpenAI takes at most 50,000 lines and 200 MB per file.
 */
enum kb_code embed_export_write(FILE *out, const char *out_name, const char *model,
                                const struct embed_export_item *items, int n,
                                struct kb_err *err);

/*
 * `kbpipe embed export --model M [-o FILE] [INPUT.jsonl]`: the request file
 * for chunks given as JSON Lines {"content_hash":..,"text":..} (cmd_embed.c).
 * The pipeline form, `kbpipe embed export PIPELINE.yaml`, needs the
 * database and the run loop, and lives in src/pipeline (export_batch.c);
 * cmd_embed_all (pipeline.h), what main.c calls, routes between the two.
 */
enum kb_code cmd_embed(int argc, char **argv, struct kb_err *err);

#endif /* KB_EMBED_H */
