#!/usr/bin/env bash
# tests/run.sh BUILD_DIR - run every test kbpipe has, against the local
# PostgreSQL that `make check` started, and print one closing line
# "N passed, N failed".  Exits non-zero when anything failed.
#
#   1. cmocka binaries: BUILD_DIR/tests/test_*  (unit and integration)
#      and a smoke run of each fuzz harness: BUILD_DIR/fuzz/fuzz_* on its
#      seeds, regressions and 3000 mutated inputs (KBPIPE_FUZZ_RUNS)
#   2. SQL tests: tests/sql/run.sh (pgTAP through pg_prove)
#   3. shell tests: tests/integration/*.sh and tests/docs/*.sh
#
# An argument after BUILD_DIR filters by name (substring; A|B runs both).
set -u
build=${1:?usage: tests/run.sh BUILD_DIR [FILTER]}
filter=${2:-}
cd "$(dirname "$0")/.."

export KBPIPE_ROOT=$PWD
export KBPIPE_BIN=${KBPIPE_BIN:-$PWD/$build/kbpipe-test}
export KBPIPE_REQUIRE_REF=1          # reference implementations must be present
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
[ -n "${KBPIPE_TEST_DSN:-}" ] || { echo "tests/run.sh: KBPIPE_TEST_DSN is not set; run 'make check'" >&2; exit 2; }
log=$build/test-logs; mkdir -p "$log"

passed=0; failed=0; failures=()
run_one() {   # name, command...
  local name=$1; shift
  if [ -n "$filter" ]; then   # NAME, or NAME|NAME|...: any of them
    local f hit=0
    IFS='|' read -ra f <<<"$filter"
    for f in "${f[@]}"; do [[ "$name" == *"$f"* ]] && hit=1; done
    [ $hit = 1 ] || return 0
  fi
  local t0=$SECONDS
  if "$@" >"$log/$name.log" 2>&1; then
    passed=$((passed + 1)); printf '  PASS  %-40s %3ds\n' "$name" $((SECONDS - t0))
  else
    failed=$((failed + 1)); failures+=("$name")
    printf '  FAIL  %-40s %3ds  (log: %s)\n' "$name" $((SECONDS - t0)) "$log/$name.log"
    tail -n 40 "$log/$name.log" | sed 's/^/        | /'
  fi
}

for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  run_one "$(basename "$t")" "$t"
done
for f in "$build"/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  run_one "$(basename "$f")" bash tests/fuzz/run.sh -n "${KBPIPE_FUZZ_RUNS:-3000}" \
    "$build/fuzz" "$(basename "$f")"
done
[ -x tests/sql/run.sh ] && run_one sql-pgtap bash tests/sql/run.sh
for s in tests/integration/*.sh tests/docs/*.sh; do
  [ -f "$s" ] || continue
  case "$s" in */lib.sh) continue ;; esac   # the helpers the shell tests source
  run_one "$(basename "$(dirname "$s")")-$(basename "$s" .sh)" bash "$s"
done

echo
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
