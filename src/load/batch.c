/*
 * batch.c - a batch of changed sources with their chunks and learnings,
 * and its flush: one transaction that upserts the sources (with their new
 * doc_hash), deletes their old chunks, binary-COPYs the new chunks straight
 * into knowledge_chunks and merges the learnings.  MVCC gives readers the
 * old set or the new one, never a mix; a run killed at any instant leaves
 * each source fully old or fully new, and the next run redoes what did not
 * commit (its doc_hash was not recorded either).
 *
 * Learnings go through a temporary staging table because they are merged,
 * not replaced: usage_count, verification and the dedup marks survive an
 * edit of the source row (ON CONFLICT (knowledge_source_id) DO UPDATE).
 */
#include "load/load_int.h"

#include <stdlib.h>
#include <assert.h>
#include <string.h>

struct load_batch *load_batch_new(const struct load_session *s)
{
    struct load_batch *b = kb_xcalloc(1, sizeof *b);
    b->session = s;
    b->max_rows = s->opts.batch_rows;
    b->arena = kb_arena_new();
    return b;
}

void load_batch_free(struct load_batch *b)
{
    if (b == NULL)
        return;
    kb_arena_free(b->arena);
    free(b->sources);
    free(b->rows);
    free(b->matrix);
    free(b->has_vector);
    free(b->origins);
    free(b->issues);
    free(b);
}

static void batch_reset(struct load_batch *b)
{
    kb_arena_reset(b->arena);
    b->n_sources = 0;
    b->n_rows = 0;
    b->n_issues = 0;
    b->is_open = 0;
}

static const char *dup_or_null(struct load_batch *b, const char *s)
{
    return s ? kb_arena_strdup(b->arena, s) : NULL;
}

/* A source the run found new (load_source_check): the session's table
 * read on the caller's thread, which is the only one that changes it. */
static int is_new_source(const struct load_session *s, const struct load_source *src)
{
    unsigned char key[16];
    load_source_key(src->source_type, src->source_id, key);
    const struct source_entry *e = load_table_find(s, key);
    return e != NULL && e->state == SRC_NEW_SEEN;
}

int load_batch_add_source(struct load_batch *b, const struct load_source *src)
{
    if (b->n_sources == b->cap_sources) {
        b->cap_sources = b->cap_sources ? b->cap_sources * 2 : 64;
        b->sources = kb_xrealloc(b->sources, (size_t)b->cap_sources * sizeof *b->sources);
    }
    struct batch_source *d = &b->sources[b->n_sources];
    memset(d, 0, sizeof *d);
    d->src = *src;
    d->src.source_type = dup_or_null(b, src->source_type);
    d->src.source_id = dup_or_null(b, src->source_id);
    d->src.title = dup_or_null(b, src->title);
    d->src.url = dup_or_null(b, src->url);
    d->src.file_path = dup_or_null(b, src->file_path);
    d->src.author = dup_or_null(b, src->author);
    d->src.metadata_json = dup_or_null(b, src->metadata_json);
    d->is_new = is_new_source(b->session, src);
    return b->n_sources++;
}

/* See load.h. */
void load_batch_keep_open(struct load_batch *b) { b->is_open = b->n_sources > 0; }
int load_batch_is_open(const struct load_batch *b) { return b->is_open; }

/* See load.h.  The source's is_new is the one the first part saw: the
 * session's table has it as seen since. */
int load_batch_continue_source(struct load_batch *b, const struct load_source *src,
                               int was_new)
{
    int i = load_batch_add_source(b, src);
    b->sources[i].is_continued = 1;
    b->sources[i].is_new = was_new;
    return i;
}

/* See load.h. */
int load_batch_source_spans(const struct load_batch *b, int src_index)
{
    return b->sources[src_index].is_continued || (b->is_open && src_index == b->n_sources - 1);
}

