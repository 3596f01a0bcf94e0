/*
 * cmd_validate.c - kbpipe validate PIPELINE.yaml...: read each pipeline
 * and check it against the disk, without touching the database.  Every
 * problem is printed, compiler style, on stderr:
 *
 *   kbpipe: pipelines/docs.yaml:9:14: chunking.overlap (600) must be smaller than ...
 *   kbpipe: pipelines/docs.yaml: 1 problem found; fix it and run kbpipe validate again
 *
 * and a valid file gets one line on stdout (not with -q):
 *
 *   pipelines/docs.yaml: valid (project supervisor-service; 1 source: docs)
 *
 * Exit 0 when every file is valid, 2 (KB_E_CONFIG) when one is not.
 */
#include "pipeline.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: kbpipe validate PIPELINE.yaml...\n"
            "\n"
            "Check pipeline files without touching the database: YAML syntax, ${VAR}\n"
            "interpolation, keys and types, and meaning (dimensions 1536, overlap < size,\n"
            "embedding provider settings, roots and globs that match files, CSV columns\n"
            "present in the header, export files that exist).  Relative paths in a\n"
            "pipeline start at the working directory.\n"
            "\n"
            "Exit status: 0 valid, 2 invalid or not readable (docs/operations.md).\n"
            "\n"
            "Example:\n"
            "  kbpipe validate pipelines/*.yaml\n");
}

enum kb_code cmd_validate(int argc, char **argv, struct kb_err *err)
{
    int first = 1;
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return KB_OK;
    }
    if (argc > 1 && !strcmp(argv[1], "--"))
        first = 2;
    if (first >= argc)
        return KB_FAIL(err, KB_E_USAGE, NULL, "validate needs a pipeline file; usage: kbpipe "
                       "validate PIPELINE.yaml...");
    for (int i = first; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return KB_FAIL(err, KB_E_USAGE, NULL, "validate: unknown option '%.40s'; usage: "
                           "kbpipe validate PIPELINE.yaml...", argv[i]);
    enum kb_code worst = KB_OK;
    int n_bad = 0, n_files = argc - first;
    struct kb_err last = { 0 };
    for (int i = first; i < argc; i++) {
        struct kb_pipeline *p = NULL;
        struct kb_err e = { 0 };
        enum kb_code rc = pipeline_load(argv[i], &p, &e);
        if (rc == KB_OK)
            rc = pipeline_check(p, ".", &e);
        else if (rc == KB_E_CONFIG && p)   /* p is NULL when the file cannot be read */
            pipeline_check(p, ".", &e);   /* one pass names every problem */
        if (rc == KB_OK) {
            if (!kb_cli.is_quiet) {
                printf("%s: valid (project %s; %d source%s:", argv[i], p->project,
                       p->n_sources, p->n_sources == 1 ? "" : "s");
                for (int k = 0; k < p->n_sources; k++)
                    printf("%s %s", k ? "," : "", p->sources[k].name);
                printf(")\n");
            }
        } else {
            if (p)
                pipeline_diags_print(p, stderr);
            n_bad++;
            if (worst == KB_OK || rc != KB_E_CONFIG)
                worst = rc;
            if (i + 1 < argc)
                log_err(&e);   /* the last summary is main's to print */
            last = e;
        }
        pipeline_free(p);
    }
    if (worst == KB_OK)
        return KB_OK;
    *err = last;
    if (n_files > 1 && worst == KB_E_CONFIG)
        return KB_FAIL(err, KB_E_CONFIG, NULL, "%d of %d pipeline files are invalid; fix them "
                       "and run kbpipe validate again", n_bad, n_files);
    return worst;
}
