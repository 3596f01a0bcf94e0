#!/usr/bin/env bash
# bench/langchain.sh - kbpipe vs a LangChain.js ingestion of the same corpus
# (issue 14, target >= 10x), measured in one run, each side's phases timed
# apart so that the work identical on both sides (the offline embedder) is
# never hidden inside the ratio:
#   corpus   bench/gen_corpus.py, LC_FILES (500) files of 10 sections of ~180
#            words (about 1.2 KB a section); the same files on both sides;
#   LangChain.js  RecursiveCharacterTextSplitter.fromLanguage("markdown",
#            chunkSize 1200 chars, overlap 0), the embedder
#            (embedDocuments), PGVectorStore.addVectors (what addDocuments
#            does after embedding) into its own table with no vector index;
#            one thread, so its phases (init, split, embed, store) are timed
#            in the process and add up (bench/langchain/ingest.mjs);
#   kbpipe   `kbpipe run` with splitter recursive, unit chars, size 1200,
#            overlap 0, into a database whose HNSW index and full-text (GIN)
#            index on search_tsv are dropped by hand (index_strategy keep:
#            nothing rebuilt), so neither side loads into an index but its
#            primary key and btrees ("no index on either side", issue 14);
#            the GIN build over the whole run's rows is timed apart and
#            printed (what the strategy would add after the load; the HNSW
#            build is left out, bench/perf.sh (2) times it).  Its reader, embedder
#            (two threads a batch) and writer overlap, so its phases are
#            separate processes over the same corpus:
#              read+split  `kbpipe run --dry-run` (connect, scan, read,
#                          chunk with token counts; no embedding, no write);
#              whole       `kbpipe run`, provider hash;
#              embed       the hash embedder alone over the chunks that run
#                          stored, on one thread (bench/embed_bench.c texts);
#              no embed    the same `kbpipe run` by a kbpipe built from
#                          this checkout's objects with the embedder
#                          replaced by a copy of real kbpipe-hash-v1
#                          vectors (bench/noembed.c: the first 64 chunks'
#                          own, then copies), so what is left is read,
#                          chunk, COPY of rows of the same size;
#              embed in the run  whole - no embed (its cost on the run's
#                          critical path, where it overlaps the writer);
#   store floor  the no-embed run's rows loaded back into kbpipe's emptied
#            table (no HNSW, no GIN index, as in the runs) by a server-side
#            `COPY ... FROM 'file' (FORMAT binary)`:
#            what storing them costs with no client, a bound on the ratio
#            without the embedding for any kbpipe client;
#   store floor, no search_tsv  the same COPY with knowledge_chunks's
#            generated search_tsv column dropped: what the full-text schema
#            (one to_tsvector per row, issue 15) costs the store;
#   embedder kbpipe-hash-v1 on both sides (the JS side a port, checked
#            against tests/data/embed/hash_golden.tsv before the run).
# Figures: wall seconds of each phase, CPU-seconds beside (the client's from
# /usr/bin/time -v, the server's from bench/lib.sh server_cpu); throughput
# in input characters per second (the same input on both sides, so the two
# splitters' different chunk counts do not enter the ratio; chunks/s
# printed beside); two ratios, kbpipe / LangChain.js chars/s:
#   whole ingestion        = LangChain.js seconds / `kbpipe run` seconds;
#   without the embedding  = LangChain.js (seconds - embed) / the no-embed
#                            kbpipe run's seconds.
# LangChain.js's seconds are its process's, from its first statement (node's
# start and module loading, ~1-3 s, left out: only in its favour).
# On a shared machine a process gets a share of a core and wall ratios
# follow CPU-seconds, so the same two ratios are printed in CPU-seconds
# too: client + server CPU of each ingestion (LangChain.js's from
# process.cpuUsage() over its whole and over its embed phase, its server's
# over the process).
# The node packages are installed under .cache/langchain (not committed) on
# the first run; without npm or the registry the benchmark says so and
# exits 0.  Nothing is asserted.  Run by `make bench` or alone:
#   LC_FILES=500 KBPIPE_BIN=bin/kbpipe bash bench/langchain.sh
set -euo pipefail
trap 'echo "langchain.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
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

