/*
 * cmd_delete.c - `kbpipe delete --project P (--source ID | --pipeline N |
 * --all) [--dry-run] [--yes]`: remove loaded sources with their chunks and
 * the learnings loaded from them (issue 16).
 *
 * It lives in src/db, not src/load: it is plain SQL over the schema (no
 * COPY, no batch, no loader state), like `stats`, and src/db is where libpq
 * may be used for that.
 *
 * Invariants:
 *   - everything happens in ONE transaction: the sources are selected and
 *     locked (FOR UPDATE, so a concurrent run touching them waits), listed,
 *     confirmed, deleted by id (chunks and learnings go by ON DELETE CASCADE)
 *     and committed.  A refusal, a failed statement or the test fault point
 *     "delete.commit" rolls back: nothing is removed.
 *   - --pipeline N and --all also delete the marks the pipeline's sources
 *     keep between runs (kbpipe_source_state, migration 011: a github
 *     source's `since`), N's and its shards' (N#K/N), in the same
 *     transaction: else the next incremental run would ask only for what
 *     changed since the old mark and never fetch the deleted sources again.
 *     --source leaves them (the mark is per source, not per document).
 *   - off a terminal it never asks: without --yes it refuses (exit 2);
 *     --dry-run needs no confirmation and writes nothing.
 *   - what was (or would be) removed is printed on stdout, one row per
 *     source, then one totals line (tests/integration/catalog.sh):
 *
 *       id                                    type   source_id  pipeline  chunks  learnings
 *       ------------------------------------  -----  ---------  --------  ------  ---------
 *       0b6c...                               files  a.md       docs           2          0
 *       deleted 1 source, 2 chunks, 0 learnings from project 'docs'
 */
#include "db/db_int.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: kbpipe delete --project NAME (--source ID | --pipeline NAME | --all)\n"
    "                     [--dry-run] [--yes]\n"
    "\n"
    "Remove loaded sources with their chunks and the learnings loaded from them,\n"
    "in one transaction, and print what was removed.\n"
    "\n"
    "  --project NAME    the project (required)\n"
    "  --source ID       one source: its id (uuid) or its source_id (path, key)\n"
    "  --pipeline NAME   every source loaded by this pipeline\n"
    "  --all             every source of the project\n"
    "  --dry-run         print what would be removed; change nothing\n"
    "  --yes             do not ask (required when stdin is not a terminal)\n"
    "\n"
    "Example:\n"
    "  kbpipe delete --project docs --pipeline docs --dry-run\n";

/* $1 project, $2 source (uuid or source_id) or NULL, $3 pipeline or NULL; the
 * id is compared as a uuid, so the primary key serves it (see FIND_SQL in
 * cmd_sources.c: the same test, the same reason) */
static const char SELECT_SQL[] =
    "SELECT s.id, s.source_type AS type, s.source_id, coalesce(s.pipeline, '') AS pipeline,"
    " (SELECT count(*) FROM knowledge_chunks c WHERE c.source_id = s.id) AS chunks,"
    " (SELECT count(*) FROM learnings l WHERE l.knowledge_source_id = s.id) AS learnings"
    " FROM knowledge_sources s JOIN projects p ON p.id = s.project_id"
    " WHERE p.name = $1 AND ($2::text IS NULL OR s.id = CASE WHEN $2 ~*"
    "  '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN $2::uuid END"
    "  OR s.source_id = $2)"
    " AND ($3::text IS NULL OR s.pipeline = $3)"
    " ORDER BY s.source_type, s.source_id FOR UPDATE OF s";

struct delete_args {
    const char *project, *source, *pipeline;
    int is_all, is_dry_run, is_yes;
};

