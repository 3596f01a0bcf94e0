#!/usr/bin/env bash
# bench/lib.sh - what every benchmark starts with (not a benchmark itself:
# bench/run.sh skips it): cd to the checkout ($top), $bin (KBPIPE_BIN or
# bin/kbpipe), PGHOST/PGUSER of the local cluster (scripts/db.sh) unless
# set, no DATABASE_URL/PGDATABASE/KBPIPE_DB, and the helpers below.
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
bin=${KBPIPE_BIN:-$top/bin/kbpipe}
export PGHOST=${PGHOST:-$(scripts/db.sh dir)} PGUSER=${PGUSER:-$(scripts/db.sh user)}
export PGOPTIONS="-c client_min_messages=warning"
unset DATABASE_URL PGDATABASE KBPIPE_DB
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { printf f, (b > 0 ? a / b : 0) }'; }
rss_mib() { awk '/Maximum resident set size/ { printf "%.1f", $NF / 1024 }' "$1"; }
# cpu_of_time FILE: user + system CPU-seconds from a `/usr/bin/time -v` file
cpu_of_time() { awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$1"; }

# server_cpu: CPU-seconds the whole PostgreSQL server has used so far: the
# postmaster, its live children and the children it has reaped (cutime,
# cstime of /proc/PID/stat), so backends that ended in between count too.
# The difference of two readings is the server's CPU over that span.  A
# backend that ends between the listing and the reading is skipped (its CPU
# then counts in the postmaster's cutime/cstime at the next reading), not
# an error that would stop a benchmark under `set -e`.
server_cpu() {
  local pm
  pm=$(head -1 "$PGHOST/data/postmaster.pid")
  local tck; tck=$(getconf CLK_TCK)
  { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat"
    for c in $(cat "/proc/$pm/task/$pm/children" 2>/dev/null); do
      awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || true   # it may just have ended

      awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || true   # it may have exited
    done; } | awk -v t="$tck" '{ s += $1 } END { printf "%.2f", s / t }'
}

# huge_pages_of_server: whether the server's shared memory (its buffers) is
# in huge pages, from the postmaster's /proc/PID/smaps: "yes (N MB in 2048
# kB pages)", "no (4 kB pages; docs/operations.md, \"Server settings for
# search\")" or "unknown" when smaps cannot be read
huge_pages_of_server() {
  local pm; pm=$(head -1 "$PGHOST/data/postmaster.pid")
  [ -r "/proc/$pm/smaps" ] || { echo unknown; return 0; }
  awk '/^Size:/ { size = $2 } /^KernelPageSize:/ && $2 > 4 { kb += size; ps = $2 }
       END { if (kb > 0) printf "yes (%d MB in %d kB pages)\n", kb / 1024, ps;
             else print "no (4 kB pages; docs/operations.md, \"Server settings for search\")" }' \
    "/proc/$pm/smaps"
}

# malloc_thp_of_server: whether the server's processes run glibc's malloc
# on transparent huge pages (scripts/db.sh server_glibc_tunables), from the
# postmaster's /proc/PID/environ: "yes (GLIBC_TUNABLES ...)", "no (...)" or
# "unknown" when it cannot be read.  glibc cuts the variable at each ':' in
# place while it parses it, so the tunables after the first follow it as
# entries of their own, each starting "glibc."
malloc_thp_of_server() {
  local pm; pm=$(head -1 "$PGHOST/data/postmaster.pid")
  [ -r "/proc/$pm/environ" ] || { echo unknown; return 0; }
  tr '\0' '\n' <"/proc/$pm/environ" |
    awk '/^GLIBC_TUNABLES=/ { sub(/^GLIBC_TUNABLES=/, ""); t = $0; on = 1; next }
         on && /^glibc\./ { t = t ":" $0; next } { on = 0 }
         END { if (t ~ /glibc\.malloc\.hugetlb=1/) printf "yes (GLIBC_TUNABLES %s)\n", t;
               else print "no (docs/operations.md, \"Server settings for search\")" }'
}

# search_corpus_db DB: make DB, if it does not exist, holding the search
# benchmark's corpus at 512 tokens a chunk (project bench-512, 79 chunks:
# bench/search/corpus.yaml), for the benchmarks of a search's fixed cost;
# an existing DB is kept as it is
search_corpus_db() {
  psql -X -At -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1 &&
    return 0
  psql -X -q -d postgres -c "CREATE DATABASE $1"
  "$bin" -q --db "dbname=$1" migrate up
  BENCH_CHUNK=512 BENCH_PROJECT=bench-512 "$bin" -q --db "dbname=$1" run bench/search/corpus.yaml
}

# logged_vector DB TEXT: the query vector the latest `kbpipe search` of TEXT
# logged in DB (search_queries), or nothing when none did
logged_vector() {
  psql -X -At -v ON_ERROR_STOP=1 -d "$1" -v q="$2" <<'SQL'
SELECT query_embedding FROM search_queries
 WHERE query_text = :'q' AND query_embedding IS NOT NULL ORDER BY created_at DESC LIMIT 1;
SQL
}

# statements_of DB COMMAND...: run COMMAND with log_min_duration_statement = 0
# on DB (the cluster's log, $PGHOST/server.log); prints "N statements, S ms
# of server time" (the sum of their parse, bind and execute durations)
statements_of() {
  local d=$1; shift
  local log=$PGHOST/server.log from
  [ -r "$log" ] || { echo "(no readable server log at $log)"; return 0; }
  psql -X -q -d postgres -c "ALTER DATABASE $d SET log_min_duration_statement = 0"
  from=$(($(wc -c <"$log") + 1))
  "$@" >/dev/null
  sleep 0.2
  psql -X -q -d postgres -c "ALTER DATABASE $d RESET log_min_duration_statement"
  tail -c +"$from" "$log" | grep -E 'duration: [0-9.]+ ms +(statement|parse|bind|execute)' |
    awk '/ (statement|execute [^:]*):/ { n++ } { sub(/.*duration: /, ""); ms += $1 }
         END { printf "%d statements, %.1f ms of server time", n, ms }'
}

# fixed_cost N CMD...: CMD run N times (its output thrown away; a failure
# stops the benchmark), each run's wall time read from bash's microsecond
# clock $EPOCHREALTIME (no process is started to read it, so no fork of
# date(1) lands inside the timed span, as it would with now_ns) and its CPU
# time, user + sys, from bash's `time` (getrusage of the child, 1 ms
# resolution; /usr/bin/time's %e and %U print 10 ms).  Prints one line:
#   "wall p50 41.3 ms, p95 47.9 ms; CPU (user + sys) p50 12.0 ms, p95 14.0 ms; N runs"
# percentiles by nearest rank (the ceil(N x p / 100)-th of the sorted runs).
fixed_cost() {
  local n=$1; shift
  local f i t0 t1 TIMEFORMAT='%3U %3S'
  f=$(mktemp)
  for ((i = 0; i < n; i++)); do
    t0=${EPOCHREALTIME/,/.}
    { time "$@" >/dev/null 2>&1; } 2>"$f.cpu" ||
      { echo "fixed_cost: $* failed" >&2; rm -f "$f" "$f.cpu"; return 1; }
    t1=${EPOCHREALTIME/,/.}
    echo "$t0 $t1 $(tr ',' '.' <"$f.cpu")" >>"$f"
  done
  awk '{ w[NR] = ($2 - $1) * 1000; c[NR] = ($3 + $4) * 1000 }
       function pct(a, p,   k, n, i, j, t) {
         n = NR; for (i = 1; i <= n; i++) s[i] = a[i]
         for (i = 2; i <= n; i++) { t = s[i]; for (j = i - 1; j >= 1 && s[j] > t; j--) s[j + 1] = s[j]; s[j + 1] = t }
         k = int(n * p / 100); if (k < n * p / 100) k++; if (k < 1) k = 1
         return s[k] }
       END { printf "wall p50 %.1f ms, p95 %.1f ms; CPU (user + sys) p50 %.1f ms, p95 %.1f ms; %d runs\n",
                    pct(w, 50), pct(w, 95), pct(c, 50), pct(c, 95), NR }' "$f"
  rm -f "$f" "$f.cpu"
}
