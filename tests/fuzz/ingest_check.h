/*
 * ingest_check.h - the checks the ingest harnesses (fuzz_csv, fuzz_issues,
 * fuzz_text, fuzz_frontmatter, fuzz_html, fuzz_pdf) share: a document as kb_document promises
 * it, and the reader loop that must end and account for every item.
 */
#ifndef KB_FUZZ_INGEST_CHECK_H
#define KB_FUZZ_INGEST_CHECK_H

#include <jansson.h>

#include "fuzz.h"
#include "ingest/ingest.h"

/*
 * *src: a files source over the one file name (written with kbfuzz_write)
 * as its root; roots is the caller's storage for the one-entry root list.
 */
static inline void kbfuzz_files_source(struct ingest_source *src, const char **roots,
                                       const char *path)
{
    roots[0] = path;
    ingest_source_defaults(src, INGEST_FILES);
    src->name = "fuzz";
    src->u.files.roots.v = roots;
    src->u.files.roots.n = 1;
}

/* Open src, read its first document into *d (NULL at the end) from arena. */
static inline enum kb_code kbfuzz_first_doc(const struct ingest_source *src,
                                            struct ingest_reader **rd, struct kb_arena **arena,
                                            struct kb_document **d, struct kb_err *err)
{
    *rd = NULL;
    KBFUZZ_CHECK(ingest_open(src, NULL, rd, err) == KB_OK, "open: %s", err->msg);
    *arena = kb_arena_new();
    *d = NULL;
    return ingest_next(*rd, *arena, d, err);
}

/* After kbfuzz_first_doc on one file: no second item; close, free, remove name. */
static inline void kbfuzz_one_file_done(struct ingest_reader *rd, struct kb_arena *arena,
                                        const char *name)
{
    struct kb_document *d = NULL;
    struct kb_err err = { 0 };
    kb_arena_reset(arena);
    KBFUZZ_CHECK(ingest_next(rd, arena, &d, &err) == KB_OK && d == NULL,
                 "a second item from one file");
    ingest_close(rd);
    kb_arena_free(arena);
    kbfuzz_unlink(name);
}

/* A returned document: fields set, text normalized, metadata a JSON object. */
static inline void kbfuzz_check_doc(const struct kb_document *d)
{
    KBFUZZ_CHECK(d->source_type && d->source_type[0], "no source_type");
    KBFUZZ_CHECK(d->source_id && d->source_id[0], "no source_id");
    KBFUZZ_CHECK(d->metadata_json != NULL, "metadata_json is NULL");
    kbfuzz_check_doc_text(d->text, d->len);
    json_error_t jerr;
    json_t *meta = json_loads(d->metadata_json, 0, &jerr);
    KBFUZZ_CHECK(json_is_object(meta), "metadata is not a JSON object: %s (%s)",
                 d->metadata_json, jerr.text);
    json_decref(meta);
    if (d->title)
        KBFUZZ_CHECK(kbfuzz_utf8(d->title, strlen(d->title)), "title is not UTF-8");
    if (d->target == KB_TARGET_LEARNINGS) {
        KBFUZZ_CHECK(d->confidence_score == -1 ||
                     (d->confidence_score >= 0 && d->confidence_score <= 1),
                     "confidence_score %g", d->confidence_score);
        KBFUZZ_CHECK(d->n_tags >= 0 && (d->n_tags == 0 || d->tags != NULL), "tags");
        for (int i = 0; i < d->n_tags; i++)
            KBFUZZ_CHECK(d->tags[i] && d->tags[i][0], "tag %d empty", i);
    }
}

/* A document's metadata names its path and the format it was read as. */
static inline void kbfuzz_check_format(const struct kb_document *d, const char *format)
{
    json_t *meta = json_loads(d->metadata_json, 0, NULL);
    json_t *f = json_object_get(meta, "format");
    KBFUZZ_CHECK(json_is_string(json_object_get(meta, "path")), "no path in metadata");
    KBFUZZ_CHECK(json_is_string(f) && !strcmp(json_string_value(f), format),
                 "format is not %s: %s", format, d->metadata_json);
    json_decref(meta);
}

