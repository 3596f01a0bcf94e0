/*
 * chunk.c - chunk_document(): settings, the document's pieces, boundary
 * levels, the packing loop, trimming and emitting chunks.
 *
 * The loop (chunk_int.h has the model).  From a start piece s, take the
 * longest run of pieces s..e-1 whose size fits; if everything to the end
 * fits, that is the last chunk; if piece s alone is too long, cut it into
 * windows (fixed.c); otherwise cut at the last boundary of the strongest
 * level in (s, e].  A chunk that continues a unit already cut (it starts at
 * a boundary of level L) ends at the first boundary stronger than L: the
 * tail of a long section, paragraph or block is not merged with what follows,
 * as in a recursive splitter, while whole small units are.  The next chunk
 * starts `overlap` units back: at the
 * earliest word boundary (or, when the cut was inside a block or found no
 * word boundary, any piece boundary) whose distance to the cut fits the
 * overlap, never across a heading, and never when the cut is a heading.
 *
 * Trimming.  Whitespace-only pieces at a chunk's ends are dropped.  A first
 * piece " word" (a space or tab, then more) loses its blank, and a last
 * piece ".\n\n" its line breaks; both edits change how those pieces encode,
 * so the chunk's count then adds direct counts of the edited edge to the
 * prefix sums of the middle (count_trimmed; docs/chunking.md shows why that
 * is exact).  If an edit made the chunk too long in tokens, it is undone.
 */
#include "chunk/chunk_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void chunk_opts_defaults(struct chunk_opts *opts)
{
    opts->splitter = CHUNK_MARKDOWN;
    opts->unit = CHUNK_TOKENS;
    opts->size = 512;
    opts->overlap = 64;
}

const char *chunk_splitter_name(enum chunk_splitter s)
{
    switch (s) {
    case CHUNK_MARKDOWN: return "markdown";
    case CHUNK_RECURSIVE: return "recursive";
    case CHUNK_FIXED: return "fixed";
    }
    return "unknown";
}

const char *chunk_unit_name(enum chunk_unit u)
{
    switch (u) {
    case CHUNK_TOKENS: return "tokens";
    case CHUNK_CHARS: return "chars";
    }
    return "unknown";
}

enum kb_code chunk_opts_check(const struct chunk_opts *opts, struct kb_err *err)
{
    if ((unsigned)opts->splitter > CHUNK_FIXED)
        return KB_FAIL_AT(err, KB_E_CONFIG, "chunking.splitter",
                          "unknown splitter %d; use markdown, recursive or fixed",
                          (int)opts->splitter);
    if ((unsigned)opts->unit > CHUNK_CHARS)
        return KB_FAIL_AT(err, KB_E_CONFIG, "chunking.unit",
                          "unknown unit %d; use tokens or chars", (int)opts->unit);
    if (opts->size < 1)
        return KB_FAIL_AT(err, KB_E_CONFIG, "chunking.size",
                          "chunking.size is %d; it must be at least 1 (the default is 512)",
                          opts->size);
    if (opts->unit == CHUNK_TOKENS && opts->size < 4)
        return KB_FAIL_AT(err, KB_E_CONFIG, "chunking.size",
                          "chunking.size is %d tokens, but one character can take 4 tokens; "
                          "use at least 4 (the default is 512)", opts->size);
    if (opts->overlap < 0)
        return KB_FAIL_AT(err, KB_E_CONFIG, "chunking.overlap",
                          "chunking.overlap is %d; it must be 0 or more (the default is 64)",
                          opts->overlap);
    if (opts->overlap >= opts->size)
        return KB_FAIL_AT(err, KB_E_CONFIG, "chunking.overlap",
                          "chunking.overlap (%d) must be smaller than chunking.size (%d); "
                          "a common choice is about 1/8 of the size", opts->overlap, opts->size);
    return KB_OK;
}

