/*
 * csv.c - type: csv.  One document per record, through libcsv's
 * incremental parser, fed one physical line at a time so every record
 * knows the line it starts on (quoted fields may span lines); a line over
 * LINE_PART bytes is fed in parts of that size.  Memory is one record,
 * whatever the file's size, and a record held to max_record_size while it
 * is read: once over it, the field libcsv is gathering is dropped as it
 * grows, the record is read to its end and rejected (docs/pipelines.md).
 *
 * The first record is the header.  Mapped columns default to the columns
 * of the same name (title, content, url, author and the learnings
 * columns); `key` (default: an `id` column) forms the source_id, joined
 * with '/' when several.  A header naming a column twice fails the open.
 * A bad record (malformed quoting, a field count that differs from the
 * header's, an empty key, a NUL byte in any field, invalid UTF-8) is
 * KB_E_INPUT with its line; the next call goes on with the next record.
 * An unterminated quote swallows the rest of the file: it is reported
 * once, at the line the record starts on.
 */
#include "ingest_int.h"

#include <csv.h>

#define LINE_PART (1 << 20)   /* the longest piece of a line fed to libcsv at once */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct record {
    struct kb_buf bytes;   /* fields, each NUL-terminated, back to back */
    size_t *off;
    int n, cap;
    long line;             /* where the record starts */
    int is_too_big;
};

struct csv_state {
    FILE *f;
    char *path;
    struct csv_parser p;
    unsigned char opts;
    char **cols;           /* header */
    int n_cols;
    int *key_i, n_key;
    int col_title, col_content, col_url, col_author, col_type, col_category, col_tags,
        col_conf, col_impact;
    int *meta_i, n_meta;
    char *line;            /* the part of a line being fed: LINE_PART bytes */
    char *blk;             /* read-ahead: LINE_PART bytes, blk[blk_pos..blk_len) unread */
    size_t blk_pos, blk_len;
    int at_bol;            /* the next part starts a line */
    int is_skipping;       /* the rest of a line with malformed quoting is dropped */
    size_t max_record;     /* bytes of one record: max_record_size, else 4 x its default */
    long cur_line;         /* line being fed */
    long rec_start;        /* line the record being parsed starts on */
    long n_records;        /* data records completed (header excluded) */
    struct record cur;     /* being parsed */
    struct record *ready;  /* completed, oldest first */
    int n_ready, ready_head, ready_cap;
    struct kb_buf raw;     /* the current record's lines, for rejects */
    int is_eof, is_header_done;
};

static void rec_clear(struct record *r)
{
    kb_buf_reset(&r->bytes);
    r->n = 0;
    r->is_too_big = 0;
}

static void rec_release(struct record *r)
{
    kb_buf_release(&r->bytes);
    free(r->off);
    memset(r, 0, sizeof *r);
}

static const char *rec_field(const struct record *r, int i)
{
    return r->bytes.data + r->off[i];
}

static void on_field(void *s, size_t len, void *ctx)
{
    struct csv_state *st = ctx;
    struct record *r = &st->cur;
    if (r->n == 0 && r->bytes.len == 0)
        r->line = st->rec_start;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->off = kb_xrealloc(r->off, sizeof *r->off * (size_t)r->cap);
    }
    r->off[r->n++] = r->bytes.len;
    if (r->is_too_big)
        len = 0;
    else if (r->bytes.len + len > st->max_record)
        r->is_too_big = 1, len = 0;
    kb_buf_append(&r->bytes, s ? s : "", len);
    kb_buf_putc(&r->bytes, '\0');
}

static void on_record(int term, void *ctx)
{
    (void)term;
    struct csv_state *st = ctx;
    if (st->n_ready == st->ready_cap) {
        st->ready_cap = st->ready_cap ? st->ready_cap * 2 : 4;
        st->ready = kb_xrealloc(st->ready, sizeof *st->ready * (size_t)st->ready_cap);
    }
    if (st->cur.n == 0)
        st->cur.line = st->rec_start;
    st->ready[st->n_ready++] = st->cur;
    memset(&st->cur, 0, sizeof st->cur);
    st->rec_start = st->cur_line + 1;
}

