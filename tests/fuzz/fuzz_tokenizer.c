/*
 * fuzz_tokenizer.c - the cl100k_base encoder (src/chunk: the pre-split
 * scanner of pretokenize.c and the byte-pair merge of tokenizer.c) on any
 * bytes, valid UTF-8 or not.  The rank table is found as kbpipe finds it
 * ($KBPIPE_TOKENIZER_FILE, else data/cl100k_base.json from the
 * checkout, docs/tokenizer.md).
 *
 * The encoder has no decode, so the harness reads the same table itself
 * (id -> bytes) and checks:
 *   - decoding the ids of encode() gives back exactly the input bytes;
 *   - every id is below the vocabulary size;
 *   - count() equals the number of ids;
 *   - the pieces of chunk_tokenizer_pieces() tile the input, and counts
 *     and ids add up over them (what the chunker relies on).
 */
#include "fuzz.h"

#include <jansson.h>
#include <sodium.h>

#include "chunk/chunk.h"

static struct chunk_tokenizer *tok;
static unsigned char **tok_bytes;   /* id -> bytes */
static size_t *tok_len;
static size_t n_vocab;

/* The table of the file chunk_tokenizer_open(NULL) reads, decoded here. */
static void load_decoder(void)
{
    const char *path = getenv("KBPIPE_TOKENIZER_FILE");
    if (!path || !path[0])
        path = "data/cl100k_base.json";
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    KBFUZZ_CHECK(root != NULL, "cannot read %s: %s (run from the checkout)",
                 path, jerr.text);
    const char *ranks = json_string_value(json_object_get(root, "bpe_ranks"));
    KBFUZZ_CHECK(ranks != NULL, "%s has no bpe_ranks", path);
    n_vocab = chunk_tokenizer_vocab_size(tok);
    tok_bytes = calloc(n_vocab, sizeof *tok_bytes);
    tok_len = calloc(n_vocab, sizeof *tok_len);
    for (const char *line = ranks; *line;) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        char *l = strndup(line, n), *save = NULL;
        strtok_r(l, " ", &save);                          /* the tag */
        unsigned long long rank = strtoull(strtok_r(NULL, " ", &save), NULL, 10);
        for (char *b64; (b64 = strtok_r(NULL, " ", &save)) != NULL; rank++) {
            KBFUZZ_CHECK(rank < n_vocab, "rank %llu past the vocabulary", rank);
            unsigned char buf[256];
            size_t len = 0;
            KBFUZZ_CHECK(sodium_base642bin(buf, sizeof buf, b64, strlen(b64), NULL, &len, NULL,
                                           sodium_base64_VARIANT_ORIGINAL) == 0,
                         "bad base64 at rank %llu", rank);
            tok_bytes[rank] = malloc(len ? len : 1);
            memcpy(tok_bytes[rank], buf, len);
            tok_len[rank] = len;
        }
        free(l);
        line += n + (eol != NULL);
    }
    json_decref(root);
}

static void init(void)
{
    struct kb_err err = { 0 };
    enum kb_code rc = chunk_tokenizer_open(NULL, &tok, &err);
    KBFUZZ_CHECK(rc == KB_OK, "no tokenizer: %s: %s", err.origin, err.msg);
    load_decoder();
}

struct pieces {
    const char *text;
    size_t at;            /* where the next piece must start */
    size_t n_tokens;      /* sum of the pieces' counts */
    uint32_t *ids;        /* the pieces' ids, concatenated */
    size_t n_ids, cap_ids;
};

static void on_piece(const char *p, size_t n, void *ctx)
{
    struct pieces *x = ctx;
    KBFUZZ_CHECK(p == x->text + x->at, "piece at %td, expected at %zu", p - x->text, x->at);
    KBFUZZ_CHECK(n > 0, "empty piece at %zu", x->at);
    x->at += n;
    x->n_tokens += chunk_tokenizer_count(tok, p, n);
    chunk_tokenizer_encode(tok, p, n, &x->ids, &x->n_ids, &x->cap_ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (tok == NULL)
        init();
    const char *text = (const char *)data;
    uint32_t *ids = NULL;
    size_t n = 0, cap = 0;
    chunk_tokenizer_encode(tok, text, size, &ids, &n, &cap);
    KBFUZZ_CHECK(chunk_tokenizer_count(tok, text, size) == n, "count %zu, %zu ids",
                 chunk_tokenizer_count(tok, text, size), n);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        KBFUZZ_CHECK(ids[i] < n_vocab && tok_bytes[ids[i]], "id %u", ids[i]);
        size_t l = tok_len[ids[i]];
        KBFUZZ_CHECK(at + l <= size && memcmp(data + at, tok_bytes[ids[i]], l) == 0,
                     "id %zu (%u) does not decode to the input at byte %zu", i, ids[i], at);
        at += l;
    }
    KBFUZZ_CHECK(at == size, "ids decode to %zu bytes of %zu", at, size);

    struct pieces x = { .text = text };
    chunk_tokenizer_pieces(tok, text, size, on_piece, &x);
    KBFUZZ_CHECK(x.at == size, "pieces cover %zu bytes of %zu", x.at, size);
    KBFUZZ_CHECK(x.n_tokens == n, "pieces count %zu tokens, the whole text %zu", x.n_tokens, n);
    KBFUZZ_CHECK(x.n_ids == n && (n == 0 || memcmp(x.ids, ids, n * sizeof *ids) == 0),
                 "ids of the pieces differ from the ids of the text");
    free(x.ids);
    free(ids);
    return 0;
}
