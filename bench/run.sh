#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - run every benchmark (bench/*.sh other than this
# one and lib.sh) against the local database.  Benchmarks print figures and
# ratios measured in one run, each with its definition; they assert nothing
# (targets are in docs/ and the issues, and these machines are noisy).
#
# BENCH_QUICK=1 (`make bench BENCH_QUICK=1`) runs each at a small size, to
# check that every benchmark runs end to end (minutes, not hours); its
# figures are dominated by fixed costs and are not the documented ones.
# A size variable already set wins over the quick default.  BENCH_ONLY=NAME
# runs only the benchmarks whose file name contains NAME.
set -u
build=${1:?usage: bench/run.sh BUILD_DIR}
cd "$(dirname "$0")/.."
export KBPIPE_ROOT=$PWD KBPIPE_BUILD=$build KBPIPE_BIN=$PWD/bin/kbpipe
if [ "${BENCH_QUICK:-0}" = 1 ]; then
  quick() { [ -n "${!1:-}" ] || export "$1=$2"; }
  quick KBPIPE_BENCH_MB 5;         quick KBPIPE_BENCH_REF_MB 1      # chunk.sh
  quick KBPIPE_BENCH_EMBED_MB 2                                     # embed.sh
  quick GIN_FILES 100                                               # gin.sh
  quick OTHER_FILES 100;           quick BULK_FILES 25              # index_share.sh
  quick LC_FILES 20                                                 # langchain.sh
  quick BENCH_FILES 100;           quick BENCH_MEM_SOURCES 5000     # load.sh
  quick BENCH_LEARN_ROWS 500
  quick PERF_SMALL_FILES 20;       quick PERF_FILES 100             # perf.sh
  quick PERF_BIG_MB 1
  quick BENCH_SEARCH_SIZES 1000;   quick BENCH_SEARCH_REPS 1        # search.sh
  quick BENCH_SEARCH_RUNS 5
  echo "bench: quick mode (BENCH_QUICK=1): small sizes, figures not comparable with docs/"
fi
status=0
for b in bench/*.sh; do
  case "$(basename "$b")" in run.sh|lib.sh) continue ;; esac
  case "$(basename "$b")" in *"${BENCH_ONLY:-}"*) ;; *) continue ;; esac
  echo "==> $b"
  # the command that reproduces this benchmark's figures: its size variables
  vars=$(for v in KBPIPE_BENCH_MB KBPIPE_BENCH_REF_MB KBPIPE_BENCH_EMBED_MB GIN_FILES OTHER_FILES \
                  BULK_FILES LC_FILES BENCH_FILES BENCH_MEM_SOURCES BENCH_LEARN_ROWS \
                  PERF_SMALL_FILES PERF_FILES PERF_BIG_MB BENCH_SEARCH_SIZES \
                  BENCH_SEARCH_REPS BENCH_SEARCH_RUNS; do
           if [ -n "${!v:-}" ] && grep -q "$v" "$b"; then printf '%s=%s ' "$v" "${!v}"; fi
         done)
  echo "reproduce: ${vars}KBPIPE_BIN=bin/kbpipe bash $b"
  t0=$(date +%s)
  bash "$b" || { echo "bench: $b failed" >&2; status=1; }
  echo "($b: $(( $(date +%s) - t0 )) s)"
  echo
done
exit $status