eb=$out/embed_bench   # the hash embedder alone (as bench/embed.sh builds it)
cc -std=c11 -D_GNU_SOURCE -O2 -Isrc -DKB_DATADIR='"/usr/local/share/kbpipe"' \
   -o "$eb" bench/embed_bench.c src/embed/hash.c src/embed/normalize.c src/embed/blas.c \
   src/chunk/*.c src/util/*.c $(pkg-config --cflags --libs jansson libsodium) -ldl -lm
# kbpipe without the embedder's cost (bench/noembed.c), linked from the
# objects `make` built for $bin (KBPIPE_BUILD, build/rel): exactly the
# Makefile's sources (its $(wildcard src/*.c src/*/*.c)), never whatever
# *.o lies in the build folder (an object of a file that moved away stays
# there and would define a function twice)
objs=${KBPIPE_BUILD:-build/rel}/obj
[ -f "$objs/src/main.o" ] || { echo "langchain.sh: no $objs/src/main.o: run \`make\` first"; exit 1; }
link_objs=()
for c in src/*.c src/*/*.c; do
  [ "$c" = src/embed/hash.c ] && continue   # replaced by hash_real.o + noembed.o
  o=$objs/${c%.c}.o
  [ -f "$o" ] || { echo "langchain.sh: no $o: run \`make\` first"; exit 1; }
  link_objs+=("$o")
done
cflags="-std=c11 -D_GNU_SOURCE -O2 -Isrc $(pkg-config --cflags libsodium jansson)"
cc $cflags -Dembed_hash_text=embed_hash_text_real -c -o "$out/hash_real.o" src/embed/hash.c
cc $cflags -Wall -Wextra -Werror -c -o "$out/noembed.o" bench/noembed.c
noembed=$out/kbpipe-noembed
cc -o "$noembed" "${link_objs[@]}" "$out/hash_real.o" \
   "$out/noembed.o" $(pkg-config --libs libpq yaml-0.1 libsodium jansson libcurl libxml-2.0) \
   -lcsv -lm -lpthread -ldl

golden=$(node "$nm/ingest.mjs" --golden "$top/tests/data/embed/hash_golden.tsv" 2>"$out/golden.err")

corpus=$out/corpus-$files
if [ ! -f "$corpus/.done" ]; then
  rm -rf "$corpus"
  python3 bench/gen_corpus.py "$corpus" --files "$files" --sections 10 --words 180 --seed 7 >/dev/null
  touch "$corpus/.done"
fi
chars=$(find "$corpus" -name '*.md' -print0 | LC_ALL=C.UTF-8 xargs -0 cat | LC_ALL=C.UTF-8 wc -m)
pipeline() {   # pipeline FILE EMBEDDING-YAML: the kbpipe side's pipeline
  cat >"$1" <<YAML
name: bench-lc
project: bench-lc
chunking:
  splitter: recursive
  unit: chars
  size: 1200
  overlap: 0
embedding:
$2
load:
  index_strategy: keep
sources:
  - name: corpus
    type: files
    roots: ["$corpus"]
    include: ["**/*.md"]
YAML
}
pipeline "$out/lc.yaml" "  provider: hash"

fresh_db() {
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
  "$bin" -q --db "dbname=$db" migrate up
  psql -X -q -d "$db" -c "DROP INDEX idx_knowledge_chunks_embedding" \
    -c "DROP INDEX idx_knowledge_chunks_search_tsv" -c CHECKPOINT
}
# timed NAME CMD...: runs CMD under /usr/bin/time -v; sets wall_NAME (s),
# cpu_NAME (the process's user + sys) and srv_NAME (server CPU-seconds)
timed() {
  local name=$1; shift
  local s0 t0 t1
  s0=$(server_cpu); t0=$(now_ns)
  /usr/bin/time -v -o "$out/time.$name" "$@"
  t1=$(now_ns)
  printf -v "wall_$name" %s "$(secs "$t0" "$t1")"
  printf -v "cpu_$name" %s "$(cpu_of_time "$out/time.$name")"
  printf -v "srv_$name" %s "$(awk -v a="$s0" -v b="$(server_cpu)" 'BEGIN { printf "%.2f", b - a }')"
}

# kbpipe: read + split (a dry run: no embedding, no write), then the whole run
fresh_db
timed kdry "$bin" -q --db "dbname=$db" run --dry-run "$out/lc.yaml"
timed kall "$bin" -q --db "dbname=$db" run "$out/lc.yaml"
n_kb=$(psql -X -At -d "$db" -c "SELECT count(*) FROM knowledge_chunks")
# the indexes (other than primary keys and btrees) knowledge_chunks had during the run
idx_k=$(psql -X -At -d "$db" -c "SELECT count(*) FROM pg_indexes WHERE tablename = 'knowledge_chunks' AND indexdef ~* ' USING (hnsw|gin|gist|ivfflat) '")
# the full-text index the runs went without, built once over the whole run's
# rows (what index_strategy auto/rebuild adds after such a load)
psql -X -q -d "$db" -c CHECKPOINT
timed gin psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "SET maintenance_work_mem = '1GB'" \
  -c "CREATE INDEX idx_knowledge_chunks_search_tsv ON knowledge_chunks USING gin (search_tsv)"

