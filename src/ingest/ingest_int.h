/*
 * ingest_int.h - shared by the .c files of src/ingest only: the reader object, the
 * per-type reader hooks, text normalization, the streaming JSON scanner
 * and front matter.
 *
 * A reader is a struct ingest_reader with a vtable of three hooks (next,
 * close) and a type-specific state pointer.  The common code in reader.c
 * counts documents and rejects and keeps the last bad item's bytes.
 */
#ifndef KB_INGEST_INT_H
#define KB_INGEST_INT_H

#include <sys/types.h>

#include <jansson.h>

#include "ingest.h"

/* The most bytes of a bad item kept for the reject file. */
#define INGEST_BAD_KEEP 4096

struct ingest_reader {
    const struct ingest_source *src;
    char *base_dir;
    enum kb_code (*next)(struct ingest_reader *rd, struct kb_arena *arena,
                         struct kb_document **out, struct kb_err *err);
    void (*close)(struct ingest_reader *rd);
    void *state;
    struct ingest_stats stats;
    struct ingest_bad bad;
    struct kb_buf bad_bytes;       /* owns bad.input */
    char **state_keys, **state_values;   /* the marks: stored ones, then the reader's */
    int n_state;
    int (*stat_fn)(void *arg, const char *path, const char *source_id,
                   const struct ingest_file_stat *st);   /* files: the stat pre-check */
    void *stat_arg;
};

/* Per-type openers (files.c, csv.c, issues.c): set rd->next/close/state. */
enum kb_code ingest_files_open(struct ingest_reader *rd, struct kb_err *err);
enum kb_code ingest_csv_open(struct ingest_reader *rd, struct kb_err *err);
enum kb_code ingest_issues_open(struct ingest_reader *rd, struct kb_err *err);
enum kb_code ingest_github_open(struct ingest_reader *rd, struct kb_err *err);
enum kb_code ingest_sql_open(struct ingest_reader *rd, struct kb_err *err);

/* The mark under `key` (the stored one, or one the reader put), or NULL. */
const char *ingest_state_lookup(const struct ingest_reader *rd, const char *key);

/* Remember the bad item: origin and up to INGEST_BAD_KEEP of its bytes. */
void ingest_bad_set(struct ingest_reader *rd, const struct kb_origin *at, long issue_number,
                    const char *input, size_t len);

/* Record a skip note ("ORIGIN: MSG") in the stats and log it at info level. */
void ingest_note(struct ingest_reader *rd, const char *origin, const char *fmt, ...)
    KB_PRINTF(3, 4);

/* base_dir joined with path (path as-is when absolute or base is "."); caller frees. */
char *ingest_path_join(const char *base_dir, const char *path);

struct stat;
/* A stat(2) result as the pre-check's record (reader.c). */
void ingest_stat_of(const struct stat *sb, struct ingest_file_stat *out);

/* A new zeroed document in the arena with the source's type and target. */
struct kb_document *ingest_doc_new(struct ingest_reader *rd, struct kb_arena *arena,
                                   const char *source_type);

/* Quote up to 40 bytes of s for a message (printable ASCII, others as \xNN). */
const char *ingest_quote(char *buf, size_t n, const char *s, size_t len);

/* ---- html.c, pdf.c: files whose bytes are not their text ------------------- */

/* What a format reader made of a file: everything in the arena but meta. */
struct ingest_converted {
    char *text;                    /* UTF-8, no NUL, LF only, NUL-terminated */
    size_t len;
    const char *title;             /* from the document itself, or NULL */
    size_t *page_starts;           /* PDF only (see struct kb_document) */
    int n_pages;
    json_t *meta;                  /* keys added to the metadata (owned), or NULL */
};

/*
 * HTML bytes -> Markdown-shaped text (headings as '#' lines, <pre> as
 * fenced blocks, lists as '-' / 'N.' items, tables as '|' rows), title
 * from <title>.  Malformed HTML loads as far as libxml2 recovers, with a
 * warning.  KB_E_INPUT (at `at`) when libxml2 cannot build a tree at all.
 */