int load_batch_source_is_new(const struct load_batch *b, int src_index)
{
    return b->sources[src_index].is_new;
}

static struct batch_row *new_row(struct load_batch *b, int src_index)
{
    if (b->n_rows == b->cap_rows) {
        int cap = b->cap_rows ? b->cap_rows * 2 : (b->max_rows > 16 ? b->max_rows + 16 : 32);
        b->rows = kb_xrealloc(b->rows, (size_t)cap * sizeof *b->rows);
        b->matrix = kb_xrealloc(b->matrix, (size_t)cap * KB_LOAD_DIM * sizeof(float));
        b->has_vector = kb_xrealloc(b->has_vector, (size_t)cap);
        b->origins = kb_xrealloc(b->origins, (size_t)cap * sizeof *b->origins);
        b->cap_rows = cap;
    }
    struct batch_row *r = &b->rows[b->n_rows];
    memset(r, 0, sizeof *r);
    r->src_index = src_index;
    b->has_vector[b->n_rows] = 0;
    b->n_rows++;
    return r;
}

void load_batch_add_chunk(struct load_batch *b, int src_index, const struct load_chunk *c)
{
    struct batch_row *r = new_row(b, src_index);
    r->chunk = *c;
    r->chunk.content = kb_arena_strndup(b->arena, c->content, c->len);
    r->chunk.metadata_json = dup_or_null(b, c->metadata_json);
    b->origins[b->n_rows - 1] = kb_arena_printf(b->arena, "%s#%d",
                                                b->sources[src_index].src.source_id,
                                                c->chunk_index);
}

void load_batch_add_learning(struct load_batch *b, int src_index, const struct load_learning *l)
{
    struct batch_row *r = new_row(b, src_index);
    r->is_learning = 1;
    r->learning = *l;
    r->learning.title = dup_or_null(b, l->title);
    r->learning.content = dup_or_null(b, l->content);
    r->learning.learning_type = dup_or_null(b, l->learning_type);
    r->learning.category = dup_or_null(b, l->category);
    r->learning.impact_level = dup_or_null(b, l->impact_level);
    r->learning.confidence_score = dup_or_null(b, l->confidence_score);
    r->learning.tags_literal = dup_or_null(b, l->tags_literal);
    r->learning.metadata_json = dup_or_null(b, l->metadata_json);
    r->learning.embed_text = NULL;   /* lives in chunk.content */
    r->chunk.content = l->embed_text ? dup_or_null(b, l->embed_text)
                       : r->learning.content ? r->learning.content : "";
    r->chunk.len = strlen(r->chunk.content);
    memcpy(r->chunk.content_hash, l->content_hash, sizeof r->chunk.content_hash);
    b->origins[b->n_rows - 1] = kb_arena_strdup(b->arena, b->sources[src_index].src.source_id);
}

void load_batch_add_issue(struct load_batch *b, int src_index, const struct load_issue *in)
{
    if (b->n_issues == b->cap_issues) {
        b->cap_issues = b->cap_issues ? b->cap_issues * 2 : 32;
        b->issues = kb_xrealloc(b->issues, (size_t)b->cap_issues * sizeof *b->issues);
    }
    struct load_issue *is = kb_arena_calloc(b->arena, sizeof *is);
    is->repo = dup_or_null(b, in->repo);
    is->number = in->number;
    is->github_id = dup_or_null(b, in->github_id);
    is->title = dup_or_null(b, in->title);
    is->body = dup_or_null(b, in->body);
    is->state = dup_or_null(b, in->state);
    is->author = dup_or_null(b, in->author);
    is->url = dup_or_null(b, in->url);
    is->created_at = dup_or_null(b, in->created_at);
    is->updated_at = dup_or_null(b, in->updated_at);
    is->closed_at = dup_or_null(b, in->closed_at);
    is->n_labels = in->n_labels;
    const char **labels = kb_arena_alloc(b->arena, sizeof *labels * (size_t)(in->n_labels + 1));
    for (int i = 0; i < in->n_labels; i++)
        labels[i] = dup_or_null(b, in->labels[i]);
    is->labels = labels;
    is->n_comments = in->n_comments;
    struct load_comment *cm =
        kb_arena_calloc(b->arena, sizeof *cm * (size_t)(in->n_comments + 1));
    for (int i = 0; i < in->n_comments; i++) {
        cm[i].author = dup_or_null(b, in->comments[i].author);
        cm[i].body = dup_or_null(b, in->comments[i].body);
        cm[i].created_at = dup_or_null(b, in->comments[i].created_at);
        cm[i].url = dup_or_null(b, in->comments[i].url);
        cm[i].github_id = dup_or_null(b, in->comments[i].github_id);
    }
    is->comments = cm;
    b->issues[b->n_issues].issue = is;
    b->issues[b->n_issues].src_index = src_index;
    b->n_issues++;
}

