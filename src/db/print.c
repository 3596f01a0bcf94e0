/*
 * print.c - query results for people and for scripts: an aligned text
 * table (psql's "aligned" format, without the frame) or a JSON array of
 * objects, built with jansson (`stats`, `sources`, `secret list|audit`).
 * The JSON is compact (no space after ',' or ':'), keys in column order;
 * a number is the server's text read as a JSON integer or real, a real
 * printed to 15 significant digits (so "0.3" stays 0.3; a numeric's
 * trailing zeros go: 0.5000 is 0.5); json and jsonb cells are parsed and
 * printed compact ([0, 1] is [0,1]).
 *
 *   project       sources  chunks
 *   ------------  -------  ------
 *   consilio            3      41
 */
#include "db/db_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Display width of UTF-8 text: one column per code point (no East Asian
 * wide-character tables: good enough for a report, never cuts a sequence). */
static size_t display_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static int is_numeric(const char *s)
{
    if (*s == '-')
        s++;
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || *s == '.'))
            return 0;
    return 1;
}

/* Print at most max_width code points of s, padded to width. */
static void put_cell(FILE *out, const char *s, size_t width, size_t max_width, int right)
{
    size_t w = display_width(s);
    const char *end = s;
    size_t shown = 0;
    for (; *end && shown < max_width; end++)
        shown += ((unsigned char)end[1] & 0xC0) != 0x80;
    if (w > max_width)
        w = max_width;
    if (right)
        for (size_t i = w; i < width; i++)
            fputc(' ', out);
    fwrite(s, 1, (size_t)(end - s), out);
    if (!right)
        for (size_t i = w; i < width; i++)
            fputc(' ', out);
}

void db_print_table(const struct db_rows *rows, FILE *out)
{
    enum { MAX_COL = 48 };
    int n = db_rows_count(rows), m = db_rows_cols(rows);
    size_t *w = kb_xcalloc((size_t)m, sizeof *w);
    int *right = kb_xcalloc((size_t)m, sizeof *right);
    for (int c = 0; c < m; c++) {
        w[c] = display_width(db_rows_colname(rows, c));
        right[c] = n > 0;
        for (int r = 0; r < n; r++) {
            const char *v = db_rows_get(rows, r, c);
            size_t vw = display_width(v);
            if (vw > w[c])
                w[c] = vw;
            if (*v && !is_numeric(v))
                right[c] = 0;
        }
        if (w[c] > MAX_COL)
            w[c] = MAX_COL;
    }
    for (int c = 0; c < m; c++) {
        put_cell(out, db_rows_colname(rows, c), c + 1 < m ? w[c] : 0, MAX_COL, right[c]);
        fputs(c + 1 < m ? "  " : "\n", out);
    }
    for (int c = 0; c < m; c++) {
        for (size_t i = 0; i < w[c]; i++)
            fputc('-', out);
        fputs(c + 1 < m ? "  " : "\n", out);
    }
    for (int r = 0; r < n; r++)
        for (int c = 0; c < m; c++) {
            put_cell(out, db_rows_get(rows, r, c), c + 1 < m || right[c] ? w[c] : 0, MAX_COL,
                     right[c]);
            fputs(c + 1 < m ? "  " : "\n", out);
        }
    if (n == 0)
        fputs("(none)\n", out);
    free(w);
    free(right);
}

/* A cell's text as a JSON string: the text itself when it is valid UTF-8
 * (always so in a UTF-8 database), else with each invalid byte as U+FFFD,
 * since jansson refuses invalid UTF-8 rather than pass it on. */
static json_t *text_json(const char *s)
{
    size_t len = strlen(s);
    if (kb_utf8_valid_prefix(s, len) == len)
        return json_stringn(s, len);
    struct kb_buf b;
    kb_buf_init(&b);
    for (size_t i = 0; i < len;) {
        int n = kb_utf8_seq_len((const unsigned char *)s + i, len - i);
        if (n > 0)
            kb_buf_append(&b, s + i, (size_t)n);
        else
            kb_buf_puts(&b, "\xef\xbf\xbd");
        i += n > 0 ? (size_t)n : 1;
    }
    json_t *j = json_stringn(b.data, b.len);
    kb_buf_release(&b);
    return j;
}

/* A number's text as the server printed it: a whole number that fits in
 * 64 bits as an integer (so "100" stays "100"), else a real; "", NaN and
 * the infinities, which JSON cannot hold, as null. */
static json_t *number_json(const char *v)
{
    const char *digits = v + (*v == '-');
    if (*digits && strspn(digits, "0123456789") == strlen(digits)) {
        errno = 0;
        long long n = strtoll(v, NULL, 10);
        if (errno == 0)
            return json_integer(n);
    }
    double d = strtod(v, NULL);
    return *v && isfinite(d) ? json_real(d) : json_null();
}

/* See db_int.h. */
json_t *db_rows_json(const struct db_rows *rows)
{
    int n = db_rows_count(rows), m = db_rows_cols(rows);
    json_t *a = json_array();
    for (int r = 0; r < n; r++) {
        json_t *o = json_object();
        for (int c = 0; c < m; c++) {
            const char *v = db_rows_get(rows, r, c);
            json_t *j = NULL;
            /* by the column's type OID (pg_type.h): bool, integers, floats and
             * numeric, json and jsonb go out as JSON values, the rest as strings */
            if (db_rows_isnull(rows, r, c))
                j = json_null();
            else
                switch (PQftype(rows->res, c)) {
                case 16:
                    j = json_boolean(v[0] == 't');
                    break;
                case 20: case 21: case 23: case 700: case 701: case 1700:
                    j = number_json(v);
                    break;
                case 114: case 3802:   /* the server's JSON text, parsed */
                    j = json_loads(v, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
                    break;
                }
            json_object_set_new(o, db_rows_colname(rows, c), j ? j : text_json(v));
        }
        json_array_append_new(a, o);
    }
    return a;
}

/* See db_int.h. */
void db_json_print(const json_t *j, FILE *out)
{
    (void)json_dumpf(j, out, DB_JSON_FLAGS);
    fputc('\n', out);
}

/* See db.h. */
void db_print_json(const struct db_rows *rows, FILE *out)
{
    json_t *a = db_rows_json(rows);
    db_json_print(a, out);
    json_decref(a);
}
