/*
 * test_chunk.c - the splitters and hashes of src/chunk.
 *
 * Groups:
 *   chunk.c      settings (check, signature), bad input, empty and blank
 *                text, determinism, and the invariants on generated text for
 *                every splitter, unit, size and overlap: no chunk over the
 *                size, none empty or blank, UTF-8 never cut, exact token
 *                counts, every non-blank byte covered, overlap within bounds
 *   markdown.c   fences and tables kept whole unless alone too long,
 *                headings start chunks and stay with their text, heading
 *                paths, a golden file (tests/data/chunk/guide.*)
 *   recursive.c  paragraphs before lines before sentences before words; a
 *                1 MB word
 *   fixed.c      exact windows in characters, windows in tokens, a 1 MB word
 *   hash.c       known SHA-256 values, the document hash, and equality with
 *                pgcrypto's digest() for stored text (KBPIPE_TEST_DSN)
 *
 * Every chunk in every test goes through check_chunks().  The rank table
 * is data/cl100k_base.json; without it the tests skip(), except with
 * KBPIPE_REQUIRE_REF=1 (make check), where they fail.  A changed golden
 * file means the chunks changed: bump CHUNK_VERSION, then regenerate with
 *   KBPIPE_UPDATE_GOLDEN=1 build/rel/tests/test_chunk '*golden*'
 */
#include "kbtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk/chunk.h"

static struct chunk_tokenizer *tok;
static struct kb_arena *arena;
static char *table_path;

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int require_ref(void)
{
    const char *v = getenv("KBPIPE_REQUIRE_REF");
    return v && strcmp(v, "1") == 0;
}

#define NEED_TOK()                                                                 \
    do {                                                                           \
        if (!tok) {                                                                \
            print_message("the rank table %s is missing\n", table_path);          \
            if (require_ref())                                                     \
                fail_msg("KBPIPE_REQUIRE_REF=1: run 'bash scripts/deps.sh --test' to install it");   \
            skip();                                                                \
        }                                                                          \
    } while (0)

static int group_setup(void **state)
{
    (void)state;
    struct kb_err err = { 0 };
    table_path = kb_xasprintf("%s/data/cl100k_base.json", kbtest_root());
    if (chunk_tokenizer_open(getenv("KBPIPE_TOKENIZER_FILE") ? NULL : table_path, &tok, &err) !=
        KB_OK) {
        print_message("no tokenizer: %s: %s\n", err.origin, err.msg);
        tok = NULL;
    }
    arena = kb_arena_new();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    chunk_tokenizer_free(tok);
    tok = NULL;
    kb_arena_free(arena);
    arena = NULL;
    free(table_path);
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

/* Unicode White_Space at s, its length or 0 (written again here on purpose) */
static int ws_len(const unsigned char *s, size_t n)
{
    static const char *const wide[] = { "\xc2\x85", "\xc2\xa0", "\xe1\x9a\x80", "\xe2\x80\xa8",
                                        "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f",
                                        "\xe3\x80\x80" };
    if (n == 0)
        return 0;
    if (s[0] == ' ' || (s[0] >= 9 && s[0] <= 13))
        return 1;
    if (n >= 3 && s[0] == 0xe2 && s[1] == 0x80 && s[2] >= 0x80 && s[2] <= 0x8a)
        return 3;
    for (size_t i = 0; i < N_OF(wide); i++) {
        size_t l = strlen(wide[i]);
        if (n >= l && memcmp(s, wide[i], l) == 0)
            return (int)l;
    }
    return 0;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        int l = ws_len((const unsigned char *)s + i, n - i);
        if (l == 0)
            return 0;
        i += (size_t)l;
    }
    return 1;
}

