#!/usr/bin/env bash
# tests/integration/run_resume.sh - what a run owes after its last data
# commit survives a kill (issue 13, points 1 and 2):
#   1. kill -9 inside the dedup pass (after every batch is committed): the
#      pass marked nothing, kbpipe_pending holds one note per learning; the
#      re-run says it finishes the pass, and ends with exactly the marks of
#      one clean run, no note left, the killed run closed as 'abandoned'
#   2. `kbpipe dedup` finishes a pass a killed run owed, and says so
#   3. a dedup pass that fails (fault) is rolled back whole: nothing marked,
#      the notes kept, the run 'failed'
#   4. kill -9 before the run row is closed: `kbpipe stats` closes it as
#      'abandoned' (its seconds stop counting); a live run (its backend holds
#      its advisory lock) stays 'running'
#   5. a pipeline without dedup leaves no note behind, after a clean run or
#      a kill before the run's end (its batches write none)
#   6. shards owe apart: shard 1/2 killed inside its dedup pass (and another
#      time inside its --full end), shard 2/2 then succeeds: shard 1's notes
#      survive, shard 2 neither takes nor clears them, and shard 1's next
#      run does the pass it owed
#   KBPIPE_BIN=build/debug/kbpipe-test bash tests/integration/run_resume.sh
# Needs a test build (KBPIPE_FAULT points, ":kill" for a kill -9 at an
# exact instant).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

D=tests/data/run/dedup.yaml
export RUN_LEARNINGS=tests/data/run/dedup.csv RUN_DEDUP=true RUN_DEDUP_ACTION=mark
n_learn=$(($(wc -l <"$RUN_LEARNINGS") - 1))

# marks DB: every marked learning as "source_id -> keeper's source_id"
marks() {
  sql "$1" "SELECT sd.source_id || ' -> ' || sk.source_id
            FROM learnings d JOIN learnings k ON k.id::text = d.metadata->>'duplicate_of'
            JOIN knowledge_sources sd ON sd.id = d.knowledge_source_id
            JOIN knowledge_sources sk ON sk.id = k.knowledge_source_id
            ORDER BY 1"
}
owed() { sql "$1" "SELECT count(*) FROM kbpipe_pending WHERE what = '$2'"; }
status_of() { sql "$1" "SELECT string_agg(status, ',' ORDER BY id) FROM kbpipe_runs"; }

ref=$(new_db ref)
kb "$ref" run "$D" -q
check_rc "a clean run with dedup (mark) exits 0" 0
marks "$ref" >"$tmp/ref.marks"
check "the clean run marks the planted duplicates" test "$(wc -l <"$tmp/ref.marks")" -ge 3
check_eq "and owes nothing" 0 "$(owed "$ref" dedup)"

echo "# 1. kill -9 inside the dedup pass"
k=$(new_db kill)
KBPIPE_FAULT=load.dedup:1:kill kb "$k" run "$D" -q
check_eq "the armed run dies by SIGKILL" 137 "$rc"
check_eq "every learning is committed" "$n_learn" "$(sql "$k" "SELECT count(*) FROM learnings")"
check_eq "the cut pass marked nothing" 0 "$(marks "$k" | wc -l)"
check_eq "one dedup note per learning is recorded" "$n_learn" "$(owed "$k" dedup)"
check_eq "the killed run is still 'running'" running "$(status_of "$k")"
kb "$k" run "$D"
check_rc "the re-run exits 0" 0
check "it says it finishes the earlier run's dedup pass" \
  grep -q "stopped before the dedup pass over $n_learn learning(s)" "$tmp/err"
check "it says it closed the killed run" grep -q "marked abandoned" "$tmp/err"
marks "$k" >"$tmp/k.marks"
check_same "the marks are exactly those of one clean run" "$tmp/ref.marks" "$tmp/k.marks"
check_eq "no note is left" 0 "$(owed "$k" dedup)"
check_eq "the killed run is 'abandoned', the re-run 'succeeded'" "abandoned,succeeded" \
  "$(status_of "$k")"
kb "$k" run "$D"
check "a third run has nothing owed to report" bash -c "! grep -q 'stopped before' '$tmp/err'"

echo "# 2. kbpipe dedup finishes an owed pass"
k2=$(new_db dedupcmd)
KBPIPE_FAULT=load.dedup:1:kill kb "$k2" run "$D" -q
check_eq "the armed run dies by SIGKILL" 137 "$rc"
kb "$k2" dedup --project it-dedup --action mark
check_rc "kbpipe dedup exits 0" 0
check "it says it finished what the killed run owed" \
  grep -q "finished the dedup pass that interrupted runs owed $n_learn learning(s)" "$tmp/err"
marks "$k2" >"$tmp/k2.marks"
check_same "the marks are those of one clean run" "$tmp/ref.marks" "$tmp/k2.marks"
check_eq "no note is left" 0 "$(owed "$k2" dedup)"

echo "# 3. a failing dedup pass is rolled back whole"
f=$(new_db fault)
KBPIPE_FAULT=load.dedup kb "$f" run "$D" -q
check_rc "a run whose dedup pass fails exits 1" 1
check_eq "nothing is marked" 0 "$(marks "$f" | wc -l)"
check_eq "the notes stay" "$n_learn" "$(owed "$f" dedup)"
check_eq "the run is 'failed'" failed "$(status_of "$f")"
kb "$f" run "$D" -q
marks "$f" >"$tmp/f.marks"
check_same "the next run marks as one clean run" "$tmp/ref.marks" "$tmp/f.marks"

