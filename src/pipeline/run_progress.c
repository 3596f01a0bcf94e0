/*
 * run_progress.c - what a run is doing, while it does it, and how long each
 * phase took.
 *
 * Phases: scanning (reading, chunking, embedding, batches handed to the
 * writer), loading (the last batches written), dedup, deleting (--full's
 * deletions), indexing (the HNSW index rebuilt), finishing (the sources'
 * marks stored), closing (the run's row and report).
 * Their seconds add up to the run's wall time (the report's `phases`).
 *
 * On a terminal (stderr), unless -q, a thread redraws one line twice a
 * second: the phase, documents read, chunks made, vectors embedded (with
 * an OpenAI-compatible provider, while a batch is embedded, the requests
 * on the wire: `, 2 requests in flight`, from embed_embedder_in_flight), and
 * while the index is rebuilt, `building index (N%)` from
 * pg_stat_progress_create_index, read over a second connection (opened
 * and polled only while load_session_is_rebuilding says so).  It reads
 * only atomics the run thread updates, so a long batch or a silent
 * CREATE INDEX no longer freezes the line.  Off a terminal: a log line
 * every 10 s at -v (nightly runs stay silent on success).
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "pipeline_int.h"

static const char *const phase_names[RUN_N_PHASES] = {
    [RUN_SCANNING] = "scanning", [RUN_LOADING] = "loading", [RUN_DEDUP] = "dedup",
    [RUN_DELETING] = "deleting", [RUN_INDEXING] = "indexing", [RUN_FINISHING] = "finishing",
    [RUN_CLOSING] = "closing",
};

struct run_ticker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int is_stopping;
    struct db_conn *poll_conn;   /* the second connection, opened when the index is rebuilt */
    int poll_failed;
    int shown_pct;               /* the highest "building index (N%)" shown: N never falls */
};

/* See pipeline_int.h. */
const char *run_phase_name(enum run_phase ph)
{
    return (unsigned)ph < RUN_N_PHASES ? phase_names[ph] : "?";
}

/* See pipeline_int.h. */
void run_phase(struct run *r, enum run_phase ph)
{
    double now = kb_now();
    if (r->phase_started == 0)
        r->phase_started = r->started;
    r->phase_seconds[r->phase] += now - r->phase_started;
    r->phase_started = now;
    r->phase = ph;
}

/* The line's middle: "scanning: 12 documents, 80 chunks, 64 vectors embedded". */
static void describe(struct run *r, struct run_ticker *t, char *buf, size_t n)
{
    enum run_phase ph = r->phase;
    char what[64];
    snprintf(what, sizeof what, "%s", run_phase_name(ph));
    if (ph == RUN_INDEXING) {
        int pct = -1;
        /* the second connection and its query only while an index is
         * rebuilt: deletions alone, or nothing owed, poll nothing */
        int is_rebuilding = load_session_is_rebuilding(r->sess);
        if (t && is_rebuilding && !t->poll_conn && !t->poll_failed) {
            struct kb_err ignored = { 0 };
            log_debug("progress: polling the index build over a second connection");
            t->poll_failed = db_open(&t->poll_conn, &ignored) != KB_OK;
        }
        struct kb_err ignored = { 0 };
        if (t && is_rebuilding && t->poll_conn &&
            load_index_build_percent(t->poll_conn, &pct, &ignored) != KB_OK)
            pct = -1;
        if (pct >= 0 && t) {
            /* N is over all the indexes the rebuild creates (each counts
             * alike: the HNSW index, then the full-text one restarts the
             * server's count at 0), and never falls: a build's own count
             * can step back between its phases */
            int done, total;
            load_session_rebuild_steps(r->sess, &done, &total);
            if (total > 1 && done < total)
                pct = (done * 100 + pct) / total;
            if (pct < t->shown_pct)
                pct = t->shown_pct;
            t->shown_pct = pct;
            snprintf(what, sizeof what, "building index (%d%%)", pct);
        }
    }
    double dt = kb_now() - r->started;
    long chunks = r->chunks_done;
    /* the embedder lives from before the ticker starts to after it stops */
    int n_flight = embed_embedder_in_flight(r->emb);
    char flight[48] = "";
    if (n_flight > 0)
        snprintf(flight, sizeof flight, ", %d request%s in flight", n_flight,
                 n_flight == 1 ? "" : "s");
    snprintf(buf, n, "%s: %ld documents, %ld chunks, %ld vectors embedded%s, %.0f chunks/s, "
             "%.0f s", what, (long)r->docs_done, chunks, (long)r->vectors_done, flight,
             dt > 0 ? (double)chunks / dt : 0.0, dt);
}

static void *ticker_main(void *arg)
{
    struct run *r = arg;
    struct run_ticker *t = r->ticker;
    pthread_mutex_lock(&t->mu);
    while (!t->is_stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 500 * 1000000L;   /* twice a second, at most */
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&t->cv, &t->mu, &until);
        if (t->is_stopping)
            break;
        pthread_mutex_unlock(&t->mu);
        char line[256];
        describe(r, t, line, sizeof line);
        fprintf(stderr, "\r\033[Kkbpipe: %s: %s", r->p->name, line);
        fflush(stderr);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    db_close(t->poll_conn);
    return NULL;
}

/* See pipeline_int.h. */
void run_ticker_start(struct run *r)
{
    if (!r->is_tty || kb_cli.is_quiet || r->ticker)
        return;
    struct run_ticker *t = kb_xcalloc(1, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    r->ticker = t;
    if (pthread_create(&t->thread, NULL, ticker_main, r) != 0) {
        /* no thread, no line: the run itself goes on */
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        free(t);
        r->ticker = NULL;
    }
}

/* See pipeline_int.h. */
void run_ticker_stop(struct run *r)
{
    struct run_ticker *t = r->ticker;
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    t->is_stopping = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
    r->ticker = NULL;
    /* the last state stays on screen, as a finished line */
    fprintf(stderr, "\r\033[Kkbpipe: %s: %ld documents, %ld chunks, %ld vectors embedded in "
            "%.1f s\n", r->p->name, (long)r->docs_done, (long)r->chunks_done,
            (long)r->vectors_done, kb_now() - r->started);
}

/* See pipeline_int.h. */
void run_progress_log(struct run *r, const char *source)
{
    if (kb_cli.is_quiet || r->is_tty)
        return;
    double now = kb_now();
    if (r->last_progress == 0) {
        r->last_progress = now;   /* the first line after 10 s, not at once */
        return;
    }
    if (now - r->last_progress < 10.0)
        return;
    r->last_progress = now;
    char line[256];
    describe(r, NULL, line, sizeof line);
    log_info("%s: %s", source, line);
}
