#!/usr/bin/env bash
# bench/search/quality_variants.sh - ranking ideas scored on both labelled
# sets (bench/search/questions.tsv, the tuning set; heldout.tsv, the held-out
# set), docs/search.md "Ranking ideas measured on both sets".  Each is a
# variant of kbpipe_search_ranked as migration 017 left it, written
# in bench/search/quality_variants.sql, run on databases of its own
# (kbpipe_bench_qv_ov32, _ov0, _ov96: the corpus loaded at 512 and 128
# tokens a chunk with the chunk overlap 32 of corpus.yaml, and 0 and 96),
# dropped at exit.  The query vectors are those `kbpipe search` logs for
# each question, so the vector leg is kbpipe's.
# One line a variant: per set (T tuning, H held-out) and chunk size, the
# recall@1 / MRR@5 of the vector (v), text (t) and hybrid (h) modes.  The
# first line ("as migrated": 017) gave bench/search.sh (a)'s tables before
# migration 018, which took the common-word cut ("OR form without words in
# > 20%") into kbpipe; docs/search.md has both.
# Not run by `make bench` (about a minute, one core):
#   KBPIPE_BIN=bin/kbpipe bash bench/search/quality_variants.sh
set -euo pipefail
. "$(dirname "$0")/../lib.sh"   # top (cd'd into), bin, the PG* variables
tmp=$(mktemp -d)
dbs=()
cleanup() {
  for d in "${dbs[@]}"; do psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

# setup OVERLAP: a database with the corpus at both sizes, the questions
# and their vectors, the variants' functions, the vector leg
setup() {
  local d=kbpipe_bench_qv_ov$1
  dbs+=("$d")
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" -c "CREATE DATABASE $d" >/dev/null
  "$bin" -q --db "dbname=$d" migrate up
  sed "s/^  overlap: 32$/  overlap: $1/" bench/search/corpus.yaml >"$tmp/corpus-$1.yaml"
  grep -q "^  overlap: $1$" "$tmp/corpus-$1.yaml"
  for chunk in 512 128; do
    BENCH_CHUNK=$chunk BENCH_PROJECT=bench-$chunk "$bin" -q --db "dbname=$d" run "$tmp/corpus-$1.yaml"
  done
  q "$d" "CREATE TABLE q1_q (set text, line int, question text, expected text[], vec vector(1536),
                             PRIMARY KEY (set, line))"
  if [ "$1" = 32 ]; then
    local set n line text expected
    for set in questions heldout; do
      n=0
      while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        case $line in '#'* | '') continue ;; esac
        text=${line%%$'\t'*} expected=${line#*$'\t'}
        # the vector kbpipe embeds the question into, as its search logs it
        "$bin" --db "dbname=$d" search --project bench-512 --mode vector -k 1 "$text" >/dev/null
        psql -X -q -v ON_ERROR_STOP=1 -d "$d" -v s="$set" -v l="$n" -v q="$text" -v e="$expected" <<'SQL'
INSERT INTO q1_q SELECT :'s', :'l'::int, :'q', string_to_array(:'e', E'\t'),
       (SELECT query_embedding FROM search_queries WHERE query_text = :'q'
           AND query_embedding IS NOT NULL ORDER BY created_at DESC LIMIT 1);
SQL
      done <"bench/search/$set.tsv"
    done
    [ "$(q "$d" "SELECT count(*) FROM q1_q WHERE vec IS NULL")" = 0 ]
  else
    psql -X -q -d kbpipe_bench_qv_ov32 -c "\\copy q1_q TO '$tmp/q1_q.copy'"
    psql -X -q -d "$d" -c "\\copy q1_q FROM '$tmp/q1_q.copy'"
  fi
  psql -X -q -v ON_ERROR_STOP=1 -d "$d" -f bench/search/quality_variants.sql >/dev/null
}
# run DB LABEL TEXT_LEG_CALL K WV WT AGG: the text leg, then its line
run() {
  local variant
  variant=$(sed "s/^[^']*'\([^']*\)'.*/\1/" <<<"$3")   # the call's first argument
  q "$1" "SELECT $3" >/dev/null
  q "$1" "SELECT q1_line('$2', '$variant', $4, $5, $6, '$7')"
}

