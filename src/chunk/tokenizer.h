/*
 * tokenizer.h - exact cl100k_base token counts: the encoding of OpenAI's
 * 1536-dim embedding models, as the npm package tiktoken computes it.
 *
 * Inside src/chunk; chunk.h includes it, so other folders see it through
 * chunk.h.  The rank table is data shipped in the repository
 * (data/cl100k_base.json); docs/tokenizer.md gives its source, checksum,
 * lookup order and measured speed.
 *
 * Text is encoded the way tiktoken's encode_ordinary() does: special tokens
 * such as "<|endoftext|>" are ordinary text.  A loaded tokenizer is read-only:
 * one may be shared by threads that only count, encode and split.
 */
#ifndef KB_CHUNK_TOKENIZER_H
#define KB_CHUNK_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

struct chunk_tokenizer;   /* fields live in tokenizer.c */

/*
 * A pre-split piece longer than this many bytes (a run of letters with no
 * blank, say) is merged in windows to bound memory: the one case where the
 * ids can differ from tiktoken's (tokenizer.c's head, docs/tokenizer.md).
 */
#define CHUNK_TOKENIZER_WINDOW (32 * 1024)

/*
 * Load the cl100k_base rank table from `path`, or when path is NULL from the
 * first that exists of: $KBPIPE_TOKENIZER_FILE (when set, only it is tried),
 * data/cl100k_base.json relative to the current directory (the checkout),
 * kb_datadir() "/cl100k_base.json" (BIN/../share/kbpipe, else KB_DATADIR).
 * On success *out is the caller's, freed with
 * chunk_tokenizer_free().  KB_E_CONFIG names the paths tried and where the
 * table comes from when no file is there; KB_E_IO when it cannot be read;
 * KB_E_INPUT when it is not a cl100k_base table.  On failure *out is NULL.
 */
enum kb_code chunk_tokenizer_open(const char *path, struct chunk_tokenizer **out,
                                  struct kb_err *err);

/* Free a tokenizer; NULL is a no-op. */
void chunk_tokenizer_free(struct chunk_tokenizer *tok);

/*
 * The exact number of cl100k_base tokens in text[0..len) (but for pieces
 * over CHUNK_TOKENIZER_WINDOW bytes, above), which should be valid UTF-8.  Invalid bytes never crash: each counts as a punctuation
 * character would, but the figure then matches no reference.
 */
size_t chunk_tokenizer_count(const struct chunk_tokenizer *tok, const char *text, size_t len);

/*
 * Append the token ids of text[0..len) to *ids, growing it with kb_xrealloc;
 * *n is the number of ids in use and *cap the allocated count (both 0 with
 * *ids NULL for a fresh array).  The caller frees *ids.
 */
void chunk_tokenizer_encode(const struct chunk_tokenizer *tok, const char *text, size_t len,
                            uint32_t **ids, size_t *n, size_t *cap);

/*
 * Call fn(piece, piece_len, ctx) for each piece of the pre-split regex, in
 * order; the pieces tile text[0..len) exactly.  Token counts are additive
 * over pieces, so a chunker that cuts only between pieces can sum
 * chunk_tokenizer_count() of each piece.
 */
void chunk_tokenizer_pieces(const struct chunk_tokenizer *tok, const char *text, size_t len,
                            void (*fn)(const char *p, size_t n, void *ctx), void *ctx);

/*
 * The end offset of the pre-split piece that starts at text[i] (i < len):
 * the pieces one at a time, the same as chunk_tokenizer_pieces() gives, for
 * a caller that walks them in a window (src/chunk/chunk.c).  Always > i.
 */
size_t chunk_tokenizer_piece_end(const struct chunk_tokenizer *tok, const char *text, size_t len,
                                 size_t i);

/* Number of ids in the rank table (100256 for cl100k_base). */
size_t chunk_tokenizer_vocab_size(const struct chunk_tokenizer *tok);

#endif /* KB_CHUNK_TOKENIZER_H */
