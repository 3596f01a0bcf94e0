/*
 * redact.c - the one masking function for every URL, conninfo, header or
 * body text kbpipe prints or stores.  kb_err_set(), kb_err_prefix() and
 * the log_* lines pass their text through it, so an error message, the
 * --report JSON, a reject file line and a kbpipe_runs row never hold a
 * password or a key, whatever code formatted them.
 *
 * It scans free text (a whole message, not just a conninfo) and masks:
 *   user:PASS@ after "scheme://"  -> user:****@
 *   TOKEN@ after "scheme://"      -> ****@  (postgres and postgresql URLs keep
 *                                    it: there it is the user name)
 *   password=PASS                 -> password=****   the libpq forms: unquoted
 *                                    with backslash escapes ("Esc\ aped"),
 *                                    'single quoted, \' and \\ escaped' (shown
 *                                    unquoted),
 *                                    spaces around '=', libpq's skipping of
 *                                    spaces after '='
 *   ?password=PASS&...            -> ?password=****&... (URL query: the value
 *                                    ends at '&' or '#')
 *   "api_key": "KEY"              -> "api_key": "****"   (JSON bodies)
 *   Authorization: Bearer TOKEN   -> Authorization: Bearer ****
 *   X-Api-Key: KEY, Bearer TOKEN  -> X-Api-Key: ****, Bearer ****
 * for the keys of secret_keys[] (case-insensitive, whole words only: a host
 * or database named "password" is not a key, "max_tokens" is not "token").
 * A value already shown as **** (followed by the end, a space or
 * punctuation) stays as it is, so masking twice changes nothing.
 */
#include "util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MASK "****"

/* keys whose value after '=' or ':' is a secret */
static const char *const secret_keys[] = {
    "password", "sslpassword", "pgpassword", "passwd", "pwd", "api_key", "apikey",
    "api-key", "x-api-key", "access_token", "auth_token", "token", "secret",
    "client_secret", "authorization", "proxy-authorization",
};

