/*
 * import.c - read an import file into the import store (store.c).
 *
 *   jsonl          one object per line: "embedding": [1536 numbers] (or a
 *                  base64 string of little-endian float32, as the API's
 *                  encoding_format=base64 gives), keyed by "content_hash",
 *                  or by "source_id" + "chunk_index", or both.
 *   csv            a header row; columns content_hash and/or source_id +
 *                  chunk_index, and the vector column (default "embedding")
 *                  written as pgvector prints it, "[0.1,0.2,...]"; read by
 *                  libcsv one record at a time (see read_csv).
 *   openai_batch   the output file of OpenAI's Batch API: per line
 *                  {"custom_id": CONTENT_HASH, "response": {"status_code":
 *                  200, "body": {"data": [{"embedding": [...]}]}}, "error":
 *                  null}, as `kbpipe embed export` asked for.  Failed
 *                  requests are counted and warned about; their chunks are
 *                  then missing (each rejected with its origin).
 *
 * A malformed line or a vector that is not 1536 long fails the whole file
 * with FILE:LINE: a file from another model must not be half-used.  NaN,
 * Inf and zero vectors (possible in CSV) are kept and rejected per chunk
 * when a chunk asks for them, with the chunk's origin and this line.
 */
#include "embed/embed_int.h"

#include <csv.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct reader {
    const struct embed_import_opts *o;
    struct import_store *st;
    long line;               /* where the current line or CSV record starts */
    char at[300];            /* "path:line" */
    long n_dup, n_failed;
    long first_failed_line;
    char first_failed[200];
    float v[KB_EMBED_DIM];
};

static const char *at(struct reader *rd)
{
    snprintf(rd->at, sizeof rd->at, "%s:%ld", rd->o->path, rd->line);
    return rd->at;
}

static enum kb_code wrong_dim(struct reader *rd, long got, struct kb_err *err)
{
    return KB_FAIL_AT(err, KB_E_INPUT, at(rd),
                      "vector has %ld dimensions, the pipeline expects %d; set embedding.model "
                      "to a model that produced %d-dimension vectors and import its file",
                      got, KB_EMBED_DIM, KB_EMBED_DIM);
}

int embed_parse_vector_text(const char *s, float *out, int cap, const char **bad)
{
    const char *p = s;
    int n = 0;
    char close = 0;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '[')
        close = ']';
    else if (*p == '{')
        close = '}';
    if (close)
        p++;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        if (*p == '\0' || *p == close)
            break;
        char *end;
        errno = 0;
        float x = strtof(p, &end);
        if (end == p) {
            *bad = p;
            return -1;
        }
        if (n < cap)
            out[n] = x;
        n++;
        p = end;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == ',')
            p++;
        else if (*p != '\0' && *p != close && *p != '\r' && *p != '\n' && !(*p >= '0' && *p <= '9') &&
                 *p != '-' && *p != '+' && *p != '.') {
            *bad = p;
            return -1;
        }
    }
    if (close && *p != close) {
        *bad = p;
        return -1;
    }
    if (close)
        p++;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (*p != '\0') {
        *bad = p;
        return -1;
    }
    return n;
}

/* rd->v = the vector in j (an array of numbers or a base64 string). */
static enum kb_code take_vector(struct reader *rd, json_t *j, struct kb_err *err)
{
    if (json_is_string(j)) {
        unsigned char bytes[KB_EMBED_DIM * sizeof(float) + 4];
        size_t n = 0;
        const char *s = json_string_value(j);
        if (sodium_base642bin(bytes, sizeof bytes, s, json_string_length(j), NULL, &n, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0)
            return KB_FAIL_AT(err, KB_E_INPUT, at(rd),
                              "\"embedding\" is a string but not base64 float32 data; write "
                              "it as an array of numbers");
        if (n != KB_EMBED_DIM * sizeof(float))
            return wrong_dim(rd, (long)(n / sizeof(float)), err);
        for (int i = 0; i < KB_EMBED_DIM; i++) {
            /* the API's base64 is little-endian float32 */
            uint32_t u = (uint32_t)bytes[4 * i] | (uint32_t)bytes[4 * i + 1] << 8 |
                         (uint32_t)bytes[4 * i + 2] << 16 | (uint32_t)bytes[4 * i + 3] << 24;
            memcpy(&rd->v[i], &u, 4);
        }
        return KB_OK;
    }
    if (!json_is_array(j))
        return KB_FAIL_AT(err, KB_E_INPUT, at(rd),
                          "\"embedding\" is missing or not an array; each line needs "
                          "\"embedding\": [%d numbers]", KB_EMBED_DIM);
    size_t n = json_array_size(j);
    if (n != KB_EMBED_DIM)
        return wrong_dim(rd, (long)n, err);
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(j, i);
        if (!json_is_number(x))
            return KB_FAIL_AT(err, KB_E_INPUT, at(rd),
                              "element %zu of \"embedding\" is not a number; each line needs "
                              "\"embedding\": [%d numbers]", i, KB_EMBED_DIM);
        rd->v[i] = (float)json_number_value(x);
    }
    return KB_OK;
}