enum kb_code ingest_html_convert(struct ingest_reader *rd, const char *raw, size_t len,
                                 const struct kb_origin *at, struct kb_arena *arena,
                                 struct ingest_converted *out, struct kb_err *err);

/*
 * PDF bytes -> the text of each page in order (poppler), page starts and
 * the title of the document info.  KB_E_INPUT (at `at`) for a file poppler
 * cannot open, an encrypted or image-only PDF, more than max_pages pages or
 * more than max_file_size bytes of text.
 */
enum kb_code ingest_pdf_convert(struct ingest_reader *rd, const char *raw, size_t len,
                                const struct kb_origin *at, struct kb_arena *arena,
                                struct ingest_converted *out, struct kb_err *err);

/* ---- html_select.c: the `drop` selectors of HTML files -------------------- */

/* A parsed selector: tag ("" = any), classes (all required), id ("" = any). */
struct html_sel {
    const char *tag, *id;
    const char **cls;
    int n_cls;
};

/* The source's drop selectors (its `drop`, else nav, header, footer) parsed
 * into the arena: *out, *n entries; selectors not in the grammar are left out. */
void html_sel_list(const struct ingest_files_opts *o, struct kb_arena *arena,
                   const struct html_sel **out, int *n);

/* 1 when an element matches s: tag lower-case, id and class its attributes
 * (NULL when absent). */
int html_sel_match(const struct html_sel *s, const char *tag, const char *id, const char *cls);

/* ---- text.c ---------------------------------------------------------------- */

/* Position of byte `off` in text: 1-based line and column (in bytes). */
void ingest_text_position(const char *s, size_t off, long *line, long *col);

/*
 * Normalize text for a document: drop a UTF-8 BOM, turn CR LF (and lone CR)
 * into LF, reject NUL bytes, validate UTF-8 (or replace invalid sequences
 * with U+FFFD).  Result in the arena (*out, *out_len).  KB_E_INPUT names
 * the byte offset, line and column; `at` gives path (and the line the text
 * starts on, for fields of a larger file).
 */
enum kb_code ingest_text_normalize(const char *s, size_t len, enum ingest_on_utf8 on_bad,
                                   const struct kb_origin *at, const char *what,
                                   struct kb_arena *arena, char **out, size_t *out_len,
                                   struct kb_err *err);

/*
 * Append s[0..len) to b as document text: CR LF and lone CR as LF, other
 * control bytes (NUL included) and DEL dropped, invalid UTF-8 sequences
 * replaced by U+FFFD.  For text a library extracted (PDF pages, HTML
 * titles), where a stray control byte is an artefact, not a defect.
 */
void ingest_text_append_clean(struct kb_buf *b, const char *s, size_t len);

/* 1 when the first bytes look like a binary file (magic or control bytes). */
int ingest_text_is_binary(const char *s, size_t len, const char **why);

/* ---- jsonscan.c: top-level elements of a JSON array or a stream of values -- */

struct jscan;

/* Open a JSON export (array or JSON Lines / concatenated values). */
enum kb_code jscan_open(const char *path, long max_element, struct jscan **out,
                        struct kb_err *err);

/*
 * The next top-level element's bytes in *elem (reset first), its 1-based
 * start line and byte offset.  *elem->len == 0 at the end.  KB_E_INPUT for
 * an element too large (skipped; scanning continues) or a broken structure
 * (fatal: the scan is at its end).
 */
enum kb_code jscan_next(struct jscan *js, struct kb_buf *elem, long *line, off_t *offset,
                        struct kb_err *err);

/* The index (0-based) of the last element returned. */
long jscan_index(const struct jscan *js);
/* 1 once the scan is at its end (after the last element or a fatal error). */
int jscan_is_done(const struct jscan *js);
/* 1 when the export is an array, 0 when a stream of values (JSON Lines). */
int jscan_is_array(const struct jscan *js);
void jscan_close(struct jscan *js);

/* Parse one element with jansson; KB_E_INPUT names file:line:col in the export. */
enum kb_code jscan_parse(const char *path, const char *bytes, size_t len, long line,
                         json_t **out, struct kb_err *err);

