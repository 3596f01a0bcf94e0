/*
 * owed.c - the end of a run (--full deletions, the index rebuild) and what a
 * run owes after its last data commit (issue 13): the notes
 * in kbpipe_pending (migration 009) that a killed run leaves to the next
 * one, and the run's kbpipe_runs row with what tells a live run from a
 * dead one (its server backend, src/db/runs.c).
 *
 *   dedup  one note per learning a batch wrote, in the batch's transaction
 *          (batch.c); deleted by the dedup pass's transaction (dedup.c), or
 *          by a run that ends well (its pass ran, or it has none);
 *   full   a --full run's deletions, noted with the run row and deleted
 *          when they end (load_session_finish, below).
 * A session reads its pipeline's notes when it opens: owed learnings join
 * its dedup candidates, an owed --full makes it delete its unseen sources.
 * Notes are keyed like the run's lock (load_opts.lock_name): "NAME", or
 * "NAME#K/N" for a shard, so a shard reads and clears only its own notes,
 * never those of another shard that may be running or was killed.
 */
#include "load/load_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * What killed runs of this pipeline left owed (kbpipe_pending, migration
 * 009): the learnings still to dedup join this run's candidates, and an
 * unfinished --full makes this run delete its unseen sources too.
 */
enum kb_code load_owed_read(struct load_session *s, struct kb_err *err)
{
    const char *p[] = { s->opts.lock_name, s->project_id };
    struct db_rows *rows;
    enum kb_code rc = db_exec(s->conn,
                              "SELECT what, learning_id::text FROM kbpipe_pending "
                              "WHERE pipeline = $1 AND project_id = $2::uuid ORDER BY id",
                              2, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    for (int r = 0; r < db_rows_count(rows); r++) {
        if (strcmp(db_rows_get(rows, r, 0), "full") == 0) {
            s->owes_full = 1;
        } else {
            load_session_touch(s, db_rows_get(rows, r, 1));
            s->n_owed_dedup++;
        }
    }
    db_rows_free(rows);
    if (s->n_owed_dedup > 0)
        log_warn("pipeline %s: an earlier run stopped before the dedup pass over %ld "
                 "learning(s) it wrote; this run dedups them too", s->opts.lock_name,
                 s->n_owed_dedup);
    if (s->owes_full)
        log_warn("pipeline %s: an earlier --full run stopped before its deletions; "
                 "this run deletes the sources it does not see", s->opts.lock_name);
    return KB_OK;
}

/*
 * The run's kbpipe_runs row (with host, pid and its server backend: how a
 * later run tells a dead run from a live one, see src/db/runs.c) and, for
 * a --full run, the note that deletions are owed: one statement, so one
 * transaction and one round trip (it was BEGIN, INSERT, COMMIT).
 *
 * Its commit does not wait for the WAL flush (synchronous_commit off for
 * this transaction only, set_config(..., true)): the row and the note
 * still commit atomically, and the server writes its WAL in order, so
 * they are on disk before any later commit of this run that waits for its
 * flush (every batch, the run row's close).  A server crash can lose them
 * only together with everything the run did after them, i.e. nothing:
 * a run that wrote nothing durable leaves no row to close and no
 * deletions owed (the --full deletions come after the batches).  The
 * commit's fsync was the largest server time of an unchanged tiny run
 * (3.9-8 ms; docs/loading.md (4)).
 */
enum kb_code load_run_record(struct load_session *s, struct kb_err *err)
{
    char pid[32];
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    /* keyed like the lock: a shard owes only its own deletions */
    const char *p[] = { s->opts.pipeline, s->project_id, host, pid, s->opts.lock_name,
                        s->opts.is_full ? "t" : "f" };
    struct db_rows *rows;
    enum kb_code rc = db_exec(s->conn,
                              "WITH o AS (SELECT set_config('synchronous_commit', 'off', true)),"
                              " r AS (INSERT INTO kbpipe_runs (pipeline, project_id, host, pid,"
                              "  backend_pid) SELECT $1, $2::uuid, $3, $4::int, pg_backend_pid()"
                              "  FROM o RETURNING id),"
                              " n AS (INSERT INTO kbpipe_pending (pipeline, project_id, what)"
                              "  SELECT $5, $2::uuid, 'full' WHERE $6::bool"
                              "  ON CONFLICT DO NOTHING)"
                              " SELECT id FROM r",
                              6, p, &rows, err);
    if (rc != KB_OK) {
        s->run_id = 0;
        return rc;
    }
    s->run_id = atol(db_rows_get(rows, 0, 0));
    db_rows_free(rows);
    return KB_OK;
}

void load_session_touch(struct load_session *s, const char *id)
{
    if (s->n_touched == s->cap_touched) {
        s->cap_touched = s->cap_touched ? s->cap_touched * 2 : 64;
        s->touched = kb_xrealloc(s->touched, (size_t)s->cap_touched * sizeof *s->touched);
    }
    s->touched[s->n_touched++] = kb_xstrdup(id);
}

/* Delete this run's notes of what of `what` ("dedup", "full") it owed. */
enum kb_code load_owed_clear(struct load_session *s, const char *what, struct kb_err *err)
{
    const char *p[] = { s->opts.lock_name, s->project_id, what };
    return db_exec(s->conn,
                   "DELETE FROM kbpipe_pending WHERE pipeline = $1 AND project_id = $2::uuid "
                   "AND what = $3", 3, p, NULL, err);
}

int load_session_owes_full(const struct load_session *s) { return s->owes_full; }


/* Delete up to 5000 sources (a uuid[] literal) with their chunks, in one transaction. */
static enum kb_code delete_sources(struct load_session *s, const char *ids, int n,
                                   struct kb_err *err)
{
    if (s->opts.is_dry_run) {
        s->counts.sources_deleted += n;
        return KB_OK;
    }
    const char *p[] = { ids };
    struct db_rows *rows;
    enum kb_code rc = db_begin(s->conn, err);
    if (rc == KB_OK)
        rc = db_exec(s->conn,
                     "WITH c AS (DELETE FROM knowledge_chunks WHERE source_id = ANY($1::uuid[]) "
                     "RETURNING 1) SELECT count(*) FROM c", 1, p, &rows, err);
    if (rc == KB_OK) {
        s->counts.chunks_deleted += atol(db_rows_get(rows, 0, 0));
        db_rows_free(rows);
        rc = db_exec(s->conn,
                     "WITH d AS (DELETE FROM knowledge_sources WHERE id = ANY($1::uuid[]) "
                     "RETURNING 1) SELECT count(*) FROM d", 1, p, &rows, err);
    }
    if (rc == KB_OK) {
        s->counts.sources_deleted += atol(db_rows_get(rows, 0, 0));
        db_rows_free(rows);
        rc = db_commit(s->conn, err);
    }
    if (rc != KB_OK)
        db_rollback(s->conn);
    return rc;
}

/* The ids (uuid text, 36 bytes each, back to back) of the stored sources
 * this scan did not see, of this shard. */
static enum kb_code collect_unseen(struct load_session *s, const char *const *cols, void *ctx,
                                   struct kb_err *err)
{
    (void)err;
    struct kb_buf *ids = ctx;
    unsigned char key[16];
    load_source_key(cols[0], cols[1], key);
    const struct source_entry *e = load_table_find(s, key);
    if (e != NULL && e->state == SRC_STORED && load_key_in_shard(s, key) && strlen(cols[3]) == 36)
        kb_buf_append(ids, cols[3], 36);
    return KB_OK;
}

/*
 * Delete the pipeline's stored sources this (complete) scan did not see.
 * The table keeps no row ids, so the stored sources are read again, row by
 * row; the ids to delete are collected first (nothing else can be sent
 * while the connection streams), 36 bytes per source going away, and
 * deleted in transactions of at most 5000 sources.
 */
static enum kb_code delete_unseen(struct load_session *s, struct kb_err *err)
{
    struct kb_buf ids, part;
    kb_buf_init(&ids);
    kb_buf_init(&part);
    enum kb_code rc = load_each_stored_source(s, 0, collect_unseen, &ids, err);
    size_t n_ids = ids.len / 36;
    for (size_t i = 0; rc == KB_OK && i < n_ids; i += 5000) {
        load_array_open(&part);
        size_t end = i + 5000 < n_ids ? i + 5000 : n_ids;
        for (size_t k = i; k < end; k++) {
            char id[37];
            memcpy(id, ids.data + k * 36, 36);
            id[36] = '\0';
            load_array_add(&part, id);
        }
        load_array_close(&part);
        rc = delete_sources(s, part.data, (int)(end - i), err);
    }
    kb_buf_release(&part);
    kb_buf_release(&ids);
    return rc;
}

enum kb_code load_session_finish(struct load_session *s, int full, struct kb_err *err)
{
    enum kb_code rc = load_session_finish_deletions(s, full, err);
    if (rc == KB_OK)
        rc = load_session_finish_index(s, err);
    return rc;
}

/* See load.h. */
enum kb_code load_session_finish_deletions(struct load_session *s, int full,
                                           struct kb_err *err)
{
    enum kb_code rc = KB_OK;
    if (kb_fault("load.finish"))
        return KB_FAIL(err, KB_E_DB, NULL, "fault injected at load.finish");
    if (full)
        rc = delete_unseen(s, err);
    if (rc == KB_OK && full && !s->opts.is_dry_run)
        rc = load_owed_clear(s, "full", err);
    return rc;
}

/* See load.h. */
enum kb_code load_session_finish_index(struct load_session *s, struct kb_err *err)
{
    if (s->index_dropped && !s->opts.is_dry_run)
        return load_index_rebuild(s, err);
    return KB_OK;
}