static int is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return 0;
    return 1;
}

/* The keys a line gives must be usable: checked before its vector is read. */
static enum kb_code check_keys(struct reader *rd, const char *hash, const char *source_id,
                               long chunk_index, int has_index, struct kb_err *err)
{
    char q[4 * 80 + 1];
    if (hash && !is_hex64(hash))
        return KB_FAIL_AT(err, KB_E_INPUT, at(rd),
                          "content_hash '%s' is not 64 hex digits (a SHA-256); use the "
                          "content_hash kbpipe stores with the chunk",
                          kb_quote_line(q, sizeof q, hash, 80));
    if (source_id && (!has_index || chunk_index < 0 || chunk_index > 0x7fffffff))
        return KB_FAIL_AT(err, KB_E_INPUT, at(rd),
                          "source_id needs a chunk_index (0, 1, ...); give both, or a "
                          "content_hash");
    if (!hash && !source_id)
        return KB_FAIL_AT(err, KB_E_INPUT, at(rd),
                          "no key: give \"content_hash\", or \"source_id\" and \"chunk_index\"");
    return KB_OK;
}

/* Store rd->v under the keys the line gives (checked by check_keys). */
static void store_keys(struct reader *rd, const char *hash, const char *source_id,
                       long chunk_index)
{
    int is_new = 1;
    if (hash)
        is_new &= import_store_add_hash(rd->st, hash, rd->v, rd->line);
    if (source_id)
        is_new &= import_store_add_source(rd->st, source_id, (int)chunk_index, rd->v, rd->line);
    if (!is_new)
        rd->n_dup++;
}

static enum kb_code parse_json(struct reader *rd, const char *line, size_t len, json_t **out,
                               struct kb_err *err)
{
    json_error_t jerr;
    char q[4 * sizeof jerr.text + 1];
    *out = json_loadb(line, len, 0, &jerr);
    if (!*out)
        return KB_FAIL_AT(err, KB_E_INPUT, at(rd),
                          "not valid JSON (%s at column %d); each line must be one JSON object",
                          kb_quote_line(q, sizeof q, jerr.text, sizeof jerr.text), jerr.column);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return KB_FAIL_AT(err, KB_E_INPUT, at(rd), "not a JSON object; each line must be one "
                                                   "JSON object");
    }
    return KB_OK;
}

static enum kb_code jsonl_line(struct reader *rd, const char *line, size_t len,
                               struct kb_err *err)
{
    json_t *o;
    enum kb_code rc = parse_json(rd, line, len, &o, err);
    if (rc != KB_OK)
        return rc;
    json_t *h = json_object_get(o, "content_hash");
    json_t *sid = json_object_get(o, "source_id");
    json_t *ci = json_object_get(o, "chunk_index");
    if ((h && !json_is_string(h)) || (sid && !json_is_string(sid)) ||
        (ci && !json_is_integer(ci)))
        rc = KB_FAIL_AT(err, KB_E_INPUT, at(rd),
                        "content_hash and source_id must be strings, chunk_index an integer");
    const char *hash = h ? json_string_value(h) : NULL;
    const char *source_id = sid ? json_string_value(sid) : NULL;
    long chunk_index = ci ? (long)json_integer_value(ci) : -1;
    if (rc == KB_OK)
        rc = check_keys(rd, hash, source_id, chunk_index, ci != NULL, err);
    if (rc == KB_OK)
        rc = take_vector(rd, json_object_get(o, "embedding"), err);
    if (rc == KB_OK)
        store_keys(rd, hash, source_id, chunk_index);
    json_decref(o);
    return rc;
}

static void note_failed(struct reader *rd, const char *why)
{
    if (rd->n_failed++ == 0) {
        rd->first_failed_line = rd->line;
        kb_quote_line(rd->first_failed, sizeof rd->first_failed, why, 40);
    }
}

