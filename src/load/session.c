/*
 * session.c - one run of one pipeline against the database: the lock, the
 * project, the kbpipe_runs row, and the table of the pipeline's stored
 * sources that decides, before anything is chunked or embedded, which
 * documents are unchanged.
 *
 * The source table is open addressing (linear probing, load factor at most
 * 3/4) over 16-byte keys (BLAKE2b of source_type NUL source_id); an entry
 * is 32 bytes: the key, the first 15 bytes of the stored doc_hash and a
 * state.  The stored sources are read row by row (libpq single-row mode),
 * never as one result, and the table is sized once from their count, so a
 * session holds 32 x cap bytes with cap = 4/3 x sources + 1024: about 43
 * bytes per stored source (docs/loading.md, "Memory", has the measurement).
 *
 * Entries are marked seen during the scan.  Once seen, an entry's stored
 * hash is no longer needed, and its bytes hold where the source was first
 * seen instead (see struct seen_at), so a second document with the same
 * source_id in one run is rejected naming both origins.  `--full` reads the
 * stored sources again and deletes the ones never seen (owed.c).
 */
#include "load/load_int.h"

#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
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
    o->keep_for_other_rows = 10000;
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
    memcpy(&h, key + 8, 8);   /* bytes 0-7 pick the shard; 8-15 the slot */
    return (size_t)(h % cap);
}

struct source_entry *load_table_find(const struct load_session *s, const unsigned char key[16])
{
    if (s->cap == 0)
        return NULL;
    for (size_t i = slot_of(key, s->cap);; i = i + 1 == s->cap ? 0 : i + 1) {
        struct source_entry *e = &s->table[i];
        if (e->state == 0)
            return NULL;
        if (memcmp(e->key, key, 16) == 0)
            return e;
    }
}

/* Make room for n entries at load factor 3/4 (rehashing what is there). */
static void table_reserve(struct load_session *s, size_t n)
{
    if (n * 4 <= s->cap * 3)
        return;
    size_t old_cap = s->cap;
    struct source_entry *old = s->table;
    s->cap = n / 3 * 4 + 1024;
    s->table = kb_xcalloc(s->cap, sizeof *s->table);
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].state == 0)
            continue;
        size_t j = slot_of(old[i].key, s->cap);
        while (s->table[j].state != 0)
            j = j + 1 == s->cap ? 0 : j + 1;
        s->table[j] = old[i];
    }
    free(old);
}

struct source_entry *load_table_insert(struct load_session *s, const unsigned char key[16])
{
    if ((s->used + 1) * 4 > s->cap * 3)
        table_reserve(s, s->used < 1024 ? 2048 : s->used / 2 * 3);
    size_t i = slot_of(key, s->cap);
    while (s->table[i].state != 0) {
        if (memcmp(s->table[i].key, key, 16) == 0)
            return &s->table[i];
        i = i + 1 == s->cap ? 0 : i + 1;
    }
    struct source_entry *e = &s->table[i];
    memcpy(e->key, key, 16);
    e->state = SRC_NEW_SEEN;
    s->used++;
    return e;
}

/* The first KB_SRC_HASH bytes of a hex doc hash; 0 when it is not hex. */
static int hash_prefix(const char *hex, unsigned char out[KB_SRC_HASH])
{
    size_t bin_len = 0;
    if (strlen(hex) < 2 * KB_SRC_HASH)
        return 0;
    return sodium_hex2bin(out, KB_SRC_HASH, hex, 2 * KB_SRC_HASH, NULL, &bin_len, NULL) == 0 &&
           bin_len == KB_SRC_HASH;
}

static void release_lock(struct load_session *s)
{
    const char *p[] = { s->opts.lock_name };
    struct kb_err ignored;
    db_exec(s->conn, "SELECT pg_advisory_unlock(hashtext('kbpipe.run.' || $1))", 1, p, NULL,
            &ignored);
}

/* Width in bytes (2, 4 or 8) of an integer column of knowledge_chunks, for binary COPY. */
#define KB_INT_WIDTH_SQL(col) "(SELECT t.typlen FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid" \
    " WHERE a.attrelid = to_regclass('knowledge_chunks') AND a.attname = '" col "')"

static enum kb_code check_width(const char *value, const char *col, int *width,
                                struct kb_err *err)
{
    if (*value == '\0')
        return KB_FAIL(err, KB_E_DB, NULL, "table knowledge_chunks has no column %s; run "
                       "'kbpipe migrate up' first", col);
    *width = atoi(value);
    if (*width != 2 && *width != 4 && *width != 8)
        return KB_FAIL(err, KB_E_DB, NULL, "knowledge_chunks.%s is not an integer column; "
                       "check the schema", col);
    return KB_OK;
}

