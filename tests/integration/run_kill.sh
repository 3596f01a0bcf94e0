#!/usr/bin/env bash
# tests/integration/run_kill.sh - `kbpipe run` killed or cut off mid-load
# (issue 7):
#   1. kill -9 at KILL_TIMES (20) random moments of a load that replaces every
#      chunk of a 300-file corpus (small batches, the HNSW index dropped and
#      rebuilt by the auto strategy), between the first and the last batch of
#      a measured clean run, and at least half of them must land mid-load
#      (sources of both versions, or the index still dropped): after each kill no source shows a mix
#      of old and new chunks (every paragraph carries its version, rev-A or
#      rev-B) and every source is exactly its old or its new self; the
#      re-run that follows ends in exactly the state of one clean run
#      ((source_id, chunk_index, content_hash) and doc hashes), with the
#      HNSW and the full-text index back (both dropped and rebuilt by the strategy);
#   2. the server stopped (pg_ctl stop -m immediate) in the middle of a run,
#      on a throwaway cluster of its own: exit 1 with a clear message, and
#      the run after a restart finishes the job.
# The random moments come from KILL_SEED (printed; set it to replay a run).
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_kill.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

G=tests/data/run/gen.yaml
files=${KILL_FILES:-300}
kills=${KILL_TIMES:-20}
seed=${KILL_SEED:-$(( $$ % 32768 ))}
RANDOM=$seed
note "KILL_SEED=$seed KILL_FILES=$files KILL_TIMES=$kills"
corpus=$tmp/corpus
# small batches (many transactions to land in); the auto index strategy
# drops the HNSW and the full-text index once 100 rows are written, so kills also land
# between the drop and the rebuild
export RUN_DOCS=$corpus RUN_BATCH_ROWS=20 RUN_REBUILD_MIN=100 RUN_PIPELINE=it-kill RUN_PROJECT=it-kill
rev() { gen "$corpus" --files "$files" --sections 4 --seed 7 --rev "$1"; }

# the reference states: one clean run of each version into an empty database
refa=$(new_db refa); refb=$(new_db refb)
rev A; kb "$refa" run "$G" -q; check_rc "clean run of version A exits 0" 0
state "$refa" it-kill >"$tmp/ref.A"
rev B; t0=$(date +%s%N); kb "$refb" run "$G" -v; check_rc "clean run of version B exits 0" 0
wall_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
state "$refb" it-kill >"$tmp/ref.B"
# the writer's overlap line (-v, docs/loading.md "Two batches, two threads"):
# one line; at least one batch per RUN_BATCH_ROWS rows; writing and idle
# are disjoint spans of the writer's life, so they add up to at most the
# run's wall time, and the run's thread waited at most that long
wl=$(grep -o "writer: [0-9]* batches, writing [0-9.]* s, idle [0-9.]* s waiting for the run's thread; the run's thread waited [0-9.]* s for the writer" "$tmp/err")
check "-v logs one writer line" test "$(printf '%s\n' "$wl" | grep -c .)" = 1
read -r wn wbusy widle wwait <<<"$(printf '%s\n' "$wl" | awk '{ print $2, $5, $8, $19 }')"
check "the writer took at least rows / batch_rows batches ($wn >= $((files * 4 / 20)))" \
  test "${wn:-0}" -ge $((files * 4 / 20))
check "writing ${wbusy}s + idle ${widle}s, and the run's thread's wait ${wwait}s, fit in the run's ${wall_ms} ms" \
  awk -v b="$wbusy" -v i="$widle" -v w="$wwait" -v t="$wall_ms" 'BEGIN { exit !(b + i <= t / 1000 + 0.01 && w <= t / 1000 + 0.01 && b > 0) }'
check "the corpus gives one chunk per section ($((files * 4)))" \
  test "$(grep -c '^C' "$tmp/ref.A")" = $((files * 4))
