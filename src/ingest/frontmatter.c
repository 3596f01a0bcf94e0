/*
 * frontmatter.c - Markdown YAML front matter as a JSON object, read with
 * libyaml.
 *
 * The block is the file's first line "---", then YAML, then a line "---"
 * or "...".  Its YAML is any mapping Jekyll, Hugo or MkDocs write:
 *
 *   ---
 *   title: Rotating secrets          plain, 'single', "double" scalars
 *   tags: [secrets, security]        flow and block sequences
 *   params:                          nested mappings, lists of mappings
 *     toc: true
 *   description: >                   folded (>) and literal (|) scalars
 *     Keys are rotated monthly.
 *   base: &b {owner: ops}            anchors, aliases and "<<: *b" merges
 *   ---
 *
 * Plain scalars are typed as YAML 1.2's core schema types them: null, ~
 * and nothing are null, true/false are booleans, decimal integers and
 * floats are numbers; everything else (quoted, block or tagged !!str, and
 * plain text such as 2024-05-01 or .inf, which JSON cannot hold) is a string.
 * A key given twice keeps its last value.
 *
 * Invariants: the result is a JSON object or a located KB_E_INPUT
 * (file:line:col, counted in the file, not the block); the work is bounded
 * by FM_MAX_DEPTH levels and FM_MAX_NODES values, aliases counted as every
 * value they repeat (a "billion laughs" block stops at the limit).
 */
#include "ingest_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Far beyond any real page (Hugo's deepest params nest 4 levels, a page
 * holds tens of values) and small enough that the JSON stays a few MB. */
#define FM_MAX_DEPTH 64
#define FM_MAX_NODES 10000

struct anchor {
    char *name;
    json_t *value;
    size_t n_nodes;        /* values an alias to it repeats */
};

struct fm_reader {
    yaml_parser_t parser;
    const char *path;
    long first_line;       /* the file line of the block's first YAML line */
    size_t n_nodes;
    struct anchor *anchors;
    size_t n_anchors, cap_anchors;
    struct kb_err *err;
};

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

static enum kb_code fail(struct fm_reader *r, const yaml_mark_t *m, const char *fmt, ...)
    KB_PRINTF(3, 4);

/* KB_E_INPUT at the file position of libyaml mark m. */
static enum kb_code fail(struct fm_reader *r, const yaml_mark_t *m, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct kb_origin at = { .path = r->path, .line = r->first_line + (long)m->line,
                            .col = (long)m->column + 1 };
    return KB_FAIL(r->err, KB_E_INPUT, &at, "front matter: %s", msg);
}

static enum kb_code next_event(struct fm_reader *r, yaml_event_t *ev)
{
    if (yaml_parser_parse(&r->parser, ev))
        return KB_OK;
    const yaml_parser_t *p = &r->parser;
    const char *problem = p->problem ? p->problem : "unreadable YAML";
    if (p->context)
        return fail(r, &p->problem_mark, "YAML syntax: %s %s (line %ld); check the "
                    "indentation and quoting", problem, p->context,
                    r->first_line + (long)p->context_mark.line);
    return fail(r, &p->problem_mark, "YAML syntax: %s; check the indentation and quoting",
                problem);
}

/* Count one more value against FM_MAX_NODES (n of them for an alias). */
static enum kb_code count_nodes(struct fm_reader *r, size_t n, const yaml_mark_t *m)
{
    r->n_nodes += n;
    if (r->n_nodes > FM_MAX_NODES)
        return fail(r, m, "more than %d values (aliases count every value they repeat); "
                    "write a smaller block or fewer aliases", FM_MAX_NODES);
    return KB_OK;
}

/* s[0..n) matches re; re is "sign? digits" (int) or the core schema float. */
static int is_int(const char *s, size_t n)
{
    size_t i = n && (s[0] == '-' || s[0] == '+');
    if (i == n)
        return 0;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
static int is_float(const char *s, size_t n)
{
    size_t i = n && (s[0] == '-' || s[0] == '+'), digits = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    if (digits == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        if (i == n)
            return 0;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
    }
    return i == n;
}

static int is_word(const char *s, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(s, *words) == 0)
            return 1;
    return 0;
}

