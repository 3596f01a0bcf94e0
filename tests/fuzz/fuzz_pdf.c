/*
 * fuzz_pdf.c - the PDF reader (src/ingest/pdf.c through the files reader:
 * poppler-glib opening the bytes, page texts, page starts, the title, the
 * limits) on any bytes as one .pdf file.  max_pages (1, 2 or the default)
 * follows a hash of the input.
 *
 * Invariants, besides the reader's (ingest_check.h): one document or one
 * one-line KB_E_INPUT naming the file; a document's metadata says "format":
 * "pdf"; its title is one line; it has 1..max_pages pages whose starts never decrease and stay in
 * the text; its text is not blank; ingest_doc_pages maps the whole text to
 * pages first <= last within 1..n_pages, and each page's start to itself
 * or a later page (when the page before is empty).
 */
#include "ingest_check.h"

static void check_pages(const struct kb_document *d, int max_pages)
{
    KBFUZZ_CHECK(d->n_pages >= 1 && d->n_pages <= max_pages, "%d pages (max %d)", d->n_pages,
                 max_pages);
    KBFUZZ_CHECK(d->page_starts != NULL, "no page starts");
    for (int i = 0; i < d->n_pages; i++) {
        KBFUZZ_CHECK(d->page_starts[i] <= d->len, "page %d starts at %zu of %zu", i + 1,
                     d->page_starts[i], d->len);
        KBFUZZ_CHECK(i == 0 || d->page_starts[i] >= d->page_starts[i - 1],
                     "page %d starts before page %d", i + 1, i);
        int first, last;
        ingest_doc_pages(d, d->page_starts[i], 1, &first, &last);
        KBFUZZ_CHECK(d->page_starts[i] == d->len || (first >= i + 1 && first == last),
                     "page %d's first byte maps to pages %d-%d", i + 1, first, last);
    }
    int first, last;
    ingest_doc_pages(d, 0, d->len, &first, &last);
    KBFUZZ_CHECK(first >= 1 && first <= last && last <= d->n_pages, "text on pages %d-%d of %d",
                 first, last, d->n_pages);
    size_t i = 0;
    while (i < d->len && strchr(" \t\n", d->text[i]))
        i++;
    KBFUZZ_CHECK(i < d->len, "a document with blank text");
    KBFUZZ_CHECK(d->title && d->title[0] && !strchr(d->title, '\n'), "title '%s'",
                 d->title ? d->title : "(null)");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kbfuzz_quiet();
    uint64_t h = kbfuzz_hash(data, size);
    const char *roots[1];
    struct ingest_source src;
    kbfuzz_files_source(&src, roots, kbfuzz_write("doc.pdf", data, size));
    int max_pages = (h & 3) == 1 ? 1 : (h & 3) == 2 ? 2 : INGEST_DEFAULT_MAX_PAGES;
    src.u.files.max_pages = max_pages;

    struct ingest_reader *rd;
    struct kb_arena *arena;
    const struct kb_document *d = kbfuzz_one_format_doc(&src, "doc.pdf", "pdf", &rd, &arena);
    if (d)
        check_pages(d, max_pages);
    kbfuzz_one_file_done(rd, arena, "doc.pdf");
    return 0;
}
