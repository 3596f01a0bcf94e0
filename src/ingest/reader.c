/*
 * reader.c - the one interface over every reader: open by source type,
 * next, close; the counts, the last bad item and skip notes they share;
 * and the small helpers (paths, quoting, learnings fields) the readers use.
 */
#include "ingest_int.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void ingest_source_defaults(struct ingest_source *src, enum ingest_type type)
{
    memset(src, 0, sizeof *src);
    src->type = type;
    src->target = KB_TARGET_KNOWLEDGE;
    src->on_error = INGEST_ON_ERROR_FAIL;
    switch (type) {
    case INGEST_FILES:
        src->u.files.max_file_size = INGEST_DEFAULT_MAX_FILE_SIZE;
        src->u.files.front_matter = 1;
        src->u.files.max_pages = INGEST_DEFAULT_MAX_PAGES;
        break;
    case INGEST_CSV:
        src->u.csv.delimiter = ',';
        src->u.csv.quote = '"';
        src->u.csv.tags_separator = ',';
        src->u.csv.max_record_size = INGEST_DEFAULT_MAX_RECORD_SIZE;
        break;
    case INGEST_GITHUB_ISSUES:
        src->u.issues.max_record_size = INGEST_DEFAULT_MAX_RECORD_SIZE;
        break;
    case INGEST_GITHUB:
        src->u.github.base_url = INGEST_GITHUB_DEFAULT_URL;
        src->u.github.per_page = 100;
        src->u.github.timeout_ms = 30000;
        src->u.github.max_retries = 5;
        src->u.github.retry_base_ms = 1000;
        src->u.github.max_wait_s = 3600;
        break;
    case INGEST_SQL:
        src->u.sql.fetch_rows = INGEST_SQL_DEFAULT_FETCH_ROWS;
        src->u.sql.max_record_size = INGEST_DEFAULT_MAX_RECORD_SIZE;
        break;
    }
}

const char *ingest_type_name(enum ingest_type type)
{
    switch (type) {
    case INGEST_FILES: return "files";
    case INGEST_CSV: return "csv";
    case INGEST_GITHUB_ISSUES: return "github_issues";
    case INGEST_GITHUB: return "github";
    case INGEST_SQL: return "sql";
    }
    return "?";
}

const char *ingest_format_name(enum ingest_file_format format)
{
    switch (format) {
    case INGEST_FORMAT_AUTO: return "auto";
    case INGEST_FORMAT_MARKDOWN: return "markdown";
    case INGEST_FORMAT_TEXT: return "text";
    case INGEST_FORMAT_CODE: return "code";
    case INGEST_FORMAT_HTML: return "html";
    case INGEST_FORMAT_PDF: return "pdf";
    }
    return "?";
}

void ingest_doc_pages(const struct kb_document *doc, size_t offset, size_t len, int *first,
                      int *last)
{
    *first = *last = 0;
    if (doc->n_pages <= 0 || doc->page_starts == NULL || len == 0)
        return;
    /* the last page starting at or before a byte: empty pages before it
     * share its start, and the byte belongs to the page that has text */
    size_t at[2] = { offset, offset + len - 1 };
    int *page[2] = { first, last };
    for (int k = 0; k < 2; k++) {
        int lo = 0, hi = doc->n_pages;   /* answer in [lo, hi) */
        while (hi - lo > 1) {
            int mid = lo + (hi - lo) / 2;
            if (doc->page_starts[mid] <= at[k])
                lo = mid;
            else
                hi = mid;
        }
        *page[k] = lo + 1;
    }
}

enum kb_code ingest_open(const struct ingest_source *src, const char *base_dir,
                         struct ingest_reader **out, struct kb_err *err)
{
    struct ingest_reader *rd = kb_xcalloc(1, sizeof *rd);
    rd->src = src;
    rd->base_dir = kb_xstrdup(base_dir ? base_dir : ".");
    kb_buf_init(&rd->bad_bytes);
    enum kb_code rc = KB_E_INTERNAL;
    switch (src->type) {
    case INGEST_FILES: rc = ingest_files_open(rd, err); break;
    case INGEST_CSV: rc = ingest_csv_open(rd, err); break;
    case INGEST_GITHUB_ISSUES: rc = ingest_issues_open(rd, err); break;
    case INGEST_GITHUB: rc = ingest_github_open(rd, err); break;
    case INGEST_SQL: rc = ingest_sql_open(rd, err); break;
    }
    if (rc != KB_OK) {
        ingest_close(rd);   /* the opener set rd->close: it frees what it made */
        *out = NULL;
        return rc;
    }
    *out = rd;
    return KB_OK;
}

