/*
 * fuzz.h - what every fuzz harness in tests/fuzz shares: the invariant
 * check that aborts (so libFuzzer and driver.c both report it), the
 * checks of a struct kb_err, a scratch folder for parsers that read a
 * path, and a hash that picks a harness's settings from its input.
 *
 * Each tests/fuzz/fuzz_<parser>.c defines LLVMFuzzerTestOneInput() and
 * calls the parser through its module's public header only.  docs/testing.md
 * lists the harnesses and what each checks.
 */
#ifndef KB_FUZZ_H
#define KB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: say which and where, then abort() for the fuzzer. */
#define KBFUZZ_CHECK(cond, ...)                                                   \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
            abort();                                                              \
        }                                                                         \
    } while (0)

/* Silence kbpipe's log (warnings about bad input are the expected case). */
static inline void kbfuzz_quiet(void)
{
    log_set_level(KB_LOG_QUIET);
}

/*
 * A failure as the contract says: the code returned is the one in err, and
 * the message is one non-empty line (STYLE.md section 3).
 */
static inline void kbfuzz_check_err(enum kb_code rc, const struct kb_err *err)
{
    KBFUZZ_CHECK(rc != KB_OK, "not a failure");
    KBFUZZ_CHECK(err->code == rc, "returned %d, err->code %d", (int)rc, (int)err->code);
    KBFUZZ_CHECK(err->msg[0] != '\0', "code %d with an empty message", (int)rc);
    KBFUZZ_CHECK(strchr(err->msg, '\n') == NULL, "message has a newline: %s", err->msg);
    KBFUZZ_CHECK(err->src_file != NULL && err->src_line > 0, "no raise site: %s", err->msg);
}

/* 1 when s[0..n) is valid UTF-8 (kbpipe's own validator). */
static inline int kbfuzz_utf8(const char *s, size_t n)
{
    return kb_utf8_valid_prefix(s, n) == n;
}

/* FNV-1a over the input: settings that follow the bytes, so a run is reproducible. */
static inline uint64_t kbfuzz_hash(const uint8_t *d, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 1099511628211ULL;
    return h;
}

/* The process's scratch folder (made once, removed at exit). */
static char kbfuzz_dir[64];

static inline void kbfuzz_dir_remove(void)
{
    if (kbfuzz_dir[0])
        rmdir(kbfuzz_dir);
}

/*
 * Write data into the scratch folder as `name` and return its path (a
 * static buffer); the parsers under test read files by path.
 */
static inline const char *kbfuzz_write(const char *name, const uint8_t *data, size_t size)
{
    static char path[128];
    if (!kbfuzz_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(kbfuzz_dir, sizeof kbfuzz_dir, "%s/kbfuzz.XXXXXX",
                 tmp && tmp[0] && strlen(tmp) < 40 ? tmp : "/tmp");
        KBFUZZ_CHECK(mkdtemp(kbfuzz_dir) != NULL, "cannot make a scratch folder");
        atexit(kbfuzz_dir_remove);
    }
    snprintf(path, sizeof path, "%s/%s", kbfuzz_dir, name);
    FILE *f = fopen(path, "wb");
    KBFUZZ_CHECK(f != NULL, "cannot write %s", path);
    KBFUZZ_CHECK(size == 0 || fwrite(data, 1, size, f) == size, "short write to %s", path);
    KBFUZZ_CHECK(fclose(f) == 0, "cannot write %s", path);
    return path;
}

/* Remove a file kbfuzz_write() made. */
static inline void kbfuzz_unlink(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", kbfuzz_dir, name);
    unlink(path);
}

/* The text of a document as kb_document promises it: UTF-8, no NUL, no CR. */
static inline void kbfuzz_check_doc_text(const char *text, size_t len)
{
    KBFUZZ_CHECK(text != NULL, "document without text");
    KBFUZZ_CHECK(text[len] == '\0', "text not NUL-terminated at len %zu", len);
    KBFUZZ_CHECK(memchr(text, '\0', len) == NULL, "NUL byte inside the text");
    KBFUZZ_CHECK(memchr(text, '\r', len) == NULL, "CR left in the text");
    KBFUZZ_CHECK(kbfuzz_utf8(text, len), "text is not valid UTF-8");
}

#endif /* KB_FUZZ_H */
