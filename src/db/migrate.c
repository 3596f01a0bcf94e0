/*
 * migrate.c - the schema migration runner (as dbmate, in C).
 *
 * A migration is migrations/NNN_name.sql:
 *
 *     -- migrate:up
 *     CREATE TABLE ...;
 *     -- migrate:down
 *     DROP TABLE ...;
 *
 * Each up (or down) runs in its own transaction together with its row in
 * schema_migrations, so a failing file leaves nothing behind.  The whole
 * run holds a session advisory lock keyed by the current schema: a second
 * `migrate up` waits, then finds nothing to do.  The checksum is the SHA-256
 * of the file's bytes; `verify` and `status` compare it with what was
 * recorded when the file was applied.
 */
#include "db/db_int.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct migration {
    long version;
    char *name;         /* "initial_schema" */
    char *path;         /* "migrations/001_initial_schema.sql" */
    char *text;         /* the whole file */
    const char *up;     /* points into text */
    size_t up_len;
    long up_line;       /* line of the first up byte */
    const char *down;
    size_t down_len;
    long down_line;
    char checksum[65];
};

struct migration_set {
    struct migration *items;
    int n;
};

struct applied {
    long version;
    char name[128];
    char checksum[65];
    char applied_at[40];
};

static const char LOCK_SQL[] =
    "SELECT pg_advisory_lock(hashtext('kbpipe.migrate.' || current_schema()))";
static const char UNLOCK_SQL[] =
    "SELECT pg_advisory_unlock(hashtext('kbpipe.migrate.' || current_schema()))";
static const char TABLE_SQL[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version bigint PRIMARY KEY,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(),"
    " duration_ms integer NOT NULL DEFAULT 0)";

const char *db_data_dir(const char *override, const char *env_var, const char *checkout,
                        const char *installed, char *buf, size_t n)
{
    if (override)
        return override;
    const char *env = getenv(env_var);
    if (env && *env)
        return env;
    struct stat st;
    if (stat(checkout, &st) == 0 && S_ISDIR(st.st_mode))
        return checkout;
    snprintf(buf, n, "%s/%s", kb_datadir(), installed);
    return buf;
}

const char *db_migrations_dir(const char *override)
{
    static char installed[4200];
    return db_data_dir(override, "KBPIPE_MIGRATIONS_DIR", "migrations", "migrations",
                       installed, sizeof installed);
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, data, len);
    sodium_bin2hex(out, 65, h, sizeof h);
}

static long count_lines(const char *from, const char *to)
{
    long n = 0;
    for (const char *p = from; p < to; p++)
        n += *p == '\n';
    return n;
}

/* Split m->text at its "-- migrate:up" / "-- migrate:down" marker lines. */
static enum kb_code split_sections(struct migration *m, struct kb_err *err)
{
    const char *up = NULL, *down = NULL;
    const char *up_end = NULL;
    const char *p = m->text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        const char *next = eol ? eol + 1 : p + strlen(p);
        const char *s = p;
        while (s < next && (*s == ' ' || *s == '\t'))
            s++;
        if (kb_starts_with(s, "-- migrate:up")) {
            if (up)
                return KB_FAIL_AT(err, KB_E_CONFIG, m->path,
                                  "two '-- migrate:up' lines; keep one");
            up = next;
        } else if (kb_starts_with(s, "-- migrate:down")) {
            if (down)
                return KB_FAIL_AT(err, KB_E_CONFIG, m->path,
                                  "two '-- migrate:down' lines; keep one");
            if (up == NULL)
                return KB_FAIL_AT(err, KB_E_CONFIG, m->path,
                                  "'-- migrate:down' comes before '-- migrate:up'; put up first");
            up_end = p;
            down = next;
        }
        p = next;
    }
    if (up == NULL)
        return KB_FAIL_AT(err, KB_E_CONFIG, m->path,
                          "no '-- migrate:up' line; a migration needs an up section "
                          "(and a '-- migrate:down' section)");
    m->up = up;
    m->up_len = (size_t)((up_end ? up_end : p) - up);
    m->up_line = count_lines(m->text, up) + 1;
    m->down = down;
    m->down_len = down ? (size_t)(p - down) : 0;
    m->down_line = down ? count_lines(m->text, down) + 1 : 0;
    return KB_OK;
}

