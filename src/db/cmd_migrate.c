/*
 * cmd_migrate.c - `kbpipe migrate up|down [N]|status|verify|create NAME`.
 * Parses the command line and calls migrate.c; prints results on stdout
 * (status, verify, create) and progress on stderr.
 */
#include "db/db_int.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: kbpipe migrate [--dir DIR] up [N]\n"
    "       kbpipe migrate [--dir DIR] down [N]\n"
    "       kbpipe migrate [--dir DIR] status\n"
    "       kbpipe migrate [--dir DIR] verify [--repair]\n"
    "       kbpipe migrate [--dir DIR] create NAME\n"
    "\n"
    "Manage the supervisor-service schema (migrations/NNN_name.sql, each with a\n"
    "'-- migrate:up' and a '-- migrate:down' section).\n"
    "\n"
    "  up [N]       apply pending migrations in order (at most N), each in its own\n"
    "               transaction; concurrent runs wait for each other\n"
    "  down [N]     roll back the last N applied migrations (default 1)\n"
    "  status       list every migration: applied, pending, changed (file edited\n"
    "               after it was applied) or missing (applied, file gone)\n"
    "  verify       fail (exit 1) if an applied file changed or vanished, or an HNSW\n"
    "               index is missing after an interrupted load; --repair rebuilds\n"
    "               missing indexes\n"
    "  create NAME  write the next-numbered file with empty up and down sections\n"
    "\n"
    "up and down print each migration on stderr (\"Applying: F\", then \"Applied: F\n"
    "in 12ms\"); -q silences them.\n"
    "\n"
    "Options:\n"
    "  --dir DIR    migrations folder (default: $KBPIPE_MIGRATIONS_DIR, else\n"
    "               ./migrations, else the installed share/kbpipe/migrations)\n"
    "  --db CONNINFO, -q, -v   as for every command (see 'kbpipe --help')\n"
    "\n"
    "Examples:\n"
    "  kbpipe migrate up\n"
    "  kbpipe migrate down 2\n"
    "  kbpipe migrate create add_source_keys\n";

static enum kb_code parse_count(const char *s, int *out, struct kb_err *err)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 100000)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "'%.40s' is not a count of migrations; give a whole number >= 1", s);
    *out = (int)v;
    return KB_OK;
}

enum kb_code cmd_migrate(int argc, char **argv, struct kb_err *err)
{
    static const struct option longopts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "repair", no_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *dir_opt = NULL;
    int repair = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': dir_opt = optarg; break;
        case 'r': repair = 1; break;
        case 'h': fputs(USAGE, stdout); return KB_OK;
        default:
            return kb_cli_unknown_option("migrate", argv[optind - 1], longopts, err);
        }
    }
    /* options may also follow the subcommand: "migrate up --dir x" */
    int n_rest = 0;
    char *rest[4];
    for (int i = optind; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(USAGE, stdout);
            return KB_OK;
        } else if (strcmp(argv[i], "--repair") == 0) {
            repair = 1;
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir_opt = argv[++i];
        } else if (kb_starts_with(argv[i], "--dir=")) {
            dir_opt = argv[i] + 6;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return kb_cli_unknown_option("migrate", argv[i], longopts, err);
        } else if (n_rest < 4) {
            rest[n_rest++] = argv[i];
        } else {
            return KB_FAIL(err, KB_E_USAGE, NULL,
                           "too many arguments; see 'kbpipe migrate --help'");
        }
    }
    if (n_rest == 0)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "migrate needs up, down, status, verify or create; "
                       "see 'kbpipe migrate --help'");
    const char *sub = rest[0];
    const char *dir = db_migrations_dir(dir_opt);
    int count = 0;
    enum kb_code rc;

    if (strcmp(sub, "create") == 0) {
        if (n_rest != 2)
            return KB_FAIL(err, KB_E_USAGE, NULL,
                           "migrate create needs one NAME, e.g. 'kbpipe migrate create "
                           "add_run_table'");
        char *path;
        if ((rc = db_migrate_create(dir, rest[1], &path, err)) != KB_OK)
            return rc;
        printf("%s\n", path);
        free(path);
        return KB_OK;
    }
    int is_counted = strcmp(sub, "up") == 0 || strcmp(sub, "down") == 0;
    if (!is_counted && strcmp(sub, "status") != 0 && strcmp(sub, "verify") != 0)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "unknown migrate subcommand '%.40s'; use up, down, status, verify "
                       "or create",
                       sub);
    if (n_rest > (is_counted ? 2 : 1))
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "too many arguments for 'migrate %s'; see 'kbpipe migrate --help'",
                       sub);
    if (n_rest == 2 && (rc = parse_count(rest[1], &count, err)) != KB_OK)
        return rc;

    struct db_conn *conn;
    if ((rc = db_open(&conn, err)) != KB_OK)
        return rc;
    if (strcmp(sub, "up") == 0) {
        int n = 0;
        rc = db_migrate_up(conn, dir, count, &n, err);
        if (rc == KB_OK)
            log_info("%d migration(s) applied", n);
    } else if (strcmp(sub, "down") == 0) {
        int n = 0;
        rc = db_migrate_down(conn, dir, count ? count : 1, &n, err);
        if (rc == KB_OK)
            log_info("%d migration(s) rolled back", n);
    } else if (strcmp(sub, "status") == 0) {
        rc = db_migrate_status(conn, dir, stdout, err);
    } else {
        if (repair && (rc = db_schema_repair(conn, err)) != KB_OK) {
            db_close(conn);
            return rc;
        }
        rc = db_migrate_verify(conn, dir, stdout, err);
        if (rc == KB_OK)
            printf("ok: every applied migration matches its file\n");
    }
    db_close(conn);
    return rc;
}
