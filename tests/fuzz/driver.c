/*
 * driver.c - a main() for the fuzz harnesses when there is no libFuzzer
 * (gcc builds): replay seed files, then run deterministic mutations of
 * them, so `make check` (and SAN=1) exercises every parser on inputs
 * nobody wrote by hand.
 *
 *   fuzz_NAME [-n TOTAL] [-s SEED] [-o DIR] PATH...    seeds, then TOTAL mutations
 *   fuzz_NAME -r FILE...                                 each file once (reproduce)
 *
 * PATHs are files or folders (read recursively, in byte order of names,
 * so the run is the same on every machine).  Mutated inputs go round-robin
 * over the seeds; each is one seed with 1 to 4 edits stacked: bit flip,
 * byte set to an interesting value, insertion of an interesting token,
 * deletion, duplication of a range, splice with another seed, truncation.
 * The PRNG is splitmix64 from a fixed seed (-s), so the same arguments
 * give the same inputs.  Before each input runs, its bytes are ready to
 * be written to DIR/crash-NAME-N when the process dies (abort, a signal,
 * or a sanitizer report), and the line to reproduce it is printed.
 *
 * Output, one line per harness, the last one what tests/run.sh counts:
 *   fuzz_csv: 19 seeds, 3000 mutated, 3019 inputs run, 0.8 s: ok
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define KBFUZZ_HAS_SANITIZER 1
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KBFUZZ_MAX_INPUT (1u << 20)   /* a mutated input never grows past 1 MB */

struct input {
    char *path;
    uint8_t *data;
    size_t len;
};

static struct input *seeds;
static size_t n_seeds, cap_seeds, max_seed_len;
static const char *prog = "fuzz", *prog_path = "fuzz";

/* ---- the input being run, kept for a crash report ----------------------- */

static char crash_path[4096];
static const uint8_t *cur_data;
static size_t cur_len;
static int cur_is_mutated;

static void save_current(void)
{
    if (!cur_is_mutated || crash_path[0] == '\0')
        return;
    /* async-signal-safe only: open, write, close */
    int fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return;
    size_t off = 0;
    while (off < cur_len) {
        ssize_t w = write(fd, cur_data + off, cur_len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fd);
    static const char a[] = "\nfuzz driver: the input is saved; reproduce with: ";
    (void)!write(2, a, sizeof a - 1);
    (void)!write(2, prog_path, strlen(prog_path));
    (void)!write(2, " -r ", 4);
    (void)!write(2, crash_path, strlen(crash_path));
    (void)!write(2, "\n", 1);
}

static void on_signal(int sig)
{
    save_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ---- seeds ---------------------------------------------------------------- */

static void die(const char *what, const char *path)
{
    fprintf(stderr, "%s: %s %s: %s\n", prog, what, path, strerror(errno));
    exit(2);
}

static void add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open", path);
    struct input in = { .path = strdup(path) };
    size_t cap = 0;
    for (;;) {
        if (in.len == cap) {
            cap = cap ? cap * 2 : 4096;
            in.data = realloc(in.data, cap);
            if (!in.data)
                die("out of memory reading", path);
        }
        size_t r = fread(in.data + in.len, 1, cap - in.len, f);
        if (r == 0)
            break;
        in.len += r;
    }
    if (ferror(f))
        die("cannot read", path);
    fclose(f);
    if (n_seeds == cap_seeds) {
        cap_seeds = cap_seeds ? cap_seeds * 2 : 64;
        seeds = realloc(seeds, cap_seeds * sizeof *seeds);
        if (!seeds)
            die("out of memory reading", path);
    }
    if (in.len > max_seed_len)
        max_seed_len = in.len;
    seeds[n_seeds++] = in;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_path(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT)
            return;   /* an optional folder (no regressions yet) */
        die("cannot read", path);
    }
    if (!S_ISDIR(sb.st_mode)) {
        add_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d)
        die("cannot list", path);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            names = realloc(names, cap * sizeof *names);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char *full = malloc(strlen(path) + strlen(names[i]) + 2);
        sprintf(full, "%s/%s", path, names[i]);
        add_path(full);
        free(full);
        free(names[i]);
    }
    free(names);
}

/* ---- mutations ------------------------------------------------------------ */

static uint64_t rng;

static uint64_t next_rand(void)   /* splitmix64 */
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t below(size_t n)
{
    return n ? (size_t)(next_rand() % n) : 0;
}

/* Bytes and tokens the parsers give meaning to. */
static const uint8_t interesting_bytes[] = { 0x00, 0xff, 0x80, 0xc0, 0xe0, 0xf0, 0xf8, 0xed,
                                             0xef, 0xbf, '"', '\'', '\n', '\r', '-', ':',
                                             '{', '}', '[', ']', ',', '\\', '#', ' ', '\t',
                                             '$', '*', '&', '!', '|', '>', '`', 0x7f, 0x1b };
static const char *const tokens[] = {
    "\r\n", "\n\n", "---\n", "...\n", ": ", "- ", "\"\"", "\\u0000", "\\ud800", "\xef\xbb\xbf",
    "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\x80", "\xe2\x80\xa8", "\xc2\xa0", "${", "${X:-",
    "}", "$$", "```\n", "# ", "## ", "\n\f\n", "null", "true", "1e400", "-1", "NaN",
    "9223372036854775808", "0.1,", "[]", "{}", "[[[[", "{\"a\":", "&a ", "*a", "!!str ",
    "? ", "|\n", ">-\n", "'s", " \xe3\x80\x80", "\t\t",
};

