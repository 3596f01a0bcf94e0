/*
 * cmd_run.c - `kbpipe run` and `kbpipe plan`: the main job, end to end.
 *
 *   pipeline YAML -> sources -> documents -> unchanged? skip -> chunks
 *     -> batch -> reuse stored vectors -> embed the rest -> normalize
 *     -> flush (one transaction per batch) -> ... -> dedup the learnings
 *     the run touched -> --full deletions, index rebuild -> report
 *
 * Per document the reader, chunker and hasher work in one arena that is
 * reset after the document; the batch copies what it keeps, so memory is
 * bounded by the batch size, never by the corpus.  This file translates
 * the pipeline's plain data into the option structs of src/chunk,
 * src/embed and src/load, and is the only place that prints the run's
 * summary, writes rejects and applies on_error.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunk/chunk.h"
#include "db/db.h"
#include "embed/embed.h"
#include "ingest/ingest.h"
#include "load/load_int.h"
#include "pipeline/pipeline.h"
#include "util/util.h"

struct run_args {
    const char *path;
    int is_dry_run, is_full, is_plan, no_wait;
    int shard_k, shard_n;
    const char *report_path;
    const char *export_path;           /* --export-batch: a dry run writing requests */
};

/*
 * The writer: a thread that flushes one batch (load_batch_flush, on the
 * session's connection) while the run's thread reads, chunks and embeds the
 * next one (reuse lookups on a second connection).  Two batches take
 * turns; `pending` is the one being written.  The first failure is kept
 * and stops the run at its next hand-over.
 */
struct writer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct load_session *sess;
    struct load_batch *pending;        /* handed over, not yet written */
    int is_busy, is_quitting, is_started;
    enum kb_code rc;
    struct kb_err err;
};

/* Everything one run holds. */
struct run {
    const struct run_args *args;
    struct kb_pipeline *p;
    struct db_conn *conn;
    struct load_session *sess;
    struct load_batch *batch;          /* being filled */
    struct load_batch *spare;          /* the other one: written by the writer */
    struct db_conn *read_conn;         /* reuse lookups while the writer writes */
    struct writer w;
    struct chunk_tokenizer *tok;
    struct chunk_opts copts;
    char chunker_sig[CHUNK_SIGNATURE_MAX];
    struct embed_opts eopts;
    struct embed_embedder *emb;
    struct load_export *export;        /* --export-batch (export_batch.c) */
    struct embed_row *erows;           /* the batch's rows as the embedder sees them */
    int cap_erows;
    const char *model;
    struct kb_arena *arena;
    struct ingest_rejects *rejects;
    struct load_source_stats *stats;   /* one per pipeline source */
    int *row_stat;                     /* per batch row: index into stats */
    int cap_row_stat;
    long rejected;
    int is_tty;
    struct kb_buf planned;             /* plan: "add  SOURCE_ID" lines, capped */
    int n_planned;
    double started, last_progress;
    long docs_done, chunks_done;
    long rows_expected;                /* the look-ahead's estimate (0: none) */
    int has_estimate, is_scan_done;
    int is_duplicate;                  /* add_document's KB_E_INPUT: a repeated source_id */
};

static const char RUN_USAGE[] =
    "usage: kbpipe run PIPELINE.yaml [--dry-run] [--full] [--shard K/N]\n"
    "                  [--report FILE.json] [--no-wait] [-q|-v]\n"
    "\n"
    "Run a pipeline: read its sources, skip what is unchanged, chunk, embed and\n"
    "load the rest with binary COPY (one transaction per batch), then dedup the\n"
    "learnings it touched.  A second run over an unchanged corpus writes nothing.\n"
    "\n"
    "  --dry-run        read and compare only: count what would be added, updated,\n"
    "                   skipped and deleted, and the vectors to compute; no writes\n"
    "  --full           also delete the pipeline's sources this run did not see,\n"
    "                   after the whole scan succeeded (same as mode: full)\n"
    "  --shard K/N      only the Kth of N deterministic partitions of the sources\n"
    "                   (docs/scaling.md)\n"
    "  --report FILE    write the JSON run report to FILE ('-': stdout); it is also\n"
    "                   stored in kbpipe_runs\n"
    "  --no-wait        exit 1 at once if another run of this pipeline holds its\n"
    "                   lock, instead of waiting for it\n"
    "  --export-batch F a dry run that writes the Batch API request file F for the\n"
    "                   chunks with no vector (as 'kbpipe embed export')\n"
    "  -q, -v           nothing but errors / more detail\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 invalid pipeline or usage, 3 finished\n"
    "with rejected inputs (see the reject file).\n"
    "\n"
    "Example:\n"
    "  kbpipe run pipelines/docs.yaml -q --report build/reports/docs.json\n";

