/*
 * cmd_run.c - `kbpipe run` and `kbpipe plan`: the main job, end to end.
 *
 *   pipeline YAML -> sources -> documents -> unchanged? skip -> chunks
 *     -> batch -> reuse stored vectors -> embed the rest -> normalize
 *     -> flush (one transaction per batch) -> ... -> dedup the learnings
 *     the run touched -> --full deletions, index rebuild -> report
 *
 * Per document the reader, chunker and hasher work in one arena that is
 * reset after the document; the batch copies what it keeps, so memory is
 * bounded by the batch size, never by the corpus.  This file holds the
 * arguments, opening and closing a run and the source loop, and is the
 * only place that prints the run's summary, writes rejects and applies
 * on_error.  The phases live beside it: run_document.c (a document into the
 * batch), run_flush.c (vectors and the writer thread), run_options.c (the
 * pipeline as module options), report.c, export_batch.c.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline_int.h"


static const char RUN_USAGE[] =
    "usage: kbpipe run PIPELINE.yaml [--dry-run] [--full] [--checksum] [--shard K/N]\n"
    "                  [--report FILE.json] [--no-wait] [-q|-v]\n"
    "\n"
    "Run a pipeline: read its sources, skip what is unchanged, chunk, embed and\n"
    "load the rest with binary COPY (one transaction per batch), then dedup the\n"
    "learnings it touched.  A second run over an unchanged corpus writes nothing.\n"
    "\n"
    "  --dry-run        read and compare only: count what would be added, updated,\n"
    "                   skipped and deleted, and the vectors to compute; no writes\n"
    "  --full           also delete the pipeline's sources this run did not see,\n"
    "                   after the whole scan succeeded (same as mode: full); an\n"
    "                   API source (type: github) is fetched whole, without since\n"
    "  --checksum       read and hash every file, even those whose stat (size,\n"
    "                   mtime, ctime, inode) is unchanged since the last run\n"
    "  --shard K/N      only the Kth of N deterministic partitions of the sources\n"
    "                   (docs/scaling.md)\n"
    "  --report FILE    write the JSON run report to FILE ('-': stdout); it is also\n"
    "                   stored in kbpipe_runs\n"
    "  --no-wait        exit 1 at once if another run of this pipeline holds its\n"
    "                   lock, instead of waiting for it\n"
    "  --export-batch F a dry run that writes the Batch API request file F for the\n"
    "                   chunks with no vector (as 'kbpipe embed export')\n"
    "  -q, -v           nothing but errors / more detail\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 a pipeline that cannot be read or is\n"
    "invalid, or usage, 3 finished with rejected inputs (see the reject file),\n"
    "130/143 interrupted (SIGINT/SIGTERM).\n"
    "\n"
    "Example:\n"
    "  kbpipe run pipelines/docs.yaml -q --report build/reports/docs.json\n";

static const char PLAN_USAGE[] =
    "usage: kbpipe plan PIPELINE.yaml [--full] [--shard K/N]\n"
    "\n"
    "Print what 'kbpipe run' would do, per source: documents it would add, update\n"
    "and skip as unchanged, chunks it would write and vectors it would compute or\n"
    "reuse, and with --full the sources it would delete.  Writes nothing (it is\n"
    "'kbpipe run --dry-run' with the table on stdout).\n"
    "\n"
    "Example:\n"
    "  kbpipe plan pipelines/docs.yaml\n";

/* See pipeline_int.h. */
enum kb_code run_parse_shard(const char *s, int *k, int *n, struct kb_err *err)
{
    char *end;
    long kk = strtol(s, &end, 10), nn = 0;
    if (*end == '/')
        nn = strtol(end + 1, &end, 10);
    if (*end || nn < 1 || nn > 100000 || kk < 1 || kk > nn)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "--shard '%.40s' is not K/N with 1 <= K <= N; e.g. --shard 2/4", s);
    *k = (int)kk;
    *n = (int)nn;
    return KB_OK;
}