static size_t cps(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

static size_t units(const struct chunk_opts *o, const char *s, size_t n)
{
    return o->unit == CHUNK_CHARS ? cps(s, n) : chunk_tokenizer_count(tok, s, n);
}

/*
 * The invariants every output must keep (chunk.h); fails the test with the
 * case's name.  The overlap of two chunks is measured on its own text; in
 * tokens that count can differ by a token from the prefix sums the chunker
 * used, hence the slack of 2.
 */
static void check_chunks(const char *name, const char *text, size_t len,
                         const struct chunk_opts *o, const struct kb_chunk_list *l)
{
    size_t covered = 0, prev_off = 0;
    for (int i = 0; i < l->n; i++) {
        const struct kb_chunk *c = &l->items[i];
        char hex[65];
        if (c->index != i || c->len == 0 || c->offset + c->len > len ||
            memcmp(c->text, text + c->offset, c->len) != 0 || c->text[c->len] != '\0')
            fail_msg("%s: chunk %d is not a NUL-terminated slice of the text", name, i);
        if (is_blank(c->text, c->len))
            fail_msg("%s: chunk %d is blank", name, i);
        if (kb_utf8_valid_prefix(c->text, c->len) != c->len ||
            (c->offset + c->len < len && ((unsigned char)text[c->offset + c->len] & 0xc0) == 0x80))
            fail_msg("%s: chunk %d cuts a UTF-8 sequence", name, i);
        size_t exact = chunk_tokenizer_count(tok, c->text, c->len);
        if ((size_t)c->token_count != exact)
            fail_msg("%s: chunk %d says %d tokens, it has %zu", name, i, c->token_count, exact);
        size_t u = units(o, c->text, c->len);
        if (u > (size_t)o->size)
            fail_msg("%s: chunk %d has %zu units, the size is %d", name, i, u, o->size);
        chunk_hash_hex(c->text, c->len, hex);
        if (strcmp(hex, c->content_hash) != 0)
            fail_msg("%s: chunk %d has a wrong content_hash", name, i);
        if (i > 0 && c->offset <= prev_off)
            fail_msg("%s: chunk %d does not start after chunk %d", name, i, i - 1);
        if (c->offset > covered) {
            if (!is_blank(text + covered, c->offset - covered))
                fail_msg("%s: text before chunk %d (bytes %zu..%zu) is in no chunk", name, i,
                         covered, c->offset);
        } else if (i > 0) {
            size_t ov = units(o, text + c->offset, covered - c->offset);
            size_t slack = o->unit == CHUNK_TOKENS ? 2 : 0;
            if (ov > (size_t)o->overlap + slack)
                fail_msg("%s: chunks %d and %d share %zu units, the overlap is %d", name, i - 1,
                         i, ov, o->overlap);
        }
        if (c->offset + c->len > covered)
            covered = c->offset + c->len;
        prev_off = c->offset;
    }
    if (!is_blank(text + covered, len - covered))
        fail_msg("%s: the text after byte %zu is in no chunk", name, covered);
}

static struct chunk_opts opts_of(enum chunk_splitter sp, enum chunk_unit u, int size, int overlap)
{
    struct chunk_opts o = { sp, u, size, overlap };
    return o;
}

/* chunk text (checked); the list lives in the arena until the next call */
static struct kb_chunk_list run(const char *name, const char *text, size_t len,
                                const struct chunk_opts *o)
{
    struct kb_err err = { 0 };
    struct kb_chunk_list l = { 0 };
    kb_arena_reset(arena);
    if (chunk_document(text, len, o, tok, arena, &l, &err) != KB_OK)
        fail_msg("%s: chunk_document failed: %s: %s", name, err.origin, err.msg);
    check_chunks(name, text, len, o, &l);
    return l;
}

/* the chunks' texts joined by " | " (arena) */
static const char *joined(const struct kb_chunk_list *l)
{
    struct kb_buf b;
    kb_buf_init(&b);
    for (int i = 0; i < l->n; i++) {
        if (i)
            kb_buf_puts(&b, " | ");
        kb_buf_append(&b, l->items[i].text, l->items[i].len);
    }
    char *s = kb_arena_strdup(arena, b.data ? b.data : "");
    kb_buf_release(&b);
    return s;
}

/* xorshift64*: the generated texts are the same on every run */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t s = rng_state;
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    rng_state = s;
    return s * 0x2545F4914F6CDD1DULL;
}

