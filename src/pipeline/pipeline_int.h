/*
 * pipeline_int.h - shared by the .c files of src/pipeline only: the YAML
 * node tree (yaml.c), the problem list, and the schema pass (schema.c).
 *
 * Reading a pipeline is three passes, each collecting problems instead of
 * stopping at the first, like a compiler: yaml.c builds a tree of scalars,
 * mappings and sequences with the line:column of every node (interpolating
 * ${VAR} in scalars); schema.c walks it against the expected shape into
 * struct kb_pipeline; the meaning checks (schema.c) and the disk checks
 * (pipeline.c) add what a valid shape can still get wrong.
 */
#ifndef KB_PIPELINE_INT_H
#define KB_PIPELINE_INT_H

#include "pipeline.h"

enum node_kind { NODE_SCALAR, NODE_MAP, NODE_SEQ };

struct node {
    enum node_kind kind;
    struct kb_origin at;           /* where the node starts */
    const char *value;             /* scalar: interpolated text */
    int is_plain;                  /* scalar: unquoted (so null/true/123 are typed) */
    int has_unset_var;             /* scalar: interpolation already reported a problem */
    struct node **keys, **vals;    /* map: n pairs (keys are scalars); seq: vals */
    int n, cap;
};

struct diag {
    long line, col;
    long seq;                      /* order found, to sort stably */
    char origin[256];
    char msg[512];
};

struct origin_entry {
    const char *key;
    struct kb_origin at;
};

struct pipeline_priv {
    struct kb_arena *arena;        /* every string and array of the pipeline */
    struct diag *diags;
    int n_diags, cap_diags;
    struct origin_entry *origins;
    int n_origins, cap_origins;
    int is_sorted;
};

/* Add a problem at `at` (path:line:col); the message has no trailing newline. */
void pipeline_diag_add(struct kb_pipeline *p, const struct kb_origin *at, const char *fmt, ...)
    KB_PRINTF(3, 4);

/* Remember where key path `key` was written. */
void pipeline_origin_add(struct kb_pipeline *p, const char *key, const struct kb_origin *at);

/*
 * Parse the YAML file at p->path into a tree in `arena`: *root is NULL
 * when the file has no document or a syntax error (added to p's problems).
 * Unset ${VAR} without a default are problems too (the scalar keeps "").
 * KB_E_IO when the file cannot be opened.
 */
enum kb_code pipeline_yaml_read(struct kb_pipeline *p, struct kb_arena *arena,
                                struct node **root, struct kb_err *err);

/*
 * Interpolate ${VAR} and ${VAR:-default} in s ("$$" is a literal '$').
 * Returns the new text in arena; an unset variable without default adds a
 * problem at `at` naming it and interpolates as "".
 */
const char *pipeline_interpolate(struct kb_pipeline *p, struct kb_arena *arena, const char *s,
                                 const struct kb_origin *at);

/* Walk the tree into p (defaults, types, unknown and missing keys), then the meaning checks. */
void pipeline_schema_apply(struct kb_pipeline *p, const struct node *root);

#endif /* KB_PIPELINE_INT_H */
