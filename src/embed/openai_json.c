/*
 * openai_json.c - the JSON of the OpenAI embeddings API (POST /embeddings),
 * which OpenAI, Azure, vLLM, Ollama's /v1 and TEI's /v1 all speak:
 *   request   {"model": M, "input": ["text", ...], "dimensions": 1536,
 *              "encoding_format": "float"}
 *   response  {"object": "list", "data": [{"object": "embedding",
 *              "index": 0, "embedding": [1536 numbers]}, ...], ...}
 *   error     {"error": {"message": "...", "type": ..., "code": ...}}
 * A response is trusted only when every input comes back once (by index,
 * in any order) with exactly 1536 numbers.  Non-finite values are not JSON,
 * but servers write them: Python's json as NaN / Infinity / -Infinity, C's
 * printf as nan / inf, JavaScript as null.  They are read as NaN and +-Inf
 * (an answer that fails to parse is read again with those words quoted), so
 * that normalization rejects the one row, naming its origin, instead of the
 * whole request failing as "not JSON".
 */
#include "embed/embed_int.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

char *openai_body_build(const char *model, int dimensions, const struct embed_batch *b,
                        const int *rows, int n)
{
    json_t *input = json_array();
    for (int k = 0; k < n; k++) {
        const struct embed_row *r = &b->rows[rows[k]];
        json_array_append_new(input, json_stringn(r->text, r->len));
    }
    json_t *body = json_pack("{s:s, s:o, s:s}", "model", model, "input", input,
                             "encoding_format", "float");
    if (dimensions > 0)
        json_object_set_new(body, "dimensions", json_integer(dimensions));
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!s)   /* only on OOM (texts were checked for UTF-8 before) */
        s = kb_xstrdup("{}");
    return s;
}

/* The length of a non-finite literal at p (NaN, Infinity, inf, -Infinity, ...,
 * any case) and its value in *v; 0 when p holds none. */
