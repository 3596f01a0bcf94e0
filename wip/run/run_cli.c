/* fragment: option parsing for run/plan */
struct run_args {
    const char *pipeline_path;
    int is_dry_run, is_full, is_plan, no_wait;
    int shard_k, shard_n;
    const char *report_path;
};

static const char RUN_USAGE[] =
    "usage: kbpipe run PIPELINE.yaml [--dry-run] [--full] [--shard K/N]\n"
    "                  [--report FILE.json] [--no-wait] [-q|-v]\n"
    "\n"
    "Run a pipeline: read its sources, skip what is unchanged, chunk, embed and\n"
    "load the rest, then dedup the learnings it touched.  Incremental and\n"
    "idempotent: a second run over an unchanged corpus writes nothing.\n"
    "\n"
    "  --dry-run        read and compare only: report what would be added,\n"
    "                   updated, skipped and deleted; write nothing\n"
    "  --full           also delete the pipeline's sources this run did not see\n"
    "                   (only after the whole scan succeeded); same as mode: full\n"
    "  --shard K/N      process only the Kth of N deterministic partitions of the\n"
    "                   sources (docs/scaling.md)\n"
    "  --report FILE    write the JSON run report to FILE ('-' for stdout); it is\n"
    "                   also stored in kbpipe_runs\n"
    "  --no-wait        if another run of this pipeline holds its lock, exit 1 at\n"
    "                   once instead of waiting for it\n"
    "  -q               nothing but errors;  -v  progress detail\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 invalid pipeline or usage, 3 finished\n"
    "with rejected inputs (see the reject file).\n"
    "\n"
    "Example:\n"
    "  kbpipe run pipelines/docs.yaml --report build/docs-report.json\n";

static const char PLAN_USAGE[] =
    "usage: kbpipe plan PIPELINE.yaml [--full] [--shard K/N]\n"
    "\n"
    "Print what 'kbpipe run' would do: per source how many documents it would add,\n"
    "update and skip, how many chunks it would write and vectors it would compute,\n"
    "and (with --full) how many sources it would delete.  Writes nothing; the same\n"
    "as 'kbpipe run --dry-run' with the summary on stdout.\n"
    "\n"
    "Example:\n"
    "  kbpipe plan pipelines/docs.yaml\n";
