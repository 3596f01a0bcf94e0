/*
 * test_embed.c - src/embed without the network: normalization, the hash
 * embedder, the import provider and the Batch API request file.  The
 * OpenAI-compatible client is tested against a stub server in
 * test_embed_openai.c.
 *
 * Groups:
 *   normalize.c   unit norm within 1e-6 at every scale; wrong dimension,
 *                 NaN, +-Inf and zero vectors refused with the row's origin;
 *                 within 2 float ulps of OpenBLAS's cblas_dsdot and
 *                 cblas_sscal (what it replaced) on 2,000 vectors
 *   hash.c        determinism (stored values of kbpipe-hash-v1: if this
 *                 fails the model changed and needs a new name), no zero
 *                 vectors, the labelled pairs of tests/data/embed/pairs.tsv
 *                 within the ranges docs/embeddings.md gives, every
 *                 near-duplicate above every unrelated pair, the label
 *                 means in order, the dedup threshold 0.70 between them
 *   embedder.c    compute: only PENDING rows, counts, rejections; options
 *   import.c      jsonl / csv / openai_batch read and looked up by content
 *                 hash and by (source_id, chunk_index); each bad file of
 *                 tests/data/embed/bad/ fails with its .expected line
 *                 (KBPIPE_UPDATE_GOLDEN=1 rewrites them)
 *   export.c      the request lines, and refusing invalid UTF-8
 */
#include "kbtest.h"

#include <dlfcn.h>
#include <math.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed/embed.h"
#include "embed/embed_int.h"   /* embed_parse_vector_text(): the CSV vector forms */

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define DIM KB_EMBED_DIM

static char *tmp;   /* a temporary folder per group */

static int group_setup(void **state)
{
    (void)state;
    if (chdir(kbtest_root()) != 0)
        return -1;
    tmp = kbtest_tmpdir();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    kbtest_rmtree(tmp);
    free(tmp);
    tmp = NULL;
    return 0;
}

static double norm_of(const float *v, int dim)
{
    double s = 0;
    for (int i = 0; i < dim; i++)
        s += (double)v[i] * v[i];
    return sqrt(s);
}

