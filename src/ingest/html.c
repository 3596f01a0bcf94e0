/*
 * html.c - HTML files as Markdown-shaped text, through libxml2's HTML
 * parser (never regular expressions), so the Markdown splitter gives HTML
 * chunks heading paths as it does for .md files.
 *
 *   HTML                          text
 *   <h1>..<h6>                    "# " .. "###### " line, blank lines around
 *   <pre> (class language-X)      ``` fence (info string X), the text as is
 *   <code> outside <pre>          `code`
 *   <ul>/<ol> <li>                "- " / "N. " items, two spaces per level
 *   <table> <tr> <th>/<td>        "| a | b |" rows; "| --- |" after a <th> row
 *   <p>, <div>, <section>, ...    paragraphs: a blank line between blocks
 *   <br>                          a line break
 *   <a>, <em>, <span>, ...        their text, whitespace collapsed
 *   dropped with their content    script style noscript template svg iframe
 *                                 object canvas, and the source's `drop`
 *                                 selectors (html_select.c; default nav
 *                                 header footer)
 *
 * A text line that would read as Markdown syntax ('#', '```', '~~~', a
 * setext '=' underline) gets a backslash in front, so page text never
 * becomes a heading or a fence.  The walk is iterative (no recursion on
 * the document's depth); libxml2 converts the document's character set
 * (BOM, <meta charset>, http-equiv Content-Type) to UTF-8.  The parser's
 * complaints about HTML5 element names are not defects; any other error
 * means libxml2 recovered from malformed HTML: the file loads and a warning
 * names its first problem.
 *
 * libxml2 is opened with dlopen at the first HTML file, not linked, as
 * poppler-glib is (pdf.c): with ICU, which it brings, its loading cost
 * every kbpipe process about 5 ms of CPU at start, HTML or not
 * (docs/loading.md, "What kbpipe controls", (4)).  Its headers still give
 * the types; the calls go through `lx`, filled once.
 */
#include "ingest_int.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

/* The libxml2 calls html.c makes, resolved from the library. */
static struct {
    void (*init_parser)(void);
    htmlParserCtxtPtr (*new_ctxt)(void);
    void (*free_ctxt)(htmlParserCtxtPtr ctxt);
    htmlDocPtr (*ctxt_read_memory)(htmlParserCtxtPtr ctxt, const char *buffer, int size,
                                   const char *url, const char *encoding, int options);
    void (*set_error_fn)(void *ctx, xmlStructuredErrorFunc handler);
    void (*free_doc)(xmlDocPtr doc);
    xmlNodePtr (*root_element)(const xmlDoc *doc);
    xmlChar *(*get_prop)(const xmlNode *node, const xmlChar *name);
    xmlChar *(*node_content)(const xmlNode *node);
    xmlChar *(*strndup)(const xmlChar *s, int len);
    xmlFreeFunc free;   /* the value of libxml2's variable xmlFree */
} lx;
static int lx_is_loaded;
static char lx_why[300];
static pthread_once_t lx_once = PTHREAD_ONCE_INIT;

/* The shared object's names: Debian's soname first, then the dev link. */
static const char *const LX_LIBS[] = { "libxml2.so.2", "libxml2.so" };

static void lx_load(void)
{
    void *h = kb_dl_open(LX_LIBS, sizeof LX_LIBS / sizeof LX_LIBS[0], lx_why, sizeof lx_why);
    if (h == NULL)
        return;
    xmlFreeFunc *free_var = NULL;
#define LX_SYM(field, name) \
    kb_dl_sym(h, LX_LIBS[0], name, &lx.field, sizeof lx.field, lx_why, sizeof lx_why)
    lx_is_loaded = LX_SYM(init_parser, "xmlInitParser") &&
                   LX_SYM(new_ctxt, "htmlNewParserCtxt") &&
                   LX_SYM(free_ctxt, "htmlFreeParserCtxt") &&
                   LX_SYM(ctxt_read_memory, "htmlCtxtReadMemory") &&
                   LX_SYM(set_error_fn, "xmlSetStructuredErrorFunc") &&
                   LX_SYM(free_doc, "xmlFreeDoc") &&
                   LX_SYM(root_element, "xmlDocGetRootElement") &&
                   LX_SYM(get_prop, "xmlGetProp") &&
                   LX_SYM(node_content, "xmlNodeGetContent") &&
                   LX_SYM(strndup, "xmlStrndup") &&
                   kb_dl_sym(h, LX_LIBS[0], "xmlFree", &free_var, sizeof free_var, lx_why,
                             sizeof lx_why);   /* a variable */
#undef LX_SYM
    if (lx_is_loaded) {
        lx.init_parser();   /* once per process */
        lx.free = *free_var;
    }
}

