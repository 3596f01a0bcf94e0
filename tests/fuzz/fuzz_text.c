/*
 * fuzz_text.c - the files reader's text normalization (src/ingest/text.c
 * through the files reader: binary sniff, UTF-8 BOM dropped, CR LF and lone
 * CR to LF, NUL rejected, invalid UTF-8 rejected or replaced by U+FFFD) on
 * any bytes as one .txt file, the source's single root.  on_invalid_utf8
 * follows a hash of the input.
 *
 * Invariants, besides the reader's (ingest_check.h):
 *   - a file is either a document, a binary skip with a note, or one
 *     KB_E_INPUT; then the reader ends;
 *   - with on_invalid_utf8: reject, a document's text is exactly the input
 *     without its BOM and with CR LF / CR made LF; the file is rejected
 *     exactly when the input (after the BOM) has a NUL or invalid UTF-8;
 *   - with replace, only a NUL rejects it, and the text is at most three
 *     times the input.
 */
#include "ingest_check.h"

struct expect {
    const uint8_t *data;
    size_t size;
    int is_reject_mode;
    long n_docs;
};

/* The input as normalization must give it, when it is valid: BOM off, CRs to LF. */
static void each(const struct kb_document *d, void *ctx)
{
    struct expect *x = ctx;
    x->n_docs++;
    KBFUZZ_CHECK(d->len <= 3 * x->size, "text of %zu bytes from %zu", d->len, x->size);
    KBFUZZ_CHECK(strcmp(d->source_type, "file") == 0, "source_type %s", d->source_type);
    if (!x->is_reject_mode)
        return;
    size_t i = x->size >= 3 && memcmp(x->data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0, n = 0;
    for (; i < x->size; i++, n++) {
        char want = (char)x->data[i];
        if (want == '\r') {
            want = '\n';
            if (i + 1 < x->size && x->data[i + 1] == '\n')
                i++;
        }
        KBFUZZ_CHECK(n < d->len && d->text[n] == want, "text differs at byte %zu", n);
    }
    KBFUZZ_CHECK(n == d->len, "text of %zu bytes, expected %zu", d->len, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kbfuzz_quiet();
    uint64_t h = kbfuzz_hash(data, size);
    const char *roots[1];
    struct ingest_source src;
    kbfuzz_files_source(&src, roots, kbfuzz_write("in.txt", data, size));
    src.u.files.on_invalid_utf8 = h & 1 ? INGEST_UTF8_REPLACE : INGEST_UTF8_REJECT;
    struct expect x = { data, size, src.u.files.on_invalid_utf8 == INGEST_UTF8_REJECT, 0 };

    struct ingest_reader *rd;
    struct kb_arena *arena;
    struct kb_document *d;
    struct kb_err err = { 0 };
    enum kb_code rc = kbfuzz_first_doc(&src, &rd, &arena, &d, &err);
    const struct ingest_stats *st = ingest_reader_stats(rd);
    size_t bom = size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    int has_nul = memchr(data + bom, 0, size - bom) != NULL;
    int is_utf8 = kbfuzz_utf8((const char *)data + bom, size - bom);
    if (rc == KB_OK && d) {
        kbfuzz_check_doc(d);
        each(d, &x);
        KBFUZZ_CHECK(!has_nul, "a document from an input with a NUL");
        KBFUZZ_CHECK(!x.is_reject_mode || is_utf8, "invalid UTF-8 accepted in reject mode");
    } else if (rc == KB_OK) {
        KBFUZZ_CHECK(st->n_skipped == 1 && st->last_note[0], "no document and no skip note");
    } else {
        kbfuzz_check_err(rc, &err);
        KBFUZZ_CHECK(rc == KB_E_INPUT, "next returned %d", (int)rc);
        KBFUZZ_CHECK(has_nul || (x.is_reject_mode && !is_utf8),
                     "a valid input rejected: %s: %s", err.origin, err.msg);
        KBFUZZ_CHECK(strstr(err.origin, "in.txt") != NULL, "origin '%s' names no file",
                     err.origin);
    }
    kbfuzz_one_file_done(rd, arena, "in.txt");
    return 0;
}
