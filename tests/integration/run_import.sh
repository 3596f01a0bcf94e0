#!/usr/bin/env bash
# tests/integration/run_import.sh - `kbpipe run` with the import provider:
#   1. vectors from a JSON Lines file (made here from a hash run's rows) are
#      stored as given, under the pipeline's model name
#   2. a chunk missing from the file rejects its whole document: exit 3, a
#      reject line naming the chunk, the document not stored at all (no
#      half-loaded source), every other document stored
#   3. with the vector added, the next run loads that document and writes
#      nothing else
#   4. max_errors counts the embedder's rejects too: two documents without
#      vectors and max_errors 1 stop the run (exit 1, the message naming the
#      source), the run recorded as failed, neither document stored
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_import.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

P=tests/data/run/import.yaml
cp -r tests/data/run/docs "$tmp/docs"
export RUN_DOCS=$tmp/docs RUN_VECTORS=$tmp/vectors.jsonl RUN_REJECTS=$tmp/rejects.jsonl

echo "# 1. vectors from a file"
# the vectors: the hash embedder's, for the same chunks (e2e.yaml chunks alike)
src=$(new_db import_src)
RUN_PROJECT=it-import RUN_PIPELINE=it-import-src RUN_LEARNINGS=tests/data/run/learnings.csv \
  kb "$src" run tests/data/run/e2e.yaml -q
check_rc "the source run exits 0" 0
sql "$src" "SELECT json_build_object('content_hash', content_hash, 'embedding', embedding::text::json)
            FROM knowledge_chunks ORDER BY content_hash" >"$tmp/all.jsonl"
n_vectors=$(wc -l <"$tmp/all.jsonl")
cp "$tmp/all.jsonl" "$RUN_VECTORS"
db=$(new_db import)
kb "$db" run "$P" -q --report "$tmp/r1.json"
check_rc "import run exits 0" 0
check_eq "every chunk stored" "$n_vectors" "$(sql "$db" "SELECT count(*) FROM knowledge_chunks")"
check_eq "report: every vector imported, none computed" "$n_vectors 0" \
  "$(jget "$tmp/r1.json" '[([.sources[].vectors_imported] | add), ([.sources[].vectors_computed] | add)] | join(" ")')"
check_eq "vectors as in the file (to float rounding of the normalization), model as in the pipeline" 0 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks c WHERE c.metadata->>'embedding_model' <> 'imported-test'
                OR c.embedding <-> (SELECT (v->>'embedding')::vector FROM json_array_elements(
                   '[$(paste -sd, "$RUN_VECTORS")]'::json) v WHERE v->>'content_hash' = c.content_hash) > 1e-6")"

echo "# 2. a chunk missing from the file"
db2=$(new_db import_missing)
missing=$(sql "$src" "SELECT c.content_hash FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
                      WHERE s.source_id = 'guide/ports.md' AND c.chunk_index = 1")
grep -v "$missing" "$tmp/all.jsonl" >"$RUN_VECTORS"
kb "$db2" run "$P" -q --report "$tmp/r2.json"
check_rc "exit 3: finished with a rejected input" 3
check "the reject file names the document's chunk" grep -q 'guide/ports.md' "$RUN_REJECTS"
check_eq "the document is not stored at all: no source, no chunk" "0 0" \
  "$(sql "$db2" "SELECT (SELECT count(*) FROM knowledge_sources WHERE source_id = 'guide/ports.md') || ' ' ||
                        (SELECT count(*) FROM knowledge_chunks WHERE content LIKE '%allocate_port%')")"
n_ports=$(sql "$src" "SELECT count(*) FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
                      WHERE s.source_id = 'guide/ports.md'")
check_eq "every other document is stored" "$((n_vectors - n_ports))" \
  "$(sql "$db2" "SELECT count(*) FROM knowledge_chunks")"
check_eq "report: rejected 1" 1 "$(jget "$tmp/r2.json" '[.sources[].rejected] | add')"

echo "# 3. the vector added: the next run loads that document only"
cp "$tmp/all.jsonl" "$RUN_VECTORS"
rows "$db2" | grep -v ports >"$tmp/others.before" || true
kb "$db2" run "$P" -q --report "$tmp/r3.json"
check_rc "the re-run exits 0" 0
check_eq "the document is stored now" "$n_ports" \
  "$(sql "$db2" "SELECT count(*) FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
                 WHERE s.source_id = 'guide/ports.md'")"
check_eq "report: one new source, the rest unchanged" "1 $(( $(jget "$tmp/r3.json" .load.sources_seen) - 1 ))" \
  "$(jget "$tmp/r3.json" '[.load.sources_new, .load.sources_unchanged] | join(" ")')"

echo "# 4. max_errors counts the documents the embedder rejects"
db4=$(new_db import_max_errors)
missing2=$(sql "$src" "SELECT c.content_hash FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
                       WHERE s.source_id = 'guide/setup.md' AND c.chunk_index = 0")
grep -v -e "$missing" -e "$missing2" "$tmp/all.jsonl" >"$RUN_VECTORS"
RUN_MAX_ERRORS=1 kb "$db4" run "$P" --report "$tmp/r4.json"
check_rc "two rejects past max_errors 1: exit 1" 1
check "the message names the source and the limit" grep -q 'docs: more than max_errors (1) inputs rejected' "$tmp/err"
check_eq "the run is recorded as failed" failed "$(sql "$db4" "SELECT status FROM kbpipe_runs")"
check_eq "neither document is stored" 0 \
  "$(sql "$db4" "SELECT count(*) FROM knowledge_sources WHERE source_id IN ('guide/ports.md', 'guide/setup.md')")"
RUN_MAX_ERRORS=2 kb "$db4" run "$P" -q
check_rc "with max_errors 2 the same run finishes with exit 3" 3

finish
