#!/usr/bin/env bash
# tests/integration/run_max_errors.sh - `max_errors` with `on_error: skip`
# (docs/pipelines.md, Sources): a source may reject at most max_errors
# inputs; the one past the count stops the run.
#   1. 3 bad rows, max_errors 2: exit 1 with "more than max_errors (2)
#      inputs rejected", the 3 rejects in the reject file, the run recorded
#      as failed; the batches written before the stop are whole (every
#      stored source has all its chunks and vectors), the batch being
#      filled is not written
#   2. --dry-run stops at the same reject and writes nothing
#   3. max_errors 3 (= the bad rows) and 5: exit 3, the reject file lists
#      the 3 rows with their lines, the sources stored by run 1 are not
#      rewritten, the others are added; max_errors 0 means no limit
#   4. the rows fixed: exit 0 and an empty reject file
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_max_errors.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

P=$tmp/max-errors.yaml
{ hash_pipeline it-maxerr it-maxerr; cat <<'EOF'; } >"$P"
reject_file: ${RUN_REJECTS}
load:
  batch_rows: 4
sources:
  - name: notes
    type: csv
    path: ${RUN_CSV}
    on_error: skip
    max_errors: ${RUN_MAX_ERRORS}
dedup:
  enabled: false
EOF
export RUN_REJECTS=$tmp/rejects.jsonl RUN_CSV=$tmp/notes.csv

# Each good row is two chunks (one per "## " section), so with batch_rows 4
# a batch fills, and is handed to the writer, after every second good row.
# Good rows 1-9 with a bad row after rows 2, 5 and 7: the first two bad
# rows have a field too many, the third an empty key.
# A good row spans 7 lines (a quoted field with newlines), a bad one 1;
# write_csv records the bad rows' lines in $RUN_CSV.lines.
good() {
  printf 'N-%02d,"## Cause\n\nNote %d: the broker released a lease that a client had renewed in the last second before it expired, because the renewal and the expiry sweep ran in separate transactions.\n\n## Fix\n\nNote %d: the expiry sweep now takes the same row lock as the renewal, so a lease renewed before the sweep reads it is never released, and the staging broker has not lost one since."\n' "$1" "$1" "$1"
}
write_csv() {   # $1: "bad" or "fixed"
  local line=1 n=0
  : >"$RUN_CSV.lines"
  echo 'id,content' >"$RUN_CSV"
  for item in g g b g g g b g g b g g; do
    if [ "$item" = g ]; then
      n=$((n + 1)); good "$n" >>"$RUN_CSV"; line=$((line + 7))
    else
      line=$((line + 1)); echo "$line" >>"$RUN_CSV.lines"
      if [ "$1" = fixed ]; then
        echo "B-$line,Fixed row of line $line." >>"$RUN_CSV"
      elif [ "$(wc -l <"$RUN_CSV.lines")" = 3 ]; then
        echo ",A row without its key." >>"$RUN_CSV"
      else
        echo "B-$line,A row with,one field too many" >>"$RUN_CSV"
      fi
    fi
  done
}
write_csv bad
bad_lines=$(paste -sd' ' "$RUN_CSV.lines")   # the lines of the 3 bad rows

# the stored sources, "source_id chunks vectors", and rows with a gap
stored() {
  sql "$1" "SELECT s.source_id || ' ' || count(c.id) || ' ' || count(c.embedding)
            FROM knowledge_sources s LEFT JOIN knowledge_chunks c ON c.source_id = s.id
            GROUP BY s.source_id ORDER BY s.source_id" | paste -sd' '
}
# the identity of the rows of sources N-01..N-06 and their chunks
# (xmin changes on every write, ids on a re-insert)
first6() {
  sql "$1" "SELECT s.source_id || ' ' || s.id || ' ' || s.xmin || ' ' ||
                   coalesce(string_agg(c.id || ':' || c.xmin, ' ' ORDER BY c.chunk_index), '')
            FROM knowledge_sources s LEFT JOIN knowledge_chunks c ON c.source_id = s.id
            WHERE s.source_id <= 'N-06' GROUP BY s.source_id, s.id, s.xmin ORDER BY 1"
}
gaps() {
  sql "$1" "SELECT count(*) FROM (SELECT source_id FROM knowledge_chunks GROUP BY source_id
            HAVING max(chunk_index) + 1 <> count(*) OR min(chunk_index) <> 0) g"
}
reject_lines() { jq -r .line "$RUN_REJECTS" 2>/dev/null | paste -sd' '; }

##############################################################################
echo "# 1. more bad rows than max_errors: the run stops"
db=$(new_db maxerr)
RUN_MAX_ERRORS=2 kb "$db" run "$P" -q --report "$tmp/r1.json"
check_rc "3 bad rows, max_errors 2: exit 1" 1
check_eq "one line on stderr (-q): the source, the limit and the reject file" \
  "kbpipe: notes: more than max_errors (2) inputs rejected; the run stops (see $RUN_REJECTS)" \
  "$(cat "$tmp/err")"
