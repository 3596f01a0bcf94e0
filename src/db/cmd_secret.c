/*
 * cmd_secret.c - `kbpipe secret set|get|list|audit|rotate`: the schema's
 * encrypted secrets from the command line (issue 18), through the
 * functions of migrations 002 and 007 so that every read is logged in
 * secret_access_log under the accessor (--as NAME, else the OS user).
 *
 *   printf %s "$TOKEN" | kbpipe secret set acme GITHUB_TOKEN
 *   export GITHUB_TOKEN=$(kbpipe secret get acme GITHUB_TOKEN)
 *
 * `get` writes the value and one newline to stdout, nothing else; `list`
 * and `audit` never show a value; the passphrase is never an argument
 * (secret.c).
 */
#include "db/db_int.h"

#include <getopt.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: kbpipe secret set    (PROJECT | --shared) NAME [--type T] [--description D]\n"
    "                            [--expires TIME] [--as WHO]     < value\n"
    "       kbpipe secret get    (PROJECT | --shared) NAME [--as WHO]\n"
    "       kbpipe secret list   (PROJECT | --shared) [--json]\n"
    "       kbpipe secret audit  (PROJECT | --shared) [--name NAME] [--since TIME]\n"
    "                            [--limit N] [--json]\n"
    "       kbpipe secret rotate [--key-name NAME] [--as WHO]\n"
    "\n"
    "Encrypted secrets of a project (or shared ones), through the schema's\n"
    "functions: every read and write is logged in secret_access_log.\n"
    "\n"
    "  set     store (or replace) NAME; the value is read from standard input\n"
    "          (one trailing newline dropped; UTF-8 text, no NUL byte)\n"
    "  get     print the value and a newline, nothing else: $(kbpipe secret get ...)\n"
    "  list    names, types, expiry and reads; never a value\n"
    "  audit   the access log, newest first (default: the last 50 entries)\n"
    "  rotate  a new data key, every secret re-encrypted under it, in one\n"
    "          transaction; with KBPIPE_NEW_MASTER_KEY (or _FILE) set, the data\n"
    "          keys are also re-encrypted under that new master passphrase\n"
    "\n"
    "The master passphrase comes from KBPIPE_MASTER_KEY or the file named by\n"
    "KBPIPE_MASTER_KEY_FILE, never from the command line.\n"
    "  --as WHO         the accessor recorded in the log (default: the OS user)\n"
    "  --shared         secrets of no project (project_id NULL)\n"
    "  --since TIME     audit entries at or after TIME (e.g. 2026-12-01, yesterday)\n";

struct secret_args {
    const char *sub, *project, *name;
    const char *as, *type, *description, *expires, *since, *filter, *key_name;
    const char *limit;
    int is_shared, is_json;
};

/* ---- set: the value from standard input ---------------------------------- */

static enum kb_code read_value(struct kb_buf *b, struct kb_err *err)
{
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        kb_buf_append(b, chunk, n);
    if (ferror(stdin))
        return KB_FAIL_AT(err, KB_E_IO, "standard input", "reading the value failed; "
                                                          "pipe the value in: ... | kbpipe secret set");
    if (b->len > 0 && b->data[b->len - 1] == '\n')
        b->data[--b->len] = '\0';
    if (b->len == 0)
        kb_buf_append(b, "", 0);
    size_t nul = strlen(b->data);
    if (nul != b->len)
        return KB_FAIL_AT(err, KB_E_INPUT, "standard input",
                          "byte %zu is a NUL, which PostgreSQL text cannot hold; store binary "
                          "values base64-encoded", nul);
    size_t ok = kb_utf8_valid_prefix(b->data, b->len);
    if (ok != b->len)
        return KB_FAIL_AT(err, KB_E_INPUT, "standard input",
                          "byte %zu is not UTF-8; store binary values base64-encoded", ok);
    return KB_OK;
}

