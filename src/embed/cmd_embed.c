/*
 * cmd_embed.c - `kbpipe embed SUBCOMMAND`:
 *   export       the OpenAI Batch API request file for chunks given as JSON
 *                Lines {"content_hash": ..., "text": ...} (export.c)
 *   similarity   the kbpipe-hash-v1 cosine similarity of two texts, to
 *                check a dedup threshold by hand (docs/embeddings.md)
 * This is the file-to-file form (export with --model); `kbpipe embed export
 * PIPELINE.yaml`, the chunks of a pipeline that lack vectors, is
 * src/pipeline's: cmd_embed_all routes every export without --model there.
 */
#include "embed/embed_int.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: kbpipe embed export [--pipeline] PIPELINE.yaml [-o FILE] [--shard K/N]\n"
    "       kbpipe embed export --model MODEL [-o FILE] [CHUNKS.jsonl]\n"
    "       kbpipe embed similarity TEXT_A TEXT_B\n"
    "       kbpipe embed backfill --project NAME --table learnings|knowledge_chunks\n"
    "                             [--pipeline FILE] [--batch N] [--dry-run] [--json]\n"
    "\n"
    "backfill: vectors for a project's rows that have none or a stale one (rows\n"
    "the service wrote through SQL); 'kbpipe embed backfill --help'.\n"
    "\n"
    "export PIPELINE.yaml: the Batch API request file for the pipeline's chunks\n"
    "that have no vector yet, neither stored nor in its import file (the\n"
    "pipeline needs provider: import; 'kbpipe embed export --help').  The form\n"
    "is chosen by the arguments, not a file name: with --model the input is\n"
    "chunks, without it a pipeline file, whatever it is called.\n"
    "\n"
    "export --model: write the request file of OpenAI's Batch API (one POST\n"
    "/v1/embeddings per chunk, custom_id = the chunk's content_hash,\n"
    "dimensions 1536) for the chunks read from CHUNKS.jsonl (default: stdin),\n"
    "one JSON object per line with \"content_hash\" and \"text\".  Upload the\n"
    "file as a batch; import its output with `provider: import`,\n"
    "`format: openai_batch`.  OpenAI takes at most 50,000 requests per file.\n"
    "\n"
    "  --model MODEL   the embedding model, e.g. text-embedding-3-small\n"
    "  -o, --output F  write to F instead of stdout\n"
    "\n"
    "similarity: print the cosine similarity of the two texts' kbpipe-hash-v1\n"
    "vectors (1.0 = same features; see docs/embeddings.md for typical values).\n"
    "\n"
    "Examples:\n"
    "  kbpipe embed export --model text-embedding-3-small -o batch.jsonl chunks.jsonl\n"
    "  kbpipe embed similarity 'Restart the API server.' 'Restart the API server after the upgrade.'\n";