static enum kb_code batch_line(struct reader *rd, const char *line, size_t len,
                               struct kb_err *err)
{
    json_t *o;
    enum kb_code rc = parse_json(rd, line, len, &o, err);
    if (rc != KB_OK)
        return rc;
    char q[4 * 80 + 1];
    json_t *cid = json_object_get(o, "custom_id");
    json_t *resp = json_object_get(o, "response");
    json_t *error = json_object_get(o, "error");
    json_t *status = json_object_get(resp, "status_code");
    json_t *data = json_object_get(json_object_get(resp, "body"), "data");
    if (!json_is_string(cid)) {
        rc = KB_FAIL_AT(err, KB_E_INPUT, at(rd),
                        "no \"custom_id\"; is this the output file of an OpenAI embeddings "
                        "batch?");
    } else if (!is_hex64(json_string_value(cid))) {
        rc = KB_FAIL_AT(err, KB_E_INPUT, at(rd),
                        "custom_id '%s' is not a content hash; make the batch's request "
                        "file with 'kbpipe embed export'",
                        kb_quote_line(q, sizeof q, json_string_value(cid), 80));
    } else if ((error && !json_is_null(error)) || !json_is_integer(status) ||
               json_integer_value(status) != 200) {
        json_t *msg = json_object_get(error ? error : json_object_get(json_object_get(
                                                          resp, "body"), "error"),
                                      "message");
        note_failed(rd, json_is_string(msg) ? json_string_value(msg) : "request failed");
    } else if (!json_is_array(data) || json_array_size(data) != 1) {
        rc = KB_FAIL_AT(err, KB_E_INPUT, at(rd),
                        "the response holds %zu embeddings, kbpipe asks for one per request; "
                        "make the request file with 'kbpipe embed export'",
                        json_is_array(data) ? json_array_size(data) : 0);
    } else {
        rc = take_vector(rd, json_object_get(json_array_get(data, 0), "embedding"), err);
        if (rc == KB_OK)
            store_keys(rd, json_string_value(cid), NULL, 0);
    }
    json_decref(o);
    return rc;
}

static enum kb_code read_lines(struct reader *rd, FILE *f, struct kb_err *err)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    enum kb_code rc = KB_OK;
    rd->line = 0;
    while (rc == KB_OK && (len = getline(&line, &cap, f)) >= 0) {
        rd->line++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        size_t skip = rd->line == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
        size_t k = skip;
        while (k < (size_t)len && (line[k] == ' ' || line[k] == '\t'))
            k++;
        if (k == (size_t)len)
            continue;   /* blank lines are allowed, as in most JSON Lines readers */
        if (rd->o->format == EMBED_IMPORT_OPENAI_BATCH)
            rc = batch_line(rd, line + skip, (size_t)len - skip, err);
        else
            rc = jsonl_line(rd, line + skip, (size_t)len - skip, err);
    }
    free(line);
    return rc;
}

/* ---- CSV ----------------------------------------------------------------- */

/*
 * CSV goes through libcsv (strict: a stray quote is an error), fed at most
 * CSV_BLOCK bytes at a time and never past a newline, so each record knows
 * the line it starts on and memory is one record whatever the file's size.
 * A record over CSV_MAX_RECORD bytes (a 1536-dimension vector printed with
 * 9 digits is ~25 KB) fails the file before it is buffered whole.
 */
#define CSV_BLOCK (64 * 1024)
#define CSV_MAX_RECORD (1024 * 1024)

struct csv_reader {
    struct reader *rd;
    struct csv_parser p;
    struct kb_buf text;      /* the record's fields, each NUL-terminated */
    size_t *starts;
    int n_fields, cap_fields;
    int has_nul;             /* a field of the record holds a NUL byte */
    long feed_line;          /* the line being fed */
    long rec_line;           /* where the record being read starts; 0: none yet */
    int n_cols;              /* 0 until the header is read */
    int col_hash, col_sid, col_idx, col_vec;
    const char *vec_name;
    enum kb_code rc;         /* the first failure; callbacks do nothing after it */
    struct kb_err *err;
};

static void csv_on_field(void *s, size_t len, void *ctx)
{
    struct csv_reader *c = ctx;
    if (c->rc != KB_OK)
        return;
    if (c->rec_line == 0)
        c->rec_line = c->feed_line;
    if (c->n_fields == c->cap_fields) {
        c->cap_fields = c->cap_fields ? 2 * c->cap_fields : 16;
        c->starts = kb_xrealloc(c->starts, (size_t)c->cap_fields * sizeof *c->starts);
    }
    c->starts[c->n_fields++] = c->text.len;
    c->has_nul |= len > 0 && memchr(s, '\0', len) != NULL;
    kb_buf_append(&c->text, s ? s : "", len);
    kb_buf_putc(&c->text, '\0');
}

