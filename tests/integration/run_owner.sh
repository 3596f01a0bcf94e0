#!/usr/bin/env bash
# tests/integration/run_owner.sh - a source belongs to the pipeline that
# loaded it (issue 13, point 3), and a new project's description (point 8):
#   1. pipeline a loads tests/data/run/docs into project p; pipeline b of p
#      over the same files rejects every one naming both pipelines (exit 3,
#      counted, in b's reject file) and changes no row of a's; a re-run of a
#      writes nothing: no flip-flop, on either side, run after run
#   2. `--full` of b deletes nothing of a's
#   3. once a no longer has a source (its file removed, a run with --full),
#      b loads it and owns it
#   4. the run that creates a project stores the pipeline's description; a
#      second pipeline's description does not overwrite it; a project
#      holding only the placeholder 'created by kbpipe' gets one
#   5. two pipelines meet a new id at the same instant: a and b of project p
#      both scan a folder holding one new file while the test holds
#      knowledge_sources in SHARE mode (both batches wait at their upsert,
#      each having found no such source when it started); once it lets go,
#      the first batch to commit owns the source, the other one's run fails
#      with 'source race.md was just loaded by another pipeline of project
#      p, which owns it now' (exit 1, run 'failed', nothing of it stored),
#      and its next run rejects the source naming both pipelines (exit 3)
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_owner.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

O=tests/data/run/owner.yaml
cp -r tests/data/run/docs "$tmp/docs"
export RUN_DOCS=$tmp/docs RUN_PROJECT=p
n_md=$(find "$tmp/docs" -name '*.md' | wc -l)
owners() { sql "$1" "SELECT pipeline, count(*) FROM knowledge_sources GROUP BY 1 ORDER BY 1" | tr '\n' ' '; }

echo "# 1. two pipelines, the same source ids"
d=$(new_db owner)
RUN_PIPELINE=a RUN_REJECTS=$tmp/a.jsonl kb "$d" run "$O" -q
check_rc "pipeline a loads the files" 0
check_eq "a owns all $n_md" "a|$n_md " "$(owners "$d")"
rows "$d" >"$tmp/rows.a"
RUN_PIPELINE=b RUN_REJECTS=$tmp/b.jsonl kb "$d" run "$O" --report "$tmp/b.json"
check_rc "pipeline b over the same files exits 3 (rejected inputs)" 3
check "b names both pipelines" \
  grep -q "source_id 'guide/setup.md' belongs to pipeline 'a' of project 'p'; pipeline 'b' does not take it over" "$tmp/err"
check_eq "every file is rejected and counted" "$n_md" "$(jget "$tmp/b.json" .rejected)"
check_eq "... and in b's reject file" "$n_md" "$(wc -l <"$tmp/b.jsonl")"
rows "$d" >"$tmp/rows.b"
check_same "no row of a's changed" "$tmp/rows.a" "$tmp/rows.b"
RUN_PIPELINE=a RUN_REJECTS=$tmp/a.jsonl kb "$d" run "$O" -q
check_rc "a again exits 0" 0
rows "$d" >"$tmp/rows.a2"
check_same "and writes nothing: no flip-flop" "$tmp/rows.a" "$tmp/rows.a2"
RUN_PIPELINE=b RUN_REJECTS=$tmp/b.jsonl kb "$d" run "$O" -q
check_rc "b again exits 3" 3
rows "$d" >"$tmp/rows.b2"
check_same "and still changes nothing" "$tmp/rows.a" "$tmp/rows.b2"

echo "# 2. --full of b deletes nothing of a's"
RUN_PIPELINE=b RUN_REJECTS=$tmp/b.jsonl kb "$d" run "$O" -q --full
check_eq "a still owns all $n_md" "a|$n_md " "$(owners "$d")"

echo "# 3. a source a gave up is b's to load"
mv "$tmp/docs/guide/setup.md" "$tmp/setup.md"
RUN_PIPELINE=a RUN_REJECTS=$tmp/a.jsonl kb "$d" run "$O" -q --full
check_rc "a without the file, --full, exits 0" 0
mv "$tmp/setup.md" "$tmp/docs/guide/setup.md"
RUN_PIPELINE=b RUN_REJECTS=$tmp/b.jsonl kb "$d" run "$O" -q
check_eq "b loads it (and still rejects the rest)" "a|$((n_md - 1)) b|1 " "$(owners "$d")"

echo "# 4. the project's description"
check_eq "the run that created p stored the pipeline's description" \
  "Docs of the ownership test" "$(sql "$d" "SELECT description FROM projects WHERE name = 'p'")"