static double cosine(const float *a, const float *b)
{
    double s = 0;
    for (int i = 0; i < DIM; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* A deterministic pseudo-random vector, values in [-scale, scale]. */
static void fill(float *v, unsigned seed, double scale)
{
    unsigned x = seed * 2654435761u + 1;
    for (int i = 0; i < DIM; i++) {
        x = x * 1103515245u + 12345u;
        v[i] = (float)(scale * (((x >> 8) & 0xffff) / 32768.0 - 1.0));
    }
}

/* ---- normalize.c --------------------------------------------------------- */

static void embed_normalize_rows__unit_norm(void **state)
{
    (void)state;
    static const double scales[] = { 1e-20, 1e-6, 1.0, 3.0, 1e6, 1e30 };
    float *m = kb_xmalloc(N_OF(scales) * DIM * sizeof *m);
    for (size_t i = 0; i < N_OF(scales); i++)
        fill(m + i * DIM, (unsigned)i, scales[i]);
    m[DIM] = 0;   /* sparse rows are fine too */
    struct kb_err err = { 0 };
    assert_int_equal(embed_normalize_rows(m, (int)N_OF(scales), DIM, NULL, &err), KB_OK);
    for (size_t i = 0; i < N_OF(scales); i++) {
        double n = norm_of(m + i * DIM, DIM);
        if (fabs(n - 1.0) > 1e-6)
            fail_msg("row %zu (scale %g): norm %.9f", i, scales[i], n);
    }
    /* one non-zero element: exactly +-1 */
    float v[DIM] = { 0 };
    v[17] = -4.0f;
    char why[96];
    assert_int_equal(embed_normalize_one(v, DIM, why, sizeof why), 0);
    assert_true(v[17] == -1.0f);
    free(m);
}

/*
 * normalize.c replaced cblas_dsdot + cblas_sscal (docs/embeddings.md): on
 * hash vectors of many texts and random vectors of every sign and of
 * scales 1e-3 to 1e3, every element is within 2 float ulps of OpenBLAS's
 * result (the sums differ in their last bits, so the float 1/norm differs
 * by one ulp for a few percent of vectors: measured 109 of 2,000 here).
 * OpenBLAS is opened here as blas.c opens it.
 */
static void embed_normalize_one__same_as_openblas(void **state)
{
    (void)state;
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    assert_non_null(h);
    double (*dsdot)(int, const float *, int, const float *, int);
    void (*sscal)(int, float, float *, int);
    void *f1 = dlsym(h, "cblas_dsdot"), *f2 = dlsym(h, "cblas_sscal");
    assert_non_null(f1);
    assert_non_null(f2);
    memcpy(&dsdot, &f1, sizeof dsdot);
    memcpy(&sscal, &f2, sizeof sscal);
    static const double scales[] = { 1e-3, 0.5, 1.0, 7.0, 1e3 };
    float *mine = kb_xmalloc(DIM * sizeof *mine), *blas = kb_xmalloc(DIM * sizeof *blas);
    char why[96], text[64];
    int n_diff = 0;
    for (unsigned i = 0; i < 2000; i++) {
        if (i % 2) {
            fill(blas, i, scales[i % N_OF(scales)]);
        } else {   /* the hash embedder's raw features: normalize it again */
            snprintf(text, sizeof text, "text %u about round trips and vectors %u", i, i * 7);
            embed_hash_text(text, strlen(text), blas);
            sscal(DIM, (float)scales[i % N_OF(scales)], blas, 1);
        }
        memcpy(mine, blas, DIM * sizeof *mine);
        sscal(DIM, (float)(1.0 / sqrt(dsdot(DIM, blas, 1, blas, 1))), blas, 1);
        assert_int_equal(embed_normalize_one(mine, DIM, why, sizeof why), 0);
        n_diff += memcmp(mine, blas, DIM * sizeof *mine) != 0;
        for (int j = 0; j < DIM; j++)
            if (fabsf(mine[j] - blas[j]) > 2.4e-7f * fabsf(blas[j]))
                fail_msg("vector %u, element %d: %.9g, OpenBLAS %.9g", i, j,
                         (double)mine[j], (double)blas[j]);
    }
    print_message("normalize: %d of 2000 vectors not bit-identical to OpenBLAS's\n", n_diff);
    free(mine);
    free(blas);
    dlclose(h);
}

static void embed_normalize_rows__rejects(void **state)
{
    (void)state;
    static const struct {
        float bad;       /* put at element 7 of row 1 (NAN / INFINITY) or 0: zero row */
        int dim;
        const char *msg; /* start of the expected message */
    } cases[] = {
        { NAN, DIM, "vector contains NaN at element 7;" },
        { INFINITY, DIM, "vector contains Inf at element 7;" },
        { -INFINITY, DIM, "vector contains -Inf at element 7;" },
        { 0, DIM, "vector is a zero vector (largest element 0);" },
        { 1, 768, "vector has 768 dimensions, kbpipe stores 1536;" },
    };
    const char *origins[] = { "docs/a.md#0", "docs/a.md#1", "docs/a.md#2" };
    float *m = kb_xmalloc(3 * DIM * sizeof *m);
    for (size_t c = 0; c < N_OF(cases); c++) {
        for (int r = 0; r < 3; r++)
            fill(m + r * DIM, (unsigned)r + 1, 2.0);
        float row2_before = m[2 * DIM];
        if (cases[c].bad == 0)
            memset(m + DIM, 0, DIM * sizeof *m);
        else
            m[DIM + 7] = cases[c].bad;
        struct kb_err err = { 0 };
        assert_int_equal(embed_normalize_rows(m, cases[c].dim == DIM ? 3 : 1, cases[c].dim,
                                              origins, &err),
                         KB_E_INPUT);
        if (cases[c].dim == DIM) {
            assert_string_equal(err.origin, "docs/a.md#1");
            assert_true(fabs(norm_of(m, DIM) - 1.0) < 1e-6);   /* rows before: done */
            assert_true(m[2 * DIM] == row2_before);             /* rows after: untouched */
        } else {
            assert_string_equal(err.origin, "docs/a.md#0");
        }
        if (strncmp(err.msg, cases[c].msg, strlen(cases[c].msg)) != 0)
            fail_msg("case %zu: got '%s'", c, err.msg);
    }
    free(m);
}

/* ---- hash.c -------------------------------------------------------------- */

/*
 * tests/data/embed/hash_golden.tsv: text, sum of v[i] * (i + 1), index of
 * the largest |v[i]|, as kbpipe-hash-v1 gave them when it was made.  A
 * change here is a new model (see hash.c); KBPIPE_UPDATE_GOLDEN=1 rewrites
 * the file only for a new model name.
 */
static void embed_hash_text__deterministic(void **state)
{
    (void)state;
    const char *path = "tests/data/embed/hash_golden.tsv";
    struct kb_buf in, out;
    kb_buf_init(&in);
    kb_buf_init(&out);
    struct kb_err err = { 0 };
    assert_int_equal(kb_buf_read_file(&in, path, &err), KB_OK);
    int is_update = getenv("KBPIPE_UPDATE_GOLDEN") != NULL, n = 0;
    float a[DIM], b[DIM];
    for (char *line = strtok(in.data, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') {
            kb_buf_printf(&out, "%s\n", line);
            continue;
        }
        char *t1 = strchr(line, '\t');
        assert_non_null(t1);
        *t1 = '\0';
        double stored_sum = strtod(t1 + 1, &t1);
        int stored_top = (int)strtol(t1, NULL, 10);
        embed_hash_text(line, strlen(line), a);
        embed_hash_text(line, strlen(line), b);
        assert_memory_equal(a, b, sizeof a);
        double s = 0;
        int top = 0;
        for (int i = 0; i < DIM; i++) {
            s += (double)a[i] * (i + 1);
            if (fabsf(a[i]) > fabsf(a[top]))
                top = i;
        }
        kb_buf_printf(&out, "%s\t%.9g\t%d\n", line, s, top);
        n++;
        if (!is_update && (fabs(s - stored_sum) > 1e-4 * (1 + fabs(s)) || top != stored_top))
            fail_msg("'%s': sum %.9g top %d, stored %.9g top %d: kbpipe-hash-v1 changed; a "
                     "changed algorithm needs a new model name", line, s, top, stored_sum,
                     stored_top);
    }
    assert_true(n >= 4);
    if (is_update)
        kbtest_write(path, out.data);
    kb_buf_release(&in);
    kb_buf_release(&out);
}

/*
 * Bit-exactness of kbpipe-hash-v1 (the golden sums above allow 1e-4):
 * tests/data/embed/hash_exact.tsv holds, per case, the BLAKE2b-128 of the
 * vector's float bits (little-endian), as the sort-by-hash implementation
 * of 2026-12-06 gave them.  Cases: the golden texts, and HASH_EXACT_TEXTS
 * generated texts (make_text: words of a small vocabulary, so features
 * repeat (1 + ln tf) and three or more groups share a dimension, stop words,
 * plurals, capitals, non-ASCII, a 300-byte word), whose digests are chained
 * into one.  Any faster implementation must keep every bit.
 */
#define HASH_EXACT_TEXTS 400

static unsigned lcg(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static size_t make_text(unsigned seed, char *out, size_t cap)
{
    static const char *const vocab[] = {
        "the", "of", "and", "a", "is", "Server", "servers", "database", "databases", "query",
        "queries", "index", "indexes", "vector", "vectors", "chunk", "chunks", "token",
        "tokens", "embedding", "policy", "policies", "status", "bus", "radius", "x", "Q",
        "2026", "v1_2", "caf\xc3\xa9", "na\xc3\xafve", "\xe6\x97\xa5\xe6\x9c\xac",
        "\xe2\x80\x9cquoted\xe2\x80\x9d", "it's", "--", "!!", "HNSW", "pgvector", "merge",
        "restart", "password", "after", "before", "them", "themselves", "yours",
    };
    /* every stop word of hash.c and near misses: a stop word taken for a
     * content word (or the reverse) changes the vectors */
    static const char *const stops[] = {
        "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any",
        "are", "as", "at", "be", "because", "been", "before", "being", "below", "between",
        "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during",
        "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her",
        "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into",
        "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no",
        "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours",
        "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such",
        "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there",
        "these", "they", "this", "those", "through", "to", "too", "under", "until", "up",
        "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
        "why", "will", "with", "would", "you", "your", "yours", "abou", "abovee",
        "yourselves", "thei", "whos", "ifs", "ha", "wh", "ourselve", "ands",
    };
    unsigned s = seed;
    size_t n = 0, words = lcg(&s) % 700;
    for (size_t i = 0; i < words && n + 320 < cap; i++) {
        if (seed % 37 == 0 && i == words / 2) {   /* one long word */
            for (int k = 0; k < 300; k++)
                out[n++] = (char)('a' + (k * 7 + (int)seed) % 26);
        } else {
            /* a third of the texts are mostly stop words */
            int is_stop = lcg(&s) % (seed % 3 == 0 ? 8 : 2) != 0 && seed % 3 == 0;
            const char *w = is_stop ? stops[lcg(&s) % N_OF(stops)] : lcg(&s) % 4 == 0
                            ? stops[lcg(&s) % N_OF(stops)] : vocab[lcg(&s) % N_OF(vocab)];
            size_t len = strlen(w);
            memcpy(out + n, w, len);
            n += len;
        }
        out[n++] = (lcg(&s) % 11 == 0) ? '\n' : (lcg(&s) % 7 == 0) ? ',' : ' ';
    }
    out[n] = '\0';
    return n;
}

static void vector_digest(const float *v, unsigned char out[16], crypto_generichash_state *chain)
{
    unsigned char bytes[DIM * 4];
    for (int i = 0; i < DIM; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int k = 0; k < 4; k++)
            bytes[i * 4 + k] = (unsigned char)(u >> (8 * k));
    }
    if (chain)
        crypto_generichash_update(chain, bytes, sizeof bytes);
    else
        crypto_generichash(out, 16, bytes, sizeof bytes, NULL, 0);
}

static void hex16(const unsigned char d[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void embed_hash_text__bit_exact(void **state)
{
    (void)state;
    const char *path = "tests/data/embed/hash_exact.tsv";
    static const char *const texts[] = {
        "Restart the API server after changing the database password.",
        "kbpipe-hash-v1: feature hashing, 1536 dimensions", "!!! ---",
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9"
        "\xe3\x83\x88 and ASCII",
        "The the THE of and", "", "x", "\xff\xfe",
    };
    struct kb_buf out;
    kb_buf_init(&out);
    kb_buf_printf(&out, "# kbpipe-hash-v1 exact vectors: case, BLAKE2b-128 of the float bits "
                        "(tests/unit/test_embed.c, embed_hash_text__bit_exact)\n");
    float v[DIM];
    unsigned char d[16];
    char hex[33];
    for (size_t i = 0; i < N_OF(texts); i++) {
        embed_hash_text(texts[i], strlen(texts[i]), v);
        vector_digest(v, d, NULL);
        hex16(d, hex);
        kb_buf_printf(&out, "text%zu\t%s\n", i, hex);
    }
    crypto_generichash_state chain;
    crypto_generichash_init(&chain, NULL, 0, 16);
    char *text = malloc(1 << 16);
    assert_non_null(text);
    for (unsigned t = 0; t < HASH_EXACT_TEXTS; t++) {
        size_t len = make_text(t + 1, text, 1 << 16);
        embed_hash_text(text, len, v);
        vector_digest(v, NULL, &chain);
    }
    free(text);
    crypto_generichash_final(&chain, d, 16);
    hex16(d, hex);
    kb_buf_printf(&out, "generated%d\t%s\n", HASH_EXACT_TEXTS, hex);
    if (getenv("KBPIPE_UPDATE_GOLDEN") != NULL) {
        kbtest_write(path, out.data);
    } else {
        struct kb_buf want;
        kb_buf_init(&want);
        struct kb_err err = { 0 };
        assert_int_equal(kb_buf_read_file(&want, path, &err), KB_OK);
        if (strcmp(want.data, out.data) != 0)
            fail_msg("kbpipe-hash-v1's vectors changed bits:\nstored:\n%s\nnow:\n%s", want.data,
                     out.data);
        kb_buf_release(&want);
    }
    kb_buf_release(&out);
}

/* hash.c's own SipHash-2-4 against libsodium's, every length 0..300 */
uint64_t embed_hash_siphash(const unsigned char *bytes, size_t len);

static void embed_hash_siphash__matches_libsodium(void **state)
{
    (void)state;
    static const unsigned char key[crypto_shorthash_KEYBYTES] = "kbpipe-hash-v1\0";
    unsigned char in[301], out[crypto_shorthash_BYTES];
    unsigned s = 7;
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)lcg(&s);
    for (size_t len = 0; len < sizeof in; len++) {
        crypto_shorthash(out, in, len, key);
        uint64_t want = 0;
        for (int i = 7; i >= 0; i--)
            want = (want << 8) | out[i];
        if (embed_hash_siphash(in, len) != want)
            fail_msg("length %zu: %016llx, libsodium %016llx", len,
                     (unsigned long long)embed_hash_siphash(in, len), (unsigned long long)want);
    }
}

static void embed_hash_text__never_zero(void **state)
{
    (void)state;
    static const char *const texts[] = { "", "   ", "!!! --- ???", "the of and a", "x",
                                         "\xff\xfe\x00", "\xe2\x80\x9c\xe2\x80\x9d",
                                         "日本語のテキスト" };
    float v[DIM];
    for (size_t i = 0; i < N_OF(texts); i++) {
        embed_hash_text(texts[i], strlen(texts[i]), v);
        double n = norm_of(v, DIM);
        if (fabs(n - 1.0) > 1e-6)
            fail_msg("text %zu: norm %.9f", i, n);
    }
    /* case, punctuation and curly quotes do not change the features */
    float a[DIM], b[DIM];
    const char *x = "Restart the server.", *y = "\xe2\x80\x9crestart THE server\xe2\x80\x9d";
    embed_hash_text(x, strlen(x), a);
    embed_hash_text(y, strlen(y), b);
    assert_true(cosine(a, b) > 0.999999);
}

/* the ranges docs/embeddings.md reports: measured minimum/maximum with a margin */
static const struct {
    const char *label;
    double lo, hi;
} RANGES[] = {
    { "near", 0.70, 1.0001 },
    { "related", -0.10, 0.60 },
    { "unrelated", -0.15, 0.15 },
};

/* The dedup threshold of kbpipe-hash-v1 (docs/loading.md, load_dedup_default_threshold):
 * every near-duplicate must reach it and no unrelated pair may. */
#define HASH_DEDUP_THRESHOLD 0.70

static void embed_hash_text__labelled_pairs(void **state)
{
    (void)state;
    FILE *f = fopen("tests/data/embed/pairs.tsv", "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    int n = 0, n_bad = 0;
    float a[DIM], b[DIM];
    /* per label (RANGES order): count, sum, min, max */
    int count[N_OF(RANGES)] = { 0 };
    double sum[N_OF(RANGES)] = { 0 }, min[N_OF(RANGES)], max[N_OF(RANGES)];
    for (size_t k = 0; k < N_OF(RANGES); k++) {
        min[k] = 2;
        max[k] = -2;
    }
    while (getline(&line, &cap, f) > 0) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        assert_non_null(t2);
        *t1 = *t2 = '\0';
        embed_hash_text(t1 + 1, strlen(t1 + 1), a);
        embed_hash_text(t2 + 1, strlen(t2 + 1), b);
        double s = cosine(a, b);
        size_t k = 0;
        while (k < N_OF(RANGES) && strcmp(RANGES[k].label, line) != 0)
            k++;
        assert_true(k < N_OF(RANGES));
        if (s < RANGES[k].lo || s > RANGES[k].hi) {
            print_message("%s pair out of [%.2f, %.2f]: %.3f: '%s' / '%s'\n", line, RANGES[k].lo,
                          RANGES[k].hi, s, t1 + 1, t2 + 1);
            n_bad++;
        }
        count[k]++;
        sum[k] += s;
        min[k] = s < min[k] ? s : min[k];
        max[k] = s > max[k] ? s : max[k];
        n++;
    }
    free(line);
    fclose(f);
    assert_true(n >= 45);
    assert_int_equal(n_bad, 0);
    enum { NEAR, RELATED, UNRELATED };   /* the order of RANGES */
    assert_string_equal(RANGES[NEAR].label, "near");
    assert_string_equal(RANGES[UNRELATED].label, "unrelated");
    for (int k = NEAR; k <= UNRELATED; k++)
        assert_true(count[k] >= 10);
    double mean[3];
    for (int k = NEAR; k <= UNRELATED; k++)
        mean[k] = sum[k] / count[k];
    print_message("near %.3f..%.3f (mean %.3f), related %.3f..%.3f (mean %.3f), unrelated "
                  "%.3f..%.3f (mean %.3f)\n", min[NEAR], max[NEAR], mean[NEAR], min[RELATED],
                  max[RELATED], mean[RELATED], min[UNRELATED], max[UNRELATED], mean[UNRELATED]);
    /* what the issue asks of a lexical embedder: near-duplicates above everything
     * unrelated, the means in label order, and the dedup threshold between them */
    if (!(min[NEAR] > max[UNRELATED]))
        fail_msg("a near-duplicate pair (%.3f) scores at or below an unrelated one (%.3f)",
                 min[NEAR], max[UNRELATED]);
    if (!(mean[NEAR] > mean[RELATED] && mean[RELATED] > mean[UNRELATED]))
        fail_msg("means out of order: near %.3f, related %.3f, unrelated %.3f", mean[NEAR],
                 mean[RELATED], mean[UNRELATED]);
    if (!(min[NEAR] > HASH_DEDUP_THRESHOLD))
        fail_msg("a near-duplicate pair scores %.3f, below the dedup threshold %.2f", min[NEAR],
                 HASH_DEDUP_THRESHOLD);
    if (!(max[UNRELATED] < HASH_DEDUP_THRESHOLD))
        fail_msg("an unrelated pair scores %.3f, above the dedup threshold %.2f",
                 max[UNRELATED], HASH_DEDUP_THRESHOLD);
}

/* ---- embedder.c ---------------------------------------------------------- */

static void embed_batch_compute__hash_skips_filled_rows(void **state)
{
    (void)state;
    struct embed_opts opts;
    embed_opts_defaults(&opts);
    struct embed_embedder *e;
    struct kb_err err = { 0 };
    assert_int_equal(embed_embedder_new(&opts, &e, &err), KB_OK);
    assert_string_equal(embed_embedder_model(e), "kbpipe-hash-v1");
    struct embed_batch b;
    embed_batch_init(&b, 3);
    const char *texts[] = { "alpha beta", "gamma delta", "epsilon" };
    for (int i = 0; i < 3; i++) {
        b.rows[i].text = texts[i];
        b.rows[i].len = strlen(texts[i]);
    }
    b.rows[1].state = EMBED_ROW_REUSED;
    embed_batch_row(&b, 1)[0] = 42.0f;   /* a reused vector is left alone */
    assert_int_equal(embed_batch_compute(e, &b, &err), KB_OK);
    assert_int_equal(b.counts.computed, 2);
    assert_int_equal(b.rows[0].state, EMBED_ROW_COMPUTED);
    assert_int_equal(b.rows[1].state, EMBED_ROW_REUSED);
    assert_true(embed_batch_row(&b, 1)[0] == 42.0f);
    float v[DIM];
    embed_hash_text("epsilon", 7, v);
    assert_memory_equal(embed_batch_row(&b, 2), v, sizeof v);
    /* again: nothing left to do */
    assert_int_equal(embed_batch_compute(e, &b, &err), KB_OK);
    assert_int_equal(b.counts.computed, 2);
    embed_batch_release(&b);
    embed_embedder_free(e);
}

static void embed_embedder_new__options(void **state)
{
    (void)state;
    static const struct {
        enum embed_provider provider;
        const char *model;
        const char *base_url;
        const char *key_env;
        int dimensions;
        enum kb_code code;
        const char *msg;   /* a part of the message */
    } cases[] = {
        { EMBED_HASH, "text-embedding-3-small", NULL, NULL, DIM, KB_E_CONFIG,
          "the hash provider makes 'kbpipe-hash-v1' vectors" },
        { EMBED_OPENAI, NULL, "http://127.0.0.1:1", NULL, DIM, KB_E_CONFIG, "needs a model" },
        { EMBED_OPENAI, "m", "ftp://x", NULL, DIM, KB_E_CONFIG, "is not an http(s) URL" },
        { EMBED_OPENAI, "m", "http://127.0.0.1:1", NULL, 768, KB_E_CONFIG, "dimensions is 768" },
        { EMBED_OPENAI, "m", "http://127.0.0.1:1", "KBPIPE_TEST_NO_SUCH_KEY", DIM, KB_E_CONFIG,
          "KBPIPE_TEST_NO_SUCH_KEY is not set" },
        { EMBED_IMPORT, "m", NULL, NULL, DIM, KB_E_CONFIG, "needs a vectors file" },
    };
    unsetenv("KBPIPE_TEST_NO_SUCH_KEY");
    for (size_t c = 0; c < N_OF(cases); c++) {
        struct embed_opts opts;
        embed_opts_defaults(&opts);
        opts.provider = cases[c].provider;
        opts.model = cases[c].model;
        opts.openai.base_url = cases[c].base_url;
        opts.openai.api_key_env = cases[c].key_env;
        opts.openai.dimensions = cases[c].dimensions;
        struct embed_embedder *e = (void *)1;
        struct kb_err err = { 0 };
        assert_int_equal(embed_embedder_new(&opts, &e, &err), cases[c].code);
        assert_null(e);
        if (!strstr(err.msg, cases[c].msg))
            fail_msg("case %zu: '%s'", c, err.msg);
    }
}

/* ---- import.c ------------------------------------------------------------ */

static const char *hash_n(int i)
{
    static char h[8][65];
    char *s = h[i & 7];
    for (int k = 0; k < 64; k++)
        s[k] = "0123456789abcdef"[(i * 7 + k) % 16];
    s[64] = '\0';
    return s;
}

static void put_vec(FILE *f, const float *v, const char *open, const char *close)
{
    fputs(open, f);
    for (int i = 0; i < DIM; i++)
        fprintf(f, "%s%.9g", i ? "," : "", v[i]);
    fputs(close, f);
}

static struct embed_embedder *open_import(const char *path, enum embed_import_format format,
                                          struct embed_opts *opts)
{
    embed_opts_defaults(opts);
    opts->provider = EMBED_IMPORT;
    opts->model = "text-embedding-3-small";
    opts->import.path = path;
    opts->import.format = format;
    struct embed_embedder *e;
    struct kb_err err = { 0 };
    if (embed_embedder_new(opts, &e, &err) != KB_OK)
        fail_msg("%s: %s", err.origin, err.msg);
    return e;
}

static void embed_import__formats(void **state)
{
    (void)state;
    float v[3][DIM];
    for (int i = 0; i < 3; i++)
        fill(v[i], (unsigned)i + 10, 5.0);
    char *jsonl = kb_xasprintf("%s/v.jsonl", tmp), *csv = kb_xasprintf("%s/v.csv", tmp),
         *batch = kb_xasprintf("%s/b.jsonl", tmp);
    FILE *f = fopen(jsonl, "w");
    fprintf(f, "{\"content_hash\":\"%s\",\"embedding\":", hash_n(0));
    put_vec(f, v[0], "[", "]}\n\n");
    fprintf(f, "{\"source_id\":\"docs/a.md\",\"chunk_index\":1,\"embedding\":");
    put_vec(f, v[1], "[", "]}\r\n");
    fprintf(f, "{\"content_hash\":\"%s\",\"embedding\":", hash_n(0));   /* duplicate: first wins */
    put_vec(f, v[2], "[", "]}\n");
    fclose(f);
    f = fopen(csv, "w");
    fprintf(f, "\xEF\xBB\xBF" "source_id,chunk_index,content_hash,embedding\r\n");
    fprintf(f, "\n ,, %s ,", hash_n(0));   /* a blank line; spaces around fields dropped */
    put_vec(f, v[0], "\"[", "]\"\r\n");
    fprintf(f, "\"docs/a,b.md\",1,,");
    put_vec(f, v[1], "\"[", "]\"\n");
    fclose(f);
    f = fopen(batch, "w");
    fprintf(f, "{\"id\":\"batch_req_1\",\"custom_id\":\"%s\",\"response\":{\"status_code\":200,"
               "\"request_id\":\"r\",\"body\":{\"object\":\"list\",\"data\":[{\"object\":"
               "\"embedding\",\"index\":0,\"embedding\":", hash_n(0));
    put_vec(f, v[0], "[", "]}],\"model\":\"m\"}},\"error\":null}\n");
    fprintf(f, "{\"id\":\"batch_req_2\",\"custom_id\":\"%s\",\"response\":null,\"error\":"
               "{\"code\":\"server_error\",\"message\":\"the server had an error\"}}\n",
            hash_n(1));
    fclose(f);

    static const struct {
        enum embed_import_format format;
        const char *source_id;   /* of the by-source row */
        int has_source_row;
    } cases[] = {
        { EMBED_IMPORT_JSONL, "docs/a.md", 1 },
        { EMBED_IMPORT_CSV, "docs/a,b.md", 1 },
        { EMBED_IMPORT_OPENAI_BATCH, NULL, 0 },
    };
    const char *paths[] = { jsonl, csv, batch };
    log_set_level(KB_LOG_QUIET);   /* the failed batch request is warned about */
    for (size_t c = 0; c < N_OF(cases); c++) {
        struct embed_opts opts;
        struct embed_embedder *e = open_import(paths[c], cases[c].format, &opts);
        struct embed_batch b;
        embed_batch_init(&b, 3);
        b.rows[0] = (struct embed_row){ .content_hash = hash_n(0), .origin = "docs/x.md#0" };
        b.rows[1] = (struct embed_row){ .content_hash = hash_n(5), .source_id = cases[c].source_id,
                                        .chunk_index = 1, .origin = "docs/a.md#1" };
        b.rows[2] = (struct embed_row){ .content_hash = hash_n(1), .origin = "docs/y.md#0" };
        struct kb_err err = { 0 };
        assert_int_equal(embed_batch_compute(e, &b, &err), KB_PARTIAL);
        assert_int_equal(b.rows[0].state, EMBED_ROW_IMPORTED);
        float want[DIM];
        memcpy(want, v[0], sizeof want);
        assert_int_equal(embed_normalize_rows(want, 1, DIM, NULL, &err), KB_OK);
        for (int i = 0; i < DIM; i++)
            assert_true(fabsf(embed_batch_row(&b, 0)[i] - want[i]) < 1e-6f);
        assert_int_equal(b.rows[1].state,
                         cases[c].has_source_row ? EMBED_ROW_IMPORTED : EMBED_ROW_REJECTED);
        assert_int_equal(b.rows[2].state, EMBED_ROW_REJECTED);
        assert_string_equal(err.origin, cases[c].has_source_row ? "docs/y.md#0" : "docs/a.md#1");
        assert_non_null(strstr(b.rows[2].reject, "docs/y.md#0: no vector in "));
        assert_non_null(strstr(b.rows[2].reject, "kbpipe embed export"));
        assert_int_equal(b.counts.imported, 1 + cases[c].has_source_row);
        assert_int_equal(b.counts.rejected, 2 - cases[c].has_source_row);
        embed_batch_release(&b);
        embed_embedder_free(e);
    }
    log_set_level(KB_LOG_WARN);
    free(jsonl);
    free(csv);
    free(batch);
}

static void embed_import__bad_vectors_rejected_per_row(void **state)
{
    (void)state;
    char *csv = kb_xasprintf("%s/bad.csv", tmp);
    FILE *f = fopen(csv, "w");
    fprintf(f, "content_hash,embedding\n");
    float v[DIM];
    fill(v, 3, 1.0);
    const char *bad[] = { "nan", "inf", "0" };
    for (int r = 0; r < 3; r++) {
        fprintf(f, "%s,\"[", hash_n(r));
        for (int i = 0; i < DIM; i++)
            fprintf(f, "%s%s", i ? "," : "", r < 2 && i != 9 ? "0.5" : bad[r]);
        fprintf(f, "]\"\n");
    }
    fprintf(f, "%s,", hash_n(3));
    put_vec(f, v, "\"{", "}\"\n");   /* PostgreSQL array syntax is accepted too */
    fclose(f);
    struct embed_opts opts;
    struct embed_embedder *e = open_import(csv, EMBED_IMPORT_CSV, &opts);
    struct embed_batch b;
    embed_batch_init(&b, 4);
    for (int r = 0; r < 4; r++)
        b.rows[r] = (struct embed_row){ .content_hash = hash_n(r), .origin = "in.md#0" };
    struct kb_err err = { 0 };
    assert_int_equal(embed_batch_compute(e, &b, &err), KB_PARTIAL);
    static const char *const want[] = { "contains NaN at element 9", "contains Inf at element 9",
                                        "is a zero vector" };
    for (int r = 0; r < 3; r++) {
        assert_int_equal(b.rows[r].state, EMBED_ROW_REJECTED);
        char line_at[400];
        snprintf(line_at, sizeof line_at, "in.md#0: the vector at %s:%d %s", csv, r + 2, want[r]);
        if (strncmp(b.rows[r].reject, line_at, strlen(line_at)) != 0)
            fail_msg("row %d: '%s'", r, b.rows[r].reject);
    }
    assert_int_equal(b.rows[3].state, EMBED_ROW_IMPORTED);
    assert_int_equal(b.counts.rejected, 3);
    embed_batch_release(&b);
    embed_embedder_free(e);
    free(csv);
}

static void embed_import__bad_files(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        enum embed_import_format format;
    } cases[] = {
        { "wrong_dim.jsonl", EMBED_IMPORT_JSONL },
        { "not_json.jsonl", EMBED_IMPORT_JSONL },
        { "bad_hash.jsonl", EMBED_IMPORT_JSONL },
        { "no_key.jsonl", EMBED_IMPORT_JSONL },
        { "no_chunk_index.jsonl", EMBED_IMPORT_JSONL },
        { "csv_no_column.csv", EMBED_IMPORT_CSV },
        { "csv_line_break.csv", EMBED_IMPORT_CSV },   /* the message stays one line */
        { "csv_ragged_after_multiline.csv", EMBED_IMPORT_CSV },   /* line 4, not record 3 */
        { "csv_unterminated_quote.csv", EMBED_IMPORT_CSV },  /* the line the record starts */
        { "csv_malformed_quote.csv", EMBED_IMPORT_CSV },
        { "csv_nul.csv", EMBED_IMPORT_CSV },
        { "batch_custom_id.jsonl", EMBED_IMPORT_OPENAI_BATCH },
        { "missing.jsonl", EMBED_IMPORT_JSONL },
    };
    int is_update = getenv("KBPIPE_UPDATE_GOLDEN") != NULL;
    for (size_t c = 0; c < N_OF(cases); c++) {
        char *path = kb_xasprintf("tests/data/embed/bad/%s", cases[c].file);
        char *expected_path = kb_xasprintf("%s.expected", path);
        struct embed_opts opts;
        embed_opts_defaults(&opts);
        opts.provider = EMBED_IMPORT;
        opts.model = "m";
        opts.import.path = path;
        opts.import.format = cases[c].format;
        struct embed_embedder *e;
        struct kb_err err = { 0 };
        enum kb_code rc = embed_embedder_new(&opts, &e, &err);
        assert_int_equal(rc, strcmp(cases[c].file, "missing.jsonl") == 0 ? KB_E_IO : KB_E_INPUT);
        char *got = kb_xasprintf("kbpipe: %s: %s\n", err.origin, err.msg);
        if (is_update) {
            kbtest_write(expected_path, got);
        } else {
            struct kb_buf want;
            kb_buf_init(&want);
            struct kb_err rerr = { 0 };
            if (kb_buf_read_file(&want, expected_path, &rerr) != KB_OK)
                fail_msg("%s: %s", expected_path, rerr.msg);
            if (strcmp(want.data, got) != 0)
                fail_msg("%s:\n got  %s want %s", cases[c].file, got, want.data);
            kb_buf_release(&want);
        }
        free(got);
        free(path);
        free(expected_path);
    }
}

/* A record past the 1 MiB limit fails at the line it starts on, whether the
 * quote never closes or one unquoted field is 2 MiB on a single line. */
static void embed_import__csv_record_limit(void **state)
{
    (void)state;
    static const char *const openers[] = { "\"[", "[" };
    for (size_t c = 0; c < N_OF(openers); c++) {
        char *csv = kb_xasprintf("%s/huge.csv", tmp);
        FILE *f = fopen(csv, "w");
        assert_non_null(f);
        fprintf(f, "content_hash,embedding\n%s,%s", hash_n(0), openers[c]);
        for (int i = 0; i < 2 * 1024 * 1024 / 4; i++)
            fputs("0.5,", f);
        fclose(f);
        struct embed_opts opts;
        embed_opts_defaults(&opts);
        opts.provider = EMBED_IMPORT;
        opts.model = "m";
        opts.import.path = csv;
        opts.import.format = EMBED_IMPORT_CSV;
        struct embed_embedder *e = NULL;
        struct kb_err err = { 0 };
        assert_int_equal(embed_embedder_new(&opts, &e, &err), KB_E_INPUT);
        char *want = kb_xasprintf("%s:2", csv);
        assert_string_equal(err.origin, want);
        assert_true(kb_starts_with(err.msg, "the record is over 1048576 bytes"));
        free(want);
        free(csv);
    }
}

static void embed_parse_vector_text__forms(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int n;   /* -1: refused */
    } cases[] = {
        { "[1,2,3]", 3 }, { "{1, 2, 3}", 3 }, { "1 2 3", 3 }, { " [ 1e-3 , -2.5 ] ", 2 },
        { "[]", 0 }, { "[1,2", -1 }, { "[1;2]", -1 }, { "[1,x]", -1 }, { "[1,2] 3", -1 },
        { "[nan,inf,-inf]", 3 },
    };
    float out[8];
    for (size_t c = 0; c < N_OF(cases); c++) {
        const char *bad = NULL;
        int n = embed_parse_vector_text(cases[c].text, out, 8, &bad);
        if (n != cases[c].n)
            fail_msg("'%s': %d values, want %d", cases[c].text, n, cases[c].n);
    }
}

/* ---- export.c ------------------------------------------------------------ */

static void embed_export_write__lines(void **state)
{
    (void)state;
    char *path = kb_xasprintf("%s/requests.jsonl", tmp);
    FILE *f = fopen(path, "w");
    struct embed_export_item items[] = {
        { hash_n(0), "plain text", 10 },
        { hash_n(1), "quote \" backslash \\ newline \n tab \t ü", 40 },
    };
    items[1].len = strlen(items[1].text);
    struct kb_err err = { 0 };
    assert_int_equal(embed_export_write(f, path, "text-embedding-3-small", items, 2, &err), KB_OK);
    fclose(f);
    struct kb_buf b;
    kb_buf_init(&b);
    assert_int_equal(kb_buf_read_file(&b, path, &err), KB_OK);
    char *want0 = kb_xasprintf("{\"custom_id\":\"%s\",\"method\":\"POST\",\"url\":\"/v1/embeddings\","
                               "\"body\":{\"model\":\"text-embedding-3-small\",\"input\":\"plain "
                               "text\",\"dimensions\":1536}}\n", hash_n(0));
    assert_true(kb_starts_with(b.data, want0));
    assert_non_null(strstr(b.data, "\"input\":\"quote \\\" backslash \\\\ newline \\n tab \\t ü\""));
    kb_buf_release(&b);
    free(want0);

    struct embed_export_item bad = { hash_n(2), "ok \xff", 4 };
    f = fopen(path, "w");
    assert_int_equal(embed_export_write(f, path, "m", &bad, 1, &err), KB_E_INPUT);
    fclose(f);
    assert_string_equal(err.origin, hash_n(2));
    assert_non_null(strstr(err.msg, "not valid UTF-8 at byte 3"));
    free(path);
}

/* ---- similarity.c -------------------------------------------------------- */

/* n unit rows: random directions, with row 3k+1 (and 3k+2 when k is even)
 * a small perturbation of row 3k, so groups of 2-3 near-duplicates. */
static float *planted_rows(int n)
{
    float *m = malloc((size_t)n * DIM * sizeof *m);
    for (int r = 0; r < n; r++) {
        float *v = m + (size_t)r * DIM;
        int base = r - r % 3;
        int is_copy = r % 3 == 1 || (r % 3 == 2 && (base / 3) % 2 == 0);
        fill(v, (unsigned)(is_copy ? base : r) + 1, 1.0);
        if (is_copy) {
            float noise[DIM];
            fill(noise, (unsigned)r + 7001, 0.05);
            for (int i = 0; i < DIM; i++)
                v[i] += noise[i];
        }
        double nn = norm_of(v, DIM);
        for (int i = 0; i < DIM; i++)
            v[i] = (float)(v[i] / nn);
    }
    return m;
}

static void embed_similar_pairs__matches_brute_force(void **state)
{
    (void)state;
    const int n = 300;   /* more than one 256-row block */
    float *m = planted_rows(n);
    struct embed_pair *pairs = NULL;
    int got = embed_similar_pairs(m, n, DIM, 0.8f, &pairs);
    int want = 0, k = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double c = cosine(m + (size_t)i * DIM, m + (size_t)j * DIM);
            assert_true(c > 0.95 || c < 0.2);   /* nothing near the threshold */
            if (c < 0.8)
                continue;
            want++;
            assert_true(k < got);
            assert_int_equal(pairs[k].i, i);   /* in row order, i < j */
            assert_int_equal(pairs[k].j, j);
            assert_true(fabs(pairs[k].similarity - c) < 1e-4);
            k++;
        }
    assert_int_equal(got, want);
    assert_int_equal(want, 100 + 50 * 2);   /* 100 groups: 50 pairs, 50 triples */
    free(pairs);
    free(m);
}

