/*
 * test_migrate.c - the migration runner, connection settings and the JSON
 * of query results against a real PostgreSQL (a private schema per test).
 * Groups: conn.c, migrate.c, print.c, query.c.
 */
#include "kbtest.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fixture {
    struct kbtest_db db;
    char *dir;       /* temporary migrations folder */
};

static int setup(void **state)
{
    struct fixture *f = kb_xcalloc(1, sizeof *f);
    if (!kbtest_db_open(&f->db)) {
        free(f);
        *state = NULL;
        return 0;
    }
    f->dir = kbtest_tmpdir();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f) {
        kbtest_db_close(&f->db);
        kbtest_rmtree(f->dir);
        free(f->dir);
        free(f);
    }
    return 0;
}

#define NEED_DB(f)                                                   \
    do {                                                             \
        if ((f) == NULL)                                             \
            skip();                                                  \
    } while (0)

static void write_migration(const struct fixture *f, const char *file, const char *text)
{
    char *path = kb_xasprintf("%s/%s", f->dir, file);
    kbtest_write(path, text);
    free(path);
}

static char *q(struct fixture *f, const char *sql) { return kbtest_query(&f->db, sql); }

static void assert_query(struct fixture *f, const char *sql, const char *want)
{
    char *got = q(f, sql);
    assert_string_equal(got, want);
    free(got);
}

static void write_two(struct fixture *f)
{
    write_migration(f, "001_first.sql",
                    "-- migrate:up\nCREATE TABLE t1 (x int);\n"
                    "-- migrate:down\nDROP TABLE t1;\n");
    write_migration(f, "002_second.sql",
                    "-- migrate:up\nCREATE TABLE t2 (y text);\nINSERT INTO t2 VALUES ('é');\n"
                    "-- migrate:down\nDROP TABLE t2;\n");
}

static void db_migrate_up__applies_in_order_and_records(void **state)
{
    struct fixture *f = *state;
    NEED_DB(f);
    write_two(f);
    struct kb_err err = { 0 };
    int n = -1;
    assert_int_equal(db_migrate_up(f->db.conn, f->dir, 0, &n, &err), KB_OK);
    assert_int_equal(n, 2);
    assert_query(f, "SELECT string_agg(version || ':' || name, ',' ORDER BY version) "
                    "FROM schema_migrations", "1:first,2:second");
    assert_query(f, "SELECT count(*) FROM schema_migrations WHERE length(checksum) = 64 "
                    "AND applied_at IS NOT NULL AND duration_ms >= 0", "2");
    /* a second up finds nothing to do */
    assert_int_equal(db_migrate_up(f->db.conn, f->dir, 0, &n, &err), KB_OK);
    assert_int_equal(n, 0);
    /* up N applies at most N */
    write_migration(f, "003_third.sql", "-- migrate:up\nCREATE TABLE t3 ();\n"
                                        "-- migrate:down\nDROP TABLE t3;\n");
    write_migration(f, "004_fourth.sql", "-- migrate:up\nCREATE TABLE t4 ();\n"
                                         "-- migrate:down\nDROP TABLE t4;\n");
    assert_int_equal(db_migrate_up(f->db.conn, f->dir, 1, &n, &err), KB_OK);
    assert_int_equal(n, 1);
    assert_query(f, "SELECT max(version) FROM schema_migrations", "3");
}

static void db_migrate_down__reverts_last_n(void **state)
{
    struct fixture *f = *state;
    NEED_DB(f);
    write_two(f);
    struct kb_err err = { 0 };
    int n;
    assert_int_equal(db_migrate_up(f->db.conn, f->dir, 0, &n, &err), KB_OK);
    assert_int_equal(db_migrate_down(f->db.conn, f->dir, 1, &n, &err), KB_OK);
    assert_int_equal(n, 1);
    assert_query(f, "SELECT to_regclass('t2') IS NULL AND to_regclass('t1') IS NOT NULL", "t");
    assert_int_equal(db_migrate_down(f->db.conn, f->dir, 5, &n, &err), KB_OK);
    assert_int_equal(n, 1);
    assert_query(f, "SELECT count(*) FROM schema_migrations", "0");
    assert_query(f, "SELECT to_regclass('t1') IS NULL", "t");
}