static const char *csv_field(const struct csv_reader *c, int i)
{
    return i >= 0 ? c->text.data + c->starts[i] : NULL;
}

/* The header record: find the key and vector columns. */
static enum kb_code csv_header(struct csv_reader *c)
{
    struct reader *rd = c->rd;
    c->col_hash = c->col_sid = c->col_idx = c->col_vec = -1;
    for (int i = 0; i < c->n_fields; i++) {
        const char *name = csv_field(c, i);
        if (i == 0 && kb_starts_with(name, "\xEF\xBB\xBF"))
            name += 3;
        if (strcmp(name, "content_hash") == 0)
            c->col_hash = i;
        else if (strcmp(name, "source_id") == 0)
            c->col_sid = i;
        else if (strcmp(name, "chunk_index") == 0)
            c->col_idx = i;
        else if (strcmp(name, c->vec_name) == 0)
            c->col_vec = i;
    }
    c->n_cols = c->n_fields;
    if (c->col_vec < 0 || (c->col_hash < 0 && (c->col_sid < 0 || c->col_idx < 0)))
        return KB_FAIL_AT(c->err, KB_E_INPUT, at(rd),
                          "the header needs the vector column '%s' and content_hash (or "
                          "source_id and chunk_index) columns", c->vec_name);
    return KB_OK;
}

/* A data record: its keys, then its vector, into the store. */
static enum kb_code csv_row(struct csv_reader *c)
{
    struct reader *rd = c->rd;
    if (c->n_fields == 1 && csv_field(c, 0)[0] == '\0')
        return KB_OK;   /* a line holding only "" */
    if (c->n_fields != c->n_cols)
        return KB_FAIL_AT(c->err, KB_E_INPUT, at(rd), "%d fields, the header has %d; quote "
                          "fields that contain commas", c->n_fields, c->n_cols);
    if (c->has_nul)
        return KB_FAIL_AT(c->err, KB_E_INPUT, at(rd), "a field holds a NUL byte; the file is "
                          "damaged: write it again");
    const char *hash = csv_field(c, c->col_hash), *sid = csv_field(c, c->col_sid);
    const char *idx = csv_field(c, c->col_idx);
    if (hash && !*hash)
        hash = NULL;
    if (sid && !*sid)
        sid = NULL;
    long chunk_index = -1;
    int has_index = 0;
    if (idx && *idx) {
        char *end;
        chunk_index = strtol(idx, &end, 10);
        has_index = *end == '\0';
    }
    enum kb_code rc = check_keys(rd, hash, sid, chunk_index, has_index, c->err);
    if (rc != KB_OK)
        return rc;
    const char *bad = NULL;
    char q[4 * 20 + 1];
    int dim = embed_parse_vector_text(csv_field(c, c->col_vec), rd->v, KB_EMBED_DIM, &bad);
    if (dim < 0)
        return KB_FAIL_AT(c->err, KB_E_INPUT, at(rd),
                          "column '%s' is not a vector at '%s'; write it as [0.1,0.2,...]",
                          c->vec_name, kb_quote_line(q, sizeof q, bad, 20));
    if (dim != KB_EMBED_DIM)
        return wrong_dim(rd, dim, c->err);
    store_keys(rd, hash, sid, chunk_index);
    return KB_OK;
}

static void csv_on_record(int term, void *ctx)
{
    (void)term;
    struct csv_reader *c = ctx;
    if (c->rc != KB_OK)
        return;
    c->rd->line = c->rec_line ? c->rec_line : c->feed_line;
    c->rc = c->n_cols == 0 ? csv_header(c) : csv_row(c);
    kb_buf_reset(&c->text);
    c->n_fields = 0;
    c->has_nul = 0;
    c->rec_line = 0;
}

/* Feed buf[0..n) (within one line) to libcsv; KB_E_INPUT on a bad quote or
 * a record over CSV_MAX_RECORD. */
