/*
 * session.c - one run of one pipeline against the database: the lock, the
 * project, the kbpipe_runs row, and the table of the pipeline's stored
 * sources that decides, before anything is chunked or embedded, which
 * documents are unchanged.
 *
 * The source table is open addressing over 16-byte keys (BLAKE2b of
 * source_type NUL source_id); an entry keeps the first 16 bytes of the
 * stored doc_hash and the row's uuid: 49 bytes per stored source, so a
 * million sources cost about 64 MB.  Entries are marked seen during the
 * scan; `--full` deletes the stored ones never seen.
 */
#include "load/load_int.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void load_opts_defaults(struct load_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch_rows = 1000;
    o->index_strategy = LOAD_INDEX_AUTO;
    o->rebuild_ratio = 0.2;
    o->rebuild_min_rows = 1000;
    o->wait_for_lock = 1;
}

void load_source_key(const char *source_type, const char *source_id, unsigned char key[16])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 16);
    crypto_generichash_update(&st, (const unsigned char *)source_type, strlen(source_type) + 1);
    crypto_generichash_update(&st, (const unsigned char *)source_id, strlen(source_id));
    crypto_generichash_final(&st, key, 16);
}

static size_t slot_of(const unsigned char key[16], size_t cap)
{
    uint64_t h;
    memcpy(&h, key, 8);
    return (size_t)(h & (cap - 1));
}

struct source_entry *load_table_find(struct load_session *s, const unsigned char key[16])
{
    if (s->cap == 0)
        return NULL;
    for (size_t i = slot_of(key, s->cap);; i = (i + 1) & (s->cap - 1)) {
        struct source_entry *e = &s->table[i];
        if (e->state == 0)
            return NULL;
        if (memcmp(e->key, key, 16) == 0)
            return e;
    }
}

static void table_grow(struct load_session *s)
{
    size_t old_cap = s->cap;
    struct source_entry *old = s->table;
    s->cap = old_cap ? old_cap * 2 : 1024;
    s->table = kb_xcalloc(s->cap, sizeof *s->table);
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].state == 0)
            continue;
        size_t j = slot_of(old[i].key, s->cap);
        while (s->table[j].state != 0)
            j = (j + 1) & (s->cap - 1);
        s->table[j] = old[i];
    }
    free(old);
}

struct source_entry *load_table_insert(struct load_session *s, const unsigned char key[16])
{
    if ((s->used + 1) * 4 > s->cap * 3)
        table_grow(s);
    size_t i = slot_of(key, s->cap);
    while (s->table[i].state != 0) {
        if (memcmp(s->table[i].key, key, 16) == 0)
            return &s->table[i];
        i = (i + 1) & (s->cap - 1);
    }
    struct source_entry *e = &s->table[i];
    memcpy(e->key, key, 16);
    e->state = 3;
    s->used++;
    return e;
}

static int hex16(const char *hex, unsigned char out[16])
{
    size_t bin_len = 0;
    if (strlen(hex) < 32)
        return 0;
    return sodium_hex2bin(out, 16, hex, 32, NULL, &bin_len, NULL) == 0 && bin_len == 16;
}

