/*
 * markdown.c - the structure of a Markdown document as boundary marks:
 * headings (ATX "## Title" and setext "Title\n=====" / "-----"), fenced
 * code blocks (``` and ~~~, CommonMark's rules for opening and closing),
 * GFM pipe tables (a header row with '|' over a delimiter row such as
 * "|---|:--:|"), paragraphs and lines; and the sections that give each
 * chunk its heading path.
 *
 * Marks per non-blank line start (levels in chunk_int.h):
 *   heading line           H1..H6, or GLUE right after another heading
 *   line after a heading   GLUE: a heading is never left alone at a chunk's end
 *   fence or table start   PARA (a block's edge)
 *   inside a block         BLOCK_LINE, BLOCK_PARA after a blank line
 *   first line after block PARA
 *   other lines            PARA after a blank line, else LINE
 *   setext underline       PIECE: it stays with its title
 * Inside blocks, the boundaries between marks are BLOCK_WORD or PIECE, so
 * a block is only cut when it alone is longer than the size.
 *
 * Sections: a heading of level h opens a section inside the nearest earlier
 * section of a lower level.  A chunk's heading path is the path of the
 * innermost section that holds all of it ("Setup > Database"), NULL when
 * that is the text before any heading or the chunk spans top-level sections.
 */
#include "chunk/chunk_int.h"

#include <string.h>

/* leading spaces up to 3 (CommonMark's indentation for block starts); -1 if 4+ */
static int indent(const char *t, uint32_t pos, uint32_t eol)
{
    int n = 0;
    while (pos + (uint32_t)n < eol && t[pos + (uint32_t)n] == ' ')
        n++;
    return n <= 3 ? n : -1;
}

static int is_blank(const char *t, uint32_t pos, uint32_t eol)
{
    for (uint32_t i = pos; i < eol; i++)
        if (t[i] != ' ' && t[i] != '\t' && t[i] != '\r' && t[i] != '\f' && t[i] != '\v')
            return 0;
    return 1;
}

/* end of text[pos, eol) without trailing blanks */
static uint32_t rtrim(const char *t, uint32_t pos, uint32_t eol)
{
    while (eol > pos && (t[eol - 1] == ' ' || t[eol - 1] == '\t' || t[eol - 1] == '\r'))
        eol--;
    return eol;
}

/* ATX heading: its level 1..6 and title span, or 0 */
static int atx_heading(const char *t, uint32_t pos, uint32_t eol, uint32_t *ts, uint32_t *te)
{
    int in = indent(t, pos, eol);
    if (in < 0)
        return 0;
    uint32_t i = pos + (uint32_t)in, h = 0;
    while (i < eol && t[i] == '#' && h < 7) {
        i++;
        h++;
    }
    if (h < 1 || h > 6 || (i < eol && t[i] != ' ' && t[i] != '\t' && t[i] != '\r'))
        return 0;
    while (i < eol && (t[i] == ' ' || t[i] == '\t'))
        i++;
    uint32_t e = rtrim(t, i, eol), c = e;
    while (c > i && t[c - 1] == '#')   /* closing sequence: "## Title ##" */
        c--;
    if (c == i || t[c - 1] == ' ' || t[c - 1] == '\t')
        e = rtrim(t, i, c);
    *ts = i;
    *te = e;
    return (int)h;
}

/* fence opening: its character and length, or 0 */
static int fence_open(const char *t, uint32_t pos, uint32_t eol, char *ch)
{
    int in = indent(t, pos, eol);
    if (in < 0)
        return 0;
    uint32_t i = pos + (uint32_t)in, n = 0;
    char c = i < eol ? t[i] : 0;
    if (c != '`' && c != '~')
        return 0;
    while (i < eol && t[i] == c) {
        i++;
        n++;
    }
    if (n < 3)
        return 0;
    if (c == '`' && memchr(t + i, '`', eol - i))
        return 0;   /* an info string with a backtick: inline code, not a fence */
    *ch = c;
    return (int)n;
}