/* 1 when name is NNN_word.sql; *version gets NNN. */
static int parse_file_name(const char *file, long *version, char **name)
{
    const char *p = file;
    if (!isdigit((unsigned char)*p))
        return 0;
    char *end;
    long v = strtol(p, &end, 10);
    if (end - p < 3 || *end != '_')
        return 0;
    size_t n = strlen(end + 1);
    if (n <= 4 || strcmp(end + 1 + n - 4, ".sql") != 0)
        return 0;
    *version = v;
    *name = kb_xstrndup(end + 1, n - 4);
    return 1;
}

static int by_version(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static void set_release(struct migration_set *set)
{
    for (int i = 0; i < set->n; i++) {
        free(set->items[i].name);
        free(set->items[i].path);
        free(set->items[i].text);
    }
    free(set->items);
    set->items = NULL;
    set->n = 0;
}

static enum kb_code set_load(const char *dir, struct migration_set *set, struct kb_err *err)
{
    set->items = NULL;
    set->n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return KB_FAIL_AT(err, KB_E_IO, dir,
                          "cannot open the migrations folder: %s; run from the checkout "
                          "or pass --dir", strerror(errno));
    int cap = 0;
    struct dirent *de;
    enum kb_code rc = KB_OK;
    while ((de = readdir(d)) != NULL) {
        long version;
        char *name;
        if (!parse_file_name(de->d_name, &version, &name))
            continue;
        if (set->n == cap) {
            cap = cap ? cap * 2 : 16;
            set->items = kb_xrealloc(set->items, (size_t)cap * sizeof *set->items);
        }
        struct migration *m = &set->items[set->n++];
        memset(m, 0, sizeof *m);
        m->version = version;
        m->name = name;
        m->path = kb_xasprintf("%s/%s", dir, de->d_name);
        struct kb_buf b;
        kb_buf_init(&b);
        rc = kb_buf_read_file(&b, m->path, err);
        m->text = kb_buf_detach(&b);
        if (rc != KB_OK)
            break;
        sha256_hex(m->text, strlen(m->text), m->checksum);
        if ((rc = split_sections(m, err)) != KB_OK)
            break;
    }
    closedir(d);
    if (rc == KB_OK && set->n > 0) {
        qsort(set->items, (size_t)set->n, sizeof *set->items, by_version);
        for (int i = 1; i < set->n; i++)
            if (set->items[i].version == set->items[i - 1].version) {
                rc = KB_FAIL_AT(err, KB_E_CONFIG, set->items[i].path,
                                "version %03ld is also used by %s; renumber one of them",
                                set->items[i].version, set->items[i - 1].path);
                break;
            }
    }
    if (rc != KB_OK)
        set_release(set);
    return rc;
}

static struct migration *set_find(struct migration_set *set, long version)
{
    for (int i = 0; i < set->n; i++)
        if (set->items[i].version == version)
            return &set->items[i];
    return NULL;
}

/* Read schema_migrations (ordered by version) into a new array. */
static enum kb_code applied_load(struct db_conn *conn, struct applied **out, int *n_out,
                                 struct kb_err *err)
{
    struct db_rows *rows;
    enum kb_code rc = db_exec(conn,
                              "SELECT version, name, checksum, "
                              "to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS') "
                              "FROM schema_migrations ORDER BY version",
                              0, NULL, &rows, err);
    if (rc != KB_OK)
        return rc;
    int n = db_rows_count(rows);
    struct applied *a = kb_xcalloc((size_t)(n ? n : 1), sizeof *a);
    for (int i = 0; i < n; i++) {
        a[i].version = strtol(db_rows_get(rows, i, 0), NULL, 10);
        snprintf(a[i].name, sizeof a[i].name, "%s", db_rows_get(rows, i, 1));
        snprintf(a[i].checksum, sizeof a[i].checksum, "%s", db_rows_get(rows, i, 2));
        snprintf(a[i].applied_at, sizeof a[i].applied_at, "%s", db_rows_get(rows, i, 3));
    }
    db_rows_free(rows);
    *out = a;
    *n_out = n;
    return KB_OK;
}

static int is_applied(const struct applied *a, int n, long version)
{
    for (int i = 0; i < n; i++)
        if (a[i].version == version)
            return 1;
    return 0;
}

/* Lock, make sure the bookkeeping table exists, load files and state. */
static enum kb_code begin_work(struct db_conn *conn, const char *dir, struct migration_set *set,
                               struct applied **applied, int *n_applied, struct kb_err *err)
{
    enum kb_code rc = set_load(dir, set, err);
    if (rc != KB_OK)
        return rc;
    if ((rc = db_exec(conn, LOCK_SQL, 0, NULL, NULL, err)) != KB_OK) {
        set_release(set);
        return rc;
    }
    if ((rc = db_exec(conn, TABLE_SQL, 0, NULL, NULL, err)) != KB_OK ||
        (rc = applied_load(conn, applied, n_applied, err)) != KB_OK) {
        struct kb_err ignored;
        db_exec(conn, UNLOCK_SQL, 0, NULL, NULL, &ignored);
        set_release(set);
    }
    return rc;
}

static void end_work(struct db_conn *conn, struct migration_set *set, struct applied *applied)
{
    struct kb_err ignored;
    db_exec(conn, UNLOCK_SQL, 0, NULL, NULL, &ignored);
    set_release(set);
    free(applied);
}

/*
 * Run one section and its bookkeeping statement in one transaction.  On a
 * server error the message becomes "FILE:LINE: ..." with LINE computed from
 * the character position the server reported.
 */
static enum kb_code run_section(struct db_conn *conn, const struct migration *m, int is_up,
                                struct kb_err *err)
{
    const char *sql = is_up ? m->up : m->down;
    size_t len = is_up ? m->up_len : m->down_len;
    long first_line = is_up ? m->up_line : m->down_line;
    char *script = kb_xstrndup(sql, len);
    double t0 = kb_now();
    enum kb_code rc = db_begin(conn, err);
    int pos = 0;
    if (rc == KB_OK && kb_fault("migrate.section"))
        rc = KB_FAIL(err, KB_E_DB, NULL, "fault injected at migrate.section");
    if (rc == KB_OK)
        rc = db_exec_script(conn, script, &pos, err);
    if (rc != KB_OK) {
        db_rollback(conn);
        long line = first_line;
        /* pos counts characters (UTF-8 sequences), 1-based */
        int chars = 0;
        for (const char *p = script; *p && chars < pos - 1; p++) {
            if (((unsigned char)*p & 0xC0) != 0x80)
                chars++;
            if (*p == '\n')
                line++;
        }
        snprintf(err->origin, sizeof err->origin, "%.200s:%ld", m->path,
                 pos > 0 ? line : first_line);
        kb_err_prefix(err, "%s of %03ld_%s failed and was rolled back",
                      is_up ? "migration" : "rollback", m->version, m->name);
        size_t n = strlen(err->msg);
        if (strcmp(db_conn_sqlstate(conn), "42501") != 0)   /* privileges, not the file */
            snprintf(err->msg + n, sizeof err->msg - n,
                     "; fix the file and run 'kbpipe migrate %s' again", is_up ? "up" : "down");
        free(script);
        return rc;
    }
    free(script);
    char version[32], ms[32];
    snprintf(version, sizeof version, "%ld", m->version);
    snprintf(ms, sizeof ms, "%ld", (long)((kb_now() - t0) * 1000.0));
    if (is_up) {
        const char *p[] = { version, m->name, m->checksum, ms };
        rc = db_exec(conn,
                     "INSERT INTO schema_migrations (version, name, checksum, duration_ms) "
                     "VALUES ($1, $2, $3, $4)",
                     4, p, NULL, err);
    } else {
        const char *p[] = { version };
        rc = db_exec(conn, "DELETE FROM schema_migrations WHERE version = $1", 1, p, NULL, err);
    }
    if (rc == KB_OK)
        rc = db_commit(conn, err);
    if (rc != KB_OK)
        db_rollback(conn);
    return rc;
}

/*
 * run_section, announced on stderr as dbmate does (unless -q):
 *   kbpipe: Applying: 007_search_functions.sql
 *   kbpipe: Applied: 007_search_functions.sql in 12ms
 * ("Rolling back:" / "Rolled back:" for down; tests/integration/migrate_log.sh).
 */
static enum kb_code run_logged(struct db_conn *conn, const struct migration *m, int is_up,
                               struct kb_err *err)
{
    const char *file = strrchr(m->path, '/') ? strrchr(m->path, '/') + 1 : m->path;
    log_notice("%s: %s", is_up ? "Applying" : "Rolling back", file);
    double t0 = kb_now();
    enum kb_code rc = run_section(conn, m, is_up, err);
    if (rc == KB_OK)
        log_notice("%s: %s in %.0fms", is_up ? "Applied" : "Rolled back", file,
                   (kb_now() - t0) * 1000.0);
    return rc;
}

enum kb_code db_migrate_up(struct db_conn *conn, const char *dir, int max_steps,
                           int *n_applied, struct kb_err *err)
{
    struct migration_set set;
    struct applied *applied = NULL;
    int n_app = 0, done = 0;
    if (n_applied)
        *n_applied = 0;
    enum kb_code rc = begin_work(conn, dir, &set, &applied, &n_app, err);
    if (rc != KB_OK)
        return rc;
    for (int i = 0; i < n_app; i++) {
        struct migration *m = set_find(&set, applied[i].version);
        if (m && strcmp(m->checksum, applied[i].checksum) != 0)
            log_warn("%s: changed since it was applied on %s; 'kbpipe migrate verify' "
                     "fails until it is restored",
                     m->path, applied[i].applied_at);
    }
    for (int i = 0; i < set.n && (max_steps <= 0 || done < max_steps); i++) {
        struct migration *m = &set.items[i];
        if (is_applied(applied, n_app, m->version))
            continue;
        if ((rc = run_logged(conn, m, 1, err)) != KB_OK)
            break;
        done++;
    }
    if (rc == KB_OK && done == 0)
        log_notice("migrate: nothing to apply, all %d migrations in %s are applied", set.n, dir);
    end_work(conn, &set, applied);
    if (n_applied)
        *n_applied = done;
    return rc;
}

enum kb_code db_migrate_down(struct db_conn *conn, const char *dir, int n,
                             int *n_reverted, struct kb_err *err)
{
    struct migration_set set;
    struct applied *applied = NULL;
    int n_app = 0, done = 0;
    if (n_reverted)
        *n_reverted = 0;
    enum kb_code rc = begin_work(conn, dir, &set, &applied, &n_app, err);
    if (rc != KB_OK)
        return rc;
    for (int i = n_app - 1; i >= 0 && done < n; i--) {
        struct migration *m = set_find(&set, applied[i].version);
        if (m == NULL) {
            rc = KB_FAIL_AT(err, KB_E_CONFIG, dir,
                            "migration %03ld_%s is applied but its file is missing; restore "
                            "it to roll it back",
                            applied[i].version, applied[i].name);
            break;
        }
        if (m->down == NULL || m->down_len == 0) {
            rc = KB_FAIL_AT(err, KB_E_CONFIG, m->path,
                            "no '-- migrate:down' section, so it cannot be rolled back; "
                            "write one");
            break;
        }
        if ((rc = run_logged(conn, m, 0, err)) != KB_OK)
            break;
        done++;
    }
    if (rc == KB_OK && done == 0 && n_app == 0)
        log_notice("migrate: nothing to roll back, no migration is applied");
    end_work(conn, &set, applied);
    if (n_reverted)
        *n_reverted = done;
    return rc;
}

enum kb_code db_migrate_status(struct db_conn *conn, const char *dir, FILE *out,
                               struct kb_err *err)
{
    struct migration_set set;
    struct applied *applied = NULL;
    int n_app = 0;
    enum kb_code rc = begin_work(conn, dir, &set, &applied, &n_app, err);
    if (rc != KB_OK)
        return rc;
    fprintf(out, "%-8s %-8s %-32s %s\n", "state", "version", "name", "applied_at");
    for (int i = 0; i < set.n; i++) {
        struct migration *m = &set.items[i];
        const char *state = "pending", *at = "";
        for (int j = 0; j < n_app; j++)
            if (applied[j].version == m->version) {
                state = strcmp(applied[j].checksum, m->checksum) ? "changed" : "applied";
                at = applied[j].applied_at;
            }
        fprintf(out, "%-8s %03ld      %-32s %s\n", state, m->version, m->name, at);
    }
    for (int j = 0; j < n_app; j++)
        if (set_find(&set, applied[j].version) == NULL)
            fprintf(out, "%-8s %03ld      %-32s %s\n", "missing", applied[j].version,
                    applied[j].name, applied[j].applied_at);
    end_work(conn, &set, applied);
    return KB_OK;
}

enum kb_code db_migrate_verify(struct db_conn *conn, const char *dir, FILE *out,
                               struct kb_err *err)
{
    struct migration_set set;
    struct applied *applied = NULL;
    int n_app = 0, bad = 0;
    enum kb_code rc = begin_work(conn, dir, &set, &applied, &n_app, err);
    if (rc != KB_OK)
        return rc;
    char first[300] = "";
    for (int j = 0; j < n_app; j++) {
        struct migration *m = set_find(&set, applied[j].version);
        const char *problem = NULL;
        if (m == NULL)
            problem = "applied, but its file is missing";
        else if (strcmp(m->checksum, applied[j].checksum) != 0)
            problem = "file changed since it was applied (checksum differs)";
        if (problem) {
            fprintf(out, "%03ld_%s: %s\n", applied[j].version, applied[j].name, problem);
            if (!bad++)
                snprintf(first, sizeof first, "%03ld_%s: %s", applied[j].version,
                         applied[j].name, problem);
        }
    }
    end_work(conn, &set, applied);
    if (bad)
        return KB_FAIL(err, KB_E_DB, NULL,
                       "%d applied migration(s) do not match their files (first: %s); "
                       "restore the files, or write a new migration instead of editing "
                       "an applied one",
                       bad, first);
    return db_schema_verify(conn, out, err);
}

enum kb_code db_migrate_create(const char *dir, const char *name, char **path_out,
                               struct kb_err *err)
{
    *path_out = NULL;
    if (*name == '\0' || strlen(name) > 80)
        return KB_FAIL(err, KB_E_USAGE, NULL,
                       "a migration name is 1-80 characters of a-z, 0-9 and _");
    for (const char *p = name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
            return KB_FAIL(err, KB_E_USAGE, NULL,
                           "migration name '%.80s' may use only a-z, 0-9 and _; "
                           "e.g. add_run_table",
                           name);
    struct migration_set set;
    enum kb_code rc = set_load(dir, &set, err);
    if (rc != KB_OK)
        return rc;
    long next = set.n ? set.items[set.n - 1].version + 1 : 1;
    set_release(&set);
    char *path = kb_xasprintf("%s/%03ld_%s.sql", dir, next, name);
    FILE *f = fopen(path, "wx");
    if (f == NULL) {
        rc = KB_FAIL_AT(err, KB_E_IO, path, "cannot create: %s", strerror(errno));
        free(path);
        return rc;
    }
    fprintf(f, "-- %03ld_%s: describe what this migration does and why.\n"
               "-- migrate:up\n\n"
               "-- migrate:down\n\n",
            next, name);
    if (fclose(f) != 0) {
        rc = KB_FAIL_AT(err, KB_E_IO, path, "cannot write: %s", strerror(errno));
        free(path);
        return rc;
    }
    *path_out = path;
    return KB_OK;
}
