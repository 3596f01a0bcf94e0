/*
 * glob.c - include/exclude globs over '/'-separated relative paths, as
 * .gitignore and most build tools read them:
 *
 *   *      any run of characters except '/'
 *   ?      one character except '/'
 *   [a-z]  a class ([!...] or [^...] negates)
 *   **     as a whole segment: zero or more segments, so docs SLASH ** is every
 *          file under docs and "**" SLASH "*.md" every Markdown file
 *
 * A glob without '/' matches the file's base name at any depth ("*.md"
 * matches "a/b/c.md"); a glob with '/' matches the whole relative path.
 * (SLASH stands for '/': a slash after a star would end this comment.)
 */
#include "ingest_int.h"

#include <string.h>

/* Match a class at p (just after '['); *end set past ']'.  -1: not a class. */
static int class_match(const char *p, char c, const char **end)
{
    int negate = 0, hit = 0;
    if (*p == '!' || *p == '^') {
        negate = 1;
        p++;
    }
    const char *start = p;
    while (*p && (*p != ']' || p == start)) {
        if (p[1] == '-' && p[2] && p[2] != ']') {
            if ((unsigned char)c >= (unsigned char)p[0] && (unsigned char)c <= (unsigned char)p[2])
                hit = 1;
            p += 3;
        } else {
            if (*p == c)
                hit = 1;
            p++;
        }
    }
    if (*p != ']')
        return -1;
    *end = p + 1;
    return hit != negate;
}

static int match(const char *g, const char *s)
{
    while (*g) {
        /* "**" as a whole segment */
        if (g[0] == '*' && g[1] == '*' && (g[2] == '/' || g[2] == '\0')) {
            const char *rest = g[2] == '/' ? g + 3 : g + 2;
            if (*rest == '\0')
                return 1;
            /* try the rest at every segment start of s (including here) */
            for (const char *t = s;; t++) {
                if ((t == s || t[-1] == '/') && match(rest, t))
                    return 1;
                if (*t == '\0')
                    return 0;
            }
        }
        switch (*g) {
        case '*': {
            while (*g == '*')
                g++;
            for (const char *t = s;; t++) {
                if (match(g, t))
                    return 1;
                if (*t == '\0' || *t == '/')
                    return 0;
            }
        }
        case '?':
            if (*s == '\0' || *s == '/')
                return 0;
            g++;
            s++;
            break;
        case '[': {
            const char *end;
            int r = *s && *s != '/' ? class_match(g + 1, *s, &end) : 0;
            if (r < 0) {   /* no closing ']': a literal '[' */
                if (*s != '[')
                    return 0;
                g++;
                s++;
                break;
            }
            if (!r)
                return 0;
            g = end;
            s++;
            break;
        }
        case '\\':
            if (g[1])
                g++;
            /* fall through */
        default:
            if (*g != *s)
                return 0;
            g++;
            s++;
        }
    }
    return *s == '\0';
}

int ingest_glob_match(const char *glob, const char *path)
{
    if (strchr(glob, '/') == NULL) {
        const char *base = strrchr(path, '/');
        return match(glob, base ? base + 1 : path);
    }
    if (glob[0] == '/')   /* anchored at the root: same as relative */
        glob++;
    return match(glob, path);
}