# the embedder alone over the chunks kbpipe stored, on one thread
psql -X -At -d "$db" -R $'\x1e' -o "$out/chunks.txt" -c "SELECT content FROM knowledge_chunks ORDER BY id"
read -r n_emb b_emb wall_kemb < <("$eb" texts "$out/chunks.txt")
wall_kemb=$(printf %.2f "$wall_kemb")

# kbpipe without the embedder's cost: the same run into an emptied database
fresh_db
timed knoe "$noembed" -q --db "dbname=$db" run "$out/lc.yaml"
n_noe=$(psql -X -At -d "$db" -c "SELECT count(*) FROM knowledge_chunks WHERE embedding IS NOT NULL")

# the store's floor in kbpipe's schema: the no-embed run's rows loaded back
# by a server-side binary COPY into the emptied table (no client at all)
cols="source_id, project_id, chunk_index, content, content_hash, embedding, token_count, metadata"
dump=/var/tmp/kbpipe-bench-lc-$$.bin
trap 'rm -f "$dump"; psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "COPY (SELECT $cols FROM knowledge_chunks) TO '$dump' WITH (FORMAT binary)" \
  -c "TRUNCATE knowledge_chunks CASCADE" -c CHECKPOINT
timed floor psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "COPY knowledge_chunks ($cols) FROM '$dump' WITH (FORMAT binary)"
# the same floor without the generated search_tsv column (its to_tsvector
# per row: the full-text schema LangChain.js's table does not have)
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "TRUNCATE knowledge_chunks CASCADE" \
  -c "ALTER TABLE knowledge_chunks DROP COLUMN search_tsv" -c CHECKPOINT
timed floornt psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "COPY knowledge_chunks ($cols) FROM '$dump' WITH (FORMAT binary)"
rm -f "$dump"

# LangChain.js, into its own table of the same database
psql -X -q -d "$db" -c CHECKPOINT
timed lc env PGDATABASE=$db node "$nm/ingest.mjs" "$corpus" lc_chunks 1200 >"$out/lc.out"
lc=$(cat "$out/lc.out")
n_lc=$(psql -X -At -d "$db" -c "SELECT count(*) FROM lc_chunks")
idx_l=$(psql -X -At -d "$db" -c "SELECT count(*) FROM pg_indexes WHERE tablename = 'lc_chunks' AND indexdef ~* ' USING (hnsw|gin|gist|ivfflat) '")
idx=$((idx_k + idx_l))
kv() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p; s/^$1=\([0-9.]*\).*/\1/p" <<<" $lc" | head -1; }
lc_all=$(kv seconds); lc_init=$(kv init); lc_split=$(kv split); lc_embed=$(kv embed); lc_store=$(kv store)
lc_cpu=$(kv cpu); lc_ecpu=$(kv embed_cpu)
lc_noemb=$(awk -v a="$lc_all" -v b="$lc_embed" 'BEGIN { printf "%.2f", a - b }')
kemb_run=$(awk -v a="$wall_kall" -v b="$wall_knoe" 'BEGIN { printf "%.2f", a - b }')
cps() { div "$chars" "$1" %.0f; }