static enum kb_code take_lock(struct load_session *s, struct kb_err *err)
{
    const char *p[] = { s->opts.lock_name };
    struct db_rows *rows;
    if (s->opts.wait_for_lock) {
        enum kb_code rc = db_exec(s->conn, "SELECT pg_try_advisory_lock(hashtext('kbpipe.run.' || $1))",
                                  1, p, &rows, err);
        if (rc != KB_OK)
            return rc;
        int got = strcmp(db_rows_get(rows, 0, 0), "t") == 0;
        db_rows_free(rows);
        if (got)
            return KB_OK;
        log_info("pipeline %s: another run holds its lock; waiting for it to finish",
                 s->opts.lock_name);
        return db_exec(s->conn, "SELECT pg_advisory_lock(hashtext('kbpipe.run.' || $1))", 1, p,
                       NULL, err);
    }
    enum kb_code rc = db_exec(s->conn, "SELECT pg_try_advisory_lock(hashtext('kbpipe.run.' || $1))",
                              1, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    int got = strcmp(db_rows_get(rows, 0, 0), "t") == 0;
    db_rows_free(rows);
    if (!got)
        return KB_FAIL(err, KB_E_DB, NULL,
                       "pipeline %s is already running (another kbpipe holds its lock); "
                       "wait for it, or run without --no-wait to queue behind it",
                       s->opts.lock_name);
    return KB_OK;
}

static void release_lock(struct load_session *s)
{
    const char *p[] = { s->opts.lock_name };
    struct kb_err ignored;
    db_exec(s->conn, "SELECT pg_advisory_unlock(hashtext('kbpipe.run.' || $1))", 1, p, NULL,
            &ignored);
}

/* Find the project by name, creating it (under a per-name lock) if missing. */
static enum kb_code find_project(struct load_session *s, struct kb_err *err)
{
    const char *p[] = { s->opts.project, s->opts.project_path ? s->opts.project_path : "" };
    struct db_rows *rows;
    enum kb_code rc = db_exec(s->conn, "SELECT id FROM projects WHERE name = $1", 1, p, &rows,
                              err);
    if (rc != KB_OK)
        return rc;
    if (db_rows_count(rows) > 0) {
        snprintf(s->project_id, sizeof s->project_id, "%s", db_rows_get(rows, 0, 0));
        db_rows_free(rows);
        return KB_OK;
    }
    db_rows_free(rows);
    if (s->opts.is_dry_run) {
        snprintf(s->project_id, sizeof s->project_id, "00000000-0000-0000-0000-000000000000");
        return KB_OK;
    }
    if ((rc = db_begin(s->conn, err)) != KB_OK)
        return rc;
    rc = db_exec(s->conn, "SELECT pg_advisory_xact_lock(hashtext('kbpipe.project.' || $1))", 1,
                 p, NULL, err);
    if (rc == KB_OK)
        rc = db_exec(s->conn,
                     "WITH found AS (SELECT id FROM projects WHERE name = $1), "
                     "made AS (INSERT INTO projects (name, path, description) "
                     "  SELECT $1, $2, 'created by kbpipe' WHERE NOT EXISTS (SELECT 1 FROM found) "
                     "  RETURNING id) "
                     "SELECT id FROM found UNION ALL SELECT id FROM made",
                     2, p, &rows, err);
    if (rc == KB_OK) {
        snprintf(s->project_id, sizeof s->project_id, "%s", db_rows_get(rows, 0, 0));
        db_rows_free(rows);
        rc = db_commit(s->conn, err);
    }
    if (rc != KB_OK)
        db_rollback(s->conn);
    return rc;
}

/* Load (source_type, source_id, doc_hash, id) of the pipeline's stored sources. */
static enum kb_code load_known_sources(struct load_session *s, struct kb_err *err)
{
    const char *p[] = { s->project_id, s->opts.pipeline };
    struct db_rows *rows;
    enum kb_code rc = db_exec(s->conn,
                              "SELECT source_type, source_id, coalesce(doc_hash, ''), id "
                              "FROM knowledge_sources WHERE project_id = $1 AND pipeline = $2",
                              2, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    int n = db_rows_count(rows);
    for (int i = 0; i < n; i++) {
        unsigned char key[16];
        load_source_key(db_rows_get(rows, i, 0), db_rows_get(rows, i, 1), key);
        struct source_entry *e = load_table_insert(s, key);
        e->state = 1;
        if (!hex16(db_rows_get(rows, i, 2), e->hash))
            memset(e->hash, 0, 16);
        load_uuid_parse(db_rows_get(rows, i, 3), e->id);
    }
    db_rows_free(rows);
    return KB_OK;
}

/* Width in bytes of an integer column (2, 4 or 8), for binary COPY. */
static enum kb_code int_width(struct load_session *s, const char *table, const char *col,
                              int *width, struct kb_err *err)
{
    const char *p[] = { table, col };
    struct db_rows *rows;
    enum kb_code rc = db_exec(s->conn,
                              "SELECT t.typlen FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                              "WHERE a.attrelid = to_regclass($1) AND a.attname = $2",
                              2, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    if (db_rows_count(rows) == 0) {
        db_rows_free(rows);
        return KB_FAIL(err, KB_E_DB, NULL,
                       "table %s has no column %s; run 'kbpipe migrate up' first", table, col);
    }
    *width = atoi(db_rows_get(rows, 0, 0));
    db_rows_free(rows);
    if (*width != 2 && *width != 4 && *width != 8)
        return KB_FAIL(err, KB_E_DB, NULL, "%s.%s is not an integer column; check the schema",
                       table, col);
    return KB_OK;
}

enum kb_code load_session_open(struct db_conn *conn, const struct load_opts *opts,
                               struct load_session **out, struct kb_err *err)
{
    *out = NULL;
    struct load_session *s = kb_xcalloc(1, sizeof *s);
    s->conn = conn;
    s->opts = *opts;
    if (s->opts.lock_name == NULL)
        s->opts.lock_name = s->opts.pipeline;
    if (s->opts.batch_rows <= 0)
        s->opts.batch_rows = 1000;
    struct db_rows *rows;
    enum kb_code rc = db_exec(conn, "SELECT to_regclass('kbpipe_runs') IS NOT NULL", 0, NULL,
                              &rows, err);
    if (rc == KB_OK) {
        int ok = strcmp(db_rows_get(rows, 0, 0), "t") == 0;
        db_rows_free(rows);
        if (!ok)
            rc = KB_FAIL(err, KB_E_DB, NULL,
                         "the schema is not migrated (no kbpipe_runs table); "
                         "run 'kbpipe migrate up' first");
    }
    if (rc != KB_OK) {
        free(s);
        return rc;
    }
    if ((rc = take_lock(s, err)) != KB_OK) {
        free(s);
        return rc;
    }
    if (rc == KB_OK)
        rc = find_project(s, err);
    if (rc == KB_OK)
        rc = int_width(s, "knowledge_chunks", "chunk_index", &s->int_width_chunk_index, err);
    if (rc == KB_OK)
        rc = int_width(s, "knowledge_chunks", "token_count", &s->int_width_token_count, err);
    if (rc == KB_OK)
        rc = load_known_sources(s, err);
    if (rc == KB_OK && (rc = db_exec(conn, "SELECT count(*) FROM knowledge_chunks", 0, NULL,
                                     &rows, err)) == KB_OK) {
        s->rows_at_start = atol(db_rows_get(rows, 0, 0));
        db_rows_free(rows);
    }
    if (rc == KB_OK)
        rc = load_index_pending(s, &s->index_dropped, err);
    if (rc == KB_OK && s->index_dropped)
        log_warn("an earlier run dropped the HNSW index and did not rebuild it; "
                 "this run rebuilds it when it finishes");
    if (rc == KB_OK && !s->opts.is_dry_run) {
        char pid[32];
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        snprintf(pid, sizeof pid, "%ld", (long)getpid());
        const char *p[] = { s->opts.pipeline, s->project_id, host, pid };
        rc = db_exec(conn,
                     "INSERT INTO kbpipe_runs (pipeline, project_id, host, pid) "
                     "VALUES ($1, $2, $3, $4) RETURNING id",
                     4, p, &rows, err);
        if (rc == KB_OK) {
            s->run_id = atol(db_rows_get(rows, 0, 0));
            db_rows_free(rows);
        }
    }
    if (rc != KB_OK) {
        release_lock(s);
        free(s->table);
        free(s);
        return rc;
    }
    *out = s;
    return KB_OK;
}

/* docs/scaling.md: first 8 bytes of the key, big-endian, mod N */
static int key_in_shard(const struct load_session *s, const unsigned char key[16])
{
    if (s->opts.shard_n <= 1)
        return 1;
    uint64_t h = 0;
    for (int i = 0; i < 8; i++)
        h = (h << 8) | key[i];
    return (int)(h % (uint64_t)s->opts.shard_n) == s->opts.shard_k - 1;
}

int load_in_shard(const struct load_session *s, const char *source_type, const char *source_id)
{
    unsigned char key[16];
    load_source_key(source_type, source_id, key);
    return key_in_shard(s, key);
}

int load_source_unchanged(struct load_session *s, const char *source_type,
                          const char *source_id, const char *doc_hash)
{
    unsigned char key[16], hash[16];
    load_source_key(source_type, source_id, key);
    struct source_entry *e = load_table_find(s, key);
    s->counts.sources_seen++;
    if (e == NULL) {
        e = load_table_insert(s, key);   /* new: state 3 (new + seen) */
        s->counts.sources_new++;
        return 0;
    }
    int same = hex16(doc_hash, hash) && e->state != 3 && memcmp(e->hash, hash, 16) == 0;
    if (e->state == 1)
        e->state = 2;
    if (same)
        s->counts.sources_unchanged++;
    else
        s->counts.sources_changed++;
    return same;
}

int load_source_is_stored(struct load_session *s, const char *source_type,
                          const char *source_id, const char *doc_hash)
{
    unsigned char key[16], hash[16];
    load_source_key(source_type, source_id, key);
    const struct source_entry *e = load_table_find(s, key);
    return e && e->state != 3 && hex16(doc_hash, hash) && memcmp(e->hash, hash, 16) == 0;
}

void load_session_set_read_conn(struct load_session *s, struct db_conn *conn)
{
    s->read_conn = conn;
}

void load_session_expect_rows(struct load_session *s, long rows) { s->rows_expected = rows; }

const struct load_counts *load_session_counts(const struct load_session *s)
{
    return &s->counts;
}

const char *load_session_project_id(const struct load_session *s) { return s->project_id; }

long load_session_run_id(const struct load_session *s) { return s->run_id; }

int load_session_touched_learnings(const struct load_session *s, const char *const **ids)
{
    *ids = (const char *const *)s->touched;
    return s->n_touched;
}

/* Delete the pipeline's stored sources this (complete) scan did not see. */
static enum kb_code delete_unseen(struct load_session *s, struct kb_err *err)
{
    struct kb_buf ids;
    kb_buf_init(&ids);
    enum kb_code rc = KB_OK;
    size_t i = 0;
    while (rc == KB_OK && i < s->cap) {
        load_array_open(&ids);
        int n = 0;
        for (; i < s->cap && n < 5000; i++) {
            struct source_entry *e = &s->table[i];
            if (e->state != 1 || !key_in_shard(s, e->key))
                continue;
            char text[37];
            static const char *hexd = "0123456789abcdef";
            int k = 0;
            for (int j = 0; j < 16; j++) {
                if (j == 4 || j == 6 || j == 8 || j == 10)
                    text[k++] = '-';
                text[k++] = hexd[e->id[j] >> 4];
                text[k++] = hexd[e->id[j] & 15];
            }
            text[k] = '\0';
            load_array_add(&ids, text);
            n++;
        }
        load_array_close(&ids);
        if (n == 0)
            break;
        if (s->opts.is_dry_run) {
            s->counts.sources_deleted += n;
            continue;
        }
        const char *p[] = { ids.data };
        struct db_rows *rows;
        rc = db_begin(s->conn, err);
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
    }
    kb_buf_release(&ids);
    return rc;
}

enum kb_code load_session_finish(struct load_session *s, int full, struct kb_err *err)
{
    enum kb_code rc = KB_OK;
    if (full)
        rc = delete_unseen(s, err);
    if (rc == KB_OK && s->index_dropped && !s->opts.is_dry_run)
        rc = load_index_rebuild(s, err);
    return rc;
}

enum kb_code load_session_close(struct load_session *s, const char *status,
                                const char *report_json, struct kb_err *err)
{
    enum kb_code rc = KB_OK;
    if (s->run_id > 0) {
        struct kb_buf counts;
        kb_buf_init(&counts);
        const struct load_counts *c = &s->counts;
        kb_buf_printf(&counts,
                      "{\"sources_seen\":%ld,\"sources_unchanged\":%ld,\"sources_changed\":%ld,"
                      "\"sources_new\":%ld,\"sources_deleted\":%ld,\"chunks_written\":%ld,"
                      "\"chunks_deleted\":%ld,\"learnings_written\":%ld,\"vectors_reused\":%ld,"
                      "\"batches\":%ld,\"index_rebuilt\":%s}",
                      c->sources_seen, c->sources_unchanged, c->sources_changed, c->sources_new,
                      c->sources_deleted, c->chunks_written, c->chunks_deleted,
                      c->learnings_written, c->vectors_reused, c->batches,
                      c->index_rebuilt ? "true" : "false");
        char run_id[32];
        snprintf(run_id, sizeof run_id, "%ld", s->run_id);
        const char *p[] = { run_id, status, counts.data, report_json };
        rc = db_exec(s->conn,
                     "UPDATE kbpipe_runs SET finished_at = now(), status = $2, "
                     "counts = $3::jsonb, report = $4::jsonb WHERE id = $1",
                     4, p, NULL, err);
        kb_buf_release(&counts);
    }
    release_lock(s);
    for (int i = 0; i < s->n_touched; i++)
        free(s->touched[i]);
    free(s->touched);
    free(s->table);
    free(s);
    return rc;
}
