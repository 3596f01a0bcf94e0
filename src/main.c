/*
 * main.c - command dispatch only.  Global options (--db, -q, -v) are taken
 * from anywhere on the line; the rest goes to cmd_<name>() of the module
 * that owns the work, which returns an enum kb_code.  The exit status is
 * decided here and only here (kb_code_exit_status, docs/operations.md).
 */
#include <stdio.h>
#include <string.h>

#include "db/db.h"
#include "load/load.h"
#include "pipeline/pipeline.h"
#include "search/search.h"
#include "util/util.h"

typedef enum kb_code (*cmd_fn)(int argc, char **argv, struct kb_err *err);

struct command {
    const char *name;
    cmd_fn fn;
    const char *summary;
};

/* each row names the file its handler lives in: any command is one hop from here */
static const struct command commands[] = {
    { "run",      cmd_run,       /* src/pipeline/cmd_run.c */
      "run a pipeline: read, chunk, embed and load what changed" },
    { "plan",     cmd_plan,      /* src/pipeline/cmd_run.c */
      "what a run would add, update, skip and delete; writes nothing" },
    { "dedup",    cmd_dedup,     /* src/load/cmd_dedup.c */
      "find duplicate learnings of a project and report, mark or merge" },
    { "search",   cmd_search,    /* src/search/cmd_search.c */
      "search a project's chunks or learnings (vector, text or hybrid)" },
    { "eval",     cmd_eval,      /* src/search/cmd_eval.c */
      "score a project's search on labelled questions (recall, MRR)" },
    { "migrate",  cmd_migrate,   /* src/db/cmd_migrate.c */
      "apply, roll back, list, verify or create schema migrations" },
    { "stats",    cmd_stats,     /* src/db/cmd_stats.c */
      "what is loaded, per project, and the last runs" },
    { "sources",  cmd_sources,   /* src/db/cmd_sources.c */
      "list a project's loaded sources with chunks and tokens" },
    { "show",     cmd_show,      /* src/db/cmd_sources.c */
      "print one source's chunks with token counts and headings" },
    { "delete",   cmd_delete,    /* src/db/cmd_delete.c */
      "remove a project's sources with their chunks and learnings" },
    { "export",   cmd_export,    /* src/db/cmd_export.c */
      "write a project's sources and chunks as JSON Lines (streaming)" },
    { "seed",     cmd_seed,      /* src/db/cmd_seed.c */
      "load the development seed data (projects, ports, tasks, ...)" },
    { "secret",   cmd_secret,    /* src/db/cmd_secret.c */
      "store, read, list, audit and rotate a project's encrypted secrets" },
    { "validate", cmd_validate,  /* src/pipeline/cmd_validate.c */
      "check a pipeline file without touching the database" },
    { "embed",    cmd_embed_all, /* src/pipeline/export_batch.c (backfill:
                                    src/pipeline/cmd_backfill.c; the rest:
                                    src/embed/cmd_embed.c) */
      "backfill stale vectors; write a Batch API request file; compare texts" },
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* the npm script names of the supervisor-service spec, accepted as they are
 * typed there: "kbpipe migrate:up" == "kbpipe migrate up" */
static const struct alias {
    const char *name, *command, *sub;
} aliases[] = {
    { "migrate:up",     "migrate", "up" },
    { "migrate:down",   "migrate", "down" },
    { "migrate:create", "migrate", "create" },
    { "db:seed",        "seed",    NULL },
};

#define N_ALIASES (sizeof aliases / sizeof aliases[0])

/* argv with an alias in argv[1] spelled out (argv[0..argc] has argc + 1
 * slots, the last NULL; one more is needed for the subcommand). */
static char **expand_alias(int *argc, char **argv)
{
    static char *out[512];
    for (size_t i = 0; i < N_ALIASES; i++) {
        if (strcmp(argv[1], aliases[i].name) != 0)
            continue;
        int extra = aliases[i].sub != NULL;
        if (*argc + extra + 1 > (int)(sizeof out / sizeof out[0]))
            return argv;   /* too long a line to expand: "unknown command" says why */
        out[0] = argv[0];
        out[1] = (char *)aliases[i].command;
        if (extra)
            out[2] = (char *)aliases[i].sub;
        for (int j = 2; j <= *argc; j++)
            out[j + extra] = argv[j];
        *argc += extra;
        return out;
    }
    return argv;
}

/* "unknown command 'serach' (did you mean 'search'?)" */
static void unknown_command(const char *name)
{
    const char *names[N_COMMANDS + N_ALIASES + 3];
    size_t n = 0;
    for (size_t i = 0; i < N_COMMANDS; i++)
        names[n++] = commands[i].name;
    for (size_t i = 0; i < N_ALIASES; i++)
        names[n++] = aliases[i].name;
    names[n++] = "help";
    names[n++] = "version";
    names[n] = NULL;
    size_t len = strlen(name);
    const char *near = kb_nearest(name, names, len <= 2 ? (int)len - 1 : 2);
    if (near)
        log_error("unknown command '%.64s' (did you mean '%s'?); 'kbpipe --help' lists the "
                  "commands", name, near);
    else
        log_error("unknown command '%.64s'; 'kbpipe --help' lists the commands", name);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: kbpipe [--db CONNINFO] [-q|-v] COMMAND [ARGS]\n"
            "\n"
            "kbpipe keeps a PostgreSQL + pgvector knowledge base loaded from YAML pipelines.\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "Global options (anywhere on the line):\n"
            "  --db CONNINFO   connection string or URL; else DATABASE_URL, else the PG*\n"
            "                  variables, else DATABASE_URL/PG* from ./.env\n"
            "  -q, --quiet     print nothing but errors\n"
            "  -v, --verbose   more detail (repeat for debug output)\n"
            "  -h, --help      this text; 'kbpipe COMMAND --help' for a command\n"
            "  --version       print the version\n"
            "\n"
            "Aliases (the supervisor-service npm script names): migrate:up, migrate:down,\n"
            "migrate:create NAME (= migrate up|down|create), db:seed (= seed).\n"
            "\n"
            "Exit status (the same cause gives the same status in every command):\n"
            "  0        success\n"
            "  1        failure while working: database, files, provider, a busy pipeline\n"
            "  2        usage, or a pipeline file that cannot be read or is invalid\n"
            "  3        finished, but some inputs were rejected (see the reject file)\n"
            "  130/143  interrupted by SIGINT/SIGTERM (128 + the signal)\n");
}