/*
 * The session's first statement, one round trip for what used to take
 * six: the connection's setup and extension check (DB_SESSION_COLUMNS,
 * whose SET is harmless on a connection db_connect set up already),
 * whether the schema has migration 009 (kbpipe_pending), the
 * pipeline's (or shard's) advisory lock (tried), the widths of the two
 * integer columns binary COPY writes, and the project's id and text search
 * configuration (*has_project 0 when there is none yet).  If another run
 * holds the lock: wait (saying so) or fail (--no-wait); after a wait the
 * project is read again by find_project, since the run that held the lock
 * may have changed it.
 */
static enum kb_code open_checks(struct load_session *s, int *has_project, struct kb_err *err)
{
    const char *p[] = { s->opts.lock_name, s->opts.project };
    struct db_rows *rows;
    *has_project = 0;
    /* columns 6-8: the session's setup and extension check (db.h), last so
     * that a message quoting the query shows its start; the run's connection
     * is deferred (cmd_run.c), so this is its first round trip */
    enum kb_code rc = db_exec(s->conn,
                              "SELECT to_regclass('kbpipe_pending') IS NOT NULL,"
                              " pg_try_advisory_lock(hashtext('kbpipe.run.' || $1)),"
                              " coalesce(" KB_INT_WIDTH_SQL("chunk_index") "::text, ''),"
                              " coalesce(" KB_INT_WIDTH_SQL("token_count") "::text, ''),"
                              " pr.id, pr.search_language::oid, " DB_SESSION_COLUMNS
                              " FROM (SELECT 1) one LEFT JOIN projects pr ON pr.name = $2",
                              2, p, &rows, err);
    if (rc != KB_OK && strstr(err->msg, "does not exist"))   /* no projects table */
        return KB_FAIL(err, KB_E_DB, NULL,
                       "the schema is not migrated (%.200s); run 'kbpipe migrate up' first",
                       err->msg);
    if (rc != KB_OK)
        return rc;
    int has_pending = strcmp(db_rows_get(rows, 0, 0), "t") == 0;
    int got = strcmp(db_rows_get(rows, 0, 1), "t") == 0;
    rc = db_session_verify(s->conn, rows, 6, err);   /* a missing extension first */
    if (rc == KB_OK && !has_pending)
        rc = KB_FAIL(err, KB_E_DB, NULL,
                     "the schema is not migrated (no kbpipe_pending table, migration 009); "
                     "run 'kbpipe migrate up' first");
    if (rc == KB_OK)
        rc = check_width(db_rows_get(rows, 0, 2), "chunk_index",
                         &s->int_width_chunk_index, err);
    if (rc == KB_OK)
        rc = check_width(db_rows_get(rows, 0, 3), "token_count",
                         &s->int_width_token_count, err);
    if (rc == KB_OK && got && !db_rows_isnull(rows, 0, 4)) {
        snprintf(s->project_id, sizeof s->project_id, "%s", db_rows_get(rows, 0, 4));
        s->search_config = (uint32_t)strtoul(db_rows_get(rows, 0, 5), NULL, 10);
        *has_project = 1;
    }
    db_rows_free(rows);
    if (rc != KB_OK) {
        if (got)
            release_lock(s);
        return rc;
    }
    if (got)
        return KB_OK;
    if (!s->opts.wait_for_lock)
        return KB_FAIL(err, KB_E_DB, NULL,
                       "pipeline %s is already running (another kbpipe holds its lock); "
                       "wait for it, or run without --no-wait to queue behind it",
                       s->opts.lock_name);
    /* shown at the default level: a waiting run must not look hung */
    log_warn("pipeline %s: another run holds its lock; waiting for it to finish "
             "(--no-wait exits instead)", s->opts.lock_name);
    const char *q[] = { s->opts.lock_name };
    return db_exec(s->conn, "SELECT pg_advisory_lock(hashtext('kbpipe.run.' || $1))", 1, q,
                   NULL, err);
}

/*
 * Find the project by name, creating it (under a per-name lock) if missing,
 * with the pipeline's path and description.  An existing project keeps its
 * description unless it has none, or only the placeholder an earlier
 * kbpipe wrote: several pipelines may name one project, and the first to
 * describe it wins (docs/pipelines.md, "project").
 */