static enum kb_code parse_args(int argc, char **argv, struct delete_args *a, int *is_help,
                               struct kb_err *err)
{
    static const struct option longopts[] = {
        { "project", required_argument, NULL, 'p' },
        { "source", required_argument, NULL, 's' },
        { "pipeline", required_argument, NULL, 'P' },
        { "all", no_argument, NULL, 'a' },
        { "dry-run", no_argument, NULL, 'n' },
        { "yes", no_argument, NULL, 'y' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': a->project = optarg; break;
        case 's': a->source = optarg; break;
        case 'P': a->pipeline = optarg; break;
        case 'a': a->is_all = 1; break;
        case 'n': a->is_dry_run = 1; break;
        case 'y': a->is_yes = 1; break;
        case 'h': *is_help = 1; return KB_OK;
        default:
            return kb_cli_unknown_option("delete", argv[optind - 1], longopts, err);
        }
    }
    if (optind < argc)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "unexpected argument '%.40s'; see 'kbpipe delete --help'", argv[optind]);
    if (!a->project)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "delete needs --project NAME; 'kbpipe stats' lists the projects");
    if ((a->source != NULL) + (a->pipeline != NULL) + a->is_all != 1)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "delete needs exactly one of --source ID, --pipeline NAME or --all");
    return KB_OK;
}

/* Ask on the terminal; true only for "y" or "yes". */
static int confirmed(const char *project, long n_sources, long n_chunks, long n_learnings)
{
    fprintf(stderr, "kbpipe: delete %ld source%s, %ld chunks, %ld learnings from project '%s'? "
                    "[y/N] ", n_sources, n_sources == 1 ? "" : "s", n_chunks, n_learnings,
            project);
    fflush(stderr);
    char line[16];
    if (!fgets(line, sizeof line, stdin))
        return 0;
    line[strcspn(line, "\r\n")] = '\0';
    return strcmp(line, "y") == 0 || strcmp(line, "Y") == 0 || strcmp(line, "yes") == 0;
}

/* The ids of rows as a uuid[] literal: "{a,b}" (uuids need no quoting). */
static char *id_array(const struct db_rows *rows)
{
    struct kb_buf b;
    kb_buf_init(&b);
    kb_buf_putc(&b, '{');
    for (int i = 0; i < db_rows_count(rows); i++) {
        if (i)
            kb_buf_putc(&b, ',');
        kb_buf_puts(&b, db_rows_get(rows, i, 0));
    }
    kb_buf_putc(&b, '}');
    return kb_buf_detach(&b);
}

/*
 * Delete the marks (kbpipe_source_state) of pipeline a->pipeline and its
 * shards ("NAME#K/N"), or with --all of every pipeline of the project;
 * *n_marks gets how many went.
 */
