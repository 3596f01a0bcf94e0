#!/usr/bin/env bash
# tests/integration/run_report.sh - the run report and search output
# (issue 13, point 8):
#   1. inputs a reader leaves out with a note (a binary file, a pull request
#      of a REST export) are counted per source: `skipped` in the table and
#      the JSON report
#   2. a run stopped by on_error: fail prints no table of rows it never
#      wrote, but what it committed before the stop, which the database
#      holds
#   3. `kbpipe search` on a terminal shows a loaded title's and text's
#      control characters escaped (no ESC byte reaches the screen); through
#      a pipe the text is as stored
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_report.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

R=tests/data/run/report.yaml
mkdir -p "$tmp/docs"
export RUN_DOCS=$tmp/docs RUN_REJECTS=$tmp/rejects.jsonl
for i in 1 2 3 4 5; do printf '# Note %d\n\nText of note %d about vacuum.\n' "$i" "$i" >"$tmp/docs/n$i.md"; done
cp tests/data/ingest/bad/binary.png "$tmp/docs/"

echo "# 1. skipped inputs are counted"
d=$(new_db report)
kb "$d" run "$R" --report "$tmp/r.json"
check_rc "the run exits 0" 0
check_eq "docs: the binary file is counted as skipped" 1 "$(jget "$tmp/r.json" '.sources[0].skipped')"
check_eq "rest: the pull request is counted as skipped" 1 "$(jget "$tmp/r.json" '.sources[1].skipped')"
check "the table has a skipped column" grep -q "rejected  skipped  seconds" "$tmp/err"
check "... with the total of 2" grep -Eq "^total( +[0-9]+){9} +2 " "$tmp/err"

echo "# 2. a run stopped by on_error: fail"
f=$(new_db fail)
printf '# Bad\n\n\xff\xfe not UTF-8\n' >"$tmp/docs/n4.md"
RUN_ON_ERROR=fail kb "$f" run "$R"
check_rc "the run exits 1" 1
check "it prints no per-source table" bash -c "! grep -q 'rejected  skipped  seconds' '$tmp/err'"
line=$(grep -o "written before the stop: [0-9]* batch(es), [0-9]* source(s), [0-9]* chunk(s)" "$tmp/err")
check "it says what it wrote before the stop" test -n "$line"
n=$(echo "$line" | sed 's/.*batch(es), \([0-9]*\) source.*/\1/')
check_eq "... which is what the database holds" "$n" \
  "$(sql "$f" "SELECT count(*) FROM knowledge_sources")"
check_eq "the run is 'failed'" failed "$(sql "$f" "SELECT status FROM kbpipe_runs")"

echo "# 3. search shows control characters escaped on a terminal"
s=$(new_db search)
rm -f "$tmp/docs/"*
printf '# Vacuum \033]0;owned\007 title\n\nVacuum text \033[2J that clears \xc2\x9b the screen.\n' \
  >"$tmp/docs/evil.md"
kb "$s" run "$R" -q
check_rc "the document loads" 0
script -qec "'$bin' --db dbname=$s search --project it-report vacuum" /dev/null >"$tmp/tty.out" 2>&1
check "on a terminal, the title's OSC sequence is shown escaped" \
  grep -qF 'Vacuum \x1b]0;owned\x07 title' "$tmp/tty.out"
check "... and the text's CSI and C1 bytes too" grep -qF '\x1b[2J that clears \u009b the' "$tmp/tty.out"
check "no ESC, BEL or C1 byte reaches the terminal" \
  bash -c "! LC_ALL=C grep -q \$'\\033\\|\\007\\|\\xc2\\x9b' '$tmp/tty.out'"
kb "$s" search --project it-report vacuum
check "through a pipe the text is as stored" grep -q $'\033\\[2J' "$tmp/out"

finish
