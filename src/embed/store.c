/*
 * store.c - the import store: every vector of an import file, found in O(1)
 * by content hash or by (source_id, chunk_index) during a run.
 *
 * Vectors are appended as raw float32 (4 x 1536 = 6 KB each) to an unlinked
 * temporary file (tmpfile(3), in TMPDIR), which is mapped read-only when
 * loading ends: a million vectors take 6 GB of page cache that the kernel
 * may evict, not 6 GB of heap.  The heap holds only the key table:
 *   SIZE  DESCRIPTION
 *   16    key: BLAKE2b-128 of "h\0" + lower-case content hash, or of
 *         "s\0" + source_id + "\0" + decimal chunk index
 *   4     row in the vector file (UINT32_MAX: empty slot)
 *   4     line of the import file (for messages)
 * with open addressing (linear probing), at most 70% full.
 */
#include "embed/embed_int.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define EMPTY UINT32_MAX

struct slot {
    uint64_t k0, k1;
    uint32_t row, line;
};

struct import_store {
    const char *path;        /* the import file, for messages */
    FILE *tmp;
    struct slot *slots;
    size_t cap;              /* power of two */
    size_t n_rows;
    float *map;
    size_t map_len;
};

struct key {
    uint64_t k0, k1;
};

static struct key key_of(const unsigned char *bytes, size_t len)
{
    unsigned char out[16];
    crypto_generichash(out, sizeof out, bytes, len, NULL, 0);
    struct key k;
    memcpy(&k.k0, out, 8);
    memcpy(&k.k1, out + 8, 8);
    return k;
}

static struct key key_hash(const char *content_hash)
{
    unsigned char buf[2 + 128];
    size_t n = strlen(content_hash);
    if (n > 128)
        n = 128;
    buf[0] = 'h';
    buf[1] = 0;
    for (size_t i = 0; i < n; i++)
        buf[2 + i] = (unsigned char)tolower((unsigned char)content_hash[i]);
    return key_of(buf, 2 + n);
}

static struct key key_source(const char *source_id, int chunk_index)
{
    struct kb_buf b;
    kb_buf_init(&b);
    kb_buf_append(&b, "s", 2);   /* "s" and its NUL */
    kb_buf_puts(&b, source_id);
    kb_buf_putc(&b, '\0');
    kb_buf_printf(&b, "%d", chunk_index);
    struct key k = key_of((const unsigned char *)b.data, b.len);
    kb_buf_release(&b);
    return k;
}

static struct slot *probe(struct slot *slots, size_t cap, struct key k)
{
    size_t i = (size_t)k.k0 & (cap - 1);
    while (slots[i].row != EMPTY && (slots[i].k0 != k.k0 || slots[i].k1 != k.k1))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static struct slot *alloc_slots(size_t cap)
{
    struct slot *s = kb_xmalloc(cap * sizeof *s);
    for (size_t i = 0; i < cap; i++)
        s[i].row = EMPTY;
    return s;
}

enum kb_code import_store_new(const char *path, struct import_store **out, struct kb_err *err)
{
    *out = NULL;
    FILE *tmp = tmpfile();
    if (!tmp)
        return KB_FAIL_AT(err, KB_E_IO, path,
                          "cannot create a temporary file for the vectors (%s); set TMPDIR "
                          "to a writable folder with room for 6 KB per vector",
                          strerror(errno));
    struct import_store *st = kb_xcalloc(1, sizeof *st);
    st->path = path;
    st->tmp = tmp;
    st->cap = 1024;
    st->slots = alloc_slots(st->cap);
    *out = st;
    return KB_OK;
}

void import_store_free(struct import_store *st)
{
    if (!st)
        return;
    if (st->map)
        munmap(st->map, st->map_len);
    if (st->tmp)
        fclose(st->tmp);
    free(st->slots);
    free(st);
}

static void grow(struct import_store *st)
{
    size_t cap = st->cap * 2;
    struct slot *slots = alloc_slots(cap);
    for (size_t i = 0; i < st->cap; i++) {
        if (st->slots[i].row == EMPTY)
            continue;
        struct key k = { st->slots[i].k0, st->slots[i].k1 };
        *probe(slots, cap, k) = st->slots[i];
    }
    free(st->slots);
    st->slots = slots;
    st->cap = cap;
}

static int add(struct import_store *st, struct key k, const float *v, long line)
{
    if ((st->n_rows + 1) * 10 > st->cap * 7)
        grow(st);
    struct slot *s = probe(st->slots, st->cap, k);
    if (s->row != EMPTY)
        return 0;
    /* a failed write shows as a short file at seal time */
    fwrite(v, sizeof(float), KB_EMBED_DIM, st->tmp);
    s->k0 = k.k0;
    s->k1 = k.k1;
    s->row = (uint32_t)st->n_rows++;
    s->line = line > 0 && line < (long)UINT32_MAX ? (uint32_t)line : 0;
    return 1;
}

int import_store_add_hash(struct import_store *st, const char *content_hash, const float *v,
                          long line)
{
    return add(st, key_hash(content_hash), v, line);
}

int import_store_add_source(struct import_store *st, const char *source_id, int chunk_index,
                            const float *v, long line)
{
    return add(st, key_source(source_id, chunk_index), v, line);
}

enum kb_code import_store_seal(struct import_store *st, struct kb_err *err)
{
    if (fflush(st->tmp) != 0 || ferror(st->tmp))
        return KB_FAIL_AT(err, KB_E_IO, st->path,
                          "writing the vectors to a temporary file failed (%s); free space "
                          "in TMPDIR (6 KB per vector)", strerror(errno));
    if (st->n_rows == 0)
        return KB_OK;
    st->map_len = st->n_rows * KB_EMBED_DIM * sizeof(float);
    void *p = mmap(NULL, st->map_len, PROT_READ, MAP_PRIVATE, fileno(st->tmp), 0);
    if (p == MAP_FAILED) {
        st->map_len = 0;
        return KB_FAIL_AT(err, KB_E_IO, st->path, "cannot map the vectors' temporary file (%s)",
                          strerror(errno));
    }
    st->map = p;
    return KB_OK;
}

static const float *find(const struct import_store *st, struct key k, long *line)
{
    if (!st->map)
        return NULL;
    const struct slot *s = probe(st->slots, st->cap, k);
    if (s->row == EMPTY)
        return NULL;
    if (line)
        *line = s->line;
    return st->map + (size_t)s->row * KB_EMBED_DIM;
}

const float *import_store_find_hash(const struct import_store *st, const char *content_hash,
                                    long *line)
{
    return find(st, key_hash(content_hash), line);
}

const float *import_store_find_source(const struct import_store *st, const char *source_id,
                                      int chunk_index, long *line)
{
    return find(st, key_source(source_id, chunk_index), line);
}

long import_store_count(const struct import_store *st)
{
    return (long)st->n_rows;
}
