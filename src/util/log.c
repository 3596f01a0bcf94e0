/*
 * log.c - human-readable diagnostics on stderr, one line each, prefixed
 * "kbpipe: ".  The level is tested before anything is formatted.  stdout is
 * reserved for results (search, plan, stats, --report -).
 */
#include "util.h"

#include <string.h>

static enum kb_log_level current_level = KB_LOG_WARN;

void log_set_level(enum kb_log_level level) { current_level = level; }
enum kb_log_level log_get_level(void) { return current_level; }

static void vlog(enum kb_log_level level, const char *tag, const char *fmt, va_list ap)
{
    if (level > current_level)
        return;
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    kb_redact_in(line, sizeof line);   /* a URL or conninfo in it shows no password */
    fprintf(stderr, "kbpipe: %s%s\n", tag, line);
}

#define DEFINE_LOG(name, level, tag)       \
    void name(const char *fmt, ...)        \
    {                                      \
        va_list ap;                        \
        va_start(ap, fmt);                 \
        vlog((level), (tag), fmt, ap);     \
        va_end(ap);                        \
    }

DEFINE_LOG(log_error, KB_LOG_ERROR, "")
DEFINE_LOG(log_warn, KB_LOG_WARN, "warning: ")
DEFINE_LOG(log_info, KB_LOG_INFO, "")
DEFINE_LOG(log_notice, KB_LOG_WARN, "")
DEFINE_LOG(log_debug, KB_LOG_DEBUG, "debug: ")

void log_err(const struct kb_err *err)
{
    if (current_level < KB_LOG_ERROR)
        return;
    /* kb_err_set masked both fields; a caller may have written them itself */
    char origin[sizeof err->origin], msg[sizeof err->msg];
    snprintf(origin, sizeof origin, "%s", err->origin);
    snprintf(msg, sizeof msg, "%s", err->msg);
    kb_redact_in(origin, sizeof origin);
    kb_redact_in(msg, sizeof msg);
    const char *sep = origin[0] ? ": " : "";
    if (current_level >= KB_LOG_DEBUG || err->code == KB_E_INTERNAL)
        fprintf(stderr, "kbpipe: %s%s%s [%s:%d]\n", origin, sep, msg,
                err->src_file ? err->src_file : "?", err->src_line);
    else
        fprintf(stderr, "kbpipe: %s%s%s\n", origin, sep, msg);
}
