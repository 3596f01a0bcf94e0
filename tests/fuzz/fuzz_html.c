/*
 * fuzz_html.c - the HTML reader (src/ingest/html.c through the files
 * reader: libxml2's recovering parser, the DOM to Markdown-shaped text,
 * drop selectors, charset conversion) on any bytes as one .html file.  The
 * drop list (default, none, or a few selectors) follows a hash of the input.
 *
 * Invariants, besides the reader's (ingest_check.h): one document or one
 * one-line KB_E_INPUT naming the file; a document's metadata says "format":
 * "html"; its title is one line; its text reads as the Markdown the
 * converter promises: every fence it opens is closed, and outside fences a
 * line starting with '#' is a heading of level 1..6 with a title (page text
 * that looks like a heading was escaped).
 */
#include "ingest_check.h"

/* Walk the lines: fences balanced, '#' lines outside fences are headings. */
static void check_markdown(const char *t, size_t len)
{
    size_t fence = 0;   /* backticks of the open fence, 0 outside */
    for (const char *p = t, *end = t + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p), run = 0;
        while (run < n && p[run] == '`')
            run++;
        if (fence) {
            if (run == fence && n == fence)
                fence = 0;
        } else if (run >= 3) {
            fence = run;
        } else if (n && p[0] == '#') {
            size_t h = 0;
            while (h < n && p[h] == '#')
                h++;
            KBFUZZ_CHECK(h <= 6 && h + 1 < n && p[h] == ' ' && p[h + 1] != ' ',
                         "a '#' line that is no heading: %.*s", (int)(n < 80 ? n : 80), p);
        }
        p += n + 1;
    }
    KBFUZZ_CHECK(fence == 0, "a fence of %zu backticks left open", fence);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kbfuzz_quiet();
    uint64_t h = kbfuzz_hash(data, size);
    const char *roots[1];
    static const char *drop[] = { ".a", "div#b", "p" };
    struct ingest_source src;
    kbfuzz_files_source(&src, roots, kbfuzz_write("page.html", data, size));
    src.u.files.on_invalid_utf8 = h & 1 ? INGEST_UTF8_REPLACE : INGEST_UTF8_REJECT;
    if (h & 2) {   /* else the default list: nav, header, footer */
        src.u.files.drop.v = drop;
        src.u.files.drop.n = h & 4 ? 3 : 0;
    }

    struct ingest_reader *rd;
    struct kb_arena *arena;
    const struct kb_document *d = kbfuzz_one_format_doc(&src, "page.html", "html", &rd, &arena);
    if (d) {
        KBFUZZ_CHECK(d->title && d->title[0] && !strchr(d->title, '\n'), "title '%s'",
                     d->title ? d->title : "(null)");
        KBFUZZ_CHECK(d->page_starts == NULL && d->n_pages == 0, "pages in an HTML file");
        check_markdown(d->text, d->len);
    }
    kbfuzz_one_file_done(rd, arena, "page.html");
    return 0;
}
