/*
 * pretokenize.c - the pre-split of cl100k_base, a hand-written scanner that
 * finds the same pieces as its regex (Perl semantics: alternatives tried in
 * order, quantifiers greedy, leftmost-first):
 *
 *   1 (?i:'s|'t|'re|'ve|'m|'ll|'d)      contractions, any case ('S, 'Ll, 'ſ)
 *   2 [^\r\n\p{L}\p{N}]?\p{L}+          a word, with one optional leading
 *                                       non-letter (" the", "\tfoo", "'em", "$x")
 *   3 \p{N}{1,3}                         at most three digits
 *   4  ?[^\s\p{L}\p{N}]+[\r\n]*          punctuation run, optional space before,
 *                                       line breaks after
 *   5 \s*[\r\n]+                         whitespace up to its last line break
 *   6 \s+(?!\S)                          whitespace but its last char, which
 *                                       joins the next piece (" the")
 *   7 \s+                                one lone whitespace char
 *
 * The scanner decides from the class of the first char, which settles which
 * alternative can match, then walks runs of one class.  For a whitespace run,
 * the backtracking of 5 and 6 comes to: end just after the run's last \r or
 * \n if it has one; else the whole run at the end of the text; else the run
 * less its last char, unless that leaves nothing (7).
 *
 * The classes are Unicode 16.0's, the version of the regex tables in the
 * reference (tiktoken 1.0.22): a digit new in 16.0 groups with digits there,
 * one new in 17.0 does not (docs/tokenizer.md).  Every byte of invalid UTF-8
 * is read as one CHUNK_CLS_OTHER char, so any input scans in linear time.
 */
#include <stdlib.h>
#include <string.h>

#include "chunk/tokenizer_int.h"
#include "util/util.h"

#define N_STAGE1 0x1100u   /* (U+10FFFF >> 8) + 1 */

/* ASCII classes, so most text never reaches the tables. */
static const uint8_t ascii_cls[128] = {
    ['\t'] = CHUNK_CLS_SPACE, ['\n'] = CHUNK_CLS_NEWLINE, [0x0b] = CHUNK_CLS_SPACE,
    [0x0c] = CHUNK_CLS_SPACE, ['\r'] = CHUNK_CLS_NEWLINE, [' '] = CHUNK_CLS_SPACE,
    ['0'] = CHUNK_CLS_NUMBER, ['1'] = CHUNK_CLS_NUMBER, ['2'] = CHUNK_CLS_NUMBER,
    ['3'] = CHUNK_CLS_NUMBER, ['4'] = CHUNK_CLS_NUMBER, ['5'] = CHUNK_CLS_NUMBER,
    ['6'] = CHUNK_CLS_NUMBER, ['7'] = CHUNK_CLS_NUMBER, ['8'] = CHUNK_CLS_NUMBER,
    ['9'] = CHUNK_CLS_NUMBER,
#define L2(a, b) [a] = CHUNK_CLS_LETTER, [b] = CHUNK_CLS_LETTER
    L2('A', 'a'), L2('B', 'b'), L2('C', 'c'), L2('D', 'd'), L2('E', 'e'), L2('F', 'f'),
    L2('G', 'g'), L2('H', 'h'), L2('I', 'i'), L2('J', 'j'), L2('K', 'k'), L2('L', 'l'),
    L2('M', 'm'), L2('N', 'n'), L2('O', 'o'), L2('P', 'p'), L2('Q', 'q'), L2('R', 'r'),
    L2('S', 's'), L2('T', 't'), L2('U', 'u'), L2('V', 'v'), L2('W', 'w'), L2('X', 'x'),
    L2('Y', 'y'), L2('Z', 'z'),
#undef L2
};

static void fill(uint8_t *cls, const uint32_t (*ranges)[2], size_t n, enum chunk_cls c)
{
    for (size_t i = 0; i < n; i++)
        memset(cls + ranges[i][0], c, ranges[i][1] - ranges[i][0] + 1);
}

void chunk_pretok_init(struct chunk_pretok *pt)
{
    /* a flat table first, then its distinct 256-entry blocks */
    uint8_t *flat = kb_xcalloc(N_STAGE1 * 256, 1);
    fill(flat, chunk_ucd_letter, chunk_ucd_letter_n, CHUNK_CLS_LETTER);
    fill(flat, chunk_ucd_number, chunk_ucd_number_n, CHUNK_CLS_NUMBER);
    fill(flat, chunk_ucd_space, chunk_ucd_space_n, CHUNK_CLS_SPACE);
    flat['\r'] = flat['\n'] = CHUNK_CLS_NEWLINE;

    pt->stage1 = kb_xmalloc(N_STAGE1 * sizeof pt->stage1[0]);
    pt->stage2 = kb_xmalloc(N_STAGE1 * 256);
    pt->n_blocks = 0;
    for (size_t b = 0; b < N_STAGE1; b++) {
        const uint8_t *blk = flat + b * 256;
        size_t k = 0;
        while (k < pt->n_blocks && memcmp(pt->stage2 + k * 256, blk, 256) != 0)
            k++;
        if (k == pt->n_blocks)
            memcpy(pt->stage2 + pt->n_blocks++ * 256, blk, 256);
        pt->stage1[b] = (uint16_t)k;
    }
    pt->stage2 = kb_xrealloc(pt->stage2, pt->n_blocks * 256);
    free(flat);
}

void chunk_pretok_release(struct chunk_pretok *pt)
{
    free(pt->stage1);
    free(pt->stage2);
    memset(pt, 0, sizeof *pt);
}