/* run/plan options into *a; KB_PARTIAL after --help (printed), KB_E_USAGE on a bad one. */
static enum kb_code parse_args(int argc, char **argv, struct pipeline_run_args *a,
                               struct kb_err *err)
{
    static const struct option longopts[] = {
        { "dry-run", no_argument, NULL, 'n' },   { "full", no_argument, NULL, 'f' },
        { "shard", required_argument, NULL, 's' }, { "report", required_argument, NULL, 'r' },
        { "no-wait", no_argument, NULL, 'w' },   { "help", no_argument, NULL, 'h' },
        { "export-batch", required_argument, NULL, 'x' },
        { "checksum", no_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        enum kb_code rc;
        switch (c) {
        case 'n': a->is_dry_run = 1; break;
        case 'f': a->is_full = 1; break;
        case 's':
            if ((rc = run_parse_shard(optarg, &a->shard_k, &a->shard_n, err)) != KB_OK)
                return rc;
            break;
        case 'r': a->report_path = optarg; break;
        case 'w': a->no_wait = 1; break;
        case 'c': a->is_checksum = 1; break;
        case 'x': a->export_path = optarg; a->is_dry_run = 1; break;
        case 'h': fputs(a->is_plan ? PLAN_USAGE : RUN_USAGE, stdout); return KB_PARTIAL;
        default:
            return kb_cli_unknown_option(a->is_plan ? "plan" : "run", argv[optind - 1], longopts,
                                         err);
        }
    }
    if (argc - optind != 1)
        return KB_FAIL(err, KB_E_USAGE, NULL, "%s needs one PIPELINE.yaml; see 'kbpipe %s --help'",
                       a->is_plan ? "plan" : "run", a->is_plan ? "plan" : "run");
    a->path = argv[optind];
    if (a->is_plan)
        a->is_dry_run = 1;
    return KB_OK;
}

/* One pipeline source, start to end.  KB_OK also when inputs were rejected. */
static enum kb_code run_source(struct run *r, int si, struct kb_err *err)
{
    const struct ingest_source *src = &r->p->sources[si];
    struct run_source_stats *st = &r->stats[si];
    double t0 = kb_now();
    struct ingest_reader *rd = NULL;
    long rejected_before = st->rejected;
    int is_skipped = 0;
    enum kb_code rc = run_stat_skip_file(r, si, &is_skipped, err);
    if (rc == KB_OK && is_skipped) {
        log_info("source %s: %s unchanged (its stat and stored sources), not opened",
                  src->name, ingest_source_path(src));
        st->seconds = kb_now() - t0;
        return KB_OK;
    }
    if (rc == KB_OK)
        rc = ingest_open(src, ".", &rd, err);
    if (rc == KB_OK)
        rc = run_marks_give(r, src, rd, err);
    if (rc == KB_OK)
        run_stat_hook(r, si, rd);
    if (rc != KB_OK) {
        ingest_close(rd);
        kb_err_prefix(err, "source %s", src->name);
        return rc;
    }
    for (;;) {
        struct kb_document *doc = NULL;
        if (kb_signal_received()) {   /* SIGINT/SIGTERM: take no new document */
            rc = KB_E_INTERRUPTED;
            break;
        }
        rc = ingest_next(rd, r->arena, &doc, err);
        if (rc == KB_OK && doc == NULL) {
            run_marks_take(r, src, rd);
            break;
        }
        int from_reader = rc != KB_OK;
        r->is_duplicate = 0;
        r->is_flush_failed = 0;
        r->is_doc_dropped = 0;
        if (rc == KB_OK)
            rc = run_add_document(r, si, doc, err);
        if (r->is_doc_dropped)   /* rejected and counted by run_embed: go on */
            rc = KB_OK;
        const struct ingest_bad *bad = rc == KB_E_INPUT && from_reader ? ingest_last_bad(rd)
                                                                       : NULL;
        if (rc == KB_E_INPUT && !r->is_flush_failed &&
            (src->on_error == INGEST_ON_ERROR_SKIP || r->is_duplicate)) {
            /* a bad input: to the reject file, counted, and on to the next */
            struct kb_err werr = { 0 };
            if (!r->args->is_dry_run &&
                ingest_rejects_add(r->rejects, src->name, err, bad, &werr) != KB_OK) {
                *err = werr;
                rc = KB_E_IO;
            } else {
                log_warn("%s%s%s (skipped: %s)", err->origin, err->origin[0] ? ": " : "",
                         err->msg, r->is_duplicate == 2 ? "another pipeline's source"
                                   : r->is_duplicate ? "a duplicate" : "on_error is skip");
                st->rejected++;
                r->rejected++;
                rc = run_over_max_errors(r, si, err);
            }
        }
        /* the batch holds copies of what it keeps: the document goes before
         * the flush, whose look-ahead may read a second large input */
        kb_arena_reset(r->arena);
        if (rc == KB_OK && load_batch_is_full(r->batch))
            rc = run_flush_batch(r, err);
        if (rc != KB_OK)
            break;
        r->docs_done++;
        run_progress_log(r, src->name);
    }
    const struct ingest_stats *is = ingest_reader_stats(rd);
    st->skipped = is->n_skipped;
    run_stat_file_done(r, si, rc == KB_OK && st->rejected == rejected_before &&
                                  is->n_skipped == 0);
    if (src->type == INGEST_FILES && r->filestats)
        log_info("source %s: %ld file(s) unchanged by their stat, not opened; %ld read",
                  src->name, st->files_unread, st->read - st->files_unread);
    if (is->n_skipped)
        log_info("source %s: %ld input(s) skipped with a note; last: %s", src->name,
                 is->n_skipped, is->last_note);
    ingest_close(rd);
    st->seconds = kb_now() - t0;
    if (rc != KB_OK && rc != KB_E_INPUT && rc != KB_E_INTERRUPTED)
        kb_err_prefix(err, "source %s", src->name);
    return rc;
}


/* Open everything a run needs before the first document. */
static enum kb_code run_open(struct run *r, struct kb_err *err)
{
    enum kb_code rc = pipeline_load(r->args->path, &r->p, err);
    if (rc == KB_OK)
        rc = pipeline_check_run(r->p, ".", err);
    if (rc == KB_E_CONFIG && r->p) {
        pipeline_diags_print(r->p, stderr);
        return rc;
    }
    if (rc != KB_OK)
        return rc;
    run_chunk_opts(r->p, &r->copts);
    if ((rc = chunk_opts_check(&r->copts, err)) != KB_OK)
        return rc;
    chunk_opts_signature(&r->copts, r->chunker_sig);
    if (r->args->export_path &&
        (rc = pipeline_export_open(r->args->export_path, r->p, &r->export, err)) != KB_OK)
        return rc;
    if ((rc = run_embedder_open(r, err)) != KB_OK)
        return rc;
    if (r->p->connection && kb_cli.db == NULL)
        kb_cli.db = r->p->connection;
    /* deferred: load_session_open's first statement is the session's setup */
    if ((rc = db_open_deferred(&r->conn, err)) != KB_OK)
        return rc;
    struct load_opts lo;
    run_load_opts(r->p, r->args, &lo, r->lock_name, sizeof r->lock_name);
    if ((rc = load_session_open(r->conn, &lo, &r->sess, err)) != KB_OK)
        return rc;
    r->batch = load_batch_new(r->sess);
    r->spare = load_batch_new(r->sess);
    r->arena = kb_arena_new();
    r->stats = kb_xcalloc((size_t)(r->p->n_sources ? r->p->n_sources : 1), sizeof *r->stats);
    for (int i = 0; i < r->p->n_sources; i++)
        r->stats[i].name = r->p->sources[i].name;
    if ((rc = run_stat_open(r, err)) != KB_OK || (rc = run_stat_check_headers(r, err)) != KB_OK)
        return rc;
    /* the second connection (reuse lookups) is opened by the first flush:
     * an unchanged re-run never needs it (run_flush.c) */
    if (!r->args->is_dry_run && (rc = run_writer_start(r, err)) != KB_OK)
        return rc;
    if (!r->args->is_dry_run) {
        char *path = r->p->reject_file ? kb_xstrdup(r->p->reject_file)
                                       : kb_xasprintf("build/rejects/%s.jsonl", r->p->name);
        rc = ingest_rejects_open(path, &r->rejects, err);
        free(path);
    }
    return rc;
}

/* Stop the writer and free everything run_open made (any part may be missing). */
static void run_close(struct run *r)
{
    struct kb_err ignored;
    run_ticker_stop(r);
    if (r->rejects)
        ingest_rejects_close(r->rejects, &ignored);
    run_writer_stop(r, &ignored);
    load_batch_free(r->batch);
    load_batch_free(r->spare);
    db_close(r->read_conn);
    kb_arena_free(r->arena);
    embed_embedder_free(r->emb);
    pipeline_export_free(r->export);
    free(r->erows);
    chunk_tokenizer_free(r->tok);
    db_close(r->conn);
    pipeline_free(r->p);
    free(r->stats);
    free(r->row_stat);
    load_filestats_free(r->filestats);
    free(r->settings);
    kb_buf_release(&r->planned);
    load_marks_release(&r->marks);
}

/* See pipeline.h. */
enum kb_code pipeline_run(const struct pipeline_run_args *a, struct kb_err *err)
{
    struct run r = { 0 };
    r.args = a;
    r.started = kb_now();
    kb_signals_catch();   /* signal.c: the first SIGINT/SIGTERM stops the run cleanly */
    r.is_tty = isatty(2);
    struct run_report rep = { 0 };
    run_iso_now(rep.started_at, sizeof rep.started_at);
    enum kb_code rc = run_open(&r, err);
    if (rc != KB_OK) {
        if (r.sess)
            load_session_close(r.sess, "failed", NULL, &(struct kb_err){ 0 });
        r.sess = NULL;
        run_close(&r);
        return rc;
    }
    /* an earlier --full run killed before its deletions left them to this
     * one; r.is_full also keeps API sources from fetching incrementally,
     * which a --full scan must not (what was not fetched would be deleted) */
    int is_full = r.is_full = a->is_full || r.p->mode == PIPELINE_FULL ||
                              load_session_owes_full(r.sess);
    run_ticker_start(&r);
    for (int i = 0; i < r.p->n_sources && rc == KB_OK; i++)
        rc = run_source(&r, i, err);
    r.is_scan_done = 1;
    run_phase(&r, RUN_LOADING);
    if (rc == KB_OK)
        rc = run_flush_batch(&r, err);
    /* interrupted: the batch being filled is dropped, the one the writer
     * has commits or rolls back; dedup, deletions and the index rebuild
     * stay owed (kbpipe_pending, kbpipe_dropped_indexes) to the next run */
    if (rc == KB_OK && r.export)
        rc = pipeline_export_finish(r.export, err);
    /* every batch written (or the first failure) before what comes next */
    struct kb_err werr = { 0 };
    enum kb_code wrc = run_writer_stop(&r, &werr);
    if (wrc != KB_OK && (rc == KB_OK || rc == KB_E_DB)) {
        *err = werr;
        rc = wrc;
    }
    rep.load_seconds = kb_now() - r.started;
    /* the stats are hints checked against the stored sources: written for
     * a scan that ended (rejected inputs' files are not among them), and a
     * failure to store them costs the next run a read, nothing else */
    if (rc == KB_OK && run_stat_store(&r, &werr) != KB_OK)
        log_warn("%s%s%s", werr.origin, werr.origin[0] ? ": " : "", werr.msg);
    if (rc == KB_OK && kb_signal_received())
        rc = KB_E_INTERRUPTED;   /* a signal after the scan: stop before the next phase */
    run_phase(&r, RUN_DEDUP);