static void parser_reset(struct csv_state *st, const struct ingest_csv_opts *o)
{
    csv_free(&st->p);
    csv_init(&st->p, st->opts);
    csv_set_delim(&st->p, (unsigned char)o->delimiter);
    csv_set_quote(&st->p, (unsigned char)o->quote);
    csv_set_blk_size(&st->p, 1 << 20);
}

/*
 * The next part of the file into st->line: through the next '\n', or
 * LINE_PART bytes of a longer line.  Returns its length, 0 at the end of
 * the file, -1 when reading fails (errno set).
 */
static ssize_t read_part(struct csv_state *st)
{
    size_t n = 0;
    while (n < LINE_PART) {
        if (st->blk_pos == st->blk_len) {
            size_t got = fread(st->blk, 1, LINE_PART, st->f);
            if (got == 0)
                return ferror(st->f) ? -1 : (ssize_t)n;
            st->blk_pos = 0;
            st->blk_len = got;
        }
        size_t avail = st->blk_len - st->blk_pos, take = LINE_PART - n;
        if (take > avail)
            take = avail;
        const char *nl = memchr(st->blk + st->blk_pos, '\n', take);
        if (nl)
            take = (size_t)(nl - (st->blk + st->blk_pos)) + 1;
        memcpy(st->line + n, st->blk + st->blk_pos, take);
        st->blk_pos += take;
        n += take;
        if (nl)
            break;
    }
    return (ssize_t)n;
}

/*
 * Feed lines until a record is ready.  Returns KB_OK (a record is ready, or
 * the end: st->n_ready == st->ready_head), KB_E_INPUT for malformed quoting
 * or an unterminated quote, KB_E_IO when reading fails.
 */
static enum kb_code fill(struct ingest_reader *rd, struct csv_state *st, struct kb_err *err)
{
    const struct ingest_csv_opts *o = &rd->src->u.csv;
    while (st->ready_head == st->n_ready) {
        st->ready_head = st->n_ready = 0;
        if (st->is_eof)
            return KB_OK;
        /* libcsv's pstate 0 is ROW_NOT_BEGUN: the next line starts a record */
        if (st->at_bol && st->p.pstate == 0 && st->cur.n == 0) {
            st->rec_start = st->cur_line + 1;
            kb_buf_reset(&st->raw);
        }
        errno = 0;
        ssize_t n = read_part(st);
        if (n <= 0) {
            if (n < 0) {
                st->is_eof = 1;
                struct kb_origin at = { .path = st->path, .line = st->cur_line + 1 };
                return KB_FAIL(err, KB_E_IO, &at, "reading failed: %s; check the disk",
                               strerror(errno));
            }
            st->is_eof = 1;
            if (csv_fini(&st->p, on_field, on_record, st) != 0) {
                struct kb_origin at = { .path = st->path, .line = st->rec_start };
                ingest_bad_set(rd, &at, 0, st->raw.data, st->raw.len);
                rec_clear(&st->cur);
                return KB_FAIL(err, KB_E_INPUT, &at, "unterminated quoted field: the "
                               "quote opened in this record never closes before the end "
                               "of the file; close the quote (a quote inside a quoted "
                               "field is written twice: \"\")");
            }
            continue;
        }
        if (st->at_bol)
            st->cur_line++;
        st->at_bol = st->line[n - 1] == '\n';
        if (st->is_skipping) {   /* the rest of a line already reported */
            st->is_skipping = !st->at_bol;
            continue;
        }
        if (st->raw.len < INGEST_BAD_KEEP)
            kb_buf_append(&st->raw, st->line, (size_t)n);
        if (csv_parse(&st->p, st->line, (size_t)n, on_field, on_record, st) != (size_t)n) {
            struct kb_origin at = { .path = st->path, .line = st->cur_line };
            char q[200];
            ingest_bad_set(rd, &at, 0, st->raw.data, st->raw.len);
            rec_clear(&st->cur);
            parser_reset(st, o);
            st->is_skipping = !st->at_bol;   /* as a whole line was: its rest goes too */
            /* records the line completed before the bad quote (a lone CR
             * ends one) go with it, into the reject: free them
             * (tests/fuzz/regress/fuzz_csv/cr-record-then-bad-quote.csv) */
            for (int i = st->ready_head; i < st->n_ready; i++)
                rec_release(&st->ready[i]);
            st->n_ready = st->ready_head = 0;
            return KB_FAIL(err, KB_E_INPUT, &at, "malformed quoting in '%s' (a quote inside an "
                           "unquoted field, or text after a closing quote); quote the whole "
                           "field and write inner quotes twice",
                           ingest_quote(q, sizeof q, st->line, (size_t)n - (n && st->line[n - 1] == '\n')));
        }
        /* the field being gathered, with the record before it, is over the
         * bound: drop its bytes so far (libcsv keeps appending at entry_pos;
         * between calls its state is these fields), the record is rejected
         * when it ends (make_document) */
        if (st->cur.is_too_big || st->cur.bytes.len + st->p.entry_pos > st->max_record) {
            st->cur.is_too_big = 1;
            st->p.entry_pos = 0;
            st->p.spaces = 0;
        }
    }
    return KB_OK;
}

