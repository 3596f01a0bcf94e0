#!/usr/bin/env bash
# tests/integration/run_export.sh - `kbpipe embed export PIPELINE.yaml`, the
# Batch API workflow of a pipeline with the import provider:
#   1. an empty output file: one request per chunk, each content hash once
#      (a copied file's chunks are not asked twice), custom_id = the chunk's
#      content hash, model = embedding.model; nothing written to the database
#   2. a partial output file: exactly the chunks it lacks (also on stdout)
#   3. a run with the partial file rejects the documents it cannot complete;
#      the export then still asks for exactly those chunks; with the batch's
#      output added (made by tests/data/run/batch_output.py) the run loads
#      everything, the stored chunks are exactly the first export's, and a
#      second export writes nothing
#   4. another project over the same text with an empty file: every vector is
#      stored under (content_hash, model), nothing to request
#   5. one edited paragraph: one request, for the new text
#   6. a pipeline that cannot be exported (provider hash) exits 2 and leaves
#      an existing request file as it was
#   7. the form is chosen by the arguments, never by a file name: a pipeline
#      named pipeline.conf, or given with --pipeline, exports as the .yaml
#      does; a chunks file named chunks.yaml with --model is the file form;
#      no file at all, or two, is a usage error (exit 2) naming both forms
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_export.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

P=tests/data/run/export.yaml
cp -r tests/data/run/docs "$tmp/docs"
cp "$tmp/docs/guide/ports.md" "$tmp/docs/guide/ports-copy.md"   # the same chunks twice
export RUN_DOCS=$tmp/docs RUN_VECTORS=$tmp/output.jsonl RUN_REJECTS=$tmp/rejects.jsonl
ids() { jq -r .custom_id "$@" | LC_ALL=C sort; }
lines() { wc -l <"$1" | tr -d ' '; }

echo "# 1. an empty output file: every chunk, each content hash once"
: >"$RUN_VECTORS"
db=$(new_db export)
kb "$db" embed export "$P" -o "$tmp/req1.jsonl"
check_rc "export exits 0" 0
n1=$(lines "$tmp/req1.jsonl")
check "requests were written" test "$n1" -gt 4
check_eq "each content hash once" "$n1" "$(ids "$tmp/req1.jsonl" | uniq | wc -l | tr -d ' ')"
check_eq "POST /v1/embeddings, the pipeline's model, 1536 dimensions, a SHA-256 custom_id" 0 \
  "$(jq -c 'select(.method != "POST" or .url != "/v1/embeddings" or .body.model != "text-embedding-3-small"
                   or .body.dimensions != 1536 or (.custom_id | test("^[0-9a-f]{64}$") | not))' \
        "$tmp/req1.jsonl" | wc -l | tr -d ' ')"
check_eq "nothing written to the database" 0 "$(sql "$db" "SELECT count(*) FROM knowledge_sources")"

echo "# 2. a partial output file: exactly the chunks it lacks"
check "the fake Batch API accepts every request (custom_id = SHA-256 of the input)" \
  sh -c "python3 tests/data/run/batch_output.py '$tmp/req1.jsonl' >'$tmp/all.jsonl'"
head -n 3 "$tmp/all.jsonl" >"$RUN_VECTORS"
kb "$db" embed export "$P" -o "$tmp/req2.jsonl"
check_rc "export exits 0" 0
comm -23 <(ids "$tmp/req1.jsonl") <(ids "$RUN_VECTORS") >"$tmp/want2"
ids "$tmp/req2.jsonl" >"$tmp/got2"
check_same "the requests are the first export's minus the 3 in the file" "$tmp/want2" "$tmp/got2"
kb "$db" -q embed export "$P"
check_rc "export to stdout exits 0" 0
check_same "without -o the same lines go to stdout" "$tmp/req2.jsonl" "$tmp/out"

echo "# 3. run with the partial file, add the batch's output, run, export again"
kb "$db" run "$P" -q
check_rc "a run with chunks missing from the file exits 3" 3
kb "$db" embed export "$P" -o "$tmp/req3.jsonl"
check_rc "export exits 0" 0
ids "$tmp/req3.jsonl" >"$tmp/got3"
check_same "still exactly the missing chunks (stored documents' chunks are not asked)" "$tmp/want2" "$tmp/got3"
python3 tests/data/run/batch_output.py "$tmp/req3.jsonl" >>"$RUN_VECTORS"
kb "$db" run "$P" -q --report "$tmp/r3.json"
check_rc "the run with the batch's output exits 0" 0
sql "$db" "SELECT DISTINCT content_hash FROM knowledge_chunks" | LC_ALL=C sort >"$tmp/stored"
ids "$tmp/req1.jsonl" >"$tmp/want1"
check_same "the stored chunks are exactly the ones the first export asked for" "$tmp/want1" "$tmp/stored"
# (the output lines hold no backslash or tab: COPY's text format reads them as they are)
check_eq "every stored vector is the batch's (to float rounding), under the pipeline's model" 0 \
  "$(psql -X -At -v ON_ERROR_STOP=1 -d "$db" <<SQL | tail -n 1