enum kb_code ingest_next(struct ingest_reader *rd, struct kb_arena *arena,
                         struct kb_document **out, struct kb_err *err)
{
    *out = NULL;
    enum kb_code rc = rd->next(rd, arena, out, err);
    if (rc == KB_OK && *out != NULL)
        rd->stats.n_documents++;
    else if (rc == KB_E_INPUT)
        rd->stats.n_bad++;
    return rc;
}

void ingest_close(struct ingest_reader *rd)
{
    if (rd == NULL)
        return;
    if (rd->close)
        rd->close(rd);
    kb_buf_release(&rd->bad_bytes);
    for (int i = 0; i < rd->n_state; i++) {
        free(rd->state_keys[i]);
        free(rd->state_values[i]);
    }
    free(rd->state_keys);
    free(rd->state_values);
    free(rd->base_dir);
    free(rd);
}

int ingest_source_has_state(const struct ingest_source *src)
{
    /* sql: its watermark is a mark, and even without one a second read
     * (the index look-ahead) would run the whole query again */
    return src->type == INGEST_GITHUB || src->type == INGEST_SQL;
}

const char *ingest_state_lookup(const struct ingest_reader *rd, const char *key)
{
    for (int i = 0; i < rd->n_state; i++)
        if (strcmp(rd->state_keys[i], key) == 0)
            return rd->state_values[i];
    return NULL;
}

void ingest_state_set(struct ingest_reader *rd, const char *key, const char *value)
{
    for (int i = 0; i < rd->n_state; i++)
        if (strcmp(rd->state_keys[i], key) == 0) {
            char *v = kb_xstrdup(value);   /* value may be the old one itself */
            free(rd->state_values[i]);
            rd->state_values[i] = v;
            return;
        }
    size_t n = (size_t)rd->n_state + 1;
    rd->state_keys = kb_xrealloc(rd->state_keys, n * sizeof *rd->state_keys);
    rd->state_values = kb_xrealloc(rd->state_values, n * sizeof *rd->state_values);
    rd->state_keys[rd->n_state] = kb_xstrdup(key);
    rd->state_values[rd->n_state] = kb_xstrdup(value);
    rd->n_state++;
}

int ingest_state_get(const struct ingest_reader *rd, int i, const char **key,
                     const char **value)
{
    if (i < 0 || i >= rd->n_state)
        return 0;
    *key = rd->state_keys[i];
    *value = rd->state_values[i];
    return 1;
}

const struct ingest_bad *ingest_last_bad(const struct ingest_reader *rd)
{
    return &rd->bad;
}

const struct ingest_stats *ingest_reader_stats(const struct ingest_reader *rd)
{
    return &rd->stats;
}

void ingest_bad_set(struct ingest_reader *rd, const struct kb_origin *at, long issue_number,
                    const char *input, size_t len)
{
    kb_buf_reset(&rd->bad_bytes);
    size_t keep = len < INGEST_BAD_KEEP ? len : INGEST_BAD_KEEP;
    if (input && keep)
        kb_buf_append(&rd->bad_bytes, input, keep);
    rd->bad.at = *at;
    rd->bad.issue_number = issue_number;
    rd->bad.input = rd->bad_bytes.data ? rd->bad_bytes.data : "";
    rd->bad.len = rd->bad_bytes.len;
    rd->bad.total_len = input ? len : 0;
}

void ingest_note(struct ingest_reader *rd, const char *origin, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rd->stats.n_skipped++;
    snprintf(rd->stats.last_note, sizeof rd->stats.last_note, "kbpipe: %s: %s", origin, msg);
    log_info("%s: %s", origin, msg);
}

/* See ingest.h. */
void ingest_stat_hook(struct ingest_reader *rd,
                      int (*fn)(void *arg, const char *path, const char *source_id,
                                const struct ingest_file_stat *st),
                      void *arg)
{
    rd->stat_fn = fn;
    rd->stat_arg = arg;
}

