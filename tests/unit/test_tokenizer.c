/*
 * test_tokenizer.c - the cl100k_base encoder of src/chunk.
 *
 * Groups:
 *   tokenizer.c    known ids (taken from the reference), edge cases (empty,
 *                  whitespace only, long digit runs, a 1 MB word), the heap
 *                  merge against the array merge, and open()'s errors
 *   pretokenize.c  piece boundaries of the regex's alternatives
 *   reference      a ~4.6 MB corpus (tests/data/tokenizer/gen_corpus.py)
 *                  encoded here and by tiktoken under node
 *                  (tests/ref/encode.js): the ids must be identical
 *
 * The rank table is data/cl100k_base.json; the reference comes from
 * `make check`'s deps (scripts/fetch-tokenizer.sh).  When either is missing the tests skip(),
 * except with KBPIPE_REQUIRE_REF=1 (tests/run.sh, so `make check`), where
 * they fail.  Runs from the repository root ($KBPIPE_ROOT).
 */
#include "kbtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk/tokenizer.h"

/* tokenizer.c, opened by KB_TESTABLE */
size_t tokenizer_piece_encode(const struct chunk_tokenizer *tok, const unsigned char *p,
                              size_t m, uint32_t *out, int force);

static struct chunk_tokenizer *tok;
static char *table_path;

static int require_ref(void)
{
    const char *v = getenv("KBPIPE_REQUIRE_REF");
    return v && strcmp(v, "1") == 0;
}

/* skip(), or fail under `make check`, with why */
#define MISSING(...)                                                         \
    do {                                                                     \
        print_message(__VA_ARGS__);                                          \
        if (require_ref())                                                   \
            fail_msg("KBPIPE_REQUIRE_REF=1: run 'bash scripts/deps.sh --test' to install it"); \
        skip();                                                              \
    } while (0)

static int group_setup(void **state)
{
    (void)state;
    struct kb_err err = { 0 };
    table_path = kb_xasprintf("%s/data/cl100k_base.json", kbtest_root());
    if (chunk_tokenizer_open(getenv("KBPIPE_TOKENIZER_FILE") ? NULL : table_path, &tok, &err) != KB_OK) {
        print_message("no tokenizer: %s: %s\n", err.origin, err.msg);
        tok = NULL;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    chunk_tokenizer_free(tok);
    tok = NULL;
    free(table_path);
    return 0;
}

#define NEED_TOK()                                                           \
    do {                                                                     \
        if (!tok)                                                            \
            MISSING("the rank table %s is missing\n", table_path);           \
    } while (0)

static void encode_all(const char *s, size_t len, uint32_t **ids, size_t *n)
{
    size_t cap = 0;
    *ids = NULL;
    *n = 0;
    chunk_tokenizer_encode(tok, s, len, ids, n, &cap);
}

/* ---- tokenizer.c --------------------------------------------------------- */

static void chunk_tokenizer_encode__known_ids(void **state)
{
    (void)state;
    /* ids from tiktoken 1.0.22's encode_ordinary */
    static const struct { const char *text; uint32_t ids[16]; size_t n; } cases[] = {
        { "hello world", { 15339, 1917 }, 2 },
        { "Hello, World!", { 9906, 11, 4435, 0 }, 4 },
        { "I'm here, they'RE gone, it'S fine",
          { 40, 2846, 1618, 11, 814, 95253, 8208, 11, 433, 13575, 7060 }, 11 },
        { "  leading and trailing  ", { 220, 6522, 323, 28848, 256 }, 5 },
        { "\r\n\r\n", { 881 }, 1 },
        { "\t\tindent\n", { 197, 197, 33940, 198 }, 4 },
        { "1234567", { 4513, 10961, 22 }, 3 },
        { "3.14159", { 18, 13, 9335, 2946 }, 4 },
        { "こんにちは世界", { 90115, 3574, 244, 98220 }, 4 },
        { "👩‍💻 🇫🇷", { 9468, 239, 102, 378, 235, 93273, 119, 11410, 229, 104, 9468, 229, 115 }, 13 },
        { "<|endoftext|>", { 27, 91, 8862, 728, 428, 91, 29 }, 7 },   /* ordinary text */
        { "don't", { 15357, 956 }, 2 },
        { "naïve café", { 3458, 38672, 588, 53050 }, 4 },
        { "\xef\xbf\xbd\xef\xbf\xbd", { 10178 }, 1 },                  /* U+FFFD U+FFFD */
        { "a  \n  b", { 64, 2355, 220, 293 }, 4 },
        { "!!!\n\n", { 33157 }, 1 },
        { "\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6", { 149, 96, 149, 97, 149, 98, 149, 99 }, 8 },
        { "   x", { 256, 865 }, 2 },
        { "x\xe3\x80\x80y", { 87, 23249, 88 }, 3 },                     /* U+3000 */
        { "a\xc2\xa0" "b", { 64, 4194, 65 }, 3 },                       /* U+00A0 */
    };
    NEED_TOK();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t *ids;
        size_t n;
        encode_all(cases[i].text, strlen(cases[i].text), &ids, &n);
        if (n != cases[i].n)
            fail_msg("case %zu \"%s\": %zu ids, expected %zu", i, cases[i].text, n, cases[i].n);
        for (size_t k = 0; k < n; k++)
            if (ids[k] != cases[i].ids[k])
                fail_msg("case %zu \"%s\": id %zu is %u, expected %u", i, cases[i].text, k,
                         ids[k], cases[i].ids[k]);
        assert_int_equal(chunk_tokenizer_count(tok, cases[i].text, strlen(cases[i].text)), n);
        free(ids);
    }
    assert_int_equal(chunk_tokenizer_vocab_size(tok), 100256);
}

