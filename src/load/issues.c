/*
 * issues.c - GitHub issues into the schema's own issues and comments
 * tables (a github_issues source with `upsert_issues: true`), as part of a
 * batch's transaction: one set-based upsert of the batch's issues keyed by
 * (project_id, github_url), then their comments replaced wholesale (an
 * issue reaches here only when its document changed).
 *
 * Mapping: state OPEN/open -> 'open', CLOSED/closed -> 'closed'; labels ->
 * labels text[]; a numeric REST id -> github_id (gh's node ids are not
 * numbers and go to metadata.node_id instead).
 */
#include "load/load_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static int is_number(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 18)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

static const char *state_of(const char *state)
{
    if (state && (strcasecmp(state, "closed") == 0 || strcasecmp(state, "merged") == 0))
        return "closed";
    return "open";
}

enum kb_code load_issues_upsert(struct load_session *s, const struct load_issue_ref *issues,
                                int n, struct kb_err *err)
{
    if (n == 0)
        return KB_OK;
    enum { I_NUM, I_TITLE, I_BODY, I_STATE, I_LABELS, I_AUTHOR, I_GHID, I_URL, I_CREATED,
           I_UPDATED, I_CLOSED, I_META, N_I };
    enum { C_URL, C_AUTHOR, C_BODY, C_GHID, C_META, C_CREATED, N_C };
    struct kb_buf a[N_I], c[N_C], tmp;
    for (int k = 0; k < N_I; k++) {
        kb_buf_init(&a[k]);
        load_array_open(&a[k]);
    }
    for (int k = 0; k < N_C; k++) {
        kb_buf_init(&c[k]);
        load_array_open(&c[k]);
    }
    kb_buf_init(&tmp);
    char num[32];
    for (int i = 0; i < n; i++) {
        const struct load_issue *is = issues[i].issue;
        snprintf(num, sizeof num, "%ld", is->number);
        load_array_add(&a[I_NUM], is->number > 0 ? num : NULL);
        load_array_add(&a[I_TITLE], is->title ? is->title : "(untitled)");
        load_array_add(&a[I_BODY], is->body);
        load_array_add(&a[I_STATE], state_of(is->state));
        load_array_open(&tmp);
        for (int l = 0; l < is->n_labels; l++)
            load_array_add(&tmp, is->labels[l]);
        load_array_close(&tmp);
        load_array_add(&a[I_LABELS], tmp.data);
        load_array_add(&a[I_AUTHOR], is->author);
        load_array_add(&a[I_GHID], is_number(is->github_id) ? is->github_id : NULL);
        load_array_add(&a[I_URL], is->url);
        load_array_add(&a[I_CREATED], is->created_at);
        load_array_add(&a[I_UPDATED], is->updated_at);
        load_array_add(&a[I_CLOSED], is->closed_at);
        kb_buf_reset(&tmp);
        kb_buf_puts(&tmp, "{\"repo\":\"");
        for (const char *p = is->repo ? is->repo : ""; *p; p++)
            if (*p != '"' && *p != '\\')
                kb_buf_putc(&tmp, *p);
        kb_buf_puts(&tmp, "\"");
        if (is->github_id && !is_number(is->github_id)) {
            kb_buf_puts(&tmp, ",\"node_id\":\"");
            for (const char *p = is->github_id; *p; p++)
                if (*p != '"' && *p != '\\')
                    kb_buf_putc(&tmp, *p);
            kb_buf_puts(&tmp, "\"");
        }
        kb_buf_puts(&tmp, ",\"source\":\"kbpipe\"}");
        load_array_add(&a[I_META], tmp.data);
        for (int k = 0; k < is->n_comments; k++) {
            const struct load_comment *cm = &is->comments[k];
            load_array_add(&c[C_URL], is->url);
            load_array_add(&c[C_AUTHOR], cm->author ? cm->author : "ghost");
            load_array_add(&c[C_BODY], cm->body ? cm->body : "");
            load_array_add(&c[C_GHID], is_number(cm->github_id) ? cm->github_id : NULL);
            kb_buf_reset(&tmp);
            kb_buf_printf(&tmp, "{\"position\":%d", k);
            if (cm->url) {
                kb_buf_puts(&tmp, ",\"url\":\"");
                for (const char *p = cm->url; *p; p++)
                    if (*p != '"' && *p != '\\')
                        kb_buf_putc(&tmp, *p);
                kb_buf_puts(&tmp, "\"");
            }
            kb_buf_putc(&tmp, '}');
            load_array_add(&c[C_META], tmp.data);
            load_array_add(&c[C_CREATED], cm->created_at);
        }
    }
    for (int k = 0; k < N_I; k++)
        load_array_close(&a[k]);
    for (int k = 0; k < N_C; k++)
        load_array_close(&c[k]);
    const char *p[] = { s->project_id, a[I_NUM].data, a[I_TITLE].data, a[I_BODY].data,
                        a[I_STATE].data, a[I_LABELS].data, a[I_AUTHOR].data, a[I_GHID].data,
                        a[I_URL].data, a[I_CREATED].data, a[I_UPDATED].data, a[I_CLOSED].data,
                        a[I_META].data };
    enum kb_code rc = db_exec(s->conn,
        "INSERT INTO issues (project_id, issue_number, title, description, status, labels,"
        "  assignee, github_id, github_url, created_at, updated_at, closed_at, metadata)"
        " SELECT $1, u.num, u.title, u.body, u.state, u.labels::text[], NULL, u.ghid, u.url,"
        "  coalesce(u.created, now()), coalesce(u.updated, now()), u.closed,"
        "  u.meta || jsonb_build_object('author', u.author)"
        " FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
        "  $8::bigint[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[],"
        "  $13::jsonb[]) AS u(num, title, body, state, labels, author, ghid, url, created,"
        "  updated, closed, meta)"
        " WHERE u.url IS NOT NULL"
        " ON CONFLICT (project_id, github_url) WHERE github_url IS NOT NULL DO UPDATE SET"
        "  issue_number = EXCLUDED.issue_number, title = EXCLUDED.title,"
        "  description = EXCLUDED.description, status = EXCLUDED.status,"
        "  labels = EXCLUDED.labels, github_id = coalesce(EXCLUDED.github_id, issues.github_id),"
        "  closed_at = EXCLUDED.closed_at, updated_at = EXCLUDED.updated_at,"
        "  metadata = issues.metadata || EXCLUDED.metadata",
        13, p, NULL, err);
    const char *q[] = { s->project_id, a[I_URL].data };
    if (rc == KB_OK)
        rc = db_exec(s->conn,
                     "DELETE FROM comments WHERE issue_id IN (SELECT id FROM issues"
                     " WHERE project_id = $1 AND github_url = ANY($2::text[]))",
                     2, q, NULL, err);
    const char *r[] = { s->project_id, c[C_URL].data, c[C_AUTHOR].data, c[C_BODY].data,
                        c[C_GHID].data, c[C_META].data, c[C_CREATED].data };
    if (rc == KB_OK)
        rc = db_exec(s->conn,
            "INSERT INTO comments (issue_id, author, content, github_id, metadata, created_at)"
            " SELECT i.id, u.author, u.body, u.ghid, u.meta, coalesce(u.created, now())"
            " FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::jsonb[],"
            "  $7::timestamptz[]) WITH ORDINALITY AS u(url, author, body, ghid, meta, created, ord)"
            " JOIN issues i ON i.project_id = $1 AND i.github_url = u.url ORDER BY u.ord",
            7, r, NULL, err);
    for (int k = 0; k < N_I; k++)
        kb_buf_release(&a[k]);
    for (int k = 0; k < N_C; k++)
        kb_buf_release(&c[k]);
    kb_buf_release(&tmp);
    if (rc != KB_OK)
        kb_err_prefix(err, "upserting GitHub issues");
    return rc;
}
