/*
 * ingest.h - the public face of src/ingest: source readers that turn files,
 * CSV tables, GitHub issue exports, the GitHub API and the rows of SQL
 * queries into a stream of documents, and the reject writer for inputs
 * that could not be used.
 *
 * One interface over every reader:
 *
 *     struct ingest_reader *rd;
 *     rc = ingest_open(&src, ".", &rd, err);
 *     for (;;) {
 *         rc = ingest_next(rd, arena, &doc, err);   // doc lives in arena
 *         if (rc == KB_OK && doc == NULL) break;    // source exhausted
 *         if (rc == KB_E_INPUT) { reject it (ingest_last_bad), go on }
 *         else if (rc != KB_OK) break;              // KB_E_IO: stop
 *         ...
 *         kb_arena_reset(arena);
 *     }
 *     ingest_close(rd);
 *
 * Readers stream: a reader holds one item (a file, a CSV record, one JSON
 * element) at a time, never a whole export.  After KB_E_INPUT the reader is
 * positioned on the next item, so `on_error: skip` is the caller's loop
 * going on; ingest_last_bad() gives the rejected item's origin and bytes
 * for the reject file.  Anything fatal to the whole source (the export is
 * not JSON at all, the file cannot be opened) is reported once, and the
 * following ingest_next() returns the end.
 *
 * The source configurations are plain data, filled by src/pipeline from a
 * pipeline file (or by a test directly).  libcsv and jansson live here,
 * and libcurl for the API reader (github.c, github_http.c).
 */
#ifndef KB_INGEST_H
#define KB_INGEST_H

#include <stddef.h>
#include <stdio.h>

#include "util/util.h"

/* ---- source configuration ------------------------------------------------ */

enum ingest_type { INGEST_FILES = 0, INGEST_CSV, INGEST_GITHUB_ISSUES, INGEST_GITHUB,
                   INGEST_SQL };

/* Where a source's documents go: knowledge_sources/chunks, or learnings. */
enum kb_target { KB_TARGET_KNOWLEDGE = 0, KB_TARGET_LEARNINGS };

enum ingest_on_error { INGEST_ON_ERROR_FAIL = 0, INGEST_ON_ERROR_SKIP };
enum ingest_on_utf8 { INGEST_UTF8_REJECT = 0, INGEST_UTF8_REPLACE };
enum ingest_issue_format { INGEST_ISSUES_AUTO = 0, INGEST_ISSUES_GH, INGEST_ISSUES_REST };

/* A list of strings with the pipeline-file position of each (at may be NULL). */
struct ingest_strs {
    const char **v;
    const struct kb_origin *at;   /* n entries, or NULL */
    int n;
};

#define INGEST_DEFAULT_MAX_FILE_SIZE (8L * 1024 * 1024)
/* one CSV record, JSON element or issue with its comments: the same bound as
   a file, so no single input the defaults allow is larger (docs/pipelines.md) */
#define INGEST_DEFAULT_MAX_RECORD_SIZE INGEST_DEFAULT_MAX_FILE_SIZE
#define INGEST_DEFAULT_MAX_PAGES 2000

/*
 * How a files source reads each file: AUTO picks by extension (.md ->
 * markdown, .html/.htm/.xhtml -> html, .pdf -> pdf, .txt/.rst/... -> text,
 * anything else -> code); the others force one reader for every file.
 */
enum ingest_file_format { INGEST_FORMAT_AUTO = 0, INGEST_FORMAT_MARKDOWN, INGEST_FORMAT_TEXT,
                          INGEST_FORMAT_CODE, INGEST_FORMAT_HTML, INGEST_FORMAT_PDF };

