/*
 * cmd_backfill.c - `kbpipe embed backfill --project P --table
 * learnings|knowledge_chunks [--pipeline FILE] [--batch N] [--dry-run]
 * [--json]`: vectors for the rows the service writes itself (issue 18).
 *
 * The conductor of three modules: src/load finds the stale rows a batch at
 * a time and writes them back (backfill.c: what "stale" means, the keyset
 * pagination, the one UPDATE ... FROM per batch and its guard against an
 * edit since the read), src/load looks up stored vectors by (content_hash,
 * model) first, and src/embed computes the rest with the provider the
 * pipeline's embedding: block names.  Without --pipeline the provider is
 * the built-in hash embedder, and only when that is the one model the
 * project's stored vectors record: any other model needs its settings
 * (endpoint, key variable), which only a pipeline file holds.
 *
 * Each batch is its own transaction.  SIGINT/SIGTERM (signal.c) let the
 * batch in hand finish (commit), then the command says what was done and
 * exits with the interrupted status (130/143); a re-run resumes, finding
 * only the rows still stale.
 *
 *   kbpipe: backfill learnings of demo (kbpipe-hash-v1): 1204 stale row(s) found,
 *   3 reused, 1201 embedded, 1204 updated, 0 edited since read, 0 rejected,
 *   3 batch(es), 0.4 s
 * (tests/integration/run_backfill.sh checks these counts.)
 */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline_int.h"

static const char USAGE[] =
    "usage: kbpipe embed backfill --project NAME --table learnings|knowledge_chunks\n"
    "                             [--pipeline FILE] [--batch N] [--dry-run] [--json]\n"
    "\n"
    "Compute the vectors of a project's rows that have none, whose text changed\n"
    "since their vector was made (the stored content hash is not the text's), or\n"
    "whose vector is of another model: rows the service inserted or edited through\n"
    "SQL. A learning's vector is made from its title, a blank line and its content,\n"
    "a chunk's from its content: what 'kbpipe run' computes. Stored vectors of the\n"
    "same text and model are reused before the provider is asked. Each batch is one\n"
    "transaction; a killed or interrupted backfill resumes when run again.\n"
    "\n"
    "  --project NAME    the project (required)\n"
    "  --table T         learnings or knowledge_chunks (required)\n"
    "  --pipeline FILE   the pipeline whose embedding: block names the provider;\n"
    "                    without it, the built-in hash embedder, and only when it is\n"
    "                    the model the project's stored vectors record\n"
    "  --batch N         rows per batch and transaction (default 500)\n"
    "  --dry-run         count what would be reused and embedded; write nothing\n"
    "  --json            print the counts as one JSON object on stdout\n"
    "\n"
    "Example (cron, every 10 minutes):\n"
    "  */10 * * * * kbpipe -q embed backfill --project demo --table learnings\n";

struct backfill_args {
    const char *project, *pipeline_path;
    enum load_backfill_table table;
    int batch_rows, is_dry_run, is_json;
};

struct backfill_run {
    const struct backfill_args *a;
    struct kb_pipeline *p;
    struct db_conn *conn;
    struct embed_opts eopts;
    struct embed_embedder *emb;
    struct load_backfill *bf;
    struct embed_row *erows;
    long embedded, rejected, would_embed;
    double started, shown_at;
    int is_tty;
};

/* The table's name in messages (a static string). */
static const char *table_name(enum load_backfill_table t)
{
    return t == LOAD_BACKFILL_CHUNKS ? "knowledge_chunks" : "learnings";
}

/* The command line into *a (defaults: batch 500); *is_help for --help.
 * KB_E_USAGE naming the bad option or value. */
static enum kb_code parse_args(int argc, char **argv, struct backfill_args *a, int *is_help,
                               struct kb_err *err)
{
    static const struct option longopts[] = {
        { "project", required_argument, NULL, 'p' },
        { "table", required_argument, NULL, 't' },
        { "pipeline", required_argument, NULL, 'f' },
        { "batch", required_argument, NULL, 'b' },
        { "dry-run", no_argument, NULL, 'n' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *table = NULL;
    int c;
    optind = 1;
    opterr = 0;
    memset(a, 0, sizeof *a);
    a->batch_rows = 500;
    *is_help = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': a->project = optarg; break;
        case 't': table = optarg; break;
        case 'f': a->pipeline_path = optarg; break;
        case 'b': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > 100000)
                return KB_FAIL(err, KB_E_USAGE, NULL,
                               "--batch '%.40s' is not a number of rows from 1 to 100000; "
                               "e.g. --batch 500", optarg);
            a->batch_rows = (int)n;
            break;
        }
        case 'n': a->is_dry_run = 1; break;
        case 'j': a->is_json = 1; break;
        case 'h': *is_help = 1; return KB_OK;
        default:
            return kb_cli_unknown_option("embed backfill", argv[optind - 1], longopts, err);
        }
    }
    if (a->project == NULL || table == NULL || optind < argc)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "embed backfill needs --project NAME and --table learnings|"
                       "knowledge_chunks%s%.60s; see 'kbpipe embed backfill --help'",
                       optind < argc ? ", not " : "", optind < argc ? argv[optind] : "");
    if (strcmp(table, "learnings") == 0)
        a->table = LOAD_BACKFILL_LEARNINGS;
    else if (strcmp(table, "knowledge_chunks") == 0)
        a->table = LOAD_BACKFILL_CHUNKS;
    else
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "--table '%.40s' is not learnings or knowledge_chunks", table);
    return KB_OK;
}