/* A plain, untagged scalar typed by the core schema (see the top). */
static json_t *plain_value(const char *s, size_t n)
{
    static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
    static const char *const trues[] = { "true", "True", "TRUE", NULL };
    static const char *const falses[] = { "false", "False", "FALSE", NULL };
    if (is_word(s, nulls))
        return json_null();
    if (is_word(s, trues))
        return json_true();
    if (is_word(s, falses))
        return json_false();
    char *end;
    errno = 0;
    if (is_int(s, n)) {
        long long i = strtoll(s, &end, 10);
        if (errno == 0)
            return json_integer(i);
    }
    if (is_float(s, n)) {   /* an integer too large for 64 bits lands here too */
        double d = strtod(s, &end);
        if (isfinite(d))
            return json_real(d);
    }
    return json_stringn(s, n);
}

static enum kb_code scalar_value(struct fm_reader *r, const yaml_event_t *ev, json_t **out)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    if (memchr(s, '\0', n))   /* a "\0" escape: PostgreSQL's jsonb cannot store it */
        return fail(r, &ev->start_mark, "a value holds a NUL character (\\0); remove it");
    *out = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && ev->data.scalar.tag == NULL
               ? plain_value(s, n)
               : json_stringn(s, n);
    if (*out == NULL)
        return fail(r, &ev->start_mark, "a value is not valid UTF-8; re-save the file as UTF-8");
    return KB_OK;
}

static void anchor_add(struct fm_reader *r, const yaml_char_t *name, json_t *value, size_t n)
{
    if (name == NULL)
        return;
    if (r->n_anchors == r->cap_anchors) {
        r->cap_anchors = r->cap_anchors ? 2 * r->cap_anchors : 8;
        r->anchors = kb_xrealloc(r->anchors, r->cap_anchors * sizeof *r->anchors);
    }
    r->anchors[r->n_anchors++] = (struct anchor){ kb_xstrdup((const char *)name),
                                                  json_incref(value), n };
}

static enum kb_code alias_value(struct fm_reader *r, const yaml_event_t *ev, json_t **out)
{
    const char *name = (const char *)ev->data.alias.anchor;
    for (size_t i = r->n_anchors; i-- > 0;) {   /* the latest "&name" wins */
        if (strcmp(r->anchors[i].name, name) != 0)
            continue;
        enum kb_code rc = count_nodes(r, r->anchors[i].n_nodes, &ev->start_mark);
        if (rc == KB_OK)
            *out = json_deep_copy(r->anchors[i].value);
        return rc;
    }
    return fail(r, &ev->start_mark, "alias '*%.80s' names no anchor defined before it; "
                "define '&%.80s' first", name, name);
}

static enum kb_code read_node(struct fm_reader *r, yaml_event_t *ev, int depth, json_t **out);

/* "<<: *base" (YAML 1.1 merge, which Hugo reads): base's keys, unless set. */
static enum kb_code merge_into(struct fm_reader *r, json_t *obj, json_t *from,
                               const yaml_mark_t *m)
{
    json_t *one = from;
    size_t i = 0;
    if (json_is_array(from))
        one = json_array_get(from, 0);
    while (one != NULL) {
        if (!json_is_object(one))
            return fail(r, m, "'<<' merges a mapping or a list of mappings; use an alias "
                        "such as '<<: *defaults'");
        const char *k;
        json_t *v;
        json_object_foreach(one, k, v) {
            if (json_object_get(obj, k) == NULL)
                json_object_set(obj, k, v);
        }
        one = json_is_array(from) ? json_array_get(from, ++i) : NULL;
    }
    return KB_OK;
}

