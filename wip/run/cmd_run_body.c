/* progress: on a terminal only, never with -q, at most twice a second */
struct progress {
    int is_tty;
    double started, last;
    long docs, chunks;
};

static void progress_show(struct progress *pg, const char *source, int is_final)
{
    if (!pg->is_tty || kb_cli.is_quiet)
        return;
    double now = kb_now();
    if (!is_final && now - pg->last < 0.5)
        return;
    pg->last = now;
    double dt = now - pg->started;
    fprintf(stderr, "\r\033[Kkbpipe: %s: %ld documents, %ld chunks, %.0f chunks/s%s", source,
            pg->docs, pg->chunks, dt > 0 ? (double)pg->chunks / dt : 0.0, is_final ? "\n" : "");
    fflush(stderr);
}

static enum kb_code parse_shard(const char *s, int *k, int *n, struct kb_err *err)
{
    char *end;
    long kk = strtol(s, &end, 10);
    if (*end != '/')
        goto bad;
    long nn = strtol(end + 1, &end, 10);
    if (*end || nn < 1 || nn > 100000 || kk < 1 || kk > nn)
        goto bad;
    *k = (int)kk;
    *n = (int)nn;
    return KB_OK;
bad:
    return KB_FAIL(err, KB_E_USAGE, NULL,
                   "--shard '%.40s' is not K/N with 1 <= K <= N, e.g. --shard 2/4", s);
}