static int fence_close(const char *t, uint32_t pos, uint32_t eol, char ch, int len)
{
    int in = indent(t, pos, eol);
    if (in < 0)
        return 0;
    uint32_t i = pos + (uint32_t)in;
    int n = 0;
    while (i < eol && t[i] == ch) {
        i++;
        n++;
    }
    return n >= len && is_blank(t, i, eol);
}

/* setext underline: 1 for "===", 2 for "---" (two or more), else 0 */
static int setext_level(const char *t, uint32_t pos, uint32_t eol)
{
    int in = indent(t, pos, eol);
    if (in < 0)
        return 0;
    uint32_t i = pos + (uint32_t)in, e = rtrim(t, pos, eol), n = 0;
    char c = i < e ? t[i] : 0;
    if (c != '=' && c != '-')
        return 0;
    for (; i < e; i++, n++)
        if (t[i] != c)
            return 0;
    return c == '=' ? 1 : (n >= 2 ? 2 : 0);
}

/* a line that can be a setext title: not a list item, quote or indented code */
static int can_be_title(const char *t, uint32_t pos, uint32_t eol)
{
    int in = indent(t, pos, eol);
    if (in < 0)
        return 0;
    uint32_t i = pos + (uint32_t)in;
    char c = t[i];
    if (c == '>' || c == '|')
        return 0;
    if ((c == '-' || c == '*' || c == '+') && (i + 1 == eol || t[i + 1] == ' ' || t[i + 1] == '\t'))
        return 0;
    uint32_t j = i;
    while (j < eol && j - i < 9 && t[j] >= '0' && t[j] <= '9')
        j++;
    if (j > i && j < eol && (t[j] == '.' || t[j] == ')') &&
        (j + 1 == eol || t[j + 1] == ' ' || t[j + 1] == '\t'))
        return 0;
    return 1;
}

/* GFM delimiter row: only | : - and blanks, with at least one '|' and one '-' */
static int table_delimiter(const char *t, uint32_t pos, uint32_t eol)
{
    int pipe = 0, dash = 0;
    for (uint32_t i = pos; i < eol; i++) {
        char c = t[i];
        if (c == '|')
            pipe = 1;
        else if (c == '-')
            dash = 1;
        else if (c != ':' && c != ' ' && c != '\t' && c != '\r')
            return 0;
    }
    return pipe && dash;
}

/* offset of the '\n' ending the line that starts at pos, or len */
static uint32_t line_end(const char *t, uint32_t pos, uint32_t len)
{
    const char *nl = memchr(t + pos, '\n', len - pos);
    return nl ? (uint32_t)(nl - t) : len;
}

static int has_pipe(const char *t, uint32_t pos, uint32_t eol)
{
    return memchr(t + pos, '|', eol - pos) != NULL;
}

static void section_open(struct chunk_doc *d, uint32_t start, int level, const char *title,
                         size_t title_len)
{
    if (d->n_sections == d->cap_sections) {
        d->cap_sections = d->cap_sections ? d->cap_sections * 2 : 16;
        d->sections = kb_xrealloc(d->sections, (size_t)d->cap_sections * sizeof *d->sections);
    }
    int parent = d->n_sections - 1;
    while (parent > 0 && d->sections[parent].level >= level)
        parent = d->sections[parent].parent;
    d->sections[d->n_sections++] = (struct chunk_section){
        .start = start, .level = level, .parent = parent, .title = title,
        .title_len = title_len, .path = NULL };
}