static const char PLAN_USAGE[] =
    "usage: kbpipe plan PIPELINE.yaml [--full] [--shard K/N]\n"
    "\n"
    "Print what 'kbpipe run' would do, per source: documents it would add, update\n"
    "and skip as unchanged, chunks it would write and vectors it would compute or\n"
    "reuse, and with --full the sources it would delete.  Writes nothing (it is\n"
    "'kbpipe run --dry-run' with the table on stdout).\n"
    "\n"
    "Example:\n"
    "  kbpipe plan pipelines/docs.yaml\n";

/* "K/N" with 1 <= K <= N into *k, *n; KB_E_USAGE otherwise. */
static enum kb_code parse_shard(const char *s, int *k, int *n, struct kb_err *err)
{
    char *end;
    long kk = strtol(s, &end, 10), nn = 0;
    if (*end == '/')
        nn = strtol(end + 1, &end, 10);
    if (*end || nn < 1 || nn > 100000 || kk < 1 || kk > nn)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "--shard '%.40s' is not K/N with 1 <= K <= N; e.g. --shard 2/4", s);
    *k = (int)kk;
    *n = (int)nn;
    return KB_OK;
}

/* run/plan options into *a; KB_PARTIAL after --help (printed), KB_E_USAGE on a bad one. */
static enum kb_code parse_args(int argc, char **argv, struct run_args *a, struct kb_err *err)
{
    static const struct option longopts[] = {
        { "dry-run", no_argument, NULL, 'n' },   { "full", no_argument, NULL, 'f' },
        { "shard", required_argument, NULL, 's' }, { "report", required_argument, NULL, 'r' },
        { "no-wait", no_argument, NULL, 'w' },   { "help", no_argument, NULL, 'h' },
        { "export-batch", required_argument, NULL, 'x' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        enum kb_code rc;
        switch (c) {
        case 'n': a->is_dry_run = 1; break;
        case 'f': a->is_full = 1; break;
        case 's':
            if ((rc = parse_shard(optarg, &a->shard_k, &a->shard_n, err)) != KB_OK)
                return rc;
            break;
        case 'r': a->report_path = optarg; break;
        case 'w': a->no_wait = 1; break;
        case 'x': a->export_path = optarg; a->is_dry_run = 1; break;
        case 'h': fputs(a->is_plan ? PLAN_USAGE : RUN_USAGE, stdout); return KB_PARTIAL;
        default:
            return KB_FAIL(err, KB_E_USAGE, NULL, "unknown option '%.40s'; see 'kbpipe %s --help'",
                           argv[optind - 1], a->is_plan ? "plan" : "run");
        }
    }
    if (argc - optind != 1)
        return KB_FAIL(err, KB_E_USAGE, NULL, "%s needs one PIPELINE.yaml; see 'kbpipe %s --help'",
                       a->is_plan ? "plan" : "run", a->is_plan ? "plan" : "run");
    a->path = argv[optind];
    if (a->is_plan)
        a->is_dry_run = 1;
    return KB_OK;
}

/* ---- progress: a bar on a terminal; off one a log line every 10 s at -v
 * (log_info: nightly runs stay silent on success); nothing with -q ---- */

static void progress(struct run *r, const char *source, int is_final)
{
    if (kb_cli.is_quiet || (is_final && !r->is_tty))
        return;
    double now = kb_now();
    /* a bar redrawn twice a second on a terminal; a log line every 10 s else */
    if (!is_final && now - r->last_progress < (r->is_tty ? 0.5 : 10.0))
        return;
    if (!r->is_tty && r->last_progress == 0) {
        r->last_progress = now;   /* the first line after 10 s, not at once */
        return;
    }
    r->last_progress = now;
    double dt = now - r->started, rate = dt > 0 ? (double)r->chunks_done / dt : 0.0;
    char eta[48] = "";
    if (r->rows_expected > 0 && rate > 0 && !is_final) {
        long left = r->rows_expected - r->chunks_done;
        int pct = (int)(100.0 * (double)r->chunks_done / (double)r->rows_expected);
        snprintf(eta, sizeof eta, ", ~%d%%, ETA %.0f s", pct > 99 ? 99 : pct,
                 left > 0 ? (double)left / rate : 0.0);
    }
    if (r->is_tty)
        fprintf(stderr, "\r\033[Kkbpipe: %s: %ld documents, %ld chunks, %.0f chunks/s%s%s", source,
                r->docs_done, r->chunks_done, rate, eta, is_final ? "\n" : "");
    else
        log_info("%s: %ld documents, %ld chunks, %.0f chunks/s%s", source, r->docs_done,
                 r->chunks_done, rate, eta);
}

/* ---- translating the pipeline into module options ----------------------- */

static void chunk_opts_from(const struct kb_pipeline *p, struct chunk_opts *o)
{
    chunk_opts_defaults(o);
    o->splitter = p->chunking.splitter == PIPELINE_SPLIT_RECURSIVE ? CHUNK_RECURSIVE
                  : p->chunking.splitter == PIPELINE_SPLIT_FIXED   ? CHUNK_FIXED
                                                                    : CHUNK_MARKDOWN;
    o->unit = p->chunking.unit == PIPELINE_UNIT_CHARS ? CHUNK_CHARS : CHUNK_TOKENS;
    o->size = p->chunking.size;
    o->overlap = p->chunking.overlap;
}

/* The pipeline's load: block and the command line as src/load options; the
 * lock is per pipeline, or per shard ("docs#2/4"). */
static void load_opts_from(const struct kb_pipeline *p, const struct run_args *a,
                           struct load_opts *o, char *lock_name, size_t lock_len)
{
    load_opts_defaults(o);
    o->pipeline = p->name;
    o->project = p->project;
    o->project_path = p->project_path;
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
    o->wait_for_lock = !a->no_wait;
    o->shard_k = a->shard_k;
    o->shard_n = a->shard_n;
    if (a->shard_n > 1)
        snprintf(lock_name, lock_len, "%s#%d/%d", p->name, a->shard_k, a->shard_n);
    else
        snprintf(lock_name, lock_len, "%s", p->name);
    o->lock_name = lock_name;
}

/* ---- documents ----------------------------------------------------------- */

static void json_escape_into(struct kb_buf *b, const char *s)
{
    kb_buf_putc(b, '"');
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            kb_buf_printf(b, "\\%c", ch);
        else if (ch < 0x20)
            kb_buf_printf(b, "\\u%04x", ch);
        else
            kb_buf_putc(b, (char)ch);
    }
    kb_buf_putc(b, '"');
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

static long estimate_rows(struct run *r);

/* plan lists this many documents by name, then counts the rest */
#define PLAN_MAX_NAMED 200

static const char *src_name(const struct run *r, int si) { return r->p->sources[si].name; }

/*
 * Queue one document's rows in the batch (or skip it as unchanged).
 * KB_E_INPUT is about this document alone (a repeated source_id, text the
 * chunker refuses): the caller may reject it and go on.  Flushing a full
 * batch is the caller's, so that errors of a batch never pass for one
 * document's.
 */
static enum kb_code add_document(struct run *r, int si, const struct kb_document *d,
                                 struct kb_err *err)
{
    struct load_source_stats *st = &r->stats[si];
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
         * on_error says (run_source), so one bad key never fails a batch */
        r->is_duplicate = 1;
        return KB_FAIL(err, KB_E_INPUT, &d->origin,
                       "duplicate source_id '%.80s' (first at %s); give each document "
                       "its own key", d->source_id, first_at);
    }
    if (v == LOAD_SOURCE_UNCHANGED) {
        st->unchanged++;
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
    if (d->issue && r->p->sources[si].type == INGEST_GITHUB_ISSUES &&
        r->p->sources[si].u.issues.upsert_issues)
        load_batch_add_issue(r->batch, bi, d->issue);
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
        struct kb_buf meta;
        kb_buf_init(&meta);
        /* the source's metadata object, plus what reuse and dedup look up */
        size_t mlen = strlen(d->metadata_json);
        kb_buf_append(&meta, d->metadata_json, mlen > 1 ? mlen - 1 : 1);
        kb_buf_printf(&meta, "%s\"content_hash\":\"%s\",\"embedding_model\":",
                      mlen > 2 ? "," : "", l.content_hash);
        json_escape_into(&meta, r->model);
        kb_buf_puts(&meta, ",\"source_id\":");
        json_escape_into(&meta, d->source_id);
        kb_buf_putc(&meta, '}');
        l.metadata_json = meta.data;
        load_batch_add_learning(r->batch, bi, &l);
        kb_buf_release(&meta);
        free(embed_text);
        remember_row_stat(r, si);
        st->chunks++;
        r->chunks_done++;
    } else {
        struct kb_chunk_list chunks = { 0 };
        enum kb_code rc = chunk_document(d->text, d->len, &r->copts, r->tok, r->arena, &chunks,
                                         err);
        if (rc != KB_OK)
            return rc;
        struct kb_buf meta;
        kb_buf_init(&meta);
        for (int i = 0; i < chunks.n; i++) {
            const struct kb_chunk *c = &chunks.items[i];
            kb_buf_reset(&meta);
            kb_buf_puts(&meta, "{\"chunker\":");
            json_escape_into(&meta, r->chunker_sig);
            kb_buf_puts(&meta, ",\"embedding_model\":");
            json_escape_into(&meta, r->model);
            if (c->heading_path) {
                kb_buf_puts(&meta, ",\"heading_path\":");
                json_escape_into(&meta, c->heading_path);
            }
            kb_buf_putc(&meta, '}');
            struct load_chunk lc = { .chunk_index = c->index, .content = c->text, .len = c->len,
                                     .token_count = c->token_count, .metadata_json = meta.data };
            memcpy(lc.content_hash, c->content_hash, sizeof lc.content_hash);
            load_batch_add_chunk(r->batch, bi, &lc);
            remember_row_stat(r, si);
        }
        kb_buf_release(&meta);
        st->chunks += chunks.n;
        r->chunks_done += chunks.n;
    }
    return KB_OK;
}

