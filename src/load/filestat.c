/*
 * filestat.c - what a run saw of each input file (kbpipe_file_stat,
 * migration 012), so the next run skips an unchanged file without opening
 * it, as git's index and rsync's quick check do: size, mtime and ctime in
 * nanoseconds, inode and device.
 *
 * The stat is a hint, never the truth: a stored row names the source (a
 * files source) or the digest of the sources (a CSV file, an issue export)
 * that the file produced, and the file is skipped only when
 * knowledge_sources still holds exactly those doc hashes.  So a row may be
 * written before (or without) the batch that stores its sources: if that
 * batch never commits, the hashes differ and the file is read again.
 *
 * The rows of a pipeline are read once, when the first file is checked,
 * into one sorted array (about 200 bytes a file, strings in an arena);
 * the rows to store are queued in the same struct and written at the end
 * of the run, 1,000 to a statement.
 */
#include "load/load_int.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct stat_row {
    const char *key;            /* stored rows: source name \x01 path (the sort key) */
    const char *source, *path;  /* queued rows */
    struct load_file_stat st;
    int is_racy;
    const char *settings, *source_id, *digest;   /* source_id NULL: many sources */
    long n_sources;
};

struct load_filestats {
    struct kb_arena *arena;
    struct stat_row *rows;      /* stored, sorted by key */
    int n_rows, cap_rows;
    struct stat_row *queued;    /* to store at the end of the run */
    int n_queued, cap_queued;
};

static int cmp_rows(const void *a, const void *b)
{
    return strcmp(((const struct stat_row *)a)->key, ((const struct stat_row *)b)->key);
}

static const char *row_key(struct kb_arena *a, const char *source, const char *path)
{
    return kb_arena_printf(a, "%s\x01%s", source, path);
}

/* What a stored and a queued row hold alike, the strings copied into fs's arena. */
static void row_fill(struct load_filestats *fs, struct stat_row *r,
                     const struct load_file_stat *st, int is_racy, const char *settings,
                     const char *source_id, const char *digest, long n_sources)
{
    r->st = *st;
    r->is_racy = is_racy;
    r->settings = kb_arena_strdup(fs->arena, settings);
    r->source_id = source_id ? kb_arena_strdup(fs->arena, source_id) : NULL;
    r->digest = kb_arena_strdup(fs->arena, digest);
    r->n_sources = n_sources;
}

/* One row of kbpipe_file_stat, the columns of load_filestats_read's SELECT
 * (only source_id may be NULL: migration 012), appended to fs->rows. */
static enum kb_code stored_row(const char *const *cols, void *ctx, struct kb_err *err)
{
    (void)err;
    struct load_filestats *fs = ctx;
    if (fs->n_rows == fs->cap_rows) {
        fs->cap_rows = fs->cap_rows ? fs->cap_rows * 2 : 256;
        fs->rows = kb_xrealloc(fs->rows, (size_t)fs->cap_rows * sizeof *fs->rows);
    }
    struct stat_row *r = &fs->rows[fs->n_rows++];
    const struct load_file_stat st = { atoll(cols[2]), atoll(cols[3]), atoll(cols[4]),
                                       atoll(cols[5]), atoll(cols[6]) };
    memset(r, 0, sizeof *r);
    r->key = row_key(fs->arena, cols[0], cols[1]);
    row_fill(fs, r, &st, strcmp(cols[7], "t") == 0, cols[8], cols[9], cols[10], atol(cols[11]));
    return KB_OK;
}