/* generated text of about n bytes from a palette of what splitters meet */
static char *gen_text(uint64_t seed, size_t n)
{
    static const char *const bits[] = {
        "the", "database", "naïve", "Zürich", " ", " ", " ", "  ", "\t", "\n", "\n\n", "\r\n",
        ".", ". ", "? ", "!\n", "\"quoted.\" ", "(paren) ", ",", "'s", "don't", "123", "3.14",
        "数据库连接配置", "。", "データベース", "청크는", "！", "🚀", "👍🏽", "👨‍👩‍👧", "🇩🇪",
        "e\xcc\x81", "\xe3\x80\x80", "\xc2\xa0", "# Title\n", "## Sub section\n", "### Deep\n",
        "```c\nint x = 1;\n\nint y;\n```\n", "~~~\n# not a heading\n~~~\n",
        "| a | b |\n|---|---|\n| 1 | 2 |\n", "- item\n", "1. first\n", "> quote\n",
        "Title\n=====\n", "https://example.com/a_b?c=d", "\xe2\x80\xa6 ", "—", "**bold.** ",
        "supercalifragilisticexpialidocious", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    struct kb_buf b;
    kb_buf_init(&b);
    rng_state = seed * 2654435761u + 1;
    while (b.len < n)
        kb_buf_puts(&b, bits[rnd() % N_OF(bits)]);
    return kb_buf_detach(&b);
}

/* ---- chunk.c ----------------------------------------------------------------- */

static void chunk_opts_check__errors(void **state)
{
    (void)state;
    static const struct {
        int splitter, unit, size, overlap;
        enum kb_code rc;
        const char *msg;   /* a part of the message */
    } cases[] = {
        { CHUNK_MARKDOWN, CHUNK_TOKENS, 512, 64, KB_OK, NULL },
        { CHUNK_FIXED, CHUNK_CHARS, 1, 0, KB_OK, NULL },
        { CHUNK_RECURSIVE, CHUNK_TOKENS, 4, 3, KB_OK, NULL },
        { CHUNK_MARKDOWN, CHUNK_TOKENS, 0, 0, KB_E_CONFIG, "must be at least 1" },
        { CHUNK_MARKDOWN, CHUNK_CHARS, -5, 0, KB_E_CONFIG, "must be at least 1" },
        { CHUNK_MARKDOWN, CHUNK_TOKENS, 3, 0, KB_E_CONFIG, "use at least 4" },
        { CHUNK_MARKDOWN, CHUNK_TOKENS, 512, -1, KB_E_CONFIG, "0 or more" },
        { CHUNK_MARKDOWN, CHUNK_TOKENS, 512, 512, KB_E_CONFIG, "must be smaller than chunking.size" },
        { CHUNK_MARKDOWN, CHUNK_CHARS, 100, 600, KB_E_CONFIG, "about 1/8 of the size" },
        { 7, CHUNK_TOKENS, 512, 64, KB_E_CONFIG, "use markdown, recursive or fixed" },
        { CHUNK_MARKDOWN, 9, 512, 64, KB_E_CONFIG, "use tokens or chars" },
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct chunk_opts o = { (enum chunk_splitter)cases[i].splitter,
                                (enum chunk_unit)cases[i].unit, cases[i].size, cases[i].overlap };
        struct kb_err err = { 0 };
        enum kb_code rc = chunk_opts_check(&o, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu: code %d, expected %d (%s)", i, rc, cases[i].rc, err.msg);
        if (cases[i].msg && !strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg, cases[i].msg);
        if (cases[i].msg && strncmp(err.origin, "chunking.", 9) != 0)
            fail_msg("case %zu: origin '%s' names no setting", i, err.origin);
    }
}

static void chunk_opts_signature__stable(void **state)
{
    (void)state;
    char sig[CHUNK_SIGNATURE_MAX];
    struct chunk_opts o;
    chunk_opts_defaults(&o);
    chunk_opts_signature(&o, sig);
    assert_string_equal(sig, "markdown/tokens/512/64/v1");
    o = opts_of(CHUNK_RECURSIVE, CHUNK_CHARS, 1000, 100);
    chunk_opts_signature(&o, sig);
    assert_string_equal(sig, "recursive/chars/1000/100/v1");
    o = opts_of(CHUNK_FIXED, CHUNK_TOKENS, 100000, 99999);
    chunk_opts_signature(&o, sig);
    assert_string_equal(sig, "fixed/tokens/100000/99999/v1");
}

static void chunk_document__bad_input(void **state)
{
    (void)state;
    NEED_TOK();
    static const struct {
        const char *text;
        size_t len;
        const char *origin, *msg;
    } cases[] = {
        { "ab\xff" "cd", 5, "byte 2", "invalid UTF-8" },
        { "ok \xe2\x82", 5, "byte 3", "invalid UTF-8" },
        { "\xed\xa0\x80", 3, "byte 0", "invalid UTF-8" },   /* a surrogate */
        { "a\0b", 3, "byte 1", "NUL byte" },
    };
    struct chunk_opts o;
    chunk_opts_defaults(&o);
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct kb_err err = { 0 };
        struct kb_chunk_list l = { (struct kb_chunk *)1, 77 };
        assert_int_equal(chunk_document(cases[i].text, cases[i].len, &o, tok, arena, &l, &err),
                         KB_E_INPUT);
        assert_string_equal(err.origin, cases[i].origin);
        assert_non_null(strstr(err.msg, cases[i].msg));
        assert_int_equal(l.n, 77);   /* untouched */
    }
    struct kb_err err = { 0 };
    struct kb_chunk_list l = { 0 };
    o.overlap = o.size;
    assert_int_equal(chunk_document("text", 4, &o, tok, arena, &l, &err), KB_E_CONFIG);
}

static void chunk_document__empty_and_blank(void **state)
{
    (void)state;
    NEED_TOK();
    static const char *const texts[] = {
        "", " ", "\n\n\n", " \t\r\n \f\v", "\xe3\x80\x80\xc2\xa0\n\xe2\x80\x83",
    };
    for (int sp = CHUNK_MARKDOWN; sp <= CHUNK_FIXED; sp++)
        for (int u = CHUNK_TOKENS; u <= CHUNK_CHARS; u++)
            for (size_t i = 0; i < N_OF(texts); i++) {
                struct chunk_opts o = opts_of((enum chunk_splitter)sp, (enum chunk_unit)u, 4, 1);
                struct kb_chunk_list l = run("blank", texts[i], strlen(texts[i]), &o);
                assert_int_equal(l.n, 0);
                assert_null(l.items);
            }
    /* a long blank run is no chunk either, even when longer than the size */
    char *spaces = kb_xmalloc(100001);
    memset(spaces, ' ', 100000);
    spaces[100000] = '\0';
    for (int sp = CHUNK_MARKDOWN; sp <= CHUNK_FIXED; sp++) {
        struct chunk_opts o = opts_of((enum chunk_splitter)sp, CHUNK_TOKENS, 8, 2);
        assert_int_equal(run("100k spaces", spaces, 100000, &o).n, 0);
    }
    free(spaces);
}

static void chunk_document__invariants(void **state)
{
    (void)state;
    NEED_TOK();
    static const int sizes[] = { 4, 7, 16, 64, 512 };
    for (uint64_t seed = 1; seed <= 5; seed++) {
        char *text = gen_text(seed, seed < 5 ? 2000 : 12000);
        size_t len = strlen(text);
        for (int sp = CHUNK_MARKDOWN; sp <= CHUNK_FIXED; sp++)
            for (int u = CHUNK_TOKENS; u <= CHUNK_CHARS; u++)
                for (size_t si = 0; si < N_OF(sizes); si++) {
                    int size = sizes[si];
                    const int overlaps[] = { 0, size / 4, size - 1 };
                    for (size_t oi = 0; oi < N_OF(overlaps); oi++) {
                        struct chunk_opts o = opts_of((enum chunk_splitter)sp, (enum chunk_unit)u,
                                                      size, overlaps[oi]);
                        char name[128];
                        snprintf(name, sizeof name, "seed %d %s/%s/%d/%d", (int)seed,
                                 chunk_splitter_name(o.splitter), chunk_unit_name(o.unit), size,
                                 o.overlap);
                        struct kb_chunk_list l = run(name, text, len, &o);
                        assert_true(l.n > 0);
                    }
                }
        free(text);
    }
}

static void chunk_document__deterministic(void **state)
{
    (void)state;
    NEED_TOK();
    char *text = gen_text(99, 50000);
    size_t len = strlen(text);
    struct kb_arena *other = kb_arena_new();
    for (int sp = CHUNK_MARKDOWN; sp <= CHUNK_FIXED; sp++) {
        struct chunk_opts o = opts_of((enum chunk_splitter)sp, CHUNK_TOKENS, 100, 20);
        struct kb_chunk_list a = run("first", text, len, &o), b = { 0 };
        struct kb_err err = { 0 };
        assert_int_equal(chunk_document(text, len, &o, tok, other, &b, &err), KB_OK);
        assert_int_equal(a.n, b.n);
        for (int i = 0; i < a.n; i++) {
            assert_int_equal(a.items[i].offset, b.items[i].offset);
            assert_int_equal(a.items[i].len, b.items[i].len);
            assert_int_equal(a.items[i].token_count, b.items[i].token_count);
            assert_string_equal(a.items[i].content_hash, b.items[i].content_hash);
            if (a.items[i].heading_path || b.items[i].heading_path)
                assert_string_equal(a.items[i].heading_path, b.items[i].heading_path);
        }
        kb_arena_reset(other);
    }
    kb_arena_free(other);
    free(text);
}

static void chunk_document__utf8_boundaries(void **state)
{
    (void)state;
    NEED_TOK();
    static const char *const texts[] = {
        "🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀",                                  /* 4-byte, ~3 tokens each */
        "👨‍👩‍👧👨‍👩‍👧👨‍👩‍👧👨‍👩‍👧",                                    /* ZWJ sequences */
        "数据库连接配置需要在启动前完成向量索引在批量导入后重建",   /* one long CJK piece */
        "e\xcc\x81" "e\xcc\x81" "e\xcc\x81" "e\xcc\x81" "e\xcc\x81",  /* combining marks */
        "\xf0\x9f\x87\xa9\xf0\x9f\x87\xaa\xf0\x9f\x87\xab\xf0\x9f\x87\xb7",   /* flags */
    };
    for (size_t i = 0; i < N_OF(texts); i++)
        for (int sp = CHUNK_MARKDOWN; sp <= CHUNK_FIXED; sp++)
            for (int u = CHUNK_TOKENS; u <= CHUNK_CHARS; u++)
                for (int size = 4; size <= 9; size++) {
                    struct chunk_opts o = opts_of((enum chunk_splitter)sp, (enum chunk_unit)u, size,
                                                  size / 3);
                    assert_true(run(texts[i], texts[i], strlen(texts[i]), &o).n > 0);
                }
    /* in characters, a 1-code-point size cuts every code point apart */
    struct chunk_opts o = opts_of(CHUNK_FIXED, CHUNK_CHARS, 1, 0);
    assert_int_equal(run("1 cp", "aé数🚀", strlen("aé数🚀"), &o).n, 4);
}

/* ---- markdown.c --------------------------------------------------------------- */

static void chunk_split_markdown__blocks(void **state)
{
    (void)state;
    NEED_TOK();
    static const struct {
        const char *md;
        int size;
        const char *want;   /* chunks joined by " | " */
    } cases[] = {
        /* a fence that fits alone is never cut, and never shares a chunk it does not fit */
        { "Intro text here.\n\n```c\nint a = 1;\nint b = 2;\n```\n\nAfter it.", 40,
          "Intro text here. | ```c\nint a = 1;\nint b = 2;\n``` | After it." },
        /* blank lines inside a fence are not paragraphs */
        { "Intro.\n\n```\nline one\n\nline two\n```\nTail.", 30,
          "Intro. | ```\nline one\n\nline two\n``` | Tail." },
        /* a fence longer than the size is cut inside, at its lines */
        { "```\naaaa bbbb\ncccc dddd\neeee ffff\n```", 24,
          "```\naaaa bbbb\ncccc dddd | eeee ffff\n```" },
        /* tables are blocks too */
        { "Text before.\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\nText after.", 50,
          "Text before. | | a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 | | Text after." },
        /* headings start chunks; the heading stays with its text */
        { "# A\nalpha alpha.\n# B\nbeta beta.\n", 30, "# A\nalpha alpha. | # B\nbeta beta." },
        { "## Long\nOne two three. Four five six. Seven eight nine.", 30,
          "## Long\nOne two three. | Four five six. | Seven eight nine." },
        /* '#' inside a fence is no heading */
        { "~~~\n# not a heading\n~~~\n# Real\ntext", 25,
          "~~~\n# not a heading\n~~~ | # Real\ntext" },
        /* small sections share a chunk */
        { "# A\na.\n## B\nb.\n## C\nc.", 100, "# A\na.\n## B\nb.\n## C\nc." },
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct chunk_opts o = opts_of(CHUNK_MARKDOWN, CHUNK_CHARS, cases[i].size, 0);
        struct kb_chunk_list l = run(cases[i].md, cases[i].md, strlen(cases[i].md), &o);
        const char *got = joined(&l);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu:\n got: %s\nwant: %s", i, got, cases[i].want);
    }
}

static void chunk_markdown__heading_path(void **state)
{
    (void)state;
    NEED_TOK();
    static const char md[] =
        "Preamble text.\n\n"
        "# Setup\nSetup text.\n\n"
        "## Database ##\nDatabase text.\n\n"
        "### Tuning\nTuning text.\n\n"
        "```sh\n# a comment, not a heading\necho hi\n```\n\n"
        "## Cache\nCache text.\n\n"
        "Usage\n=====\nUsage text.\n\n"
        "Options\n-------\nOptions text.\n\n"
        "#### Deep\nDeep text (skipped levels).\n";
    static const char *const want[] = {
        NULL, "Setup", "Setup > Database", "Setup > Database > Tuning",
        "Setup > Database > Tuning", "Setup > Database > Tuning", /* the fence, cut in two */
        "Setup > Cache", "Usage", "Usage > Options",
        "Usage > Options > Deep",
    };
    struct chunk_opts o = opts_of(CHUNK_MARKDOWN, CHUNK_CHARS, 40, 0);
    struct kb_chunk_list l = run("paths", md, strlen(md), &o);
    if (l.n != (int)N_OF(want))
        fail_msg("%d chunks, expected %zu: %s", l.n, N_OF(want), joined(&l));
    for (int i = 0; i < l.n; i++) {
        const char *p = l.items[i].heading_path;
        if (!want[i] ? p != NULL : (!p || strcmp(p, want[i]) != 0))
            fail_msg("chunk %d [%s]: path '%s', expected '%s'", i, l.items[i].text,
                     p ? p : "(null)", want[i] ? want[i] : "(null)");
    }
    /* a chunk spanning sections has their common path; the whole document none */
    o.size = 1000;
    l = run("one chunk", md, strlen(md), &o);
    assert_int_equal(l.n, 1);
    assert_null(l.items[0].heading_path);
    static const char md2[] = "# Top\n## A\na.\n## B\nb.\n";
    l = run("common", md2, strlen(md2), &o);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].heading_path, "Top");
    /* the recursive splitter records no paths */
    o.splitter = CHUNK_RECURSIVE;
    l = run("recursive", md2, strlen(md2), &o);
    assert_null(l.items[0].heading_path);
}

