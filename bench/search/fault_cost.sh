#!/usr/bin/env bash
# bench/search/fault_cost.sh - build and run bench/search/fault_cost.c: the
# cost of one page fault on this machine, beside the cost of starting a
# process with and without libpq's libraries (the floor under every
# `kbpipe search`; docs/search.md, "A search's fixed cost: page faults").
# Not run by `make bench`:  bash bench/search/fault_cost.sh
set -euo pipefail
. "$(dirname "$0")/../lib.sh"   # top (cd'd into), fixed_cost
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -std=c11 -Wall -Wextra -Werror -o "$tmp/fault_cost" bench/search/fault_cost.c
"$tmp/fault_cost"
echo 'int main(void) { return 0; }' >"$tmp/empty.c"
cc -O2 -o "$tmp/empty" "$tmp/empty.c"
cc -O2 -o "$tmp/empty_libpq" "$tmp/empty.c" -Wl,--no-as-needed -lpq
echo "process start, an empty main (bash fork + exec + exit), 50 runs each:"
echo "    no library beyond libc:    $(fixed_cost 50 "$tmp/empty")"
echo "    linked with libpq (its $(ldd "$tmp/empty_libpq" | grep -c '=>') libraries): $(fixed_cost 50 "$tmp/empty_libpq")"
echo "    kbpipe --version:          $(fixed_cost 50 "$bin" --version)"
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "reproduce: bash bench/search/fault_cost.sh"
