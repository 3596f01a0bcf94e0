#!/usr/bin/env bash
# tests/integration/run_stat.sh - the stat pre-check (issue 14): an
# unchanged re-run opens no input file, and every way a file can change
# behind an equal-looking stat is still caught:
#   1. an unchanged re-run opens none of the corpus' files (strace -e
#      openat: no open of any of them), and its report counts them all as
#      files_unread; the re-run is unchanged everywhere and writes no row
#   2. an edited file whose mtime is put back (touch -d) but whose size
#      changed is read and reloaded
#   3. same size, same mtime, other bytes: caught by ctime (the edit and the
#      touch -d both change it), read and reloaded
#   4. --checksum opens and hashes every file (strace), all unchanged
#   5. the racy case: a file whose mtime is not older than the run's start
#      (here: in the future) is recorded as racy and read by every run
#   6. a CSV file (one file, many sources) is skipped whole: not opened, its
#      sources counted unchanged and still seen (a --full run deletes none)
#   7. a stored source changed behind kbpipe's back (deleted with SQL): the
#      CSV's stat is unchanged but its sources are not as recorded, so the
#      file is read and the source comes back
#   8. a CSV edited and loaded by a run killed in its middle (kill -9 at the
#      second batch) is read again by the next run, which ends as one clean
#      run of the new file; the run after it skips the file whole
#   KBPIPE_BIN=build/debug/kbpipe-test bash tests/integration/run_stat.sh
# Needs strace (the project's test dependencies) and, for 8, a test build.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

command -v strace >/dev/null || { echo "run_stat.sh: strace is needed (apt-get install strace)" >&2; exit 1; }

# a corpus of 12 Markdown files and a CSV of 20 rows, with mtimes an hour
# old so that no stat of the first run is racy
docs=$tmp/docs
mkdir -p "$docs/sub"
for i in $(seq 1 12); do
  d=$docs; [ "$i" -gt 6 ] && d=$docs/sub
  printf '# Page %d\n\nThe body of page %d talks about topic %d.\n' "$i" "$i" "$i" >"$d/p$i.md"
done
csv=$tmp/rows.csv
{ echo "id,title,content"
  for i in $(seq 1 20); do echo "R-$i,Row $i,the content of row $i"; done; } >"$csv"
find "$docs" "$csv" -type f -exec touch -d '1 hour ago' {} +

P=$tmp/p.yaml
cat >"$P" <<EOF
name: it-stat
project: it-stat
reject_file: $tmp/rejects.jsonl
chunking: { splitter: markdown, size: 64, overlap: 0 }
embedding: { provider: hash }
load: { batch_rows: 5 }
sources:
  - name: docs
    type: files
    roots: ["$docs"]
  - name: rows
    type: csv
    path: $csv
    key: id
EOF

# field SOURCE KEY: a number of the last report's source
field() { jq -r --arg s "$1" ".sources[] | select(.name == \$s) | .$2" "$tmp/out"; }
# traced DB ARGS...: kb under strace; the files it opened in $tmp/opened
traced() {
  local d=$1; shift
  rc=0
  # LeakSanitizer cannot run under ptrace: leaks are checked by the untraced runs
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -e trace=openat,open -o "$tmp/trace" \
    timeout -s KILL "$KB_TIMEOUT" "$bin" --db "dbname=$d" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  grep -o "\"$tmp/[^\"]*\"" "$tmp/trace" | tr -d '"' | grep -E '\.(md|csv)$' | sort -u >"$tmp/opened"
}

db=$(new_db stat)
echo "# 1. an unchanged re-run opens no input file"
traced "$db" run "$P" --report -
check_rc "the first run exits 0" 0
check_eq "the first run opens all 12 files and the CSV" 13 "$(wc -l <"$tmp/opened")"
check_eq "and counts no file unread" "0 0" "$(field docs files_unread) $(field rows files_unread)"
check_eq "it records one stat per file" 13 "$(sql "$db" "SELECT count(*) FROM kbpipe_file_stat WHERE NOT is_racy")"
state "$db" it-stat >"$tmp/s1"
rows "$db" >"$tmp/rows1"
traced "$db" run "$P" --report - -v
check_rc "the re-run exits 0" 0
check_eq "the re-run opens none of them" 0 "$(wc -l <"$tmp/opened")"
check_eq "docs: 12 read, 12 unchanged, 12 files unread" "12 12 12" \
  "$(field docs read) $(field docs unchanged) $(field docs files_unread)"
check_eq "rows: 20 read, 20 unchanged, the file unread" "20 20 1" \
  "$(field rows read) $(field rows unchanged) $(field rows files_unread)"
check "the -v log says so" grep -q "source docs: 12 file(s) unchanged by their stat, not opened; 0 read" "$tmp/err"
rows "$db" >"$tmp/rows2"
check_same "the re-run writes no row of the knowledge tables" "$tmp/rows1" "$tmp/rows2"
kb "$db" run "$P" -q     # the same path untraced (a sanitizer build checks its leaks)
check_rc "an untraced unchanged re-run exits 0" 0

