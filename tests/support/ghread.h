/*
 * ghread.h - reading a type: github source straight through src/ingest
 * (no database) for the tests of the GitHub reader (test_github.c,
 * test_github_discussions.c): a source on the stub of ghstub.h, every
 * document as one line, the marks the reader ended with.
 */
#ifndef KB_GHREAD_H
#define KB_GHREAD_H

#include "ghstub.h"
#include "ingest/ingest.h"

/* What reading a source gave. */
struct gh_read {
    int n_docs, n_bad;
    enum kb_code rc;               /* the first error other than KB_E_INPUT, or KB_OK */
    struct kb_err err;             /* the last error */
    struct kb_buf docs;            /* "source_id\ttitle\turl\tauthor\tmetadata\ttext\n" each */
    struct kb_buf marks;           /* "key=value\n" each, when the reader ended */
};

/* A github source on stub s: repos [GH_STUB_REPO], base_url http://127.0.0.1:PORT
 * in `base` (n bytes), the token in KBT_GH_TOKEN, 10 ms backoff, max_wait 5 s. */
void gh_source_for(struct ingest_source *src, const struct gh_stub *s, char *base, size_t n);

/* A stub and a github source on it (token, short waits). */
struct gh_fx {
    struct gh_stub s;
    struct ingest_source src;
    char base[64];
    char gql[64];                  /* the source's graphql_url (gh_fx_start_discussions) */
    int is_started;
};

/*
 * cmocka fixtures of the reader tests: gh_fx_setup puts a zeroed gh_fx in
 * *state; gh_fx_teardown stops its stub if the test started one (also
 * when the test failed half-way) and frees it.  A test starts the stub it
 * needs with gh_fx_start or gh_fx_start_discussions, and never stops it.
 */
int gh_fx_setup(void **state);
int gh_fx_teardown(void **state);
/* A test of a group's table with the gh_fx fixtures. */
#define GH_FX_TEST(f) cmocka_unit_test_setup_teardown(f, gh_fx_setup, gh_fx_teardown)

/* Start the stub with n_issues issues and the source on it. */
void gh_fx_start(struct gh_fx *f, int n_issues);
/* The same, the stub also serving n_disc discussions (ghstub_discussions),
 * and the source reading them from its GraphQL endpoint (f->gql). */
void gh_fx_start_discussions(struct gh_fx *f, int n_issues, int n_disc);
/* Stop the stub now (gh_fx_teardown then does nothing); for a test that
 * starts a second one.  A stopped fixture is a no-op. */
void gh_fx_stop(struct gh_fx *f);

/*
 * Read the whole source into *out (release with gh_read_release); `marks_in`
 * ("key=value\n"..., may be NULL) are given to the reader first.  Each
 * document is a line "source_id\ttitle\turl\tauthor\tmetadata\ttext\n".
 */
void gh_read_all(const struct ingest_source *src, const char *marks_in, struct gh_read *out);
void gh_read_release(struct gh_read *r);

/* How many times needle occurs in hay (NULL: 0). */
int gh_count_of(const char *hay, const char *needle);

#endif /* KB_GHREAD_H */
