/*
 * dotenv.c - a .env file read as the dotenv tools read it (Node's dotenv,
 * python-dotenv, docker compose's env_file):
 *
 *   # a full-line comment; blank lines are skipped
 *   export PGHOST=db.internal              "export " is dropped
 *   DATABASE_URL=postgres://u:p@h/db # prod   unquoted: a '#' after a blank
 *                                            starts a comment; trimmed
 *   PGPASSWORD='p#ss "x"'                  single quotes: literal
 *   PGUSER="ops\tteam"                     double quotes: \n \r \t \" \\ \'
 *                                            \$ are escapes; other \x stay
 *   CERT="line 1                           quoted values may span lines
 *   line 2"
 *
 * A name is [A-Za-z_][A-Za-z0-9_.-]*; '=' may have blanks around it.  A
 * line it cannot read (no '=', no name, a quote never closed, text after
 * a closing quote, a NUL byte) becomes an item with a warning and no value;
 * reading goes on at the next line.  A warning never quotes the line: it
 * may hold a password.  $VAR is not expanded.
 */
#include "db/db_int.h"

#include <stdlib.h>
#include <string.h>

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int is_name_char(char c, int is_first)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           (!is_first && ((c >= '0' && c <= '9') || c == '.' || c == '-'));
}

struct cursor {
    const char *p, *end;
    long line;
};

/* Past the end of the current line (its '\n' included). */
static void skip_line(struct cursor *c)
{
    const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    c->p = nl ? nl + 1 : c->end;
    if (nl)
        c->line++;
}

/* The rest of the line holds only blanks, a '\r' and maybe a "# comment". */
static int rest_is_empty(struct cursor *c)
{
    while (c->p < c->end && (is_blank(*c->p) || *c->p == '\r'))
        c->p++;
    return c->p == c->end || *c->p == '\n' || *c->p == '#';
}

static char escape(char c)
{
    switch (c) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case '"': case '\\': case '\'': case '$': return c;
    default: return 0;
    }
}

/* A quoted value from c->p (at its quote) into v; 0 when it never closes. */
static int quoted(struct cursor *c, struct kb_buf *v)
{
    char q = *c->p++;
    for (; c->p < c->end; c->p++) {
        char ch = *c->p;
        if (ch == q) {
            c->p++;
            return 1;
        }
        if (q == '"' && ch == '\\' && c->p + 1 < c->end && escape(c->p[1])) {
            kb_buf_putc(v, escape(*++c->p));
            continue;
        }
        if (ch == '\n')
            c->line++;
        if (ch == '\r' && c->p + 1 < c->end && c->p[1] == '\n')
            continue;   /* CRLF inside quotes is one newline */
        kb_buf_putc(v, ch);
    }
    return 0;
}

/* An unquoted value: to the end of the line or a '#' after a blank, trimmed. */
static void unquoted(struct cursor *c, struct kb_buf *v)
{
    const char *s = c->p;
    while (c->p < c->end && *c->p != '\n' && !(*c->p == '#' && (c->p == s || is_blank(c->p[-1]))))
        c->p++;
    const char *e = c->p;
    while (e > s && (is_blank(e[-1]) || e[-1] == '\r'))
        e--;
    kb_buf_append(v, s, (size_t)(e - s));
}

static void add_item(struct db_dotenv *env, long line, const char *name, size_t name_len,
                     struct kb_buf *value, const char *warning)
{
    if (env->n == env->cap) {
        env->cap = env->cap ? 2 * env->cap : 16;
        env->items = kb_xrealloc(env->items, env->cap * sizeof *env->items);
    }
    struct db_dotenv_item *it = &env->items[env->n++];
    it->line = line;
    it->name = name_len ? kb_xstrndup(name, name_len) : NULL;
    it->value = warning ? NULL : kb_buf_detach(value);
    it->warning = warning;
}

/* One entry from c->p (at its first non-blank character). */
static void read_entry(struct db_dotenv *env, struct cursor *c)
{
    long line = c->line;
    const char *line_start = c->p;
    if (c->end - c->p > 6 && memcmp(c->p, "export", 6) == 0 && is_blank(c->p[6]))
        for (c->p += 6; c->p < c->end && is_blank(*c->p);)
            c->p++;
    const char *name = c->p;
    while (c->p < c->end && is_name_char(*c->p, c->p == name))
        c->p++;
    size_t name_len = (size_t)(c->p - name);
    while (c->p < c->end && is_blank(*c->p))
        c->p++;
    struct kb_buf v;
    kb_buf_init(&v);
    const char *warning = NULL;
    if (name_len == 0 || c->p == c->end || *c->p != '=') {
        warning = "cannot read this line (expected NAME=value, NAME='value' or "
                  "NAME=\"value\"); it is ignored";
        name_len = 0;
    } else {
        for (c->p++; c->p < c->end && is_blank(*c->p);)
            c->p++;
        if (c->p < c->end && (*c->p == '"' || *c->p == '\'')) {
            char q = *c->p;
            if (!quoted(c, &v))
                warning = q == '"' ? "the double quote of this value is never closed; "
                                     "close it (the line is ignored)"
                                   : "the single quote of this value is never closed; "
                                     "close it (the line is ignored)";
            else if (!rest_is_empty(c))
                warning = "text after the value's closing quote; put a comment after "
                          "' #' or quote the whole value (the line is ignored)";
        } else {
            unquoted(c, &v);
        }
    }
    if (warning == NULL && memchr(v.data ? v.data : "", '\0', v.len))
        warning = "the value holds a NUL byte; the file is damaged (the line is ignored)";
    add_item(env, line, name, name_len, &v, warning);
    kb_buf_release(&v);
    if (warning) {   /* go on at the line after the entry's first */
        c->p = line_start;
        c->line = line;
    }
    skip_line(c);
}

void db_dotenv_parse(const char *text, size_t len, struct db_dotenv *env)
{
    memset(env, 0, sizeof *env);
    struct cursor c = { text, text + len, 1 };
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        c.p += 3;
    while (c.p < c.end) {
        while (c.p < c.end && (is_blank(*c.p) || *c.p == '\r'))
            c.p++;
        if (c.p < c.end && (*c.p == '\n' || *c.p == '#'))
            skip_line(&c);
        else if (c.p < c.end)
            read_entry(env, &c);
    }
}

const char *db_dotenv_get(const struct db_dotenv *env, const char *name)
{
    for (size_t i = env->n; i-- > 0;)
        if (env->items[i].value && strcmp(env->items[i].name, name) == 0)
            return env->items[i].value;
    return NULL;
}

void db_dotenv_release(struct db_dotenv *env)
{
    for (size_t i = 0; i < env->n; i++) {
        free(env->items[i].name);
        free(env->items[i].value);
    }
    free(env->items);
    memset(env, 0, sizeof *env);
}
