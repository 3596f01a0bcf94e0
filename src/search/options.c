/*
 * options.c - what the command lines of `kbpipe search` and `kbpipe eval`
 * share: the mode, whole-number options, getopt's errors, and the filters
 * as the jsonb object search_hybrid_chunks / search_hybrid_learnings read
 * (migration 008; docs/search.md).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "search_int.h"

const char *const search_mode_names[] = { "hybrid", "vector", "text" };

/* See search_int.h. */
enum kb_code search_mode_parse(const char *s, enum search_mode *out, struct kb_err *err)
{
    for (int m = SEARCH_HYBRID; m <= SEARCH_TEXT; m++)
        if (strcmp(s, search_mode_names[m]) == 0) {
            *out = (enum search_mode)m;
            return KB_OK;
        }
    return KB_FAIL(err, KB_E_USAGE, NULL, "--mode '%.40s' is not a mode; give vector, text or "
                   "hybrid", s);
}

/* See search_int.h. */
enum kb_code search_parse_count(const char *option, const char *s, int max, int *out,
                                struct kb_err *err)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > max)
        return KB_FAIL(err, KB_E_USAGE, NULL, "%s '%.40s' is not a count; give a whole number "
                       "from 1 to %d", option, s, max);
    *out = (int)v;
    return KB_OK;
}

/* See search_int.h. */
enum kb_code search_bad_option(const char *command, int c, int argc, char **argv,
                               const struct option *longopts, struct kb_err *err)
{
    const char *arg = optind - 1 < argc ? argv[optind - 1] : "?";
    if (c == ':')
        return KB_FAIL(err, KB_E_USAGE, NULL, "option '%.40s' needs a value; see 'kbpipe %s "
                       "--help'", arg, command);
    if (optopt)
        return KB_FAIL(err, KB_E_USAGE, NULL, "unknown option '-%c'; see 'kbpipe %s --help'",
                       optopt, command);
    return kb_cli_unknown_option(command, arg, longopts, err);   /* with a did-you-mean */
}

/* See search_int.h. */
json_t *search_filters_json(const struct search_args *a)
{
    json_t *f = json_object();
    if (a->n_source_types > 0) {
        json_t *types = json_array();
        for (int i = 0; i < a->n_source_types; i++)
            json_array_append_new(types, search_json_text(a->source_types[i]));
        json_object_set_new(f, "source_type", types);
    }
    const struct { const char *key, *value; } fields[] = {
        { "path", a->path }, { "label", a->label }, { "state", a->state },
        { "since", a->since }, { "until", a->until }, { "category", a->category },
        { "tag", a->tag },
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].value)
            json_object_set_new(f, fields[i].key, search_json_text(fields[i].value));
    return f;
}