echo "corpus: $files files, $chars characters (wc -m), $(du -sh --exclude=.done "$corpus" | cut -f1); kbpipe-hash-v1 on both sides; HNSW, GIN, GiST or IVFFlat indexes on either table during the runs: $idx (kbpipe's HNSW and full-text GIN index dropped by hand; primary keys and btrees kept)"
echo "the JS port of kbpipe-hash-v1 against kbpipe's golden vectors (tests/data/embed/hash_golden.tsv): ${golden#golden=} match"
echo "chunks: kbpipe $n_kb (recursive, 1200 chars), LangChain.js $n_lc (markdown, 1200 chars): throughput is per input character, the same input on both sides"
echo "phases, wall seconds (CPU-seconds: the client process / the server):"
echo "  kbpipe read+split   \`run --dry-run\`:        ${wall_kdry} s (${cpu_kdry} / ${srv_kdry})"
echo "  kbpipe embed        hash embedder, 1 thread: ${wall_kemb} s over $n_emb chunks (in a run each batch is shared by 2 threads)"
echo "  kbpipe no embed     \`run\`, embedder's cost taken out (bench/noembed.c): ${wall_knoe} s (${cpu_knoe} / ${srv_knoe}), $n_noe rows with vectors"
echo "  kbpipe embed in the run: whole - no embed = ${kemb_run} s"
echo "  kbpipe whole        \`run\`, provider hash:   ${wall_kall} s (${cpu_kall} / ${srv_kall})"
echo "  store floor         server-side binary COPY FROM file of the no-embed run's rows into kbpipe's emptied table, no HNSW or GIN index: ${wall_floor} s (server ${srv_floor})"
echo "  store floor, no search_tsv  the same COPY into the same table with the generated search_tsv column dropped (no to_tsvector per row): ${wall_floornt} s (server ${srv_floornt})"
echo "  kbpipe GIN build    CREATE INDEX ... USING gin (search_tsv) over the whole run's $n_kb rows, after the run (not in any ratio): ${wall_gin} s (server ${srv_gin})"
echo "  LangChain.js init ${lc_init} s, read+split ${lc_split} s, embed ${lc_embed} s, store ${lc_store} s; whole ${lc_all} s in the process, ${wall_lc} s with node's start (${cpu_lc} / ${srv_lc})"
echo "throughput (input characters / wall second):"
echo "  whole ingestion:       kbpipe $(cps "$wall_kall") chars/s ($(div "$n_kb" "$wall_kall" %.0f) chunks/s), LangChain.js $(cps "$lc_all") chars/s ($(div "$n_lc" "$lc_all" %.0f) chunks/s)"
echo "  without the embedding: kbpipe $(cps "$wall_knoe") chars/s, LangChain.js $(cps "$lc_noemb") chars/s (its whole - embed)"
echo "  read+split:            kbpipe $(cps "$wall_kdry") chars/s, LangChain.js $(cps "$lc_split") chars/s"
echo "  embed:                 kbpipe $(cps "$wall_kemb") chars/s, LangChain.js $(cps "$lc_embed") chars/s (one thread each)"
echo "ratio kbpipe / LangChain.js, whole ingestion (chars/s; = LangChain.js seconds / kbpipe run seconds): $(div "$lc_all" "$wall_kall" %.2f)x (target >= 10x)"
echo "ratio kbpipe / LangChain.js, whole ingestion with kbpipe's GIN build added (= LangChain.js seconds / (kbpipe run + GIN build) seconds; LangChain.js builds no full-text index): $(div "$lc_all" "$(awk -v a="$wall_kall" -v b="$wall_gin" 'BEGIN { print a + b }')" %.2f)x"
echo "ratio kbpipe / LangChain.js, without the embedding (chars/s; = LangChain.js (seconds - embed) / no-embed kbpipe run seconds): $(div "$lc_noemb" "$wall_knoe" %.2f)x"
echo "ratio in CPU-seconds (client + server), whole ingestion: LangChain.js $lc_cpu + $srv_lc / kbpipe $cpu_kall + $srv_kall = $(awk -v a="$lc_cpu" -v b="$srv_lc" -v c="$cpu_kall" -v d="$srv_kall" 'BEGIN { printf "%.2f", (a + b) / (c + d) }')x"
echo "ratio in CPU-seconds (client + server), without the embedding: LangChain.js ($lc_cpu - $lc_ecpu) + $srv_lc / no-embed kbpipe $cpu_knoe + $srv_knoe = $(awk -v a="$lc_cpu" -v e="$lc_ecpu" -v b="$srv_lc" -v c="$cpu_knoe" -v d="$srv_knoe" 'BEGIN { printf "%.2f", (a - e + b) / (c + d) }')x"
echo "bound on the ratio without the embedding for any kbpipe client (its store at the floor above): LangChain.js (seconds - embed) / floor seconds = $(div "$lc_noemb" "$wall_floor" %.2f)x; in CPU-seconds ($lc_cpu - $lc_ecpu) + $srv_lc / $srv_floor = $(awk -v a="$lc_cpu" -v e="$lc_ecpu" -v b="$srv_lc" -v d="$srv_floor" 'BEGIN { printf "%.2f", (a - e + b) / d }')x"
echo "bound without the full-text column: LangChain.js (seconds - embed) / the floor without search_tsv = $(div "$lc_noemb" "$wall_floornt" %.2f)x; whole: LangChain.js seconds / that floor = $(div "$lc_all" "$wall_floornt" %.2f)x (a kbpipe run whose embedding stays behind its store, as it does now); in CPU-seconds ($lc_cpu - $lc_ecpu) + $srv_lc / $srv_floornt = $(awk -v a="$lc_cpu" -v e="$lc_ecpu" -v b="$srv_lc" -v d="$srv_floornt" 'BEGIN { printf "%.2f", (d > 0 ? (a - e + b) / d : 0) }')x"
echo "reproduce: LC_FILES=$files KBPIPE_BIN=$bin bash bench/langchain.sh"
