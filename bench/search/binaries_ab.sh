#!/usr/bin/env bash
# bench/search/binaries_ab.sh - two builds of kbpipe, A and B, each running
# the same `kbpipe search` (hybrid, k 5, bench/search's first_call.sh
# question) as a new process and so a new backend, alternated A B A B for
# BENCH_AB_RUNS (30) rounds, on BENCH_AB_DB (kbpipe_bench_search, kept by
# bench/search.sh with BENCH_SEARCH_KEEP=1; project bench-512).  For each
# build, p50 over its runs of:
#   wall         the whole process, bash's $EPOCHREALTIME around it
#   server CPU   user + sys of its backend's statements (parse, bind and
#                execute of each), from the server's log_statement_stats
#                (getrusage, microseconds; set on the database for the
#                run, so superuser: the local cluster of scripts/db.sh)
#   ranking CPU  the same for the ranking statement alone (the one naming
#                kbpipe_search_ranked('chunks' or search_hybrid_chunks)
#   backend CPU  the backend's own running total at its last statement
#                (its start included)
# and the load average.  Usage (A and B are paths to two kbpipe binaries):
#   BENCH_AB_A=/tmp/kbpipe_old BENCH_AB_B=bin/kbpipe bash bench/search/binaries_ab.sh
# Not run by `make bench`.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"   # top (cd'd into), bin, the PG* variables
db=${BENCH_AB_DB:-kbpipe_bench_search}
runs=${BENCH_AB_RUNS:-30}
A=${BENCH_AB_A:?the path of build A}; B=${BENCH_AB_B:?the path of build B}
q="how do I pin exact versions so every install is the same?"
log=$PGHOST/server.log
[ -r "$log" ] || { echo "binaries_ab.sh: no readable server log at $log" >&2; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"; psql -X -q -d postgres -c "ALTER DATABASE $db RESET log_statement_stats"' EXIT
psql -X -q -d postgres -c "ALTER DATABASE $db SET log_statement_stats = on"
for ((i = 0; i < runs; i++)); do
  for v in A B; do
    from=$(($(wc -c <"$log") + 1))
    t0=${EPOCHREALTIME/,/.}
    "${!v}" --db "dbname=$db" search --project bench-512 -k 5 "$q" >/dev/null 2>&1
    t1=${EPOCHREALTIME/,/.}
    sleep 0.05   # the backend's last log lines
    # each statement's block: "<PARSE|BIND|EXECUTE> MESSAGE STATISTICS", its
    # "N s user, N s system, N s elapsed", the running "[... total]", then
    # the STATEMENT line naming it
    tail -c +"$from" "$log" | awk -v v="$v" -v w="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) * 1000 }')" '
      /STATISTICS/ { inblk = 1 }
      inblk && /s elapsed/ { gsub(/,/, ""); cpu = ($2 + $5) * 1000 }
      inblk && /system total\]/ { gsub(/[\[\],]/, ""); tot = ($2 + $5) * 1000 }
      inblk && /STATEMENT:/ { all += cpu; if ($0 ~ /kbpipe_search_ranked\(.chunks.|search_hybrid_chunks/) rank += cpu; inblk = 0 }
      END { printf "%s %.1f %.1f %.1f %.1f\n", v, w, all, rank, tot }' >>"$tmp"
  done
done
p50() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "kbpipe search as a new process on $db ($(psql -X -At -d "$db" -c "SELECT count(*) FROM knowledge_chunks") chunks), $runs runs per build, alternated; p50 ms:"
printf '%-3s %8s %12s %12s %12s  %s\n' '' wall 'server CPU' 'ranking CPU' 'backend CPU' build
for v in A B; do
  printf '%-3s %8s %12s %12s %12s  %s\n' "$v" \
    "$(awk -v v="$v" '$1 == v { print $2 }' "$tmp" | p50)" "$(awk -v v="$v" '$1 == v { print $3 }' "$tmp" | p50)" \
    "$(awk -v v="$v" '$1 == v { print $4 }' "$tmp" | p50)" "$(awk -v v="$v" '$1 == v { print $5 }' "$tmp" | p50)" "${!v}"
done
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "reproduce: BENCH_AB_DB=$db BENCH_AB_RUNS=$runs BENCH_AB_A=$A BENCH_AB_B=$B bash bench/search/binaries_ab.sh"