#define HTML_MAX_LIST 32   /* list levels numbered apart; deeper ones share the last */

struct md {
    struct kb_buf out;
    int pending_space;            /* whitespace seen since the last byte written */
    int is_plain;                 /* 1: no Markdown escapes (a title, not a line) */
    int in_heading, in_cell;
    size_t heading_mark;          /* out.len right after the "## " marker */
    int heading_level;
    int list_depth;
    int ol_next[HTML_MAX_LIST];   /* next number per level; 0 = unordered */
    int row_cells, row_is_header, n_rows;
    const struct html_sel *drop;
    int n_drop;
};

/* What libxml2 said while parsing: the errors that mean malformed HTML. */
struct parse_errors {
    int n;
    int first_line;
    char first[160];
};

static void on_error(void *ctx, xmlErrorPtr e)
{
    struct parse_errors *pe = ctx;
    if (e == NULL || e->code == XML_HTML_UNKNOWN_TAG)   /* <nav>, <main>: HTML5, fine */
        return;
    /* "</p>" inside a <script> string: libxml2 follows HTML 4 there, HTML5
     * (and every browser) ends a script at "</script" only */
    if (e->code == XML_ERR_TAG_NAME_MISMATCH && e->message && strstr(e->message, "embeds close tag"))
        return;
    if (pe->n++ == 0) {
        pe->first_line = e->line;
        snprintf(pe->first, sizeof pe->first, "%s", e->message ? e->message : "?");
        size_t n = strlen(pe->first);
        while (n && isspace((unsigned char)pe->first[n - 1]))
            pe->first[--n] = '\0';
    }
}

static int is_one_of(const char *name, const char *const *names)
{
    for (; *names; names++)
        if (strcmp(name, *names) == 0)
            return 1;
    return 0;
}

static int is_dropped(const struct md *m, xmlNodePtr el)
{
    static const char *const never_text[] = { "script", "style", "noscript", "template", "svg",
                                              "iframe", "object", "canvas", "head", NULL };
    if (is_one_of((const char *)el->name, never_text))
        return 1;
    if (m->n_drop == 0)
        return 0;
    xmlChar *id = lx.get_prop(el, (const xmlChar *)"id");
    xmlChar *cls = lx.get_prop(el, (const xmlChar *)"class");
    int hit = 0;
    for (int i = 0; i < m->n_drop && !hit; i++)
        hit = html_sel_match(&m->drop[i], (const char *)el->name, (const char *)id,
                             (const char *)cls);
    lx.free(id);
    lx.free(cls);
    return hit;
}

/* ---- the writer ----------------------------------------------------------- */

static int at_line_start(const struct md *m)
{
    return m->out.len == 0 || m->out.data[m->out.len - 1] == '\n';
}

/* 1 after a marker ("## ", "- ", "| "): the space is there already. */
static int ends_with_space(const struct md *m)
{
    return m->out.len > 0 && m->out.data[m->out.len - 1] == ' ';
}

/* End the current line and make sure `n` newlines (1: a line break, 2: a
 * blank line) end the text; inside a heading or a table cell, a space. */
static void block_break(struct md *m, int n)
{
    if (m->in_heading || m->in_cell) {
        m->pending_space = 1;
        return;
    }
    m->pending_space = 0;
    while (m->out.len && m->out.data[m->out.len - 1] == ' ')
        m->out.data[--m->out.len] = '\0';
    if (m->out.len == 0)
        return;
    if (m->list_depth > 0 && n > 1)
        n = 1;   /* blocks inside a list item stay on its lines */
    int have = 0;
    while (have < n && (size_t)have < m->out.len && m->out.data[m->out.len - 1 - have] == '\n')
        have++;
    for (; have < n; have++)
        kb_buf_putc(&m->out, '\n');
}

