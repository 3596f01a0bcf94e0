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

#define SEARCH_MAX_K 1000      /* hnsw.ef_search's own upper bound */
#define SNIPPET_LINES 3
#define SNIPPET_BYTES 160      /* a longer line is cut around its first match */

struct search_args {
    const char *project, *category, *pipeline_path;
    char *query;                   /* the words joined; owned */
    int k, is_learnings, is_json, is_use;
    double min_similarity;
};

/* What one search found, borrowed from the result rows. */
struct hit {
    const char *id, *title, *path, *heading, *content;
    double similarity;
    int usage_count;               /* --use: the new count; else -1 */
};

/* ---- query.c: the SQL of search ------------------------------------------ */

/* The project's id into id_out; KB_E_INPUT naming a few known projects when absent. */
enum kb_code search_find_project(struct db_conn *conn, const char *name, char id_out[40],
                                 struct kb_err *err);

/*
 * The embedding models of the project's searchable rows, most rows first.
 * *rows_out (caller frees) has (model or NULL, count) per model.
 */
enum kb_code search_survey_models(struct db_conn *conn, const struct search_args *a,
                                  const char *project_id, struct db_rows **rows_out,
                                  struct kb_err *err);

/*
 * In one transaction: widen the HNSW scan for k rows, run the search, log
 * it in search_queries, count --use.  *rows_out (caller frees) has the
 * rows search_print_results() reads; *hits_out (caller frees) one hit per
 * row, usage_count filled.  On failure the transaction is rolled back.
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
