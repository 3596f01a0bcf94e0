/*
 * pipeline.h - the public face of src/pipeline, the conductor: a pipeline
 * file (YAML) read into plain data, with ${VAR} interpolation and
 * compiler-style diagnostics, and the run that carries it out (`kbpipe
 * run`, `plan`, `validate`, and the pipeline form of `embed export`).
 *
 * The pipeline structs hold strings, numbers and enums only; the run
 * (cmd_run.c, run_*.c) translates them, and the documents of src/ingest,
 * into the option and record structs of src/chunk, src/embed and src/load.
 * Sources are struct ingest_source (ingest.h), ready for ingest_open().
 * Every value keeps where it was written: pipeline_origin() gives
 * "FILE:LINE:COL" of any key for later messages.  libyaml lives here (and
 * in the front-matter reader of src/ingest).
 */
#ifndef KB_PIPELINE_H
#define KB_PIPELINE_H

#include <stdio.h>

#include "ingest/ingest.h"
#include "util/util.h"

#define KB_PIPELINE_DIM 1536   /* the schema's vector(1536) */

enum pipeline_mode { PIPELINE_INCREMENTAL = 0, PIPELINE_FULL };
enum pipeline_splitter { PIPELINE_SPLIT_MARKDOWN = 0, PIPELINE_SPLIT_RECURSIVE,
                         PIPELINE_SPLIT_FIXED };
enum pipeline_unit { PIPELINE_UNIT_TOKENS = 0, PIPELINE_UNIT_CHARS };
enum pipeline_provider { PIPELINE_EMBED_HASH = 0, PIPELINE_EMBED_IMPORT,
                         PIPELINE_EMBED_OPENAI };
enum pipeline_import_format { PIPELINE_IMPORT_JSONL = 0, PIPELINE_IMPORT_CSV,
                               PIPELINE_IMPORT_OPENAI_BATCH };
enum pipeline_index_strategy { PIPELINE_INDEX_AUTO = 0, PIPELINE_INDEX_KEEP,
                               PIPELINE_INDEX_REBUILD };
enum pipeline_dedup_action { PIPELINE_DEDUP_REPORT = 0, PIPELINE_DEDUP_MARK,
                             PIPELINE_DEDUP_MERGE };

struct pipeline_chunking {
    enum pipeline_splitter splitter;   /* default markdown */
    enum pipeline_unit unit;           /* default tokens */
    int size;                          /* default 512 */
    int overlap;                       /* default 64; < size */
};

struct pipeline_embedding {
    enum pipeline_provider provider;   /* default hash */
    const char *model;                 /* hash: "kbpipe-hash-v1" (the only one) */
    int dimensions;                    /* must be 1536 */
    const char *base_url;              /* openai */
    const char *api_key_env;           /* openai: the variable holding the key */
    int batch_size;                    /* texts per request; default 64 */
    int timeout_ms;                    /* per request; default 60000 */
    int max_retries;                   /* default 5 */
    int max_in_flight;                 /* openai: requests at once, 1-64; default 4 */
    int max_tokens_per_request;        /* openai: tokens per request; default 300000 */
    const char *import_file;           /* import: vectors file */
    enum pipeline_import_format import_format;   /* default jsonl */
};

struct pipeline_load {
    int batch_rows;                    /* default 1000 */
    enum pipeline_index_strategy index_strategy;
    double rebuild_ratio;              /* auto: rebuild when incoming > ratio x rows; 0.2 */
    long rebuild_min_rows;             /* auto: ... and at least this many; 10000 */
};

struct pipeline_dedup {
    int is_enabled;                    /* default 1 when any source targets learnings */
    double threshold;                  /* -1: the model's calibrated default */
    enum pipeline_dedup_action action; /* default mark */
};

/* A pipeline file, read.  Free with pipeline_free(). */
struct kb_pipeline {
    const char *path;                  /* the file, as given */
    const char *name;                  /* required */
    const char *project;               /* required: project name */
    const char *project_path;          /* optional, for a created project */
    const char *project_description;   /* optional */
    const char *connection;            /* optional conninfo; NULL = usual resolution */
    const char *reject_file;           /* default build/rejects/<name>.jsonl */
    enum pipeline_mode mode;
    struct pipeline_chunking chunking;
    struct pipeline_embedding embedding;
    struct pipeline_load load;
    struct pipeline_dedup dedup;
    struct ingest_source *sources;
    int n_sources;
    int n_diags;                       /* problems found; see pipeline_diags_print */
    struct pipeline_priv *priv;        /* fields live in load.c */
};

/*
 * Read and check a pipeline file: YAML syntax, ${VAR} / ${VAR:-default}
 * interpolation, keys and types, and the meaning checks that need no disk
 * or database (dimensions, overlap, provider settings, duplicate names).
 * KB_OK: *out is a valid pipeline.  KB_E_CONFIG: *out holds the problems
 * (every one found in the pass; pipeline_diags_print shows them) and err
 * says how many; the caller frees *out.  KB_E_IO: the file cannot be read,
 * *out is NULL.
 */
enum kb_code pipeline_load(const char *path, struct kb_pipeline **out, struct kb_err *err);

/*
 * The checks against the disk (ingest_source_check for every source, the
 * import file exists), adding to p's problems.  KB_E_CONFIG with a count
 * in err when there are any (including earlier ones), else KB_OK.
 */
