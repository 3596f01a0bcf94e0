/*
 * fixed.c - windows over a span of text, cut at code point boundaries: the
 * fixed splitter in characters, and any single piece longer than the size
 * (a 1 MB word, a long base64 line) for every splitter.
 *
 * In characters a window is exactly opts->size code points (the last one
 * may be shorter) and the next starts opts->overlap code points before its
 * end.  In tokens a window is a span whose own count fits the size and comes
 * within size/32 + 1 tokens of it: found by counting candidate spans, each
 * guess scaled by the bytes per token of the last one (secant steps, about
 * three counts a window); the overlap start likewise.  Counting only
 * ever looks at a window's worth of text, so a 1 MB word costs O(n log n).
 * Token counts of windows are direct counts of their text.  Windows of
 * whitespace only are skipped.
 */
#include "chunk/chunk_int.h"

/* the code point boundary after i (i < end) */
static uint32_t cp_next(const unsigned char *t, uint32_t i, uint32_t end)
{
    i++;
    while (i < end && (t[i] & 0xc0) == 0x80)
        i++;
    return i;
}

/* the code point boundary at or before i, not below lo */
static uint32_t cp_floor(const unsigned char *t, uint32_t i, uint32_t lo)
{
    while (i > lo && (t[i] & 0xc0) == 0x80)
        i--;
    return i;
}

static int all_ws(const unsigned char *t, uint32_t a, uint32_t b)
{
    while (a < b) {
        int l = chunk_space_len(t + a, b - a);
        if (l == 0)
            return 0;
        a += (uint32_t)l;
    }
    return 1;
}

static int count(const struct chunk_doc *d, uint32_t a, uint32_t b)
{
    return (int)chunk_tokenizer_count(d->tok, d->text + a, b - a);
}

/* a code point boundary strictly inside (lo, hi), near want, or 0 */
static uint32_t probe(const unsigned char *t, uint64_t want, uint32_t lo, uint32_t hi)
{
    if (want >= hi)
        want = hi - 1;
    if (want <= lo)
        want = lo + 1;
    if (want >= hi)
        return 0;
    uint32_t g = cp_floor(t, (uint32_t)want, lo);
    if (g <= lo)
        g = cp_next(t, lo, hi);
    return g < hi ? g : 0;
}

/*
 * A window [pos, w) whose count fits the size and is within `slack` tokens
 * of it (or ends the span): secant steps on bytes per token, each probe
 * counted; lo always fits, hi (when <= end) never does.  *est is the byte
 * length of the previous window, the first guess.
 */
static uint32_t fit_tokens(const struct chunk_doc *d, uint32_t pos, uint32_t end,
                           uint32_t *est, int *tokens)
{
    const unsigned char *t = (const unsigned char *)d->text;
    const int size = d->opts->size, slack = size / 32 + 1;
    uint32_t lo = pos, hi = end + 1;
    int lo_c = 0;
    uint32_t g = end - pos > *est ? cp_floor(t, pos + *est, pos) : end;
    if (g <= pos)
        g = cp_next(t, pos, end);
    while (g) {
        int c = count(d, pos, g);
        if (c <= size) {
            lo = g;
            lo_c = c;
            if (g == end || c >= size - slack)
                break;
            /* grow by the tokens still free, at this window's bytes per token */
            uint64_t want = (uint64_t)g + (uint64_t)(g - pos) * (uint64_t)(size - c) / (uint64_t)(c ? c : 1);
            g = want >= end ? (hi > end ? end : probe(t, want, lo, hi)) : probe(t, want, lo, hi);
        } else {
            hi = g;
            uint64_t want = pos + (uint64_t)(g - pos) * (uint64_t)(size - slack / 2) / (uint64_t)c;
            g = probe(t, want, lo, hi);
        }
    }
    *est = lo - pos;
    *tokens = lo_c;
    return lo;   /* > pos: one code point is at most 4 tokens, and size >= 4 */
}

/* A start x in (pos, w] whose window [x, w) fits the overlap, near it. */
static uint32_t overlap_tokens(const struct chunk_doc *d, uint32_t pos, uint32_t w)
{
    const unsigned char *t = (const unsigned char *)d->text;
    const int ov = d->opts->overlap, slack = ov / 32 + 1;
    uint32_t lo = pos, hi = w;   /* [hi, w) fits (0 tokens at first); lo is too far back */
    int hi_c = 0;
    uint64_t want = w - (uint64_t)(w - pos) * (uint64_t)ov / (uint64_t)d->opts->size;
    uint32_t g = probe(t, want, lo, hi);
    while (g) {
        int c = count(d, g, w);
        if (c <= ov) {
            hi = g;
            hi_c = c;
            if (c >= ov - slack)
                break;
            want = (uint64_t)w - (uint64_t)(w - g) * (uint64_t)ov / (uint64_t)(c ? c : 1);
        } else {
            lo = g;
            want = (uint64_t)w - (uint64_t)(w - g) * (uint64_t)(ov - slack / 2) / (uint64_t)c;
        }
        g = want < hi ? probe(t, want, lo, hi) : probe(t, (uint64_t)hi - 1, lo, hi);
    }
    (void)hi_c;
    return hi;
}

void chunk_fixed_windows(struct chunk_doc *d, uint32_t start, uint32_t end, int with_overlap)
{
    const unsigned char *t = (const unsigned char *)d->text;
    const int in_chars = d->opts->unit == CHUNK_CHARS;
    const uint32_t size = (uint32_t)d->opts->size;
    const uint32_t ov = with_overlap ? (uint32_t)d->opts->overlap : 0;
    uint32_t pos = start, last_end = start, est = size * 4;

    if (all_ws(t, start, end))
        return;
    while (pos < end && d->rc == KB_OK) {
        uint32_t w = pos;
        int tokens = -1;
        if (in_chars)
            for (uint32_t i = 0; i < size && w < end; i++)
                w = cp_next(t, w, end);
        else
            w = fit_tokens(d, pos, end, &est, &tokens);
        if (w <= last_end && pos < last_end) {
            pos = last_end;   /* the overlap left no room for new text */
            continue;
        }
        if (!all_ws(t, pos, w))
            chunk_doc_emit(d, pos, w, tokens >= 0 ? tokens : count(d, pos, w));
        last_end = w;
        if (w >= end)
            break;
        if (ov == 0) {
            pos = w;
        } else if (in_chars) {
            uint32_t x = w;
            for (uint32_t i = 0; i < ov && x > pos; i++)
                x = cp_floor(t, x - 1, pos);
            pos = x > pos ? x : w;
        } else {
            pos = overlap_tokens(d, pos, w);
        }
    }
}
