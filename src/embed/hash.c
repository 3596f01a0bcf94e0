/*
 * hash.c - kbpipe-hash-v1, the built-in offline embedder: signed feature
 * hashing of words, word pairs and character trigrams into 1536 dimensions.
 * The model name is fixed forever: ANY change to what follows (the word
 * rules, the stop words, the weights, the key) must ship as a new model
 * name, or stored vectors would silently mix two spaces.
 * docs/embeddings.md explains it with measured similarities.
 *
 * 1. Words.  Bytes are read as UTF-8 where they can be; a word is a run of
 *    ASCII letters and digits, '_' and non-ASCII code points other than
 *    punctuation and spaces (U+0080-U+00BF, U+2000-U+206F, U+3000-U+303F,
 *    U+FEFF).  ASCII is lower-cased.  Single ASCII letters are dropped.
 * 2. Stop words (STOP below, 124 common English words) are dropped; the
 *    remaining "content words" keep their order.  A plural is folded:
 *    "-ies" -> "-y", a final "s" is removed (not after s, u or i), for
 *    words of 4+ bytes.  When a text has no content word its stop words
 *    count instead, and a text with no word at all is one feature: its
 *    bytes.  So no text gets a zero vector.
 * 3. Features and weights (w below):
 *      "u" word                     W_UNI     each content word
 *      "b" word " " next word       W_BI      adjacent content words
 *      "c" 3 bytes of "<word>"      W_TRI     each character trigram of a
 *                                             content word (bytes, padded)
 *    A feature seen tf times in the text weighs w * (1 + ln tf): sublinear
 *    tf, so a repeated word does not drown the rest.  (IDF needs corpus
 *    statistics that one chunk does not have.)
 * 4. Hashing.  h = crypto_shorthash (SipHash-2-4, 64 bits, little-endian
 *    output) of the feature bytes under the 16-byte key KEY below.
 *    Dimension = (h mod 2^32) mod 1536; sign = + when bit 63 of h is 0.
 *    v[dim] += sign * weight.  Then v is L2-normalized.
 * Equal features sum in the order of their hashes, so the floats are the
 * same on every run and machine (tested against stored values).
 */
#include "embed/embed_int.h"

#include <assert.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* "kbpipe-hash-v1" padded with NUL to crypto_shorthash_KEYBYTES (16) */
static const unsigned char KEY[crypto_shorthash_KEYBYTES] = "kbpipe-hash-v1\0";

#define W_UNI 1.0f
#define W_BI  0.6f
#define W_TRI 0.25f

/* Sorted for bsearch (strcmp order). */
static const char *const STOP[] = {
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between",
    "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during",
    "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her",
    "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into",
    "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor",
    "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours",
    "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such",
    "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there",
    "these", "they", "this", "those", "through", "to", "too", "under", "until", "up",
    "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
    "why", "will", "with", "would", "you", "your", "yours",
};
#define N_STOP (sizeof STOP / sizeof STOP[0])

struct feature {
    uint64_t h;
    float w;
};

struct features {
    struct feature *items;
    size_t n, cap;
    unsigned char scratch[8 + 2 * 256];   /* one feature's bytes */
};

/*
 * STOP_FIRST[c - 'a'] .. STOP_FIRST[c - 'a' + 1]: the STOP words that begin
 * with c (STOP is sorted).  It replaced a bsearch with strcmp on a copy of
 * every word (6% of a run's client CPU, docs/loading.md); a stop word has
 * 1-10 letters a-z.  test_embed's bit-exact check runs every STOP word and
 * near misses through it.
 */
static const unsigned char STOP_FIRST[27] = {
    0, 14, 24, 26, 32, 33, 37, 37, 50, 58, 59, 59, 59, 64,
    68, 81, 81, 81, 81, 87, 103, 106, 107, 121, 121, 124, 124,
};
#define STOP_MAX_LEN 10

static int is_stop(const char *w, size_t len)
{
    unsigned c = (unsigned char)w[0];
    if (len > STOP_MAX_LEN || c < 'a' || c > 'z')
        return 0;
    for (unsigned i = STOP_FIRST[c - 'a']; i < STOP_FIRST[c - 'a' + 1]; i++)
        if (strncmp(STOP[i], w, len) == 0 && STOP[i][len] == '\0')
            return 1;
    return 0;
}

/*
 * SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012) of bytes[0..len) under KEY: the value libsodium's
 * crypto_shorthash() returns, as a number (its output bytes read
 * little-endian).  Written out here because kbpipe-hash-v1 hashes ~1,500
 * features of 4-12 bytes per chunk, and the library call and the bytes
 * round trip were a sixth of a run's client CPU; test_embed checks it
 * against crypto_shorthash() for every length 0..300.
 */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                       \
    do {                                                                               \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                      \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                         \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                         \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                      \
    } while (0)