static void chunk_tokenizer_count__edges(void **state)
{
    (void)state;
    NEED_TOK();
    assert_int_equal(chunk_tokenizer_count(tok, "", 0), 0);
    uint32_t *ids = NULL;
    size_t n = 0, cap = 0;
    chunk_tokenizer_encode(tok, "", 0, &ids, &n, &cap);
    assert_int_equal(n, 0);

    /* whitespace only: one piece per run, "   " is one token (262) */
    assert_int_equal(chunk_tokenizer_count(tok, "   ", 3), 1);
    assert_int_equal(chunk_tokenizer_count(tok, " \t\r\n", 4), 2);   /* one piece: 220 4574 */

    /* digits group by three: 3000 digits, 1000 pieces */
    char *d = kb_xmalloc(3001);
    for (int i = 0; i < 3000; i++)
        d[i] = (char)('0' + (i * 7) % 10);
    size_t nd = chunk_tokenizer_count(tok, d, 3000);
    assert_true(nd >= 1000 && nd <= 3000);
    free(d);
}

static void chunk_tokenizer_count__one_mb_word(void **state)
{
    (void)state;
    NEED_TOK();
    /* one 1 MB piece of letters: the heap merge keeps this O(n log n) */
    size_t len = 1 << 20;
    char *w = kb_xmalloc(len);
    for (size_t i = 0; i < len; i++)
        w[i] = "etaoinshrdlu"[(i * 2654435761u >> 7) % 12];
    uint32_t *ids;
    size_t n;
    encode_all(w, len, &ids, &n);
    assert_true(n > 1000 && n < len);
    assert_int_equal(chunk_tokenizer_count(tok, w, len), n);
    free(ids);

    /* the same letter 1 MB times: every merge ties with every other */
    memset(w, 'a', len);
    encode_all(w, len, &ids, &n);
    assert_true(n > 0 && n < len / 2);
    free(ids);
    free(w);
}

static void tokenizer_piece_encode__heap_equals_array(void **state)
{
    (void)state;
    NEED_TOK();
    static const char *alphabets[] = { "ab", "etaoin ", "=-", "0123456789", "\xe4\xb8\x80\xe4\xba\x8c" };
    uint32_t a[64], h[64];
    uint64_t rnd = 88172645463325252ull;
    for (int round = 0; round < 2000; round++) {
        unsigned char p[63];
        const char *al = alphabets[round % 5];
        size_t na = strlen(al), m = 2 + round % 61;
        for (size_t i = 0; i < m; i++) {
            rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
            p[i] = (unsigned char)al[rnd % na];
        }
        size_t n1 = tokenizer_piece_encode(tok, p, m, a, 0);
        size_t n2 = tokenizer_piece_encode(tok, p, m, h, 1);
        assert_int_equal(n1, n2);
        assert_memory_equal(a, h, n1 * sizeof a[0]);
    }
}

