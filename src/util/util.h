/*
 * util.h - the public face of src/util: errors, logging, memory, buffers,
 * arenas, UTF-8 checks and test-only fault points.  src/util depends on
 * nothing else of kbpipe's; every other folder may include this header.
 *
 * Errors: every fallible function returns enum kb_code and fills a
 * caller-owned struct kb_err, always its last parameter.  Nothing else means
 * failure.  KB_FAIL() stamps the kbpipe source position and returns the code,
 * so `return KB_FAIL(err, KB_E_INPUT, origin, "...")` is one step.
 */
#ifndef KB_UTIL_H
#define KB_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define KB_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define KB_NORETURN __attribute__((noreturn))
#else
#define KB_PRINTF(fmt, args)
#define KB_NORETURN
#endif

/* static unless built for unit tests, which may then call the helper */
#ifdef KB_UNIT_TEST
#define KB_TESTABLE
#else
#define KB_TESTABLE static
#endif

/* ---- errors ----------------------------------------------------------- */

/*
 * The one error type.  main.c maps each code to an exit status (docs/
 * operations.md): KB_OK 0; KB_E_USAGE, KB_E_CONFIG 2; KB_PARTIAL 3 (finished,
 * but some inputs were rejected); everything else 1.
 */
enum kb_code {
    KB_OK = 0,
    KB_E_USAGE,     /* bad command line */
    KB_E_CONFIG,    /* invalid pipeline file or settings */
    KB_E_INPUT,     /* bad input data: a file, row, issue, vector */
    KB_E_DB,        /* the database refused or failed */
    KB_E_IO,        /* reading or writing a file failed */
    KB_E_EMBED,     /* an embedding provider failed */
    KB_E_INTERNAL,  /* a broken invariant: a bug in kbpipe */
    KB_PARTIAL,     /* not an error: the job finished with rejected inputs */
    KB_E_INTERRUPTED  /* SIGINT or SIGTERM stopped the job cleanly (signal.c) */
};

/* Where in the input a problem is; 0 / NULL fields are "not applicable". */
struct kb_origin {
    const char *path;
    long line, col, row;
};

struct kb_err {
    enum kb_code code;
    const char *src_file;   /* kbpipe source that raised it */
    int src_line;
    char origin[256];       /* the input: "docs/a.md:12:3", "rows.csv: row 41" */
    char msg[512];          /* what happened, then what to do next */
};

/*
 * Fill *err (when err is not NULL) and return `code`.  `at` may be NULL.
 * The message is formatted once; it must not end in a newline.
 */
enum kb_code kb_err_set(struct kb_err *err, enum kb_code code, const char *src_file,
                        int src_line, const struct kb_origin *at, const char *fmt, ...)
    KB_PRINTF(6, 7);
#define KB_FAIL(err, code, at, ...) \
    kb_err_set((err), (code), __FILE__, __LINE__, (at), __VA_ARGS__)

/* Like kb_err_set() but with an origin given as ready-made text. */
enum kb_code kb_err_set_at(struct kb_err *err, enum kb_code code, const char *src_file,
                           int src_line, const char *origin, const char *fmt, ...)
    KB_PRINTF(6, 7);
#define KB_FAIL_AT(err, code, origin_text, ...) \
    kb_err_set_at((err), (code), __FILE__, __LINE__, (origin_text), __VA_ARGS__)

/* Prepend context to err->msg: "source docs: <old message>". */
void kb_err_prefix(struct kb_err *err, const char *fmt, ...) KB_PRINTF(2, 3);

/* Reset *err to "no error". */
void kb_err_clear(struct kb_err *err);

/* Format origin text "path:line:col" / "path: row N" into buf (size n). */
void kb_origin_format(const struct kb_origin *at, char *buf, size_t n);

/* The exit status for a code (0, 1, 2 or 3), as documented in docs/operations.md. */
int kb_code_exit_status(enum kb_code code);

/* A short stable name for a code: "usage", "config", "input", "db", ... */
const char *kb_code_name(enum kb_code code);

/* ---- logging ------------------------------------------------------------ */

enum kb_log_level { KB_LOG_QUIET = 0, KB_LOG_ERROR, KB_LOG_WARN, KB_LOG_INFO, KB_LOG_DEBUG };

/* The process-wide verbosity, set once from -q / -v.  Default KB_LOG_WARN. */
void log_set_level(enum kb_log_level level);
enum kb_log_level log_get_level(void);

/* One line each on stderr, prefixed "kbpipe: "; no trailing newline in fmt. */
void log_error(const char *fmt, ...) KB_PRINTF(1, 2);
void log_warn(const char *fmt, ...) KB_PRINTF(1, 2);
void log_info(const char *fmt, ...) KB_PRINTF(1, 2);
/* What a command did, shown unless -q (log_info needs -v): "Applied: ...". */
void log_notice(const char *fmt, ...) KB_PRINTF(1, 2);
void log_debug(const char *fmt, ...) KB_PRINTF(1, 2);