/* tests/data/chunk/guide.md chunked must give guide.expected, byte for byte */
static void chunk_markdown__golden(void **state)
{
    (void)state;
    NEED_TOK();
    struct kb_err err = { 0 };
    struct kb_buf md, want, got;
    kb_buf_init(&md);
    kb_buf_init(&want);
    kb_buf_init(&got);
    char *in = kb_xasprintf("%s/tests/data/chunk/guide.md", kbtest_root());
    char *exp = kb_xasprintf("%s/tests/data/chunk/guide.expected", kbtest_root());
    if (kb_buf_read_file(&md, in, &err) != KB_OK)
        fail_msg("%s", err.msg);
    static const struct chunk_opts settings[] = {
        { CHUNK_MARKDOWN, CHUNK_TOKENS, 64, 8 },
        { CHUNK_RECURSIVE, CHUNK_TOKENS, 48, 8 },
        { CHUNK_FIXED, CHUNK_TOKENS, 32, 4 },
        { CHUNK_MARKDOWN, CHUNK_CHARS, 300, 40 },
    };
    for (size_t s = 0; s < N_OF(settings); s++) {
        char sig[CHUNK_SIGNATURE_MAX];
        chunk_opts_signature(&settings[s], sig);
        struct kb_chunk_list l = run(sig, md.data, md.len, &settings[s]);
        kb_buf_printf(&got, "== %s\n", sig);
        for (int i = 0; i < l.n; i++)
            kb_buf_printf(&got, "%d\t%zu+%zu\t%d\t%.16s\t%s\n", i, l.items[i].offset,
                          l.items[i].len, l.items[i].token_count, l.items[i].content_hash,
                          l.items[i].heading_path ? l.items[i].heading_path : "-");
    }
    const char *upd = getenv("KBPIPE_UPDATE_GOLDEN");
    if (upd && strcmp(upd, "1") == 0) {
        FILE *f = fopen(exp, "w");
        assert_non_null(f);
        fwrite(got.data, 1, got.len, f);
        fclose(f);
    }
    if (kb_buf_read_file(&want, exp, &err) != KB_OK)
        fail_msg("%s", err.msg);
    if (want.len != got.len || memcmp(want.data, got.data, got.len) != 0)
        fail_msg("the chunks of %s changed; if on purpose, bump CHUNK_VERSION and regenerate "
                 "(KBPIPE_UPDATE_GOLDEN=1 build/rel/tests/test_chunk '*golden*'). Got:\n%s",
                 in, got.data);
    kb_buf_release(&md);
    kb_buf_release(&want);
    kb_buf_release(&got);
    free(in);
    free(exp);
}

