#!/usr/bin/env bash
# tests/docs/make_pipelines.sh - make-driven runs, as docs/operations.md
# ("Make-driven runs") and pipelines/pipelines.mk describe them, really run:
#   * `make -j4 pipelines` (the top-level Makefile, KBPIPE = the test build,
#     the reports in a temp folder) loads every sample pipeline into a fresh
#     database and writes each report, status succeeded;
#   * a broken pipeline added through PIPELINE_FILES fails make: make exits
#     2, prints "pipeline-broken] Error 2" (kbpipe's status) after kbpipe's
#     own message; a pipeline with a rejected row prints "Error 3";
#   * `make -j4 shard-1 .. shard-4` (docs/scaling.md) splits docs.yaml into
#     four runs that together see every document once.
# bin/kbpipe is not rebuilt here (make -o bin/kbpipe): make check built it.
. "$(dirname "$0")/../integration/lib.sh"
unset MAKEFLAGS MAKELEVEL MFLAGS MAKEOVERRIDES   # this make is not make check's child

mk() {   # DB ARGS...: make in the checkout against DB; output in $tmp/make.out, status in $rc
  local d=$1; shift
  rc=0
  PGDATABASE=$d timeout -s KILL "$KB_TIMEOUT" make --no-print-directory -o bin/kbpipe \
    KBPIPE="$bin" KBPIPE_REPORT_DIR="$tmp/reports" "$@" >"$tmp/make.out" 2>&1 || rc=$?
}
showmake() { sed -n '1,20p' "$tmp/make.out" | sed 's/^/#   make: /'; }

# every pipeline, concurrently ---------------------------------------------
db=$(new_db mk)
names=$(make --no-print-directory -s -p -n -o bin/kbpipe pipelines 2>/dev/null |
        sed -n 's/^PIPELINE_NAMES := //p' | head -1)
samples=$(cd pipelines && ls *.yaml | grep -v '^seed-dev.yaml$' | sed 's/\.yaml$//' | LC_ALL=C sort | xargs)
check_eq "PIPELINE_NAMES: the sample pipelines, seed-dev left out" "$samples" \
  "$(echo "$names" | tr ' ' '\n' | LC_ALL=C sort | xargs)"
mk "$db" -j4 pipelines
[ "$rc" = 0 ] && ok "make -j4 pipelines exits 0" || { fail "make -j4 pipelines exited $rc"; showmake; }
for n in $names; do
  check_eq "report $n.json written, status succeeded" "succeeded" "$(jget "$tmp/reports/$n.json" .status)"
done
check_eq "kbpipe_runs: one succeeded run per pipeline" "$samples" \
  "$(sql "$db" "SELECT string_agg(pipeline, ' ' ORDER BY pipeline COLLATE \"C\") FROM kbpipe_runs WHERE status = 'succeeded'")"
seen=0
for n in $names; do seen=$((seen + $(jget "$tmp/reports/$n.json" .load.sources_seen))); done
check_eq "the samples are loaded (sources of every sample pipeline)" "$seen" \
  "$(sql "$db" "SELECT count(*) FROM knowledge_sources")"

# a failing pipeline fails make --------------------------------------------
cat >"$tmp/broken.yaml" <<'YAML'
name: broken
project: supervisor-service
sources:
  - name: nothing
    type: files
    roots: [/nonexistent]
YAML
rm -rf "$tmp/reports"
mk "$db" -j4 pipelines PIPELINE_FILES="pipelines/docs.yaml $tmp/broken.yaml"
check_eq "an invalid pipeline: make exits 2" 2 "$rc"
check "  ... make names the target and kbpipe's status 2" grep -q '\[pipelines/pipelines.mk:[0-9]*: pipeline-broken\] Error 2$' "$tmp/make.out"
check "  ... after kbpipe's own message (file:line:col)" grep -q "^kbpipe: $tmp/broken.yaml:6:13: .*'/nonexistent' does not exist" "$tmp/make.out"
check_eq "  ... the other pipeline still ran" "succeeded" "$(jget "$tmp/reports/docs.json" .status)"

mkdir -p "$tmp/rej"
printf 'id,title,content\nR-1,Good row,A learning that loads.\nR-2,"unterminated\n' >"$tmp/rej/rows.csv"
cat >"$tmp/rejects.yaml" <<YAML
name: rejects
project: supervisor-service
embedding: {provider: hash}
sources:
  - name: rows
    type: csv
    path: $tmp/rej/rows.csv
    target: learnings
    key: id
    on_error: skip
YAML
mk "$db" pipelines PIPELINE_FILES="$tmp/rejects.yaml"
check_eq "a pipeline with a rejected row: make exits 2" 2 "$rc"
check "  ... make prints kbpipe's status 3" grep -q 'pipeline-rejects\] Error 3$' "$tmp/make.out" || showmake
check_eq "  ... and its report says so" "1" "$(jget "$tmp/reports/rejects.json" '[.sources[].rejected] | add')"

# shards --------------------------------------------------------------------
db2=$(new_db shard)
rm -rf "$tmp/reports"
mk "$db2" -j4 shard-1 shard-2 shard-3 shard-4
[ "$rc" = 0 ] && ok "make -j4 shard-1 .. shard-4 exits 0" || { fail "shards: make exited $rc"; showmake; }
seen=0
for k in 1 2 3 4; do
  s=$(jget "$tmp/reports/docs.shard-$k.json" .load.sources_seen)
  [ -n "$s" ] && [ "$s" != null ] || s=x
  seen=$((seen + ${s/x/1000}))
done
n_docs=$(find samples/docs -name '*.md' | wc -l)
check_eq "four shard reports; together they saw every document once" "$n_docs" "$seen"
check_eq "  ... and the database holds each once" "$n_docs" "$(sql "$db2" "SELECT count(*) FROM knowledge_sources")"

finish
