/*
 * cmd_dedup.c - `kbpipe dedup --project NAME [--threshold T]
 * [--action report|mark|merge]`: the dedup pass over every learning of a
 * project (a run does the same over the learnings it touched); with
 * --histogram [--bins N] [--json], the distribution of the learnings'
 * nearest-neighbour similarities instead (dedup_histogram.c), changing
 * nothing.
 */
#include "load/load_int.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: kbpipe dedup --project NAME [--threshold T] [--action report|mark|merge]\n"
    "       kbpipe dedup --project NAME --histogram [--bins N] [--json] [--threshold T]\n"
    "\n"
    "Find duplicate learnings of a project by cosine similarity of their embeddings\n"
    "(find_similar_learnings, and OpenBLAS sgemm among the candidates) and act on\n"
    "them. Pairs are printed on stdout, most similar first, as\n"
    "  SIMILARITY  DUPLICATE_ID \"title\"  duplicates  KEEPER_ID \"title\"\n"
    "The keeper is the verified learning of a pair, else the older one.\n"
    "With mark or merge this also finishes a dedup pass that an interrupted run\n"
    "of a pipeline owed (the pass is one transaction).\n"
    "\n"
    "  --project NAME   the project (required)\n"
    "  --threshold T    similarity in (0, 1] at or above which two are duplicates;\n"
    "                   default: the calibrated value of the project's embedding\n"
    "                   model (docs/embeddings.md), 0.95 for other models\n"
    "  --action A       report: list pairs only; mark (default): record duplicate_of\n"
    "                   and similarity in the duplicate's metadata;\n"
    "                   merge: union tags, sum usage counts, keep the higher\n"
    "                   confidence into the keeper and delete the duplicate\n"
    "  --histogram      change nothing: draw each learning's nearest-neighbour\n"
    "                   similarity (exact, all pairs) in bins over [0, 1], the\n"
    "                   threshold's bin marked, and the pairs mark would mark\n"
    "  --bins N         how many bins (1..100, default 20)\n"
    "  --json           the histogram as one JSON object: bins (from, to, count),\n"
    "                   threshold, above_threshold, pairs_at_threshold\n"
    "\n"
    "Examples:\n"
    "  kbpipe dedup --project supervisor-service --action report\n"
    "  kbpipe dedup --project supervisor-service --histogram --bins 10\n";

/* --histogram: the nearest-neighbour similarities and the pairs that the
 * mark pass would mark at o->threshold (a report pass: nothing changes). */
static enum kb_code histogram(struct db_conn *conn, const char *project,
                              const char *project_id, const struct load_dedup_opts *o,
                              int n_bins, int is_json, struct kb_err *err)
{
    float *sims = NULL;
    int n = 0;
    enum kb_code rc = load_dedup_nearest(conn, project_id, &sims, &n, err);
    struct load_dedup_opts report = { o->threshold, LOAD_DEDUP_REPORT };
    struct load_dedup_result res = { 0 };
    if (rc == KB_OK)
        rc = load_dedup(conn, project_id, NULL, 0, &report, NULL, &res, err);
    if (rc == KB_OK)
        rc = load_dedup_histogram_print(stdout, project, sims, n, n_bins, o->threshold,
                                        res.n_pairs, is_json, isatty(STDOUT_FILENO), err);
    free(sims);
    return rc;
}

