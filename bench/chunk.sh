#!/usr/bin/env bash
# bench/chunk.sh - chunking throughput: chunk_document() (split + SHA-256 of
# every chunk + exact cl100k_base counts) in MB/s on one core over a 200 MB
# generated Markdown corpus (bench/gen_markdown.py, deterministic, kept in
# bench/out/chunk/, never committed), for each splitter; then the C encoder
# against the reference (tiktoken under node) on a slice of the same text, as
# a ratio, through bench/tokenizer.sh.  Prints, asserts nothing (target in
# issue 5: chunk+hash+count >= 50 MB/s).  Needs `make deps`.
#   KBPIPE_BENCH_MB=200       corpus size
#   KBPIPE_BENCH_REF_MB=20    slice given to the reference (0: skip it)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${KBPIPE_BENCH_OUT:-$root/bench/out/chunk}
mb=${KBPIPE_BENCH_MB:-200}
ref_mb=${KBPIPE_BENCH_REF_MB:-20}
mkdir -p "$out"

# the chunker and src/util alone, at the release flags
bin=$out/chunk_bench
cc -std=c11 -D_GNU_SOURCE -O2 -Isrc -DKB_DATADIR='"/usr/local/share/kbpipe"' \
   -o "$bin" bench/chunk_bench.c src/chunk/*.c src/util/*.c \
   $(pkg-config --cflags --libs jansson libsodium) -lm

corpus=$out/corpus-${mb}mb.md
[ -f "$corpus" ] || python3 bench/gen_markdown.py "$corpus" "$mb"

mbs() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }
first=1
for settings in "markdown tokens 512 64" "recursive tokens 512 64" "fixed tokens 512 64" \
                "markdown chars 2000 200"; do
  read -r bytes docs chunks tokens chunk_s count_s hash_s <<<"$("$bin" "$corpus" $settings 3)"
  if [ $first = 1 ]; then
    printf 'chunk: %s: %.1f MB, %s documents, %s tokens in chunks\n' "$(basename "$corpus")" \
           "$(awk -v b="$bytes" 'BEGIN { print b / 1e6 }')" "$docs" "$tokens"
    printf '  %-26s %8s MB/s   (count alone: %s MB/s; document hash: %s MB/s)\n' \
           "settings" "chunk+hash+count" "$(mbs "$bytes" "$count_s")" "$(mbs "$bytes" "$hash_s")"
    first=0
  fi
  printf '  %-26s %8s MB/s   %s chunks\n' "${settings// //}" "$(mbs "$bytes" "$chunk_s")" "$chunks"
done

if [ "$ref_mb" != 0 ]; then
  slice=$out/slice-${ref_mb}mb.md
  [ -f "$slice" ] || head -c "$((ref_mb * 1000000))" "$corpus" | tr '\036' '\n' > "$slice"
  echo "chunk: encoder against the reference on the first $ref_mb MB of the corpus:"
  bash bench/tokenizer.sh "$slice" | sed 's/^/  /'
fi
