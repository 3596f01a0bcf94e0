#!/usr/bin/env bash
# tests/integration/dedup_histogram.sh - `kbpipe dedup --histogram` (issue
# 16) against the real server: learnings inserted by SQL with vectors whose
# nearest-neighbour similarities are known (unit vectors on their own axes:
# a pair at 0.975, a pair at 0.925, a pair at 0.625, a chain of three at
# 0.97 whose two ends are at 0.8818, three lone ones at 0), so the count of
# every bin is exact; the pairs it says mark would mark are what
# `dedup --action report` finds and what `dedup` (mark) then marks; the bars
# are Unicode blocks on a terminal (script(1)) and '#' in ASCII off one.
#   KBPIPE_BIN=build/kbpipe-test bash tests/integration/dedup_histogram.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

db=$(new_db dhist)
sql "$db" "INSERT INTO projects (name) VALUES ('h')" >/dev/null
# title, axis i with value a, axis j with value b (j = 0: none)
sql "$db" "INSERT INTO learnings (project_id, title, content, embedding)
  SELECT p.id, t, 'learning ' || t,
         (SELECT array_agg(CASE WHEN k = i THEN a WHEN k = j THEN b ELSE 0 END ORDER BY k)
            FROM generate_series(1, 1536) k)::vector
  FROM projects p, (VALUES
    ('a1', 1, 1.0, 0, 0.0), ('a2', 1, 0.975, 2, sqrt(1 - 0.975 ^ 2)),
    ('b1', 3, 1.0, 0, 0.0), ('b2', 3, 0.925, 4, sqrt(1 - 0.925 ^ 2)),
    ('c1', 5, 1.0, 0, 0.0), ('c2', 5, 0.625, 6, sqrt(1 - 0.625 ^ 2)),
    ('x',  7, 1.0, 0, 0.0), ('y', 7, 0.97, 8, sqrt(1 - 0.97 ^ 2)), ('z', 7, 0.97, 8, -sqrt(1 - 0.97 ^ 2)),
    ('s1', 9, 1.0, 0, 0.0), ('s2', 10, 1.0, 0, 0.0), ('s3', 11, 1.0, 0, 0.0)) v(t, i, a, j, b)
  WHERE p.name = 'h'" >/dev/null
sql "$db" "INSERT INTO learnings (project_id, title, content) SELECT id, 'no vector', 'not embedded' FROM projects WHERE name = 'h'" >/dev/null
# the keeper of a pair is the older learning (then the smaller uuid): x, the
# chain's middle, is made the oldest so it keeps both y and z, and the pass
# marks two there whatever uuids the rows got (else y could keep x, and
# (x, z) would be skipped: x already marked)
sql "$db" "UPDATE learnings SET created_at = now() - interval '1 hour' WHERE title = 'x'" >/dev/null
# the similarities as the server computes them, rounded, for the record
note "$(sql "$db" "SELECT string_agg(a.title || '~' || b.title || '=' || round((1 - (a.embedding <=> b.embedding))::numeric, 4), ' ' ORDER BY a.title, b.title)
                   FROM learnings a JOIN learnings b ON a.title < b.title
                   WHERE 1 - (a.embedding <=> b.embedding) > 0.5")"

kb "$db" dedup --project h --histogram --json --threshold 0.9
check_rc "dedup --histogram --json" 0
counts=$(jq -r '[.bins[] | select(.count > 0) | "\(.from)-\(.to):\(.count)"] | join(" ")' "$tmp/out" 2>/dev/null)
check_eq "... the count of every bin is exact (empty bins left out here)" \
  "0-0.05:3 0.6-0.65:2 0.9-0.95:2 0.95-1:5" "$counts"
check_eq "... 20 bins by default, covering [0, 1]" "20 0 1" \
  "$(jq -r '"\(.bins | length) \(.bins[0].from) \(.bins[-1].to)"' "$tmp/out" 2>/dev/null)"
check_eq "... the embedded learnings, each counted once" "12 12" \
  "$(jq -r '"\(.learnings) \([.bins[].count] | add)"' "$tmp/out" 2>/dev/null)"
check_eq "... the threshold, the learnings with a neighbour at or above it, the pairs mark would mark" \
  "0.9 7 4" "$(jq -r '"\(.threshold) \(.above_threshold) \(.pairs_at_threshold)"' "$tmp/out" 2>/dev/null)"
check_eq "... min and max" "0 0.975" "$(jq -r '"\(.min) \(.max)"' "$tmp/out" 2>/dev/null)"

kb "$db" dedup --project h --histogram --json --bins 4
check_rc "--bins 4 without --threshold" 0
check_eq "... four bins, counted again" "0-0.25:3 0.25-0.5:0 0.5-0.75:2 0.75-1:7" \
  "$(jq -r '[.bins[] | "\(.from)-\(.to):\(.count)"] | join(" ")' "$tmp/out" 2>/dev/null)"
