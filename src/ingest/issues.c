/*
 * issues.c - type: github_issues.  One document per issue, its comments
 * threaded under it in order, from either shape GitHub gives:
 *
 *   gh     `gh issue list --json number,title,body,author,labels,state,
 *          comments,createdAt,updatedAt,closedAt,url`: author.login,
 *          comments inline ([{author, body, createdAt, url}]), state OPEN
 *   rest   GET /repos/{owner}/{repo}/issues: user.login, html_url,
 *          created_at, comments as a count; the comments themselves in an
 *          optional second export (GET /repos/{o}/{r}/issues/comments),
 *          matched by the issue number at the end of each issue_url
 *
 * each as a JSON array, arrays one after another (`gh api --paginate`
 * writes a page per array) or JSON Lines (jsonscan.c streams all).  The
 * shape is told per element (format: auto) or fixed.  The comments export
 * is indexed once at open (issue number, byte range: 24 bytes a comment)
 * and each issue's comments are read back with pread, so neither file
 * sits in memory whole.  source_id is owner/repo#number, the repository
 * from `repo:` or the issue's url.  An issue whose bytes are not UTF-8, or
 * whose strings hold \u0000 (kept by JSON_ALLOW_NUL, so that it is found
 * and named rather than cutting a C string short), is KB_E_INPUT naming
 * the issue number; such a comment of the REST comments export is skipped
 * with a warning, as a malformed one is.
 */
#include "ingest_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cref {
    long number;
    long seq;              /* order in the comments export */
    off_t off;
    size_t len;
};

struct issues_state {
    char *path;
    struct jscan *js;
    struct kb_buf elem;
    char *comments_path;
    int comments_fd;
    struct cref *crefs;
    long n_crefs;
};

