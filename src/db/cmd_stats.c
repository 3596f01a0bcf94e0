/*
 * cmd_stats.c - `kbpipe stats [--project NAME] [--json] [--runs N]`: what
 * the knowledge base holds, read from the schema's own views
 * (knowledge_coverage_by_project, learning_effectiveness,
 * popular_search_queries) and the last runs from kbpipe_runs, with two
 * pictures (issue 16): each source type's chunk token lengths (min, p50,
 * p95, max and a row of 16 bins) and a sparkline of the last runs' seconds
 * and chunks.  The server draws them: the section's SQL picks one character
 * per value from a ramp of 8 levels passed as $3, Unicode blocks
 * U+2581..U+2588 on a terminal, ASCII off one (RAMP_ASCII), so logs and
 * cron mail hold plain text.  With --json the same sections are numbers
 * (json_sql): the bins' counts and the runs' values, oldest run first.
 *
 *   Token lengths per source type (16 bins over 0..max tokens)
 *   type   chunks  min  p50  p95  max  bins
 *   -----  ------  ---  ---  ---  ---  ----------------
 *   files     100    1   50   95  100  ████████████████
 *
 * tests/integration/stats_pictures.sh checks the values and both renderings.
 */
#include "db/db_int.h"

#include <getopt.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: kbpipe stats [--project NAME] [--runs N] [--json]\n"
    "\n"
    "Show what is loaded: sources, chunks, learnings and tokens per project\n"
    "(knowledge_coverage_by_project), the most used learnings\n"
    "(learning_effectiveness), popular search queries (popular_search_queries),\n"
    "and the last N runs (default 10) with their status, duration and counts;\n"
    "then each source type's chunk token lengths (min, p50, p95, max and 16 bins\n"
    "drawn as a row of blocks) and the last N runs' seconds and chunks as\n"
    "sparklines, oldest first (Unicode blocks on a terminal, ASCII otherwise).\n"
    "A run left 'running' by a process that is gone is closed as 'abandoned' first.\n"
    "\n"
    "  --project NAME   only this project\n"
    "  --runs N         how many recent runs to list (default 10)\n"
    "  --json           one JSON object with the six lists, for scripts (the\n"
    "                   pictures as numbers: bins' counts, runs' values)\n"
    "\n"
    "Example:\n"
    "  kbpipe stats --project supervisor-service\n";

/* 8 levels, lowest first: a value v of a row whose largest is m is drawn as
 * character ceil(8 v / m); 0 is a blank */
#define RAMP_BLOCKS "\xe2\x96\x81\xe2\x96\x82\xe2\x96\x83\xe2\x96\x84" \
                    "\xe2\x96\x85\xe2\x96\x86\xe2\x96\x87\xe2\x96\x88"
#define RAMP_ASCII  "._-:=+*#"

/* a ramp character of v against m ($3: the ramp), SQL text */
#define LEVEL(v, m) \
    "CASE WHEN coalesce(" v ", 0) <= 0 THEN ' ' ELSE substr($3, " \
    "least(8, ceil(" v " * 8.0 / " m "))::int, 1) END"

/* the chunks with a token count of the projects in scope ($2, the runs, is
 * unused but sent with $3: the server needs a type for every parameter) */
#define TOKENS_CTE \
    "WITH t AS (SELECT s.source_type, c.token_count FROM knowledge_chunks c" \
    "  JOIN knowledge_sources s ON s.id = c.source_id LEFT JOIN projects p ON p.id = c.project_id" \
    "  WHERE c.token_count IS NOT NULL AND ($1::text IS NULL OR p.name = $1)" \
    "  AND $2::int IS NOT NULL)," \
    " top AS (SELECT max(token_count) AS m FROM t)," \
    " b AS (SELECT t.source_type, k," \
    "   count(*) FILTER (WHERE least(t.token_count * 16 / (top.m + 1), 15) = k) AS n" \
    "   FROM t, top, generate_series(0, 15) k GROUP BY 1, 2)," \
    " h AS (SELECT source_type, array_agg(n ORDER BY k) AS bins, max(n) AS m FROM b GROUP BY 1)" \
    " SELECT t.source_type AS type, count(*) AS chunks, min(t.token_count) AS min," \
    "  percentile_disc(0.5) WITHIN GROUP (ORDER BY t.token_count) AS p50," \
    "  percentile_disc(0.95) WITHIN GROUP (ORDER BY t.token_count) AS p95," \
    "  max(t.token_count) AS max, "
#define TOKENS_END " FROM t JOIN h USING (source_type) GROUP BY t.source_type, h.bins, h.m ORDER BY 1"

/* the last $2 runs in scope, oldest first (r.k: 1 = oldest) */
#define RUNS_CTE \
    "WITH r AS (SELECT * FROM (SELECT r.id, r.started_at," \
    "   round(extract(epoch FROM coalesce(r.finished_at, now()) - r.started_at)::numeric, 1) AS s," \
    "   coalesce((r.counts->>'chunks_written')::bigint, 0) AS c" \
    "   FROM kbpipe_runs r LEFT JOIN projects p ON p.id = r.project_id" \
    "   WHERE $1::text IS NULL OR p.name = $1" \
    "   ORDER BY r.started_at DESC, r.id DESC LIMIT $2::int) x)," \
    " mx AS (SELECT max(s) AS s, max(c) AS c FROM r) "

