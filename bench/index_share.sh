#!/usr/bin/env bash
# bench/index_share.sh - a bulk load of one project and the searches of
# another (issue 13, point 6): the other project's search latency during the
# load, and the load's time, when the load drops the table's HNSW index
# (index_strategy rebuild) and when it keeps it (what `auto` does while
# other projects hold more than 10,000 rows).
#   1. project `other`: OTHER_FILES (2500) generated files x 4 sections,
#      one chunk each (10,000 rows), indexed;
#   2. its search timed 30 times with the index, then without it (the
#      index dropped: what a search meets while a load has it dropped).
#      The search is the statement `kbpipe search --mode vector -k 10`
#      sends since 48bd249 (src/search/query.c, search_rank, chunks):
#      kbpipe_search_ranked('chunks', ...) in 'vector' mode joined with
#      knowledge_chunks and knowledge_sources, its SQL copied as it is, its
#      parameters $1-$7 as psql variables (a stored vector as the query, the
#      query text 'search', project other, k 10, no filters, the default
#      minimum similarity 0).  psql 15 has no \bind, so it substitutes them
#      as literals where kbpipe binds them (an unnamed statement, planned
#      with its values).  Figures taken before this change timed the SQL
#      wrapper search_hybrid_chunks instead (docs/loading.md).  Each line
#      says whether that search scanned the HNSW index
#      (pg_stat_get_xact_numscans of the index in the search's own
#      transaction);
#   3. project `bulk`: BULK_FILES (625) files x 4 sections (2,500 rows),
#      loaded with keep (into a copy of the database) and then with
#      rebuild, while a loop times the search of `other` every 0.2 s;
#   4. the alternative of issue 13 point 6, measured, not what the loader
#      does (ISHARE_PARTIAL=0 leaves it out): one partial HNSW index per
#      project (`... USING hnsw (...) WHERE project_id = '<id>'`) in place
#      of the table's one index, in a third copy of the database: the
#      build of `other`'s partial index (once, a migration's cost), its
#      search with only that index, then `bulk` loaded with keep (its rows
#      match no index's predicate, so none goes into an HNSW index: the
#      search of `other` keeps its index during the load) and the build of
#      `bulk`'s own partial index after it, with maintenance_work_mem 1GB
#      as kbpipe's rebuild.  Load cost = the load + that build.
# Prints medians and 95th percentiles and the wall time of each load and
# build; asserts nothing.
#   KBPIPE_BIN=bin/kbpipe bash bench/index_share.sh
#   OTHER_FILES=2500 BULK_FILES=125 KBPIPE_BIN=bin/kbpipe bash bench/index_share.sh
#   OTHER_FILES=100 BULK_FILES=25 ...   a quick check that it runs
set -euo pipefail
. "$(dirname "$0")/lib.sh"   # top (cd'd into), bin, the PG* variables, helpers
other_files=${OTHER_FILES:-2500}
bulk_files=${BULK_FILES:-625}
tmp=$(mktemp -d /tmp/kbpipe-ishare.XXXXXX)
loop=
cleanup() {
  [ -z "$loop" ] || kill "$loop" 2>/dev/null || true
  for d in kb_ishare kb_ishare_keep kb_ishare_part; do
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
G=tests/data/run/gen.yaml
sql() { psql -X -At -d "$1" -c "$2"; }
# the statement of `kbpipe search --mode vector -k 10` (src/search/query.c,
# search_rank, chunks), copied with $1-$7 as the psql variables q (a stored
# vector), qt (the query text), p (the project of other), k, mode, f (the
# filters: none) and minsim (vector mode's default threshold, 0)
setq="SELECT embedding::text AS q, (SELECT id FROM projects WHERE name = 'other') AS p
      FROM knowledge_chunks ORDER BY id LIMIT 1 \\gset
\\set qt search
\\set k 10
\\set mode vector
\\set f '{}'
\\set minsim 0"
query="SELECT c.id, CASE WHEN :'mode' = 'vector' THEN f.similarity
        ELSE f.score END, s.title, coalesce(s.file_path, s.source_id),
       c.metadata->>'heading_path', c.content, c.chunk_index, s.source_type,
       s.source_id, s.id, s.url,
       f.score, f.similarity, f.text_rank, f.vector_position, f.text_position,
       s.file_path, NULL
       FROM kbpipe_search_ranked('chunks', :'q'::vector, :'qt', :'p'::uuid, :'k'::int,
                                 :'mode', :'f'::jsonb, true, 60, NULL) f
       JOIN knowledge_chunks c ON c.id = f.id
       JOIN knowledge_sources s ON s.id = c.source_id
       WHERE :'minsim'::float8 IS NULL OR f.similarity >= :'minsim'::float8
       ORDER BY f.ord;"
# search DB N: time N searches of project other; one "ms" per line
search() {
  { echo "$setq"
    echo '\timing on'
    for _ in $(seq 1 "$2"); do echo "$query"; done
  } | psql -X -q -d "$1" -o /dev/null 2>/dev/null | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}
# plan DB: did that search scan the HNSW index? (its scans counted in the
# search's own transaction)
plan() {
  local n
  n=$({ echo "$setq"; echo "BEGIN;"; echo "$query" | sed 's/;$/ \\g \/dev\/null/'
        echo "SELECT coalesce(sum(pg_stat_get_xact_numscans(c.oid)), 0) FROM pg_class c
              JOIN pg_am am ON am.oid = c.relam WHERE am.amname = 'hnsw';"
        echo "COMMIT;"; } | psql -X -At -q -d "$1" 2>/dev/null | tail -n 1)
  [ "${n:-0}" -gt 0 ] && echo "HNSW index scan" || echo "no HNSW index scan: scan and sort"
}
# stats: "median p95 n" of the numbers on stdin
stats() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) {print "- - 0"; exit}
  m = a[int((NR + 1) / 2)]; p = a[int(NR * 0.95 + 0.999)]; if (p == "") p = a[NR];
  printf "%.1f %.1f %d\n", m, p, NR}'; }