static enum kb_code delete_marks(struct db_conn *conn, const struct delete_args *a,
                                 long *n_marks, struct kb_err *err)
{
    const char *p[] = { a->project, a->is_all ? NULL : a->pipeline };
    struct db_rows *rows;
    enum kb_code rc = db_exec(conn,
        "WITH d AS (DELETE FROM kbpipe_source_state st USING projects p"
        " WHERE p.id = st.project_id AND p.name = $1 AND ($2::text IS NULL"
        "  OR st.pipeline = $2 OR left(st.pipeline, length($2) + 1) = $2 || '#')"
        " RETURNING 1) SELECT count(*) FROM d", 2, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    *n_marks = atol(db_rows_get(rows, 0, 0));
    db_rows_free(rows);
    return KB_OK;
}

/* Select, confirm, delete and commit; on any failure the caller rolls back. */
static enum kb_code delete_in_tx(struct db_conn *conn, const struct delete_args *a,
                                 struct kb_err *err)
{
    struct db_rows *rows = NULL;
    const char *p[] = { a->project, a->source, a->pipeline };
    enum kb_code rc = db_project_check(conn, a->project, "delete", NULL, err);
    if (rc == KB_OK)
        rc = db_exec(conn, SELECT_SQL, 3, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    long n = db_rows_count(rows), n_chunks = 0, n_learnings = 0;
    for (int i = 0; i < n; i++) {
        n_chunks += atol(db_rows_get(rows, i, 4));
        n_learnings += atol(db_rows_get(rows, i, 5));
    }
    if (n == 0 && !a->is_all) {
        db_rows_free(rows);
        return KB_FAIL(err, KB_E_INPUT, NULL,
                       "no source %s '%.80s' in project '%.80s'; 'kbpipe sources --project "
                       "%.80s' lists them", a->source ? "with id or source_id" : "of pipeline",
                       a->source ? a->source : a->pipeline, a->project, a->project);
    }
    if (a->source && n > 1) {
        db_rows_free(rows);
        return KB_FAIL(err, KB_E_INPUT, NULL,
                       "'%.80s' names %ld sources of project '%.80s' (one per type); give "
                       "the id from 'kbpipe sources --project %.80s'",
                       a->source, n, a->project, a->project);
    }
    if (n > 0 && !a->is_dry_run && !a->is_yes) {
        if (!isatty(STDIN_FILENO))
            rc = KB_FAIL(err, KB_E_USAGE, NULL,
                         "delete would remove %ld source%s of project '%.80s' and stdin is not "
                         "a terminal to ask; add --yes (or --dry-run to see them)",
                         n, n == 1 ? "" : "s", a->project);
        else if (!confirmed(a->project, n, n_chunks, n_learnings))
            rc = KB_FAIL(err, KB_E_INPUT, NULL, "not confirmed; nothing was deleted");
    }
    if (rc == KB_OK && n > 0 && !a->is_dry_run) {
        char *ids = id_array(rows);
        const char *dp[] = { ids };
        rc = db_exec(conn, "DELETE FROM knowledge_sources WHERE id = ANY($1::uuid[])", 1, dp,
                     NULL, err);
        free(ids);
    }
    long n_marks = 0;
    if (rc == KB_OK && a->source == NULL && !a->is_dry_run)
        rc = delete_marks(conn, a, &n_marks, err);
    if (rc == KB_OK && n > 0 && !a->is_dry_run) {
        if (kb_fault("delete.commit"))
            rc = KB_FAIL(err, KB_E_DB, NULL, "fault point delete.commit; nothing was deleted");
    }
    if (rc == KB_OK && !a->is_dry_run)
        rc = db_commit(conn, err);   /* print only what is really gone */
    if (rc == KB_OK && n > 0 && !a->is_dry_run)   /* search's statistic of the rows left */
        rc = db_common_words_refresh(conn, a->project, 1, 1, err);
    if (rc == KB_OK) {
        if (n_marks > 0)
            log_notice("deleted %ld source mark(s) (kbpipe_source_state) of %s%s: the next "
                       "run fetches its API sources whole", n_marks,
                       a->is_all ? "project " : "pipeline ", a->is_all ? a->project : a->pipeline);
        if (n > 0)
            db_print_table(rows, stdout);
        printf("%s %ld source%s, %ld chunks, %ld learnings from project '%s'\n",
               a->is_dry_run ? "would delete" : "deleted", n, n == 1 ? "" : "s", n_chunks,
               n_learnings, a->project);
    }
    db_rows_free(rows);
    return rc;
}

enum kb_code cmd_delete(int argc, char **argv, struct kb_err *err)
{
    struct delete_args a = { 0 };
    int is_help = 0;
    enum kb_code rc = parse_args(argc, argv, &a, &is_help, err);
    if (rc != KB_OK || is_help) {
        if (is_help)
            fputs(USAGE, stdout);
        return rc;
    }
    struct db_conn *conn;
    rc = db_open(&conn, err);
    if (rc != KB_OK)
        return rc;
    rc = db_begin(conn, err);
    if (rc == KB_OK) {
        rc = delete_in_tx(conn, &a, err);
        if (rc != KB_OK || a.is_dry_run)
            db_rollback(conn);
    }
    db_close(conn);
    return rc;
}
