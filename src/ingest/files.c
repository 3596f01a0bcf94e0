/*
 * files.c - type: files.  Walks each root depth-first in byte order of
 * names (deterministic on every machine and locale), one open folder
 * listing per level, so a tree of any size needs memory for one path.
 *
 * Per file: include/exclude globs on the path relative to the root; names
 * starting with '.' skipped; files over max_file_size, unreadable files,
 * NUL bytes and invalid UTF-8 rejected (KB_E_INPUT, the walk goes on);
 * binary files skipped with a note.  Symlinks are followed only when their
 * target stays inside the root, and a folder that leads back to one of its
 * parents is reported as a symlink loop.  Markdown front matter becomes
 * metadata (and the learnings columns with target: learnings).  HTML and
 * PDF files (by extension, or every file with `format:`) go through
 * html.c and pdf.c instead of the text path, and skip the binary sniff.
 */
#include "ingest_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct frame {
    char *rel;            /* folder relative to the root ("" for the root) */
    char **names;
    int n, i;
    dev_t dev;
    ino_t ino;
};

struct files_state {
    int root_i;
    char *root;           /* current root, joined with base_dir */
    char *root_real;      /* its realpath */
    int root_is_file;
    struct frame *stack;
    int depth, cap;
};

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void frame_pop(struct files_state *st)
{
    struct frame *f = &st->stack[--st->depth];
    for (int i = 0; i < f->n; i++)
        free(f->names[i]);
    free(f->names);
    free(f->rel);
}

/* Push a folder's sorted listing; KB_E_INPUT when it cannot be listed. */
static enum kb_code frame_push(struct files_state *st, const char *full, const char *rel,
                               const struct stat *sb, struct kb_err *err)
{
    DIR *d = opendir(full);
    if (d == NULL) {
        struct kb_origin at = { .path = full };
        return KB_FAIL(err, KB_E_INPUT, &at, "cannot list the folder: %s; fix its permissions "
                       "or exclude it", strerror(errno));
    }
    if (st->depth == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 8;
        st->stack = kb_xrealloc(st->stack, sizeof *st->stack * (size_t)st->cap);
    }
    struct frame *f = &st->stack[st->depth++];
    memset(f, 0, sizeof *f);
    f->rel = kb_xstrdup(rel);
    f->dev = sb->st_dev;
    f->ino = sb->st_ino;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')   /* ".", "..", and hidden files: .git, .DS_Store */
            continue;
        if (f->n == cap) {
            cap = cap ? cap * 2 : 32;
            f->names = kb_xrealloc(f->names, sizeof *f->names * (size_t)cap);
        }
        f->names[f->n++] = kb_xstrdup(e->d_name);
    }
    closedir(d);
    if (f->n > 1)
        qsort(f->names, (size_t)f->n, sizeof *f->names, cmp_names);
    return KB_OK;
}

static int any_match(const struct ingest_strs *globs, const char *rel)
{
    for (int i = 0; i < globs->n; i++)
        if (ingest_glob_match(globs->v[i], rel))
            return 1;
    return 0;
}

static int is_selected(const struct ingest_files_opts *o, const char *rel)
{
    if (o->include.n > 0 && !any_match(&o->include, rel))
        return 0;
    return !any_match(&o->exclude, rel);
}

/* A folder is pruned when an exclude glob names it or everything under it. */
static int is_pruned(const struct ingest_files_opts *o, const char *rel)
{
    char probe[PATH_MAX + 8];
    snprintf(probe, sizeof probe, "%s/\x01", rel);   /* a name no glob spells out */
    for (int i = 0; i < o->exclude.n; i++)
        if (ingest_glob_match(o->exclude.v[i], rel) ||
            (strstr(o->exclude.v[i], "/**") && ingest_glob_match(o->exclude.v[i], probe)))
            return 1;
    return 0;
}