static uint64_t le64(const unsigned char *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

KB_TESTABLE uint64_t embed_hash_siphash(const unsigned char *bytes, size_t len)
{
    const uint64_t k0 = le64(KEY), k1 = le64(KEY + 8);
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    size_t full = len & ~(size_t)7;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = le64(bytes + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)(len & 0xff) << 56;
    for (size_t i = len - full; i > 0; i--)
        last |= (uint64_t)bytes[full + i - 1] << (8 * (i - 1));
    v3 ^= last;
    SIPROUND;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static void add(struct features *f, const unsigned char *bytes, size_t len, float w)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 256;
        f->items = kb_xrealloc(f->items, f->cap * sizeof f->items[0]);
    }
    f->items[f->n].h = embed_hash_siphash(bytes, len);
    f->items[f->n].w = w;
    f->n++;
}

/* Add a feature made of a tag byte and up to two byte strings joined by ' '. */
static void add_tagged(struct features *f, char tag, const char *a, size_t alen, const char *b,
                       size_t blen, float w)
{
    /* words longer than 255 bytes are cut for hashing: still one feature each */
    if (alen > 255)
        alen = 255;
    if (blen > 255)
        blen = 255;
    unsigned char *p = f->scratch;
    size_t n = 0;
    p[n++] = (unsigned char)tag;
    memcpy(p + n, a, alen);
    n += alen;
    if (b) {
        p[n++] = ' ';
        memcpy(p + n, b, blen);
        n += blen;
    }
    add(f, p, n, w);
}

/* Bytes of the code point at s (1..4), and whether it separates words. */
static size_t scan_char(const unsigned char *s, size_t avail, int *is_sep)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *is_sep = !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_');
        return 1;
    }
    int n = kb_utf8_seq_len(s, avail);
    if (n == 0) {
        *is_sep = 0;   /* a stray byte is part of a word: any bytes are allowed */
        return 1;
    }
    unsigned cp = n == 2 ? ((c & 0x1fu) << 6) | (s[1] & 0x3fu)
                  : n == 3 ? ((c & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu)
                           : 0x10000;
    *is_sep = (cp >= 0x80 && cp <= 0xbf) || (cp >= 0x2000 && cp <= 0x206f) ||
              (cp >= 0x3000 && cp <= 0x303f) || cp == 0xfeff;
    return (size_t)n;
}

struct word {
    const char *s;
    size_t len;
};

/* Lower-cased words of text, in `lower` (len bytes); returns how many. */
static size_t split_words(const char *text, size_t len, char *lower, struct word *words)
{
    size_t n = 0, i = 0, start = 0;
    int in_word = 0;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)text[k];
        lower[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    while (i < len) {
        int is_sep;
        size_t step = scan_char((const unsigned char *)lower + i, len - i, &is_sep);
        if (!is_sep && !in_word) {
            start = i;
            in_word = 1;
        } else if (is_sep && in_word) {
            words[n++] = (struct word){ lower + start, i - start };
            in_word = 0;
        }
        i += step;
    }
    if (in_word)
        words[n++] = (struct word){ lower + start, len - start };
    return n;
}

/* Fold a plural (see the top of the file); the word's bytes are changed in place. */
static size_t fold_plural(char *w, size_t len)
{
    if (len < 4)
        return len;
    if (memcmp(w + len - 3, "ies", 3) == 0) {
        w[len - 3] = 'y';
        return len - 2;
    }
    char p = w[len - 2];
    if (w[len - 1] == 's' && p != 's' && p != 'u' && p != 'i')
        return len - 1;
    return len;
}

static void add_trigrams(struct features *f, const char *w, size_t len)
{
    char pad[258];
    if (len > 256)
        len = 256;
    pad[0] = '<';
    memcpy(pad + 1, w, len);
    pad[len + 1] = '>';
    for (size_t i = 0; i + 3 <= len + 2; i++)
        add_tagged(f, 'c', pad + i, 3, NULL, 0, W_TRI);
}

/*
 * Add the features to out[] as kbpipe-hash-v1 defines it: equal hashes are
 * one feature of weight w * (1 + ln tf), and the features are added in
 * ascending hash order.  Float addition is not associative, so that order
 * is part of the model; but it matters only among the features of one
 * dimension, so the features are bucketed by dimension (a counting sort,
 * stable, through tmp[n]) and each bucket (about one feature on average:
 * ~1,500 features over 1,536 dimensions) is insertion-sorted by hash,
 * stably.  It replaced a sort of all features by their 64-bit hash (an
 * 8-pass radix sort, the embedder's largest cost); each dimension receives
 * the same additions in the same order, so every bit is the same
 * (test_embed, embed_hash_text__bit_exact).  The weight of a group is its
 * first feature's (in the order they were added), as before.
 */
