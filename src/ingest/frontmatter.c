/*
 * frontmatter.c - Markdown YAML front matter as a JSON object.
 *
 * libyaml lives in src/pipeline (one library, one folder), and front
 * matter in practice is a flat block, so this reads the subset Jekyll,
 * Hugo and MkDocs pages use:
 *
 *   ---
 *   title: Rotating secrets          scalar: plain, 'single' or "double"
 *   tags: [secrets, security]        flow sequence of scalars
 *   aliases:                         block sequence of scalars
 *     - rotate-keys
 *   confidence_score: 0.9            numbers, true/false, null/~ are typed
 *   ---                              ("..." also ends the block)
 *
 * Anything else (nested mappings, multi-line scalars, anchors) is reported
 * with its line, so the file is rejected rather than half-read.
 */
#include "ingest_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static int is_line(const char *p, size_t n, const char *word)
{
    size_t w = strlen(word);
    if (n < w || memcmp(p, word, w) != 0)
        return 0;
    for (size_t i = w; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t')
            return 0;
    return 1;
}

/* Strip a trailing " # comment" (outside quotes) and surrounding blanks. */
static char *clean(char *s)
{
    char q = 0;
    for (char *p = s; *p; p++) {
        if (q) {
            if (*p == q)
                q = 0;
        } else if (*p == '"' || *p == '\'') {
            q = *p;
        } else if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    }
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* A scalar to JSON; NULL when it is not a scalar this subset reads. */
static json_t *scalar(const char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        char *v = kb_xstrndup(s + 1, n - 2);
        if (s[0] == '\'') {   /* '' is a quote inside single quotes */
            char *w = v;
            for (char *r = v; *r; r++) {
                *w++ = *r;
                if (*r == '\'' && r[1] == '\'')
                    r++;
            }
            *w = '\0';
        } else {              /* the common escapes of double quotes */
            char *w = v;
            for (char *r = v; *r; r++) {
                if (*r == '\\' && r[1]) {
                    r++;
                    *w++ = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r;
                } else {
                    *w++ = *r;
                }
            }
            *w = '\0';
        }
        json_t *j = json_string(v);
        free(v);
        return j;
    }
    if (n == 0 || !strcmp(s, "~") || !strcmp(s, "null"))
        return json_null();
    if (!strcmp(s, "true"))
        return json_true();
    if (!strcmp(s, "false"))
        return json_false();
    if (strchr("{&*!|>", s[0]))
        return NULL;
    char *end;
    long long i = strtoll(s, &end, 10);
    if (*end == '\0' && end != s)
        return json_integer(i);
    double d = strtod(s, &end);
    if (*end == '\0' && end != s)
        return json_real(d);
    return json_string(s);
}

/* "[a, 'b', c]" into an array; NULL when malformed. */
static json_t *flow_seq(char *s)
{
    size_t n = strlen(s);
    if (n < 2 || s[n - 1] != ']')
        return NULL;
    s[n - 1] = '\0';
    json_t *arr = json_array();
    char *p = s + 1;
    while (*p) {
        char *start = p;
        char q = 0;
        while (*p && (q || *p != ',')) {
            if (q && *p == q)
                q = 0;
            else if (!q && (*p == '"' || *p == '\''))
                q = *p;
            p++;
        }
        char save = *p;
        *p = '\0';
        char *item = clean(start);
        json_t *v = item[0] ? scalar(item) : NULL;
        if (item[0] && (v == NULL || item[0] == '[')) {
            json_decref(v);
            json_decref(arr);
            return NULL;
        }
        if (v)
            json_array_append_new(arr, v);
        if (save == '\0')
            break;
        p++;
    }
    return arr;
}

enum kb_code ingest_front_matter(const char *text, size_t len, const char *path,
                                 json_t **meta, size_t *body_off, struct kb_err *err)
{
    *meta = NULL;
    *body_off = 0;
    const char *nl = memchr(text, '\n', len);
    if (nl == NULL || !is_line(text, (size_t)(nl - text), "---"))
        return KB_OK;
    int is_closed = 0;
    for (const char *q = nl + 1; q < text + len && !is_closed;) {
        const char *qe = memchr(q, '\n', (size_t)(text + len - q));
        size_t qn = qe ? (size_t)(qe - q) : (size_t)(text + len - q);
        is_closed = is_line(q, qn, "---") || is_line(q, qn, "...");
        q += qn + 1;
    }
    if (!is_closed) {
        struct kb_origin at = { .path = path, .line = 1, .col = 1 };
        return KB_FAIL(err, KB_E_INPUT, &at, "front matter starts with '---' but never ends; "
                       "close it with a '---' line (or start the file with something else)");
    }
    json_t *obj = json_object();
    json_t *open_seq = NULL;   /* the key whose "- item" lines follow */
    const char *p = nl + 1, *end = text + len;
    long line = 2;
    for (; p < end; line++) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        size_t n = e ? (size_t)(e - p) : (size_t)(end - p);
        struct kb_origin at = { .path = path, .line = line, .col = 1 };
        if (is_line(p, n, "---") || is_line(p, n, "...")) {
            *meta = obj;
            *body_off = e ? (size_t)(e + 1 - text) : len;
            return KB_OK;
        }
        char *buf = kb_xstrndup(p, n);
        char *s = clean(buf);
        const char *problem = NULL;
        if (s[0] == '\0') {
            /* blank or comment line */
        } else if (s[0] == '-' && (s[1] == ' ' || s[1] == '\0')) {
            json_t *v = scalar(clean(s + 1));
            if (open_seq == NULL || v == NULL) {
                json_decref(v);
                problem = "a list item here must follow a 'key:' line and be a plain value";
            } else {
                json_array_append_new(open_seq, v);
            }
        } else if (p[0] == ' ' || p[0] == '\t') {
            problem = "nested mappings are not read in front matter; keep it to "
                      "'key: value' and lists";
        } else {
            char *colon = strstr(s, ": ");
            if (colon == NULL && s[strlen(s) - 1] == ':')
                colon = s + strlen(s) - 1;
            if (colon == NULL || colon == s) {
                problem = "expected 'key: value'";
            } else {
                *colon = '\0';
                char *key = clean(s), *val = clean(colon + 1);
                json_t *v;
                open_seq = NULL;
                if (val[0] == '\0') {
                    v = json_array();   /* a block list may follow; empty stays [] */
                    open_seq = v;
                } else if (val[0] == '[') {
                    v = flow_seq(val);
                } else {
                    v = scalar(val);
                }
                if (v == NULL)
                    problem = "this value is not read in front matter (use a plain, "
                              "quoted or [a, b] value)";
                else
                    json_object_set_new(obj, key, v);
            }
        }
        free(buf);
        if (problem) {
            json_decref(obj);
            return KB_FAIL(err, KB_E_INPUT, &at, "front matter: %s", problem);
        }
        p = e ? e + 1 : end;
    }
    json_decref(obj);
    struct kb_origin at = { .path = path, .line = 1, .col = 1 };
    return KB_FAIL(err, KB_E_INPUT, &at, "front matter starts with '---' but never ends; "
                   "close it with a '---' line");
}
