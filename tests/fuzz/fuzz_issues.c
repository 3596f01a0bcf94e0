/*
 * fuzz_issues.c - the GitHub issues reader (src/ingest/issues.c and
 * jsonscan.c: a JSON array or JSON Lines, gh and REST shapes, the REST
 * comments export indexed and read back) on any bytes.  The input is the
 * issues export; when it holds a line with only a form feed ("\n\f\n"),
 * what follows is the comments export.  format, repo and
 * include_pull_requests follow a hash of the input.
 *
 * Invariants, besides the reader's (ingest_check.h): every document is an
 * issue (doc->issue set) whose source_id is "owner/repo#NUMBER" with the
 * issue's repo and number; its labels and comments are all there, with
 * UTF-8 bodies or NULL.
 */
#include "ingest_check.h"

static void each(const struct kb_document *d, void *ctx)
{
    (void)ctx;
    const struct ingest_issue *is = d->issue;
    KBFUZZ_CHECK(is != NULL, "a document without its issue");
    KBFUZZ_CHECK(strcmp(d->source_type, "github_issue") == 0, "source_type %s", d->source_type);
    KBFUZZ_CHECK(is->repo && strchr(is->repo, '/'), "repo '%s'", is->repo ? is->repo : "");
    char want[600];
    snprintf(want, sizeof want, "%s#%ld", is->repo, is->number);
    KBFUZZ_CHECK(strcmp(d->source_id, want) == 0, "source_id '%s', issue %s", d->source_id,
                 want);
    KBFUZZ_CHECK(is->n_labels >= 0 && (is->n_labels == 0 || is->labels), "labels");
    for (int i = 0; i < is->n_labels; i++)
        KBFUZZ_CHECK(is->labels[i] != NULL, "label %d is NULL", i);
    KBFUZZ_CHECK(is->n_comments >= 0 && (is->n_comments == 0 || is->comments), "comments");
    for (int i = 0; i < is->n_comments; i++) {
        const char *b = is->comments[i].body;
        KBFUZZ_CHECK(b == NULL || kbfuzz_utf8(b, strlen(b)), "comment %d body is not UTF-8", i);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kbfuzz_quiet();
    uint64_t h = kbfuzz_hash(data, size);
    size_t n_issues = size;
    const uint8_t *ff = NULL;
    for (size_t i = 0; i + 3 <= size; i++) {
        if (memcmp(data + i, "\n\f\n", 3) == 0) {
            ff = data + i;
            break;
        }
    }
    if (ff)
        n_issues = (size_t)(ff - data) + 1;
    struct ingest_source src;
    ingest_source_defaults(&src, INGEST_GITHUB_ISSUES);
    src.name = "fuzz";
    src.u.issues.path = kbfuzz_write("issues.json", data, n_issues);
    char comments[128] = "";
    if (ff) {
        snprintf(comments, sizeof comments, "%s",
                 kbfuzz_write("comments.json", ff + 3, size - n_issues - 2));
        src.u.issues.comments_path = comments;
    }
    static const enum ingest_issue_format formats[] = { INGEST_ISSUES_AUTO, INGEST_ISSUES_AUTO,
                                                        INGEST_ISSUES_GH, INGEST_ISSUES_REST };
    src.u.issues.format = formats[h & 3];
    src.u.issues.repo = (h >> 2) & 1 ? "fuzz/repo" : NULL;
    src.u.issues.include_pull_requests = (h >> 3) & 1;
    if (((h >> 4) & 7) == 0)
        src.u.issues.max_record_size = 256;
    /* every element and every error consumes at least one byte */
    long max_items = (long)n_issues + 3;
    enum kb_code open_rc;
    kbfuzz_read_all(&src, max_items, each, NULL, &open_rc);
    kbfuzz_unlink("issues.json");
    if (ff)
        kbfuzz_unlink("comments.json");
    return 0;
}