# load_bulk DB STRATEGY: load project bulk while timing other's searches
load_bulk() {
  ( while :; do search "$1" 1; sleep 0.2; done ) >"$tmp/lat.$2" &
  loop=$!
  local t0; t0=$(date +%s%N)
  RUN_DOCS=$tmp/bulk RUN_PIPELINE=bulk RUN_PROJECT=bulk RUN_INDEX=$2 RUN_BATCH_ROWS=1000 \
    "$bin" -q --db "dbname=$1" run "$G"
  echo $(( ($(date +%s%N) - t0) / 1000000 )) >"$tmp/ms.$2"
  kill "$loop"; wait "$loop" 2>/dev/null || true; loop=
}

python3 bench/gen_corpus.py "$tmp/other" --files "$other_files" --sections 4 --seed 3 >/dev/null
python3 bench/gen_corpus.py "$tmp/bulk" --files "$bulk_files" --sections 4 --seed 5 >/dev/null
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS kb_ishare WITH (FORCE)" -c "CREATE DATABASE kb_ishare"
"$bin" -q --db dbname=kb_ishare migrate up
RUN_DOCS=$tmp/other RUN_PIPELINE=other RUN_PROJECT=other RUN_BATCH_ROWS=1000 \
  "$bin" -q --db dbname=kb_ishare run "$G"
