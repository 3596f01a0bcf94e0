/*
 * jsonscan.c - the top-level elements of a big JSON export, one at a time.
 *
 * jansson parses a whole value, and an export of 500 MB is one array; so
 * this scanner reads the file in 64 KB blocks and finds each top-level
 * element's byte range by counting brackets outside strings, then hands
 * only that element to jansson (jscan_parse).  Memory: one element.
 *
 * Two shapes, told apart by the first byte:
 *   '['   arrays:             [ elem , elem , ... ] [ elem , ... ] ...
 *         one array, or several one after another, as `gh api --paginate`
 *         writes its pages (an empty page `[]` is nothing)
 *   else  a stream of values: JSON Lines (`gh api --paginate --jq '.[]'`),
 *         or objects one after another
 * A UTF-8 BOM before the first byte is skipped.  Broken structure (a
 * missing ',' between elements, the end of the file inside an element) is
 * fatal to the scan; a malformed element whose brackets balance is only
 * that element's problem (jansson reports it, the scan goes on).
 */
#include "ingest_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JSCAN_BLOCK 65536
#define AFTER_ARRAY "text after an array's closing ']'; the export must be JSON arrays (one, " \
                    "or pages one after another as gh api --paginate writes them) or JSON Lines"

struct jscan {
    FILE *f;
    char *path;
    long max_element;
    unsigned char buf[JSCAN_BLOCK];
    size_t len, pos;
    off_t base;            /* file offset of buf[0] */
    long line;             /* line of buf[pos] */
    int is_array, started, done, io_error;
    long index;            /* elements returned so far */
};

static int peek(struct jscan *js)
{
    if (js->pos == js->len) {
        if (js->done || js->io_error)
            return EOF;
        js->base += (off_t)js->len;
        js->len = fread(js->buf, 1, sizeof js->buf, js->f);
        js->pos = 0;
        if (js->len == 0) {
            if (ferror(js->f))
                js->io_error = errno ? errno : EIO;
            return EOF;
        }
    }
    return js->buf[js->pos];
}

static int get(struct jscan *js)
{
    int c = peek(js);
    if (c != EOF) {
        js->pos++;
        if (c == '\n')
            js->line++;
    }
    return c;
}

static int skip_ws(struct jscan *js)
{
    int c;
    while ((c = peek(js)) == ' ' || c == '\n' || c == '\r' || c == '\t')
        get(js);
    return c;
}

/*
 * At a ']' (or an element) of the arrays: steps over each ']' that is followed
 * by the '[' of the next page.  Returns the byte of the next element; EOF
 * with js->done set after the last array's ']'; EOF without it when the file
 * ends inside an array; -2 when a ']' is followed by other text.
 */
static int step_pages(struct jscan *js)
{
    int c = skip_ws(js);
    while (c == ']') {
        get(js);
        c = skip_ws(js);
        if (c == EOF) {
            js->done = 1;
            return EOF;
        }
        if (c != '[')
            return -2;
        get(js);
        c = skip_ws(js);
    }
    return c;
}

static off_t offset(const struct jscan *js)
{
    return js->base + (off_t)js->pos;
}

enum kb_code jscan_open(const char *path, long max_element, struct jscan **out,
                        struct kb_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        struct kb_origin at = { .path = path };
        return KB_FAIL(err, KB_E_INPUT, &at, "cannot open the export: %s; fix path:",
                       strerror(errno));
    }
    struct jscan *js = kb_xcalloc(1, sizeof *js);
    js->f = f;
    js->path = kb_xstrdup(path);
    js->max_element = max_element > 0 ? max_element : INGEST_DEFAULT_MAX_RECORD_SIZE;
    js->line = 1;
    *out = js;
    return KB_OK;
}

static enum kb_code structure_error(struct jscan *js, const char *what, struct kb_err *err)
{
    struct kb_origin at = { .path = js->path, .line = js->line };
    js->done = 1;
    if (js->io_error)
        return KB_FAIL(err, KB_E_IO, &at, "reading failed: %s; check the disk",
                       strerror(js->io_error));
    return KB_FAIL(err, KB_E_INPUT, &at, "%s", what);
}

