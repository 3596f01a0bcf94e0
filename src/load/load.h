/*
 * load.h - the public face of src/load: getting chunks and learnings into
 * PostgreSQL fast, atomically and incrementally.
 *
 * A run opens a load session (advisory lock per pipeline, a kbpipe_runs row,
 * the project, the stored hashes of the pipeline's sources), asks it which
 * documents are unchanged, fills batches with what changed, and flushes each
 * batch in one transaction: upsert the batch's sources, delete their old
 * chunks, binary-COPY the new ones, merge learnings.  Readers see every
 * source fully old or fully new.  libpq lives here and in src/db only.
 */
#ifndef KB_LOAD_H
#define KB_LOAD_H

#include <stdint.h>

#include <stdio.h>

#include "db/db.h"
#include "util/util.h"

#define KB_LOAD_DIM 1536

enum load_index_strategy { LOAD_INDEX_AUTO = 0, LOAD_INDEX_KEEP, LOAD_INDEX_REBUILD };
enum load_dedup_action { LOAD_DEDUP_REPORT = 0, LOAD_DEDUP_MARK, LOAD_DEDUP_MERGE };

struct load_opts {
    const char *pipeline;          /* the pipeline's name: owner of its sources */
    const char *lock_name;         /* advisory lock key (NULL: pipeline); "docs#2/4" for a shard */
    const char *project;           /* project name; created when missing */
    const char *project_path;      /* for a created project (may be NULL) */
    const char *project_description;   /* for a created project, or one whose description
                                          is empty or kbpipe's placeholder (may be NULL) */
    int batch_rows;                /* chunks per transaction (default 1000) */
    enum load_index_strategy index_strategy;
    double rebuild_ratio;          /* auto: rebuild when incoming > ratio x existing rows */
    long rebuild_min_rows;         /* ... and incoming >= this many rows */
    long keep_for_other_rows;      /* auto: never drop while other projects hold more rows
                                      than this (their searches need it); default 10000 */
    int is_dry_run;                /* read and compare only; write nothing */
    int is_full;                   /* --full: recorded at open as owed until the deletions end */
    int wait_for_lock;             /* 1: wait for a concurrent run; 0: fail at once */
    int shard_k, shard_n;          /* process sources with shard_of(id) == k-1 (n = 0: all) */
    int is_dedup_owed;             /* the pipeline dedups: each learning a batch writes is
                                      noted owed its pass (kbpipe_pending) in that batch */
};

void load_opts_defaults(struct load_opts *o);

/* One source (document) as it will be stored in knowledge_sources. */
struct load_source {
    const char *source_type;       /* "file", "csv", "github_issue" */
    const char *source_id;         /* stable key, e.g. "docs/setup.md", "o/r#12" */
    const char *title, *url, *file_path, *author;
    const char *metadata_json;     /* a JSON object, or NULL for {} */
    char doc_hash[65];             /* text + chunker + model settings */
    int is_learning;               /* its content goes to learnings, not chunks */
};

/* One chunk of a source (knowledge_chunks). */
struct load_chunk {
    int chunk_index;
    const char *content;
    size_t len;
    char content_hash[65];
    int token_count;
    const char *metadata_json;     /* JSON object (heading path, chunker, model) */
};

/* One comment of an issue (comments), in thread order. */
struct load_comment {
    const char *author, *body, *created_at, *url;
    const char *github_id;         /* REST numeric id or gh node id, as text; may be NULL */
};

/*
 * One GitHub issue (issues), upserted with its source.  src/pipeline fills
 * it from the reader's struct ingest_issue; load.h knows no reader type.
 */
struct load_issue {
    const char *repo;              /* owner/name */
    long number;
    const char *github_id;         /* REST id or gh node id, as text; may be NULL */
    const char *title, *body, *state, *author, *url;
    const char *created_at, *updated_at, *closed_at;   /* ISO 8601 or NULL */
    const char *const *labels;
    int n_labels;
    const struct load_comment *comments;
    int n_comments;
};