setup 32
d=kbpipe_bench_qv_ov32
echo "ranking ideas, kbpipe-hash-v1, k = 5 (files; recall@1/MRR@5; v vector, t text, h hybrid);"
echo "T = tuning set (questions.tsv, 48), H = held-out set (heldout.tsv, 60); 512/128 tokens a chunk"
echo "chunk overlap 32 (corpus.yaml):"
run $d "as migrated (k 60)"        "q1_text_leg('base', 'none', 2, 'stored')" 60 1 1 chunk
run $d "RRF k 1"                   "q1_text_leg('base', 'none', 2, 'stored')" 1 1 1 chunk
run $d "RRF k 10"                  "q1_text_leg('base', 'none', 2, 'stored')" 10 1 1 chunk
run $d "RRF k 100"                 "q1_text_leg('base', 'none', 2, 'stored')" 100 1 1 chunk
run $d "text weight 0.5"           "q1_text_leg('base', 'none', 2, 'stored')" 60 1 0.5 chunk
run $d "vector weight 0.5"         "q1_text_leg('base', 'none', 2, 'stored')" 60 0.5 1 chunk
run $d "files fused (k 60)"        "q1_text_leg('base', 'none', 2, 'stored')" 60 1 1 filerrf
run $d "files fused (k 1)"         "q1_text_leg('base', 'none', 2, 'stored')" 1 1 1 filerrf
run $d "files: chunk scores summed" "q1_text_leg('base', 'none', 2, 'stored')" 60 1 1 filesum
run $d "--word is no negation"     "q1_text_leg('dd', 'dd', 2, 'stored')" 60 1 1 chunk
run $d "ts_rank_cd norm 0"         "q1_text_leg('n0', 'none', 0, 'stored')" 60 1 1 chunk
run $d "ts_rank_cd norm 1"         "q1_text_leg('n1', 'none', 1, 'stored')" 60 1 1 chunk
run $d "ts_rank_cd norm 4"         "q1_text_leg('n4', 'none', 4, 'stored')" 60 1 1 chunk
run $d "ts_rank_cd norm 8"         "q1_text_leg('n8', 'none', 8, 'stored')" 60 1 1 chunk
run $d "ts_rank_cd norm 2|4"       "q1_text_leg('n6', 'none', 6, 'stored')" 60 1 1 chunk
run $d "+ source title (A)"        "q1_text_leg('title', 'none', 2, 'title')" 60 1 1 chunk
run $d "+ title and path (A)"      "q1_text_leg('titlepath', 'none', 2, 'titlepath')" 60 1 1 chunk
run $d "weights B 0.2 (A 1.0)"     "q1_text_leg('ahigh', 'none', 2, 'ahigh')" 60 1 1 chunk
run $d "weights A 0.4 (B 0.4)"     "q1_text_leg('aeq', 'none', 2, 'aeq')" 60 1 1 chunk
run $d "OR form: df <= 10%"        "q1_text_leg_idf('idf10', 0.10)" 60 1 1 chunk
run $d "OR form: df <= 20%"        "q1_text_leg_idf('idf20', 0.20)" 60 1 1 chunk
run $d "OR form: df <= 35%"        "q1_text_leg_idf('idf35', 0.35)" 60 1 1 chunk
run $d "df <= 20%, norm 0"         "q1_text_leg_idf('idf20n0', 0.20, 'none', 0)" 60 1 1 chunk
run $d "df <= 20%, norm 1"         "q1_text_leg_idf('idf20n1', 0.20, 'none', 1)" 60 1 1 chunk
run $d "df <= 20%, files fused k 1" "q1_text_leg_idf('idf20', 0.20)" 1 1 1 filerrf
echo
echo "share of the project's chunks holding a word (ts_stat; chunk overlap 32):"
psql -X -q -v ON_ERROR_STOP=1 -d $d -c "SELECT project, word, ndoc, n, round(ndoc::numeric / n, 2) AS share
  FROM q1_df WHERE word IN ('pip', 'pyenv', 'python', 'instal', 'version', 'keyr') ORDER BY 1 DESC, 5 DESC"
echo "why hybrid misses (chunk overlap 32, k 60): questions whose file hybrid does not rank first,"
echo "by what the legs did (a leg right = it ranks the file first); last column: hybrid right, both legs wrong"
for variant in base idf20; do
  echo "text leg $variant:"
  psql -X -q -v ON_ERROR_STOP=1 -d $d -c "SELECT * FROM q1_why('$variant')"
done
for ov in 0 96; do
  setup $ov
  echo "chunk overlap $ov:"
  run kbpipe_bench_qv_ov$ov "as migrated (k 60)"  "q1_text_leg('base', 'none', 2, 'stored')" 60 1 1 chunk
  run kbpipe_bench_qv_ov$ov "OR form: df <= 20%"  "q1_text_leg_idf('idf20', 0.20)" 60 1 1 chunk
done
