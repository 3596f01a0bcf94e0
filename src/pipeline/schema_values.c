/*
 * schema_values.c - the typed value readers of the schema pass: each takes
 * a node of the tree and the key path it sits at, remembers where the key
 * was written, checks the node's type and range, and on a mismatch adds a
 * problem that says what was expected and what was found:
 *
 *   docs.yaml:7:9: chunking.size must be an integer from 1 to 100000
 *       (e.g. size: 512), found 'big'
 *
 * An absent node (NULL) is no problem: the default stays.  schema.c walks
 * the sections with them.
 */
#include "pipeline_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* See pipeline_int.h. */
const char *schema_kind_name(const struct node *n)
{
    if (n->kind == NODE_MAP)
        return "a mapping";
    if (n->kind == NODE_SEQ)
        return "a list";
    return "a scalar";
}

/* See pipeline_int.h. */
const char *schema_found(struct schema_ctx *c, const struct node *n)
{
    if (n->kind != NODE_SCALAR)
        return schema_kind_name(n);
    if (n->is_plain && (n->value[0] == '\0' || !strcmp(n->value, "~") || !strcmp(n->value, "null")))
        return "nothing (null)";
    return kb_arena_printf(c->a, "'%.60s'", n->value);
}

/* See pipeline_int.h. */
void schema_remember(struct schema_ctx *c, const char *key, const struct node *n)
{
    pipeline_origin_add(c->p, key, &n->at);
}

/* See pipeline_int.h. */
const struct node *schema_lookup(const struct node *map, const char *key)
{
    for (int i = 0; map && map->kind == NODE_MAP && i < map->n; i++)
        if (strcmp(map->keys[i]->value, key) == 0)
            return map->vals[i];
    return NULL;
}

/* See pipeline_int.h. */
void schema_check_keys(struct schema_ctx *c, const struct node *map, const char *section,
                       const char *const *allowed)
{
    for (int i = 0; i < map->n; i++) {
        const char *k = map->keys[i]->value;
        if (kb_nearest(k, allowed, 0))
            continue;
        const char *near = kb_nearest(k, allowed, 2);
        struct kb_buf list;
        kb_buf_init(&list);
        for (const char *const *a = allowed; *a; a++)
            kb_buf_printf(&list, "%s%s", a == allowed ? "" : ", ", *a);
        char hint[128] = "";
        if (near)
            snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
        pipeline_diag_add(c->p, &map->keys[i]->at, "unknown key '%.60s' in %s%s; expected one "
                          "of: %s", k, section, hint, list.data);
        kb_buf_release(&list);
    }
}

/* See pipeline_int.h. */
const struct node *schema_want_map(struct schema_ctx *c, const struct node *n, const char *key,
                                   const char *example)
{
    if (n == NULL)
        return NULL;
    schema_remember(c, key, n);
    if (n->kind == NODE_MAP)
        return n;
    if (n->kind == NODE_SCALAR && n->is_plain && n->value[0] == '\0')
        return NULL;   /* "chunking:" with nothing under it: all defaults */
    pipeline_diag_add(c->p, &n->at, "%s must be a mapping (e.g. %s), found %s", key, example,
                      schema_found(c, n));
    return NULL;
}

/* See pipeline_int.h. */
int schema_is_null(const struct node *n)
{
    return n->kind == NODE_SCALAR && n->is_plain &&
           (n->value[0] == '\0' || !strcmp(n->value, "~") || !strcmp(n->value, "null"));
}

/* See pipeline_int.h. */
int schema_want_str(struct schema_ctx *c, const struct node *n, const char *key, const char **out)
{
    if (n == NULL)
        return 0;
    schema_remember(c, key, n);
    if (n->kind != NODE_SCALAR || schema_is_null(n) || n->value[0] == '\0') {
        if (!n->has_unset_var)   /* the unset variable is the problem, already said */
            pipeline_diag_add(c->p, &n->at, "%s must be a non-empty string, found %s", key,
                              schema_found(c, n));
        return 0;
    }
    *out = kb_arena_strdup(c->a, n->value);
    return 1;
}

/* See pipeline_int.h. */
int schema_want_long(struct schema_ctx *c, const struct node *n, const char *key, long lo, long hi,
                     const char *example, long *out)
{
    if (n == NULL)
        return 0;
    schema_remember(c, key, n);
    char *end = NULL;
    errno = 0;
    long v = n->kind == NODE_SCALAR ? strtol(n->value, &end, 10) : 0;
    if (n->kind != NODE_SCALAR || end == n->value || *end != '\0' || errno || v < lo || v > hi) {
        pipeline_diag_add(c->p, &n->at, "%s must be an integer from %ld to %ld (e.g. %s), "
                          "found %s", key, lo, hi, example, schema_found(c, n));
        return 0;
    }
    *out = v;
    return 1;
}

/* See pipeline_int.h. */
int schema_want_int(struct schema_ctx *c, const struct node *n, const char *key, long lo, long hi,
                    const char *example, int *out)
{
    long v;
    if (!schema_want_long(c, n, key, lo, hi, example, &v))
        return 0;
    *out = (int)v;
    return 1;
}

/* See pipeline_int.h. */
int schema_want_double(struct schema_ctx *c, const struct node *n, const char *key, double lo,
                       double hi, const char *example, double *out)
{
    if (n == NULL)
        return 0;
    schema_remember(c, key, n);
    char *end = NULL;
    double v = n->kind == NODE_SCALAR ? strtod(n->value, &end) : 0;
    if (n->kind != NODE_SCALAR || end == n->value || *end != '\0' || !isfinite(v) || v < lo ||
        v > hi) {
        pipeline_diag_add(c->p, &n->at, "%s must be a number from %g to %g (e.g. %s), found %s",
                          key, lo, hi, example, schema_found(c, n));
        return 0;
    }
    *out = v;
    return 1;
}

