/*
 * test_db.c - the parts of src/db that need no server: the .env reader.
 * (What needs PostgreSQL is in tests/integration/.)
 *
 * Each tests/data/dotenv/<case>.env sits beside <case>.expected, one line
 * per entry in file order:
 *
 *   LINE: NAME=VALUE          a value; \ newline CR tab written \\ \n \r \t
 *   LINE: warning: MESSAGE    a line the reader could not read
 *
 * The case "docs-example" is the ```dotenv block of docs/operations.md that
 * shows the syntax, so the documentation cannot drift from the reader.
 *
 * Groups: dotenv.c, conn.c.  Runs from the repository root ($KBPIPE_ROOT).
 */
#include "kbtest.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db_int.h"

static char *read_all(const char *path)
{
    struct kb_buf b;
    struct kb_err err = { 0 };
    kb_buf_init(&b);
    if (kb_buf_read_file(&b, path, &err) != KB_OK)
        fail_msg("%s: %s", err.origin, err.msg);
    return kb_buf_detach(&b);
}

/* The entries of env in the .expected format. */
static char *describe(const struct db_dotenv *env)
{
    struct kb_buf b;
    kb_buf_init(&b);
    for (size_t i = 0; i < env->n; i++) {
        const struct db_dotenv_item *it = &env->items[i];
        kb_buf_printf(&b, "%ld: ", it->line);
        if (it->warning) {
            kb_buf_printf(&b, "warning: %s\n", it->warning);
            continue;
        }
        kb_buf_printf(&b, "%s=", it->name);
        for (const char *p = it->value; *p; p++) {
            const char *esc = *p == '\\' ? "\\\\" : *p == '\n' ? "\\n" : *p == '\r' ? "\\r"
                              : *p == '\t' ? "\\t" : NULL;
            if (esc)
                kb_buf_puts(&b, esc);
            else
                kb_buf_putc(&b, *p);
        }
        kb_buf_putc(&b, '\n');
    }
    return kb_buf_detach(&b);
}

/* ---- dotenv.c ------------------------------------------------------------ */

static void db_dotenv_parse__cases(void **state)
{
    (void)state;
    static const char *const cases[] = { "basic", "quotes", "bad", "bom-crlf", "docs-example" };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *in = strcmp(cases[i], "docs-example") == 0
                       ? kb_xstrdup("docs/operations.md")
                       : kb_xasprintf("tests/data/dotenv/%s.env", cases[i]);
        char *exp = kb_xasprintf("tests/data/dotenv/%s.expected", cases[i]);
        struct kb_buf text;
        struct kb_err err = { 0 };
        kb_buf_init(&text);
        assert_int_equal(kb_buf_read_file(&text, in, &err), KB_OK);
        const char *body = text.data;
        size_t len = text.len;
        if (strcmp(cases[i], "docs-example") == 0) {   /* the block, without its fences */
            body = strstr(text.data, "```dotenv\n# a full-line comment");
            assert_non_null(body);
            body += 10;
            const char *fence = strstr(body, "```\n");
            assert_non_null(fence);
            len = (size_t)(fence - body);
        }
        struct db_dotenv env;
        db_dotenv_parse(body, len, &env);
        char *got = describe(&env), *want = read_all(exp);
        if (strcmp(got, want) != 0)
            fail_msg("%s:\n--- expected\n%s--- got\n%s", in, want, got);
        free(got);
        free(want);
        db_dotenv_release(&env);
        kb_buf_release(&text);
        free(in);
        free(exp);
    }
}

static void db_dotenv_get__last_readable_wins(void **state)
{
    (void)state;
    static const char text[] = "A=1\nA=2\nA=\"3\nB=x\n";   /* the third A is unreadable */
    struct db_dotenv env;
    db_dotenv_parse(text, sizeof text - 1, &env);
    assert_string_equal(db_dotenv_get(&env, "A"), "2");
    assert_string_equal(db_dotenv_get(&env, "B"), "x");
    assert_null(db_dotenv_get(&env, "C"));
    db_dotenv_release(&env);
}

/* ---- conn.c -------------------------------------------------------------- */

/* .env warnings name .env:LINE and never the value (it may be a password). */
static void db_conninfo_resolve__dotenv_warns_without_values(void **state)
{
    (void)state;
    static const char *const vars[] = { "DATABASE_URL", "PGHOST", "PGPORT", "PGUSER",
                                        "PGPASSWORD", "PGDATABASE", "PGSERVICE", "PGHOSTADDR" };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);   /* for good: nothing else in this process connects */
    char dir[] = "/tmp/kbtest-dotenv.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *old = getcwd(NULL, 0);
    assert_int_equal(chdir(dir), 0);
    kbtest_write(".env", "# db\nPGHOST=db.internal # prod\nPGPASSWORD=\"s3cret-pw\n"
                         "export PGUSER='ops'\nPGPASSWORD='s3cret' trailing\n");
    char *log_path = kb_xasprintf("%s/stderr", dir);
    fflush(stderr);
    int saved_fd = dup(2), fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved_fd >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    const char *origin;
    char *ci = db_conninfo_resolve(NULL, &origin);
    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    assert_string_equal(origin, ".env");
    assert_string_equal(ci, "host='db.internal' user='ops'");
    char *said = read_all(log_path);
    assert_non_null(strstr(said, "kbpipe: warning: .env:3: the double quote of this value "
                                 "is never closed"));
    assert_non_null(strstr(said, "kbpipe: warning: .env:5: text after the value's closing"));
    assert_null(strstr(said, "s3cret"));
    free(said);
    free(ci);
    unlink(".env");
    unlink(log_path);
    free(log_path);
    assert_int_equal(chdir(old), 0);
    rmdir(dir);
    free(old);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    if (chdir(kbtest_root()) != 0) {
        fprintf(stderr, "test_db: cannot enter %s\n", kbtest_root());
        return 1;
    }
    const struct CMUnitTest dotenv[] = {
        cmocka_unit_test(db_dotenv_parse__cases),
        cmocka_unit_test(db_dotenv_get__last_readable_wins),
    };
    const struct CMUnitTest conn[] = {
        cmocka_unit_test(db_conninfo_resolve__dotenv_warns_without_values),
    };
    int failed = cmocka_run_group_tests_name("dotenv.c", dotenv, NULL, NULL);
    failed += cmocka_run_group_tests_name("conn.c", conn, NULL, NULL);
    return failed ? 1 : 0;
}
