#!/usr/bin/env bash
# tests/integration/run_search_config.sh - a load writes each chunk and
# learning with its project's text search configuration
# (projects.search_language, migration 008), so 008's AFTER INSERT
# statement trigger has nothing to fix and no row is written twice:
#   1. into a project whose language is 'simple': knowledge_chunks and
#      learnings show no update and no dead tuple afterwards
#      (pg_stat_user_tables, read once the run's sessions have ended), every
#      row carries 'simple', and a text search finds a word english drops
#      as a stopword;
#   2. an english project (the default) the same: no update.
#   KBPIPE_BIN=build/kbpipe-test bash tests/integration/run_search_config.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

mkdir -p "$tmp/docs"
printf '# Ports\n\nThe port lies between the hills.\n\n## More\n\nA second part.\n' >"$tmp/docs/a.md"
printf '# Beta\n\nThe beta page.\n' >"$tmp/docs/b.md"
one_learning_csv "$tmp/l.csv"
pipe() {   # pipe PROJECT
  { hash_pipeline "p-$1" "$1"; echo "sources:"; files_source pages "$tmp/docs"
    learnings_source notes "$tmp/l.csv"; } >"$tmp/$1.yaml"
}
upd() { table_stat "$db" "$1" "n_tup_upd || ' ' || n_dead_tup"; }

echo "# 1. a project in 'simple'"
db=$(new_db searchcfg)
sql "$db" "INSERT INTO projects (name, search_language) VALUES ('sc', 'simple')" >/dev/null
pipe sc
kb "$db" run "$tmp/sc.yaml"
check_rc "the run loads" 0
check "... chunks" test "$(sql "$db" "SELECT count(*) FROM knowledge_chunks")" -ge 2
check_eq "... and the learning" 1 "$(sql "$db" "SELECT count(*) FROM learnings")"
check_eq "knowledge_chunks: no row updated, no dead tuple (updates, dead)" "0 0" \
  "$(upd knowledge_chunks)"
check_eq "learnings: no row updated, no dead tuple" "0 0" "$(upd learnings)"
check_eq "every chunk and learning carries 'simple'" "0 0" \
  "$(sql "$db" "SELECT (SELECT count(*) FROM knowledge_chunks WHERE search_config <> 'simple'::regconfig)
                || ' ' || (SELECT count(*) FROM learnings WHERE search_config <> 'simple'::regconfig)")"
kb "$db" search --project sc --mode text between
check_rc "a text search for an english stopword" 0
check "... finds the chunk that holds it (simple keeps stopwords)" grep -q "a.md" "$tmp/out"

echo "# 2. an english project"
sql "$db" "INSERT INTO projects (name) VALUES ('en')" >/dev/null
pipe en
kb "$db" run "$tmp/en.yaml"
check_rc "the run loads" 0
check_eq "knowledge_chunks: still no row updated" "0 0" "$(upd knowledge_chunks)"
check_eq "every chunk of en carries 'english'" 0 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks c JOIN projects p ON p.id = c.project_id
                WHERE p.name = 'en' AND c.search_config <> 'english'::regconfig")"

finish