static uint8_t *mutate(const struct input *in, size_t *out_len)
{
    /* room for four edits, each adding at most a seed or 64 bytes */
    size_t limit = in->len + 4 * (max_seed_len + 64);
    if (limit > KBFUZZ_MAX_INPUT)
        limit = KBFUZZ_MAX_INPUT;
    uint8_t *b = malloc(limit);
    size_t n = in->len < limit ? in->len : limit;
    memcpy(b, in->data, n);
    int n_edits = 1 + (int)below(4);
    for (int k = 0; k < n_edits; k++) {
        size_t pos = below(n + 1);
        switch (below(8)) {
        case 0:   /* flip one bit */
            if (n)
                b[below(n)] ^= (uint8_t)(1u << below(8));
            break;
        case 1:   /* set a byte to an interesting value */
            if (n)
                b[below(n)] = interesting_bytes[below(sizeof interesting_bytes)];
            break;
        case 2: { /* insert an interesting byte or token */
            const char *t = tokens[below(sizeof tokens / sizeof tokens[0])];
            uint8_t one = interesting_bytes[below(sizeof interesting_bytes)];
            const uint8_t *src = below(2) ? (const uint8_t *)t : &one;
            size_t tl = src == &one ? 1 : strlen(t);
            if (n + tl > limit)
                break;
            memmove(b + pos + tl, b + pos, n - pos);
            memcpy(b + pos, src, tl);
            n += tl;
            break;
        }
        case 3: { /* delete a range */
            size_t dl = 1 + below(below(2) ? 8 : 64);
            if (pos >= n)
                break;
            if (dl > n - pos)
                dl = n - pos;
            memmove(b + pos, b + pos + dl, n - pos - dl);
            n -= dl;
            break;
        }
        case 4: { /* duplicate a range at another place */
            if (!n)
                break;
            size_t from = below(n), dl = 1 + below(64);
            if (dl > n - from)
                dl = n - from;
            if (n + dl > limit)
                break;
            uint8_t tmp[64];
            memcpy(tmp, b + from, dl);
            memmove(b + pos + dl, b + pos, n - pos);
            memcpy(b + pos, tmp, dl);
            n += dl;
            break;
        }
        case 5: { /* splice: this input up to pos, then another seed from a point */
            const struct input *o = &seeds[below(n_seeds)];
            size_t from = below(o->len + 1), tl = o->len - from;
            if (pos + tl > limit)
                tl = limit - pos;
            memcpy(b + pos, o->data + from, tl);
            n = pos + tl;
            break;
        }
        case 6:   /* truncate */
            n = pos;
            break;
        default:  /* a random byte */
            if (n)
                b[below(n)] = (uint8_t)next_rand();
            break;
        }
    }
    *out_len = n;
    return b;
}

/* ---- running -------------------------------------------------------------- */

static void run(const uint8_t *data, size_t len, int is_mutated)
{
    /* an exact-size copy, so reading past the end is a sanitizer report */
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, data, len);
    cur_data = copy;
    cur_len = len;
    cur_is_mutated = is_mutated;
    LLVMFuzzerTestOneInput(copy, len);
    cur_is_mutated = 0;
    free(copy);
}

static void usage(void)
{
    fprintf(stderr, "usage: %s [-n TOTAL] [-s SEED] [-o DIR] PATH...\n"
                    "       %s -r FILE...   (run each file once: reproduce a crash)\n",
            prog, prog);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *slash = strrchr(argv[0], '/');
    prog = slash ? slash + 1 : argv[0];
    prog_path = argv[0];
    long total = 2000;
    uint64_t seed = 0x6b62706970652121ULL;   /* "kbpipe!!" */
    const char *out_dir = ".";
    int is_replay = 0;
    int opt;
    while ((opt = getopt(argc, argv, "n:s:o:r")) != -1) {
        switch (opt) {
        case 'n': total = strtol(optarg, NULL, 10); break;
        case 's': seed = strtoull(optarg, NULL, 0); break;
        case 'o': out_dir = optarg; break;
        case 'r': is_replay = 1; break;
        default: usage();
        }
    }
    if (optind >= argc || total < 0)
        usage();
    for (int i = optind; i < argc; i++)
        add_path(argv[i]);
    if (n_seeds == 0) {
        fprintf(stderr, "%s: no input files in the paths given\n", prog);
        return 2;
    }
    rng = seed;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < n_seeds; i++)
        run(seeds[i].data, seeds[i].len, 0);
    long n_run = (long)n_seeds;
    if (!is_replay) {
        signal(SIGABRT, on_signal);
        signal(SIGSEGV, on_signal);
        signal(SIGBUS, on_signal);
        signal(SIGFPE, on_signal);
#ifdef KBFUZZ_HAS_SANITIZER
        __sanitizer_set_death_callback(save_current);
#endif
        for (long k = 0; k < total; k++) {
            const struct input *in = &seeds[(size_t)k % n_seeds];
            size_t len;
            uint8_t *m = mutate(in, &len);
            snprintf(crash_path, sizeof crash_path, "%s/crash-%s-%ld", out_dir, prog, k);
            run(m, len, 1);
            free(m);
            n_run++;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%s: %zu seed%s, %ld mutated, %ld inputs run, %.1f s: ok\n", prog, n_seeds,
           n_seeds == 1 ? "" : "s", is_replay ? 0 : total, n_run, secs);
    for (size_t i = 0; i < n_seeds; i++) {
        free(seeds[i].path);
        free(seeds[i].data);
    }
    free(seeds);
    return 0;
}