/* Print an error the way main does: "kbpipe: ORIGIN: MSG" (+ " [src:line]" with -v). */
void log_err(const struct kb_err *err);

/* ---- memory ------------------------------------------------------------- */

/* Allocate or die: on failure print size and call site, then abort(). */
void *kb_xmalloc_at(size_t n, const char *file, int line);
void *kb_xcalloc_at(size_t n, size_t size, const char *file, int line);
void *kb_xrealloc_at(void *p, size_t n, const char *file, int line);
char *kb_xstrdup_at(const char *s, const char *file, int line);
char *kb_xstrndup_at(const char *s, size_t n, const char *file, int line);
#define kb_xmalloc(n)       kb_xmalloc_at((n), __FILE__, __LINE__)
#define kb_xcalloc(n, s)    kb_xcalloc_at((n), (s), __FILE__, __LINE__)
#define kb_xrealloc(p, n)   kb_xrealloc_at((p), (n), __FILE__, __LINE__)
#define kb_xstrdup(s)       kb_xstrdup_at((s), __FILE__, __LINE__)
#define kb_xstrndup(s, n)   kb_xstrndup_at((s), (n), __FILE__, __LINE__)

/* A printf into a newly allocated string the caller frees. */
char *kb_xasprintf(const char *fmt, ...) KB_PRINTF(1, 2);

/* ---- growable byte buffer ----------------------------------------------- */

/* data is always NUL-terminated (when non-NULL) so it can be used as a string. */
struct kb_buf {
    char *data;
    size_t len;
    size_t cap;
};

void kb_buf_init(struct kb_buf *b);                 /* *b is the caller's */
void kb_buf_release(struct kb_buf *b);              /* frees b->data; *b reusable */
void kb_buf_reset(struct kb_buf *b);                /* len = 0, keeps the memory */
void kb_buf_reserve(struct kb_buf *b, size_t extra);
void kb_buf_append(struct kb_buf *b, const void *p, size_t n);
void kb_buf_puts(struct kb_buf *b, const char *s);
void kb_buf_putc(struct kb_buf *b, char c);
void kb_buf_printf(struct kb_buf *b, const char *fmt, ...) KB_PRINTF(2, 3);
char *kb_buf_detach(struct kb_buf *b);              /* caller now owns the bytes */

/* Read a whole file into b (appending).  KB_E_IO with the path on failure. */
enum kb_code kb_buf_read_file(struct kb_buf *b, const char *path, struct kb_err *err);

/* ---- arena -------------------------------------------------------------- */

/*
 * A bump allocator for per-document work: everything allocated from it is
 * freed at once by kb_arena_reset().  Allocation never fails (aborts on OOM).
 */
struct kb_arena;
struct kb_arena *kb_arena_new(void);
void kb_arena_free(struct kb_arena *a);             /* NULL is a no-op */
void kb_arena_reset(struct kb_arena *a);            /* keeps the first block */
void *kb_arena_alloc(struct kb_arena *a, size_t n); /* 16-byte aligned */
void *kb_arena_calloc(struct kb_arena *a, size_t n);
char *kb_arena_strdup(struct kb_arena *a, const char *s);
char *kb_arena_strndup(struct kb_arena *a, const char *s, size_t n);
char *kb_arena_printf(struct kb_arena *a, const char *fmt, ...) KB_PRINTF(2, 3);
size_t kb_arena_used(const struct kb_arena *a);     /* bytes handed out since reset */

/* ---- UTF-8 -------------------------------------------------------------- */

/*
 * Length of the longest valid UTF-8 prefix of s[0..len): equals len when the
 * whole text is valid.  Overlongs, surrogates and > U+10FFFF are invalid.
 */
size_t kb_utf8_valid_prefix(const char *s, size_t len);

/* Byte length of the valid UTF-8 sequence starting at s (1..4), or 0 if invalid. */
int kb_utf8_seq_len(const unsigned char *s, size_t avail);

/*
 * Append s[0..len) to out as text safe for a terminal (term.c): control
 * characters other than tab and newline (C0, DEL, C1) and invalid UTF-8
 * bytes are written as visible escapes ("\x1b", "\u009b"); all else is
 * copied.  For text from loaded documents shown on a TTY.
 */
void kb_term_escape(struct kb_buf *out, const char *s, size_t len);

/* ---- signals (signal.c) -------------------------------------------------- */

/*
 * Catch SIGINT and SIGTERM: the first one sets a flag that
 * kb_signal_received() returns (the signal's number, else 0); a second
 * one ends the process at once, unless it comes within a second of the
 * first (one signal forwarded twice, as timeout(1) does, is one request).
 */
