#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - run every benchmark (bench/*.sh other than this
# one) against the local database.  Benchmarks print figures and ratios
# measured in one run; they assert nothing (targets are in docs/ and the
# issues, and these machines are noisy).
set -u
build=${1:?usage: bench/run.sh BUILD_DIR}
cd "$(dirname "$0")/.."
export KBPIPE_ROOT=$PWD KBPIPE_BUILD=$build KBPIPE_BIN=$PWD/bin/kbpipe
status=0
for b in bench/*.sh; do
  case "$(basename "$b")" in run.sh|lib.sh) continue ;; esac
  echo "==> $b"
  bash "$b" || { echo "bench: $b failed" >&2; status=1; }
  echo
done
exit $status
