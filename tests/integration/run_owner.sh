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

finish