static void db_migrate_up__failure_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    NEED_DB(f);
    write_migration(f, "001_ok.sql", "-- migrate:up\nCREATE TABLE ok1 (x int);\n"
                                     "-- migrate:down\nDROP TABLE ok1;\n");
    write_migration(f, "002_broken.sql",
                    "-- migrate:up\nCREATE TABLE half (x int);\n"
                    "INSERT INTO half VALUES (1);\n"
                    "SELECT no_such_column\n  FROM half;\n"
                    "-- migrate:down\nDROP TABLE half;\n");
    struct kb_err err = { 0 };
    int n;
    assert_int_equal(db_migrate_up(f->db.conn, f->dir, 0, &n, &err), KB_E_DB);
    assert_int_equal(n, 1);
    /* file and line of the failing statement, and the server's words */
    assert_non_null(strstr(err.origin, "002_broken.sql:4"));
    assert_non_null(strstr(err.msg, "no_such_column"));
    assert_query(f, "SELECT string_agg(name, ',') FROM schema_migrations", "ok");
    assert_query(f, "SELECT to_regclass('half') IS NULL", "t");
}

static void db_migrate_verify__detects_tamper_and_missing(void **state)
{
    struct fixture *f = *state;
    NEED_DB(f);
    write_two(f);
    struct kb_err err = { 0 };
    int n;
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(db_migrate_up(f->db.conn, f->dir, 0, &n, &err), KB_OK);
    assert_int_equal(db_migrate_verify(f->db.conn, f->dir, devnull, &err), KB_OK);
    write_migration(f, "001_first.sql",
                    "-- migrate:up\nCREATE TABLE t1 (x bigint);\n"
                    "-- migrate:down\nDROP TABLE t1;\n");
    assert_int_equal(db_migrate_verify(f->db.conn, f->dir, devnull, &err), KB_E_DB);
    assert_non_null(strstr(err.msg, "001_first"));
    char *path = kb_xasprintf("%s/002_second.sql", f->dir);
    unlink(path);
    free(path);
    char *out = NULL;
    FILE *mem = open_memstream(&out, &(size_t){ 0 });
    assert_int_equal(db_migrate_status(f->db.conn, f->dir, mem, &err), KB_OK);
    fclose(mem);
    assert_non_null(strstr(out, "changed  001"));
    assert_non_null(strstr(out, "missing  002"));
    free(out);
    fclose(devnull);
}