/* Markup of ours (list markers, fences, backticks): never escaped. */
static void put_markup(struct md *m, const char *s)
{
    if (m->pending_space && !at_line_start(m) && !ends_with_space(m))
        kb_buf_putc(&m->out, ' ');
    m->pending_space = 0;
    kb_buf_puts(&m->out, s);
}

/* 1 when a line starting at s would read as Markdown syntax of its own. */
static int needs_escape(const char *s)
{
    if (s[0] == '#' || !strncmp(s, "```", 3) || !strncmp(s, "~~~", 3))
        return 1;
    if (s[0] != '=')
        return 0;
    while (*s == '=')
        s++;
    return *s == '\0' || isspace((unsigned char)*s);
}

/* Page text: whitespace runs collapsed to one space, control bytes dropped. */
static void put_text(struct md *m, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
            m->pending_space = 1;
            continue;
        }
        if (c < 0x20 || c == 0x7f)
            continue;
        if (at_line_start(m)) {
            if (needs_escape(s) && !m->is_plain)
                kb_buf_putc(&m->out, '\\');
        } else if (m->pending_space && !ends_with_space(m)) {
            kb_buf_putc(&m->out, ' ');
        }
        m->pending_space = 0;
        if (c == '|' && m->in_cell)
            kb_buf_putc(&m->out, '\\');
        kb_buf_putc(&m->out, (char)c);
    }
}

/* "X" of a class "language-X" or "lang-X" on el, or NULL (libxml2 memory). */
static xmlChar *code_language(xmlNodePtr el)
{
    xmlChar *cls = el ? lx.get_prop(el, (const xmlChar *)"class") : NULL;
    if (cls == NULL)
        return NULL;
    const char *p = (const char *)cls, *lang = NULL;
    while (*p && lang == NULL) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!strncmp(p, "language-", 9))
            lang = p + 9;
        else if (!strncmp(p, "lang-", 5))
            lang = p + 5;
        while (*p && !isspace((unsigned char)*p))
            p++;
    }
    xmlChar *r = NULL;
    if (lang) {
        size_t n = 0;
        while (isalnum((unsigned char)lang[n]) || (lang[n] && strchr("-_+#", lang[n])))
            n++;
        r = n ? lx.strndup((const xmlChar *)lang, (int)n) : NULL;
    }
    lx.free(cls);
    return r;
}

