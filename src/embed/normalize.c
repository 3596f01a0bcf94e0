/*
 * normalize.c - check and L2-normalize vectors with CBLAS, whatever the
 * provider.  Every vector kbpipe stores goes through embed_normalize_one().
 *
 * The squared norm is cblas_dsdot(x, x) (a double result, as pgvector's
 * l2_normalize accumulates in double); the row is then scaled by
 * cblas_sscal(1 / norm).  OpenBLAS's dsdot multiplies in float, so squares
 * overflow above ~1.8e19 and turn into denormals below ~1e-19: when the sum
 * is not finite or below 1e-24, the row is scanned (NaN and Inf are
 * refused there, with their position), scaled by 1 / its largest element
 * (cblas_isamax) and summed again.  Realistic embeddings never take that
 * path.  The result is unit length within a few float ulps (tested at
 * 1e-6 over scales 1e-20 to 1e30).
 */
#include "embed/embed_int.h"

#include <math.h>
#include <stdio.h>

/* A vector whose largest element is below this counts as zero. */
#define MIN_NORM 1e-30
/* Below this sum of squares the products lose precision as float denormals. */
#define RESCALE_BELOW 1e-24

int embed_normalize_one(float *v, int dim, char *why, size_t why_len)
{
    if (dim != KB_EMBED_DIM) {
        snprintf(why, why_len, "has %d dimensions, kbpipe stores %d", dim, KB_EMBED_DIM);
        return 1;
    }
    const struct embed_blas *b = embed_blas();   /* blas.c: OpenBLAS, loaded at first use */
    double sumsq = b->dsdot(dim, v, 1, v, 1);
    if (!isfinite(sumsq) || sumsq < RESCALE_BELOW) {
        for (int j = 0; j < dim; j++) {
            if (isnan(v[j])) {
                snprintf(why, why_len, "contains NaN at element %d", j);
                return 1;
            }
            if (isinf(v[j])) {
                snprintf(why, why_len, "contains %sInf at element %d", v[j] < 0 ? "-" : "", j);
                return 1;
            }
        }
        /* finite but huge or tiny: scale the largest element to 1 first */
        double amax = fabs(v[b->isamax(dim, v, 1)]);
        if (amax < MIN_NORM) {
            snprintf(why, why_len, "is a zero vector (largest element %.3g)", amax);
            return 1;
        }
        b->sscal(dim, (float)(1.0 / amax), v, 1);
        sumsq = b->dsdot(dim, v, 1, v, 1);
    }
    b->sscal(dim, (float)(1.0 / sqrt(sumsq)), v, 1);
    return 0;
}

enum kb_code embed_normalize_rows(float *m, int n, int dim, const char *const *origins,
                                  struct kb_err *err)
{
    char why[96];
    for (int i = 0; i < n; i++) {
        /* with a wrong dim the row stride is dim, so rows still line up */
        if (embed_normalize_one(m + (size_t)i * (size_t)(dim > 0 ? dim : 0), dim, why,
                                sizeof why) != 0)
            return KB_FAIL_AT(err, KB_E_INPUT, origins ? origins[i] : NULL,
                              "vector %s; kbpipe rejects it (check the embedding provider "
                              "or the vectors file)", why);
    }
    return KB_OK;
}