/* See load_int.h. */
void load_embed_opts(const struct pipeline_embedding *pe, struct embed_opts *o)
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

/* The embedder the pipeline's embedding: block describes. */
static enum kb_code run_embedder_open(struct run *r, struct kb_err *err)
{
    struct embed_opts *o = &r->eopts;
    load_embed_opts(&r->p->embedding, o);
    enum kb_code rc = embed_embedder_new(o, &r->emb, err);
    if (rc == KB_OK)
        r->model = embed_embedder_model(r->emb);
    return rc;
}

/*
 * KB_E_INPUT (naming the source and the reject file) once source si has
 * rejected more than its max_errors inputs, whether the reader, the
 * chunker or the embedder rejected them; KB_OK below the limit or with
 * none (max_errors 0).
 */
static enum kb_code over_max_errors(struct run *r, int si, struct kb_err *err)
{
    const struct ingest_source *src = &r->p->sources[si];
    if (src->max_errors <= 0 || r->stats[si].rejected <= src->max_errors)
        return KB_OK;
    return KB_FAIL_AT(err, KB_E_INPUT, src->name,
                      "more than max_errors (%ld) inputs rejected; the run stops (see %s)",
                      src->max_errors,
                      r->rejects ? ingest_rejects_path(r->rejects) : "the log");
}