/* A one-file reader's failure: one KB_E_INPUT line whose origin names the file. */
static inline void kbfuzz_check_file_reject(enum kb_code rc, const struct kb_err *err,
                                            const char *name)
{
    kbfuzz_check_err(rc, err);
    KBFUZZ_CHECK(rc == KB_E_INPUT, "next returned %d", (int)rc);
    KBFUZZ_CHECK(strstr(err->origin, name) != NULL, "origin '%s' names no file", err->origin);
}

/*
 * The one file `name` of src read as `format`: its document, checked
 * (kbpipe's promises and the format in its metadata), or NULL after a
 * checked one-line reject.  End with kbfuzz_one_file_done(*rd, *arena, name).
 */
static inline const struct kb_document *kbfuzz_one_format_doc(const struct ingest_source *src,
                                                             const char *name,
                                                             const char *format,
                                                             struct ingest_reader **rd,
                                                             struct kb_arena **arena)
{
    struct kb_document *d;
    struct kb_err err = { 0 };
    enum kb_code rc = kbfuzz_first_doc(src, rd, arena, &d, &err);
    KBFUZZ_CHECK(rc != KB_OK || d != NULL, "no document and no error");
    if (rc != KB_OK) {
        kbfuzz_check_file_reject(rc, &err, name);
        return NULL;
    }
    kbfuzz_check_doc(d);
    kbfuzz_check_format(d, format);
    return d;
}

/*
 * Read every document of src: each KB_E_INPUT is a one-line error and its
 * bad item is kept within the 4 KB limit; the stats count what was
 * returned; the loop ends within max_items calls.  `each` (may be NULL)
 * checks a document further.  Returns the number of documents.
 */
static inline long kbfuzz_read_all(const struct ingest_source *src, long max_items,
                                   void (*each)(const struct kb_document *d, void *ctx),
                                   void *ctx, enum kb_code *open_rc)
{
    struct ingest_reader *rd = NULL;
    struct kb_err err = { 0 };
    enum kb_code rc = ingest_open(src, NULL, &rd, &err);
    *open_rc = rc;
    if (rc != KB_OK) {
        kbfuzz_check_err(rc, &err);
        KBFUZZ_CHECK(rd == NULL, "a reader after a failed open");
        KBFUZZ_CHECK(rc == KB_E_INPUT || rc == KB_E_IO, "open returned %d", (int)rc);
        return 0;
    }
    struct kb_arena *arena = kb_arena_new();
    long n_docs = 0, n_bad = 0, calls = 0;
    for (;;) {
        KBFUZZ_CHECK(++calls <= max_items, "reader still going after %ld calls", calls);
        struct kb_document *d = NULL;
        memset(&err, 0, sizeof err);
        rc = ingest_next(rd, arena, &d, &err);
        if (rc == KB_OK && d == NULL)
            break;
        if (rc == KB_OK) {
            n_docs++;
            kbfuzz_check_doc(d);
            if (each)
                each(d, ctx);
        } else {
            kbfuzz_check_err(rc, &err);
            KBFUZZ_CHECK(rc == KB_E_INPUT || rc == KB_E_IO, "next returned %d: %s", (int)rc,
                         err.msg);
            if (rc == KB_E_IO)
                break;
            n_bad++;
            const struct ingest_bad *bad = ingest_last_bad(rd);
            KBFUZZ_CHECK(bad->len <= bad->total_len && bad->len <= 4096,
                         "bad item %zu of %zu bytes", bad->len, bad->total_len);
            KBFUZZ_CHECK(bad->input != NULL || bad->len == 0, "bad item without bytes");
        }
        kb_arena_reset(arena);
    }
    const struct ingest_stats *st = ingest_reader_stats(rd);
    KBFUZZ_CHECK(st->n_documents == n_docs && st->n_bad == n_bad,
                 "stats %ld/%ld, counted %ld/%ld", st->n_documents, st->n_bad, n_docs, n_bad);
    ingest_close(rd);
    kb_arena_free(arena);
    return n_docs;
}

#endif /* KB_FUZZ_INGEST_CHECK_H */
