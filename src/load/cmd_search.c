/*
 * cmd_search.c - `kbpipe search`: embed a query with the provider and model
 * the project's rows were embedded with, rank with the schema's
 * search_knowledge_chunks / search_learnings, print the results with the
 * lines that best match the query, and log the query in search_queries.
 *
 *   $ kbpipe search --project supervisor-service -k 1 "how do I rotate a secret?"
 *    1. 0.244  Secrets management  (samples/docs/operations/secrets.md)
 *       | Secrets are stored encrypted with pgcrypto (`pgp_sym_encrypt`) under a key
 *       | `secret_rotation_schedule` holds a policy per secret. The view
 *       | `secrets_needing_rotation` lists those due within seven days;
 *
 * A heading path line follows the title when it differs from the title.
 *
 * The model comes from the rows (metadata->>'embedding_model', written by
 * the loader): vectors of two models are not comparable, so a project whose
 * rows use another model than the one kbpipe can embed with here, or
 * several models, is refused rather than searched with wrong vectors.  The
 * built-in kbpipe-hash-v1 needs nothing; a remote model needs --pipeline
 * naming its openai-compatible provider.
 *
 * The search, its log row and the usage counts of --use are one
 * transaction, so the log never names results that were not shown.  HNSW
 * with a project filter may find fewer than k rows among its ef_search
 * candidates, so the transaction raises hnsw.ef_search to k and, where
 * pgvector has it (>= 0.8), turns on hnsw.iterative_scan (docs/schema.md).
 * Tests: tests/integration/test_search.c.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/db.h"
#include "embed/embed.h"
#include "load/load_int.h"
#include "pipeline/pipeline.h"
#include "util/util.h"

#define SEARCH_MAX_K 1000      /* hnsw.ef_search's own upper bound */
#define SNIPPET_LINES 3
#define SNIPPET_BYTES 160      /* a longer line is cut around its first match */
#define MAX_WORDS 32

static const char USAGE[] =
    "usage: kbpipe search --project NAME [-k N] [--learnings] [--category C]\n"
    "                     [--min-similarity S] [--pipeline FILE] [--use] [--json] QUERY...\n"
    "\n"
    "Semantic search over a project's chunks (or learnings).  The query is embedded\n"
    "with the model the project's rows were embedded with (kbpipe-hash-v1 needs no\n"
    "settings; a remote model needs --pipeline naming its provider).  Results are\n"
    "ranked by cosine similarity; each shows its source, heading path and the lines\n"
    "that share the most words with the query.  Every query is logged in\n"
    "search_queries.\n"
    "\n"
    "  --project NAME       the project to search (required)\n"
    "  -k N                 how many results, 1-1000 (default 5)\n"
    "  --learnings          search learnings instead of chunks\n"
    "  --category C         only learnings of category C (with --learnings)\n"
    "  --min-similarity S   drop results below S, -1..1 (default 0)\n"
    "  --pipeline FILE      take the embedding settings from FILE's embedding: block\n"
    "                       (needed when the rows were embedded by a remote model)\n"
    "  --use                count a use of each learning shown (with --learnings)\n"
    "  --json               the results as a JSON array on stdout, for scripts\n"
    "\n"
    "Words after the options are joined into one query.\n"
    "\n"
    "Examples:\n"
    "  kbpipe search --project supervisor-service -k 3 \"how do I rotate a secret?\"\n"
    "  kbpipe search --project supervisor-service --learnings --use --json \"port conflicts\"\n";

struct search_args {
    const char *project, *category, *pipeline_path;
    char *query;                   /* the words joined; owned */
    int k, is_learnings, is_json, is_use;
    double min_similarity;
};

/* What one search found, borrowed from the result rows. */
struct hit {
    const char *id, *title, *path, *heading, *content;
    double similarity;
    int usage_count;               /* --use: the new count; else -1 */
};

/* ---- the command line ---------------------------------------------------- */

/*
 * Read the command line into *a (a->query is then owned by *a, also on
 * failure).  KB_E_USAGE naming the option at fault; KB_PARTIAL for --help
 * (the caller prints USAGE).
 */
