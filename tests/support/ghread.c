/*
 * ghread.c - reading a github source for the tests (ghread.h).
 */
#include "ghread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbtest.h"

void gh_source_for(struct ingest_source *src, const struct gh_stub *s, char *base, size_t n)
{
    ingest_source_defaults(src, INGEST_GITHUB);
    src->name = "gh";
    snprintf(base, n, "http://127.0.0.1:%d", s->port);
    static const char *repos[] = { GH_STUB_REPO };
    src->u.github.repos.v = repos;
    src->u.github.repos.n = 1;
    src->u.github.base_url = base;
    src->u.github.token_env = "KBT_GH_TOKEN";
    src->u.github.retry_base_ms = 10;
    src->u.github.max_wait_s = 5;
    setenv("KBT_GH_TOKEN", GH_STUB_TOKEN, 1);
}

int gh_fx_setup(void **state)
{
    *state = kb_xcalloc(1, sizeof(struct gh_fx));
    return 0;
}

int gh_fx_teardown(void **state)
{
    gh_fx_stop(*state);
    free(*state);
    return 0;
}

void gh_fx_start(struct gh_fx *f, int n_issues)
{
    ghstub_start(&f->s, n_issues);
    f->is_started = 1;
    gh_source_for(&f->src, &f->s, f->base, sizeof f->base);
}

void gh_fx_start_discussions(struct gh_fx *f, int n_issues, int n_disc)
{
    gh_fx_start(f, n_issues);
    ghstub_discussions(&f->s, n_disc);
    snprintf(f->gql, sizeof f->gql, "http://127.0.0.1:%d/graphql", f->s.port);
    f->src.u.github.include_discussions = 1;
    f->src.u.github.graphql_url = f->gql;
}

void gh_fx_stop(struct gh_fx *f)
{
    if (f->is_started)
        ghstub_stop(&f->s);
    f->is_started = 0;
}

/* One document as the line ghread.h describes. */
static void doc_line(struct kb_buf *b, const struct kb_document *d)
{
    kb_buf_printf(b, "%s\t%s\t%s\t%s\t%s\t%s\n", d->source_id, d->title ? d->title : "",
                  d->url ? d->url : "", d->author ? d->author : "", d->metadata_json, d->text);
}

/* Read the whole source; `marks_in` ("key=value\n"...) are given to the reader first. */
void gh_read_all(const struct ingest_source *src, const char *marks_in, struct gh_read *out)
{
    memset(out, 0, sizeof *out);
    kb_buf_init(&out->docs);
    kb_buf_init(&out->marks);
    struct ingest_reader *rd;
    out->rc = ingest_open(src, ".", &rd, &out->err);
    if (out->rc != KB_OK)
        return;
    for (const char *p = marks_in; p && *p;) {
        const char *eq = strchr(p, '='), *nl = strchr(p, '\n');
        char *key = kb_xasprintf("%.*s", (int)(eq - p), p);
        char *value = kb_xasprintf("%.*s", (int)(nl - eq - 1), eq + 1);
        ingest_state_set(rd, key, value);
        free(key);
        free(value);
        p = nl + 1;
    }
    struct kb_arena *arena = kb_arena_new();
    for (;;) {
        struct kb_document *d;
        struct kb_err e = { 0 };
        enum kb_code rc = ingest_next(rd, arena, &d, &e);
        if (rc == KB_E_INPUT) {
            out->n_bad++;
            out->err = e;
            continue;
        }
        if (rc != KB_OK) {
            out->rc = rc;
            out->err = e;
            break;
        }
        if (d == NULL)
            break;
        out->n_docs++;
        doc_line(&out->docs, d);
        kb_arena_reset(arena);
    }
    const char *k, *v;
    for (int i = 0; out->rc == KB_OK && ingest_state_get(rd, i, &k, &v); i++)
        kb_buf_printf(&out->marks, "%s=%s\n", k, v);
    kb_arena_free(arena);
    ingest_close(rd);
}

void gh_read_release(struct gh_read *r)
{
    kb_buf_release(&r->docs);
    kb_buf_release(&r->marks);
}

int gh_count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}