/* The long pieces of the window tests: kind 0 random [a-z], 1 one letter,
   2 English words with no blank, 3 Han characters (3 bytes each), 4 a run of
   "=-" (a symbol piece).  The same bytes every run (xorshift). */
static void long_piece(char *p, size_t len, int kind)
{
    static const char *words[] = { "the", "database", "vector", "pipeline", "of", "chunk",
                                   "embedding", "index", "query", "knowledge", "a", "source" };
    uint64_t rnd = 88172645463325252ull + (uint64_t)kind;
    size_t i = 0;
    while (i < len) {
        rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
        if (kind == 0) {
            p[i++] = (char)('a' + rnd % 26);
        } else if (kind == 1) {
            p[i++] = 'a';
        } else if (kind == 2) {
            for (const char *w = words[rnd % 12]; *w && i < len; w++)
                p[i++] = *w;
        } else if (kind == 3) {
            unsigned cp = 0x4e00 + (unsigned)(rnd % 2000);   /* CJK ideographs: \p{L} */
            if (i + 3 > len) {
                p[i++] = 'a';
                continue;
            }
            p[i++] = (char)(0xe0 | cp >> 12);
            p[i++] = (char)(0x80 | (cp >> 6 & 0x3f));
            p[i++] = (char)(0x80 | (cp & 0x3f));
        } else {
            p[i++] = "=-"[rnd % 2];
        }
    }
}

/* ids a[0..na) and b[0..nb): how many of the longer differ from the other
   once the common prefix and suffix are set aside */
static size_t ids_differ(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    size_t pre = 0, suf = 0;
    while (pre < na && pre < nb && a[pre] == b[pre])
        pre++;
    while (suf < na - pre && suf < nb - pre && a[na - 1 - suf] == b[nb - 1 - suf])
        suf++;
    return (na > nb ? na : nb) - pre - suf;
}

/*
 * A piece over CHUNK_TOKENIZER_WINDOW bytes is merged in windows; merged
 * whole (bit 2), it is tiktoken's merge (heap = array above, and the
 * reference group).  On 1 MB pieces of each kind (31+ windows) the windowed
 * ids are the whole piece's, id for id.
 */
static void tokenizer_piece_encode__windows_equal_whole(void **state)
{
    (void)state;
    NEED_TOK();
    const size_t len = 1 << 20;
    char *p = kb_xmalloc(len);
    uint32_t *w = kb_xmalloc(len * sizeof *w), *h = kb_xmalloc(len * sizeof *h);
    for (int kind = 0; kind < 5; kind++) {
        long_piece(p, len, kind);
        size_t nw = tokenizer_piece_encode(tok, (const unsigned char *)p, len, w, 0);
        size_t nh = tokenizer_piece_encode(tok, (const unsigned char *)p, len, h, 2);
        size_t d = ids_differ(w, nw, h, nh);
        print_message("kind %d: %zu ids in windows, %zu whole, %zu differ\n", kind, nw, nh, d);
        assert_int_equal(d, 0);
        assert_int_equal(nw, nh);
        assert_int_equal(tokenizer_piece_encode(tok, (const unsigned char *)p, len, NULL, 0), nw);
    }
    free(p);
    free(w);
    free(h);
}

