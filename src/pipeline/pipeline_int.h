/*
 * pipeline_int.h - shared by the .c files of src/pipeline only: the YAML
 * node tree (yaml.c), the problem list, the schema pass (schema.c), and
 * the run's state shared by its phases (cmd_run.c, run_document.c,
 * run_flush.c, run_options.c, report.c, export_batch.c).
 *
 * Reading a pipeline is three passes, each collecting problems instead of
 * stopping at the first, like a compiler: yaml.c builds a tree of scalars,
 * mappings and sequences with the line:column of every node (interpolating
 * ${VAR} in scalars); schema.c walks it against the expected shape into
 * struct kb_pipeline; the meaning checks (schema.c) and the disk checks
 * (pipeline.c) add what a valid shape can still get wrong.
 */
#ifndef KB_PIPELINE_INT_H
#define KB_PIPELINE_INT_H

#include <pthread.h>

#include "chunk/chunk.h"
#include "embed/embed.h"
#include "load/load.h"
#include "pipeline.h"

enum node_kind { NODE_SCALAR, NODE_MAP, NODE_SEQ };

struct node {
    enum node_kind kind;
    struct kb_origin at;           /* where the node starts */
    const char *value;             /* scalar: interpolated text */
    int is_plain;                  /* scalar: unquoted (so null/true/123 are typed) */
    int has_unset_var;             /* scalar: interpolation already reported a problem */
    struct node **keys, **vals;    /* map: n pairs (keys are scalars); seq: vals */
    int n, cap;
};

struct diag {
    long line, col;
    long seq;                      /* order found, to sort stably */
    char origin[256];
    char msg[512];
};

struct origin_entry {
    const char *key;
    struct kb_origin at;
};

struct pipeline_priv {
    struct kb_arena *arena;        /* every string and array of the pipeline */
    struct diag *diags;
    int n_diags, cap_diags;
    struct origin_entry *origins;
    int n_origins, cap_origins;
    int is_sorted;
};

/* Add a problem at `at` (path:line:col); the message has no trailing newline. */
void pipeline_diag_add(struct kb_pipeline *p, const struct kb_origin *at, const char *fmt, ...)
    KB_PRINTF(3, 4);

/* Remember where key path `key` was written. */
void pipeline_origin_add(struct kb_pipeline *p, const char *key, const struct kb_origin *at);

/*
 * Parse the YAML file at p->path into a tree in `arena`: *root is NULL
 * when the file has no document or a syntax error (added to p's problems).
 * Unset ${VAR} without a default are problems too (the scalar keeps "").
 * KB_E_IO when the file cannot be opened.
 */
enum kb_code pipeline_yaml_read(struct kb_pipeline *p, struct kb_arena *arena,
                                struct node **root, struct kb_err *err);

/*
 * Interpolate ${VAR} and ${VAR:-default} in s ("$$" is a literal '$').
 * Returns the new text in arena; an unset variable without default adds a
 * problem at `at` naming it and interpolates as "".
 */
const char *pipeline_interpolate(struct kb_pipeline *p, struct kb_arena *arena, const char *s,
                                 const struct kb_origin *at);

/* Walk the tree into p (defaults, types, unknown and missing keys), then the meaning checks. */
void pipeline_schema_apply(struct kb_pipeline *p, const struct node *root);

/* ---- schema_values.c: typed value readers for schema.c ----------------- */

/* The schema pass's state: the pipeline being filled, its arena. */
struct schema_ctx {
    struct kb_pipeline *p;
    struct kb_arena *a;
};

/* "a mapping", "a list" or "a scalar". */
const char *schema_kind_name(const struct node *n);
/* For messages: 'text' for scalars, "nothing (null)", "a mapping" / "a list". */
const char *schema_found(struct schema_ctx *c, const struct node *n);
/* Remember where key path `key` was written (pipeline_origin). */
void schema_remember(struct schema_ctx *c, const char *key, const struct node *n);
/* The value of `key` in a mapping; NULL when absent or not a mapping. */
const struct node *schema_lookup(const struct node *map, const char *key);
/* Unknown keys of `map` (allowed: NULL-terminated) are problems, with a
 * "did you mean" for a near one. */
void schema_check_keys(struct schema_ctx *c, const struct node *map, const char *section,
                       const char *const *allowed);
/* 1 for a plain empty, "~" or "null" scalar. */
int schema_is_null(const struct node *n);

