/*
 * dedup.c - the dedup pass over learnings.
 *
 * Candidates are the learnings a run inserted or changed (or, for `kbpipe
 * dedup`, every learning of the project).  Pairs come from two places:
 * within the candidates, all pairs at once by blocked sgemm on their unit
 * vectors (embed_similar_pairs); against the rest of the project, the
 * schema's own find_similar_learnings(embedding, project_id, threshold),
 * which ranks by cosine similarity through the HNSW index.  Over a whole
 * project (`kbpipe dedup`) every learning is a candidate, so there is no
 * rest to query and the in-set pass alone finds every pair.
 *
 * In a pair the keeper is the verified learning when exactly one is
 * verified, else the older (created_at; learnings loaded in one
 * transaction by source_id, e.g. the CSV key; then id); the other is the
 * duplicate.  Pairs are handled from the most similar down, and a learning
 * already marked or merged in this pass is not used again, so chains
 * (A~B, B~C) resolve to one keeper per duplicate.  Actions:
 *   report  list the pairs, change nothing;
 *   mark    metadata.duplicate_of = keeper id, metadata.similarity;
 *   merge   keeper gets the union of tags, the sum of usage counts, the
 *           higher confidence and the duplicate's applications; the
 *           duplicate is deleted.
 * The whole pass is one transaction, which also deletes the pass's notes in
 * kbpipe_pending: a kill during the pass changes nothing, and the next run
 * (or `kbpipe dedup`) does the whole pass again.
 */
#include "load/load_int.h"

#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"

struct candidate {
    char id[40];
    char created[160];   /* created_at, then source_id: the age order */
    int is_verified;
    char *title;
    int is_done;       /* already marked or merged away in this pass */
};

struct pair {
    int a, b;          /* candidate indexes; b = -1 for a database match */
    char other_id[40]; /* the database match */
    char *other_title;
    char other_created[160];
    int other_verified;
    double similarity;
};

/* qsort order: the most similar pair first. */
static int by_similarity_desc(const void *x, const void *y)
{
    const struct pair *p = x, *q = y;
    return (p->similarity < q->similarity) - (p->similarity > q->similarity);
}

/* Fetch candidates (ids NULL: the whole project) with their vectors. */
static enum kb_code fetch(struct db_conn *conn, const char *project_id, const char *const *ids,
                          int n_ids, int with_marked, struct candidate **out, float **matrix,
                          int *n_out, struct kb_err *err)
{
    struct kb_buf arr;
    kb_buf_init(&arr);
    load_array_open(&arr);
    for (int i = 0; i < n_ids; i++)
        load_array_add(&arr, ids[i]);
    load_array_close(&arr);
    const char *p[] = { project_id, ids ? arr.data : NULL, with_marked ? "t" : "f" };
    PGresult *res = PQexecParams(db_conn_pg(conn),
        "SELECT id::text, to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || ' ' ||"
        "  coalesce(metadata->>'source_id', ''),"
        "  coalesce(verified, false)::int::text, coalesce(title, ''), embedding"
        " FROM learnings WHERE project_id = $1 AND embedding IS NOT NULL"
        "  AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[]))"
        "  AND ($3::bool OR NOT (metadata ? 'duplicate_of'))"
        " ORDER BY created_at, id",
        3, NULL, p, NULL, NULL, 1);
    kb_buf_release(&arr);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        enum kb_code rc = db_result_error(conn, res, "reading learnings for dedup", err);
        PQclear(res);
        return rc;
    }
    int n = PQntuples(res);
    struct candidate *c = kb_xcalloc((size_t)(n ? n : 1), sizeof *c);
    float *m = kb_xmalloc((size_t)(n ? n : 1) * KB_LOAD_DIM * sizeof(float));
    int kept = 0;
    for (int r = 0; r < n; r++) {
        const unsigned char *v = (const unsigned char *)PQgetvalue(res, r, 4);
        if (!load_vector_from_binary(v, PQgetlength(res, r, 4), m + (size_t)kept * KB_LOAD_DIM))
            continue;
        snprintf(c[kept].id, sizeof c[kept].id, "%.*s", PQgetlength(res, r, 0),
                 PQgetvalue(res, r, 0));
        snprintf(c[kept].created, sizeof c[kept].created, "%.*s", PQgetlength(res, r, 1),
                 PQgetvalue(res, r, 1));
        c[kept].is_verified = PQgetvalue(res, r, 2)[0] == '1';
        c[kept].title = kb_xstrndup(PQgetvalue(res, r, 3), (size_t)PQgetlength(res, r, 3));
        kept++;
    }
    PQclear(res);
    *out = c;
    *matrix = m;
    *n_out = kept;
    return KB_OK;
}