static enum kb_code do_set(struct db_conn *conn, const struct secret_args *a, const char *pid,
                           const char *value, struct kb_err *err)
{
    static const char store[] =
        "SELECT store_secret($1::uuid, $2, $3, coalesce($4, 'other'), $5, $6::timestamptz, $7)";
    const char *p[] = { pid, a->name, value, a->type, a->description, a->expires,
                        secret_accessor(a->as) };
    enum kb_code rc = db_begin(conn, err);
    if (rc == KB_OK)
        rc = db_exec(conn, "SAVEPOINT before_store", 0, NULL, NULL, err);
    if (rc == KB_OK)
        rc = db_exec(conn, store, 7, p, NULL, err);
    if (rc != KB_OK && strcmp(db_conn_sqlstate(conn), "P0002") == 0) {
        /* the first secret of the database: make its first data key */
        struct kb_err ignored;
        db_exec(conn, "ROLLBACK TO SAVEPOINT before_store", 0, NULL, NULL, &ignored);
        rc = db_exec(conn, "SELECT create_encryption_key('main')", 0, NULL, NULL, err);
        if (rc == KB_OK)
            rc = db_exec(conn, store, 7, p, NULL, err);
    }
    if (rc == KB_OK)
        rc = db_commit(conn, err);
    if (rc != KB_OK) {
        db_rollback(conn);
        kb_err_prefix(err, "secret '%.80s' was not stored", a->name);
        return rc;
    }
    log_info("stored secret '%s' (logged as %s)", a->name, secret_accessor(a->as));
    return KB_OK;
}

/* ---- get ------------------------------------------------------------------ */

