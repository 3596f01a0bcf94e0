/*
 * yaml.c - a pipeline file into a node tree, with libyaml's event API.
 *
 * Every node keeps its line and column (libyaml's marks are 0-based; ours
 * are 1-based, as compilers print them).  Scalars are interpolated here:
 * ${VAR}, ${VAR:-default} (default also when VAR is empty, as in the
 * shell), and $$ for a literal '$'.  Duplicate keys, anchors and aliases
 * are problems; a syntax error stops the read, since what follows it
 * cannot be trusted.
 */
#include "pipeline_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

const char *pipeline_interpolate(struct kb_pipeline *p, struct kb_arena *arena, const char *s,
                                 const struct kb_origin *at)
{
    if (strchr(s, '$') == NULL)
        return s;
    struct kb_buf b;
    kb_buf_init(&b);
    for (const char *c = s; *c;) {
        if (c[0] == '$' && c[1] == '$') {
            kb_buf_putc(&b, '$');
            c += 2;
            continue;
        }
        if (c[0] != '$' || c[1] != '{') {
            kb_buf_putc(&b, *c++);
            continue;
        }
        const char *close = strchr(c + 2, '}');
        if (close == NULL) {
            pipeline_diag_add(p, at, "'${' without a closing '}' in '%.80s'; write ${VAR}, "
                              "${VAR:-default}, or $$ for a literal '$'", s);
            kb_buf_puts(&b, c);
            break;
        }
        const char *name = c + 2, *dflt = NULL;
        const char *sep = strstr(name, ":-");
        size_t name_len = (size_t)(close - name);
        if (sep && sep < close) {
            name_len = (size_t)(sep - name);
            dflt = sep + 2;
        }
        int ok = name_len > 0;
        for (size_t i = 0; i < name_len; i++) {
            char ch = name[i];
            ok &= (ch == '_' || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                   (i > 0 && ch >= '0' && ch <= '9'));
        }
        if (!ok) {
            pipeline_diag_add(p, at, "'%.*s' is not a variable name; use letters, digits "
                              "and '_' (${VAR} or ${VAR:-default})",
                              (int)(name_len > 80 ? 80 : name_len), name);
            c = close + 1;
            continue;
        }
        char *var = kb_xstrndup(name, name_len);
        const char *v = getenv(var);
        if (v != NULL && (v[0] != '\0' || dflt == NULL))
            kb_buf_puts(&b, v);
        else if (dflt != NULL)
            kb_buf_append(&b, dflt, (size_t)(close - dflt));
        else
            pipeline_diag_add(p, at, "environment variable %s is not set; export it or "
                              "write ${%s:-default}", var, var);
        free(var);
        c = close + 1;
    }
    const char *r = kb_arena_strndup(arena, b.data ? b.data : "", b.len);
    kb_buf_release(&b);
    return r;
}

static struct node *node_new(struct kb_arena *arena, enum node_kind kind, const yaml_mark_t *m,
                             const char *path)
{
    struct node *n = kb_arena_calloc(arena, sizeof *n);
    n->kind = kind;
    n->at.path = path;
    n->at.line = (long)m->line + 1;
    n->at.col = (long)m->column + 1;
    return n;
}

static void node_push(struct kb_arena *arena, struct node *parent, struct node *key,
                      struct node *val)
{
    if (parent->n == parent->cap) {
        int cap = parent->cap ? parent->cap * 2 : 8;
        struct node **k = kb_arena_alloc(arena, sizeof *k * (size_t)cap);
        struct node **v = kb_arena_alloc(arena, sizeof *v * (size_t)cap);
        if (parent->n) {
            memcpy(k, parent->keys, sizeof *k * (size_t)parent->n);
            memcpy(v, parent->vals, sizeof *v * (size_t)parent->n);
        }
        parent->keys = k;
        parent->vals = v;
        parent->cap = cap;
    }
    parent->keys[parent->n] = key;
    parent->vals[parent->n] = val;
    parent->n++;
}

/* Deeper than any pipeline nests (sources[0].columns.metadata is 4): read_node
 * recurses once per level, and "[[[[..." 200,000 deep overflowed the stack
 * (tests/fuzz/regress/fuzz_pipeline/deep-nesting.yaml). */
#define MAX_DEPTH 64

struct reader {
    struct kb_pipeline *p;
    struct kb_arena *arena;
    yaml_parser_t parser;
    int failed;
    int depth;             /* of the mapping or sequence being read */
};

static int next_event(struct reader *r, yaml_event_t *ev)
{
    if (yaml_parser_parse(&r->parser, ev))
        return 1;
    struct kb_origin at = { .path = r->p->path, .line = (long)r->parser.problem_mark.line + 1,
                            .col = (long)r->parser.problem_mark.column + 1 };
    if (r->parser.context)
        pipeline_diag_add(r->p, &at, "YAML syntax: %s %s (line %ld); check the indentation "
                          "and quoting", r->parser.problem, r->parser.context,
                          (long)r->parser.context_mark.line + 1);
    else
        pipeline_diag_add(r->p, &at, "YAML syntax: %s; check the indentation and quoting",
                          r->parser.problem ? r->parser.problem : "unreadable");
    r->failed = 1;
    return 0;
}

