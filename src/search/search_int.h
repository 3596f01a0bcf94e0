/*
 * search_int.h - shared by the files of src/search only: the parsed
 * command line, what one search found, and the calls between the
 * command (cmd_search.c), its queries (query.c), the snippet choice
 * (snippet.c) and the printing (print.c).
 */
#ifndef KB_SEARCH_INT_H
#define KB_SEARCH_INT_H

#include <jansson.h>
#include <stdio.h>

#include "db/db.h"
#include "search.h"

struct kb_pipeline;
struct pipeline_embedding;

#define SEARCH_MAX_K 1000      /* hnsw.ef_search's own upper bound */
#define SNIPPET_LINES 3
#define SNIPPET_BYTES 160      /* a longer line is cut around its first match */

#define SEARCH_MAX_SOURCE_TYPES 8

enum search_mode { SEARCH_HYBRID = 0, SEARCH_VECTOR, SEARCH_TEXT };
extern const char *const search_mode_names[];   /* by mode: "hybrid", "vector", "text" */

struct search_args {
    const char *project, *category, *pipeline_path;
    char *query;                   /* the words joined; owned by cmd_search (borrowed in eval) */
    int k, is_learnings, is_json, is_use, is_with_duplicates, has_min_similarity;
    double min_similarity;
    enum search_mode mode;
    /* filters (NULL / 0: none); docs/search.md */
    const char *source_types[SEARCH_MAX_SOURCE_TYPES];
    int n_source_types;
    const char *path, *label, *state, *since, *until, *tag;
};

/* What one search found, borrowed from the result rows. */
struct hit {
    const char *id, *title, *path, *heading, *content;
    const char *duplicate_of;      /* learnings: the keeper's id when marked, else NULL */
    double similarity;             /* the value shown: similarity (vector) or fused score */
    int usage_count;               /* --use: the new count; else -1 */
};

/*
 * The columns of a result row (search_rank).  0-10 as search_print_results
 * reads them: chunks id, shown value, title, path, heading, content,
 * chunk_index, source_type, source_id, knowledge_source_id, url; learnings
 * id, shown value, title, NULL, NULL, content, learning_type, category,
 * confidence_score, NULL, NULL.  Then both:
 */
enum {
    SEARCH_COL_SOURCE_ID = 8,      /* chunks only */
    SEARCH_COL_SCORE = 11,         /* reciprocal rank fusion score */
    SEARCH_COL_SIMILARITY,         /* cosine; NULL when the vector leg did not find the row */
    SEARCH_COL_TEXT_SCORE,         /* ts_rank_cd; NULL when the text leg did not */
    SEARCH_COL_VECTOR_RANK,        /* 1-based rank in each leg, or NULL */
    SEARCH_COL_TEXT_RANK,
    SEARCH_COL_FILE_PATH,          /* chunks: the source's file_path (may be NULL) */
    SEARCH_COL_DUPLICATE_OF,       /* learnings: metadata duplicate_of, or NULL */
};

/* ---- options.c: what the command lines of search and eval share ---------- */

/* *out = the mode named s; KB_E_USAGE for another word. */
enum kb_code search_mode_parse(const char *s, enum search_mode *out, struct kb_err *err);

/* *out = s as a whole number 1..max; KB_E_USAGE naming `option` otherwise. */
enum kb_code search_parse_count(const char *option, const char *s, int max, int *out,
                                struct kb_err *err);

/* The KB_E_USAGE for getopt's answer c (':' or '?') of `kbpipe command`;
 * an unknown long option gets the nearest of longopts as a did-you-mean. */
enum kb_code search_bad_option(const char *command, int c, int argc, char **argv,
                               const struct option *longopts, struct kb_err *err);

/* The filters of a as the jsonb object the SQL functions read (caller decrefs). */
json_t *search_filters_json(const struct search_args *a);

/* ---- session.c: connection, project, model, query vector ------------------ */

struct search_embedding {
    const char *model;                          /* borrowed; NULL in text mode */
    const struct pipeline_embedding *pipeline;  /* the provider to ask; NULL: kbpipe-hash-v1 */
};

struct search_session {
    struct db_conn *conn;
    struct kb_pipeline *pipeline;  /* --pipeline, or NULL */
    char project_id[40];
    struct db_rows *models;        /* search_find_project's rows: SEARCH_COL_MODEL, _ROWS */
    int n_models;                  /* how many of those rows name a model */
    struct search_embedding emb;
};

/*
 * Load a->pipeline_path, connect (--db, else the pipeline's connection:,
 * else the environment), find a->project and, unless a->mode is text,
 * choose the model the query must be embedded with.  KB_E_INPUT for an
 * unknown project or rows of several (or unrecorded) models; KB_E_CONFIG
 * when the rows' model needs settings not given.  *s is closed with
 * search_session_close() also on failure.
 */
enum kb_code search_session_open(const struct search_args *a, struct search_session *s,
                                 struct kb_err *err);

/* The vector of `text` as pgvector text into *vec_out (caller frees); KB_E_EMBED from a provider. */
enum kb_code search_embed_query(const struct search_embedding *e, const char *text,
                                char **vec_out, struct kb_err *err);

