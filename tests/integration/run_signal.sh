#!/usr/bin/env bash
# tests/integration/run_signal.sh - SIGINT and SIGTERM during `kbpipe run`
# (issue 13, point 2):
#   1. SIGINT in the middle of a load: the run takes no new document, lets
#      the batch being written commit or roll back, prints "interrupted
#      after N batch(es) (M source(s) written); run again to resume", records
#      the run as 'interrupted' (with its end time), exits 130; M sources are
#      stored, each whole; the next run finishes the job and ends in exactly
#      the state of one clean run
#   2. SIGTERM alike, exit 143
#   3. a second SIGINT ends the run at once: a run waiting for its
#      pipeline's lock does not end at the first (it stops at the next
#      document), but does at the second
#   4. SIGTERM past the scan, in a `--full` run of a pipeline with `dedup:`
#      (tests/data/run/dedup.yaml, mark) over an edited learnings CSV (D-02
#      rewritten as a near copy of D-09, D-05 removed):
#      a. while the last batch waits for a row lock the test holds (the scan
#         is over): the batch commits, the run stops before the dedup pass;
#      b. while the dedup pass waits for D-09's row (which it marks a
#         duplicate of D-02; the batch never touches it): the pass commits,
#         the run stops before the --full deletions;
#      c. (tests/data/run/gen.yaml, index_strategy rebuild, 11 files in
#         batches of 20 rows, every chunk edited) while the last batch waits
#         for a row lock: the index, dropped at the first batch, stays
#         dropped, its kbpipe_dropped_indexes note left;
#      each signal is sent once, to kbpipe, once its session waits in the
#      statement named; each run exits 143 'interrupted' after every batch
#      of its scan, leaves what it did not reach owed (a: the dedup of D-02
#      and the deletions, D-09 unmarked; b: the deletions, D-09 marked;
#      c: the rebuild), and the next run, without --full, ends in exactly
#      the state, dedup marks included, of one clean run, owing nothing
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_signal.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

G=tests/data/run/gen.yaml
corpus=$tmp/corpus
gen "$corpus" --files 400 --sections 4 --seed 11 --rev A
export RUN_DOCS=$corpus RUN_BATCH_ROWS=20 RUN_PIPELINE=it-sig RUN_PROJECT=it-sig

ref=$(new_db ref)
kb "$ref" run "$G" -q
check_rc "a clean run exits 0" 0
state "$ref" it-sig >"$tmp/ref"

some_written() { [ "$(sql "$1" "SELECT count(*) FROM knowledge_sources")" -gt 0 ]; }
# interrupt SIGNAL EXIT: one run cut by SIGNAL once it has written something
interrupt() {
  local d; d=$(new_db "sig_${1,,}")
  bg "$d" "$tmp/$1" run "$G"
  local pid=$bg_pid
  if ! poll 120 some_written "$d"; then fail "$1: the run wrote nothing in 120 s"; return; fi
  # $pid is timeout(1) (lib.sh's bg): "via-timeout" signals it, and it forwards
  # the signal twice (to kbpipe and to its process group), as a cron job's
  # `timeout 1h kbpipe run` does: still one clean stop; else kbpipe itself
  if [ "$3" = via-timeout ]; then kill -s "$1" "$pid"
  else kill -s "$1" "$(pgrep -P "$pid" | head -1)"; fi
  bg_wait "$pid"
  check_eq "$1: the run exits $2" "$2" "$rc"
  local line
  line=$(grep -o "interrupted after [0-9]* batch(es) ([0-9]* source(s) written); run again to resume" \
         "$tmp/$1.err")
  check "$1: it says how far it got and what to do" test -n "$line"
  local n_written; n_written=$(echo "$line" | sed 's/.*(\([0-9]*\) source.*/\1/')
  check_eq "$1: the sources it says it wrote are stored" "$n_written" \
    "$(sql "$d" "SELECT count(*) FROM knowledge_sources")"
  check_eq "$1: each whole (4 chunks a file)" 0 \
    "$(sql "$d" "SELECT count(*) FROM (SELECT s.id FROM knowledge_sources s
                 LEFT JOIN knowledge_chunks c ON c.source_id = s.id
                 GROUP BY s.id HAVING count(c.id) <> 4) x")"
  check_eq "$1: the run is recorded 'interrupted', with its end" "interrupted|t" \
    "$(sql "$d" "SELECT status, finished_at IS NOT NULL FROM kbpipe_runs")"
  kb "$d" run "$G" -q
  check_rc "$1: the next run exits 0" 0
  state "$d" it-sig >"$tmp/s"
  check_same "$1: ... and ends in exactly the state of one clean run" "$tmp/ref" "$tmp/s"
}