/*
 * The value readers.  Each: n NULL (absent) returns 0 and leaves *out
 * untouched; otherwise remembers key's origin, and either stores the value
 * and returns 1, or adds a problem naming key, what was expected (with
 * `example`) and what was found, and returns 0.
 */
/* A mapping (NULL when absent, wrong, or empty: "chunking:" = all defaults). */
const struct node *schema_want_map(struct schema_ctx *c, const struct node *n, const char *key,
                                   const char *example);
/* A non-empty string, copied into the arena. */
int schema_want_str(struct schema_ctx *c, const struct node *n, const char *key, const char **out);
/* An integer from lo to hi. */
int schema_want_long(struct schema_ctx *c, const struct node *n, const char *key, long lo, long hi,
                     const char *example, long *out);
int schema_want_int(struct schema_ctx *c, const struct node *n, const char *key, long lo, long hi,
                    const char *example, int *out);
/* A finite number from lo to hi. */
int schema_want_double(struct schema_ctx *c, const struct node *n, const char *key, double lo,
                       double hi, const char *example, double *out);
/* true/false (also yes/no, on/off). */
int schema_want_bool(struct schema_ctx *c, const struct node *n, const char *key, int *out);
/* One of names[] (NULL-terminated): *out = its index. */
int schema_want_enum(struct schema_ctx *c, const struct node *n, const char *key,
                     const char *const *names, int *out);
/* A string or a list of strings into *out (with each item's origin). */
void schema_want_strs(struct schema_ctx *c, const struct node *n, const char *key,
                      struct ingest_strs *out);
/* One character; "\t" or "tab" is a tab. */
void schema_want_char(struct schema_ctx *c, const struct node *n, const char *key, char *out);
/* A byte size: 1048576, "512KB", "8MB", "1GB" (powers of 1024). */
void schema_want_size(struct schema_ctx *c, const struct node *n, const char *key, long *out);

/*
 * schema_sql.c: the keys of a type: sql source at mapping m (key paths
 * start with pre, "sources[2]"), into src->u.sql; problems are added.
 */
void schema_read_sql(struct schema_ctx *c, const struct node *m, const char *pre,
                     struct ingest_source *src);

/* ---- the run: state shared by its phases -------------------------------- */

/* The phases of a run, in order (run_progress.c). */
enum run_phase {
    RUN_SCANNING, RUN_LOADING, RUN_DEDUP,
    RUN_DELETING,    /* --full: the sources the run did not see */
    RUN_INDEXING,    /* the HNSW index the load dropped, rebuilt */
    RUN_FINISHING,   /* the rest of the end: the sources' marks stored */
    RUN_CLOSING, RUN_N_PHASES
};

/* What one source of a pipeline did in a run (report.c prints it). */
struct run_source_stats {
    const char *name;              /* the source's name in the pipeline */
    long read, unchanged, changed, added, out_of_shard;
    long chunks, vectors_computed, vectors_reused, vectors_imported, rejected;
    long skipped;                  /* left out by the reader with a note: binary files,
                                      pull requests of a REST export */
    long files_unread;             /* files skipped by the stat pre-check, never opened
                                      (their documents count as read and unchanged) */
    double seconds;
};

/* The run report: the summary table and the JSON of --report / kbpipe_runs. */
struct run_report {
    const char *pipeline, *project, *status;   /* status: succeeded|partial|failed|dry-run */
    char started_at[32];                        /* ISO 8601, UTC */
    double seconds;
    double load_seconds;                        /* start to the last batch committed */
    double finish_seconds;                      /* --full deletions + HNSW rebuild */
    double phase_seconds[RUN_N_PHASES];         /* adds up to seconds */
    int is_dry_run, is_full, shard_k, shard_n;
    const char *embedding_model;
    struct run_source_stats *sources;
    int n_sources;
    struct load_counts load;
    long deleted_planned;                       /* --dry-run with --full: would delete */
    int has_dedup;
    struct run_dedup_view {
        int n_candidates, n_pairs, n_marked, n_merged;
        double threshold;
        const char *action;
    } dedup;
    const char *reject_file;
    long rejected;
    const char *error;                          /* the failure's message, or NULL */
};

/*
 * The writer: a thread that flushes one batch (load_batch_flush, on the
 * session's connection) while the run's thread reads, chunks and embeds the
 * next one (reuse lookups on a second connection).  Two batches take
 * turns; `pending` is the one being written.  The first failure is kept
 * and stops the run at its next hand-over.
 */