echo "# 4. abandoned runs: closed by stats, live ones left alone"
a=$(new_db abandon)
KBPIPE_FAULT=load.close:1:kill kb "$a" run "$D" -q
check_eq "a run killed before closing its row dies by SIGKILL" 137 "$rc"
check_eq "its row says 'running'" running "$(status_of "$a")"
# a live run: a session that holds an advisory lock and records its backend
psql -X -q -d "$a" -c "SELECT pg_advisory_lock(hashtext('kbpipe.run.live'))" \
  -c "INSERT INTO kbpipe_runs (pipeline, host, pid, backend_pid)
      VALUES ('live', 'h', 1, pg_backend_pid())" -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
live=$!; _bg+=("$live")
live_row() { [ "$(sql "$a" "SELECT count(*) FROM kbpipe_runs WHERE pipeline = 'live'")" = 1 ]; }
poll 20 live_row
kb "$a" stats
check_rc "kbpipe stats exits 0" 0
check "stats says it closed the dead run" grep -q "marked abandoned" "$tmp/err"
check_eq "the dead run is 'abandoned' with an end time" "abandoned|t" \
  "$(sql "$a" "SELECT status, finished_at IS NOT NULL FROM kbpipe_runs WHERE pipeline = 'it-dedup'")"
check_eq "the live run stays 'running'" running \
  "$(sql "$a" "SELECT status FROM kbpipe_runs WHERE pipeline = 'live'")"
# the session dies as a killed run's does: its server process ends
sql "$a" "SELECT pg_terminate_backend(backend_pid) FROM kbpipe_runs WHERE pipeline = 'live'" >/dev/null
wait "$live" 2>/dev/null
gone() { [ "$(sql "$a" "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")" = 0 ]; }
poll 20 gone
kb "$a" stats
check_eq "once its session is gone, stats closes it too" abandoned \
  "$(sql "$a" "SELECT status FROM kbpipe_runs WHERE pipeline = 'live'")"

echo "# 5. no dedup: no note left behind"
n=$(new_db nodedup)
RUN_DEDUP=false kb "$n" run "$D" -q
check_rc "a run without dedup exits 0" 0
check_eq "it leaves no note" 0 "$(owed "$n" dedup)"
n2=$(new_db nodedupkill)
RUN_DEDUP=false KBPIPE_FAULT=load.close:1:kill kb "$n2" run "$D" -q
check_eq "a run without dedup, killed before closing its row, dies by SIGKILL" 137 "$rc"
check_eq "its batches wrote every learning" "$n_learn" "$(sql "$n2" "SELECT count(*) FROM learnings")"
check_eq "and no note: nothing is owed without dedup" 0 "$(owed "$n2" dedup)"

echo "# 6. shards: each owes its own dedup and --full"
sh=$(new_db shards)
KBPIPE_FAULT=load.dedup:1:kill kb "$sh" run "$D" -q --shard 1/2
check_eq "shard 1/2, armed inside its dedup pass, dies by SIGKILL" 137 "$rc"
n1=$(sql "$sh" "SELECT count(*) FROM learnings")
check "shard 1/2 wrote some learnings" test "$n1" -gt 0
check_eq "its notes are keyed by the shard" "it-dedup#1/2|$n1" \
  "$(sql "$sh" "SELECT pipeline, count(*) FROM kbpipe_pending WHERE what = 'dedup' GROUP BY 1")"
kb "$sh" run "$D" --shard 2/2
check_rc "shard 2/2 exits 0" 0
check "shard 2/2 does not take shard 1's owed pass" bash -c "! grep -q 'stopped before' '$tmp/err'"
check_eq "shard 1's notes survive shard 2's success" "$n1" \
  "$(sql "$sh" "SELECT count(*) FROM kbpipe_pending WHERE pipeline = 'it-dedup#1/2' AND what = 'dedup'")"
check_eq "shard 2 leaves no note of its own" 0 \
  "$(sql "$sh" "SELECT count(*) FROM kbpipe_pending WHERE pipeline <> 'it-dedup#1/2'")"
kb "$sh" run "$D" --shard 1/2
check_rc "shard 1/2 re-run exits 0" 0
check "it does the dedup pass it owed" \
  grep -q "it-dedup#1/2: an earlier run stopped before the dedup pass over $n1 learning(s)" "$tmp/err"
check_eq "no note is left" 0 "$(owed "$sh" dedup)"
marks "$sh" >"$tmp/sh.marks"
check_same "the marks are those of one clean unsharded run" "$tmp/ref.marks" "$tmp/sh.marks"
KBPIPE_FAULT=load.finish:1:kill kb "$sh" run "$D" -q --shard 1/2 --full
check_eq "shard 1/2 --full, armed before its deletions, dies by SIGKILL" 137 "$rc"
check_eq "its owed --full is keyed by the shard" "it-dedup#1/2" \
  "$(sql "$sh" "SELECT string_agg(pipeline, ',') FROM kbpipe_pending WHERE what = 'full'")"
kb "$sh" run "$D" --shard 2/2
check_rc "shard 2/2 exits 0" 0
check "shard 2/2 does not take shard 1's owed --full" \
  bash -c "! grep -q 'earlier --full run stopped' '$tmp/err'"
check_eq "the owed --full survives" 1 "$(owed "$sh" full)"
kb "$sh" run "$D" --shard 1/2
check "shard 1/2's next run does its owed --full" grep -q "earlier --full run stopped" "$tmp/err"
check_eq "and clears it" 0 "$(owed "$sh" full)"

finish