/* One learning of a source (learnings); scalars as text, NULL = default. */
struct load_learning {
    const char *title, *content;
    const char *learning_type, *category, *impact_level;
    const char *confidence_score;  /* "0.8" */
    const char *tags_literal;      /* a PostgreSQL text[] literal: {a,b} */
    const char *metadata_json;
    const char *embed_text;        /* the text its vector is made from (NULL: content) */
    char content_hash[65];         /* SHA-256 hex of that text: the reuse key */
};

struct load_session;   /* fields live in session.c */
struct load_batch;     /* fields live in batch.c */

/* Counts a session keeps for the run report. */
struct load_counts {
    long sources_seen, sources_unchanged, sources_changed, sources_new, sources_deleted;
    long chunks_written, chunks_deleted, learnings_written;
    long vectors_reused, batches;
    long sources_written;          /* sources in the batches committed */
    int index_rebuilt;             /* 1 when the HNSW index was dropped and rebuilt */
};

/*
 * Start a run: connect-level work only (the caller owns conn, which may be
 * deferred: db_open_deferred; the first statement carries the session's
 * setup and extension check, KB_E_DB naming a missing extension).  Takes the
 * pipeline's advisory lock (waiting or failing per opts), finds or creates
 * the project, records a kbpipe_runs row, loads the stored doc hashes of the
 * pipeline's sources, and repairs an HNSW index a killed run left dropped.
 * On failure nothing is held.
 */
enum kb_code load_session_open(struct db_conn *conn, const struct load_opts *opts,
                               struct load_session **out, struct kb_err *err);

/*
 * Is this source already stored with this doc_hash?  Also marks it seen
 * (for --full).  Returns 0 for sources outside this shard: see load_in_shard.
 */
int load_source_unchanged(struct load_session *s, const char *source_type,
                          const char *source_id, const char *doc_hash);

enum load_source_verdict {
    LOAD_SOURCE_CHANGED = 0,       /* new or changed: load it */
    LOAD_SOURCE_UNCHANGED,         /* stored with this doc_hash: skip it */
    LOAD_SOURCE_DUPLICATE,         /* already seen in this run: reject it */
    LOAD_SOURCE_FOREIGN,           /* owned by another pipeline of the project: reject it */
};

/*
 * load_source_unchanged, and also: a source_id seen earlier in this run (a
 * duplicate CSV key, one relative path under two roots) is
 * LOAD_SOURCE_DUPLICATE, and then first_at (first_len bytes) gets the
 * first occurrence's origin ("rows.csv: row 3").  `at` is this document's
 * origin, remembered for a later duplicate (may be NULL).  A source that
 * another pipeline of the project loaded is LOAD_SOURCE_FOREIGN, and
 * first_at gets that pipeline's name: a source belongs to the pipeline
 * that first loaded it (docs/pipelines.md, "Ownership").  A duplicate or
 * a foreign source changes no count.
 */
enum load_source_verdict load_source_check(struct load_session *s, const char *source_type,
                                           const char *source_id, const char *doc_hash,
                                           const struct kb_origin *at, char *first_at,
                                           size_t first_len);

/*
 * Is this source stored with this doc_hash?  No side effect: for a
 * look-ahead pass before the run (see load_session_expect_rows).
 */
int load_source_is_stored(struct load_session *s, const char *source_type,
                          const char *source_id, const char *doc_hash);

/*
 * The run's estimate of the rows it will write.  Index strategy auto
 * decides on it at the first batch instead of on the rows written so far,
 * so a large load drops the HNSW index before its first row, not after
 * rebuild_min_rows rows went through the index one by one.
 */
void load_session_expect_rows(struct load_session *s, long rows);

/* 1 when the source belongs to this run's shard (always 1 without --shard). */
int load_in_shard(const struct load_session *s, const char *source_type,
                  const char *source_id);