int load_batch_rows(const struct load_batch *b) { return b->n_rows; }
int load_batch_sources(const struct load_batch *b) { return b->n_sources; }
/* Full at max_rows rows, or max_rows sources: documents with no chunk
 * (an empty file) add a source and no row, and must not pile up. */
int load_batch_is_full(const struct load_batch *b)
{
    return b->n_rows >= b->max_rows || b->n_sources >= b->max_rows;
}
float *load_batch_matrix(struct load_batch *b) { return b->matrix; }
unsigned char *load_batch_has_vector(struct load_batch *b) { return b->has_vector; }

const char *load_batch_row_text(const struct load_batch *b, int row, size_t *len)
{
    if (len)
        *len = b->rows[row].chunk.len;
    return b->rows[row].chunk.content;
}

const char *load_batch_row_hash(const struct load_batch *b, int row)
{
    return b->rows[row].chunk.content_hash;
}

const char *load_batch_row_origin(const struct load_batch *b, int row) { return b->origins[row]; }

int load_batch_row_token_count(const struct load_batch *b, int row)
{
    return b->rows[row].chunk.token_count;
}

const char *load_batch_row_source(const struct load_batch *b, int row, int *chunk_index)
{
    const struct batch_row *r = &b->rows[row];
    if (chunk_index)
        *chunk_index = r->is_learning ? 0 : r->chunk.chunk_index;
    return b->sources[r->src_index].src.source_id;
}

int load_batch_row_group(const struct load_batch *b, int row) { return b->rows[row].src_index; }

/* Row `from` of b moved to row `to` (to <= from), with its vector and origin:
 * one step of compacting the rows. */
static void move_row(struct load_batch *b, int to, int from)
{
    if (to == from)
        return;
    b->rows[to] = b->rows[from];
    memcpy(b->matrix + (size_t)to * KB_LOAD_DIM, b->matrix + (size_t)from * KB_LOAD_DIM,
           KB_LOAD_DIM * sizeof(float));
    b->has_vector[to] = b->has_vector[from];
    b->origins[to] = b->origins[from];
}

/* See load.h.  Compacts rows (with their vectors and origins) and sources. */
int load_batch_drop_sources(struct load_batch *b, const unsigned char *bad_row)
{
    unsigned char *drop = kb_xcalloc((size_t)(b->n_sources ? b->n_sources : 1), 1);
    int *new_index = kb_xmalloc((size_t)(b->n_sources ? b->n_sources : 1) * sizeof *new_index);
    for (int i = 0; i < b->n_rows; i++)
        if (bad_row[i])
            drop[b->rows[i].src_index] = 1;
    int n_src = 0, n_dropped = 0;
    for (int i = 0; i < b->n_sources; i++) {
        if (drop[i]) {
            new_index[i] = -1;
            n_dropped++;
            continue;
        }
        new_index[i] = n_src;
        b->sources[n_src++] = b->sources[i];
    }
    if (b->n_sources > 0 && drop[b->n_sources - 1])
        b->is_open = 0;   /* the source that went on in the next batch is gone */
    b->n_sources = n_src;
    int n_rows = 0;
    for (int i = 0; i < b->n_rows; i++) {
        int to = new_index[b->rows[i].src_index];
        if (to < 0)
            continue;
        move_row(b, n_rows, i);
        b->rows[n_rows++].src_index = to;
    }
    b->n_rows = n_rows;
    int n_issues = 0;
    for (int i = 0; i < b->n_issues; i++) {
        int to = new_index[b->issues[i].src_index];
        if (to < 0)
            continue;
        b->issues[n_issues] = b->issues[i];
        b->issues[n_issues++].src_index = to;
    }
    b->n_issues = n_issues;
    free(drop);
    free(new_index);
    return n_dropped;
}