echo "# 1. SIGINT"
interrupt INT 130 direct
echo "# 2. SIGTERM, through timeout(1), which sends it twice"
interrupt TERM 143 via-timeout

echo "# 3. a second SIGINT ends at once"
w=$(new_db wait)
psql -X -q -d "$w" -c "SELECT pg_advisory_lock(hashtext('kbpipe.run.it-sig'))" \
  -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
holder=$!; _bg+=("$holder")
held() { [ "$(sql "$w" "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")" = 1 ]; }
poll 20 held
# kbpipe itself, not through timeout(1), so the test sends each signal once
"$bin" --db "dbname=$w" run "$G" >"$tmp/w.out" 2>"$tmp/w.err" &
bg_pid=$!; _bg+=("$bg_pid")
waiting() { grep -q "waiting for it to finish" "$tmp/w.err"; }
check "the run waits for the lock" poll 30 waiting
kill -INT "$bg_pid"
gone() { ! kill -0 "$bg_pid" 2>/dev/null; }
if poll 2 gone; then fail "the first SIGINT does not end a run blocked on the server"
else ok "the first SIGINT does not end a run blocked on the server"; fi
kill -INT "$bg_pid"
check "the second SIGINT ends it at once" poll 5 gone
bg_wait "$bg_pid"
check_eq "... killed by SIGINT (status 130)" 130 "$rc"
sql "$w" "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())" >/dev/null
wait "$holder" 2>/dev/null

echo "# 4. SIGTERM past the scan: the dedup pass and --full deletions stay owed"
D=tests/data/run/dedup.yaml
# v2: D-02 rewritten as a near copy of D-09 (one word changed), D-05 removed
python3 - tests/data/run/dedup.csv "$tmp/dedup2.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline='')))
by_id = {r[0]: r for r in rows[1:]}
out = [rows[0]]
for r in rows[1:]:
    if r[0] == 'D-05':
        continue
    if r[0] == 'D-02':
        r = r[:]
        r[1] = 'Measure before picking a staging table'
        r[2] = by_id['D-09'][2].replace('Measure it', 'Time it')
    out.append(r)
csv.writer(open(sys.argv[2], 'w', newline='')).writerows(out)
PY
export RUN_DEDUP=true RUN_DEDUP_ACTION=mark RUN_PIPELINE=it-sig-dedup RUN_PROJECT=it-sig-dedup
# marks DB: each learning's source_id and its keeper's (dedup mark), or '-'
marks() {
  sql "$1" "SELECT s.source_id || ' ' || coalesce(ks.source_id, '-')
              FROM learnings l JOIN knowledge_sources s ON s.id = l.knowledge_source_id
              LEFT JOIN learnings k ON k.id::text = l.metadata->>'duplicate_of'
              LEFT JOIN knowledge_sources ks ON ks.id = k.knowledge_source_id" | LC_ALL=C sort
}
owed() { sql "$1" "SELECT what || ':' || count(*) FROM kbpipe_pending GROUP BY what ORDER BY what" | tr '\n' ' '; }
dref=$(new_db dref)
RUN_LEARNINGS=tests/data/run/dedup.csv kb "$dref" run "$D" -q
check_rc "4: a clean run of the CSV exits 0" 0
RUN_LEARNINGS=$tmp/dedup2.csv kb "$dref" run "$D" -q --full
check_rc "4: a clean --full run of the edited CSV exits 0" 0
{ state "$dref" it-sig-dedup; marks "$dref"; } >"$tmp/dref"
check "4: the reference marks D-09 a duplicate of D-02" grep -qx 'D-09 D-02' "$tmp/dref"
check "4: ... and has deleted D-05" test "$(grep -c 'D-05' "$tmp/dref")" = 0
check_eq "4: ... and owes nothing" "" "$(owed "$dref")"