/*
 * A new empty batch of session s, sized by its opts->batch_rows; free with
 * load_batch_free.  It reads s's table of sources (which are new), so it is
 * used with s only and never after s is closed.
 */
struct load_batch *load_batch_new(const struct load_session *s);
void load_batch_free(struct load_batch *b);   /* NULL no-op */

/* Add a source to the batch (bytes are copied); returns its index in the batch. */
int load_batch_add_source(struct load_batch *b, const struct load_source *src);
/* Add a chunk of source `src_index` (bytes copied); vector left empty. */
void load_batch_add_chunk(struct load_batch *b, int src_index, const struct load_chunk *c);
/* Add the learning of source `src_index` (bytes copied); vector left empty. */
void load_batch_add_learning(struct load_batch *b, int src_index, const struct load_learning *l);

/*
 * Also upsert a GitHub issue of source `src_index` into the schema's issues
 * table (by project and github_url) and replace its comments, in the
 * batch's transaction (the github_issues source's `upsert_issues`).
 * The issue is deep-copied.
 */
void load_batch_add_issue(struct load_batch *b, int src_index, const struct load_issue *issue);

/* Rows (chunks + learnings) in the batch. */
int load_batch_rows(const struct load_batch *b);
/* Sources in the batch (an empty document adds a source and no row). */
int load_batch_sources(const struct load_batch *b);
/* 1 when the batch holds batch_rows rows or batch_rows sources. */
int load_batch_is_full(const struct load_batch *b);

/*
 * The batch's vectors as one contiguous row-major n x KB_LOAD_DIM float
 * matrix (rows: chunks first, then learnings), with each row's text,
 * content hash, origin and whether it already has a vector.
 */
float *load_batch_matrix(struct load_batch *b);
const char *load_batch_row_text(const struct load_batch *b, int row, size_t *len);
const char *load_batch_row_hash(const struct load_batch *b, int row);
const char *load_batch_row_origin(const struct load_batch *b, int row);  /* "docs/a.md#3" */
int load_batch_row_token_count(const struct load_batch *b, int row);
unsigned char *load_batch_has_vector(struct load_batch *b);              /* n flags */
/* The row's source_id (and chunk index; 0 for a learning): the import key. */
const char *load_batch_row_source(const struct load_batch *b, int row, int *chunk_index);
/* The index (as load_batch_add_source returned it) of the row's source. */
int load_batch_row_group(const struct load_batch *b, int row);

/*
 * Take out of the batch every source that has a row flagged in bad_row[n
 * rows], with all its rows and issues, so no source is written half: a
 * document whose chunk could not be embedded stays fully old.  Returns
 * how many sources went.  Row and source indexes change.
 */
int load_batch_drop_sources(struct load_batch *b, const unsigned char *bad_row);

/*
 * One document with more rows than a batch holds (an 8 MB file is
 * thousands of chunks) goes out in several batches of ONE transaction, so
 * memory stays bounded by the batch and the source is still written whole
 * or not at all (docs/loading.md, "One large input").  Before a full batch
 * whose last source is unfinished is flushed, load_batch_keep_open(b): its
 * flush then leaves the transaction open.  The next batch begins with
 * load_batch_continue_source() (the same source; was_new is
 * load_batch_source_is_new() of the first part), which the flush does not
 * upsert again (it takes the id the open batch got); the first flush of a
 * batch not kept open commits them all.  A failure rolls back every batch
 * of the transaction.  Batches are flushed in order by one thread.  The
 * flush of the batch where a source begins to span commits the sources
 * before it first, so the open transaction holds that source alone: a
 * reject of it (load_session_abort_open) loses no other source.
 */
void load_batch_keep_open(struct load_batch *b);
int load_batch_continue_source(struct load_batch *b, const struct load_source *src,
                               int was_new);