/* See load_int.h. */
void load_tx_undo(struct load_session *s)
{
    const struct load_tx_mark *m = &s->tx_at;
    s->counts.chunks_written = m->chunks_written;
    s->counts.chunks_deleted = m->chunks_deleted;
    s->counts.learnings_written = m->learnings_written;
    s->counts.batches = m->batches;
    s->counts.sources_written = m->sources_written;
    s->rows_written = m->rows_written;
    while (s->n_touched > m->n_touched)
        free(s->touched[--s->n_touched]);
    s->is_tx_open = 0;
}

/* See load.h. */
int load_session_abort_open(struct load_session *s)
{
    if (!s->is_tx_open)
        return 0;
    db_rollback(s->conn);
    load_tx_undo(s);
    return 1;
}

/* Upsert the batch's sources in one statement; fills sources[i].id. */
static enum kb_code upsert_sources(struct load_session *s, struct load_batch *b,
                                   struct kb_err *err)
{
    struct kb_buf a[8];
    for (int k = 0; k < 8; k++) {
        kb_buf_init(&a[k]);
        load_array_open(&a[k]);
    }
    int n_up = 0;
    for (int i = 0; i < b->n_sources; i++) {
        if (b->sources[i].is_continued) {   /* upserted by the batch before, same transaction */
            snprintf(b->sources[i].id, sizeof b->sources[i].id, "%s", s->open_id);
            b->sources[i].was_inserted = 1;   /* its old chunks are gone already */
            continue;
        }
        n_up++;
        const struct load_source *src = &b->sources[i].src;
        load_array_add(&a[0], src->source_type);
        load_array_add(&a[1], src->source_id);
        load_array_add(&a[2], src->title);
        load_array_add(&a[3], src->url);
        load_array_add(&a[4], src->file_path);
        load_array_add(&a[5], src->author);
        load_array_add(&a[6], src->metadata_json ? src->metadata_json : "{}");
        load_array_add(&a[7], src->doc_hash);
    }
    for (int k = 0; k < 8; k++)
        load_array_close(&a[k]);
    if (n_up == 0) {
        for (int k = 0; k < 8; k++)
            kb_buf_release(&a[k]);
        return KB_OK;
    }
    const char *p[] = { s->project_id, s->opts.pipeline, a[0].data, a[1].data, a[2].data,
                        a[3].data, a[4].data, a[5].data, a[6].data, a[7].data };
    struct db_rows *rows;
    enum kb_code rc = db_exec(s->conn,
        "WITH u AS (SELECT * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[],"
        "    $7::text[], $8::text[], $9::jsonb[], $10::text[]) WITH ORDINALITY"
        "    AS u(source_type, source_id, title, url, file_path, author, metadata, doc_hash, ord)),"
        " up AS (INSERT INTO knowledge_sources (project_id, pipeline, source_type, source_id,"
        "    title, url, file_path, author, metadata, doc_hash, indexed_at)"
        "  SELECT $1, $2, source_type, source_id, title, url, file_path, author, metadata,"
        "    doc_hash, now() FROM u ORDER BY ord"
        "  ON CONFLICT (project_id, source_type, source_id) DO UPDATE SET"
        "    pipeline = EXCLUDED.pipeline, title = EXCLUDED.title, url = EXCLUDED.url,"
        "    file_path = EXCLUDED.file_path, author = EXCLUDED.author,"
        "    metadata = EXCLUDED.metadata, doc_hash = EXCLUDED.doc_hash,"
        "    indexed_at = now(), updated_at = now()"
        "  WHERE knowledge_sources.pipeline IS NULL OR knowledge_sources.pipeline = $2"
        "  RETURNING id, source_type, source_id, xmax = 0 AS inserted)"
        " SELECT up.id, u.ord, up.inserted FROM up JOIN u USING (source_type, source_id)",
        10, p, &rows, err);
    for (int k = 0; k < 8; k++)
        kb_buf_release(&a[k]);
    if (rc != KB_OK)
        return rc;
    int n = db_rows_count(rows);
    for (int r = 0; r < n; r++) {
        long ord = atol(db_rows_get(rows, r, 1));
        if (ord < 1 || ord > n_up)
            continue;
        struct batch_source *bs = &b->sources[ord - 1 + (b->sources[0].is_continued ? 1 : 0)];
        snprintf(bs->id, sizeof bs->id, "%s", db_rows_get(rows, r, 0));
        /* xmax = 0: the row was inserted, not updated (the usual idiom for
         * telling the two branches of ON CONFLICT DO UPDATE apart) */
        bs->was_inserted = strcmp(db_rows_get(rows, r, 2), "t") == 0;
    }
    db_rows_free(rows);
    /* no id: another pipeline owns the source (it loaded it while this run
     * was scanning; the session rejects the ones stored before) */
    for (int i = 0; i < b->n_sources; i++)
        if (b->sources[i].id[0] == '\0')
            return KB_FAIL(err, KB_E_INPUT, NULL,
                           "source %.80s was just loaded by another pipeline of project %s, "
                           "which owns it now; give it another key in one of the pipelines",
                           b->sources[i].src.source_id, s->opts.project);
    return KB_OK;
}

