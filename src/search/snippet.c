/*
 * snippet.c - the lines of a result that best match the query: the query's
 * words cut to stems ("rotate" -> "rota" also finds "rotation"), each line
 * scored by the stems that start one of its words, the best SNIPPET_LINES
 * shown in document order, a long line cut around its first match.
 * Tests: tests/integration/test_search.c (the snippets of real results).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "search_int.h"

#define MAX_WORDS 32

/* Common words that would make any line "match"; 1-2 letter words never count. */
static const char *const SKIP[] = {
    "about", "all", "and", "any", "are", "can", "could", "did", "does", "for", "from",
    "had", "has", "have", "how", "into", "its", "not", "our", "should", "that", "the",
    "their", "then", "there", "these", "they", "this", "was", "were", "what", "when",
    "where", "which", "who", "why", "will", "with", "would", "you", "your",
};

/*
 * The query's words for matching lines: runs of letters, digits, '_' and
 * non-ASCII bytes, lower-cased, 3+ bytes, common words dropped, each kept
 * as a stem matched at the start of a word, so "rotate" (stem "rota") also
 * finds "rotated" and "rotation", "keys" finds "key".  Returns how many
 * distinct stems (at most max).
 */
static int query_stems(const char *q, char stems[][32], int max)
{
    int n = 0;
    while (*q && n < max) {
        while (*q && !(isalnum((unsigned char)*q) || *q == '_' || (unsigned char)*q >= 0x80))
            q++;
        char w[32];
        size_t len = 0;
        while (*q && (isalnum((unsigned char)*q) || *q == '_' || (unsigned char)*q >= 0x80)) {
            if (len < sizeof w - 1)
                w[len++] = (char)tolower((unsigned char)*q);
            q++;
        }
        w[len] = '\0';
        int is_skip = len < 3;
        for (size_t i = 0; !is_skip && i < sizeof SKIP / sizeof SKIP[0]; i++)
            is_skip = strcmp(w, SKIP[i]) == 0;
        if (is_skip)
            continue;
        /* 6+ bytes: drop 2 ("rotate" -> "rota"); 5: drop 1; 4: drop a plural 's' */
        size_t stem = len >= 6 ? len - 2 : len == 5 ? 4 : len == 4 && w[3] == 's' ? 3 : len;
        w[stem] = '\0';
        for (int i = 0; i < n && !is_skip; i++)
            is_skip = strcmp(stems[i], w) == 0;
        if (!is_skip)
            memcpy(stems[n++], w, stem + 1);
    }
    return n;
}

/*
 * How many different stems occur at the start of a word of line[0..len);
 * *first is the offset of the earliest match (len when none).
 */
static int line_score(const char *line, size_t len, char stems[][32], int n_stems,
                      size_t *first)
{
    int score = 0;
    *first = len;
    for (int s = 0; s < n_stems; s++) {
        size_t sl = strlen(stems[s]);
        for (size_t i = 0; i + sl <= len; i++) {
            /* '_' starts a word too: "secrets_needing_rotation" has "rotation" */
            int at_word = i == 0 || !(isalnum((unsigned char)line[i - 1]) ||
                                      (unsigned char)line[i - 1] >= 0x80);
            if (at_word && strncasecmp(line + i, stems[s], sl) == 0) {
                score++;
                if (i < *first)
                    *first = i;
                break;
            }
        }
    }
    return score;
}

/* See search_int.h. */
int search_snippet_lines(const char *content, const char *query,
                         struct snippet_line out[SNIPPET_LINES])
{
    char stems[MAX_WORDS][32];
    int n_stems = query_stems(query, stems, MAX_WORDS), n = 0;
    struct snippet_line fallback = { 0 };
    for (const char *p = content; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        struct snippet_line l = { .p = p, .len = len };
        while (l.len && isspace((unsigned char)*l.p))
            l.p++, l.len--;
        while (l.len && isspace((unsigned char)l.p[l.len - 1]))
            l.len--;
        if (l.len && fallback.p == NULL)
            fallback = l;
        if (l.len)
            l.score = 2 * line_score(l.p, l.len, stems, n_stems, &l.first);
        if (l.score > 0 && l.p[0] == '#')
            l.score--;
        if (l.score > 0) {
            /* insert by score into the best SNIPPET_LINES, earlier lines first on ties */
            int at = n;
            while (at > 0 && out[at - 1].score < l.score)
                at--;
            if (at < SNIPPET_LINES) {
                int keep = n < SNIPPET_LINES ? n : SNIPPET_LINES - 1;
                memmove(&out[at + 1], &out[at], sizeof out[0] * (size_t)(keep - at));
                out[at] = l;
                if (n < SNIPPET_LINES)
                    n++;
            }
        }
        p = eol ? eol + 1 : p + len;
    }
    if (n == 0 && fallback.p) {
        out[0] = fallback;
        out[0].first = 0;
        n = 1;
    }
    for (int i = 1; i < n; i++)    /* back to document order */
        for (int j = i; j > 0 && out[j].p < out[j - 1].p; j--) {
            struct snippet_line t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

/* See search_int.h. */
char *search_snippet_text(const struct snippet_line *l)
{
    size_t start = 0, end = l->len;
    if (l->len > SNIPPET_BYTES) {
        start = l->first > 40 ? l->first - 40 : 0;
        if (start + SNIPPET_BYTES > l->len)
            start = l->len - SNIPPET_BYTES;
        end = start + SNIPPET_BYTES;
        while (start > 0 && ((unsigned char)l->p[start] & 0xC0) == 0x80)
            start--;
        while (end < l->len && ((unsigned char)l->p[end] & 0xC0) == 0x80)
            end--;
    }
    return kb_xasprintf("%s%.*s%s", start > 0 ? "..." : "", (int)(end - start), l->p + start,
                        end < l->len ? "..." : "");
}