/* characters that continue a word (a key must not be part of a longer one) */
static int is_word(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

/* RFC 6750 b64token characters: what a Bearer token is made of */
static int is_token68(char c)
{
    return isalnum((unsigned char)c) || strchr("-._~+/=", c) != NULL;
}

static int is_end_of_mask(char c)
{
    return c == '\0' || isspace((unsigned char)c) || strchr(")]},;:&#'\"", c) != NULL;
}

/* p is an already-masked value: leave it (masking is idempotent) */
static int is_masked(const char *p)
{
    return strncmp(p, MASK, 4) == 0 && is_end_of_mask(p[4]);
}

/* Length of the secret key word at p (0 when none starts there). */
static size_t key_at(const char *text, const char *p)
{
    if (p > text && is_word(p[-1]))
        return 0;
    size_t best = 0;
    for (size_t i = 0; i < sizeof secret_keys / sizeof secret_keys[0]; i++) {
        size_t n = strlen(secret_keys[i]);
        if (n > best && strncasecmp(p, secret_keys[i], n) == 0 && !is_word(p[n]))
            best = n;
    }
    return best;
}

/* End of a value quoted by q (p just after the opening quote), escapes skipped;
 * returns the position after the closing quote, or the end of the text. */
static const char *skip_quoted(const char *p, char q)
{
    for (; *p && *p != q; p++)
        if (*p == '\\' && p[1])
            p++;
    return *p ? p + 1 : p;
}

/*
 * scheme://userinfo@ at p: append the masked prefix (through '@') to b and
 * return the position after '@'; NULL when p starts no URL with userinfo.
 */
static const char *url_userinfo(struct kb_buf *b, const char *text, const char *p)
{
    if (!isalpha((unsigned char)*p) || (p > text && (is_word(p[-1]) || p[-1] == '+')))
        return NULL;
    const char *s = p;
    while (isalnum((unsigned char)*s) || *s == '+' || *s == '-' || *s == '.')
        s++;
    if (strncmp(s, "://", 3) != 0)
        return NULL;
    const char *auth = s + 3, *end = auth, *at = NULL;
    while (*end && !isspace((unsigned char)*end) && !strchr("/?#\"'<>", *end)) {
        if (*end == '@')
            at = end;   /* the last '@': an unencoded one in a password is kept inside */
        end++;
    }
    if (at == NULL)
        return NULL;
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    size_t scheme_len = (size_t)(s - p);
    int is_pg = (scheme_len == 8 && strncasecmp(p, "postgres", 8) == 0) ||
                (scheme_len == 10 && strncasecmp(p, "postgresql", 10) == 0);
    if (colon) {
        kb_buf_append(b, p, (size_t)(colon - p) + 1);
        kb_buf_puts(b, MASK "@");
    } else if (is_pg) {
        kb_buf_append(b, p, (size_t)(at - p) + 1);
    } else {
        kb_buf_append(b, p, (size_t)(auth - p));
        kb_buf_puts(b, MASK "@");
    }
    return at + 1;
}

/* The value after "key=" at p (URL query when is_query): masked into b. */
static const char *mask_assigned(struct kb_buf *b, const char *p, int is_query)
{
    if (!is_query)   /* libpq skips spaces after '=': they are shown as they are */
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            kb_buf_putc(b, *p++);
    if (*p == '\'') {   /* libpq quoting: shown as a plain password=**** */
        kb_buf_puts(b, MASK);
        return skip_quoted(p + 1, '\'');
    }
    if (*p == '"') {    /* a JSON or shell string: keeps its quotes */
        kb_buf_puts(b, "\"" MASK "\"");
        return skip_quoted(p + 1, '"');
    }
    kb_buf_puts(b, MASK);
    if (is_masked(p))
        return p + 4;
    if (is_query) {
        while (*p && !isspace((unsigned char)*p) && !strchr("&#\"'", *p))
            p++;
        return p;
    }
    for (; *p && !isspace((unsigned char)*p); p++)
        if (*p == '\\' && p[1])
            p++;   /* "Esc\ aped": the escaped space belongs to the value */
    return p;
}

/* The value after "Key:" (a header) or "Bearer" at p: masked into b. */
static const char *mask_header(struct kb_buf *b, const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    /* "Bearer TOKEN", "Basic B64": keep the scheme, mask what follows */
    const char *w = p;
    while (isalpha((unsigned char)*w))
        w++;
    if (w > p && *w == ' ' && (is_token68(w[1]) || is_masked(w + 1))) {
        kb_buf_append(b, p, (size_t)(w - p) + 1);
        p = w + 1;
    }
    kb_buf_puts(b, MASK);
    if (is_masked(p))
        return p + 4;
    while (*p && !isspace((unsigned char)*p) && *p != '"' && *p != '\'' && *p != ',')
        p++;
    return p;
}

/* "Key: value" is a secret only for the header names */
static int is_header(const char *p, size_t n)
{
    static const char *const headers[] = { "authorization", "proxy-authorization",
                                           "x-api-key", "api-key" };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        if (strlen(headers[i]) == n && strncasecmp(p, headers[i], n) == 0)
            return 1;
    return 0;
}

/* A secret key word at p (length n): append the key and its masked value. */
static const char *mask_key(struct kb_buf *b, const char *text, const char *p, size_t n)
{
    const char *v = p + n;
    int is_json = p > text && p[-1] == '"' && *v == '"';
    if (is_json)
        v++;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v == '=') {
        kb_buf_append(b, p, (size_t)(v + 1 - p));
        int is_query = p > text && (p[-1] == '?' || p[-1] == '&');
        return mask_assigned(b, v + 1, is_query);
    }
    if (*v == ':') {
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        kb_buf_append(b, p, (size_t)(v - p));
        if (is_json && *v == '"') {
            kb_buf_puts(b, "\"" MASK "\"");
            return skip_quoted(v + 1, '"');
        }
        if (!is_json && is_header(p, n))
            return mask_header(b, v);
        return v;   /* a JSON number, prose ("token: 3"): not a secret */
    }
    kb_buf_append(b, p, n);
    return p + n;
}

char *kb_redact(const char *text)
{
    struct kb_buf b;
    kb_buf_init(&b);
    kb_buf_reserve(&b, strlen(text) + 16);
    kb_buf_append(&b, "", 0);   /* "" in, "" out: never NULL */
    const char *p = text;
    while (*p) {
        const char *next = url_userinfo(&b, text, p);
        if (next) {
            p = next;
            continue;
        }
        size_t n = key_at(text, p);
        if (n) {
            p = mask_key(&b, text, p, n);
            continue;
        }
        if (strncasecmp(p, "bearer ", 7) == 0 && (p == text || !is_word(p[-1])) &&
            is_token68(p[7])) {
            p = mask_header(&b, p);
            continue;
        }
        kb_buf_putc(&b, *p++);
    }
    return kb_buf_detach(&b);
}

void kb_redact_in(char *buf, size_t n)
{
    if (buf == NULL || n == 0)
        return;
    char *r = kb_redact(buf);
    snprintf(buf, n, "%s", r);
    free(r);
}