static enum kb_code parse_args(int argc, char **argv, struct search_args *a, struct kb_err *err)
{
    static const struct option longopts[] = {
        { "project", required_argument, NULL, 'p' },
        { "learnings", no_argument, NULL, 'l' },
        { "category", required_argument, NULL, 'c' },
        { "min-similarity", required_argument, NULL, 's' },
        { "pipeline", required_argument, NULL, 'P' },
        { "use", no_argument, NULL, 'u' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    memset(a, 0, sizeof *a);
    a->k = 5;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:h", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'p': a->project = optarg; break;
        case 'l': a->is_learnings = 1; break;
        case 'c': a->category = optarg; break;
        case 'P': a->pipeline_path = optarg; break;
        case 'u': a->is_use = 1; break;
        case 'j': a->is_json = 1; break;
        case 'k': {
            errno = 0;
            long k = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || k < 1 || k > SEARCH_MAX_K)
                return KB_FAIL(err, KB_E_USAGE, NULL,
                               "-k '%.40s' is not a count; give a whole number from 1 to %d",
                               optarg, SEARCH_MAX_K);
            a->k = (int)k;
            break;
        }
        case 's':
            errno = 0;
            a->min_similarity = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(a->min_similarity >= -1.0) ||
                a->min_similarity > 1.0)
                return KB_FAIL(err, KB_E_USAGE, NULL,
                               "--min-similarity '%.40s' is not a similarity; give a number "
                               "from -1 to 1, e.g. 0.3", optarg);
            break;
        case 'h': return KB_PARTIAL;   /* the caller prints USAGE */
        case ':':
            return KB_FAIL(err, KB_E_USAGE, NULL, "option '%.40s' needs a value; see "
                           "'kbpipe search --help'", argv[optind - 1]);
        default:
            if (optopt)
                return KB_FAIL(err, KB_E_USAGE, NULL, "unknown option '-%c'; see "
                               "'kbpipe search --help'", optopt);
            return KB_FAIL(err, KB_E_USAGE, NULL, "unknown option '%.40s'; see "
                           "'kbpipe search --help'", argv[optind - 1]);
        }
    }
    if (a->project == NULL || *a->project == '\0')
        return KB_FAIL(err, KB_E_USAGE, NULL, "search needs --project NAME; 'kbpipe stats' "
                       "lists the projects");
    if (a->category && !a->is_learnings)
        return KB_FAIL(err, KB_E_USAGE, NULL, "--category filters learnings; add --learnings");
    if (a->is_use && !a->is_learnings)
        return KB_FAIL(err, KB_E_USAGE, NULL, "--use counts uses of learnings; add --learnings");
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

/* ---- which model to embed the query with -------------------------------- */

/*
 * The embedding models of the project's searchable rows, most rows first.
 * *rows_out (caller frees) has (model or NULL, count) per model.
 */
static enum kb_code survey_models(struct db_conn *conn, const struct search_args *a,
                                  const char *project_id, struct db_rows **rows_out,
                                  struct kb_err *err)
{
    const char *sql = a->is_learnings
        ? "SELECT metadata->>'embedding_model', count(*) FROM learnings"
          " WHERE project_id = $1 AND embedding IS NOT NULL"
          "   AND ($2::text IS NULL OR category = $2)"
          " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 6"
        : "SELECT metadata->>'embedding_model', count(*) FROM knowledge_chunks"
          " WHERE project_id = $1 AND embedding IS NOT NULL"
          " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 6";
    const char *p[] = { project_id, a->category };
    return db_exec(conn, sql, a->is_learnings ? 2 : 1, p, rows_out, err);
}

/*
 * Decide how to embed the query.  *model_out is the model (borrowed from
 * `models` or the pipeline); *use_pipeline is 1 when the pipeline's
 * openai-compatible provider must embed it, 0 for the built-in hash model.
 * KB_E_INPUT when the rows mix models or do not record theirs, KB_E_CONFIG
 * when the settings given cannot produce a vector of the rows' model.
 */
