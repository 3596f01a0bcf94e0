/*
 * cmd_seed.c - `kbpipe seed [--reset] [--dir DIR]`: load the development
 * seed data (projects, port ranges, epics, issues, tasks, estimation
 * factors, secret templates) from JSON files; the loading is seed.c's.
 */
#include "db/db_int.h"

#include <getopt.h>
#include <string.h>

static const char USAGE[] =
    "usage: kbpipe seed [--reset] [--dir DIR]\n"
    "\n"
    "Load the development seed data into a migrated database: the sample\n"
    "projects (consilio, odin, openhorizon, health-agent), port ranges per\n"
    "service type, epics, issues and tasks, estimation factors and secret\n"
    "templates.  Rows are matched by their natural keys (project name,\n"
    "range name, epic id, issue number, task title, ...): what is already\n"
    "there is left alone, so running it twice changes nothing.  Everything\n"
    "happens in one transaction.  It prints on stderr (unless -q) the rows\n"
    "added to each table and their total, or that there was nothing to add.\n"
    "\n"
    "  --reset     first empty the seeded tables: deletes EVERY project and all\n"
    "              that belongs to it (epics, issues, tasks, secrets, ports,\n"
    "              knowledge), every port range, estimation factor and secret\n"
    "              template; then load.  For development databases only.\n"
    "  --dir DIR   the folder of the seed files (default: $KBPIPE_SEED_DIR, else\n"
    "              ./samples/seed, else the installed share/kbpipe/seed)\n"
    "\n"
    "Files: projects.json, port_ranges.json, estimation_factors.json,\n"
    "secret_templates.json, epics.json, issues.json, tasks.json; each a JSON\n"
    "array of objects whose keys are the table's columns (docs/schema.md).\n"
    "\n"
    "Examples:\n"
    "  kbpipe migrate up && kbpipe seed\n"
    "  kbpipe seed --reset\n";

enum kb_code cmd_seed(int argc, char **argv, struct kb_err *err)
{
    static const struct option longopts[] = {
        { "reset", no_argument, NULL, 'r' },
        { "dir", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL;
    int is_reset = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r': is_reset = 1; break;
        case 'd': dir = optarg; break;
        case 'h': fputs(USAGE, stdout); return KB_OK;
        default:
            return kb_cli_unknown_option("seed", argv[optind - 1], longopts, err);
        }
    }
    if (optind < argc)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "unexpected argument '%.40s'; see 'kbpipe seed --help'", argv[optind]);
    if (dir && dir[0] == '\0')
        return KB_FAIL(err, KB_E_USAGE, NULL, "--dir needs a folder; see 'kbpipe seed --help'");
    dir = db_seed_dir(dir);

    struct db_conn *conn;
    enum kb_code rc = db_open(&conn, err);
    if (rc != KB_OK)
        return rc;
    struct db_seed_counts counts;
    rc = db_seed_load(conn, dir, is_reset, &counts, err);
    if (rc == KB_E_DB && strstr(err->msg, "does not exist"))
        kb_err_prefix(err, "the schema is incomplete (run 'kbpipe migrate up')");
    db_close(conn);
    if (rc != KB_OK)
        return rc;
    /* unless -q, on stderr (tests/integration/migrate_log.sh):
     *   kbpipe: seed: projects: 4 added
     *   kbpipe: seed: port ranges: 6 added     (one line per table that got rows)
     *   kbpipe: seed: 61 rows added from samples/seed */
    if (is_reset)
        log_notice("seed: --reset removed %ld rows and everything under them",
                   counts.n_removed);
    for (int i = 0; i < counts.n_tables; i++)
        if (counts.tables[i].n_added > 0)
            log_notice("seed: %s: %ld added", counts.tables[i].label, counts.tables[i].n_added);
    if (counts.n_added > 0)
        log_notice("seed: %ld rows added from %s", counts.n_added, dir);
    else
        log_notice("seed: nothing to add, the seed data from %s is already there", dir);
    return KB_OK;
}