/* See pipeline_int.h. */
int schema_want_bool(struct schema_ctx *c, const struct node *n, const char *key, int *out)
{
    if (n == NULL)
        return 0;
    schema_remember(c, key, n);
    if (n->kind == NODE_SCALAR && n->is_plain) {
        static const char *const yes[] = { "true", "True", "TRUE", "yes", "on" };
        static const char *const no[] = { "false", "False", "FALSE", "no", "off" };
        for (size_t i = 0; i < 5; i++) {
            if (!strcmp(n->value, yes[i])) {
                *out = 1;
                return 1;
            }
            if (!strcmp(n->value, no[i])) {
                *out = 0;
                return 1;
            }
        }
    }
    pipeline_diag_add(c->p, &n->at, "%s must be true or false, found %s", key, schema_found(c, n));
    return 0;
}

/* See pipeline_int.h. */
int schema_want_enum(struct schema_ctx *c, const struct node *n, const char *key,
                     const char *const *names, int *out)
{
    if (n == NULL)
        return 0;
    schema_remember(c, key, n);
    if (n->kind == NODE_SCALAR)
        for (int i = 0; names[i]; i++)
            if (strcmp(n->value, names[i]) == 0) {
                *out = i;
                return 1;
            }
    struct kb_buf list;
    kb_buf_init(&list);
    for (int i = 0; names[i]; i++)
        kb_buf_printf(&list, "%s%s", i == 0 ? "" : names[i + 1] ? ", " : " or ", names[i]);
    pipeline_diag_add(c->p, &n->at, "%s must be %s, found %s", key, list.data, schema_found(c, n));
    kb_buf_release(&list);
    return 0;
}

/* See pipeline_int.h. */
void schema_want_strs(struct schema_ctx *c, const struct node *n, const char *key,
                      struct ingest_strs *out)
{
    if (n == NULL)
        return;
    schema_remember(c, key, n);
    if (n->kind == NODE_SCALAR && !schema_is_null(n)) {
        out->v = kb_arena_alloc(c->a, sizeof *out->v);
        struct kb_origin *at = kb_arena_alloc(c->a, sizeof *at);
        out->v[0] = kb_arena_strdup(c->a, n->value);
        *at = n->at;
        out->at = at;
        out->n = 1;
        return;
    }
    if (n->kind != NODE_SEQ) {
        pipeline_diag_add(c->p, &n->at, "%s must be a string or a list of strings (e.g. "
                          "[\"a\", \"b\"]), found %s", key, schema_found(c, n));
        return;
    }
    out->v = kb_arena_alloc(c->a, sizeof *out->v * (size_t)(n->n + 1));
    struct kb_origin *at = kb_arena_alloc(c->a, sizeof *at * (size_t)(n->n + 1));
    out->at = at;
    out->n = 0;
    for (int i = 0; i < n->n; i++) {
        const struct node *it = n->vals[i];
        char *ik = kb_arena_printf(c->a, "%s[%d]", key, i);
        schema_remember(c, ik, it);
        if (it->kind != NODE_SCALAR || schema_is_null(it) || it->value[0] == '\0') {
            pipeline_diag_add(c->p, &it->at, "%s must be a non-empty string, found %s", ik,
                              schema_found(c, it));
            continue;
        }
        at[out->n] = it->at;
        out->v[out->n++] = kb_arena_strdup(c->a, it->value);
    }
}

/* See pipeline_int.h. */
void schema_want_char(struct schema_ctx *c, const struct node *n, const char *key, char *out)
{
    const char *s = NULL;
    if (!schema_want_str(c, n, key, &s))
        return;
    if (!strcmp(s, "\\t") || !strcmp(s, "tab") || !strcmp(s, "\t"))
        *out = '\t';
    else if (strlen(s) == 1 && s[0] != '\n' && s[0] != '\r')
        *out = s[0];
    else
        pipeline_diag_add(c->p, &n->at, "%s must be one character (e.g. \",\" or \"\\t\"), "
                          "found '%.20s'", key, s);
}

/* See pipeline_int.h. */
void schema_want_size(struct schema_ctx *c, const struct node *n, const char *key, long *out)
{
    if (n == NULL)
        return;
    schema_remember(c, key, n);
    char *end = NULL;
    errno = 0;
    double v = n->kind == NODE_SCALAR ? strtod(n->value, &end) : -1;
    long mult = 0;
    if (end && end != n->value) {
        while (*end == ' ')
            end++;
        if (*end == '\0' || !strcasecmp(end, "B"))
            mult = 1;
        else if (!strcasecmp(end, "KB") || !strcasecmp(end, "K") || !strcasecmp(end, "KiB"))
            mult = 1024;
        else if (!strcasecmp(end, "MB") || !strcasecmp(end, "M") || !strcasecmp(end, "MiB"))
            mult = 1024L * 1024;
        else if (!strcasecmp(end, "GB") || !strcasecmp(end, "G") || !strcasecmp(end, "GiB"))
            mult = 1024L * 1024 * 1024;
    }
    if (mult == 0 || !(v >= 1) || v * (double)mult > 1e15) {
        pipeline_diag_add(c->p, &n->at, "%s must be a size in bytes, or with KB, MB or GB "
                          "(e.g. 8MB), found %s", key, schema_found(c, n));
        return;
    }
    *out = (long)(v * (double)mult);
}
