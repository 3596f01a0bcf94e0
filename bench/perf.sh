#!/usr/bin/env bash
# bench/perf.sh - what kbpipe itself controls (issue 14), measured in one
# run, printed with their definitions; nothing is asserted.
#
#   (1) load alone vs the floor, NO HNSW index on either side: the same
#       empty tables (every btree index, FK and default kept), loaded once
#       by `kbpipe run` (read, chunk, embed with the hash embedder, binary
#       COPY) and once by a server-side COPY knowledge_chunks FROM 'file'
#       (FORMAT binary) of the rows kbpipe wrote.  ratio = floor seconds /
#       kbpipe seconds (target >= 0.85, not falling with size).  Server
#       CPU-seconds of both (the postmaster and all its children, from
#       /proc: bench/lib.sh server_cpu) and kbpipe's own CPU-seconds; the
#       overlap: kbpipe's -v line of its writer thread (seconds writing,
#       idle waiting for a batch, and the run's thread waiting for it).
#   (2) the HNSW build alone, timed separately on the first size (the same
#       statement either side would run, so it is not part of (1)).
#   (3) an unchanged re-run as a share of the first run (1), per size
#       (target <= 3% at >= 30 MB), the same re-run with --checksum (every
#       file read and hashed, the stat pre-check off), and a re-run after
#       one edited file.  Ratio = re-run wall seconds / first run wall
#       seconds, both whole `kbpipe run` processes (start, connect, lock,
#       scan, record the run); kbpipe's CPU-seconds of the re-runs beside.
#   (4) fixed costs: `kbpipe --version`, and the unchanged re-run of a
#       tiny pipeline (one 1 KB file) against an existing database,
#       PERF_FIXED_RUNS runs each (30 by default, at least 20), each timed
#       by a microsecond clock (bench/lib.sh fixed_cost): wall p50/p95 in ms
#       (target <= 50 ms), the process's own CPU (user + sys) p50/p95
#       beside, and the re-run's statements (round trips) with their server
#       time from the server's log.
#   (5) peak RSS (/usr/bin/time -v) of a run on single large inputs at the
#       default limits: a max-size (8 MB) one-line Markdown file of words, a
#       max-size one-line file with no blank (base64), a CSV whose one field
#       is 8 MB, an issue export (gh) whose one issue is an 8 MB JSON
#       element, a max-size line of random [a-z] and one of the letter a
#       (each ONE pre-token piece, merged in 32 KiB windows) (target < 100
#       MiB each; tests/integration/run_memory_worst.sh asserts it, with the
#       loaded chunks checked); kbpipe's CPU-seconds (user + sys) beside.
#
# Knobs: PERF_FILES="2000 10000" (files of 10 ~1.2 KB sections: 20,000 and
# 100,000 chunks; sizes of (1) and (3)), PERF_SMALL_FILES=250 (a third size
# for (3)), PERF_ONLY=1..5 runs one part, PERF_BIG_MB=8 the inputs of (5)
# (the default limit; bench/run.sh's quick mode makes them 1 MB, far below
# the worst case (5) is about).  Run by `make bench` or alone:
#   KBPIPE_BIN=bin/kbpipe bash bench/perf.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"   # top (cd'd into), bin, the PG* variables, helpers
out=$top/bench/out/perf
mkdir -p "$out"
db=kbpipe_bench_perf
dump=/var/tmp/kbpipe-perf-$$.bin
only=${PERF_ONLY:-}
[ -x /usr/bin/time ] || { echo "perf.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
cleanup() {
  rm -f "$dump"
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
part() { [ -z "$only" ] || [ "$only" = "$1" ]; }
sql() { psql -X -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
fresh_db() {
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
  "$bin" -q --db "dbname=$db" migrate up
}
corpus_of() {   # FILES -> the corpus folder, made once (deterministic)
  local c=$out/corpus-$1
  if [ ! -f "$c/.done" ]; then
    rm -rf "$c"
    python3 bench/gen_corpus.py "$c" --files "$1" --sections 10 --words 180 --seed 42 >/dev/null
    touch "$c/.done"
  fi
  echo "$c"
}
# timed LABEL CMD...: runs CMD under /usr/bin/time; sets $t (s), $cpu_srv
# (server CPU-seconds over the span), $cpu_cli (CMD's CPU-seconds), $rss (MiB)
timed() {
  local label=$1; shift
  local c0 t0; c0=$(server_cpu); t0=$(now_ns)
  /usr/bin/time -v -o "$out/$label.time" "$@" || { echo "perf.sh: $label failed: $*" >&2; exit 1; }
  t=$(secs "$t0" "$(now_ns)")
  cpu_srv=$(awk -v a="$c0" -v b="$(server_cpu)" 'BEGIN { printf "%.2f", b - a }')
  cpu_cli=$(cpu_of_time "$out/$label.time")
  rss=$(rss_mib "$out/$label.time")
}
G=tests/data/run/gen.yaml
export RUN_PIPELINE=bench-perf RUN_PROJECT=bench-perf RUN_CHUNK_SIZE=300 RUN_BATCH_ROWS=1000
export RUN_INDEX=keep   # the index is dropped by hand below: keep = touch nothing

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL $(psql -X -Atc 'SHOW server_version' -d postgres)"
echo "kbpipe: $bin"

# (1) + (2) + (3)
sizes="${PERF_SMALL_FILES:-250} ${PERF_FILES:-2000 10000}"
first_size=1
for files in $sizes; do
  if ! { part 1 || part 2 || part 3; }; then break; fi
  corpus=$(corpus_of "$files")
  export RUN_DOCS=$corpus
  mb=$(du -sm --exclude=.done "$corpus" | cut -f1)
  fresh_db
  sql "DROP INDEX idx_knowledge_chunks_embedding" >/dev/null
  psql -X -q -d "$db" -c CHECKPOINT
  # -v: the writer's line (batches, seconds writing, idle, the run's thread waiting)
  timed "run-$files" "$bin" -v --db "dbname=$db" run "$G" 2>"$out/run-$files.log"
  t_run=$t srv_run=$cpu_srv cli_run=$cpu_cli rss_run=$rss
  overlap=$(grep -o 'writer: .*' "$out/run-$files.log" || echo "writer: (no line)")
  chunks=$(sql "SELECT count(*) FROM knowledge_chunks")
  timed "rerun-$files" "$bin" -q --db "dbname=$db" run "$G"
  t_rerun=$t cli_rerun=$cpu_cli
  timed "checksum-$files" "$bin" -q --db "dbname=$db" run "$G" --checksum
  t_ck=$t cli_ck=$cpu_cli
  # one edited file: its third section gets a new sentence
  f1=$(find "$corpus" -name '*.md' | sort | sed -n 1p)
  cp "$f1" "$out/edited.bak"
  sed -i '0,/^## Section [0-9]*\.2$/{s/^\(## Section [0-9]*\.2\)$/\1\n\nAn edited sentence./}' "$f1"
  timed "edit-$files" "$bin" -q --db "dbname=$db" run "$G"
  t_edit=$t
  cp "$out/edited.bak" "$f1"
  "$bin" -q --db "dbname=$db" run "$G"   # back to the stored state
  if [ "$files" != "${PERF_SMALL_FILES:-250}" ] && { part 1 || part 2; }; then
    cols="source_id, project_id, chunk_index, content, content_hash, embedding, token_count, metadata"
    sql "COPY (SELECT $cols FROM knowledge_chunks) TO '$dump' WITH (FORMAT binary)" >/dev/null
    sql "TRUNCATE knowledge_chunks CASCADE" >/dev/null
    psql -X -q -d "$db" -c CHECKPOINT
    timed "floor-$files" psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
      -c "COPY knowledge_chunks ($cols) FROM '$dump' WITH (FORMAT binary)"
    t_floor=$t srv_floor=$cpu_srv
    echo
    echo "(1) load alone, no HNSW index on either side, $chunks chunks ($mb MB of Markdown):"
    echo "    kbpipe run ${t_run} s (server ${srv_run} CPU-s, kbpipe ${cli_run} CPU-s, peak RSS ${rss_run} MiB)"
    echo "    floor: server-side COPY FROM file (binary) ${t_floor} s (server ${srv_floor} CPU-s)"
    echo "    ratio floor/kbpipe: $(div "$t_floor" "$t_run" %.3f) (target >= 0.85); server CPU kbpipe/floor: $(div "$srv_run" "$srv_floor")x"
    echo "    overlap (kbpipe -v): $overlap"
    if [ $first_size = 1 ] && part 2; then
      psql -X -q -d "$db" -c CHECKPOINT
      t0=$(now_ns)
      psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "SET maintenance_work_mem = '1GB'" \
        -c "CREATE INDEX idx_knowledge_chunks_embedding ON knowledge_chunks USING hnsw (embedding vector_cosine_ops)"
      echo "(2) the HNSW build alone on those $chunks rows: $(secs "$t0" "$(now_ns)") s (the same statement on either side)"
    fi
    first_size=0
  fi
  if part 3 || [ -z "$only" ]; then
    pct() { div "$(awk -v a="$1" 'BEGIN { print a * 100 }')" "$t_run"; }
    echo "(3) $files files ($mb MB, $chunks chunks): first run ${t_run} s; unchanged re-run ${t_rerun} s = $(pct "$t_rerun")% of it (kbpipe ${cli_rerun} CPU-s; target <= 3% at >= 30 MB); with --checksum ${t_ck} s = $(pct "$t_ck")% (${cli_ck} CPU-s); after one edited file ${t_edit} s = $(pct "$t_edit")%"
  fi
done

# (4) fixed costs
if part 4; then
  runs=${PERF_FIXED_RUNS:-30}
  tiny=$out/tiny
  mkdir -p "$tiny/docs"
  printf '# Tiny\n\n%s\n' "$(printf 'A short paragraph of the tiny pipeline. %.0s' $(seq 25))" >"$tiny/docs/a.md"
  cat >"$tiny/tiny.yaml" <<YAML
name: bench-tiny
project: bench-tiny
embedding:
  provider: hash
sources:
  - name: docs
    type: files
    roots: ["$tiny/docs"]
    include: ["*.md"]
YAML
  fresh_db
  "$bin" -q --db "dbname=$db" run "$tiny/tiny.yaml"
  touch -d '1 hour ago' "$tiny/docs/a.md"   # an old file: its stat is never racy
  "$bin" -q --db "dbname=$db" run "$tiny/tiny.yaml"
  rerun() { "$bin" -q --db "dbname=$db" run "$tiny/tiny.yaml"; }
  echo "(4) fixed costs, whole processes (definitions: wall = \$EPOCHREALTIME around the process;"
  echo "    CPU = its getrusage user + sys; target <= 50 ms wall):"
  echo "    kbpipe --version: $(fixed_cost "$runs" "$bin" --version)"
  echo "    unchanged re-run of a one-file pipeline: $(fixed_cost "$runs" rerun)"
  echo "    the unchanged re-run's round trips (server log, bench/lib.sh statements_of): $(statements_of "$db" rerun)"
  echo "    reproduce: PERF_ONLY=4 PERF_FIXED_RUNS=$runs KBPIPE_BIN=$bin bash bench/perf.sh"
fi

# (5) peak RSS on single large inputs the default limits allow
if part 5; then
  big_mb=${PERF_BIG_MB:-8}   # the default max_file_size; smaller only to check the script runs
  big=$out/big
  [ "$big_mb" = 8 ] || big=$out/big-${big_mb}mb
  mkdir -p "$big/words" "$big/blob" "$big/csv" "$big/issue" "$big/letters" "$big/aletter"
  max=$((big_mb * 1024 * 1024))
  [ -f "$big/words/line.md" ] || python3 bench/gen_line.py "$big/words/line.md" "$max"
  [ -f "$big/blob/blob.md" ] || { head -c $((max / 4 * 3 - 3)) /dev/urandom | base64 -w0; echo; } >"$big/blob/blob.md"
  [ -f "$big/letters/letters.md" ] || python3 -c '
import random, sys
r = random.Random(13)
open(sys.argv[1], "w").write("".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(int(sys.argv[2]) - 1)) + "\n")
' "$big/letters/letters.md" "$max"
  [ -f "$big/aletter/aletter.md" ] || { head -c $((max - 1)) /dev/zero | tr '\0' a; echo; } >"$big/aletter/aletter.md"
  [ -f "$big/csv/rows.csv" ] || python3 - "$big/csv/rows.csv" "$max" <<'PY'
import sys, random
path, n = sys.argv[1], int(sys.argv[2])
r = random.Random(6)
words = ["alpha", "beta", "gamma", "delta", "vector", "index", "chunk", "token", "merge"]
field = " ".join(r.choice(words) for _ in range(n // 6))[: n - 64]
open(path, "w").write('id,title,content\nR-1,one big field,"%s"\n' % field)
PY
  [ -f "$big/issue/issues.jsonl" ] || python3 - "$big/issue/issues.jsonl" "$max" "$big/words/line.md" <<'PY'
import json, sys
path, n, words = sys.argv[1], int(sys.argv[2]), sys.argv[3]
body = open(words).read().rstrip("\n")[: n - 1024]
open(path, "w").write(json.dumps({"number": 1, "title": "One huge issue", "body": body,
    "state": "OPEN", "author": {"login": "octo"}, "createdAt": "2024-01-01T00:00:00Z",
    "updatedAt": "2024-01-02T00:00:00Z", "labels": [], "comments": [],
    "url": "https://github.com/acme/big/issues/1"}) + "\n")
PY
  for kind in words blob csv issue letters aletter; do
    if [ $kind = csv ]; then src="    type: csv
    path: $big/csv/rows.csv
    key: id"; elif [ $kind = issue ]; then src="    type: github_issues
    path: $big/issue/issues.jsonl"; else src="    type: files
    roots: [\"$big/$kind\"]
    include: [\"*.md\"]"; fi
    cat >"$big/$kind.yaml" <<YAML
name: bench-big-$kind
project: bench-big
embedding:
  provider: hash
sources:
  - name: big
$src
YAML
    fresh_db
    timed "big-$kind" "$bin" -q --db "dbname=$db" run "$big/$kind.yaml"
    echo "(5) peak RSS, one $(du -h "$big/$kind"/* | cut -f1 | sed -n 1p) input ($kind): ${rss} MiB in ${t} s, ${cpu_cli} CPU-s (target < 100 MiB)"
  done
fi
