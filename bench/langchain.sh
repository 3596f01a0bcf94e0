#!/usr/bin/env bash
# bench/langchain.sh - kbpipe vs a LangChain.js ingestion of the same corpus
# (issue 14: target >= 10x chunks/s), measured in one run:
#   corpus   bench/gen_corpus.py, LC_FILES (500) files of 10 sections of ~180
#            words (about 1.2 KB a section);
#   LangChain.js  RecursiveCharacterTextSplitter.fromLanguage("markdown",
#            chunkSize 1200 chars, overlap 0) + PGVectorStore.addDocuments
#            into its own table (no vector index), embedder: kbpipe-hash-v1
#            ported to JS (bench/langchain/ingest.mjs; SipHash from
#            libsodium-wrappers, as kbpipe's libsodium);
#   kbpipe   `kbpipe run` with splitter recursive, unit chars, size 1200,
#            overlap 0, provider hash, into a fresh database whose HNSW
#            index is dropped (index_strategy keep: nothing rebuilt);
#   figure   chunks/s of each (chunks stored / wall seconds of the whole
#            ingestion, process start to exit) and their ratio.
# The node packages are installed under .cache/langchain (not committed) on
# the first run; without npm or the registry the benchmark says so and
# exits 0.  Nothing is asserted.  Run by `make bench` or alone:
#   KBPIPE_BIN=bin/kbpipe bash bench/langchain.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"   # top (cd'd into), bin, the PG* variables, helpers
files=${LC_FILES:-500}
out=$top/bench/out/langchain
nm=$top/.cache/langchain
db=kbpipe_bench_lc
mkdir -p "$out" "$nm"
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

if [ ! -d "$nm/node_modules/@langchain/community" ]; then
  command -v npm >/dev/null 2>&1 || { echo "langchain.sh: npm is missing; skipped"; exit 0; }
  [ -f "$nm/package.json" ] || echo '{"name":"kbpipe-bench-langchain","private":true,"type":"module"}' >"$nm/package.json"
  npm install --prefix "$nm" --no-audit --no-fund --loglevel=error \
    --legacy-peer-deps @langchain/textsplitters@1 @langchain/community@1 @langchain/core@1 \
    pg libsodium-wrappers \
    >"$out/npm.log" 2>&1 || { echo "langchain.sh: npm install failed (see $out/npm.log); skipped"; exit 0; }
fi
cp bench/langchain/ingest.mjs "$nm/ingest.mjs"   # node resolves packages next to the script

golden=$(node "$nm/ingest.mjs" --golden "$top/tests/data/embed/hash_golden.tsv" 2>"$out/golden.err")

corpus=$out/corpus-$files
if [ ! -f "$corpus/.done" ]; then
  rm -rf "$corpus"
  python3 bench/gen_corpus.py "$corpus" --files "$files" --sections 10 --words 180 --seed 7 >/dev/null
  touch "$corpus/.done"
fi
cat >"$out/lc.yaml" <<YAML
name: bench-lc
project: bench-lc
chunking:
  splitter: recursive
  unit: chars
  size: 1200
  overlap: 0
embedding:
  provider: hash
load:
  index_strategy: keep
sources:
  - name: corpus
    type: files
    roots: ["$corpus"]
    include: ["**/*.md"]
YAML

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
"$bin" -q --db "dbname=$db" migrate up
psql -X -q -d "$db" -c "DROP INDEX idx_knowledge_chunks_embedding" -c CHECKPOINT
t0=$(now_ns)
"$bin" -q --db "dbname=$db" run "$out/lc.yaml"
t_kb=$(secs "$t0" "$(now_ns)")
n_kb=$(psql -X -At -d "$db" -c "SELECT count(*) FROM knowledge_chunks")

psql -X -q -d "$db" -c CHECKPOINT
t0=$(now_ns)
lc=$(PGDATABASE=$db node "$nm/ingest.mjs" "$corpus" lc_chunks 1200)
t_lc=$(secs "$t0" "$(now_ns)")
n_lc=$(psql -X -At -d "$db" -c "SELECT count(*) FROM lc_chunks")
idx=$(psql -X -At -d "$db" -c "SELECT count(*) FROM pg_indexes WHERE tablename = 'lc_chunks' AND indexdef ILIKE '%hnsw%'")

echo "corpus: $files files, $(du -sh --exclude=.done "$corpus" | cut -f1), same embedder (kbpipe-hash-v1) on both sides, no vector index on either (LangChain table HNSW indexes: $idx)"
echo "the JS port of kbpipe-hash-v1 against kbpipe's golden vectors (tests/data/embed/hash_golden.tsv): ${golden#golden=} match"
echo "kbpipe:       $n_kb chunks in ${t_kb} s = $(div "$n_kb" "$t_kb" %.0f) chunks/s"
echo "LangChain.js: $n_lc chunks in ${t_lc} s = $(div "$n_lc" "$t_lc" %.0f) chunks/s ($lc)"
echo "ratio kbpipe / LangChain.js chunks/s: $(div "$(div "$n_kb" "$t_kb" %.4f)" "$(div "$n_lc" "$t_lc" %.4f)" %.1f)x (target >= 10x)"
