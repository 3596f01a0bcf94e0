/*
 * err.c - the one error type (struct kb_err) and the exit-status mapping.
 *
 * Raise once, add context on the way up, print once: callees fill the
 * caller's kb_err with KB_FAIL(), callers may prefix context, and only the
 * command's top level prints it (log_err) and maps it to an exit status.
 */
#include "util.h"

#include <string.h>

/*
 * Format the message and mask any credential in it and in the origin
 * (kb_redact): every printed error, report, reject line and kbpipe_runs row
 * is made from these two fields.  Formatted at 4x the size first, so a
 * password is never cut in half before the masking sees it whole.
 */
static void set_msg(struct kb_err *err, const char *fmt, va_list ap)
{
    char full[4 * sizeof err->msg];
    vsnprintf(full, sizeof full, fmt, ap);
    kb_redact_in(full, sizeof full);
    size_t n = strnlen(full, sizeof err->msg - 1);   /* cut to fit, as vsnprintf would */
    memcpy(err->msg, full, n);
    err->msg[n] = '\0';
    kb_redact_in(err->origin, sizeof err->origin);
}

enum kb_code kb_err_set(struct kb_err *err, enum kb_code code, const char *src_file,
                        int src_line, const struct kb_origin *at, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    err->src_file = src_file;
    err->src_line = src_line;
    err->origin[0] = '\0';
    if (at != NULL)
        kb_origin_format(at, err->origin, sizeof err->origin);
    va_list ap;
    va_start(ap, fmt);
    set_msg(err, fmt, ap);
    va_end(ap);
    return code;
}

enum kb_code kb_err_set_at(struct kb_err *err, enum kb_code code, const char *src_file,
                           int src_line, const char *origin, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    err->src_file = src_file;
    err->src_line = src_line;
    snprintf(err->origin, sizeof err->origin, "%s", origin ? origin : "");
    va_list ap;
    va_start(ap, fmt);
    set_msg(err, fmt, ap);
    va_end(ap);
    return code;
}

void kb_err_prefix(struct kb_err *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    size_t at = n < 0 ? 0 : (size_t)n;
    if (at > sizeof err->msg - 3)
        at = sizeof err->msg - 3;
    /* append ": " and the old message, truncated to what fits */
    err->msg[at++] = ':';
    err->msg[at++] = ' ';
    size_t room = sizeof err->msg - at - 1, len = strnlen(old, sizeof old);
    if (len > room)
        len = room;
    memcpy(err->msg + at, old, len);
    err->msg[at + len] = '\0';
    kb_redact_in(err->msg, sizeof err->msg);
}

void kb_err_clear(struct kb_err *err)
{
    if (err != NULL)
        memset(err, 0, sizeof *err);
}

void kb_origin_format(const struct kb_origin *at, char *buf, size_t n)
{
    const char *path = at->path ? at->path : "";
    if (at->row > 0)
        snprintf(buf, n, "%s: row %ld", path, at->row);
    else if (at->line > 0 && at->col > 0)
        snprintf(buf, n, "%s:%ld:%ld", path, at->line, at->col);
    else if (at->line > 0)
        snprintf(buf, n, "%s:%ld", path, at->line);
    else
        snprintf(buf, n, "%s", path);
}

int kb_code_exit_status(enum kb_code code)
{
    switch (code) {
    case KB_OK:
        return 0;
    case KB_E_USAGE:
    case KB_E_CONFIG:
        return 2;
    case KB_PARTIAL:
        return 3;
    case KB_E_INTERRUPTED:   /* as a shell reports a process the signal ended */
        return 128 + (kb_signal_received() ? kb_signal_received() : 2);
    default:
        return 1;
    }
}

const char *kb_code_name(enum kb_code code)
{
    static const char *const names[] = {
        [KB_OK] = "ok",         [KB_E_USAGE] = "usage",   [KB_E_CONFIG] = "config",
        [KB_E_INPUT] = "input", [KB_E_DB] = "db",         [KB_E_IO] = "io",
        [KB_E_EMBED] = "embed", [KB_E_INTERNAL] = "internal", [KB_PARTIAL] = "partial",
        [KB_E_INTERRUPTED] = "interrupted",
    };
    if ((unsigned)code < sizeof names / sizeof names[0] && names[code])
        return names[code];
    return "unknown";
}