static enum kb_code choose_model(const struct search_args *a, const struct db_rows *models,
                                 const struct kb_pipeline *p, const char **model_out,
                                 int *use_pipeline, struct kb_err *err)
{
    const char *what = a->is_learnings ? "learnings" : "chunks";
    int n = db_rows_count(models);
    if (n > 1) {
        char list[256] = "";
        size_t used = 0;
        for (int i = 0; i < n && i < 5 && used < sizeof list; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s'%.40s' (%s rows)",
                                     i ? ", " : "", db_rows_isnull(models, i, 0)
                                     ? "(none recorded)" : db_rows_get(models, i, 0),
                                     db_rows_get(models, i, 1));
        return KB_FAIL(err, KB_E_INPUT, NULL,
                       "project '%.60s' has %s embedded with %s%d models: %s; their "
                       "similarities are not comparable, so kbpipe will not search them "
                       "together; re-load the project with one model (kbpipe run "
                       "PIPELINE.yaml --full)", a->project, what, n > 5 ? "more than " : "",
                       n > 5 ? 5 : n, list);
    }
    const char *model = NULL;
    if (n == 1 && db_rows_isnull(models, 0, 0))
        return KB_FAIL(err, KB_E_INPUT, NULL,
                       "project '%.60s' has %s rows whose metadata records no "
                       "embedding_model, so kbpipe cannot tell how to embed the query; "
                       "load the project with 'kbpipe run PIPELINE.yaml', which records it",
                       a->project, db_rows_get(models, 0, 1));
    if (n == 1)
        model = db_rows_get(models, 0, 0);
    const struct pipeline_embedding *pe = p ? &p->embedding : NULL;
    const struct kb_origin *at = p ? pipeline_origin(p, "embedding.model") : NULL;
    if (model == NULL)   /* nothing to search: embed as the settings say */
        model = pe && pe->model ? pe->model : EMBED_HASH_MODEL;
    if (strcmp(model, EMBED_HASH_MODEL) == 0) {
        if (pe && pe->provider != PIPELINE_EMBED_HASH)
            return KB_FAIL(err, KB_E_CONFIG, at,
                           "the pipeline embeds with '%.60s' (%s), but project '%.60s' was "
                           "embedded with %s; search without --pipeline", pe->model
                           ? pe->model : "?", pipeline_provider_name(pe->provider), a->project,
                           EMBED_HASH_MODEL);
        *model_out = model;
        *use_pipeline = 0;
        return KB_OK;
    }
    if (pe == NULL)
        return KB_FAIL(err, KB_E_CONFIG, NULL,
                       "project '%.60s' was embedded with model '%.80s', which kbpipe can "
                       "only reach through its provider; add --pipeline FILE whose "
                       "embedding: block sets provider: openai and model: %.80s",
                       a->project, model, model);
    if (pe->provider != PIPELINE_EMBED_OPENAI)
        return KB_FAIL(err, KB_E_CONFIG, pipeline_origin(p, "embedding.provider"),
                       "embedding.provider is %s, which cannot embed a query; project "
                       "'%.60s' needs model '%.80s' from an openai-compatible provider "
                       "(provider: openai)", pipeline_provider_name(pe->provider), a->project,
                       model);
    if (pe->model == NULL || strcmp(pe->model, model) != 0)
        return KB_FAIL(err, KB_E_CONFIG, at,
                       "the pipeline's model is '%.80s', but project '%.60s' was embedded "
                       "with '%.80s'; give a pipeline that sets model: %.80s",
                       pe->model ? pe->model : "(none)", a->project, model, model);
    *model_out = model;
    *use_pipeline = 1;
    return KB_OK;
}

/* The query's vector from the pipeline's openai-compatible provider. */
static enum kb_code embed_remote(const struct pipeline_embedding *pe, const char *query,
                                 float out[KB_EMBED_DIM], struct kb_err *err)
{
    struct embed_opts eo;
    load_embed_opts(pe, &eo);   /* the caller checked that pe is openai */
    struct embed_embedder *e;
    enum kb_code rc = embed_embedder_new(&eo, &e, err);
    if (rc != KB_OK)
        return rc;
    struct embed_batch b;
    embed_batch_init(&b, 1);
    b.rows[0] = (struct embed_row){ .text = query, .len = strlen(query), .origin = "the query" };
    rc = embed_batch_compute(e, &b, err);
    if (rc == KB_OK && b.rows[0].state != EMBED_ROW_COMPUTED)
        rc = KB_FAIL(err, KB_E_EMBED, NULL, "the provider returned no vector for the query; "
                     "retry, or check the provider's status");
    if (rc == KB_PARTIAL)
        rc = KB_E_EMBED;   /* the one row was rejected: err says why */
    if (rc == KB_OK)
        memcpy(out, embed_batch_row(&b, 0), sizeof(float) * KB_EMBED_DIM);
    embed_batch_release(&b);
    embed_embedder_free(e);
    return rc;
}

