/*
 * kbtest.c - shared helpers for cmocka tests (see kbtest.h).
 */
#include "kbtest.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "embed/embed.h"

static int schema_seq;

int kbtest_db_open(struct kbtest_db *t)
{
    memset(t, 0, sizeof *t);
    const char *dsn = getenv("KBPIPE_TEST_DSN");
    if (dsn == NULL || *dsn == '\0')
        return 0;
    snprintf(t->schema, sizeof t->schema, "kbt_%ld_%d", (long)getpid(), ++schema_seq);
    struct kb_err err = { 0 };
    struct db_conn *admin;
    if (db_connect(dsn, &admin, &err) != KB_OK)
        fail_msg("KBPIPE_TEST_DSN is set but the database is unreachable: %s", err.msg);
    char *sql = kb_xasprintf("DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", t->schema,
                             t->schema);
    if (db_exec_script(admin, sql, NULL, &err) != KB_OK)
        fail_msg("cannot create test schema: %s", err.msg);
    free(sql);
    db_close(admin);
    t->conninfo = kb_xasprintf("%s options='-csearch_path=%s,public'", dsn, t->schema);
    if (db_connect(t->conninfo, &t->conn, &err) != KB_OK)
        fail_msg("cannot connect to the test schema: %s", err.msg);
    return 1;
}

void kbtest_db_close(struct kbtest_db *t)
{
    if (t->conn) {
        struct kb_err err = { 0 };
        char *sql = kb_xasprintf("DROP SCHEMA IF EXISTS %s CASCADE", t->schema);
        db_exec_script(t->conn, sql, NULL, &err);
        free(sql);
        db_close(t->conn);
    }
    free(t->conninfo);
    memset(t, 0, sizeof *t);
}

void kbtest_db_export(const struct kbtest_db *t)
{
    setenv("DATABASE_URL", "", 1);
    unsetenv("DATABASE_URL");
    char *opts = kb_xasprintf("-csearch_path=%s,public", t->schema);
    setenv("PGOPTIONS", opts, 1);
    free(opts);
}

char *kbtest_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *tmpl = kb_xasprintf("%s/kbtest.XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(tmpl) == NULL)
        fail_msg("mkdtemp failed");
    return tmpl;
}

void kbtest_rmtree(const char *path)
{
    if (path && strlen(path) > 5)
        kbtest_sh(NULL, NULL, "rm -rf '%s'", path);
}

void kbtest_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        fail_msg("cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static char *slurp(FILE *f)
{
    struct kb_buf b;
    kb_buf_init(&b);
    char chunk[4096];
    size_t n;
    rewind(f);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        kb_buf_append(&b, chunk, n);
    return kb_buf_detach(&b);
}

int kbtest_sh(char **out, char **errout, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char cmd[8192];
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *fo = tmpfile(), *fe = tmpfile();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fileno(fo), 1);
        dup2(fileno(fe), 2);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (out)
        *out = slurp(fo);
    if (errout)
        *errout = slurp(fe);
    fclose(fo);
    fclose(fe);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

const char *kbtest_bin(void)
{
    const char *b = getenv("KBPIPE_BIN");
    return b && *b ? b : "build/rel/kbpipe-test";
}

const char *kbtest_root(void)
{
    const char *r = getenv("KBPIPE_ROOT");
    return r && *r ? r : ".";
}

char *kbtest_query(struct kbtest_db *t, const char *sql)
{
    struct kb_err err = { 0 };
    struct db_rows *rows;
    if (db_exec(t->conn, sql, 0, NULL, &rows, &err) != KB_OK)
        fail_msg("query failed: %s: %s", sql, err.msg);
    char *v = kb_xstrdup(db_rows_count(rows) ? db_rows_get(rows, 0, 0) : "");
    db_rows_free(rows);
    return v;
}

int kbtest_migrated_setup(void **state)
{
    struct kbtest_db *t = kb_xcalloc(1, sizeof *t);
    if (!kbtest_db_open(t)) {
        free(t);
        *state = NULL;
        return 0;
    }
    struct kb_err err = { 0 };
    char *dir = kb_xasprintf("%s/migrations", kbtest_root());
    int n;
    if (db_migrate_up(t->conn, dir, 0, &n, &err) != KB_OK)
        fail_msg("migrate up failed: %s: %s", err.origin, err.msg);
    free(dir);
    kbtest_db_export(t);
    *state = t;
    return 0;
}

int kbtest_migrated_teardown(void **state)
{
    struct kbtest_db *t = *state;
    if (t) {
        kbtest_db_close(t);
        free(t);
    }
    return 0;
}

size_t kbtest_http_read(int fd, struct kb_buf *in, size_t *body_len)
{
    char buf[65536];
    size_t body_at = 0, content_length = 0;
    for (;;) {
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k <= 0)
            break;
        kb_buf_append(in, buf, (size_t)k);
        if (!body_at) {
            char *e = strstr(in->data, "\r\n\r\n");
            if (!e)
                continue;
            body_at = (size_t)(e + 4 - in->data);
            char *cl = strcasestr(in->data, "content-length:");
            content_length = cl ? strtoul(cl + 15, NULL, 10) : 0;
        }
        if (in->len >= body_at + content_length)
            break;
    }
    if (body_at && in->len < body_at + content_length)
        content_length = in->len - body_at;   /* the peer closed early */
    *body_len = content_length;
    return body_at;
}

/* ---- the embeddings stub server ------------------------------------------ */

static void stub_serve(struct kbtest_stub *s, int fd)
{
    struct kb_buf in;
    kb_buf_init(&in);
    size_t body_len;
    size_t body_at = kbtest_http_read(fd, &in, &body_len);
    json_t *req = body_at ? json_loadb(in.data + body_at, body_len, 0, NULL) : NULL;
    json_t *inputs = json_object_get(req, "input");
    if (req) {
        const char *model = json_string_value(json_object_get(req, "model"));
        s->n_requests++;
        s->n_inputs += (int)json_array_size(inputs);
        snprintf(s->model, sizeof s->model, "%s", model ? model : "");
    }
    json_t *data = json_array();
    float v[KB_EMBED_DIM];
    for (size_t i = 0; i < json_array_size(inputs); i++) {
        const char *text = json_string_value(json_array_get(inputs, i));
        embed_hash_text(text, strlen(text), v);
        json_t *vec = json_array();
        for (int j = 0; j < KB_EMBED_DIM; j++)
            json_array_append_new(vec, json_real(v[j]));
        json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding",
                                              "index", (json_int_t)i, "embedding", vec));
    }
    json_t *root = json_pack("{s:s, s:o, s:s}", "object", "list", "data", data, "model", "stub");
    char *body = json_dumps(root, JSON_COMPACT);
    char *head = kb_xasprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\nConnection: close\r\n\r\n", strlen(body));
    send(fd, head, strlen(head), MSG_NOSIGNAL);
    send(fd, body, strlen(body), MSG_NOSIGNAL);
    free(head);
    free(body);
    json_decref(root);
    json_decref(req);
    kb_buf_release(&in);
}

static void *stub_loop(void *arg)
{
    struct kbtest_stub *s = arg;
    for (;;) {
        int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            return NULL;   /* shut down */
        stub_serve(s, c);
        close(c);
    }
}

/* See kbtest.h. */
void kbtest_stub_start(struct kbtest_stub *s)
{
    memset(s, 0, sizeof *s);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s->fd, 8) != 0 || getsockname(s->fd, (struct sockaddr *)&a, &len) != 0)
        fail_msg("cannot start the stub server");
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, stub_loop, s);
}

void kbtest_stub_stop(struct kbtest_stub *s)
{
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->fd);
}