void chunk_opts_signature(const struct chunk_opts *opts, char out[CHUNK_SIGNATURE_MAX])
{
    snprintf(out, CHUNK_SIGNATURE_MAX, "%s/%s/%d/%d/v%d", chunk_splitter_name(opts->splitter),
             chunk_unit_name(opts->unit), opts->size, opts->overlap, CHUNK_VERSION);
}

/* ---- bytes ---------------------------------------------------------------- */

int chunk_space_len(const unsigned char *s, size_t avail)
{
    if (avail == 0)
        return 0;
    if (s[0] < 0x80)
        return (s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r')) ? 1 : 0;
    /* the rest of Unicode White_Space: U+0085 U+00A0 U+1680 U+2000-200A
       U+2028 U+2029 U+202F U+205F U+3000 (the tokenizer's \s, the same set) */
    if (s[0] == 0xc2 && avail >= 2)
        return (s[1] == 0x85 || s[1] == 0xa0) ? 2 : 0;
    if (avail < 3)
        return 0;
    if (s[0] == 0xe1)
        return (s[1] == 0x9a && s[2] == 0x80) ? 3 : 0;
    if (s[0] == 0xe2 && s[1] == 0x80)
        return (s[2] <= 0x8a || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf) ? 3 : 0;
    if (s[0] == 0xe2 && s[1] == 0x81)
        return s[2] == 0x9f ? 3 : 0;
    if (s[0] == 0xe3)
        return (s[1] == 0x80 && s[2] == 0x80) ? 3 : 0;
    return 0;
}

size_t chunk_cp_count(const char *s, size_t n)
{
    size_t cps = 0;
    for (size_t i = 0; i < n; i++)
        cps += ((unsigned char)s[i] & 0xc0) != 0x80;
    return cps;
}

/* ---- pieces: a window over the document ---------------------------------- */

static void grow_pieces(struct chunk_doc *d)
{
    uint32_t cap = d->cap ? d->cap * 2 : 256;
    d->off = kb_xrealloc(d->off, (size_t)(cap + 1) * sizeof *d->off);
    d->tokp = kb_xrealloc(d->tokp, (size_t)(cap + 1) * sizeof *d->tokp);
    if (d->opts->unit == CHUNK_CHARS)
        d->chp = kb_xrealloc(d->chp, (size_t)(cap + 1) * sizeof *d->chp);
    d->is_ws = kb_xrealloc(d->is_ws, (size_t)(cap + 1) * sizeof *d->is_ws);
    d->lvl = kb_xrealloc(d->lvl, (size_t)(cap + 1) * sizeof *d->lvl);
    d->cap = cap;
}

/* A piece is whitespace only when its first two characters are: the regex's
   pieces that start with a blank and go on with something else (" word",
   " (") have a non-blank second character. */
static int piece_is_ws(const unsigned char *p, size_t n)
{
    int l = chunk_space_len(p, n);
    if (l == 0)
        return 0;
    return (size_t)l == n || chunk_space_len(p + l, n - (size_t)l) != 0;
}

static int is_word_boundary(const struct chunk_doc *d, uint32_t k)
{
    const unsigned char *t = (const unsigned char *)d->text;
    if (d->is_ws[k] || d->is_ws[k - 1])
        return 1;
    uint32_t o = d->off[k];
    unsigned last = t[o - 1];   /* ".\n": punctuation keeps its line breaks */
    return last == '\n' || last == '\r' || chunk_space_len(t + o, d->len - o) != 0;
}

/* The level of the boundary before window piece k (piece k - 1 is in the
 * window unless k is the document's first piece), from the marks and
 * blocks up to it (their cursors only move forward), the two pieces and the
 * bytes around. */
static uint8_t level_of(struct chunk_doc *d, uint32_t k, int is_first)
{
    if (is_first)
        return CHUNK_LV_NONE;
    uint32_t o = d->off[k];
    int mark = -1;
    /* a mark that is not on a piece boundary applies to the next one */
    while (d->mi < d->n_marks && d->marks[d->mi].off <= o) {
        if (d->marks[d->mi].off > 0 && (int)d->marks[d->mi].level > mark)
            mark = d->marks[d->mi].level;
        d->mi++;
    }
    if (mark >= 0)
        return (uint8_t)mark;
    if (!d->has_sentences)
        return CHUNK_LV_PIECE;
    while (d->bi < d->n_blocks && d->blocks[d->bi].end <= o)
        d->bi++;
    int in_block = d->bi < d->n_blocks && d->blocks[d->bi].start < o;
    int word = is_word_boundary(d, k);
    if (in_block)
        return word ? CHUNK_LV_BLOCK_WORD : CHUNK_LV_PIECE;
    if (word && chunk_ends_sentence(d, k))
        return CHUNK_LV_SENTENCE;
    return word ? CHUNK_LV_WORD : CHUNK_LV_PIECE;
}

/*
 * Make the window hold `want` pieces (0..want-1, with off/tokp/chp at
 * want), or every piece to the end of the text: pieces are cut
 * (chunk_tokenizer_piece_end), counted and given their level as they come
 * in; lvl[n] is CHUNK_LV_NONE once the text is done.  The arrays may move:
 * callers keep indexes, never pointers into them, across a call.
 */
static void ensure_pieces(struct chunk_doc *d, uint32_t want)
{
    while (d->n < want && !d->is_done) {
        if (d->n >= d->cap)
            grow_pieces(d);
        uint32_t k = d->n, o = d->off[k];
        uint32_t j = (uint32_t)chunk_tokenizer_piece_end(d->tok, d->text, d->len, o);
        const char *p = d->text + o;
        d->tokp[k + 1] = d->tokp[k] + (uint32_t)chunk_tokenizer_count(d->tok, p, j - o);
        if (d->chp)
            d->chp[k + 1] = d->chp[k] + (uint32_t)chunk_cp_count(p, j - o);
        d->is_ws[k] = (uint8_t)piece_is_ws((const unsigned char *)p, j - o);
        d->lvl[k] = level_of(d, k, o == 0);
        d->off[k + 1] = j;
        d->n = k + 1;
        if (j >= d->len) {
            d->is_done = 1;
            d->lvl[k + 1] = CHUNK_LV_NONE;
        }
    }
}

/*
 * Drop the window's first `drop` pieces: indexes shift down by drop.  The
 * packing loop drops what lies before its start and its last cut (but one
 * piece), so the window holds about one chunk and its overlap whatever the
 * document's length (docs/loading.md, "One large input").
 */
static void slide_pieces(struct chunk_doc *d, uint32_t drop)
{
    uint32_t m = d->n - drop;   /* pieces kept; off, tokp, chp and lvl have one more */
    memmove(d->off, d->off + drop, (size_t)(m + 1) * sizeof *d->off);
    memmove(d->tokp, d->tokp + drop, (size_t)(m + 1) * sizeof *d->tokp);
    if (d->chp)
        memmove(d->chp, d->chp + drop, (size_t)(m + 1) * sizeof *d->chp);
    memmove(d->is_ws, d->is_ws + drop, (size_t)m * sizeof *d->is_ws);
    memmove(d->lvl, d->lvl + drop, (size_t)(m + 1) * sizeof *d->lvl);
    d->n = m;
}

static void start_pieces(struct chunk_doc *d, int has_sentences)
{
    d->cap = 0;
    grow_pieces(d);
    d->off[0] = 0;
    d->tokp[0] = 0;
    if (d->chp)
        d->chp[0] = 0;
    d->lvl[0] = CHUNK_LV_NONE;
    d->has_sentences = has_sentences;
    d->is_done = d->len == 0;
}

/* ---- marks ----------------------------------------------------------------- */

void chunk_doc_add_mark(struct chunk_doc *d, uint32_t off, uint8_t level)
{
    if (d->n_marks == d->cap_marks) {
        d->cap_marks = d->cap_marks ? d->cap_marks * 2 : 64;
        d->marks = kb_xrealloc(d->marks, d->cap_marks * sizeof *d->marks);
    }
    d->marks[d->n_marks++] = (struct chunk_mark){ off, level };
}

void chunk_doc_add_block(struct chunk_doc *d, uint32_t start, uint32_t end)
{
    if (d->n_blocks == d->cap_blocks) {
        d->cap_blocks = d->cap_blocks ? d->cap_blocks * 2 : 16;
        d->blocks = kb_xrealloc(d->blocks, d->cap_blocks * sizeof *d->blocks);
    }
    d->blocks[d->n_blocks++] = (struct chunk_block){ start, end };
}

/* ---- emitting --------------------------------------------------------------- */

void chunk_doc_emit(struct chunk_doc *d, uint32_t start, uint32_t end, int tokens)
{
    if (d->rc != KB_OK)
        return;   /* fn refused an earlier chunk: the split is stopping */
    size_t len = end - start;
    char *text;
    if (d->fn) {
        if (len + 1 > d->cap_scratch) {
            d->cap_scratch = len + 1 > 2 * d->cap_scratch ? len + 1 : 2 * d->cap_scratch;
            d->scratch = kb_xrealloc(d->scratch, d->cap_scratch);
        }
        text = d->scratch;
    } else {
        if (d->n_chunks == d->cap_chunks) {
            d->cap_chunks = d->cap_chunks ? d->cap_chunks * 2 : 16;
            d->chunks = kb_xrealloc(d->chunks, (size_t)d->cap_chunks * sizeof *d->chunks);
        }
        text = kb_arena_alloc(d->arena, len + 1);
    }
    memcpy(text, d->text + start, len);
    text[len] = '\0';
    struct kb_chunk one, *c = d->fn ? &one : &d->chunks[d->n_chunks];
    c->index = d->n_chunks++;
    c->text = text;
    c->len = len;
    c->offset = start;
    chunk_hash_hex(text, len, c->content_hash);
    c->token_count = tokens;
    c->heading_path = d->n_sections > 1 ? chunk_markdown_path(d, start, end) : NULL;
    if (d->fn)
        d->rc = d->fn(c, d->ctx, d->err);
}

/*
 * Exact tokens of text[s2, e2), where pieces a..b-1 are the chunk and s2, e2
 * may cut into the first and last piece.  Scanning from s2 meets the
 * document's pieces again by piece a + 2 at the latest, and a last piece
 * that ends in a non-blank encodes as the document's pieces before it.
 */
static int count_trimmed(const struct chunk_doc *d, uint32_t a, uint32_t b, uint32_t s2,
                         uint32_t e2)
{
    const struct chunk_tokenizer *tok = d->tok;
    if (b - a < 3)
        return (int)chunk_tokenizer_count(tok, d->text + s2, e2 - s2);
    size_t head = s2 != d->off[a] ? chunk_tokenizer_count(tok, d->text + s2, d->off[a + 2] - s2)
                                  : d->tokp[a + 2] - d->tokp[a];
    size_t tail = e2 != d->off[b] ? chunk_tokenizer_count(tok, d->text + d->off[b - 1],
                                                          e2 - d->off[b - 1])
                                  : d->tokp[b] - d->tokp[b - 1];
    return (int)(head + (d->tokp[b - 1] - d->tokp[a + 2]) + tail);
}

static void emit_range(struct chunk_doc *d, uint32_t a, uint32_t b)
{
    const unsigned char *t = (const unsigned char *)d->text;
    while (a < b && d->is_ws[a])
        a++;
    while (b > a && d->is_ws[b - 1])
        b--;
    if (a == b)
        return;
    uint32_t start = d->off[a], end = d->off[b], s2 = start, e2 = end;
    int tokens = (int)(d->tokp[b] - d->tokp[a]);
    if ((t[start] == ' ' || t[start] == '\t') && d->off[a + 1] - start > 1)
        s2 = start + 1;   /* not a blank piece, so the next byte is no blank */
    while (e2 > d->off[b - 1] + 1 && e2 > s2 + 1 && (t[e2 - 1] == '\n' || t[e2 - 1] == '\r'))
        e2--;
    if (s2 != start || e2 != end) {
        int exact = count_trimmed(d, a, b, s2, e2);
        if (d->opts->unit == CHUNK_TOKENS && exact > d->opts->size) {
            s2 = start;   /* the whole pieces fit: keep them */
            e2 = end;
        } else {
            tokens = exact;
        }
    }
    chunk_doc_emit(d, s2, e2, tokens);
}

/* ---- packing ----------------------------------------------------------------- */

static uint32_t skip_ws(struct chunk_doc *d, uint32_t k)
{
    for (;;) {
        ensure_pieces(d, k + 1);
        if (k >= d->n || !d->is_ws[k])
            return k;
        k++;
    }
}

/* The window's unit prefix sums: tokens, or code points. */
static const uint32_t *units(const struct chunk_doc *d)
{
    return d->opts->unit == CHUNK_CHARS ? d->chp : d->tokp;
}

/* Where the chunk after a cut at `cut` (started at s) begins: see the top. */
static uint32_t overlap_start(const struct chunk_doc *d, uint32_t s, uint32_t cut)
{
    const uint32_t *u = units(d);
    uint32_t ov = (uint32_t)d->opts->overlap, at = cut;
    uint8_t lc = d->lvl[cut];
    if (ov == 0 || lc >= CHUNK_LV_H6)
        return cut;
    uint8_t min = lc == CHUNK_LV_PIECE        ? CHUNK_LV_PIECE
                  : lc <= CHUNK_LV_BLOCK_PARA ? CHUNK_LV_BLOCK_WORD
                                              : CHUNK_LV_WORD;
    for (uint32_t k = cut - 1; k > s && u[cut] - u[k] <= ov; k--) {
        if (d->lvl[k] >= min)
            at = k;
        if (d->lvl[k] >= CHUNK_LV_H6)
            break;   /* a heading line may open the overlap; nothing before it */
    }
    return at;
}

/*
 * The loop, over a window of pieces.  Every piece is at least one unit, so
 * a chunk that starts at piece s never reaches past piece s + size: the
 * window is filled that far before each chunk (then e == n only at the
 * text's end), and what lies before s and the last cut is dropped.  prev
 * == 0 means no cut yet (a cut is never the first piece).
 */
void chunk_doc_pack(struct chunk_doc *d, int has_sentences)
{
    const uint32_t size = (uint32_t)d->opts->size;
    start_pieces(d, has_sentences);
    uint32_t s = skip_ws(d, 0), prev = 0;

    while (d->rc == KB_OK) {
        uint32_t keep = prev && prev < s ? prev : s;
        if (keep > 1) {   /* one piece stays before: a new piece's level reads it */
            slide_pieces(d, keep - 1);
            s -= keep - 1;
            if (prev)
                prev -= keep - 1;
        }
        ensure_pieces(d, s + size + 1);
        const uint32_t *u = units(d), n = d->n;
        if (s >= n)
            break;
        uint32_t lo = s > prev ? s : prev;   /* a cut must add text after the last one */
        uint8_t cap = prev ? d->lvl[prev] : UINT8_MAX;
        uint32_t e = s, best_at = 0;
        uint8_t best = 0;
        while (e < n && u[e + 1] - u[s] <= size) {
            e++;
            if (e < n && e > lo && d->lvl[e] >= best) {
                best = d->lvl[e];
                best_at = e;
                if (best > cap)
                    break;   /* the rest of a cut unit does not join the next one */
            }
        }
        uint32_t cut;
        if (e == n) {
            cut = n;
        } else if (e == s) {
            /* piece s alone is longer than the size: only it is cut inside */
            chunk_fixed_windows(d, d->off[s], d->off[s + 1], 1);
            prev = s + 1;
            s = skip_ws(d, s + 1);
            continue;
        } else if (best_at > lo) {
            cut = best_at;
        } else {
            s = skip_ws(d, prev);   /* the overlap left no room: start at the cut */
            continue;
        }
        emit_range(d, s, cut);
        if (cut >= n)
            break;
        uint32_t next = overlap_start(d, s, cut);
        prev = cut;
        s = skip_ws(d, next);
    }
}

/* ---- the public call --------------------------------------------------------- */

static void doc_release(struct chunk_doc *d)
{
    free(d->off);
    free(d->tokp);
    free(d->chp);
    free(d->is_ws);
    free(d->lvl);
    free(d->marks);
    free(d->blocks);
    free(d->sections);
    free(d->chunks);
    free(d->scratch);
}

/* chunk_document and chunk_document_each: checks, then the split into d. */
static enum kb_code split(struct chunk_doc *d, struct kb_err *err)
{
    const char *text = d->text;
    size_t len = d->len;
    enum kb_code rc = chunk_opts_check(d->opts, err);
    if (rc != KB_OK)
        return rc;
    if (d->tok == NULL)
        return KB_FAIL(err, KB_E_INTERNAL, NULL,
                       "internal error: chunk_document() called without a tokenizer; "
                       "please report it");
    size_t valid = kb_utf8_valid_prefix(text, len);
    if (valid < len) {
        char at[64];
        snprintf(at, sizeof at, "byte %zu", valid);
        return KB_FAIL_AT(err, KB_E_INPUT, at,
                          "invalid UTF-8 (byte 0x%02x); convert the file to UTF-8",
                          (unsigned char)text[valid]);
    }
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        char at[64];
        snprintf(at, sizeof at, "byte %zu", (size_t)(nul - text));
        return KB_FAIL_AT(err, KB_E_INPUT, at,
                          "NUL byte in text; PostgreSQL text cannot store it, remove it");
    }
    if (d->opts->splitter == CHUNK_FIXED && d->opts->unit == CHUNK_CHARS) {
        chunk_fixed_windows(d, 0, d->len, 1);
    } else {
        if (d->opts->splitter == CHUNK_MARKDOWN)
            chunk_markdown_marks(d);
        else if (d->opts->splitter == CHUNK_RECURSIVE)
            chunk_recursive_marks(d);
        chunk_doc_pack(d, d->opts->splitter != CHUNK_FIXED);
    }
    return d->rc;
}

