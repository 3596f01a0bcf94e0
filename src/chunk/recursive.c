/*
 * recursive.c - the boundaries of plain text: paragraphs (after a blank
 * line), lines, sentences, words; the recursive splitter uses these alone,
 * the markdown splitter on top of its own.
 *
 * A line that is not blank starts on a piece boundary: the regex ends a
 * whitespace run that holds line breaks just after its last one, and
 * punctuation takes the line breaks that follow it.  So line marks land on
 * pieces; one that did not would apply to the next boundary (chunk.c).
 *
 * Sentences: a boundary followed by a blank, after . ! ? or an ellipsis,
 * possibly closed by quotes, brackets or emphasis (`."`, `?)`, `!**`);
 * after the CJK full stops 。！？ no blank is needed.  Abbreviations ("e.g.")
 * also end a sentence here; the cost is a slightly earlier cut.
 */
#include "chunk/chunk_int.h"

#include <string.h>

/* 1 when text[pos, eol) holds only ASCII blanks (\r included). */
static int line_is_blank(const char *t, uint32_t pos, uint32_t eol)
{
    for (uint32_t i = pos; i < eol; i++)
        if (t[i] != ' ' && t[i] != '\t' && t[i] != '\r' && t[i] != '\f' && t[i] != '\v')
            return 0;
    return 1;
}

void chunk_recursive_marks(struct chunk_doc *d)
{
    const char *t = d->text;
    uint32_t pos = 0;
    int after_blank = 1;
    while (pos < d->len) {
        const char *nl = memchr(t + pos, '\n', d->len - pos);
        uint32_t eol = nl ? (uint32_t)(nl - t) : d->len;
        if (line_is_blank(t, pos, eol)) {
            after_blank = 1;
        } else {
            chunk_doc_add_mark(d, pos, after_blank ? CHUNK_LV_PARA : CHUNK_LV_LINE);
            after_blank = 0;
        }
        pos = nl ? eol + 1 : d->len;
    }
}

/* 1 when p[0..n) ends with the 3-byte sequence s */
static int ends_with3(const unsigned char *p, size_t n, const char *s)
{
    return n >= 3 && memcmp(p + n - 3, s, 3) == 0;
}

int chunk_ends_sentence(const struct chunk_doc *d, uint32_t k)
{
    const unsigned char *p = (const unsigned char *)d->text + d->off[k - 1];
    size_t n = d->off[k] - d->off[k - 1];
    if (ends_with3(p, n, "\xe3\x80\x82") || ends_with3(p, n, "\xef\xbc\x81") ||
        ends_with3(p, n, "\xef\xbc\x9f"))
        return 1;   /* 。！？ */
    unsigned next = p[n];   /* k < d->n, so there is a next byte */
    if (next != ' ' && next != '\t')
        return 0;
    for (;;) {   /* closers: " ' ) ] * _ and the curly quotes ” ’ */
        if (n > 0 && strchr("\"')]*_", p[n - 1]) && p[n - 1] != '\0')
            n--;
        else if (ends_with3(p, n, "\xe2\x80\x9d") || ends_with3(p, n, "\xe2\x80\x99"))
            n -= 3;
        else
            break;
    }
    if (n == 0)
        return 0;
    unsigned last = p[n - 1];
    return last == '.' || last == '!' || last == '?' || ends_with3(p, n, "\xe2\x80\xa6");
}
