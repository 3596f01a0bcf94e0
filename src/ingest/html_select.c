/*
 * html_select.c - the `drop` selectors of HTML files: which elements the
 * HTML reader (html.c) leaves out with everything they hold.
 *
 * The grammar is the simple selector of CSS without attributes or
 * pseudo-classes: an optional tag name, then any number of `.class` and at
 * most one `#id`, in any order after the tag (`nav`, `.toc`, `#menu`,
 * `div.ad.wide`, `aside#links`).  Names are letters, digits, '-' and '_';
 * tags match case-insensitively (libxml2 gives them lower-case), classes
 * and ids exactly.  An element matches when it has the tag, every class
 * (among the words of its class attribute) and the id.
 */
#include "ingest_int.h"

#include <ctype.h>
#include <string.h>

static int is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_';
}

/* Split "tag.a.b#id" into parts in the arena (none when arena is NULL);
 * 0 when s is not that grammar. */
static int sel_parse(const char *s, struct kb_arena *arena, struct html_sel *out)
{
    memset(out, 0, sizeof *out);
    out->tag = out->id = "";
    size_t n_parts = 1;
    for (const char *p = s; *p; p++)
        n_parts += *p == '.' || *p == '#';
    if (arena)
        out->cls = kb_arena_alloc(arena, sizeof *out->cls * n_parts);
    const char *p = s;
    char kind = 't';
    int any = 0, has_id = 0;
    while (*p) {
        if (*p == '.' || *p == '#') {
            kind = *p++;
        } else if (p != s) {
            return 0;
        }
        const char *b = p;
        while (is_name_char(*p))
            p++;
        if (p == b || (*p && *p != '.' && *p != '#'))
            return 0;
        if (kind == '#' && has_id++)
            return 0;   /* two ids */
        any = 1;
        if (arena == NULL)
            continue;
        char *part = kb_arena_strndup(arena, b, (size_t)(p - b));
        if (kind == 't') {
            for (char *c = part; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            out->tag = part;
        } else if (kind == '#') {
            out->id = part;
        } else {
            out->cls[out->n_cls++] = part;
        }
    }
    return any;
}

int ingest_html_selector_valid(const char *sel)
{
    struct html_sel s;
    return sel != NULL && sel_parse(sel, NULL, &s);
}

void html_sel_list(const struct ingest_files_opts *o, struct kb_arena *arena,
                   const struct html_sel **out, int *n)
{
    static const char *const defaults[] = { "nav", "header", "footer" };
    const char *const *v = o->drop.v ? o->drop.v : defaults;
    int n_v = o->drop.v ? o->drop.n : 3;
    struct html_sel *s = kb_arena_alloc(arena, sizeof *s * (size_t)(n_v + 1));
    *n = 0;
    for (int i = 0; i < n_v; i++)
        if (sel_parse(v[i], arena, &s[*n]))   /* kbpipe validate refused the others */
            (*n)++;
    *out = s;
}

/* 1 when the whitespace-separated list `list` holds `word`. */
static int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        const char *b = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if ((size_t)(p - b) == n && strncmp(b, word, n) == 0)
            return 1;
    }
    return 0;
}

int html_sel_match(const struct html_sel *s, const char *tag, const char *id, const char *cls)
{
    if (s->tag[0] && strcmp(s->tag, tag) != 0)
        return 0;
    if (s->id[0] && (id == NULL || strcmp(id, s->id) != 0))
        return 0;
    for (int i = 0; i < s->n_cls; i++)
        if (cls == NULL || !has_word(cls, s->cls[i]))
            return 0;
    return 1;
}