int load_batch_source_is_new(const struct load_batch *b, int src_index);
/* 1 when the batch's last source goes on in the next batch (load_batch_keep_open). */
int load_batch_is_open(const struct load_batch *b);
/* 1 when the source's rows go through more than this batch (kept open, or continued). */
int load_batch_source_spans(const struct load_batch *b, int src_index);
/*
 * Roll back a transaction a batch left open (a run stopped inside a large
 * document: a failure, or the batch being filled dropped at a signal) and
 * undo its counts; 1 when there was one.  Call it after the last flush,
 * before anything else uses the session's connection.
 */
int load_session_abort_open(struct load_session *s);

/*
 * A second connection (the caller owns it) for load_batch_reuse's reads, so
 * the next batch can be prepared while load_batch_flush writes the current
 * one on the session's connection from another thread.  The session's
 * other calls stay on the caller's thread; flush touches only its own
 * counters (chunks/learnings written, batches).
 */
void load_session_set_read_conn(struct load_session *s, struct db_conn *conn);

/*
 * Fill rows that lack vectors from vectors already stored under the same
 * (content_hash, model), in chunks and learnings.  *n_reused counts them.
 */
enum kb_code load_batch_reuse(struct load_session *s, struct load_batch *b, const char *model,
                              int *n_reused, struct kb_err *err);

/*
 * Write the batch in one transaction and empty it: upsert its sources (with
 * their new doc_hash), delete their old chunks, COPY (binary) the new chunks,
 * merge the learnings.  Every row must have its vector.  On failure the
 * transaction is rolled back: the database is as before the call (as
 * before the first batch of the transaction, when batches before were kept
 * open: load_batch_keep_open).
 */
enum kb_code load_batch_flush(struct load_session *s, struct load_batch *b, struct kb_err *err);

/*
 * The end of a successful scan: with `full`, delete the pipeline's sources
 * (of this shard) that were not seen; rebuild an HNSW index the load
 * dropped.  The counts then include the deletions.  Dry runs only count.
 */
enum kb_code load_session_finish(struct load_session *s, int full, struct kb_err *err);

/*
 * load_session_finish in its two steps, so a caller can time each (the
 * run's `deleting` and `indexing` phases): first the --full deletions
 * (with `full`; else nothing), then the rebuild of an HNSW index the load
 * dropped (else nothing).  Call both, in this order, each only when the
 * one before succeeded.
 */
enum kb_code load_session_finish_deletions(struct load_session *s, int full,
                                           struct kb_err *err);
enum kb_code load_session_finish_index(struct load_session *s, struct kb_err *err);

/*
 * How far an HNSW index build on this database's vector tables has come,
 * as another connection sees it in pg_stat_progress_create_index: 0..100,
 * or -1 when no build runs.  For a progress line polled from a second
 * connection (conn must not be the one building).
 */
enum kb_code load_index_build_percent(struct db_conn *conn, int *percent, struct kb_err *err);

/*
 * 1 while load_session_finish rebuilds an HNSW index (the only time
 * load_index_build_percent has anything to say), else 0.  Safe to call
 * from another thread while the session works; s NULL gives 0.
 */
int load_session_is_rebuilding(const struct load_session *s);

/*
 * While load_session_is_rebuilding: how many of the indexes the rebuild
 * creates (the HNSW index, the full-text index) are built, and how many
 * there are (0 before it has read its notes).  Read by a progress thread.
 */
void load_session_rebuild_steps(const struct load_session *s, int *done, int *total);

/*
 * Record status, counts and the report JSON (may be NULL) in kbpipe_runs,
 * release the lock, and free the session (always, even on failure).
 * `status` is "succeeded", "partial", "failed", "interrupted" or
 * "dry-run".  A run that "succeeded" or ended "partial" also clears the
 * dedup it owed (kbpipe_pending): its pass ran, or the pipeline has none.
 */