sql kb_ishare "VACUUM ANALYZE knowledge_chunks" >/dev/null
psql -X -q -d postgres -c "CREATE DATABASE kb_ishare_keep TEMPLATE kb_ishare"
[ "${ISHARE_PARTIAL:-1}" = 0 ] || psql -X -q -d postgres -c "CREATE DATABASE kb_ishare_part TEMPLATE kb_ishare"
echo "definitions: a load's time is the kbpipe run process's wall time (start to exit, an index rebuild included); a search's time is psql's \\timing of the statement \`kbpipe search --mode vector -k 10\` sends for project other (kbpipe_search_ranked joined with the rows, src/search/query.c search_rank); medians and 95th percentiles over the searches taken every 0.2 s during the load, or over 30 in a row"
echo "reproduce: OTHER_FILES=$other_files BULK_FILES=$bulk_files KBPIPE_BIN=$bin bash bench/index_share.sh"
echo "other: $(sql kb_ishare "SELECT count(*) FROM knowledge_chunks") rows"
read -r m p n < <(search kb_ishare 30 | stats)
echo "search of other, HNSW index present ($(plan kb_ishare)): median $m ms, p95 $p ms ($n searches)"
load_bulk kb_ishare_keep keep
read -r m p n < <(stats <"$tmp/lat.keep")
echo "bulk load of $((bulk_files * 4)) rows keeping the index: $(cat "$tmp/ms.keep") ms; search of other meanwhile: median $m ms, p95 $p ms ($n searches)"
if [ "${ISHARE_PARTIAL:-1}" != 0 ]; then
  # timed_sql DB SQL: wall ms of one statement
  timed_sql() { local t0; t0=$(date +%s%N); sql "$1" "SET maintenance_work_mem = '1GB'; $2" >/dev/null
                echo $(( ($(date +%s%N) - t0) / 1000000 )); }
  def=$(sql kb_ishare_part "SELECT indexdef FROM pg_indexes WHERE tablename = 'knowledge_chunks' AND indexdef LIKE '%hnsw%'")
  pid=$(sql kb_ishare_part "SELECT id FROM projects WHERE name = 'other'")
  sql kb_ishare_part "DROP INDEX idx_knowledge_chunks_embedding" >/dev/null
  ms=$(timed_sql kb_ishare_part "${def/idx_knowledge_chunks_embedding/idx_kc_embedding_other} WHERE project_id = '$pid'")
  echo "partial indexes: building other's own HNSW index ($(sql kb_ishare_part "SELECT count(*) FROM knowledge_chunks WHERE project_id = '$pid'") rows, once): $ms ms"
  read -r m p n < <(search kb_ishare_part 30 | stats)
  echo "partial indexes: search of other, its partial index present ($(plan kb_ishare_part)): median $m ms, p95 $p ms ($n searches)"
  load_bulk kb_ishare_part keep
  read -r m p n < <(stats <"$tmp/lat.keep")
  bid=$(sql kb_ishare_part "SELECT id FROM projects WHERE name = 'bulk'")
  ms=$(timed_sql kb_ishare_part "${def/idx_knowledge_chunks_embedding/idx_kc_embedding_bulk} WHERE project_id = '$bid'")
  echo "partial indexes: bulk load of $((bulk_files * 4)) rows (keep: no HNSW index takes its rows): $(cat "$tmp/ms.keep") ms, then bulk's own index built: $ms ms = $(( $(cat "$tmp/ms.keep") + ms )) ms; search of other meanwhile (its index kept): median $m ms, p95 $p ms ($n searches)"
  psql -X -q -d postgres -c "DROP DATABASE kb_ishare_part WITH (FORCE)"
fi
load_bulk kb_ishare rebuild
read -r m p n < <(stats <"$tmp/lat.rebuild")
echo "bulk load of $((bulk_files * 4)) rows dropping the index (rebuild): $(cat "$tmp/ms.rebuild") ms; search of other meanwhile: median $m ms, p95 $p ms ($n searches)"
idx=$(sql kb_ishare "SELECT indexdef FROM pg_indexes WHERE tablename = 'knowledge_chunks' AND indexdef LIKE '%hnsw%'")
sql kb_ishare "DROP INDEX idx_knowledge_chunks_embedding" >/dev/null
read -r m p n < <(search kb_ishare 30 | stats)
echo "search of other, no HNSW index ($(plan kb_ishare)) ($(sql kb_ishare "SELECT count(*) FROM knowledge_chunks") rows in the table): median $m ms, p95 $p ms ($n searches)"
sql kb_ishare "$idx" >/dev/null
