#!/usr/bin/env bash
# bench/tokenizer.sh [FILE] - cl100k_base encoding throughput: kbpipe's C
# encoder against the reference (tiktoken 1.0.22, Rust compiled to wasm, under
# node) on the same text in the same run; MB/s and their ratio.  Prints,
# asserts nothing.  Needs `make deps-test` (the reference under node).
#
# Texts: FILE if given (e.g. the chunk benchmark's Markdown corpus), else
#   docs   prose, code and Markdown       (gen_corpus.py 24 prose,code,markdown)
#   test   the test corpus: CJK, emoji, fuzz, long runs, code point sweep
# The C figures are the best of 3 rounds, the reference's of one (it takes
# long enough to be above the machine's noise); all exclude process start, file read and table
# load.  The ids of both are compared, so a figure is never for a wrong answer.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${KBPIPE_BENCH_OUT:-$root/bench/out/tokenizer}
mkdir -p "$out"

# the encoder and src/util alone, at the release flags: no other module is needed
bin=$out/tokenizer_bench
srcs=(bench/tokenizer_bench.c src/chunk/tokenizer.c src/chunk/pretokenize.c
      src/chunk/tokenizer_unicode.c src/util/*.c)
cc -std=c11 -D_GNU_SOURCE -O2 -Isrc -DKB_DATADIR='"/usr/local/share/kbpipe"' \
   -o "$bin" "${srcs[@]}" $(pkg-config --cflags --libs jansson) -lm

texts=()
if [ $# -gt 0 ]; then
  texts+=("$1")
else
  [ -f "$out/docs.txt" ] || python3 tests/data/tokenizer/gen_corpus.py "$out/docs.txt" 24 prose,code,markdown
  [ -f "$out/test.txt" ] || python3 tests/data/tokenizer/gen_corpus.py "$out/test.txt"
  texts+=("$out/docs.txt" "$out/test.txt")
fi

mbs() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }
# the reference (tiktoken under node, installed by `make deps-test`): without
# it only the C figures are printed, never a ratio against nothing
has_ref=1
node -e "require('$root/.cache/ref/node_modules/tiktoken')" 2>/dev/null ||
  node -e "require('tiktoken')" 2>/dev/null || has_ref=0
[ $has_ref = 1 ] || echo "tokenizer: the reference (npm tiktoken) is not installed: \`make deps-test\` installs it; C figures only"
for t in "${texts[@]}"; do
  if [ $has_ref = 0 ]; then
    read -r bytes tokens c_s <<<"$("$bin" --ids "$out/c.ids" "$t")"
    read -r _ _ cnt_s <<<"$("$bin" --count "$t")"
    printf 'tokenizer: %s: %.1f MB, %s tokens\n' "$(basename "$t")" \
           "$(awk -v b="$bytes" 'BEGIN { print b / 1e6 }')" "$tokens"
    printf '  C encode      %8s MB/s\n' "$(mbs "$bytes" "$c_s")"
    printf '  C count       %8s MB/s\n' "$(mbs "$bytes" "$cnt_s")"
    continue
  fi
  # $(...) waits for the program to exit, so the ids files are complete
  read -r bytes tokens c_s <<<"$("$bin" --ids "$out/c.ids" "$t")"
  read -r _ _ cnt_s <<<"$("$bin" --count "$t")"
  read -r _ ref_tokens ref_s <<<"$(node tests/ref/encode.js --bench "$t" "$out/ref.ids")"
  same=$(cmp -s "$out/c.ids" "$out/ref.ids" && echo "identical ids" || echo "IDS DIFFER")
  c=$(mbs "$bytes" "$c_s"); cnt=$(mbs "$bytes" "$cnt_s"); ref=$(mbs "$bytes" "$ref_s")
  printf 'tokenizer: %s: %.1f MB, %s tokens (%s)\n' "$(basename "$t")" \
         "$(awk -v b="$bytes" 'BEGIN { print b / 1e6 }')" "$tokens" "$same"
  printf '  C encode      %8s MB/s\n' "$c"
  printf '  C count       %8s MB/s\n' "$cnt"
  printf '  reference     %8s MB/s   (tiktoken %s tokens)\n' "$ref" "$ref_tokens"
  printf '  ratio C/ref   %8s x\n' "$(awk -v a="$c" -v b="$ref" 'BEGIN { printf "%.1f", a / b }')"
done
rm -f "$out/c.ids" "$out/ref.ids"
