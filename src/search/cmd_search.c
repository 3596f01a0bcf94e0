/*
 * cmd_search.c - `kbpipe search`: rank a project's chunks or learnings for
 * a query (vector, text or hybrid: search_hybrid_chunks /
 * search_hybrid_learnings of migration 008), print the results with the
 * lines that best match the query, and log the query in search_queries.
 *
 *   $ kbpipe search --project supervisor-service -k 1 --mode vector "how do I rotate a secret?"
 *    1. 0.244  Secrets management  (samples/docs/operations/secrets.md)
 *       | Secrets are stored encrypted with pgcrypto (`pgp_sym_encrypt`) under a key
 *       | `secret_rotation_schedule` holds a policy per secret. The view
 *       | `secrets_needing_rotation` lists those due within seven days;
 *
 * A heading path line follows the title when it differs from the title.
 * In hybrid and text modes the number is the fusion score (docs/search.md).
 *
 * This file is the command line; the connection, the model and the query's
 * vector are session.c, the search and its log query.c, the snippet lines
 * snippet.c, the printing print.c.  Tests: tests/integration/test_search.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "search_int.h"

static const char USAGE[] =
    "usage: kbpipe search --project NAME [--mode M] [-k N] [--learnings] [filters]\n"
    "                     [--min-similarity S] [--pipeline FILE] [--use] [--json] QUERY...\n"
    "\n"
    "Search a project's chunks (or learnings).  hybrid (the default) fuses two rankings\n"
    "by reciprocal rank fusion (k = 60): the query's embedding against the rows' (the\n"
    "model the project's rows were embedded with: kbpipe-hash-v1 needs no settings; a\n"
    "remote model needs --pipeline naming its provider) and PostgreSQL full text\n"
    "(websearch syntax: \"a phrase\", or, a minus sign before a word to exclude it).\n"
    "Each result shows its source, heading path and the lines that share the most\n"
    "words with the query.  Every query is logged in search_queries.\n"
    "\n"
    "  --project NAME       the project to search (required)\n"
    "  --mode M             vector, text or hybrid (default hybrid)\n"
    "  -k N                 how many results, 1-1000 (default 5)\n"
    "  --learnings          search learnings instead of chunks\n"
    "  --min-similarity S   with --mode vector: drop results below S, -1..1 (default 0)\n"
    "  --pipeline FILE      take the embedding settings from FILE's embedding: block\n"
    "                       (needed when the rows were embedded by a remote model)\n"
    "  --use                count a use of each learning shown (with --learnings)\n"
    "  --json               the results as a JSON array on stdout, for scripts\n"
    "\n"
    "Filters (combined with AND):\n"
    "  --source-type T      sources of type T (file, csv, github_issue, ...); repeatable\n"
    "  --path GLOB          source id or file path matches GLOB (* also matches /)\n"
    "  --label L            issues with label L\n"
    "  --state S            issues in state S (open, closed)\n"
    "  --since T, --until T sources written at or after T / before T (a date or time)\n"
    "  --category C         learnings of category C (with --learnings)\n"
    "  --tag T              learnings tagged T (with --learnings)\n"
    "  --with-duplicates    also learnings 'kbpipe dedup' marked as duplicates\n"
    "\n"
    "Words after the options are joined into one query.\n"
    "\n"
    "Examples:\n"
    "  kbpipe search --project supervisor-service -k 3 \"how do I rotate a secret?\"\n"
    "  kbpipe search --project supervisor-service --mode text --path 'operations/*' rotate\n"
    "  kbpipe search --project supervisor-service --learnings --use --json \"port conflicts\"\n";

/* ---- the command line ---------------------------------------------------- */

/* The option after getopt_long's return for a filter that takes a value; NULL for others. */
static const char **filter_slot(struct search_args *a, int c)
{
    switch (c) {
    case 'a': return &a->path;
    case 'L': return &a->label;
    case 'S': return &a->state;
    case 'b': return &a->since;
    case 'e': return &a->until;
    case 'g': return &a->tag;
    case 'c': return &a->category;
    default: return NULL;
    }
}

/* The long name of the option getopt_long returned as c. */
static const char *option_name(const struct option *opts, int c)
{
    for (; opts->name; opts++)
        if (opts->val == c)
            return opts->name;
    return "?";
}

/* KB_E_USAGE when the options do not fit together (a search of chunks or learnings). */
static enum kb_code check_combination(const struct search_args *a, struct kb_err *err)
{
    const char *source_filter = a->n_source_types ? "--source-type" : a->path ? "--path"
                                : a->label ? "--label" : a->state ? "--state"
                                : a->since ? "--since" : a->until ? "--until" : NULL;
    if (a->is_learnings && source_filter)
        return KB_FAIL(err, KB_E_USAGE, NULL, "%s filters chunks by their source, and "
                       "learnings have none; drop --learnings, or use --category / --tag",
                       source_filter);
    if (!a->is_learnings && (a->category || a->tag))
        return KB_FAIL(err, KB_E_USAGE, NULL, "%s filters learnings; add --learnings",
                       a->category ? "--category" : "--tag");
    if (!a->is_learnings && (a->is_use || a->is_with_duplicates))
        return KB_FAIL(err, KB_E_USAGE, NULL, "%s; add --learnings", a->is_use
                       ? "--use counts uses of learnings" : "--with-duplicates shows learnings");
    if (a->has_min_similarity && a->mode != SEARCH_VECTOR)
        return KB_FAIL(err, KB_E_USAGE, NULL, "--min-similarity is a cosine threshold of "
                       "--mode vector; in %s mode results are ranked by a fused score",
                       search_mode_names[a->mode]);
    return KB_OK;
}