void kb_signals_catch(void);
int kb_signal_received(void);
/*
 * Sleep ms milliseconds, or less when SIGINT/SIGTERM came (before or
 * during): a wait of minutes (a rate limit, a retry's backoff) must not
 * hold up a clean stop.  Returns 1 when a signal cut it short, else 0.
 */
int kb_sleep_ms(long ms);

/* ---- fault injection (tests) -------------------------------------------- */

/*
 * True when the named fault point should fail now.  Points are armed with
 * the environment variable KBPIPE_FAULT="name" or "name:N" (fail on the Nth
 * hit); "name:N:kill" sends the process SIGKILL at the Nth hit instead.
 * Always false unless built with -DKB_FAULTS (test builds).
 */
int kb_fault(const char *point);

/* ---- the parsed global options ------------------------------------------ */

/*
 * Options that every command accepts anywhere on its command line: --db
 * CONNINFO, -q/--quiet, -v/--verbose.  main.c parses them once, removes
 * them from argv and fills kb_cli before dispatching; nothing else writes it.
 */
struct kb_cli {
    const char *db;     /* --db, or NULL: see db_conninfo_resolve() */
    int is_quiet;       /* -q */
    int verbosity;      /* number of -v */
};
extern struct kb_cli kb_cli;

/* ---- did you mean ------------------------------------------------------- */

/*
 * The name of `choices` (NULL-terminated) nearest to `word` by edit distance
 * when it is at most max_distance edits away, else NULL (the first of equals
 * wins).  Borrowed from choices.  Used for pipeline keys, commands, options.
 */
const char *kb_nearest(const char *word, const char *const *choices, int max_distance);

struct option;   /* <getopt.h> */
/*
 * Fail err with KB_E_USAGE for the unknown option `arg` of `command`:
 * "unknown option '--limt' (did you mean '--limit'?); see 'kbpipe search
 * --help'", the suggestion taken from longopts (NULL-name terminated) when
 * one is near.  getopt answers '?' also for a known option missing its
 * value or given one it does not take: `arg` naming a known option gets
 * "option '--project' needs a value" (or "takes no value") instead.
 * Returns KB_E_USAGE.
 */
enum kb_code kb_cli_unknown_option(const char *command, const char *arg,
                                   const struct option *longopts, struct kb_err *err);

/* ---- small helpers ------------------------------------------------------ */

/*
 * dl.c: a library opened at its first use.  kb_dl_open returns the handle
 * of the first of names[0..n) that dlopen finds (RTLD_NOW | RTLD_LOCAL), or
 * NULL with dlerror's reason in why.  kb_dl_sym stores dlsym(h, name) into
 * *fn (a function pointer, or a pointer to a variable, of `size` bytes);
 * 0 when the symbol is missing, why naming lib and the symbol.
 */
void *kb_dl_open(const char *const *names, size_t n, char *why, size_t why_len);
int kb_dl_sym(void *h, const char *lib, const char *name, void *fn, size_t size, char *why,
              size_t why_len);

/* Monotonic clock in seconds. */
double kb_now(void);

/* 1 when s starts with prefix. */
int kb_starts_with(const char *s, const char *prefix);

/*
 * s[0..len) (stopping at a NUL) for a one-line message: control bytes, DEL
 * and '\\' written as \xNN, other bytes as they are, into buf[n] (cut
 * short when buf is full; 4 * len + 1 bytes always suffice).  Returns buf.
 */
const char *kb_quote_line(char *buf, size_t n, const char *s, size_t len);

/*
 * A copy of `text` with every credential masked as "****": URL userinfo
 * passwords (user:PASS@ becomes user:****@; a lone token before '@' of a
 * non-postgres URL becomes ****), password= / sslpassword= / api_key= /
 * token= ... values in every libpq conninfo quoting form and as URL query
 * parameters, JSON "key": "value" pairs, Authorization / X-Api-Key headers
 * and Bearer tokens (the full list: src/util/redact.c).  Works on free
 * text, so a whole message may be passed; masking twice changes nothing.
 * The caller frees the result; never NULL.
 */
char *kb_redact(const char *text);

/* kb_redact() in place: buf (a NUL-terminated string in n bytes) is
 * replaced by its masked form, cut short if that no longer fits. */
void kb_redact_in(char *buf, size_t n);

/*
 * The installed data folder (migrations/, cl100k_base.json): BIN/../share/kbpipe
 * when that folder exists next to the running executable (/proc/self/exe),
 * else KB_DATADIR (PREFIX/share/kbpipe at build time).  Computed once;
 * borrowed, never NULL; safe from any thread.
 */
const char *kb_datadir(void);

#endif /* KB_UTIL_H */