/* ---- recursive.c --------------------------------------------------------------- */

static void chunk_split_recursive__boundaries(void **state)
{
    (void)state;
    NEED_TOK();
    static const struct {
        const char *text;
        int size;
        const char *want;
    } cases[] = {
        /* paragraphs first */
        { "First para line.\nSecond line.\n\nNext para.", 32,
          "First para line.\nSecond line. | Next para." },
        /* then lines */
        { "Line one here\nLine two here\nLine three", 30, "Line one here\nLine two here | Line three" },
        /* then sentences */
        { "One two three. Four five six. Seven.", 30, "One two three. Four five six. | Seven." },
        { "He said \"stop.\" Then left! Why? Yes.", 20, "He said \"stop.\" | Then left! Why? | Yes." },
        /* then words */
        { "alpha beta gamma delta epsilon", 12, "alpha beta | gamma delta | epsilon" },
        /* then characters */
        { "abcdefghijklmnopqrstuvwxyz", 10, "abcdefghij | klmnopqrst | uvwxyz" },
        /* blanks at the ends of a chunk are trimmed */
        { "  lead and trail  \n\n\n  next  ", 20, "lead and trail | next" },
        /* a CJK full stop followed by letters is one piece with them, so the cut
           comes before it (docs/chunking.md, "Known limits") */
        { "数据库连接。向量索引重建。", 8, "数据库连接 | 。向量索引重建。" },
        { "数据库连接。\n向量索引重建。", 8, "数据库连接。 | 向量索引重建。" },
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct chunk_opts o = opts_of(CHUNK_RECURSIVE, CHUNK_CHARS, cases[i].size, 0);
        struct kb_chunk_list l = run(cases[i].text, cases[i].text, strlen(cases[i].text), &o);
        const char *got = joined(&l);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu:\n got: %s\nwant: %s", i, got, cases[i].want);
    }
}