enum kb_code load_session_close(struct load_session *s, const char *status,
                                const char *report_json, struct kb_err *err);

/* 1 when a killed --full run of this pipeline left its deletions owed: the
 * caller passes full = 1 to load_session_finish when the scan allows it. */
int load_session_owes_full(const struct load_session *s);

const struct load_counts *load_session_counts(const struct load_session *s);
/* The counts as a JSON object (kbpipe_runs.counts, the run report's "load"); caller frees. */
char *load_counts_json(const struct load_counts *c);
const char *load_session_project_id(const struct load_session *s);
long load_session_run_id(const struct load_session *s);

/* Learning ids (uuid text) this run inserted or changed, for the dedup pass. */
int load_session_touched_learnings(const struct load_session *s, const char *const **ids);

/* ---- source state (state.c): marks kept between runs ------------------ */

/* Marks to store: parallel arrays of owned strings ("" value: delete the mark). */
struct load_marks {
    char **source, **key, **value;
    int n;
};
/* Append one mark (copied).  Release with load_marks_release (*m reusable). */
void load_marks_add(struct load_marks *m, const char *source, const char *key,
                    const char *value);
void load_marks_release(struct load_marks *m);

/*
 * Call fn(arg, key, value) for each stored mark of `source` in the
 * pipeline `pipeline` ("NAME", or "NAME#K/N" for a shard) of the project
 * (NULL project_id: none stored, nothing called).  KB_E_DB on failure.
 */
enum kb_code load_state_read(struct db_conn *conn, const char *project_id, const char *pipeline,
                             const char *source,
                             void (*fn)(void *arg, const char *key, const char *value),
                             void *arg, struct kb_err *err);

/*
 * Store every mark of m in one transaction (upserts; "" deletes).  On
 * failure nothing is stored (KB_E_DB).  Call only for a run that succeeded.
 */
enum kb_code load_state_write(struct db_conn *conn, const char *project_id, const char *pipeline,
                              const struct load_marks *m, struct kb_err *err);

/* ---- file stats (filestat.c): unchanged files skipped unread ---------- */

/* What a run saw of an input file: times in ns since the epoch. */
struct load_file_stat {
    long long size, mtime_ns, ctime_ns, inode, device;
};

struct load_filestats;   /* fields live in filestat.c */

/*
 * The stored file stats of `pipeline` ("NAME" or "NAME#K/N") of the
 * project (NULL project_id: none), read once into *out, which also queues
 * the rows to store; free with load_filestats_free.  KB_E_DB on failure
 * (*out is then still made, empty).
 */
enum kb_code load_filestats_read(struct db_conn *conn, const char *project_id,
                                 const char *pipeline, struct load_filestats **out,
                                 struct kb_err *err);

/*
 * 1 when the stored row of (source, path) has exactly this stat and these
 * settings and was not recorded racily; then *source_id (NULL: a file of
 * many sources), *digest (the source's doc hash, or the digest of its
 * sources) and *n_sources are the row's, borrowed.  0 otherwise.  A match
 * is only a hint: the caller checks the stored sources still agree.
 */
int load_filestats_match(const struct load_filestats *fs, const char *source, const char *path,
                         const struct load_file_stat *st, const char *settings,
                         const char **source_id, const char **digest, long *n_sources);

/* Queue a row (copied) for load_filestats_write: source_id NULL for a file
 * of many sources, digest then their load_digest_hex. */
void load_filestats_add(struct load_filestats *fs, const char *source, const char *path,
                        const struct load_file_stat *st, int is_racy, const char *settings,
                        const char *source_id, const char *digest, long n_sources);

/* Upsert the queued rows (1,000 to a statement) and empty the queue.
 * KB_E_DB on failure; the rows written before it stay (each is a hint). */
enum kb_code load_filestats_write(struct db_conn *conn, const char *project_id,
                                  const char *pipeline, struct load_filestats *fs,
                                  struct kb_err *err);