/* Delete the old chunks of the batch's sources that were already stored;
 * a source the upsert inserted has none, and a batch of new sources (a
 * first import) sends no DELETE at all. */
static enum kb_code delete_old_chunks(struct load_session *s, struct load_batch *b,
                                      struct kb_err *err)
{
    struct kb_buf ids;
    kb_buf_init(&ids);
    load_array_open(&ids);
    int n_old = 0;
    for (int i = 0; i < b->n_sources; i++)
        if (!b->sources[i].was_inserted) {
            load_array_add(&ids, b->sources[i].id);
            n_old++;
        }
    load_array_close(&ids);
    if (n_old == 0) {
        kb_buf_release(&ids);
        return KB_OK;
    }
    const char *p[] = { ids.data };
    struct db_rows *rows;
    enum kb_code rc = db_exec(s->conn,
                              "WITH d AS (DELETE FROM knowledge_chunks WHERE source_id = "
                              "ANY($1::uuid[]) RETURNING 1) SELECT count(*) FROM d",
                              1, p, &rows, err);
    kb_buf_release(&ids);
    if (rc == KB_OK) {
        s->counts.chunks_deleted += atol(db_rows_get(rows, 0, 0));
        db_rows_free(rows);
    }
    return rc;
}

static enum kb_code copy_chunks(struct load_session *s, struct load_batch *b, int n_chunks,
                                struct kb_err *err)
{
    if (n_chunks == 0)
        return KB_OK;
    struct load_copy *c;
    enum kb_code rc = load_copy_begin(db_conn_pg(s->conn),
        "COPY knowledge_chunks (source_id, project_id, chunk_index, content, content_hash,"
        " embedding, token_count, metadata, search_config) FROM STDIN WITH (FORMAT binary)",
        &c, err);
    if (rc != KB_OK)
        return rc;
    unsigned char project[16];
    load_uuid_parse(s->project_id, project);
    long n_rows = 0;
    for (int i = 0; i < b->n_rows && rc == KB_OK; i++) {
        const struct batch_row *r = &b->rows[i];
        if (r->is_learning)
            continue;
        unsigned char src[16];
        load_uuid_parse(b->sources[r->src_index].id, src);
        load_copy_tuple(c, 9);
        load_copy_uuid(c, src);
        load_copy_uuid(c, project);
        load_copy_int(c, s->int_width_chunk_index, r->chunk.chunk_index);
        load_copy_text(c, r->chunk.content, r->chunk.len);
        load_copy_text(c, r->chunk.content_hash, 64);
        load_copy_vector(c, b->matrix + (size_t)i * KB_LOAD_DIM, KB_LOAD_DIM);
        load_copy_int(c, s->int_width_token_count, r->chunk.token_count);
        load_copy_jsonb(c, r->chunk.metadata_json);
        load_copy_oid(c, s->search_config);   /* the project's: 008's trigger updates none */
        rc = load_copy_maybe_flush(c, err);
    }
    if (rc != KB_OK) {
        load_copy_abort(c);
        return rc;
    }
    rc = load_copy_end(c, &n_rows, err);
    if (rc == KB_OK)
        s->counts.chunks_written += n_rows;
    return rc;
}