static void db_migrate_create__numbers_and_sections(void **state)
{
    struct fixture *f = *state;
    NEED_DB(f);
    write_two(f);
    struct kb_err err = { 0 };
    char *path = NULL;
    assert_int_equal(db_migrate_create(f->dir, "add_things", &path, &err), KB_OK);
    assert_non_null(strstr(path, "/003_add_things.sql"));
    struct kb_buf b;
    kb_buf_init(&b);
    assert_int_equal(kb_buf_read_file(&b, path, &err), KB_OK);
    assert_non_null(strstr(b.data, "-- migrate:up\n"));
    assert_non_null(strstr(b.data, "-- migrate:down\n"));
    kb_buf_release(&b);
    free(path);
    static const char *const bad[] = { "", "Has-Caps", "semi;colon", "../escape" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(db_migrate_create(f->dir, bad[i], &path, &err), KB_E_USAGE);
}

static void migrate_up__concurrent_processes(void **state)
{
    struct fixture *f = *state;
    NEED_DB(f);
    /* the first migration sleeps so that the two runs overlap */
    write_migration(f, "001_slow.sql",
                    "-- migrate:up\nSELECT pg_sleep(1.5);\nCREATE TABLE slow (x int);\n"
                    "-- migrate:down\nDROP TABLE slow;\n");
    write_migration(f, "002_next.sql", "-- migrate:up\nCREATE TABLE nxt (x int);\n"
                                       "-- migrate:down\nDROP TABLE nxt;\n");
    char *err_out = NULL;
    int rc = kbtest_sh(NULL, &err_out,
                       "export PGOPTIONS='-csearch_path=%s,public'; "
                       "%s --db \"$KBPIPE_TEST_DSN\" migrate --dir '%s' up & p1=$!; "
                       "%s --db \"$KBPIPE_TEST_DSN\" migrate --dir '%s' up & p2=$!; "
                       "wait $p1 || exit 1; wait $p2 || exit 2",
                       f->db.schema, kbtest_bin(), f->dir, kbtest_bin(), f->dir);
    if (rc != 0)
        fail_msg("concurrent migrate up failed (%d): %s", rc, err_out);
    free(err_out);
    assert_query(f, "SELECT count(*) || '/' || count(DISTINCT version) FROM schema_migrations",
                 "2/2");
}

static void migrate_cli__usage_and_exit_codes(void **state)
{
    (void)state;
    static const struct { const char *args; int status; const char *says; } cases[] = {
        { "migrate", 2, "needs up, down" },
        { "migrate sideways", 2, "unknown migrate subcommand" },
        { "migrate down zero", 2, "not a count" },
        { "migrate --bogus up", 2, "unknown option" },
        { "migrate --help", 0, "" },
        { "nosuchcommand", 2, "unknown command" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err_out = NULL;
        int rc = kbtest_sh(NULL, &err_out, "%s %s", kbtest_bin(), cases[i].args);
        assert_int_equal(rc, cases[i].status);
        assert_non_null(strstr(err_out, cases[i].says));
        free(err_out);
    }
}

/* ---- conn.c ---- */

static void db_conninfo_resolve__order(void **state)
{
    (void)state;
    char *saved_cwd = getcwd(NULL, 0);
    char *dir = kbtest_tmpdir();
    assert_int_equal(chdir(dir), 0);
    static const char *const vars[] = { "DATABASE_URL", "PGHOST", "PGPORT", "PGUSER",
                                        "PGPASSWORD", "PGDATABASE", "PGSERVICE", "PGHOSTADDR" };
    char *saved[8];
    for (int i = 0; i < 8; i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? kb_xstrdup(v) : NULL;
        unsetenv(vars[i]);
    }
    const char *origin;
    char *ci;
    /* nothing anywhere: libpq defaults */
    ci = db_conninfo_resolve(NULL, &origin);
    assert_string_equal(ci, "");
    assert_string_equal(origin, "libpq defaults");
    free(ci);
    /* .env: DATABASE_URL wins over its PG* lines */
    kbtest_write(".env", "# spec's settings\nPGHOST=localhost\nexport PGUSER='supervisor'\n"
                         "DATABASE_URL=\"postgresql://supervisor:supervisor@localhost:5432/sv\"\n");
    ci = db_conninfo_resolve(NULL, &origin);
    assert_string_equal(ci, "postgresql://supervisor:supervisor@localhost:5432/sv");
    assert_string_equal(origin, ".env");
    free(ci);
    kbtest_write(".env", "PGHOST=localhost\nPGUSER=supervisor\nPGPASSWORD=it's\n");
    ci = db_conninfo_resolve(NULL, &origin);
    assert_string_equal(ci, "host='localhost' user='supervisor' password='it\\'s'");
    free(ci);
    /* PG* variables beat .env */
    setenv("PGHOST", "/tmp", 1);
    ci = db_conninfo_resolve(NULL, &origin);
    assert_string_equal(ci, "");
    assert_string_equal(origin, "PG* environment variables");
    free(ci);
    /* DATABASE_URL beats PG* */
    setenv("DATABASE_URL", "postgresql:///fromenv", 1);
    ci = db_conninfo_resolve(NULL, &origin);
    assert_string_equal(ci, "postgresql:///fromenv");
    free(ci);
    /* --db beats everything */
    ci = db_conninfo_resolve("dbname=explicit", &origin);
    assert_string_equal(ci, "dbname=explicit");
    assert_string_equal(origin, "--db");
    free(ci);
    for (int i = 0; i < 8; i++) {
        if (saved[i])
            setenv(vars[i], saved[i], 1);
        else
            unsetenv(vars[i]);
        free(saved[i]);
    }
    assert_int_equal(chdir(saved_cwd), 0);
    free(saved_cwd);
    kbtest_rmtree(dir);
    free(dir);
}

static void db_conninfo_redacted__hides_passwords(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        { "postgresql://sv:s3cret@db:5432/x", "postgresql://sv:****@db:5432/x" },
        { "postgres://sv@db/x?password=s3cret&sslmode=require",
          "postgres://sv@db/x?password=****&sslmode=require" },
        { "host=db password=s3cret user=sv", "host=db password=**** user=sv" },
        { "host=db password = 'se cr\\'et' user=sv", "host=db password = **** user=sv" },
        { "host=db user=sv", "host=db user=sv" },
        { "", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *r = db_conninfo_redacted(cases[i].in);
        assert_string_equal(r, cases[i].out);
        assert_null(strstr(r, "s3cret"));
        free(r);
    }
}

static void db_connect__failure_never_shows_password(void **state)
{
    (void)state;
    struct db_conn *c = NULL;
    struct kb_err err = { 0 };
    assert_int_equal(db_connect("postgresql://u:topsecret@127.0.0.1:1/x?connect_timeout=2",
                                &c, &err), KB_E_DB);
    assert_null(c);
    assert_null(strstr(err.msg, "topsecret"));
    assert_non_null(strstr(err.msg, "cannot connect"));
}

/* db_print_json's text, in a new string (caller frees). */
static char *json_of(const struct db_rows *rows)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    db_print_json(rows, out);
    assert_int_equal(fclose(out), 0);
    return text;
}

/*
 * The JSON of `stats`, `sources` and `secret list|audit --json` (print.c,
 * built with jansson): each type of column as docs/operations.md says,
 * exactly, on the server's own values, one line ending in a newline.
 */
static void db_print_json__types_and_escapes(void **state)
{
    (void)state;
    static const struct { const char *select, *want; } cases[] = {
        { "NULL::int AS a, NULL::text AS b, true AS t, false AS f", "{\"a\":null,\"b\":null,"
          "\"t\":true,\"f\":false}" },
        /* whole numbers as integers, 64 bits; a larger one is a real */
        { "42::bigint AS i, (-7)::int2 AS s, 100::float8 AS h, 12::numeric AS n, "
          "9223372036854775807::numeric AS max, 12345678901234567890::numeric AS huge",
          "{\"i\":42,\"s\":-7,\"h\":100,\"n\":12,\"max\":9223372036854775807,"
          "\"huge\":1.23456789012346e19}" },
        /* reals to 15 significant digits: a decimal of up to 15 digits as the
         * server wrote it, trailing zeros dropped; NaN and infinity are null */
        { "0.5000::numeric(5,4) AS c, 0.3::numeric AS t, 2.0::numeric AS r, 9.95::float8 AS d, "
          "1e20::float8 AS e, 'NaN'::numeric AS nan, '-Infinity'::float8 AS inf",
          "{\"c\":0.5,\"t\":0.3,\"r\":2.0,\"d\":9.95,\"e\":1e20,\"nan\":null,"
          "\"inf\":null}" },
        /* json and jsonb: the values they hold, printed compact */
        { "'[0, 1, 2]'::jsonb AS bins, '{\"a\": 1.50, \"b\": [\"x\", null]}'::json AS o",
          "{\"bins\":[0,1,2],\"o\":{\"a\":1.5,\"b\":[\"x\",null]}}" },
        /* text: JSON's escapes, UTF-8 as it is; timestamps are text */
        { "E'q\"b\\\\s\\x01\\b\\f\\n\\t\\x1b \\u00e9' AS t, '' AS e, "
          "'2026-01-02 03:04:05'::timestamp AS ts",
          "{\"t\":\"q\\\"b\\\\s\\u0001\\b\\f\\n\\t\\u001B \xc3\xa9\",\"e\":\"\","
          "\"ts\":\"2026-01-02 03:04:05\"}" },
    };
    struct kbtest_db db;
    if (!kbtest_db_open(&db))
        skip();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *sql = kb_xasprintf("SELECT %s", cases[i].select);
        struct db_rows *rows = NULL;
        struct kb_err err = { 0 };
        assert_int_equal(db_exec(db.conn, sql, 0, NULL, &rows, &err), KB_OK);
        char *got = json_of(rows);
        char *want = kb_xasprintf("[%s]\n", cases[i].want);
        if (strcmp(got, want) != 0)
            fail_msg("%s\n  got:  %s\n  want: %s", sql, got, want);
        free(want);
        free(got);
        db_rows_free(rows);
        free(sql);
    }
    struct db_rows *rows = NULL;   /* no row: an empty array */
    struct kb_err err = { 0 };
    assert_int_equal(db_exec(db.conn, "SELECT 1 AS x WHERE false", 0, NULL, &rows, &err), KB_OK);
    char *got = json_of(rows);
    assert_string_equal(got, "[]\n");
    free(got);
    db_rows_free(rows);
    kbtest_db_close(&db);
}

