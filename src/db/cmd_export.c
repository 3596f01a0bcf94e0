/*
 * cmd_export.c - `kbpipe export --project P [--vectors] [-o FILE]`: a
 * project's sources and chunks as JSON Lines, for a backup or another store
 * (issue 16).  One line per chunk, its source's fields beside it (a source
 * without chunks: one line, chunk fields null), ordered by source then chunk.
 *
 * Streaming: the rows come through a server-side cursor, FETCH_ROWS at a
 * time, inside one read-only REPEATABLE READ transaction (one snapshot), so
 * memory is bounded whatever the project's size.  The server builds each
 * line's JSON (json_build_object): nothing is printed by hand.
 */
#include "db/db_int.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

#define FETCH_ROWS "500"

static const char USAGE[] =
    "usage: kbpipe export --project NAME [--vectors] [-o FILE]\n"
    "\n"
    "Write a project's sources and chunks as JSON Lines (one line per chunk with\n"
    "its source's fields), streaming: bounded memory for any size.\n"
    "\n"
    "  --project NAME    the project (required)\n"
    "  --vectors         add each chunk's embedding (an array, or null)\n"
    "  -o, --output FILE write to FILE instead of stdout\n"
    "\n"
    "Example:\n"
    "  kbpipe export --project docs -o docs.jsonl\n";

/* $1 project, $2 'true' to include the vectors */
static const char CURSOR_SQL[] =
    "DECLARE kb_export NO SCROLL CURSOR FOR"
    " SELECT json_build_object('source_type', s.source_type, 'source_id', s.source_id,"
    "  'title', s.title, 'url', s.url, 'pipeline', s.pipeline, 'doc_hash', s.doc_hash,"
    "  'source_metadata', s.metadata, 'chunk_index', c.chunk_index,"
    "  'token_count', c.token_count, 'content_hash', c.content_hash, 'content', c.content,"
    "  'metadata', c.metadata, 'embedding',"
    "  CASE WHEN $2::bool THEN c.embedding::text::json END)"
    " FROM knowledge_sources s JOIN projects p ON p.id = s.project_id"
    " LEFT JOIN knowledge_chunks c ON c.source_id = s.id"
    " WHERE p.name = $1 ORDER BY s.source_type, s.source_id, c.chunk_index";

static enum kb_code stream(struct db_conn *conn, const char *project, int has_vectors,
                           FILE *out, long *n_lines, struct kb_err *err)
{
    const char *p[] = { project, has_vectors ? "true" : "false" };
    enum kb_code rc = db_project_check(conn, project, "export", NULL, err);
    if (rc == KB_OK)
        rc = db_exec(conn, CURSOR_SQL, 2, p, NULL, err);
    for (int n = 1; rc == KB_OK && n > 0;) {
        struct db_rows *rows;
        rc = db_exec(conn, "FETCH " FETCH_ROWS " FROM kb_export", 0, NULL, &rows, err);
        if (rc != KB_OK)
            break;
        n = db_rows_count(rows);
        for (int i = 0; i < n; i++)
            fprintf(out, "%s\n", db_rows_get(rows, i, 0));
        *n_lines += n;
        db_rows_free(rows);
        if (ferror(out))
            rc = KB_FAIL(err, KB_E_IO, NULL, "export: writing failed (%s); check the disk",
                         strerror(errno));
    }
    return rc;
}

enum kb_code cmd_export(int argc, char **argv, struct kb_err *err)
{
    static const struct option longopts[] = {
        { "project", required_argument, NULL, 'p' },
        { "vectors", no_argument, NULL, 'V' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *project = NULL, *path = NULL;
    int has_vectors = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': project = optarg; break;
        case 'V': has_vectors = 1; break;
        case 'o': path = optarg; break;
        case 'h': fputs(USAGE, stdout); return KB_OK;
        default:
            return kb_cli_unknown_option("export", argv[optind - 1], longopts, err);
        }
    }
    if (optind < argc || !project)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "export needs --project NAME and no other argument; see "
                       "'kbpipe export --help'");
    struct db_conn *conn;
    enum kb_code rc = db_open(&conn, err);
    if (rc != KB_OK)
        return rc;
    FILE *out = stdout;
    if (path && !(out = fopen(path, "w")))
        rc = KB_FAIL(err, KB_E_IO, NULL, "%.200s: cannot write (%s); check the folder",
                     path, strerror(errno));
    if (rc == KB_OK)
        rc = db_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL,
                     err);
    long n_lines = 0;
    if (rc == KB_OK) {
        rc = stream(conn, project, has_vectors, out, &n_lines, err);
        db_rollback(conn);   /* read only: nothing to keep */
    }
    if (out && out != stdout && fclose(out) != 0 && rc == KB_OK)
        rc = KB_FAIL(err, KB_E_IO, NULL, "%.200s: writing failed (%s); check the disk", path,
                     strerror(errno));
    if (rc == KB_OK)
        log_info("export: %ld lines from project '%s'", n_lines, project);
    db_close(conn);
    return rc;
}
