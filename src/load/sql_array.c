/*
 * sql_array.c - PostgreSQL array literals ('{"a","b",NULL}') for passing a
 * whole batch as one parameter to a set-based statement (unnest($1::text[])).
 * Every element is double-quoted with \ and " escaped, as array_in reads it.
 */
#include "load/load_int.h"

void load_array_open(struct kb_buf *b)
{
    kb_buf_reset(b);
    kb_buf_putc(b, '{');
}

void load_array_add(struct kb_buf *b, const char *s)
{
    if (b->len > 1)
        kb_buf_putc(b, ',');
    if (s == NULL) {
        kb_buf_puts(b, "NULL");
        return;
    }
    kb_buf_putc(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            kb_buf_putc(b, '\\');
        kb_buf_putc(b, *p);
    }
    kb_buf_putc(b, '"');
}

void load_array_close(struct kb_buf *b) { kb_buf_putc(b, '}'); }
