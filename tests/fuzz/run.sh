#!/usr/bin/env bash
# tests/fuzz/run.sh [-n RUNS | -t SECONDS] [-e driver|libfuzzer] BIN_DIR HARNESS...
#
# Run fuzz harnesses on their seeds: the repository's own test data and
# samples (the table below), tests/fuzz/corpus/HARNESS (inputs written for
# the harness) and tests/fuzz/regress/HARNESS (inputs that once broke an
# invariant; replayed every time).
#
#   driver     BIN_DIR/HARNESS -n RUNS SEEDS...   (tests/fuzz/driver.c; what
#              tests/run.sh runs in make check, RUNS mutated inputs each)
#   libfuzzer  BIN_DIR/HARNESS -max_total_time=SECONDS CORPUS SEEDS...
#              (make fuzz with clang; new inputs it finds stay in
#              build/fuzz-lf/corpus/HARNESS, crashes in build/fuzz-lf/crashes)
#
# Exits non-zero when a harness fails; a crash input is saved and the line
# to reproduce it printed.
set -u
cd "$(dirname "$0")/../.."
runs=3000; seconds=60; engine=driver
while getopts n:t:e: o; do
  case $o in
    n) runs=$OPTARG ;;
    t) seconds=$OPTARG ;;
    e) engine=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
bin_dir=${1:?usage: tests/fuzz/run.sh [-n RUNS|-t SECONDS] [-e ENGINE] BIN_DIR HARNESS...}
shift

# The seeds of each harness (globs and folders; missing ones are skipped).
seeds() {
  case $1 in
    fuzz_pipeline)     echo pipelines/*.yaml tests/data/pipeline/bad/*.yaml tests/data/run/*.yaml ;;
    fuzz_csv)          echo samples/learnings/*.csv tests/data/run/*.csv tests/data/ingest/bad/*.csv ;;
    fuzz_issues)       echo samples/issues tests/data/ingest/bad/*.json ;;
    fuzz_text)         echo tests/data/ingest/bad/*.md tests/data/run/docs/reference/glossary.txt ;;
    fuzz_frontmatter)  echo tests/data/ingest/bad/*.md samples/docs/operations ;;
    fuzz_html)         echo samples/site tests/data/ingest/bad/*.html ;;
    fuzz_pdf)          echo samples/pdf tests/data/ingest/bad/*.pdf tests/data/ingest/pdf/*.pdf ;;
    fuzz_embed_import) echo tests/data/embed/bad/*.jsonl tests/data/embed/bad/*.csv ;;
    fuzz_tokenizer)    echo samples/docs/reference tests/data/ingest/bad/invalid-utf8*.md ;;
    fuzz_chunk)        echo samples/docs tests/data/chunk/guide.md tests/data/run/docs ;;
    *)                 echo "tests/fuzz/run.sh: no seeds listed for $1" >&2; return 1 ;;
  esac
}

status=0
for h in "$@"; do
  list=$(seeds "$h") || { status=1; continue; }
  paths=()
  for p in $list tests/fuzz/corpus/$h tests/fuzz/regress/$h; do
    [ -e "$p" ] && paths+=("$p")
  done
  if [ "$engine" = libfuzzer ]; then
    corpus=build/fuzz-lf/corpus/$h crashes=build/fuzz-lf/crashes/$h
    mkdir -p "$corpus" "$crashes"
    # libFuzzer fuzzes folders (a file argument means "run this once"): the
    # seed files are copied into the corpus, named by their path
    dirs=()
    for p in "${paths[@]}"; do
      if [ -d "$p" ]; then dirs+=("$p"); else cp "$p" "$corpus/seed-${p//\//_}"; fi
    done
    echo "$h: libFuzzer for ${seconds}s (corpus $corpus)"
    "$bin_dir/$h" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$crashes/" \
      "$corpus" "${dirs[@]}" || status=1
  else
    crashes=$bin_dir/crashes
    mkdir -p "$crashes"
    "$bin_dir/$h" -n "$runs" -o "$crashes" "${paths[@]}" || status=1
  fi
done
exit $status