/* Matches in the project outside the candidate set, via find_similar_learnings. */
static enum kb_code db_matches(struct db_conn *conn, const char *project_id,
                               struct candidate *c, int n, const char *threshold,
                               int with_marked,
                               struct pair **pairs, int *n_pairs, int *cap,
                               struct kb_err *err)
{
    for (int i = 0; i < n; i++) {
        const char *p[] = { c[i].id, project_id, threshold, with_marked ? "t" : "f" };
        struct db_rows *rows;
        enum kb_code rc = db_exec(conn,
            "SELECT f.learning_id::text, coalesce(f.title, ''), f.similarity::text,"
            "  to_char(l.created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || ' ' ||"
            "  coalesce(l.metadata->>'source_id', ''),"
            "  coalesce(l.verified, false)::int::text"
            " FROM learnings me,"
            "  LATERAL find_similar_learnings(me.embedding, $2::uuid, $3::float8) f"
            " JOIN learnings l ON l.id = f.learning_id"
            " WHERE me.id = $1::uuid AND f.learning_id <> me.id"
            "  AND ($4::bool OR NOT (l.metadata ? 'duplicate_of'))",
            4, p, &rows, err);
        if (rc != KB_OK)
            return rc;
        for (int r = 0; r < db_rows_count(rows); r++) {
            const char *other = db_rows_get(rows, r, 0);
            int is_candidate = 0;
            for (int k = 0; k < n && !is_candidate; k++)
                is_candidate = strcmp(c[k].id, other) == 0;
            if (is_candidate)
                continue;   /* found by the in-run pass already */
            if (*n_pairs == *cap) {
                *cap = *cap ? *cap * 2 : 64;
                *pairs = kb_xrealloc(*pairs, (size_t)*cap * sizeof **pairs);
            }
            struct pair *pr = &(*pairs)[(*n_pairs)++];
            memset(pr, 0, sizeof *pr);
            pr->a = i;
            pr->b = -1;
            snprintf(pr->other_id, sizeof pr->other_id, "%s", other);
            pr->other_title = kb_xstrdup(db_rows_get(rows, r, 1));
            pr->similarity = atof(db_rows_get(rows, r, 2));
            snprintf(pr->other_created, sizeof pr->other_created, "%s", db_rows_get(rows, r, 3));
            pr->other_verified = db_rows_get(rows, r, 4)[0] == '1';
        }
        db_rows_free(rows);
    }
    return KB_OK;
}

/* Carry out one pair's action inside the pass's transaction. */
static enum kb_code apply(struct db_conn *conn, enum load_dedup_action action,
                          const char *keeper, const char *dup, double similarity,
                          struct kb_err *err)
{
    char sim[32];
    snprintf(sim, sizeof sim, "%.6f", similarity);
    const char *p[] = { keeper, dup, sim };
    if (action == LOAD_DEDUP_MARK)
        return db_exec(conn,
                       "UPDATE learnings SET metadata = metadata || jsonb_build_object("
                       "'duplicate_of', $1::text, 'similarity', $3::float8),"
                       " updated_at = now() WHERE id = $2::uuid",
                       3, p, NULL, err);
    enum kb_code rc = db_exec(conn,
            "UPDATE learnings k SET"
            "  tags = ARRAY(SELECT DISTINCT t FROM unnest(coalesce(k.tags, '{}') ||"
            "                coalesce(d.tags, '{}')) t ORDER BY t),"
            "  usage_count = coalesce(k.usage_count, 0) + coalesce(d.usage_count, 0),"
            "  confidence_score = GREATEST(k.confidence_score, d.confidence_score),"
            "  metadata = k.metadata || jsonb_build_object('merged_from',"
            "    coalesce(k.metadata->'merged_from', '[]'::jsonb) || to_jsonb($2::text)),"
            "  updated_at = now()"
            " FROM learnings d WHERE k.id = $1::uuid AND d.id = $2::uuid",
            2, p, NULL, err);
    if (rc == KB_OK)
        rc = db_exec(conn, "UPDATE learning_applications SET learning_id = $1::uuid "
                           "WHERE learning_id = $2::uuid", 2, p, NULL, err);
    if (rc == KB_OK)
        rc = db_exec(conn, "DELETE FROM learnings WHERE id = $2::uuid AND $1::uuid IS NOT NULL",
                     2, p, NULL, err);
    return rc;
}