t0=$(date +%s%N)
kb "$refa" run "$G" -q               # A -> B: the kind of run that gets killed
t_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_rc "an incremental run from A to B exits 0" 0
state "$refa" it-kill >"$tmp/s"
check_same "and ends in the clean state of B" "$tmp/ref.B" "$tmp/s"
# when its batches were written, from the start of the process: each batch's
# transaction stamps its sources' indexed_at (same host, same clock); the
# kills land between the first batch and the last, so that they interrupt
# the load (not the start-up or the report) whatever the machine's speed
read -r first_ms last_ms < <(sql "$refa" "SELECT round(extract(epoch FROM min(indexed_at)) * 1000 - $t0 / 1000000),
                                                  round(extract(epoch FROM max(indexed_at)) * 1000 - $t0 / 1000000)
                                           FROM knowledge_sources" | tr '|' ' ')
[ "$first_ms" -ge 0 ] 2>/dev/null || first_ms=0
[ "$last_ms" -gt "$first_ms" ] 2>/dev/null || last_ms=$t_ms
note "a run replacing every chunk takes ${t_ms} ms, its batches written from ${first_ms} to ${last_ms} ms; kills land in that window"

# check_sources DB REV_OLD REV_NEW: each source is exactly its old or its new
# self (doc hash and chunks), none missing; prints "old new bad"
check_sources() {
  state "$1" it-kill >"$tmp/cur"
  python3 - "$tmp/ref.$2" "$tmp/ref.$3" "$tmp/cur" <<'PY'
import sys, collections
def load(p):
    d = collections.defaultdict(list)
    for line in open(p):
        f = line.rstrip("\n").split("|")
        d[(f[1], f[2])].append(line)
    return {k: sorted(v) for k, v in d.items()}
old, new, cur = (load(p) for p in sys.argv[1:4])
n_old = n_new = bad = 0
for k in set(old) | set(cur):
    c = cur.get(k)
    if c == old.get(k): n_old += 1
    elif c == new.get(k): n_new += 1
    else:
        bad += 1
        if bad <= 3: sys.stderr.write("# source %s matches neither version\n" % (k,))
print(n_old, n_new, bad)
PY
}
# sources whose chunks carry more than one version marker, or none
mixed() {
  sql "$1" "SELECT count(*) FROM (SELECT c.source_id FROM knowledge_chunks c
            GROUP BY c.source_id
            HAVING count(DISTINCT substring(c.content from 'rev-[A-Z]')) <> 1
                OR bool_or(substring(c.content from 'rev-[A-Z]') IS NULL)) x"
}
index_accounted() {   # each of the HNSW and the full-text index is there, or a note says it must be rebuilt
  { hnsw_present "$1" || [ "$(sql "$1" "SELECT count(*) FROM kbpipe_dropped_indexes
                                        WHERE indexdef LIKE '% USING hnsw %'")" -gt 0 ]; } &&
  { gin_present "$1" || [ "$(sql "$1" "SELECT count(*) FROM kbpipe_dropped_indexes
                                       WHERE index_name = 'idx_knowledge_chunks_search_tsv'")" -gt 0 ]; }
}

echo "# 1. kill -9 at $kills random moments"
kdb=$(new_db kill)
rev A; kb "$kdb" run "$G" -q
check_rc "first load (A) exits 0" 0
cur=A landed=0 mid=0 bad_total=0 mix_total=0 idx_lost=0 rerun_bad=0 state_bad=0 idx_bad=0
for i in $(seq 1 "$kills"); do
  if [ "$cur" = A ]; then next=B; else next=A; fi
  rev "$next"
  delay_ms=$(( first_ms + RANDOM * (last_ms - first_ms) / 32768 ))
  "$bin" --db "dbname=$kdb" run "$G" -q >"$tmp/k.out" 2>"$tmp/k.err" &
  pid=$!; _bg+=("$pid")
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null && landed=$((landed + 1)); fi
  wait "$pid" 2>/dev/null
  read -r n_old n_new bad < <(check_sources "$kdb" "$cur" "$next")
  m=$(mixed "$kdb")
  index_accounted "$kdb" || idx_lost=$((idx_lost + 1))
  # mid-load: the kill left work for the re-run after some of it was done
  # (sources of both versions, or every source new but the index still dropped)
  dropped=$(sql "$kdb" "SELECT count(*) FROM kbpipe_dropped_indexes")
  if [ "$n_new" -gt 0 ] && { [ "$n_old" -gt 0 ] || [ "$dropped" -gt 0 ]; }; then
    mid=$((mid + 1)); where="mid-load"
  else where="not mid-load"; fi
  note "kill $i at ${delay_ms} ms ($cur -> $next): $n_old sources old, $n_new new, $bad neither, $m mixed, index note $dropped: $where"
  bad_total=$((bad_total + bad)); mix_total=$((mix_total + m))
  kb "$kdb" run "$G" -q
  if [ "$rc" != 0 ]; then rerun_bad=$((rerun_bad + 1)); show; fi
  state "$kdb" it-kill >"$tmp/s"
  if ! cmp -s "$tmp/ref.$next" "$tmp/s"; then
    state_bad=$((state_bad + 1)); diff "$tmp/ref.$next" "$tmp/s" | head -n 6 | sed 's/^/#   /'
  fi
  hnsw_present "$kdb" && gin_present "$kdb" &&
    [ "$(sql "$kdb" "SELECT count(*) FROM kbpipe_dropped_indexes")" = 0 ] || idx_bad=$((idx_bad + 1))
  cur=$next