enum chunk_cls chunk_pretok_class(const struct chunk_pretok *pt, uint32_t cp)
{
    if (cp >= N_STAGE1 * 256)
        return CHUNK_CLS_OTHER;
    return (enum chunk_cls)pt->stage2[(size_t)pt->stage1[cp >> 8] * 256 + (cp & 0xff)];
}

/*
 * Class of the char at s[i] (i < len); *n = its byte length.  A byte that
 * does not start a complete sequence is a 1-byte CHUNK_CLS_OTHER char.
 */
static inline enum chunk_cls cls_at(const struct chunk_pretok *pt, const unsigned char *s,
                                    size_t len, size_t i, size_t *n)
{
    unsigned b = s[i];
    uint32_t cp;
    size_t k;

    if (b < 0x80) {
        *n = 1;
        return (enum chunk_cls)ascii_cls[b];
    }
    if (b >= 0xc2 && b <= 0xdf) {
        k = 2;
        cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
        k = 3;
        cp = b & 0x0f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        k = 4;
        cp = b & 0x07;
    } else {
        *n = 1;
        return CHUNK_CLS_OTHER;
    }
    if (len - i < k) {
        *n = 1;
        return CHUNK_CLS_OTHER;
    }
    for (size_t j = 1; j < k; j++) {
        if ((s[i + j] & 0xc0) != 0x80) {
            *n = 1;
            return CHUNK_CLS_OTHER;
        }
        cp = (cp << 6) | (s[i + j] & 0x3f);
    }
    *n = k;
    return chunk_pretok_class(pt, cp);
}

/* End of the run of chars of class c that starts at s[i]. */
static size_t run_of(const struct chunk_pretok *pt, const unsigned char *s, size_t len,
                     size_t i, enum chunk_cls c)
{
    size_t n;
    while (i < len && cls_at(pt, s, len, i, &n) == c)
        i += n;
    return i;
}

/* Alternative 4 after its optional space: [^\s\p{L}\p{N}]+[\r\n]*, from i. */
static size_t punct_run(const struct chunk_pretok *pt, const unsigned char *s, size_t len,
                        size_t i)
{
    i = run_of(pt, s, len, i, CHUNK_CLS_OTHER);
    while (i < len && (s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

/* Alternative 1: length of the contraction after an apostrophe at s[-1], or 0. */
static size_t contraction(const unsigned char *s, size_t avail)
{
    unsigned c0 = avail > 0 ? s[0] | 0x20 : 0;   /* ASCII letters to lower case */
    unsigned c1 = avail > 1 ? s[1] | 0x20 : 0;

    if (avail == 0)
        return 0;
    if (c0 == 's' || c0 == 't' || c0 == 'm' || c0 == 'd')
        return 1;
    if ((c0 == 'r' || c0 == 'v') && c1 == 'e')
        return 2;
    if (c0 == 'l' && c1 == 'l')
        return 2;
    /* (?i) folds 's' with U+017F LATIN SMALL LETTER LONG S, as the reference does */
    if (avail > 1 && s[0] == 0xc5 && s[1] == 0xbf)
        return 2;
    return 0;
}

/* Alternatives 5-7 for the whitespace run that starts at s[i]. */
static size_t space_run(const struct chunk_pretok *pt, const unsigned char *s, size_t len,
                        size_t i)
{
    size_t k = i, last = i, n;
    size_t after_nl = 0;   /* just past the last \r or \n, 0 = none yet */

    while (k < len) {
        enum chunk_cls c = cls_at(pt, s, len, k, &n);
        if (c == CHUNK_CLS_NEWLINE)
            after_nl = k + 1;
        else if (c != CHUNK_CLS_SPACE)
            break;
        last = k;
        k += n;
    }
    if (after_nl)
        return after_nl;          /* 5 */
    if (k == len || last == i)
        return k;                 /* 6 at the end of the text, or 7 */
    return last;                  /* 6: the last char joins the next piece */
}

size_t chunk_pretok_next(const struct chunk_pretok *pt, const unsigned char *s, size_t len,
                         size_t i)
{
    size_t n0, n1;
    enum chunk_cls c0 = cls_at(pt, s, len, i, &n0), c1;
    size_t j = i + n0;

    if (s[i] == '\'') {
        size_t m = contraction(s + j, len - j);
        if (m)
            return j + m;
    }
    switch (c0) {
    case CHUNK_CLS_LETTER:
        return run_of(pt, s, len, j, CHUNK_CLS_LETTER);
    case CHUNK_CLS_NUMBER:
        for (int d = 1; d < 3 && j < len && cls_at(pt, s, len, j, &n1) == CHUNK_CLS_NUMBER; d++)
            j += n1;
        return j;
    case CHUNK_CLS_OTHER:
        if (j < len && cls_at(pt, s, len, j, &n1) == CHUNK_CLS_LETTER)
            return run_of(pt, s, len, j + n1, CHUNK_CLS_LETTER);   /* 2 */
        return punct_run(pt, s, len, j);                            /* 4 */
    case CHUNK_CLS_SPACE:
        if (j < len) {
            c1 = cls_at(pt, s, len, j, &n1);
            if (c1 == CHUNK_CLS_LETTER)
                return run_of(pt, s, len, j + n1, CHUNK_CLS_LETTER);   /* 2 */
            if (s[i] == ' ' && c1 == CHUNK_CLS_OTHER)
                return punct_run(pt, s, len, j);                        /* 4 */
        }
        return space_run(pt, s, len, i);
    case CHUNK_CLS_NEWLINE:
        return space_run(pt, s, len, i);
    }
    return j;
}