/* ---- frontmatter.c ---------------------------------------------------------- */

/*
 * If text starts with a YAML front matter block ("---" line ... "---" or
 * "..." line), parse its YAML mapping with libyaml into a new JSON object
 * *meta (the caller's to json_decref) and set *body_off to the first byte
 * after it.  No front matter: *meta NULL, *body_off 0.  KB_E_INPUT (and
 * *meta NULL, *body_off 0) for a block that is not a YAML mapping or passes
 * the depth or value limits, with the file's line:col.
 */
enum kb_code ingest_front_matter(const char *text, size_t len, const char *path,
                                 json_t **meta, size_t *body_off, struct kb_err *err);

/* ---- issue_doc.c: a GitHub issue -> a document (export and API readers) ---- */

/* The string member `key` of object o, or NULL (absent, not a string). */
const char *ingest_jstr(json_t *o, const char *key);

/*
 * The first string in v (depth first, in document order) holding a NUL
 * character (\u0000, which jansson keeps under JSON_ALLOW_NUL but C
 * strings would cut short): 1, its path appended to `path` ("body",
 * "comments[1].body") and the NUL's byte offset in *nul_at; else 0.
 */
int ingest_json_find_nul(json_t *v, struct kb_buf *path, size_t *nul_at);

/* A comment's fields from its REST (is_rest) or gh object, copied into the arena. */
void ingest_comment_fields(struct kb_arena *a, json_t *c, int is_rest, struct ingest_comment *cm);

/*
 * An issue's fields from its REST (is_rest) or gh object, copied into the
 * arena: number, title, body, state (lower case), author, url, times,
 * labels; comments untouched.  is->repo is `repo`, else taken from the
 * issue's url (NULL when it cannot be told).
 */
void ingest_issue_fields(struct kb_arena *a, json_t *o, int is_rest, const char *repo,
                         struct ingest_issue *is);

/*
 * The document of a filled issue (is->title and is->repo set): source_id
 * owner/repo#N, the text and the metadata of issue_doc.c, byte for byte the
 * same whichever reader filled `is`.  file_path is copied; `is` must live
 * in the arena.  KB_E_INPUT (text the normalizer refuses) names `at`.
 */
enum kb_code ingest_issue_document(struct ingest_reader *rd, struct kb_arena *arena,
                                   const struct ingest_issue *is, const struct kb_origin *at,
                                   const char *file_path, struct kb_document **out,
                                   struct kb_err *err);

/*
 * The document of a filled discussion (is->title and is->repo set, its
 * comments and replies in thread order): source_type github_discussion,
 * source_id owner/repo/discussions#N, the text in issues' layout and the
 * metadata issue_doc.c describes; category may be NULL, answered is 1, 0
 * or -1 (not a Q&A discussion).  d->issue stays NULL.  As
 * ingest_issue_document otherwise.
 */
enum kb_code ingest_discussion_document(struct ingest_reader *rd, struct kb_arena *arena,
                                        const struct ingest_issue *is, const char *category,
                                        int answered, const struct kb_origin *at,
                                        const char *file_path, struct kb_document **out,
                                        struct kb_err *err);

/* ---- github_http.c: requests to the GitHub REST and GraphQL APIs (libcurl) -- */

struct gh_http;   /* fields live in github_http.c */

/* One answer: status 200 or 304 when gh_http_get returned KB_OK. */
struct gh_response {
    long status;
    struct kb_buf body;
    char etag[256];                /* "" when none */
    char *next_url;                /* the Link header's rel="next", or NULL */
    long rl_remaining, rl_reset;   /* X-RateLimit-Remaining / -Reset (epoch s); -1 none */
    long retry_after;              /* seconds; -1 none */
};
void gh_response_init(struct gh_response *r);
void gh_response_release(struct gh_response *r);   /* *r reusable */

/*
 * A client for the options' timeouts, retries and waits, sending `token`
 * (may be NULL: anonymous) as a Bearer token.  `o` must outlive it.
 * The first client of the process opens libcurl (util/curl_lib.h);
 * KB_E_CONFIG naming the package when it cannot be loaded.
 * Free with gh_http_free (NULL: no-op).
 */