/* Remove global options from argv (in place); returns the new argc or -1. */
static int take_global_options(int argc, char **argv, struct kb_err *err)
{
    int out = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < argc)
                argv[out++] = argv[i++];
            break;
        } else if (strcmp(a, "--db") == 0) {
            if (i + 1 >= argc) {
                KB_FAIL(err, KB_E_USAGE, NULL, "--db needs a connection string");
                return -1;
            }
            kb_cli.db = argv[++i];
        } else if (strncmp(a, "--db=", 5) == 0) {
            kb_cli.db = a + 5;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            kb_cli.is_quiet = 1;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            kb_cli.verbosity++;
        } else if (strcmp(a, "-vv") == 0) {
            kb_cli.verbosity += 2;
        } else {
            argv[out++] = argv[i];
        }
    }
    argv[out] = NULL;
    return out;
}

int main(int argc, char **argv)
{
    struct kb_err err = { 0 };
    int n = take_global_options(argc, argv, &err);
    if (n < 0) {
        log_err(&err);
        return kb_code_exit_status(err.code);
    }
    log_set_level(kb_cli.is_quiet ? KB_LOG_ERROR
                  : kb_cli.verbosity >= 2 ? KB_LOG_DEBUG
                  : kb_cli.verbosity == 1 ? KB_LOG_INFO
                                          : KB_LOG_WARN);
    if (n < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        if (n >= 3 && strcmp(argv[1], "help") == 0) {
            /* "kbpipe help run" == "kbpipe run --help" */
            argv[1] = argv[2];
            argv[2] = "--help";
            argv[3] = NULL;
            n = 3;
        } else {
            usage(n < 2 ? stderr : stdout);
            return n < 2 ? 2 : 0;
        }
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("kbpipe %s\n", KB_VERSION);
        return fclose(stdout) == 0 ? 0 : 1;
    }
    argv = expand_alias(&n, argv);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        enum kb_code rc = commands[i].fn(n - 1, argv + 1, &err);
        if (rc != KB_OK && rc != KB_PARTIAL)
            log_err(&err);
        /* a result that could not be written is a failure (as jq checks) */
        if (fflush(stdout) != 0 || ferror(stdout)) {
            log_error("writing output failed; check the disk or the pipe");
            if (rc == KB_OK)
                rc = KB_E_IO;
        }
        return kb_code_exit_status(rc);
    }
    unknown_command(argv[1]);
    return kb_code_exit_status(KB_E_USAGE);
}
