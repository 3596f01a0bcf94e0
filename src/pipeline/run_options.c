/*
 * run_options.c - a pipeline's plain data as the option structs of the
 * modules below it: chunking: as src/chunk's, embedding: as src/embed's,
 * load: and the command line as src/load's, dedup: as the dedup pass's.
 * The pipeline's enums are its own, so a module never sees a YAML name
 * and src/pipeline never sets a field a module owns by accident.
 */
#include <stdio.h>

#include "pipeline_int.h"

/* See pipeline_int.h. */
void run_chunk_opts(const struct kb_pipeline *p, struct chunk_opts *o)
{
    chunk_opts_defaults(o);
    o->splitter = p->chunking.splitter == PIPELINE_SPLIT_RECURSIVE ? CHUNK_RECURSIVE
                  : p->chunking.splitter == PIPELINE_SPLIT_FIXED   ? CHUNK_FIXED
                                                                    : CHUNK_MARKDOWN;
    o->unit = p->chunking.unit == PIPELINE_UNIT_CHARS ? CHUNK_CHARS : CHUNK_TOKENS;
    o->size = p->chunking.size;
    o->overlap = p->chunking.overlap;
}

/* See pipeline_int.h. */
void run_load_opts(const struct kb_pipeline *p, const struct pipeline_run_args *a,
                   struct load_opts *o, char *lock_name, size_t lock_len)
{
    load_opts_defaults(o);
    o->pipeline = p->name;
    o->project = p->project;
    o->project_path = p->project_path;
    o->project_description = p->project_description;
    if (p->load.batch_rows > 0)
        o->batch_rows = p->load.batch_rows;
    o->index_strategy = p->load.index_strategy == PIPELINE_INDEX_KEEP      ? LOAD_INDEX_KEEP
                        : p->load.index_strategy == PIPELINE_INDEX_REBUILD ? LOAD_INDEX_REBUILD
                                                                           : LOAD_INDEX_AUTO;
    if (p->load.rebuild_ratio > 0)
        o->rebuild_ratio = p->load.rebuild_ratio;
    if (p->load.rebuild_min_rows > 0)
        o->rebuild_min_rows = p->load.rebuild_min_rows;
    o->is_dry_run = a->is_dry_run;
    o->is_full = (a->is_full || p->mode == PIPELINE_FULL) && !a->is_dry_run;
    o->wait_for_lock = !a->no_wait;
    o->shard_k = a->shard_k;
    o->shard_n = a->shard_n;
    o->is_dedup_owed = p->dedup.is_enabled;
    if (a->shard_n > 1)
        snprintf(lock_name, lock_len, "%s#%d/%d", p->name, a->shard_k, a->shard_n);
    else
        snprintf(lock_name, lock_len, "%s", p->name);
    o->lock_name = lock_name;
}

/* See pipeline.h. */
void pipeline_embed_opts(const struct pipeline_embedding *pe, struct embed_opts *o)
{
    embed_opts_defaults(o);
    o->provider = pe->provider == PIPELINE_EMBED_IMPORT   ? EMBED_IMPORT
                  : pe->provider == PIPELINE_EMBED_OPENAI ? EMBED_OPENAI
                                                          : EMBED_HASH;
    o->model = pe->model;
    if (o->provider == EMBED_OPENAI) {
        if (pe->base_url)
            o->openai.base_url = pe->base_url;
        if (pe->api_key_env)
            o->openai.api_key_env = pe->api_key_env;
        o->openai.dimensions = pe->dimensions;
        if (pe->batch_size > 0)
            o->openai.max_items_per_request = pe->batch_size;
        if (pe->timeout_ms > 0)
            o->openai.timeout_ms = pe->timeout_ms;
        if (pe->max_retries >= 0)
            o->openai.max_retries = pe->max_retries;
        if (pe->max_in_flight > 0)
            o->openai.max_in_flight = pe->max_in_flight;
        if (pe->max_tokens_per_request > 0)
            o->openai.max_tokens_per_request = pe->max_tokens_per_request;
    } else if (o->provider == EMBED_IMPORT) {
        o->import.path = pe->import_file;
        o->import.format = pe->import_format == PIPELINE_IMPORT_CSV ? EMBED_IMPORT_CSV
                           : pe->import_format == PIPELINE_IMPORT_OPENAI_BATCH
                               ? EMBED_IMPORT_OPENAI_BATCH
                               : EMBED_IMPORT_JSONL;
    }
}

/* See pipeline_int.h. */
enum kb_code run_embedder_open(struct run *r, struct kb_err *err)
{
    struct embed_opts *o = &r->eopts;
    pipeline_embed_opts(&r->p->embedding, o);
    enum kb_code rc = embed_embedder_new(o, &r->emb, err);
    if (rc == KB_OK)
        r->model = embed_embedder_model(r->emb);
    return rc;
}

/* See pipeline_int.h. */
enum load_dedup_action run_dedup_action(const struct kb_pipeline *p)
{
    /* the default is mark; an explicit `dedup.action` wins */
    if (pipeline_origin(p, "dedup.action") == NULL)
        return LOAD_DEDUP_MARK;
    return p->dedup.action == PIPELINE_DEDUP_REPORT  ? LOAD_DEDUP_REPORT
           : p->dedup.action == PIPELINE_DEDUP_MERGE ? LOAD_DEDUP_MERGE
                                                     : LOAD_DEDUP_MARK;
}

/* See pipeline_int.h. */
const char *run_dedup_action_name(enum load_dedup_action a)
{
    return a == LOAD_DEDUP_REPORT ? "report" : a == LOAD_DEDUP_MERGE ? "merge" : "mark";
}
