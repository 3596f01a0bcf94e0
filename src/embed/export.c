/*
 * export.c - the request file of OpenAI's Batch API for embeddings, one
 * line per chunk:
 *   {"custom_id":"<content_hash>","method":"POST","url":"/v1/embeddings",
 *    "body":{"model":"<model>","input":"<text>","dimensions":1536}}
 * One input per request keeps custom_id <-> chunk one to one, so the output
 * file can be imported as it is (provider import, format openai_batch).
 */
#include "embed/embed_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

enum kb_code embed_export_write(FILE *out, const char *out_name, const char *model,
                                const struct embed_export_item *items, int n,
                                struct kb_err *err)
{
    for (int i = 0; i < n; i++) {
        const struct embed_export_item *it = &items[i];
        if (kb_utf8_valid_prefix(it->text, it->len) != it->len)
            return KB_FAIL_AT(err, KB_E_INPUT, it->custom_id,
                              "the text is not valid UTF-8 at byte %zu; fix the source text",
                              kb_utf8_valid_prefix(it->text, it->len));
        json_t *line = json_pack("{s:s, s:s, s:s, s:{s:s, s:s%, s:i}}", "custom_id",
                                 it->custom_id, "method", "POST", "url", "/v1/embeddings",
                                 "body", "model", model, "input", it->text, it->len,
                                 "dimensions", KB_EMBED_DIM);
        if (!line)
            return KB_FAIL_AT(err, KB_E_INTERNAL, it->custom_id,
                              "internal error: cannot build the request line; please report it");
        char *s = json_dumps(line, JSON_COMPACT);
        json_decref(line);
        int is_ok = s && fputs(s, out) >= 0 && putc('\n', out) != EOF;
        free(s);
        if (!is_ok)
            return KB_FAIL_AT(err, KB_E_IO, out_name, "writing the request file failed: %s; "
                              "check the disk", strerror(errno));
    }
    return KB_OK;
}