static void chunk_tokenizer_open__errors(void **state)
{
    (void)state;
    struct kb_err err = { 0 };
    struct chunk_tokenizer *t = (struct chunk_tokenizer *)&err;   /* must be reset to NULL */
    char *dir = kbtest_tmpdir();
    char *missing = kb_xasprintf("%s/none.json", dir);
    char *bad_json = kb_xasprintf("%s/bad.json", dir);
    char *bad_pat = kb_xasprintf("%s/pat.json", dir);
    char *bad_b64 = kb_xasprintf("%s/b64.json", dir);
    char *no_bytes = kb_xasprintf("%s/bytes.json", dir);

    assert_int_equal(chunk_tokenizer_open(missing, &t, &err), KB_E_IO);
    assert_null(t);
    assert_non_null(strstr(err.origin, "none.json"));

    kbtest_write(bad_json, "{\"pat_str\": ");
    assert_int_equal(chunk_tokenizer_open(bad_json, &t, &err), KB_E_INPUT);
    assert_non_null(strstr(err.msg, "data/cl100k_base.json"));

    kbtest_write(bad_pat, "{\"pat_str\": \"\\\\w+\", \"bpe_ranks\": \"! 0 YQ==\"}");
    assert_int_equal(chunk_tokenizer_open(bad_pat, &t, &err), KB_E_INPUT);
    assert_non_null(strstr(err.msg, "not cl100k_base"));

    static const char pat[] =
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}|"
        " ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+";
    char *text = kb_xasprintf("{\"pat_str\": \"%s\", \"bpe_ranks\": \"! 0 YQ== Y*==\"}", pat);
    kbtest_write(bad_b64, text);
    free(text);
    assert_int_equal(chunk_tokenizer_open(bad_b64, &t, &err), KB_E_INPUT);
    assert_non_null(strstr(err.msg, "not base64"));

    text = kb_xasprintf("{\"pat_str\": \"%s\", \"bpe_ranks\": \"! 0 YQ== Yg==\"}", pat);
    kbtest_write(no_bytes, text);
    free(text);
    assert_int_equal(chunk_tokenizer_open(no_bytes, &t, &err), KB_E_INPUT);
    assert_non_null(strstr(err.msg, "no token for the byte"));

    /* the default lookup honours KBPIPE_TOKENIZER_FILE, and names it when missing */
    const char *was = getenv("KBPIPE_TOKENIZER_FILE");
    char *saved = was ? kb_xstrdup(was) : NULL;
    setenv("KBPIPE_TOKENIZER_FILE", missing, 1);
    assert_int_equal(chunk_tokenizer_open(NULL, &t, &err), KB_E_CONFIG);
    assert_non_null(strstr(err.msg, "data/cl100k_base.json"));
    if (saved)
        setenv("KBPIPE_TOKENIZER_FILE", saved, 1);
    else
        unsetenv("KBPIPE_TOKENIZER_FILE");
    free(saved);

    kbtest_rmtree(dir);
    free(dir);
    free(missing);
    free(bad_json);
    free(bad_pat);
    free(bad_b64);
    free(no_bytes);
}

/* ---- pretokenize.c ------------------------------------------------------- */

struct joined {
    char out[512];
    size_t len;
};

static void join_piece(const char *p, size_t n, void *ctx)
{
    struct joined *j = ctx;
    if (j->len + n + 2 < sizeof j->out) {
        memcpy(j->out + j->len, p, n);
        j->len += n;
        j->out[j->len++] = '|';
        j->out[j->len] = '\0';
    }
}

static void chunk_tokenizer_pieces__boundaries(void **state)
{
    (void)state;
    /* '|' ends each piece */
    static const struct { const char *text, *pieces; } cases[] = {
        { "Hello world", "Hello| world|" },
        { "they're THEY'RE it'Ll 'sam", "they|'re| THEY|'RE| it|'Ll| '|sam|" },
        { "'hello", "'hello|" },                          /* not a contraction: prefix */
        { "1234567 x", "123|456|7| x|" },
        { "...abc", "...|abc|" },                        /* 4 takes every "." */
        { "!!!\n\nx", "!!!\n\n|x|" },                     /* 4 takes the line breaks */
        { "a   b", "a|  | b|" },                           /* 6: last space joins "b" */
        { "a \n \n  b", "a| \n \n| | b|" },                /* 5 up to the last \n */
        { "x  ", "x|  |" },                                /* 6 at the end of the text */
        { " 12", " |12|" },                                /* 7: lone space */
        { "\tfoo", "\tfoo|" },                             /* any non-letter prefix */
        { "\nfoo", "\n|foo|" },                            /* but not \r or \n */
        { " !?", " !?|" },
        { "\t!?", "\t|!?|" },                              /* only ' ' before 4 */
        { "caf\xc3\xa9s", "caf\xc3\xa9s|" },               /* é is a letter */
        { "e\xcc\x81t", "e|\xcc\x81t|" },                  /* U+0301 is not */
        { "x\xe3\x80\x80y", "x|\xe3\x80\x80y|" },          /* U+3000 is \s */
        { "1\xf0\x91\xbd\x90" "2345", "1\xf0\x91\xbd\x90" "2|345|" },  /* U+11F50: N in 15.0 */
        { "1\xf0\x91\xb7\xa0" "2345", "1|\xf0\x91\xb7\xa0|234|5|" },  /* U+11DE0: N only in 17.0 */
    };
    NEED_TOK();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct joined j = { .len = 0 };
        j.out[0] = '\0';
        chunk_tokenizer_pieces(tok, cases[i].text, strlen(cases[i].text), join_piece, &j);
        if (strcmp(j.out, cases[i].pieces) != 0)
            fail_msg("case %zu: \"%s\" split as \"%s\", expected \"%s\"", i, cases[i].text,
                     j.out, cases[i].pieces);
    }
}

