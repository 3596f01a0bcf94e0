/*
 * fuzz_embed_import.c - embed import (src/embed/import.c, store.c: JSON
 * Lines with an array or base64 vector, CSV with a pgvector-text vector
 * column, OpenAI Batch API output) on any bytes as the vectors file.  The
 * format follows the input (a '{' first: jsonl, or openai_batch when it
 * mentions "custom_id"; else csv), and one input in eight is read as
 * another format; the CSV vector column is "embedding" or "vec".
 *
 * Invariants:
 *   - embed_embedder_new() gives an embedder (KB_OK) or none with a
 *     one-line KB_E_INPUT / KB_E_IO error naming the file;
 *   - with an embedder, a batch of rows keyed by every 64-hex-digit run of
 *     the input (and by source "docs/a.md" chunk 0) computes to KB_OK or
 *     KB_PARTIAL: each row IMPORTED with a finite unit vector, or REJECTED
 *     with a message; KB_PARTIAL exactly when a row was rejected, and then
 *     err is a one-line KB_E_INPUT about the first.
 */
#include "fuzz.h"

#include <math.h>

#include "embed/embed.h"

#define MAX_ROWS 5

static int is_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kbfuzz_quiet();
    uint64_t h = kbfuzz_hash(data, size);
    struct embed_opts opts;
    embed_opts_defaults(&opts);
    opts.provider = EMBED_IMPORT;
    opts.model = "text-embedding-3-small";
    opts.import.path = kbfuzz_write("vectors", data, size);
    size_t first = 0;
    while (first < size && (data[first] == ' ' || data[first] == '\n'))
        first++;
    if (first < size && data[first] == '{')
        opts.import.format = memmem(data, size, "custom_id", 9) ? EMBED_IMPORT_OPENAI_BATCH
                                                                : EMBED_IMPORT_JSONL;
    else
        opts.import.format = EMBED_IMPORT_CSV;
    if ((h & 7) == 0)
        opts.import.format = (enum embed_import_format)((h >> 3) % 3);
    opts.import.csv_vector_column = ((h >> 5) & 3) == 0 ? "vec" : NULL;

    struct embed_embedder *e = NULL;
    struct kb_err err = { 0 };
    enum kb_code rc = embed_embedder_new(&opts, &e, &err);
    if (rc != KB_OK) {
        kbfuzz_check_err(rc, &err);
        KBFUZZ_CHECK(e == NULL, "an embedder after a failure");
        KBFUZZ_CHECK(rc == KB_E_INPUT || rc == KB_E_IO, "embed_embedder_new returned %d: %s",
                     (int)rc, err.msg);
        KBFUZZ_CHECK(strstr(err.origin, "vectors") != NULL, "origin '%s' names no file",
                     err.origin);
        kbfuzz_unlink("vectors");
        return 0;
    }
    KBFUZZ_CHECK(e != NULL, "KB_OK without an embedder");
    KBFUZZ_CHECK(strcmp(embed_embedder_model(e), opts.model) == 0, "model changed");

    /* rows: the keys the input may hold */
    char hashes[MAX_ROWS][65];
    int n = 0;
    for (size_t i = 0; i + 64 <= size && n < MAX_ROWS - 1;) {
        size_t k = 0;
        while (i + k < size && is_hex(data[i + k]))
            k++;
        if (k == 64) {
            memcpy(hashes[n], data + i, 64);
            hashes[n++][64] = '\0';
        }
        i += k ? k : 1;
    }
    struct embed_batch b;
    embed_batch_init(&b, n + 1);
    for (int i = 0; i <= n; i++) {
        b.rows[i].text = "x";
        b.rows[i].len = 1;
        b.rows[i].content_hash = i < n ? hashes[i] : "f" "0000000000000000000000000000000"
                                                     "00000000000000000000000000000000";
        b.rows[i].source_id = i == n ? "docs/a.md" : NULL;
        b.rows[i].chunk_index = 0;
        b.rows[i].origin = "fuzz";
    }
    memset(&err, 0, sizeof err);
    rc = embed_batch_compute(e, &b, &err);
    KBFUZZ_CHECK(rc == KB_OK || rc == KB_PARTIAL, "compute returned %d: %s", (int)rc, err.msg);
    int n_rejected = 0;
    for (int i = 0; i <= n; i++) {
        const struct embed_row *r = &b.rows[i];
        if (r->state == EMBED_ROW_REJECTED) {
            n_rejected++;
            KBFUZZ_CHECK(r->reject && r->reject[0], "row %d rejected without a message", i);
            continue;
        }
        KBFUZZ_CHECK(r->state == EMBED_ROW_IMPORTED, "row %d in state %d", i, (int)r->state);
        const float *v = embed_batch_row(&b, i);
        double norm = 0;
        for (int k = 0; k < KB_EMBED_DIM; k++) {
            KBFUZZ_CHECK(isfinite(v[k]), "row %d element %d is %g", i, k, (double)v[k]);
            norm += (double)v[k] * v[k];
        }
        KBFUZZ_CHECK(fabs(sqrt(norm) - 1) < 1e-5, "row %d has norm %g", i, sqrt(norm));
    }
    KBFUZZ_CHECK((rc == KB_PARTIAL) == (n_rejected > 0), "rc %d with %d rejected", (int)rc,
                 n_rejected);
    if (rc == KB_PARTIAL)   /* err describes the first rejected row */
        kbfuzz_check_err(KB_E_INPUT, &err);
    embed_batch_release(&b);
    embed_embedder_free(e);
    kbfuzz_unlink("vectors");
    return 0;
}