check_eq "... the default threshold of the dedup pass (0.95: no embedding model recorded)" "0.95 5 3" \
  "$(jq -r '"\(.threshold) \(.above_threshold) \(.pairs_at_threshold)"' "$tmp/out" 2>/dev/null)"

for t in 0.6 0.9 0.95; do
  kb "$db" dedup --project h --histogram --json --threshold "$t"
  marked=$(jq -r '.pairs_at_threshold' "$tmp/out" 2>/dev/null)
  kb "$db" dedup --project h --action report --threshold "$t"
  check_eq "threshold $t: the histogram's pairs are what dedup --action report finds" \
    "$marked" "$(sed -n 's/.* \([0-9]*\) duplicate pair(s) found.*/\1/p' "$tmp/out")"
done
check_eq "... and report marked nothing" 0 "$(sql "$db" "SELECT count(*) FROM learnings WHERE metadata ? 'duplicate_of'")"

# the pictures: off a terminal ASCII only; on one (script(1)) Unicode blocks
kb "$db" dedup --project h --histogram --threshold 0.9
check_rc "dedup --histogram off a terminal" 0
check "... bars of '#'" grep -q '^0.95-1.00 |#\{40\} 5$' "$tmp/out"
check "... the threshold's bin marked" grep -q '^0.90-0.95 |################  *2  <- threshold 0.900$' "$tmp/out"
check "... and its summary" grep -q '^threshold 0.900: 7 learnings have a neighbour at or above it; the mark pass would mark 4 pairs$' "$tmp/out"
check "... nothing but printable ASCII" sh -c "! LC_ALL=C grep -q '[^ -~]' '$tmp/out'"
if script -qec true /dev/null >/dev/null 2>&1; then
  script -qec "$bin --db dbname=$db dedup --project h --histogram --threshold 0.9" /dev/null >"$tmp/tty" 2>&1
  check "on a terminal the bars are Unicode blocks" grep -q '^0.95-1.00 |████████████████████████████████████████ 5' "$tmp/tty"
  check "... 2/5 of 40 columns: 16 full blocks" grep -q '^0.90-0.95 |████████████████  *2  <- threshold 0.900' "$tmp/tty"
  script -qec "$bin --db dbname=$db dedup --project h --histogram --bins 4" /dev/null >"$tmp/tty4" 2>&1
  check "... and eighths: 2/7 of 320 eighths = 91 = 11 blocks and U+258D" \
    grep -q '^0.50-0.75 |███████████▍  *2$' <(tr -d '\r' <"$tmp/tty4")
  check "... and no '#'" sh -c "! grep -q '#' '$tmp/tty'"
else
  note "no script(1): the terminal bars are not tested"
fi

# the mark pass at 0.9 marks what the histogram said
kb "$db" dedup --project h --threshold 0.9
check_rc "dedup (mark) at 0.9" 0
check "... marks 4 pairs, as the histogram said" grep -q "4 duplicate pair(s) found, 4 marked" "$tmp/out"
check_eq "... 4 learnings carry duplicate_of" 4 "$(sql "$db" "SELECT count(*) FROM learnings WHERE metadata ? 'duplicate_of'")"
kb "$db" dedup --project h --histogram --json --threshold 0.9
check_eq "... and the histogram leaves marked learnings out, as the pass does" "8 0" \
  "$(jq -r '"\(.learnings) \(.pairs_at_threshold)"' "$tmp/out" 2>/dev/null)"

# a project of one learning: no neighbour, nothing to draw
sql "$db" "INSERT INTO projects (name) VALUES ('one')" >/dev/null
sql "$db" "INSERT INTO learnings (project_id, title, content, embedding) SELECT id, 'alone', 'x', (array_fill(0.0, ARRAY[1535]) || ARRAY[1.0])::vector FROM projects WHERE name = 'one'" >/dev/null
kb "$db" dedup --project one --histogram --json
check_eq "a lone learning has no neighbour: no count, min null" "0 0 null" \
  "$(jq -r '"\(.learnings) \([.bins[].count] | add) \(.min)"' "$tmp/out" 2>/dev/null)"

kb "$db" dedup --project h --histogram --bins 0
check_rc "--bins 0 is a usage error" 2
check "... saying what it takes" grep -q "bins '0' is not a count in 1..100" "$tmp/err"
kb "$db" dedup --project h --json
check_rc "--json without --histogram is a usage error" 2
kb "$db" dedup --project h --histogram --action merge
check_rc "--histogram with --action is a usage error" 2
check "... saying it changes nothing" grep -q "histogram changes nothing and takes no --action" "$tmp/err"
kb "$db" dedup --project nope --histogram
check_rc "an unknown project" 1
check "... named, as every catalogue command names it" grep -q "dedup: no project named 'nope'" "$tmp/err"
finish
