/*
 * cmd_eval.c - `kbpipe eval QUESTIONS.tsv --project P`: score the
 * project's search on a labelled question file (eval.c reads it), per mode.
 *
 *   $ kbpipe eval bench/search/questions.tsv --project bench-512 -k 5
 *   48 questions (bench/search/questions.tsv), project 'bench-512', k = 5, 40 chunks ...
 *   mode    recall@1  recall@5   MRR@5  p50 ms  p95 ms
 *   vector     0.604     0.833   0.694    1.90    3.05
 *   ...
 *   misses (expected source not first):
 *     vector  bench/search/questions.tsv:12  rank 3  "..."  expected pip/...; first pyenv/README.md
 *
 * Each question is embedded as `kbpipe search` embeds it (the project's
 * model) and ranked by the same statement (search_rank), without the log
 * row: eval writes nothing.  The time per question is the search
 * statement's round trip, which on the local socket is the server's time.
 * Tests: tests/integration/test_search.c (group cmd_eval.c),
 * tests/unit/test_search_eval.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "search_int.h"

#define EVAL_MAX_REPEAT 100

static const char USAGE[] =
    "usage: kbpipe eval QUESTIONS.tsv --project NAME [--mode M] [-k N] [--repeat N]\n"
    "                   [--fetch N] [--pipeline FILE] [--json]\n"
    "\n"
    "Score a project's search on labelled questions: one a line, QUESTION<TAB>EXPECTED,\n"
    "EXPECTED the answering source's id (a file's path under its root, owner/repo#123)\n"
    "or a glob over source ids and file paths; more tab-separated values mean any of\n"
    "them.  '#' lines and blank lines are skipped.  Prints recall@1, recall@k and MRR@k\n"
    "per mode (ranks of sources, not chunks), the search time per question, and the\n"
    "misses with the rank of the expected source.  Nothing is written to the database.\n"
    "\n"
    "  --project NAME   the project to search (required)\n"
    "  --mode M         vector, text or hybrid (default: all three)\n"
    "  -k N             the cut-off of recall@k and MRR@k, 1-100 (default 5)\n"
    "  --repeat N       run every question N times, for steadier times (default 1)\n"
    "  --fetch N        chunks retrieved per question, 1-1000 (default max(8 x k, 40));\n"
    "                   --fetch 5 times the statement of 'kbpipe search -k 5'\n"
    "  --pipeline FILE  the embedding settings, when the rows were embedded remotely\n"
    "  --json           the figures and misses as one JSON object on stdout\n"
    "\n"
    "Example:\n"
    "  kbpipe eval bench/search/questions.tsv --project bench-512 -k 5\n";

struct eval_args {
    struct search_args s;          /* project, mode, k (the retrieval depth), pipeline */
    const char *path;
    int k, repeat, fetch, is_all_modes;   /* fetch 0: max(8 x k, 40) */
};

/* What one mode scored, and its misses in question order. */
struct eval_mode {
    enum search_mode mode;
    struct eval_score score;
    double *ms;                    /* one time per question and repeat */
    int n_ms;
    int *ranks;                    /* per question: 1-based source rank, 0 = not retrieved */
    char **firsts;                 /* per question: the first source retrieved (owned) */
};