/*
 * Embed the batch's rows that have no vector yet.  Rows the embedder
 * rejects (not in the import file, a bad vector) take their whole source
 * out of the batch, into the reject file: the source stays fully old and
 * the next run tries it again.
 */
static enum kb_code run_embed(struct run *r, struct kb_err *err)
{
    int n = load_batch_rows(r->batch);
    if (n > r->cap_erows) {
        r->cap_erows = n * 2;
        r->erows = kb_xrealloc(r->erows, (size_t)r->cap_erows * sizeof *r->erows);
    }
    unsigned char *has = load_batch_has_vector(r->batch);
    for (int i = 0; i < n; i++) {
        struct embed_row *er = &r->erows[i];
        memset(er, 0, sizeof *er);
        er->text = load_batch_row_text(r->batch, i, &er->len);
        er->content_hash = load_batch_row_hash(r->batch, i);
        er->source_id = load_batch_row_source(r->batch, i, &er->chunk_index);
        er->origin = load_batch_row_origin(r->batch, i);
        er->token_count = load_batch_row_token_count(r->batch, i);
        er->state = has[i] ? EMBED_ROW_REUSED : EMBED_ROW_PENDING;
    }
    struct embed_batch eb;
    embed_batch_wrap(&eb, load_batch_matrix(r->batch), r->erows, n);
    enum kb_code rc = r->export ? load_export_rows(r->export, r->emb, &eb, err)
                      : r->args->is_dry_run ? KB_OK : embed_batch_compute(r->emb, &eb, err);
    for (int i = 0; i < n; i++) {
        struct load_source_stats *st = &r->stats[r->row_stat[i]];
        switch (r->erows[i].state) {
        case EMBED_ROW_REUSED: st->vectors_reused++; break;
        case EMBED_ROW_IMPORTED: st->vectors_imported++; break;
        case EMBED_ROW_REJECTED: break;
        default: st->vectors_computed++; break;   /* a dry run: would compute */
        }
    }
    if (rc == KB_OK || rc == KB_PARTIAL)
        for (int i = 0; i < n; i++)
            if (r->erows[i].state != EMBED_ROW_REJECTED)
                has[i] = 1;
    if (rc == KB_PARTIAL) {
        unsigned char *bad = kb_xcalloc((size_t)n, 1);
        rc = KB_OK;
        for (int i = 0; i < n && rc == KB_OK; i++) {
            if (r->erows[i].state != EMBED_ROW_REJECTED)
                continue;
            bad[i] = 1;
            struct kb_err rerr = { 0 };
            KB_FAIL_AT(&rerr, KB_E_EMBED, r->erows[i].origin, "%s; the document is left as "
                       "it was", r->erows[i].reject);
            log_warn("%s: %s", rerr.origin, rerr.msg);
            int si = r->row_stat[i];
            struct kb_err werr = { 0 };
            if (r->rejects && ingest_rejects_add(r->rejects, r->stats[si].name, &rerr, NULL,
                                                 &werr) != KB_OK) {
                *err = werr;
                rc = KB_E_IO;
            }
        }
        /* one rejected document per source with a bad row */
        int prev = -1;
        for (int i = 0; i < n; i++) {
            if (!bad[i])
                continue;
            int g = load_batch_row_group(r->batch, i);
            if (g != prev) {
                r->stats[r->row_stat[i]].rejected++;
                r->rejected++;
                prev = g;
                if (rc == KB_OK)
                    rc = over_max_errors(r, r->row_stat[i], err);
            }
        }
        /* keep row_stat aligned with the rows that stay */
        int k = 0;
        unsigned char *dropped_src = kb_xcalloc((size_t)n, 1);
        for (int i = 0; i < n; i++)
            if (bad[i])
                dropped_src[load_batch_row_group(r->batch, i)] = 1;
        for (int i = 0; i < n; i++)
            if (!dropped_src[load_batch_row_group(r->batch, i)])
                r->row_stat[k++] = r->row_stat[i];
        load_batch_drop_sources(r->batch, bad);
        free(dropped_src);
        free(bad);
    }
    embed_batch_release(&eb);
    return rc;
}