    /* the dedup pass over the learnings this run added or changed */
    struct load_dedup_result dres = { 0 };
    struct load_dedup_opts dopts = { 0 };
    const char *const *touched = NULL;
    int n_touched = load_session_touched_learnings(r.sess, &touched);
    rep.has_dedup = rc == KB_OK && r.p->dedup.is_enabled && n_touched > 0 && !a->is_dry_run;
    if (rep.has_dedup) {
        dopts.action = run_dedup_action(r.p);
        dopts.threshold = pipeline_origin(r.p, "dedup.threshold")
                              ? r.p->dedup.threshold
                              : load_dedup_default_threshold(r.model);
        rc = load_dedup(r.conn, load_session_project_id(r.sess), touched, n_touched, &dopts,
                        log_get_level() >= KB_LOG_INFO ? stderr : NULL, &dres, err);
    }
    /* --full deletes only after a complete scan with nothing rejected: a
     * rejected input may be a source that still exists */
    int do_full = is_full && rc == KB_OK && r.rejected == 0;
    if (is_full && rc == KB_OK && r.rejected > 0)
        log_warn("--full: deletions skipped because %ld input(s) were rejected; fix them and "
                 "run again", r.rejected);
    double t_finish = kb_now();
    if (rc == KB_OK && kb_signal_received())
        rc = KB_E_INTERRUPTED;
    /* each step its own phase: the summary's and the report's seconds for
     * the deletions and the index build */
    run_phase(&r, RUN_DELETING);
    if (rc == KB_OK)
        rc = load_session_finish_deletions(r.sess, do_full, err);
    run_phase(&r, RUN_INDEXING);
    if (rc == KB_OK)
        rc = load_session_finish_index(r.sess, err);
    run_phase(&r, RUN_FINISHING);
    /* the project's common words (search's OR form leaves them out), after
     * a run that changed its rows; a kill before this keeps the old list
     * until the next run that writes (docs/search.md, "Common words") */
    const struct load_counts *wc = load_session_counts(r.sess);
    if (rc == KB_OK && !a->is_dry_run &&
        wc->chunks_written + wc->chunks_deleted + wc->learnings_written > 0)
        rc = db_common_words_refresh(r.conn, r.p->project, 1, 1, err);
    if (rc == KB_OK)
        rc = run_marks_store(&r, err);
    rep.finish_seconds = kb_now() - t_finish;
    run_phase(&r, RUN_CLOSING);
    run_ticker_stop(&r);
    if (rc == KB_E_INTERRUPTED) {
        const struct load_counts *lc = load_session_counts(r.sess);
        KB_FAIL(err, KB_E_INTERRUPTED, NULL,
                "%s: interrupted after %ld batch(es) (%ld source(s) written); run again to resume",
                r.p->name, lc->batches, lc->sources_written);
    }
    const char *status = rc == KB_E_INTERRUPTED ? "interrupted" : rc != KB_OK ? "failed"
                         : a->is_dry_run ? "dry-run" : r.rejected ? "partial" : "succeeded";
    rep.pipeline = r.p->name;
    rep.project = r.p->project;
    rep.status = status;
    rep.is_dry_run = a->is_dry_run;
    rep.is_full = is_full;
    rep.shard_k = a->shard_k;
    rep.shard_n = a->shard_n;
    rep.embedding_model = r.model;
    rep.sources = r.stats;
    rep.n_sources = r.p->n_sources;
    rep.rejected = r.rejected;
    rep.reject_file = r.rejects && r.rejected ? ingest_rejects_path(r.rejects) : NULL;
    rep.error = rc != KB_OK ? err->msg : NULL;
    rep.dedup.n_candidates = dres.n_candidates;
    rep.dedup.n_pairs = dres.n_pairs;
    rep.dedup.n_marked = dres.n_marked;
    rep.dedup.n_merged = dres.n_merged;
    rep.dedup.threshold = dopts.threshold;
    rep.dedup.action = run_dedup_action_name(dopts.action);
    run_phase(&r, RUN_CLOSING);   /* the books closed: the phases add up to seconds */
    rep.seconds = r.phase_started - r.started;
    memcpy(rep.phase_seconds, r.phase_seconds, sizeof rep.phase_seconds);
    rep.load = *load_session_counts(r.sess);
    if (a->is_dry_run)
        rep.deleted_planned = rep.load.sources_deleted;
    char *json = run_report_json(&rep);
    struct kb_err cerr = { 0 };
    enum kb_code crc = load_session_close(r.sess, status, json, &cerr);
    r.sess = NULL;
    if (rc == KB_OK && crc != KB_OK) {
        *err = cerr;
        rc = crc;
    }
    if (!kb_cli.is_quiet || a->is_plan)
        run_report_print(&rep, a->is_plan ? stdout : stderr);
    if (a->is_plan && r.n_planned) {
        fprintf(stdout, "\ndocuments to load:\n%s", r.planned.data);
        if (r.n_planned > PLAN_MAX_NAMED)
            fprintf(stdout, "  ... and %d more\n", r.n_planned - PLAN_MAX_NAMED);
    }
    if (a->report_path) {
        struct kb_err werr = { 0 };
        if (run_report_write(a->report_path, json, &werr) != KB_OK && rc == KB_OK) {
            *err = werr;
            rc = KB_E_IO;
        }
    }
    free(json);
    if (rc == KB_OK && !kb_cli.is_quiet && !a->is_plan)
        log_info("%s: %ld document(s), %ld chunk(s), %.1f s", r.p->name, r.docs_done,
                 r.chunks_done, kb_now() - r.started);
    long rejected = r.rejected;
    run_close(&r);
    if (rc == KB_OK && rejected > 0)
        return KB_PARTIAL;
    return rc;
}

/* See pipeline.h. */
enum kb_code cmd_run(int argc, char **argv, struct kb_err *err)
{
    struct pipeline_run_args a = { 0 };
    enum kb_code rc = parse_args(argc, argv, &a, err);
    if (rc == KB_PARTIAL)
        return KB_OK;   /* --help */
    if (rc != KB_OK)
        return rc;
    return pipeline_run(&a, err);
}

/* See pipeline.h. */
enum kb_code cmd_plan(int argc, char **argv, struct kb_err *err)
{
    struct pipeline_run_args a = { .is_plan = 1 };
    enum kb_code rc = parse_args(argc, argv, &a, err);
    if (rc == KB_PARTIAL)
        return KB_OK;
    if (rc != KB_OK)
        return rc;
    return pipeline_run(&a, err);
}
