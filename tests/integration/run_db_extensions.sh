#!/usr/bin/env bash
# tests/integration/run_db_extensions.sh - the extensions kbpipe's schema
# needs, against scratch databases (issue 13 point 8):
#   1. pgvector dropped (DROP EXTENSION vector CASCADE) from a loaded
#      database: `migrate verify`, `run`, `search` (of a project that
#      exists and of one that does not), `eval` and `stats` exit 1 naming
#      the extension and the CREATE EXTENSION to run - not an interrupted
#      load, not `column "embedding" does not exist`, not "no project named"
#   2. the extension back, the columns still gone: verify names the column
#   3. `migrate up` as a role that may not create extensions: the message
#      names the role, the extension and the privilege, never "fix the
#      file"; nothing is applied; after a superuser's CREATE EXTENSION the
#      same command succeeds
#   4. a run opening several connections checks the extensions once
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_db_extensions.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

export RUN_DOCS=$top/tests/data/run/docs RUN_REJECTS=$tmp/rejects.jsonl
P=tests/data/run/e2e.yaml

echo "# 1. pgvector dropped"
db=$(new_db ext)
kb "$db" -q run "$P"
check_rc "a first run loads" 0
sql "$db" "DROP EXTENSION vector CASCADE" >/dev/null
printf 'which ports are free?\tdocs/*\n' >"$tmp/questions.tsv"
# search and eval check the extensions only once they fail
# (db_session_diagnose): the ranking's function went with pgvector, and an
# unknown project fails too; either way the extension is what is named
for cmd in "migrate verify" "run $P" "search --project it-run ports" \
           "search --project no-such-project ports" "eval $tmp/questions.tsv --project it-run" \
           "stats"; do
  # shellcheck disable=SC2086
  kb "$db" $cmd
  check_rc "$cmd: exit 1" 1
  check "$cmd: names the extension" grep -q 'extension "vector" (pgvector' "$tmp/err"
  check "$cmd: says what to run" grep -q 'CREATE EXTENSION "vector"; in "'"$db"'"' "$tmp/err"
  check "$cmd: no column error, no interrupted load" \
    sh -c "! grep -q -e 'does not exist' -e 'interrupted' '$tmp/err'"
  check_eq "$cmd: one line" 1 "$(wc -l <"$tmp/err")"
done

echo "# 2. the extension back, the columns not"
sql "$db" "CREATE EXTENSION vector" >/dev/null
kb "$db" migrate verify
check_rc "migrate verify: exit 1" 1
check "... names the missing embedding column and how to add it" \
  grep -q "has no embedding column: it was dropped with the vector extension.*ADD COLUMN embedding vector(1536)" "$tmp/err"
check "... does not blame a load" sh -c "! grep -q interrupted '$tmp/err' '$tmp/out'"

echo "# 3. a role that may not create extensions"
role=kbpipe_it_noext_$$
pdb=kbpipe_it_priv_$$
_extra_cleanup="psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS $pdb WITH (FORCE)' -c 'DROP ROLE IF EXISTS $role' >/dev/null 2>&1"
psql -X -q -d postgres -c "CREATE ROLE $role LOGIN" -c "CREATE DATABASE $pdb" >/dev/null
sql "$pdb" "GRANT CREATE ON SCHEMA public TO $role" >/dev/null
as_role() { rc=0; "$bin" --db "dbname=$pdb user=$role" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?; }
as_role migrate up
check_rc "migrate up without CREATE on the database: exit 1" 1
check "... names the role and the extension" \
  grep -q "role \"$role\" may not create extension \"uuid-ossp\"" "$tmp/err"
check "... says who runs CREATE EXTENSION and what to grant" \
  grep -q "ask a superuser to run CREATE EXTENSION \"uuid-ossp\"; in database \"$pdb\".*GRANT CREATE ON DATABASE" "$tmp/err"
check "... never 'fix the file'" sh -c "! grep -q 'fix the file' '$tmp/err'"
check_eq "... nothing applied" 0 "$(sql "$pdb" "SELECT count(*) FROM pg_tables WHERE tablename = 'projects'")"

sql "$pdb" "GRANT CREATE ON DATABASE $pdb TO $role" >/dev/null
as_role migrate up
check_rc "with CREATE on the database, the untrusted vector is still refused: exit 1" 1
check "... naming vector" grep -q "may not create extension \"vector\" (pgvector" "$tmp/err"

sql "$pdb" "CREATE EXTENSION vector" >/dev/null
as_role migrate up
check_rc "after a superuser's CREATE EXTENSION vector, migrate up succeeds" 0
check_eq "... and the schema is there" 1 "$(sql "$pdb" "SELECT count(*) FROM pg_tables WHERE tablename = 'projects'")"

echo "# 4. the check costs its round trips once per process and database"
one=$(new_db extonce)
kb "$one" -v -v run "$P"
check_rc "a run with debug output exits 0" 0
check "... opens more than one connection" test "$(grep -c 'connected to' "$tmp/err")" -ge 2
check_eq "... and checks the extensions once" 1 "$(grep -c 'checking the extensions' "$tmp/err")"

finish
