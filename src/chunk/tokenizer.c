/*
 * tokenizer.c - cl100k_base: the rank table, byte-pair merging, and the
 * public calls of tokenizer.h.  The pre-split is pretokenize.c's.
 *
 * The data file is tiktoken's encoders/cl100k_base.json (npm package
 * tiktoken 1.0.22), one JSON object:
 *   KEY              VALUE
 *   pat_str          the pre-split regex; must be the one pretokenize.c implements
 *   special_tokens   {"<|endoftext|>": 100257, ...}; unused (encode_ordinary)
 *   bpe_ranks        lines "<tag> <first rank> <b64> <b64> ...": the i-th base64
 *                    token of a line has rank <first rank> + i.  cl100k_base is
 *                    one line, "! 0 IQ== Ig== ...", ranks 0..100255.
 * A token's id is its rank.
 *
 * Encoding, as tiktoken's CoreBPE::encode_ordinary: for each piece of the
 * pre-split, a piece that is itself in the table is one token; otherwise its
 * bytes start as one part each and the adjacent pair whose concatenation has
 * the lowest rank merges, the leftmost on ties, until no pair has a rank.  A
 * piece's ids are the ranks of its final parts (a merged part's rank is the
 * rank of the pair that made it, so no lookup is repeated).  Short pieces run
 * that loop over an array (quadratic, fast for words); pieces of HEAP_MIN_LEN
 * bytes or more use a heap keyed by (rank, offset), which picks the same pair
 * at every step in O(n log n).
 *
 * The one place kbpipe departs from tiktoken: a piece longer than
 * PIECE_WINDOW bytes (32 KiB: only a run of letters, or of symbols, with no
 * blank, say 8 MB of [a-z]) is merged in windows, since the heap merge takes
 * about 61 bytes of memory per byte of piece (490 MB for 8 MB; tiktoken's
 * own merge is quadratic there: 22 s for 72 KiB of letters).  A window is PIECE_WINDOW bytes from the
 * current start; its tokens that end within its first PIECE_WINDOW -
 * WINDOW_MARGIN bytes are kept, and the next window starts where the last
 * kept token ends, so the 4 KiB after each cut is merged again with what
 * follows it.  Memory: one window's merge, about 2 MB, whatever the piece.
 * Ids can differ from tiktoken's only inside such a piece, where a merge
 * near a cut would have gone the other way with the text beyond the window
 * in view (docs/tokenizer.md, "Pieces over 32 KiB", has what the tests show).
 *
 * The table is an open-addressed hash of byte strings (all stored in one
 * blob) to ranks, at most half full.  Nothing is mutated after open, so a
 * tokenizer can be shared by threads.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chunk/tokenizer.h"
#include "chunk/tokenizer_int.h"

/* The advice of every message about a damaged table. */
#define RESTORE "restore the shipped table (git checkout -- data/cl100k_base.json)"

#define NO_RANK UINT32_MAX
#ifndef HEAP_MIN_LEN
#define HEAP_MIN_LEN 64           /* pieces this long or longer merge with a heap */
#endif
#define PIECE_WINDOW CHUNK_TOKENIZER_WINDOW   /* pieces longer than this merge in windows */
#define WINDOW_MARGIN 4096        /* the bytes at a window's end merged again in the next */