/* The staged learnings merged into learnings ($1 project), their ids as m;
 * a new row takes its project's search_language, so migration 008's
 * statement trigger finds nothing to UPDATE */
#define MERGE_SQL \
    "WITH m AS (INSERT INTO learnings (project_id, knowledge_source_id, title, content, learning_type," \
    "  category, confidence_score, impact_level, tags, embedding, metadata, search_config)" \
    " SELECT $1, knowledge_source_id, title, content," \
    "  coalesce(learning_type, 'insight'), category," \
    "  coalesce(confidence_score::numeric, 0.5), coalesce(impact_level, 'medium')," \
    "  coalesce(tags::text[], '{}'), embedding, metadata," \
    "  (SELECT search_language FROM projects WHERE id = $1)" \
    " FROM kb_stage_learnings" \
    " ON CONFLICT (knowledge_source_id) WHERE knowledge_source_id IS NOT NULL DO UPDATE SET" \
    "  title = EXCLUDED.title, content = EXCLUDED.content," \
    "  learning_type = EXCLUDED.learning_type, category = EXCLUDED.category," \
    "  confidence_score = EXCLUDED.confidence_score, impact_level = EXCLUDED.impact_level," \
    "  tags = EXCLUDED.tags, embedding = EXCLUDED.embedding," \
    "  metadata = learnings.metadata || EXCLUDED.metadata, updated_at = now()" \
    " RETURNING id)"
/* ... and each noted owed its dedup pass ($2 lock name, $3 run id) */
#define OWED_SQL \
    ", owed AS (INSERT INTO kbpipe_pending (pipeline, project_id, what, learning_id, run_id)" \
    "  SELECT $2, $1, 'dedup', id, $3::bigint FROM m ON CONFLICT DO NOTHING)"

