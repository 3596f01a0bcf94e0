#!/usr/bin/env bash
# tests/sql/run.sh - the SQL-level tests of the schema (migrations/), against
# the local PostgreSQL (scripts/db.sh).  Called by tests/run.sh; exits
# non-zero when anything fails and prints pg_prove's summary.
#
#   1. recreate the database kbpipe_sqltest (extensions in public);
#   2. migrations up, down to zero, up again: `pg_dump --schema-only` must be
#      identical, and down to zero must leave no object behind;
#   3. the same migrations up and down inside a private schema (search_path
#      = kb_private, public), as the integration tests apply them;
#   4. pg_prove over tests/sql/*.sql (pgTAP; dblink for the concurrency test).
#
# Migrations go through `kbpipe migrate` ($KBPIPE_BIN, else bin/kbpipe) when
# a binary is there, else through psql reading each file's sections.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
export PGHOST=${PGHOST:-$(scripts/db.sh dir)}
export PGUSER=${PGUSER:-$(scripts/db.sh user)}
export PGOPTIONS="-c client_min_messages=warning"
db=${KBPIPE_SQLTEST_DB:-kbpipe_sqltest}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
bin=${KBPIPE_BIN:-$top/bin/kbpipe}
[ -x "$bin" ] || bin=
fail() { echo "sql: $*" >&2; exit 1; }
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

section() {   # file up|down: print that section of a migration
  awk -v want="-- migrate:$2" '/^-- migrate:(up|down)/ { on = ($0 ~ "^" want) ; next } on' "$1"
}
psql_up() {   # [search_path]: apply every up section, one transaction each
  for f in migrations/[0-9][0-9][0-9]_*.sql; do
    section "$f" up | PGOPTIONS="$PGOPTIONS${1:+ -c search_path=$1}" q -d "$db" -1 -f - \
      || fail "$f: the up section failed"
  done
}
psql_down() {
  for f in $(ls -r migrations/[0-9][0-9][0-9]_*.sql); do
    section "$f" down | PGOPTIONS="$PGOPTIONS${1:+ -c search_path=$1}" q -d "$db" -1 -f - \
      || fail "$f: the down section failed"
  done
}
migrate_up() {
  if [ -n "$bin" ]; then "$bin" -q --db "dbname=$db" migrate up; else psql_up; fi
}
migrate_down_all() {
  if [ -n "$bin" ]; then
    "$bin" -q --db "dbname=$db" migrate down "$(ls migrations/[0-9][0-9][0-9]_*.sql | wc -l)"
  else psql_down; fi
}
dump() { pg_dump --schema-only --no-owner -d "$db" | grep -Ev '^(-- Dumped|\\(un)?restrict )' >"$1"; }

# 1. a fresh database
q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" 2>/dev/null
q -d "$db" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
SQL
echo "sql: migrating $db with ${bin:-psql (no kbpipe binary)}"

# 2. up, down to zero, up: the same schema
migrate_up
dump "$tmp/first.sql"
migrate_down_all
left=$(psql -X -At -d "$db" -c "
  SELECT string_agg(format('%s %s', c.relkind, c.relname), ', ')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'public' AND c.relkind <> 'c' AND c.relname NOT LIKE 'schema_migrations%'
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
  UNION ALL
  SELECT string_agg(p.proname, ', ') FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname = 'public'
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')")
[ -z "$(echo "$left" | tr -d '\n')" ] || fail "down to zero left objects behind: $left"
migrate_up
dump "$tmp/second.sql"
diff -u "$tmp/first.sql" "$tmp/second.sql" >"$tmp/dump.diff" \
  || { head -40 "$tmp/dump.diff" >&2; fail "up, down, up gives a different schema (diff above)"; }
echo "ok - up, down to zero, up: identical pg_dump --schema-only"

# 3. a private schema through search_path
q -d "$db" -c "DROP SCHEMA IF EXISTS kb_private CASCADE" -c "CREATE SCHEMA kb_private"
psql_up kb_private,public
n=$(psql -X -At -d "$db" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'kb_private'")
[ "$n" -ge 25 ] || fail "private schema: expected the tables in kb_private, found $n"
psql_down kb_private,public
n=$(psql -X -At -d "$db" -c "SELECT count(*) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
                             WHERE s.nspname = 'kb_private'")
[ "$n" = 0 ] || fail "private schema: down left $n relations in kb_private"
q -d "$db" -c "DROP SCHEMA kb_private"
echo "ok - up and down inside a private schema"

# 4. pgTAP
pg_prove -d "$db" --ext .sql tests/sql/