/*
 * Give every row of the batch its vector: stored ones by (content_hash,
 * model) first, then the embedder for the rest; check and normalize; write
 * the batch in one transaction.  Counts go to each row's source.
 */
static void *writer_main(void *arg)
{
    struct writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->pending == NULL && !w->is_quitting)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->pending == NULL)
            break;
        struct load_batch *b = w->pending;
        w->is_busy = 1;
        pthread_mutex_unlock(&w->mu);
        struct kb_err e = { 0 };
        enum kb_code rc = load_batch_flush(w->sess, b, &e);
        pthread_mutex_lock(&w->mu);
        if (rc != KB_OK && w->rc == KB_OK) {
            w->rc = rc;
            w->err = e;
        }
        w->pending = NULL;
        w->is_busy = 0;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Wait until the writer is idle; its first failure, if any, goes to err. */
static enum kb_code writer_wait(struct writer *w, struct kb_err *err)
{
    pthread_mutex_lock(&w->mu);
    while (w->pending != NULL || w->is_busy)
        pthread_cond_wait(&w->cv, &w->mu);
    enum kb_code rc = w->rc;
    if (rc != KB_OK)
        *err = w->err;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Hand the filled batch to the writer and take the spare (empty) one. */
static enum kb_code writer_hand_over(struct run *r, struct kb_err *err)
{
    enum kb_code rc = writer_wait(&r->w, err);
    if (rc != KB_OK)
        return rc;
    pthread_mutex_lock(&r->w.mu);
    r->w.pending = r->batch;
    pthread_cond_broadcast(&r->w.cv);
    pthread_mutex_unlock(&r->w.mu);
    struct load_batch *t = r->batch;
    r->batch = r->spare;
    r->spare = t;
    return KB_OK;
}

/* Start the writer thread (not for dry runs: they write nothing). */
static enum kb_code writer_start(struct run *r, struct kb_err *err)
{
    struct writer *w = &r->w;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->sess = r->sess;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        return KB_FAIL(err, KB_E_INTERNAL, NULL, "cannot start the writer thread");
    }
    w->is_started = 1;
    return KB_OK;
}

/* Let the writer finish what it holds, stop it; its failure goes to err. */
static enum kb_code writer_stop(struct run *r, struct kb_err *err)
{
    struct writer *w = &r->w;
    if (!w->is_started)
        return KB_OK;
    enum kb_code rc = writer_wait(w, err);
    pthread_mutex_lock(&w->mu);
    w->is_quitting = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    w->is_started = 0;
    return rc;
}

/*
 * Give every row of the batch its vector (stored ones by (content_hash,
 * model) first, then the embedder for the rest) and hand it to the writer,
 * which writes it in one transaction while the next batch is prepared.
 */
static enum kb_code flush_batch(struct run *r, struct kb_err *err)
{
    int n_reused = 0;
    enum kb_code rc = KB_OK;
    /* index strategy auto decides at the first batch written: on the exact
     * count when the scan is over, else on the look-ahead's estimate (an
     * unchanged re-run fills no batch, so it never reads anything twice) */
    if (!r->has_estimate && load_batch_rows(r->batch) > 0 && !r->args->is_dry_run &&
        r->p->load.index_strategy == PIPELINE_INDEX_AUTO) {
        r->has_estimate = 1;
        r->rows_expected = r->is_scan_done ? r->chunks_done : estimate_rows(r);
        load_session_expect_rows(r->sess, r->rows_expected);
    }
    if (load_batch_rows(r->batch) > 0) {
        /* a read: a dry run also says what would be reused */
        rc = load_batch_reuse(r->sess, r->batch, r->model, &n_reused, err);
        if (rc == KB_OK)
            rc = run_embed(r, err);
    }
    if (rc != KB_OK)
        return rc;
    if (!r->w.is_started)
        return load_batch_flush(r->sess, r->batch, err);   /* dry run */
    return writer_hand_over(r, err);
}

/*
 * Index strategy auto's look-ahead, when the first batch is full: read every
 * source from the start, hash each document, and estimate the rows the
 * changed ones will write (their bytes over the chunk stride; one row per
 * learning).  Reading and hashing run at hundreds of MB/s, a small price
 * next to sending a large load through the HNSW index row by row.  Inputs
 * that fail to read are left to the real pass, which reports them.
 */
