/*
 * fuzz_frontmatter.c - Markdown front matter (src/ingest/frontmatter.c
 * through the files reader: the "---" block, its YAML read by libyaml, title
 * and learnings fields) on any bytes as one .md file.  The target
 * (knowledge or learnings) follows a hash of the input.
 *
 * Invariants, besides the reader's (ingest_check.h): one document or one
 * one-line KB_E_INPUT naming the file; a document's metadata holds
 * "path" and "format": "markdown", and "front_matter" (an object) exactly
 * when the text starts with a "---" line and the block was read; the
 * document's text is then the input after the block; a title is never
 * NULL; learnings have an impact level of the schema's four.
 */
#include "ingest_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kbfuzz_quiet();
    uint64_t h = kbfuzz_hash(data, size);
    const char *roots[1];
    struct ingest_source src;
    kbfuzz_files_source(&src, roots, kbfuzz_write("page.md", data, size));
    src.u.files.front_matter = 1;
    src.u.files.on_invalid_utf8 = INGEST_UTF8_REPLACE;
    src.target = h & 1 ? KB_TARGET_LEARNINGS : KB_TARGET_KNOWLEDGE;

    struct ingest_reader *rd;
    struct kb_arena *arena;
    struct kb_document *d;
    struct kb_err err = { 0 };
    enum kb_code rc = kbfuzz_first_doc(&src, &rd, &arena, &d, &err);
    if (rc == KB_OK && d) {
        kbfuzz_check_doc(d);
        KBFUZZ_CHECK(d->title != NULL, "no title");
        kbfuzz_check_format(d, "markdown");
        json_t *meta = json_loads(d->metadata_json, 0, NULL);
        json_t *fm = json_object_get(meta, "front_matter");
        size_t bom = size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
        int starts_block = size - bom >= 4 && (memcmp(data + bom, "---\n", 4) == 0 ||
                                               memcmp(data + bom, "---\r", 4) == 0);
        KBFUZZ_CHECK(fm == NULL || json_is_object(fm), "front_matter is not an object");
        if (starts_block)
            KBFUZZ_CHECK(fm != NULL, "a '---' block read without front_matter");
        if (fm == NULL && !starts_block && memchr(data, '\r', size) == NULL &&
            kbfuzz_utf8((const char *)data + bom, size - bom))
            KBFUZZ_CHECK(d->len == size - bom && memcmp(d->text, data + bom, d->len) == 0,
                         "text without front matter differs from the input");
        json_decref(meta);
        if (d->target == KB_TARGET_LEARNINGS && d->impact_level) {
            static const char *const levels[] = { "low", "medium", "high", "critical" };
            int ok = 0;
            for (int i = 0; i < 4; i++)
                ok |= strcmp(d->impact_level, levels[i]) == 0;
            KBFUZZ_CHECK(ok, "impact_level '%s'", d->impact_level);
        }
    } else if (rc != KB_OK) {
        kbfuzz_check_file_reject(rc, &err, "page.md");
    }
    kbfuzz_one_file_done(rd, arena, "page.md");
    return 0;
}
