/*
 * term.c - text from loaded documents made safe to print on a terminal.
 *
 * A title or chunk loaded from a file or an issue export may hold terminal
 * control sequences (ESC [ 2 J clears the screen, OSC 52 writes the
 * clipboard, ESC ] 0 ; retitles the window).  Printed raw by `kbpipe
 * search`, such a document rewrites the operator's screen.  Every C0
 * control but tab and newline, DEL, and the C1 controls U+0080-U+009F (in
 * their UTF-8 form: a terminal may act on them too) are written as visible
 * escapes, "\x1b" or "\u009b"; a backslash stays a backslash.  Invalid
 * UTF-8 bytes become "\xNN" as well, so what is printed is always valid
 * UTF-8 with no control but tab and newline.
 */
#include "util.h"

#include <stdio.h>
#include <string.h>

/* See util.h. */
void kb_term_escape(struct kb_buf *out, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        char esc[12];
        if (c == '\t' || c == '\n' || (c >= 0x20 && c < 0x7f)) {
            kb_buf_append(out, s + i, 1);
            i++;
            continue;
        }
        if (c < 0x80) {   /* C0 control or DEL */
            snprintf(esc, sizeof esc, "\\x%02x", c);
            kb_buf_append(out, esc, strlen(esc));
            i++;
            continue;
        }
        int n = kb_utf8_seq_len((const unsigned char *)s + i, len - i);
        if (n == 0) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            kb_buf_append(out, esc, strlen(esc));
            i++;
        } else if (n == 2 && c == 0xc2 && (unsigned char)s[i + 1] < 0xa0) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned char)s[i + 1]);   /* C1 */
            kb_buf_append(out, esc, strlen(esc));
            i += 2;
        } else {
            kb_buf_append(out, s + i, (size_t)n);
            i += (size_t)n;
        }
    }
}
