/*
 * dedup_histogram.c - `kbpipe dedup --histogram`: how a project's learnings
 * sit against their nearest neighbours, to pick a dedup threshold by looking
 * instead of reading pairs one at a time (issue 16).
 *
 * The values are each learning's nearest-neighbour cosine similarity, exact
 * (load_dedup_nearest: all pairs by blocked sgemm, as the dedup pass itself
 * compares learnings; no HNSW approximation).  n_bins equal bins over
 * [0, 1]: bin k holds [k/n, (k+1)/n), the last one also 1; a value below 0
 * (an opposite neighbour) counts in the first.  On a terminal each bin is a
 * bar of Unicode blocks in eighths (U+2588 full, U+258F..U+2589 partial);
 * off a terminal the bar is '#' characters, so logs and pipes get ASCII:
 *
 *   0.90-0.95 |████████████▌                            5  <- threshold 0.900
 *   0.90-0.95 |#############                            5  <- threshold 0.900
 *
 * tests/integration/dedup_histogram.sh checks the counts and the marked pairs.
 */
#include "load/load_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define BAR_WIDTH 40   /* columns of the longest bar */

/* U+2588 and the left blocks U+258F (1/8) .. U+2589 (7/8), in UTF-8 */
static const char *const EIGHTHS[8] = {
    "\xe2\x96\x88", "\xe2\x96\x8f", "\xe2\x96\x8e", "\xe2\x96\x8d",
    "\xe2\x96\x8c", "\xe2\x96\x8b", "\xe2\x96\x8a", "\xe2\x96\x89",
};

/* A bar of count/max x BAR_WIDTH columns (a count above 0: at least one
 * eighth, or one '#'), padded with spaces to BAR_WIDTH columns. */
static void put_bar(FILE *out, long count, long max, int is_tty)
{
    long eighths = max > 0 ? (count * BAR_WIDTH * 8 + max / 2) / max : 0;
    if (count > 0 && eighths == 0)
        eighths = 1;
    long cols = 0;
    if (is_tty) {
        for (; eighths >= 8; eighths -= 8, cols++)
            fputs(EIGHTHS[0], out);
        if (eighths > 0) {
            fputs(EIGHTHS[eighths], out);
            cols++;
        }
    } else {
        long n = (eighths + 4) / 8;
        if (count > 0 && n == 0)
            n = 1;
        for (; cols < n; cols++)
            fputc('#', out);
    }
    for (; cols < BAR_WIDTH; cols++)
        fputc(' ', out);
}

/* See load.h. */
enum kb_code load_dedup_histogram_print(FILE *out, const char *project, const float *sims,
                                        int n, int n_bins, double threshold, int n_pairs,
                                        int is_json, int is_tty, struct kb_err *err)
{
    long *counts = kb_xcalloc((size_t)n_bins, sizeof *counts);
    long n_above = 0, max = 0;
    int n_with = 0, mark = (int)(threshold * n_bins);
    float lo = 2, hi = -2;
    if (mark >= n_bins)
        mark = n_bins - 1;
    for (int i = 0; i < n; i++) {
        if (sims[i] < -1.5f)
            continue;   /* a lone learning: no neighbour */
        int k = (int)((double)sims[i] * n_bins);
        k = k < 0 ? 0 : k >= n_bins ? n_bins - 1 : k;
        counts[k]++;
        n_with++;
        /* the pass compares in float against (float)threshold */
        n_above += sims[i] >= (float)threshold;
        lo = sims[i] < lo ? sims[i] : lo;
        hi = sims[i] > hi ? sims[i] : hi;
    }
    for (int k = 0; k < n_bins; k++)
        max = counts[k] > max ? counts[k] : max;
    if (is_json) {
        json_t *o = json_object(), *bins = json_array();
        for (int k = 0; k < n_bins; k++)
            json_array_append_new(bins, json_pack("{s:f, s:f, s:I}", "from", (double)k / n_bins,
                                                  "to", (double)(k + 1) / n_bins,
                                                  "count", (json_int_t)counts[k]));
        json_object_set_new(o, "project", json_string(project));
        json_object_set_new(o, "learnings", json_integer(n_with));
        json_object_set_new(o, "bins", bins);
        json_object_set_new(o, "threshold", json_real(threshold));
        json_object_set_new(o, "above_threshold", json_integer(n_above));
        json_object_set_new(o, "pairs_at_threshold", json_integer(n_pairs));
        json_object_set_new(o, "min", n_with ? json_real(lo) : json_null());
        json_object_set_new(o, "max", n_with ? json_real(hi) : json_null());
        json_dumpf(o, out, JSON_REAL_PRECISION(6) | JSON_INDENT(0) | JSON_COMPACT);
        fputc('\n', out);
        json_decref(o);
    } else {
        int digits = n_bins > 100 ? 3 : 2;
        fprintf(out, "nearest-neighbour similarity of %d learnings in '%s' (exact, all pairs)\n",
                n_with, project);
        for (int k = 0; k < n_bins; k++) {
            fprintf(out, "%.*f-%.*f |", digits, (double)k / n_bins, digits,
                    (double)(k + 1) / n_bins);
            put_bar(out, counts[k], max, is_tty);
            fprintf(out, " %ld", counts[k]);
            if (k == mark)
                fprintf(out, "  <- threshold %.3f", threshold);
            fputc('\n', out);
        }
        fprintf(out, "threshold %.3f: %ld learnings have a neighbour at or above it; "
                     "the mark pass would mark %d pairs\n", threshold, n_above, n_pairs);
    }
    free(counts);
    if (fflush(out) != 0 || ferror(out))
        return KB_FAIL(err, KB_E_IO, NULL, "dedup: writing the histogram failed (%s)",
                       strerror(errno));
    return KB_OK;
}
