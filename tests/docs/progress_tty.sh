#!/usr/bin/env bash
# tests/docs/progress_tty.sh - the progress line (docs/loading.md, "Output"),
# through a pseudo-terminal (script -qc):
#   * on a terminal the line moves while the run reads: several redraws in
#     the scanning phase with growing document, chunk and vector counts;
#   * the HNSW rebuild is not silent: `building index (N%)`, N from
#     pg_stat_progress_create_index over a second connection, never falling;
#   * at most twice a second; it ends with a finished line;
#   * the summary table's total seconds is the wall time, and a phases line
#     gives each phase's seconds, adding up to it; the --full deletions and
#     the index rebuild each have their own (deleting, indexing);
#   * -q: nothing at all; off a terminal: no progress line (\r) at all;
#   * deleting without a rebuild (--full deletions held up by a row lock,
#     index strategy keep) opens no second connection.
. "$(dirname "$0")/../integration/lib.sh"
command -v script >/dev/null || { fail "script(1) (util-linux) is needed"; finish; }
db=$(new_db progress)
export RUN_DOCS=$tmp/corpus RUN_PIPELINE=it-prog RUN_PROJECT=it-prog RUN_INDEX=rebuild RUN_REBUILD_MIN=10
# a scan that lasts several redraws even on a quiet machine: 900 files took
# under a second there (one redraw, and the check below failed), so 2,700
files=2700
gen "$tmp/corpus" --files "$files" --sections 4 --seed 5
tty_run() {   # OUT ARGS...: kbpipe on a pseudo-terminal, its screen in OUT
  local out=$1; shift
  local cmd
  printf -v cmd '%q ' timeout -s KILL "$KB_TIMEOUT" "$bin" --db "dbname=$db" "$@"
  script -qec "$cmd" /dev/null >"$out" 2>&1 </dev/null
}
t0=$(date +%s%N)
tty_run "$tmp/screen" run tests/data/run/gen.yaml --report "$tmp/r.json"
wall_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "the run on a terminal succeeds" test "$(jget "$tmp/r.json" .status)" = succeeded
tr '\r' '\n' <"$tmp/screen" | sed 's/\x1b\[K//g' >"$tmp/lines"
grep -E '^kbpipe: it-prog: scanning: ' "$tmp/lines" >"$tmp/scan"
check "the line moves while scanning (at least 2 redraws)" test "$(wc -l <"$tmp/scan")" -ge 2
check "  ... with documents, chunks and vectors" \
  grep -qE '^kbpipe: it-prog: scanning: [0-9]+ documents, [0-9]+ chunks, [0-9]+ vectors embedded, ' "$tmp/scan"
docs=$(sed -E 's/.*scanning: ([0-9]+) documents.*/\1/' "$tmp/scan")
check "  ... the document count never falls, and grows" bash -c '
  prev=-1; for d in $1; do [ "$d" -ge "$prev" ] || exit 1; prev=$d; done
  [ "$(printf "%s\n" $1 | head -1)" -lt "$(printf "%s\n" $1 | tail -1)" ]' _ "$docs"
grep -oE 'building index \([0-9]+%\)' "$tmp/lines" | grep -oE '[0-9]+' >"$tmp/pct"
check "the index rebuild shows building index (N%)" test -s "$tmp/pct"
check "  ... N never falls" bash -c 'sort -n -c "$1"' _ "$tmp/pct"
check "the report says the index was rebuilt" test "$(jget "$tmp/r.json" .load.index_rebuilt)" = true
n_draws=$(grep -c '^kbpipe: it-prog: [a-z]' "$tmp/lines")
check "at most twice a second ($n_draws redraws in ${wall_ms} ms)" test "$n_draws" -le $(( wall_ms / 500 + 2 ))
check "it ends with a finished line" grep -qE "^kbpipe: it-prog: $files documents, $((files * 4)) chunks, $((files * 4)) vectors embedded in [0-9.]+ s\$" "$tmp/lines"
secs=$(jget "$tmp/r.json" .seconds)
check_eq "the table's total seconds is the wall time (the report's seconds)" \
  "$(printf '%.1f' "$secs")" "$(awk '$1 == "total" {print $NF}' "$tmp/lines")"