/* pgvector's text form "[v1,v2,...]"; %.9g gives back the same float4. */
static char *vector_literal(const float *v)
{
    struct kb_buf b;
    kb_buf_init(&b);
    kb_buf_reserve(&b, (size_t)KB_EMBED_DIM * 16);
    kb_buf_putc(&b, '[');
    for (int i = 0; i < KB_EMBED_DIM; i++)
        kb_buf_printf(&b, "%s%.9g", i ? "," : "", (double)v[i]);
    kb_buf_putc(&b, ']');
    return kb_buf_detach(&b);
}

/* ---- snippets ------------------------------------------------------------ */

/* Common words that would make any line "match"; 1-2 letter words never count. */
static const char *const SKIP[] = {
    "about", "all", "and", "any", "are", "can", "could", "did", "does", "for", "from",
    "had", "has", "have", "how", "into", "its", "not", "our", "should", "that", "the",
    "their", "then", "there", "these", "they", "this", "was", "were", "what", "when",
    "where", "which", "who", "why", "will", "with", "would", "you", "your",
};

/*
 * The query's words for matching lines: runs of letters, digits, '_' and
 * non-ASCII bytes, lower-cased, 3+ bytes, common words dropped, each kept
 * as a stem matched at the start of a word, so "rotate" (stem "rota") also
 * finds "rotated" and "rotation", "keys" finds "key".  Returns how many
 * distinct stems (at most max).
 */
static int query_stems(const char *q, char stems[][32], int max)
{
    int n = 0;
    while (*q && n < max) {
        while (*q && !(isalnum((unsigned char)*q) || *q == '_' || (unsigned char)*q >= 0x80))
            q++;
        char w[32];
        size_t len = 0;
        while (*q && (isalnum((unsigned char)*q) || *q == '_' || (unsigned char)*q >= 0x80)) {
            if (len < sizeof w - 1)
                w[len++] = (char)tolower((unsigned char)*q);
            q++;
        }
        w[len] = '\0';
        int is_skip = len < 3;
        for (size_t i = 0; !is_skip && i < sizeof SKIP / sizeof SKIP[0]; i++)
            is_skip = strcmp(w, SKIP[i]) == 0;
        if (is_skip)
            continue;
        /* 6+ bytes: drop 2 ("rotate" -> "rota"); 5: drop 1; 4: drop a plural 's' */
        size_t stem = len >= 6 ? len - 2 : len == 5 ? 4 : len == 4 && w[3] == 's' ? 3 : len;
        w[stem] = '\0';
        for (int i = 0; i < n && !is_skip; i++)
            is_skip = strcmp(stems[i], w) == 0;
        if (!is_skip)
            memcpy(stems[n++], w, stem + 1);
    }
    return n;
}

/*
 * How many different stems occur at the start of a word of line[0..len);
 * *first is the offset of the earliest match (len when none).
 */
static int line_score(const char *line, size_t len, char stems[][32], int n_stems,
                      size_t *first)
{
    int score = 0;
    *first = len;
    for (int s = 0; s < n_stems; s++) {
        size_t sl = strlen(stems[s]);
        for (size_t i = 0; i + sl <= len; i++) {
            /* '_' starts a word too: "secrets_needing_rotation" has "rotation" */
            int at_word = i == 0 || !(isalnum((unsigned char)line[i - 1]) ||
                                      (unsigned char)line[i - 1] >= 0x80);
            if (at_word && strncasecmp(line + i, stems[s], sl) == 0) {
                score++;
                if (i < *first)
                    *first = i;
                break;
            }
        }
    }
    return score;
}

struct snippet_line {
    const char *p;
    size_t len, first;             /* first: offset of the first match */
    int score;                     /* 2 x stems matched, - 1 for a Markdown heading */
};

/*
 * Up to SNIPPET_LINES lines of content that share the most query stems with
 * it, in document order, each trimmed of spaces; the first non-blank line
 * when none shares a word.  Ties go to body text over a Markdown heading
 * (the heading path is shown already), then to the earlier line.  Returns
 * how many.
 */
