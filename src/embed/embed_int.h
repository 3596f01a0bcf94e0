/*
 * embed_int.h - what the files of src/embed share: the embedder handle,
 * the import store, the OpenAI-compatible client and a few helpers.
 * Nothing outside src/embed includes this header.
 */
#ifndef KB_EMBED_INT_H
#define KB_EMBED_INT_H

#include <stdint.h>

#include "embed/embed.h"

#include <cblas.h>

/* ---- blas.c: OpenBLAS, opened at the first call ----------------------- */

/* The CBLAS calls src/embed makes, with cblas.h's signatures. */
struct embed_blas {
    void (*sgemm)(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta,
                  const enum CBLAS_TRANSPOSE tb, const blasint m, const blasint n,
                  const blasint k, const float alpha, const float *a, const blasint lda,
                  const float *b, const blasint ldb, const float beta, float *c,
                  const blasint ldc);
};

/* The calls, resolved once (thread-safe); a library that cannot be loaded
 * ends the process with a message saying what to install. */
const struct embed_blas *embed_blas(void);

/* ---- import store (store.c): key -> float32 vector -------------------- */

/*
 * Vectors read from an import file, kept as float32 in an unlinked
 * temporary file that is mapped read-only once loading ends (the page
 * cache holds them, not the heap), with an open-addressing table from a
 * 16-byte key to (row, line): 32 bytes of heap per vector.  Keys are
 * BLAKE2b-128 of "h\0" + content_hash or "s\0" + source_id + "\0" + index.
 */
struct import_store;

enum kb_code import_store_new(const char *path, struct import_store **out, struct kb_err *err);
void import_store_free(struct import_store *st);
/* Add a vector (dim floats, dim == KB_EMBED_DIM) under a key; 0 when the key
 * was already there (the first vector is kept). */
int import_store_add_hash(struct import_store *st, const char *content_hash, const float *v,
                          long line);
int import_store_add_source(struct import_store *st, const char *source_id, int chunk_index,
                            const float *v, long line);
/* Finish loading: map the vectors.  KB_E_IO on failure. */
enum kb_code import_store_seal(struct import_store *st, struct kb_err *err);
/* The vector for a key, or NULL; *line = its line in the file. */
const float *import_store_find_hash(const struct import_store *st, const char *content_hash,
                                    long *line);
const float *import_store_find_source(const struct import_store *st, const char *source_id,
                                      int chunk_index, long *line);
long import_store_count(const struct import_store *st);

/* Read opts->path into a sealed store (import.c).  Errors name file:line. */
enum kb_code import_read(const struct embed_import_opts *opts, struct import_store **out,
                         long *n_duplicates, struct kb_err *err);

/* Parse a vector written as "[1,2,3]", "{1,2,3}" or "1 2 3" / "1,2,3" into
 * out[cap]; returns the number of values, or -1 with *bad = the offending
 * text (first bad byte).  nan and inf are accepted (rejected later, per row). */
int embed_parse_vector_text(const char *s, float *out, int cap, const char **bad);

/* ---- OpenAI-compatible client (openai.c, openai_http.c) ----------------- */

struct openai_client;

enum kb_code openai_client_new(const struct embed_openai_opts *o, const char *model,
                               struct openai_client **out, struct kb_err *err);
void openai_client_free(struct openai_client *c);
/* Fill the PENDING rows of b (see embed_batch_compute). */
enum kb_code openai_embed_batch(struct openai_client *c, struct embed_batch *b,
                                struct kb_err *err);
long openai_client_requests(const struct openai_client *c);
/* The requests of the batch being embedded that are on the wire now (0
 * between batches); safe to call from another thread while
 * openai_embed_batch runs (an atomic). */
int openai_client_in_flight(const struct openai_client *c);

/* The JSON of one request (openai_json.c): {"model", "input": [texts of
 * b->rows[rows[0..n)]], "dimensions" (when > 0), "encoding_format"}.
 * Caller frees. */
char *openai_body_build(const char *model, int dimensions, const struct embed_batch *b,
                        const int *rows, int n);

/*
 * Parse a 200 response for b->rows[rows[0..n)]: data[k].embedding goes to
 * row rows[data[k].index], which must be a permutation of 0..n-1, each
 * vector KB_EMBED_DIM long.  Vectors are written as received (not yet
 * normalized); NaN, Infinity and null elements (not JSON, but servers send
 * them) are read as NaN / +-Inf for normalization to reject the row.
 * KB_E_EMBED naming the fault otherwise; `what` names the request in
 * messages ("request of 64 chunks starting at docs/a.md#0"), the message
 * names the chunk of a wrong vector.
 */
enum kb_code openai_response_parse(const char *body, size_t len, struct embed_batch *b,
                                   const int *rows, int n, const char *what,
                                   struct kb_err *err);

/* The server's own message from an error body (OpenAI's error.message,
 * or "error"/"detail"/"message" strings, else the start of the body), one
 * line, at most out_len - 1 bytes, with `secret` (may be NULL) masked. */
void openai_error_message(const char *body, size_t len, const char *secret, char *out,
                          size_t out_len);

/* ---- helpers (embedder.c) ----------------------------------------------- */

/* Reject row i: state REJECTED, reject = "ORIGIN: what" (kept in b->arena);
 * the first reject of a compute call also fills err.  Counts it. */
void embed_row_reject(struct embed_batch *b, int i, struct kb_err *err, int *n_rejected,
                      const char *fmt, ...) KB_PRINTF(5, 6);

#endif /* KB_EMBED_INT_H */