/* The key of a mapping entry as text; *ev (consumed) is its first event. */
static enum kb_code read_key(struct fm_reader *r, yaml_event_t *ev, int depth, char **key,
                             int *is_merge)
{
    yaml_mark_t m = ev->start_mark;
    if (ev->type == YAML_SCALAR_EVENT) {   /* the text as written: "1.0", not 1 */
        *is_merge = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                    strcmp((const char *)ev->data.scalar.value, "<<") == 0;
        enum kb_code rc = KB_OK;
        if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length))
            rc = fail(r, &m, "a key holds a NUL character (\\0); remove it");
        else
            *key = kb_xstrdup((const char *)ev->data.scalar.value);
        yaml_event_delete(ev);
        return rc == KB_OK ? count_nodes(r, 1, &m) : rc;
    }
    json_t *v = NULL;
    *is_merge = 0;
    enum kb_code rc = read_node(r, ev, depth, &v);
    if (rc == KB_OK && !json_is_string(v))
        rc = fail(r, &m, "a key is a list or a mapping; keys must be plain text");
    if (rc == KB_OK)
        *key = kb_xstrdup(json_string_value(v));
    json_decref(v);
    return rc;
}

/* One "key: value" entry of obj; *ev (consumed) is the key's first event. */
static enum kb_code read_entry(struct fm_reader *r, yaml_event_t *ev, int depth, json_t *obj)
{
    yaml_mark_t m = ev->start_mark;
    char *key = NULL;
    int is_merge;
    json_t *v = NULL;
    enum kb_code rc = read_key(r, ev, depth, &key, &is_merge);
    if (rc == KB_OK)
        rc = next_event(r, ev);
    if (rc == KB_OK)
        rc = read_node(r, ev, depth, &v);
    if (rc == KB_OK && is_merge)
        rc = merge_into(r, obj, v, &m);
    else if (rc == KB_OK)
        json_object_set(obj, key, v);
    json_decref(v);
    free(key);
    return rc;
}

/* The entries of a mapping (into an object) or the items of a sequence (into
 * an array), through its end event. */
static enum kb_code read_children(struct fm_reader *r, int depth, json_t *into)
{
    yaml_event_type_t end = json_is_object(into) ? YAML_MAPPING_END_EVENT
                                                 : YAML_SEQUENCE_END_EVENT;
    for (;;) {
        yaml_event_t ev;
        enum kb_code rc = next_event(r, &ev);
        if (rc == KB_OK && ev.type == end) {
            yaml_event_delete(&ev);
            return KB_OK;
        }
        json_t *v = NULL;
        if (rc == KB_OK && json_is_object(into))
            rc = read_entry(r, &ev, depth, into);
        else if (rc == KB_OK && (rc = read_node(r, &ev, depth, &v)) == KB_OK)
            json_array_append_new(into, v);
        if (rc != KB_OK)
            return rc;
    }
}

/*
 * The value whose first event is *ev (consumed, deleted) into a new *out;
 * depth is the number of mappings and sequences around it.
 */