CREATE TEMP TABLE batch_output (line json);
\\copy batch_output FROM '$RUN_VECTORS'
SELECT count(*) FROM knowledge_chunks c
 WHERE c.metadata->>'embedding_model' IS DISTINCT FROM 'text-embedding-3-small'
    OR coalesce(c.embedding <-> (SELECT (line->'response'->'body'->'data'->0->>'embedding')::vector
                                   FROM batch_output WHERE line->>'custom_id' = c.content_hash),
                1) > 1e-5;   -- no line for the chunk counts as a mismatch
SQL
)"
kb "$db" embed export "$P" -o "$tmp/req4.jsonl"
check_rc "the second export exits 0" 0
check_eq "... and writes nothing" 0 "$(lines "$tmp/req4.jsonl")"

echo "# 4. another project over the same text: vectors reused by (content_hash, model)"
: >"$tmp/empty.jsonl"
RUN_VECTORS=$tmp/empty.jsonl RUN_PROJECT=it-export-2 RUN_PIPELINE=it-export-2 \
  kb "$db" embed export "$P" -o "$tmp/req5.jsonl"
check_rc "export exits 0" 0
check_eq "nothing to request" 0 "$(lines "$tmp/req5.jsonl")"

echo "# 5. one edited paragraph: one request"
sed -i 's/instead of locking the whole range/instead of locking the entire range/' "$tmp/docs/guide/ports.md"
kb "$db" embed export "$P" -o "$tmp/req6.jsonl"
check_rc "export exits 0" 0
check_eq "one request" 1 "$(lines "$tmp/req6.jsonl")"
check "... for the edited text" grep -q 'locking the entire range' "$tmp/req6.jsonl"

echo "# 6. a pipeline that cannot be exported"
echo old >"$tmp/keep.jsonl"
kb "$db" embed export tests/data/run/e2e.yaml -o "$tmp/keep.jsonl"
check_rc "provider hash: exit 2" 2
check "... saying what to set" grep -q 'provider import' "$tmp/err"
check_eq "... and the request file is as it was" old "$(cat "$tmp/keep.jsonl")"
check_eq "... no temporary file left" 0 "$(find "$tmp" -name 'keep.jsonl.tmp.*' | wc -l | tr -d ' ')"

echo "# 7. the route is the arguments, not the file name"
db7=$(new_db export7)
: >"$tmp/empty.jsonl"
export RUN_VECTORS=$tmp/empty.jsonl
kb "$db7" embed export "$P" -o "$tmp/req7.jsonl"
check_rc "the .yaml form exits 0" 0
check "... and asks for something" test -s "$tmp/req7.jsonl"
cp "$P" "$tmp/pipeline.conf"
kb "$db7" embed export "$tmp/pipeline.conf" -o "$tmp/req7conf.jsonl"
check_rc "a pipeline named pipeline.conf exits 0" 0
check_same "... with the same requests" "$tmp/req7.jsonl" "$tmp/req7conf.jsonl"
kb "$db7" embed export -o "$tmp/req7opt.jsonl" --pipeline "$tmp/pipeline.conf"
check_rc "--pipeline FILE exits 0" 0
check_same "... with the same requests" "$tmp/req7.jsonl" "$tmp/req7opt.jsonl"
t='Restart the API server after the upgrade.'
h=$(printf %s "$t" | sha256sum | cut -d' ' -f1)
printf '{"content_hash":"%s","text":"%s"}\n' "$h" "$t" >"$tmp/chunks.yaml"
kb "$db7" embed export --model m-1 -o "$tmp/req7file.jsonl" "$tmp/chunks.yaml"
check_rc "chunks.yaml with --model is the file form: exit 0" 0
check_eq "... one request for that chunk, model m-1" "$h m-1" \
  "$(jq -r '"\(.custom_id) \(.body.model)"' "$tmp/req7file.jsonl")"
kb "$db7" embed export --model=m-1 -o "$tmp/req7file2.jsonl" "$tmp/chunks.yaml"
check_rc "--model=M too" 0
check_same "... the same request" "$tmp/req7file.jsonl" "$tmp/req7file2.jsonl"
kb "$db7" embed export
check_rc "no file: usage error" 2
check "... naming both forms" grep -q 'pipeline file.*--model' "$tmp/err"
kb "$db7" embed export --pipeline "$P" "$P"
check_rc "a pipeline given twice: usage error" 2
check_eq "nothing written to the database" 0 "$(sql "$db7" "SELECT count(*) FROM knowledge_sources")"

finish
