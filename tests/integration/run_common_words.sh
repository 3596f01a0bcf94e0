#!/usr/bin/env bash
# tests/integration/run_common_words.sh - the project's common words
# (migration 018, kbpipe_common_lexemes: what search's OR form leaves out;
# docs/search.md, "Common words") kept by the commands that change rows:
#   1. a run that loads the project computes both lists (chunks, learnings)
#      from all its rows (fewer than the sample)
#   2. an unchanged run leaves them as they are (no statement for them)
#   3. an edited file: the next run recomputes them
#   4. `kbpipe delete --source`: recomputed from the rows left
#   5. on a schema without migration 018 a run that writes warns, names the
#      migration, exits 0 and stores its rows
#   6. a refresh that fails (the function made to raise): delete still
#      exits 0 and prints what it deleted, and warns that the list was not
#      recomputed
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_common_words.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

cp -r tests/data/run/docs "$tmp/docs"
export RUN_DOCS=$tmp/docs RUN_REJECTS=$tmp/rejects.jsonl
P=tests/data/run/e2e.yaml
db=$(new_db words)
list() {   # TARGET: "sample_rows lexemes refreshed_at" of project it-run
  sql "$db" "SELECT c.sample_rows || ' ' || cardinality(c.lexemes) || ' ' || c.refreshed_at
               FROM kbpipe_common_lexemes c JOIN projects p ON p.id = c.project_id
              WHERE p.name = 'it-run' AND c.target = '$1'"
}
rows_of() { sql "$db" "SELECT count(*) FROM $1 r JOIN projects p ON p.id = r.project_id WHERE p.name = 'it-run'"; }

echo "# 1. a run that loads the project"
kb "$db" -q run "$P"
check_rc "the run loads" 0
n_chunks=$(rows_of knowledge_chunks)
n_learnings=$(rows_of learnings)
chunks1=$(list chunks)
learn1=$(list learnings)
check_eq "chunks: the list read every chunk ($n_chunks)" "$n_chunks" "${chunks1%% *}"
check_eq "learnings: the list read every learning ($n_learnings)" "$n_learnings" "${learn1%% *}"
check_eq "the chunks' list is what the server computes from them" \
  "$(sql "$db" "SELECT array_agg(word ORDER BY word) FROM ts_stat('SELECT search_tsv FROM knowledge_chunks')
                 WHERE ndoc > 0.2 * $n_chunks")" \
  "$(sql "$db" "SELECT lexemes FROM kbpipe_common_lexemes WHERE target = 'chunks'")"
check "  ... and it holds some words" [ "$(echo "$chunks1" | cut -d' ' -f2)" -gt 0 ]

echo "# 2. an unchanged run"
kb "$db" -q run "$P"
check_rc "the unchanged run exits 0" 0
check_eq "chunks: the list is untouched" "$chunks1" "$(list chunks)"
check_eq "learnings: the list is untouched" "$learn1" "$(list learnings)"

echo "# 3. an edited file"
f=$(find "$tmp/docs" -name '*.md' | sort | head -1)
printf '\n## Added\n\nA new section about zeppelins and their moorings.\n' >>"$f"
kb "$db" -q run "$P"
check_rc "the run after the edit exits 0" 0
chunks3=$(list chunks)
check "chunks: the list was recomputed" [ "$chunks3" != "$chunks1" ]
check_eq "  ... from the rows there are now" "$(rows_of knowledge_chunks)" "${chunks3%% *}"

echo "# 4. kbpipe delete --source"
src=$(sql "$db" "SELECT s.source_id FROM knowledge_sources s JOIN knowledge_chunks c ON c.source_id = s.id
                  GROUP BY s.source_id ORDER BY count(*) DESC, s.source_id LIMIT 1")
kb "$db" delete --project it-run --source "$src" --yes
check_rc "delete exits 0" 0
chunks4=$(list chunks)
check_eq "chunks: recomputed from the rows left" "$(rows_of knowledge_chunks)" "${chunks4%% *}"
check "  ... fewer than before" [ "${chunks4%% *}" -lt "${chunks3%% *}" ]

echo "# 5. a schema without migration 018"
db2=$(new_db words_old)
"$bin" -q --db "dbname=$db2" migrate down 1 >/dev/null 2>&1
check_eq "migration 018 is rolled back" "" \
  "$(sql "$db2" "SELECT to_regclass('kbpipe_common_lexemes')")"
kb "$db2" run "$P"
check_rc "a run that writes still exits 0" 0
check "  ... and says migration 018 is missing" grep -q "migration 018" "$tmp/err"
check "  ... and what to run" grep -q "kbpipe migrate up" "$tmp/err"
check_eq "  ... its chunks are stored" "${chunks3%% *}" \
  "$(sql "$db2" "SELECT count(*) FROM knowledge_chunks")"

echo "# 6. a refresh that fails"
sql "$db" "CREATE OR REPLACE FUNCTION kbpipe_refresh_common_lexemes(p_project_id uuid, p_target text,
             p_max_share real DEFAULT 0.2, p_sample integer DEFAULT 2000) RETURNS integer LANGUAGE plpgsql
             AS \$\$ BEGIN RAISE EXCEPTION 'refresh made to fail'; END \$\$" >/dev/null
before=$(list chunks)
src=$(sql "$db" "SELECT min(source_id) FROM knowledge_sources")
kb "$db" delete --project it-run --source "$src" --yes
check_rc "delete still exits 0" 0
check "  ... prints what it deleted" grep -q "^deleted 1 source" "$tmp/out"
check "  ... warns that the common words were not recomputed" grep -q "common words were not recomputed" "$tmp/err"
check_eq "  ... the source is gone" 0 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE source_id = '$src'")"
check_eq "  ... the list is as it was" "$before" "$(list chunks)"
finish
