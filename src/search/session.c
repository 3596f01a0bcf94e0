/*
 * session.c - what `kbpipe search` and `kbpipe eval` do before they rank:
 * load --pipeline, connect, find the project, pick the model to embed the
 * query with, and embed it.
 *
 * The model comes from kbpipe_embedding_models (migration 008), which
 * triggers keep exact: one or two rows per project and table, so picking
 * it costs an index lookup whatever the size of the project, where reading
 * metadata->>'embedding_model' of every row cost ~93 ms on 900 chunks.
 * Vectors of two models are not comparable, so a project whose rows use
 * another model than kbpipe can embed with here, or several models, is
 * refused rather than searched with wrong vectors.  The built-in
 * kbpipe-hash-v1 needs nothing; a remote model needs --pipeline naming its
 * openai-compatible provider.
 */
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"
#include "pipeline/pipeline.h"
#include "search_int.h"


/*
 * Decide how to embed the query: e->model (borrowed from `models` or the
 * pipeline), e->use_pipeline when the pipeline's openai-compatible provider
 * must embed it.  KB_E_INPUT when the rows mix models or do not record
 * theirs, KB_E_CONFIG when the settings given cannot produce a vector of
 * the rows' model.
 */
static enum kb_code choose_model(const struct search_args *a, const struct db_rows *models,
                                 int n, const struct kb_pipeline *p,
                                 struct search_embedding *e, struct kb_err *err)
{
    const char *what = a->is_learnings ? "learnings" : "chunks";
    if (n > 1) {
        char list[256] = "";
        size_t used = 0;
        for (int i = 0; i < n && i < 5 && used < sizeof list; i++)
            used += (size_t)snprintf(
                list + used, sizeof list - used, "%s'%.40s' (%s rows)", i ? ", " : "",
                db_rows_isnull(models, i, SEARCH_COL_MODEL)
                    ? "(none recorded)" : db_rows_get(models, i, SEARCH_COL_MODEL),
                db_rows_get(models, i, SEARCH_COL_ROWS));
        return KB_FAIL(err, KB_E_INPUT, NULL,
                       "project '%.60s' has %s embedded with %s%d models: %s; their "
                       "similarities are not comparable, so kbpipe will not search them "
                       "together; re-load the project with one model (kbpipe run "
                       "PIPELINE.yaml --full)", a->project, what, n > 5 ? "more than " : "",
                       n > 5 ? 5 : n, list);
    }
    const char *model = NULL;
    if (n == 1 && db_rows_isnull(models, 0, SEARCH_COL_MODEL))
        return KB_FAIL(err, KB_E_INPUT, NULL,
                       "project '%.60s' has %s rows whose metadata records no "
                       "embedding_model, so kbpipe cannot tell how to embed the query; "
                       "load the project with 'kbpipe run PIPELINE.yaml', which records it",
                       a->project, db_rows_get(models, 0, SEARCH_COL_ROWS));
    if (n == 1)
        model = db_rows_get(models, 0, SEARCH_COL_MODEL);
    const struct pipeline_embedding *pe = p ? &p->embedding : NULL;
    const struct kb_origin *at = p ? pipeline_origin(p, "embedding.model") : NULL;
    if (model == NULL)   /* nothing to search: embed as the settings say */
        model = pe && pe->model ? pe->model : EMBED_HASH_MODEL;
    e->model = model;
    e->pipeline = NULL;
    if (strcmp(model, EMBED_HASH_MODEL) == 0) {
        if (pe && pe->provider != PIPELINE_EMBED_HASH)
            return KB_FAIL(err, KB_E_CONFIG, at,
                           "the pipeline embeds with '%.60s' (%s), but project '%.60s' was "
                           "embedded with %s; search without --pipeline", pe->model
                           ? pe->model : "?", pipeline_provider_name(pe->provider), a->project,
                           EMBED_HASH_MODEL);
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
    e->pipeline = pe;
    return KB_OK;
}

/* The query's vector from the pipeline's openai-compatible provider. */
static enum kb_code embed_remote(const struct pipeline_embedding *pe, const char *query,
                                 float out[KB_EMBED_DIM], struct kb_err *err)
{
    struct embed_opts eo;
    pipeline_embed_opts(pe, &eo);   /* choose_model checked that pe is openai */
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

/* See search_int.h. */
enum kb_code search_session_open(const struct search_args *a, struct search_session *s,
                                 struct kb_err *err)
{
    memset(s, 0, sizeof *s);
    enum kb_code rc = KB_OK;
    if (a->pipeline_path) {
        rc = pipeline_load(a->pipeline_path, &s->pipeline, err);
        if (rc == KB_E_CONFIG && s->pipeline)
            pipeline_diags_print(s->pipeline, stderr);
    }
    const struct kb_pipeline *p = s->pipeline;
    /* --db, else the pipeline's connection:, else the environment; deferred:
     * search_find_project's statement sets the session up, and the command
     * checks the extensions only if it fails (db_session_diagnose) */
    if (rc == KB_OK)
        rc = kb_cli.db == NULL && p && p->connection
                 ? db_connect_deferred(p->connection, &s->conn, err)
                 : db_open_deferred(&s->conn, err);
    if (rc == KB_OK)
        rc = search_find_project(s->conn, a->project, a->is_learnings ? "learnings" : "chunks",
                                 s->project_id, &s->models, &s->n_models, err);
    if (a->mode == SEARCH_TEXT)   /* no vector: whatever the rows' model */
        return rc;
    if (rc == KB_OK)
        rc = choose_model(a, s->models, s->n_models, p, &s->emb, err);
    if (rc == KB_OK && s->n_models == 0)
        log_warn("project '%s' has no embedded %s yet; load some with 'kbpipe run "
                 "PIPELINE.yaml'", a->project, a->is_learnings ? "learnings" : "chunks");
    return rc;
}

/* See search_int.h. */
enum kb_code search_embed_query(const struct search_embedding *e, const char *text,
                                char **vec_out, struct kb_err *err)
{
    float *v = kb_xmalloc(sizeof(float) * KB_EMBED_DIM);
    enum kb_code rc = KB_OK;
    if (e->pipeline)
        rc = embed_remote(e->pipeline, text, v, err);
    else
        embed_hash_text(text, strlen(text), v);
    *vec_out = rc == KB_OK ? vector_literal(v) : NULL;
    free(v);
    return rc;
}

/* See search_int.h. */
void search_session_close(struct search_session *s)
{
    db_rows_free(s->models);
    db_close(s->conn);
    pipeline_free(s->pipeline);
    memset(s, 0, sizeof *s);
}