check_eq "the reject file holds the 3 rows, the third being the one past the limit" \
  "$bad_lines" "$(reject_lines)"
check_eq "... each with its source and reason" 3 \
  "$(jq -r 'select(.source == "notes" and (.reason | length) > 0) | .origin' "$RUN_REJECTS" | grep -c "notes.csv:")"
check_eq "the report: failed, 3 rejected, the error" \
  "failed 3 more than max_errors (2) inputs rejected; the run stops (see $RUN_REJECTS)" \
  "$(jget "$tmp/r1.json" '"\(.status) \(.rejected) \(.error)"')"
check_eq "kbpipe_runs records the run as failed" failed \
  "$(sql "$db" "SELECT status FROM kbpipe_runs ORDER BY id DESC LIMIT 1")"
# the 3rd bad row comes after good row 7; rows 1-6 filled three batches,
# row 7 sat in the batch being filled
check_eq "the three full batches are stored, whole: rows 1-6, 2 chunks and 2 vectors each" \
  "N-01 2 2 N-02 2 2 N-03 2 2 N-04 2 2 N-05 2 2 N-06 2 2" "$(stored "$db")"
check_eq "no source has a gap in its chunks" 0 "$(gaps "$db")"
check_eq "no chunk without its source, no source without a doc hash" "0 0" \
  "$(sql "$db" "SELECT (SELECT count(*) FROM knowledge_chunks c WHERE NOT EXISTS
                        (SELECT 1 FROM knowledge_sources s WHERE s.id = c.source_id)) || ' ' ||
                       (SELECT count(*) FROM knowledge_sources WHERE doc_hash IS NULL)")"
check_eq "the report counts the chunks written" 12 "$(jget "$tmp/r1.json" .load.chunks_written)"

##############################################################################
echo "# 2. --dry-run stops at the same reject and writes nothing"
rows "$db" >"$tmp/rows.before"; runs "$db" >"$tmp/runs.before"
cp "$RUN_REJECTS" "$tmp/rejects.before"
RUN_MAX_ERRORS=2 kb "$db" run "$P" --dry-run
check_rc "--dry-run, max_errors 2: exit 1" 1
check "... with the same message (no reject file: the log)" \
  grep -qx "kbpipe: notes: more than max_errors (2) inputs rejected; the run stops (see the log)" "$tmp/err"
check_eq "... which, without -q, has each reject with its line" "$bad_lines" \
  "$(sed -n 's/^kbpipe: warning: .*notes.csv:\([0-9]*\): .*(skipped: on_error is skip)$/\1/p' "$tmp/err" | paste -sd' ')"
rows "$db" >"$tmp/rows.after"; runs "$db" >"$tmp/runs.after"
check_same "... no row written" "$tmp/rows.before" "$tmp/rows.after"
check_same "... no run recorded" "$tmp/runs.before" "$tmp/runs.after"
check_same "... the reject file untouched" "$tmp/rejects.before" "$RUN_REJECTS"

##############################################################################
echo "# 3. as many bad rows as max_errors, or fewer: the run finishes"
first6 "$db" >"$tmp/src.before"
RUN_MAX_ERRORS=3 kb "$db" run "$P" -q --report "$tmp/r3.json"
check_rc "3 bad rows, max_errors 3: exit 3" 3
check_eq "the reject file lists the 3 rows" "$bad_lines" "$(reject_lines)"
check_eq "the report: partial, 3 rejected, no error" "partial 3 null" \
  "$(jget "$tmp/r3.json" '"\(.status) \(.rejected) \(.error)"')"
check_eq "every good row is stored, whole" \
  "N-01 2 2 N-02 2 2 N-03 2 2 N-04 2 2 N-05 2 2 N-06 2 2 N-07 2 2 N-08 2 2 N-09 2 2" "$(stored "$db")"
check_eq "the 6 stored by the stopped run are unchanged, 3 new" "6 3 6" \
  "$(jget "$tmp/r3.json" '"\(.load.sources_unchanged) \(.load.sources_new) \(.load.chunks_written)"')"
first6 "$db" >"$tmp/src.after"
check_same "... their rows were not rewritten" "$tmp/src.before" "$tmp/src.after"
RUN_MAX_ERRORS=5 kb "$db" run "$P" -q
check_rc "max_errors 5: exit 3" 3
check_eq "... the same 3 rejects" "$bad_lines" "$(reject_lines)"
RUN_MAX_ERRORS=0 kb "$db" run "$P" -q
check_rc "max_errors 0 (no limit): exit 3" 3
check_eq "... the same 3 rejects" "$bad_lines" "$(reject_lines)"

##############################################################################
echo "# 4. the rows fixed"
write_csv fixed
RUN_MAX_ERRORS=2 kb "$db" run "$P" -q
check_rc "no bad row: exit 0" 0
check "the reject file is empty (it is per run)" test ! -s "$RUN_REJECTS"
check_eq "12 sources, no gap" "12 0" \
  "$(sql "$db" "SELECT count(*) FROM knowledge_sources") $(gaps "$db")"

finish