/* Each row as "a|b|..." ("NULL" for a NULL cell) into a kb_buf; a row "stop" fails. */
static enum kb_code each_row(const char *const *cols, void *ctx, struct kb_err *err)
{
    struct kb_buf *b = ctx;
    if (cols[0] && strcmp(cols[0], "stop") == 0)
        return KB_FAIL(err, KB_E_INPUT, NULL, "stopped at a row");
    kb_buf_printf(b, "%s|%s;", cols[0] ? cols[0] : "NULL", cols[1] ? cols[1] : "NULL");
    return KB_OK;
}

/* db_exec_each: every row in order, NULL cells as NULL, parameters bound;
 * the callback's first failure ends it and is returned; a bad statement is KB_E_DB. */
static void db_exec_each__rows_nulls_and_first_failure(void **state)
{
    (void)state;
    struct kbtest_db db;
    if (!kbtest_db_open(&db))
        skip();
    struct kb_buf b;
    kb_buf_init(&b);
    struct kb_err err = { 0 };
    const char *p[] = { "x" };
    assert_int_equal(db_exec_each(db.conn, "SELECT * FROM (VALUES ('a', $1), (NULL, 'b'), "
                                  "('c', NULL)) v", 1, p, each_row, &b, &err), KB_OK);
    assert_string_equal(b.data, "a|x;NULL|b;c|NULL;");
    kb_buf_release(&b);
    kb_buf_init(&b);
    assert_int_equal(db_exec_each(db.conn, "SELECT * FROM (VALUES ('a', '1'), ('stop', '2'), "
                                  "('c', '3')) v", 0, NULL, each_row, &b, &err), KB_E_INPUT);
    assert_string_equal(b.data, "a|1;");          /* no row after the failing one */
    assert_string_equal(err.msg, "stopped at a row");
    kb_buf_release(&b);
    kb_buf_init(&b);
    assert_int_equal(db_exec_each(db.conn, "SELECT nope", 0, NULL, each_row, &b, &err), KB_E_DB);
    assert_null(b.data);
    kb_buf_release(&b);
    kbtest_db_close(&db);
}