/* See load.h. */
enum kb_code load_filestats_read(struct db_conn *conn, const char *project_id,
                                 const char *pipeline, struct load_filestats **out,
                                 struct kb_err *err)
{
    struct load_filestats *fs = kb_xcalloc(1, sizeof *fs);
    fs->arena = kb_arena_new();
    *out = fs;
    if (project_id == NULL)
        return KB_OK;
    const char *p[] = { project_id, pipeline };
    enum kb_code rc = db_exec_each(conn,
                                   "SELECT source_name, path, size, mtime_ns, ctime_ns, inode, "
                                   "device, is_racy, settings, source_id, digest, n_sources "
                                   "FROM kbpipe_file_stat WHERE project_id = $1 AND pipeline = $2",
                                   2, p, stored_row, fs, err);
    if (rc != KB_OK) {
        kb_err_prefix(err, "reading the stored file stats (is migration 012 applied? run "
                      "kbpipe migrate up)");
        fs->n_rows = 0;
        return rc;
    }
    if (fs->n_rows > 0)   /* rows is NULL when none was read */
        qsort(fs->rows, (size_t)fs->n_rows, sizeof *fs->rows, cmp_rows);
    return KB_OK;
}

/* See load.h. */
int load_filestats_match(const struct load_filestats *fs, const char *source, const char *path,
                         const struct load_file_stat *st, const char *settings,
                         const char **source_id, const char **digest, long *n_sources)
{
    if (fs == NULL || fs->n_rows == 0)
        return 0;
    char *key = kb_xasprintf("%s\x01%s", source, path);
    struct stat_row probe = { .key = key };
    const struct stat_row *r = bsearch(&probe, fs->rows, (size_t)fs->n_rows, sizeof *fs->rows,
                                       cmp_rows);
    free(key);
    if (r == NULL || r->is_racy || strcmp(r->settings, settings) != 0 ||
        memcmp(&r->st, st, sizeof *st) != 0)
        return 0;
    *source_id = r->source_id;
    *digest = r->digest;
    *n_sources = r->n_sources;
    return 1;
}

/* See load.h. */
void load_filestats_add(struct load_filestats *fs, const char *source, const char *path,
                        const struct load_file_stat *st, int is_racy, const char *settings,
                        const char *source_id, const char *digest, long n_sources)
{
    if (fs->n_queued == fs->cap_queued) {
        fs->cap_queued = fs->cap_queued ? fs->cap_queued * 2 : 64;
        fs->queued = kb_xrealloc(fs->queued, (size_t)fs->cap_queued * sizeof *fs->queued);
    }
    struct stat_row *r = &fs->queued[fs->n_queued++];
    r->key = NULL;
    r->source = kb_arena_strdup(fs->arena, source);
    r->path = kb_arena_strdup(fs->arena, path);
    row_fill(fs, r, st, is_racy, settings, source_id, digest, n_sources);
}