# term_held DB LOCK-QUERY WAIT-PATTERN OUT ARGS...: run kbpipe ARGS on DB in
# the background while a session of the test holds LOCK-QUERY's lock; once
# kbpipe's own session waits for it in a statement LIKE WAIT-PATTERN, send
# one SIGTERM to kbpipe (not through timeout(1)), then end the holder; sets
# $rc (1 and a failure when the run never waited there)
term_held() {
  local d=$1 lock_q=$2 pattern=$3 o=$4; shift 4
  PGAPPNAME=kb-holder psql -X -q -d "$d" \
    -c "BEGIN; $lock_q; SELECT pg_sleep(120); COMMIT" >/dev/null 2>&1 &
  local holder=$!; _bg+=("$holder")
  holding() { [ "$(sql "$d" "SELECT count(*) FROM pg_stat_activity
                             WHERE datname = current_database() AND application_name = 'kb-holder'
                             AND wait_event = 'PgSleep'")" = 1 ]; }
  poll 20 holding || { fail "$o: the holder did not take its lock"; rc=1; return; }
  "$bin" --db "dbname=$d" "$@" >"$tmp/$o.out" 2>"$tmp/$o.err" &
  local pid=$!; _bg+=("$pid")
  blocked() { [ "$(sql "$d" "SELECT count(*) FROM pg_stat_activity
                             WHERE datname = current_database() AND application_name <> 'kb-holder'
                               AND wait_event_type = 'Lock'
                               AND query LIKE '$pattern'")" -ge 1 ]; }
  if poll 60 blocked; then
    kill -TERM "$pid"
  else
    fail "$o: the run never waited in '$pattern'"; sed 's/^/#   /' "$tmp/$o.err"
    kill -9 "$pid" 2>/dev/null
  fi
  sql "$d" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = 'kb-holder'" >/dev/null
  wait "$holder" 2>/dev/null
  bg_wait "$pid"
}
# interrupted CASE OUT BATCHES SOURCES: the checks every run stopped past
# the scan passes (it wrote BATCHES batches, SOURCES sources: the whole scan)
interrupted() {
  check_eq "$1: the run exits 143" 143 "$rc"
  check "$1: it says it was interrupted after all $3 batch(es) of the scan" \
    grep -q "interrupted after $3 batch(es) ($4 source(s) written); run again to resume" \
    "$tmp/$2.err"
  check_eq "$1: the run is recorded 'interrupted'" "interrupted" \
    "$(sql "$d" "SELECT status FROM kbpipe_runs ORDER BY id DESC LIMIT 1")"
}