static int snippet_lines(const char *content, const char *query,
                         struct snippet_line out[SNIPPET_LINES])
{
    char stems[MAX_WORDS][32];
    int n_stems = query_stems(query, stems, MAX_WORDS), n = 0;
    struct snippet_line fallback = { 0 };
    for (const char *p = content; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        struct snippet_line l = { .p = p, .len = len };
        while (l.len && isspace((unsigned char)*l.p))
            l.p++, l.len--;
        while (l.len && isspace((unsigned char)l.p[l.len - 1]))
            l.len--;
        if (l.len && fallback.p == NULL)
            fallback = l;
        if (l.len)
            l.score = 2 * line_score(l.p, l.len, stems, n_stems, &l.first);
        if (l.score > 0 && l.p[0] == '#')
            l.score--;
        if (l.score > 0) {
            /* insert by score into the best SNIPPET_LINES, earlier lines first on ties */
            int at = n;
            while (at > 0 && out[at - 1].score < l.score)
                at--;
            if (at < SNIPPET_LINES) {
                int keep = n < SNIPPET_LINES ? n : SNIPPET_LINES - 1;
                memmove(&out[at + 1], &out[at], sizeof out[0] * (size_t)(keep - at));
                out[at] = l;
                if (n < SNIPPET_LINES)
                    n++;
            }
        }
        p = eol ? eol + 1 : p + len;
    }
    if (n == 0 && fallback.p) {
        out[0] = fallback;
        out[0].first = 0;
        n = 1;
    }
    for (int i = 1; i < n; i++)    /* back to document order */
        for (int j = i; j > 0 && out[j].p < out[j - 1].p; j--) {
            struct snippet_line t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

/*
 * A snippet line as text the caller frees: at most SNIPPET_BYTES bytes,
 * cut around its first match on UTF-8 boundaries, "..." where cut.
 */
static char *snippet_text(const struct snippet_line *l)
{
    size_t start = 0, end = l->len;
    if (l->len > SNIPPET_BYTES) {
        start = l->first > 40 ? l->first - 40 : 0;
        if (start + SNIPPET_BYTES > l->len)
            start = l->len - SNIPPET_BYTES;
        end = start + SNIPPET_BYTES;
        while (start > 0 && ((unsigned char)l->p[start] & 0xC0) == 0x80)
            start--;
        while (end < l->len && ((unsigned char)l->p[end] & 0xC0) == 0x80)
            end--;
    }
    return kb_xasprintf("%s%.*s%s", start > 0 ? "..." : "", (int)(end - start), l->p + start,
                        end < l->len ? "..." : "");
}

/* ---- output -------------------------------------------------------------- */

static json_t *json_text(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();   /* NULL, or (never from PostgreSQL) invalid UTF-8 */
}

/* The hit's snippet lines as a JSON array or "| line" rows on out. */
static json_t *put_snippet(const struct hit *h, const char *query, FILE *out)
{
    struct snippet_line lines[SNIPPET_LINES];
    int n = snippet_lines(h->content, query, lines);
    json_t *arr = out ? NULL : json_array();
    for (int i = 0; i < n; i++) {
        char *t = snippet_text(&lines[i]);
        if (out)
            fprintf(out, "    | %s\n", t);
        else
            json_array_append_new(arr, json_text(t));
        free(t);
    }
    return arr;
}

/*
 * Chunk rows: id, similarity, title, path, heading, content, chunk_index,
 * source_type, source_id, knowledge_source_id, url.  Learning rows: id,
 * similarity, title, NULL, NULL, content, learning_type, category,
 * confidence_score.
 */
static void print_results(const struct search_args *a, const struct db_rows *rows,
                          const struct hit *hits, int n)
{
    if (a->is_json) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++) {
            const struct hit *h = &hits[i];
            json_t *o = json_object();
            json_object_set_new(o, "rank", json_integer(i + 1));
            json_object_set_new(o, "similarity", json_real(h->similarity));
            if (a->is_learnings) {
                json_object_set_new(o, "learning_id", json_text(h->id));
                json_object_set_new(o, "title", json_text(h->title));
                json_object_set_new(o, "learning_type", json_text(db_rows_get(rows, i, 6)));
                json_object_set_new(o, "category", db_rows_isnull(rows, i, 7) ? json_null()
                                    : json_text(db_rows_get(rows, i, 7)));
                json_object_set_new(o, "confidence_score",
                                    json_real(atof(db_rows_get(rows, i, 8))));
                if (h->usage_count >= 0)
                    json_object_set_new(o, "usage_count", json_integer(h->usage_count));
            } else {
                json_object_set_new(o, "chunk_id", json_text(h->id));
                json_object_set_new(o, "chunk_index", json_integer(atoi(db_rows_get(rows, i, 6))));
                json_object_set_new(o, "source_type", json_text(db_rows_get(rows, i, 7)));
                json_object_set_new(o, "source_id", json_text(db_rows_get(rows, i, 8)));
                json_object_set_new(o, "knowledge_source_id", json_text(db_rows_get(rows, i, 9)));
                json_object_set_new(o, "title", json_text(h->title));
                json_object_set_new(o, "path", json_text(h->path));
                json_object_set_new(o, "url", db_rows_isnull(rows, i, 10) ? json_null()
                                    : json_text(db_rows_get(rows, i, 10)));
                json_object_set_new(o, "heading_path", json_text(h->heading));
            }
            json_object_set_new(o, "snippet", put_snippet(h, a->query, NULL));
            json_object_set_new(o, "content", json_text(h->content));
            json_array_append_new(arr, o);
        }
        json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        fputc('\n', stdout);
        json_decref(arr);
        return;
    }
    if (n == 0)
        printf("no %s in project '%s' match at similarity %.2f or above\n",
               a->is_learnings ? "learnings" : "chunks", a->project, a->min_similarity);
    for (int i = 0; i < n; i++) {
        const struct hit *h = &hits[i];
        printf("%2d. %.3f  %s", i + 1, h->similarity, h->title ? h->title : h->path);
        if (a->is_learnings) {
            printf("  [%s", db_rows_get(rows, i, 6));
            if (!db_rows_isnull(rows, i, 7))
                printf("; %s", db_rows_get(rows, i, 7));
            printf("; confidence %.2f", atof(db_rows_get(rows, i, 8)));
            if (h->usage_count >= 0)
                printf("; used %d time%s", h->usage_count, h->usage_count == 1 ? "" : "s");
            printf("]\n");
        } else {
            if (h->title && h->path && strcmp(h->title, h->path) != 0)
                printf("  (%s)", h->path);
            printf("\n");
            if (h->heading && *h->heading && (h->title == NULL || strcmp(h->heading, h->title)))
                printf("    %s\n", h->heading);
        }
        put_snippet(h, a->query, stdout);
    }
}

