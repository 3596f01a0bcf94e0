/*
 * normalize.c - check and L2-normalize vectors, whatever the provider.
 * Every vector kbpipe stores goes through embed_normalize_one().
 *
 * The squared norm is the sum, in double, of each element's square taken in
 * float (what cblas_dsdot(x, x) of OpenBLAS computes, and pgvector's
 * l2_normalize accumulates in double too); the row is then multiplied by
 * the float 1 / norm (cblas_sscal).  Squares in float overflow above ~1.8e19
 * and turn into denormals below ~1e-19: when the sum is not finite or below
 * 1e-24, the row is scanned (NaN and Inf are refused there, with their
 * position), scaled by 1 / its largest element (the first, as
 * cblas_isamax) and summed again.  Realistic embeddings never take that
 * path.  The result is unit length within a few float ulps (tested at
 * 1e-6 over scales 1e-20 to 1e30).
 *
 * These three loops were CBLAS calls (OpenBLAS, opened at the first
 * vector): for one vector of 1536 floats, a few microseconds, they cost
 * each process that normalized anything the library's loading and
 * initialization and the spinning of its thread pool (about 25 ms of CPU
 * for `kbpipe search`, docs/search.md "Cost"), so OpenBLAS is now opened
 * only for matrix products (similarity.c).  The floats are not always
 * OpenBLAS's: its kernels (chosen per CPU) sum in another order, so the
 * float 1/norm differs by one ulp for a few percent of vectors, every
 * element within 2 ulps (tests/unit/test_embed.c); these loops give the
 * same floats on every machine (no FMA contraction under -std=c11).
 */
#include "embed/embed_int.h"

#include <math.h>
#include <stdio.h>

/* A vector whose largest element is below this counts as zero. */
#define MIN_NORM 1e-30
/* Below this sum of squares the products lose precision as float denormals. */
#define RESCALE_BELOW 1e-24

/* cblas_dsdot(n, x, 1, x, 1): squares in float, their sum in double. */
static double sum_squares(const float *v, int n)
{
    double sum = 0.0;
    for (int j = 0; j < n; j++) {
        float sq = v[j] * v[j];
        sum += (double)sq;
    }
    return sum;
}

/* cblas_isamax: the first index of the largest |v[j]|. */
static int index_of_max(const float *v, int n)
{
    int at = 0;
    float max = fabsf(v[0]);
    for (int j = 1; j < n; j++)
        if (fabsf(v[j]) > max) {
            max = fabsf(v[j]);
            at = j;
        }
    return at;
}

/* cblas_sscal: v *= alpha, in float. */
static void scale(float *v, int n, float alpha)
{
    for (int j = 0; j < n; j++)
        v[j] *= alpha;
}

int embed_normalize_one(float *v, int dim, char *why, size_t why_len)
{
    if (dim != KB_EMBED_DIM) {
        snprintf(why, why_len, "has %d dimensions, kbpipe stores %d", dim, KB_EMBED_DIM);
        return 1;
    }
    double sumsq = sum_squares(v, dim);
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
        double amax = fabs(v[index_of_max(v, dim)]);
        if (amax < MIN_NORM) {
            snprintf(why, why_len, "is a zero vector (largest element %.3g)", amax);
            return 1;
        }
        scale(v, dim, (float)(1.0 / amax));
        sumsq = sum_squares(v, dim);
    }
    scale(v, dim, (float)(1.0 / sqrt(sumsq)));
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
