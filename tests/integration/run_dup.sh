#!/usr/bin/env bash
# tests/integration/run_dup.sh - a source_id seen twice in one run (issue 7:
# atomic, idempotent loading): the first occurrence is loaded, the second is
# a reject naming both origins, counted, in the reject file, and the run
# exits 3, however the two land in batches.
#   1. a CSV of learnings with a repeated key
#   2. one relative path under two roots of one files source
#   3. a re-run: the first occurrences are unchanged, the duplicates rejected again
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_dup.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

mkdir -p "$tmp/r1/guide" "$tmp/r2/guide"
printf '# Setup\n\nThe first root holds the setup page.\n' >"$tmp/r1/guide/setup.md"
printf '# Other\n\nOnly in the first root.\n' >"$tmp/r1/other.md"
printf '# Setup again\n\nThe second root has a page at the same path.\n' >"$tmp/r2/guide/setup.md"
printf '# Extra\n\nOnly in the second root.\n' >"$tmp/r2/extra.md"
cat >"$tmp/dup.csv" <<'CSV'
id,title,content,learning_type,category,tags,confidence_score,impact_level
K-1,First of the key,"The first row with key K-1 is the one loaded.",insight,test,a,0.6,low
K-2,Another row,"A row with its own key.",insight,test,b,0.6,low
K-1,Second of the key,"A later row reusing the key K-1 is rejected.",insight,test,c,0.6,low
CSV
{ hash_pipeline it-dup it-dup
  printf '%s\n' "reject_file: $tmp/rejects.jsonl" "load:" "  batch_rows: \${RUN_BATCH_ROWS:-50}" \
    "sources:"
  learnings_source notes "$tmp/dup.csv"; files_source pages "$tmp/r1" "$tmp/r2"; } >"$tmp/dup.yaml"

# 50-row batches put both occurrences in one batch (the case that failed
# the whole batch with "ON CONFLICT DO UPDATE command cannot affect row a
# second time"); 1-row batches put them in two
for b in 50 1; do
  echo "# batch_rows $b"
  db=$(new_db "dup$b")
  rm -f "$tmp/rejects.jsonl"
  RUN_BATCH_ROWS=$b kb "$db" run "$tmp/dup.yaml" --report "$tmp/r.json"
  check_rc "a run with two duplicates exits 3" 3
  check "... naming the CSV duplicate and its first row" \
    grep -q "dup.csv:4: duplicate source_id 'K-1' (first at $tmp/dup.csv:2)" "$tmp/err"
  check "... naming the path duplicate and its first root" \
    grep -q "r2/guide/setup.md: duplicate source_id 'guide/setup.md' (first at $tmp/r1/guide/setup.md)" "$tmp/err"
  check_eq "... two lines in the reject file" 2 "$(wc -l <"$tmp/rejects.jsonl" 2>/dev/null || echo 0)"
  check "... the reject file names both duplicates" \
    sh -c "grep -q 'K-1' '$tmp/rejects.jsonl' && grep -q 'r2/guide/setup.md' '$tmp/rejects.jsonl'"
  check_eq "... the report counts 2 rejected, 1 per source" "2 1 1" \
    "$(jget "$tmp/r.json" '"\(.rejected) \(.sources[0].rejected) \(.sources[1].rejected)"')"
  check_eq "... the status is partial" partial "$(sql "$db" "SELECT status FROM kbpipe_runs ORDER BY id DESC LIMIT 1")"
  check_eq "the first K-1 row is the one loaded, K-2 too" "K-1 First of the key|K-2 Another row" \
    "$(sql "$db" "SELECT string_agg(s.source_id || ' ' || l.title, '|' ORDER BY s.source_id)
                  FROM learnings l JOIN knowledge_sources s ON s.id = l.knowledge_source_id")"
  check_eq "the first root's guide/setup.md is the one loaded" "1 0" \
    "$(sql "$db" "SELECT count(*) FILTER (WHERE content LIKE '%first root holds%') || ' ' ||
                         count(*) FILTER (WHERE content LIKE '%second root has%') FROM knowledge_chunks")"
  check_eq "every other page is loaded once" "extra.md guide/setup.md other.md" \
    "$(sql "$db" "SELECT string_agg(source_id, ' ' ORDER BY source_id) FROM knowledge_sources
                  WHERE source_type <> 'csv'")"
done

echo "# a re-run"
rows "$db" >"$tmp/rows.before"
rm -f "$tmp/rejects.jsonl"
RUN_BATCH_ROWS=1 kb "$db" run "$tmp/dup.yaml" -q --report "$tmp/r2.json"
check_rc "the re-run exits 3 again (the duplicates are still there)" 3
rows "$db" >"$tmp/rows.after"
check_same "... and writes nothing: the first occurrences are unchanged" "$tmp/rows.before" "$tmp/rows.after"
check_eq "... 5 sources unchanged, 2 rejected" "5 2" \
  "$(jget "$tmp/r2.json" .load.sources_unchanged) $(jget "$tmp/r2.json" .rejected)"

finish