static xmlNodePtr first_element_child(xmlNodePtr n)
{
    for (xmlNodePtr c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            return c;
    return NULL;
}

/* <pre>: a fence longer than any backtick run in the text, the text as is. */
static void put_pre(struct md *m, xmlNodePtr pre)
{
    xmlChar *content = lx.node_content(pre);
    const char *t = content ? (const char *)content : "";
    if (m->in_heading || m->in_cell) {
        put_text(m, t);
        lx.free(content);
        return;
    }
    int run = 0, longest = 0;
    for (const char *p = t; *p; p++) {
        run = *p == '`' ? run + 1 : 0;
        longest = run > longest ? run : longest;
    }
    int fence = longest >= 3 ? longest + 1 : 3;
    xmlChar *lang = code_language(pre);
    if (lang == NULL) {
        xmlNodePtr c = first_element_child(pre);
        if (c && strcmp((const char *)c->name, "code") == 0)
            lang = code_language(c);
    }
    block_break(m, 2);
    for (int i = 0; i < fence; i++)
        kb_buf_putc(&m->out, '`');
    kb_buf_printf(&m->out, "%s\n", lang ? (const char *)lang : "");
    if (*t == '\n')
        t++;   /* the newline right after <pre> is not content (HTML's rule) */
    size_t before = m->out.len;
    ingest_text_append_clean(&m->out, t, strlen(t));
    if (m->out.len > before && m->out.data[m->out.len - 1] != '\n')
        kb_buf_putc(&m->out, '\n');
    for (int i = 0; i < fence; i++)
        kb_buf_putc(&m->out, '`');
    kb_buf_putc(&m->out, '\n');
    lx.free(lang);
    lx.free(content);
    block_break(m, 2);
}

/* <code> outside <pre>: `text`, whitespace collapsed. */
static void put_code(struct md *m, xmlNodePtr code)
{
    xmlChar *content = lx.node_content(code);
    const char *t = content ? (const char *)content : "";
    int is_blank = 1;
    for (const char *p = t; *p && is_blank; p++)
        is_blank = isspace((unsigned char)*p) != 0;
    if (!is_blank) {
        const char *tick = strchr(t, '`') ? "``" : "`";
        put_markup(m, tick);
        m->pending_space = 0;
        put_text(m, t);
        m->pending_space = 0;
        kb_buf_puts(&m->out, tick);
    }
    lx.free(content);
}

static int heading_level(const char *name)
{
    if (name[0] == 'h' && name[1] >= '1' && name[1] <= '6' && name[2] == '\0')
        return name[1] - '0';
    return 0;
}

/* Elements that are paragraphs of their own: a blank line before and after. */
static const char *const blocks[] = { "p", "div", "section", "article", "main", "aside",
                                      "blockquote", "address", "figure", "figcaption", "form",
                                      "fieldset", "details", "summary", "dl", "center", "hr",
                                      "body", "html", NULL };

/* An element is entered: write what opens it; 1 to walk its children. */
static int enter(struct md *m, xmlNodePtr el)
{
    const char *name = (const char *)el->name;
    int h;
    if (is_dropped(m, el))
        return 0;
    if (strcmp(name, "pre") == 0 || strcmp(name, "xmp") == 0 || strcmp(name, "listing") == 0) {
        put_pre(m, el);
        return 0;
    }
    if (strcmp(name, "code") == 0) {
        put_code(m, el);
        return 0;
    }
    if ((h = heading_level(name)) > 0 && !m->in_heading && !m->in_cell) {
        block_break(m, 2);
        for (int i = 0; i < h; i++)
            kb_buf_putc(&m->out, '#');
        kb_buf_putc(&m->out, ' ');
        m->heading_mark = m->out.len;
        m->heading_level = h;
        m->in_heading = 1;
    } else if (strcmp(name, "ul") == 0 || strcmp(name, "ol") == 0 || strcmp(name, "menu") == 0) {
        block_break(m, 2);
        int level = m->list_depth < HTML_MAX_LIST ? m->list_depth : HTML_MAX_LIST - 1;
        int start = 1;
        xmlChar *s = name[0] == 'o' ? lx.get_prop(el, (const xmlChar *)"start") : NULL;
        if (s) {
            long v = strtol((const char *)s, NULL, 10);
            start = v > 0 && v < 1000000 ? (int)v : 1;
            lx.free(s);
        }
        m->ol_next[level] = name[0] == 'o' ? start : 0;
        m->list_depth++;
    } else if (strcmp(name, "li") == 0) {
        block_break(m, 1);
        if (!m->in_heading && !m->in_cell) {
            int level = m->list_depth > 0 ? m->list_depth - 1 : 0;
            if (level >= HTML_MAX_LIST)
                level = HTML_MAX_LIST - 1;
            for (int i = 0; i < level; i++)
                kb_buf_puts(&m->out, "  ");
            if (m->list_depth > 0 && m->ol_next[level] > 0)
                kb_buf_printf(&m->out, "%d. ", m->ol_next[level]++);
            else
                kb_buf_puts(&m->out, "- ");
        }
    } else if (strcmp(name, "table") == 0) {
        block_break(m, 2);
        m->n_rows = 0;
    } else if (strcmp(name, "tr") == 0) {
        block_break(m, 1);
        m->row_cells = 0;
        m->row_is_header = 1;
    } else if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0) {
        if (!m->in_cell) {
            m->pending_space = 0;
            kb_buf_puts(&m->out, m->row_cells == 0 ? "| " : " | ");
            m->row_cells++;
            m->row_is_header &= name[1] == 'h';
        }
        m->in_cell++;
    } else if (strcmp(name, "br") == 0) {
        block_break(m, 1);
    } else if (strcmp(name, "dt") == 0 || strcmp(name, "dd") == 0) {
        block_break(m, 1);
    } else if (is_one_of(name, blocks)) {
        block_break(m, 2);
    }
    return 1;
}

