/*
 * copy_binary.c - rows for COPY ... FROM STDIN (FORMAT binary), as the
 * server's CopyFrom reads them: an 11-byte signature, flags and header
 * extension, then per tuple an int16 field count and per field an int32
 * length (-1 = NULL) and the type's binary "recv" form, all big-endian.
 *
 *   type     bytes                               read by
 *   int2/4/8 2/4/8                               int2recv/int4recv/int8recv
 *   text     the UTF-8 bytes                     textrecv
 *   jsonb    1 (version) + the JSON text         jsonb_recv
 *   uuid     16                                  uuid_recv
 *   regconfig 4 (the configuration's oid)        regconfigrecv (oidrecv)
 *   vector   2 dim, 2 unused (0), 4 x dim float4 pgvector's vector_recv
 *
 * Binary COPY spares the server from parsing 1536 decimal floats per row.
 * Data is buffered and sent in pieces of about 1 MB.
 */
#include "load/load_int.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define COPY_SEND_AT (1u << 20)

struct load_copy {
    PGconn *pg;
    struct kb_buf buf;
};

static void put16(struct kb_buf *b, uint16_t v)
{
    uint16_t n = htons(v);
    kb_buf_append(b, &n, 2);
}

static void put32(struct kb_buf *b, uint32_t v)
{
    uint32_t n = htonl(v);
    kb_buf_append(b, &n, 4);
}

static void put64(struct kb_buf *b, uint64_t v)
{
    put32(b, (uint32_t)(v >> 32));
    put32(b, (uint32_t)v);
}

enum kb_code load_copy_begin(PGconn *pg, const char *sql, struct load_copy **out,
                             struct kb_err *err)
{
    *out = NULL;
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
        PQclear(res);
        msg[strcspn(msg, "\n")] = '\0';
        return KB_FAIL(err, KB_E_DB, NULL, "COPY could not start: %s", msg);
    }
    PQclear(res);
    struct load_copy *c = kb_xcalloc(1, sizeof *c);
    c->pg = pg;
    kb_buf_init(&c->buf);
    kb_buf_reserve(&c->buf, COPY_SEND_AT + 65536);
    static const char sig[11] = { 'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0' };
    kb_buf_append(&c->buf, sig, sizeof sig);
    put32(&c->buf, 0);   /* flags */
    put32(&c->buf, 0);   /* header extension length */
    *out = c;
    return KB_OK;
}

void load_copy_tuple(struct load_copy *c, int n_fields) { put16(&c->buf, (uint16_t)n_fields); }

void load_copy_null(struct load_copy *c) { put32(&c->buf, 0xFFFFFFFFu); }

void load_copy_int(struct load_copy *c, int width, int64_t v)
{
    put32(&c->buf, (uint32_t)width);
    if (width == 2)
        put16(&c->buf, (uint16_t)v);
    else if (width == 8)
        put64(&c->buf, (uint64_t)v);
    else
        put32(&c->buf, (uint32_t)v);
}

void load_copy_text(struct load_copy *c, const char *s, size_t len)
{
    put32(&c->buf, (uint32_t)len);
    kb_buf_append(&c->buf, s, len);
}

void load_copy_jsonb(struct load_copy *c, const char *json)
{
    if (json == NULL || *json == '\0')
        json = "{}";
    size_t len = strlen(json);
    put32(&c->buf, (uint32_t)(len + 1));
    kb_buf_putc(&c->buf, 1);   /* jsonb binary format version */
    kb_buf_append(&c->buf, json, len);
}

void load_copy_oid(struct load_copy *c, uint32_t oid)
{
    put32(&c->buf, 4);
    put32(&c->buf, oid);   /* what oidrecv (regconfigrecv) reads: 4 bytes, unsigned */
}

void load_copy_uuid(struct load_copy *c, const unsigned char uuid[16])
{
    put32(&c->buf, 16);
    kb_buf_append(&c->buf, uuid, 16);
}

void load_copy_vector(struct load_copy *c, const float *v, int dim)
{
    put32(&c->buf, (uint32_t)(4 + 4 * dim));
    put16(&c->buf, (uint16_t)dim);
    put16(&c->buf, 0);
    kb_buf_reserve(&c->buf, 4 * (size_t)dim);
    unsigned char *p = (unsigned char *)c->buf.data + c->buf.len;
    for (int i = 0; i < dim; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        p[4 * i] = (unsigned char)(bits >> 24);
        p[4 * i + 1] = (unsigned char)(bits >> 16);
        p[4 * i + 2] = (unsigned char)(bits >> 8);
        p[4 * i + 3] = (unsigned char)bits;
    }
    c->buf.len += 4 * (size_t)dim;
    c->buf.data[c->buf.len] = '\0';
}

static enum kb_code copy_send(struct load_copy *c, struct kb_err *err)
{
    if (c->buf.len == 0)
        return KB_OK;
    if (PQputCopyData(c->pg, c->buf.data, (int)c->buf.len) != 1)
        return KB_FAIL(err, KB_E_DB, NULL, "sending COPY data failed: %s",
                       PQerrorMessage(c->pg));
    kb_buf_reset(&c->buf);
    return KB_OK;
}

enum kb_code load_copy_maybe_flush(struct load_copy *c, struct kb_err *err)
{
    if (c->buf.len < COPY_SEND_AT)
        return KB_OK;
    if (kb_fault("load.copy"))
        return KB_FAIL(err, KB_E_DB, NULL, "fault injected at load.copy");
    return copy_send(c, err);
}

enum kb_code load_copy_end(struct load_copy *c, long *n_rows, struct kb_err *err)
{
    put16(&c->buf, 0xFFFF);   /* trailer */
    enum kb_code rc = copy_send(c, err);
    if (rc != KB_OK) {
        load_copy_abort(c);
        return rc;
    }
    if (PQputCopyEnd(c->pg, NULL) != 1) {
        rc = KB_FAIL(err, KB_E_DB, NULL, "ending COPY failed: %s", PQerrorMessage(c->pg));
    }
    PGresult *res;
    while ((res = PQgetResult(c->pg)) != NULL) {
        if (rc == KB_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
            msg[strcspn(msg, "\n")] = '\0';
            rc = KB_FAIL(err, KB_E_DB, NULL, "COPY failed: %s", msg);
        } else if (rc == KB_OK && n_rows) {
            *n_rows = atol(PQcmdTuples(res));
        }
        PQclear(res);
    }
    kb_buf_release(&c->buf);
    free(c);
    return rc;
}

void load_copy_abort(struct load_copy *c)
{
    if (c == NULL)
        return;
    PQputCopyEnd(c->pg, "kbpipe abandoned the COPY");
    PGresult *res;
    while ((res = PQgetResult(c->pg)) != NULL)
        PQclear(res);
    kb_buf_release(&c->buf);
    free(c);
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int load_uuid_parse(const char *text, unsigned char out[16])
{
    int n = 0;
    for (const char *p = text; *p && n < 32; p++) {
        if (*p == '-')
            continue;
        int v = hexval(*p);
        if (v < 0)
            return 0;
        if (n % 2 == 0)
            out[n / 2] = (unsigned char)(v << 4);
        else
            out[n / 2] |= (unsigned char)v;
        n++;
    }
    return n == 32;
}