/* db_stream: rows one at a time and then the end; a statement that fails
 * after some rows gives those rows, then KB_E_DB; a stream closed before
 * its end leaves the connection ready for the next statement. */
static void db_stream__rows_failure_and_early_close(void **state)
{
    (void)state;
    struct kbtest_db db;
    if (!kbtest_db_open(&db))
        skip();
    struct kb_err err = { 0 };
    struct db_stream *s;
    const struct db_rows *row;
    const char *p[] = { "3" };
    assert_int_equal(db_stream_open(db.conn, "SELECT g FROM generate_series(1, $1::int) g", 1, p,
                                    &s, &err), KB_OK);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(db_stream_next(s, &row, &err), KB_OK);
        assert_non_null(row);
        assert_int_equal(db_rows_count(row), 1);   /* single-row mode */
        assert_int_equal(atoi(db_rows_get(row, 0, 0)), i);
    }
    assert_int_equal(db_stream_next(s, &row, &err), KB_OK);
    assert_null(row);
    db_stream_close(s);
    assert_int_equal(db_stream_open(db.conn, "SELECT 10 / (2 - g) FROM generate_series(1, 3) g",
                                    0, NULL, &s, &err), KB_OK);
    assert_int_equal(db_stream_next(s, &row, &err), KB_OK);
    assert_string_equal(db_rows_get(row, 0, 0), "10");
    assert_int_equal(db_stream_next(s, &row, &err), KB_E_DB);
    assert_null(row);
    assert_non_null(strstr(err.msg, "division by zero"));
    db_stream_close(s);
    assert_int_equal(db_stream_open(db.conn, "SELECT g FROM generate_series(1, 1000) g", 0,
                                    NULL, &s, &err), KB_OK);
    assert_int_equal(db_stream_next(s, &row, &err), KB_OK);
    db_stream_close(s);   /* 999 rows unread */
    struct db_rows *rows;
    assert_int_equal(db_exec(db.conn, "SELECT 42", 0, NULL, &rows, &err), KB_OK);
    assert_string_equal(db_rows_get(rows, 0, 0), "42");
    db_rows_free(rows);
    kbtest_db_close(&db);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest conn_tests[] = {
        cmocka_unit_test(db_conninfo_resolve__order),
        cmocka_unit_test(db_conninfo_redacted__hides_passwords),
        cmocka_unit_test(db_connect__failure_never_shows_password),
    };
    const struct CMUnitTest migrate_tests[] = {
        cmocka_unit_test_setup_teardown(db_migrate_up__applies_in_order_and_records, setup, teardown),
        cmocka_unit_test_setup_teardown(db_migrate_down__reverts_last_n, setup, teardown),
        cmocka_unit_test_setup_teardown(db_migrate_up__failure_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(db_migrate_verify__detects_tamper_and_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(db_migrate_create__numbers_and_sections, setup, teardown),
        cmocka_unit_test_setup_teardown(migrate_up__concurrent_processes, setup, teardown),
        cmocka_unit_test(migrate_cli__usage_and_exit_codes),
    };
    const struct CMUnitTest print_tests[] = {
        cmocka_unit_test(db_print_json__types_and_escapes),
    };
    const struct CMUnitTest query_tests[] = {
        cmocka_unit_test(db_exec_each__rows_nulls_and_first_failure),
        cmocka_unit_test(db_stream__rows_failure_and_early_close),
    };
    int failed = cmocka_run_group_tests_name("conn.c", conn_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("migrate.c", migrate_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("print.c", print_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("query.c", query_tests, NULL, NULL);
    return failed ? 1 : 0;
}