/* An element is left (after its children): write what closes it. */
static void leave(struct md *m, xmlNodePtr el)
{
    const char *name = (const char *)el->name;
    if (heading_level(name) > 0 && m->in_heading && heading_level(name) == m->heading_level) {
        m->in_heading = 0;
        m->pending_space = 0;
        if (m->out.len == m->heading_mark) {   /* an empty heading: no marker either */
            m->out.len -= (size_t)m->heading_level + 1;
            m->out.data[m->out.len] = '\0';
        }
        block_break(m, 2);
    } else if (strcmp(name, "ul") == 0 || strcmp(name, "ol") == 0 || strcmp(name, "menu") == 0) {
        if (m->list_depth > 0)
            m->list_depth--;
        block_break(m, 2);
    } else if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0) {
        if (m->in_cell > 0)
            m->in_cell--;
    } else if (strcmp(name, "tr") == 0 && !m->in_cell) {
        if (m->row_cells > 0) {
            kb_buf_puts(&m->out, " |");
            if (m->n_rows == 0 && m->row_is_header) {
                kb_buf_puts(&m->out, "\n|");
                for (int i = 0; i < m->row_cells; i++)
                    kb_buf_puts(&m->out, " --- |");
            }
            m->n_rows++;
        }
        block_break(m, 1);
    } else if (strcmp(name, "table") == 0 || strcmp(name, "li") == 0 ||
               strcmp(name, "dt") == 0 || strcmp(name, "dd") == 0) {
        block_break(m, strcmp(name, "table") == 0 ? 2 : 1);
    } else if (is_one_of(name, blocks)) {
        block_break(m, 2);
    }
}

/* Walk the tree under root in document order, without recursion. */
static void walk(struct md *m, xmlNodePtr root)
{
    xmlNodePtr cur = root;
    for (;;) {
        int down = 0;
        if (cur->type == XML_ELEMENT_NODE)
            down = enter(m, cur);
        else if (cur->type == XML_TEXT_NODE || cur->type == XML_CDATA_SECTION_NODE)
            put_text(m, cur->content ? (const char *)cur->content : "");
        if (down && cur->children) {
            cur = cur->children;
            continue;
        }
        for (;;) {
            if (cur->type == XML_ELEMENT_NODE && down)
                leave(m, cur);
            if (cur == root)
                return;
            if (cur->next) {
                cur = cur->next;
                break;
            }
            cur = cur->parent;
            down = 1;   /* a parent was entered, or we would not be under it */
        }
    }
}

/* The first element named `name` under n (document order), or NULL. */
static xmlNodePtr find_element(xmlNodePtr n, const char *name)
{
    xmlNodePtr cur = n;
    while (cur) {
        if (cur->type == XML_ELEMENT_NODE && strcmp((const char *)cur->name, name) == 0)
            return cur;
        if (cur->children && cur->type == XML_ELEMENT_NODE) {
            cur = cur->children;
            continue;
        }
        while (cur && cur != n && cur->next == NULL)
            cur = cur->parent;
        if (cur == NULL || cur == n)
            return NULL;
        cur = cur->next;
    }
    return NULL;
}

/* <title>'s text, whitespace collapsed, in the arena; NULL when none or blank. */
static const char *doc_title(xmlNodePtr root, struct kb_arena *arena)
{
    xmlNodePtr t = find_element(root, "title");
    xmlChar *content = t ? lx.node_content(t) : NULL;
    if (content == NULL)
        return NULL;
    struct md m = { .is_plain = 1 };
    kb_buf_init(&m.out);
    put_text(&m, (const char *)content);
    lx.free(content);
    struct kb_buf clean;
    kb_buf_init(&clean);
    ingest_text_append_clean(&clean, m.out.data ? m.out.data : "", m.out.len);
    const char *r = clean.len ? kb_arena_strndup(arena, clean.data, clean.len) : NULL;
    kb_buf_release(&clean);
    kb_buf_release(&m.out);
    return r;
}

static int has_non_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 1;
    return 0;
}