/*
 * The dedup a run owed for these learnings (ids NULL: every learning of the
 * project) is done: delete its notes (kbpipe_pending, migration 009), in
 * the pass's transaction.
 */
static enum kb_code clear_owed(struct db_conn *conn, const char *project_id,
                               const char *const *ids, int n_ids, struct kb_err *err)
{
    struct kb_buf arr;
    kb_buf_init(&arr);
    if (ids != NULL) {
        load_array_open(&arr);
        for (int i = 0; i < n_ids; i++)
            load_array_add(&arr, ids[i]);
        load_array_close(&arr);
    }
    const char *p[] = { project_id, ids ? arr.data : NULL };
    enum kb_code rc = db_exec(conn,
                              "DELETE FROM kbpipe_pending WHERE what = 'dedup' AND "
                              "project_id = $1::uuid AND ($2::uuid[] IS NULL OR "
                              "learning_id = ANY($2::uuid[]))", 2, p, NULL, err);
    kb_buf_release(&arr);
    return rc;
}

/* See load.h. */
enum kb_code load_dedup(struct db_conn *conn, const char *project_id, const char *const *ids,
                        int n_ids, const struct load_dedup_opts *o, FILE *out,
                        struct load_dedup_result *result, struct kb_err *err)
{
    memset(result, 0, sizeof *result);
    struct candidate *c = NULL;
    float *m = NULL;
    int n = 0;
    if (ids != NULL && n_ids == 0)
        return KB_OK;
    /* merging also folds in duplicates an earlier pass only marked */
    int with_marked = o->action == LOAD_DEDUP_MERGE;
    enum kb_code rc = fetch(conn, project_id, ids, n_ids, with_marked, &c, &m, &n, err);
    if (rc != KB_OK)
        return rc;
    struct pair *pairs = NULL;
    int n_pairs = 0, cap = 0;
    struct embed_pair *ep = NULL;
    int n_ep = embed_similar_pairs(m, n, KB_LOAD_DIM, (float)o->threshold, &ep);
    for (int k = 0; k < n_ep; k++) {
        if (n_pairs == cap) {
            cap = cap ? cap * 2 : 64;
            pairs = kb_xrealloc(pairs, (size_t)cap * sizeof *pairs);
        }
        memset(&pairs[n_pairs], 0, sizeof pairs[n_pairs]);
        pairs[n_pairs].a = ep[k].i;
        pairs[n_pairs].b = ep[k].j;
        pairs[n_pairs].similarity = ep[k].similarity;
        n_pairs++;
    }
    free(ep);
    free(m);
    char threshold[32];
    snprintf(threshold, sizeof threshold, "%.6f", o->threshold);
    /* the whole project (ids NULL): every learning that could match is a
     * candidate, compared in-set already, so no find_similar_learnings
     * query could add a pair */
    if (ids != NULL)
        rc = db_matches(conn, project_id, c, n, threshold, with_marked, &pairs, &n_pairs, &cap,
                        err);
    if (rc == KB_OK && n_pairs > 1)
        qsort(pairs, (size_t)n_pairs, sizeof *pairs, by_similarity_desc);
    result->n_candidates = n;
    /* the whole pass is one transaction with the deletion of its notes: a
     * pass cut short marks nothing and leaves its debt to the next run,
     * which then ends exactly as one uninterrupted pass would */
    int is_settling = o->action != LOAD_DEDUP_REPORT || ids != NULL;
    if (rc == KB_OK)
        rc = db_begin(conn, err);
    for (int k = 0; rc == KB_OK && k < n_pairs; k++) {
        struct pair *pr = &pairs[k];
        struct candidate *a = &c[pr->a], *b = pr->b >= 0 ? &c[pr->b] : NULL;
        if (a->is_done || (b && b->is_done))
            continue;
        const char *b_id = b ? b->id : pr->other_id;
        const char *b_title = b ? b->title : pr->other_title;
        const char *b_created = b ? b->created : pr->other_created;
        int b_verified = b ? b->is_verified : pr->other_verified;
        /* keeper: the verified one, else the older */
        int a_keeps = a->is_verified != b_verified ? a->is_verified
                      : strcmp(a->created, b_created) != 0 ? strcmp(a->created, b_created) < 0
                                                           : strcmp(a->id, b_id) < 0;
        const char *keeper = a_keeps ? a->id : b_id, *dup = a_keeps ? b_id : a->id;
        const char *keeper_title = a_keeps ? a->title : b_title;
        const char *dup_title = a_keeps ? b_title : a->title;
        result->n_pairs++;
        if (out)
            fprintf(out, "%.3f  %s  \"%.60s\"  duplicates  %s  \"%.60s\"\n", pr->similarity,
                    dup, dup_title, keeper, keeper_title);
        if (o->action != LOAD_DEDUP_REPORT) {
            rc = apply(conn, o->action, keeper, dup, pr->similarity, err);
            if (rc == KB_OK && o->action == LOAD_DEDUP_MARK)
                result->n_marked++;
            if (rc == KB_OK && o->action == LOAD_DEDUP_MERGE)
                result->n_merged++;
        }
        /* the duplicate is out of play; a candidate keeper stays available */
        if (a_keeps) {
            if (b)
                b->is_done = 1;
        } else {
            a->is_done = 1;
        }
    }
    if (rc == KB_OK && is_settling)
        rc = clear_owed(conn, project_id, ids, n_ids, err);
    if (rc == KB_OK && kb_fault("load.dedup"))
        rc = KB_FAIL(err, KB_E_DB, NULL, "fault injected at load.dedup");
    if (rc == KB_OK)
        rc = db_commit(conn, err);
    else
        db_rollback(conn);
    for (int k = 0; k < n_pairs; k++)
        free(pairs[k].other_title);
    free(pairs);
    for (int i = 0; i < n; i++)
        free(c[i].title);
    free(c);
    return rc;
}

