/*
 * similarity.c - all pairs above a cosine threshold among unit vectors, by
 * blocked matrix products (cblas_sgemm): for rows i of a block and all rows
 * j > i, S = M_block x M^T.  A block of 256 rows against n rows needs
 * 256 x n floats, so memory stays bounded for any n while the product runs
 * at BLAS speed.  Used by the dedup pass (src/load/dedup.c) for the
 * learnings of one run before they are compared with the database.
 */
#include "embed/embed.h"

#include <cblas.h>
#include <stdlib.h>

#define SIM_BLOCK 256

/* See embed.h. */
int embed_similar_pairs(const float *m, int n, int dim, float threshold,
                        struct embed_pair **pairs_out)
{
    struct embed_pair *pairs = NULL;
    int n_pairs = 0, cap = 0;
    float *s = kb_xmalloc((size_t)SIM_BLOCK * (size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int i0 = 0; i0 < n; i0 += SIM_BLOCK) {
        int rows = n - i0 < SIM_BLOCK ? n - i0 : SIM_BLOCK;
        /* S[rows x n] = M[i0 .. i0+rows) x M^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, dim, 1.0f,
                    m + (size_t)i0 * dim, dim, m, dim, 0.0f, s, n);
        for (int r = 0; r < rows; r++) {
            int i = i0 + r;
            for (int j = i + 1; j < n; j++) {
                float sim = s[(size_t)r * n + j];
                if (sim < threshold)
                    continue;
                if (n_pairs == cap) {
                    cap = cap ? cap * 2 : 64;
                    pairs = kb_xrealloc(pairs, (size_t)cap * sizeof *pairs);
                }
                pairs[n_pairs].i = i;
                pairs[n_pairs].j = j;
                pairs[n_pairs].similarity = sim;
                n_pairs++;
            }
        }
    }
    free(s);
    *pairs_out = pairs;
    return n_pairs;
}