static enum kb_code parse_args(int argc, char **argv, struct eval_args *a, struct kb_err *err)
{
    static const struct option longopts[] = {
        { "project", required_argument, NULL, 'p' },
        { "mode", required_argument, NULL, 'm' },
        { "repeat", required_argument, NULL, 'r' },
        { "fetch", required_argument, NULL, 'f' },
        { "pipeline", required_argument, NULL, 'P' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    memset(a, 0, sizeof *a);
    a->k = 5;
    a->repeat = 1;
    a->is_all_modes = 1;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:h", longopts, NULL)) != -1) {
        enum kb_code rc = KB_OK;
        switch (c) {
        case 'p': a->s.project = optarg; break;
        case 'P': a->s.pipeline_path = optarg; break;
        case 'j': a->s.is_json = 1; break;
        case 'm':
            rc = search_mode_parse(optarg, &a->s.mode, err);
            a->is_all_modes = 0;
            break;
        case 'k': rc = search_parse_count("-k", optarg, 100, &a->k, err); break;
        case 'r': rc = search_parse_count("--repeat", optarg, EVAL_MAX_REPEAT, &a->repeat, err); break;
        case 'f': rc = search_parse_count("--fetch", optarg, SEARCH_MAX_K, &a->fetch, err); break;
        case 'h': return KB_PARTIAL;
        default: return search_bad_option("eval", c, argc, argv, longopts, err);
        }
        if (rc != KB_OK)
            return rc;
    }
    if (optind >= argc)
        return KB_FAIL(err, KB_E_USAGE, NULL, "eval needs the question file, e.g. kbpipe eval "
                       "bench/search/questions.tsv --project NAME");
    if (optind + 1 < argc)
        return KB_FAIL(err, KB_E_USAGE, NULL, "eval takes one question file, got '%.60s' too",
                       argv[optind + 1]);
    a->path = argv[optind];
    if (a->s.project == NULL || *a->s.project == '\0')
        return KB_FAIL(err, KB_E_USAGE, NULL, "eval needs --project NAME; 'kbpipe stats' "
                       "lists the projects");
    /* enough chunks to see k distinct sources even when a source has several;
     * --fetch sets it, e.g. to time the statement of a `kbpipe search -k 5` */
    a->s.k = a->fetch > 0 ? a->fetch : a->k * 8 > 40 ? a->k * 8 : 40;
    return KB_OK;
}

/* Run every question of `set` in mode m->mode; fills m. */
static enum kb_code eval_mode(struct db_conn *conn, struct eval_args *a, const char *project_id,
                              const struct eval_set *set, char *const *vecs, struct eval_mode *m,
                              struct kb_err *err)
{
    a->s.mode = m->mode;
    m->ms = kb_xcalloc((size_t)set->n * (size_t)a->repeat + 1, sizeof *m->ms);
    m->ranks = kb_xcalloc((size_t)set->n + 1, sizeof *m->ranks);
    m->firsts = kb_xcalloc((size_t)set->n + 1, sizeof *m->firsts);
    for (int i = 0; i < set->n; i++) {
        const struct eval_question *q = &set->items[i];
        struct db_rows *rows = NULL;
        a->s.query = (char *)q->text;
        for (int r = 0; r < a->repeat; r++) {
            db_rows_free(rows);
            rows = NULL;
            double t0 = kb_now();
            enum kb_code rc = search_rank(conn, &a->s, project_id, vecs[i], &rows, err);
            if (rc != KB_OK) {
                kb_err_prefix(err, "%s:%ld", a->path, q->line);
                return rc;
            }
            m->ms[m->n_ms++] = (kb_now() - t0) * 1000.0;
        }
        int n = db_rows_count(rows);
        const char **ids = kb_xcalloc((size_t)n + 1, sizeof *ids);
        const char **paths = kb_xcalloc((size_t)n + 1, sizeof *paths);
        for (int j = 0; j < n; j++) {
            ids[j] = db_rows_get(rows, j, SEARCH_COL_SOURCE_ID);
            paths[j] = db_rows_isnull(rows, j, SEARCH_COL_FILE_PATH)
                       ? NULL : db_rows_get(rows, j, SEARCH_COL_FILE_PATH);
        }
        m->ranks[i] = search_eval_rank(q, ids, paths, n);
        m->firsts[i] = n > 0 ? kb_xstrdup(ids[0]) : NULL;
        search_eval_score_add(&m->score, m->ranks[i], a->k);
        free(ids);
        free(paths);
        db_rows_free(rows);
    }
    a->s.query = NULL;
    return KB_OK;
}

static double ratio(int n, int d) { return d > 0 ? (double)n / d : 0.0; }

static void print_text(const struct eval_args *a, const struct eval_set *set,
                       struct eval_mode *modes, int n_modes)
{
    printf("%d questions (%s), project '%s', k = %d, %d chunks retrieved a question\n", set->n,
           a->path, a->s.project, a->k, a->s.k);
    printf("%-7s %9s %8s%d %6s%d %7s %7s\n", "mode", "recall@1", "recall@", a->k, "MRR@",
           a->k, "p50 ms", "p95 ms");
    for (int i = 0; i < n_modes; i++) {
        struct eval_mode *m = &modes[i];
        printf("%-7s %9.3f %9.3f %7.3f %7.2f %7.2f\n", search_mode_names[m->mode],
               ratio(m->score.n_at_1, m->score.n), ratio(m->score.n_at_k, m->score.n),
               m->score.n ? m->score.rr_sum / m->score.n : 0.0,
               search_eval_percentile(m->ms, m->n_ms, 50), search_eval_percentile(m->ms, m->n_ms, 95));
    }
    int has_miss = 0;
    for (int i = 0; i < n_modes; i++)
        for (int j = 0; j < set->n; j++) {
            if (modes[i].ranks[j] == 1)
                continue;
            if (!has_miss++)
                printf("misses (expected source not first):\n");
            const struct eval_question *q = &set->items[j];
            char rank[16];
            if (modes[i].ranks[j])
                snprintf(rank, sizeof rank, "rank %d", modes[i].ranks[j]);
            else
                snprintf(rank, sizeof rank, "not found");
            printf("  %-6s %s:%ld  %-9s  \"%.70s\"  expected %s; first %s\n",
                   search_mode_names[modes[i].mode], a->path, q->line, rank, q->text,
                   q->expected[0], modes[i].firsts[j] ? modes[i].firsts[j] : "(nothing)");
        }
}

static void print_json(const struct eval_args *a, const struct eval_set *set,
                       struct eval_mode *modes, int n_modes)
{
    json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:i, s:o}", "questions_file", a->path, "project",
                          a->s.project, "k", a->k, "fetch", a->s.k, "questions", set->n,
                          "modes", json_array());
    for (int i = 0; i < n_modes; i++) {
        struct eval_mode *m = &modes[i];
        json_t *misses = json_array();
        for (int j = 0; j < set->n; j++) {
            if (m->ranks[j] == 1)
                continue;
            const struct eval_question *q = &set->items[j];
            json_t *exp = json_array();
            for (int e = 0; e < q->n_expected; e++)
                json_array_append_new(exp, search_json_text(q->expected[e]));
            json_array_append_new(misses, json_pack(
                "{s:i, s:o, s:o, s:o, s:o}", "line", (int)q->line,
                "question", search_json_text(q->text), "expected", exp,
                "rank", m->ranks[j] ? json_integer(m->ranks[j]) : json_null(),
                "first", search_json_text(m->firsts[j])));
        }
        json_array_append_new(json_object_get(o, "modes"), json_pack(
            "{s:s, s:f, s:f, s:f, s:f, s:f, s:o}", "mode", search_mode_names[m->mode],
            "recall_at_1", ratio(m->score.n_at_1, m->score.n),
            "recall_at_k", ratio(m->score.n_at_k, m->score.n),
            "mrr_at_k", m->score.n ? m->score.rr_sum / m->score.n : 0.0,
            "query_ms_p50", search_eval_percentile(m->ms, m->n_ms, 50),
            "query_ms_p95", search_eval_percentile(m->ms, m->n_ms, 95), "misses", misses));
    }
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    fputc('\n', stdout);
    json_decref(o);
}

