/*
 * embed_bench.c - bench/embed.sh's C side, over src/embed, src/chunk and
 * src/util built at release flags.
 *
 *   embed_bench throughput CORPUS [ROUNDS]
 *       CORPUS: documents separated by 0x1E bytes (bench/gen_markdown.py),
 *       chunked once (markdown, 512/64 tokens; not timed), then every chunk
 *       embedded with kbpipe-hash-v1, the best of ROUNDS (default 3).  Then
 *       embed_normalize_rows() over 20,000 random vectors, the best of
 *       ROUNDS.  Prints one line:
 *         <chunks> <chunk bytes> <hash s> <vectors> <normalize s>
 *   embed_bench texts TEXTS
 *       TEXTS: texts separated by 0x1E bytes (e.g. the chunks a run stored,
 *       bench/langchain.sh), each embedded once with kbpipe-hash-v1
 *       (normalized, as a run does) on one thread.  Prints one line:
 *         <texts> <bytes> <seconds>
 *   embed_bench pairs PAIRS.tsv
 *       cosine of each labelled pair; per label: n, min, mean, max.
 *   embed_bench retrieval QUESTIONS.tsv DOCS_DIR CHUNKS_OUT.tsv
 *       chunks every document of QUESTIONS (markdown 512/64; front matter
 *       cut), ranks documents for each question by their best chunk's
 *       cosine, prints "recall@1 recall@5 MRR questions chunks", and writes
 *       the chunks as COPY text rows (doc, chunk) for the ts_rank_cd side.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk/chunk.h"
#include "embed/embed.h"

static double dot(const float *a, const float *b)
{
    double s = 0;
    for (int i = 0; i < KB_EMBED_DIM; i++)
        s += (double)a[i] * b[i];
    return s;
}

static void die(const struct kb_err *err)
{
    log_err(err);
    exit(1);
}

/* ---- throughput ---------------------------------------------------------- */

static int throughput(const char *path, int rounds)
{
    struct kb_err err = { 0 };
    struct chunk_tokenizer *tok;
    struct kb_buf text;
    kb_buf_init(&text);
    struct chunk_opts opts;
    chunk_opts_defaults(&opts);
    if (chunk_tokenizer_open(NULL, &tok, &err) != KB_OK ||
        kb_buf_read_file(&text, path, &err) != KB_OK)
        die(&err);
    struct kb_arena *arena = kb_arena_new();
    size_t n = 0, cap = 1 << 14, bytes = 0;
    struct { const char *s; size_t len; } *chunks = kb_xmalloc(cap * sizeof *chunks);
    for (const char *p = text.data, *end = text.data + text.len; p < end;) {
        const char *sep = memchr(p, 0x1e, (size_t)(end - p));
        const char *e = sep ? sep : end;
        struct kb_chunk_list list;
        if (chunk_document(p, (size_t)(e - p), &opts, tok, arena, &list, &err) != KB_OK)
            die(&err);
        for (int i = 0; i < list.n; i++) {
            if (n == cap)
                chunks = kb_xrealloc(chunks, (cap *= 2) * sizeof *chunks);
            chunks[n].s = list.items[i].text;   /* the arena is never reset here */
            chunks[n].len = list.items[i].len;
            bytes += list.items[i].len;
            n++;
        }
        p = sep ? sep + 1 : end;
    }
    float v[KB_EMBED_DIM];
    double best = 1e30;
    for (int r = 0; r < rounds; r++) {
        double t0 = kb_now();
        for (size_t i = 0; i < n; i++)
            embed_hash_text(chunks[i].s, chunks[i].len, v);
        double t = kb_now() - t0;
        if (t < best)
            best = t;
    }
    int n_vec = 20000;
    float *m = kb_xmalloc((size_t)n_vec * KB_EMBED_DIM * sizeof *m);
    float *orig = kb_xmalloc((size_t)n_vec * KB_EMBED_DIM * sizeof *m);
    srand(1);
    for (size_t i = 0; i < (size_t)n_vec * KB_EMBED_DIM; i++)
        orig[i] = (float)rand() / RAND_MAX - 0.5f;
    double best_norm = 1e30;
    for (int r = 0; r < rounds; r++) {
        memcpy(m, orig, (size_t)n_vec * KB_EMBED_DIM * sizeof *m);
        double t0 = kb_now();
        if (embed_normalize_rows(m, n_vec, KB_EMBED_DIM, NULL, &err) != KB_OK)
            die(&err);
        double t = kb_now() - t0;
        if (t < best_norm)
            best_norm = t;
    }
    printf("%zu %zu %.6f %d %.6f\n", n, bytes, best, n_vec, best_norm);
    free(m);
    free(orig);
    free(chunks);
    kb_arena_free(arena);
    kb_buf_release(&text);
    chunk_tokenizer_free(tok);
    return 0;
}