/* The pipeline's provider, or the hash embedder when the project's stored
 * vectors record it and no other model. */
static enum kb_code open_embedder(struct backfill_run *r, struct kb_err *err)
{
    const struct backfill_args *a = r->a;
    if (r->p) {
        pipeline_embed_opts(&r->p->embedding, &r->eopts);
    } else {
        char models[512];
        int n_models = 0;
        enum kb_code rc = load_project_models(r->conn, a->project, models, sizeof models,
                                              &n_models, err);
        if (rc != KB_OK)
            return rc;
        if (n_models != 1 || strcmp(models, EMBED_HASH_MODEL) != 0)
            return KB_FAIL(err, KB_E_USAGE, NULL,
                           "project %.80s's stored vectors record %s%s%s; without --pipeline "
                           "only the built-in %s can be used, so pass --pipeline FILE whose "
                           "embedding: block names the provider",
                           a->project, n_models == 0 ? "no model" : "the model(s) ",
                           n_models == 0 ? "" : models, n_models == 0 ? " yet" : "",
                           EMBED_HASH_MODEL);
        embed_opts_defaults(&r->eopts);
    }
    return embed_embedder_new(&r->eopts, &r->emb, err);
}

/* Compute the batch's rows that have no vector (n rows). */
static enum kb_code embed_rows(struct backfill_run *r, int n, struct kb_err *err)
{
    unsigned char *has = load_backfill_has_vector(r->bf);
    int n_pending = 0;
    for (int i = 0; i < n; i++) {
        struct embed_row *er = &r->erows[i];
        memset(er, 0, sizeof *er);
        er->text = load_backfill_row_text(r->bf, i, &er->len);
        er->content_hash = load_backfill_row_hash(r->bf, i);
        er->origin = load_backfill_row_id(r->bf, i);
        er->state = has[i] ? EMBED_ROW_REUSED : EMBED_ROW_PENDING;
        n_pending += !has[i];
    }
    if (r->a->is_dry_run || n_pending == 0) {
        r->would_embed += n_pending;
        return KB_OK;
    }
    struct embed_batch eb;
    embed_batch_wrap(&eb, load_backfill_matrix(r->bf), r->erows, n);
    enum kb_code rc = embed_batch_compute(r->emb, &eb, err);
    if (rc == KB_OK || rc == KB_PARTIAL) {
        for (int i = 0; i < n; i++) {
            enum embed_row_state st = r->erows[i].state;
            if (st == EMBED_ROW_COMPUTED || st == EMBED_ROW_IMPORTED) {
                has[i] = 1;
                r->embedded++;
            } else if (st == EMBED_ROW_REJECTED) {
                /* left stale: the next run asks the provider again */
                log_warn("%s %s: %s; the row is left as it was", table_name(r->a->table),
                         r->erows[i].origin, r->erows[i].reject);
                r->rejected++;
            }
        }
        rc = KB_OK;
    }
    embed_batch_release(&eb);
    return rc;
}

/* On a terminal, unless -q: the rows done so far, at most twice a second. */
static void show_progress(struct backfill_run *r, int is_final)
{
    if (!r->is_tty || kb_cli.is_quiet)
        return;
    double now = kb_now();
    if (!is_final && now - r->shown_at < 0.5)
        return;
    r->shown_at = now;
    const struct load_backfill_counts *c = load_backfill_counts(r->bf);
    if (is_final)
        fputs("\r\033[K", stderr);
    else
        fprintf(stderr, "\r\033[Kkbpipe: backfill %s: %ld found, %ld %s ...",
                table_name(r->a->table), c->found, r->a->is_dry_run ? c->found : c->updated,
                r->a->is_dry_run ? "checked" : "updated");
}

/* The counts on stdout as one JSON object (built with jansson). */
static void print_json(const struct backfill_run *r, const char *status)
{
    const struct load_backfill_counts *c = load_backfill_counts(r->bf);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
                          " s:f}",
                          "command", "embed backfill", "project", r->a->project,
                          "table", table_name(r->a->table), "model",
                          embed_embedder_model(r->emb), "dry_run", r->a->is_dry_run,
                          "status", status, "found", (json_int_t)c->found,
                          "reused", (json_int_t)c->reused,
                          "embedded", (json_int_t)(r->a->is_dry_run ? r->would_embed
                                                                    : r->embedded),
                          "updated", (json_int_t)c->updated, "edited", (json_int_t)c->edited,
                          "rejected", (json_int_t)r->rejected,
                          "batches", (json_int_t)c->batches, "seconds",
                          kb_now() - r->started);
    if (o) {
        json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
    }
}

