/*
 * tokenizer_int.h - shared by the tokenizer's files in src/chunk only:
 * tokenizer.c (rank table, byte-pair merge), pretokenize.c (the pre-split
 * scanner) and the generated tokenizer_unicode.c (Unicode 16.0 classes).
 */
#ifndef KB_CHUNK_TOKENIZER_INT_H
#define KB_CHUNK_TOKENIZER_INT_H

#include <stddef.h>
#include <stdint.h>

/* The classes the pre-split regex tells apart; every code point has one. */
enum chunk_cls {
    CHUNK_CLS_OTHER = 0,  /* [^\s\p{L}\p{N}]: punctuation, symbols, marks, controls */
    CHUNK_CLS_LETTER,     /* \p{L} */
    CHUNK_CLS_NUMBER,     /* \p{N} */
    CHUNK_CLS_SPACE,      /* \s other than \r and \n */
    CHUNK_CLS_NEWLINE     /* \r or \n */
};

/*
 * Code point -> class, as two stages: stage1[cp >> 8] picks a 256-entry
 * block of stage2.  Blocks are shared, so the tables take ~60 KB.
 */
struct chunk_pretok {
    uint16_t *stage1;     /* 0x1100 entries */
    uint8_t *stage2;      /* n_blocks * 256 enum chunk_cls values */
    size_t n_blocks;
};

/* Build the class tables into *pt (the caller's storage). */
void chunk_pretok_init(struct chunk_pretok *pt);

/* Free the tables; *pt may be initialized again. */
void chunk_pretok_release(struct chunk_pretok *pt);

/* The class of code point cp (any value; > U+10FFFF is CHUNK_CLS_OTHER). */
enum chunk_cls chunk_pretok_class(const struct chunk_pretok *pt, uint32_t cp);

/*
 * End offset of the pre-split piece that starts at s[i] (i < len): the match
 * of cl100k_base's regex at i.  Always > i, so a loop over pieces ends.
 */
size_t chunk_pretok_next(const struct chunk_pretok *pt, const unsigned char *s, size_t len,
                         size_t i);

/* Generated ranges [first, last] (tokenizer_unicode.c), sorted and disjoint. */
extern const uint32_t chunk_ucd_letter[][2];
extern const size_t chunk_ucd_letter_n;
extern const uint32_t chunk_ucd_number[][2];
extern const size_t chunk_ucd_number_n;
extern const uint32_t chunk_ucd_space[][2];
extern const size_t chunk_ucd_space_n;

#endif /* KB_CHUNK_TOKENIZER_INT_H */
