/*
 * print.c - the results of a search on stdout: for people, one line per
 * result with its similarity, title and source, the heading path when it
 * differs, and the snippet lines (the sample in cmd_search.c); with --json
 * an array of objects for scripts, built with jansson.
 */
#include <stdlib.h>
#include <string.h>

#include "search_int.h"

/* See search_int.h. */
json_t *search_json_text(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();   /* NULL, or (never from PostgreSQL) invalid UTF-8 */
}

/* The hit's snippet lines as a JSON array or "| line" rows on out. */
static json_t *put_snippet(const struct hit *h, const char *query, FILE *out)
{
    struct snippet_line lines[SNIPPET_LINES];
    int n = search_snippet_lines(h->content, query, lines);
    json_t *arr = out ? NULL : json_array();
    for (int i = 0; i < n; i++) {
        char *t = search_snippet_text(&lines[i]);
        if (out)
            fprintf(out, "    | %s\n", t);
        else
            json_array_append_new(arr, search_json_text(t));
        free(t);
    }
    return arr;
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
            json_object_set_new(o, "similarity", json_real(h->similarity));
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
    if (n == 0)
        printf("no %s in project '%s' match at similarity %.2f or above\n",
               a->is_learnings ? "learnings" : "chunks", a->project, a->min_similarity);
    for (int i = 0; i < n; i++) {
        const struct hit *h = &hits[i];
        printf("%2d. %.3f  %s", i + 1, h->similarity, h->title ? h->title : h->path);
        if (a->is_learnings) {
            printf("  [%s", db_rows_get(rows, i, 6));
            if (!db_rows_isnull(rows, i, 7))
                printf("; %s", db_rows_get(rows, i, 7));
            printf("; confidence %.2f", atof(db_rows_get(rows, i, 8)));
            if (h->usage_count >= 0)
                printf("; used %d time%s", h->usage_count, h->usage_count == 1 ? "" : "s");
            printf("]\n");
        } else {
            if (h->title && h->path && strcmp(h->title, h->path) != 0)
                printf("  (%s)", h->path);
            printf("\n");
            if (h->heading && *h->heading && (h->title == NULL || strcmp(h->heading, h->title)))
                printf("    %s\n", h->heading);
        }
        put_snippet(h, a->query, stdout);
    }
}