/* type: files - a tree of Markdown, text, code, HTML and PDF files. */
struct ingest_files_opts {
    struct ingest_strs roots;      /* folders (or single files) to read */
    struct ingest_strs include;    /* globs; none = every file */
    struct ingest_strs exclude;    /* globs */
    long max_file_size;            /* bytes; larger files (and PDF text) are rejected */
    enum ingest_on_utf8 on_invalid_utf8;
    int front_matter;              /* 1: Markdown YAML front matter -> metadata */
    enum ingest_file_format format;   /* default AUTO */
    /* HTML: selectors of the elements dropped with their content ("nav",
     * ".sidebar", "#toc", "div.ad"); drop.v == NULL = the default list
     * (nav, header, footer).  script, style, noscript, template, svg,
     * iframe, object and canvas are always dropped. */
    struct ingest_strs drop;
    int max_pages;                 /* PDF: more pages are rejected; default 2000 */
};

/*
 * CSV column mapping: the column name feeding each document field (NULL =
 * not mapped).  `content` is required; `metadata` columns are copied into
 * the metadata object (none listed: every column not mapped elsewhere).
 */
struct ingest_csv_columns {
    const char *title, *content, *url, *author;
    const char *learning_type, *category, *tags, *confidence_score, *impact_level;
    struct ingest_strs metadata;
};

/* type: csv - one document per record. */
struct ingest_csv_opts {
    const char *path;
    char delimiter;                /* default ',' */
    char quote;                    /* default '"' */
    struct ingest_strs key;        /* column(s) whose values form the source_id */
    struct ingest_csv_columns columns;
    char tags_separator;           /* splits the tags column; default ',' */
    enum ingest_on_utf8 on_invalid_utf8;
    long max_record_size;          /* bytes of one record; default 8 MB */
};

/* type: github_issues - gh or REST exports, arrays or JSON Lines. */
struct ingest_issues_opts {
    const char *path;
    const char *comments_path;     /* REST: issue comments export, or NULL */
    const char *repo;              /* "owner/name"; NULL = from each issue's url */
    enum ingest_issue_format format;
    int include_pull_requests;     /* REST exports list pull requests too */
    int upsert_issues;             /* the run also upserts issues/comments tables */
    long max_record_size;          /* bytes of one JSON element (an issue and its
                                      REST comments); default 8 MB */
};

#define INGEST_GITHUB_DEFAULT_URL "https://api.github.com"

/*
 * type: github - issues (and optionally pull requests) of repositories,
 * with their comments, from the GitHub REST API (github.c), and optionally
 * their discussions from the GraphQL API (github_discussions.c).  The token
 * is read from the variable token_env names, never from the pipeline file.
 */
struct ingest_github_opts {
    struct ingest_strs repos;      /* "owner/name" each */
    const char *token_env;         /* NULL: anonymous (60 requests an hour) */
    const char *base_url;          /* default INGEST_GITHUB_DEFAULT_URL */
    int include_pull_requests;     /* the issues list holds pull requests too */
    int include_discussions;       /* also the discussions, through the GraphQL API */
    const char *graphql_url;       /* NULL: from base_url (ingest_github_graphql_url) */
    int upsert_issues;             /* the run also upserts issues/comments tables */
    int per_page;                  /* 1..100, default 100 */
    int timeout_ms;                /* per request, default 30000 */
    int max_retries;               /* 5xx and network errors; default 5 */
    int retry_base_ms;             /* first backoff; doubles, at most 60 s; default 1000 */
    long max_wait_s;               /* longest rate-limit wait, else fail; default 3600 */
};

#define INGEST_SQL_DEFAULT_FETCH_ROWS 500

/*
 * type: sql - the rows of a query become documents (sql.c).  The query
 * runs on its own connection (the pipeline's database, or the conninfo
 * in the variable database_env names) inside one READ ONLY REPEATABLE
 * READ transaction, through a server-side cursor fetching fetch_rows rows
 * at a time, so memory does not grow with the result.  source_id and text
 * (or a template over columns) are required per row; the other columns
 * (or the listed ones) become the metadata.  With a watermark column the
 * reader asks only for rows whose watermark is >= the stored mark and
 * reports the highest one seen as its mark ("watermark").
 */
