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
 * This file is the command line, the choice of model and the query's
 * vector; the search and its log are query.c, the snippet lines snippet.c,
 * the printing print.c.  Tests: tests/integration/test_search.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"
#include "pipeline/pipeline.h"
#include "search_int.h"

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
            return kb_cli_unknown_option("search", argv[optind - 1], longopts, err);
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
    pipeline_embed_opts(pe, &eo);   /* the caller checked that pe is openai */
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
        rc = search_find_project(conn, a.project, project_id, err);
    if (rc == KB_OK)
        rc = search_survey_models(conn, &a, project_id, &models, err);
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
        rc = search_run(conn, &a, project_id, model, vec, &rows, &hits, err);
    if (rc == KB_OK)
        search_print_results(&a, rows, hits, db_rows_count(rows));
    free(hits);
    db_rows_free(rows);
    db_rows_free(models);
    free(vec);
    db_close(conn);
    pipeline_free(p);
    free(a.query);
    return rc;
}
