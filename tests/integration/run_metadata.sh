#!/usr/bin/env bash
# tests/integration/run_metadata.sh - the metadata a run stores (src/pipeline/
# run_document.c, built with jansson), docs/loading.md "Metadata":
#   1. a learning's metadata is the reader's object (CSV metadata columns)
#      with content_hash, embedding_model and source_id merged in; those three
#      win over reader columns of the same name; quotes, backslashes, tabs,
#      newlines and non-ASCII text survive byte for byte, in values and keys
#   2. a chunk's metadata: chunker, embedding_model and heading_path, the
#      heading path's quotes and backslashes kept
#   3. a second run over the same input changes nothing (the metadata is
#      deterministic, so the document hashes match)
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_metadata.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

mkdir -p "$tmp/docs"
# id 'q"1\' ; a reader column named content_hash (the run's value must win);
# note: quotes, a backslash, a tab, a newline and an e-acute
printf '%s\n' 'id,title,content,content_hash,note,"odd ""key"" \"' \
  '"q""1\",A title,"The body of the learning.",reader-value,"say ""hi"" \ tab	x' \
  'second line é",k' >"$tmp/learn.csv"
printf '%s\n' '# Guide "one" \ back' '' 'Some text under the heading.' >"$tmp/docs/a.md"
cat >"$tmp/meta.yaml" <<EOF
name: meta
project: meta-test
chunking: {splitter: markdown, size: 64, overlap: 0}
sources:
  - name: learn
    type: csv
    path: $tmp/learn.csv
    target: learnings
    key: id
    columns: {title: title, content: content, metadata: [content_hash, note, 'odd "key" \\']}
  - name: docs
    type: files
    roots: [$tmp/docs]
dedup: {enabled: false}
EOF

db=$(new_db meta)
kb "$db" run "$tmp/meta.yaml" -q
check_rc "the run exits 0" 0

echo "# 1. a learning: the reader's object plus the run's keys"
want_note=$(printf 'say "hi" \\ tab\tx\nsecond line é')
check_eq "source_id kept: q\"1\\" 'q"1\' "$(sql "$db" "SELECT metadata->>'source_id' FROM learnings")"
check_eq "the note column byte for byte" "$want_note" \
  "$(sql "$db" "SELECT metadata->>'note' FROM learnings")"
check_eq "a key with quotes and a backslash" "k" \
  "$(sql "$db" "SELECT metadata->>E'odd \"key\" \\\\' FROM learnings")"
check_eq "embedding_model is the run's" "kbpipe-hash-v1" \
  "$(sql "$db" "SELECT metadata->>'embedding_model' FROM learnings")"
check_eq "content_hash is the run's (the SHA-256 of title + text), not the reader's column" \
  "$(printf 'A title\n\nThe body of the learning.' | sha256sum | cut -d' ' -f1)" \
  "$(sql "$db" "SELECT metadata->>'content_hash' FROM learnings")"
check_eq "the stored object has exactly these keys" \
  "content_hash,embedding_model,note,odd \"key\" \\,source_id" \
  "$(sql "$db" "SELECT string_agg(k, ',' ORDER BY k) FROM learnings, jsonb_object_keys(metadata) k")"

echo "# 2. a chunk: chunker, model, heading path"
check_eq "the heading path keeps quotes and backslashes" 'Guide "one" \ back' \
  "$(sql "$db" "SELECT metadata->>'heading_path' FROM knowledge_chunks
               WHERE content LIKE '%under the heading%'")"
check_eq "chunk metadata keys" "chunker,embedding_model,heading_path" \
  "$(sql "$db" "SELECT string_agg(DISTINCT k, ',' ORDER BY k) FROM knowledge_chunks,
               jsonb_object_keys(metadata) k WHERE content LIKE '%under the heading%'")"

echo "# 3. a second run changes nothing"
kb "$db" run "$tmp/meta.yaml" --report "$tmp/r2.json" -q
check_rc "the second run exits 0" 0
check_eq "every source unchanged" "2 0" \
  "$(jq -r '"\(.load.sources_unchanged) \(.load.sources_changed + .load.sources_new)"' "$tmp/r2.json")"

finish