/*
 * Read the command line into *a (a->query is then owned by *a, also on
 * failure).  KB_E_USAGE naming the option at fault; KB_PARTIAL for --help
 * (the caller prints USAGE).
 */
static enum kb_code parse_args(int argc, char **argv, struct search_args *a, struct kb_err *err)
{
    static const struct option longopts[] = {
        { "project", required_argument, NULL, 'p' },
        { "mode", required_argument, NULL, 'm' },
        { "learnings", no_argument, NULL, 'l' },
        { "category", required_argument, NULL, 'c' },
        { "min-similarity", required_argument, NULL, 's' },
        { "pipeline", required_argument, NULL, 'P' },
        { "use", no_argument, NULL, 'u' },
        { "json", no_argument, NULL, 'j' },
        { "source-type", required_argument, NULL, 't' },
        { "path", required_argument, NULL, 'a' },
        { "label", required_argument, NULL, 'L' },
        { "state", required_argument, NULL, 'S' },
        { "since", required_argument, NULL, 'b' },
        { "until", required_argument, NULL, 'e' },
        { "tag", required_argument, NULL, 'g' },
        { "with-duplicates", no_argument, NULL, 'D' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    memset(a, 0, sizeof *a);
    a->k = 5;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:h", longopts, NULL)) != -1) {
        enum kb_code rc = KB_OK;
        const char **slot = filter_slot(a, c);
        if (slot) {
            if (*optarg == '\0')
                return KB_FAIL(err, KB_E_USAGE, NULL, "option '--%s' needs a value, got an "
                               "empty one", option_name(longopts, c));
            *slot = optarg;
            continue;
        }
        switch (c) {
        case 'p': a->project = optarg; break;
        case 'm': rc = search_mode_parse(optarg, &a->mode, err); break;
        case 'l': a->is_learnings = 1; break;
        case 'P': a->pipeline_path = optarg; break;
        case 'u': a->is_use = 1; break;
        case 'j': a->is_json = 1; break;
        case 'D': a->is_with_duplicates = 1; break;
        case 'k': rc = search_parse_count("-k", optarg, SEARCH_MAX_K, &a->k, err); break;
        case 't':
            if (a->n_source_types == SEARCH_MAX_SOURCE_TYPES || *optarg == '\0')
                return KB_FAIL(err, KB_E_USAGE, NULL, "--source-type '%.40s': give 1 to %d "
                               "non-empty types", optarg, SEARCH_MAX_SOURCE_TYPES);
            a->source_types[a->n_source_types++] = optarg;
            break;
        case 's': {
            char *end;
            errno = 0;
            a->min_similarity = strtod(optarg, &end);
            a->has_min_similarity = 1;
            if (errno || end == optarg || *end || !(a->min_similarity >= -1.0) ||
                a->min_similarity > 1.0)
                return KB_FAIL(err, KB_E_USAGE, NULL,
                               "--min-similarity '%.40s' is not a similarity; give a number "
                               "from -1 to 1, e.g. 0.3", optarg);
            break;
        }
        case 'h': return KB_PARTIAL;   /* the caller prints USAGE */
        default: return search_bad_option("search", c, argc, argv, longopts, err);
        }
        if (rc != KB_OK)
            return rc;
    }
    if (a->project == NULL || *a->project == '\0')
        return KB_FAIL(err, KB_E_USAGE, NULL, "search needs --project NAME; 'kbpipe stats' "
                       "lists the projects");
    enum kb_code rc = check_combination(a, err);
    if (rc != KB_OK)
        return rc;
    struct kb_buf q;
    kb_buf_init(&q);
    for (int i = optind; i < argc; i++) {
        if (q.len)
            kb_buf_putc(&q, ' ');
        kb_buf_puts(&q, argv[i]);
    }
    size_t len = q.len;
    a->query = kb_buf_detach(&q);
    if (a->query == NULL || strspn(a->query, " \t\r\n") == len)
        return KB_FAIL(err, KB_E_USAGE, NULL, "search needs the query text, e.g. kbpipe "
                       "search --project %.60s \"how do I rotate a secret?\"", a->project);
    if (kb_utf8_valid_prefix(a->query, len) != len)
        return KB_FAIL(err, KB_E_USAGE, NULL, "the query is not valid UTF-8 (at byte %zu); "
                       "check the terminal's encoding", kb_utf8_valid_prefix(a->query, len));
    return KB_OK;
}

/* See search.h. */
enum kb_code cmd_search(int argc, char **argv, struct kb_err *err)
{
    struct search_args a;
    enum kb_code rc = parse_args(argc, argv, &a, err);
    if (rc == KB_PARTIAL) {
        fputs(USAGE, stdout);
        free(a.query);
        return KB_OK;
    }
    struct search_session s = { 0 };
    if (rc == KB_OK)
        rc = search_session_open(&a, &s, err);
    if (rc == KB_OK)
        rc = search_check_times(s.conn, &a, err);
    char *vec = NULL;
    if (rc == KB_OK && a.mode != SEARCH_TEXT)
        rc = search_embed_query(&s.emb, a.query, &vec, err);
    struct db_rows *rows = NULL;
    struct hit *hits = NULL;
    if (rc == KB_OK)
        rc = search_run(s.conn, &a, s.project_id, s.emb.model, vec, &rows, &hits, err);
    if (rc == KB_OK)
        search_print_results(&a, rows, hits, db_rows_count(rows));
    rc = db_session_diagnose(s.conn, rc, err);   /* a missing extension explains a failure */
    free(hits);
    db_rows_free(rows);
    free(vec);
    search_session_close(&s);
    free(a.query);
    return rc;
}