static int cref_cmp(const void *a, const void *b)
{
    const struct cref *x = a, *y = b;
    if (x->number != y->number)
        return x->number < y->number ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Index the REST comments export: issue number and byte range of each comment. */
static enum kb_code index_comments(struct ingest_reader *rd, struct issues_state *st,
                                   struct kb_err *err)
{
    struct jscan *js;
    enum kb_code rc = jscan_open(st->comments_path, rd->src->u.issues.max_record_size, &js, err);
    if (rc != KB_OK)
        return rc;
    struct kb_buf b;
    kb_buf_init(&b);
    long cap = 0, n_bad = 0;
    for (;;) {
        long line = 0;
        off_t off = 0;
        rc = jscan_next(js, &b, &line, &off, err);
        if (rc == KB_E_INPUT && !jscan_is_done(js)) {
            n_bad++;   /* an oversized comment: skipped */
            continue;
        }
        if (rc != KB_OK || b.len == 0)
            break;
        json_t *c;
        struct kb_err perr = { 0 };
        if (jscan_parse(st->comments_path, b.data, b.len, line, &c, &perr) != KB_OK) {
            n_bad++;
            log_warn("%s: %s (comment skipped)", perr.origin, perr.msg);
            continue;
        }
        const char *iu = ingest_jstr(c, "issue_url");
        const char *slash = iu ? strrchr(iu, '/') : NULL;
        long number = slash ? strtol(slash + 1, NULL, 10) : 0;
        struct kb_buf nul_path;
        kb_buf_init(&nul_path);
        size_t nul_at = 0;
        int has_nul = ingest_json_find_nul(c, &nul_path, &nul_at);
        json_decref(c);
        if (number <= 0) {
            n_bad++;
            log_warn("%s:%ld: comment without an issue_url ending in the issue number "
                     "(comment skipped)", st->comments_path, line);
            kb_buf_release(&nul_path);
            continue;
        }
        if (has_nul) {
            n_bad++;
            log_warn("%s:%ld: a comment of issue #%ld holds a NUL character (\\u0000) in %s "
                     "at byte %zu; the export is damaged: export it again (comment skipped)",
                     st->comments_path, line, number, nul_path.data, nul_at);
            kb_buf_release(&nul_path);
            continue;
        }
        kb_buf_release(&nul_path);
        if (st->n_crefs == cap) {
            cap = cap ? cap * 2 : 256;
            st->crefs = kb_xrealloc(st->crefs, sizeof *st->crefs * (size_t)cap);
        }
        st->crefs[st->n_crefs] = (struct cref){ number, st->n_crefs, off, b.len };
        st->n_crefs++;
    }
    kb_buf_release(&b);
    jscan_close(js);
    if (rc != KB_OK)
        return rc;
    rd->stats.n_skipped += n_bad;
    if (st->n_crefs > 1)
        qsort(st->crefs, (size_t)st->n_crefs, sizeof *st->crefs, cref_cmp);
    st->comments_fd = open(st->comments_path, O_RDONLY | O_CLOEXEC);
    if (st->comments_fd < 0) {
        struct kb_origin at = { .path = st->comments_path };
        return KB_FAIL(err, KB_E_INPUT, &at, "cannot open the comments export: %s",
                       strerror(errno));
    }
    return KB_OK;
}

/*
 * The REST comments of issue `number`, from the index, in export order.
 * The issue's element and its comments together are one document, so their
 * bytes are held to max_record_size as one element's are (docs/pipelines.md):
 * KB_E_INPUT at `at` when they are over it, before any is read.
 */
static enum kb_code rest_comments(struct issues_state *st, struct kb_arena *arena, long number,
                                  long max, const struct kb_origin *at, struct ingest_issue *is,
                                  struct kb_err *err)
{
    long lo = 0, hi = st->n_crefs;
    while (lo < hi) {   /* first entry with this number */
        long mid = lo + (hi - lo) / 2;
        if (st->crefs[mid].number < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    long n = 0;
    while (lo + n < st->n_crefs && st->crefs[lo + n].number == number)
        n++;
    if (n == 0)
        return KB_OK;
    size_t total = st->elem.len;
    for (long i = 0; i < n; i++)
        total += st->crefs[lo + i].len;
    if (max > 0 && total > (size_t)max)
        return KB_FAIL(err, KB_E_INPUT, at, "issue #%ld with its %ld comments is %zu bytes of "
                       "JSON, over max_record_size (%ld), the bound of one issue's document; "
                       "raise max_record_size", number, n, total, max);
    is->comments = kb_arena_calloc(arena, sizeof *is->comments * (size_t)n);
    for (long i = 0; i < n; i++) {
        const struct cref *r = &st->crefs[lo + i];
        char *bytes = kb_arena_alloc(arena, r->len);
        if (pread(st->comments_fd, bytes, r->len, r->off) != (ssize_t)r->len) {
            struct kb_origin at = { .path = st->comments_path };
            return KB_FAIL(err, KB_E_IO, &at, "re-reading a comment failed (the file changed "
                           "during the run?); run again");
        }
        json_t *c = json_loadb(bytes, r->len, 0, NULL);
        if (c == NULL)
            continue;
        ingest_comment_fields(arena, c, 1, &is->comments[is->n_comments++]);
        json_decref(c);
    }
    return KB_OK;
}

static void gh_comments(struct kb_arena *arena, json_t *arr, struct ingest_issue *is)
{
    size_t n = json_array_size(arr), i;
    json_t *c;
    is->comments = kb_arena_calloc(arena, sizeof *is->comments * (n ? n : 1));
    json_array_foreach(arr, i, c) {
        if (!json_is_object(c))
            continue;
        ingest_comment_fields(arena, c, 0, &is->comments[is->n_comments++]);
    }
}

static const char *type_name(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Build the document of one parsed issue element. */
static enum kb_code make_issue(struct ingest_reader *rd, struct issues_state *st,
                               struct kb_arena *arena, json_t *o, const struct kb_origin *at,
                               struct kb_document **out, struct kb_err *err)
{
    const struct ingest_issues_opts *opt = &rd->src->u.issues;
    long idx = jscan_index(st->js);
    if (!json_is_object(o))
        return KB_FAIL(err, KB_E_INPUT, at, "element %ld is %s, expected an issue object; "
                       "export issues with gh issue list --json ... or the REST API",
                       idx, type_name(o));
    json_t *num = json_object_get(o, "number");
    if (!json_is_integer(num) || json_integer_value(num) <= 0) {
        const char *first = json_object_iter(o) ? json_object_iter_key(json_object_iter(o)) : "";
        return KB_FAIL(err, KB_E_INPUT, at, "element %ld has no 'number' (a positive integer), "
                       "so it is not an issue (its first key is '%.40s'); export issues with "
                       "gh issue list --json number,title,... or the REST API", idx, first);
    }
    long number = (long)json_integer_value(num);
    struct kb_buf nul_path;
    kb_buf_init(&nul_path);
    size_t nul_at = 0;
    if (ingest_json_find_nul(o, &nul_path, &nul_at)) {
        enum kb_code rc = KB_FAIL(err, KB_E_INPUT, at, "issue #%ld: %s holds a NUL character "
                                  "(\\u0000) at byte %zu; GitHub text never does, so the export "
                                  "is damaged: export the issue again or remove the \\u0000",
                                  number, nul_path.data, nul_at);
        kb_buf_release(&nul_path);
        return rc;
    }
    kb_buf_release(&nul_path);
    const char *title = ingest_jstr(o, "title");
    if (title == NULL)
        return KB_FAIL(err, KB_E_INPUT, at, "issue #%ld has no 'title' (a string); add "
                       "title to the exported fields", number);
    /* GitHub refuses an issue without a title: an empty one means the
     * export was edited or damaged, which is not the same as a field the
     * export left out */
    if (title[strspn(title, " \t\r\n")] == '\0')
        return KB_FAIL(err, KB_E_INPUT, at, "issue #%ld has an empty 'title'; GitHub issues "
                       "always have one, so the export is damaged: export the issue again or "
                       "give it a title", number);
    int is_rest = opt->format == INGEST_ISSUES_REST ||
                  (opt->format == INGEST_ISSUES_AUTO &&
                   (json_object_get(o, "user") || json_object_get(o, "html_url") ||
                    json_is_integer(json_object_get(o, "comments"))));
    if (is_rest && json_object_get(o, "pull_request") && !opt->include_pull_requests) {
        char where[300];
        kb_origin_format(at, where, sizeof where);
        ingest_note(rd, where, "#%ld is a pull request, skipped (set include_pull_requests: "
                    "true to load them)", number);
        return KB_OK;
    }
    struct ingest_issue *is = kb_arena_calloc(arena, sizeof *is);
    ingest_issue_fields(arena, o, is_rest, opt->repo, is);
    if (is->repo == NULL)
        return KB_FAIL(err, KB_E_INPUT, at, "issue #%ld: cannot tell its repository (no "
                       "GitHub url); set repo: OWNER/NAME on the source", number);
    if (is_rest) {
        enum kb_code rc = rest_comments(st, arena, number, opt->max_record_size, at, is, err);
        if (rc != KB_OK)
            return rc;
    } else {
        gh_comments(arena, json_object_get(o, "comments"), is);
    }
    return ingest_issue_document(rd, arena, is, at, st->path, out, err);
}

/*
 * The element in st->elem is not UTF-8 from byte `bad` on (jansson would
 * say only "unable to decode byte"): name the line, the file offset and,
 * when a copy with U+FFFD for the bad bytes parses, the issue number.
 */
static enum kb_code invalid_utf8(struct ingest_reader *rd, struct issues_state *st,
                                 struct kb_arena *arena, long line, off_t off, size_t bad,
                                 struct kb_err *err)
{
    long l, col;
    ingest_text_position(st->elem.data, bad, &l, &col);
    struct kb_origin at = { .path = st->path, .line = line + l - 1 };
    long number = 0;
    char *fixed;
    size_t flen;
    struct kb_err ignored = { 0 };
    if (ingest_text_normalize(st->elem.data, st->elem.len, INGEST_UTF8_REPLACE, &at, "", arena,
                              &fixed, &flen, &ignored) == KB_OK) {
        json_t *o = json_loadb(fixed, flen, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
        json_t *num = json_is_object(o) ? json_object_get(o, "number") : NULL;
        if (json_is_integer(num) && json_integer_value(num) > 0)
            number = (long)json_integer_value(num);
        json_decref(o);
    }
    ingest_bad_set(rd, &at, number, st->elem.data, st->elem.len);
    char what[64];
    if (number > 0)
        snprintf(what, sizeof what, "issue #%ld", number);
    else
        snprintf(what, sizeof what, "element %ld", jscan_index(st->js));
    return KB_FAIL(err, KB_E_INPUT, &at, "%s is not valid UTF-8 (byte 0x%02x at byte offset "
                   "%lld of the file); GitHub exports are UTF-8: export it again, or convert "
                   "the file (iconv -f LATIN1 -t UTF-8)", what, (unsigned char)st->elem.data[bad],
                   (long long)off + (long long)bad);
}

static enum kb_code issues_next(struct ingest_reader *rd, struct kb_arena *arena,
                                struct kb_document **out, struct kb_err *err)
{
    struct issues_state *st = rd->state;
    for (;;) {
        long line = 0;
        off_t off = 0;
        enum kb_code rc = jscan_next(st->js, &st->elem, &line, &off, err);
        if (rc != KB_OK) {
            struct kb_origin at = { .path = st->path, .line = line };
            ingest_bad_set(rd, &at, 0, st->elem.data, st->elem.len);
            return rc;
        }
        if (st->elem.len == 0)
            return KB_OK;
        struct kb_origin at = { .path = st->path, .line = line };
        size_t n_ok = kb_utf8_valid_prefix(st->elem.data, st->elem.len);
        if (n_ok < st->elem.len)
            return invalid_utf8(rd, st, arena, line, off, n_ok, err);
        json_t *o;
        rc = jscan_parse(st->path, st->elem.data, st->elem.len, line, &o, err);
        if (rc == KB_OK) {
            rc = make_issue(rd, st, arena, o, &at, out, err);
            if (rc != KB_OK) {
                json_t *num = json_is_object(o) ? json_object_get(o, "number") : NULL;
                ingest_bad_set(rd, &at, json_is_integer(num) ? (long)json_integer_value(num) : 0,
                               st->elem.data, st->elem.len);
            }
            json_decref(o);
        } else {
            ingest_bad_set(rd, &at, 0, st->elem.data, st->elem.len);
        }
        if (rc != KB_OK || *out != NULL)
            return rc;
    }
}

static void issues_close(struct ingest_reader *rd)
{
    struct issues_state *st = rd->state;
    if (st == NULL)
        return;
    jscan_close(st->js);
    kb_buf_release(&st->elem);
    if (st->comments_fd >= 0)
        close(st->comments_fd);
    free(st->crefs);
    free(st->comments_path);
    free(st->path);
    free(st);
}

enum kb_code ingest_issues_open(struct ingest_reader *rd, struct kb_err *err)
{
    const struct ingest_issues_opts *o = &rd->src->u.issues;
    struct issues_state *st = kb_xcalloc(1, sizeof *st);
    st->comments_fd = -1;
    kb_buf_init(&st->elem);
    rd->state = st;
    rd->next = issues_next;
    rd->close = issues_close;
    st->path = ingest_path_join(rd->base_dir, o->path);
    if (o->comments_path) {
        st->comments_path = ingest_path_join(rd->base_dir, o->comments_path);
        enum kb_code rc = index_comments(rd, st, err);
        if (rc != KB_OK)
            return rc;
    }
    return jscan_open(st->path, o->max_record_size, &st->js, err);
}
