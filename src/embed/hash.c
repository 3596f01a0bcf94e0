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

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_stop(const char *w, size_t len)
{
    char key[16];
    if (len >= sizeof key)
        return 0;
    memcpy(key, w, len);
    key[len] = '\0';
    const char *k = key;
    return bsearch(&k, STOP, N_STOP, sizeof STOP[0], cmp_str) != NULL;
}

static void add(struct features *f, const unsigned char *bytes, size_t len, float w)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 256;
        f->items = kb_xrealloc(f->items, f->cap * sizeof f->items[0]);
    }
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, bytes, len, KEY);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = (h << 8) | out[i];
    f->items[f->n].h = h;
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
 * Sort a[0..n) by hash, ascending: an LSD radix sort, 8 passes of one byte
 * (a pass whose byte is the same in every key is skipped), through tmp[n].
 * It replaced qsort, which was half of the embedder's time (1,500 features
 * in a 512-token chunk); any correct sort gives the same vector, since
 * equal hashes are summed as one feature and the groups are added in hash
 * order (the golden values in test_embed check it).
 */
static void sort_features(struct feature *a, struct feature *tmp, size_t n)
{
    struct feature *src = a, *dst = tmp;
    for (int shift = 0; shift < 64; shift += 8) {
        size_t count[256] = { 0 };
        for (size_t i = 0; i < n; i++)
            count[(src[i].h >> shift) & 0xff]++;
        if (count[(src[0].h >> shift) & 0xff] == n)
            continue;   /* every key has this byte: nothing to move */
        size_t at = 0;
        for (int d = 0; d < 256; d++) {
            size_t c = count[d];
            count[d] = at;
            at += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i].h >> shift) & 0xff]++] = src[i];
        struct feature *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
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
    sort_features(f.items, tmp, f.n);
    free(tmp);
    memset(out, 0, KB_EMBED_DIM * sizeof out[0]);
    for (size_t i = 0; i < f.n;) {
        size_t j = i;
        while (j < f.n && f.items[j].h == f.items[i].h)
            j++;
        uint64_t h = f.items[i].h;
        float weight = f.items[i].w * (float)(1.0 + log((double)(j - i)));
        size_t dim = (size_t)(h & 0xffffffffu) % KB_EMBED_DIM;
        out[dim] += (h >> 63) ? -weight : weight;
        i = j;
    }
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