void load_filestats_free(struct load_filestats *fs);   /* NULL no-op */

/* An order-free digest of (source_type, source_id, doc_hash) triples. */
struct load_digest {
    unsigned long long lane[4];
    long n;
};
void load_digest_add(struct load_digest *d, const char *source_type, const char *source_id,
                     const char *doc_hash);
void load_digest_hex(const struct load_digest *d, char out[65]);

/* 1 when the source is stored with this doc_hash and not yet seen in this
 * run (no side effect). */
int load_source_stored_unseen(const struct load_session *s, const char *source_type,
                              const char *source_id, const char *doc_hash);

/*
 * A file of many sources skipped by its stat: read, on conn, the
 * pipeline's stored sources whose file_path is file_path (of this shard),
 * and when they are exactly n_sources with this digest, all stored and not
 * yet seen, *is_match = 1 and (do_mark) each is marked seen as unchanged;
 * else none is marked (*is_match = 0: read the file).  KB_E_DB on failure.
 */
enum kb_code load_sources_of_file(struct load_session *s, struct db_conn *conn,
                                  const char *file_path, const char *digest, long n_sources,
                                  int do_mark, int *is_match, struct kb_err *err);

/* ---- the dedup pass (dedup.c) ------------------------------------------ */

struct load_dedup_opts {
    double threshold;              /* cosine similarity at or above which two are duplicates */
    enum load_dedup_action action;
};

struct load_dedup_result {
    int n_candidates, n_pairs, n_marked, n_merged;
};

/*
 * Find duplicate learnings among `ids` (NULL: every learning of the
 * project) and against the rest of the project, and apply o->action.
 * Pairs are printed to `out` (may be NULL) as they are handled, most
 * similar first.  The pass is one transaction: on failure nothing is
 * marked or merged.  It also deletes the notes (kbpipe_pending) that these
 * learnings are owed a dedup pass (ids NULL: every note of the project,
 * unless the action is report).
 */
enum kb_code load_dedup(struct db_conn *conn, const char *project_id, const char *const *ids,
                        int n_ids, const struct load_dedup_opts *o, FILE *out,
                        struct load_dedup_result *result, struct kb_err *err);

/*
 * The nearest-neighbour cosine similarity of each learning of the project
 * that the mark pass reads (embedded, not marked as a duplicate): *sims
 * (caller frees) gets *n_out values, computed exactly (all pairs, by
 * embed_nearest_similarity: the pass's float arithmetic), in no particular
 * order; a lone learning has -2 (no neighbour).  KB_E_DB on failure.
 */
enum kb_code load_dedup_nearest(struct db_conn *conn, const char *project_id, float **sims,
                                int *n_out, struct kb_err *err);

/*
 * `kbpipe dedup --histogram` (dedup_histogram.c): bin sims[0..n) (the
 * nearest-neighbour similarities) into n_bins equal bins over [0, 1] (a
 * value below 0 counts in the first, 1 in the last) and print them to out:
 * with is_json one jansson object {project, learnings, bins: [{from, to,
 * count}], threshold, above_threshold (learnings whose neighbour is at or
 * above it), pairs_at_threshold (what the mark pass at the threshold marks),
 * min, max}; else a bar per bin (Unicode blocks when is_tty, '#' when not)
 * with the threshold's bin marked.  KB_E_IO when out cannot be written.
 */
enum kb_code load_dedup_histogram_print(FILE *out, const char *project, const float *sims,
                                        int n, int n_bins, double threshold, int n_pairs,
                                        int is_json, int is_tty, struct kb_err *err);

/* The default threshold for an embedding model (NULL/unknown: 0.95); the
 * built-in hash model's value is calibrated in docs/embeddings.md. */
double load_dedup_default_threshold(const char *model);

/* `kbpipe dedup --project NAME [--threshold T] [--action report|mark|merge]` */
enum kb_code cmd_dedup(int argc, char **argv, struct kb_err *err);