enum kb_code cmd_eval(int argc, char **argv, struct kb_err *err)
{
    struct eval_args a;
    enum kb_code rc = parse_args(argc, argv, &a, err);
    if (rc == KB_PARTIAL) {
        fputs(USAGE, stdout);
        return KB_OK;
    }
    struct eval_set set = { 0 };
    if (rc == KB_OK)
        rc = search_eval_read(a.path, &set, err);
    struct search_session ss = { 0 };
    if (rc == KB_OK)
        rc = search_session_open(&a.s, &ss, err);
    char **vecs = kb_xcalloc((size_t)set.n + 1, sizeof *vecs);
    for (int i = 0; rc == KB_OK && i < set.n; i++) {
        rc = search_embed_query(&ss.emb, set.items[i].text, &vecs[i], err);
        if (rc != KB_OK)
            kb_err_prefix(err, "%s:%ld", a.path, set.items[i].line);
    }
    struct eval_mode modes[3] = { { .mode = SEARCH_VECTOR }, { .mode = SEARCH_TEXT },
                                  { .mode = SEARCH_HYBRID } };
    int n_modes = a.is_all_modes ? 3 : 1;
    if (!a.is_all_modes)
        modes[0].mode = a.s.mode;
    for (int i = 0; rc == KB_OK && i < n_modes; i++)
        rc = eval_mode(ss.conn, &a, ss.project_id, &set, vecs, &modes[i], err);
    if (rc == KB_OK && a.s.is_json)
        print_json(&a, &set, modes, n_modes);
    else if (rc == KB_OK)
        print_text(&a, &set, modes, n_modes);
    for (int i = 0; i < 3; i++) {
        for (int j = 0; modes[i].firsts && j < set.n; j++)
            free(modes[i].firsts[j]);
        free(modes[i].firsts);
        free(modes[i].ranks);
        free(modes[i].ms);
    }
    for (int i = 0; i < set.n; i++)
        free(vecs[i]);
    free(vecs);
    rc = db_session_diagnose(ss.conn, rc, err);   /* a missing extension explains a failure */
    search_session_close(&ss);
    search_eval_release(&set);
    return rc;
}