struct ingest_sql_opts {
    const char *query;             /* the SQL text, or NULL when query_file is given */
    const char *query_file;        /* resolved against the pipeline file's folder */
    struct kb_origin query_at;     /* where query/query_file is written */
    const char *col_source_id;     /* required */
    const char *col_title;         /* may be NULL */
    const char *col_text;          /* required unless template is given */
    const char *col_url;           /* may be NULL */
    const char *template_text;     /* "{title}\n\n{body}": {COL} is the column's text */
    struct ingest_strs metadata;   /* the columns kept as metadata (has_metadata) */
    int has_metadata;              /* 0: every column not used above */
    const char *watermark;         /* a column, or NULL: the document hash decides */
    const char *database_env;      /* NULL: the pipeline's own database */
    int fetch_rows;                /* rows per FETCH; default 500 */
    long max_record_size;          /* bytes of one row's text form; default 8 MB */
};

/*
 * Check a template's syntax: {NAME} placeholders (NAME: letters, digits,
 * '_', '.', '-', ' '), "{{" and "}}" for literal braces.  KB_OK, or
 * KB_E_CONFIG naming the byte offset and what is wrong.  Each column name
 * is passed to `each` (may be NULL) in order.
 */
enum kb_code ingest_sql_template_check(const char *tmpl,
                                       void (*each)(void *arg, const char *name, size_t len),
                                       void *arg, struct kb_err *err);

/* One source of a pipeline. */
struct ingest_source {
    const char *name;              /* unique within the pipeline */
    enum ingest_type type;
    enum kb_target target;
    enum ingest_on_error on_error;
    long max_errors;               /* 0 = no limit */
    struct kb_origin at;           /* the source's entry in the pipeline file */
    union {
        struct ingest_files_opts files;
        struct ingest_csv_opts csv;
        struct ingest_issues_opts issues;
        struct ingest_github_opts github;
        struct ingest_sql_opts sql;
    } u;
};

/*
 * The GraphQL endpoint of a github source: graphql_url when set, else
 * from base_url: "https://HOST/api/v3" -> "https://HOST/api/graphql"
 * (GitHub Enterprise Server), anything else + "/graphql"
 * ("https://api.github.com" -> "https://api.github.com/graphql").  A new
 * string the caller frees.
 */
char *ingest_github_graphql_url(const struct ingest_github_opts *o);

/* Fill the defaults of a source of `type` (everything else zero). */
void ingest_source_defaults(struct ingest_source *src, enum ingest_type type);

/* "files", "csv", "github_issues", "github", "sql" */
const char *ingest_type_name(enum ingest_type type);

/* "auto", "markdown", "text", "code", "html", "pdf" (static strings). */
const char *ingest_format_name(enum ingest_file_format format);

/*
 * 1 when `sel` is an HTML drop selector kbpipe understands: a tag name, a
 * class or an id, or a tag with classes and an id (`nav`, `.toc`, `#menu`,
 * `div.ad.wide`, `aside#links`); 0 otherwise (combinators, attributes).
 */
int ingest_html_selector_valid(const char *sel);

/* ---- documents ----------------------------------------------------------- */

/* One comment of an issue or a discussion, in thread order. */
struct ingest_comment {
    const char *author, *body, *created_at, *url;
    const char *github_id;         /* REST numeric id or gh node id, as text; may be NULL */
    int is_reply;                  /* a discussion comment's reply (after its comment) */
};

/* The fields of one GitHub issue, for upserting the issues/comments tables. */
struct ingest_issue {
    const char *repo;              /* owner/name */
    long number;
    const char *github_id;         /* REST id or gh node id, as text; may be NULL */
    const char *title, *body, *state, *author, *url;
    const char *created_at, *updated_at, *closed_at;   /* ISO 8601 or NULL */
    const char **labels;
    int n_labels;
    struct ingest_comment *comments;
    int n_comments;
};

/*
 * A document: everything lives in the arena passed to ingest_next().  text
 * is UTF-8 without BOM, NUL or CR-LF (LF only), NUL-terminated, len bytes.
 */
struct kb_document {
    const char *source_type;       /* "file", "csv", "github_issue", "github_discussion",
                                      "sql" */
    const char *source_id;         /* stable: relative path, CSV key, owner/repo#N,
                                      owner/repo/discussions#N, an SQL row's source_id */
    const char *title;             /* may be NULL */
    const char *url;               /* may be NULL */
    const char *file_path;         /* the input file, as opened */
    const char *author;            /* may be NULL */
    const char *text;
    size_t len;
    const char *metadata_json;     /* a JSON object, never NULL ("{}") */
    enum kb_target target;