/* See ingest.h. */
int ingest_file_stat(const char *path, struct ingest_file_stat *out)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return 0;
    ingest_stat_of(&sb, out);
    return 1;
}

/* See ingest_int.h. */
void ingest_stat_of(const struct stat *sb, struct ingest_file_stat *out)
{
    out->size = (long long)sb->st_size;
    out->mtime_ns = (long long)sb->st_mtim.tv_sec * 1000000000LL + sb->st_mtim.tv_nsec;
    out->ctime_ns = (long long)sb->st_ctim.tv_sec * 1000000000LL + sb->st_ctim.tv_nsec;
    out->inode = (long long)sb->st_ino;
    out->device = (long long)sb->st_dev;
}

/* See ingest.h. */
const char *ingest_source_path(const struct ingest_source *src)
{
    return src->type == INGEST_CSV ? src->u.csv.path
           : src->type == INGEST_GITHUB_ISSUES ? src->u.issues.path : NULL;
}

char *ingest_path_join(const char *base_dir, const char *path)
{
    if (path[0] == '/' || base_dir == NULL || base_dir[0] == '\0' ||
        strcmp(base_dir, ".") == 0)
        return kb_xstrdup(path);
    size_t n = strlen(base_dir);
    return kb_xasprintf("%s%s%s", base_dir, n && base_dir[n - 1] == '/' ? "" : "/", path);
}

struct kb_document *ingest_doc_new(struct ingest_reader *rd, struct kb_arena *arena,
                                   const char *source_type)
{
    struct kb_document *d = kb_arena_calloc(arena, sizeof *d);
    d->source_type = source_type;
    d->target = rd->src->target;
    d->confidence_score = -1;
    d->metadata_json = "{}";
    return d;
}

const char *ingest_quote(char *buf, size_t n, const char *s, size_t len)
{
    size_t o = 0, max = 40;
    for (size_t i = 0; i < len && i < max && o + 5 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
    }
    if (len > max && o + 4 < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o < n ? o : n - 1] = '\0';
    return buf;
}

static const char *trimmed(struct kb_arena *arena, const char *s)
{
    if (s == NULL)
        return NULL;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return n ? kb_arena_strndup(arena, s, n) : NULL;
}

enum kb_code ingest_learning_fields(struct kb_document *doc, struct kb_arena *arena,
                                    const char *learning_type, const char *category,
                                    const char *impact_level, const char *confidence,
                                    const struct kb_origin *at, struct kb_err *err)
{
    doc->learning_type = trimmed(arena, learning_type);
    doc->category = trimmed(arena, category);
    const char *impact = trimmed(arena, impact_level);
    if (impact) {
        static const char *const levels[] = { "low", "medium", "high", "critical" };
        int ok = 0;
        for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
            ok |= strcmp(impact, levels[i]) == 0;
        if (!ok) {
            char q[200];
            return KB_FAIL(err, KB_E_INPUT, at,
                           "impact_level '%s' is not one of low, medium, high, critical; "
                           "fix the value",
                           ingest_quote(q, sizeof q, impact, strlen(impact)));
        }
        doc->impact_level = impact;
    }
    const char *conf = trimmed(arena, confidence);
    if (conf) {
        char *end;
        errno = 0;
        double v = strtod(conf, &end);
        if (errno || end == conf || *end != '\0' || !(v >= 0 && v <= 1)) {
            char q[200];
            return KB_FAIL(err, KB_E_INPUT, at,
                           "confidence_score '%s' is not a number from 0 to 1; fix the value",
                           ingest_quote(q, sizeof q, conf, strlen(conf)));
        }
        doc->confidence_score = v;
    }
    return KB_OK;
}

void ingest_tags_split(struct kb_document *doc, struct kb_arena *arena, const char *s, char sep)
{
    if (s == NULL)
        return;
    int cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == sep;
    const char **tags = kb_arena_alloc(arena, sizeof *tags * (size_t)cap);
    int n = 0;
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        if (len)
            tags[n++] = kb_arena_strndup(arena, p, len);
        if (!e)
            break;
        p = e + 1;
    }
    doc->tags = tags;
    doc->n_tags = n;
}

const char *ingest_json_text(struct kb_arena *arena, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    const char *r = kb_arena_strdup(arena, s ? s : "{}");
    free(s);
    return r;
}