static int col_index(const struct csv_state *st, const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < st->n_cols; i++)
        if (strcmp(st->cols[i], name) == 0)
            return i;
    return -1;
}

/* The column for a mapped field: the configured name (must exist) or the same name. */
static enum kb_code resolve(struct ingest_reader *rd, struct csv_state *st, const char *configured,
                            const char *field, int *out, struct kb_err *err)
{
    *out = col_index(st, configured ? configured : field);
    if (configured && *out < 0) {
        struct kb_buf names;
        kb_buf_init(&names);
        for (int i = 0; i < st->n_cols && names.len < 200; i++)
            kb_buf_printf(&names, "%s%s", i ? ", " : "", st->cols[i]);
        enum kb_code rc = KB_FAIL(err, KB_E_INPUT, &rd->src->at,
                                  "column '%.80s' (columns.%s) is not in the header of %.120s; "
                                  "the header has: %s", configured, field, st->path,
                                  names.data ? names.data : "(nothing)");
        kb_buf_release(&names);
        return rc;
    }
    return KB_OK;
}

static enum kb_code header_names(struct ingest_reader *rd, struct csv_state *st,
                                 struct kb_err *err)
{
    enum kb_code rc = fill(rd, st, err);
    if (rc != KB_OK)
        return rc;
    struct kb_origin at = { .path = st->path, .line = 1 };
    if (st->ready_head == st->n_ready)
        return KB_FAIL(err, KB_E_INPUT, &at, "the file is empty; a CSV source needs a header "
                       "row naming its columns");
    struct record *h = &st->ready[st->ready_head++];
    st->n_cols = h->n;
    st->cols = kb_xcalloc((size_t)h->n, sizeof *st->cols);
    for (int i = 0; i < h->n; i++) {
        const char *name = rec_field(h, i);
        if (i == 0 && strncmp(name, "\xEF\xBB\xBF", 3) == 0)
            name += 3;   /* a BOM before the first column name */
        st->cols[i] = kb_xstrdup(name);
    }
    rec_release(h);
    /* columns are looked up by name (mappings, key, metadata keys), so a
     * second column of the same name could only be ignored or overwrite the
     * first: neither is what the file means */
    for (int i = 1; i < st->n_cols; i++)
        for (int k = 0; k < i; k++)
            if (strcmp(st->cols[i], st->cols[k]) == 0)
                return KB_FAIL(err, KB_E_INPUT, &at, "the header names column '%.80s' twice "
                               "(columns %d and %d); columns are found by name, so rename one",
                               st->cols[i], k + 1, i + 1);
    return KB_OK;
}

