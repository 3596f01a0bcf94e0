/*
 * fuzz_pipeline.c - the pipeline loader (src/pipeline: libyaml events, the
 * node tree, ${VAR} interpolation, the schema and meaning checks) on any
 * bytes as a pipeline file.  pipeline_load() takes a path, so the input is
 * written to a scratch file first.
 *
 * Invariants:
 *   - the result is KB_OK or KB_E_CONFIG (the file exists, so never KB_E_IO),
 *     and *out is a pipeline in both cases;
 *   - KB_OK: no problems, name and project set, 0 <= overlap < size,
 *     dimensions 1536, every source named;
 *   - KB_E_CONFIG: err is a one-line message, n_diags > 0, and every kept
 *     problem has a message and an origin that starts with the file's path,
 *     in file order (line, then column);
 *   - printing the problems and looking up origins never crashes.
 */
#include "fuzz.h"

#include "pipeline/pipeline.h"

static FILE *devnull;

static void init(void)
{
    /* variables the seeds interpolate: one set, one empty, the rest unset */
    setenv("KBFUZZ_SET", "value", 1);
    setenv("KBFUZZ_EMPTY", "", 1);
    setenv("RUN_PROJECT", "fuzz", 1);
    unsetenv("KBPIPE_EMBED");
    log_set_level(KB_LOG_QUIET);
    devnull = fopen("/dev/null", "w");
    KBFUZZ_CHECK(devnull != NULL, "cannot open /dev/null");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int is_init;
    if (!is_init) {
        init();
        is_init = 1;
    }
    const char *path = kbfuzz_write("pipeline.yaml", data, size);
    struct kb_pipeline *p = NULL;
    struct kb_err err = { 0 };
    enum kb_code rc = pipeline_load(path, &p, &err);
    KBFUZZ_CHECK(rc == KB_OK || rc == KB_E_CONFIG, "pipeline_load returned %d: %s", (int)rc,
                 err.msg);
    KBFUZZ_CHECK(p != NULL, "no pipeline with code %d", (int)rc);
    if (rc == KB_OK) {
        KBFUZZ_CHECK(p->n_diags == 0, "KB_OK with %d problems", p->n_diags);
        KBFUZZ_CHECK(p->name && p->name[0], "valid pipeline without a name");
        KBFUZZ_CHECK(p->project && p->project[0], "valid pipeline without a project");
        KBFUZZ_CHECK(p->chunking.size > 0 && p->chunking.overlap >= 0 &&
                     p->chunking.overlap < p->chunking.size,
                     "chunking size %d overlap %d", p->chunking.size, p->chunking.overlap);
        KBFUZZ_CHECK(p->embedding.dimensions == KB_PIPELINE_DIM, "dimensions %d",
                     p->embedding.dimensions);
        for (int i = 0; i < p->n_sources; i++)
            KBFUZZ_CHECK(p->sources[i].name && p->sources[i].name[0], "source %d unnamed", i);
        KBFUZZ_CHECK(pipeline_diag(p, 0, NULL) == NULL, "a problem in a valid pipeline");
    } else {
        kbfuzz_check_err(rc, &err);
        KBFUZZ_CHECK(p->n_diags > 0, "KB_E_CONFIG without problems");
        long prev_line = 0, prev_col = 0;
        int i;
        for (i = 0; i < p->n_diags; i++) {
            const char *origin = NULL;
            const char *msg = pipeline_diag(p, i, &origin);
            if (msg == NULL)
                break;   /* counted, not kept (past the first 200) */
            KBFUZZ_CHECK(msg[0] != '\0', "problem %d has no message", i);
            KBFUZZ_CHECK(origin && strncmp(origin, path, strlen(path)) == 0,
                         "problem %d origin '%s' does not name the file", i,
                         origin ? origin : "(null)");
            /* "PATH:LINE:COL" (or PATH alone): file order */
            long line = 0, col = 0;
            const char *pos = origin + strlen(path);
            if (*pos == ':')
                sscanf(pos, ":%ld:%ld", &line, &col);
            KBFUZZ_CHECK(line > prev_line || (line == prev_line && col >= prev_col) || line == 0,
                         "problem %d at %ld:%ld after %ld:%ld", i, line, col, prev_line,
                         prev_col);
            if (line) {
                prev_line = line;
                prev_col = col;
            }
        }
        KBFUZZ_CHECK(i > 0, "no problem kept of %d", p->n_diags);
    }
    pipeline_diags_print(p, devnull);
    static const char *const keys[] = { "name", "project", "chunking.size", "sources[0].path",
                                        "sources[0].include[0]", "embedding.model" };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const struct kb_origin *at = pipeline_origin(p, keys[k]);
        KBFUZZ_CHECK(at == NULL || (at->line >= 1 && at->col >= 1), "origin of %s", keys[k]);
    }
    pipeline_free(p);
    kbfuzz_unlink("pipeline.yaml");
    return 0;
}
