/*
 * chunk.h - the public face of src/chunk: documents in, chunks out.
 *
 * A document's text is cut into chunks by one of three splitters (markdown,
 * recursive, fixed), each chunk at most opts->size units (cl100k_base tokens
 * or Unicode code points) long, with up to opts->overlap units repeated from
 * the end of the previous chunk.  Every chunk carries the SHA-256 of its text
 * (as pgcrypto's digest() computes it) and its exact cl100k_base token count.
 * docs/chunking.md describes the splitters, the trimming and the overlap.
 *
 * Invariants of chunk_document()'s output, for any input and settings:
 *   - no chunk is longer than opts->size units, none is empty or whitespace
 *     only, and no UTF-8 sequence is ever cut;
 *   - the same text and settings give the same chunks, byte for byte;
 *   - token_count is chunk_tokenizer_count() of the chunk's text.
 *
 * The tokenizer (tokenizer.h) is included here, so other folders see all of
 * src/chunk through this header.
 */
#ifndef KB_CHUNK_H
#define KB_CHUNK_H

#include <stddef.h>

#include "chunk/tokenizer.h"
#include "util/util.h"

/* Bump when a change to the splitters changes any chunk: stored chunks made
 * by another version are then detected through chunk_opts_signature(). */
#define CHUNK_VERSION 1

/* Room for chunk_opts_signature()'s text, NUL included. */
#define CHUNK_SIGNATURE_MAX 64

enum chunk_splitter {
    CHUNK_MARKDOWN = 0,   /* headings, then paragraphs, lines, sentences, words */
    CHUNK_RECURSIVE,      /* paragraphs, lines, sentences, words, characters */
    CHUNK_FIXED           /* fixed windows */
};

enum chunk_unit {
    CHUNK_TOKENS = 0,     /* cl100k_base tokens */
    CHUNK_CHARS           /* Unicode code points */
};

struct chunk_opts {
    enum chunk_splitter splitter;   /* default CHUNK_MARKDOWN */
    enum chunk_unit unit;           /* default CHUNK_TOKENS */
    int size;                       /* units per chunk at most; default 512 */
    int overlap;                    /* units repeated from the previous chunk at most; default 64 */
};

/* One chunk; every pointer lives in the arena given to chunk_document(). */
struct kb_chunk {
    int index;                      /* 0, 1, 2, ... in document order */
    const char *text;               /* NUL-terminated; len bytes of valid UTF-8 */
    size_t len;
    size_t offset;                  /* where text starts in the document, in bytes */
    char content_hash[65];          /* lower-case hex SHA-256 of text[0..len) */
    int token_count;                /* exact cl100k_base count of text */
    const char *heading_path;       /* "Setup > Database"; NULL when none (or not markdown) */
};

struct kb_chunk_list {
    struct kb_chunk *items;         /* in the arena; NULL when n == 0 */
    int n;
};

/* Fill *opts with the defaults: markdown, tokens, 512, 64. */
void chunk_opts_defaults(struct chunk_opts *opts);

/*
 * Check settings before any document is chunked.  KB_E_CONFIG, with the fix
 * in the message, when size < 1 (< 4 in tokens: one character can take 4
 * tokens), overlap < 0, overlap >= size, or an unknown splitter or unit.
 */
enum kb_code chunk_opts_check(const struct chunk_opts *opts, struct kb_err *err);

/* "markdown", "recursive", "fixed"; "tokens", "chars" (static strings). */
const char *chunk_splitter_name(enum chunk_splitter s);
const char *chunk_unit_name(enum chunk_unit u);

/*
 * The settings as a stable string, e.g. "markdown/tokens/512/64/v1" (the
 * last field is CHUNK_VERSION), written into out.  It is recorded with each
 * chunk and hashed into the document hash, so a change of settings or of
 * chunker version makes every document look changed.
 */
void chunk_opts_signature(const struct chunk_opts *opts, char out[CHUNK_SIGNATURE_MAX]);

/*
 * Split text[0..len) (valid UTF-8, no NUL bytes) into chunks.  opts must
 * have passed chunk_opts_check(); tok is required in both units, since
 * token_count is always exact.  Chunks, their text and heading paths live in
 * `arena` (gone at its next reset).  Empty or whitespace-only text gives
 * n == 0.  KB_E_INPUT when the text has invalid UTF-8 or a NUL byte (origin:
 * the byte offset) or is 4 GB or more; KB_E_CONFIG for settings that
 * chunk_opts_check() refuses.  On failure *out is untouched.
 */
enum kb_code chunk_document(const char *text, size_t len, const struct chunk_opts *opts,
                            const struct chunk_tokenizer *tok, struct kb_arena *arena,
                            struct kb_chunk_list *out, struct kb_err *err);

/*
 * The same split as chunk_document(), without keeping the chunks: fn(c, ctx,
 * err) is called for each chunk as soon as it is made, in order.  c and
 * c->text are valid during the call only (the text is in a buffer reused for
 * the next chunk); c->heading_path lives in `arena`.  So a caller that
 * writes chunks away as they come holds one chunk's text, not the
 * document's (docs/loading.md, "One large input").  The first non-KB_OK
 * return of fn stops the split and is returned (fn fills err).  The text's
 * checks (KB_E_INPUT, KB_E_CONFIG) come before the first call, so fn is
 * never called for a document chunk_document() would refuse.  *n_chunks:
 * the calls made.
 */
enum kb_code chunk_document_each(const char *text, size_t len, const struct chunk_opts *opts,
                                 const struct chunk_tokenizer *tok, struct kb_arena *arena,
                                 enum kb_code (*fn)(const struct kb_chunk *c, void *ctx,
                                                    struct kb_err *err),
                                 void *ctx, int *n_chunks, struct kb_err *err);

/*
 * out = lower-case hex SHA-256 of text[0..len) and a NUL: what PostgreSQL
 * gives for encode(digest(content, 'sha256'), 'hex') (pgcrypto) when
 * content holds exactly these bytes.
 */
void chunk_hash_hex(const char *text, size_t len, char out[65]);

/*
 * out = lower-case hex SHA-256 over the settings signature, a NUL byte and
 * text[0..len): equal for equal text and settings, so the loader can skip an
 * unchanged document before chunking it.
 */
void chunk_document_hash(const char *text, size_t len, const struct chunk_opts *opts,
                         char out[65]);

#endif /* KB_CHUNK_H */