static void chunk_split_recursive__overlap(void **state)
{
    (void)state;
    NEED_TOK();
    static const char text[] = "one two three four five six seven eight nine ten";
    struct chunk_opts o = opts_of(CHUNK_RECURSIVE, CHUNK_CHARS, 20, 10);
    struct kb_chunk_list l = run("overlap", text, strlen(text), &o);
    /* the blank before "six" is counted in the window, then trimmed */
    assert_string_equal(joined(&l), "one two three four | four five six seven | six seven eight | "
                                    "eight nine ten");
    /* in tokens: consecutive chunks share at most `overlap` tokens, at word starts */
    char *g = gen_text(7, 20000);
    o = opts_of(CHUNK_RECURSIVE, CHUNK_TOKENS, 60, 15);
    l = run("tokens overlap", g, strlen(g), &o);
    int shared = 0;
    for (int i = 1; i < l.n; i++)
        shared += l.items[i].offset < l.items[i - 1].offset + l.items[i - 1].len;
    assert_true(shared > l.n / 2);
    free(g);
}

/* 1 MB of letters with no break: cut at code points, each window counted */
static void chunk_split_recursive__one_mb_word(void **state)
{
    (void)state;
    NEED_TOK();
    size_t n = 1 << 20;
    char *word = kb_xmalloc(n + 1), *same = kb_xmalloc(n + 1);
    rng_state = 12345;
    for (size_t i = 0; i < n; i++) {
        word[i] = (char)('a' + rnd() % 26);
        same[i] = 'a';
    }
    word[n] = same[n] = '\0';
    for (int sp = CHUNK_MARKDOWN; sp <= CHUNK_FIXED; sp++) {
        struct chunk_opts o = opts_of((enum chunk_splitter)sp, CHUNK_TOKENS, 512, 64);
        struct kb_chunk_list l = run("1 MB word, tokens", word, n, &o);
        assert_true(l.n > 100);
        o.unit = CHUNK_CHARS;
        o.size = 8000;
        o.overlap = 0;
        l = run("1 MB word, chars", word, n, &o);
        assert_int_equal(l.n, (int)((n + 7999) / 8000));
    }
    struct chunk_opts o = opts_of(CHUNK_RECURSIVE, CHUNK_TOKENS, 512, 0);
    assert_true(run("1 MB of one letter", same, n, &o).n > 0);
    /* a multi-byte word: windows end on code points */
    size_t m = 0;
    while (m + 4 <= n) {
        memcpy(word + m, (m / 4) % 3 ? "\xe6\x95\xb0" : "\xc3\xa9", (m / 4) % 3 ? 3 : 2);
        m += (m / 4) % 3 ? 3 : 2;
    }
    word[m] = '\0';
    o = opts_of(CHUNK_RECURSIVE, CHUNK_TOKENS, 300, 30);
    assert_true(run("1 MB CJK word", word, m, &o).n > 100);
    free(word);
    free(same);
}