/* The document libxml2 recovers from raw (NULL when none); *pe its errors. */
static htmlDocPtr parse(const char *raw, size_t len, const char *path, const char *encoding,
                        struct parse_errors *pe)
{
    memset(pe, 0, sizeof *pe);
    htmlParserCtxtPtr ctxt = lx.new_ctxt();
    if (ctxt == NULL)
        return NULL;
    lx.set_error_fn(pe, on_error);
    htmlDocPtr doc = lx.ctxt_read_memory(ctxt, raw, (int)len, path, encoding,
                                        HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
                                        HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
    lx.set_error_fn(NULL, NULL);
    lx.free_ctxt(ctxt);
    return doc;
}

enum kb_code ingest_html_convert(struct ingest_reader *rd, const char *raw, size_t len,
                                 const struct kb_origin *at, struct kb_arena *arena,
                                 struct ingest_converted *out, struct kb_err *err)
{
    const struct ingest_files_opts *o = &rd->src->u.files;
    memset(out, 0, sizeof *out);
    if (len > INT_MAX)
        return KB_FAIL(err, KB_E_INPUT, at, "the HTML file is %zu bytes, more than libxml2 "
                       "parses at once; split it or exclude it", len);
    if (len == 0) {
        out->text = kb_arena_strdup(arena, "");
        return KB_OK;
    }
    pthread_once(&lx_once, lx_load);
    if (!lx_is_loaded)
        return KB_FAIL(err, KB_E_CONFIG, at, "reading HTML files needs libxml2, which cannot "
                       "be loaded (%.200s); install it (Debian: apt-get install libxml2) or "
                       "exclude the HTML files", lx_why);
    struct parse_errors pe;
    htmlDocPtr doc = parse(raw, len, at->path, NULL, &pe);
    if (doc && doc->encoding == NULL && has_non_ascii(raw, len) &&
        kb_utf8_valid_prefix(raw, len) == len) {
        /* no declared charset: libxml2 2.9 then reads Latin-1, but bytes
         * that are valid UTF-8 are UTF-8 (as browsers guess too) */
        lx.free_doc(doc);
        doc = parse(raw, len, at->path, "UTF-8", &pe);
    }
    xmlNodePtr root = doc ? lx.root_element(doc) : NULL;
    if (root == NULL) {
        lx.free_doc(doc);
        if (pe.n == 0) {   /* nothing but comments or whitespace */
            out->text = kb_arena_strdup(arena, "");
            return KB_OK;
        }
        return KB_FAIL(err, KB_E_INPUT, at, "libxml2 found no HTML to recover (line %d: %s); "
                       "fix the file or exclude it", pe.first_line, pe.first);
    }
    struct md m = { 0 };
    kb_buf_init(&m.out);
    html_sel_list(o, arena, &m.drop, &m.n_drop);
    xmlNodePtr body = find_element(root, "body");
    walk(&m, body ? body : root);
    while (m.out.len && (m.out.data[m.out.len - 1] == '\n' || m.out.data[m.out.len - 1] == ' '))
        m.out.data[--m.out.len] = '\0';
    if (m.out.len)
        kb_buf_putc(&m.out, '\n');
    out->title = doc_title(root, arena);
    out->meta = json_object();
    if (doc->encoding)
        json_object_set_new(out->meta, "charset", json_string((const char *)doc->encoding));
    lx.free_doc(doc);
    if (pe.n > 0) {
        json_object_set_new(out->meta, "html_errors", json_integer(pe.n));
        log_warn("%s:%d: malformed HTML (%d problem%s, the first: %s); loaded as far as "
                 "libxml2 recovered, check the text or fix the file", at->path, pe.first_line,
                 pe.n, pe.n == 1 ? "" : "s", pe.first);
    }
    const char *text = m.out.data ? m.out.data : "";
    enum kb_code rc = ingest_text_normalize(text, m.out.len, o->on_invalid_utf8, at,
                                            "the HTML text", arena, &out->text, &out->len, err);
    kb_buf_release(&m.out);
    if (rc != KB_OK) {
        json_decref(out->meta);
        out->meta = NULL;
    }
    return rc;
}