static void embed_nearest_similarity__matches_brute_force(void **state)
{
    (void)state;
    const int n = 300;   /* more than one 256-row block: rows of the second
                            block have neighbours in the first and back */
    float *m = planted_rows(n), *best = malloc((size_t)n * sizeof *best);
    embed_nearest_similarity(m, n, DIM, best);
    for (int i = 0; i < n; i++) {
        double want = -2;
        for (int j = 0; j < n; j++)
            if (j != i) {
                double c = cosine(m + (size_t)i * DIM, m + (size_t)j * DIM);
                want = c > want ? c : want;
            }
        assert_true(fabs(best[i] - want) < 1e-4);
    }
    embed_nearest_similarity(m, 1, DIM, best);   /* one row: no neighbour */
    assert_true(best[0] == -2.0f);
    free(best);
    free(m);
}

static void embed_similar_pairs__bounded_per_row(void **state)
{
    (void)state;
    /* 100 near-identical rows: 4,950 pairs above 0.8, capped per row */
    const int n = 100;
    float *m = malloc((size_t)n * DIM * sizeof *m);
    for (int r = 0; r < n; r++) {
        float *v = m + (size_t)r * DIM, noise[DIM];
        fill(v, 42, 1.0);
        fill(noise, (unsigned)r + 1, 0.05);
        for (int i = 0; i < DIM; i++)
            v[i] += noise[i];
        double nn = norm_of(v, DIM);
        for (int i = 0; i < DIM; i++)
            v[i] = (float)(v[i] / nn);
    }
    struct embed_pair *pairs = NULL;
    int got = embed_similar_pairs(m, n, DIM, 0.8f, &pairs);
    assert_true(got <= EMBED_PAIRS_PER_ROW * n);
    assert_true(got >= EMBED_PAIRS_PER_ROW * n / 2);
    int seen[100] = { 0 };
    for (int k = 0; k < got; k++) {
        assert_true(pairs[k].i < pairs[k].j);
        assert_true(pairs[k].similarity >= 0.8f);
        if (k > 0)   /* sorted, no pair twice */
            assert_true(pairs[k - 1].i < pairs[k].i ||
                        (pairs[k - 1].i == pairs[k].i && pairs[k - 1].j < pairs[k].j));
        seen[pairs[k].i]++;
        seen[pairs[k].j]++;
    }
    for (int r = 0; r < n; r++)   /* every row keeps its best partners */
        assert_true(seen[r] >= EMBED_PAIRS_PER_ROW);
    free(pairs);
    /* none and one row: no pairs */
    assert_int_equal(embed_similar_pairs(m, 0, DIM, 0.8f, &pairs), 0);
    assert_null(pairs);
    assert_int_equal(embed_similar_pairs(m, 1, DIM, 0.8f, &pairs), 0);
    assert_null(pairs);
    free(m);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest normalize_c[] = {
        cmocka_unit_test(embed_normalize_rows__unit_norm),
        cmocka_unit_test(embed_normalize_rows__rejects),
        cmocka_unit_test(embed_normalize_one__same_as_openblas),
    };
    const struct CMUnitTest hash_c[] = {
        cmocka_unit_test(embed_hash_text__deterministic),
        cmocka_unit_test(embed_hash_text__bit_exact),
        cmocka_unit_test(embed_hash_siphash__matches_libsodium),
        cmocka_unit_test(embed_hash_text__never_zero),
        cmocka_unit_test(embed_hash_text__labelled_pairs),
    };
    const struct CMUnitTest embedder_c[] = {
        cmocka_unit_test(embed_batch_compute__hash_skips_filled_rows),
        cmocka_unit_test(embed_embedder_new__options),
    };
    const struct CMUnitTest import_c[] = {
        cmocka_unit_test(embed_import__formats),
        cmocka_unit_test(embed_import__bad_vectors_rejected_per_row),
        cmocka_unit_test(embed_import__bad_files),
        cmocka_unit_test(embed_import__csv_record_limit),
        cmocka_unit_test(embed_parse_vector_text__forms),
    };
    const struct CMUnitTest export_c[] = {
        cmocka_unit_test(embed_export_write__lines),
    };
    const struct CMUnitTest similarity_c[] = {
        cmocka_unit_test(embed_similar_pairs__matches_brute_force),
        cmocka_unit_test(embed_similar_pairs__bounded_per_row),
        cmocka_unit_test(embed_nearest_similarity__matches_brute_force),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("normalize.c", normalize_c, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("hash.c", hash_c, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("embedder.c", embedder_c, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("import.c", import_c, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("export.c", export_c, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("similarity.c", similarity_c, NULL, NULL);
    return failed ? 1 : 0;
}
