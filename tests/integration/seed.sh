#!/usr/bin/env bash
# tests/integration/seed.sh - `kbpipe seed` against the local PostgreSQL:
# migrate up && seed && seed leaves exactly one copy; a second run changes
# nothing; --reset empties and reloads; two seeds at once still give one
# copy; bad seed files are refused with the file named and the database
# untouched; an injected fault before commit changes nothing.
# Run by tests/run.sh with KBPIPE_BIN (a test build: fault points on) and
# PG* exported; uses its own database kbpipe_seedtest.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
bin=${KBPIPE_BIN:-$top/bin/kbpipe}
export PGHOST=${PGHOST:-$(scripts/db.sh dir)} PGUSER=${PGUSER:-$(scripts/db.sh user)}
export PGOPTIONS="-c client_min_messages=warning"
db=kbpipe_seedtest
dsn="dbname=$db"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n_fail=0
ok()   { echo "ok - $*"; }
fail() { echo "not ok - $*"; n_fail=$((n_fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
sql()  { psql -X -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
# every seeded table, all columns, in a stable order: "changes nothing" is byte-exact
snapshot() {
  for t in projects port_ranges estimation_factors secret_templates epics issues tasks; do
    echo "== $t"; sql "COPY (SELECT * FROM $t ORDER BY id) TO STDOUT"
  done
}
counts() {
  sql "SELECT (SELECT count(*) FROM projects) || ' ' || (SELECT count(*) FROM port_ranges) || ' ' ||
              (SELECT count(*) FROM estimation_factors) || ' ' || (SELECT count(*) FROM secret_templates) || ' ' ||
              (SELECT count(*) FROM epics) || ' ' || (SELECT count(*) FROM issues) || ' ' ||
              (SELECT count(*) FROM tasks)"
}
# the number of objects in each seed file, in counts() order
expected=$(for f in projects port_ranges estimation_factors secret_templates epics issues tasks; do
             grep -c '^  {' "samples/seed/$f.json"; done | paste -sd' ')

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
"$bin" -q --db "$dsn" migrate up

# 1. migrate up && seed && seed: one copy
check "first seed succeeds" "$bin" -q --db "$dsn" seed
check "it loads every row of every file ($expected)" test "$(counts)" = "$expected"
snapshot >"$tmp/one"
check "second seed succeeds" "$bin" -q --db "$dsn" seed
check "still exactly one copy" test "$(counts)" = "$expected"
snapshot >"$tmp/two"
check "the second run changed nothing (ids, timestamps, values)" cmp -s "$tmp/one" "$tmp/two"
check "references resolve: every seeded task has its project, and its issue where it names one" \
  test "$(sql "SELECT count(*) FROM tasks WHERE issue_id IS NULL")" = \
       "$(grep -c '"issue_number": null' samples/seed/tasks.json || true)"
check "the four projects of the spec are there" \
  test "$(sql "SELECT string_agg(name, ',' ORDER BY name) FROM projects")" = "consilio,health-agent,odin,openhorizon"

# 2. local edits survive a seed; --reset restores
sql "UPDATE projects SET description = 'edited' WHERE name = 'odin'" >/dev/null
sql "INSERT INTO projects (name) VALUES ('scratch')" >/dev/null
"$bin" -q --db "$dsn" seed
check "seed leaves an edited row alone" test "$(sql "SELECT description FROM projects WHERE name = 'odin'")" = edited
check "--reset succeeds" "$bin" -q --db "$dsn" seed --reset
check "--reset empties and reloads: one copy, no extra project" test "$(counts)" = "$expected"
check "--reset restored the edited row" \
  test "$(sql "SELECT description FROM projects WHERE name = 'odin'")" != edited
check "--reset gave new rows (new ids)" \
  test -z "$(sql "SELECT id FROM projects WHERE id::text IN ($(sed -n '/== projects/,/== port_ranges/p' "$tmp/one" | grep -v '^==' | cut -f1 | sed "s/.*/'&'/" | paste -sd,))")"

# 3. two seeds at once on an empty database: still one copy
sql "DELETE FROM projects; DELETE FROM port_ranges; DELETE FROM estimation_factors; DELETE FROM secret_templates" >/dev/null
"$bin" -q --db "$dsn" seed & p1=$!
"$bin" -q --db "$dsn" seed & p2=$!
r1=0; r2=0; wait $p1 || r1=$?; wait $p2 || r2=$?
check "two concurrent seeds both succeed" test "$r1$r2" = 00
check "and leave exactly one copy" test "$(counts)" = "$expected"

# 4. bad seed data: refused, file named, nothing changed
snapshot >"$tmp/before"
bad() {   # name, file to break, its new content, expected stderr fragment
  local name=$1 file=$2 content=$3 want=$4
  rm -rf "$tmp/seed"; cp -r samples/seed "$tmp/seed"
  printf '%s' "$content" >"$tmp/seed/$file"
  local rc=0
  "$bin" --db "$dsn" seed --dir "$tmp/seed" 2>"$tmp/err" || rc=$?
  check "$name: exit status 1" test "$rc" = 1
  check "$name: the message names $file and says '$want'" \
    grep -q "$file.*$want" "$tmp/err"
  snapshot >"$tmp/after"
  check "$name: the database is unchanged" cmp -s "$tmp/before" "$tmp/after"
}
bad "invalid JSON" tasks.json '[{"project": "odin", "title": ]' 'invalid input syntax for type json'
bad "not an array" port_ranges.json '{"range_name": "x"}' 'non-array'
bad "duplicate key" epics.json '[{"project":"odin","epic_id":"E-9","title":"a"},{"project":"odin","epic_id":"E-9","title":"b"}]' 'epic odin/E-9 appears 2 times'
bad "unknown project" issues.json '[{"project":"nope","issue_number":1,"title":"t"}]' 'names project nope'
bad "unknown epic" tasks.json '[{"project":"odin","epic":"EPIC-404","title":"t"}]' 'names epic EPIC-404'
bad "a CHECK refuses a value" projects.json '[{"name":"newproj","status":"sleeping"}]' 'projects_status_check'
bad "missing required field" secret_templates.json '[{"template_name":"t"}]' 'secret_type'
bad "empty file" estimation_factors.json '' 'the file is empty'
bad "invalid UTF-8" projects.json $'[{"name":"\xff"}]' 'invalid UTF-8 at byte offset 10'
rm -rf "$tmp/seed"; mkdir "$tmp/seed"
rc=0; "$bin" --db "$dsn" seed --dir "$tmp/seed" 2>"$tmp/err" || rc=$?
check "a folder without seed files: exit 1, the path named" \
  sh -c "test $rc = 1 && grep -q '$tmp/seed/projects.json' '$tmp/err'"
rc=0; "$bin" --db "$dsn" seed --bogus 2>"$tmp/err" || rc=$?
check "an unknown option is a usage error (exit 2)" test "$rc" = 2

# 5. a fault before commit (test builds only) leaves the database as it was
if KBPIPE_FAULT=seed.commit "$bin" -q --db "$dsn" seed --reset 2>"$tmp/err"; then
  echo "ok - # SKIP fault points are off in $bin"
else
  snapshot >"$tmp/after"
  check "a failed --reset rolls back whole" cmp -s "$tmp/before" "$tmp/after"
fi

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db"
[ "$n_fail" = 0 ] || { echo "seed.sh: $n_fail check(s) failed" >&2; exit 1; }
echo "seed.sh: all checks passed"