static enum kb_code check_len(size_t len, struct kb_err *err)
{
    if (len >= UINT32_MAX)
        return KB_FAIL(err, KB_E_INPUT, NULL,
                       "document of %zu bytes is too large to chunk (the limit is 4 GB); "
                       "split the file", len);
    return KB_OK;
}

enum kb_code chunk_document(const char *text, size_t len, const struct chunk_opts *opts,
                            const struct chunk_tokenizer *tok, struct kb_arena *arena,
                            struct kb_chunk_list *out, struct kb_err *err)
{
    enum kb_code rc = check_len(len, err);
    if (rc != KB_OK)
        return rc;
    struct chunk_doc d = { .text = text, .len = (uint32_t)len, .opts = opts, .tok = tok,
                           .arena = arena };
    rc = split(&d, err);
    if (rc == KB_OK) {
        out->n = d.n_chunks;
        out->items = NULL;
        if (d.n_chunks > 0) {
            out->items = kb_arena_alloc(arena, (size_t)d.n_chunks * sizeof *out->items);
            memcpy(out->items, d.chunks, (size_t)d.n_chunks * sizeof *out->items);
        }
    }
    doc_release(&d);
    return rc;
}

enum kb_code chunk_document_each(const char *text, size_t len, const struct chunk_opts *opts,
                                 const struct chunk_tokenizer *tok, struct kb_arena *arena,
                                 enum kb_code (*fn)(const struct kb_chunk *c, void *ctx,
                                                    struct kb_err *err),
                                 void *ctx, int *n_chunks, struct kb_err *err)
{
    *n_chunks = 0;
    enum kb_code rc = check_len(len, err);
    if (rc != KB_OK)
        return rc;
    struct chunk_doc d = { .text = text, .len = (uint32_t)len, .opts = opts, .tok = tok,
                           .arena = arena, .fn = fn, .ctx = ctx, .err = err };
    rc = split(&d, err);
    *n_chunks = d.n_chunks;
    doc_release(&d);
    return rc;
}