    /* target == KB_TARGET_LEARNINGS: NULL / < 0 = the schema's default */
    const char *learning_type, *category, *impact_level;
    const char **tags;
    int n_tags;
    double confidence_score;       /* 0..1, or -1 when not given */

    const struct ingest_issue *issue;   /* github_issues only, else NULL */
    struct kb_origin origin;       /* where it came from: path, line */

    /* PDF: page i+1's text starts at text[page_starts[i]] (non-decreasing;
     * a page without text starts where the next one does); else NULL, 0. */
    const size_t *page_starts;
    int n_pages;
};

/*
 * The pages of doc that text[offset..offset+len) spans: *first and *last,
 * 1-based (equal for a span inside one page).  Both 0 when the document
 * has no pages (anything but a PDF) or len is 0.
 */
void ingest_doc_pages(const struct kb_document *doc, size_t offset, size_t len, int *first,
                      int *last);

/* ---- readers ------------------------------------------------------------- */

struct ingest_reader;   /* fields live in reader.c */

/*
 * Open a reader over `src`.  Relative paths resolve against base_dir (NULL
 * or "." = the working directory).  `src` must outlive the reader.  On
 * failure (a file that cannot be opened, a CSV without a header) *out is
 * NULL and err names the input.
 */
enum kb_code ingest_open(const struct ingest_source *src, const char *base_dir,
                         struct ingest_reader **out, struct kb_err *err);

/*
 * The next document, allocated in `arena`; *out = NULL at the end.
 * KB_E_INPUT: one item was bad (err has its origin and reason, and
 * ingest_last_bad() its bytes); the reader has moved past it and the next
 * call continues.  KB_E_IO: reading failed; the reader is at its end.
 */
enum kb_code ingest_next(struct ingest_reader *rd, struct kb_arena *arena,
                         struct kb_document **out, struct kb_err *err);

/* Close and free; NULL is a no-op. */
void ingest_close(struct ingest_reader *rd);

/* ---- source state: what an API reader keeps between runs ----------------
 *
 * A reader of a remote API (type: github) fetches only what changed since
 * its last successful run.  Its marks are key/value strings ("since
 * acme/api" -> "2026-11-25T02:30:00Z", an ETag): the conductor reads the
 * stored ones from the database and gives them to the reader after
 * ingest_open and before the first ingest_next; once the reader is at its
 * end, the conductor takes the new ones and stores them only when the run
 * succeeded.  A reader given no marks fetches everything (that is what
 * --full does).  File readers keep no state.  An SQL reader (type: sql)
 * keeps "watermark", the highest value of its watermark column it read.
 */

/* 1 when the source's reader keeps state, or re-reading it costs requests or
 * a whole query (github, sql): such a source is read once per run. */
int ingest_source_has_state(const struct ingest_source *src);

/* Give the reader one stored mark (key and value are copied); before the first next. */
void ingest_state_set(struct ingest_reader *rd, const char *key, const char *value);

/*
 * The reader's i-th mark (0-based) once it is at its end: 1 with *key,
 * *value borrowed from the reader; 0 past the last.  The marks of a reader
 * that stopped early are not to be stored.
 */
int ingest_state_get(const struct ingest_reader *rd, int i, const char **key,
                     const char **value);

/* ---- the stat pre-check: unchanged files skipped unread ----------------
 *
 * A files source's reader stats every regular file while it walks (it
 * must, to tell files from folders).  With a hook set, it hands the stat
 * to the hook before opening the file: the hook returns 1 to skip the file
 * unread (the hook counts it and marks its source seen), 0 to read it.
 * Readers of one file (CSV, issue exports) are skipped whole by the
 * conductor before ingest_open, with ingest_file_stat.
 */
struct ingest_file_stat {
    long long size, mtime_ns, ctime_ns, inode, device;   /* times: ns since the epoch */
};

