/*
 * arena.c - a bump allocator for per-document work (as pgvector's build
 * callback works in a memory context reset per tuple).  Blocks are chained;
 * kb_arena_reset() frees all but the first block and rewinds it, so the
 * steady state of a run allocates nothing from malloc.
 */
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK 65536
#define ARENA_ALIGN 16

struct block {
    struct block *next;
    size_t size;
    size_t used;
    max_align_t data[];
};

struct kb_arena {
    struct block *head;   /* current block, newest first */
    size_t used;          /* bytes handed out since reset */
};

static struct block *block_new(size_t size)
{
    struct block *b = kb_xmalloc(sizeof *b + size);
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

struct kb_arena *kb_arena_new(void)
{
    struct kb_arena *a = kb_xmalloc(sizeof *a);
    a->head = block_new(ARENA_BLOCK);
    a->used = 0;
    return a;
}

void kb_arena_free(struct kb_arena *a)
{
    if (a == NULL)
        return;
    struct block *b = a->head;
    while (b) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

void kb_arena_reset(struct kb_arena *a)
{
    struct block *b = a->head;
    /* keep the oldest (first) block: it is the last in the chain */
    while (b->next) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    b->used = 0;
    a->head = b;
    a->used = 0;
}

void *kb_arena_alloc(struct kb_arena *a, size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need == 0)
        need = ARENA_ALIGN;
    struct block *b = a->head;
    if (b->size - b->used < need) {
        size_t size = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        struct block *nb = block_new(size);
        nb->next = b;
        a->head = b = nb;
    }
    void *p = (char *)b->data + b->used;
    b->used += need;
    a->used += need;
    return p;
}

void *kb_arena_calloc(struct kb_arena *a, size_t n)
{
    void *p = kb_arena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

char *kb_arena_strndup(struct kb_arena *a, const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = kb_arena_alloc(a, len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *kb_arena_strdup(struct kb_arena *a, const char *s)
{
    return kb_arena_strndup(a, s, strlen(s));
}

char *kb_arena_printf(struct kb_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *p = kb_arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

size_t kb_arena_used(const struct kb_arena *a) { return a->used; }
