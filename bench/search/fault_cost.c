/*
 * bench/search/fault_cost.c - what one page fault costs on this machine,
 * the unit of a new backend's and a new process's fixed cost
 * (docs/search.md, "A search's fixed cost: page faults").  Touches one byte
 * per 4 kB page of: a fresh anonymous mapping (each touch a fault that
 * zero-fills a page, as a backend's growing heap does), a file mapped
 * read-only (a library's code: the page is in the OS cache, and the kernel
 * maps up to 16 neighbours per fault), and the same file mapped private
 * and written (copy-on-write, as the loader's relocations and a forked
 * backend's writes are).  Prints microseconds per page, the best of 5
 * rounds.  Built and run by bench/search/fault_cost.sh.
 */
#define _DEFAULT_SOURCE   /* MAP_ANONYMOUS */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* us per page to touch n bytes of a new mapping of fd (-1: anonymous). */
static double touch(int fd, size_t n, int prot, int is_write)
{
    int flags = MAP_PRIVATE | (fd < 0 ? MAP_ANONYMOUS : 0);
    volatile char *p = mmap(NULL, n, prot, flags, fd, 0);
    if (p == MAP_FAILED)
        return -1;
    char sum = 0;
    double t0 = now_us();
    for (size_t i = 0; i < n; i += 4096) {
        if (is_write)
            p[i] = 1;
        else
            sum += p[i];
    }
    double t1 = now_us();
    munmap((void *)p, n);
    (void)sum;
    return (t1 - t0) / (double)(n / 4096);
}

int main(int argc, char **argv)
{
    const char *file = argc > 1 ? argv[1] : "/usr/lib/x86_64-linux-gnu/libcrypto.so.3";
    int fd = open(file, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "fault_cost: cannot open %s\n", file);
        return 1;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    size_t n = size > (4 << 20) ? (size_t)4 << 20 : (size_t)size & ~(size_t)4095;
    double best[3] = { 1e9, 1e9, 1e9 };
    for (int r = 0; r < 5; r++) {
        double v[3] = { touch(-1, (size_t)40 << 20, PROT_READ | PROT_WRITE, 1),
                        touch(fd, n, PROT_READ, 0),
                        touch(fd, n, PROT_READ | PROT_WRITE, 1) };
        for (int i = 0; i < 3; i++)
            if (v[i] >= 0 && v[i] < best[i])
                best[i] = v[i];
    }
    printf("page fault cost (us per 4 kB page, best of 5): anonymous, zero-filled %.2f; "
           "file, read (fault-around) %.2f; file, copy-on-write %.2f (file: %s)\n",
           best[0], best[1], best[2], file);
    close(fd);
    return 0;
}
