/*
 * run_marks.c - the conductor's part in the marks of sources that keep
 * state between runs (ingest.h, "source state"; type: github): read them
 * from kbpipe_source_state for the reader before its first document, take
 * the reader's new ones when it reached its end, and store them all in one
 * transaction only after a run that succeeded with nothing rejected.  The
 * marks are keyed by the pipeline's lock name: its name, or "NAME#K/N" for
 * a shard, so each shard keeps its own.
 */
#include "pipeline_int.h"

static void give_one(void *arg, const char *key, const char *value)
{
    ingest_state_set(arg, key, value);
}

enum kb_code run_marks_give(struct run *r, const struct ingest_source *src,
                            struct ingest_reader *rd, struct kb_err *err)
{
    if (!ingest_source_has_state(src) || r->is_full)
        return KB_OK;
    /* the writer thread may be using r->conn once it was handed a batch
     * with sources, and run_flush_batch opens read_conn before that: so no
     * read_conn means no batch was written yet and r->conn is free */
    struct db_conn *conn = r->read_conn ? r->read_conn : r->conn;
    log_debug("source %s: marks read on %s", src->name,
              conn == r->read_conn ? "the read connection"
                                   : "the run's connection (no batch written yet)");
    return load_state_read(conn, load_session_project_id(r->sess), r->lock_name, src->name,
                           give_one, rd, err);
}

void run_marks_take(struct run *r, const struct ingest_source *src,
                    const struct ingest_reader *rd)
{
    const char *key, *value;
    for (int i = 0; ingest_state_get(rd, i, &key, &value); i++)
        load_marks_add(&r->marks, src->name, key, value);
}

enum kb_code run_marks_store(struct run *r, struct kb_err *err)
{
    if (r->args->is_dry_run || r->rejected > 0)
        return KB_OK;
    return load_state_write(r->conn, load_session_project_id(r->sess), r->lock_name, &r->marks,
                            err);
}