static enum kb_code read_header(struct ingest_reader *rd, struct csv_state *st, struct kb_err *err)
{
    const struct ingest_csv_opts *o = &rd->src->u.csv;
    enum kb_code rc = header_names(rd, st, err);
    if (rc != KB_OK)
        return rc;
    const struct ingest_csv_columns *c = &o->columns;
    if ((rc = resolve(rd, st, c->title, "title", &st->col_title, err)) ||
        (rc = resolve(rd, st, c->content, "content", &st->col_content, err)) ||
        (rc = resolve(rd, st, c->url, "url", &st->col_url, err)) ||
        (rc = resolve(rd, st, c->author, "author", &st->col_author, err)) ||
        (rc = resolve(rd, st, c->learning_type, "learning_type", &st->col_type, err)) ||
        (rc = resolve(rd, st, c->category, "category", &st->col_category, err)) ||
        (rc = resolve(rd, st, c->tags, "tags", &st->col_tags, err)) ||
        (rc = resolve(rd, st, c->confidence_score, "confidence_score", &st->col_conf, err)) ||
        (rc = resolve(rd, st, c->impact_level, "impact_level", &st->col_impact, err)))
        return rc;
    if (st->col_content < 0)
        return KB_FAIL(err, KB_E_INPUT, &rd->src->at, "%.120s has no 'content' column; map "
                       "one with columns: {content: COLUMN}", st->path);
    int n_key = o->key.n ? o->key.n : 1;
    st->key_i = kb_xcalloc((size_t)n_key, sizeof *st->key_i);
    st->n_key = n_key;
    for (int i = 0; i < n_key; i++) {
        const char *name = o->key.n ? o->key.v[i] : "id";
        st->key_i[i] = col_index(st, name);
        if (st->key_i[i] < 0)
            return KB_FAIL(err, KB_E_INPUT, &rd->src->at,
                           o->key.n ? "key column '%.80s' is not in the header of %.120s; fix key:"
                                    : "%.80s: %.120s has no 'id' column; set key: to the column(s) "
                                      "that identify a row",
                           name, st->path);
    }
    st->meta_i = kb_xcalloc((size_t)st->n_cols, sizeof *st->meta_i);
    if (c->metadata.n > 0) {
        for (int i = 0; i < c->metadata.n; i++) {
            int k;
            if ((rc = resolve(rd, st, c->metadata.v[i], "metadata", &k, err)) != KB_OK)
                return rc;
            st->meta_i[st->n_meta++] = k;
        }
    } else {
        for (int i = 0; i < st->n_cols; i++)
            if (i != st->col_title && i != st->col_content && i != st->col_url &&
                i != st->col_author && i != st->col_type && i != st->col_category &&
                i != st->col_tags && i != st->col_conf && i != st->col_impact)
                st->meta_i[st->n_meta++] = i;
    }
    return KB_OK;
}

/* Bytes of field i (its NUL terminator excluded; a NUL inside counts). */
static size_t rec_field_len(const struct record *r, int i)
{
    size_t end = i + 1 < r->n ? r->off[i + 1] : r->bytes.len;
    return end - 1 - r->off[i];
}

static const char *field_or_null(struct kb_arena *arena, const struct record *r, int col)
{
    if (col < 0 || rec_field(r, col)[0] == '\0')
        return NULL;
    return kb_arena_strdup(arena, rec_field(r, col));
}