enum kb_code gh_http_new(const struct ingest_github_opts *o, const char *token,
                         struct gh_http **out, struct kb_err *err);
void gh_http_free(struct gh_http *h);

/*
 * GET url (with If-None-Match: etag when etag is not NULL or ""), waiting
 * out rate limits and retrying 5xx and network errors as the top of
 * github_http.c says.  KB_OK: r->status is 200 or 304.  KB_E_IO: any other
 * end (401, 403, 404, retries spent, a wait over max_wait), the message
 * naming `repo` and never the token.
 */
enum kb_code gh_http_get(struct gh_http *h, const char *url, const char *etag, const char *repo,
                         struct gh_response *r, struct kb_err *err);

/*
 * POST the GraphQL request `req` ({"query", "variables"}, borrowed) to url
 * with the same token, waits and retries as gh_http_get; a 200 whose
 * `errors` hold RATE_LIMITED is waited out like a primary limit.  KB_OK:
 * *data is the answer's "data" object (the caller json_decrefs it).
 * KB_E_IO (*data NULL): any other `errors` (the message gives the first
 * one's type and message), an answer that is not GraphQL, the ends of
 * gh_http_get; each naming `repo` and never the token.
 */
enum kb_code gh_http_graphql(struct gh_http *h, const char *url, json_t *req, const char *repo,
                             json_t **data, struct kb_err *err);

/* Requests sent so far (each attempt counts). */
long gh_http_requests(const struct gh_http *h);

/* 1 when url is on base's scheme://host[:port] (where the token may go). */
int gh_url_same_origin(const char *base, const char *url);

/* ---- github.c, github_discussions.c: a repository's listings ----------------- */

/*
 * 1 when `number` was marked before in the bitmap *bits (*len bytes, grown
 * as needed; free(*bits) at the end); marks it.  number >= 0.
 */
int gh_seen_mark(unsigned char **bits, size_t *len, long number);

struct gh_discussions;   /* fields live in github_discussions.c */

/* A discussions lister over `http` (borrowed: it must outlive it), posting to
 * graphql_url (copied), per_page discussions a request.  Free with
 * gh_discussions_free (NULL: no-op). */
struct gh_discussions *gh_discussions_new(struct gh_http *http, const char *graphql_url,
                                          int per_page);
void gh_discussions_free(struct gh_discussions *d);

/* Start listing repo's discussions ("owner/name", borrowed), from the
 * reader's stored mark "discussions since owner/name" when it has one. */
void gh_discussions_start(struct ingest_reader *rd, struct gh_discussions *d, const char *repo);

/*
 * The next discussion of the repository as a document in the arena; *out
 * NULL at the end, when the new mark has been put (ingest_state_set).
 * KB_E_INPUT: one discussion was bad (err located, ingest_last_bad its
 * bytes) and the next call goes on.  KB_E_IO / KB_E_INTERRUPTED: the
 * listing failed, as gh_http_graphql says; no mark is put.
 */
enum kb_code gh_discussions_next(struct ingest_reader *rd, struct gh_discussions *d,
                                 struct kb_arena *arena, struct kb_document **out,
                                 struct kb_err *err);

/* ---- learnings fields (reader.c) -------------------------------------------- */

/*
 * Set doc's learnings fields from text values (any may be NULL): checks the
 * impact level and the confidence score (0..1).  KB_E_INPUT at `at`.
 */
enum kb_code ingest_learning_fields(struct kb_document *doc, struct kb_arena *arena,
                                    const char *learning_type, const char *category,
                                    const char *impact_level, const char *confidence,
                                    const struct kb_origin *at, struct kb_err *err);

/* Split `s` on `sep` into trimmed non-empty tags in the arena. */
void ingest_tags_split(struct kb_document *doc, struct kb_arena *arena, const char *s, char sep);

/* The JSON text of obj in the arena (compact, keys in insertion order). */
const char *ingest_json_text(struct kb_arena *arena, json_t *obj);

#endif /* KB_INGEST_INT_H */
