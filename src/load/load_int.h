/*
 * load_int.h - shared by the files of src/load only.
 */
#ifndef KB_LOAD_INT_H
#define KB_LOAD_INT_H

#include <stdint.h>

#include "db/db_pq.h"
#include "load/load.h"

/* ---- copy_binary.c: COPY ... FROM STDIN (FORMAT binary) ---------------- */

struct load_copy;

/* Send `sql` (a COPY ... FROM STDIN WITH (FORMAT binary)) and the header. */
enum kb_code load_copy_begin(PGconn *pg, const char *sql, struct load_copy **out,
                             struct kb_err *err);
void load_copy_tuple(struct load_copy *c, int n_fields);
void load_copy_null(struct load_copy *c);
void load_copy_int(struct load_copy *c, int width, int64_t v);   /* width 2, 4 or 8 */
void load_copy_text(struct load_copy *c, const char *s, size_t len);
void load_copy_jsonb(struct load_copy *c, const char *json);      /* NULL -> {} */
void load_copy_uuid(struct load_copy *c, const unsigned char uuid[16]);
void load_copy_oid(struct load_copy *c, uint32_t oid);           /* oid, regconfig, regclass */
void load_copy_vector(struct load_copy *c, const float *v, int dim);
/* Send what is buffered when it is large; KB_E_DB if the server went away. */
enum kb_code load_copy_maybe_flush(struct load_copy *c, struct kb_err *err);
/* Send the trailer, end the COPY and free c; *n_rows gets the server's count. */
enum kb_code load_copy_end(struct load_copy *c, long *n_rows, struct kb_err *err);
/* Abandon the COPY (the caller rolls back) and free c. */
void load_copy_abort(struct load_copy *c);

/* "xxxxxxxx-xxxx-..." -> 16 bytes; 0 when malformed. */
int load_uuid_parse(const char *text, unsigned char out[16]);

/* pgvector's binary send format (dim, unused, big-endian floats) -> out[KB_LOAD_DIM];
 * 0 when the length or dimension is not the schema's (batch.c). */
int load_vector_from_binary(const unsigned char *p, int len, float *out);

/*
 * Stored vectors by (content_hash, model), from any project's chunks or
 * learnings (reuse.c): for each i < n with hashes[i] not NULL and
 * has_vector[i] 0, a stored row of that hash and model fills
 * matrix[i * KB_LOAD_DIM ...] and sets has_vector[i]; *n_found counts them.
 * Shared by a run's batches and `kbpipe embed backfill`.
 */
enum kb_code load_reuse_lookup(struct db_conn *conn, const char *const *hashes, int n,
                               const char *model, float *matrix, unsigned char *has_vector,
                               int *n_found, struct kb_err *err);

/* ---- sql_array.c: text[] literals for set-based statements ------------- */

/* Append one element to a PostgreSQL array literal under construction. */
void load_array_add(struct kb_buf *b, const char *s);   /* s NULL -> NULL element */
void load_array_open(struct kb_buf *b);
void load_array_close(struct kb_buf *b);

/* ---- issues.c: GitHub issues into the issues and comments tables ------- */

struct load_issue_ref {
    const struct load_issue *issue;     /* deep copy in the batch's arena */
    int src_index;
};

/* Upsert n issues and replace their comments, inside the open transaction. */
enum kb_code load_issues_upsert(struct load_session *s, const struct load_issue_ref *issues,
                                int n, struct kb_err *err);

/* ---- batch.c's records, shared with reuse.c ----------------------------- */

struct batch_source {
    struct load_source src;     /* strings live in the batch arena */
    char id[40];                /* knowledge_sources.id after the upsert */
    int is_new;                 /* not stored when the run began (the session's table) */
    int was_inserted;           /* the upsert inserted it: it has no old chunks */
    int is_continued;           /* the open source of the batch before: upserted there */
};

struct batch_row {              /* a chunk or a learning */
    int src_index;
    int is_learning;
    struct load_chunk chunk;    /* for learnings: content, len, content_hash, metadata */
    struct load_learning learning;
};

struct load_batch {
    const struct load_session *session;   /* its table of stored sources says what is new */
    int max_rows;
    struct kb_arena *arena;
    struct batch_source *sources;
    int n_sources, cap_sources;
    struct batch_row *rows;
    int n_rows, cap_rows;
    float *matrix;              /* cap_rows x KB_LOAD_DIM */
    unsigned char *has_vector;  /* cap_rows */
    char **origins;             /* per row, in the arena */
    struct load_issue_ref *issues;
    int n_issues, cap_issues;
    int is_open;                /* the last source goes on in the next batch: no commit */
};

/* ---- session internals shared with batch.c and index.c ----------------- */

/* bytes of a stored doc_hash kept per source (120 bits: a changed document
 * passes as unchanged with probability 2^-120) */
#define KB_SRC_HASH 15

