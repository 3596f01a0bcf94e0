/*
 * nearest.c - "did you mean": the nearest of a list of names to a word that
 * matched none of them (pipeline keys, commands, options), by edit distance.
 */
#include <getopt.h>
#include <string.h>

#include "util.h"

static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    int d[41][41];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

/* See util.h. */
const char *kb_nearest(const char *word, const char *const *choices, int max_distance)
{
    int best = max_distance + 1;
    const char *near = NULL;
    for (const char *const *c = choices; *c; c++) {
        int d = edit_distance(*c, word);
        if (d < best) {
            best = d;
            near = *c;
        }
    }
    return near;
}

/* See util.h. */
enum kb_code kb_cli_unknown_option(const char *command, const char *arg,
                                   const struct option *longopts, struct kb_err *err)
{
    const char *names[64];
    size_t n = 0;
    for (const struct option *o = longopts; o && o->name && n + 1 < 64; o++)
        names[n++] = o->name;
    names[n] = NULL;
    /* "--limt=3" is compared as "limt"; a word of 2 letters may not change wholly */
    char word[48];
    size_t skip = strspn(arg, "-"), len = strcspn(arg + skip, "=");
    if (len >= sizeof word)
        len = sizeof word - 1;
    memcpy(word, arg + skip, len);
    word[len] = '\0';
    /* getopt also answers '?' for a known option used wrongly */
    for (const struct option *o = longopts; skip > 0 && o && o->name; o++) {
        if (strcmp(o->name, word) != 0)
            continue;
        if (o->has_arg == no_argument)
            return KB_FAIL(err, KB_E_USAGE, NULL, "option '--%s' takes no value; see 'kbpipe %s "
                           "--help'", o->name, command);
        return KB_FAIL(err, KB_E_USAGE, NULL, "option '--%s' needs a value; see 'kbpipe %s "
                       "--help'", o->name, command);
    }
    int max = len <= 2 ? (int)len - 1 : 2;
    const char *near = skip > 0 ? kb_nearest(word, names, max) : NULL;
    if (near)
        return KB_FAIL(err, KB_E_USAGE, NULL, "unknown option '%.40s' (did you mean '--%s'?); "
                       "see 'kbpipe %s --help'", arg, near, command);
    return KB_FAIL(err, KB_E_USAGE, NULL, "unknown option '%.40s'; see 'kbpipe %s --help'", arg,
                   command);
}