struct section {
    const char *key, *title, *sql;
    const char *json_sql;   /* with --json, when not sql: the picture as numbers */
};

static const struct section sections[] = {
    { "coverage", "Knowledge coverage",
      "SELECT project_name AS project, source_count AS sources, chunk_count AS chunks,"
      " learning_count AS learnings, total_tokens AS tokens,"
      " array_to_string(source_types, ',') AS source_types"
      " FROM knowledge_coverage_by_project"
      " WHERE $1::text IS NULL OR project_name = $1 ORDER BY project_name", NULL },
    { "learnings", "Learnings by use",
      "SELECT e.title, e.learning_type AS type, e.category, e.confidence_score AS confidence,"
      " e.usage_count AS uses, e.application_count AS applied,"
      " e.success_rate_percent AS success_pct"
      " FROM learning_effectiveness e JOIN learnings l ON l.id = e.id"
      " LEFT JOIN projects p ON p.id = l.project_id"
      " WHERE $1::text IS NULL OR p.name = $1"
      " ORDER BY e.usage_count DESC NULLS LAST, e.title LIMIT 10", NULL },
    { "queries", "Popular search queries",
      "SELECT q.query_text AS query, q.query_count AS count, round(q.avg_results, 1) AS avg_results,"
      " q.helpful_count AS helpful, q.last_queried::timestamp(0) AS last"
      " FROM popular_search_queries q LEFT JOIN projects p ON p.id = q.project_id"
      " WHERE $1::text IS NULL OR p.name = $1"
      " ORDER BY q.query_count DESC, q.query_text LIMIT 10", NULL },
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
      " ORDER BY r.started_at DESC, r.id DESC LIMIT $2::int", NULL },
    { "token_lengths", "Token lengths per source type (16 bins over 0..max tokens)",
      TOKENS_CTE "(SELECT string_agg(" LEVEL("v", "h.m") ", '' ORDER BY o)"
      " FROM unnest(h.bins) WITH ORDINALITY u(v, o)) AS bins" TOKENS_END,
      TOKENS_CTE "to_jsonb(h.bins) AS bins, (SELECT m FROM top) AS bins_max" TOKENS_END },
    { "run_trend", "Last runs, oldest first",
      RUNS_CTE "SELECT count(*) AS runs, min(r.s) AS min_s, max(r.s) AS max_s,"
      " coalesce(string_agg(" LEVEL("r.s", "mx.s") ", '' ORDER BY r.started_at, r.id), '')"
      "   AS seconds,"
      " min(r.c) AS min_chunks, max(r.c) AS max_chunks,"
      " coalesce(string_agg(" LEVEL("r.c", "mx.c") ", '' ORDER BY r.started_at, r.id), '')"
      "   AS chunks"
      " FROM r, mx",
      RUNS_CTE "SELECT coalesce(jsonb_agg(r.id ORDER BY r.started_at, r.id), '[]') AS runs,"
      " coalesce(jsonb_agg(r.s ORDER BY r.started_at, r.id), '[]') AS seconds,"
      " coalesce(jsonb_agg(r.c ORDER BY r.started_at, r.id), '[]') AS chunks FROM r" },
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
    const char *p[] = { project, runs, isatty(STDOUT_FILENO) ? RAMP_BLOCKS : RAMP_ASCII };
    if (project)   /* a misspelt name is an error, not six empty tables */
        rc = db_project_check(conn, project, "stats", NULL, err);
    /* a run killed -9 (or cut off by a server stop) must not stay `running`
     * with its seconds counting: close it before listing */
    if (rc == KB_OK)
        rc = db_runs_close_abandoned(conn, NULL, 0, NULL, err);
    /* --json: one object, each section's rows under its key, printed whole
     * at the end (a failing section prints nothing) */
    json_t *doc = is_json ? json_object() : NULL;
    for (size_t i = 0; i < sizeof sections / sizeof sections[0] && rc == KB_OK; i++) {
        struct db_rows *rows;
        const char *sql = is_json && sections[i].json_sql ? sections[i].json_sql
                                                          : sections[i].sql;
        rc = db_exec(conn, sql, strstr(sql, "$3") ? 3 : strstr(sql, "$2") ? 2 : 1, p, &rows,
                     err);
        if (rc != KB_OK)
            break;
        if (is_json) {
            json_object_set_new(doc, sections[i].key, db_rows_json(rows));
        } else {
            printf("%s%s\n", i ? "\n" : "", sections[i].title);
            db_print_table(rows, stdout);
        }
        db_rows_free(rows);
    }
    if (is_json && rc == KB_OK) {
        db_json_print(doc, stdout);
    }
    json_decref(doc);
    if (rc != KB_OK && strstr(err->msg, "does not exist"))
        kb_err_prefix(err, "the schema is incomplete (run 'kbpipe migrate up')");
    db_close(conn);
    return rc;
}
