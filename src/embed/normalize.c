/*
 * normalize.c - check and L2-normalize vectors with CBLAS, whatever the
 * provider.  Every vector kbpipe stores goes through embed_normalize_one().
 *
 * The squared norm is cblas_dsdot(x, x): float inputs, double accumulation,
 * as pgvector's l2_normalize accumulates in double; the row is then scaled
 * by cblas_sscal(1 / norm).  In double, squares of finite floats never
 * overflow (FLT_MAX^2 * 1536 < DBL_MAX), so a non-finite sum means the row
 * holds NaN or Inf, and only then is the row scanned to say where.  The
 * result is unit length within a few float ulps (tested at 1e-6).
 */
#include "embed/embed_int.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>

/* Below this norm 1/norm is not a useful float: the vector counts as zero. */
#define MIN_NORM 1e-30

int embed_normalize_one(float *v, int dim, char *why, size_t why_len)
{
    if (dim != KB_EMBED_DIM) {
        snprintf(why, why_len, "has %d dimensions, kbpipe stores %d", dim, KB_EMBED_DIM);
        return 1;
    }
    double sumsq = cblas_dsdot(dim, v, 1, v, 1);
    if (!isfinite(sumsq)) {
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
        snprintf(why, why_len, "has a norm too large to compute");
        return 1;
    }
    double norm = sqrt(sumsq);
    if (norm < MIN_NORM) {
        snprintf(why, why_len, "is a zero vector (norm %.3g)", norm);
        return 1;
    }
    cblas_sscal(dim, (float)(1.0 / norm), v, 1);
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
