#!/usr/bin/env bash
# bench/load.sh - the load benchmark of issue 7, measured in one run on a
# generated corpus (bench/gen_corpus.py: BENCH_FILES files x 10 sections of
# ~180 words, one ~1.1 KB chunk per section; 25,000 chunks by default):
#   (a) `kbpipe run` end to end into a fresh database (hash vectors, binary
#       COPY, index strategy auto), chunks/s;
#   (b) the floor: the same rows exported with COPY ... TO a file and loaded
#       back by a server-side COPY ... FROM file WITH (FORMAT binary), with
#       the index strategy auto ends up with (index dropped, rebuilt after);
#       the ratio floor time / kbpipe time (target >= 0.85);
#   (c) an unchanged re-run as a fraction of the first run (target <= 3%);
#   (d) index strategy auto vs keep on an import into an empty indexed table
#       (target: auto >= 4x faster);
#   (e) peak RSS of kbpipe (/usr/bin/time -v) in (a), (c) and keep (target
#       < 100 MiB);
#   (f) peak RSS of an unchanged re-run over BENCH_MEM_SOURCES (200,000)
#       stored sources vs 2,000 (a generated CSV, one short chunk per row,
#       no HNSW index so the first loads are quick): the memory a session
#       spends per stored source (its table of source keys and hashes);
#   (g) learnings go through a staging table (a merge that keeps id, usage
#       and verification): BENCH_LEARN_ROWS (5,000) learnings loaded by
#       kbpipe, then the same rows by server-side binary COPY straight into
#       learnings vs COPY into a temporary table + INSERT ... SELECT ... ON
#       CONFLICT DO UPDATE (kbpipe's statement), HNSW index of learnings
#       dropped for both so the difference is the staging's alone.
# Figures are printed, nothing is asserted.  Run by `make bench`
# (bench/run.sh) or alone:  KBPIPE_BIN=bin/kbpipe bash bench/load.sh
# Knobs: BENCH_FILES (2500), BENCH_KEEP=0 skips the slow keep run,
# BENCH_KEEP_FILES (default BENCH_FILES) sizes the auto-vs-keep corpus,
# BENCH_MEM_SOURCES (200000) the large run of (f), BENCH_MEM_ONLY=1 runs (f)
# alone, BENCH_LEARN_ROWS (5000) sizes (g), BENCH_LEARN_ONLY=1 runs (g) alone.
set -euo pipefail
. "$(dirname "$0")/lib.sh"   # top (cd'd into), bin, the PG* variables, helpers
files=${BENCH_FILES:-2500}
keep_files=${BENCH_KEEP_FILES:-$files}
sections=10
out=$top/bench/out/load
mkdir -p "$out"
G=tests/data/run/gen.yaml
export RUN_PIPELINE=bench-load RUN_PROJECT=bench-load RUN_CHUNK_SIZE=300 RUN_BATCH_ROWS=1000
export RUN_REBUILD_RATIO=0.2 RUN_REBUILD_MIN=1000    # the documented defaults of auto
db=kbpipe_bench_load
dump=/var/tmp/kbpipe-bench-$$.bin
[ -x /usr/bin/time ] || { echo "load.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
cleanup() {
  rm -f "$dump"
  for d in $db ${db}_auto ${db}_keep ${db}_mem ${db}_learn; do
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

sql() { psql -X -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
fresh_db() {
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
  "$bin" -q --db "dbname=$1" migrate up
}
# kbrun DB LABEL ARGS...: a timed kbpipe run; sets $t (seconds) and $rss (MiB)
kbrun() {
  local d=$1 label=$2; shift 2
  psql -X -q -d "$d" -c CHECKPOINT
  local t0; t0=$(now_ns)
  /usr/bin/time -v -o "$out/$label.time" "$bin" --db "dbname=$d" run "$G" -q \
    --report "$out/$label.json" "$@" || { echo "load.sh: kbpipe run ($label) failed" >&2; exit 1; }
  t=$(secs "$t0" "$(now_ns)")
  rss=$(rss_mib "$out/$label.time")
}

# (f) memory per stored source: unchanged re-runs over N stored sources
mem_sources=${BENCH_MEM_SOURCES:-200000}
mem_run() {   # N: first load, then the measured unchanged re-run; sets $rss, $t
  local n=$1 csv=$out/mem-$1.csv
  [ -f "$csv" ] || python3 - "$csv" "$n" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("id,title,content\n")
    for i in range(n):
        f.write("M-%07d,row %d,Row %d of the memory benchmark: a short text of its own.\n" % (i, i, i))
PY
  cat >"$out/mem.yaml" <<YAML
name: bench-mem
project: bench-mem
embedding:
  provider: hash
load:
  batch_rows: 1000
sources:
  - name: rows
    type: csv
    path: $csv
    key: id
YAML
  fresh_db ${db}_mem
  psql -X -q -d ${db}_mem -c "DROP INDEX IF EXISTS idx_knowledge_chunks_embedding"
  "$bin" -q --db "dbname=${db}_mem" run "$out/mem.yaml" ||
    { echo "load.sh: the first load of $n sources failed" >&2; exit 1; }
  local t0; t0=$(now_ns)
  /usr/bin/time -v -o "$out/mem-$n.time" "$bin" -q --db "dbname=${db}_mem" run "$out/mem.yaml" \
    --report "$out/mem-$n.json" || { echo "load.sh: the re-run of $n sources failed" >&2; exit 1; }
  t=$(secs "$t0" "$(now_ns)")
  rss=$(awk '/Maximum resident set size/ { print $NF }' "$out/mem-$n.time")   # KiB
  psql -X -q -d postgres -c "DROP DATABASE ${db}_mem WITH (FORCE)"
}
bench_mem() {
  mem_run 2000; rss_small=$rss t_small=$t
  mem_run "$mem_sources"; rss_large=$rss t_large=$t
  echo "(f) unchanged re-run, peak RSS: 2,000 stored sources $(div "$rss_small" 1024 %.1f) MiB (${t_small} s), $mem_sources stored sources $(div "$rss_large" 1024 %.1f) MiB (${t_large} s)"
  echo "    per stored source: $(div "$(( (rss_large - rss_small) * 1024 ))" "$((mem_sources - 2000))" %.1f) bytes (the table: 32 bytes an entry at load factor <= 3/4, about 43 bytes a source)"
}
if [ "${BENCH_MEM_ONLY:-0}" = 1 ]; then
  bench_mem
  exit 0
fi

# (g) the staging of learnings, measured on a learnings-only load
bench_learn() {
  local n=${BENCH_LEARN_ROWS:-5000} csv=$out/learn-${BENCH_LEARN_ROWS:-5000}.csv ld=${db}_learn
  [ -f "$csv" ] || python3 - "$csv" "$n" <<'PY'
import sys, random
path, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
# a vocabulary of 4,000 made-up words: the learnings are distinct texts
words = ["".join(rnd.choice("bcdfghklmnprstvz") + rnd.choice("aeiou") for _ in range(3))
         for _ in range(4000)]
with open(path, "w") as f:
    f.write("id,title,content,learning_type,category,tags,confidence_score,impact_level\n")
    for i in range(n):
        text = " ".join(rnd.choice(words) for _ in range(60))
        f.write("L-%06d,Learning %d about %s,%s,insight,bench,%s;%s,0.%d,medium\n"
                % (i, i, rnd.choice(words), text, rnd.choice(words), rnd.choice(words), rnd.randint(1, 9)))
PY
  cat >"$out/learn.yaml" <<YAML
name: bench-learn
project: bench-learn
embedding:
  provider: hash
load:
  batch_rows: 1000
sources:
  - name: learnings
    type: csv
    path: $csv
    key: id
    target: learnings
    tags_separator: ";"
dedup:
  enabled: false
YAML
  fresh_db $ld
  local t0; t0=$(now_ns)
  "$bin" -q --db "dbname=$ld" run "$out/learn.yaml" --report "$out/learn.json" ||
    { echo "load.sh: the learnings load failed" >&2; exit 1; }
  local t_kb; t_kb=$(secs "$t0" "$(now_ns)")
  local lsql="psql -X -At -v ON_ERROR_STOP=1 -d $ld"
  local lcols="project_id, knowledge_source_id, title, content, learning_type, category, confidence_score, impact_level, tags, embedding, metadata"
  $lsql -c "COPY (SELECT $lcols FROM learnings) TO '$dump' WITH (FORMAT binary)" >/dev/null
  $lsql -c "DROP INDEX idx_learnings_embedding" -c "TRUNCATE learnings CASCADE" -c CHECKPOINT >/dev/null
  t0=$(now_ns)
  $lsql -c "COPY learnings ($lcols) FROM '$dump' WITH (FORMAT binary)" >/dev/null
  local t_direct; t_direct=$(secs "$t0" "$(now_ns)")
  $lsql -c "TRUNCATE learnings CASCADE" -c CHECKPOINT >/dev/null
  t0=$(now_ns)
  $lsql >/dev/null <<SQL
BEGIN;
CREATE TEMP TABLE stage (LIKE learnings INCLUDING DEFAULTS) ON COMMIT DROP;
COPY stage ($lcols) FROM '$dump' WITH (FORMAT binary);
INSERT INTO learnings ($lcols) SELECT $lcols FROM stage
 ON CONFLICT (knowledge_source_id) WHERE knowledge_source_id IS NOT NULL DO UPDATE SET
  title = EXCLUDED.title, content = EXCLUDED.content, learning_type = EXCLUDED.learning_type,
  category = EXCLUDED.category, confidence_score = EXCLUDED.confidence_score,
  impact_level = EXCLUDED.impact_level, tags = EXCLUDED.tags, embedding = EXCLUDED.embedding,
  metadata = learnings.metadata || EXCLUDED.metadata, updated_at = now();
COMMIT;
SQL
  local t_staged; t_staged=$(secs "$t0" "$(now_ns)")
  psql -X -q -d postgres -c "DROP DATABASE $ld WITH (FORCE)"
  echo "(g) $n learnings: kbpipe run ${t_kb} s (into the live HNSW index of learnings); without that index, server-side binary COPY straight into learnings ${t_direct} s vs staged (COPY into a temp table + INSERT ... ON CONFLICT) ${t_staged} s: staging costs $(div "$t_staged" "$t_direct")x the direct COPY"
}
if [ "${BENCH_LEARN_ONLY:-0}" = 1 ]; then
  bench_learn
  exit 0
fi

# the corpus, made once per size (deterministic)
corpus=$out/corpus-$files
if [ ! -f "$corpus/.done" ]; then
  rm -rf "$corpus"
  python3 bench/gen_corpus.py "$corpus" --files "$files" --sections $sections --words 180 --seed 42
  touch "$corpus/.done"
fi
export RUN_DOCS=$corpus
echo "corpus: $files files, $(du -sh --exclude=.done "$corpus" | cut -f1) in $corpus"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo); PostgreSQL $(psql -X -Atc 'SHOW server_version' -d postgres), pgvector $(psql -X -At -d postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")"

# (a) end to end into a fresh database
fresh_db "$db"
kbrun "$db" run1
t_run=$t rss_run=$rss
chunks=$(sql "SELECT count(*) FROM knowledge_chunks")
kb_mb=$(sql "SELECT round(sum(octet_length(content))::numeric / 1048576, 1) FROM knowledge_chunks")
rebuilt=$(jq -r .load.index_rebuilt "$out/run1.json")
echo
echo "(a) kbpipe run, fresh database: $chunks chunks ($kb_mb MiB of text) in ${t_run} s = $(div "$chunks" "$t_run" %.0f) chunks/s (index rebuilt after the load: $rebuilt)"
jq -r '.sources[] | "    source \(.name): read \(.read), chunks \(.chunks), vectors computed \(.vectors_computed), \(.seconds * 100 | round / 100) s"' "$out/run1.json"

# (c) unchanged re-run
kbrun "$db" run2
t_rerun=$t rss_rerun=$rss
echo "(c) unchanged re-run: ${t_rerun} s = $(div "$(awk -v a="$t_rerun" 'BEGIN{print a*100}')" "$t_run")% of the first run (target <= 3%); chunks written $(jq -r .load.chunks_written "$out/run2.json"), vectors computed $(jq -r '[.sources[].vectors_computed]|add' "$out/run2.json")"

# (b) the floor: the same rows by server-side binary COPY, index built after
cols="source_id, project_id, chunk_index, content, content_hash, embedding, token_count, metadata"
sql "COPY (SELECT $cols FROM knowledge_chunks) TO '$dump' WITH (FORMAT binary)" >/dev/null
idxdef=$(sql "SELECT pg_get_indexdef('idx_knowledge_chunks_embedding'::regclass)")
sql "TRUNCATE knowledge_chunks CASCADE" >/dev/null   # search_queries refers to it
sql "DROP INDEX idx_knowledge_chunks_embedding" >/dev/null
psql -X -q -d "$db" -c CHECKPOINT
t0=$(now_ns)
sql "COPY knowledge_chunks ($cols) FROM '$dump' WITH (FORMAT binary)" >/dev/null
t1=$(now_ns)
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "SET maintenance_work_mem = '1GB'" -c "$idxdef"
t2=$(now_ns)
t_copy=$(secs "$t0" "$t1") t_index=$(secs "$t1" "$t2") t_floor=$(secs "$t0" "$t2")
echo "(b) floor: COPY FROM file (binary) ${t_copy} s + HNSW build ${t_index} s = ${t_floor} s = $(div "$chunks" "$t_floor" %.0f) chunks/s"
echo "    kbpipe / floor throughput: $(div "$t_floor" "$t_run" %.3f) (target >= 0.85)"
t_kload=$(jq -r '.load_seconds * 100 | round / 100' "$out/run1.json")
t_kfinish=$(jq -r '.finish_seconds * 100 | round / 100' "$out/run1.json")
echo "    the load alone (no index build on either side): COPY ${t_copy} s vs kbpipe ${t_kload} s (read, chunk, embed, COPY): $(div "$t_copy" "$t_kload" %.3f) of the floor"
echo "    the index build alone: floor ${t_index} s vs kbpipe's rebuild ${t_kfinish} s (same statement; the difference is noise)"

# (d) auto vs keep on an import into an empty indexed table; (e) RSS
if [ "${BENCH_KEEP:-1}" != 0 ]; then
  kcorpus=$corpus
  if [ "$keep_files" != "$files" ]; then
    kcorpus=$out/corpus-$keep_files
    if [ ! -f "$kcorpus/.done" ]; then
      rm -rf "$kcorpus"
      python3 bench/gen_corpus.py "$kcorpus" --files "$keep_files" --sections $sections --words 180 --seed 42
      touch "$kcorpus/.done"
    fi
  fi
  export RUN_DOCS=$kcorpus
  if [ "$kcorpus" = "$corpus" ]; then
    t_auto=$t_run
  else
    fresh_db ${db}_auto; kbrun ${db}_auto auto; t_auto=$t
    psql -X -q -d postgres -c "DROP DATABASE ${db}_auto WITH (FORCE)"
  fi
  fresh_db ${db}_keep
  RUN_INDEX=keep kbrun ${db}_keep keep
  t_keep=$t rss_keep=$rss
  psql -X -q -d postgres -c "DROP DATABASE ${db}_keep WITH (FORCE)"
  echo "(d) import of $((keep_files * sections)) chunks into an empty indexed table: auto ${t_auto} s, keep ${t_keep} s: auto is $(div "$t_keep" "$t_auto")x faster (target >= 4x)"
else
  echo "(d) skipped (BENCH_KEEP=0)"
  rss_keep=-
fi
echo "(e) peak RSS of kbpipe: first run ${rss_run} MiB, re-run ${rss_rerun} MiB, keep run ${rss_keep} MiB (target < 100 MiB)"
bench_mem
bench_learn