static enum kb_code make_document(struct ingest_reader *rd, struct csv_state *st,
                                  struct kb_arena *arena, const struct record *r,
                                  struct kb_document **out, struct kb_err *err)
{
    const struct ingest_csv_opts *o = &rd->src->u.csv;
    struct kb_origin at = { .path = st->path, .line = r->line };
    long row = st->n_records;
    if (r->is_too_big)
        return KB_FAIL(err, KB_E_INPUT, &at, "row %ld is over %zu bytes (max_record_size); "
                       "raise max_record_size, split the content or check the quoting", row,
                       st->max_record);
    if (o->max_record_size > 0 && r->bytes.len > (size_t)o->max_record_size)
        return KB_FAIL(err, KB_E_INPUT, &at, "row %ld is %zu bytes, over max_record_size (%ld); "
                       "raise max_record_size or check the quoting", row, r->bytes.len,
                       o->max_record_size);
    if (r->n != st->n_cols)
        return KB_FAIL(err, KB_E_INPUT, &at, "row %ld has %d field%s, the header has %d; "
                       "quote fields that hold the delimiter '%c'", row, r->n,
                       r->n == 1 ? "" : "s", st->n_cols, o->delimiter);
    /* fields are used as C strings from here on: a NUL would cut one short */
    for (int i = 0; i < r->n; i++) {
        const char *nul = memchr(rec_field(r, i), '\0', rec_field_len(r, i));
        if (nul)
            return KB_FAIL(err, KB_E_INPUT, &at, "row %ld, column '%.40s', has a NUL byte at "
                           "byte %zu of the field; remove it (CSV text never holds NUL)", row,
                           st->cols[i], (size_t)(nul - rec_field(r, i)));
    }
    struct kb_buf id;
    kb_buf_init(&id);
    for (int i = 0; i < st->n_key; i++) {
        const char *v = rec_field(r, st->key_i[i]);
        if (v[0] == '\0') {
            kb_buf_release(&id);
            return KB_FAIL(err, KB_E_INPUT, &at, "row %ld has an empty key column '%.80s'; "
                           "every row needs a key (it is the row's source_id)", row,
                           st->cols[st->key_i[i]]);
        }
        kb_buf_printf(&id, "%s%s", i ? "/" : "", v);
    }
    struct kb_document *d = ingest_doc_new(rd, arena, "csv");
    d->source_id = kb_arena_strdup(arena, id.data);
    kb_buf_release(&id);
    d->origin = at;
    d->origin.path = kb_arena_strdup(arena, st->path);
    d->file_path = d->origin.path;
    const char *content = rec_field(r, st->col_content);
    size_t clen = rec_field_len(r, st->col_content);
    char *text;
    size_t tlen;
    char what[128];
    snprintf(what, sizeof what, "row %ld, column '%.40s',", row, st->cols[st->col_content]);
    enum kb_code rc = ingest_text_normalize(content, clen, o->on_invalid_utf8, &d->origin, what,
                                            arena, &text, &tlen, err);
    if (rc != KB_OK) {
        /* the field's own line:col would mislead; keep the record's line */
        struct kb_origin rat = { .path = st->path, .line = r->line };
        kb_origin_format(&rat, err->origin, sizeof err->origin);
        return rc;
    }
    d->text = text;
    d->len = tlen;
    for (int i = 0; i < r->n; i++) {
        char *v = (char *)rec_field(r, i);   /* the record is ours until released */
        size_t vl = strlen(v), ok = kb_utf8_valid_prefix(v, vl);
        if (ok == vl)
            continue;
        if (o->on_invalid_utf8 != INGEST_UTF8_REPLACE)
            return KB_FAIL(err, KB_E_INPUT, &at, "row %ld, column '%.40s', is not valid UTF-8 "
                           "at byte %zu of the field; convert it to UTF-8 (iconv) or set "
                           "on_invalid_utf8: replace", row, st->cols[i], ok);
        for (size_t k = ok; k < vl;) {   /* short fields: '?' for each bad byte */
            int sl = (unsigned char)v[k] < 0x80 ? 1
                     : kb_utf8_seq_len((const unsigned char *)v + k, vl - k);
            if (sl <= 0) {
                v[k++] = '?';
                continue;
            }
            k += (size_t)sl;
        }
    }
    d->title = field_or_null(arena, r, st->col_title);
    d->url = field_or_null(arena, r, st->col_url);
    d->author = field_or_null(arena, r, st->col_author);
    if (d->target == KB_TARGET_LEARNINGS) {
        if (d->title == NULL)
            return KB_FAIL(err, KB_E_INPUT, &at, "row %ld has no title; a learning needs one "
                           "(map columns: {title: COLUMN})", row);
        rc = ingest_learning_fields(d, arena, field_or_null(arena, r, st->col_type),
                                    field_or_null(arena, r, st->col_category),
                                    field_or_null(arena, r, st->col_impact),
                                    field_or_null(arena, r, st->col_conf), &at, err);
        if (rc != KB_OK)
            return rc;
        ingest_tags_split(d, arena, field_or_null(arena, r, st->col_tags), o->tags_separator);
    }
    json_t *meta = json_object();
    for (int i = 0; i < st->n_meta; i++)
        json_object_set_new(meta, st->cols[st->meta_i[i]],
                            json_string(rec_field(r, st->meta_i[i])));
    d->metadata_json = ingest_json_text(arena, meta);
    json_decref(meta);
    *out = d;
    return KB_OK;
}