static const char CL100K_PAT[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct slot {
    uint32_t hash;     /* low bits of the key's hash, to skip most memcmp */
    uint32_t off;      /* key bytes: blob[off .. off + len) */
    uint32_t len;      /* 0 = empty slot */
    uint32_t rank;
};

struct chunk_tokenizer {
    struct chunk_pretok pt;
    unsigned char *blob;      /* every token's bytes, back to back */
    struct slot *slots;
    size_t mask;              /* number of slots - 1 */
    size_t n_ranks;
    size_t max_len;           /* longest token, in bytes */
    uint32_t byte_rank[256];  /* rank of each single byte */
};

/* ---- the rank table ------------------------------------------------------ */

/* Up to 8 bytes of p as an integer (host order: the value only feeds a hash). */
static inline uint64_t load_upto8(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    uint32_t w;
    uint16_t h;

    /* fixed-size copies compile to plain loads; memcpy(.., n) would be a call */
    switch (n) {
    case 8: memcpy(&v, p, 8); return v;
    case 7: memcpy(&w, p, 4); memcpy(&h, p + 4, 2); return w | (uint64_t)h << 32 | (uint64_t)p[6] << 48;
    case 6: memcpy(&w, p, 4); memcpy(&h, p + 4, 2); return w | (uint64_t)h << 32;
    case 5: memcpy(&w, p, 4); return w | (uint64_t)p[4] << 32;
    case 4: memcpy(&w, p, 4); return w;
    case 3: memcpy(&h, p, 2); return h | (uint64_t)p[2] << 16;
    case 2: memcpy(&h, p, 2); return h;
    case 1: return p[0];
    default: return 0;
    }
}

/* A 64-bit multiply-xorshift hash of short byte strings. */
static inline uint64_t hash_bytes(const unsigned char *p, size_t n)
{
    const uint64_t k = 0x9e3779b97f4a7c15ull;
    uint64_t h = (uint64_t)n * k;

    while (n > 8) {
        h = (h ^ load_upto8(p, 8)) * k;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    h = (h ^ load_upto8(p, n)) * k;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    return h ^ (h >> 32);
}

static inline uint32_t rank_of(const struct chunk_tokenizer *tok, const unsigned char *p,
                               size_t n)
{
    if (n > tok->max_len)
        return NO_RANK;
    uint64_t h = hash_bytes(p, n);
    for (size_t i = (size_t)h & tok->mask;; i = (i + 1) & tok->mask) {
        const struct slot *s = &tok->slots[i];
        if (s->len == 0)
            return NO_RANK;
        if (s->hash == (uint32_t)h && s->len == n && memcmp(tok->blob + s->off, p, n) == 0)
            return s->rank;
    }
}

/* Insert blob[off..off+n) with its rank; 0 when the key was already there. */
static int table_put(struct chunk_tokenizer *tok, uint32_t off, uint32_t n, uint32_t rank)
{
    uint64_t h = hash_bytes(tok->blob + off, n);
    for (size_t i = (size_t)h & tok->mask;; i = (i + 1) & tok->mask) {
        struct slot *s = &tok->slots[i];
        if (s->len == 0) {
            *s = (struct slot){ (uint32_t)h, off, n, rank };
            return 1;
        }
        if (s->len == n && memcmp(tok->blob + s->off, tok->blob + off, n) == 0)
            return 0;
    }
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decode base64 s[0..n) (padded) into out; its length, or -1 if malformed. */
static long b64_decode(const char *s, size_t n, unsigned char *out)
{
    long len = 0;
    if (n == 0 || n % 4 != 0)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            v[j] = b64_val((unsigned char)s[i + j]);
            if (s[i + j] == '=' && i + 4 == n && j >= 2) {
                v[j] = 0;
                pad++;
            } else if (v[j] < 0 || pad) {
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[len++] = (unsigned char)(w >> 16);
        if (pad < 2) out[len++] = (unsigned char)(w >> 8);
        if (pad < 1) out[len++] = (unsigned char)w;
    }
    return len;
}

/* Parse bpe_ranks text into tok's blob and table.  KB_E_INPUT on a defect. */
static enum kb_code ranks_parse(struct chunk_tokenizer *tok, const char *text, size_t len,
                                const char *path, struct kb_err *err)
{
    size_t n_fields = 1;
    for (size_t i = 0; i < len; i++)
        n_fields += text[i] == ' ' || text[i] == '\n';
    size_t n_slots = 1024;
    while (n_slots < 2 * n_fields)
        n_slots *= 2;
    tok->slots = kb_xcalloc(n_slots, sizeof tok->slots[0]);
    tok->mask = n_slots - 1;
    tok->blob = kb_xmalloc(len / 4 * 3 + 4);   /* decoded bytes never exceed this */
    for (int b = 0; b < 256; b++)
        tok->byte_rank[b] = NO_RANK;

    size_t blob_len = 0, line_no = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        line_no++;
        const char *tag_end = memchr(p, ' ', (size_t)(eol - p));
        if (eol == p) {               /* blank line */
            p = eol + 1;
            continue;
        }
        char *num_end;
        errno = 0;
        unsigned long first = tag_end ? strtoul(tag_end + 1, &num_end, 10) : 0;
        if (!tag_end || errno || num_end == tag_end + 1 || first > INT32_MAX ||
            (num_end < eol && *num_end != ' '))
            return KB_FAIL_AT(err, KB_E_INPUT, path,
                              "bpe_ranks line %zu does not start \"<tag> <first rank> \"; "
                              RESTORE, line_no);
        uint64_t rank = first;
        for (const char *f = num_end; f < eol; rank++) {
            f++;   /* the space before each token */
            const char *fe = memchr(f, ' ', (size_t)(eol - f));
            if (!fe)
                fe = eol;
            long n = b64_decode(f, (size_t)(fe - f), tok->blob + blob_len);
            if (n <= 0 || rank >= NO_RANK)
                return KB_FAIL_AT(err, KB_E_INPUT, path,
                                  "bpe_ranks line %zu: token for rank %llu is not base64: "
                                  "\"%.40s\"; " RESTORE,
                                  line_no, (unsigned long long)rank, f);
            if (!table_put(tok, (uint32_t)blob_len, (uint32_t)n, (uint32_t)rank))
                return KB_FAIL_AT(err, KB_E_INPUT, path,
                                  "bpe_ranks line %zu: rank %llu repeats an earlier token; "
                                  RESTORE,
                                  line_no, (unsigned long long)rank);
            if (n == 1)
                tok->byte_rank[tok->blob[blob_len]] = (uint32_t)rank;
            if ((size_t)n > tok->max_len)
                tok->max_len = (size_t)n;
            blob_len += (size_t)n;
            tok->n_ranks++;
            f = fe;
        }
        p = eol + 1;
    }
    for (int b = 0; b < 256; b++)
        if (tok->byte_rank[b] == NO_RANK)
            return KB_FAIL_AT(err, KB_E_INPUT, path,
                              "bpe_ranks has no token for the byte 0x%02x, so some text "
                              "could not be encoded; " RESTORE, b);
    return KB_OK;
}

static enum kb_code load_file(struct chunk_tokenizer *tok, const char *path, struct kb_err *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        if (jerr.line < 0)   /* jansson could not read the file at all */
            return KB_FAIL_AT(err, KB_E_IO, path, "cannot read the cl100k_base rank table: %s",
                              jerr.text);
        return KB_FAIL(err, KB_E_INPUT,
                       (&(struct kb_origin){ .path = path, .line = jerr.line, .col = jerr.column }),
                       "rank table is not valid JSON: %s; " RESTORE, jerr.text);
    }
    enum kb_code rc = KB_OK;
    json_t *pat = json_object_get(root, "pat_str");
    json_t *ranks = json_object_get(root, "bpe_ranks");
    if (!json_is_string(pat) || !json_is_string(ranks))
        rc = KB_FAIL_AT(err, KB_E_INPUT, path,
                        "not a tiktoken encoder file: \"pat_str\" and \"bpe_ranks\" must be "
                        "strings; " RESTORE);
    else if (strcmp(json_string_value(pat), CL100K_PAT) != 0)
        rc = KB_FAIL_AT(err, KB_E_INPUT, path,
                        "pat_str is \"%.80s\", not cl100k_base's pre-split; point "
                        "KBPIPE_TOKENIZER_FILE at tiktoken's encoders/cl100k_base.json",
                        json_string_value(pat));
    else
        rc = ranks_parse(tok, json_string_value(ranks), json_string_length(ranks), path, err);
    json_decref(root);
    return rc;
}

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

enum kb_code chunk_tokenizer_open(const char *path, struct chunk_tokenizer **out,
                                  struct kb_err *err)
{
    static const char rel[] = "data/cl100k_base.json";
    char sys[4200];
    snprintf(sys, sizeof sys, "%s/cl100k_base.json", kb_datadir());
    const char *env = getenv("KBPIPE_TOKENIZER_FILE");

    *out = NULL;
    if (!path && env && *env) {
        if (!file_exists(env))
            return KB_FAIL_AT(err, KB_E_CONFIG, env,
                              "KBPIPE_TOKENIZER_FILE names no readable file; unset it to use "
                              "the default, data/cl100k_base.json in the checkout");
        path = env;
    }
    if (!path)
        path = file_exists(rel) ? rel : file_exists(sys) ? sys : NULL;
    if (!path)
        return KB_FAIL_AT(err, KB_E_CONFIG, "cl100k_base.json",
                          "the token rank table is missing (tried $KBPIPE_TOKENIZER_FILE, "
                          "%s, %s); run kbpipe in its checkout (it "
                          "ships data/cl100k_base.json) or 'make install' it", rel, sys);

    struct chunk_tokenizer *tok = kb_xcalloc(1, sizeof *tok);
    enum kb_code rc = load_file(tok, path, err);
    if (rc != KB_OK) {
        chunk_tokenizer_free(tok);
        return rc;
    }
    chunk_pretok_init(&tok->pt);
    *out = tok;
    return KB_OK;
}

void chunk_tokenizer_free(struct chunk_tokenizer *tok)
{
    if (!tok)
        return;
    chunk_pretok_release(&tok->pt);
    free(tok->blob);
    free(tok->slots);
    free(tok);
}

size_t chunk_tokenizer_vocab_size(const struct chunk_tokenizer *tok)
{
    return tok->n_ranks;
}

/* ---- byte-pair merge ----------------------------------------------------- */

/*
 * Small pieces: tiktoken's loop.  start[i] is where part i begins
 * (start[n_parts] = m); pair[i] the rank of parts i and i+1 together.
 * Writes the ids to out (when not NULL) and returns how many.
 */
static size_t merge_small(const struct chunk_tokenizer *tok, const unsigned char *p, size_t m,
                          uint32_t *out)
{
    uint32_t start[HEAP_MIN_LEN + 1], pair[HEAP_MIN_LEN], part[HEAP_MIN_LEN];
    size_t n = m;   /* parts */

    for (size_t i = 0; i <= m; i++)
        start[i] = (uint32_t)i;
    for (size_t i = 0; i < m; i++)
        part[i] = tok->byte_rank[p[i]];
    for (size_t i = 0; i + 1 < n; i++)
        pair[i] = rank_of(tok, p + i, 2);
    while (n > 1) {
        size_t best = 0;
        uint32_t r = pair[0];
        for (size_t i = 1; i + 1 < n; i++)
            if (pair[i] < r) {
                r = pair[i];
                best = i;
            }
        if (r == NO_RANK)
            break;
        /* part best absorbs part best+1 */
        part[best] = r;   /* the merged span's rank is the pair's */
        memmove(start + best + 1, start + best + 2, (n - best - 1) * sizeof start[0]);
        memmove(part + best + 1, part + best + 2, (n - best - 2) * sizeof part[0]);
        memmove(pair + best + 1, pair + best + 2,
                (n > best + 3 ? n - best - 3 : 0) * sizeof pair[0]);
        n--;
        if (best + 1 < n)
            pair[best] = rank_of(tok, p + start[best], start[best + 2] - start[best]);
        if (best > 0)
            pair[best - 1] = rank_of(tok, p + start[best - 1], start[best + 1] - start[best - 1]);
    }
    if (out)
        memcpy(out, part, n * sizeof out[0]);
    return n;
}

/* The pair of the part at pos, spanning [pos, end); key = rank << 32 | pos. */
struct heap_ent {
    uint64_t key;
    uint32_t end;
};

static inline int ent_less(const struct heap_ent *a, const struct heap_ent *b)
{
    return a->key < b->key;
}

static inline struct heap_ent ent_make(uint32_t rank, uint32_t pos, uint32_t end)
{
    return (struct heap_ent){ (uint64_t)rank << 32 | pos, end };
}

static void heap_push(struct heap_ent *h, size_t *n, struct heap_ent e)
{
    size_t i = (*n)++;
    while (i > 0 && ent_less(&e, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = e;
}

static struct heap_ent heap_pop(struct heap_ent *h, size_t *n)
{
    struct heap_ent top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && ent_less(&h[c + 1], &h[c]))
            c++;
        if (!ent_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

/*
 * Long pieces: the same merges as merge_small, in O(m log m).  Parts are a
 * linked list over byte offsets; next[pos] is where the next part starts
 * (m after the last).  A heap entry is stale when its part has merged away
 * or its pair no longer ends at `end`; the rank is a function of the span,
 * so a live entry's rank is current.  Only the parts that end at or before
 * keep_to (all when keep_to >= m) are counted and written; *kept is where
 * the last of them ends (> 0 when keep_to >= the longest token).
 */
static size_t merge_heap(const struct chunk_tokenizer *tok, const unsigned char *p, size_t m,
                         uint32_t *out, size_t keep_to, size_t *kept)
{
    uint32_t *next = kb_xmalloc((m + 1) * sizeof next[0]);
    uint32_t *prev = kb_xmalloc((m + 1) * sizeof prev[0]);
    uint32_t *part = out ? kb_xmalloc(m * sizeof part[0]) : NULL;   /* rank of the part at pos */
    unsigned char *dead = kb_xcalloc(m + 1, 1);
    struct heap_ent *heap = kb_xmalloc(3 * m * sizeof heap[0]);
    size_t n_heap = 0, n = m;

    for (size_t i = 0; i <= m; i++) {
        next[i] = (uint32_t)(i + 1);
        prev[i] = (uint32_t)(i - 1);   /* prev[0] is never read */
    }
    for (size_t i = 0; part && i < m; i++)
        part[i] = tok->byte_rank[p[i]];
    for (size_t i = 0; i + 1 < m; i++) {
        uint32_t r = rank_of(tok, p + i, 2);
        if (r != NO_RANK)
            heap_push(heap, &n_heap, ent_make(r, (uint32_t)i, (uint32_t)i + 2));
    }
    while (n_heap > 0) {
        struct heap_ent e = heap_pop(heap, &n_heap);
        uint32_t pos = (uint32_t)e.key;
        if (dead[pos] || next[pos] >= m || next[next[pos]] != e.end)
            continue;
        uint32_t q = next[pos];
        next[pos] = next[q];
        prev[next[q]] = pos;
        dead[q] = 1;
        n--;
        if (part)
            part[pos] = (uint32_t)(e.key >> 32);
        uint32_t end = next[pos];
        if (end < m) {
            uint32_t r = rank_of(tok, p + pos, next[end] - pos);
            if (r != NO_RANK)
                heap_push(heap, &n_heap, ent_make(r, pos, next[end]));
        }
        if (pos > 0) {
            uint32_t a = prev[pos];
            uint32_t r = rank_of(tok, p + a, end - a);
            if (r != NO_RANK)
                heap_push(heap, &n_heap, ent_make(r, a, end));
        }
    }
    *kept = m;
    if (keep_to < m) {   /* a window: the parts before the margin only */
        size_t k = 0, end = 0;
        for (uint32_t i = 0; i < m && next[i] <= keep_to; i = next[i]) {
            if (out)
                out[k] = part[i];
            k++;
            end = next[i];
        }
        n = k;
        *kept = end;
    } else if (out) {
        size_t k = 0;
        for (uint32_t i = 0; i < m; i = next[i])
            out[k++] = part[i];
    }
    free(part);
    free(next);
    free(prev);
    free(dead);
    free(heap);
    return n;
}

/* A piece of at most PIECE_WINDOW bytes (m >= 1), as tiktoken encodes it. */
static size_t encode_whole(const struct chunk_tokenizer *tok, const unsigned char *p, size_t m,
                           uint32_t *out, int force_heap)
{
    size_t kept;
    if (m == 1) {
        if (out)
            out[0] = tok->byte_rank[p[0]];
        return 1;
    }
    uint32_t r = rank_of(tok, p, m);
    if (r != NO_RANK) {
        if (out)
            out[0] = r;
        return 1;
    }
    if (m < HEAP_MIN_LEN && !force_heap)
        return merge_small(tok, p, m, out);
    return merge_heap(tok, p, m, out, m, &kept);
}

/*
 * Encode one piece p[0..m), m >= 1: ids to out (room for m) when not NULL;
 * returns how many.  Over PIECE_WINDOW bytes, in windows (the file's head).
 * `force` is for the tests: bit 1 merges short pieces with the heap, bit 2
 * merges a long piece whole, as tiktoken does (unbounded memory).
 */
KB_TESTABLE size_t tokenizer_piece_encode(const struct chunk_tokenizer *tok,
                                          const unsigned char *p, size_t m, uint32_t *out,
                                          int force)
{
    size_t n = 0, a = 0;
    while (!(force & 2) && m - a > PIECE_WINDOW) {
        size_t kept;
        n += merge_heap(tok, p + a, PIECE_WINDOW, out ? out + n : NULL,
                        PIECE_WINDOW - WINDOW_MARGIN, &kept);
        assert(kept > 0);   /* a part is one token, at most max_len (< 28 KiB) bytes */
        if (kept == 0)
            break;
        a += kept;
    }
    return n + encode_whole(tok, p + a, m - a, out ? out + n : NULL, force & 1);
}

/* ---- the public calls ---------------------------------------------------- */

size_t chunk_tokenizer_count(const struct chunk_tokenizer *tok, const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t total = 0;
    for (size_t i = 0, j; i < len; i = j) {
        j = chunk_pretok_next(&tok->pt, s, len, i);
        total += tokenizer_piece_encode(tok, s + i, j - i, NULL, 0);
    }
    return total;
}

void chunk_tokenizer_encode(const struct chunk_tokenizer *tok, const char *text, size_t len,
                            uint32_t **ids, size_t *n, size_t *cap)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0, j; i < len; i = j) {
        j = chunk_pretok_next(&tok->pt, s, len, i);
        if (*cap - *n < j - i) {   /* a piece never has more tokens than bytes */
            size_t want = *cap ? *cap : 256;
            while (want - *n < j - i)
                want *= 2;
            *ids = kb_xrealloc(*ids, want * sizeof **ids);
            *cap = want;
        }
        *n += tokenizer_piece_encode(tok, s + i, j - i, *ids + *n, 0);
    }
}

void chunk_tokenizer_pieces(const struct chunk_tokenizer *tok, const char *text, size_t len,
                            void (*fn)(const char *p, size_t n, void *ctx), void *ctx)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0, j; i < len; i = j) {
        j = chunk_pretok_next(&tok->pt, s, len, i);
        fn(text + i, j - i, ctx);
    }
}

size_t chunk_tokenizer_piece_end(const struct chunk_tokenizer *tok, const char *text, size_t len,
                                 size_t i)
{
    return chunk_pretok_next(&tok->pt, (const unsigned char *)text, len, i);
}