static enum kb_code csv_feed(struct csv_reader *c, const char *buf, size_t n)
{
    if (csv_parse(&c->p, buf, n, csv_on_field, csv_on_record, c) != n && c->rc == KB_OK) {
        c->rd->line = c->feed_line;
        return c->rc = KB_FAIL_AT(c->err, KB_E_INPUT, at(c->rd),
                                  "malformed quoting (a quote inside an unquoted field, or "
                                  "text after a closing quote); quote the whole field and "
                                  "write inner quotes twice");
    }
    if (c->rc == KB_OK && c->p.pstate != 0 && c->rec_line == 0)   /* 0: ROW_NOT_BEGUN */
        c->rec_line = c->feed_line;
    if (c->rc == KB_OK && c->text.len + c->p.entry_pos > CSV_MAX_RECORD) {
        c->rd->line = c->rec_line;
        c->rc = KB_FAIL_AT(c->err, KB_E_INPUT, at(c->rd),
                           "the record is over %d bytes, too long for one vector; is this "
                           "a vectors file? (a quote left open swallows the lines after it)",
                           CSV_MAX_RECORD);
    }
    return c->rc;
}

static enum kb_code read_csv(struct reader *rd, FILE *f, struct kb_err *err)
{
    struct csv_reader c = { .rd = rd, .feed_line = 1, .err = err };
    c.vec_name = rd->o->csv_vector_column && rd->o->csv_vector_column[0]
                     ? rd->o->csv_vector_column
                     : "embedding";
    if (csv_init(&c.p, CSV_STRICT | CSV_STRICT_FINI) != 0)
        return KB_FAIL(err, KB_E_INTERNAL, NULL, "csv_init failed; please report it");
    csv_set_blk_size(&c.p, 64 * 1024);   /* not 128 bytes: a vector field is ~25 KB */
    kb_buf_init(&c.text);
    char *block = kb_xmalloc(CSV_BLOCK);
    size_t n;
    while (c.rc == KB_OK && (n = fread(block, 1, CSV_BLOCK, f)) > 0) {
        for (size_t i = 0; i < n && c.rc == KB_OK;) {   /* one piece per line */
            const char *nl = memchr(block + i, '\n', n - i);
            size_t piece = nl ? (size_t)(nl - (block + i)) + 1 : n - i;
            csv_feed(&c, block + i, piece);
            i += piece;
            c.feed_line += nl != NULL;
        }
    }
    if (c.rc == KB_OK && !ferror(f) &&
        csv_fini(&c.p, csv_on_field, csv_on_record, &c) != 0 && c.rc == KB_OK) {
        rd->line = c.rec_line;
        c.rc = KB_FAIL_AT(err, KB_E_INPUT, at(rd),
                          "a quoted field is never closed; add the closing '\"'");
    }
    if (c.rc == KB_OK && !ferror(f) && c.n_cols == 0)
        c.rc = KB_FAIL_AT(err, KB_E_INPUT, rd->o->path,
                          "the file is empty; a CSV vectors file starts with a header row");
    free(block);
    free(c.starts);
    kb_buf_release(&c.text);
    csv_free(&c.p);
    return c.rc;
}

enum kb_code import_read(const struct embed_import_opts *o, struct import_store **out,
                         long *n_duplicates, struct kb_err *err)
{
    *out = NULL;
    if (!o->path || !o->path[0])
        return KB_FAIL_AT(err, KB_E_CONFIG, "embedding.file",
                          "the import provider needs a vectors file; set embedding.file");
    FILE *f = fopen(o->path, "rb");
    if (!f)
        return KB_FAIL_AT(err, KB_E_IO, o->path, "cannot open the vectors file: %s",
                          strerror(errno));
    struct reader *rd = kb_xcalloc(1, sizeof *rd);
    rd->o = o;
    enum kb_code rc = import_store_new(o->path, &rd->st, err);
    if (rc == KB_OK)
        rc = o->format == EMBED_IMPORT_CSV ? read_csv(rd, f, err) : read_lines(rd, f, err);
    if (rc == KB_OK && ferror(f))
        rc = KB_FAIL_AT(err, KB_E_IO, o->path, "reading the vectors file failed: %s",
                        strerror(errno));
    if (rc == KB_OK)
        rc = import_store_seal(rd->st, err);
    fclose(f);
    if (rc == KB_OK && rd->n_failed > 0)
        log_warn("%s: %ld requests of the batch failed (first at line %ld: %.120s); their "
                 "chunks will be rejected as missing: export and run them again",
                 o->path, rd->n_failed, rd->first_failed_line, rd->first_failed);
    if (rc == KB_OK) {
        *out = rd->st;
        *n_duplicates = rd->n_dup;
    } else {
        import_store_free(rd->st);
    }
    free(rd);
    return rc;
}
