#!/usr/bin/env bash
# tests/integration/run_conc_index.sh - two pipelines running at once while
# one of them drops and rebuilds the HNSW index of knowledge_chunks (issue 7:
# runs of different pipelines go concurrently; index strategy auto).
#   pipeline x1: index_strategy auto with rebuild_min_rows 100 and
#     rebuild_ratio 0.2: it drops the index at its first batch and rebuilds
#     it at its end;
#   pipeline x2: index_strategy keep, writing while the index is there,
#     dropped or being rebuilt.
# Both must exit 0, each must end in exactly the state of its clean run
# alone, and the index must exist, be valid and carry no drop note after.
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_conc_index.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

G=tests/data/run/gen.yaml
gen "$tmp/x1" --files 300 --sections 4 --seed 91
gen "$tmp/x2" --files 300 --sections 4 --seed 92
x1() { RUN_DOCS=$tmp/x1 RUN_PIPELINE=it-x1 RUN_PROJECT=it-x1 RUN_INDEX=auto RUN_REBUILD_MIN=100 \
       RUN_REBUILD_RATIO=0.2 "$@"; }
x2() { RUN_DOCS=$tmp/x2 RUN_PIPELINE=it-x2 RUN_PROJECT=it-x2 RUN_INDEX=keep "$@"; }

# the clean runs, each alone into an empty database
ref1=$(new_db ref1); ref2=$(new_db ref2)
x1 kb "$ref1" run "$G" -q; check_rc "x1 alone exits 0" 0
x2 kb "$ref2" run "$G" -q; check_rc "x2 alone exits 0" 0
state "$ref1" it-x1 >"$tmp/ref1"; state "$ref2" it-x2 >"$tmp/ref2"

for round in 1 2; do
  echo "# round $round: $( [ $round = 1 ] && echo 'into an empty database' || echo 'every chunk replaced')"
  [ "$round" = 1 ] && conc=$(new_db conc)
  if [ "$round" = 2 ]; then
    gen "$tmp/x1" --files 300 --sections 4 --seed 91 --rev B
    gen "$tmp/x2" --files 300 --sections 4 --seed 92 --rev B
    x1 kb "$ref1" run "$G" -q; x2 kb "$ref2" run "$G" -q
    state "$ref1" it-x1 >"$tmp/ref1"; state "$ref2" it-x2 >"$tmp/ref2"
  fi
  x2 bg "$conc" "$tmp/b" run "$G" -q --report "$tmp/b.json"; p2=$bg_pid
  x1 bg "$conc" "$tmp/a" run "$G" -q --report "$tmp/a.json"; p1=$bg_pid
  bg_wait $p1; r1=$rc; bg_wait $p2; r2=$rc
  check_eq "both pipelines exit 0" "0 0" "$r1 $r2"
  [ "$r1$r2" = 00 ] || sed 's/^/#   /' "$tmp/a.err" "$tmp/b.err" | head -n 20
  check_eq "x1 dropped the HNSW index and it was rebuilt" true "$(jget "$tmp/a.json" .load.index_rebuilt)"
  check_eq "the two runs overlapped in time" t \
    "$(sql "$conc" "SELECT a.started_at < b.finished_at AND b.started_at < a.finished_at
                    FROM (SELECT * FROM kbpipe_runs WHERE pipeline = 'it-x1' ORDER BY id DESC LIMIT 1) a,
                         (SELECT * FROM kbpipe_runs WHERE pipeline = 'it-x2' ORDER BY id DESC LIMIT 1) b")"
  state "$conc" it-x1 >"$tmp/c1"; state "$conc" it-x2 >"$tmp/c2"
  check_same "x1 holds exactly what its clean run holds" "$tmp/ref1" "$tmp/c1"
  check_same "x2 holds exactly what its clean run holds" "$tmp/ref2" "$tmp/c2"
  check "the HNSW index exists and is valid" hnsw_present "$conc"
  check_eq "no drop note is left" 0 "$(sql "$conc" "SELECT count(*) FROM kbpipe_dropped_indexes")"
  check_eq "the index covers every row (an index scan finds each chunk as its own nearest)" 0 \
    "$(sql "$conc" "SET enable_seqscan = off; SET hnsw.ef_search = 100;
                    SELECT count(*) FROM (SELECT c.id, (SELECT n.id FROM knowledge_chunks n
                      ORDER BY n.embedding <=> c.embedding LIMIT 1) AS nn
                      FROM (SELECT * FROM knowledge_chunks ORDER BY id LIMIT 50) c) x
                    WHERE nn IS DISTINCT FROM id" | tail -n 1)"
done

finish