/* ---- fixed.c ----------------------------------------------------------------- */

static void chunk_split_fixed__windows(void **state)
{
    (void)state;
    NEED_TOK();
    static const struct {
        const char *text;
        int size, overlap;
        const char *want;
    } cases[] = {
        { "abcdefghij", 4, 1, "abcd | defg | ghij" },
        { "abcdefghij", 4, 0, "abcd | efgh | ij" },
        { "ééééé", 2, 0, "éé | éé | é" },
        { "ab 数据 🚀x", 3, 1, "ab  |  数据 | 据 🚀 | 🚀x" },   /* fixed windows keep blanks */
        { "aaaa          bb", 4, 0, "aaaa |   bb" },   /* blank windows are dropped */
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct chunk_opts o = opts_of(CHUNK_FIXED, CHUNK_CHARS, cases[i].size, cases[i].overlap);
        struct kb_chunk_list l = run(cases[i].text, cases[i].text, strlen(cases[i].text), &o);
        const char *got = joined(&l);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu:\n got: '%s'\nwant: '%s'", i, got, cases[i].want);
    }
    /* in tokens: full windows of whole pieces */
    char *g = gen_text(3, 30000);
    struct chunk_opts o = opts_of(CHUNK_FIXED, CHUNK_TOKENS, 50, 10);
    struct kb_chunk_list l = run("fixed tokens", g, strlen(g), &o);
    long total = 0;
    for (int i = 0; i + 1 < l.n; i++)
        total += l.items[i].token_count;
    assert_true(total > (long)(l.n - 1) * 40);   /* windows are nearly full */
    free(g);
}

/* ---- hash.c --------------------------------------------------------------------- */