/* Copy one element (starting at peek) into elem; KB_E_INPUT if the file ends inside it. */
static enum kb_code scan_element(struct jscan *js, struct kb_buf *elem, long start_line,
                                 size_t *total, struct kb_err *err)
{
    int depth = 0, in_str = 0, esc = 0;
    int c = peek(js);
    int is_scalar = c != '{' && c != '[' && c != '"';
    *total = 0;
    for (;;) {
        c = peek(js);
        if (c == EOF) {
            if (is_scalar && depth == 0 && !in_str)
                return KB_OK;
            char what[200];
            snprintf(what, sizeof what, "the file ends inside the element that starts at "
                     "line %ld; the export is truncated or not JSON", start_line);
            return structure_error(js, what, err);
        }
        /* A stray ',' or ']' between the values of a stream is taken as a
         * one-byte element (jansson then reports it): returned empty, it
         * would leave the scan on the same byte, and every later call would
         * return it again (tests/fuzz/regress/fuzz_issues/stray-comma.jsonl).
         * In an array, jscan_next consumes a ',' itself. */
        if (is_scalar && *total == 0 && !js->is_array && (c == ',' || c == ']')) {
            get(js);
            kb_buf_putc(elem, (char)c);
            *total = 1;
            return KB_OK;
        }
        if (is_scalar && (c == ',' || c == ']' || c == ' ' || c == '\n' || c == '\r' ||
                          c == '\t'))
            return KB_OK;
        get(js);
        if ((long)*total < js->max_element)
            kb_buf_putc(elem, (char)c);
        (*total)++;
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"') {
                in_str = 0;
                if (depth == 0)
                    return KB_OK;   /* a top-level string */
            }
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth <= 0)
                return KB_OK;
        }
    }
}

enum kb_code jscan_next(struct jscan *js, struct kb_buf *elem, long *line, off_t *off,
                        struct kb_err *err)
{
    kb_buf_reset(elem);
    if (js->done)
        return KB_OK;
    if (!js->started) {
        js->started = 1;
        if (peek(js) == 0xEF && js->len - js->pos >= 3 && memcmp(js->buf + js->pos, "\xEF\xBB\xBF", 3) == 0)
            js->pos += 3;
        int c = skip_ws(js);
        if (c == EOF) {
            js->done = 1;
            if (js->io_error)
                return structure_error(js, "", err);
            return KB_OK;   /* an empty export: no elements */
        }
        if (c != '[' && c != '{')
            return structure_error(js, "the export starts with neither '[' (a JSON array of "
                                   "issues) nor '{' (JSON Lines); is it JSON at all?", err);
        if (c == '[') {
            js->is_array = 1;
            get(js);
            if ((c = step_pages(js)) == -2)
                return structure_error(js, AFTER_ARRAY, err);
            if (js->done)
                return KB_OK;
        }
    } else if (js->is_array) {
        int c = skip_ws(js);
        if (c == ']') {
            if ((c = step_pages(js)) == -2)
                return structure_error(js, AFTER_ARRAY, err);
            if (js->done)
                return KB_OK;
        } else if (c != ',') {
            char what[200];
            snprintf(what, sizeof what, "expected ',' or ']' after element %ld of the array, "
                     "found %s; the export is not valid JSON", js->index,
                     c == EOF ? "the end of the file" : "other text");
            return structure_error(js, what, err);
        } else {
            get(js);
            if (skip_ws(js) == ']')
                return structure_error(js, "a ',' before the closing ']' (trailing comma); "
                                       "remove it", err);
        }
    }
    int c = skip_ws(js);
    if (c == EOF) {
        js->done = 1;
        if (js->is_array)
            return structure_error(js, "the file ends before the array's closing ']'; the "
                                   "export is truncated", err);
        return KB_OK;
    }
    *line = js->line;
    *off = offset(js);
    size_t total;
    enum kb_code rc = scan_element(js, elem, *line, &total, err);
    if (rc != KB_OK)
        return rc;
    js->index++;
    if ((long)total > js->max_element) {
        struct kb_origin at = { .path = js->path, .line = *line };
        long n = js->index;
        kb_buf_reset(elem);
        return KB_FAIL(err, KB_E_INPUT, &at, "element %ld is %zu bytes, over max_record_size "
                       "(%ld); raise max_record_size", n, total, js->max_element);
    }
    if (elem->len == 0)   /* never: a scanned element has at least one byte */
        kb_buf_putc(elem, ' ');
    return KB_OK;
}

long jscan_index(const struct jscan *js)
{
    return js->index;
}

int jscan_is_done(const struct jscan *js)
{
    return js->done;
}

int jscan_is_array(const struct jscan *js)
{
    return js->is_array;
}

void jscan_close(struct jscan *js)
{
    if (js == NULL)
        return;
    fclose(js->f);
    free(js->path);
    free(js);
}

enum kb_code jscan_parse(const char *path, const char *bytes, size_t len, long line,
                         json_t **out, struct kb_err *err)
{
    json_error_t je;
    *out = json_loadb(bytes, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
    if (*out == NULL) {
        struct kb_origin at = { .path = path, .line = line + (je.line > 0 ? je.line - 1 : 0),
                                .col = je.column > 0 ? je.column : 0 };
        if (at.col == 0)
            at.line = line;
        /* jansson quotes the token it stopped at, raw: a line break in it
         * would break the one-line message (found by fuzz_issues) */
        char text[4 * sizeof je.text + 1];
        return KB_FAIL(err, KB_E_INPUT, &at, "malformed JSON: %s; fix the export (jq . FILE "
                       "shows the spot)", kb_quote_line(text, sizeof text, je.text,
                                                        sizeof je.text));
    }
    return KB_OK;
}
