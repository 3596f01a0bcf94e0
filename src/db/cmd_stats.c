/*
 * cmd_stats.c - `kbpipe stats [--project NAME] [--json] [--runs N]`: what
 * the knowledge base holds, read from the schema's own views
 * (knowledge_coverage_by_project, learning_effectiveness,
 * popular_search_queries) and the last runs from kbpipe_runs.
 */
#include "db/db_int.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: kbpipe stats [--project NAME] [--runs N] [--json]\n"
    "\n"
    "Show what is loaded: sources, chunks, learnings and tokens per project\n"
    "(knowledge_coverage_by_project), the most used learnings\n"
    "(learning_effectiveness), popular search queries (popular_search_queries),\n"
    "and the last N runs (default 10) with their status, duration and counts.\n"
    "A run left 'running' by a process that is gone is closed as 'abandoned' first.\n"
    "\n"
    "  --project NAME   only this project\n"
    "  --runs N         how many recent runs to list (default 10)\n"
    "  --json           one JSON object with the four lists, for scripts\n"
    "\n"
    "Example:\n"
    "  kbpipe stats --project supervisor-service\n";

struct section {
    const char *key, *title, *sql;
};

static const struct section sections[] = {
    { "coverage", "Knowledge coverage",
      "SELECT project_name AS project, source_count AS sources, chunk_count AS chunks,"
      " learning_count AS learnings, total_tokens AS tokens,"
      " array_to_string(source_types, ',') AS source_types"
      " FROM knowledge_coverage_by_project"
      " WHERE $1::text IS NULL OR project_name = $1 ORDER BY project_name" },
    { "learnings", "Learnings by use",
      "SELECT e.title, e.learning_type AS type, e.category, e.confidence_score AS confidence,"
      " e.usage_count AS uses, e.application_count AS applied,"
      " e.success_rate_percent AS success_pct"
      " FROM learning_effectiveness e JOIN learnings l ON l.id = e.id"
      " LEFT JOIN projects p ON p.id = l.project_id"
      " WHERE $1::text IS NULL OR p.name = $1"
      " ORDER BY e.usage_count DESC NULLS LAST, e.title LIMIT 10" },
    { "queries", "Popular search queries",
      "SELECT q.query_text AS query, q.query_count AS count, round(q.avg_results, 1) AS avg_results,"
      " q.helpful_count AS helpful, q.last_queried::timestamp(0) AS last"
      " FROM popular_search_queries q LEFT JOIN projects p ON p.id = q.project_id"
      " WHERE $1::text IS NULL OR p.name = $1"
      " ORDER BY q.query_count DESC, q.query_text LIMIT 10" },
    { "runs", "Recent runs",
      "SELECT r.id AS run, r.pipeline, r.status, r.started_at::timestamp(0) AS started,"
      " round(extract(epoch FROM coalesce(r.finished_at, now()) - r.started_at)::numeric, 1)"
      "   AS seconds,"
      " (r.counts->>'sources_seen')::bigint AS sources,"
      " (r.counts->>'sources_changed')::bigint + (r.counts->>'sources_new')::bigint AS changed,"
      " (r.counts->>'chunks_written')::bigint AS chunks,"
      " (r.counts->>'sources_deleted')::bigint AS deleted"
      " FROM kbpipe_runs r LEFT JOIN projects p ON p.id = r.project_id"
      " WHERE $1::text IS NULL OR p.name = $1"
      " ORDER BY r.started_at DESC, r.id DESC LIMIT $2::int" },
};

enum kb_code cmd_stats(int argc, char **argv, struct kb_err *err)
{
    static const struct option longopts[] = {
        { "project", required_argument, NULL, 'p' },
        { "runs", required_argument, NULL, 'r' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *project = NULL, *runs = "10";
    int is_json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': project = optarg; break;
        case 'r':
            if (atoi(optarg) < 1 || strspn(optarg, "0123456789") != strlen(optarg))
                return KB_FAIL(err, KB_E_USAGE, NULL,
                               "--runs '%.40s' is not a count; give a whole number >= 1",
                               optarg);
            runs = optarg;
            break;
        case 'j': is_json = 1; break;
        case 'h': fputs(USAGE, stdout); return KB_OK;
        default:
            return kb_cli_unknown_option("stats", argv[optind - 1], longopts, err);
        }
    }
    if (optind < argc)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "unexpected argument '%.40s'; see 'kbpipe stats --help'", argv[optind]);
    struct db_conn *conn;
    enum kb_code rc = db_open(&conn, err);
    if (rc != KB_OK)
        return rc;
    const char *p[] = { project, runs };
    if (project) {   /* a misspelt name is an error, not four empty tables */
        struct db_rows *rows = NULL;
        rc = db_exec(conn, "SELECT 1 FROM projects WHERE name = $1", 1, p, &rows, err);
        if (rc == KB_OK && db_rows_count(rows) == 0)
            rc = KB_FAIL(err, KB_E_INPUT, NULL, "no project named '%.80s'; 'kbpipe stats' "
                                                "without --project lists the projects", project);
        db_rows_free(rows);
    }
    /* a run killed -9 (or cut off by a server stop) must not stay `running`
     * with its seconds counting: close it before listing */
    if (rc == KB_OK)
        rc = db_runs_close_abandoned(conn, NULL, 0, NULL, err);
    if (rc == KB_OK && is_json)
        fputs("{", stdout);
    for (size_t i = 0; i < sizeof sections / sizeof sections[0] && rc == KB_OK; i++) {
        struct db_rows *rows;
        rc = db_exec(conn, sections[i].sql, strstr(sections[i].sql, "$2") ? 2 : 1, p, &rows,
                     err);
        if (rc != KB_OK)
            break;
        if (is_json) {
            printf("%s\"%s\":", i ? "," : "", sections[i].key);
            db_print_json(rows, stdout);
        } else {
            printf("%s%s\n", i ? "\n" : "", sections[i].title);
            db_print_table(rows, stdout);
        }
        db_rows_free(rows);
    }
    if (is_json && rc == KB_OK)
        fputs("}\n", stdout);
    if (rc != KB_OK && strstr(err->msg, "does not exist"))
        kb_err_prefix(err, "the schema is incomplete (run 'kbpipe migrate up')");
    db_close(conn);
    return rc;
}
