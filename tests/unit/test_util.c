/*
 * test_util.c - src/util: text made safe for a terminal (term.c).
 * Groups: term.c.
 */
#include "kbtest.h"

#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest term_tests[] = {
        cmocka_unit_test(kb_term_escape__controls),
    };
    return cmocka_run_group_tests_name("term.c", term_tests, NULL, NULL) ? 1 : 0;
}