/* ---- the search ---------------------------------------------------------- */

/*
 * In one transaction: widen the HNSW scan for k rows, run the search, log
 * it in search_queries, count --use.  *rows_out (caller frees) has the
 * rows print_results() reads; hits[i].usage_count is filled.
 */
static enum kb_code run_search(struct db_conn *conn, const struct search_args *a,
                               const char *project_id, const char *model, const char *vec,
                               struct db_rows **rows_out, struct hit **hits_out,
                               struct kb_err *err)
{
    enum kb_code rc = db_begin(conn, err);
    if (rc != KB_OK)
        return rc;
    /* the cast loads pgvector first, so current_setting sees its parameters */
    struct db_rows *g = NULL;
    char ef[16];
    snprintf(ef, sizeof ef, "%d", a->k > 40 ? a->k : 40);
    const char *pg[] = { ef };
    rc = db_exec(conn, "SELECT '[1]'::vector IS NOT NULL,"
                       " current_setting('hnsw.iterative_scan', true) IS NOT NULL", 0, NULL,
                 &g, err);
    if (rc == KB_OK)
        rc = db_exec(conn, strcmp(db_rows_get(g, 0, 1), "t") == 0
                     ? "SELECT set_config('hnsw.ef_search', $1, true),"
                       " set_config('hnsw.iterative_scan', 'relaxed_order', true)"
                     : "SELECT set_config('hnsw.ef_search', $1, true)", 1, pg, NULL, err);
    db_rows_free(g);

