/*
 * fuzz_chunk.c - chunk_document() with the markdown, recursive and fixed
 * splitters (src/chunk: pieces, boundary levels, packing, trimming,
 * overlap, windows), in tokens and in code points.  The first input byte
 * picks the settings (splitter, unit, size, overlap), the rest is the
 * text.  Text with invalid UTF-8 or a NUL must be refused; the harness then
 * also chunks a repaired copy (bad bytes as '?', NUL as ' ').
 *
 * Invariants on success (chunk.h lists them):
 *   - chunks are numbered 0, 1, ... in document order; none is empty or
 *     whitespace only; each is valid UTF-8, NUL-terminated, the document's
 *     bytes at its offset;
 *   - none is longer than size units; token_count is the exact count and
 *     content_hash the SHA-256 of the text;
 *   - every ASCII byte that is not whitespace is in some chunk (nothing
 *     is lost);
 *   - the same text and settings give the same chunks, byte for byte.
 */
#include "fuzz.h"

#include "chunk/chunk.h"

static struct chunk_tokenizer *tok;

static size_t code_points(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void check_chunks(const char *text, size_t len, const struct chunk_opts *o,
                         const struct kb_chunk_list *l)
{
    size_t covered = 0;   /* bytes before this are checked for coverage */
    for (int i = 0; i < l->n; i++) {
        const struct kb_chunk *c = &l->items[i];
        KBFUZZ_CHECK(c->index == i, "chunk %d has index %d", i, c->index);
        KBFUZZ_CHECK(c->len > 0, "chunk %d is empty", i);
        KBFUZZ_CHECK(c->text[c->len] == '\0', "chunk %d not NUL-terminated", i);
        KBFUZZ_CHECK(kbfuzz_utf8(c->text, c->len), "chunk %d is not valid UTF-8", i);
        KBFUZZ_CHECK(c->offset + c->len <= len && memcmp(text + c->offset, c->text, c->len) == 0,
                     "chunk %d is not the text at offset %zu", i, c->offset);
        int any = 0;
        for (size_t k = 0; k < c->len && !any; k++)
            any = !is_blank(c->text[k]);
        KBFUZZ_CHECK(any, "chunk %d is whitespace only", i);
        size_t n_tok = chunk_tokenizer_count(tok, c->text, c->len);
        KBFUZZ_CHECK((size_t)c->token_count == n_tok, "chunk %d token_count %d, counted %zu", i,
                     c->token_count, n_tok);
        size_t units = o->unit == CHUNK_TOKENS ? n_tok : code_points(c->text, c->len);
        KBFUZZ_CHECK(units <= (size_t)o->size, "chunk %d has %zu %s, size %d", i, units,
                     chunk_unit_name(o->unit), o->size);
        char hex[65];
        chunk_hash_hex(c->text, c->len, hex);
        KBFUZZ_CHECK(strcmp(hex, c->content_hash) == 0, "chunk %d content_hash", i);
        if (i > 0)
            KBFUZZ_CHECK(c->offset >= l->items[i - 1].offset, "chunk %d starts before %d", i,
                         i - 1);
        for (; covered < c->offset; covered++)
            KBFUZZ_CHECK((unsigned char)text[covered] >= 0x80 || is_blank(text[covered]),
                         "byte %zu ('%c') is in no chunk (%s)", covered, text[covered],
                         chunk_splitter_name(o->splitter));
        if (c->offset + c->len > covered)
            covered = c->offset + c->len;
    }
    for (; covered < len; covered++)
        KBFUZZ_CHECK((unsigned char)text[covered] >= 0x80 || is_blank(text[covered]),
                     "byte %zu ('%c') after the last chunk is lost", covered, text[covered]);
}

static void chunk_twice(const char *text, size_t len, const struct chunk_opts *o)
{
    struct kb_arena *a = kb_arena_new(), *b = kb_arena_new();
    struct kb_chunk_list l1 = { 0 }, l2 = { 0 };
    struct kb_err err = { 0 };
    enum kb_code rc = chunk_document(text, len, o, tok, a, &l1, &err);
    KBFUZZ_CHECK(rc == KB_OK, "valid text refused: %s: %s", err.origin, err.msg);
    check_chunks(text, len, o, &l1);
    rc = chunk_document(text, len, o, tok, b, &l2, &err);
    KBFUZZ_CHECK(rc == KB_OK && l1.n == l2.n, "a second run gives %d chunks, not %d", l2.n, l1.n);
    for (int i = 0; i < l1.n; i++)
        KBFUZZ_CHECK(l1.items[i].offset == l2.items[i].offset &&
                     l1.items[i].len == l2.items[i].len,
                     "chunk %d differs on a second run", i);
    kb_arena_free(a);
    kb_arena_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (tok == NULL) {
        struct kb_err err = { 0 };
        KBFUZZ_CHECK(chunk_tokenizer_open(NULL, &tok, &err) == KB_OK, "no tokenizer: %s",
                     err.msg);
    }
    if (size == 0)
        return 0;
    static const int tok_sizes[] = { 4, 5, 8, 16, 32, 64, 128, 512 };
    static const int char_sizes[] = { 1, 2, 3, 8, 20, 64, 200, 1000 };
    uint8_t cfg = data[0];
    struct chunk_opts o;
    o.splitter = (enum chunk_splitter)(cfg % 3);
    o.unit = (cfg >> 2) & 1 ? CHUNK_CHARS : CHUNK_TOKENS;
    o.size = o.unit == CHUNK_TOKENS ? tok_sizes[(cfg >> 3) & 7] : char_sizes[(cfg >> 3) & 7];
    int ov = (cfg >> 6) & 3;
    o.overlap = ov == 0 ? 0 : ov == 1 ? o.size / 4 : ov == 2 ? o.size / 2 : o.size - 1;
    struct kb_err err = { 0 };
    KBFUZZ_CHECK(chunk_opts_check(&o, &err) == KB_OK, "settings refused: %s", err.msg);

    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int is_valid = kbfuzz_utf8(text, len) && memchr(text, '\0', len) == NULL;
    if (is_valid) {
        chunk_twice(text, len, &o);
        return 0;
    }
    struct kb_arena *a = kb_arena_new();
    struct kb_chunk_list l = { 0 };
    enum kb_code rc = chunk_document(text, len, &o, tok, a, &l, &err);
    KBFUZZ_CHECK(rc == KB_E_INPUT, "invalid text gave %d", (int)rc);
    kbfuzz_check_err(rc, &err);
    KBFUZZ_CHECK(l.n == 0 && l.items == NULL, "*out touched on failure");
    kb_arena_free(a);
    /* the repaired copy */
    char *fixed = malloc(len + 1);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)text[i];
        int sl = c < 0x80 ? 1 : kb_utf8_seq_len((const unsigned char *)text + i, len - i);
        if (sl <= 0) {
            fixed[i++] = '?';
            continue;
        }
        memcpy(fixed + i, text + i, (size_t)sl);
        if (c == 0)
            fixed[i] = ' ';
        i += (size_t)sl;
    }
    chunk_twice(fixed, len, &o);
    free(fixed);
    return 0;
}