static void sum_piece(const char *p, size_t n, void *ctx)
{
    size_t *sum = ctx;
    *sum += chunk_tokenizer_count(tok, p, n);
}

static void chunk_tokenizer_pieces__counts_add_up(void **state)
{
    (void)state;
    static const char text[] =
        "# Title\r\n\r\nSome prose, with 12345 digits;  tabs\tand   spaces  \n"
        "```c\nint x = 42; // it's\n```\n\xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80!!\n";
    NEED_TOK();
    size_t sum = 0;
    chunk_tokenizer_pieces(tok, text, sizeof text - 1, sum_piece, &sum);
    assert_int_equal(sum, chunk_tokenizer_count(tok, text, sizeof text - 1));
}

/* ---- reference ----------------------------------------------------------- */

/* Finds the byte offset of the piece that holds token number `want`. */
struct locate {
    const char *base;
    size_t want, seen, off;
    int found;
};

static void locate_piece(const char *p, size_t n, void *ctx)
{
    struct locate *at = ctx;
    if (at->found)
        return;
    at->seen += chunk_tokenizer_count(tok, p, n);
    at->off = (size_t)(p - at->base);
    at->found = at->seen > at->want;
}

static void chunk_tokenizer_encode__equals_reference(void **state)
{
    (void)state;
    NEED_TOK();
    const char *root = kbtest_root();
    char *have = NULL;
    if (kbtest_sh(&have, NULL, "command -v node && command -v python3 && "
                  "test -f '%s/.cache/ref/node_modules/tiktoken/package.json'", root) != 0) {
        free(have);
        MISSING("node, python3 or the reference package (.cache/ref) is missing\n");
    }
    free(have);

    char *dir = kbtest_tmpdir();
    char *errout = NULL;
    int rc = kbtest_sh(NULL, &errout,
                       "python3 '%s/tests/data/tokenizer/gen_corpus.py' '%s/corpus.txt' && "
                       "node '%s/tests/ref/encode.js' '%s/corpus.txt' '%s/ref.ids'",
                       root, dir, root, dir, dir);
    if (rc != 0)
        fail_msg("generating or encoding the corpus failed (%d): %s", rc, errout ? errout : "");
    free(errout);

    struct kb_buf text, ref;
    struct kb_err err = { 0 };
    char *path = kb_xasprintf("%s/corpus.txt", dir);
    kb_buf_init(&text);
    kb_buf_init(&ref);
    assert_int_equal(kb_buf_read_file(&text, path, &err), KB_OK);
    free(path);
    path = kb_xasprintf("%s/ref.ids", dir);
    assert_int_equal(kb_buf_read_file(&ref, path, &err), KB_OK);
    free(path);
    assert_true(text.len >= 2000000);

    uint32_t *ids;
    size_t n;
    encode_all(text.data, text.len, &ids, &n);
    size_t n_ref = ref.len / 4;
    const uint32_t *want = (const uint32_t *)(const void *)ref.data;
    size_t k = 0;
    while (k < n && k < n_ref && ids[k] == want[k])
        k++;
    if (k < n || k < n_ref) {
        struct locate at = { .base = text.data, .want = k };
        chunk_tokenizer_pieces(tok, text.data, text.len, locate_piece, &at);
        fail_msg("%zu ids here, %zu from the reference; first difference at id %zu "
                 "(here %u, reference %u), in the piece at byte %zu: \"%.40s\"", n, n_ref, k,
                 k < n ? ids[k] : 0, k < n_ref ? want[k] : 0, at.off, text.data + at.off);
    }
    assert_int_equal(chunk_tokenizer_count(tok, text.data, text.len), n_ref);
    print_message("%zu bytes, %zu ids identical to the reference\n", text.len, n);
    free(ids);
    kb_buf_release(&text);
    kb_buf_release(&ref);
    kbtest_rmtree(dir);
    free(dir);
}