static size_t nonfinite_at(const char *p, const char *end, double *v)
{
    static const char *const words[] = { "infinity", "inf", "nan" };
    const char *q = p;
    int is_neg = 0;
    if (q < end && (*q == '-' || *q == '+'))
        is_neg = *q++ == '-';
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
        size_t n = strlen(words[w]);
        if ((size_t)(end - q) < n || strncasecmp(q, words[w], n) != 0)
            continue;
        const char *after = q + n;
        if (after < end && ((*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z')))
            continue;   /* part of a longer word */
        *v = w == 2 ? NAN : is_neg ? -INFINITY : INFINITY;
        return (size_t)(after - p);
    }
    return 0;
}

/* body with every non-finite literal outside strings quoted ("NaN",
 * "Infinity", "-Infinity"); caller frees. */
static char *quote_nonfinite(const char *body, size_t len, size_t *out_len)
{
    struct kb_buf b;
    kb_buf_init(&b);
    const char *end = body + len;
    int is_in_string = 0;
    for (const char *p = body; p < end; p++) {
        double v;
        size_t n;
        if (is_in_string) {
            if (*p == '\\' && p + 1 < end) {
                kb_buf_append(&b, p, 2);
                p++;
                continue;
            }
            if (*p == '"')
                is_in_string = 0;
        } else if (*p == '"') {
            is_in_string = 1;
        } else if ((n = nonfinite_at(p, end, &v)) > 0) {
            kb_buf_puts(&b, isnan(v) ? "\"NaN\"" : v < 0 ? "\"-Infinity\"" : "\"Infinity\"");
            p += n - 1;
            continue;
        }
        kb_buf_putc(&b, *p);
    }
    *out_len = b.len;
    return kb_buf_detach(&b);
}

/* An element of an embedding: a number, a quoted non-finite word, or null
 * (JavaScript's NaN); 0 when it is none of these. */
static int element_value(const json_t *x, float *out)
{
    if (json_is_number(x)) {
        *out = (float)json_number_value(x);
        return 1;
    }
    if (json_is_null(x)) {
        *out = NAN;
        return 1;
    }
    double v;
    const char *s = json_string_value(x);
    if (s && nonfinite_at(s, s + strlen(s), &v) == strlen(s) && s[0]) {
        *out = (float)v;
        return 1;
    }
    return 0;
}

enum kb_code openai_response_parse(const char *body, size_t len, struct embed_batch *b,
                                   const int *rows, int n, const char *what,
                                   struct kb_err *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        size_t qlen;
        char *quoted = quote_nonfinite(body, len, &qlen);
        root = json_loadb(quoted, qlen, 0, NULL);   /* jerr keeps the first error */
        free(quoted);
    }
    json_t *data = json_object_get(root, "data");
    enum kb_code rc = KB_OK;
    unsigned char *seen = kb_xcalloc((size_t)n + 1, 1);
    if (!root) {
        rc = KB_FAIL_AT(err, KB_E_EMBED, what,
                        "the server's answer is not JSON (%s); is base_url an OpenAI-compatible "
                        "endpoint?", jerr.text);
    } else if (!json_is_array(data)) {
        rc = KB_FAIL_AT(err, KB_E_EMBED, what,
                        "the server's answer has no \"data\" array; is base_url an "
                        "OpenAI-compatible embeddings endpoint?");
    } else if (json_array_size(data) != (size_t)n) {
        rc = KB_FAIL_AT(err, KB_E_EMBED, what,
                        "the server returned %zu embeddings for %d inputs; check that the "
                        "endpoint accepts a list of inputs", json_array_size(data), n);
    }
    for (size_t k = 0; rc == KB_OK && k < (size_t)n; k++) {
        json_t *item = json_array_get(data, k);
        json_t *idx = json_object_get(item, "index");
        json_t *vec = json_object_get(item, "embedding");
        json_int_t i = json_is_integer(idx) ? json_integer_value(idx) : -1;
        if (i < 0 || i >= n || seen[i]) {
            rc = KB_FAIL_AT(err, KB_E_EMBED, what,
                            "embedding %zu of the answer has index %lld, which is %s; the "
                            "server's answer cannot be matched to its inputs", k, (long long)i,
                            i >= 0 && i < n ? "a repeat" : "missing or out of range");
            break;
        }
        seen[i] = 1;
        if (!json_is_array(vec) || json_array_size(vec) != KB_EMBED_DIM) {
            const char *origin = b->rows[rows[i]].origin;
            rc = KB_FAIL_AT(err, KB_E_EMBED, what,
                            "the server returned a vector of %zu dimensions for %.120s, kbpipe "
                            "needs %d; use a model that supports \"dimensions\": %d (e.g. "
                            "text-embedding-3-small) or one that makes %d-dimension vectors",
                            json_is_array(vec) ? json_array_size(vec) : 0,
                            origin ? origin : "?", KB_EMBED_DIM, KB_EMBED_DIM, KB_EMBED_DIM);
            break;
        }
        float *dst = embed_batch_row(b, rows[i]);
        for (size_t j = 0; j < KB_EMBED_DIM; j++) {
            if (!element_value(json_array_get(vec, j), &dst[j])) {
                const char *origin = b->rows[rows[i]].origin;
                rc = KB_FAIL_AT(err, KB_E_EMBED, what,
                                "element %zu of the embedding for %.120s is not a number; the "
                                "server's answer is malformed", j, origin ? origin : "?");
                break;
            }
        }
    }
    free(seen);
    json_decref(root);
    return rc;
}

/* Copy s into out as one line, masking every occurrence of secret. */
static void copy_line(const char *s, size_t len, const char *secret, char *out, size_t out_len)
{
    size_t secret_len = secret ? strlen(secret) : 0, o = 0;
    for (size_t i = 0; i < len && o + 1 < out_len; i++) {
        if (secret_len >= 4 && i + secret_len <= len && memcmp(s + i, secret, secret_len) == 0) {
            for (const char *m = "***"; *m && o + 1 < out_len; m++)
                out[o++] = *m;
            i += secret_len - 1;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        out[o++] = c == '\n' || c == '\r' || c == '\t' ? ' ' : c < 0x20 ? '?' : (char)c;
    }
    out[o] = '\0';
}

void openai_error_message(const char *body, size_t len, const char *secret, char *out,
                          size_t out_len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *e = json_object_get(root, "error");
    const char *msg = NULL;
    if (json_is_object(e))
        msg = json_string_value(json_object_get(e, "message"));
    else if (json_is_string(e))
        msg = json_string_value(e);
    if (!msg)
        msg = json_string_value(json_object_get(root, "detail"));
    if (!msg)
        msg = json_string_value(json_object_get(root, "message"));
    if (msg)
        copy_line(msg, strlen(msg), secret, out, out_len);
    else if (len > 0)
        copy_line(body, len < 200 ? len : 200, secret, out, out_len);
    else
        snprintf(out, out_len, "(empty answer)");
    json_decref(root);
}
