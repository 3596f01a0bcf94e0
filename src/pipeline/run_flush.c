/*
 * run_flush.c - a full batch of a run on its way to the database: vectors
 * reused by (content_hash, model), the rest from the embedder (or, for an
 * export, into the request file), rejected rows taking their whole source
 * out, then the hand-over to the writer thread, which writes one batch in
 * one transaction while the run's thread prepares the next.
 *
 *   run thread:    fill A | reuse+embed A | fill B | reuse+embed B | ...
 *   writer thread:                        | flush A              | flush B
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_int.h"

/* See pipeline_int.h.  The reader, the chunker and the embedder's rejects
 * all count. */
enum kb_code run_over_max_errors(struct run *r, int si, struct kb_err *err)
{
    const struct ingest_source *src = &r->p->sources[si];
    if (src->max_errors <= 0 || r->stats[si].rejected <= src->max_errors)
        return KB_OK;
    return KB_FAIL_AT(err, KB_E_INPUT, src->name,
                      "more than max_errors (%ld) inputs rejected; the run stops (see %s)",
                      src->max_errors,
                      r->rejects ? ingest_rejects_path(r->rejects) : "the log");
}

/*
 * Embed the batch's rows that have no vector yet.  Rows the embedder
 * rejects (not in the import file, a bad vector) take their whole source
 * out of the batch, into the reject file: the source stays fully old and
 * the next run tries it again.
 */
static enum kb_code run_embed(struct run *r, struct kb_err *err)
{
    int n = load_batch_rows(r->batch);
    if (n > r->cap_erows) {
        r->cap_erows = n * 2;
        r->erows = kb_xrealloc(r->erows, (size_t)r->cap_erows * sizeof *r->erows);
    }
    unsigned char *has = load_batch_has_vector(r->batch);
    for (int i = 0; i < n; i++) {
        struct embed_row *er = &r->erows[i];
        memset(er, 0, sizeof *er);
        er->text = load_batch_row_text(r->batch, i, &er->len);
        er->content_hash = load_batch_row_hash(r->batch, i);
        er->source_id = load_batch_row_source(r->batch, i, &er->chunk_index);
        er->origin = load_batch_row_origin(r->batch, i);
        er->token_count = load_batch_row_token_count(r->batch, i);
        er->state = has[i] ? EMBED_ROW_REUSED : EMBED_ROW_PENDING;
    }
    struct embed_batch eb;
    embed_batch_wrap(&eb, load_batch_matrix(r->batch), r->erows, n);
    enum kb_code rc = r->export ? pipeline_export_rows(r->export, r->emb, &eb, err)
                      : r->args->is_dry_run ? KB_OK : embed_batch_compute(r->emb, &eb, err);
    /* tests: KBPIPE_FAULT=run.embed_row:N rejects the Nth row embedded, as
     * the embedder rejects a row (tests/integration/run_memory_worst.sh) */
    for (int i = 0; i < n && !r->args->is_dry_run && (rc == KB_OK || rc == KB_PARTIAL); i++)
        if (r->erows[i].state != EMBED_ROW_REJECTED && kb_fault("run.embed_row")) {
            r->erows[i].state = EMBED_ROW_REJECTED;
            r->erows[i].reject = "fault injected at run.embed_row";
            rc = KB_PARTIAL;
        }
    for (int i = 0; i < n; i++) {
        struct run_source_stats *st = &r->stats[r->row_stat[i]];
        switch (r->erows[i].state) {
        case EMBED_ROW_REUSED: st->vectors_reused++; break;
        case EMBED_ROW_IMPORTED: st->vectors_imported++; break;
        case EMBED_ROW_REJECTED: break;
        default:   /* a dry run: would compute */
            st->vectors_computed++;
            r->vectors_done++;
            break;
        }
    }
    if (rc == KB_OK || rc == KB_PARTIAL)
        for (int i = 0; i < n; i++)
            if (r->erows[i].state != EMBED_ROW_REJECTED)
                has[i] = 1;
    /* a rejected row of a document that spans batches: the document's
     * earlier batches are in the open transaction, which holds it alone
     * (load_batch_flush commits the sources before it first): roll that
     * back, once the writer is done with it, and the document is left out
     * as any other (docs/loading.md, "One large input") */
    int spans = 0, last = load_batch_sources(r->batch) - 1, is_chunking = 0;
    for (int i = 0; rc == KB_PARTIAL && i < n; i++)
        if (r->erows[i].state == EMBED_ROW_REJECTED) {
            int g = load_batch_row_group(r->batch, i);
            if (load_batch_source_spans(r->batch, g)) {
                spans = 1;
                /* the open last source is the document being chunked */
                is_chunking |= load_batch_is_open(r->batch) && g == last;
            }
        }
    if (spans) {
        enum kb_code wrc = run_writer_idle(r, err);
        if (wrc != KB_OK) {
            embed_batch_release(&eb);
            return wrc;
        }
        if (load_session_abort_open(r->sess))
            log_info("the rejected document's batches written so far were rolled back "
                     "(its own transaction)");
        r->is_doc_dropped = is_chunking;
    }
    if (rc == KB_PARTIAL) {
        unsigned char *bad = kb_xcalloc((size_t)n, 1);
        rc = KB_OK;
        for (int i = 0; i < n && rc == KB_OK; i++) {
            if (r->erows[i].state != EMBED_ROW_REJECTED)
                continue;
            bad[i] = 1;
            struct kb_err rerr = { 0 };
            KB_FAIL_AT(&rerr, KB_E_EMBED, r->erows[i].origin, "%s; the document is left as "
                       "it was%s", r->erows[i].reject,
                       load_batch_source_spans(r->batch, load_batch_row_group(r->batch, i))
                       ? " (it spans batches: the rows of it already written in this run are "
                         "rolled back)" : "");
            log_warn("%s: %s", rerr.origin, rerr.msg);
            int si = r->row_stat[i];
            struct kb_err werr = { 0 };
            if (r->rejects && ingest_rejects_add(r->rejects, r->stats[si].name, &rerr, NULL,
                                                 &werr) != KB_OK) {
                *err = werr;
                rc = KB_E_IO;
            }
        }
        /* one rejected document per source with a bad row */
        int prev = -1;
        for (int i = 0; i < n; i++) {
            if (!bad[i])
                continue;
            int g = load_batch_row_group(r->batch, i);
            if (g != prev) {
                r->stats[r->row_stat[i]].rejected++;
                r->rejected++;
                prev = g;
                if (rc == KB_OK)
                    rc = run_over_max_errors(r, r->row_stat[i], err);
            }
        }
        /* keep row_stat aligned with the rows that stay */
        int k = 0;
        unsigned char *dropped_src = kb_xcalloc((size_t)n, 1);
        for (int i = 0; i < n; i++)
            if (bad[i])
                dropped_src[load_batch_row_group(r->batch, i)] = 1;
        for (int i = 0; i < n; i++)
            if (!dropped_src[load_batch_row_group(r->batch, i)])
                r->row_stat[k++] = r->row_stat[i];
        load_batch_drop_sources(r->batch, bad);
        free(dropped_src);
        free(bad);
    }
    embed_batch_release(&eb);
    return rc;
}