#define N_TF_MEMO 64

static void sum_features(const struct feature *a, struct feature *tmp, size_t n,
                         float out[KB_EMBED_DIM])
{
    static_assert(KB_EMBED_DIM < 65536, "bucket offsets are 32-bit, dims fit");
    uint32_t start[KB_EMBED_DIM + 1] = { 0 };
    for (size_t i = 0; i < n; i++)
        start[(a[i].h & 0xffffffffu) % KB_EMBED_DIM + 1]++;
    for (size_t d = 1; d <= KB_EMBED_DIM; d++)
        start[d] += start[d - 1];
    uint32_t at[KB_EMBED_DIM];
    memcpy(at, start, sizeof at);
    for (size_t i = 0; i < n; i++)
        tmp[at[(a[i].h & 0xffffffffu) % KB_EMBED_DIM]++] = a[i];
    memset(out, 0, KB_EMBED_DIM * sizeof out[0]);
    float tf_memo[N_TF_MEMO] = { 0 };   /* 0: not computed yet (1 + ln tf >= 1) */
    for (size_t d = 0; d < KB_EMBED_DIM; d++) {
        struct feature *b = tmp + start[d];
        size_t m = start[d + 1] - start[d];
        for (size_t i = 1; i < m; i++) {   /* stable insertion sort by hash */
            struct feature x = b[i];
            size_t j = i;
            for (; j > 0 && b[j - 1].h > x.h; j--)
                b[j] = b[j - 1];
            b[j] = x;
        }
        for (size_t i = 0; i < m;) {
            size_t j = i + 1;
            while (j < m && b[j].h == b[i].h)
                j++;
            /* log(1) is exactly 0: a feature seen once weighs w, no call;
             * a small tf's factor is computed once per text, the same
             * expression, so the same bits */
            size_t tf = j - i;
            float factor;
            if (tf == 1) {
                factor = 1.0f;
            } else if (tf < N_TF_MEMO) {
                if (tf_memo[tf] == 0.0f)
                    tf_memo[tf] = (float)(1.0 + log((double)tf));
                factor = tf_memo[tf];
            } else {
                factor = (float)(1.0 + log((double)tf));
            }
            float weight = b[i].w * factor;
            out[d] += (b[i].h >> 63) ? -weight : weight;
            i = j;
        }
    }
}

void embed_hash_text(const char *text, size_t len, float out[KB_EMBED_DIM])
{
    struct features f = { 0 };
    char *lower = kb_xmalloc(len + 1);
    /* at most one word per two bytes (a byte and a separator), plus one */
    struct word *words = kb_xmalloc((len / 2 + 1) * sizeof *words);
    size_t n_words = split_words(text, len, lower, words);

    size_t n_content = 0;
    for (size_t i = 0; i < n_words; i++) {
        struct word w = words[i];
        int is_letter = (unsigned char)w.s[0] >= 'a' && (unsigned char)w.s[0] <= 'z';
        if (w.len == 1 && is_letter)
            continue;
        if (is_stop(w.s, w.len))
            continue;
        w.len = fold_plural((char *)w.s, w.len);
        words[n_content++] = w;
    }
    if (n_content == 0) {
        /* only stop words (or single letters): they are all the text has */
        n_content = split_words(text, len, lower, words);
    }
    for (size_t i = 0; i < n_content; i++) {
        add_tagged(&f, 'u', words[i].s, words[i].len, NULL, 0, W_UNI);
        if (i + 1 < n_content)
            add_tagged(&f, 'b', words[i].s, words[i].len, words[i + 1].s, words[i + 1].len,
                       W_BI);
        add_trigrams(&f, words[i].s, words[i].len);
    }
    if (f.n == 0)   /* no word at all: punctuation, symbols, or nothing */
        add(&f, (const unsigned char *)text, len, W_UNI);

    struct feature *tmp = kb_xmalloc(f.n * sizeof *tmp);
    sum_features(f.items, tmp, f.n, out);
    free(tmp);
    char why[96];
    if (embed_normalize_one(out, KB_EMBED_DIM, why, sizeof why) != 0) {
        /* every feature cancelled out (opposite signs, equal weights, same
         * dimension): astronomically rare; a fixed unit vector keeps the
         * promise that this never fails */
        memset(out, 0, KB_EMBED_DIM * sizeof out[0]);
        out[0] = 1.0f;
    }
    free(words);
    free(lower);
    free(f.items);
}