enum kb_code pipeline_check(struct kb_pipeline *p, const char *base_dir, struct kb_err *err);

/*
 * pipeline_check for a run: every check but the header of each CSV source,
 * which the run checks with pipeline_check_csv_header once it knows the
 * file is to be read (a CSV file unchanged since a run that read it whole
 * under the same settings is not opened, docs/loading.md, "The stat
 * pre-check").
 */
enum kb_code pipeline_check_run(struct kb_pipeline *p, const char *base_dir, struct kb_err *err);
/* The header check of source i when it is a CSV source (nothing otherwise):
 * KB_E_CONFIG as pipeline_check, its problems added to p's. */
enum kb_code pipeline_check_csv_header(struct kb_pipeline *p, int i, const char *base_dir,
                                       struct kb_err *err);

/* Print every problem as "kbpipe: FILE:LINE:COL: message", in file order. */
void pipeline_diags_print(const struct kb_pipeline *p, FILE *out);

/* The i-th problem (0-based) as origin and message; NULL past the end. */
const char *pipeline_diag(const struct kb_pipeline *p, int i, const char **origin);

/*
 * Where a value was written, by its key path: "chunking.size",
 * "embedding.model", "sources[1].path", "sources[0].include[2]".  NULL when
 * the key was not in the file (a default).
 */
const struct kb_origin *pipeline_origin(const struct kb_pipeline *p, const char *key);

/* Free the pipeline and every string it holds; NULL is a no-op. */
void pipeline_free(struct kb_pipeline *p);

/* Names for messages and reports: "markdown", "tokens", "openai", "auto", ... */
const char *pipeline_splitter_name(enum pipeline_splitter s);
const char *pipeline_unit_name(enum pipeline_unit u);
const char *pipeline_provider_name(enum pipeline_provider p);
const char *pipeline_index_strategy_name(enum pipeline_index_strategy s);
const char *pipeline_dedup_action_name(enum pipeline_dedup_action a);

/*
 * The embed options a pipeline's embedding: block describes (run_options.c;
 * also what `kbpipe search --pipeline FILE` embeds a query with).  Strings
 * are borrowed from pe.
 */
struct embed_opts;
void pipeline_embed_opts(const struct pipeline_embedding *pe, struct embed_opts *o);

/* kbpipe validate PIPELINE.yaml... (cmd_validate.c) */
enum kb_code cmd_validate(int argc, char **argv, struct kb_err *err);

/* ---- the run (cmd_run.c) ------------------------------------------------ */

/* What one run is asked to do: the command line of run and plan, or what
 * `kbpipe embed export PIPELINE.yaml` fills in.  Zero = the defaults. */
struct pipeline_run_args {
    const char *path;                  /* the pipeline file */
    int is_dry_run, is_full, is_plan, no_wait;
    int is_checksum;                   /* --checksum: read every file, trust no stat */
    int shard_k, shard_n;              /* shard_n 0: every source */
    const char *report_path;           /* --report FILE ("-": stdout), or NULL */
    const char *export_path;           /* a dry run writing Batch API requests ("-": stdout) */
};

/*
 * One run, start to end: read and check the pipeline, scan every source,
 * write the batches, dedup the learnings it touched, --full deletions and
 * the index rebuild, record and print the report.  An export_path makes
 * it a dry run.  KB_OK; KB_PARTIAL when it finished with rejected inputs
 * (the reject file has them); KB_E_CONFIG for an invalid pipeline (its
 * problems printed); otherwise the first failure, the database as the
 * last committed batch left it.
 */
enum kb_code pipeline_run(const struct pipeline_run_args *a, struct kb_err *err);

/* `kbpipe run PIPELINE.yaml [--dry-run] [--full] [--shard K/N] [--report F]` */
enum kb_code cmd_run(int argc, char **argv, struct kb_err *err);
/* `kbpipe plan PIPELINE.yaml`: a dry run with the table on stdout. */
enum kb_code cmd_plan(int argc, char **argv, struct kb_err *err);

/*
 * `kbpipe embed ...` as main.c dispatches it (export_batch.c): `embed
 * export` of a pipeline (the OpenAI Batch API request file for its chunks
 * that have neither a stored vector nor one in its import file: a dry run
 * of pipeline_run, nothing written to the database) needs the run loop, so
 * it lives here, and so does `embed backfill` (cmd_backfill.c); every
 * other form is src/embed's cmd_embed.
 */
enum kb_code cmd_embed_all(int argc, char **argv, struct kb_err *err);

/*
 * `kbpipe embed backfill --project P --table learnings|knowledge_chunks
 * [--pipeline FILE] [--batch N] [--dry-run] [--json]` (cmd_backfill.c):
 * vectors for the project's rows that have none or a stale one, batch by
 * batch, each batch one transaction.  KB_OK; KB_PARTIAL when the provider
 * rejected rows (left stale, each named in a warning); KB_E_INTERRUPTED
 * after a signal, once the batch in hand is committed; KB_E_USAGE without
 * --pipeline when the project's vectors are not all of the hash model.
 */
enum kb_code cmd_embed_backfill(int argc, char **argv, struct kb_err *err);

#endif /* KB_PIPELINE_H */