/* Send rows [from, to) of the queue as one upsert over unnest'ed arrays. */
static enum kb_code write_some(struct db_conn *conn, const char *project_id,
                               const char *pipeline, const struct load_filestats *fs, int from,
                               int to, struct kb_err *err)
{
    struct kb_buf a[12];
    for (int c = 0; c < 12; c++) {
        kb_buf_init(&a[c]);
        load_array_open(&a[c]);
    }
    for (int i = from; i < to; i++) {
        const struct stat_row *r = &fs->queued[i];
        char nums[6][32];
        snprintf(nums[0], sizeof nums[0], "%lld", r->st.size);
        snprintf(nums[1], sizeof nums[1], "%lld", r->st.mtime_ns);
        snprintf(nums[2], sizeof nums[2], "%lld", r->st.ctime_ns);
        snprintf(nums[3], sizeof nums[3], "%lld", r->st.inode);
        snprintf(nums[4], sizeof nums[4], "%lld", r->st.device);
        snprintf(nums[5], sizeof nums[5], "%ld", r->n_sources);
        load_array_add(&a[0], r->source);
        load_array_add(&a[1], r->path);
        for (int c = 0; c < 5; c++)
            load_array_add(&a[2 + c], nums[c]);
        load_array_add(&a[7], r->is_racy ? "t" : "f");
        load_array_add(&a[8], r->settings);
        load_array_add(&a[9], r->source_id);
        load_array_add(&a[10], r->digest);
        load_array_add(&a[11], nums[5]);
    }
    for (int c = 0; c < 12; c++)
        load_array_close(&a[c]);
    const char *p[] = { project_id, pipeline, a[0].data, a[1].data, a[2].data, a[3].data,
                        a[4].data, a[5].data, a[6].data, a[7].data, a[8].data, a[9].data,
                        a[10].data, a[11].data };
    enum kb_code rc = db_exec(
        conn,
        "INSERT INTO kbpipe_file_stat AS f (project_id, pipeline, source_name, path, size, "
        "  mtime_ns, ctime_ns, inode, device, is_racy, settings, source_id, digest, n_sources) "
        "SELECT $1, $2, u.* FROM unnest($3::text[], $4::text[], $5::bigint[], $6::bigint[], "
        "  $7::bigint[], $8::bigint[], $9::bigint[], $10::bool[], $11::text[], $12::text[], "
        "  $13::text[], $14::int[]) AS u "
        "ON CONFLICT (project_id, pipeline, source_name, path) DO UPDATE SET "
        "  size = EXCLUDED.size, mtime_ns = EXCLUDED.mtime_ns, ctime_ns = EXCLUDED.ctime_ns, "
        "  inode = EXCLUDED.inode, device = EXCLUDED.device, is_racy = EXCLUDED.is_racy, "
        "  settings = EXCLUDED.settings, source_id = EXCLUDED.source_id, "
        "  digest = EXCLUDED.digest, n_sources = EXCLUDED.n_sources, recorded_at = now()",
        14, p, NULL, err);
    for (int c = 0; c < 12; c++)
        kb_buf_release(&a[c]);
    return rc;
}

/* See load.h. */
enum kb_code load_filestats_write(struct db_conn *conn, const char *project_id,
                                  const char *pipeline, struct load_filestats *fs,
                                  struct kb_err *err)
{
    if (fs == NULL || fs->n_queued == 0 || project_id == NULL)
        return KB_OK;
    enum kb_code rc = KB_OK;
    /* each (source, path) is queued at most once: a file met twice by one
     * files source is a duplicate source_id, rejected before it is queued
     * (were one queued twice, the upsert fails and the run only warns) */
    for (int i = 0; i < fs->n_queued && rc == KB_OK; i += 1000) {
        int to = i + 1000 < fs->n_queued ? i + 1000 : fs->n_queued;
        rc = write_some(conn, project_id, pipeline, fs, i, to, err);
    }
    if (rc != KB_OK)
        kb_err_prefix(err, "storing the file stats (the next run reads those files again)");
    fs->n_queued = 0;
    return rc;
}

/* See load.h. */
void load_filestats_free(struct load_filestats *fs)
{
    if (fs == NULL)
        return;
    kb_arena_free(fs->arena);
    free(fs->rows);
    free(fs->queued);
    free(fs);
}

/* ---- the digest of a file's sources ------------------------------------ */

/* See load.h.  Four 64-bit lanes, each the sum of the sources' BLAKE2b
 * lanes: the order of the sources does not matter. */
void load_digest_add(struct load_digest *d, const char *source_type, const char *source_id,
                     const char *doc_hash)
{
    crypto_generichash_state st;
    unsigned char h[32];
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const unsigned char *)source_type, strlen(source_type) + 1);
    crypto_generichash_update(&st, (const unsigned char *)source_id, strlen(source_id) + 1);
    crypto_generichash_update(&st, (const unsigned char *)doc_hash, strlen(doc_hash));
    crypto_generichash_final(&st, h, sizeof h);
    for (int i = 0; i < 4; i++) {
        uint64_t v;
        memcpy(&v, h + 8 * i, 8);
        d->lane[i] += v;
    }
    d->n++;
}

