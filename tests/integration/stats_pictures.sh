#!/usr/bin/env bash
# tests/integration/stats_pictures.sh - the pictures of `kbpipe stats`
# (issue 16) against the real server, on rows inserted with psql whose
# values are known: the token lengths per source type (min, p50, p95, max
# and the 16 bins' counts) and the last runs' seconds and chunks; drawn with
# Unicode blocks on a terminal (script(1)), ASCII with no escape sequence
# off one, numbers in --json.
#   KBPIPE_BIN=build/kbpipe-test bash tests/integration/stats_pictures.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

db=$(new_db stpic)
sql "$db" "INSERT INTO projects (name) VALUES ('sp'), ('other')" >/dev/null
# files: one source, 100 chunks of 1..100 tokens; csv: 3 chunks of 10, 20, 30
sql "$db" "INSERT INTO knowledge_sources (project_id, source_type, source_id)
           SELECT id, t, t || '-src' FROM projects, (VALUES ('files'), ('csv')) v(t) WHERE name = 'sp'" >/dev/null
sql "$db" "INSERT INTO knowledge_chunks (source_id, project_id, chunk_index, content, content_hash, token_count)
           SELECT s.id, s.project_id, n, 'c' || n, md5(n::text), n FROM knowledge_sources s, generate_series(1, 100) n
           WHERE s.source_type = 'files'
           UNION ALL
           SELECT s.id, s.project_id, n, 'c' || n, md5(n::text), n * 10 FROM knowledge_sources s, generate_series(1, 3) n
           WHERE s.source_type = 'csv'" >/dev/null
# another project's chunk of 5000 tokens must not move sp's bins
sql "$db" "WITH s AS (INSERT INTO knowledge_sources (project_id, source_type, source_id)
                      SELECT id, 'files', 'big' FROM projects WHERE name = 'other' RETURNING id, project_id)
           INSERT INTO knowledge_chunks (source_id, project_id, chunk_index, content, content_hash, token_count)
           SELECT id, project_id, 0, 'big', 'h', 5000 FROM s" >/dev/null
# four runs of sp, 10, 20, 40 and 80 s long, with 0, 5, 10 and 20 chunks written
sql "$db" "INSERT INTO kbpipe_runs (pipeline, project_id, started_at, finished_at, status, counts)
           SELECT 'p', p.id, now() - interval '1 day' + k * interval '1 hour',
                  now() - interval '1 day' + k * interval '1 hour' + s * interval '1 second',
                  'succeeded', jsonb_build_object('chunks_written', c)
           FROM projects p, (VALUES (1, 10, 0), (2, 20, 5), (3, 40, 10), (4, 80, 20)) v(k, s, c)
           WHERE p.name = 'sp'" >/dev/null

kb "$db" stats --project sp --json
check_rc "stats --json" 0
check_eq "token lengths per source type: chunks, min, p50, p95, max (percentile_disc)" \
  "csv 3 10 20 30 30|files 100 1 50 95 100" \
  "$(jq -r '[.token_lengths[] | "\(.type) \(.chunks) \(.min) \(.p50) \(.p95) \(.max)"] | join("|")' "$tmp/out" 2>/dev/null)"
want=$(python3 -c 'print(",".join(str(sum(1 for t in range(1, 101) if min(t * 16 // 101, 15) == k)) for k in range(16)))')
check_eq "... the 16 bins' counts over 0..100 (the project's largest), files" "$want" \
  "$(jq -r '.token_lengths[] | select(.type == "files") | .bins | map(tostring) | join(",")' "$tmp/out" 2>/dev/null)"
check_eq "... csv: 10, 20 and 30 tokens in bins 1, 3 and 4" "0,1,0,1,1,0,0,0,0,0,0,0,0,0,0,0 100" \
  "$(jq -r '.token_lengths[] | select(.type == "csv") | "\(.bins | map(tostring) | join(",")) \(.bins_max)"' "$tmp/out" 2>/dev/null)"
check_eq "the last runs, oldest first: seconds and chunks" "10,20,40,80 0,5,10,20" \
  "$(jq -r '.run_trend[0] | "\(.seconds | map(. + 0 | tostring) | join(",")) \(.chunks | map(tostring) | join(","))"' "$tmp/out" 2>/dev/null)"
check_eq "... --runs 2: the last two" "40,80" \
  "$("$bin" --db "dbname=$db" stats --project sp --json --runs 2 | jq -r '.run_trend[0].seconds | map(. + 0 | tostring) | join(",")')"

kb "$db" stats --project sp
check_rc "stats off a terminal" 0
check "... the token lengths table" \
  grep -qE '^csv +3 +10 +20 +30 +30   # ## {11}$' "$tmp/out"
check "... the files row (16 ASCII levels, none blank)" \
  grep -qE '^files +100 +1 +50 +95 +100  [._:=+*#-]{16}$' "$tmp/out"
check "... the runs' sparklines: seconds ._:# (10, 20, 40, 80 of 80), chunks ' _:#'" \
  grep -qE '^ +4 +10\.0 +80\.0  \._:# +0 +20   _:#$' "$tmp/out"
check "... no escape sequence and no byte outside ASCII" sh -c "! LC_ALL=C grep -q '[^ -~]' '$tmp/out'"
if script -qec true /dev/null >/dev/null 2>&1; then
  script -qec "$bin --db dbname=$db stats --project sp" /dev/null >"$tmp/tty" 2>&1
  check "on a terminal: the csv row in blocks" grep -q '^csv .*30   █ ██' "$tmp/tty"
  check "... the seconds sparkline" grep -q '▁▂▄█' "$tmp/tty"
  check "... the chunks sparkline" grep -q ' ▂▄█' "$tmp/tty"
else
  note "no script(1): the terminal rendering is not tested"
fi
kb "$db" stats --project other --json
check_eq "a project without runs: empty lists" "[] 1" \
  "$(jq -c '"\(.run_trend[0].seconds) \(.token_lengths | length)"' "$tmp/out" 2>/dev/null | tr -d '"')"
finish
