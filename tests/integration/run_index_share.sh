#!/usr/bin/env bash
# tests/integration/run_index_share.sh - `index_strategy: auto` and the rows
# of other projects (docs/loading.md, "The index and other projects"): auto
# drops the table's HNSW index for a load only while other projects hold at
# most keep_for_other_rows (10,000, src/load/session.c) rows of
# knowledge_chunks; past that it keeps the index and loads into it.
#   project it-other: N rows inserted by SQL (one source, one constant unit
#     vector: pgvector keeps identical vectors as one graph element, so the
#     inserts and the rebuild stay cheap);
#   project it-bulk: 100 generated chunks loaded by `kbpipe run -v` with auto,
#     rebuild_min_rows 10 and rebuild_ratio 0.001, so that without other
#     projects auto would drop the index (100 >= 10 and > 0.001 x the table).
#   10,000 other rows: the index is dropped, then rebuilt (a new index);
#   10,001 other rows: the index is kept: the same index (its oid) before,
#     during (polled while the run writes) and after the run, and the -v
#     log says "keeping the HNSW index and the full-text index".
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_index_share.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

G=tests/data/run/gen.yaml
# not_grep PATTERN FILE: PATTERN is nowhere in FILE
not_grep() { ! grep -q "$1" "$2"; }
gen "$tmp/bulk" --files 25 --sections 4 --seed 31
bulk() { RUN_DOCS=$tmp/bulk RUN_PIPELINE=it-bulk RUN_PROJECT=it-bulk RUN_INDEX=auto \
         RUN_REBUILD_MIN=10 RUN_REBUILD_RATIO=0.001 RUN_BATCH_ROWS=20 "$@"; }

# other_rows DB N: project it-other holds exactly N chunks, all of one unit vector
other_rows() {
  sql "$1" "
    INSERT INTO projects (name) VALUES ('it-other') ON CONFLICT (name) DO NOTHING;
    INSERT INTO knowledge_sources (project_id, source_type, source_id)
      SELECT id, 'file', 'other.md' FROM projects WHERE name = 'it-other'
      ON CONFLICT DO NOTHING;
    DELETE FROM knowledge_chunks WHERE project_id = (SELECT id FROM projects WHERE name = 'it-other');
    INSERT INTO knowledge_chunks (source_id, project_id, chunk_index, content, content_hash, embedding)
      SELECT s.id, s.project_id, i, 'other ' || i, encode(sha256(('other ' || i)::bytea), 'hex'),
             ('[1' || repeat(',0', 1535) || ']')::vector
        FROM knowledge_sources s, generate_series(0, $2 - 1) i WHERE s.source_id = 'other.md'" >/dev/null
}
# hnsw_oid DB: the oid of the HNSW index of knowledge_chunks ("" when there is none)
hnsw_oid() {
  sql "$1" "SELECT c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_am am ON am.oid = c.relam
            WHERE i.indrelid = 'knowledge_chunks'::regclass AND am.amname = 'hnsw'"
}
# watch DB OUT: the index's oid ("none" when it is gone) every 50 ms, one per line,
# until $tmp/stop exists
watch() {
  rm -f "$tmp/stop"
  while [ ! -f "$tmp/stop" ]; do
    echo "$(hnsw_oid "$1") $(sql "$1" "SELECT count(*) FROM knowledge_chunks k
                                         JOIN projects p ON p.id = k.project_id
                                        WHERE p.name = 'it-bulk'")"
    sleep 0.05
  done >"$2"
}

db=$(new_db share)

echo "# 10,000 rows of other projects: auto drops the index and rebuilds it"
other_rows "$db" 10000
check_eq "it-other holds 10,000 rows" 10000 "$(sql "$db" "SELECT count(*) FROM knowledge_chunks")"
before=$(hnsw_oid "$db") gin_before=$(gin_oid "$db")
check "the HNSW index is there before the run" test -n "$before"
check "the full-text index is there before the run" test -n "$gin_before"
bulk kb "$db" run "$G" -v --report "$tmp/drop.json"
check_rc "the run exits 0" 0
check "the -v log says the index was dropped" grep -q "dropped HNSW index" "$tmp/err"
check "the -v log says the full-text index was dropped" \
  grep -q "dropped full-text index idx_knowledge_chunks_search_tsv" "$tmp/err"
check "the -v log does not say it was kept" not_grep "keeping the HNSW index" "$tmp/err"
check_eq "the report says the index was rebuilt" true "$(jget "$tmp/drop.json" .load.index_rebuilt)"
check_eq "it-bulk holds its 100 chunks" 100 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks k JOIN projects p ON p.id = k.project_id
                WHERE p.name = 'it-bulk'")"
after=$(hnsw_oid "$db")
check "the HNSW index exists and is valid after the run" hnsw_present "$db"
check "it is a new index (dropped and rebuilt), not the one before" test "$after" != "$before"
check "the full-text index exists and is valid after the run" gin_present "$db"
check "it is a new full-text index (dropped and rebuilt)" test "$(gin_oid "$db")" != "$gin_before"
check_eq "no drop note is left" 0 "$(sql "$db" "SELECT count(*) FROM kbpipe_dropped_indexes")"

echo "# 10,001 rows of other projects: auto keeps the index"
sql "$db" "DELETE FROM projects WHERE name = 'it-bulk'" >/dev/null
other_rows "$db" 10001
check_eq "it-other holds 10,001 rows, nothing else is stored" 10001 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks")"
before=$(hnsw_oid "$db") gin_before=$(gin_oid "$db")
watch "$db" "$tmp/watch" &
watcher=$!
_bg+=("$watcher")
bulk kb "$db" run "$G" -v --report "$tmp/keep.json"
check_rc "the run exits 0" 0
touch "$tmp/stop"; wait "$watcher"
check "the -v log says the index is kept" \
  grep -q "keeping the HNSW index and the full-text index for the load: other projects hold 10001 rows" "$tmp/err"
check "the -v log does not say it was dropped" not_grep "dropped HNSW index" "$tmp/err"
check "the -v log does not say the full-text index was dropped" not_grep "dropped full-text index" "$tmp/err"
check_eq "the report says no index was rebuilt" false "$(jget "$tmp/keep.json" .load.index_rebuilt)"
check_eq "it-bulk holds its 100 chunks" 100 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks k JOIN projects p ON p.id = k.project_id
                WHERE p.name = 'it-bulk'")"
check_eq "the same index before and after the run" "$before" "$(hnsw_oid "$db")"
# a fast run may commit its 100 rows between two samples: what the samples
# must show is that the watcher ran while the run had not ended (the oid
# equal before and after already rules out a drop and a rebuild)
check "the watcher sampled while the run had not written all its rows" \
  awk '$2 < 100 { f = 1 } END { exit !f }' "$tmp/watch"
check_eq "every sample during the run saw that same index" "$before" \
  "$(cut -d' ' -f1 "$tmp/watch" | sort -u | tr '\n' ' ' | sed 's/ $//')"
check "the HNSW index is valid after the run" hnsw_present "$db"
check_eq "the same full-text index before and after the run" "$gin_before" "$(gin_oid "$db")"
check "the full-text index is valid after the run" gin_present "$db"
check_eq "no drop note is left" 0 "$(sql "$db" "SELECT count(*) FROM kbpipe_dropped_indexes")"

finish
