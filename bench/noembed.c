/*
 * noembed.c - bench/langchain.sh's instrument: kbpipe with the cost of its
 * embedder taken out, to time what is left of a run (read, chunk, COPY)
 * against the same work of LangChain.js.  Linked in place of
 * src/embed/hash.c's embed_hash_text (hash.c itself is compiled beside it
 * with -Dembed_hash_text=embed_hash_text_real).
 *
 * The first NOEMBED_REAL calls compute the real kbpipe-hash-v1 vector and
 * keep it; every later call copies one of those kept vectors (call n gets
 * vector n % NOEMBED_REAL), so the rows stored are real vectors of this
 * corpus's chunks (the same 6 KB, the same sparsity for the server to
 * store) at the cost of a 6 KB copy.  Thread-safe: kbpipe shares a batch
 * between two threads.  Not a kbpipe build: never installed, only for the
 * benchmark (its vectors are not the chunks' own).
 */
#include <stdatomic.h>
#include <string.h>

#include "embed/embed.h"

#define NOEMBED_REAL 64

void embed_hash_text_real(const char *text, size_t len, float out[KB_EMBED_DIM]);

static float kept[NOEMBED_REAL][KB_EMBED_DIM];
static atomic_int is_kept[NOEMBED_REAL];
static atomic_long n_calls;

/* out = a real kbpipe-hash-v1 vector: text's own for the first calls, else a
 * kept one (see the file's comment). */
void embed_hash_text(const char *text, size_t len, float out[KB_EMBED_DIM])
{
    long n = atomic_fetch_add(&n_calls, 1);
    int slot = (int)(n % NOEMBED_REAL);
    if (n >= NOEMBED_REAL && atomic_load(&is_kept[slot])) {
        memcpy(out, kept[slot], sizeof kept[slot]);
        return;
    }
    embed_hash_text_real(text, len, out);
    if (n < NOEMBED_REAL) {
        memcpy(kept[slot], out, sizeof kept[slot]);
        atomic_store(&is_kept[slot], 1);
    }
}