check "a phases line, adding up to the wall time" grep -qE \
  "^phases: scanning [0-9.]+ s, loading [0-9.]+ s, dedup [0-9.]+ s, deleting [0-9.]+ s, indexing [0-9.]+ s, finishing [0-9.]+ s, closing [0-9.]+ s; total $(printf '%.1f' "$secs") s \(wall\)$" "$tmp/lines"
check "the index rebuild has its own seconds (phases.indexing > 0), deleting 0 without --full" \
  python3 -c "import json,sys; p = json.load(open(sys.argv[1]))['phases']; sys.exit(not (p['indexing'] > 0 and p['deleting'] == 0))" "$tmp/r.json"

# -q on a terminal: nothing
echo "touched" >>"$(find "$tmp/corpus" -name "*.md" | head -1)"
tty_run "$tmp/screen.q" -q run tests/data/run/gen.yaml
check_eq "-q on a terminal prints nothing" "" "$(tr -d '\r\n' <"$tmp/screen.q")"
# off a terminal: no progress line; --full deleting 100 vanished files
find "$tmp/corpus" -name "*.md" | sort | tail -n 100 | xargs rm -f
kb "$db" run tests/data/run/gen.yaml --full --report "$tmp/r3.json"
check_rc "off a terminal the run succeeds" 0
check "  ... with no progress line (no \\r)" bash -c "! grep -q $'\r' '$tmp/err'"
check "  ... but its summary table" grep -q '^phases: ' "$tmp/err"
check_eq "  ... --full deleted the 100 vanished files" 100 "$(jget "$tmp/r3.json" .load.sources_deleted)"
check "  ... in seconds of their own (phases.deleting > 0); indexing 0 unless it rebuilt" \
  python3 -c "import json,sys; r = json.load(open(sys.argv[1])); p = r['phases']
sys.exit(not (p['deleting'] > 0 and (r['load']['index_rebuilt'] or p['indexing'] == 0)))" "$tmp/r3.json"
check "  ... the summary's phases line has the report's deleting seconds (to its 0.1 s)" \
  python3 -c "import sys; sys.exit(not abs(float(sys.argv[1]) - float(sys.argv[2] or -1)) <= 0.051)" \
  "$(jget "$tmp/r3.json" .phases.deleting)" "$(sed -nE 's/^phases: .*, deleting ([0-9.]+) s, .*/\1/p' "$tmp/err")"

# finishing with no index to rebuild polls nothing: a --full run (index
# strategy keep) whose deletion waits 3 s on a row lock another session
# holds, so the line redraws in the finishing phase
gone=$(find "$tmp/corpus" -name "*.md" | sort | tail -1)
sid=${gone#"$tmp/corpus/"}
rm "$gone"
psql -X -q -d "$db" -c "BEGIN" -c "SELECT 1 FROM knowledge_sources WHERE source_id = '$sid' FOR UPDATE" \
  -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null &
_bg+=($!)
for _ in $(seq 100); do   # until the lock is held
  [ "$(sql "$db" "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(3)'")" = 1 ] && break
  sleep 0.1
done
RUN_INDEX=keep tty_run "$tmp/screen.k" -v -v run tests/data/run/gen.yaml --full --report "$tmp/k.json"
wait
tr '\r' '\n' <"$tmp/screen.k" | sed 's/\x1b\[K//g' >"$tmp/lines.k"
check "a --full run held up in its deletions succeeds" test "$(jget "$tmp/k.json" .status)" = succeeded
check "  ... deleting the removed file" test "$(jget "$tmp/k.json" .load.sources_deleted)" = 1
check "  ... its line redraws while finishing (deleting)" grep -qE '^kbpipe: it-prog: deleting: ' "$tmp/lines.k"
check "  ... with no second connection: nothing is rebuilt" \
  bash -c "! grep -q 'polling the index build' '$tmp/lines.k'"
check_eq "  ... one connection in all" 1 "$(grep -c 'connected to' "$tmp/lines.k")"
finish
