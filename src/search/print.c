/*
 * print.c - the results of a search on stdout: for people, one line per
 * result with its similarity (vector mode) or fused score (hybrid, text),
 * title and source, the heading path when it differs, and the snippet
 * lines (the sample in cmd_search.c); with --json an array of objects for
 * scripts, built with jansson, that also has each leg's rank and score.
 * On a terminal the loaded text is shown with its control characters
 * escaped (kb_term_escape).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "search_int.h"

/* See search_int.h. */
json_t *search_json_text(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();   /* NULL, or (never from PostgreSQL) invalid UTF-8 */
}

/*
 * Loaded text as it may be shown: on a terminal, control characters
 * escaped (util/term.c: a document's ESC sequences must not rewrite the
 * operator's screen); elsewhere as stored.  The result lives in b (or is s).
 */
static const char *shown(struct kb_buf *b, const char *s, int is_tty)
{
    if (!is_tty || s == NULL)
        return s;
    b->len = 0;
    kb_term_escape(b, s, strlen(s));
    kb_buf_append(b, "", 0);
    return b->data ? b->data : "";
}

/* The hit's snippet lines as a JSON array or "| line" rows on out. */
static json_t *put_snippet(const struct hit *h, const char *query, FILE *out)
{
    struct snippet_line lines[SNIPPET_LINES];
    int n = search_snippet_lines(h->content, query, lines);
    json_t *arr = out ? NULL : json_array();
    struct kb_buf esc;
    kb_buf_init(&esc);
    int is_tty = out && isatty(fileno(out));
    for (int i = 0; i < n; i++) {
        char *t = search_snippet_text(&lines[i]);
        if (out)
            fprintf(out, "    | %s\n", shown(&esc, t, is_tty));
        else
            json_array_append_new(arr, search_json_text(t));
        free(t);
    }
    kb_buf_release(&esc);
    return arr;
}

/* A result column as a JSON number, integer or null. */
static json_t *column_number(const struct db_rows *rows, int i, int col, int is_integer)
{
    if (db_rows_isnull(rows, i, col))
        return json_null();
    const char *v = db_rows_get(rows, i, col);
    return is_integer ? json_integer(atoi(v)) : json_real(strtod(v, NULL));
}

/* score, similarity, text_score and each leg's rank of result row i into o. */
static void put_scores(json_t *o, const struct db_rows *rows, int i)
{
    json_object_set_new(o, "score", column_number(rows, i, SEARCH_COL_SCORE, 0));
    json_object_set_new(o, "similarity", column_number(rows, i, SEARCH_COL_SIMILARITY, 0));
    json_object_set_new(o, "text_score", column_number(rows, i, SEARCH_COL_TEXT_SCORE, 0));
    json_object_set_new(o, "vector_rank", column_number(rows, i, SEARCH_COL_VECTOR_RANK, 1));
    json_object_set_new(o, "text_rank", column_number(rows, i, SEARCH_COL_TEXT_RANK, 1));
}

/*
 * See search_int.h.  Chunk rows: id, similarity, title, path, heading, content, chunk_index,
 * source_type, source_id, knowledge_source_id, url.  Learning rows: id,
 * similarity, title, NULL, NULL, content, learning_type, category,
 * confidence_score.
 */
void search_print_results(const struct search_args *a, const struct db_rows *rows,
                          const struct hit *hits, int n)
{
    if (a->is_json) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++) {
            const struct hit *h = &hits[i];
            json_t *o = json_object();
            json_object_set_new(o, "rank", json_integer(i + 1));
            put_scores(o, rows, i);
            if (a->is_learnings) {
                json_object_set_new(o, "learning_id", search_json_text(h->id));
                json_object_set_new(o, "title", search_json_text(h->title));
                json_object_set_new(o, "learning_type", search_json_text(db_rows_get(rows, i, 6)));
                json_object_set_new(o, "category", db_rows_isnull(rows, i, 7) ? json_null()
                                    : search_json_text(db_rows_get(rows, i, 7)));
                json_object_set_new(o, "confidence_score",
                                    json_real(atof(db_rows_get(rows, i, 8))));
                if (h->usage_count >= 0)
                    json_object_set_new(o, "usage_count", json_integer(h->usage_count));
                json_object_set_new(o, "duplicate_of", search_json_text(h->duplicate_of));
            } else {
                json_object_set_new(o, "chunk_id", search_json_text(h->id));
                json_object_set_new(o, "chunk_index", json_integer(atoi(db_rows_get(rows, i, 6))));
                json_object_set_new(o, "source_type", search_json_text(db_rows_get(rows, i, 7)));
                json_object_set_new(o, "source_id", search_json_text(db_rows_get(rows, i, 8)));
                json_object_set_new(o, "knowledge_source_id",
                                    search_json_text(db_rows_get(rows, i, 9)));
                json_object_set_new(o, "title", search_json_text(h->title));
                json_object_set_new(o, "path", search_json_text(h->path));
                json_object_set_new(o, "url", db_rows_isnull(rows, i, 10) ? json_null()
                                    : search_json_text(db_rows_get(rows, i, 10)));
                json_object_set_new(o, "heading_path", search_json_text(h->heading));
            }
            json_object_set_new(o, "snippet", put_snippet(h, a->query, NULL));
            json_object_set_new(o, "content", search_json_text(h->content));
            json_array_append_new(arr, o);
        }
        json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        fputc('\n', stdout);
        json_decref(arr);
        return;
    }
    if (n == 0 && a->mode == SEARCH_VECTOR)
        printf("no %s in project '%s' match at similarity %.2f or above\n",
               a->is_learnings ? "learnings" : "chunks", a->project, a->min_similarity);
    else if (n == 0)
        printf("no %s in project '%s' match the query\n",
               a->is_learnings ? "learnings" : "chunks", a->project);
    struct kb_buf esc;
    kb_buf_init(&esc);
    int is_tty = isatty(fileno(stdout));
    for (int i = 0; i < n; i++) {
        const struct hit *h = &hits[i];
        /* a cosine similarity reads well in 3 decimals, a fusion score (<= 2/61) in 4 */
        printf(a->mode == SEARCH_VECTOR ? "%2d. %.3f  %s" : "%2d. %.4f  %s", i + 1,
               h->similarity, shown(&esc, h->title ? h->title : h->path, is_tty));
        if (a->is_learnings) {
            printf("  [%s", shown(&esc, db_rows_get(rows, i, 6), is_tty));
            if (!db_rows_isnull(rows, i, 7))
                printf("; %s", shown(&esc, db_rows_get(rows, i, 7), is_tty));
            printf("; confidence %.2f", atof(db_rows_get(rows, i, 8)));
            if (h->usage_count >= 0)
                printf("; used %d time%s", h->usage_count, h->usage_count == 1 ? "" : "s");
            if (h->duplicate_of)
                printf("; duplicate of %.8s", h->duplicate_of);
            printf("]\n");
        } else {
            if (h->title && h->path && strcmp(h->title, h->path) != 0)
                printf("  (%s)", shown(&esc, h->path, is_tty));
            printf("\n");
            if (h->heading && *h->heading && (h->title == NULL || strcmp(h->heading, h->title)))
                printf("    %s\n", shown(&esc, h->heading, is_tty));
        }
        put_snippet(h, a->query, stdout);
    }
    kb_buf_release(&esc);
}