RUN_PIPELINE=c RUN_DESCRIPTION="another one" RUN_REJECTS=$tmp/c.jsonl kb "$d" run "$O" -q
check_eq "another pipeline's description does not overwrite it" \
  "Docs of the ownership test" "$(sql "$d" "SELECT description FROM projects WHERE name = 'p'")"
sql "$d" "INSERT INTO projects (name, description) VALUES ('q', 'created by kbpipe')" >/dev/null
RUN_PROJECT=q RUN_PIPELINE=a RUN_REJECTS=$tmp/a.jsonl kb "$d" run "$O" -q
check_eq "a project with only kbpipe's placeholder gets the description" \
  "Docs of the ownership test" "$(sql "$d" "SELECT description FROM projects WHERE name = 'q'")"

echo "# 5. two pipelines meet a new id at the same instant"
d=$(new_db race)
mkdir "$tmp/race"
cp tests/data/run/docs/guide/setup.md "$tmp/race/race.md"
sql "$d" "INSERT INTO projects (name, description) VALUES ('p', 'the race')" >/dev/null
# the holder: SHARE conflicts with the ROW EXCLUSIVE an upsert takes, not
# with the reads each run makes when it starts
PGAPPNAME=kb-holder psql -X -q -d "$d" \
  -c "BEGIN; LOCK TABLE knowledge_sources IN SHARE MODE; SELECT pg_sleep(120); COMMIT" \
  >/dev/null 2>&1 &
holder=$!; _bg+=("$holder")
holding() { [ "$(sql "$d" "SELECT count(*) FROM pg_stat_activity
                           WHERE datname = current_database() AND application_name = 'kb-holder'
                           AND wait_event = 'PgSleep'")" = 1 ]; }
check "the holder has the table lock" poll 20 holding
RUN_DOCS=$tmp/race RUN_PIPELINE=a RUN_REJECTS=$tmp/ra.jsonl bg "$d" "$tmp/ra" run "$O"; pa=$bg_pid
RUN_DOCS=$tmp/race RUN_PIPELINE=b RUN_REJECTS=$tmp/rb.jsonl bg "$d" "$tmp/rb" run "$O"; pb=$bg_pid
both_wait() { [ "$(sql "$d" "SELECT count(*) FROM pg_stat_activity
                             WHERE datname = current_database() AND application_name <> 'kb-holder'
                               AND wait_event_type = 'Lock'
                               AND query LIKE '%INSERT INTO knowledge_sources%'")" = 2 ]; }
check "both runs' upserts wait for the table" poll 60 both_wait
sql "$d" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'kb-holder'" >/dev/null
wait "$holder" 2>/dev/null
bg_wait "$pa"; ra=$rc
bg_wait "$pb"; rb=$rc
owner=$(sql "$d" "SELECT pipeline FROM knowledge_sources WHERE source_id = 'race.md'")
case "$owner" in a) loser=b ;; b) loser=a ;; *) loser=none ;; esac
check_eq "one of them owns race.md, the other exits 1" "0 1" \
  "$( [ "$owner" = a ] && echo "$ra $rb" || echo "$rb $ra")"
what="the other's run says the source was just loaded by the owner's pipeline"
if grep -q "source race.md was just loaded by another pipeline of project p, which owns it now; give it another key in one of the pipelines" \
     "$tmp/r$loser.err" 2>/dev/null; then ok "$what"
else fail "$what"; sed 's/^/#   /' "$tmp/ra.err" "$tmp/rb.err" | head -n 6; fi
check_eq "its run is recorded failed, the owner's succeeded" "$loser|failed $owner|succeeded " \
  "$(sql "$d" "SELECT pipeline, status FROM kbpipe_runs ORDER BY pipeline = '$owner', id" | tr '\n' ' ')"
check_eq "the project holds the source once, with the owner's chunks only" "1 $owner" \
  "$(sql "$d" "SELECT count(DISTINCT s.id) || ' ' || string_agg(DISTINCT s.pipeline, ',')
               FROM knowledge_sources s JOIN knowledge_chunks c ON c.source_id = s.id")"
RUN_DOCS=$tmp/race RUN_PIPELINE=$loser RUN_REJECTS=$tmp/r2.jsonl kb "$d" run "$O"
check_rc "the other's next run exits 3 (rejected inputs)" 3
check "... naming both pipelines" \
  grep -q "source_id 'race.md' belongs to pipeline '$owner' of project 'p'; pipeline '$loser' does not take it over" "$tmp/err"
check_eq "... in its reject file" 1 "$(wc -l <"$tmp/r2.jsonl")"

finish
