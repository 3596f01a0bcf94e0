/*
 * test_util.c - src/util.
 *
 * Group nearest.c: kb_cli_unknown_option() for what getopt answers '?' to:
 * an unknown option (with the nearest known one), a known one missing its
 * value or given one it does not take.
 *
 * Group term.c: kb_term_escape() makes loaded text safe for a terminal
 * (control characters, C1, invalid UTF-8 escaped; text and UTF-8 kept).
 *
 * Group redact.c: kb_redact() over a table of every form a credential takes
 * in what kbpipe prints (URL userinfo, libpq conninfo in each quoting form,
 * URL query parameters, JSON bodies, HTTP headers, Bearer tokens), with the
 * adversarial neighbours that must come out unchanged (a host, database or
 * user named "password", "max_tokens", prose); masking twice changes
 * nothing; libpq's own parser (PQconninfoParse) agrees: no 4-byte piece of
 * the password it reads is left in the masked text; kb_err_set and
 * kb_err_prefix mask what they store; db_conninfo_redacted is the same
 * function.
 */
#include "kbtest.h"

#include <getopt.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *in, *out;
} redact_cases[] = {
    /* libpq key=value */
    { "host=db password=secret1 dbname=kb", "host=db password=**** dbname=kb" },
    { "password=Esc\\ aped host=x", "password=**** host=x" },
    { "host=x password=Esc\\ aped", "host=x password=****" },
    { "password='se cr\\'et\\\\' user=u", "password=**** user=u" },
    { "password = 'spaced' user=u", "password = **** user=u" },
    { "password= nextword user=u", "password= **** user=u" },   /* libpq: "nextword" */
    { "password='' host=h", "password=**** host=h" },
    { "password=", "password=****" },
    { "password='unterminated", "password=****" },
    { "host=password dbname=password user=password password=pw",
      "host=password dbname=password user=password password=****" },
    { "sslpassword=keypass sslkey=/k/password.key", "sslpassword=**** sslkey=/k/password.key" },
    { "password=a password='b' password=\"c d\"",
      "password=**** password=**** password=\"****\"" },
    { "Password=A", "Password=****" },
    { "PGPASSWORD=pw psql", "PGPASSWORD=**** psql" },
    /* URLs */
    { "postgres://u:p%40ss@h:5432/db?sslmode=require&password=second",
      "postgres://u:****@h:5432/db?sslmode=require&password=****" },
    { "postgresql://password@password/password?password=x&application_name=password",
      "postgresql://password@password/password?password=****&application_name=password" },
    { "postgresql://u:pw@h1:5432,h2:5433/db", "postgresql://u:****@h1:5432,h2:5433/db" },
    { "http://user:PASSWORD@host/v1", "http://user:****@host/v1" },
    { "http://user:@host/v1", "http://user:****@host/v1" },
    { "https://sk-TOKEN@api.example.com/v1", "https://****@api.example.com/v1" },
    { "http://u:p@ss@host/v1", "http://u:****@host/v1" },
    { "http://u:p%20w%3A@127.0.0.1:9/v1/embeddings: request of 4 chunks",
      "http://u:****@127.0.0.1:9/v1/embeddings: request of 4 chunks" },
    { "https://h/v1?api_key=K1&apikey=K2#frag", "https://h/v1?api_key=****&apikey=****#frag" },
    { "https://h/v1?password=p%26w&x=1", "https://h/v1?password=****&x=1" },
    { "see http://host:8080/v1 and mail a@b", "see http://host:8080/v1 and mail a@b" },
    { "base_url 'http://a:b@h/v1' is bad", "base_url 'http://a:****@h/v1' is bad" },
    /* headers and bodies */
    { "Authorization: Bearer sk-abc.def", "Authorization: Bearer ****" },
    { "authorization:Basic dXNlcjpwYXNz", "authorization:Basic ****" },
    { "x-api-key: abc123, next", "x-api-key: ****, next" },
    { "bearer abc", "bearer ****" },
    { "{\"api_key\": \"sk-1\", \"model\": \"m\", \"token\": \"t\\\"x\"}",
      "{\"api_key\": \"****\", \"model\": \"m\", \"token\": \"****\"}" },
    { "{\"password\":12}", "{\"password\":12}" },
    /* what must not change */
    { "max_tokens=5 token_count=3 tokens=4", "max_tokens=5 token_count=3 tokens=4" },
    { "api_key_env: OPENAI_API_KEY", "api_key_env: OPENAI_API_KEY" },
    { "password authentication failed for user \"password\"",
      "password authentication failed for user \"password\"" },
    { "token: 12 tokens, secret: none", "token: 12 tokens, secret: none" },
    { "", "" },
};

