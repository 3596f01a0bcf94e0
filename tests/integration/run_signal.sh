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
sql "$w" "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'" >/dev/null
wait "$holder" 2>/dev/null

finish
