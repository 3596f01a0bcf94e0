/*
 * report.c - the end-of-run report: a summary table for people (on stderr
 * unless -q, as pgloader prints one) and the same facts as JSON for
 * `--report FILE` and the kbpipe_runs.report column.
 *
 *   source       read  unchanged  changed  new  chunks  computed  reused  imported  rejected  skipped  seconds
 *   -----------  ----  ---------  -------  ---  ------  --------  ------  --------  --------  -------  -------
 *   docs           18         17        1    0       3         1       2         0         0        1      0.2
 *   -----------  ----  ---------  -------  ---  ------  --------  ------  --------  --------  -------  -------
 *   total          18         17        1    0       3         1       2         0         0        1      0.2
 *
 * A run that stopped (failed, interrupted) prints no table: its columns
 * count what was queued, and the batch being filled was never written.  It
 * prints what was committed instead (tests/integration/run_report.sh).
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pipeline_int.h"

static void rule(FILE *out, const int *w, int n)
{
    for (int c = 0; c < n; c++) {
        for (int i = 0; i < w[c]; i++)
            fputc('-', out);
        fputs(c + 1 < n ? "  " : "\n", out);
    }
}

static void row(FILE *out, const int *w, const char *name, const struct run_source_stats *s)
{
    fprintf(out, "%-*s  %*ld  %*ld  %*ld  %*ld  %*ld  %*ld  %*ld  %*ld  %*ld  %*ld  %*.1f\n", w[0],
            name, w[1], s->read, w[2], s->unchanged, w[3], s->changed, w[4], s->added, w[5],
            s->chunks, w[6], s->vectors_computed, w[7], s->vectors_reused, w[8],
            s->vectors_imported, w[9], s->rejected, w[10], s->skipped, w[11], s->seconds);
}

/* See pipeline_int.h. */
void run_report_print(const struct run_report *r, FILE *out)
{
    static const char *const head[] = { "source", "read", "unchanged", "changed", "new",
                                        "chunks", "computed", "reused", "imported",
                                        "rejected", "skipped", "seconds" };
    if (!r->is_dry_run && (strcmp(r->status, "failed") == 0 ||
                           strcmp(r->status, "interrupted") == 0)) {
        fprintf(out, "the run stopped (%s); written before the stop: %ld batch(es), %ld "
                     "source(s), %ld chunk(s), %ld learning(s); nothing read after the last of "
                     "them was written\n", r->status, r->load.batches, r->load.sources_written,
                r->load.chunks_written, r->load.learnings_written);
        if (r->rejected && r->reject_file)
            fprintf(out, "%ld input(s) rejected; see %s\n", r->rejected, r->reject_file);
        return;
    }
    int w[12];
    for (int c = 0; c < 12; c++)
        w[c] = (int)strlen(head[c]);
    struct run_source_stats total = { 0 };
    for (int i = 0; i < r->n_sources; i++) {
        const struct run_source_stats *s = &r->sources[i];
        if ((int)strlen(s->name) > w[0])
            w[0] = (int)strlen(s->name) > 40 ? 40 : (int)strlen(s->name);
        total.read += s->read;
        total.unchanged += s->unchanged;
        total.changed += s->changed;
        total.added += s->added;
        total.chunks += s->chunks;
        total.vectors_computed += s->vectors_computed;
        total.vectors_reused += s->vectors_reused;
        total.vectors_imported += s->vectors_imported;
        total.rejected += s->rejected;
        total.skipped += s->skipped;
        total.seconds += s->seconds;
    }
    if (w[0] < 5)
        w[0] = 5;
    for (int c = 0; c < 12; c++)
        fprintf(out, c == 0 ? "%-*s" : "  %*s", w[c], head[c]);
    fputc('\n', out);
    rule(out, w, 12);
    for (int i = 0; i < r->n_sources; i++)
        row(out, w, r->sources[i].name, &r->sources[i]);
    rule(out, w, 12);
    total.seconds = r->seconds;   /* the run's wall time, not the sources' sum */
    row(out, w, "total", &total);
    fprintf(out, "phases:");
    for (int ph = 0; ph < RUN_N_PHASES; ph++)
        fprintf(out, " %s %.1f s%s", run_phase_name((enum run_phase)ph), r->phase_seconds[ph],
                ph + 1 < RUN_N_PHASES ? "," : "");
    fprintf(out, "; total %.1f s (wall)\n", r->seconds);
    if (r->load.sources_deleted || r->deleted_planned)
        fprintf(out, "%s %ld source(s) the run did not see (--full)\n",
                r->is_dry_run ? "would delete" : "deleted",
                r->is_dry_run ? r->deleted_planned : r->load.sources_deleted);
    if (r->load.index_rebuilt)
        fprintf(out, "the HNSW index was dropped for the load and rebuilt\n");
    if (r->has_dedup)
        fprintf(out, "dedup (%s, threshold %.3f): %d learning(s) checked, %d duplicate pair(s), "
                     "%d marked, %d merged\n",
                r->dedup.action, r->dedup.threshold, r->dedup.n_candidates, r->dedup.n_pairs,
                r->dedup.n_marked, r->dedup.n_merged);
    if (r->rejected && r->reject_file)
        fprintf(out, "%ld input(s) rejected; see %s\n", r->rejected, r->reject_file);
}