/* The source's format, or (format: auto) the one the file's extension names. */
static enum ingest_file_format file_format(const struct ingest_files_opts *o, const char *rel)
{
    if (o->format != INGEST_FORMAT_AUTO)
        return o->format;
    const char *dot = strrchr(rel, '.');
    if (dot == NULL || strchr(dot, '/'))
        return INGEST_FORMAT_TEXT;
    dot++;
    static const struct { const char *ext; enum ingest_file_format format; } exts[] = {
        { "md", INGEST_FORMAT_MARKDOWN },  { "markdown", INGEST_FORMAT_MARKDOWN },
        { "mdx", INGEST_FORMAT_MARKDOWN }, { "html", INGEST_FORMAT_HTML },
        { "htm", INGEST_FORMAT_HTML },     { "xhtml", INGEST_FORMAT_HTML },
        { "pdf", INGEST_FORMAT_PDF },      { "txt", INGEST_FORMAT_TEXT },
        { "text", INGEST_FORMAT_TEXT },    { "rst", INGEST_FORMAT_TEXT },
        { "adoc", INGEST_FORMAT_TEXT },    { "org", INGEST_FORMAT_TEXT },
        { "log", INGEST_FORMAT_TEXT },     { "csv", INGEST_FORMAT_TEXT },
    };
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (!strcasecmp(dot, exts[i].ext))
            return exts[i].format;
    return INGEST_FORMAT_CODE;
}

/* The file's text by its format: HTML and PDF through their readers, the
 * rest normalized as it is. */
static enum kb_code convert(struct ingest_reader *rd, enum ingest_file_format format,
                            const char *raw, size_t len, const struct kb_origin *at,
                            struct kb_arena *arena, struct ingest_converted *cv,
                            struct kb_err *err)
{
    memset(cv, 0, sizeof *cv);
    if (format == INGEST_FORMAT_HTML)
        return ingest_html_convert(rd, raw, len, at, arena, cv, err);
    if (format == INGEST_FORMAT_PDF)
        return ingest_pdf_convert(rd, raw, len, at, arena, cv, err);
    return ingest_text_normalize(raw, len, rd->src->u.files.on_invalid_utf8, at, "the file",
                                 arena, &cv->text, &cv->len, err);
}

/* The first "# heading" of Markdown text, or NULL. */
static const char *md_title(struct kb_arena *arena, const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    int in_fence = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n >= 3 && (!strncmp(p, "```", 3) || !strncmp(p, "~~~", 3)))
            in_fence = !in_fence;
        else if (!in_fence && n > 2 && p[0] == '#' && p[1] == ' ')
            return kb_arena_strndup(arena, p + 2, n - 2);
        p += n + 1;
    }
    return NULL;
}

static const char *json_str(json_t *obj, const char *key)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A front matter scalar as text (strings as they are, numbers printed). */
static const char *json_text(struct kb_arena *arena, json_t *obj, const char *key)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_number(v))
        return kb_arena_printf(arena, "%.17g", json_number_value(v));
    return NULL;
}