struct run_writer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct load_session *sess;
    struct load_batch *pending;        /* handed over, not yet written */
    int is_busy, is_quitting, is_started;
    enum kb_code rc;
    struct kb_err err;
    /* the overlap, in seconds (logged at -v when the writer stops): the
     * writer writing, the writer idle between its first batch and its
     * stop (waiting for the run's thread), the run's thread waiting for
     * the writer to take a batch (docs/loading.md, "Two batches, two
     * threads") */
    double busy_s, idle_s, producer_wait_s;
    int n_batches;
};

struct pipeline_export;   /* fields live in export_batch.c */

struct run_ticker;   /* fields live in run_progress.c */

/* Everything one run holds. */
struct run {
    const struct pipeline_run_args *args;
    struct kb_pipeline *p;
    struct db_conn *conn;
    struct load_session *sess;
    struct load_batch *batch;          /* being filled */
    struct load_batch *spare;          /* the other one: written by the writer */
    struct db_conn *read_conn;         /* reuse lookups while the writer writes */
    struct run_writer w;
    struct chunk_tokenizer *tok;
    struct chunk_opts copts;
    char chunker_sig[CHUNK_SIGNATURE_MAX];
    struct embed_opts eopts;
    struct embed_embedder *emb;
    struct pipeline_export *export;    /* export_path (export_batch.c) */
    struct embed_row *erows;           /* the batch's rows as the embedder sees them */
    int cap_erows;
    const char *model;
    struct kb_arena *arena;
    struct ingest_rejects *rejects;
    struct run_source_stats *stats;    /* one per pipeline source */
    int *row_stat;                     /* per batch row: index into stats */
    int cap_row_stat;
    long rejected;
    int is_tty;
    struct kb_buf planned;             /* plan: "add  SOURCE_ID" lines, capped */
    int n_planned;
    double started, last_progress;
    /* read by the progress thread (run_progress.c) while the run updates them */
    _Atomic long docs_done, chunks_done, vectors_done;
    _Atomic int phase;                 /* enum run_phase */
    double phase_started, phase_seconds[RUN_N_PHASES];
    struct run_ticker *ticker;         /* the terminal's progress line, or NULL */
    long rows_expected;                /* the look-ahead's estimate (0: none) */
    int has_estimate, is_scan_done;
    int is_duplicate;                  /* run_add_document's KB_E_INPUT: 1 a repeated
                                          source_id, 2 one another pipeline owns */
    long doc_rows_left;                /* a flush inside a document: its rows still to
                                          come, about (0: between documents) */
    int is_flush_failed;               /* run_add_document's failure came from a batch
                                          flushed inside a large document, not from it */
    int is_doc_dropped;                /* the document being chunked spanned batches and
                                          a chunk of it was rejected (run_embed): it is
                                          already rejected and counted, chunking stops */
    int is_full;                       /* --full or mode: full */
    char lock_name[300];               /* the pipeline, or "NAME#K/N": keys the marks */
    struct load_marks marks;           /* API sources' new marks, stored after success */
    /* the stat pre-check (run_stat.c) */
    struct load_filestats *filestats;  /* stored stats and the rows to store; NULL: none */
    char (*settings)[65];              /* per source: the settings hash */
    long long stat_start_ns;           /* the run's start, CLOCK_REALTIME_COARSE */
    int stat_si;                       /* the source being read */
    struct ingest_file_stat stat_cur;  /* files: the file the reader is about to read */
    char stat_path[4096], stat_id[4096];
    int has_stat_cur;
    int is_stat_probe;                 /* the look-ahead: skip unchanged files, mark nothing */
    struct ingest_file_stat file_stat; /* CSV, export: the source's file */
    int has_file_stat;
    struct load_digest file_digest;    /* ... and its documents so far */
};

/* ---- run_progress.c: the phases and the progress line ------------------- */

/* "scanning", "loading", "dedup", "deleting", "indexing", "finishing", "closing". */
const char *run_phase_name(enum run_phase ph);
/* Enter phase ph: the time since the last switch (or r->started) goes to
 * the phase being left.  run_phase(r, r->phase) closes the books up to
 * now, so the phases' seconds add up to now - r->started. */
void run_phase(struct run *r, enum run_phase ph);
/* On a terminal, unless -q: start the thread that redraws the progress
 * line twice a second.  Without a terminal (or a thread) nothing. */
