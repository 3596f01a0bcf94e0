#!/usr/bin/env bash
# tests/integration/migrate_log.sh - what `kbpipe migrate up/down` and
# `kbpipe seed` say on stderr (docs/operations.md, "Migrations" and
# "Seed data"), against the local PostgreSQL:
#   * migrate up: "Applying: F" then "Applied: F in Nms" for every file, in
#     order; nothing on stdout; a second up says there is nothing to apply;
#   * migrate down: "Rolling back: F" / "Rolled back: F in Nms" for the last;
#   * seed: one "seed: TABLE: N added" line per table, N the objects of its
#     file, then the total; a second seed: "nothing to add";
#   * -q silences all of it.
. "$(dirname "$0")/lib.sh"

db="kbpipe_it_mlog_$$"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
dsn="dbname=$db"

kb "$db" migrate up
check_rc "migrate up" 0
check_eq "  ... prints nothing on stdout" "" "$(cat "$tmp/out")"
want=$(for f in migrations/*.sql; do
         b=$(basename "$f"); printf 'kbpipe: Applying: %s\nkbpipe: Applied: %s in Nms\n' "$b" "$b"
       done)
check_eq "  ... says Applying/Applied with the time of every migration, in order" "$want" \
  "$(sed -E 's/ in [0-9]+ms$/ in Nms/' "$tmp/err")"
n=$(ls migrations/*.sql | wc -l)
kb "$db" migrate up
check_eq "a second migrate up has nothing to apply" \
  "kbpipe: migrate: nothing to apply, all $n migrations in migrations are applied" "$(cat "$tmp/err")"

last=$(basename "$(ls migrations/*.sql | tail -n 1)")
kb "$db" migrate down
check_rc "migrate down" 0
check_eq "  ... says Rolling back/Rolled back for the last migration" \
  "$(printf 'kbpipe: Rolling back: %s\nkbpipe: Rolled back: %s in Nms' "$last" "$last")" \
  "$(sed -E 's/ in [0-9]+ms$/ in Nms/' "$tmp/err")"
kb "$db" -q migrate up
check_rc "-q migrate up" 0
check_eq "  ... prints nothing at all" "" "$(cat "$tmp/out" "$tmp/err")"
check_eq "  ... and applied it" "$n" "$(sql "$db" "SELECT count(*) FROM schema_migrations")"

kb "$db" seed
check_rc "seed" 0
check_eq "  ... prints nothing on stdout" "" "$(cat "$tmp/out")"
want=$(for f in projects:projects port_ranges:"port ranges" estimation_factors:"estimation factors" \
                secret_templates:"secret templates" epics:epics issues:issues tasks:tasks; do
         k=$(grep -c '^  {' "samples/seed/${f%%:*}.json")
         echo "kbpipe: seed: ${f#*:}: $k added"
       done)
total=0
for f in samples/seed/*.json; do total=$((total + $(grep -c '^  {' "$f"))); done
check_eq "  ... says what it added to each table, then the total" \
  "$(printf '%s\nkbpipe: seed: %s rows added from samples/seed' "$want" "$total")" "$(cat "$tmp/err")"
kb "$db" seed
check_eq "a second seed has nothing to add" \
  "kbpipe: seed: nothing to add, the seed data from samples/seed is already there" "$(cat "$tmp/err")"
kb "$db" -q seed --reset
check_rc "-q seed --reset" 0
check_eq "  ... prints nothing at all" "" "$(cat "$tmp/out" "$tmp/err")"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
finish