static json_t *source_json(const struct run_source_stats *s)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
                     "name", s->name, "read", (json_int_t)s->read,
                     "unchanged", (json_int_t)s->unchanged, "changed", (json_int_t)s->changed,
                     "new", (json_int_t)s->added, "out_of_shard", (json_int_t)s->out_of_shard,
                     "chunks", (json_int_t)s->chunks,
                     "vectors_computed", (json_int_t)s->vectors_computed,
                     "vectors_reused", (json_int_t)s->vectors_reused,
                     "vectors_imported", (json_int_t)s->vectors_imported,
                     "rejected", (json_int_t)s->rejected, "skipped", (json_int_t)s->skipped,
                     "files_unread", (json_int_t)s->files_unread, "seconds", s->seconds);
}

/* Every real of a report rounded to the millisecond (3 decimals): no raw
 * float such as 5.9999990753567545e-8 reaches a reader. */
static void round_reals(json_t *j)
{
    const char *key;
    json_t *v;
    size_t i;
    if (json_is_real(j)) {
        json_real_set(j, round(json_real_value(j) * 1000.0) / 1000.0 + 0.0);   /* no -0 */
    } else if (json_is_object(j)) {
        json_object_foreach(j, key, v)
            round_reals(v);
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v)
            round_reals(v);
    }
}

/* See pipeline_int.h. */
char *run_report_json(const struct run_report *r)
{
    json_t *sources = json_array();
    for (int i = 0; i < r->n_sources; i++)
        json_array_append_new(sources, source_json(&r->sources[i]));
    /* src/load's counts, as kbpipe_runs.counts has them; a dry run's
     * sources_deleted is what --full would delete */
    struct load_counts c = r->load;
    if (r->is_dry_run)
        c.sources_deleted = r->deleted_planned;
    char *counts = load_counts_json(&c);
    json_t *load = json_loads(counts, 0, NULL);
    free(counts);
    json_t *root = json_pack("{s:i, s:s, s:s, s:s?, s:s, s:s, s:f, s:b, s:b, s:s?, s:o, s:o, s:I, "
                             "s:s?, s:s?}", "report_version", RUN_REPORT_VERSION,
                             "kbpipe_version", KB_VERSION, "pipeline", r->pipeline, "project", r->project,
                             "status", r->status, "started_at", r->started_at,
                             "seconds", r->seconds, "dry_run", r->is_dry_run,
                             "full", r->is_full, "embedding_model", r->embedding_model,
                             "sources", sources, "load", load,
                             "rejected", (json_int_t)r->rejected,
                             "reject_file", r->reject_file, "error", r->error);
    json_object_set_new(root, "load_seconds", json_real(r->load_seconds));
    json_object_set_new(root, "finish_seconds", json_real(r->finish_seconds));
    json_t *phases = json_object();
    for (int ph = 0; ph < RUN_N_PHASES; ph++)
        json_object_set_new(phases, run_phase_name((enum run_phase)ph),
                            json_real(r->phase_seconds[ph]));
    json_object_set_new(root, "phases", phases);
    if (r->shard_n > 0)
        json_object_set_new(root, "shard", json_pack("{s:i, s:i}", "k", r->shard_k,
                                                     "n", r->shard_n));
    if (r->has_dedup)
        json_object_set_new(root, "dedup",
                            json_pack("{s:s, s:f, s:i, s:i, s:i, s:i}", "action", r->dedup.action,
                                      "threshold", r->dedup.threshold,
                                      "candidates", r->dedup.n_candidates,
                                      "pairs", r->dedup.n_pairs, "marked", r->dedup.n_marked,
                                      "merged", r->dedup.n_merged));
    round_reals(root);
    /* 15 significant digits print a rounded 0.124 as 0.124, not 0.12399999999999999 */
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(root);
    char *out = kb_xstrdup(text ? text : "{}");
    free(text);
    return out;
}
/* See pipeline_int.h. */
void run_iso_now(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* See pipeline_int.h. */
enum kb_code run_report_write(const char *path, const char *json, struct kb_err *err)
{
    if (strcmp(path, "-") == 0) {
        fputs(json, stdout);
        fputc('\n', stdout);
        return KB_OK;
    }
    /* the report's folder is made when missing (build/reports/ on a new clone) */
    char *dir = kb_xstrdup(path);
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0777);   /* EEXIST is fine; a real failure shows at fopen */
            *p = '/';
        }
    free(dir);
    char *tmp = kb_xasprintf("%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    enum kb_code rc = KB_OK;
    if (f == NULL || fputs(json, f) < 0 || fputc('\n', f) < 0 || fclose(f) != 0) {
        rc = KB_FAIL_AT(err, KB_E_IO, path, "cannot write the report; check the folder exists "
                                            "and is writable");
        unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        rc = KB_FAIL_AT(err, KB_E_IO, path, "cannot move the report into place");
        unlink(tmp);
    }
    free(tmp);
    return rc;
}