/* ---- the embedding backfill (backfill.c) --------------------------------- */

/*
 * `kbpipe embed backfill`: vectors for rows the service wrote itself.  A
 * row is stale when its embedding is NULL, or its stored content hash is
 * not the SHA-256 of its text (it was edited through SQL), or its stored
 * model is not the provider's.  The text is what `kbpipe run` embeds: a
 * chunk's content; a learning's title, a blank line, then its content.
 * The hash and the model are where the loader keeps them
 * (knowledge_chunks.content_hash, learnings.metadata->>'content_hash', and
 * metadata->>'embedding_model' of both).
 */
enum load_backfill_table { LOAD_BACKFILL_LEARNINGS = 0, LOAD_BACKFILL_CHUNKS };

struct load_backfill_counts {
    long found;            /* stale rows read */
    long reused;           /* of them, vectors found stored under (content_hash, model) */
    long updated;          /* rows written */
    long edited;           /* rows whose text changed between read and write: left */
    long batches;          /* batches committed */
};

struct load_backfill;      /* fields live in backfill.c */

/*
 * Start a backfill of `table` for the project named `project` (KB_E_INPUT
 * when there is none: db_project_check) with vectors of `model`,
 * `batch_rows` rows a batch.
 * conn stays the caller's.  *out is freed with load_backfill_free.
 */
enum kb_code load_backfill_open(struct db_conn *conn, const char *project,
                                enum load_backfill_table table, const char *model,
                                int batch_rows, struct load_backfill **out, struct kb_err *err);
void load_backfill_free(struct load_backfill *b);   /* NULL no-op */

/*
 * The next batch: up to batch_rows stale rows with ids after the last one
 * read (keyset pagination: a run reads each row once), without vectors.
 * *n = 0 when no stale row is left.  KB_E_DB on failure.
 */
enum kb_code load_backfill_next(struct load_backfill *b, int *n, struct kb_err *err);

/* Row i of the batch: its text (len bytes), the hex SHA-256 of that text,
 * its id (uuid text); all borrowed until the next load_backfill_next. */
const char *load_backfill_row_text(const struct load_backfill *b, int i, size_t *len);
const char *load_backfill_row_hash(const struct load_backfill *b, int i);
const char *load_backfill_row_id(const struct load_backfill *b, int i);
/* The batch's n x KB_LOAD_DIM vectors and n flags "row i has its vector". */
float *load_backfill_matrix(struct load_backfill *b);
unsigned char *load_backfill_has_vector(struct load_backfill *b);

/*
 * Fill the rows of the batch that lack a vector from vectors stored under
 * the same (content_hash, model) in knowledge_chunks or learnings of any
 * project; *n_reused counts them.  Reads only.
 */
enum kb_code load_backfill_reuse(struct load_backfill *b, int *n_reused, struct kb_err *err);

/*
 * Write the rows of the batch that have their vector in one transaction:
 * binary COPY into a temporary table, then one UPDATE ... FROM it that
 * sets the embedding, the content hash and the model of each row whose
 * text still hashes to the one embedded (a row edited since it was read
 * is left for the next run, and counted as edited).  On failure the
 * transaction is rolled back: the rows are as before the call.
 */
enum kb_code load_backfill_write(struct load_backfill *b, struct kb_err *err);

const struct load_backfill_counts *load_backfill_counts(const struct load_backfill *b);

/*
 * The embedding models recorded for the project's stored vectors
 * (kbpipe_embedding_models, both tables; rows recording none are not
 * named), as a comma-separated list in out[out_len] ("" when none).
 * KB_E_INPUT when the project does not exist (db_project_check).
 */
enum kb_code load_project_models(struct db_conn *conn, const char *project, char *out,
                                 size_t out_len, int *n_models, struct kb_err *err);

#endif /* KB_LOAD_H */
