/*
 * run_document.c - one document of a run into the batch: the document hash
 * that decides "unchanged", the translation of src/ingest's document into
 * src/load's records (a source, its chunks from src/chunk or its learning,
 * a GitHub issue), their metadata (built with jansson: the reader's object
 * merged with the run's keys), and the look-ahead that estimates the
 * rows of a run for index strategy auto.
 *
 * Everything a document makes lives in the run's arena, reset by the
 * caller after the document; the batch copies what it keeps.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_int.h"

/* s as a JSON string.  Readers and the pipeline hand over UTF-8 only (the
 * one thing json_string refuses), so null stands for a broken invariant. */
static json_t *json_text(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();
}

/* o as compact JSON text, then o released; the caller frees the text. */
static char *json_take_text(json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    char *out = kb_xstrdup(text ? text : "{}");   /* json_dumps fails only out of memory */
    free(text);
    return out;
}

/*
 * A learning's metadata: the reader's object with what reuse and dedup look
 * up merged in (content_hash, embedding_model, source_id; these win over
 * the reader's keys of the same name).  *out is the caller's to free.
 * KB_E_INTERNAL when the reader's metadata is not a JSON object.
 */
static enum kb_code learning_metadata(const struct run *r, const struct kb_document *d,
                                      const char *content_hash, char **out, struct kb_err *err)
{
    json_error_t jerr;
    json_t *o = json_loads(d->metadata_json, 0, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        return KB_FAIL(err, KB_E_INTERNAL, &d->origin, "internal error: the reader's metadata "
                       "is not a JSON object (%s); please report it", jerr.text);
    }
    json_object_set_new(o, "content_hash", json_text(content_hash));
    json_object_set_new(o, "embedding_model", json_text(r->model));
    json_object_set_new(o, "source_id", json_text(d->source_id));
    *out = json_take_text(o);
    return KB_OK;
}

/* A chunk's metadata: the chunker's signature, the model, the heading path,
 * and for a PDF the page (or the first and last pages) its text is on. */
static char *chunk_metadata(const struct run *r, const struct kb_document *d,
                            const struct kb_chunk *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "chunker", json_text(r->chunker_sig));
    json_object_set_new(o, "embedding_model", json_text(r->model));
    if (c->heading_path)
        json_object_set_new(o, "heading_path", json_text(c->heading_path));
    int first, last;
    ingest_doc_pages(d, c->offset, c->len, &first, &last);
    if (first > 0 && first == last)
        json_object_set_new(o, "page", json_integer(first));
    else if (first > 0)
        json_object_set_new(o, "pages", json_pack("[i,i]", first, last));
    return json_take_text(o);
}

