/*
 * chunk_int.h - shared by the splitter files of src/chunk only: chunk.c (the
 * document's pieces, the packing loop, trimming and emitting), recursive.c
 * (line, paragraph, sentence and word boundaries), markdown.c (headings,
 * fences, tables, heading paths), fixed.c (windows), hash.c (SHA-256).
 *
 * The model.  The document is cut into the pieces of cl100k_base's
 * pre-split regex (chunk_tokenizer_piece_end), and each piece's tokens are
 * counted once.  Token counts add up over pieces, and a chunk that starts
 * and ends on piece boundaries has exactly the sum of its pieces' counts
 * (docs/chunking.md gives the argument), so sizes are prefix-sum
 * differences and no text is counted twice.  Every piece boundary k (the
 * start of piece k) gets a level: how good a place to cut it is.  The
 * packing loop takes, from a chunk's start, the longest run of pieces that
 * fits, and cuts at the last boundary of the strongest level inside it.
 * Only a piece longer than the size itself is cut inside (fixed.c), at
 * code point boundaries, and those windows are counted directly.
 *
 * The pieces are held in a window, not for the whole document: they are
 * cut as the packing loop reaches them and dropped once behind its start
 * and its last cut (chunk.c), so an 8 MB line of 2.7 million pieces takes
 * a window of about one chunk.  Marks, blocks and sections are kept for the
 * whole document (a few per line).
 */
#ifndef KB_CHUNK_INT_H
#define KB_CHUNK_INT_H

#include <stddef.h>
#include <stdint.h>

#include "chunk/chunk.h"

/*
 * Boundary levels, weakest first.  Inside a fenced code block or a table the
 * BLOCK_ levels apply: weaker than any boundary outside, so a block is only
 * cut when the block alone does not fit.  GLUE is the boundary after a
 * heading line: a heading stays with what follows it.
 */
enum chunk_level {
    CHUNK_LV_NONE = 0,     /* never a cut */
    CHUNK_LV_PIECE,        /* any piece boundary: "foo" | "()" */
    CHUNK_LV_BLOCK_WORD,
    CHUNK_LV_BLOCK_LINE,
    CHUNK_LV_BLOCK_PARA,
    CHUNK_LV_GLUE,
    CHUNK_LV_WORD,         /* next to whitespace */
    CHUNK_LV_SENTENCE,     /* after . ! ? (and closing quotes) before a space */
    CHUNK_LV_LINE,
    CHUNK_LV_PARA,         /* after a blank line, or at a block's edge */
    CHUNK_LV_H6, CHUNK_LV_H5, CHUNK_LV_H4, CHUNK_LV_H3, CHUNK_LV_H2, CHUNK_LV_H1
};
#define CHUNK_LV_HEADING(h) ((uint8_t)(CHUNK_LV_H1 - ((h) - 1)))

/* A structural boundary a splitter found at byte `off` (a line start). */
struct chunk_mark {
    uint32_t off;
    uint8_t level;
};

/* A fenced code block or table: bytes [start, end). */
struct chunk_block {
    uint32_t start, end;
};

/* A Markdown section: from its heading line to the next heading of its level or above. */
struct chunk_section {
    uint32_t start;        /* offset of the heading line (0 for the root) */
    int level;             /* 1..6; 0 for the root (text before any heading) */
    int parent;            /* index of the enclosing section; -1 for the root */
    const char *title;     /* into the text; not NUL-terminated */
    size_t title_len;
    const char *path;      /* "A > B", in the arena, made on first use; NULL for the root */
};

struct chunk_doc {
    const char *text;
    uint32_t len;
    const struct chunk_opts *opts;
    const struct chunk_tokenizer *tok;
    struct kb_arena *arena;

    /* the window of pieces (k: an index into it, not into the document);
     * all arrays heap, freed by doc_release() */
    uint32_t n;            /* number of pieces in the window */
    uint32_t cap;
    uint32_t *off;         /* n + 1: piece k is text[off[k], off[k + 1]) */
    uint32_t *tokp;        /* n + 1: tokens of the document's pieces before piece k */
    uint32_t *chp;         /* n + 1: code points likewise (CHUNK_CHARS only) */
    uint8_t *is_ws;        /* n: piece k is whitespace only */
    uint8_t *lvl;          /* n (n + 1 at the end): level of the boundary before piece k */
    int is_done;           /* the window's last piece ends the text */
    int has_sentences;     /* 0 for the fixed splitter, which only knows pieces */
    uint32_t mi, bi;       /* the first mark and block not behind the window's end */

    /* what a splitter found, in text order */
    struct chunk_mark *marks;
    uint32_t n_marks, cap_marks;
    struct chunk_block *blocks;
    uint32_t n_blocks, cap_blocks;
    struct chunk_section *sections;   /* markdown only; [0] is the root */
    int n_sections, cap_sections;

    /* output, heap until copied to the arena; or, with fn, each chunk handed
     * to fn as it is made (its text in `scratch`, reused), none kept */
    struct kb_chunk *chunks;
    int n_chunks, cap_chunks;
    enum kb_code (*fn)(const struct kb_chunk *c, void *ctx, struct kb_err *err);
    void *ctx;
    struct kb_err *err;
    enum kb_code rc;       /* fn's first failure: nothing more is emitted */
    char *scratch;
    size_t cap_scratch;
};

/* chunk.c */
void chunk_doc_add_mark(struct chunk_doc *d, uint32_t off, uint8_t level);
void chunk_doc_add_block(struct chunk_doc *d, uint32_t start, uint32_t end);
/* Cut the text into pieces, give each boundary its level (from the marks,
 * blocks and the bytes around; has_sentences: 0 for the fixed splitter,
 * which only knows pieces), pack them into chunks (the loop described
 * above) and emit them. */
void chunk_doc_pack(struct chunk_doc *d, int has_sentences);
/* Emit text[start, end) as a chunk whose token count is known. */
void chunk_doc_emit(struct chunk_doc *d, uint32_t start, uint32_t end, int tokens);

/* Unicode White_Space (the regex's \s) at s[0..avail): its byte length, or 0. */
int chunk_space_len(const unsigned char *s, size_t avail);
/* Code points in s[0..n) (continuation bytes are not counted). */
size_t chunk_cp_count(const char *s, size_t n);

/* recursive.c: line and paragraph marks for plain text. */
void chunk_recursive_marks(struct chunk_doc *d);
/* 1 when the boundary between pieces k-1 and k ends a sentence. */
int chunk_ends_sentence(const struct chunk_doc *d, uint32_t k);

/* markdown.c: heading, fence, table, line and paragraph marks; sections. */
void chunk_markdown_marks(struct chunk_doc *d);
/* The heading path of the chunk text[start, end), or NULL. */
const char *chunk_markdown_path(struct chunk_doc *d, uint32_t start, uint32_t end);

/*
 * fixed.c: emit windows of at most opts->size units over text[start, end)
 * cut at code point boundaries, consecutive windows sharing up to
 * opts->overlap units (with_overlap) ; windows of whitespace only are
 * skipped.  Used for the fixed splitter in characters and for any piece
 * longer than the size.
 */
void chunk_fixed_windows(struct chunk_doc *d, uint32_t start, uint32_t end, int with_overlap);

#endif /* KB_CHUNK_INT_H */
