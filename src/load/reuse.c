/*
 * reuse.c - vectors already stored, found by (content_hash, model) for a
 * batch's rows before the embedder runs, and pgvector's binary form they
 * arrive in.  Split from batch.c, whose records (load_int.h) it reads.
 */
#include "load/load_int.h"

#include <stdlib.h>
#include <string.h>

/* Parse pgvector's binary form (dim, unused, floats, big-endian) into out. */
int load_vector_from_binary(const unsigned char *p, int len, float *out)
{
    if (len < 4)
        return 0;
    int dim = (p[0] << 8) | p[1];
    if (dim != KB_LOAD_DIM || len != 4 + 4 * dim)
        return 0;
    for (int i = 0; i < dim; i++) {
        const unsigned char *q = p + 4 + 4 * i;
        uint32_t bits = ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) |
                        ((uint32_t)q[2] << 8) | q[3];
        memcpy(&out[i], &bits, 4);
    }
    return 1;
}

/* See load_int.h. */
enum kb_code load_reuse_lookup(struct db_conn *conn, const char *const *hashes, int n,
                               const char *model, float *matrix, unsigned char *has_vector,
                               int *n_found, struct kb_err *err)
{
    *n_found = 0;
    struct kb_buf arr;
    kb_buf_init(&arr);
    load_array_open(&arr);
    int n_asked = 0;
    for (int i = 0; i < n; i++)
        if (hashes[i] && !has_vector[i]) {
            load_array_add(&arr, hashes[i]);
            n_asked++;
        }
    load_array_close(&arr);
    if (n_asked == 0) {
        kb_buf_release(&arr);
        return KB_OK;
    }
    const char *p[] = { arr.data, model };
    /* binary results: the vector arrives as pgvector's send format */
    PGresult *res = PQexecParams(db_conn_pg(conn),
        "SELECT content_hash, embedding FROM ("
        "  SELECT DISTINCT ON (content_hash) content_hash, embedding FROM knowledge_chunks"
        "  WHERE content_hash = ANY($1::text[]) AND metadata->>'embedding_model' = $2"
        "    AND embedding IS NOT NULL"
        "  UNION ALL"
        "  SELECT DISTINCT ON (metadata->>'content_hash') metadata->>'content_hash', embedding"
        "  FROM learnings WHERE metadata->>'content_hash' = ANY($1::text[])"
        "    AND metadata->>'embedding_model' = $2 AND embedding IS NOT NULL) v",
        2, NULL, p, NULL, NULL, 1);
    kb_buf_release(&arr);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        enum kb_code rc = db_result_error(conn, res, "looking up stored embeddings", err);
        PQclear(res);
        return rc;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        const char *hash = PQgetvalue(res, r, 0);
        const unsigned char *vec = (const unsigned char *)PQgetvalue(res, r, 1);
        int vlen = PQgetlength(res, r, 1);
        if (PQgetlength(res, r, 0) != 64)
            continue;
        for (int i = 0; i < n; i++) {
            if (has_vector[i] || hashes[i] == NULL || memcmp(hashes[i], hash, 64) != 0)
                continue;
            if (load_vector_from_binary(vec, vlen, matrix + (size_t)i * KB_LOAD_DIM)) {
                has_vector[i] = 1;
                (*n_found)++;
            }
        }
    }
    PQclear(res);
    return KB_OK;
}

/*
 * Rows of a source new to the run are looked up only when the store held
 * rows when the run began: a renamed file, or a second project over the
 * same text, reuses its vectors; a first import into an empty store has
 * nothing to find, and its lookups (a probe of the content_hash index per
 * row) would be pure server work.  Within one run, reuse stays best effort
 * (docs/loading.md).
 */
enum kb_code load_batch_reuse(struct load_session *s, struct load_batch *b, const char *model,
                              int *n_reused, struct kb_err *err)
{
    *n_reused = 0;
    struct db_conn *conn = s->read_conn ? s->read_conn : s->conn;
    const char **hashes = kb_xcalloc((size_t)b->n_rows + 1, sizeof *hashes);
    for (int i = 0; i < b->n_rows; i++)
        if (!(b->sources[b->rows[i].src_index].is_new && !s->has_stored_rows))
            hashes[i] = b->rows[i].chunk.content_hash;
    enum kb_code rc = load_reuse_lookup(conn, hashes, b->n_rows, model, b->matrix,
                                        b->has_vector, n_reused, err);
    free(hashes);
    s->counts.vectors_reused += *n_reused;
    return rc;
}