/* A PostgreSQL text[] literal of the tags, in the arena. */
static const char *tags_literal(struct kb_arena *arena, const char **tags, int n)
{
    struct kb_buf b;
    kb_buf_init(&b);
    kb_buf_putc(&b, '{');
    for (int i = 0; i < n; i++) {
        if (i)
            kb_buf_putc(&b, ',');
        kb_buf_putc(&b, '"');
        for (const char *p = tags[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                kb_buf_putc(&b, '\\');
            kb_buf_putc(&b, *p);
        }
        kb_buf_putc(&b, '"');
    }
    kb_buf_putc(&b, '}');
    const char *out = kb_arena_strndup(arena, b.data, b.len);
    kb_buf_release(&b);
    return out;
}

/*
 * The document hash: the chunker's hash of text + chunk settings, then the
 * embedding model and everything else that reaches the rows (title, url,
 * metadata, learnings fields), so any change re-loads the source and a model
 * change re-embeds it.
 */
/*
 * The cl100k_base rank table, read when the first document needs chunking
 * rather than when the run opens: parsing it costs 70-90 ms of CPU, and an
 * unchanged re-run chunks nothing (docs/loading.md, "What kbpipe
 * controls", (4)).  A table that is missing or broken is the run's error,
 * not this document's: KB_E_INPUT from the table becomes KB_E_CONFIG, so
 * it is never taken for a bad input and rejected document by document.
 */
static enum kb_code run_tokenizer(struct run *r, struct kb_err *err)
{
    if (r->tok)
        return KB_OK;
    enum kb_code rc = chunk_tokenizer_open(NULL, &r->tok, err);
    if (rc == KB_E_INPUT)
        rc = err->code = KB_E_CONFIG;
    return rc;
}

static void document_hash(struct run *r, const struct kb_document *d, char out[65])
{
    char text_hash[65];
    chunk_document_hash(d->text, d->len, &r->copts, text_hash);
    struct kb_buf b;
    kb_buf_init(&b);
    kb_buf_printf(&b, "kbpipe-doc-v1\n%s\n%s\n%d\n", text_hash, r->model, (int)d->target);
    const char *fields[] = { d->title, d->url, d->author, d->metadata_json, d->learning_type,
                             d->category, d->impact_level };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        kb_buf_printf(&b, "%s\n", fields[i] ? fields[i] : "\x01");
    for (int i = 0; i < d->n_tags; i++)
        kb_buf_printf(&b, "%s\x02", d->tags[i]);
    kb_buf_printf(&b, "\n%.6f", d->confidence_score);
    chunk_hash_hex(b.data, b.len, out);
    kb_buf_release(&b);
}

/*
 * The reader's issue as src/load's record (load.h knows nothing of
 * src/ingest): the same fields, the comments copied into the run's arena
 * (load_batch_add_issue deep-copies what it keeps).
 */
static void add_issue(struct run *r, int bi, const struct ingest_issue *in)
{
    struct load_issue out = {
        .repo = in->repo, .number = in->number, .github_id = in->github_id,
        .title = in->title, .body = in->body, .state = in->state, .author = in->author,
        .url = in->url, .created_at = in->created_at, .updated_at = in->updated_at,
        .closed_at = in->closed_at, .labels = in->labels, .n_labels = in->n_labels,
        .n_comments = in->n_comments,
    };
    struct load_comment *cm =
        kb_arena_calloc(r->arena, sizeof *cm * (size_t)(in->n_comments + 1));
    for (int i = 0; i < in->n_comments; i++) {
        const struct ingest_comment *c = &in->comments[i];
        cm[i] = (struct load_comment){ .author = c->author, .body = c->body,
                                       .created_at = c->created_at, .url = c->url,
                                       .github_id = c->github_id };
    }
    out.comments = cm;
    load_batch_add_issue(r->batch, bi, &out);
}

/* The batch's newest row belongs to pipeline source stat_index (for the report). */
static void remember_row_stat(struct run *r, int stat_index)
{
    int n = load_batch_rows(r->batch);
    if (n > r->cap_row_stat) {
        r->cap_row_stat = n * 2;
        r->row_stat = kb_xrealloc(r->row_stat, (size_t)r->cap_row_stat * sizeof *r->row_stat);
    }
    r->row_stat[n - 1] = stat_index;
}

static const char *src_name(const struct run *r, int si) { return r->p->sources[si].name; }

/* One document's chunks on their way into the batch (add_chunk's state). */
struct doc_rows {
    struct run *r;
    const struct kb_document *d;
    const struct load_source *src;
    int si;
    int bi;                        /* the source's index in the batch being filled */
};

/*
 * chunk_document_each's callback: one chunk into the batch.  A batch that
 * is full before the document ends is flushed here, kept open (one
 * transaction for the whole source, load_batch_keep_open), and the
 * document goes on in the next batch: memory holds two batches, not the
 * document's thousands of rows (docs/loading.md, "One large input").  The
 * flush comes before a row is added, so the continued part is never empty.
 */
static enum kb_code add_chunk(const struct kb_chunk *c, void *ctx, struct kb_err *err)
{
    struct doc_rows *x = ctx;
    struct run *r = x->r;
    if (load_batch_is_full(r->batch)) {
        int was_new = load_batch_source_is_new(r->batch, x->bi);
        load_batch_keep_open(r->batch);
        /* the look-ahead would read this input again while it is held:
         * the first flush inside a document estimates from it alone */
        r->doc_rows_left = 1 + (long)(x->d->len - c->offset) / run_stride_bytes(r);
        enum kb_code rc = run_flush_batch(r, err);
        r->doc_rows_left = 0;
        if (rc != KB_OK) {
            r->is_flush_failed = 1;   /* the batch's error, never the document's */
            return rc;
        }
        if (r->is_doc_dropped)   /* rejected in that batch: stop chunking it */
            return KB_FAIL_AT(err, KB_E_EMBED, x->d->source_id, "rejected");
        x->bi = load_batch_continue_source(r->batch, x->src, was_new);
    }
    char *meta = chunk_metadata(r, x->d, c);
    struct load_chunk lc = { .chunk_index = c->index, .content = c->text, .len = c->len,
                             .token_count = c->token_count, .metadata_json = meta };
    memcpy(lc.content_hash, c->content_hash, sizeof lc.content_hash);
    load_batch_add_chunk(r->batch, x->bi, &lc);
    free(meta);
    remember_row_stat(r, x->si);
    r->stats[x->si].chunks++;
    r->chunks_done++;
    return KB_OK;
}

/* See pipeline_int.h. */
enum kb_code run_add_document(struct run *r, int si, const struct kb_document *d,
                              struct kb_err *err)
{
    struct run_source_stats *st = &r->stats[si];
    st->read++;
    if (!load_in_shard(r->sess, d->source_type, d->source_id)) {
        st->out_of_shard++;
        return KB_OK;
    }
    char doc_hash[65];
    document_hash(r, d, doc_hash);
    long new_before = load_session_counts(r->sess)->sources_new;
    char first_at[300];
    enum load_source_verdict v = load_source_check(r->sess, d->source_type, d->source_id,
                                                   doc_hash, &d->origin, first_at,
                                                   sizeof first_at);
    if (v == LOAD_SOURCE_DUPLICATE) {
        /* the first occurrence is loaded; this one is rejected whatever
         * on_error says (cmd_run.c's run_source), so one bad key never fails a batch */
        r->is_duplicate = 1;
        return KB_FAIL(err, KB_E_INPUT, &d->origin,
                       "duplicate source_id '%.80s' (first at %s); give each document "
                       "its own key", d->source_id, first_at);
    }
    if (v == LOAD_SOURCE_FOREIGN) {
        /* docs/pipelines.md, "Ownership": rejected whatever on_error says,
         * as a duplicate is: the owner's source is a good one */
        r->is_duplicate = 2;
        return KB_FAIL(err, KB_E_INPUT, &d->origin,
                       "source_id '%.80s' belongs to pipeline '%s' of project '%s'; pipeline "
                       "'%s' does not take it over: give one of them another root or key, or "
                       "remove it from '%s' (run it with --full) first",
                       d->source_id, first_at, r->p->project, r->p->name, first_at);
    }
    if (v == LOAD_SOURCE_UNCHANGED) {
        st->unchanged++;
        run_stat_document(r, si, d, doc_hash, 0);
        return KB_OK;
    }
    int is_new = load_session_counts(r->sess)->sources_new > new_before;
    if (is_new)
        st->added++;
    else
        st->changed++;
    if (r->args->is_plan && r->n_planned++ < PLAN_MAX_NAMED)
        kb_buf_printf(&r->planned, "  %-6s %s  %s\n", is_new ? "add" : "update", src_name(r, si),
                      d->source_id);
    struct load_source src = {
        .source_type = d->source_type, .source_id = d->source_id, .title = d->title,
        .url = d->url, .file_path = d->file_path, .author = d->author,
        .metadata_json = d->metadata_json, .is_learning = d->target == KB_TARGET_LEARNINGS,
    };
    memcpy(src.doc_hash, doc_hash, sizeof doc_hash);
    int bi = load_batch_add_source(r->batch, &src);
    run_stat_document(r, si, d, doc_hash, 1);
    const struct ingest_source *s = &r->p->sources[si];
    if (d->issue && ((s->type == INGEST_GITHUB_ISSUES && s->u.issues.upsert_issues) ||
                     (s->type == INGEST_GITHUB && s->u.github.upsert_issues)))
        add_issue(r, bi, d->issue);
    if (d->target == KB_TARGET_LEARNINGS) {
        struct load_learning l = {
            .title = d->title && *d->title ? d->title : d->source_id,
            .content = d->text, .learning_type = d->learning_type, .category = d->category,
            .impact_level = d->impact_level,
            .tags_literal = d->n_tags ? tags_literal(r->arena, d->tags, d->n_tags) : NULL,
        };
        /* the vector is made from the title and the text: a learning's
         * title is often its most searchable line */
        char *embed_text = kb_xasprintf("%s\n\n%s", l.title, d->text);
        l.embed_text = embed_text;
        chunk_hash_hex(embed_text, strlen(embed_text), l.content_hash);
        char conf[32];
        if (d->confidence_score >= 0) {
            snprintf(conf, sizeof conf, "%.4f", d->confidence_score);
            l.confidence_score = conf;
        }
        char *meta = NULL;
        enum kb_code rc = learning_metadata(r, d, l.content_hash, &meta, err);
        l.metadata_json = meta;
        if (rc == KB_OK)
            load_batch_add_learning(r->batch, bi, &l);
        free(meta);
        free(embed_text);
        if (rc != KB_OK)
            return rc;
        remember_row_stat(r, si);
        st->chunks++;
        r->chunks_done++;
    } else {
        struct doc_rows x = { .r = r, .d = d, .src = &src, .si = si, .bi = bi };
        int n_chunks = 0;
        enum kb_code rc = run_tokenizer(r, err);
        if (rc == KB_OK)
            rc = chunk_document_each(d->text, d->len, &r->copts, r->tok, r->arena, add_chunk,
                                     &x, &n_chunks, err);
        if (rc != KB_OK)
            return rc;
    }
    return KB_OK;
}

/* See pipeline_int.h. */
long run_stride_bytes(const struct run *r)
{
    long stride = r->copts.size - r->copts.overlap;
    if (r->copts.unit == CHUNK_TOKENS)
        stride *= 4;   /* about 4 bytes a token in cl100k_base on prose and code */
    return stride < 1 ? 1 : stride;
}

/*
 * See pipeline_int.h.  Run when the first batch is full: read every
 * source from the start, hash each document, and estimate the rows the
 * changed ones will write (their bytes over the chunk stride; one row per
 * learning).  Reading and hashing run at hundreds of MB/s, a small price
 * next to sending a large load through the HNSW index row by row.  Inputs
 * that fail to read are left to the real pass, which reports them.
 */
long run_estimate_rows(struct run *r)
{
    double t0 = kb_now();
    long stride = run_stride_bytes(r);
    long rows = 0;
    struct kb_arena *arena = kb_arena_new();   /* the run's holds the current document */
    for (int si = 0; si < r->p->n_sources; si++) {
        struct ingest_reader *rd;
        struct kb_err ignored = { 0 };
        if (ingest_source_has_state(&r->p->sources[si]))
            continue;   /* an API source: reading it twice costs requests; not estimated */
        if (run_stat_probe_file(r, si))
            continue;   /* a CSV or export unchanged by its stat: no row to write */
        if (ingest_open(&r->p->sources[si], ".", &rd, &ignored) != KB_OK)
            continue;
        int saved = run_stat_probe_begin(r, si, rd);   /* unchanged files: not opened */
        for (;;) {
            struct kb_document *d = NULL;
            enum kb_code rc = ingest_next(rd, arena, &d, &ignored);
            if (rc == KB_E_INPUT) {
                kb_arena_reset(arena);
                continue;   /* a bad input: the reader is on the next one */
            }
            if (rc != KB_OK || d == NULL)
                break;
            char doc_hash[65];
            document_hash(r, d, doc_hash);
            if (load_in_shard(r->sess, d->source_type, d->source_id) &&
                !load_source_is_stored(r->sess, d->source_type, d->source_id, doc_hash))
                rows += d->target == KB_TARGET_LEARNINGS ? 1 : 1 + (long)d->len / stride;
            kb_arena_reset(arena);
        }
        run_stat_probe_end(r, saved);
        ingest_close(rd);
    }
    kb_arena_free(arena);
    log_debug("look-ahead: about %ld rows to write (%.2f s)", rows, kb_now() - t0);
    return rows;
}
