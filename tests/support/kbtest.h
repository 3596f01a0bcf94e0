/*
 * kbtest.h - what cmocka tests share: a private database schema per test
 * group, temporary folders, and running the kbpipe binary.
 *
 * Database tests read KBPIPE_TEST_DSN.  `make check` always sets it (and
 * starts the cluster), so there a missing database fails; run by hand
 * without it, database tests skip().
 */
#ifndef KB_TEST_H
#define KB_TEST_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "db/db.h"
#include "util/util.h"

struct kbtest_db {
    struct db_conn *conn;
    char schema[64];     /* e.g. kbt_12345_1 */
    char *conninfo;      /* KBPIPE_TEST_DSN plus options=-csearch_path=<schema>,public */
};

/*
 * Create a fresh schema and connect with it first on the search_path.
 * Returns 0 when there is no KBPIPE_TEST_DSN (the caller skips), 1 when
 * connected; fails the test when the database is unreachable.
 */
int kbtest_db_open(struct kbtest_db *t);
/* Drop the schema and disconnect. */
void kbtest_db_close(struct kbtest_db *t);

/*
 * cmocka group fixtures: a kbtest_db with every migration of migrations/
 * applied, exported for child kbpipe processes, in *state (NULL when there
 * is no KBPIPE_TEST_DSN: tests then KBTEST_NEED_DB and skip).
 */
int kbtest_migrated_setup(void **state);
int kbtest_migrated_teardown(void **state);
#define KBTEST_NEED_DB(t) \
    do {                  \
        if ((t) == NULL)  \
            skip();       \
    } while (0)

/*
 * Read one HTTP request from a socket into *in (initialized by the caller):
 * headers, then Content-Length bytes of body.  Returns the body's offset
 * in in->data (its length in *body_len), or 0 when the peer closed before
 * the headers ended.  For the stub servers of the embedding tests.
 */
size_t kbtest_http_read(int fd, struct kb_buf *in, size_t *body_len);

/*
 * A one-thread OpenAI-compatible embeddings server on 127.0.0.1 (an
 * ephemeral port in ->port) that answers each POST /v1/embeddings with the
 * kbpipe-hash-v1 vectors of its inputs.  It counts the requests and the
 * input texts it was sent, and keeps the last request's model.  Start and
 * stop it from the test's thread; fails the test if it cannot listen.
 */
struct kbtest_stub {
    int fd, port, n_requests, n_inputs;
    char model[64];
    pthread_t thread;
};
void kbtest_stub_start(struct kbtest_stub *s);
void kbtest_stub_stop(struct kbtest_stub *s);

/* Environment a child kbpipe needs to use t's schema: sets PGOPTIONS etc. */
void kbtest_db_export(const struct kbtest_db *t);

/* A new empty temporary folder (caller frees the path); removed by kbtest_rmtree. */
char *kbtest_tmpdir(void);
void kbtest_rmtree(const char *path);
/* Write a file (creating it); fails the test on error. */
void kbtest_write(const char *path, const char *text);

/*
 * Run a shell command line; returns its exit status (or 128+signal).
 * stdout/stderr are captured into *out / *errout when not NULL (caller frees).
 */
int kbtest_sh(char **out, char **errout, const char *fmt, ...) KB_PRINTF(3, 4);

/* The kbpipe binary under test: $KBPIPE_BIN, else build/rel/kbpipe-test. */
const char *kbtest_bin(void);

/* The repository root: $KBPIPE_ROOT, else ".". */
const char *kbtest_root(void);

/* Scalar query result as a new string (caller frees); fails the test on error. */
char *kbtest_query(struct kbtest_db *t, const char *sql);

#endif /* KB_TEST_H */