/* Set the hook (files sources; other readers never call it), before the
 * first ingest_next.  path is the file as it would be opened, source_id
 * the document's (its path relative to the root). */
void ingest_stat_hook(struct ingest_reader *rd,
                      int (*fn)(void *arg, const char *path, const char *source_id,
                                const struct ingest_file_stat *st),
                      void *arg);

/* stat(2) of path (following a symlink) into *out: 1, or 0 when it cannot
 * be stat'ed or is not a regular file. */
int ingest_file_stat(const char *path, struct ingest_file_stat *out);

/* The path a one-file source (csv, github_issues) opens, relative to the
 * working directory: the documents' file_path.  NULL for other types. */
const char *ingest_source_path(const struct ingest_source *src);

/* What the last rejected item was: its origin and (a prefix of) its bytes. */
struct ingest_bad {
    struct kb_origin at;           /* file, line (CSV, JSON) */
    long issue_number;             /* github_issues, 0 when unknown */
    const char *input;             /* the original bytes, at most `len` */
    size_t len;
    size_t total_len;              /* the item's full size (len may be less) */
};
const struct ingest_bad *ingest_last_bad(const struct ingest_reader *rd);

/* Counts of a reader so far; `last_note` is the latest skip note ("" none). */
struct ingest_stats {
    long n_documents;              /* documents returned */
    long n_bad;                    /* KB_E_INPUT returned */
    long n_skipped;                /* skipped with a note: binary files, pull requests */
    char last_note[600];           /* "kbpipe: ORIGIN: MSG" of the latest skip */
};
const struct ingest_stats *ingest_reader_stats(const struct ingest_reader *rd);

/* ---- checks for `kbpipe validate` ---------------------------------------- */

/*
 * Walk a files source's roots (not following symlinks, no file read) and
 * count, for each include glob, the selected files it matches: hits[i]
 * for include.v[i] (hits has include.n entries; may be NULL when there
 * are none).  *n_files is every selected file.  KB_E_INPUT when a root
 * cannot be read (err names it).
 */
enum kb_code ingest_files_count(const struct ingest_source *src, const char *base_dir,
                                long *hits, long *n_files, struct kb_err *err);

/*
 * The header of a CSV source's file: *cols (n entries) is a new array of
 * new strings the caller frees (each, then the array).  KB_E_INPUT when the
 * file cannot be read or is empty.
 */
enum kb_code ingest_csv_header(const struct ingest_source *src, const char *base_dir,
                               char ***cols, int *n, struct kb_err *err);

/* 1 when `path` (relative, '/'-separated) matches the glob (`**`, `*`, `?`, [..]). */
int ingest_glob_match(const char *glob, const char *path);

/* ---- rejects (reject.c) -------------------------------------------------- */

/*
 * The reject file: one JSON object per line, e.g.
 *   {"source":"docs","origin":"samples/docs/x.md:3:7","file":"samples/docs/x.md",
 *    "line":3,"reason":"invalid UTF-8 ...","input":"...","input_bytes":812,
 *    "input_truncated":false}
 * "row" and "issue" appear for CSV rows and issues.  The input is kept up to
 * 4 KB, as text (invalid UTF-8 replaced by U+FFFD).
 */
struct ingest_rejects;

/* Create (truncate) the reject file, making its folder.  KB_E_IO on failure. */
enum kb_code ingest_rejects_open(const char *path, struct ingest_rejects **out,
                                 struct kb_err *err);

/* Append one rejected input: `why` is the error the reader returned, `bad`
 * its item (may be NULL when there are no bytes to keep). */
enum kb_code ingest_rejects_add(struct ingest_rejects *r, const char *source_name,
                                const struct kb_err *why, const struct ingest_bad *bad,
                                struct kb_err *err);

long ingest_rejects_count(const struct ingest_rejects *r);
const char *ingest_rejects_path(const struct ingest_rejects *r);

/* Flush, close and free; KB_E_IO when the final write fails.  NULL is a no-op. */
enum kb_code ingest_rejects_close(struct ingest_rejects *r, struct kb_err *err);

#endif /* KB_INGEST_H */
