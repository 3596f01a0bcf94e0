/*
 * text.c - what every document's text goes through: BOM dropped, CR LF and
 * lone CR turned into LF, NUL bytes rejected, UTF-8 validated (or invalid
 * sequences replaced by U+FFFD), and the binary-file sniff.
 *
 * Errors name the byte offset in the original input and its line:column,
 * so `sed -n LINEp` or `cmp` finds the spot.
 */
#include "ingest_int.h"

#include <string.h>

void ingest_text_position(const char *s, size_t off, long *line, long *col)
{
    long l = 1;
    size_t start = 0;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            l++;
            start = i + 1;
        }
    }
    *line = l;
    *col = (long)(off - start) + 1;
}

static void at_offset(const struct kb_origin *base, const char *s, size_t off,
                      struct kb_origin *at)
{
    long line, col;
    ingest_text_position(s, off, &line, &col);
    *at = *base;
    at->row = 0;
    at->line = (base->line > 0 ? base->line - 1 : 0) + line;
    at->col = line == 1 && base->col > 0 ? base->col - 1 + col : col;
}

enum kb_code ingest_text_normalize(const char *s, size_t len, enum ingest_on_utf8 on_bad,
                                   const struct kb_origin *base, const char *what,
                                   struct kb_arena *arena, char **out, size_t *out_len,
                                   struct kb_err *err)
{
    size_t i = 0;
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    /* worst case: every invalid byte becomes 3 bytes of U+FFFD */
    size_t cap = on_bad == INGEST_UTF8_REPLACE ? (len - i) * 3 + 1 : len - i + 1;
    char *o = kb_arena_alloc(arena, cap);
    size_t n = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r') {
            o[n++] = '\n';
            i += (i + 1 < len && s[i + 1] == '\n') ? 2 : 1;
            continue;
        }
        if (c == 0) {
            struct kb_origin at;
            at_offset(base, s, i, &at);
            return KB_FAIL(err, KB_E_INPUT, &at,
                           "%s has a NUL byte at byte offset %zu; remove it (a text "
                           "file never holds NUL) or exclude the file",
                           what, i);
        }
        if (c < 0x80) {
            o[n++] = (char)c;
            i++;
            continue;
        }
        int sl = kb_utf8_seq_len((const unsigned char *)s + i, len - i);
        if (sl > 0) {
            memcpy(o + n, s + i, (size_t)sl);
            n += (size_t)sl;
            i += (size_t)sl;
            continue;
        }
        if (on_bad == INGEST_UTF8_REPLACE) {
            memcpy(o + n, "\xEF\xBF\xBD", 3);
            n += 3;
            i++;
            continue;
        }
        struct kb_origin at;
        at_offset(base, s, i, &at);
        return KB_FAIL(err, KB_E_INPUT, &at,
                       "%s is not valid UTF-8 at byte offset %zu (byte 0x%02x); convert it "
                       "to UTF-8 (iconv) or set on_invalid_utf8: replace",
                       what, i, c);
    }
    o[n] = '\0';
    *out = o;
    *out_len = n;
    return KB_OK;
}

int ingest_text_is_binary(const char *s, size_t len, const char **why)
{
    static const struct { const char *magic; size_t n; const char *name; } magics[] = {
        { "\x89PNG\r\n\x1a\n", 8, "a PNG image" },
        { "\xff\xd8\xff", 3, "a JPEG image" },
        { "GIF8", 4, "a GIF image" },
        { "%PDF-", 5, "a PDF document" },
        { "PK\x03\x04", 4, "a ZIP archive" },
        { "\x1f\x8b", 2, "a gzip file" },
        { "\x7f" "ELF", 4, "an ELF executable" },
        { "\0asm", 4, "a WebAssembly module" },
    };
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++) {
        if (len >= magics[i].n && memcmp(s, magics[i].magic, magics[i].n) == 0) {
            *why = magics[i].name;
            return 1;
        }
    }
    /* Like git's buffer_is_binary, look at the first 8000 bytes; but one stray
     * NUL in text is a defect to report, not a binary file: call it binary
     * when control bytes (NUL included) are more than 10% of the sample. */
    size_t n = len < 8000 ? len : 8000, ctl = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != '\b' &&
            c != 0x1b)
            ctl++;
    }
    if (n > 0 && ctl * 10 > n) {
        *why = "mostly control bytes";
        return 1;
    }
    return 0;
}

void ingest_text_append_clean(struct kb_buf *b, const char *s, size_t len)
{
    kb_buf_reserve(b, len + 1);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r') {
            kb_buf_putc(b, '\n');
            i += (i + 1 < len && s[i + 1] == '\n') ? 2 : 1;
        } else if (c < 0x80) {
            if (c >= 0x20 ? c != 0x7f : (c == '\n' || c == '\t'))
                kb_buf_putc(b, (char)c);
            i++;
        } else {
            int sl = kb_utf8_seq_len((const unsigned char *)s + i, len - i);
            if (sl > 0) {
                kb_buf_append(b, s + i, (size_t)sl);
                i += (size_t)sl;
            } else {
                kb_buf_puts(b, "\xEF\xBF\xBD");
                i++;
            }
        }
    }
}