static enum kb_code csv_next(struct ingest_reader *rd, struct kb_arena *arena,
                             struct kb_document **out, struct kb_err *err)
{
    struct csv_state *st = rd->state;
    enum kb_code rc = fill(rd, st, err);
    if (rc != KB_OK || st->ready_head == st->n_ready)
        return rc;
    struct record *r = &st->ready[st->ready_head++];
    st->n_records++;
    rc = make_document(rd, st, arena, r, out, err);
    if (rc != KB_OK) {
        struct kb_origin at = { .path = st->path, .line = r->line };
        /* the raw lines when this is the only record they hold, else the fields */
        if (st->raw.len && st->ready_head == st->n_ready) {
            ingest_bad_set(rd, &at, 0, st->raw.data, st->raw.len);
        } else {
            struct kb_buf b;
            kb_buf_init(&b);
            for (int i = 0; i < r->n; i++)
                kb_buf_printf(&b, "%s%s", i ? "," : "", rec_field(r, i));
            ingest_bad_set(rd, &at, 0, b.data, b.len);
            kb_buf_release(&b);
        }
    }
    rec_release(r);
    return rc;
}

static void csv_close(struct ingest_reader *rd)
{
    struct csv_state *st = rd->state;
    if (st == NULL)
        return;
    if (st->f)
        fclose(st->f);
    csv_free(&st->p);
    for (int i = 0; i < st->n_cols; i++)
        free(st->cols[i]);
    free(st->cols);
    free(st->key_i);
    free(st->meta_i);
    free(st->line);
    free(st->blk);
    rec_release(&st->cur);
    for (int i = st->ready_head; i < st->n_ready; i++)
        rec_release(&st->ready[i]);
    free(st->ready);
    kb_buf_release(&st->raw);
    free(st->path);
    free(st);
}

/* Open the file and set up libcsv; the header is not read yet. */
static enum kb_code csv_start(struct ingest_reader *rd, struct kb_err *err)
{
    const struct ingest_csv_opts *o = &rd->src->u.csv;
    struct csv_state *st = kb_xcalloc(1, sizeof *st);
    rd->state = st;
    rd->next = csv_next;
    rd->close = csv_close;
    st->path = ingest_path_join(rd->base_dir, o->path);
    st->f = fopen(st->path, "rb");
    if (st->f == NULL) {
        struct kb_origin at = { .path = st->path };
        return KB_FAIL(err, KB_E_INPUT, &at, "cannot open the CSV file: %s; fix path:",
                       strerror(errno));
    }
    st->line = kb_xmalloc(LINE_PART);
    st->blk = kb_xmalloc(LINE_PART);
    st->at_bol = 1;
    st->max_record = o->max_record_size > 0 ? (size_t)o->max_record_size
                                            : (size_t)INGEST_DEFAULT_MAX_RECORD_SIZE * 4;
    st->opts = CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL;
    if (csv_init(&st->p, st->opts) != 0)
        return KB_FAIL(err, KB_E_INTERNAL, NULL, "csv_init failed; please report it");
    csv_set_delim(&st->p, (unsigned char)o->delimiter);
    csv_set_quote(&st->p, (unsigned char)o->quote);
    /* libcsv grows its field buffer by blk_size (128 bytes by default), which
     * copies a 10 MB field thousands of times; grow by 1 MB instead */
    csv_set_blk_size(&st->p, 1 << 20);
    kb_buf_init(&st->raw);
    return KB_OK;
}

enum kb_code ingest_csv_open(struct ingest_reader *rd, struct kb_err *err)
{
    enum kb_code rc = csv_start(rd, err);
    return rc != KB_OK ? rc : read_header(rd, rd->state, err);
}

enum kb_code ingest_csv_header(const struct ingest_source *src, const char *base_dir,
                               char ***cols, int *n, struct kb_err *err)
{
    struct ingest_reader rd = { .src = src, .base_dir = (char *)(base_dir ? base_dir : ".") };
    kb_buf_init(&rd.bad_bytes);
    enum kb_code rc = csv_start(&rd, err);
    struct csv_state *st = rd.state;
    if (rc == KB_OK)
        rc = header_names(&rd, st, err);
    if (rc == KB_OK) {
        *cols = st->cols;
        *n = st->n_cols;
        st->cols = NULL;
        st->n_cols = 0;
    }
    csv_close(&rd);
    kb_buf_release(&rd.bad_bytes);
    return rc;
}
