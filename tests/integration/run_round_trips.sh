#!/usr/bin/env bash
# tests/integration/run_round_trips.sh - the statements (round trips) the
# fixed-cost commands make, counted in the server's log, so that a change
# that adds one is seen (docs/loading.md, "What kbpipe controls" (4), and
# docs/search.md, "Cost"):
#   1. an unchanged re-run of a one-file pipeline: 7 statements, from the
#      first (the connection's setup: client_min_messages and the extension
#      check, with the lock, the column widths and the project) to the
#      unlock, and none of them an explicit BEGIN or COMMIT (the run row
#      commits in its INSERT); 8 until the setup's own simple query (SET
#      and the check) was folded into the first statement
#   2. `kbpipe search` (hybrid, no --use): 3 statements (the project
#      lookup, which carries the connection's setup; the ranking; the log
#      row), no BEGIN/COMMIT; 4 until the setup was folded into the lookup
#   3. `kbpipe search --learnings --use`: its counts still commit with the
#      log row in one transaction (BEGIN ... COMMIT), and are counted
# Each statement is one line "duration: ... (statement|execute <unnamed>):"
# with log_min_duration_statement = 0, set on this test's database only.
#   KBPIPE_BIN=build/debug/kbpipe-test bash tests/integration/run_round_trips.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

log=$(scripts/db.sh dir)/server.log
[ -r "$log" ] || { echo "run_round_trips.sh: the server log $log cannot be read" >&2; exit 1; }

mkdir -p "$tmp/docs"
printf '# Tiny\n\nA short paragraph of the tiny pipeline, about round trips.\n' >"$tmp/docs/a.md"
touch -d '1 hour ago' "$tmp/docs/a.md"   # an old file: its stat is trusted
cat >"$tmp/tiny.yaml" <<EOF
name: it-trips
project: it-trips
embedding: { provider: hash }
sources:
  - { name: docs, type: files, roots: ["$tmp/docs"] }
EOF
db=$(new_db trips)
kb "$db" run "$tmp/tiny.yaml" -q
check_rc "the first run exits 0" 0
kb "$db" run "$tmp/tiny.yaml" -q   # records the file's stat as trusted
check_rc "the second run exits 0" 0
sql "$db" "ALTER DATABASE $db SET log_min_duration_statement = 0" >/dev/null

# logged COMMAND...: run kbpipe on $db; $tmp/stmts gets the statements the
# server logged meanwhile, one a line (text after "statement: "/"execute ...: ")
logged() {
  local from
  from=$(($(wc -c <"$log") + 1))
  kb "$db" "$@"   # sets rc; stdout in $tmp/out
  sleep 0.2   # the log is written by the server process: let its last lines land
  tail -c +"$from" "$log" | grep -E 'duration: [0-9.]+ ms +(statement|execute [^:]*):' |
    sed -E 's/.*duration: [0-9.]+ ms +(statement|execute [^:]*): //' >"$tmp/stmts"
}
count() { wc -l <"$tmp/stmts" | tr -d ' '; }

echo "# 1. an unchanged re-run"
logged run "$tmp/tiny.yaml" -q
check_rc "the unchanged re-run exits 0" 0
check_eq "it makes 7 statements" 7 "$(count)"
[ "$(count)" = 7 ] || sed 's/^/#   /' "$tmp/stmts" | cut -c1-120
check_eq "none is BEGIN or COMMIT" 0 "$(grep -cE '^(BEGIN|COMMIT)' "$tmp/stmts")"
check_eq "no SET of its own: the first statement sets client_min_messages" "0 1" \
  "$(grep -c '^SET' "$tmp/stmts") $(head -1 "$tmp/stmts" | grep -c "set_config('client_min_messages'")"
check_eq "the run is recorded as unchanged and succeeded" "succeeded 1" \
  "$(sql "$db" "SELECT status, counts->>'sources_unchanged' FROM kbpipe_runs
                ORDER BY id DESC LIMIT 1" | tr '|' ' ')"

echo "# 2. kbpipe search"
logged search --project it-trips -k 3 "round trips"
check_rc "the search exits 0" 0
check "it prints the file" grep -q 'a.md' "$tmp/out"
check_eq "it makes 3 statements" 3 "$(count)"
[ "$(count)" = 3 ] || sed 's/^/#   /' "$tmp/stmts" | cut -c1-120
check_eq "none is BEGIN or COMMIT" 0 "$(grep -cE '^(BEGIN|COMMIT)' "$tmp/stmts")"
check_eq "no SET of its own: the first statement sets client_min_messages" "0 1" \
  "$(grep -c '^SET' "$tmp/stmts") $(head -1 "$tmp/stmts" | grep -c "set_config('client_min_messages'")"
check_eq "the query is logged" 1 \
  "$(sql "$db" "SELECT count(*) FROM search_queries WHERE query_text = 'round trips'")"

echo "# 3. search --learnings --use keeps its transaction"
sql "$db" "INSERT INTO learnings (project_id, learning_type, title, content)
           SELECT p.id, 'pattern', 'Round trips', 'Merge round trips into one statement.'
             FROM projects p WHERE p.name = 'it-trips'" >/dev/null
logged search --project it-trips --learnings --use --mode text "round trips"
check_rc "the search of learnings exits 0" 0
check_eq "it opens and commits one transaction" "1 1" \
  "$(grep -c '^BEGIN' "$tmp/stmts") $(grep -c '^COMMIT' "$tmp/stmts")"
check_eq "the use is counted" 1 \
  "$(sql "$db" "SELECT usage_count FROM learnings WHERE title = 'Round trips'")"
finish
