/*
 * chunk_bench.c - bench/chunk.sh's C side: chunk a corpus of documents
 * separated by 0x1E bytes (bench/gen_markdown.py) the way a run does (one
 * arena, reset after each document) and print, on one line,
 *   <bytes> <documents> <chunks> <tokens> <chunk s> <count s> <dochash s>
 * chunk s: chunk_document() on every document (split, SHA-256 of every chunk,
 * exact token counts), the best of ROUNDS rounds (default 3);
 * count s: chunk_tokenizer_count() of every document alone, for comparison;
 * dochash s: chunk_document_hash() of every document.
 * The file read and the tokenizer load are not timed.
 *   chunk_bench FILE [SPLITTER UNIT SIZE OVERLAP [ROUNDS]]
 *   (SPLITTER markdown|recursive|fixed, UNIT tokens|chars)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk/chunk.h"

struct doc {
    const char *text;
    size_t len;
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: chunk_bench FILE [SPLITTER UNIT SIZE OVERLAP [ROUNDS]]\n");
        return 2;
    }
    struct chunk_opts opts;
    chunk_opts_defaults(&opts);
    if (argc >= 6) {
        opts.splitter = strcmp(argv[2], "recursive") == 0 ? CHUNK_RECURSIVE
                        : strcmp(argv[2], "fixed") == 0   ? CHUNK_FIXED
                                                          : CHUNK_MARKDOWN;
        opts.unit = strcmp(argv[3], "chars") == 0 ? CHUNK_CHARS : CHUNK_TOKENS;
        opts.size = atoi(argv[4]);
        opts.overlap = atoi(argv[5]);
    }
    int rounds = argc >= 7 ? atoi(argv[6]) : 3;

    struct kb_err err = { 0 };
    struct chunk_tokenizer *tok;
    struct kb_buf text;
    kb_buf_init(&text);
    if (chunk_opts_check(&opts, &err) != KB_OK || chunk_tokenizer_open(NULL, &tok, &err) != KB_OK ||
        kb_buf_read_file(&text, argv[1], &err) != KB_OK) {
        log_err(&err);
        return 1;
    }

    size_t n_docs = 0, cap = 1024;
    struct doc *docs = kb_xmalloc(cap * sizeof *docs);
    for (const char *p = text.data, *end = text.data + text.len; p < end;) {
        const char *sep = memchr(p, 0x1e, (size_t)(end - p));
        const char *e = sep ? sep : end;
        if (n_docs == cap)
            docs = kb_xrealloc(docs, (cap *= 2) * sizeof *docs);
        docs[n_docs++] = (struct doc){ p, (size_t)(e - p) };
        p = sep ? sep + 1 : end;
    }

    struct kb_arena *arena = kb_arena_new();
    double best = 1e30;
    long chunks = 0, tokens = 0;
    for (int r = 0; r < rounds; r++) {
        chunks = tokens = 0;
        double t0 = kb_now();
        for (size_t i = 0; i < n_docs; i++) {
            struct kb_chunk_list out;
            if (chunk_document(docs[i].text, docs[i].len, &opts, tok, arena, &out, &err) != KB_OK) {
                log_err(&err);
                return 1;
            }
            chunks += out.n;
            for (int c = 0; c < out.n; c++)
                tokens += out.items[c].token_count;
            kb_arena_reset(arena);
        }
        double dt = kb_now() - t0;
        if (dt < best)
            best = dt;
    }

    double t0 = kb_now();
    size_t counted = 0;
    for (size_t i = 0; i < n_docs; i++)
        counted += chunk_tokenizer_count(tok, docs[i].text, docs[i].len);
    double count_s = kb_now() - t0;

    t0 = kb_now();
    char hex[65];
    unsigned x = 0;
    for (size_t i = 0; i < n_docs; i++) {
        chunk_document_hash(docs[i].text, docs[i].len, &opts, hex);
        x += (unsigned char)hex[0];
    }
    double hash_s = kb_now() - t0;

    printf("%zu %zu %ld %ld %.4f %.4f %.4f\n", text.len, n_docs, chunks, tokens, best, count_s,
           hash_s + (x == 0xffffffffu));
    kb_arena_free(arena);
    chunk_tokenizer_free(tok);
    kb_buf_release(&text);
    free(docs);
    (void)counted;
    return 0;
}