/*
 * Pieces just over CHUNK_TOKENIZER_WINDOW (one cut, where the windows can
 * differ from tiktoken): kinds 0-2 of long_piece (random letters, one
 * letter, words with no blank), one line each, encoded here and by tiktoken.
 * tiktoken's merge is quadratic on such a piece (about 5 s each here).
 */
static void chunk_tokenizer_encode__long_pieces_reference(void **state)
{
    (void)state;
    NEED_TOK();
    const char *root = kbtest_root();
    char *have = NULL;
    if (kbtest_sh(&have, NULL, "command -v node && "
                  "test -f '%s/.cache/ref/node_modules/tiktoken/package.json'", root) != 0) {
        free(have);
        MISSING("node or the reference package (.cache/ref) is missing\n");
    }
    free(have);
    const size_t len = CHUNK_TOKENIZER_WINDOW + 4096, n_kinds = 3;
    struct kb_buf text;
    kb_buf_init(&text);
    char *p = kb_xmalloc(len);
    for (int kind = 0; kind < (int)n_kinds; kind++) {
        long_piece(p, len, kind);
        kb_buf_append(&text, p, len);
        kb_buf_append(&text, "\n", 1);
    }
    free(p);
    char *dir = kbtest_tmpdir();
    char *path = kb_xasprintf("%s/long.txt", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text.data, 1, text.len, f), text.len);
    assert_int_equal(fclose(f), 0);
    char *errout = NULL;
    int rc = kbtest_sh(NULL, &errout, "node '%s/tests/ref/encode.js' '%s' '%s/ref.ids'", root,
                       path, dir);
    if (rc != 0)
        fail_msg("encoding the long pieces with tiktoken failed (%d): %s", rc, errout ? errout : "");
    free(errout);
    free(path);
    struct kb_buf ref;
    struct kb_err err = { 0 };
    kb_buf_init(&ref);
    path = kb_xasprintf("%s/ref.ids", dir);
    assert_int_equal(kb_buf_read_file(&ref, path, &err), KB_OK);
    free(path);

    uint32_t *ids;
    size_t n;
    encode_all(text.data, text.len, &ids, &n);
    size_t n_ref = ref.len / 4;
    const uint32_t *want = (const uint32_t *)(const void *)ref.data;
    size_t d = ids_differ(ids, n, want, n_ref);
    print_message("%zu pieces of %zu bytes: %zu ids here, %zu from tiktoken, %zu differ\n",
                  n_kinds, len, n, n_ref, d);
    assert_int_equal(d, 0);
    assert_int_equal(n, n_ref);
    free(ids);
    kb_buf_release(&text);
    kb_buf_release(&ref);
    kbtest_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tokenizer_c[] = {
        cmocka_unit_test(chunk_tokenizer_encode__known_ids),
        cmocka_unit_test(chunk_tokenizer_count__edges),
        cmocka_unit_test(chunk_tokenizer_count__one_mb_word),
        cmocka_unit_test(tokenizer_piece_encode__heap_equals_array),
        cmocka_unit_test(tokenizer_piece_encode__windows_equal_whole),
        cmocka_unit_test(chunk_tokenizer_open__errors),
    };
    const struct CMUnitTest pretokenize_c[] = {
        cmocka_unit_test(chunk_tokenizer_pieces__boundaries),
        cmocka_unit_test(chunk_tokenizer_pieces__counts_add_up),
    };
    const struct CMUnitTest reference[] = {
        cmocka_unit_test(chunk_tokenizer_encode__equals_reference),
        cmocka_unit_test(chunk_tokenizer_encode__long_pieces_reference),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    int failed = 0;
    failed += cmocka_run_group_tests_name("tokenizer.c", tokenizer_c, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("pretokenize.c", pretokenize_c, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("reference", reference, group_setup, group_teardown);
    return failed;
}