static enum kb_code find_project(struct load_session *s, int is_known, struct kb_err *err)
{
    const char *desc = s->opts.project_description && *s->opts.project_description
                           ? s->opts.project_description : NULL;
    const char *p[] = { s->opts.project, s->opts.project_path ? s->opts.project_path : "",
                        desc };
    struct db_rows *rows = NULL;
    /* search_language: every row is written with its project's text search
     * configuration, so migration 008's AFTER INSERT trigger (kept as the
     * net for other writers) finds nothing to UPDATE.  is_known: open_checks
     * read both already */
    enum kb_code rc = is_known ? KB_OK
                      : db_exec(s->conn,
                                "SELECT id, search_language::oid FROM projects WHERE name = $1",
                                1, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    if (is_known || db_rows_count(rows) > 0) {
        if (!is_known) {
            snprintf(s->project_id, sizeof s->project_id, "%s", db_rows_get(rows, 0, 0));
            s->search_config = (uint32_t)strtoul(db_rows_get(rows, 0, 1), NULL, 10);
        }
        db_rows_free(rows);
        if (desc == NULL || s->opts.is_dry_run)
            return KB_OK;
        const char *q[] = { s->project_id, desc };
        return db_exec(s->conn,
                       "UPDATE projects SET description = $2 WHERE id = $1::uuid AND "
                       "(coalesce(description, '') IN ('', 'created by kbpipe'))",
                       2, q, NULL, err);
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
                     "WITH found AS (SELECT id, search_language FROM projects WHERE name = $1), "
                     "made AS (INSERT INTO projects (name, path, description) "
                     "  SELECT $1, $2, coalesce($3, 'created by kbpipe') "
                     "  WHERE NOT EXISTS (SELECT 1 FROM found) RETURNING id, search_language) "
                     "SELECT id, search_language::oid FROM found "
                     "UNION ALL SELECT id, search_language::oid FROM made",
                     3, p, &rows, err);
    if (rc == KB_OK) {
        snprintf(s->project_id, sizeof s->project_id, "%s", db_rows_get(rows, 0, 0));
        s->search_config = (uint32_t)strtoul(db_rows_get(rows, 0, 1), NULL, 10);
        db_rows_free(rows);
        rc = db_commit(s->conn, err);
    }
    if (rc != KB_OK)
        db_rollback(s->conn);
    return rc;
}

/*
 * The stored sources a session reads: the pipeline's own ($2), and with $3
 * those other pipelines of the project own, which this run may not take
 * over (docs/pipelines.md, "Ownership").  A source no pipeline owns (NULL:
 * loaded by other means) is no one's, and a pipeline may adopt it.
 */
#define STORED_FILTER "(pipeline = $2 OR ($3::bool AND pipeline IS NOT NULL))"

/*
 * Call fn for each stored source of the pipeline (with_others: and of the
 * other pipelines of the project), (source_type, source_id, doc_hash or
 * "", id, pipeline), reading one row at a time (libpq single-row mode):
 * no result ever holds the whole set, so memory does not grow with the
 * number of stored sources.  Stops at fn's first failure.
 */
enum kb_code load_each_stored_source(struct load_session *s, int with_others,
                                     enum kb_code (*fn)(struct load_session *s,
                                                        const char *const *cols, void *ctx,
                                                        struct kb_err *err),
                                     void *ctx, struct kb_err *err)
{
    const char *p[] = { s->project_id, s->opts.pipeline, with_others ? "t" : "f" };
    struct db_stream *st;
    enum kb_code rc = db_stream_open(s->conn,
                                     "SELECT source_type, source_id, coalesce(doc_hash, ''), id, "
                                     "coalesce(pipeline, '') FROM knowledge_sources "
                                     "WHERE project_id = $1 AND " STORED_FILTER,
                                     3, p, &st, err);
    const struct db_rows *row;
    int is_db_failure = 1;
    while (rc == KB_OK && (rc = db_stream_next(st, &row, err)) == KB_OK && row != NULL) {
        for (int r = 0; r < db_rows_count(row) && rc == KB_OK; r++) {
            const char *cols[5];
            for (int c = 0; c < 5; c++)
                cols[c] = db_rows_get(row, r, c);
            rc = fn(s, cols, ctx, err);
            is_db_failure = rc == KB_OK;
        }
    }
    db_stream_close(st);   /* after fn's failure: reads the rest, the statement must end */
    if (rc != KB_OK && is_db_failure)
        kb_err_prefix(err, "reading the stored sources");
    return rc;
}

/*
 * A source another pipeline owns: its entry's hash bytes hold the index
 * (2 bytes) of the owner's name in s->owners, a handful per project.
 */
static void owner_store(struct load_session *s, struct source_entry *e, const char *owner)
{
    uint16_t i = 0;
    while (i < s->n_owners && strcmp(s->owners[i], owner) != 0)
        i++;
    if (i == s->n_owners && s->n_owners < UINT16_MAX) {
        s->owners = kb_xrealloc(s->owners, (size_t)(s->n_owners + 1) * sizeof *s->owners);
        s->owners[s->n_owners++] = kb_xstrdup(owner);
    }
    memset(e->hash, 0, sizeof e->hash);
    memcpy(e->hash, &i, 2);
    e->state = SRC_FOREIGN;
}

static const char *owner_of(const struct load_session *s, const struct source_entry *e)
{
    uint16_t i;
    memcpy(&i, e->hash, 2);
    return i < s->n_owners ? s->owners[i] : "another pipeline";
}

static enum kb_code remember_stored(struct load_session *s, const char *const *cols, void *ctx,
                                    struct kb_err *err)
{
    (void)ctx;
    (void)err;
    unsigned char key[16];
    load_source_key(cols[0], cols[1], key);
    struct source_entry *e = load_table_insert(s, key);
    if (strcmp(cols[4], s->opts.pipeline) != 0) {
        owner_store(s, e, cols[4]);
        return KB_OK;
    }
    e->state = SRC_STORED;
    if (!hash_prefix(cols[2], e->hash))
        memset(e->hash, 0, sizeof e->hash);
    return KB_OK;
}

/*
 * The table of the pipeline's stored sources, and of those other pipelines
 * of the project own, sized once from their count; the count comes in one
 * statement with what src/load/index.c needs to know before the first
 * batch: whether knowledge_chunks or learnings hold any row (two LIMIT 1
 * probes; an empty store sets rows_at_start to 0, else it is counted when
 * index strategy auto first needs it, never on a run that writes nothing),
 * and whether an earlier run dropped the HNSW index without rebuilding it
 * (kbpipe_dropped_indexes has rows); and whether the session has anything
 * to close or read in the two statements that follow (*has_running: a
 * `running` row of the pipeline, which only a dead run or another shard
 * can have left, since this run holds the lock; *has_notes: kbpipe_pending
 * notes under the lock's name), so that an ordinary run sends neither:
 * closing abandoned runs parses pg_locks and pg_stat_activity, over 100 ms
 * of server time in a new backend on a loaded machine.
 */
static enum kb_code load_known_sources(struct load_session *s, int *has_running,
                                       int *has_notes, struct kb_err *err)
{
    const char *p[] = { s->project_id, s->opts.pipeline, "t", s->opts.lock_name };
    struct db_rows *rows;
    enum kb_code rc = db_exec(s->conn,
                              "SELECT (SELECT count(*) FROM knowledge_sources"
                              "  WHERE project_id = $1 AND " STORED_FILTER "),"
                              " EXISTS (SELECT 1 FROM knowledge_chunks)"
                              "  OR EXISTS (SELECT 1 FROM learnings),"
                              " EXISTS (SELECT 1 FROM kbpipe_dropped_indexes"
                              "  WHERE table_name = 'knowledge_chunks'),"
                              " EXISTS (SELECT 1 FROM kbpipe_runs"
                              "  WHERE status = 'running' AND pipeline = $2),"
                              " EXISTS (SELECT 1 FROM kbpipe_pending"
                              "  WHERE pipeline = $4 AND project_id = $1::uuid)",
                              4, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    size_t n = (size_t)atol(db_rows_get(rows, 0, 0));
    s->has_stored_rows = strcmp(db_rows_get(rows, 0, 1), "t") == 0;
    s->rows_at_start = s->has_stored_rows ? -1 : 0;
    s->rows_of_others = 0;
    s->index_dropped = strcmp(db_rows_get(rows, 0, 2), "t") == 0;
    *has_running = strcmp(db_rows_get(rows, 0, 3), "t") == 0;
    *has_notes = strcmp(db_rows_get(rows, 0, 4), "t") == 0;
    db_rows_free(rows);
    table_reserve(s, n + 1);
    return load_each_stored_source(s, 1, remember_stored, NULL, err);
}

static void session_free(struct load_session *s)
{
    for (int i = 0; i < s->n_touched; i++)
        free(s->touched[i]);
    free(s->touched);
    for (int i = 0; i < s->n_stems; i++)
        free(s->stems[i]);
    free(s->stems);
    for (int i = 0; i < s->n_owners; i++)
        free(s->owners[i]);
    free(s->owners);
    free(s->table);
    free(s);
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
    int has_project = 0;
    enum kb_code rc = open_checks(s, &has_project, err);
    if (rc != KB_OK) {
        free(s);
        return rc;
    }
    rc = find_project(s, has_project, err);
    int has_running = 0, has_notes = 0;
    if (rc == KB_OK)
        rc = load_known_sources(s, &has_running, &has_notes, err);
    if (rc == KB_OK && s->index_dropped)
        log_warn("an earlier run dropped the HNSW index and did not rebuild it; "
                 "this run rebuilds it when it finishes");
    if (rc == KB_OK && !s->opts.is_dry_run && has_running)
        rc = db_runs_close_abandoned(conn, s->opts.pipeline, 1, NULL, err);
    if (rc == KB_OK && has_notes)
        rc = load_owed_read(s, err);
    if (rc == KB_OK && !s->opts.is_dry_run)
        rc = load_run_record(s, err);
    if (rc != KB_OK) {
        release_lock(s);
        session_free(s);
        return rc;
    }
    *out = s;
    return KB_OK;
}

/* docs/scaling.md: first 8 bytes of the key, big-endian, mod N */
int load_key_in_shard(const struct load_session *s, const unsigned char key[16])
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
    return load_key_in_shard(s, key);
}

/*
 * Where a source was first seen, kept in the bytes of its entry's stored
 * hash (not needed once the source is seen):
 *   SIZE  DESCRIPTION
 *   2     index into s->stems (origin path minus a trailing source_id), or
 *         0xffff when the run has seen too many distinct paths
 *   1     1: the path is stem + source_id (a files source); 0: the stem
 *   4     line (0: none)
 *   4     row (0: none)
 * A CSV file or an export gives one stem for all its documents, a root of
 * a files source one for all its files: a handful per pipeline.
 */
#define SEEN_NO_STEM 0xffff

static void seen_at_store(struct load_session *s, struct source_entry *e, const char *source_id,
                          const struct kb_origin *at)
{
    memset(e->hash, 0, sizeof e->hash);
    uint16_t stem = SEEN_NO_STEM;
    unsigned char has_id = 0;
    uint32_t line = 0, row = 0;
    if (at && at->path) {
        size_t plen = strlen(at->path), ilen = strlen(source_id);
        has_id = ilen > 0 && plen >= ilen && strcmp(at->path + plen - ilen, source_id) == 0;
        size_t slen = has_id ? plen - ilen : plen;
        int i = 0;
        while (i < s->n_stems && !(strlen(s->stems[i]) == slen &&
                                   memcmp(s->stems[i], at->path, slen) == 0))
            i++;
        if (i == s->n_stems && s->n_stems < SEEN_NO_STEM) {
            s->stems = kb_xrealloc(s->stems, (size_t)(s->n_stems + 1) * sizeof *s->stems);
            s->stems[s->n_stems++] = kb_xstrndup(at->path, slen);
        }
        if (i < s->n_stems)
            stem = (uint16_t)i;
        line = at->line > 0 && at->line <= UINT32_MAX ? (uint32_t)at->line : 0;
        row = at->row > 0 && at->row <= UINT32_MAX ? (uint32_t)at->row : 0;
    }
    memcpy(e->hash, &stem, 2);
    e->hash[2] = has_id;
    memcpy(e->hash + 3, &line, 4);
    memcpy(e->hash + 7, &row, 4);
}

static void seen_at_format(const struct load_session *s, const struct source_entry *e,
                           const char *source_id, char *buf, size_t n)
{
    uint16_t stem;
    uint32_t line, row;
    memcpy(&stem, e->hash, 2);
    memcpy(&line, e->hash + 3, 4);
    memcpy(&row, e->hash + 7, 4);
    if (stem == SEEN_NO_STEM || stem >= s->n_stems) {
        snprintf(buf, n, "earlier in this run");
        return;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s%s", s->stems[stem], e->hash[2] ? source_id : "");
    struct kb_origin at = { .path = path, .line = (long)line, .row = (long)row };
    kb_origin_format(&at, buf, n);
}

enum load_source_verdict load_source_check(struct load_session *s, const char *source_type,
                                           const char *source_id, const char *doc_hash,
                                           const struct kb_origin *at, char *first_at,
                                           size_t first_len)
{
    unsigned char key[16], hash[KB_SRC_HASH];
    load_source_key(source_type, source_id, key);
    struct source_entry *e = load_table_find(s, key);
    if (e && e->state == SRC_FOREIGN) {
        if (first_at && first_len)
            snprintf(first_at, first_len, "%s", owner_of(s, e));
        return LOAD_SOURCE_FOREIGN;
    }
    if (e && e->state != SRC_STORED) {
        if (first_at && first_len)
            seen_at_format(s, e, source_id, first_at, first_len);
        return LOAD_SOURCE_DUPLICATE;
    }
    s->counts.sources_seen++;
    if (e == NULL) {
        e = load_table_insert(s, key);   /* SRC_NEW_SEEN */
        s->counts.sources_new++;
        seen_at_store(s, e, source_id, at);
        return LOAD_SOURCE_CHANGED;
    }
    int same = hash_prefix(doc_hash, hash) && memcmp(e->hash, hash, KB_SRC_HASH) == 0;
    e->state = same ? SRC_SEEN_SAME : SRC_SEEN_CHANGED;
    seen_at_store(s, e, source_id, at);
    if (same)
        s->counts.sources_unchanged++;
    else
        s->counts.sources_changed++;
    return same ? LOAD_SOURCE_UNCHANGED : LOAD_SOURCE_CHANGED;
}

int load_source_unchanged(struct load_session *s, const char *source_type,
                          const char *source_id, const char *doc_hash)
{
    return load_source_check(s, source_type, source_id, doc_hash, NULL, NULL, 0) ==
           LOAD_SOURCE_UNCHANGED;
}

int load_source_is_stored(struct load_session *s, const char *source_type,
                          const char *source_id, const char *doc_hash)
{
    unsigned char key[16], hash[KB_SRC_HASH];
    load_source_key(source_type, source_id, key);
    const struct source_entry *e = load_table_find(s, key);
    if (e == NULL)
        return 0;
    if (e->state == SRC_SEEN_SAME)
        return 1;   /* the scan found it unchanged; its hash bytes now hold its origin */
    return e->state == SRC_STORED && hash_prefix(doc_hash, hash) &&
           memcmp(e->hash, hash, KB_SRC_HASH) == 0;
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


/* See load.h. */
char *load_counts_json(const struct load_counts *c)
{
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}",
                          "sources_seen", (json_int_t)c->sources_seen,
                          "sources_unchanged", (json_int_t)c->sources_unchanged,
                          "sources_changed", (json_int_t)c->sources_changed,
                          "sources_new", (json_int_t)c->sources_new,
                          "sources_deleted", (json_int_t)c->sources_deleted,
                          "chunks_written", (json_int_t)c->chunks_written,
                          "chunks_deleted", (json_int_t)c->chunks_deleted,
                          "learnings_written", (json_int_t)c->learnings_written,
                          "vectors_reused", (json_int_t)c->vectors_reused,
                          "batches", (json_int_t)c->batches, "index_rebuilt", c->index_rebuilt);
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    char *out = kb_xstrdup(text ? text : "{}");   /* json_dumps fails only out of memory */
    free(text);
    return out;
}

enum kb_code load_session_close(struct load_session *s, const char *status,
                                const char *report_json, struct kb_err *err)
{
    enum kb_code rc = KB_OK;
    if (kb_fault("load.close"))
        rc = KB_FAIL(err, KB_E_DB, NULL, "fault injected at load.close");
    /* a run that ended well owes no dedup: the pass ran (and cleared its
     * notes) or the pipeline has none; the note goes with the run row's
     * close, in its statement (one round trip, one commit) */
    int is_done = strcmp(status, "succeeded") == 0 || strcmp(status, "partial") == 0;
    if (rc == KB_OK && s->run_id > 0) {
        char *counts = load_counts_json(&s->counts);
        char run_id[32];
        snprintf(run_id, sizeof run_id, "%ld", s->run_id);
        const char *p[] = { run_id, status, counts, report_json, s->opts.lock_name,
                            s->project_id, is_done ? "t" : "f" };
        rc = db_exec(s->conn,
                     "WITH d AS (DELETE FROM kbpipe_pending WHERE $7::bool AND pipeline = $5"
                     "  AND project_id = $6::uuid AND what = 'dedup')"
                     " UPDATE kbpipe_runs SET finished_at = now(), status = $2, "
                     "counts = $3::jsonb, report = $4::jsonb WHERE id = $1",
                     7, p, NULL, err);
        free(counts);
    }
    release_lock(s);
    session_free(s);
    return rc;
}
