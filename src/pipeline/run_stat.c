/*
 * run_stat.c - the stat pre-check of a run (issue 14): a file whose stat
 * (size, mtime and ctime in ns, inode, device) and settings are those the
 * last run recorded, and whose stored sources still have the doc hashes
 * recorded with it, is skipped without being opened.  Content hashing
 * stays the truth: a changed stat makes the file be read and hashed, and
 * an equal document hash still means unchanged (the stat is recorded
 * again).  `--checksum` reads everything.
 *
 * Files sources are checked file by file, through the reader's hook
 * (ingest_stat_hook); a CSV file or an issue export (one file, many
 * sources) is checked whole before its reader opens.  A stat recorded
 * when the file's mtime or ctime was not strictly older than the run's
 * start (CLOCK_REALTIME_COARSE, the clock file times come from) is stored
 * as racy and never trusted: git's "racily clean" case, a second write in
 * the same clock tick leaving the stat equal.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline_int.h"

/* Everything that shapes the documents of source si besides the file's
 * bytes, hashed: a changed pipeline re-reads its files. */
static void settings_hash(struct run *r, int si, const char *extra, char out[65])
{
    const struct ingest_source *s = &r->p->sources[si];
    struct kb_buf b;
    kb_buf_init(&b);
    kb_buf_printf(&b, "kbpipe-stat-v1\n%s\n%s\n%d\n%d\n%s\n", r->chunker_sig, r->model,
                  (int)s->type, (int)s->target, extra ? extra : "");
    if (s->type == INGEST_FILES) {
        const struct ingest_files_opts *o = &s->u.files;
        kb_buf_printf(&b, "%ld %d %d %d %d\n", o->max_file_size, (int)o->on_invalid_utf8,
                      o->front_matter, (int)o->format, o->max_pages);
        kb_buf_printf(&b, "drop %d:", o->drop.v ? o->drop.n : -1);
        for (int i = 0; o->drop.v && i < o->drop.n; i++)
            kb_buf_printf(&b, "%s\x01", o->drop.v[i]);
    } else if (s->type == INGEST_CSV) {
        const struct ingest_csv_opts *o = &s->u.csv;
        const struct ingest_csv_columns *c = &o->columns;
        kb_buf_printf(&b, "%d %d %d %d %ld\n", o->delimiter, o->quote, o->tags_separator,
                      (int)o->on_invalid_utf8, o->max_record_size);
        const char *cols[] = { c->title, c->content, c->url, c->author, c->learning_type,
                               c->category, c->tags, c->confidence_score, c->impact_level };
        for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
            kb_buf_printf(&b, "%s\x01", cols[i] ? cols[i] : "\x02");
        for (int i = 0; i < c->metadata.n; i++)
            kb_buf_printf(&b, "m %s\x01", c->metadata.v[i]);
        for (int i = 0; i < o->key.n; i++)
            kb_buf_printf(&b, "k %s\x01", o->key.v[i]);
    } else if (s->type == INGEST_GITHUB_ISSUES) {
        const struct ingest_issues_opts *o = &s->u.issues;
        kb_buf_printf(&b, "%s\x01%s\x01%d %d %d %ld\n", o->comments_path ? o->comments_path : "",
                      o->repo ? o->repo : "", (int)o->format, o->include_pull_requests,
                      o->upsert_issues, o->max_record_size);
    }
    chunk_hash_hex(b.data, b.len, out);
    kb_buf_release(&b);
}

/* 1 when a stat taken now may not be trusted next time (see the top). */
static int is_racy(const struct run *r, const struct ingest_file_stat *st)
{
    return st->mtime_ns >= r->stat_start_ns || st->ctime_ns >= r->stat_start_ns;
}

static void to_load_stat(const struct ingest_file_stat *in, struct load_file_stat *out)
{
    out->size = in->size;
    out->mtime_ns = in->mtime_ns;
    out->ctime_ns = in->ctime_ns;
    out->inode = in->inode;
    out->device = in->device;
}

/* See pipeline_int.h. */
enum kb_code run_stat_open(struct run *r, struct kb_err *err)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    r->stat_start_ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    r->settings = kb_xcalloc((size_t)(r->p->n_sources ? r->p->n_sources : 1),
                             sizeof *r->settings);
    int any = 0;
    for (int si = 0; si < r->p->n_sources; si++) {
        enum ingest_type t = r->p->sources[si].type;
        if (t == INGEST_FILES || t == INGEST_CSV)
            settings_hash(r, si, NULL, r->settings[si]);
        any |= t == INGEST_FILES || t == INGEST_CSV || t == INGEST_GITHUB_ISSUES;
    }
    if (!any)
        return KB_OK;
    /* the writer thread has not started: the session's connection is free */
    return load_filestats_read(r->conn, load_session_project_id(r->sess), r->lock_name,
                               &r->filestats, err);
}