enum source_state {
    SRC_EMPTY = 0,
    SRC_STORED,          /* stored, not seen yet in this run */
    SRC_SEEN_SAME,       /* stored, seen with the stored doc_hash */
    SRC_NEW_SEEN,        /* not stored, seen */
    SRC_SEEN_CHANGED,    /* stored, seen with another doc_hash */
    SRC_FOREIGN,         /* stored, owned by another pipeline: never loaded here */
};

struct source_entry {    /* 32 bytes: the whole per-source cost of a session */
    unsigned char key[16];            /* blake2b of source_type \0 source_id */
    unsigned char hash[KB_SRC_HASH];  /* stored doc_hash prefix; once seen: where (seen_at) */
    unsigned char state;              /* enum source_state */
};
_Static_assert(sizeof(struct source_entry) == 32, "a source entry is 32 bytes");

struct load_session {
    struct db_conn *conn;
    struct db_conn *read_conn;   /* reuse lookups while conn writes (may be NULL) */
    struct load_opts opts;
    char project_id[40];
    uint32_t search_config;    /* the project's search_language (a regconfig oid), written
                                  with every chunk and learning (migration 008) */
    long run_id;
    struct source_entry *table;
    size_t cap, used;
    char **stems;              /* origin paths (minus the source_id) seen this run */
    int n_stems;
    char **owners;             /* the other pipelines owning sources of the project */
    int n_owners;
    struct load_counts counts;
    long rows_at_start;        /* knowledge_chunks rows when the run began (-1: not counted yet) */
    long rows_of_others;       /* ... of them, other projects' rows (counted with rows_at_start) */
    int has_stored_rows;       /* knowledge_chunks or learnings had a row when the run began */
    long rows_written;
    long rows_expected;        /* the run's estimate of its incoming rows (0: unknown) */
    int int_width_chunk_index, int_width_token_count;
    int index_dropped;         /* this run (or a killed one) dropped an HNSW index */
    _Atomic int is_rebuilding; /* load_index_rebuild is at work (read by a progress thread) */
    _Atomic int rebuild_done;  /* ... the indexes it has built, of rebuild_total */
    _Atomic int rebuild_total;
    int is_index_kept_logged;  /* auto kept it for other projects, and said so */
    int owes_full;             /* a killed --full run left its deletions to this one */
    long n_owed_dedup;         /* learnings a killed run left without their dedup pass */
    char **touched;            /* learning ids inserted or changed, or owed by a killed run */
    int n_touched, cap_touched;
    /* a document larger than a batch: its batches share one transaction */
    int is_tx_open;            /* a flushed batch left the transaction open */
    char open_id[40];          /* ... and this is the id of its unfinished source */
    struct load_tx_mark {      /* the writer's counts when the transaction began */
        long chunks_written, chunks_deleted, learnings_written, batches, sources_written;
        long rows_written;
        int n_touched;
    } tx_at;
};

/* batch.c: undo the counts of a transaction that rolled back (tx_at). */
void load_tx_undo(struct load_session *s);

/* ---- owed.c: what a killed run leaves to the next one ------------------ */

/* Read the run's kbpipe_pending notes (pipeline = opts.lock_name: a shard's
 * are its own) into the session (owed dedup candidates, an owed --full) and
 * say so. */
enum kb_code load_owed_read(struct load_session *s, struct kb_err *err);
/* Insert the run's kbpipe_runs row (host, pid, backend) and, for a --full
 * run, its owed-deletions note, in one transaction; sets s->run_id. */
enum kb_code load_run_record(struct load_session *s, struct kb_err *err);
/* Delete the run's notes (keyed by opts.lock_name) of kind `what` ("dedup", "full"). */
enum kb_code load_owed_clear(struct load_session *s, const char *what, struct kb_err *err);

/* session.c: call fn for each stored source of the pipeline (with_others:
 * and of the project's other pipelines), (source_type, source_id, doc_hash
 * or "", id, pipeline), row by row; stops at fn's first failure. */
enum kb_code load_each_stored_source(struct load_session *s, int with_others,
                                     enum kb_code (*fn)(struct load_session *s,
                                                        const char *const *cols, void *ctx,
                                                        struct kb_err *err),
                                     void *ctx, struct kb_err *err);
/* 1 when the source key belongs to this run's shard. */
int load_key_in_shard(const struct load_session *s, const unsigned char key[16]);

/* Add a learning id to the run's dedup candidates (copied). */
void load_session_touch(struct load_session *s, const char *id);

/* Hash a source identity into 16 bytes. */
void load_source_key(const char *source_type, const char *source_id, unsigned char key[16]);
/* The entry of key, or NULL (a pointer into s's table, like strchr's). */
struct source_entry *load_table_find(const struct load_session *s, const unsigned char key[16]);
struct source_entry *load_table_insert(struct load_session *s, const unsigned char key[16]);

/* index.c: drop the HNSW index of knowledge_chunks inside the open
 * transaction when the strategy says so for `incoming` more rows. */
enum kb_code load_index_before_copy(struct load_session *s, long incoming, struct kb_err *err);
/* Rebuild every index recorded in kbpipe_dropped_indexes. */
enum kb_code load_index_rebuild(struct load_session *s, struct kb_err *err);

#endif /* KB_LOAD_INT_H */