static enum kb_code read_items(FILE *in, const char *name, struct embed_export_item **items,
                               int *n, json_t *keep, struct kb_err *err)
{
    char *line = NULL;
    size_t cap = 0, n_cap = 0;
    ssize_t len;
    long lineno = 0;
    enum kb_code rc = KB_OK;
    *items = NULL;
    *n = 0;
    while (rc == KB_OK && (len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        char at[300];
        snprintf(at, sizeof at, "%s:%ld", name, lineno);
        json_error_t jerr;
        json_t *o = json_loadb(line, (size_t)len, 0, &jerr);
        if (!o) {
            if (strspn(line, " \t\r\n") == (size_t)len)
                continue;
            rc = KB_FAIL_AT(err, KB_E_INPUT, at, "not valid JSON (%s); each line must be "
                            "{\"content_hash\": ..., \"text\": ...}", jerr.text);
            break;
        }
        json_t *h = json_object_get(o, "content_hash"), *t = json_object_get(o, "text");
        if (!json_is_string(h) || !json_is_string(t)) {
            json_decref(o);
            rc = KB_FAIL_AT(err, KB_E_INPUT, at, "each line needs string \"content_hash\" and "
                            "\"text\" fields");
            break;
        }
        json_array_append_new(keep, o);   /* keeps the strings alive */
        if ((size_t)*n == n_cap) {
            n_cap = n_cap ? 2 * n_cap : 256;
            *items = kb_xrealloc(*items, n_cap * sizeof **items);
        }
        (*items)[(*n)++] = (struct embed_export_item){ json_string_value(h), json_string_value(t),
                                                       json_string_length(t) };
    }
    free(line);
    if (rc == KB_OK && ferror(in))
        rc = KB_FAIL_AT(err, KB_E_IO, name, "reading failed: %s", strerror(errno));
    return rc;
}

static enum kb_code do_export(int argc, char **argv, struct kb_err *err)
{
    static const struct option longopts[] = {
        { "model", required_argument, NULL, 'm' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *model = NULL, *output = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'o': output = optarg; break;
        case 'h': fputs(USAGE, stdout); return KB_OK;
        default:
            return kb_cli_unknown_option("embed", argv[optind - 1], longopts, err);
        }
    }
    if (!model || !model[0])
        return KB_FAIL(err, KB_E_USAGE, NULL, "export needs --model (the embedding model, "
                                              "e.g. text-embedding-3-small)");
    if (argc - optind > 1)
        return KB_FAIL(err, KB_E_USAGE, NULL, "export reads one file; see 'kbpipe embed --help'");
    const char *in_name = optind < argc ? argv[optind] : "-";
    FILE *in = strcmp(in_name, "-") == 0 ? stdin : fopen(in_name, "rb");
    if (!in)
        return KB_FAIL_AT(err, KB_E_IO, in_name, "cannot open: %s", strerror(errno));
    json_t *keep = json_array();
    struct embed_export_item *items = NULL;
    int n = 0;
    enum kb_code rc = read_items(in, strcmp(in_name, "-") == 0 ? "stdin" : in_name, &items, &n,
                                 keep, err);
    if (in != stdin)
        fclose(in);
    FILE *out = stdout;
    if (rc == KB_OK && output && !(out = fopen(output, "wb")))
        rc = KB_FAIL_AT(err, KB_E_IO, output, "cannot create: %s", strerror(errno));
    if (rc == KB_OK)
        rc = embed_export_write(out, output ? output : "stdout", model, items, n, err);
    if (out && out != stdout && fclose(out) != 0 && rc == KB_OK)
        rc = KB_FAIL_AT(err, KB_E_IO, output, "writing failed: %s", strerror(errno));
    if (rc == KB_OK) {
        if (n > 50000)
            log_warn("%d requests: OpenAI takes at most 50,000 per batch file; split it "
                     "(split -l 50000)", n);
        log_info("embed export: %d requests written to %s", n, output ? output : "stdout");
    }
    free(items);
    json_decref(keep);
    return rc;
}

static enum kb_code do_similarity(int argc, char **argv, struct kb_err *err)
{
    if (argc != 3)
        return KB_FAIL(err, KB_E_USAGE, NULL, "similarity takes two texts; see 'kbpipe embed "
                                              "--help'");
    float *a = kb_xmalloc(2 * KB_EMBED_DIM * sizeof *a), *b = a + KB_EMBED_DIM;
    embed_hash_text(argv[1], strlen(argv[1]), a);
    embed_hash_text(argv[2], strlen(argv[2]), b);
    double dot = 0;
    for (int i = 0; i < KB_EMBED_DIM; i++)
        dot += (double)a[i] * b[i];
    free(a);
    printf("%.4f\n", dot);
    return KB_OK;
}

enum kb_code cmd_embed(int argc, char **argv, struct kb_err *err)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? KB_FAIL(err, KB_E_USAGE, NULL, "embed needs a subcommand: export, "
                                                         "similarity or backfill")
                        : KB_OK;
    }
    if (strcmp(argv[1], "export") == 0)
        return do_export(argc - 1, argv + 1, err);
    if (strcmp(argv[1], "similarity") == 0)
        return do_similarity(argc - 1, argv + 1, err);
    return KB_FAIL(err, KB_E_USAGE, NULL,
                   "unknown subcommand '%.40s'; use export, similarity or backfill", argv[1]);
}