static enum kb_code read_node(struct fm_reader *r, yaml_event_t *ev, int depth, json_t **out)
{
    size_t n_before = r->n_nodes;
    enum kb_code rc = count_nodes(r, 1, &ev->start_mark);
    const yaml_char_t *anchor = NULL;
    *out = NULL;
    if (rc == KB_OK && (ev->type == YAML_MAPPING_START_EVENT ||
                        ev->type == YAML_SEQUENCE_START_EVENT) && depth >= FM_MAX_DEPTH)
        rc = fail(r, &ev->start_mark, "nested deeper than %d levels; flatten it",
                  FM_MAX_DEPTH);
    if (rc != KB_OK) {
        yaml_event_delete(ev);
        return rc;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        rc = scalar_value(r, ev, out);
        break;
    case YAML_ALIAS_EVENT:
        r->n_nodes = n_before;   /* the alias counts what it repeats, not itself */
        rc = alias_value(r, ev, out);
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        *out = json_object();
        rc = read_children(r, depth + 1, *out);
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        *out = json_array();
        rc = read_children(r, depth + 1, *out);
        break;
    default:   /* libyaml sends only the four above inside a document */
        rc = fail(r, &ev->start_mark, "unexpected YAML event %d; please report it",
                  (int)ev->type);
        break;
    }
    if (rc == KB_OK)
        anchor_add(r, anchor, *out, r->n_nodes - n_before);
    yaml_event_delete(ev);   /* after anchor_add: anchor points into *ev */
    if (rc != KB_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

/* The block's YAML (one document, or none) into the object *out. */
static enum kb_code read_block(struct fm_reader *r, json_t **out)
{
    static const char *const kinds[] = {
        [YAML_SCALAR_EVENT] = "a single value", [YAML_SEQUENCE_START_EVENT] = "a list",
        [YAML_ALIAS_EVENT] = "an alias",
    };
    yaml_event_t ev;
    enum kb_code rc;
    *out = NULL;
    do {   /* stream start, then a document or the end */
        rc = next_event(r, &ev);
        if (rc != KB_OK)
            return rc;
        yaml_event_type_t t = ev.type;
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT) {   /* only comments: no keys */
            *out = json_object();
            return KB_OK;
        }
        if (t == YAML_DOCUMENT_START_EVENT)
            break;
    } while (1);
    rc = next_event(r, &ev);
    if (rc != KB_OK)
        return rc;
    if (ev.type != YAML_MAPPING_START_EVENT) {
        const char *kind = (size_t)ev.type < sizeof kinds / sizeof kinds[0] && kinds[ev.type]
                               ? kinds[ev.type] : "not a mapping";
        rc = fail(r, &ev.start_mark, "the block is %s, not a mapping; write 'key: value' "
                  "lines", kind);
        yaml_event_delete(&ev);
        return rc;
    }
    rc = read_node(r, &ev, 0, out);
    if (rc == KB_OK)
        rc = next_event(r, &ev);   /* document end */
    if (rc == KB_OK) {
        yaml_event_delete(&ev);
        rc = next_event(r, &ev);
    }
    if (rc == KB_OK) {
        if (ev.type != YAML_STREAM_END_EVENT)
            rc = fail(r, &ev.start_mark, "a second YAML document starts here; keep one "
                      "mapping between the '---' lines");
        yaml_event_delete(&ev);
    }
    if (rc != KB_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

enum kb_code ingest_front_matter(const char *text, size_t len, const char *path,
                                 json_t **meta, size_t *body_off, struct kb_err *err)
{
    *meta = NULL;
    *body_off = 0;
    const char *nl = memchr(text, '\n', len);
    if (nl == NULL || !is_line(text, (size_t)(nl - text), "---"))
        return KB_OK;
    const char *yaml = nl + 1, *end = text + len, *close = NULL;
    for (const char *q = yaml; q < end && close == NULL;) {
        const char *qe = memchr(q, '\n', (size_t)(end - q));
        size_t qn = qe ? (size_t)(qe - q) : (size_t)(end - q);
        if (is_line(q, qn, "---") || is_line(q, qn, "...")) {
            close = q;
            *body_off = qe ? (size_t)(qe + 1 - text) : len;
        }
        q += qn + 1;
    }
    if (close == NULL) {
        struct kb_origin at = { .path = path, .line = 1, .col = 1 };
        return KB_FAIL(err, KB_E_INPUT, &at, "front matter starts with '---' but never ends; "
                       "close it with a '---' line (or start the file with something else)");
    }
    struct fm_reader r = { .path = path, .first_line = 2, .err = err };
    if (!yaml_parser_initialize(&r.parser))   /* fails only when out of memory */
        return KB_FAIL(err, KB_E_INTERNAL, NULL, "cannot start libyaml: out of memory");
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)yaml,
                                 (size_t)(close - yaml));
    yaml_parser_set_encoding(&r.parser, YAML_UTF8_ENCODING);
    enum kb_code rc = read_block(&r, meta);
    yaml_parser_delete(&r.parser);
    for (size_t i = 0; i < r.n_anchors; i++) {
        free(r.anchors[i].name);
        json_decref(r.anchors[i].value);
    }
    free(r.anchors);
    if (rc != KB_OK)
        *body_off = 0;
    return rc;
}
