/*
 * print.c - query results for people and for scripts: an aligned text
 * table (psql's "aligned" format, without the frame) or a JSON array of
 * objects.  Used by `stats` and `migrate status`-like listings.
 *
 *   project       sources  chunks
 *   ------------  -------  ------
 *   consilio            3      41
 */
#include "db/db_int.h"

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

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", out);
        else if (ch == '\t')
            fputs("\\t", out);
        else if (ch == '\r')
            fputs("\\r", out);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

void db_print_json(const struct db_rows *rows, FILE *out)
{
    int n = db_rows_count(rows), m = db_rows_cols(rows);
    fputc('[', out);
    for (int r = 0; r < n; r++) {
        fputs(r ? ",{" : "{", out);
        for (int c = 0; c < m; c++) {
            if (c)
                fputc(',', out);
            json_string(out, db_rows_colname(rows, c));
            fputc(':', out);
            const char *v = db_rows_get(rows, r, c);
            /* by the column's type OID (pg_type.h): bool, integers, floats and
             * numeric, json and jsonb go out as JSON values, the rest as strings */
            switch (PQftype(rows->res, c)) {
            case 16:
                fputs(db_rows_isnull(rows, r, c) ? "null" : v[0] == 't' ? "true" : "false", out);
                break;
            case 20: case 21: case 23: case 700: case 701: case 1700: case 114: case 3802:
                fputs(db_rows_isnull(rows, r, c) || !*v || strcmp(v, "NaN") == 0 ? "null" : v,
                      out);
                break;
            default:
                if (db_rows_isnull(rows, r, c))
                    fputs("null", out);
                else
                    json_string(out, v);
            }
        }
        fputc('}', out);
    }
    fputc(']', out);
}