void run_ticker_start(struct run *r);
/* Stop the thread (if any) and leave the last line as a finished one. */
void run_ticker_stop(struct run *r);
/* Off a terminal, at -v: a progress log line every 10 s (the first after 10 s). */
void run_progress_log(struct run *r, const char *source);

/* plan lists this many documents by name, then counts the rest */
#define PLAN_MAX_NAMED 200

/* --shard's "K/N" with 1 <= K <= N into *k, *n; KB_E_USAGE otherwise (cmd_run.c). */
enum kb_code run_parse_shard(const char *s, int *k, int *n, struct kb_err *err);

/* ---- run_marks.c: the marks of sources that keep state (type: github) ---- */

/*
 * Give the reader of source src its stored marks (kbpipe_source_state),
 * after ingest_open and before the first ingest_next.  None for a source
 * without state, and none with --full: a complete fetch, so that what
 * vanished is known.  KB_E_DB when they cannot be read.
 */
enum kb_code run_marks_give(struct run *r, const struct ingest_source *src,
                            struct ingest_reader *rd, struct kb_err *err);

/* Take the new marks of a reader that reached its end into r->marks. */
void run_marks_take(struct run *r, const struct ingest_source *src,
                    const struct ingest_reader *rd);

/*
 * Store r->marks (one transaction) when the run succeeded with nothing
 * rejected and is not a dry run, so a failed or partial run leaves the old
 * marks and the next run asks again for the same changes.
 */
enum kb_code run_marks_store(struct run *r, struct kb_err *err);

/* ---- run_stat.c: the stat pre-check ------------------------------------ */

/*
 * Note the run's start and read the stored file stats of the pipeline (one
 * query, on the session's connection before the writer thread starts);
 * nothing for a pipeline without file sources.  KB_E_DB on failure.
 */
enum kb_code run_stat_open(struct run *r, struct kb_err *err);
/* Before source si's first document: set the reader's hook (files). */
void run_stat_hook(struct run *r, int si, struct ingest_reader *rd);
/*
 * A CSV or export source si whose file's stat, settings and stored sources
 * are those recorded: its sources marked seen and unchanged, *is_skipped =
 * 1, and the file is not opened.  Else *is_skipped = 0 and its stat is
 * kept for run_stat_file_done.  KB_E_DB when the stored sources cannot be
 * read.
 */
enum kb_code run_stat_skip_file(struct run *r, int si, int *is_skipped, struct kb_err *err);
/* The CSV sources' header checks that pipeline_check_run left out, except
 * for files unchanged by their stat; KB_E_CONFIG with the problems printed. */
enum kb_code run_stat_check_headers(struct run *r, struct kb_err *err);
/* The look-ahead's reader of source si skips the files the scan would skip,
 * marking nothing; returns what run_stat_probe_end takes back. */
int run_stat_probe_begin(struct run *r, int si, struct ingest_reader *rd);
void run_stat_probe_end(struct run *r, int saved);
/* 1 when the look-ahead may pass over one-file source si: skipped whole by
 * the scan, or its file and stored sources as recorded (nothing marked). */
int run_stat_probe_file(struct run *r, int si);
/* A document of source si found unchanged or queued with doc_hash: queue
 * its file's stat (files), or add it to its file's digest (CSV, export). */
void run_stat_document(struct run *r, int si, const struct kb_document *d, const char *doc_hash,
                       int is_queued);
/* The end of a CSV or export source: queue its file's stat when the reader
 * read it whole with nothing rejected or skipped (is_complete). */
void run_stat_file_done(struct run *r, int si, int is_complete);
/* Write the queued stats (after the writer stopped).  KB_E_DB on failure. */
enum kb_code run_stat_store(struct run *r, struct kb_err *err);

/* ---- run_document.c: one document into the batch ------------------------ */

/*
 * Queue one document of pipeline source si in the batch (or skip it as
 * unchanged or out of shard), counting it in r->stats[si].  KB_E_INPUT is
 * about this document alone (a repeated source_id sets r->is_duplicate;
 * text the chunker refuses): the caller may reject it and go on.  Flushing
 * a full batch is the caller's, so that errors of a batch never pass for
 * one document's.
 */
enum kb_code run_add_document(struct run *r, int si, const struct kb_document *d,
                              struct kb_err *err);

/*
 * Index strategy auto's look-ahead: the rows the changed documents of every
 * source would write, read and hashed from the start (inputs that fail to
 * read are left to the real pass).
 */
long run_estimate_rows(struct run *r);