static enum kb_code make_document(struct ingest_reader *rd, struct kb_arena *arena,
                                  const char *full, const char *rel, const char *raw,
                                  size_t len, struct kb_document **out, struct kb_err *err)
{
    const struct ingest_files_opts *o = &rd->src->u.files;
    struct kb_origin at = { .path = kb_arena_strdup(arena, full) };
    enum ingest_file_format format = file_format(o, rel);
    struct ingest_converted cv;
    enum kb_code rc = convert(rd, format, raw, len, &at, arena, &cv, err);
    if (rc != KB_OK) {
        ingest_bad_set(rd, &at, 0, raw, len);
        return rc;
    }
    char *text = cv.text;
    size_t tlen = cv.len;
    json_t *fm = NULL;
    size_t body = 0;
    if (o->front_matter && format == INGEST_FORMAT_MARKDOWN) {
        rc = ingest_front_matter(text, tlen, at.path, &fm, &body, err);
        if (rc != KB_OK) {
            ingest_bad_set(rd, &at, 0, raw, len);
            return rc;
        }
    }
    struct kb_document *d = ingest_doc_new(rd, arena, "file");
    d->source_id = kb_arena_strdup(arena, rel);
    d->file_path = at.path;
    d->text = text + body;
    d->len = tlen - body;
    d->origin = at;
    d->page_starts = cv.page_starts;
    d->n_pages = cv.n_pages;
    d->author = json_str(fm, "author") ? kb_arena_strdup(arena, json_str(fm, "author")) : NULL;
    /* HTML text is Markdown-shaped: without a <title>, its first <h1> */
    const char *title = json_str(fm, "title") ? json_str(fm, "title") : cv.title;
    d->title = title ? kb_arena_strdup(arena, title)
               : format == INGEST_FORMAT_MARKDOWN || format == INGEST_FORMAT_HTML
                   ? md_title(arena, d->text, d->len) : NULL;
    if (d->title == NULL) {
        const char *base = strrchr(rel, '/');
        d->title = kb_arena_strdup(arena, base ? base + 1 : rel);
    }
    if (d->target == KB_TARGET_LEARNINGS) {
        struct kb_origin fm_at = { .path = at.path, .line = 1, .col = 1 };
        rc = ingest_learning_fields(d, arena, json_text(arena, fm, "learning_type"),
                                    json_text(arena, fm, "category"),
                                    json_text(arena, fm, "impact_level"),
                                    json_text(arena, fm, "confidence_score"), &fm_at, err);
        if (rc != KB_OK) {
            json_decref(fm);
            json_decref(cv.meta);
            ingest_bad_set(rd, &at, 0, raw, len);
            return rc;
        }
        json_t *tags = fm ? json_object_get(fm, "tags") : NULL;
        if (json_is_string(tags)) {
            ingest_tags_split(d, arena, json_string_value(tags), ',');
        } else if (json_is_array(tags)) {
            d->tags = kb_arena_alloc(arena, sizeof *d->tags * (json_array_size(tags) + 1));
            size_t i;
            json_t *t;
            json_array_foreach(tags, i, t) {
                if (json_is_string(t) && json_string_length(t) > 0)
                    d->tags[d->n_tags++] = kb_arena_strdup(arena, json_string_value(t));
            }
        }
    }
    json_t *meta = json_object();
    json_object_set_new(meta, "path", json_string(rel));
    json_object_set_new(meta, "format", json_string(ingest_format_name(format)));
    if (cv.meta) {
        json_object_update(meta, cv.meta);
        json_decref(cv.meta);
    }
    if (fm)
        json_object_set_new(meta, "front_matter", fm);
    d->metadata_json = ingest_json_text(arena, meta);
    json_decref(meta);
    *out = d;
    return KB_OK;
}