static int one_file_stat(struct run *r, int si, struct ingest_file_stat *fst);

/* The reader's hook (files sources): skip an unchanged file, else remember
 * its stat for the document it is about to become. */
static int stat_hook(void *arg, const char *path, const char *source_id,
                     const struct ingest_file_stat *fst)
{
    struct run *r = arg;
    int si = r->stat_si;
    const char *name = r->p->sources[si].name;
    struct load_file_stat st;
    to_load_stat(fst, &st);
    const char *sid, *digest;
    long n;
    if (!r->args->is_checksum &&
        load_filestats_match(r->filestats, name, path, &st, r->settings[si], &sid, &digest,
                             &n) &&
        sid && strcmp(sid, source_id) == 0 &&
        load_source_stored_unseen(r->sess, "file", source_id, digest)) {
        if (r->is_stat_probe)
            return 1;   /* the look-ahead: unchanged, no row to estimate */
        struct kb_origin at = { .path = path };
        load_source_check(r->sess, "file", source_id, digest, &at, NULL, 0);
        r->stats[si].read++;
        r->stats[si].unchanged++;
        r->stats[si].files_unread++;
        r->docs_done++;
        return 1;
    }
    if (r->is_stat_probe)
        return 0;
    snprintf(r->stat_path, sizeof r->stat_path, "%s", path);
    snprintf(r->stat_id, sizeof r->stat_id, "%s", source_id);
    r->stat_cur = *fst;
    r->has_stat_cur = strlen(path) + 1 < sizeof r->stat_path &&
                      strlen(source_id) + 1 < sizeof r->stat_id;
    return 0;
}

/* See pipeline_int.h. */
void run_stat_hook(struct run *r, int si, struct ingest_reader *rd)
{
    r->stat_si = si;
    r->has_stat_cur = 0;
    if (r->filestats && r->p->sources[si].type == INGEST_FILES)
        ingest_stat_hook(rd, stat_hook, r);
}

/* See pipeline_int.h. */
int run_stat_probe_begin(struct run *r, int si, struct ingest_reader *rd)
{
    int saved = r->stat_si;
    r->stat_si = si;
    r->is_stat_probe = 1;
    if (r->filestats && r->p->sources[si].type == INGEST_FILES)
        ingest_stat_hook(rd, stat_hook, r);
    return saved;
}

/* See pipeline_int.h. */
void run_stat_probe_end(struct run *r, int saved)
{
    r->stat_si = saved;
    r->is_stat_probe = 0;
}

/* 1 when the one-file source si's stat and settings are those recorded (no
 * look at the stored sources); *digest and *n the row's. */
static int one_file_matches(struct run *r, int si, struct ingest_file_stat *fst,
                            const char **digest, long *n)
{
    const struct ingest_source *s = &r->p->sources[si];
    const char *sid;
    struct load_file_stat st;
    if (r->args->is_checksum || r->filestats == NULL || !one_file_stat(r, si, fst))
        return 0;
    to_load_stat(fst, &st);
    return load_filestats_match(r->filestats, s->name, ingest_source_path(s), &st,
                                r->settings[si], &sid, digest, n) && sid == NULL;
}

/* See pipeline_int.h. */
enum kb_code run_stat_check_headers(struct run *r, struct kb_err *err)
{
    enum kb_code rc = KB_OK;
    for (int si = 0; si < r->p->n_sources; si++) {
        struct ingest_file_stat fst;
        const char *digest;
        long n;
        if (r->p->sources[si].type != INGEST_CSV || one_file_matches(r, si, &fst, &digest, &n))
            continue;   /* unchanged since a run read it whole: its header was right */
        enum kb_code crc = pipeline_check_csv_header(r->p, si, ".", err);
        if (rc == KB_OK)
            rc = crc;
    }
    if (rc == KB_E_CONFIG)
        pipeline_diags_print(r->p, stderr);
    return rc;
}

/* See pipeline_int.h. */
int run_stat_probe_file(struct run *r, int si)
{
    struct ingest_file_stat fst;
    const char *digest;
    long n;
    if (r->stats[si].files_unread > 0)
        return 1;   /* skipped whole by the scan */
    if (!one_file_matches(r, si, &fst, &digest, &n))
        return 0;
    struct kb_err ignored = { 0 };
    int is_match = 0;
    if (run_writer_idle(r, &ignored) != KB_OK ||
        load_sources_of_file(r->sess, r->conn, ingest_source_path(&r->p->sources[si]), digest,
                             n, 0, &is_match, &ignored) != KB_OK)
        return 0;
    return is_match;
}

