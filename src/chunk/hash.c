/*
 * hash.c - content and document hashes, SHA-256 with libsodium.
 *
 * content_hash mirrors PostgreSQL's encode(digest(content, 'sha256'), 'hex')
 * (pgcrypto): SHA-256 of the text's bytes as stored (UTF-8, the database's
 * encoding), in lower-case hex.  test_chunk.c checks both against the
 * database for text with CJK, emoji, line breaks and quotes.
 *
 * The document hash covers the settings too:
 *   SHA-256( signature "markdown/tokens/512/64/v1" || 0x00 || text )
 * The NUL keeps signature and text apart (no text byte is NUL).
 */
#include "chunk/chunk_int.h"

#include <sodium.h>
#include <string.h>

/* crypto_hash_sha256 is plain C in libsodium and needs no sodium_init() */
static void to_hex(const unsigned char h[crypto_hash_sha256_BYTES], char out[65])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < crypto_hash_sha256_BYTES; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 15];
    }
    out[64] = '\0';
}

void chunk_hash_hex(const char *text, size_t len, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)text, len);
    to_hex(h, out);
}

void chunk_document_hash(const char *text, size_t len, const struct chunk_opts *opts,
                         char out[65])
{
    char sig[CHUNK_SIGNATURE_MAX];
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state st;

    chunk_opts_signature(opts, sig);
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)sig, strlen(sig) + 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)text, len);
    crypto_hash_sha256_final(&st, h);
    to_hex(h, out);
}