/* See load.h. */
void load_digest_hex(const struct load_digest *d, char out[65])
{
    snprintf(out, 65, "%016llx%016llx%016llx%016llx", (unsigned long long)d->lane[0],
             (unsigned long long)d->lane[1], (unsigned long long)d->lane[2],
             (unsigned long long)d->lane[3]);
}

/* See load.h. */
int load_source_stored_unseen(const struct load_session *s, const char *source_type,
                              const char *source_id, const char *doc_hash)
{
    unsigned char key[16], hash[KB_SRC_HASH];
    size_t bin_len = 0;
    load_source_key(source_type, source_id, key);
    const struct source_entry *e = load_table_find(s, key);
    return e && e->state == SRC_STORED && strlen(doc_hash) >= 2 * KB_SRC_HASH &&
           sodium_hex2bin(hash, KB_SRC_HASH, doc_hash, 2 * KB_SRC_HASH, NULL, &bin_len,
                          NULL) == 0 &&
           bin_len == KB_SRC_HASH && memcmp(e->hash, hash, KB_SRC_HASH) == 0;
}

struct file_rows {
    struct load_session *s;
    struct kb_arena *arena;
    const char **type, **id, **hash;
    long n, cap;
    struct load_digest dg;
};

/* One stored source of the file (source_type, source_id, doc_hash or ""),
 * this shard's, into fr and its digest. */
static enum kb_code collect_row(const char *const *cols, void *ctx, struct kb_err *err)
{
    (void)err;
    struct file_rows *fr = ctx;
    if (!load_in_shard(fr->s, cols[0], cols[1]))
        return KB_OK;   /* another shard's: neither in the digest nor marked */
    if (fr->n == fr->cap) {
        fr->cap = fr->cap ? fr->cap * 2 : 256;
        fr->type = kb_xrealloc(fr->type, (size_t)fr->cap * sizeof *fr->type);
        fr->id = kb_xrealloc(fr->id, (size_t)fr->cap * sizeof *fr->id);
        fr->hash = kb_xrealloc(fr->hash, (size_t)fr->cap * sizeof *fr->hash);
    }
    fr->type[fr->n] = kb_arena_strdup(fr->arena, cols[0]);
    fr->id[fr->n] = kb_arena_strdup(fr->arena, cols[1]);
    fr->hash[fr->n] = kb_arena_strdup(fr->arena, cols[2]);
    fr->n++;
    load_digest_add(&fr->dg, cols[0], cols[1], cols[2]);
    return KB_OK;
}

/* See load.h. */
enum kb_code load_sources_of_file(struct load_session *s, struct db_conn *conn,
                                  const char *file_path, const char *digest, long n_sources,
                                  int do_mark, int *is_match, struct kb_err *err)
{
    *is_match = 0;
    struct file_rows fr = { .s = s, .arena = kb_arena_new() };
    const char *p[] = { s->project_id, s->opts.pipeline, file_path };
    enum kb_code rc = db_exec_each(conn,
                                   "SELECT source_type, source_id, coalesce(doc_hash, '') "
                                   "FROM knowledge_sources WHERE project_id = $1 "
                                   "AND pipeline = $2 AND file_path = $3",
                                   3, p, collect_row, &fr, err);
    if (rc == KB_OK) {
        char hex[65];
        load_digest_hex(&fr.dg, hex);
        *is_match = fr.n == n_sources && strcmp(hex, digest) == 0;
        /* every source must still be this pipeline's, stored and not yet
         * seen in this run; else the file is read and the reader decides */
        for (long i = 0; i < fr.n && *is_match; i++)
            *is_match = load_source_stored_unseen(s, fr.type[i], fr.id[i], fr.hash[i]);
        struct kb_origin at = { .path = file_path };
        for (long i = 0; i < fr.n && *is_match && do_mark; i++)
            load_source_check(s, fr.type[i], fr.id[i], fr.hash[i], &at, NULL, 0);
    }
    kb_arena_free(fr.arena);
    free(fr.type);
    free(fr.id);
    free(fr.hash);
    return rc;
}