/* See pipeline_int.h. */
void run_stat_document(struct run *r, int si, const struct kb_document *d, const char *doc_hash,
                       int is_queued)
{
    (void)is_queued;
    if (r->filestats == NULL || r->args->is_dry_run)
        return;
    enum ingest_type t = r->p->sources[si].type;
    if (t == INGEST_FILES) {
        if (!r->has_stat_cur || strcmp(r->stat_id, d->source_id) != 0 ||
            strcmp(r->stat_path, d->file_path ? d->file_path : "") != 0)
            return;
        struct load_file_stat st;
        to_load_stat(&r->stat_cur, &st);
        load_filestats_add(r->filestats, r->p->sources[si].name, r->stat_path, &st,
                           is_racy(r, &r->stat_cur), r->settings[si], d->source_id, doc_hash,
                           1);
        r->has_stat_cur = 0;
    } else if (t == INGEST_CSV || t == INGEST_GITHUB_ISSUES) {
        load_digest_add(&r->file_digest, d->source_type, d->source_id, doc_hash);
    }
}

/* The stat of a one-file source's file (and of an export's comments file,
 * folded into the settings); 0 when it cannot be stat'ed. */
static int one_file_stat(struct run *r, int si, struct ingest_file_stat *fst)
{
    const struct ingest_source *s = &r->p->sources[si];
    const char *path = ingest_source_path(s);
    if (path == NULL || !ingest_file_stat(path, fst))
        return 0;
    if (s->type == INGEST_GITHUB_ISSUES) {
        char extra[200] = "";
        struct ingest_file_stat cst;
        if (s->u.issues.comments_path) {
            if (!ingest_file_stat(s->u.issues.comments_path, &cst))
                return 0;
            if (is_racy(r, &cst))
                return 0;   /* a comments file written just now: never trusted */
            snprintf(extra, sizeof extra, "comments %lld %lld %lld %lld %lld", cst.size,
                     cst.mtime_ns, cst.ctime_ns, cst.inode, cst.device);
        }
        settings_hash(r, si, extra, r->settings[si]);
    }
    return 1;
}

/* See pipeline_int.h. */
enum kb_code run_stat_skip_file(struct run *r, int si, int *is_skipped, struct kb_err *err)
{
    *is_skipped = 0;
    r->has_file_stat = 0;
    memset(&r->file_digest, 0, sizeof r->file_digest);
    const struct ingest_source *s = &r->p->sources[si];
    if (r->filestats == NULL || (s->type != INGEST_CSV && s->type != INGEST_GITHUB_ISSUES))
        return KB_OK;
    if (!one_file_stat(r, si, &r->file_stat))
        return KB_OK;
    r->has_file_stat = 1;
    struct load_file_stat st;
    to_load_stat(&r->file_stat, &st);
    const char *sid, *digest;
    long n;
    if (r->args->is_checksum ||
        !load_filestats_match(r->filestats, s->name, ingest_source_path(s), &st,
                              r->settings[si], &sid, &digest, &n) || sid != NULL)
        return KB_OK;
    /* the session's connection belongs to the writer: wait until it idles */
    enum kb_code rc = run_writer_idle(r, err);
    int is_match = 0;
    if (rc == KB_OK)
        rc = load_sources_of_file(r->sess, r->conn, ingest_source_path(s), digest, n, 1,
                                  &is_match, err);
    if (rc != KB_OK || !is_match)
        return rc;
    r->stats[si].read += n;
    r->stats[si].unchanged += n;
    r->stats[si].files_unread++;
    r->docs_done += n;
    *is_skipped = 1;
    return KB_OK;
}

/* See pipeline_int.h. */
void run_stat_file_done(struct run *r, int si, int is_complete)
{
    const struct ingest_source *s = &r->p->sources[si];
    if (!r->has_file_stat || r->filestats == NULL || r->args->is_dry_run || !is_complete)
        return;
    char hex[65];
    load_digest_hex(&r->file_digest, hex);
    struct load_file_stat st;
    to_load_stat(&r->file_stat, &st);
    load_filestats_add(r->filestats, s->name, ingest_source_path(s), &st,
                       is_racy(r, &r->file_stat), r->settings[si], NULL, hex,
                       r->file_digest.n);
}

/* See pipeline_int.h. */
enum kb_code run_stat_store(struct run *r, struct kb_err *err)
{
    if (r->filestats == NULL || r->args->is_dry_run)
        return KB_OK;
    return load_filestats_write(r->conn, load_session_project_id(r->sess), r->lock_name,
                                r->filestats, err);
}
