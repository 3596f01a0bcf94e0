/*
 * pdf.c - the text layer of PDF files, page by page, through poppler's C
 * API (poppler-glib).
 *
 * The document's text is each page's text in page order, a blank line
 * after every page that has any; page_starts[i] is where page i+1 starts,
 * so chunk metadata can name the page (or pages) a chunk comes from
 * (ingest_doc_pages).  The title is the document info's Title.
 *
 * Rejected, each with the file as origin and never a crash:
 *   - bytes poppler cannot open as a PDF (damaged, truncated);
 *   - an encrypted PDF that needs a password;
 *   - a PDF with no text at all: scanned pages, images only ("no text
 *     layer; OCR it first");
 *   - more than max_pages pages, or more than max_file_size bytes of
 *     text (a small compressed file can hold a great deal of text).
 * The file's own size is held to max_file_size by files.c, as for every
 * file.  Text poppler extracts is cleaned, not rejected: control bytes
 * dropped, invalid UTF-8 replaced by U+FFFD.
 *
 * poppler-glib is opened with dlopen when the first PDF is read, not linked:
 * it brings about forty libraries (poppler, cairo, NSS, fontconfig, X11
 * ...) whose loading and relocation cost every kbpipe process 27 ms of CPU
 * at start, PDF or not (docs/loading.md, "What kbpipe controls", (4)).
 * Its header still gives the types; the calls go through `pp`, filled once.
 */
#include "ingest_int.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <poppler.h>

/* The poppler-glib and GLib calls pdf.c makes, resolved from the library. */
static struct {
    GBytes *(*bytes_new_static)(gconstpointer data, gsize size);
    void (*bytes_unref)(GBytes *bytes);
    void (*clear_error)(GError **err);
    void (*free)(gpointer mem);
    guint (*log_set_handler)(const gchar *domain, GLogLevelFlags levels, GLogFunc fn,
                             gpointer data);
    void (*object_unref)(gpointer object);
    GQuark (*error_quark)(void);
    PopplerDocument *(*document_new_from_bytes)(GBytes *bytes, const char *password,
                                                GError **error);
    int (*document_get_n_pages)(PopplerDocument *doc);
    PopplerPage *(*document_get_page)(PopplerDocument *doc, int index);
    gchar *(*document_get_title)(PopplerDocument *doc);
    char *(*page_get_text)(PopplerPage *page);
} pp;
static int pp_is_loaded;
static char pp_why[300];
static pthread_once_t pp_once = PTHREAD_ONCE_INIT;

/* The shared object's names: Debian's soname first, then the dev link. */
static const char *const PP_LIBS[] = { "libpoppler-glib.so.8", "libpoppler-glib.so" };

/* poppler-glib logs the PDF's syntax problems through GLib at INFO level:
 * kept out of kbpipe's stderr unless the user asked for -v. */
static void on_glib_log(const gchar *domain, GLogLevelFlags level, const gchar *msg,
                        gpointer data)
{
    (void)level;
    (void)data;
    log_debug("%s: %s", domain ? domain : "glib", msg ? msg : "");
}

static void pp_load(void)
{
    void *h = kb_dl_open(PP_LIBS, sizeof PP_LIBS / sizeof PP_LIBS[0], pp_why, sizeof pp_why);
    if (h == NULL)
        return;
#define PP_SYM(field, name) \
    kb_dl_sym(h, PP_LIBS[0], name, &pp.field, sizeof pp.field, pp_why, sizeof pp_why)
    pp_is_loaded = PP_SYM(bytes_new_static, "g_bytes_new_static") &&
                   PP_SYM(bytes_unref, "g_bytes_unref") &&
                   PP_SYM(clear_error, "g_clear_error") && PP_SYM(free, "g_free") &&
                   PP_SYM(log_set_handler, "g_log_set_handler") &&
                   PP_SYM(object_unref, "g_object_unref") &&
                   PP_SYM(error_quark, "poppler_error_quark") &&
                   PP_SYM(document_new_from_bytes, "poppler_document_new_from_bytes") &&
                   PP_SYM(document_get_n_pages, "poppler_document_get_n_pages") &&
                   PP_SYM(document_get_page, "poppler_document_get_page") &&
                   PP_SYM(document_get_title, "poppler_document_get_title") &&
                   PP_SYM(page_get_text, "poppler_page_get_text");
#undef PP_SYM
    if (pp_is_loaded)   /* once: g_log_set_handler adds a handler at each call */
        pp.log_set_handler("Poppler", G_LOG_LEVEL_MASK, on_glib_log, NULL);
}


static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Why poppler could not open the file, as the reject says it. */
static enum kb_code open_failed(const GError *gerr, const struct kb_origin *at,
                                struct kb_err *err)
{
    if (gerr && gerr->domain == pp.error_quark() && gerr->code == POPPLER_ERROR_ENCRYPTED)
        return KB_FAIL(err, KB_E_INPUT, at, "the PDF is encrypted and needs a password, so "
                       "it has no text layer kbpipe can read; decrypt it first (qpdf "
                       "--decrypt --password=... IN OUT) or exclude it");
    return KB_FAIL(err, KB_E_INPUT, at, "poppler cannot read the PDF (%.120s); repair it "
                   "(e.g. qpdf IN OUT) or exclude it",
                   gerr && gerr->message ? gerr->message : "no reason given");
}

