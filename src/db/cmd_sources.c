/*
 * cmd_sources.c - the read-only catalogue (issue 16):
 *   `kbpipe sources --project P [--pipeline N] [--path GLOB] [--json]` lists
 *     a project's sources: id, type, source_id, chunks, tokens, updated,
 *     pipeline;
 *   `kbpipe show SOURCE [--project P] [--json]` prints one source's chunks
 *     with their token counts and heading paths.
 * Both live in src/db beside `stats`: plain queries printed with
 * db_print_table / db_print_json, no loader state.
 *
 * --path GLOB matches source_id; it becomes a LIKE pattern (`*` -> `%`,
 * `?` -> `_`, LIKE's own `%`, `_` and `\` escaped), so `*` also matches `/`.
 * SOURCE is a source's id (uuid) or its source_id; when it names more than
 * one source (two projects or two types) the command fails listing them.
 *
 *   chunk  tokens  heading         content
 *   -----  ------  --------------  ------------------------------
 *       0      12  Alpha           # Alpha The alpha page.
 */
#include "db/db_int.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE_SOURCES[] =
    "usage: kbpipe sources --project NAME [--pipeline NAME] [--path GLOB] [--json]\n"
    "\n"
    "List a project's loaded sources: id, type, source_id, chunks, tokens (sum of\n"
    "the chunks' counts), updated, pipeline.\n"
    "\n"
    "  --project NAME    the project (required)\n"
    "  --pipeline NAME   only the sources this pipeline loaded\n"
    "  --path GLOB       only source_ids matching GLOB (* any characters, ? one)\n"
    "  --json            a JSON array, one object per source\n"
    "\n"
    "Example:\n"
    "  kbpipe sources --project docs --path 'guide/*.md'\n";

static const char USAGE_SHOW[] =
    "usage: kbpipe show SOURCE [--project NAME] [--json]\n"
    "\n"
    "Print one source's chunks with their token counts and heading paths.\n"
    "SOURCE is the id from 'kbpipe sources' or the source_id (path, key).\n"
    "\n"
    "  --project NAME    the project, when SOURCE names sources of several\n"
    "  --json            one object: the source and its chunks\n"
    "\n"
    "Example:\n"
    "  kbpipe show guide/setup.md --project docs\n";

/* $1 project, $2 pipeline or NULL, $3 LIKE pattern or NULL */
static const char SOURCES_SQL[] =
    "SELECT s.id, s.source_type AS type, s.source_id,"
    " count(c.id) AS chunks, coalesce(sum(c.token_count), 0) AS tokens,"
    " s.updated_at::timestamp(0) AS updated, s.pipeline"
    " FROM knowledge_sources s JOIN projects p ON p.id = s.project_id"
    " LEFT JOIN knowledge_chunks c ON c.source_id = s.id"
    " WHERE p.name = $1 AND ($2::text IS NULL OR s.pipeline = $2)"
    " AND ($3::text IS NULL OR s.source_id LIKE $3)"
    " GROUP BY s.id ORDER BY s.source_type, s.source_id";

/* $1 SOURCE, $2 project or NULL.  SOURCE is an id when it reads as a uuid:
 * s.id = uuid (not s.id::text = $1) lets the primary key find it, and the
 * other arm the source_id index (a BitmapOr, no scan of the table).  The
 * whole canonical form is matched, not [0-9a-f-]{36}: 36 dashes would
 * reach the cast and fail it. */
#define DB_SOURCE_ID_MATCH(p) \
    "(s.id = CASE WHEN " p " ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'" \
    " THEN " p "::uuid END OR s.source_id = " p ")"
static const char FIND_SQL[] =
    "SELECT s.id, p.name AS project, s.source_type AS type, s.source_id, s.title,"
    " s.pipeline, s.updated_at::timestamp(0) AS updated"
    " FROM knowledge_sources s JOIN projects p ON p.id = s.project_id"
    " WHERE " DB_SOURCE_ID_MATCH("$1") " AND ($2::text IS NULL OR p.name = $2)"
    " ORDER BY p.name, s.source_type";

static const char CHUNKS_SQL[] =
    "SELECT c.chunk_index AS chunk, c.token_count AS tokens,"
    " coalesce(c.metadata->>'heading_path', '') AS heading,"
    " regexp_replace(left(c.content, 200), '\\s+', ' ', 'g') AS content"
    " FROM knowledge_chunks c WHERE c.source_id = $1::uuid ORDER BY c.chunk_index";

/* `show --json`: {"source": {...}, "chunks": [{chunk, tokens, heading, content}]} */
static const char SHOW_JSON_SQL[] =
    "SELECT json_build_object('source', json_build_object('id', s.id, 'project', p.name,"
    "  'type', s.source_type, 'source_id', s.source_id, 'title', s.title,"
    "  'pipeline', s.pipeline, 'updated', s.updated_at::timestamp(0)),"
    " 'chunks', coalesce((SELECT json_agg(json_build_object('chunk', c.chunk_index,"
    "  'tokens', c.token_count, 'heading', coalesce(c.metadata->>'heading_path', ''),"
    "  'content', c.content) ORDER BY c.chunk_index)"
    "  FROM knowledge_chunks c WHERE c.source_id = s.id), '[]'))"
    " FROM knowledge_sources s JOIN projects p ON p.id = s.project_id WHERE s.id = $1::uuid";

/* The shared option loop: project, json, help; pipeline and path when has_filters. */
struct cat_args {
    const char *project, *pipeline, *path;
    int is_json, is_help;
};