/* Bytes of text a chunk moves on by, about (the look-ahead's unit). */
long run_stride_bytes(const struct run *r);

/* ---- run_flush.c: vectors for a batch, and the writer thread ------------ */

/*
 * Give every row of the batch its vector (stored ones by (content_hash,
 * model) first, then the embedder for the rest) and hand it to the writer,
 * which writes it in one transaction while the next batch is prepared (a
 * dry run only counts).  Rows the embedder rejects take their source out
 * of the batch, into the reject file.  The writer's earlier failure, if
 * any, is returned here.
 */
enum kb_code run_flush_batch(struct run *r, struct kb_err *err);

/*
 * KB_E_INPUT (naming the source and the reject file) once source si has
 * rejected more than its max_errors inputs; KB_OK below the limit or with
 * none (max_errors 0).
 */
enum kb_code run_over_max_errors(struct run *r, int si, struct kb_err *err);

/* Start the writer thread (not for dry runs: they write nothing). */
enum kb_code run_writer_start(struct run *r, struct kb_err *err);
/* Wait until the writer holds no batch (KB_OK at once when not started);
 * its first failure, if any, goes to err. */
enum kb_code run_writer_idle(struct run *r, struct kb_err *err);
/* Let the writer finish what it holds and stop it; its failure goes to err.
 * KB_OK when it was not started. */
enum kb_code run_writer_stop(struct run *r, struct kb_err *err);

/* ---- run_options.c: the pipeline as the modules' options ---------------- */

/* chunking: as src/chunk options. */
void run_chunk_opts(const struct kb_pipeline *p, struct chunk_opts *o);
/* load: and the command line as src/load options; the lock is per
 * pipeline, or per shard ("docs#2/4"), written into lock_name. */
void run_load_opts(const struct kb_pipeline *p, const struct pipeline_run_args *a,
                   struct load_opts *o, char *lock_name, size_t lock_len);
/* The embedder the pipeline's embedding: block describes, into r->emb, r->model. */
enum kb_code run_embedder_open(struct run *r, struct kb_err *err);
/* The pipeline's dedup.action as src/load's enum (mark when not given). */
enum load_dedup_action run_dedup_action(const struct kb_pipeline *p);
/* "report", "mark" or "merge". */
const char *run_dedup_action_name(enum load_dedup_action a);

/* ---- report.c: the run report ------------------------------------------- */

/* The summary table (pgloader-style), one row per source and totals. */
void run_report_print(const struct run_report *r, FILE *out);
/* The shape of the JSON report (docs/report.schema.json): raised when a
 * field is removed or changes meaning; a new field does not raise it. */
#define RUN_REPORT_VERSION 2   /* 2: phases `deleting` and `indexing` out of `finishing` */

/* The same as a JSON object, every real rounded to 3 decimals (ms), with
 * report_version and kbpipe_version first; caller frees. */
char *run_report_json(const struct run_report *r);
/* The current time as ISO 8601 UTC ("2026-11-25T02:30:00Z"). */
void run_iso_now(char *buf, size_t n);
/*
 * The JSON report to path ("-": stdout) through a temporary file and a
 * rename, so a reader never sees half a report; the folder is made when
 * missing.  KB_E_IO naming path on failure.
 */
enum kb_code run_report_write(const char *path, const char *json, struct kb_err *err);

/* ---- export_batch.c: the Batch API request file of a dry run ------------ */

/*
 * Opened by run_open, fed every batch after the reuse lookup, finished when
 * the scan ends.  open: KB_E_CONFIG unless the pipeline uses provider
 * import with an explicit embedding.model; KB_E_IO when FILE ("-": stdout)
 * cannot be created.
 */
enum kb_code pipeline_export_open(const char *path, const struct kb_pipeline *p,
                                  struct pipeline_export **out, struct kb_err *err);
/* One request per PENDING row the import file lacks (each content hash once
 * per file); rows the file holds become IMPORTED.  KB_E_IO on a failed write. */
enum kb_code pipeline_export_rows(struct pipeline_export *x, const struct embed_embedder *e,
                                  struct embed_batch *b, struct kb_err *err);
/* Close and move the file into place, log the count.  KB_E_IO on failure. */
enum kb_code pipeline_export_finish(struct pipeline_export *x, struct kb_err *err);
/* Free; an unfinished file is removed.  NULL is a no-op. */
void pipeline_export_free(struct pipeline_export *x);

#endif /* KB_PIPELINE_INT_H */
