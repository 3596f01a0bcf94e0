/*
 * tokenizer_bench.c - bench/tokenizer.sh's C side: encode a file with
 * kbpipe's cl100k_base encoder and print, on one line,
 *   <bytes> <tokens> <seconds>
 * for encoding it REPEAT times (default 1), the best of three rounds; the
 * file read and the table load are not timed.  With --count, times
 * chunk_tokenizer_count() instead (no ids stored).  With --ids OUT, also
 * writes the ids (little-endian uint32) for a check against the reference.
 *   tokenizer_bench [--count] [--ids OUT] FILE [REPEAT]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk/tokenizer.h"

int main(int argc, char **argv)
{
    int is_count = 0, a = 1;
    const char *ids_out = NULL;
    for (; a < argc && argv[a][0] == '-'; a++) {
        if (strcmp(argv[a], "--count") == 0)
            is_count = 1;
        else if (strcmp(argv[a], "--ids") == 0 && a + 1 < argc)
            ids_out = argv[++a];
    }
    if (a >= argc) {
        fprintf(stderr, "usage: tokenizer_bench [--count] [--ids OUT] FILE [REPEAT]\n");
        return 2;
    }
    int repeat = a + 1 < argc ? atoi(argv[a + 1]) : 1;
    struct kb_err err = { 0 };
    struct chunk_tokenizer *tok;
    struct kb_buf text;
    kb_buf_init(&text);
    if (chunk_tokenizer_open(NULL, &tok, &err) != KB_OK ||
        kb_buf_read_file(&text, argv[a], &err) != KB_OK) {
        log_err(&err);
        return 1;
    }
    uint32_t *ids = NULL;
    size_t n = 0, cap = 0;
    double best = 1e30;
    for (int round = 0; round < 3; round++) {
        double t0 = kb_now();
        for (int r = 0; r < repeat; r++) {
            if (is_count) {
                n = chunk_tokenizer_count(tok, text.data, text.len);
            } else {
                n = 0;
                chunk_tokenizer_encode(tok, text.data, text.len, &ids, &n, &cap);
            }
        }
        double t = kb_now() - t0;
        if (t < best)
            best = t;
    }
    if (ids_out) {
        FILE *f = fopen(ids_out, "wb");
        if (!f || fwrite(ids, sizeof ids[0], n, f) != n || fclose(f) != 0) {
            fprintf(stderr, "tokenizer_bench: cannot write %s\n", ids_out);
            return 1;
        }
    }
    printf("%zu %zu %.6f\n", text.len * (size_t)repeat, n * (size_t)repeat, best);
    free(ids);
    kb_buf_release(&text);
    chunk_tokenizer_free(tok);
    return 0;
}
