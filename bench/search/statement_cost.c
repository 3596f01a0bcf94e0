/*
 * bench/search/statement_cost.c - what each statement of a search costs a
 * new backend (docs/search.md, "A search's fixed cost: page faults").  For
 * each of RUNS new connections: the connection's wall time, then each
 * statement of FILE (statements separated by lines "--;", sent with
 * PQexecParams, no parameters) in order, each with its round trip's wall
 * time, the backend's CPU (/proc/PID/schedstat, nanoseconds) and its minor
 * page faults (/proc/PID/stat, field 10) over the statement.  Reading
 * another process's /proc needs the same user or root.  Prints per step the
 * p50 of each over the runs.  Usage (built and run by
 * bench/search/statement_cost.sh):  statement_cost CONNINFO RUNS FILE
 */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_STEPS 16

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* The minor faults of process pid so far (field 10 of /proc/PID/stat), -1 if unknown. */
static double faults_of(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');   /* the command name may hold spaces */
    long v = -1;
    /* after ") " come fields 3, 4, ...: field 10 is the 8th */
    if (p && sscanf(p + 2, "%*s %*s %*s %*s %*s %*s %*s %ld", &v) != 1)
        v = -1;
    return (double)v;
}

/* The CPU time of process pid so far in ms (/proc/PID/schedstat), -1 if unknown. */
static double cpu_of(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
    FILE *f = fopen(path, "r");
    double ns = -1;
    if (f == NULL)
        return -1;
    if (fscanf(f, "%lf", &ns) != 1)
        ns = -1;
    fclose(f);
    return ns < 0 ? -1 : ns / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double p50(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: statement_cost CONNINFO RUNS FILE\n");
        return 2;
    }
    int runs = atoi(argv[2]);
    FILE *f = fopen(argv[3], "r");
    static char text[1 << 20];
    if (runs < 1 || f == NULL) {
        fprintf(stderr, "statement_cost: give RUNS >= 1 and a readable FILE\n");
        return 2;
    }
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    char *stmt[MAX_STEPS];
    int n_stmt = 0;
    for (char *p = text; p && *p && n_stmt < MAX_STEPS;) {
        char *sep = strstr(p, "\n--;\n");
        if (sep)
            *sep = '\0';
        stmt[n_stmt++] = p;
        p = sep ? sep + 5 : NULL;
    }
    int steps = n_stmt + 1;   /* the connection, then each statement */
    double *wall = calloc((size_t)steps * runs, sizeof *wall);
    double *cpu = calloc((size_t)steps * runs, sizeof *cpu);
    double *flt = calloc((size_t)steps * runs, sizeof *flt);
    for (int r = 0; r < runs; r++) {
        double t0 = now_ms();
        PGconn *c = PQconnectdb(argv[1]);
        if (PQstatus(c) != CONNECTION_OK) {
            fprintf(stderr, "statement_cost: %s", PQerrorMessage(c));
            return 1;
        }
        int pid = PQbackendPID(c);
        double c0 = cpu_of(pid), f0 = faults_of(pid);
        wall[r] = now_ms() - t0;
        cpu[r] = c0;   /* the backend's start, up to now */
        flt[r] = f0;
        for (int s = 0; s < n_stmt; s++) {
            double a = now_ms();
            PGresult *res = PQexecParams(c, stmt[s], 0, NULL, NULL, NULL, NULL, 0);
            ExecStatusType st = PQresultStatus(res);
            if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
                fprintf(stderr, "statement_cost: statement %d: %s", s + 1, PQerrorMessage(c));
                return 1;
            }
            PQclear(res);
            double b = now_ms(), c1 = cpu_of(pid), f1 = faults_of(pid);
            wall[(s + 1) * runs + r] = b - a;
            cpu[(s + 1) * runs + r] = c1 - c0;
            flt[(s + 1) * runs + r] = f1 - f0;
            c0 = c1;
            f0 = f1;
        }
        PQfinish(c);
    }
    double sum_wall = 0, sum_cpu = 0, sum_flt = 0;
    for (int s = 0; s < steps; s++) {
        double w = p50(wall + s * runs, runs), u = p50(cpu + s * runs, runs);
        double g = p50(flt + s * runs, runs);
        sum_wall += w;
        sum_cpu += u;
        sum_flt += g;
        char label[32];
        snprintf(label, sizeof label, s == 0 ? "connection" : "statement %d", s);
        printf("    %-12s wall %6.2f ms  backend CPU %6.2f ms  faults %5.0f\n", label, w, u, g);
    }
    printf("    %-12s wall %6.2f ms  backend CPU %6.2f ms  faults %5.0f  (sums of the p50s, %d runs)\n",
           "all", sum_wall, sum_cpu, sum_flt, runs);
    free(wall);
    free(cpu);
    free(flt);
    return 0;
}
