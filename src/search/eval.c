/*
 * eval.c - the labelled question set of `kbpipe eval` and its scores.
 *
 * A question file is UTF-8 text, one question a line:
 *
 *     QUESTION<TAB>EXPECTED[<TAB>EXPECTED...]
 *
 * EXPECTED is a source id (a file's path under its root, owner/repo#123)
 * or a glob over source ids and file paths (* any run, / included; ?
 * one character; \x a literal x, as `kbpipe search --path`); the question
 * is answered when a result's source matches any of them.  Blank lines and
 * lines that start with '#' are skipped; a CR before the newline is
 * dropped.  Any other line without a tab, with an empty question or
 * expectation, or not UTF-8 is an error naming file:line.
 *
 * Ranks are ranks of sources, not of chunks: the results' sources in order
 * of first appearance, so two chunks of one file count once.  recall@1 and
 * recall@k are the share of questions whose expected source is first / in
 * the first k; MRR@k the mean of 1 / rank over them (0 beyond k).
 * Tests: tests/unit/test_search.c (group eval.c).
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "search/search_int.h"

/* Append the question of `line` (split in place at its tabs); returns its number of tabs. */
static int add_question(struct eval_set *s, char *line, long line_no)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->items = kb_xrealloc(s->items, sizeof *s->items * (size_t)s->cap);
    }
    struct eval_question *q = &s->items[s->n++];
    memset(q, 0, sizeof *q);
    q->line = line_no;
    q->text = line;
    int n_tabs = 0;
    for (char *p = strchr(line, '\t'); p; p = strchr(p + 1, '\t')) {
        *p = '\0';
        if (n_tabs++ < EVAL_MAX_EXPECTED)
            q->expected[q->n_expected++] = p + 1;
    }
    return n_tabs;
}

enum kb_code search_eval_read(const char *path, struct eval_set *out, struct kb_err *err)
{
    memset(out, 0, sizeof *out);
    struct kb_buf b;
    kb_buf_init(&b);
    enum kb_code rc = kb_buf_read_file(&b, path, err);
    if (rc != KB_OK) {
        kb_buf_release(&b);
        return rc;
    }
    size_t len = b.len;
    out->text = kb_buf_detach(&b);
    if (out->text == NULL)
        out->text = kb_xstrdup("");
    char at[300];
    long line_no = 0;
    for (char *p = out->text; p < out->text + len;) {
        char *eol = memchr(p, '\n', (size_t)(out->text + len - p));
        char *next = eol ? eol + 1 : out->text + len;
        char *end = eol ? eol : next;
        line_no++;
        snprintf(at, sizeof at, "%.256s:%ld", path, line_no);
        if (end > p && end[-1] == '\r')
            end--;
        *end = '\0';
        size_t n = (size_t)(end - p);
        if (memchr(p, '\0', n) != NULL || kb_utf8_valid_prefix(p, n) != n)
            return KB_FAIL_AT(err, KB_E_INPUT, at, "the line is not UTF-8 text; save the "
                              "question file as UTF-8");
        if (n == 0 || p[strspn(p, " \t")] == '\0' || p[0] == '#') {
            p = next;
            continue;
        }
        int n_tabs = add_question(out, p, line_no);
        const struct eval_question *q = &out->items[out->n - 1];
        if (n_tabs > EVAL_MAX_EXPECTED)
            return KB_FAIL_AT(err, KB_E_INPUT, at, "%d expected sources; at most %d a "
                              "question (a glob can cover several)", n_tabs, EVAL_MAX_EXPECTED);
        if (q->n_expected == 0 || q->text[strspn(q->text, " ")] == '\0')
            return KB_FAIL_AT(err, KB_E_INPUT, at, "expected QUESTION<TAB>EXPECTED SOURCE "
                              "(a source id or a glob), got '%.60s'", q->text);
        for (int i = 0; i < q->n_expected; i++)
            if (*q->expected[i] == '\0')
                return KB_FAIL_AT(err, KB_E_INPUT, at, "expected source %d is empty; "
                                  "give a source id or a glob after each tab", i + 1);
        p = next;
    }
    if (out->n == 0)
        return KB_FAIL_AT(err, KB_E_INPUT, path, "no questions in the file; write one a "
                          "line as QUESTION<TAB>EXPECTED SOURCE");
    return KB_OK;
}

void search_eval_release(struct eval_set *s)
{
    free(s->items);
    free(s->text);
    memset(s, 0, sizeof *s);
}

/* 1 when the source (its id, its file path or NULL) is one q expects. */
static int source_matches(const struct eval_question *q, const char *source_id,
                          const char *file_path)
{
    for (int i = 0; i < q->n_expected; i++) {
        const char *e = q->expected[i];
        if ((source_id && (strcmp(e, source_id) == 0 || fnmatch(e, source_id, 0) == 0)) ||
            (file_path && (strcmp(e, file_path) == 0 || fnmatch(e, file_path, 0) == 0)))
            return 1;
    }
    return 0;
}

int search_eval_rank(const struct eval_question *q, const char *const *source_ids,
                     const char *const *file_paths, int n)
{
    int rank = 0;
    for (int i = 0; i < n; i++) {
        int is_new = 1;   /* a source seen at an earlier row keeps that rank */
        for (int j = 0; j < i && is_new; j++)
            is_new = strcmp(source_ids[i], source_ids[j]) != 0;
        if (!is_new)
            continue;
        rank++;
        if (source_matches(q, source_ids[i], file_paths ? file_paths[i] : NULL))
            return rank;
    }
    return 0;
}

void search_eval_score_add(struct eval_score *s, int rank, int k)
{
    s->n++;
    if (rank == 1)
        s->n_at_1++;
    if (rank >= 1 && rank <= k) {
        s->n_at_k++;
        s->rr_sum += 1.0 / rank;
    }
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double search_eval_percentile(double *v, int n, double p)
{
    if (n <= 0)
        return 0.0;
    qsort(v, (size_t)n, sizeof *v, by_double);
    int i = (int)(p / 100.0 * n + 0.999999) - 1;   /* nearest rank */
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}