/* The writer thread: write each handed-over batch, keep the first failure. */
static void *writer_main(void *arg)
{
    struct run_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    double idle_since = 0;   /* 0: before the first batch (the scan's start is not idling) */
    for (;;) {
        while (w->pending == NULL && !w->is_quitting)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->pending == NULL)
            break;
        struct load_batch *b = w->pending;
        w->is_busy = 1;
        pthread_mutex_unlock(&w->mu);
        double t0 = kb_now();
        if (idle_since > 0)
            w->idle_s += t0 - idle_since;
        struct kb_err e = { 0 };
        enum kb_code rc = load_batch_flush(w->sess, b, &e);
        idle_since = kb_now();
        pthread_mutex_lock(&w->mu);
        w->busy_s += idle_since - t0;
        w->n_batches++;
        if (rc != KB_OK && w->rc == KB_OK) {
            w->rc = rc;
            w->err = e;
        }
        w->pending = NULL;
        w->is_busy = 0;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Wait until the writer is idle; its first failure, if any, goes to err. */
static enum kb_code writer_wait(struct run_writer *w, struct kb_err *err)
{
    pthread_mutex_lock(&w->mu);
    while (w->pending != NULL || w->is_busy)
        pthread_cond_wait(&w->cv, &w->mu);
    enum kb_code rc = w->rc;
    if (rc != KB_OK)
        *err = w->err;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Hand the filled batch to the writer and take the spare (empty) one. */
static enum kb_code writer_hand_over(struct run *r, struct kb_err *err)
{
    double t0 = kb_now();
    enum kb_code rc = writer_wait(&r->w, err);
    r->w.producer_wait_s += kb_now() - t0;   /* only this thread writes it */
    if (rc != KB_OK)
        return rc;
    pthread_mutex_lock(&r->w.mu);
    r->w.pending = r->batch;
    pthread_cond_broadcast(&r->w.cv);
    pthread_mutex_unlock(&r->w.mu);
    struct load_batch *t = r->batch;
    r->batch = r->spare;
    r->spare = t;
    return KB_OK;
}

/* See pipeline_int.h. */
enum kb_code run_writer_start(struct run *r, struct kb_err *err)
{
    struct run_writer *w = &r->w;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->sess = r->sess;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        return KB_FAIL(err, KB_E_INTERNAL, NULL, "cannot start the writer thread");
    }
    w->is_started = 1;
    return KB_OK;
}

/* See pipeline_int.h. */
enum kb_code run_writer_idle(struct run *r, struct kb_err *err)
{
    return r->w.is_started ? writer_wait(&r->w, err) : KB_OK;
}

/* See pipeline_int.h. */
enum kb_code run_writer_stop(struct run *r, struct kb_err *err)
{
    struct run_writer *w = &r->w;
    if (!w->is_started)
        return KB_OK;
    enum kb_code rc = writer_wait(w, err);
    pthread_mutex_lock(&w->mu);
    w->is_quitting = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    /* e.g. "writer: 20 batches, writing 24.10 s, idle 0.41 s waiting for
     * the run's thread; the run's thread waited 19.86 s for the writer" */
    if (w->n_batches > 0)
        log_info("writer: %d batches, writing %.2f s, idle %.2f s waiting for the run's thread; "
                 "the run's thread waited %.2f s for the writer",
                 w->n_batches, w->busy_s, w->idle_s, w->producer_wait_s);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    w->is_started = 0;
    /* a run stopped inside a document larger than a batch (a failure, or a
     * signal dropping the batch being filled) left its transaction open */
    if (load_session_abort_open(r->sess))
        log_info("the unfinished document's batches were rolled back (one transaction)");
    return rc;
}

/* See pipeline_int.h. */
enum kb_code run_flush_batch(struct run *r, struct kb_err *err)
{
    int n_reused = 0;
    enum kb_code rc = KB_OK;
    /* index strategy auto decides at the first batch written: on the exact
     * count when the scan is over, else on the look-ahead's estimate (an
     * unchanged re-run fills no batch, so it never reads anything twice) */
    if (!r->has_estimate && load_batch_rows(r->batch) > 0 && !r->args->is_dry_run &&
        r->p->load.index_strategy == PIPELINE_INDEX_AUTO) {
        if (r->doc_rows_left > 0) {
            /* inside a large document, whose text is held: re-reading it
             * (the look-ahead) would hold it twice.  A lower bound for
             * now: this document's rows; the look-ahead runs at the next
             * flush between documents (load_index_before_copy decides
             * again at each batch until it drops the index) */
            load_session_expect_rows(r->sess, r->chunks_done + r->doc_rows_left);
        } else {
            r->has_estimate = 1;
            r->rows_expected = r->is_scan_done ? r->chunks_done : run_estimate_rows(r);
            load_session_expect_rows(r->sess, r->rows_expected);
        }
    }
    if (load_batch_sources(r->batch) > 0 && !r->args->is_dry_run && r->read_conn == NULL) {
        /* the writer thread owns the session's connection from the first
         * batch it is handed that writes anything (sources, even without a
         * row: 1000 empty files fill a batch): the lookups and the marks of
         * later sources (run_marks.c) need their own, opened now */
        rc = db_open(&r->read_conn, err);
        if (rc == KB_OK)
            load_session_set_read_conn(r->sess, r->read_conn);
    }
    if (rc == KB_OK && load_batch_rows(r->batch) > 0) {
        /* a read: a dry run also says what would be reused */
        rc = load_batch_reuse(r->sess, r->batch, r->model, &n_reused, err);
        if (rc == KB_OK)
            rc = run_embed(r, err);
    }
    if (rc != KB_OK)
        return rc;
    if (!r->w.is_started)
        return load_batch_flush(r->sess, r->batch, err);   /* dry run */
    return writer_hand_over(r, err);
}
