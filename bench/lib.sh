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