/* Read one regular file into a document, or reject / skip it. */
static enum kb_code read_file(struct ingest_reader *rd, struct kb_arena *arena, const char *full,
                              const char *rel, struct kb_document **out, struct kb_err *err)
{
    const struct ingest_files_opts *o = &rd->src->u.files;
    struct kb_origin at = { .path = full };
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        ingest_bad_set(rd, &at, 0, NULL, 0);
        return KB_FAIL(err, KB_E_INPUT, &at, "cannot read the file: %s; fix its permissions "
                       "or exclude it", strerror(e));
    }
    if (o->max_file_size > 0 && sb.st_size > o->max_file_size) {
        close(fd);
        ingest_bad_set(rd, &at, 0, NULL, 0);
        return KB_FAIL(err, KB_E_INPUT, &at, "the file is %lld bytes, over max_file_size "
                       "(%ld); raise max_file_size or exclude the file",
                       (long long)sb.st_size, o->max_file_size);
    }
    size_t cap = (size_t)sb.st_size + 1, len = 0;
    char *raw = kb_arena_alloc(arena, cap);
    for (;;) {
        if (len == cap - 1)
            break;   /* the file grew while read: take what it had */
        ssize_t r = read(fd, raw + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            ingest_bad_set(rd, &at, 0, NULL, 0);
            return KB_FAIL(err, KB_E_INPUT, &at, "cannot read the file: %s; fix its "
                           "permissions or exclude it", strerror(e));
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    raw[len] = '\0';
    const char *why;
    enum ingest_file_format format = file_format(o, rel);
    if (format != INGEST_FORMAT_HTML && format != INGEST_FORMAT_PDF &&
        ingest_text_is_binary(raw, len, &why)) {
        ingest_note(rd, full, "binary file skipped (%s); exclude it to silence this note", why);
        return KB_OK;
    }
    return make_document(rd, arena, full, rel, raw, len, out, err);
}

static void release_root(struct files_state *st)
{
    while (st->depth > 0)
        frame_pop(st);
    free(st->root);
    free(st->root_real);
    st->root = st->root_real = NULL;
}

static enum kb_code open_root(struct ingest_reader *rd, struct files_state *st, struct kb_err *err)
{
    const struct ingest_files_opts *o = &rd->src->u.files;
    const char *given = o->roots.v[st->root_i];
    struct kb_origin at = { .path = given };
    if (o->roots.at)
        at = o->roots.at[st->root_i];
    st->root = ingest_path_join(rd->base_dir, given);
    struct stat sb;
    char *real = realpath(st->root, NULL);
    if (real == NULL || stat(real, &sb) != 0) {
        int e = errno;
        free(real);
        return KB_FAIL(err, KB_E_INPUT, &at, "root '%.80s' cannot be read: %s; fix the path "
                       "(relative paths start at %s)", st->root, strerror(e),
                       strcmp(rd->base_dir, ".") ? rd->base_dir : "the working directory");
    }
    st->root_real = real;
    st->root_is_file = S_ISREG(sb.st_mode);
    if (!st->root_is_file) {
        enum kb_code rc = frame_push(st, st->root, "", &sb, err);
        if (rc != KB_OK)
            return rc;
    }
    return KB_OK;
}

static enum kb_code files_next(struct ingest_reader *rd, struct kb_arena *arena,
                               struct kb_document **out, struct kb_err *err)
{
    struct files_state *st = rd->state;
    const struct ingest_files_opts *o = &rd->src->u.files;
    for (;;) {
        if (st->root == NULL) {
            if (st->root_i >= o->roots.n)
                return KB_OK;
            enum kb_code rc = open_root(rd, st, err);
            if (rc != KB_OK) {
                release_root(st);
                st->root_i++;
                ingest_bad_set(rd, &(struct kb_origin){ .path = o->roots.v[st->root_i - 1] },
                               0, NULL, 0);
                return rc;
            }
            if (st->root_is_file) {
                const char *base = strrchr(st->root, '/');
                base = base ? base + 1 : st->root;
                char *full = kb_arena_strdup(arena, st->root);
                char *rel = kb_arena_strdup(arena, base);   /* base points into st->root */
                release_root(st);
                st->root_i++;
                struct ingest_file_stat fst;
                if (rd->stat_fn && ingest_file_stat(full, &fst) &&
                    rd->stat_fn(rd->stat_arg, full, rel, &fst))
                    continue;   /* unchanged: the next root */
                return read_file(rd, arena, full, rel, out, err);
            }
        }
        if (st->depth == 0) {
            release_root(st);
            st->root_i++;
            continue;
        }
        struct frame *f = &st->stack[st->depth - 1];
        if (f->i >= f->n) {
            frame_pop(st);
            continue;
        }
        const char *name = f->names[f->i++];
        char *rel = f->rel[0] ? kb_arena_printf(arena, "%s/%s", f->rel, name)
                              : kb_arena_strdup(arena, name);
        char *full = kb_arena_printf(arena, "%s/%s", st->root, rel);
        struct kb_origin at = { .path = full };
        struct stat lsb, sb;
        if (lstat(full, &lsb) != 0)
            continue;   /* removed while walking */
        if (S_ISLNK(lsb.st_mode)) {
            if (stat(full, &sb) != 0) {
                if (errno == ELOOP) {
                    ingest_bad_set(rd, &at, 0, NULL, 0);
                    return KB_FAIL(err, KB_E_INPUT, &at, "symlink loop (the link resolves "
                                   "to itself); remove the link or exclude it");
                }
                ingest_note(rd, full, "dangling symlink skipped (%s)", strerror(errno));
                continue;
            }
            char *real = realpath(full, NULL);
            size_t rn = strlen(st->root_real);
            int inside = real && strncmp(real, st->root_real, rn) == 0 &&
                         (real[rn] == '/' || real[rn] == '\0' || rn == 1);
            free(real);
            if (!inside) {
                ingest_note(rd, full, "symlink to outside the root skipped; kbpipe never "
                            "follows links out of a root (add the target as a root instead)");
                continue;
            }
        } else {
            sb = lsb;
        }
        if (S_ISDIR(sb.st_mode)) {
            if (is_pruned(o, rel))
                continue;
            for (int i = 0; i < st->depth; i++) {
                if (st->stack[i].dev == sb.st_dev && st->stack[i].ino == sb.st_ino) {
                    ingest_bad_set(rd, &at, 0, NULL, 0);
                    return KB_FAIL(err, KB_E_INPUT, &at, "symlink loop: the folder leads "
                                   "back to '%.80s'; remove the link or exclude it",
                                   st->stack[i].rel[0] ? st->stack[i].rel : st->root);
                }
            }
            enum kb_code rc = frame_push(st, full, rel, &sb, err);
            if (rc != KB_OK) {
                ingest_bad_set(rd, &at, 0, NULL, 0);
                return rc;
            }
            continue;
        }
        if (!S_ISREG(sb.st_mode) || !is_selected(o, rel))
            continue;
        if (rd->stat_fn) {   /* the stat pre-check: an unchanged file is never opened */
            struct ingest_file_stat fst;
            ingest_stat_of(&sb, &fst);
            if (rd->stat_fn(rd->stat_arg, full, rel, &fst))
                continue;
        }
        enum kb_code rc = read_file(rd, arena, full, rel, out, err);
        if (rc != KB_OK || *out != NULL)
            return rc;
    }
}

static void files_close(struct ingest_reader *rd)
{
    struct files_state *st = rd->state;
    if (st == NULL)
        return;
    release_root(st);
    free(st->stack);
    free(st);
}

enum kb_code ingest_files_open(struct ingest_reader *rd, struct kb_err *err)
{
    (void)err;
    rd->state = kb_xcalloc(1, sizeof(struct files_state));
    rd->next = files_next;
    rd->close = files_close;
    return KB_OK;
}

/* Count selected files under full/rel (recursion depth is the tree's depth). */
static void count_tree(const struct ingest_files_opts *o, const char *full, const char *rel,
                       long *hits, long *n_files, int depth)
{
    DIR *d = opendir(full);
    if (d == NULL || depth > 64) {
        if (d)
            closedir(d);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *f = kb_xasprintf("%s/%s", full, e->d_name);
        char *r = rel[0] ? kb_xasprintf("%s/%s", rel, e->d_name) : kb_xstrdup(e->d_name);
        struct stat sb;
        if (lstat(f, &sb) == 0) {
            if (S_ISDIR(sb.st_mode)) {
                if (!is_pruned(o, r))
                    count_tree(o, f, r, hits, n_files, depth + 1);
            } else if ((S_ISREG(sb.st_mode) || S_ISLNK(sb.st_mode)) && is_selected(o, r)) {
                (*n_files)++;
                for (int i = 0; i < o->include.n; i++)
                    hits[i] += ingest_glob_match(o->include.v[i], r);
            }
        }
        free(f);
        free(r);
    }
    closedir(d);
}

enum kb_code ingest_files_count(const struct ingest_source *src, const char *base_dir,
                                long *hits, long *n_files, struct kb_err *err)
{
    const struct ingest_files_opts *o = &src->u.files;
    *n_files = 0;
    for (int i = 0; i < o->include.n; i++)
        hits[i] = 0;
    for (int i = 0; i < o->roots.n; i++) {
        char *root = ingest_path_join(base_dir, o->roots.v[i]);
        struct stat sb;
        if (stat(root, &sb) != 0) {
            struct kb_origin at = { .path = o->roots.v[i] };
            if (o->roots.at)
                at = o->roots.at[i];
            int e = errno;
            enum kb_code rc = KB_FAIL(err, KB_E_INPUT, &at, "root '%.80s' cannot be read: %s",
                                      root, strerror(e));
            free(root);
            return rc;
        }
        if (S_ISREG(sb.st_mode)) {
            const char *base = strrchr(root, '/');
            base = base ? base + 1 : root;
            (*n_files)++;
            for (int k = 0; k < o->include.n; k++)
                hits[k] += ingest_glob_match(o->include.v[k], base);
        } else {
            count_tree(o, root, "", hits, n_files, 0);
        }
        free(root);
    }
    return KB_OK;
}