static void kb_redact__forms(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof redact_cases / sizeof redact_cases[0]; i++) {
        char *got = kb_redact(redact_cases[i].in);
        if (strcmp(got, redact_cases[i].out) != 0)
            fail_msg("case %zu: '%s'\n  expected '%s'\n  got      '%s'", i, redact_cases[i].in,
                     redact_cases[i].out, got);
        char *twice = kb_redact(got);
        assert_string_equal(twice, got);   /* masking twice changes nothing */
        free(twice);
        free(got);
    }
}

/* Every 4-byte piece of the password libpq reads from `conninfo`. */
static void assert_no_piece(const char *shown, const char *pw, const char *conninfo)
{
    size_t n = strlen(pw);
    for (size_t k = 0; k + 4 <= n || (k == 0 && n > 0); k++) {
        char piece[5] = { 0 };
        memcpy(piece, pw + k, n < 4 ? n : 4);
        if (strstr(shown, piece))
            fail_msg("'%s' shows '%s' of the password as '%s'", conninfo, piece, shown);
    }
}

static void kb_redact__libpq_agrees(void **state)
{
    (void)state;
    static const char *const conninfos[] = {
        "host=h password=Esc\\ aped",
        "host=h password='Qu\\'ot ed\\\\' dbname=d",
        "host=h password = Spa\\ cedPw   user=u",
        "host=h password=   LeadingBlank",
        "host=h sslpassword=SslKeyPw password=Both\\ PwX",
        "postgresql://u:Url%40PwZ@h/d",
        "postgresql://u@h/d?password=QueryPwY&sslmode=disable",
        "postgres://u:FirstPw@h/d?password=SecondPw",
    };
    for (size_t i = 0; i < sizeof conninfos / sizeof conninfos[0]; i++) {
        char *errmsg = NULL;
        PQconninfoOption *opts = PQconninfoParse(conninfos[i], &errmsg);
        if (opts == NULL)
            fail_msg("libpq rejects case %zu '%s': %s", i, conninfos[i], errmsg);
        char *shown = db_conninfo_redacted(conninfos[i]);
        int n_pw = 0;
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (o->val && o->val[0] &&
                (strcmp(o->keyword, "password") == 0 || strcmp(o->keyword, "sslpassword") == 0)) {
                assert_no_piece(shown, o->val, conninfos[i]);
                n_pw++;
            }
        assert_true(n_pw > 0);   /* the case really holds a password */
        assert_non_null(strstr(shown, "****"));
        free(shown);
        PQconninfoFree(opts);
    }
}

static void kb_err_set__masks(void **state)
{
    (void)state;
    struct kb_err err;
    KB_FAIL_AT(&err, KB_E_EMBED, "http://u:OriginPw@h/v1/embeddings", "connect to %s failed",
               "host=h password='Msg Pw'");
    assert_null(strstr(err.origin, "OriginPw"));
    assert_string_equal(err.origin, "http://u:****@h/v1/embeddings");
    assert_string_equal(err.msg, "connect to host=h password=**** failed");
    kb_err_prefix(&err, "source %s", "http://k:PrefixPw@h");
    assert_null(strstr(err.msg, "PrefixPw"));
    /* a password longer than the message still never shows in part */
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    KB_FAIL(&err, KB_E_DB, NULL, "%.500s password=CutHereSecret", big);
    assert_null(strstr(err.msg, "CutH"));
}

