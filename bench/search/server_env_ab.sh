#!/usr/bin/env bash
# bench/search/server_env_ab.sh - what the server's malloc settings
# (scripts/db.sh server_glibc_tunables: glibc's malloc on transparent huge
# pages) do to `kbpipe search` on a tiny database, every search being a new
# backend.  Restarts the cluster of scripts/db.sh (so run it on a cluster
# nothing else is using) alternately without the tunables ("plain": glibc's
# defaults, GLIBC_TUNABLES unset) and with them ("thp"), BENCH_ENV_ROUNDS
# (3) times: a restart moves the heap to a new random address (ASLR), and
# how the 2 MB pages line up with it changes from start to start.  After
# each restart one untimed search, then BENCH_ENV_RUNS (30) timed ones
# (bench/lib.sh fixed_cost: wall p50/p95 by bash's microsecond clock around
# the process, its own CPU beside) and the page faults of a search's
# backend: the growth of the postmaster's cminflt (field 11 of
# /proc/PID/stat: the minor faults of the children it has reaped, so also
# of any autovacuum worker that ended meanwhile) over the timed runs,
# divided by the runs.  The cluster is left started as
# scripts/db.sh starts it.  Its database, kbpipe_bench_env (the search
# benchmark's corpus at 512 tokens, project bench-512, 79 chunks), is made
# on the first run and kept.  Not run by `make bench`:
#   KBPIPE_BIN=bin/kbpipe bash bench/search/server_env_ab.sh
set -euo pipefail
. "$(dirname "$0")/../lib.sh"   # top (cd'd into), bin, the PG* variables, fixed_cost
rounds=${BENCH_ENV_ROUNDS:-3}
runs=${BENCH_ENV_RUNS:-30}
db=kbpipe_bench_env
PGBIN=/usr/lib/postgresql/15/bin
data=$PGHOST/data
owner=$(stat -c %U "$data")
search_corpus_db "$db"
restart() {   # restart the server with GLIBC_TUNABLES=$1 (empty: unset)
  local -a run=()
  [ "$(id -u)" = 0 ] && run=(runuser -u "$owner" --)
  if [ -n "$1" ]; then
    "${run[@]}" env GLIBC_TUNABLES="$1" "$PGBIN/pg_ctl" -D "$data" -m fast -w restart -l "$PGHOST/server.log" >/dev/null
  else
    "${run[@]}" env -u GLIBC_TUNABLES "$PGBIN/pg_ctl" -D "$data" -m fast -w restart -l "$PGHOST/server.log" >/dev/null
  fi
}
q="how do I pin exact versions so every install is the same?"
one() { "$bin" --db "dbname=$db" search --project bench-512 -k 5 "$q"; }
thp=$(scripts/db.sh environment | sed 's/^GLIBC_TUNABLES=//')
echo "kbpipe search on $db (79 chunks), a new process and backend each run; server restarted before each row"
for ((r = 1; r <= rounds; r++)); do
  for setting in plain thp; do
    restart "$([ "$setting" = thp ] && echo "$thp")"
    one >/dev/null
    pm=$(head -1 "$data/postmaster.pid")
    f0=$(awk '{ print $11 }' "/proc/$pm/stat")
    t=$(fixed_cost "$runs" one)
    sleep 0.2   # the last backend exits and is reaped
    f1=$(awk '{ print $11 }' "/proc/$pm/stat")
    printf '    round %d %-5s %s; backend faults %d a search\n' "$r" "$setting" "$t" \
      $(( (f1 - f0) / runs ))
    [ "$r$setting" = 1plain ] &&   # the kernel's reservation holds for every row
      echo "      (huge pages for the server's buffers: $(huge_pages_of_server))"
  done
done
restart "$thp"
echo "    plain: GLIBC_TUNABLES unset; thp: GLIBC_TUNABLES=$thp (scripts/db.sh environment)"
echo "    definitions: wall = \$EPOCHREALTIME around the process; CPU = its getrusage user + sys"
echo "(load average during the run: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "reproduce: BENCH_ENV_ROUNDS=$rounds BENCH_ENV_RUNS=$runs KBPIPE_BIN=$bin bash bench/search/server_env_ab.sh"