/* The summary line (unless -q) and the JSON object (with --json). */
static void report(struct backfill_run *r, const char *status)
{
    show_progress(r, 1);
    const struct load_backfill_counts *c = load_backfill_counts(r->bf);
    const char *model = embed_embedder_model(r->emb);
    if (r->a->is_dry_run)
        log_notice("backfill %s of %s (%s), dry run: %ld stale row(s) found, %ld would be "
                   "reused, %ld embedded; nothing written", table_name(r->a->table),
                   r->a->project, model, c->found, c->reused, r->would_embed);
    else
        log_notice("backfill %s of %s (%s): %ld stale row(s) found, %ld reused, %ld embedded, "
                   "%ld updated, %ld edited since read (left for the next run), %ld rejected, "
                   "%ld batch(es), %.1f s%s", table_name(r->a->table), r->a->project, model,
                   c->found, c->reused, r->embedded, c->updated, c->edited, r->rejected,
                   c->batches, kb_now() - r->started,
                   strcmp(status, "interrupted") == 0 ? " (interrupted)" : "");
    if (r->a->is_json)
        print_json(r, status);
}

/* Batches until no stale row is left, a signal, or a failure. */
static enum kb_code backfill_loop(struct backfill_run *r, struct kb_err *err)
{
    enum kb_code rc = KB_OK;
    for (;;) {
        if (kb_signal_received()) {
            const struct load_backfill_counts *c = load_backfill_counts(r->bf);
            return KB_FAIL(err, KB_E_INTERRUPTED, NULL,
                           "interrupted: %ld batch(es) committed, %ld row(s) updated; run the "
                           "same command again to resume", c->batches, c->updated);
        }
        int n = 0;
        if ((rc = load_backfill_next(r->bf, &n, err)) != KB_OK || n == 0)
            return rc;
        int n_reused = 0;
        if ((rc = load_backfill_reuse(r->bf, &n_reused, err)) != KB_OK)
            return rc;
        if ((rc = embed_rows(r, n, err)) != KB_OK)
            return rc;
        if (!r->a->is_dry_run && (rc = load_backfill_write(r->bf, err)) != KB_OK)
            return rc;
        show_progress(r, 0);
    }
}

/* See pipeline.h. */
enum kb_code cmd_embed_backfill(int argc, char **argv, struct kb_err *err)
{
    struct backfill_args a;
    int is_help;
    enum kb_code rc = parse_args(argc, argv, &a, &is_help, err);
    if (rc != KB_OK)
        return rc;
    if (is_help) {
        fputs(USAGE, stdout);
        return KB_OK;
    }
    struct backfill_run r = { .a = &a, .started = kb_now(), .is_tty = isatty(2) };
    kb_signals_catch();   /* signal.c: the first SIGINT/SIGTERM ends the batch in hand */
    if (a.pipeline_path) {
        rc = pipeline_load(a.pipeline_path, &r.p, err);
        if (rc == KB_E_CONFIG && r.p)
            pipeline_diags_print(r.p, stderr);
    }
    if (rc == KB_OK)   /* --db, else the pipeline's connection:, else the environment */
        rc = kb_cli.db == NULL && r.p && r.p->connection ? db_connect(r.p->connection, &r.conn, err)
                                                         : db_open(&r.conn, err);
    if (rc == KB_OK)
        rc = open_embedder(&r, err);
    if (rc == KB_OK)
        rc = load_backfill_open(r.conn, a.project, a.table, embed_embedder_model(r.emb),
                                a.batch_rows, &r.bf, err);
    if (rc == KB_OK) {
        r.erows = kb_xcalloc((size_t)a.batch_rows, sizeof *r.erows);
        rc = backfill_loop(&r, err);
        if (rc == KB_OK && r.rejected > 0)
            rc = KB_PARTIAL;
        if (rc == KB_OK || rc == KB_PARTIAL || rc == KB_E_INTERRUPTED)
            report(&r, rc == KB_E_INTERRUPTED ? "interrupted"
                       : a.is_dry_run         ? "dry-run"
                       : rc == KB_PARTIAL     ? "partial"
                                              : "succeeded");
        else if (load_backfill_counts(r.bf)->batches > 0)
            kb_err_prefix(err, "%ld batch(es) committed before this, the rest left stale; run "
                          "again to resume", load_backfill_counts(r.bf)->batches);
    }
    free(r.erows);
    load_backfill_free(r.bf);
    embed_embedder_free(r.emb);
    db_close(r.conn);
    pipeline_free(r.p);
    return rc;
}