static void kb_term_escape__controls(void **state)
{
    (void)state;
    static const struct { const char *in; size_t len; const char *out; } cases[] = {
        { "plain title", 11, "plain title" },
        { "tab\tand\nnewline", 15, "tab\tand\nnewline" },                 /* kept */
        { "\x1b[2Jcleared", 11, "\\x1b[2Jcleared" },                      /* CSI: clear */
        { "\x1b]0;owned\x07", 10, "\\x1b]0;owned\\x07" },                 /* OSC: title */
        { "bell\x07 del\x7f cr\r", 14, "bell\\x07 del\\x7f cr\\x0d" },
        { "c1 \xc2\x9b" "31m", 8, "c1 \\u009b31m" },                      /* C1 CSI */
        { "caf\xc3\xa9 \xe2\x82\xac", 9, "caf\xc3\xa9 \xe2\x82\xac" },    /* UTF-8 kept */
        { "nbsp\xc2\xa0ok", 8, "nbsp\xc2\xa0ok" },                        /* U+00A0 is text */
        { "bad \xff byte", 10, "bad \\xff byte" },                        /* invalid UTF-8 */
        { "nul\0in", 6, "nul\\x00in" },
        { "back\\slash", 10, "back\\slash" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kb_buf b;
        kb_buf_init(&b);
        kb_term_escape(&b, cases[i].in, cases[i].len);
        const char *got = b.data ? b.data : "";
        if (strlen(got) != b.len || strcmp(got, cases[i].out) != 0)
            fail_msg("case %zu: got '%s', expected '%s'", i, got, cases[i].out);
        kb_buf_release(&b);
    }
}

static void kb_cli_unknown_option__messages(void **state)
{
    (void)state;
    static const struct option longopts[] = {
        { "project", required_argument, NULL, 'p' },
        { "limit", required_argument, NULL, 'l' },
        { "json", no_argument, NULL, 'j' },
        { NULL, 0, NULL, 0 },
    };
    static const struct { const char *arg, *msg; } cases[] = {
        { "--limt", "unknown option '--limt' (did you mean '--limit'?); see 'kbpipe x --help'" },
        { "--limt=3", "unknown option '--limt=3' (did you mean '--limit'?); see 'kbpipe x --help'" },
        { "--colour", "unknown option '--colour'; see 'kbpipe x --help'" },
        { "--project", "option '--project' needs a value; see 'kbpipe x --help'" },
        { "--json=yes", "option '--json' takes no value; see 'kbpipe x --help'" },
        { "project", "unknown option 'project'; see 'kbpipe x --help'" },   /* not an option */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kb_err err = { 0 };
        assert_int_equal(kb_cli_unknown_option("x", cases[i].arg, longopts, &err), KB_E_USAGE);
        assert_string_equal(err.msg, cases[i].msg);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest redact_c[] = {
        cmocka_unit_test(kb_redact__forms),
        cmocka_unit_test(kb_redact__libpq_agrees),
        cmocka_unit_test(kb_err_set__masks),
    };
    const struct CMUnitTest term_c[] = {
        cmocka_unit_test(kb_term_escape__controls),
    };
    const struct CMUnitTest nearest_c[] = {
        cmocka_unit_test(kb_cli_unknown_option__messages),
    };
    int failed = cmocka_run_group_tests_name("redact.c", redact_c, NULL, NULL);
    failed += cmocka_run_group_tests_name("nearest.c", nearest_c, NULL, NULL);
    failed += cmocka_run_group_tests_name("term.c", term_c, NULL, NULL);
    return failed ? 1 : 0;
}
