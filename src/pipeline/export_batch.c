/*
 * export_batch.c - `kbpipe embed export PIPELINE.yaml`: the OpenAI Batch
 * API request file for the chunks of a pipeline that have no vector yet.
 *
 * It is a mode of the run loop (`kbpipe run PIPELINE.yaml --export-batch
 * FILE`, a dry run): sources are read, skipped when unchanged and chunked
 * exactly as a run does, and stored vectors are looked up by (content_hash,
 * model) as a run does.  Of the rows still without one, those the import
 * file does not hold either become one request each (embed_export_write:
 * custom_id = content_hash, model = embedding.model), each content hash
 * once per file.  Rows the file does hold, even with a bad vector, are not
 * exported: the run reports those, and a second vector under the same key
 * would be ignored (the first one is used).
 *
 * The file is written under a temporary name and renamed when the scan
 * ends, so a failed export leaves no half file; "-" writes to stdout.
 * `kbpipe embed` itself enters here (cmd_embed_all), which hands `embed
 * backfill` to cmd_backfill.c and every other form to src/embed's cmd_embed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline_int.h"

struct pipeline_export {
    const char *path;            /* as given; "-" = stdout */
    char *tmp;                   /* the file being written (NULL for stdout) */
    FILE *out;
    const char *model;
    unsigned char (*keys)[16];   /* open addressing over content hashes; all zero = empty */
    size_t cap, n;               /* n = requests written */
    long n_in_file;              /* rows the import file holds */
};

/* The 16-byte key of a content hash: its first 32 hex digits (a SHA-256),
 * else its first bytes; never all zero (that marks an empty slot). */