    char k[16], minsim[32];
    snprintf(k, sizeof k, "%d", a->k);
    snprintf(minsim, sizeof minsim, "%.17g", a->min_similarity);
    struct db_rows *rows = NULL;
    if (a->is_learnings) {
        const char *p[] = { vec, project_id, a->category, k, minsim };
        if (rc == KB_OK)
            rc = db_exec(conn,
                         "SELECT r.learning_id, r.similarity, r.title, NULL, NULL, r.content,"
                         " r.learning_type, r.category, r.confidence_score"
                         " FROM search_learnings($1::vector, $2::uuid, $3::text, $4::int,"
                         "                       $5::float8) r"
                         " ORDER BY r.similarity DESC, r.learning_id", 5, p, &rows, err);
    } else {
        const char *p[] = { vec, project_id, k, minsim };
        if (rc == KB_OK)
            rc = db_exec(conn,
                         "SELECT r.chunk_id, r.similarity, s.title,"
                         " coalesce(s.file_path, s.source_id), r.metadata->>'heading_path',"
                         " r.content, c.chunk_index, s.source_type, s.source_id, s.id, s.url"
                         " FROM search_knowledge_chunks($1::vector, $2::uuid, $3::int,"
                         "                              $4::float8) r"
                         " JOIN knowledge_sources s ON s.id = r.source_id"
                         " JOIN knowledge_chunks c ON c.id = r.chunk_id"
                         " ORDER BY r.similarity DESC, r.chunk_id", 4, p, &rows, err);
    }
    int n = rows ? db_rows_count(rows) : 0;
    struct hit *hits = kb_xcalloc((size_t)n + 1, sizeof *hits);
    for (int i = 0; i < n; i++) {
        struct hit *h = &hits[i];
        h->id = db_rows_get(rows, i, 0);
        h->similarity = strtod(db_rows_get(rows, i, 1), NULL);
        h->title = db_rows_isnull(rows, i, 2) || !*db_rows_get(rows, i, 2)
                   ? NULL : db_rows_get(rows, i, 2);
        h->path = db_rows_isnull(rows, i, 3) ? NULL : db_rows_get(rows, i, 3);
        h->heading = db_rows_isnull(rows, i, 4) ? NULL : db_rows_get(rows, i, 4);
        h->content = db_rows_get(rows, i, 5);
        h->usage_count = -1;
        if (h->title == NULL && h->path == NULL)
            h->title = h->id;
    }

    /* the log: top_result_id refers to knowledge_chunks, so a learning goes in metadata */
    if (rc == KB_OK) {
        json_t *filters = json_pack("{s:i, s:f}", "k", a->k, "min_similarity", a->min_similarity);
        if (a->category)
            json_object_set_new(filters, "category", json_text(a->category));
        json_t *meta = json_pack("{s:s, s:s}", "client", "kbpipe search",
                                 "embedding_model", model);
        if (a->is_learnings && n > 0)
            json_object_set_new(meta, "top_learning_id", json_text(hits[0].id));
        char *fj = json_dumps(filters, JSON_COMPACT), *mj = json_dumps(meta, JSON_COMPACT);
        char count[16], top_sim[32];
        snprintf(count, sizeof count, "%d", n);
        snprintf(top_sim, sizeof top_sim, "%s", n > 0 ? db_rows_get(rows, 0, 1) : "");
        const char *p[] = { project_id, a->query, vec,
                            a->is_learnings ? "learnings" : "knowledge", count,
                            n > 0 && !a->is_learnings ? hits[0].id : NULL,
                            n > 0 ? top_sim : NULL, fj, mj };
        rc = db_exec(conn,
                     "INSERT INTO search_queries (project_id, query_text, query_embedding,"
                     " search_type, result_count, top_result_id, top_result_similarity,"
                     " filters, metadata)"
                     " VALUES ($1::uuid, $2, $3::vector, $4, $5::int, $6::uuid, $7::float8,"
                     "         $8::jsonb, $9::jsonb)", 9, p, NULL, err);
        free(fj);
        free(mj);
        json_decref(filters);
        json_decref(meta);
    }
    for (int i = 0; rc == KB_OK && a->is_use && i < n; i++) {
        struct db_rows *u;
        const char *p[] = { hits[i].id };
        rc = db_exec(conn, "SELECT increment_learning_usage($1::uuid)", 1, p, &u, err);
        if (rc == KB_OK)
            hits[i].usage_count = atoi(db_rows_get(u, 0, 0));
        db_rows_free(u);
    }
    if (rc == KB_OK)
        rc = db_commit(conn, err);
    if (rc != KB_OK) {
        db_rollback(conn);
        if (strstr(err->msg, "does not exist"))
            kb_err_prefix(err, "the schema is incomplete (run 'kbpipe migrate up')");
        db_rows_free(rows);
        free(hits);
        return rc;
    }
    *rows_out = rows;
    *hits_out = hits;
    return KB_OK;
}

