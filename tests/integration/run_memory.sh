#!/usr/bin/env bash
# tests/integration/run_memory.sh - peak RSS of a run on one large input
# (issue 13 point 5; docs/loading.md, "One large input"): a memory bound,
# not a timing.
#   1. one Markdown line of words at the default max_file_size (8 MB):
#      stored whole, peak RSS (/usr/bin/time -v) under 100 MiB.
#   2. three such files (different words) in one source, index_strategy
#      auto: the first flush's look-ahead reads the second and third large
#      inputs while the first is in the batch; each stored whole.  Its peak
#      RSS is printed, not bounded: 146 MiB measured, over the 100 MiB of
#      (1) (docs/loading.md, "One large input", says so; the bound is the
#      bounded-memory work in src/pipeline).
# The inputs without blanks and the 8 MB CSV field are measured by
# bench/perf.sh (5) and do not meet the bound yet (docs/loading.md says why).
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_memory.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

[ -x /usr/bin/time ] || { echo "run_memory.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
mkdir -p "$tmp/big"
python3 "$top/bench/gen_line.py" "$tmp/big/line.md" $((8 * 1024 * 1024))
cat >"$tmp/big.yaml" <<YAML
name: it-memory
project: it-memory
chunking:
  overlap: 0
embedding:
  provider: hash
sources:
  - name: big
    type: files
    roots: ["$tmp/big"]
YAML
db=$(new_db memory)
rc=0
/usr/bin/time -v -o "$tmp/time" "$bin" --db "dbname=$db" run "$tmp/big.yaml" -q \
  >"$tmp/out" 2>"$tmp/err" || rc=$?
check_rc "a run on one 8 MB line of words succeeds" 0
check_eq "... and stores all of it (its words, in order)" "$(tr -d ' \n' <"$tmp/big/line.md" | md5sum | cut -d' ' -f1)" \
  "$(sql "$db" "SELECT md5(string_agg(translate(content, E' \\n', ''), '' ORDER BY chunk_index))
                FROM knowledge_chunks")"
kib=$(awk '/Maximum resident set size/ { print $NF }' "$tmp/time")
if ldd "$bin" 2>/dev/null | grep -q libasan; then
  # ASan's shadow memory and quarantine are not kbpipe's footprint
  note "peak RSS $((kib / 1024)) MiB under AddressSanitizer: the bound is checked by the release build"
else
  check "... with a peak RSS under 100 MiB (measured $((kib / 1024)) MiB)" test "$kib" -lt $((100 * 1024))
fi

# --- 2. three 8 MB inputs in one source: the look-ahead reads the others -----
# The same words with letters swapped (the same length, other text), so no
# file is a copy of another.
mkdir -p "$tmp/three"
cp "$tmp/big/line.md" "$tmp/three/a.md"
tr 'ab' 'ba' <"$tmp/big/line.md" >"$tmp/three/b.md"
tr 'abcd' 'dabc' <"$tmp/big/line.md" >"$tmp/three/c.md"
sed -e 's/^name: it-memory/name: it-memory3/' -e 's/^project: it-memory/project: it-memory3/' \
    -e "s|$tmp/big|$tmp/three|" "$tmp/big.yaml" >"$tmp/three.yaml"
printf 'load:\n  index_strategy: auto\n' >>"$tmp/three.yaml"
db3=$(new_db memory3)
rc=0
/usr/bin/time -v -o "$tmp/time3" "$bin" --db "dbname=$db3" run "$tmp/three.yaml" -q \
  >"$tmp/out" 2>"$tmp/err" || rc=$?
check_rc "a run on three 8 MB lines of words in one source succeeds" 0
for f in a b c; do
  check_eq "... and stores all of $f.md (its words, in order)" \
    "$(tr -d ' \n' <"$tmp/three/$f.md" | md5sum | cut -d' ' -f1)" \
    "$(sql "$db3" "SELECT md5(string_agg(translate(c.content, E' \\n', ''), '' ORDER BY c.chunk_index))
                   FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
                   WHERE s.source_id = '$f.md'")"
done
kib=$(awk '/Maximum resident set size/ { print $NF }' "$tmp/time3")
if ldd "$bin" 2>/dev/null | grep -q libasan; then
  note "peak RSS $((kib / 1024)) MiB under AddressSanitizer: the bound is checked by the release build"
else
  check "... with a peak RSS under 100 MiB (measured $((kib / 1024)) MiB)" test "$kib" -lt $((100 * 1024))
fi
finish