static enum kb_code do_get(struct db_conn *conn, const struct secret_args *a, const char *pid,
                           const char *warning, struct kb_err *err)
{
    const char *p[] = { pid, a->name, secret_accessor(a->as) };
    struct db_rows *rows;
    enum kb_code rc = db_exec(conn, "SELECT get_secret($1::uuid, $2, $3)", 3, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    if (db_rows_isnull(rows, 0, 0)) {
        db_rows_free(rows);
        const char *why = kb_starts_with(warning, "get_secret: ") ? warning + 12 : warning;
        return KB_FAIL(err, KB_E_DB, NULL,
                       "secret '%.80s' was not read: %s; check the name ('kbpipe secret list') "
                       "and KBPIPE_MASTER_KEY (or _FILE); the attempt is logged",
                       a->name, *why ? why : "the server gave no reason");
    }
    const char *v = db_rows_get(rows, 0, 0);
    int is_bad = fputs(v, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) != 0;
    db_rows_free(rows);
    if (is_bad)
        return KB_FAIL_AT(err, KB_E_IO, "standard output",
                          "writing the value failed; check where stdout goes");
    return KB_OK;
}

/* ---- list, audit ---------------------------------------------------------- */

/* list and audit: one query each, over the same parameters
 * ($1 project id, $2 --since, $3 --name, $4 --limit) */
static const struct {
    const char *sub, *sql;
    int n_params;
} listings[] = {
    { "list",
      "SELECT key_name AS name, secret_type AS type, expires_at::timestamp(0) AS expires,"
      " next_rotation_at::timestamp(0) AS rotate_by, access_count AS reads,"
      " last_accessed_at::timestamp(0) AS last_read, updated_at::timestamp(0) AS updated,"
      " description FROM secret_list($1::uuid) ORDER BY key_name", 1 },
    { "audit",
      "SELECT l.accessed_at::timestamp(0) AS at, l.accessed_by AS who,"
      " l.access_type AS access, l.success AS ok,"
      " coalesce(s.key_name, l.metadata->>'key_name') AS name, l.error_message AS error"
      " FROM secret_access_log l LEFT JOIN secrets s ON s.id = l.secret_id"
      " WHERE coalesce(s.project_id::text, l.metadata->>'project_id') IS NOT DISTINCT FROM $1"
      "   AND ($2::timestamptz IS NULL OR l.accessed_at >= $2::timestamptz)"
      "   AND ($3::text IS NULL OR coalesce(s.key_name, l.metadata->>'key_name') = $3)"
      " ORDER BY l.accessed_at DESC, l.id LIMIT $4::int", 4 },
};

static enum kb_code do_listing(struct db_conn *conn, const struct secret_args *a,
                               const char *pid, struct kb_err *err)
{
    const char *p[] = { pid, a->since, a->filter, a->limit ? a->limit : "50" };
    size_t i = strcmp(a->sub, "list") == 0 ? 0 : 1;
    struct db_rows *rows;
    enum kb_code rc = db_exec(conn, listings[i].sql, listings[i].n_params, p, &rows, err);
    if (rc != KB_OK)
        return rc;
    if (a->is_json)
        db_print_json(rows, stdout);
    else
        db_print_table(rows, stdout);
    db_rows_free(rows);
    if (fflush(stdout) != 0)
        return KB_FAIL_AT(err, KB_E_IO, "standard output", "writing failed; check where "
                                                             "stdout goes");
    return KB_OK;
}

/* ---- rotate --------------------------------------------------------------- */

static enum kb_code do_rotate(struct db_conn *conn, const struct secret_args *a,
                              const char *new_key, struct kb_err *err)
{
    char name[64];
    if (a->key_name)
        snprintf(name, sizeof name, "%s", a->key_name);
    else
        snprintf(name, sizeof name, "kbpipe-%ld", (long)time(NULL));
    const char *who = secret_accessor(a->as);
    const char *p[] = { name, who }, *q[] = { new_key, who };
    struct db_rows *rows = NULL;
    enum kb_code rc = db_begin(conn, err);
    if (rc == KB_OK)
        rc = db_exec(conn, "SELECT rotate_encryption_key($1, $2)", 2, p, &rows, err);
    long n_secrets = rc == KB_OK ? atol(db_rows_get(rows, 0, 0)) : 0;
    db_rows_free(rows);
    if (rc == KB_OK && new_key)
        rc = db_exec(conn, "SELECT rotate_master_key($1, $2)", 2, q, NULL, err);
    if (rc == KB_OK)
        rc = db_commit(conn, err);
    if (rc != KB_OK) {
        db_rollback(conn);
        kb_err_prefix(err, "the rotation was rolled back, nothing changed (is KBPIPE_MASTER_KEY "
                           "the current passphrase?)");
        return rc;
    }
    log_info("rotated: %ld secret(s) re-encrypted under the new data key '%s'%s", n_secrets,
             name, new_key ? "; every data key re-encrypted under the new master passphrase"
                           : "");
    return KB_OK;
}

/* ---- the command ---------------------------------------------------------- */

static enum kb_code parse(int argc, char **argv, struct secret_args *a, struct kb_err *err)
{
    static const struct option longopts[] = {
        { "as", required_argument, NULL, 'a' },
        { "type", required_argument, NULL, 't' },
        { "description", required_argument, NULL, 'd' },
        { "expires", required_argument, NULL, 'e' },
        { "since", required_argument, NULL, 's' },
        { "name", required_argument, NULL, 'n' },
        { "limit", required_argument, NULL, 'l' },
        { "key-name", required_argument, NULL, 'k' },
        { "shared", no_argument, NULL, 'S' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a': a->as = optarg; break;
        case 't': a->type = optarg; break;
        case 'd': a->description = optarg; break;
        case 'e': a->expires = optarg; break;
        case 's': a->since = optarg; break;
        case 'n': a->filter = optarg; break;
        case 'k': a->key_name = optarg; break;
        case 'S': a->is_shared = 1; break;
        case 'j': a->is_json = 1; break;
        case 'l':
            if (atoi(optarg) < 1 || strspn(optarg, "0123456789") != strlen(optarg))
                return KB_FAIL(err, KB_E_USAGE, NULL,
                               "--limit '%.40s' is not a count; give a whole number >= 1", optarg);
            a->limit = optarg;
            break;
        case 'h': a->sub = "help"; return KB_OK;
        default:
            return kb_cli_unknown_option("secret", argv[optind - 1], longopts, err);
        }
    }
    if (optind >= argc)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "which one: set, get, list, audit or rotate? see 'kbpipe secret --help'");
    a->sub = argv[optind++];
    int is_rotate = strcmp(a->sub, "rotate") == 0;
    int has_name = strcmp(a->sub, "set") == 0 || strcmp(a->sub, "get") == 0;
    if (!is_rotate && !has_name && strcmp(a->sub, "list") != 0 && strcmp(a->sub, "audit") != 0)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "unknown subcommand '%.40s'; use set, get, list, audit or rotate",
                       a->sub);
    int want = (is_rotate || a->is_shared ? 0 : 1) + has_name;
    if (argc - optind != want)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "'secret %s' takes %s; see 'kbpipe secret --help'", a->sub,
                       is_rotate ? "no PROJECT (it re-encrypts every secret)"
                       : has_name ? (a->is_shared ? "NAME with --shared" : "PROJECT NAME")
                                  : (a->is_shared ? "no PROJECT with --shared" : "PROJECT"));
    if (!is_rotate && !a->is_shared)
        a->project = argv[optind++];
    if (has_name)
        a->name = argv[optind];
    return KB_OK;
}