static long estimate_rows(struct run *r)
{
    double t0 = kb_now();
    long stride = r->copts.size - r->copts.overlap;
    if (r->copts.unit == CHUNK_TOKENS)
        stride *= 4;   /* about 4 bytes a token in cl100k_base on prose and code */
    if (stride < 1)
        stride = 1;
    long rows = 0;
    struct kb_arena *arena = kb_arena_new();   /* the run's holds the current document */
    for (int si = 0; si < r->p->n_sources; si++) {
        struct ingest_reader *rd;
        struct kb_err ignored = { 0 };
        if (ingest_open(&r->p->sources[si], ".", &rd, &ignored) != KB_OK)
            continue;
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
        ingest_close(rd);
    }
    kb_arena_free(arena);
    log_debug("look-ahead: about %ld rows to write (%.2f s)", rows, kb_now() - t0);
    return rows;
}

/* One pipeline source, start to end.  KB_OK also when inputs were rejected. */
static enum kb_code run_source(struct run *r, int si, struct kb_err *err)
{
    const struct ingest_source *src = &r->p->sources[si];
    struct load_source_stats *st = &r->stats[si];
    double t0 = kb_now();
    struct ingest_reader *rd;
    enum kb_code rc = ingest_open(src, ".", &rd, err);
    if (rc != KB_OK) {
        kb_err_prefix(err, "source %s", src->name);
        return rc;
    }
    for (;;) {
        struct kb_document *doc = NULL;
        rc = ingest_next(rd, r->arena, &doc, err);
        if (rc == KB_OK && doc == NULL)
            break;
        int from_reader = rc != KB_OK;
        r->is_duplicate = 0;
        if (rc == KB_OK)
            rc = add_document(r, si, doc, err);
        const struct ingest_bad *bad = rc == KB_E_INPUT && from_reader ? ingest_last_bad(rd)
                                                                       : NULL;
        if (rc == KB_E_INPUT && (src->on_error == INGEST_ON_ERROR_SKIP || r->is_duplicate)) {
            /* a bad input: to the reject file, counted, and on to the next */
            struct kb_err werr = { 0 };
            if (!r->args->is_dry_run &&
                ingest_rejects_add(r->rejects, src->name, err, bad, &werr) != KB_OK) {
                *err = werr;
                rc = KB_E_IO;
            } else {
                log_warn("%s%s%s (skipped: %s)", err->origin, err->origin[0] ? ": " : "",
                         err->msg, r->is_duplicate ? "a duplicate" : "on_error is skip");
                st->rejected++;
                r->rejected++;
                rc = over_max_errors(r, si, err);
            }
        }
        if (rc == KB_OK && load_batch_is_full(r->batch))
            rc = flush_batch(r, err);
        kb_arena_reset(r->arena);
        if (rc != KB_OK)
            break;
        r->docs_done++;
        progress(r, src->name, 0);
    }
    const struct ingest_stats *is = ingest_reader_stats(rd);
    if (is->n_skipped)
        log_info("source %s: %ld input(s) skipped with a note; last: %s", src->name,
                 is->n_skipped, is->last_note);
    ingest_close(rd);
    st->seconds = kb_now() - t0;
    if (rc != KB_OK && rc != KB_E_INPUT)
        kb_err_prefix(err, "source %s", src->name);
    return rc;
}

