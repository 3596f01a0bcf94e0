/*
 * similarity.c - the pairs above a cosine threshold among unit vectors, by
 * blocked matrix products (cblas_sgemm): for rows i of a block and all rows
 * j, S = M_block x M^T.  A block of 256 rows against n rows needs 256 x n
 * floats, so the product's memory stays bounded for any n while it runs at
 * BLAS speed.  Used by the dedup pass (src/load/dedup.c) for the learnings
 * of one run before they are compared with the database, and by
 * `kbpipe dedup --histogram` for each learning's nearest neighbour.
 *
 * The pairs themselves are bounded too: each row keeps only its
 * EMBED_PAIRS_PER_ROW most similar partners (over all other rows, not only
 * later ones), and a pair is reported when either of its rows kept it.  n
 * near-identical rows would otherwise give n^2/2 pairs (5,000 learnings of
 * one template: 12.5 million, 2.4 GB in the dedup pass); with the cap they
 * give at most EMBED_PAIRS_PER_ROW x n, and every row still has its best
 * matches, which is all the dedup pass uses (a duplicate is resolved to one
 * keeper, the most similar pairs first).
 */
#include "embed/embed_int.h"

#include <stdlib.h>

#define SIM_BLOCK 256

/* qsort order: by (i, j), then the higher similarity first. */
static int by_rows(const void *x, const void *y)
{
    const struct embed_pair *p = x, *q = y;
    if (p->i != q->i)
        return (p->i > q->i) - (p->i < q->i);
    if (p->j != q->j)
        return (p->j > q->j) - (p->j < q->j);
    return (p->similarity < q->similarity) - (p->similarity > q->similarity);
}

/* Insert (j, sim) into the row's top list best[0..*n) (most similar first). */
static void keep_best(struct embed_pair *best, int *n, int i, int j, float sim)
{
    int at = *n < EMBED_PAIRS_PER_ROW ? *n : EMBED_PAIRS_PER_ROW - 1;
    if (*n == EMBED_PAIRS_PER_ROW && best[at].similarity >= sim)
        return;   /* not better than the worst kept */
    while (at > 0 && best[at - 1].similarity < sim) {
        best[at] = best[at - 1];
        at--;
    }
    best[at] = (struct embed_pair){ i < j ? i : j, i < j ? j : i, sim };
    if (*n < EMBED_PAIRS_PER_ROW)
        (*n)++;
}

/* See embed.h. */
int embed_similar_pairs(const float *m, int n, int dim, float threshold,
                        struct embed_pair **pairs_out)
{
    struct embed_pair *pairs = NULL, best[EMBED_PAIRS_PER_ROW];
    int n_pairs = 0, cap = 0;
    float *s = kb_xmalloc((size_t)SIM_BLOCK * (size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int i0 = 0; i0 < n; i0 += SIM_BLOCK) {
        int rows = n - i0 < SIM_BLOCK ? n - i0 : SIM_BLOCK;
        /* S[rows x n] = M[i0 .. i0+rows) x M^T */
        embed_blas()->sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, dim, 1.0f,
                    m + (size_t)i0 * dim, dim, m, dim, 0.0f, s, n);
        for (int r = 0; r < rows; r++) {
            int i = i0 + r, n_best = 0;
            for (int j = 0; j < n; j++) {
                float sim = s[(size_t)r * n + j];
                if (j != i && sim >= threshold)
                    keep_best(best, &n_best, i, j, sim);
            }
            if (n_pairs + n_best > cap) {
                cap = cap ? cap * 2 : 64;
                if (cap < n_pairs + n_best)
                    cap = n_pairs + n_best;
                pairs = kb_xrealloc(pairs, (size_t)cap * sizeof *pairs);
            }
            for (int k = 0; k < n_best; k++)
                pairs[n_pairs++] = best[k];
        }
    }
    free(s);
    /* a pair both rows kept appears twice: keep one, in row order */
    if (n_pairs > 1)
        qsort(pairs, (size_t)n_pairs, sizeof *pairs, by_rows);
    int kept = 0;
    for (int k = 0; k < n_pairs; k++)
        if (kept == 0 || pairs[kept - 1].i != pairs[k].i || pairs[kept - 1].j != pairs[k].j)
            pairs[kept++] = pairs[k];
    if (kept == 0) {
        free(pairs);
        pairs = NULL;
    }
    *pairs_out = pairs;
    return kept;
}

/* See embed.h. */
void embed_nearest_similarity(const float *m, int n, int dim, float *best)
{
    float *s = kb_xmalloc((size_t)SIM_BLOCK * (size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int i = 0; i < n; i++)
        best[i] = -2.0f;   /* below any cosine: "no neighbour" */
    for (int i0 = 0; i0 < n; i0 += SIM_BLOCK) {
        int rows = n - i0 < SIM_BLOCK ? n - i0 : SIM_BLOCK;
        embed_blas()->sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, dim, 1.0f,
                    m + (size_t)i0 * dim, dim, m, dim, 0.0f, s, n);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++)
                if (j != i0 + r && s[(size_t)r * n + j] > best[i0 + r])
                    best[i0 + r] = s[(size_t)r * n + j];
    }
    free(s);
}