static void chunk_hash_hex__known(void **state)
{
    (void)state;
    static const struct {
        const char *text, *hex;
    } cases[] = {
        { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
        { "The quick brown fox jumps over the lazy dog",
          "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592" },
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        char hex[65];
        chunk_hash_hex(cases[i].text, strlen(cases[i].text), hex);
        assert_string_equal(hex, cases[i].hex);
    }
}

static void chunk_document_hash__settings(void **state)
{
    (void)state;
    static const char text[] = "# Doc\nsome text\n";
    struct chunk_opts a, b;
    chunk_opts_defaults(&a);
    b = a;
    char ha[65], hb[65], manual[65];
    chunk_document_hash(text, strlen(text), &a, ha);
    chunk_document_hash(text, strlen(text), &b, hb);
    assert_string_equal(ha, hb);
    /* it is SHA-256(signature NUL text) */
    static const char sig_text[] = "markdown/tokens/512/64/v1\0# Doc\nsome text\n";
    chunk_hash_hex(sig_text, sizeof sig_text - 1, manual);
    assert_string_equal(ha, manual);
    const struct chunk_opts changed[] = {
        { CHUNK_RECURSIVE, CHUNK_TOKENS, 512, 64 }, { CHUNK_MARKDOWN, CHUNK_CHARS, 512, 64 },
        { CHUNK_MARKDOWN, CHUNK_TOKENS, 256, 64 }, { CHUNK_MARKDOWN, CHUNK_TOKENS, 512, 0 },
    };
    for (size_t i = 0; i < N_OF(changed); i++) {
        chunk_document_hash(text, strlen(text), &changed[i], hb);
        assert_string_not_equal(ha, hb);
    }
    chunk_document_hash(text, strlen(text) - 1, &a, hb);   /* the text matters too */
    assert_string_not_equal(ha, hb);
}

/* content_hash equals pgcrypto's digest() of the text as PostgreSQL stores it */
static void chunk_hash_hex__pgcrypto(void **state)
{
    (void)state;
    NEED_TOK();
    struct kbtest_db db;
    if (!kbtest_db_open(&db))
        skip();
    struct kb_err err = { 0 };
    if (db_exec_script(db.conn,
                       "CREATE EXTENSION IF NOT EXISTS pgcrypto;"
                       "CREATE TABLE chunk_hash_test (i int PRIMARY KEY, content text NOT NULL)",
                       NULL, &err) != KB_OK)
        fail_msg("%s", err.msg);
    static const char md[] =
        "# Données \"quotées\" et 'apostrophes'\n\n"
        "Ligne avec tabulation\tet barre oblique \\ inverse; 100% sûr.\r\n"
        "数据库连接配置需要在启动前完成。データベースの移行。청크는 토큰 수로 제한됩니다.\n\n"
        "Emoji 🚀 👍🏽 👨‍👩‍👧 🇩🇪 and combining e\xcc\x81, NBSP\xc2\xa0here, ideographic\xe3\x80\x80space.\n\n"
        "```sql\nSELECT E'\\\\x00', $1::text, '{\"json\": [1, 2]}'::jsonb;\n```\n\n"
        "Trailing line without newline";
    struct chunk_opts o = opts_of(CHUNK_MARKDOWN, CHUNK_TOKENS, 24, 4);
    struct kb_chunk_list l = run("pgcrypto", md, strlen(md), &o);
    assert_true(l.n >= 5);
    for (int i = 0; i < l.n; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        const char *params[] = { idx, l.items[i].text };
        if (db_exec(db.conn, "INSERT INTO chunk_hash_test VALUES ($1::int, $2)", 2, params, NULL,
                    &err) != KB_OK)
            fail_msg("%s", err.msg);
    }
    struct db_rows *rows = NULL;
    if (db_exec(db.conn,
                "SELECT i, encode(digest(content, 'sha256'), 'hex'), octet_length(content) "
                "FROM chunk_hash_test ORDER BY i",
                0, NULL, &rows, &err) != KB_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(db_rows_count(rows), l.n);
    for (int i = 0; i < l.n; i++) {
        if (strcmp(db_rows_get(rows, i, 1), l.items[i].content_hash) != 0)
            fail_msg("chunk %d [%s]: pgcrypto %s, kbpipe %s", i, l.items[i].text,
                     db_rows_get(rows, i, 1), l.items[i].content_hash);
        assert_int_equal(atol(db_rows_get(rows, i, 2)), (long)l.items[i].len);
    }
    db_rows_free(rows);
    kbtest_db_close(&db);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest chunk_c[] = {
        cmocka_unit_test(chunk_opts_check__errors),
        cmocka_unit_test(chunk_opts_signature__stable),
        cmocka_unit_test(chunk_document__bad_input),
        cmocka_unit_test(chunk_document__empty_and_blank),
        cmocka_unit_test(chunk_document__invariants),
        cmocka_unit_test(chunk_document__deterministic),
        cmocka_unit_test(chunk_document__utf8_boundaries),
    };
    const struct CMUnitTest markdown_c[] = {
        cmocka_unit_test(chunk_split_markdown__blocks),
        cmocka_unit_test(chunk_markdown__heading_path),
        cmocka_unit_test(chunk_markdown__golden),
    };
    const struct CMUnitTest recursive_c[] = {
        cmocka_unit_test(chunk_split_recursive__boundaries),
        cmocka_unit_test(chunk_split_recursive__overlap),
        cmocka_unit_test(chunk_split_recursive__one_mb_word),
    };
    const struct CMUnitTest fixed_c[] = {
        cmocka_unit_test(chunk_split_fixed__windows),
    };
    const struct CMUnitTest hash_c[] = {
        cmocka_unit_test(chunk_hash_hex__known),
        cmocka_unit_test(chunk_document_hash__settings),
        cmocka_unit_test(chunk_hash_hex__pgcrypto),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("chunk.c", chunk_c, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("markdown.c", markdown_c, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("recursive.c", recursive_c, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("fixed.c", fixed_c, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("hash.c", hash_c, group_setup, group_teardown);
    return failed ? 1 : 0;
}
