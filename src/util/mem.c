/*
 * mem.c - allocation that cannot fail.  Memory in kbpipe is bounded by batch
 * sizes, so running out is fatal and loud: the size and the call site are
 * printed, then abort() (as Redis' zmalloc_default_oom does).  Also the
 * monotonic clock and small string helpers that everything uses.
 */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static KB_NORETURN void oom(size_t n, const char *file, int line)
{
    fprintf(stderr, "kbpipe: out of memory trying to allocate %zu bytes at %s:%d\n", n, file,
            line);
    abort();
}

void *kb_xmalloc_at(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n, file, line);
    return p;
}

void *kb_xcalloc_at(size_t n, size_t size, const char *file, int line)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size, file, line);
    return p;
}

void *kb_xrealloc_at(void *p, size_t n, const char *file, int line)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n, file, line);
    return q;
}

char *kb_xstrdup_at(const char *s, const char *file, int line)
{
    return kb_xstrndup_at(s, strlen(s), file, line);
}

char *kb_xstrndup_at(const char *s, size_t n, const char *file, int line)
{
    size_t len = strnlen(s, n);
    char *p = kb_xmalloc_at(len + 1, file, line);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *kb_xasprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *p = kb_xmalloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

double kb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int kb_starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

const char *kb_quote_line(char *buf, size_t n, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        int is_escaped = c < 0x20 || c == 0x7f || c == '\\';
        if (o + (is_escaped ? 4 : 1) >= n)
            break;
        if (is_escaped)
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    buf[o] = '\0';
    return buf;
}