/* Learnings of the project that killed runs left without their dedup pass. */
static enum kb_code count_owed(struct db_conn *conn, const char *project_id, long *n,
                               struct kb_err *err)
{
    const char *p[] = { project_id };
    struct db_rows *rows;
    enum kb_code rc = db_exec(conn,
                              "SELECT count(*) FROM kbpipe_pending "
                              "WHERE what = 'dedup' AND project_id = $1::uuid",
                              1, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    *n = atol(db_rows_get(rows, 0, 0));
    db_rows_free(rows);
    return KB_OK;
}

/* See load.h. */
enum kb_code cmd_dedup(int argc, char **argv, struct kb_err *err)
{
    static const struct option longopts[] = {
        { "project", required_argument, NULL, 'p' },
        { "threshold", required_argument, NULL, 't' },
        { "action", required_argument, NULL, 'a' },
        { "histogram", no_argument, NULL, 'H' },
        { "bins", required_argument, NULL, 'b' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *project = NULL;
    struct load_dedup_opts o = { 0, LOAD_DEDUP_MARK };
    int c, is_histogram = 0, is_json = 0, has_action = 0, n_bins = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': project = optarg; break;
        case 't': {
            char *end;
            o.threshold = strtod(optarg, &end);
            if (*end || !(o.threshold > 0 && o.threshold <= 1))
                return KB_FAIL(err, KB_E_USAGE, NULL,
                               "--threshold '%.40s' is not a similarity in (0, 1]; e.g. 0.9",
                               optarg);
            break;
        }
        case 'H': is_histogram = 1; break;
        case 'j': is_json = 1; break;
        case 'b': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 100)
                return KB_FAIL(err, KB_E_USAGE, NULL,
                               "--bins '%.40s' is not a count in 1..100; e.g. 20", optarg);
            n_bins = (int)v;
            break;
        }
        case 'a':
            has_action = 1;
            if (strcmp(optarg, "report") == 0)
                o.action = LOAD_DEDUP_REPORT;
            else if (strcmp(optarg, "mark") == 0)
                o.action = LOAD_DEDUP_MARK;
            else if (strcmp(optarg, "merge") == 0)
                o.action = LOAD_DEDUP_MERGE;
            else
                return KB_FAIL(err, KB_E_USAGE, NULL,
                               "--action '%.40s' is not report, mark or merge", optarg);
            break;
        case 'h': fputs(USAGE, stdout); return KB_OK;
        default:
            return kb_cli_unknown_option("dedup", argv[optind - 1], longopts, err);
        }
    }
    if (project == NULL || optind < argc)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "dedup needs --project NAME and nothing else; see 'kbpipe dedup --help'");
    if (!is_histogram && (is_json || n_bins))
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "--json and --bins go with --histogram; see 'kbpipe dedup --help'");
    if (is_histogram && has_action)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "--histogram changes nothing and takes no --action; drop one of them");
    struct db_conn *conn;
    enum kb_code rc = db_open(&conn, err);
    if (rc != KB_OK)
        return rc;
    char *pid = NULL;
    struct db_rows *rows = NULL;
    rc = db_project_check(conn, project, "dedup", &pid, err);
    if (rc == KB_OK) {
        const char *p[] = { pid };
        rc = db_exec(conn,
                     "SELECT $1::uuid, (SELECT metadata->>'embedding_model' FROM learnings l"
                     "  WHERE l.project_id = $1::uuid AND l.metadata ? 'embedding_model'"
                     "  GROUP BY 1 ORDER BY count(*) DESC LIMIT 1)",
                     1, p, &rows, err);
    }
    free(pid);
    if (rc == KB_OK) {
        char project_id[40];
        snprintf(project_id, sizeof project_id, "%s", db_rows_get(rows, 0, 0));
        if (o.threshold == 0)
            o.threshold = load_dedup_default_threshold(db_rows_get(rows, 0, 1));
        db_rows_free(rows);
        if (is_histogram) {
            rc = histogram(conn, project, project_id, &o, n_bins ? n_bins : 20, is_json, err);
            db_close(conn);
            return rc;
        }
        struct load_dedup_result res;
        long n_owed = 0;
        rc = count_owed(conn, project_id, &n_owed, err);
        if (rc == KB_OK)
            rc = load_dedup(conn, project_id, NULL, 0, &o, stdout, &res, err);
        /* what it did, on stdout (after report's pairs): -q silences it */
        if (rc == KB_OK && !kb_cli.is_quiet)
            printf("dedup %s (%s, threshold %.3f): %d learning(s) checked, %d duplicate pair(s) "
                   "found, %d marked, %d merged\n", project,
                   o.action == LOAD_DEDUP_REPORT ? "report"
                   : o.action == LOAD_DEDUP_MERGE ? "merge" : "mark",
                   o.threshold, res.n_candidates, res.n_pairs, res.n_marked, res.n_merged);
        if (rc == KB_OK && n_owed > 0 && o.action != LOAD_DEDUP_REPORT)
            log_warn("dedup %s: this finished the dedup pass that interrupted runs owed "
                     "%ld learning(s)", project, n_owed);
    }
    db_close(conn);
    return rc;
}