static void key_of(const char *hash, unsigned char key[16])
{
    memset(key, 0, 16);
    size_t n = strlen(hash);
    int is_hex = n >= 32;
    for (size_t i = 0; is_hex && i < 32; i++) {
        char c = hash[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            is_hex = 0;
        else
            key[i / 2] |= (unsigned char)(i % 2 ? v : v << 4);
    }
    if (!is_hex) {
        memset(key, 0, 16);
        memcpy(key, hash, n < 15 ? n : 15);
    }
    key[15] |= 1;
}

/* Add a content hash; 0 when it was there already. */
static int seen_add(struct pipeline_export *x, const char *hash)
{
    if (2 * (x->n + 1) > x->cap) {
        size_t cap = x->cap ? 2 * x->cap : 1024;
        unsigned char (*keys)[16] = kb_xcalloc(cap, 16);
        for (size_t i = 0; i < x->cap; i++) {
            if (!x->keys[i][15])
                continue;
            size_t j;
            memcpy(&j, x->keys[i], sizeof j);
            for (j %= cap; keys[j][15]; j = (j + 1) % cap)
                ;
            memcpy(keys[j], x->keys[i], 16);
        }
        free(x->keys);
        x->keys = keys;
        x->cap = cap;
    }
    unsigned char key[16];
    key_of(hash, key);
    size_t j;
    memcpy(&j, key, sizeof j);   /* SHA-256 bits: already uniform */
    for (j %= x->cap; x->keys[j][15]; j = (j + 1) % x->cap)
        if (memcmp(x->keys[j], key, 16) == 0)
            return 0;
    memcpy(x->keys[j], key, 16);
    return 1;
}

/* See pipeline_int.h. */
enum kb_code pipeline_export_open(const char *path, const struct kb_pipeline *p,
                              struct pipeline_export **out, struct kb_err *err)
{
    *out = NULL;
    const struct kb_origin *at = pipeline_origin(p, "embedding.provider");
    char where[300];
    snprintf(where, sizeof where, "%s:%ld:%ld", p->path, at ? at->line : 0L, at ? at->col : 0L);
    if (p->embedding.provider != PIPELINE_EMBED_IMPORT)
        return KB_FAIL_AT(err, KB_E_CONFIG, at ? where : p->path,
                          "embed export is for a pipeline with embedding.provider import (the "
                          "Batch API's output is read back through it); this one uses %s, set "
                          "provider: import, format: openai_batch, file: the output file",
                          pipeline_provider_name(p->embedding.provider));
    if (pipeline_origin(p, "embedding.model") == NULL)
        return KB_FAIL_AT(err, KB_E_CONFIG, p->path,
                          "embed export needs embedding.model, the model the Batch API is to "
                          "run (e.g. model: text-embedding-3-small)");
    struct pipeline_export *x = kb_xcalloc(1, sizeof *x);
    x->path = path;
    x->model = p->embedding.model;
    if (strcmp(path, "-") == 0) {
        x->out = stdout;
    } else {
        x->tmp = kb_xasprintf("%s.tmp.%ld", path, (long)getpid());
        x->out = fopen(x->tmp, "wb");
        if (!x->out) {
            enum kb_code rc = KB_FAIL_AT(err, KB_E_IO, path, "cannot create the request file: "
                                         "%s; check that its folder exists and is writable",
                                         strerror(errno));
            free(x->tmp);
            free(x);
            return rc;
        }
    }
    *out = x;
    return KB_OK;
}

/* See pipeline_int.h. */
enum kb_code pipeline_export_rows(struct pipeline_export *x, const struct embed_embedder *e,
                              struct embed_batch *b, struct kb_err *err)
{
    struct embed_export_item *items = kb_xmalloc((size_t)(b->n > 0 ? b->n : 1) * sizeof *items);
    int n = 0;
    for (int i = 0; i < b->n; i++) {
        struct embed_row *r = &b->rows[i];
        if (r->state != EMBED_ROW_PENDING)
            continue;   /* reused from the database */
        if (embed_embedder_has_vector(e, r)) {
            r->state = EMBED_ROW_IMPORTED;   /* a run would import it (the report says so) */
            x->n_in_file++;
            continue;
        }
        if (r->content_hash && seen_add(x, r->content_hash))
            items[n++] = (struct embed_export_item){ r->content_hash, r->text, r->len };
    }
    enum kb_code rc = embed_export_write(x->out, strcmp(x->path, "-") ? x->path : "stdout",
                                         x->model, items, n, err);
    x->n += (size_t)n;
    free(items);
    return rc;
}

/* See pipeline_int.h. */
enum kb_code pipeline_export_finish(struct pipeline_export *x, struct kb_err *err)
{
    enum kb_code rc = KB_OK;
    FILE *f = x->out;
    x->out = NULL;
    if (f == stdout ? fflush(f) != 0 : fclose(f) != 0)
        rc = KB_FAIL_AT(err, KB_E_IO, x->path, "writing the request file failed: %s; check the "
                        "disk", strerror(errno));
    if (rc == KB_OK && x->tmp && rename(x->tmp, x->path) != 0)
        rc = KB_FAIL_AT(err, KB_E_IO, x->path, "cannot move the request file into place: %s",
                        strerror(errno));
    if (rc != KB_OK)
        return rc;
    free(x->tmp);
    x->tmp = NULL;   /* in place: pipeline_export_free keeps it */
    if (x->n > 50000)
        log_warn("%s: %zu requests; OpenAI takes at most 50,000 per batch file: split it "
                 "(split -l 50000)", x->path, x->n);
    log_info("embed export: %zu request(s) written to %s (chunks without a vector; %ld more are "
             "in the import file)", x->n, strcmp(x->path, "-") ? x->path : "stdout",
             x->n_in_file);
    return KB_OK;
}

/* See pipeline_int.h. */
void pipeline_export_free(struct pipeline_export *x)
{
    if (!x)
        return;
    if (x->out && x->out != stdout)
        fclose(x->out);
    if (x->tmp) {
        unlink(x->tmp);   /* not finished: no half file */
        free(x->tmp);
    }
    free(x->keys);
    free(x);
}

static const char EXPORT_USAGE[] =
    "usage: kbpipe embed export [--pipeline] PIPELINE.yaml [-o FILE] [--shard K/N]\n"
    "       kbpipe embed export --model MODEL [-o FILE] [CHUNKS.jsonl]\n"
    "\n"
    "Write the request file of OpenAI's Batch API for the chunks of a pipeline\n"
    "that have no vector yet: read and chunk its sources as 'kbpipe run' does,\n"
    "skip unchanged sources and chunks whose vector is stored under\n"
    "(content_hash, embedding.model) or found in the import file, and write one\n"
    "request per remaining content hash (custom_id = content_hash, model =\n"
    "embedding.model, dimensions 1536).  The pipeline needs provider: import;\n"
    "add the batch's output to its file (format: openai_batch) and run it.\n"
    "Writes nothing to the database.\n"
    "\n"
    "The form is chosen by the arguments, never by a file name: with --model the\n"
    "input is a JSON Lines file of {\"content_hash\", \"text\"} (see 'kbpipe embed\n"
    "--help'); without it, the argument (or --pipeline FILE) is a pipeline file.\n"
    "\n"
    "  --pipeline FILE     the pipeline file (the same as giving it alone)\n"
    "  -o, --output FILE   write to FILE (default: stdout); replaced only when\n"
    "                      the export succeeds\n"
    "  --shard K/N         only the Kth of N partitions of the sources\n"
    "\n"
    "Example:\n"
    "  kbpipe embed export my-pipeline.yaml -o build/batch.jsonl\n";

/* `kbpipe embed export [--pipeline] PIPELINE [-o FILE] [--shard K/N]`; argv[0]
 * is "export".  A dry run of pipeline_run with export_path set. */
static enum kb_code embed_export_pipeline(int argc, char **argv, struct kb_err *err)
{
    static const struct option longopts[] = {
        { "pipeline", required_argument, NULL, 'p' },
        { "output", required_argument, NULL, 'o' },
        { "shard", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct pipeline_run_args a = { .export_path = "-", .is_dry_run = 1 };
    enum kb_code rc;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': a.path = optarg; break;
        case 'o': a.export_path = optarg; break;
        case 's':
            if ((rc = run_parse_shard(optarg, &a.shard_k, &a.shard_n, err)) != KB_OK)
                return rc;
            break;
        case 'h': fputs(EXPORT_USAGE, stdout); return KB_OK;
        case ':':
            return KB_FAIL(err, KB_E_USAGE, NULL, "option '%.40s' needs a value; see 'kbpipe "
                           "embed export --help'", argv[optind - 1]);
        default:
            return kb_cli_unknown_option("embed export", argv[optind - 1], longopts, err);
        }
    }
    int n_args = argc - optind;
    if (n_args == 1 && a.path == NULL)
        a.path = argv[optind];
    else if (n_args > 0 || a.path == NULL)
        return KB_FAIL(err, KB_E_USAGE, NULL, "embed export takes one pipeline file (or, with "
                       "--model MODEL, one JSON Lines file of chunks); see 'kbpipe embed export "
                       "--help'");
    /* the run loop does the work, as `kbpipe run PIPELINE --export-batch FILE` */
    return pipeline_run(&a, err);
}

/*
 * Does the embed export command line (argv[0] "export") give --model, the
 * option only the file form has?  An option's value is never taken for
 * one (-o --model writes a file named --model); "--" ends the options.
 */
static int has_model_option(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (strcmp(a, "--model") == 0 || strncmp(a, "--model=", 8) == 0)
            return 1;
        if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--shard") ||
            !strcmp(a, "--pipeline"))
            i++;   /* its value */
    }
    return 0;
}

/* See pipeline.h.  The route is the subcommand's own arguments: `embed
 * export` without --model is the pipeline form, whatever the file's name. */
enum kb_code cmd_embed_all(int argc, char **argv, struct kb_err *err)
{
    if (argc >= 2 && strcmp(argv[1], "backfill") == 0)
        return cmd_embed_backfill(argc - 1, argv + 1, err);
    if (argc >= 2 && strcmp(argv[1], "export") == 0 && !has_model_option(argc - 1, argv + 1))
        return embed_export_pipeline(argc - 1, argv + 1, err);
    return cmd_embed(argc, argv, err);
}