/* The current time as ISO 8601 UTC ("2026-11-25T02:30:00Z"). */
static void iso_now(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The JSON report to path ("-": stdout), through a temporary file and a
 * rename, so a reader never sees half a report. */
static enum kb_code write_report(const char *path, const char *json, struct kb_err *err)
{
    if (strcmp(path, "-") == 0) {
        fputs(json, stdout);
        fputc('\n', stdout);
        return KB_OK;
    }
    /* the report's folder is made when missing (build/reports/ on a new clone) */
    char *dir = kb_xstrdup(path);
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0777);   /* EEXIST is fine; a real failure shows at fopen */
            *p = '/';
        }
    free(dir);
    char *tmp = kb_xasprintf("%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    enum kb_code rc = KB_OK;
    if (f == NULL || fputs(json, f) < 0 || fputc('\n', f) < 0 || fclose(f) != 0) {
        rc = KB_FAIL_AT(err, KB_E_IO, path, "cannot write the report; check the folder exists "
                                            "and is writable");
        unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        rc = KB_FAIL_AT(err, KB_E_IO, path, "cannot move the report into place");
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* The pipeline's dedup.action as src/load's enum. */
static enum load_dedup_action dedup_action_from(const struct kb_pipeline *p)
{
    /* the issue's default is mark; an explicit `dedup.action` wins */
    if (pipeline_origin(p, "dedup.action") == NULL)
        return LOAD_DEDUP_MARK;
    return p->dedup.action == PIPELINE_DEDUP_REPORT  ? LOAD_DEDUP_REPORT
           : p->dedup.action == PIPELINE_DEDUP_MERGE ? LOAD_DEDUP_MERGE
                                                     : LOAD_DEDUP_MARK;
}

/* "report", "mark" or "merge". */
static const char *dedup_action_name(enum load_dedup_action a)
{
    return a == LOAD_DEDUP_REPORT ? "report" : a == LOAD_DEDUP_MERGE ? "merge" : "mark";
}

/* Open everything a run needs before the first document. */
static enum kb_code run_open(struct run *r, struct kb_err *err)
{
    enum kb_code rc = pipeline_load(r->args->path, &r->p, err);
    if (rc == KB_E_IO)
        rc = err->code = KB_E_CONFIG;   /* no pipeline to run: exit 2, as validate */
    if (rc == KB_OK)
        rc = pipeline_check(r->p, ".", err);
    if (rc == KB_E_CONFIG && r->p) {
        pipeline_diags_print(r->p, stderr);
        return rc;
    }
    if (rc != KB_OK)
        return rc;
    chunk_opts_from(r->p, &r->copts);
    if ((rc = chunk_opts_check(&r->copts, err)) != KB_OK)
        return rc;
    chunk_opts_signature(&r->copts, r->chunker_sig);
    if ((rc = chunk_tokenizer_open(NULL, &r->tok, err)) != KB_OK)
        return rc;
    if (r->args->export_path &&
        (rc = load_export_open(r->args->export_path, r->p, &r->export, err)) != KB_OK)
        return rc;
    if ((rc = run_embedder_open(r, err)) != KB_OK)
        return rc;
    if (r->p->connection && kb_cli.db == NULL)
        kb_cli.db = r->p->connection;
    if ((rc = db_open(&r->conn, err)) != KB_OK)
        return rc;
    struct load_opts lo;
    static char lock_name[300];
    load_opts_from(r->p, r->args, &lo, lock_name, sizeof lock_name);
    if ((rc = load_session_open(r->conn, &lo, &r->sess, err)) != KB_OK)
        return rc;
    r->batch = load_batch_new(r->sess);
    r->spare = load_batch_new(r->sess);
    if (!r->args->is_dry_run) {
        if ((rc = db_open(&r->read_conn, err)) != KB_OK)
            return rc;
        load_session_set_read_conn(r->sess, r->read_conn);
        if ((rc = writer_start(r, err)) != KB_OK)
            return rc;
    }
    r->arena = kb_arena_new();
    r->stats = kb_xcalloc((size_t)(r->p->n_sources ? r->p->n_sources : 1), sizeof *r->stats);
    for (int i = 0; i < r->p->n_sources; i++)
        r->stats[i].name = r->p->sources[i].name;
    if (!r->args->is_dry_run) {
        char *path = r->p->reject_file ? kb_xstrdup(r->p->reject_file)
                                       : kb_xasprintf("build/rejects/%s.jsonl", r->p->name);
        rc = ingest_rejects_open(path, &r->rejects, err);
        free(path);
    }
    return rc;
}

/* Stop the writer and free everything run_open made (any part may be missing). */
static void run_close(struct run *r)
{
    struct kb_err ignored;
    if (r->rejects)
        ingest_rejects_close(r->rejects, &ignored);
    writer_stop(r, &ignored);
    load_batch_free(r->batch);
    load_batch_free(r->spare);
    db_close(r->read_conn);
    kb_arena_free(r->arena);
    embed_embedder_free(r->emb);
    load_export_free(r->export);
    free(r->erows);
    chunk_tokenizer_free(r->tok);
    db_close(r->conn);
    pipeline_free(r->p);
    free(r->stats);
    free(r->row_stat);
    kb_buf_release(&r->planned);
}

/*
 * One run, start to end: open, scan every source, write the last batch,
 * dedup, --full deletions and the index rebuild, record and print the
 * report.  KB_PARTIAL when it finished with rejected inputs.
 */
static enum kb_code run_pipeline(const struct run_args *a, struct kb_err *err)
{
    struct run r = { 0 };
    r.args = a;
    r.started = kb_now();
    r.is_tty = isatty(2);
    struct load_report rep = { 0 };
    iso_now(rep.started_at, sizeof rep.started_at);
    enum kb_code rc = run_open(&r, err);
    if (rc != KB_OK) {
        if (r.sess)
            load_session_close(r.sess, "failed", NULL, &(struct kb_err){ 0 });
        r.sess = NULL;
        run_close(&r);
        return rc;
    }
    int is_full = a->is_full || r.p->mode == PIPELINE_FULL;
    for (int i = 0; i < r.p->n_sources && rc == KB_OK; i++)
        rc = run_source(&r, i, err);
    r.is_scan_done = 1;
    if (rc == KB_OK)
        rc = flush_batch(&r, err);
    if (rc == KB_OK && r.export)
        rc = load_export_finish(r.export, err);
    /* every batch written (or the first failure) before what comes next */
    struct kb_err werr = { 0 };
    enum kb_code wrc = writer_stop(&r, &werr);
    if (wrc != KB_OK && (rc == KB_OK || rc == KB_E_DB)) {
        *err = werr;
        rc = wrc;
    }
    progress(&r, r.p->name, 1);
    rep.load_seconds = kb_now() - r.started;

    /* the dedup pass over the learnings this run added or changed */
    struct load_dedup_result dres = { 0 };
    struct load_dedup_opts dopts = { 0 };
    const char *const *touched = NULL;
    int n_touched = load_session_touched_learnings(r.sess, &touched);
    rep.has_dedup = rc == KB_OK && r.p->dedup.is_enabled && n_touched > 0 && !a->is_dry_run;
    if (rep.has_dedup) {
        dopts.action = dedup_action_from(r.p);
        dopts.threshold = pipeline_origin(r.p, "dedup.threshold")
                              ? r.p->dedup.threshold
                              : load_dedup_default_threshold(r.model);
        rc = load_dedup(r.conn, load_session_project_id(r.sess), touched, n_touched, &dopts,
                        log_get_level() >= KB_LOG_INFO ? stderr : NULL, &dres, err);
    }
    /* --full deletes only after a complete scan with nothing rejected: a
     * rejected input may be a source that still exists */
    int do_full = is_full && rc == KB_OK && r.rejected == 0;
    if (is_full && rc == KB_OK && r.rejected > 0)
        log_warn("--full: deletions skipped because %ld input(s) were rejected; fix them and "
                 "run again", r.rejected);
    double t_finish = kb_now();
    if (rc == KB_OK)
        rc = load_session_finish(r.sess, do_full, err);
    rep.finish_seconds = kb_now() - t_finish;
    const char *status = rc != KB_OK ? "failed" : a->is_dry_run ? "dry-run"
                         : r.rejected ? "partial" : "succeeded";
    rep.pipeline = r.p->name;
    rep.project = r.p->project;
    rep.status = status;
    rep.is_dry_run = a->is_dry_run;
    rep.is_full = is_full;
    rep.shard_k = a->shard_k;
    rep.shard_n = a->shard_n;
    rep.embedding_model = r.model;
    rep.sources = r.stats;
    rep.n_sources = r.p->n_sources;
    rep.rejected = r.rejected;
    rep.reject_file = r.rejects && r.rejected ? ingest_rejects_path(r.rejects) : NULL;
    rep.error = rc != KB_OK ? err->msg : NULL;
    rep.dedup.n_candidates = dres.n_candidates;
    rep.dedup.n_pairs = dres.n_pairs;
    rep.dedup.n_marked = dres.n_marked;
    rep.dedup.n_merged = dres.n_merged;
    rep.dedup.threshold = dopts.threshold;
    rep.dedup.action = dedup_action_name(dopts.action);
    rep.seconds = kb_now() - r.started;
    rep.load = *load_session_counts(r.sess);
    if (a->is_dry_run)
        rep.deleted_planned = rep.load.sources_deleted;
    char *json = load_report_json(&rep);
    struct kb_err cerr = { 0 };
    enum kb_code crc = load_session_close(r.sess, status, json, &cerr);
    r.sess = NULL;
    if (rc == KB_OK && crc != KB_OK) {
        *err = cerr;
        rc = crc;
    }
    if (!kb_cli.is_quiet || a->is_plan)
        load_report_print(&rep, a->is_plan ? stdout : stderr);
    if (a->is_plan && r.n_planned) {
        fprintf(stdout, "\ndocuments to load:\n%s", r.planned.data);
        if (r.n_planned > PLAN_MAX_NAMED)
            fprintf(stdout, "  ... and %d more\n", r.n_planned - PLAN_MAX_NAMED);
    }
    if (a->report_path) {
        struct kb_err werr = { 0 };
        if (write_report(a->report_path, json, &werr) != KB_OK && rc == KB_OK) {
            *err = werr;
            rc = KB_E_IO;
        }
    }
    free(json);
    if (rc == KB_OK && !kb_cli.is_quiet && !a->is_plan)
        log_info("%s: %ld document(s), %ld chunk(s), %.1f s", r.p->name, r.docs_done,
                 r.chunks_done, kb_now() - r.started);
    long rejected = r.rejected;
    run_close(&r);
    if (rc == KB_OK && rejected > 0)
        return KB_PARTIAL;
    return rc;
}

/* See load.h. */
enum kb_code cmd_run(int argc, char **argv, struct kb_err *err)
{
    struct run_args a = { 0 };
    enum kb_code rc = parse_args(argc, argv, &a, err);
    if (rc == KB_PARTIAL)
        return KB_OK;   /* --help */
    if (rc != KB_OK)
        return rc;
    return run_pipeline(&a, err);
}

/* See load.h. */
enum kb_code cmd_plan(int argc, char **argv, struct kb_err *err)
{
    struct run_args a = { .is_plan = 1 };
    enum kb_code rc = parse_args(argc, argv, &a, err);
    if (rc == KB_PARTIAL)
        return KB_OK;
    if (rc != KB_OK)
        return rc;
    return run_pipeline(&a, err);
}
