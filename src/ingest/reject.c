/*
 * reject.c - the reject file of `on_error: skip`: one JSON object per line
 * for every input a run could not use, with where it came from, why, and
 * the input itself (its first 4 KB), so it can be fixed and fed again:
 *
 *   {"source":"learnings","origin":"samples/learnings/learnings.csv:14",
 *    "file":"samples/learnings/learnings.csv","line":14,
 *    "reason":"row 13 has 4 fields, the header has 8; ...",
 *    "input":"L-013,Retry ...","input_bytes":57,"input_truncated":false}
 *
 * The input is stored as text: invalid UTF-8 bytes become U+FFFD, so the
 * line stays valid JSON whatever the input was.  Lines are written whole
 * and flushed, so a killed run leaves a readable file.
 */
#include "ingest_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ingest_rejects {
    FILE *f;
    char *path;
    long n;
};

static void make_parents(const char *path)
{
    char *p = kb_xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0777);
            *s = '/';
        }
    }
    free(p);
}

enum kb_code ingest_rejects_open(const char *path, struct ingest_rejects **out,
                                 struct kb_err *err)
{
    make_parents(path);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        struct kb_origin at = { .path = path };
        return KB_FAIL(err, KB_E_IO, &at, "cannot create the reject file: %s; set reject_file "
                       "to a writable path", strerror(errno));
    }
    struct ingest_rejects *r = kb_xcalloc(1, sizeof *r);
    r->f = f;
    r->path = kb_xstrdup(path);
    *out = r;
    return KB_OK;
}

/* bytes as a JSON string: invalid UTF-8 replaced, NUL kept as \u0000 */
static json_t *text_value(const char *s, size_t len)
{
    struct kb_buf b;
    kb_buf_init(&b);
    size_t i = 0;
    while (i < len) {
        int n = (unsigned char)s[i] < 0x80 ? 1
                : kb_utf8_seq_len((const unsigned char *)s + i, len - i);
        if (n > 0) {
            kb_buf_append(&b, s + i, (size_t)n);
            i += (size_t)n;
        } else if (len - i < 4 && i + 4 > INGEST_BAD_KEEP) {
            break;   /* a sequence cut by the 4 KB limit */
        } else {
            kb_buf_append(&b, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    json_t *j = json_stringn(b.data ? b.data : "", b.len);
    kb_buf_release(&b);
    return j;
}

enum kb_code ingest_rejects_add(struct ingest_rejects *r, const char *source_name,
                                const struct kb_err *why, const struct ingest_bad *bad,
                                struct kb_err *err)
{
    json_t *o = json_object();
    if (source_name)
        json_object_set_new(o, "source", json_string(source_name));
    json_object_set_new(o, "origin", json_string(why->origin));
    if (bad && bad->at.path)
        json_object_set_new(o, "file", text_value(bad->at.path, strlen(bad->at.path)));
    if (bad && bad->at.line > 0)
        json_object_set_new(o, "line", json_integer(bad->at.line));
    if (bad && bad->at.row > 0)
        json_object_set_new(o, "row", json_integer(bad->at.row));
    if (bad && bad->issue_number > 0)
        json_object_set_new(o, "issue", json_integer(bad->issue_number));
    json_object_set_new(o, "code", json_string(kb_code_name(why->code)));
    json_object_set_new(o, "reason", text_value(why->msg, strlen(why->msg)));
    if (bad && bad->total_len > 0) {
        json_object_set_new(o, "input", text_value(bad->input, bad->len));
        json_object_set_new(o, "input_bytes", json_integer((json_int_t)bad->total_len));
        json_object_set_new(o, "input_truncated", json_boolean(bad->len < bad->total_len));
    }
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    int bad_write = line == NULL || fprintf(r->f, "%s\n", line) < 0 || fflush(r->f) != 0;
    free(line);
    if (bad_write) {
        struct kb_origin at = { .path = r->path };
        return KB_FAIL(err, KB_E_IO, &at, "writing the reject file failed: %s; check the disk",
                       strerror(errno));
    }
    r->n++;
    return KB_OK;
}

long ingest_rejects_count(const struct ingest_rejects *r)
{
    return r->n;
}

const char *ingest_rejects_path(const struct ingest_rejects *r)
{
    return r->path;
}

enum kb_code ingest_rejects_close(struct ingest_rejects *r, struct kb_err *err)
{
    if (r == NULL)
        return KB_OK;
    enum kb_code rc = KB_OK;
    if (fclose(r->f) != 0) {
        struct kb_origin at = { .path = r->path };
        rc = KB_FAIL(err, KB_E_IO, &at, "writing the reject file failed: %s; check the disk",
                     strerror(errno));
    }
    free(r->path);
    free(r);
    return rc;
}
