#!/usr/bin/env bash
# bench/gin.sh - the full-text (GIN) index during a first import: kept live
# vs dropped before the load and built once after it (the index strategy's
# choice for idx_knowledge_chunks_search_tsv, docs/loading.md, "The
# full-text index").  Measured in one run; nothing is asserted.
#
# Per size (GIN_FILES="2000 10000": files of 10 ~1.2 KB sections of
# bench/gen_corpus.py, seed 42, tests/data/run/gen.yaml with chunk size 300
# and 1000-row batches: 20,000 and 100,000 chunks, as bench/perf.sh), two
# first imports into a fresh database, both WITHOUT the HNSW index (dropped
# by hand: its build is the same statement on both sides, so it is left
# out), index_strategy keep (kbpipe touches no index):
#   kept     the GIN index on search_tsv live during `kbpipe run`;
#   dropped  the GIN index dropped by hand before `kbpipe run`, then
#            CREATE INDEX ... USING gin (search_tsv) timed on its own (the
#            statement the strategy's rebuild runs, maintenance_work_mem
#            1GB as load/index.c sets it).
# ratio = kept seconds / (dropped run seconds + GIN build seconds), > 1
# means dropping and rebuilding wins.  Server CPU-seconds (bench/lib.sh
# server_cpu) and kbpipe's CPU-seconds beside each wall time.  Run by
# `make bench` or alone:
#   GIN_FILES="2000 10000" KBPIPE_BIN=bin/kbpipe bash bench/gin.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"   # top (cd'd into), bin, the PG* variables, helpers
out=$top/bench/out/gin
mkdir -p "$out"
db=kbpipe_bench_gin
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
sql() { psql -X -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
fresh_db() {
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
  "$bin" -q --db "dbname=$db" migrate up
  sql "DROP INDEX idx_knowledge_chunks_embedding" >/dev/null
}
timed() {   # timed LABEL CMD...: sets $t (wall s), $cpu_srv, $cpu_cli
  local label=$1; shift
  local c0 t0; c0=$(server_cpu); t0=$(now_ns)
  /usr/bin/time -v -o "$out/$label.time" "$@" >/dev/null
  t=$(secs "$t0" "$(now_ns)")
  cpu_srv=$(awk -v a="$c0" -v b="$(server_cpu)" 'BEGIN { printf "%.2f", b - a }')
  cpu_cli=$(cpu_of_time "$out/$label.time")
}
G=tests/data/run/gen.yaml
export RUN_PIPELINE=bench-gin RUN_PROJECT=bench-gin RUN_CHUNK_SIZE=300 RUN_BATCH_ROWS=1000
export RUN_INDEX=keep
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for files in ${GIN_FILES:-2000 10000}; do
  corpus=$top/bench/out/perf/corpus-$files   # shared with bench/perf.sh
  if [ ! -f "$corpus/.done" ]; then
    rm -rf "$corpus"
    python3 bench/gen_corpus.py "$corpus" --files "$files" --sections 10 --words 180 --seed 42 >/dev/null
    touch "$corpus/.done"
  fi
  export RUN_DOCS=$corpus
  fresh_db
  psql -X -q -d "$db" -c CHECKPOINT
  timed "kept-$files" "$bin" -q --db "dbname=$db" run "$G"
  t_kept=$t srv_kept=$cpu_srv cli_kept=$cpu_cli
  chunks=$(sql "SELECT count(*) FROM knowledge_chunks")
  fresh_db
  sql "DROP INDEX idx_knowledge_chunks_search_tsv" >/dev/null
  psql -X -q -d "$db" -c CHECKPOINT
  timed "dropped-$files" "$bin" -q --db "dbname=$db" run "$G"
  t_drop=$t srv_drop=$cpu_srv cli_drop=$cpu_cli
  psql -X -q -d "$db" -c CHECKPOINT
  timed "build-$files" psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "SET maintenance_work_mem = '1GB'" \
    -c "CREATE INDEX idx_knowledge_chunks_search_tsv ON knowledge_chunks USING gin (search_tsv)"
  t_build=$t srv_build=$cpu_srv
  total=$(awk -v a="$t_drop" -v b="$t_build" 'BEGIN { printf "%.2f", a + b }')
  echo "first import of $chunks chunks, no HNSW index either way, index_strategy keep:"
  echo "  GIN kept live:      run ${t_kept} s (server ${srv_kept} CPU-s, kbpipe ${cli_kept} CPU-s)"
  echo "  GIN dropped:        run ${t_drop} s (server ${srv_drop} CPU-s, kbpipe ${cli_drop} CPU-s) + CREATE INDEX gin ${t_build} s (server ${srv_build} CPU-s) = ${total} s"
  echo "  ratio kept / (dropped + build): $(div "$t_kept" "$total" %.2f)x wall; server CPU $(div "$srv_kept" "$(awk -v a="$srv_drop" -v b="$srv_build" 'BEGIN { print a + b }')" %.2f)x"
done
echo "reproduce: GIN_FILES=\"${GIN_FILES:-2000 10000}\" KBPIPE_BIN=$bin bash bench/gin.sh"