/* ---- texts -------------------------------------------------------------- */

/* Embeds every 0x1E-separated text of path once, on this thread, and prints
 * "texts bytes seconds"; 0, or 1 when the file cannot be read. */
static int texts(const char *path)
{
    struct kb_err err = { 0 };
    struct kb_buf text;
    kb_buf_init(&text);
    if (kb_buf_read_file(&text, path, &err) != KB_OK)
        die(&err);
    float v[KB_EMBED_DIM];
    size_t n = 0, bytes = 0;
    double t0 = kb_now();
    for (const char *p = text.data, *end = text.data + text.len; p < end;) {
        const char *sep = memchr(p, 0x1e, (size_t)(end - p));
        const char *e = sep ? sep : end;
        embed_hash_text(p, (size_t)(e - p), v);
        bytes += (size_t)(e - p);
        n++;
        p = sep ? sep + 1 : end;
    }
    double t = kb_now() - t0;
    printf("%zu %zu %.6f\n", n, bytes, t);
    kb_buf_release(&text);
    return 0;
}

/* ---- pairs --------------------------------------------------------------- */

static int pairs(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 1;
    }
    struct { char label[16]; int n; double min, max, sum; } st[8];
    int n_st = 0;
    char *line = NULL;
    size_t cap = 0;
    float a[KB_EMBED_DIM], b[KB_EMBED_DIM];
    while (getline(&line, &cap, f) > 0) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t2)
            continue;
        *t1 = *t2 = '\0';
        embed_hash_text(t1 + 1, strlen(t1 + 1), a);
        embed_hash_text(t2 + 1, strlen(t2 + 1), b);
        double s = dot(a, b);
        int k = 0;
        while (k < n_st && strcmp(st[k].label, line) != 0)
            k++;
        if (k == n_st) {
            if (n_st == 8)
                continue;
            snprintf(st[k].label, sizeof st[k].label, "%s", line);
            st[k].n = 0;
            st[k].min = 1e9;
            st[k].max = -1e9;
            st[k].sum = 0;
            n_st++;
        }
        st[k].n++;
        st[k].sum += s;
        st[k].min = s < st[k].min ? s : st[k].min;
        st[k].max = s > st[k].max ? s : st[k].max;
    }
    for (int k = 0; k < n_st; k++)
        printf("%-10s n=%-3d min %.3f  mean %.3f  max %.3f\n", st[k].label, st[k].n, st[k].min,
               st[k].sum / st[k].n, st[k].max);
    free(line);
    fclose(f);
    return 0;
}

/* ---- retrieval ------------------------------------------------------------ */

struct doc {
    char *name;
    float *vecs;   /* n chunks */
    int n;
};

static void put_copy_text(FILE *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\\')
            fputs("\\\\", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c == '\r')
            fputs("\\r", out);
        else
            putc(c, out);
    }
}