static enum kb_code parse_args(int argc, char **argv, const char *command, int has_filters,
                               struct cat_args *a, struct kb_err *err)
{
    static const struct option longopts[] = {
        { "project", required_argument, NULL, 'p' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { "pipeline", required_argument, NULL, 'P' },
        { "path", required_argument, NULL, 'g' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if ((c == 'P' || c == 'g') && !has_filters)
            c = '?';
        switch (c) {
        case 'p': a->project = optarg; break;
        case 'j': a->is_json = 1; break;
        case 'h': a->is_help = 1; return KB_OK;
        case 'P': a->pipeline = optarg; break;
        case 'g': a->path = optarg; break;
        default:
            return kb_cli_unknown_option(command, argv[optind - 1], longopts, err);
        }
    }
    return KB_OK;
}

/*
 * Parse the options, print `usage` for --help (then *conn stays NULL), check
 * there are n_operands arguments after the options and open the connection.
 */
static enum kb_code start(int argc, char **argv, const char *command, const char *usage,
                          int n_operands, struct cat_args *a, struct db_conn **conn,
                          struct kb_err *err)
{
    *conn = NULL;
    enum kb_code rc = parse_args(argc, argv, command, n_operands == 0, a, err);
    if (rc != KB_OK || a->is_help) {
        if (a->is_help)
            fputs(usage, stdout);
        return rc;
    }
    if (argc - optind != n_operands)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       n_operands ? "%s needs exactly one SOURCE (an id or source_id); see "
                                    "'kbpipe %s --help'"
                                  : "%s takes no arguments; see 'kbpipe %s --help'",
                       command, command);
    if (n_operands == 0 && !a->project)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "%s needs --project NAME; 'kbpipe stats' lists the projects", command);
    return db_open(conn, err);
}

/* GLOB as a LIKE pattern; the caller frees it. */
static char *glob_to_like(const char *glob)
{
    struct kb_buf b;
    kb_buf_init(&b);
    for (const char *s = glob; *s; s++) {
        if (*s == '*')
            kb_buf_putc(&b, '%');
        else if (*s == '?')
            kb_buf_putc(&b, '_');
        else {
            if (*s == '%' || *s == '_' || *s == '\\')
                kb_buf_putc(&b, '\\');
            kb_buf_putc(&b, *s);
        }
    }
    return kb_buf_detach(&b);
}

static void print_rows(const struct db_rows *rows, int is_json)
{
    if (is_json) {
        db_print_json(rows, stdout);
    } else {
        db_print_table(rows, stdout);
    }
}

enum kb_code cmd_sources(int argc, char **argv, struct kb_err *err)
{
    struct cat_args a = { 0 };
    struct db_conn *conn;
    enum kb_code rc = start(argc, argv, "sources", USAGE_SOURCES, 0, &a, &conn, err);
    if (rc != KB_OK || !conn)
        return rc;
    char *like = a.path ? glob_to_like(a.path) : NULL;
    const char *p[] = { a.project, a.pipeline, like };
    struct db_rows *rows = NULL;
    rc = db_project_check(conn, a.project, "sources", NULL, err);
    if (rc == KB_OK)
        rc = db_exec(conn, SOURCES_SQL, 3, p, &rows, err);
    if (rc == KB_OK)
        print_rows(rows, a.is_json);
    db_rows_free(rows);
    free(like);
    db_close(conn);
    return rc;
}

/* The one source SOURCE names, in *out (one row of FIND_SQL). */
static enum kb_code find_source(struct db_conn *conn, const char *source, const char *project,
                                struct db_rows **out, struct kb_err *err)
{
    const char *p[] = { source, project };
    enum kb_code rc = db_exec(conn, FIND_SQL, 2, p, out, err);
    if (rc != KB_OK)
        return rc;
    int n = db_rows_count(*out);
    if (n == 1)
        return KB_OK;
    if (n == 0)
        rc = KB_FAIL(err, KB_E_INPUT, NULL,
                     "show: no source with id or source_id '%.80s'%s%.80s%s; 'kbpipe sources "
                     "--project NAME' lists them", source, project ? " in project '" : "",
                     project ? project : "", project ? "'" : "");
    else
        rc = KB_FAIL(err, KB_E_INPUT, NULL,
                     "show: '%.80s' names %d sources (first: project '%.80s', type '%.40s'); "
                     "give --project NAME or the id from 'kbpipe sources'", source, n,
                     db_rows_get(*out, 0, 1), db_rows_get(*out, 0, 2));
    db_rows_free(*out);
    *out = NULL;
    return rc;
}

enum kb_code cmd_show(int argc, char **argv, struct kb_err *err)
{
    struct cat_args a = { 0 };
    struct db_conn *conn;
    enum kb_code rc = start(argc, argv, "show", USAGE_SHOW, 1, &a, &conn, err);
    if (rc != KB_OK || !conn)
        return rc;
    struct db_rows *src = NULL, *chunks = NULL;
    rc = find_source(conn, argv[optind], a.project, &src, err);
    const char *p[] = { rc == KB_OK ? db_rows_get(src, 0, 0) : NULL };
    if (rc == KB_OK && a.is_json) {
        /* the server builds the JSON, the whole content included: one read
         * of the chunks, CHUNKS_SQL's table is not needed */
        rc = db_exec(conn, SHOW_JSON_SQL, 1, p, &chunks, err);
        if (rc == KB_OK)
            printf("%s\n", db_rows_get(chunks, 0, 0));
    } else if (rc == KB_OK) {
        rc = db_exec(conn, CHUNKS_SQL, 1, p, &chunks, err);
        if (rc == KB_OK) {
            print_rows(src, 0);
            fputc('\n', stdout);
            print_rows(chunks, 0);
        }
    }
    db_rows_free(src);
    db_rows_free(chunks);
    db_close(conn);
    return rc;
}