# past_scan CASE LOCKED-ROW-QUERY WAITING-QUERY-PATTERN OWED D-09'S-MARK
past_scan() {
  local c=$1 lock_q=$2 pattern=$3 want_owed=$4 want_mark=$5
  d=$(new_db "past_$c")
  RUN_LEARNINGS=tests/data/run/dedup.csv kb "$d" run "$D" -q
  check_rc "4$c: the first run exits 0" 0
  RUN_LEARNINGS=$tmp/dedup2.csv term_held "$d" "$lock_q" "$pattern" "p$c" run "$D" --full
  interrupted "4$c" "p$c" 1 1
  check_eq "4$c: what it did not reach is owed" "$want_owed" "$(owed "$d")"
  check_eq "4$c: D-09's dedup mark (keeper) once it stopped" "D-09 $want_mark" \
    "$(marks "$d" | grep '^D-09 ')"
  check "4$c: D-05 is not deleted yet" test "$(sql "$d" "SELECT count(*) FROM knowledge_sources
                                                 WHERE source_id = 'D-05'")" = 1
  RUN_LEARNINGS=$tmp/dedup2.csv kb "$d" run "$D" -q
  check_rc "4$c: the next run, without --full, exits 0" 0
  { state "$d" it-sig-dedup; marks "$d"; } >"$tmp/p$c"
  check_same "4$c: ... and ends in exactly the state and marks of one clean --full run" \
    "$tmp/dref" "$tmp/p$c"
  check_eq "4$c: ... owing nothing" "" "$(owed "$d")"
}
echo "# 4a. SIGTERM while the last batch waits (the scan is over): dedup and deletions owed"
past_scan a "SELECT 1 FROM knowledge_sources WHERE source_id = 'D-02' FOR UPDATE" \
  '%INSERT INTO knowledge_sources%' "dedup:1 full:1 " -
echo "# 4b. SIGTERM while the dedup pass waits: the deletions owed"
past_scan b "SELECT 1 FROM learnings l JOIN knowledge_sources s ON s.id = l.knowledge_source_id
             WHERE s.source_id = 'D-09' FOR UPDATE OF l" \
  '%UPDATE learnings SET metadata%' "full:1 " D-02

echo "# 4c. SIGTERM past the scan, index_strategy rebuild: the index rebuild owed"
# 11 files of 4 chunks in batches of 20 rows: the third batch (f00010) is
# flushed after the scan; the run edits every chunk (rev A -> B)
gen "$tmp/ixa" --files 11 --sections 4 --seed 12 --rev A
gen "$tmp/ixb" --files 11 --sections 4 --seed 12 --rev B
ix() { RUN_INDEX=rebuild RUN_BATCH_ROWS=20 RUN_PIPELINE=it-sig-ix RUN_PROJECT=it-sig-ix "$@"; }
dropped() { sql "$1" "SELECT count(*) FROM kbpipe_dropped_indexes"; }
iref=$(new_db iref)
RUN_DOCS=$tmp/ixb ix kb "$iref" run "$G" -q
check_rc "4c: a clean run of version B exits 0" 0
state "$iref" it-sig-ix >"$tmp/iref"
d=$(new_db past_c)
RUN_DOCS=$tmp/ixa ix kb "$d" run "$G" -q
check_rc "4c: the first run (version A) exits 0" 0
check "4c: ... and leaves the HNSW index" hnsw_present "$d"
check "4c: ... and the full-text index" gin_present "$d"
RUN_DOCS=$tmp/ixb ix term_held "$d" \
  "SELECT 1 FROM knowledge_sources WHERE source_id = 'd00/f00010.md' FOR UPDATE" \
  '%INSERT INTO knowledge_sources%' pc run "$G"
interrupted 4c pc 3 11
check "4c: the HNSW index is still dropped" test "$(hnsw_present "$d" && echo y || echo n)" = n
check "4c: the full-text index is still dropped" test "$(gin_present "$d" && echo y || echo n)" = n
check_eq "4c: ... and both rebuilds owed (a kbpipe_dropped_indexes note each)" 2 "$(dropped "$d")"
RUN_DOCS=$tmp/ixb ix kb "$d" run "$G" -q
check_rc "4c: the next run exits 0" 0
check "4c: ... and rebuilds the index" hnsw_present "$d"
check "4c: ... and the full-text index" gin_present "$d"
check_eq "4c: ... leaving no note" 0 "$(dropped "$d")"
state "$d" it-sig-ix >"$tmp/pc"
check_same "4c: ... in exactly the state of one clean run of version B" "$tmp/iref" "$tmp/pc"

finish