/* See load.h. */
enum kb_code load_dedup_nearest(struct db_conn *conn, const char *project_id, float **sims,
                                int *n_out, struct kb_err *err)
{
    struct candidate *c = NULL;
    float *m = NULL;
    int n = 0;
    /* the learnings the mark pass reads: not yet marked as a duplicate */
    enum kb_code rc = fetch(conn, project_id, NULL, 0, 0, &c, &m, &n, err);
    if (rc != KB_OK)
        return rc;
    for (int i = 0; i < n; i++)
        free(c[i].title);
    free(c);
    *sims = kb_xmalloc((size_t)(n ? n : 1) * sizeof **sims);
    embed_nearest_similarity(m, n, KB_LOAD_DIM, *sims);
    free(m);
    *n_out = n;
    return KB_OK;
}

/*
 * kbpipe-hash-v1: 0.70, calibrated on tests/data/embed pairs (near-duplicates
 * score 0.745 and up, related-but-distinct texts 0.503 and below; see
 * docs/loading.md, "Dedup").  Other models: 0.95, a conservative value for
 * dense embedding models that pipelines override.
 */
double load_dedup_default_threshold(const char *model)
{
    if (model && strcmp(model, "kbpipe-hash-v1") == 0)
        return 0.70;
    return 0.95;
}