/* Read the node whose first event is *ev (consumed); NULL after a syntax error. */
static struct node *read_node(struct reader *r, yaml_event_t *ev)
{
    const char *path = r->p->path;
    struct node *n = NULL;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n = node_new(r->arena, NODE_SCALAR, &ev->start_mark, path);
        n->is_plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        int before = r->p->n_diags;
        n->value = pipeline_interpolate(r->p, r->arena,
                                        kb_arena_strndup(r->arena, (char *)ev->data.scalar.value,
                                                         ev->data.scalar.length),
                                        &n->at);
        n->has_unset_var = r->p->n_diags != before;
        if (ev->data.scalar.anchor)
            pipeline_diag_add(r->p, &n->at, "anchors (&name) are not supported in pipelines; "
                              "write the value out");
        yaml_event_delete(ev);
        return n;
    case YAML_ALIAS_EVENT:
        n = node_new(r->arena, NODE_SCALAR, &ev->start_mark, path);
        n->value = "";
        pipeline_diag_add(r->p, &n->at, "aliases (*name) are not supported in pipelines; "
                          "write the value out");
        yaml_event_delete(ev);
        return n;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        n = node_new(r->arena, is_map ? NODE_MAP : NODE_SEQ, &ev->start_mark, path);
        yaml_event_delete(ev);
        if (r->depth >= MAX_DEPTH) {
            pipeline_diag_add(r->p, &n->at, "lists and mappings nested more than %d deep; "
                              "a pipeline nests a few levels (see docs/pipelines.md)",
                              MAX_DEPTH);
            r->failed = 1;
            return NULL;
        }
        r->depth++;
        for (;;) {
            yaml_event_t e;
            if (!next_event(r, &e))
                return NULL;
            if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&e);
                r->depth--;
                return n;
            }
            struct node *key = NULL;
            if (is_map) {
                key = read_node(r, &e);
                if (key == NULL)
                    return NULL;
                if (!next_event(r, &e))
                    return NULL;
            }
            struct node *val = read_node(r, &e);
            if (val == NULL)
                return NULL;
            if (is_map) {
                if (key->kind != NODE_SCALAR) {
                    pipeline_diag_add(r->p, &key->at, "a key must be a plain name, not a "
                                      "%s", key->kind == NODE_MAP ? "mapping" : "list");
                    continue;
                }
                int dup = 0;
                for (int i = 0; i < n->n && !dup; i++) {
                    if (strcmp(n->keys[i]->value, key->value) == 0) {
                        pipeline_diag_add(r->p, &key->at, "key '%.80s' appears twice (first "
                                          "at line %ld); remove one", key->value,
                                          n->keys[i]->at.line);
                        dup = 1;
                    }
                }
                if (dup)
                    continue;
            }
            node_push(r->arena, n, key, val);
        }
    }
    default:
        yaml_event_delete(ev);
        return NULL;
    }
}

enum kb_code pipeline_yaml_read(struct kb_pipeline *p, struct kb_arena *arena,
                                struct node **root, struct kb_err *err)
{
    *root = NULL;
    FILE *f = fopen(p->path, "rb");
    if (f == NULL) {
        struct kb_origin at = { .path = p->path };
        /* the command line names a pipeline that is not there: a usage problem,
         * exit 2 in validate, run and plan alike (docs/operations.md) */
        return KB_FAIL(err, KB_E_CONFIG, &at, "cannot read the pipeline: %s; check the path",
                       strerror(errno));
    }
    struct reader r = { .p = p, .arena = arena };
    yaml_parser_initialize(&r.parser);
    yaml_parser_set_input_file(&r.parser, f);
    yaml_event_t ev;
    /* stream start, document start (or stream end: an empty file) */
    while (next_event(&r, &ev)) {
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        if (t == YAML_STREAM_END_EVENT || t == YAML_DOCUMENT_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        *root = read_node(&r, &ev);
        if (r.failed)
            *root = NULL;
        else if (next_event(&r, &ev)) {
            /* document end; a second document is a mistake */
            yaml_event_delete(&ev);
            if (next_event(&r, &ev)) {
                if (ev.type == YAML_DOCUMENT_START_EVENT) {
                    struct kb_origin at = { .path = p->path, .line = (long)ev.start_mark.line + 1,
                                            .col = (long)ev.start_mark.column + 1 };
                    pipeline_diag_add(p, &at, "a second YAML document ('---'); a pipeline "
                                      "file holds one");
                }
                yaml_event_delete(&ev);
            }
        }
        break;
    }
    yaml_parser_delete(&r.parser);
    fclose(f);
    return KB_OK;
}