echo "# 2. an edited file with its mtime put back, but another size"
f=$docs/p3.md
mt=$(stat -c %Y "$f")
printf '# Page 3\n\nThe body of page 3 now talks about something else entirely.\n' >"$f"
touch -d "@$mt" "$f"
traced "$db" run "$P" --report -
check_rc "the run exits 0" 0
check_eq "it opens that file only" "$f" "$(cat "$tmp/opened")"
check_eq "docs: 1 changed, 11 unchanged unread" "1 11" "$(field docs changed) $(field docs files_unread)"
check "the new text is stored" test "$(sql "$db" "SELECT count(*) FROM knowledge_chunks WHERE content LIKE '%something else%'")" = 1

echo "# 3. same size and mtime, other bytes: ctime tells"
f=$docs/sub/p9.md
mt=$(stat -c %Y "$f")
sz=$(stat -c %s "$f")
sed -i 's/topic 9/TOPIC 9/' "$f"
touch -d "@$mt" "$f"
check_eq "the edit kept the size and the mtime" "$sz $mt" "$(stat -c '%s %Y' "$f")"
traced "$db" run "$P" --report -
check_rc "the run exits 0" 0
check_eq "it opens that file only" "$f" "$(cat "$tmp/opened")"
check_eq "docs: 1 changed" 1 "$(field docs changed)"
check "the new text is stored" test "$(sql "$db" "SELECT count(*) FROM knowledge_chunks WHERE content LIKE '%TOPIC 9%'")" = 1

echo "# 4. --checksum reads everything"
traced "$db" run "$P" --checksum --report -
check_rc "the run exits 0" 0
check_eq "it opens all 12 files and the CSV" 13 "$(wc -l <"$tmp/opened")"
check_eq "all unchanged, none unread" "12 0 20 0" \
  "$(field docs unchanged) $(field docs files_unread) $(field rows unchanged) $(field rows files_unread)"

echo "# 5. a racy stat is never trusted"
f=$docs/p1.md
touch -d '1 hour' "$f"     # mtime after the run's start
kb "$db" run "$P" -q
check_rc "the run exits 0" 0
check_eq "its stat is recorded as racy" t \
  "$(sql "$db" "SELECT is_racy FROM kbpipe_file_stat WHERE path = '$f'")"
traced "$db" run "$P" --report -
check_eq "the next run reads it although its stat did not change" "$f" "$(cat "$tmp/opened")"
check_eq "and finds it unchanged" "12 11" "$(field docs unchanged) $(field docs files_unread)"
touch -d '1 hour ago' "$f"
kb "$db" run "$P" -q
traced "$db" run "$P" --report -
check_eq "once its mtime is older than a run's start, its stat is trusted" 0 "$(wc -l <"$tmp/opened")"

echo "# 6. a CSV skipped whole is still seen"
traced "$db" run "$P" --full --report -
check_rc "a --full run exits 0" 0
check_eq "it opens nothing" 0 "$(wc -l <"$tmp/opened")"
check_eq "and deletes nothing" 0 "$(jq -r .load.sources_deleted "$tmp/out")"
check_eq "the 20 CSV sources are stored" 20 "$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE source_type = 'csv'")"

echo "# 7. sources changed behind kbpipe's back"
sql "$db" "DELETE FROM knowledge_sources WHERE source_id = 'R-7'" >/dev/null
traced "$db" run "$P" --report -
check_rc "the run exits 0" 0
check_eq "the CSV, its stat unchanged, is read" "$csv" "$(cat "$tmp/opened")"
check_eq "R-7 is new again, the rest unchanged" "1 19 0" \
  "$(field rows new) $(field rows unchanged) $(field rows files_unread)"

echo "# 8. a CSV loaded by a killed run is read again"
{ echo "id,title,content"
  for i in $(seq 1 20); do echo "R-$i,Row $i,the new content of row $i"; done; } >"$csv"
touch -d '1 hour ago' "$csv"
ref=$(new_db ref)
kb "$ref" run "$P" -q
state "$ref" it-stat >"$tmp/ref"
KBPIPE_FAULT=load.flush:2:kill kb "$db" run "$P" -q
check_eq "the armed run dies by SIGKILL in the CSV's middle" 137 "$rc"
check "some rows of the new file are stored, not all" test "$(sql "$db" "SELECT count(*) FROM knowledge_chunks WHERE content LIKE '%new content%'")" -lt 20
traced "$db" run "$P" --report -
check_rc "the re-run exits 0" 0
check_eq "it reads the CSV" "$csv" "$(cat "$tmp/opened")"
check_eq "and none of it is taken as unchanged by its stat" 0 "$(field rows files_unread)"
state "$db" it-stat >"$tmp/after"
check_same "the database is that of one clean run of the new file" "$tmp/ref" "$tmp/after"
traced "$db" run "$P" --report -
check_eq "the run after it opens nothing" 0 "$(wc -l <"$tmp/opened")"
finish