static int retrieval(const char *qpath, const char *dir, const char *out_path)
{
    struct kb_err err = { 0 };
    struct chunk_tokenizer *tok;
    if (chunk_tokenizer_open(NULL, &tok, &err) != KB_OK)
        die(&err);
    struct chunk_opts opts;
    chunk_opts_defaults(&opts);
    FILE *qf = fopen(qpath, "r"), *out = fopen(out_path, "w");
    if (!qf || !out) {
        perror(qf ? out_path : qpath);
        return 1;
    }
    struct doc docs[256];
    int n_docs = 0, n_q = 0, n_chunks = 0;
    char *qs[512], *want[512];
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, qf) > 0 && n_q < 512) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        qs[n_q] = kb_xstrdup(line);
        want[n_q] = kb_xstrdup(tab + 1);
        n_q++;
    }
    /* the documents: every one the questions name, plus the rest of DIR's
     * listing is not needed: the questions cover every sample document */
    struct kb_arena *arena = kb_arena_new();
    for (int q = 0; q < n_q; q++) {
        int k = 0;
        while (k < n_docs && strcmp(docs[k].name, want[q]) != 0)
            k++;
        if (k < n_docs)
            continue;
        char *path = kb_xasprintf("%s/%s", dir, want[q]);
        struct kb_buf text;
        kb_buf_init(&text);
        if (kb_buf_read_file(&text, path, &err) != KB_OK)
            die(&err);
        const char *body = text.data;
        if (kb_starts_with(body, "---\n")) {
            const char *e = strstr(body + 4, "\n---\n");
            if (e)
                body = e + 5;
        }
        struct kb_chunk_list list;
        if (chunk_document(body, strlen(body), &opts, tok, arena, &list, &err) != KB_OK)
            die(&err);
        docs[n_docs].name = kb_xstrdup(want[q]);
        docs[n_docs].n = list.n;
        docs[n_docs].vecs = kb_xmalloc((size_t)list.n * KB_EMBED_DIM * sizeof(float));
        for (int i = 0; i < list.n; i++) {
            embed_hash_text(list.items[i].text, list.items[i].len,
                            docs[n_docs].vecs + (size_t)i * KB_EMBED_DIM);
            fprintf(out, "%s\t", want[q]);
            put_copy_text(out, list.items[i].text, list.items[i].len);
            putc('\n', out);
            n_chunks++;
        }
        n_docs++;
        kb_arena_reset(arena);
        kb_buf_release(&text);
        free(path);
    }
    double r1 = 0, r5 = 0, mrr = 0;
    float qv[KB_EMBED_DIM];
    for (int q = 0; q < n_q; q++) {
        embed_hash_text(qs[q], strlen(qs[q]), qv);
        double score[256], target = -2;
        for (int k = 0; k < n_docs; k++) {
            score[k] = -2;
            for (int i = 0; i < docs[k].n; i++) {
                double s = dot(qv, docs[k].vecs + (size_t)i * KB_EMBED_DIM);
                score[k] = s > score[k] ? s : score[k];
            }
            if (strcmp(docs[k].name, want[q]) == 0)
                target = score[k];
        }
        int rank = 1;
        for (int k = 0; k < n_docs; k++)
            rank += score[k] > target;
        if (getenv("EMBED_BENCH_VERBOSE"))
            fprintf(stderr, "rank %d  %s\n", rank, qs[q]);
        r1 += rank == 1;
        r5 += rank <= 5;
        mrr += 1.0 / rank;
    }
    printf("%.3f %.3f %.3f %d %d\n", r1 / n_q, r5 / n_q, mrr / n_q, n_q, n_chunks);
    fclose(out);
    fclose(qf);
    free(line);
    kb_arena_free(arena);
    chunk_tokenizer_free(tok);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "throughput") == 0)
        return throughput(argv[2], argc >= 4 ? atoi(argv[3]) : 3);
    if (argc == 3 && strcmp(argv[1], "texts") == 0)
        return texts(argv[2]);
    if (argc == 3 && strcmp(argv[1], "pairs") == 0)
        return pairs(argv[2]);
    if (argc == 5 && strcmp(argv[1], "retrieval") == 0)
        return retrieval(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: embed_bench throughput CORPUS [ROUNDS] | texts TEXTS | pairs PAIRS.tsv | "
                    "retrieval QUESTIONS.tsv DOCS_DIR CHUNKS_OUT.tsv\n");
    return 2;
}
