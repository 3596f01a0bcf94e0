#!/usr/bin/env bash
# tests/docs/rank_table.sh - the cl100k_base rank table shipped in data/, as
# docs/tokenizer.md describes it:
#   * data/cl100k_base.json has the SHA-256 docs/tokenizer.md gives, which is
#     also the one scripts/fetch-tokenizer.sh and `make install` check;
#   * it is byte for byte tiktoken 1.0.22's encoders/cl100k_base.json, the
#     table of the reference encoder (.cache/ref, when installed);
#   * `make install` refuses a damaged table (a copy of the checkout with one
#     byte changed) and installs nothing.
. "$(dirname "$0")/../integration/lib.sh"
unset MAKEFLAGS MAKELEVEL MFLAGS MAKEOVERRIDES

got=$(sha256sum data/cl100k_base.json | cut -d' ' -f1)
doc=$(sed -n 's/^| SHA-256 | `\([0-9a-f]\{64\}\)` |$/\1/p' docs/tokenizer.md)
pin=$(sed -n 's/^RANKS_SHA256=//p' scripts/fetch-tokenizer.sh)
check_eq "data/cl100k_base.json has the SHA-256 of docs/tokenizer.md" "$doc" "$got"
check_eq "  ... the one scripts/fetch-tokenizer.sh pins" "$pin" "$got"
check_eq "  ... and is 1,090,747 bytes, as docs/tokenizer.md says" 1090747 "$(stat -c %s data/cl100k_base.json)"
ref=.cache/ref/node_modules/tiktoken/encoders/cl100k_base.json
if [ -f "$ref" ]; then
  check_same "  ... and is the reference encoder's table" "$ref" data/cl100k_base.json
else
  note "the reference encoder is not installed (.cache/ref): its table is not compared"
fi

# a damaged table: make install stops before installing anything
mkdir -p "$tmp/co/bin" "$tmp/co/data" "$tmp/co/scripts"
cp Makefile "$tmp/co/"; cp scripts/fetch-tokenizer.sh "$tmp/co/scripts/"
cp -r migrations samples pipelines docs "$tmp/co/"
cp data/cl100k_base.json "$tmp/co/data/"
printf 'x' | dd of="$tmp/co/data/cl100k_base.json" bs=1 seek=100 conv=notrunc status=none
: >"$tmp/co/bin/kbpipe"
rc=0
make --no-print-directory -C "$tmp/co" -o bin/kbpipe install PREFIX="$tmp/prefix" >"$tmp/out" 2>&1 || rc=$?
check "make install refuses a damaged data/cl100k_base.json" test "$rc" != 0
check "  ... saying what to do" grep -q "git checkout -- data/cl100k_base.json" "$tmp/out"
check "  ... and installs nothing" test ! -e "$tmp/prefix"
finish