/* The project's id into id_out; KB_E_INPUT naming a few known projects when absent. */
static enum kb_code find_project(struct db_conn *conn, const char *name, char id_out[40],
                                 struct kb_err *err)
{
    struct db_rows *rows;
    const char *p[] = { name };
    enum kb_code rc = db_exec(conn,
        "SELECT (SELECT id FROM projects WHERE name = $1),"
        " (SELECT string_agg(name, ', ' ORDER BY name) FROM"
        "   (SELECT name FROM projects ORDER BY name LIMIT 6) n), (SELECT count(*) FROM projects)",
        1, p, &rows, err);
    if (rc != KB_OK) {
        if (strstr(err->msg, "does not exist"))
            kb_err_prefix(err, "the schema is incomplete (run 'kbpipe migrate up')");
        return rc;
    }
    if (db_rows_isnull(rows, 0, 0)) {
        long n = atol(db_rows_get(rows, 0, 2));
        rc = n == 0
            ? KB_FAIL(err, KB_E_INPUT, NULL, "no project named '%.60s': the database has no "
                      "projects yet; load one with 'kbpipe run PIPELINE.yaml'", name)
            : KB_FAIL(err, KB_E_INPUT, NULL, "no project named '%.60s'; the projects are: "
                      "%.200s%s ('kbpipe stats' lists them all)", name, db_rows_get(rows, 0, 1),
                      n > 6 ? ", ..." : "");
    } else {
        snprintf(id_out, 40, "%s", db_rows_get(rows, 0, 0));
    }
    db_rows_free(rows);
    return rc;
}

enum kb_code cmd_search(int argc, char **argv, struct kb_err *err)
{
    struct search_args a;
    enum kb_code rc = parse_args(argc, argv, &a, err);
    if (rc == KB_PARTIAL) {
        fputs(USAGE, stdout);
        free(a.query);
        return KB_OK;
    }
    struct kb_pipeline *p = NULL;
    if (rc == KB_OK && a.pipeline_path) {
        rc = pipeline_load(a.pipeline_path, &p, err);
        if (rc == KB_E_CONFIG && p)
            pipeline_diags_print(p, stderr);
    }
    struct db_conn *conn = NULL;
    if (rc == KB_OK)   /* --db, else the pipeline's connection:, else the environment */
        rc = kb_cli.db == NULL && p && p->connection ? db_connect(p->connection, &conn, err)
                                                     : db_open(&conn, err);
    char project_id[40] = "";
    struct db_rows *models = NULL, *rows = NULL;
    struct hit *hits = NULL;
    const char *model = NULL;
    int use_pipeline = 0;
    if (rc == KB_OK)
        rc = find_project(conn, a.project, project_id, err);
    if (rc == KB_OK)
        rc = survey_models(conn, &a, project_id, &models, err);
    if (rc == KB_OK)
        rc = choose_model(&a, models, p, &model, &use_pipeline, err);
    if (rc == KB_OK && db_rows_count(models) == 0)
        log_warn("project '%s' has no embedded %s%s%s yet; load some with 'kbpipe run "
                 "PIPELINE.yaml'", a.project, a.is_learnings ? "learnings" : "chunks",
                 a.category ? " of category " : "", a.category ? a.category : "");
    char *vec = NULL;
    if (rc == KB_OK) {
        float *v = kb_xmalloc(sizeof(float) * KB_EMBED_DIM);
        if (use_pipeline)
            rc = embed_remote(&p->embedding, a.query, v, err);
        else
            embed_hash_text(a.query, strlen(a.query), v);
        if (rc == KB_OK)
            vec = vector_literal(v);
        free(v);
    }
    if (rc == KB_OK)
        rc = run_search(conn, &a, project_id, model, vec, &rows, &hits, err);
    if (rc == KB_OK)
        print_results(&a, rows, hits, db_rows_count(rows));
    free(hits);
    db_rows_free(rows);
    db_rows_free(models);
    free(vec);
    db_close(conn);
    pipeline_free(p);
    free(a.query);
    return rc;
}