void chunk_markdown_marks(struct chunk_doc *d)
{
    const char *t = d->text;
    uint32_t pos = 0, prev_start = 0, block_start = 0;
    int after_blank = 1, after_block = 0, after_heading = 0, prev_titled = 0, prev_glued = 0;
    int in_fence = 0, in_table = 0, fence_len = 0;
    char fence_ch = 0;

    d->n_sections = 0;
    section_open(d, 0, 0, NULL, 0);   /* the root: text before any heading */

    while (pos < d->len) {
        uint32_t eol = line_end(t, pos, d->len), next = eol < d->len ? eol + 1 : d->len;
        int blank = is_blank(t, pos, eol);

        if (in_fence) {
            if (fence_close(t, pos, eol, fence_ch, fence_len)) {
                chunk_doc_add_mark(d, pos, CHUNK_LV_BLOCK_LINE);
                chunk_doc_add_block(d, block_start, next);
                in_fence = 0;
                after_block = 1;
                after_blank = 0;
            } else if (!blank) {
                chunk_doc_add_mark(d, pos, after_blank ? CHUNK_LV_BLOCK_PARA : CHUNK_LV_BLOCK_LINE);
                after_blank = 0;
            } else {
                after_blank = 1;
            }
            pos = next;
            continue;
        }
        if (in_table) {
            if (!blank && has_pipe(t, pos, eol)) {
                chunk_doc_add_mark(d, pos, CHUNK_LV_BLOCK_LINE);
                pos = next;
                continue;
            }
            chunk_doc_add_block(d, block_start, pos);
            in_table = 0;
            after_block = 1;
        }
        if (blank) {
            after_blank = 1;
            prev_titled = 0;
            pos = next;
            continue;
        }

        uint8_t base = after_heading               ? CHUNK_LV_GLUE
                       : after_blank || after_block ? CHUNK_LV_PARA
                                                    : CHUNK_LV_LINE;
        uint32_t ts, te;
        int h, setext;
        char ch;
        if ((h = atx_heading(t, pos, eol, &ts, &te)) > 0) {
            chunk_doc_add_mark(d, pos, after_heading ? CHUNK_LV_GLUE : CHUNK_LV_HEADING(h));
            section_open(d, pos, h, t + ts, te - ts);
            after_heading = 1;
            prev_titled = 0;
        } else if ((fence_len = fence_open(t, pos, eol, &ch)) > 0) {
            chunk_doc_add_mark(d, pos, after_heading ? CHUNK_LV_GLUE : CHUNK_LV_PARA);
            in_fence = 1;
            fence_ch = ch;
            block_start = pos;
            after_heading = 0;
            prev_titled = 0;
        } else if (prev_titled && (setext = setext_level(t, pos, eol)) > 0) {
            /* the title line above becomes the heading; its mark was the last one */
            uint32_t tpos = prev_start + (uint32_t)indent(t, prev_start, pos);
            uint32_t tend = rtrim(t, tpos, pos - 1);
            d->marks[d->n_marks - 1].level = prev_glued ? CHUNK_LV_GLUE : CHUNK_LV_HEADING(setext);
            section_open(d, prev_start, setext, t + tpos, tend - tpos);
            chunk_doc_add_mark(d, pos, CHUNK_LV_PIECE);
            after_heading = 1;
            prev_titled = 0;
        } else if (has_pipe(t, pos, eol) && next < d->len &&
                   table_delimiter(t, next, line_end(t, next, d->len))) {
            chunk_doc_add_mark(d, pos, base);
            in_table = 1;
            block_start = pos;
            after_heading = 0;
            prev_titled = 0;
        } else {
            chunk_doc_add_mark(d, pos, base);
            prev_titled = can_be_title(t, pos, eol);
            prev_glued = base == CHUNK_LV_GLUE;
            after_heading = 0;
        }
        prev_start = pos;
        after_blank = 0;
        after_block = 0;
        pos = next;
    }
    if (in_fence || in_table)
        chunk_doc_add_block(d, block_start, d->len);   /* an unclosed fence runs to the end */
}

static int section_of(const struct chunk_doc *d, uint32_t off)
{
    int lo = 0, hi = d->n_sections - 1;   /* sections[0].start == 0 <= off */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (d->sections[mid].start <= off)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

static const char *section_path(struct chunk_doc *d, int i)
{
    struct chunk_section *s = &d->sections[i];
    if (i == 0 || s->path)
        return s->path;
    const char *up = section_path(d, s->parent);
    s->path = up ? kb_arena_printf(d->arena, "%s > %.*s", up, (int)s->title_len, s->title)
                 : kb_arena_strndup(d->arena, s->title, s->title_len);
    return s->path;
}

const char *chunk_markdown_path(struct chunk_doc *d, uint32_t start, uint32_t end)
{
    int a = section_of(d, start), b = section_of(d, end - 1);
    while (a != b) {   /* parents come first, so the larger index climbs */
        if (a > b)
            a = d->sections[a].parent;
        else
            b = d->sections[b].parent;
    }
    return section_path(d, a);
}