static enum kb_code merge_learnings(struct load_session *s, struct load_batch *b, int n_learn,
                                    struct kb_err *err)
{
    if (n_learn == 0)
        return KB_OK;
    enum kb_code rc = db_exec(s->conn,
        "CREATE TEMP TABLE IF NOT EXISTS kb_stage_learnings ("
        " knowledge_source_id uuid, title text, content text, learning_type text,"
        " category text, confidence_score text, impact_level text, tags text,"
        " embedding vector(1536), metadata jsonb) ON COMMIT DELETE ROWS",
        0, NULL, NULL, err);
    if (rc != KB_OK)
        return rc;
    struct load_copy *c;
    rc = load_copy_begin(db_conn_pg(s->conn),
                         "COPY kb_stage_learnings FROM STDIN WITH (FORMAT binary)", &c, err);
    if (rc != KB_OK)
        return rc;
    for (int i = 0; i < b->n_rows && rc == KB_OK; i++) {
        const struct batch_row *r = &b->rows[i];
        if (!r->is_learning)
            continue;
        const struct load_learning *l = &r->learning;
        unsigned char src[16];
        load_uuid_parse(b->sources[r->src_index].id, src);
        load_copy_tuple(c, 10);
        load_copy_uuid(c, src);
        const char *texts[] = { l->title, l->content, l->learning_type, l->category,
                                l->confidence_score, l->impact_level, l->tags_literal };
        for (int k = 0; k < 7; k++) {
            if (texts[k])
                load_copy_text(c, texts[k], strlen(texts[k]));
            else
                load_copy_null(c);
        }
        load_copy_vector(c, b->matrix + (size_t)i * KB_LOAD_DIM, KB_LOAD_DIM);
        load_copy_jsonb(c, l->metadata_json);
        rc = load_copy_maybe_flush(c, err);
    }
    if (rc != KB_OK) {
        load_copy_abort(c);
        return rc;
    }
    long n = 0;
    if ((rc = load_copy_end(c, &n, err)) != KB_OK)
        return rc;
    char run_id[32];
    snprintf(run_id, sizeof run_id, "%ld", s->run_id);
    /* the notes are keyed like the lock (owed.c): the shard's own */
    const char *p[] = { s->project_id, s->opts.lock_name, run_id };
    struct db_rows *rows;
    /* only rows whose content or settings changed come here: the source's
     * doc_hash said so; usage and verification columns are left alone.
     * When the pipeline dedups, each learning written is owed a dedup
     * pass: kbpipe_pending records it in this transaction (migration 009),
     * so a kill before the pass leaves the debt to the next run; without
     * dedup nothing is owed and no note is written */
    rc = db_exec(s->conn, s->opts.is_dedup_owed ? MERGE_SQL OWED_SQL " SELECT id FROM m"
                                                : MERGE_SQL " SELECT id FROM m",
                 s->opts.is_dedup_owed ? 3 : 1, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    for (int r = 0; r < db_rows_count(rows); r++)
        load_session_touch(s, db_rows_get(rows, r, 0));
    s->counts.learnings_written += db_rows_count(rows);
    db_rows_free(rows);
    return KB_OK;
}

/* The sources of b in the transaction (begun here unless open), committed
   unless b->is_open; on failure all of it is rolled back.  b stays filled. */
static enum kb_code write_batch(struct load_session *s, struct load_batch *b, struct kb_err *err)
{
    int n_chunks = 0, n_learn = 0;
    for (int i = 0; i < b->n_rows; i++) {
        if (!b->has_vector[i])
            return KB_FAIL_AT(err, KB_E_INTERNAL, b->origins[i],
                              "internal error at load/batch.c: row has no vector at flush; "
                              "please report it");
        if (b->rows[i].is_learning)
            n_learn++;
        else
            n_chunks++;
    }
    /* a batch after one left open goes on in its transaction; counts of
     * the transaction's batches are undone if it rolls back */
    enum kb_code rc = KB_OK;
    if (!s->is_tx_open) {
        s->tx_at = (struct load_tx_mark){ s->counts.chunks_written, s->counts.chunks_deleted,
                                          s->counts.learnings_written, s->counts.batches,
                                          s->counts.sources_written, s->rows_written,
                                          s->n_touched };
        rc = db_begin(s->conn, err);
    }
    s->is_tx_open = 0;   /* set again below when this batch leaves it open */
    /* never in a batch kept open: DROP INDEX holds an ACCESS EXCLUSIVE
     * lock on knowledge_chunks until the commit, and while the writer waits
     * for the document's next batch the run's reuse lookup (the second
     * connection) would wait for that lock: a deadlock PostgreSQL cannot
     * see.  The batch that commits decides instead. */
    if (rc == KB_OK && !b->is_open)
        rc = load_index_before_copy(s, n_chunks, err);
    if (rc == KB_OK)
        rc = upsert_sources(s, b, err);
    if (rc == KB_OK)
        rc = delete_old_chunks(s, b, err);
    if (rc == KB_OK)
        rc = load_issues_upsert(s, b->issues, b->n_issues, err);
    if (rc == KB_OK && kb_fault("load.flush"))
        rc = KB_FAIL(err, KB_E_DB, NULL, "fault injected at load.flush");
    if (rc == KB_OK)
        rc = copy_chunks(s, b, n_chunks, err);
    if (rc == KB_OK)
        rc = merge_learnings(s, b, n_learn, err);
    if (rc == KB_OK && b->is_open)
        snprintf(s->open_id, sizeof s->open_id, "%s", b->sources[b->n_sources - 1].id);
    else if (rc == KB_OK)
        rc = db_commit(s->conn, err);
    if (rc != KB_OK) {
        db_rollback(s->conn);
        load_tx_undo(s);
        kb_err_prefix(err, "batch of %d source(s) not written (the database is as before it)",
                      b->n_sources);
        return rc;
    }
    s->is_tx_open = b->is_open;
    s->rows_written += n_chunks;
    s->counts.batches++;
    for (int i = 0; i < b->n_sources; i++)
        s->counts.sources_written += !b->sources[i].is_continued;
    return KB_OK;
}

/* Keep in b only its sources from `first` on, with their rows and issues
   (to the front, src_index renumbered); the strings stay in the arena. */
static void keep_sources_from(struct load_batch *b, int first)
{
    int n_rows = 0, n_issues = 0;
    for (int i = first; i < b->n_sources; i++)
        b->sources[i - first] = b->sources[i];
    b->n_sources -= first;
    for (int i = 0; i < b->n_rows; i++) {
        if (b->rows[i].src_index < first)
            continue;
        move_row(b, n_rows, i);
        b->rows[n_rows++].src_index -= first;
    }
    b->n_rows = n_rows;
    for (int i = 0; i < b->n_issues; i++)
        if (b->issues[i].src_index >= first) {
            b->issues[n_issues] = b->issues[i];
            b->issues[n_issues++].src_index -= first;
        }
    b->n_issues = n_issues;
}

enum kb_code load_batch_flush(struct load_session *s, struct load_batch *b, struct kb_err *err)
{
    if (b->n_sources == 0) {
        batch_reset(b);
        return KB_OK;
    }
    if (s->opts.is_dry_run) {
        s->counts.batches++;
        batch_reset(b);
        return KB_OK;
    }
    enum kb_code rc = KB_OK;
    int last = b->n_sources - 1;
    if (b->is_open && last > 0 && !b->sources[last].is_continued) {
        /* the last source begins to span batches: the sources before it are
         * committed first, so that the transaction kept open holds it alone
         * and rejecting it later rolls back nothing else (load.h) */
        int n_sources = b->n_sources, n_rows = b->n_rows, n_issues = b->n_issues;
        b->n_sources = last;
        while (b->n_rows > 0 && b->rows[b->n_rows - 1].src_index == last)
            b->n_rows--;
        while (b->n_issues > 0 && b->issues[b->n_issues - 1].src_index == last)
            b->n_issues--;
        b->is_open = 0;
        rc = write_batch(s, b, err);
        b->n_sources = n_sources;
        b->n_rows = n_rows;
        b->n_issues = n_issues;
        b->is_open = 1;
        if (rc != KB_OK)
            return rc;
        keep_sources_from(b, last);
    }
    rc = write_batch(s, b, err);
    if (rc == KB_OK)
        batch_reset(b);
    return rc;
}