done
note "$landed of $kills kills landed while kbpipe was running, $mid mid-load"
# the checks below must not pass vacuously: most kills really cut a load
# (the window is one clean run's; a killed run's first batch often comes
# later, so the first kills of the window can find nothing written yet)
check "at least half of the kills landed mid-load ($mid of $kills)" \
  test $((mid * 2)) -ge "$kills"
check_eq "after every kill, every source is wholly its old or its new version" 0 "$bad_total"
check_eq "after every kill, no source's chunks carry two versions" 0 "$mix_total"
check_eq "after every kill, the HNSW and the full-text index are each there or recorded as dropped" 0 "$idx_lost"
check_eq "every re-run after a kill exits 0" 0 "$rerun_bad"
check_eq "every re-run ends in exactly the state of one clean run" 0 "$state_bad"
check_eq "every re-run leaves the HNSW and the full-text index in place and no drop note" 0 "$idx_bad"
kb "$kdb" run "$G" -q --report "$tmp/after.json"
check_eq "a run after all that writes nothing" "0 0" \
  "$(jget "$tmp/after.json" .load.chunks_written) $(computed "$tmp/after.json")"
check_eq "the killed runs stay visible in kbpipe_runs (not 'succeeded')" 0 \
  "$(sql "$kdb" "SELECT count(*) FROM kbpipe_runs WHERE status = 'succeeded' AND finished_at IS NULL")"

echo "# 2. the server stopped in the middle of a run"
PGBIN=/usr/lib/postgresql/15/bin
sdir=$(mktemp -d /var/tmp/kbpipe-it-pg.XXXXXX)
chmod 755 "$sdir"
_extra_cleanup='as_pg "$PGBIN/pg_ctl" -D "$sdir/data" -m immediate -w stop >/dev/null 2>&1; rm -rf "$sdir"'
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pguser=$(if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi)
[ "$(id -u)" = 0 ] && chown postgres "$sdir"
if as_pg "$PGBIN/initdb" -D "$sdir/data" -U "$pguser" --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
     >"$tmp/initdb.log" 2>&1; then
  cat >>"$sdir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$sdir'
shared_buffers = 64MB
fsync = off
CONF
  as_pg "$PGBIN/pg_ctl" -D "$sdir/data" -l "$sdir/log" -w -t 60 start >/dev/null
  sdsn="host=$sdir user=$pguser dbname=kbpipe_stop"
  ssql() { psql -X -At -h "$sdir" -U "$pguser" -d kbpipe_stop -c "$1"; }
  psql -X -q -h "$sdir" -U "$pguser" -d postgres -c "CREATE DATABASE kbpipe_stop"
  "$bin" -q --db "$sdsn" migrate up >"$tmp/out" 2>&1 || cat "$tmp/out"
  rev A
  "$bin" --db "$sdsn" run "$G" >"$tmp/st.out" 2>"$tmp/st.err" &
  pid=$!; _bg+=("$pid")
  some_written() { [ "$(ssql "SELECT count(*) FROM knowledge_chunks" 2>/dev/null || echo 0)" -gt 0 ]; }
  if poll 60 some_written && kill -0 "$pid" 2>/dev/null; then
    as_pg "$PGBIN/pg_ctl" -D "$sdir/data" -m immediate -w stop >/dev/null
    rc=0; wait "$pid" || rc=$?
    check_eq "the server stopped mid-run: kbpipe exits 1" 1 "$rc"
    check "... with a clear message about the lost server or connection" \
      grep -qi "server\|connection" "$tmp/st.err"
    sed -n '1,5p' "$tmp/st.err" | sed 's/^/#   stderr: /'
    as_pg "$PGBIN/pg_ctl" -D "$sdir/data" -l "$sdir/log" -w -t 60 start >/dev/null
    rc=0; timeout -s KILL 150 "$bin" -q --db "$sdsn" run "$G" >"$tmp/out" 2>"$tmp/err" || rc=$?
    check_rc "after a restart, the next run exits 0" 0
    psql -X -At -h "$sdir" -U "$pguser" -d kbpipe_stop -c "SELECT 1" >/dev/null
    ssql "SELECT 1" >/dev/null
    # the same state as a clean run of A (computed on the shared cluster)
    PGHOST=$sdir PGUSER=$pguser state kbpipe_stop it-kill >"$tmp/s"
    check_same "... and ends in exactly the state of one clean run" "$tmp/ref.A" "$tmp/s"
  else
    fail "the server-stop run ended before it could be cut off"; sed -n 1,10p "$tmp/st.err" | sed "s/^/#   /"
  fi
else
  fail "initdb of the throwaway cluster failed"; sed 's/^/#   /' "$tmp/initdb.log" | tail -n 5
fi

finish