/* Connect, open the session, resolve the project, run the subcommand. */
static enum kb_code run(const struct secret_args *a, const char *key, const char *new_key,
                        const char *value, struct kb_err *err)
{
    struct db_conn *conn;
    enum kb_code rc = db_open(&conn, err);
    if (rc != KB_OK)
        return rc;
    char warning[SECRET_WARNING_LEN];
    char *pid = NULL;
    rc = secret_session_open(conn, key, warning, err);
    if (rc == KB_OK && strcmp(a->sub, "rotate") != 0)
        rc = secret_project_id(conn, a->project, &pid, err);
    if (rc == KB_OK) {
        if (strcmp(a->sub, "set") == 0)
            rc = do_set(conn, a, pid, value, err);
        else if (strcmp(a->sub, "get") == 0)
            rc = do_get(conn, a, pid, warning, err);
        else if (strcmp(a->sub, "rotate") != 0)
            rc = do_listing(conn, a, pid, err);
        else
            rc = do_rotate(conn, a, new_key, err);
    }
    free(pid);
    db_close(conn);
    return rc;
}

enum kb_code cmd_secret(int argc, char **argv, struct kb_err *err)
{
    struct secret_args a = { 0 };
    enum kb_code rc = parse(argc, argv, &a, err);
    if (rc != KB_OK)
        return rc;
    if (strcmp(a.sub, "help") == 0) {
        fputs(USAGE, stdout);
        return KB_OK;
    }
    int needs_key = strcmp(a.sub, "list") != 0 && strcmp(a.sub, "audit") != 0;
    char *key = NULL, *new_key = NULL;
    struct kb_buf value;
    kb_buf_init(&value);
    if (needs_key)
        rc = secret_key_load("KBPIPE_MASTER_KEY", &key, err);
    if (rc == KB_OK && strcmp(a.sub, "rotate") == 0 &&
        (getenv("KBPIPE_NEW_MASTER_KEY") || getenv("KBPIPE_NEW_MASTER_KEY_FILE")))
        rc = secret_key_load("KBPIPE_NEW_MASTER_KEY", &new_key, err);
    if (rc == KB_OK && strcmp(a.sub, "set") == 0)
        rc = read_value(&value, err);
    if (rc == KB_OK)
        rc = run(&a, key, new_key, value.data, err);
    if (value.data)
        explicit_bzero(value.data, value.cap);
    kb_buf_release(&value);
    secret_key_free(key);
    secret_key_free(new_key);
    return rc;
}
