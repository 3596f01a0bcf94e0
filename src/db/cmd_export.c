/*
 * cmd_export.c - `kbpipe export --project P [--format jsonl|csv] [--vectors]
 * [-o FILE]`: a project's sources and chunks, for a backup or another store
 * (issue 16).  One record per chunk, its source's fields beside it (a source
 * without chunks: one record, chunk fields null), ordered by source then
 * chunk.  Both formats have the same fields in the same order.
 *
 * Streaming: the rows come through a server-side cursor, FETCH_ROWS at a
 * time, inside one read-only REPEATABLE READ transaction (one snapshot), so
 * memory is bounded whatever the project's size.  JSON Lines: the server
 * builds each line's JSON (json_build_object): nothing is printed by hand.
 * CSV (RFC 4180): the server sends each field as text; put_csv_field quotes
 * it.  As PostgreSQL's COPY ... CSV does, NULL is an empty unquoted field and
 * an empty string is "" (quoted), so the two stay apart; records end in CRLF
 * (RFC 4180 section 2.1), line breaks inside a field are kept as they are.
 *
 *   source_type,source_id,title,...,content,metadata,embedding\r\n
 *   files,a.md,"Alpha, the first",...,"He said ""hi""\nbye",{},\r\n
 */
#include "db/db_int.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

#define FETCH_ROWS "500"

static const char USAGE[] =
    "usage: kbpipe export --project NAME [--format jsonl|csv] [--vectors] [-o FILE]\n"
    "\n"
    "Write a project's sources and chunks, one record per chunk with its source's\n"
    "fields, streaming: bounded memory for any size.\n"
    "\n"
    "  --project NAME    the project (required)\n"
    "  --format FORMAT   jsonl (default: JSON Lines) or csv (RFC 4180, a header\n"
    "                    line, CRLF records; NULL is an empty field, '' is \"\")\n"
    "  --vectors         add each chunk's embedding (jsonl: an array; csv: the\n"
    "                    vector's text form [x,y,...]; empty when not embedded)\n"
    "  -o, --output FILE write to FILE instead of stdout\n"
    "\n"
    "Examples:\n"
    "  kbpipe export --project docs -o docs.jsonl\n"
    "  kbpipe export --project docs --format csv --vectors -o docs.csv\n";

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

/* The same fields as CURSOR_SQL's object, in its order, each as text (jsonb
 * as its JSON text, the vector in pgvector's text form).  $1 project, $2
 * 'true' to include the vectors (else the column is there, all NULL). */
static const char CURSOR_CSV_SQL[] =
    "DECLARE kb_export NO SCROLL CURSOR FOR"
    " SELECT s.source_type, s.source_id, s.title, s.url, s.pipeline, s.doc_hash,"
    "  s.metadata::text AS source_metadata, c.chunk_index, c.token_count, c.content_hash,"
    "  c.content, c.metadata::text AS metadata,"
    "  CASE WHEN $2::bool THEN c.embedding::text END AS embedding"
    " FROM knowledge_sources s JOIN projects p ON p.id = s.project_id"
    " LEFT JOIN knowledge_chunks c ON c.source_id = s.id"
    " WHERE p.name = $1 ORDER BY s.source_type, s.source_id, c.chunk_index";

/*
 * One CSV field as RFC 4180 section 2 writes it: quoted when it holds a
 * comma, a double quote, CR or LF (and when it is the empty string, so that
 * it differs from NULL, which is written as nothing), quotes doubled inside.
 */
static void put_csv_field(FILE *out, const char *s, int is_null)
{
    if (is_null)
        return;
    if (*s && !s[strcspn(s, ",\"\r\n")]) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

/* One CSV record of every column of row i (i < 0: the column names). */
static void put_csv_record(FILE *out, const struct db_rows *rows, int i)
{
    for (int j = 0; j < db_rows_cols(rows); j++) {
        if (j)
            fputc(',', out);
        if (i < 0)
            put_csv_field(out, db_rows_colname(rows, j), 0);
        else
            put_csv_field(out, db_rows_get(rows, i, j), db_rows_isnull(rows, i, j));
    }
    fputs("\r\n", out);
}

/*
 * Declare the cursor of the format and write its rows to out, FETCH_ROWS at
 * a time (csv: the header first, even for a project without sources: the
 * column names come with the first FETCH).  *n_lines counts the records
 * written (not the header).  KB_E_INPUT for an unknown project, KB_E_DB,
 * KB_E_IO when out cannot be written.
 */
static enum kb_code stream(struct db_conn *conn, const char *project, int has_vectors,
                           int is_csv, FILE *out, long *n_lines, struct kb_err *err)
{
    const char *p[] = { project, has_vectors ? "true" : "false" };
    enum kb_code rc = db_project_check(conn, project, "export", NULL, err);
    if (rc == KB_OK)
        rc = db_exec(conn, is_csv ? CURSOR_CSV_SQL : CURSOR_SQL, 2, p, NULL, err);
    for (int n = 1, is_first = 1; rc == KB_OK && n > 0; is_first = 0) {
        struct db_rows *rows;
        rc = db_exec(conn, "FETCH " FETCH_ROWS " FROM kb_export", 0, NULL, &rows, err);
        if (rc != KB_OK)
            break;
        n = db_rows_count(rows);
        if (is_csv && is_first)
            put_csv_record(out, rows, -1);
        for (int i = 0; i < n; i++) {
            if (is_csv)
                put_csv_record(out, rows, i);
            else
                fprintf(out, "%s\n", db_rows_get(rows, i, 0));
        }
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
        { "format", required_argument, NULL, 'f' },
        { "vectors", no_argument, NULL, 'V' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *project = NULL, *path = NULL;
    int has_vectors = 0, is_csv = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': project = optarg; break;
        case 'f':
            if (strcmp(optarg, "csv") != 0 && strcmp(optarg, "jsonl") != 0)
                return KB_FAIL(err, KB_E_USAGE, NULL,
                               "--format '%.40s' is not a format; give jsonl or csv", optarg);
            is_csv = strcmp(optarg, "csv") == 0;
            break;
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
        rc = stream(conn, project, has_vectors, is_csv, out, &n_lines, err);
        db_rollback(conn);   /* read only: nothing to keep */
    }
    if (out && out != stdout && fclose(out) != 0 && rc == KB_OK)
        rc = KB_FAIL(err, KB_E_IO, NULL, "%.200s: writing failed (%s); check the disk", path,
                     strerror(errno));
    if (rc == KB_OK)
        log_info("export: %ld %s from project '%s'", n_lines,
                 is_csv ? "records (and a header line)" : "lines", project);
    db_close(conn);
    return rc;
}
