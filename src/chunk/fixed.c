/*
 * fixed.c - windows over a span of text, cut at code point boundaries: the
 * fixed splitter in characters, and any single piece longer than the size
 * (a 1 MB word, a long base64 line) for every splitter.
 *
 * In characters a window is exactly opts->size code points (the last one
 * may be shorter) and the next starts opts->overlap code points before its
 * end.  In tokens a window is the longest span whose own count fits: found
 * by counting candidate spans, growing from an estimate (bytes per token of
 * the previous window) and then bisecting; the overlap start is the earliest
 * boundary whose span to the window's end fits the overlap.  Counting only
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

/* The longest window [pos, w) whose count fits the size; *est: bytes guess. */
static uint32_t fit_tokens(const struct chunk_doc *d, uint32_t pos, uint32_t end,
                           uint32_t *est, int *tokens)
{
    const unsigned char *t = (const unsigned char *)d->text;
    const int size = d->opts->size;
    uint32_t lo = pos, hi = end + 1;   /* lo fits; hi (when <= end) does not */
    int lo_c = 0;
    uint32_t step = *est, g = end - pos > step ? cp_floor(t, pos + step, pos) : end;
    if (g <= pos)
        g = cp_next(t, pos, end);
    for (;;) {   /* grow until a window is too long or the span ends */
        int c = count(d, pos, g);
        if (c > size) {
            hi = g;
            break;
        }
        lo = g;
        lo_c = c;
        if (g == end)
            break;
        step = step / 2 + 1;
        g = end - g > step ? cp_floor(t, g + step, lo) : end;
        if (g <= lo)
            g = cp_next(t, lo, end);
    }
    while (hi <= end) {   /* bisect between a fitting and a too long end */
        uint32_t mid = cp_floor(t, lo + (hi - lo) / 2, lo);
        if (mid <= lo)
            mid = cp_next(t, lo, end);
        if (mid >= hi)
            break;
        int c = count(d, pos, mid);
        if (c <= size) {
            lo = mid;
            lo_c = c;
        } else {
            hi = mid;
        }
    }
    *est = lo - pos;
    *tokens = lo_c;
    return lo;   /* > pos: one code point is at most 4 tokens, and size >= 4 */
}

/* The earliest start x in (pos, w] whose window [x, w) fits the overlap. */
static uint32_t overlap_tokens(const struct chunk_doc *d, uint32_t pos, uint32_t w)
{
    const unsigned char *t = (const unsigned char *)d->text;
    uint32_t lo = pos, hi = w;   /* hi fits (0 tokens); lo is not allowed */
    for (;;) {
        uint32_t mid = cp_floor(t, lo + (hi - lo) / 2, lo);
        if (mid <= lo)
            mid = cp_next(t, lo, w);
        if (mid >= hi)
            return hi;
        if (count(d, mid, w) <= d->opts->overlap)
            hi = mid;
        else
            lo = mid;
    }
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
    while (pos < end) {
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