/* Disconnect and free; *s may be zeroed or half-opened. */
void search_session_close(struct search_session *s);

/* ---- eval.c: the question file of `kbpipe eval` and its scores ------------ */

#define EVAL_MAX_EXPECTED 8

struct eval_question {
    const char *text;              /* points into the set's text */
    const char *expected[EVAL_MAX_EXPECTED];
    int n_expected;
    long line;
};

struct eval_set {
    struct eval_question *items;
    int n, cap;
    char *text;                    /* the file, split in place */
};

struct eval_score {
    int n, n_at_1, n_at_k;
    double rr_sum;                 /* sum of 1 / rank over ranks <= k */
};

/*
 * Read the question file at path into *out (released with
 * search_eval_release, also on failure).  KB_E_IO when it cannot be read;
 * KB_E_INPUT naming file:line for a line that is not QUESTION<TAB>EXPECTED
 * or not UTF-8, or for a file without questions.
 */
enum kb_code search_eval_read(const char *path, struct eval_set *out, struct kb_err *err);
void search_eval_release(struct eval_set *s);

/*
 * The 1-based rank, among the distinct sources of the n result rows (in
 * order of first appearance), of the first that q expects; 0 when none.
 * file_paths may be NULL.
 */
int search_eval_rank(const struct eval_question *q, const char *const *source_ids,
                     const char *const *file_paths, int n);

/* Count one question answered at `rank` (0: not found) into s, cut-off k. */
void search_eval_score_add(struct eval_score *s, int rank, int k);

/* The p-th percentile (nearest rank) of v[0..n), which it sorts; 0 for n = 0. */
double search_eval_percentile(double *v, int n, double p);

/* ---- query.c: the SQL of search ------------------------------------------ */

/*
 * In one statement, the first of a connection from db_connect_deferred or
 * db_open_deferred (whose caller runs db_session_diagnose when the command
 * fails): the session's client_min_messages, the project's id into id_out
 * and, in *rows_out (caller frees), its models for `target` ("chunks" or
 * "learnings") from kbpipe_embedding_models, most rows first, at most 6:
 * row i has the model (or NULL: rows that record none) in column
 * SEARCH_COL_MODEL and its row count in SEARCH_COL_ROWS; *n_models_out of
 * them (0: one row of NULLs).  KB_E_INPUT naming a few known projects when
 * it is absent (a second statement, then only).
 */
#define SEARCH_COL_MODEL 1
#define SEARCH_COL_ROWS 2
enum kb_code search_find_project(struct db_conn *conn, const char *name, const char *target,
                                 char id_out[40], struct db_rows **rows_out, int *n_models_out,
                                 struct kb_err *err);

/*
 * Rank a->k rows for a->query (vector `vec`, NULL in text mode) with
 * kbpipe_search_ranked, joined with the rows as search_hybrid_chunks /
 * search_hybrid_learnings join them: the mode, the filters,
 * duplicates hidden unless a->is_with_duplicates; in vector mode rows
 * under a->min_similarity are dropped.  *rows_out (caller frees) has the
 * SEARCH_COL_* columns, best first.  Writes nothing.
 */
enum kb_code search_rank(struct db_conn *conn, const struct search_args *a,
                         const char *project_id, const char *vec, struct db_rows **rows_out,
                         struct kb_err *err);

/* KB_E_USAGE when --since or --until is not a time the server reads. */
enum kb_code search_check_times(struct db_conn *conn, const struct search_args *a,
                                struct kb_err *err);

/*
 * In one transaction: search_rank, the search_queries row, and with --use
 * one use of each learning shown that is not a duplicate.  *rows_out
 * (caller frees) has the rows search_print_results() reads; *hits_out
 * (caller frees) one hit per row, usage_count filled.  On failure the
 * transaction is rolled back.
 */
enum kb_code search_run(struct db_conn *conn, const struct search_args *a,
                        const char *project_id, const char *model, const char *vec,
                        struct db_rows **rows_out, struct hit **hits_out, struct kb_err *err);

/* ---- snippet.c: the lines that best match the query ---------------------- */

struct snippet_line {
    const char *p;
    size_t len, first;             /* first: offset of the first match */
    int score;                     /* 2 x stems matched, - 1 for a Markdown heading */
};

/*
 * Up to SNIPPET_LINES lines of content that share the most query stems with
 * it, in document order, each trimmed of spaces; the first non-blank line
 * when none shares a word.  Ties go to body text over a Markdown heading
 * (the heading path is shown already), then to the earlier line.  Returns
 * how many.
 */
int search_snippet_lines(const char *content, const char *query,
                         struct snippet_line out[SNIPPET_LINES]);

/*
 * A snippet line as text the caller frees: at most SNIPPET_BYTES bytes,
 * cut around its first match on UTF-8 boundaries, "..." where cut.
 */
char *search_snippet_text(const struct snippet_line *l);

/* ---- print.c: the results on stdout --------------------------------------- */

/* s as a JSON string; null for NULL (or text that is not UTF-8). */
json_t *search_json_text(const char *s);

/* The n results as lines for people, or with --json as a JSON array. */
void search_print_results(const struct search_args *a, const struct db_rows *rows,
                          const struct hit *hits, int n);

#endif /* KB_SEARCH_INT_H */
