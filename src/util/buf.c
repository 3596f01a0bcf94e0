/*
 * buf.c - a growable byte buffer.  data is kept NUL-terminated so a buffer
 * of text can be used as a C string; binary content may hold NULs too.
 */
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void kb_buf_init(struct kb_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void kb_buf_release(struct kb_buf *b)
{
    free(b->data);
    kb_buf_init(b);
}

void kb_buf_reset(struct kb_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void kb_buf_reserve(struct kb_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = kb_xrealloc(b->data, cap);
    b->cap = cap;
}

void kb_buf_append(struct kb_buf *b, const void *p, size_t n)
{
    kb_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void kb_buf_puts(struct kb_buf *b, const char *s) { kb_buf_append(b, s, strlen(s)); }

void kb_buf_putc(struct kb_buf *b, char c) { kb_buf_append(b, &c, 1); }

void kb_buf_printf(struct kb_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        kb_buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

char *kb_buf_detach(struct kb_buf *b)
{
    char *p = b->data;
    if (p == NULL)
        p = kb_xstrdup("");
    kb_buf_init(b);
    return p;
}

enum kb_code kb_buf_read_file(struct kb_buf *b, const char *path, struct kb_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return KB_FAIL_AT(err, KB_E_IO, path, "cannot open: %s", strerror(errno));
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        kb_buf_append(b, chunk, n);
    int failed = ferror(f);
    int saved = errno;
    fclose(f);
    if (failed)
        return KB_FAIL_AT(err, KB_E_IO, path, "read failed: %s", strerror(saved));
    kb_buf_reserve(b, 0);
    return KB_OK;
}