/* Append each page's text to b, recording where each starts. */
static enum kb_code read_pages(PopplerDocument *pd, int n_pages, long max_text,
                               const struct kb_origin *at, struct kb_buf *b, size_t *starts,
                               struct kb_err *err)
{
    for (int i = 0; i < n_pages; i++) {
        starts[i] = b->len;
        PopplerPage *page = pp.document_get_page(pd, i);
        char *t = page ? pp.page_get_text(page) : NULL;
        if (t) {
            size_t before = b->len;
            ingest_text_append_clean(b, t, strlen(t));
            if (is_blank(b->data + before, b->len - before)) {
                b->len = before;   /* a page of images: nothing to keep */
                b->data[before] = '\0';
            } else {
                kb_buf_puts(b, "\n\n");
            }
            pp.free(t);
        }
        if (page)
            pp.object_unref(page);
        if (max_text > 0 && b->len > (size_t)max_text)
            return KB_FAIL(err, KB_E_INPUT, at, "the PDF's text is over %ld bytes by page "
                           "%d, over max_file_size; raise max_file_size or split the PDF",
                           max_text, i + 1);
    }
    return KB_OK;
}

enum kb_code ingest_pdf_convert(struct ingest_reader *rd, const char *raw, size_t len,
                                const struct kb_origin *at, struct kb_arena *arena,
                                struct ingest_converted *out, struct kb_err *err)
{
    const struct ingest_files_opts *o = &rd->src->u.files;
    memset(out, 0, sizeof *out);
    if (len > (size_t)LONG_MAX / 2)
        return KB_FAIL(err, KB_E_INPUT, at, "the PDF is %zu bytes, more than kbpipe reads; "
                       "split it or exclude it", len);
    pthread_once(&pp_once, pp_load);
    if (!pp_is_loaded)
        return KB_FAIL(err, KB_E_CONFIG, at, "reading PDF files needs poppler-glib, which "
                       "cannot be loaded (%.200s); install it (Debian: apt-get install "
                       "libpoppler-glib8) or exclude the PDF files", pp_why);
    GBytes *bytes = pp.bytes_new_static(raw, len);
    GError *gerr = NULL;
    PopplerDocument *pd = pp.document_new_from_bytes(bytes, NULL, &gerr);
    pp.bytes_unref(bytes);
    if (pd == NULL) {
        enum kb_code rc = open_failed(gerr, at, err);
        pp.clear_error(&gerr);
        return rc;
    }
    int n_pages = pp.document_get_n_pages(pd);
    int max_pages = o->max_pages > 0 ? o->max_pages : INGEST_DEFAULT_MAX_PAGES;
    if (n_pages > max_pages) {
        pp.object_unref(pd);
        return KB_FAIL(err, KB_E_INPUT, at, "the PDF has %d pages, over max_pages (%d); raise "
                       "max_pages or exclude the file", n_pages, max_pages);
    }
    struct kb_buf b;
    kb_buf_init(&b);
    kb_buf_reserve(&b, 1);
    size_t *starts = kb_arena_alloc(arena, sizeof *starts * (size_t)(n_pages > 0 ? n_pages : 1));
    enum kb_code rc = read_pages(pd, n_pages, o->max_file_size, at, &b, starts, err);
    if (rc == KB_OK && is_blank(b.data, b.len))
        rc = KB_FAIL(err, KB_E_INPUT, at, "the PDF has %d page%s but no text layer (scanned "
                     "or image-only pages); OCR it first (e.g. ocrmypdf IN OUT) or exclude it",
                     n_pages, n_pages == 1 ? "" : "s");
    if (rc == KB_OK) {
        while (b.len && b.data[b.len - 1] == '\n')
            b.data[--b.len] = '\0';   /* the last page's blank line */
        for (int i = 0; i < n_pages; i++)
            starts[i] = starts[i] < b.len ? starts[i] : b.len;
        out->text = kb_arena_strndup(arena, b.data, b.len);
        out->len = b.len;
        out->page_starts = starts;
        out->n_pages = n_pages;
        char *title = pp.document_get_title(pd);
        if (title) {
            kb_buf_reset(&b);
            ingest_text_append_clean(&b, title, strlen(title));
            for (size_t i = 0; i < b.len; i++)
                if (b.data[i] == '\n' || b.data[i] == '\t')
                    b.data[i] = ' ';   /* a title is one line */
            if (!is_blank(b.data, b.len))
                out->title = kb_arena_strndup(arena, b.data, b.len);
            pp.free(title);
        }
        out->meta = json_object();
        json_object_set_new(out->meta, "n_pages", json_integer(n_pages));
    }
    kb_buf_release(&b);
    pp.object_unref(pd);
    return rc;
}
