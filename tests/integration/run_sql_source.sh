#!/usr/bin/env bash
# tests/integration/run_sql_source.sh - type: sql (issue 18; docs/pipelines.md,
# "type: sql") against the real server:
#   1. rows inserted by SQL load as documents (source_type sql, title,
#      metadata of the remaining columns), the watermark stored;
#   2. an unchanged re-run writes nothing (no row of the knowledge tables
#      touched) and reads only the rows at the mark;
#   3. one row's text and updated_at edited: exactly that source re-embedded,
#      once (the next run computes nothing);
#   4. a row inserted late with updated_at equal to the mark is still loaded;
#   5. a NULL text is a located reject and holds the mark back;
#   6. a removed row: kept by an incremental run, deleted by --full, and
#      nothing of another pipeline of the project deleted;
#   7. a bad query, a missing column (columns and template): located errors,
#      nothing stored lost, the mark unchanged;
#   8. database_env: a query_file (beside the pipeline file) and a template
#      over another database; the variable unset, and a refused connection
#      whose conninfo holds a password (never printed);
#   9. pipelines/supervisor.yaml over `kbpipe seed`'s rows: every issue, epic
#      and task loaded, the demo's search finds the seeded issue first, a new
#      comment re-embeds its issue only;
#  10. memory: 300k rows of generate_series through a dry run and 5000 loaded,
#      each with a peak RSS under 100 MiB (/usr/bin/time -v), wall times printed;
#  11. twelve 7 MB rows in one FETCH under 100 MiB, and a 9 MB row rejected,
#      located, by the default max_record_size.
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_sql_source.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

[ -x /usr/bin/time ] || { echo "run_sql_source.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
db=$(new_db sql)
sql "$db" "CREATE TABLE notes (id int PRIMARY KEY, title text, body text, tag text,
                               updated_at timestamptz NOT NULL);
           INSERT INTO notes SELECT g, 'Note ' || g, 'The body of note ' || g || ' about topic ' || g % 3,
                                    'tag' || g % 2, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 minute'
                               FROM generate_series(1, 5) g" >/dev/null

pipe() {   # FILE QUERY [EXTRA YAML LINES...]: the notes pipeline with this query
  local f=$1 q=$2; shift 2
  {
    printf 'name: it-sql\nproject: it-sql\nembedding:\n  provider: hash\nsources:\n'
    printf '  - name: notes\n    type: sql\n    on_error: skip\n    query: %s\n' "$q"
    printf '    watermark: updated_at\n'
    if [ $# -gt 0 ]; then printf '    %s\n' "$@"
    else printf '    columns: {source_id: id, title: title, text: body}\n'; fi
  } >"$f"
}
pipe "$tmp/notes.yaml" "SELECT id, title, body, tag, updated_at FROM notes"
cat >"$tmp/files.yaml" <<YAML
name: it-files
project: it-sql
embedding:
  provider: hash
sources:
  - name: docs
    type: files
    roots: ["$tmp/docs"]
YAML
mkdir -p "$tmp/docs"
echo "# Other pipeline" >"$tmp/docs/other.md"
mark() { sql "$db" "SELECT value FROM kbpipe_source_state WHERE pipeline = 'it-sql' AND source_name = 'notes' AND key = 'watermark'"; }
src() { jget "$tmp/r.json" ".sources[0].$1"; }   # a count of the last report's source

# 1. the first run ------------------------------------------------------------
kb "$db" run "$tmp/files.yaml" -q
check_rc "the other pipeline of the project loads" 0
kb "$db" run "$tmp/notes.yaml" -q --report "$tmp/r.json"
check_rc "a run over rows inserted by SQL succeeds" 0
check_eq "... 5 new documents, 5 vectors" "5 5" "$(src new) $(src vectors_computed)"
check_eq "... stored as source_type sql with their titles" "1 Note 1|2 Note 2|3 Note 3|4 Note 4|5 Note 5" \
  "$(sql "$db" "SELECT string_agg(source_id || ' ' || title, '|' ORDER BY source_id) FROM knowledge_sources WHERE source_type = 'sql'")"
check_eq "... the remaining columns as metadata" '{"tag": "tag0", "updated_at": "2026-01-01 00:02:00+00"}' \
  "$(sql "$db" "SELECT metadata FROM knowledge_sources WHERE source_type = 'sql' AND source_id = '2'")"
check_eq "... the chunk holds the row's text" "The body of note 2 about topic 2" \
  "$(sql "$db" "SELECT c.content FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id WHERE s.source_id = '2'")"
check_eq "... the highest watermark stored after the run" "2026-01-01 00:05:00+00" "$(mark)"

# 2. unchanged ----------------------------------------------------------------
before=$(rows "$db")
kb "$db" run "$tmp/notes.yaml" -q --report "$tmp/r.json"
check_rc "an unchanged re-run succeeds" 0
check_eq "... reads only the rows at the mark (>=), unchanged, computes nothing" "1 1 0 0" \
  "$(src read) $(src unchanged) $(src changed) $(src vectors_computed)"
check_eq "... and writes no row of the knowledge tables" "$before" "$(rows "$db")"
check_eq "kbpipe_runs: two succeeded runs of it-sql, the second wrote nothing" "2|0|0|0|1" \
  "$(sql "$db" "SELECT count(*) OVER (), counts->>'sources_new', counts->>'sources_changed',
                       counts->>'chunks_written', counts->>'sources_unchanged'
                  FROM kbpipe_runs WHERE pipeline = 'it-sql' AND status = 'succeeded' ORDER BY id DESC LIMIT 1")"

# 3. one row edited -----------------------------------------------------------
state_before=$(state "$db" it-sql)
sql "$db" "UPDATE notes SET body = 'Edited body of note 2', updated_at = '2026-01-01 00:10:00+00' WHERE id = 2" >/dev/null
kb "$db" run "$tmp/notes.yaml" -q --report "$tmp/r.json"
check_rc "a run after one row's text and updated_at changed succeeds" 0
check_eq "... one source changed, one vector computed" "1 1" "$(src changed) $(src vectors_computed)"
check_eq "... only note 2's rows differ" "$(echo "$state_before" | grep -v '|sql|2|')" \
  "$(state "$db" it-sql | grep -v '|sql|2|')"
check "... and they do" test "$(echo "$state_before" | grep '|sql|2|')" != "$(state "$db" it-sql | grep '|sql|2|')"
kb "$db" run "$tmp/notes.yaml" -q --report "$tmp/r.json"
check_eq "... and the next run re-embeds it no more (once)" "0 0" "$(src changed) $(src vectors_computed)"

# 4. a row committed late with the mark's updated_at ------------------------
sql "$db" "INSERT INTO notes VALUES (6, 'Note 6', 'A late row', 'tag0', '$(mark)')" >/dev/null
kb "$db" run "$tmp/notes.yaml" -q --report "$tmp/r.json"
check_rc "a row inserted with updated_at equal to the mark" 0
check_eq "... is loaded (>= the mark, not >)" "1 1" \
  "$(src new) $(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE source_type = 'sql' AND source_id = '6'")"

# 5. a NULL text --------------------------------------------------------------
sql "$db" "INSERT INTO notes VALUES (7, 'Note 7', NULL, 'tag1', '2026-01-01 00:11:00+00')" >/dev/null
kb "$db" run "$tmp/notes.yaml" --report "$tmp/r.json"
check_rc "a row whose text is NULL is rejected (exit 3)" 3
check "... named: the pipeline, the source, the row and the column" \
  grep -q "notes.yaml: source notes: row 3: column 'body' (text) is NULL" "$tmp/err"
check_eq "... the mark is held back (the row comes again)" "2026-01-01 00:10:00+00" "$(mark)"
sql "$db" "UPDATE notes SET body = 'Body of note 7' WHERE id = 7" >/dev/null
kb "$db" run "$tmp/notes.yaml" -q --report "$tmp/r.json"
check_eq "... fixed, it loads and the mark moves" "0 1 2026-01-01 00:11:00+00" "$rc $(src new) $(mark)"

# 6. --full ------------------------------------------------------------------
sql "$db" "DELETE FROM notes WHERE id = 3" >/dev/null
kb "$db" run "$tmp/notes.yaml" -q
check_eq "a removed row: an incremental run deletes nothing" "1" \
  "$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE source_type = 'sql' AND source_id = '3'")"
kb "$db" run "$tmp/notes.yaml" -q --full --report "$tmp/r.json"
check_rc "--full succeeds" 0
check_eq "... reads every row and deletes the removed row's source only" "6 1 1,2,4,5,6,7" \
  "$(src read) $(jget "$tmp/r.json" .load.sources_deleted) $(sql "$db" "SELECT string_agg(source_id, ',' ORDER BY source_id) FROM knowledge_sources WHERE source_type = 'sql'")"
check_eq "... and nothing of the other pipeline" "other.md" \
  "$(sql "$db" "SELECT string_agg(source_id, ',') FROM knowledge_sources WHERE pipeline = 'it-files'")"

# 7. a bad query, a missing column ----------------------------------------------
state_before=$(state "$db" it-sql)
mark_before=$(mark)
pipe "$tmp/bad.yaml" "SELECT id, title, body FROM no_such_table"
kb "$db" run "$tmp/bad.yaml" -q
check_rc "a bad query fails the run" 1
check "... located: the query's line in the pipeline and the server's reason" \
  grep -q "bad.yaml:9:12: source notes: the query failed: .*relation \"no_such_table\" does not exist" "$tmp/err"
check "... once" test "$(grep -c 'source notes' "$tmp/err")" = 1
pipe "$tmp/bad.yaml" "SELECT id, title, body, updated_at FROM notes" \
  "columns: {source_id: id, title: title, text: bodyy}"
kb "$db" run "$tmp/bad.yaml" -q
check_rc "a mapped column the query does not return fails the run (exit 2)" 2
check "... naming it and the columns there are" grep -q \
  "bad.yaml:9:12: source notes: columns.text names column 'bodyy', which the query does not return (it returns: id, title, body, updated_at)" "$tmp/err"
pipe "$tmp/bad.yaml" "SELECT id, title, body, updated_at FROM notes" \
  "columns: {source_id: id}" 'template: "{title}\n\n{summary}"'
kb "$db" run "$tmp/bad.yaml" -q
check "a template column the query does not return is named too (exit 2)" grep -q \
  "source notes: the template names column 'summary', which the query does not return" "$tmp/err"
check_eq "... after all three, everything stored is as before" "$state_before" "$(state "$db" it-sql)"
check_eq "... and the mark too" "$mark_before" "$(mark)"

# 8. another database, a query_file, a template -------------------------------
other="kbpipe_it_other_$$"   # lib.sh drops kbpipe_it_*_PID databases on exit
psql -X -q -d postgres -c "CREATE DATABASE $other" >/dev/null
sql "$other" "CREATE TABLE tickets (key text, subject text, body text, prio int);
              INSERT INTO tickets VALUES ('T-1', 'Printer', 'It jams', 2), ('T-2', 'VPN', 'It drops', 1),
                                         ('T-3', 'Mail', NULL, 3)" >/dev/null
mkdir -p "$tmp/other"
printf 'SELECT key, subject, body, prio\n  FROM tickets;\n' >"$tmp/other/tickets.sql"
cat >"$tmp/other/tickets.yaml" <<'YAML'
name: it-other
project: it-other
embedding:
  provider: hash
sources:
  - name: tickets
    type: sql
    database_env: KB_IT_OTHER_DB
    query_file: tickets.sql
    columns: {source_id: key, title: subject}
    template: "# {subject}\n\n{body} {{prio {prio}}}"
    metadata: [prio]
YAML
KB_IT_OTHER_DB="dbname=$other" kb "$db" run "$tmp/other/tickets.yaml" -q --report "$tmp/r.json"
check_rc "database_env: a source reading another database succeeds" 0
check_eq "... its rows loaded here, through the template (NULL as empty, {{ }} as braces)" \
  "T-1 # Printer|It jams {prio 2}|{\"prio\": \"2\"} T-3 # Mail| {prio 3}|{\"prio\": \"3\"}" \
  "$(sql "$db" "SELECT string_agg(s.source_id || ' ' || replace(c.content, E'\n\n', '|') || '|' || s.metadata::text, ' ' ORDER BY s.source_id)
                FROM knowledge_sources s JOIN knowledge_chunks c ON c.source_id = s.id
                JOIN projects p ON p.id = s.project_id WHERE p.name = 'it-other' AND s.source_id <> 'T-2'")"
check_eq "... and nothing of it-sql touched" "$state_before" "$(state "$db" it-sql)"
(unset KB_IT_OTHER_DB; kb "$db" run "$tmp/other/tickets.yaml" -q; echo "$rc" >"$tmp/rc")
rc=$(cat "$tmp/rc")
check_rc "database_env unset fails (exit 2)" 2
check "... naming the variable" grep -q 'database_env names \$KB_IT_OTHER_DB, which is not set' "$tmp/err"
KB_IT_OTHER_DB="dbname=kbpipe_it_nosuch_$$ password=hunter2-secret" kb "$db" run "$tmp/other/tickets.yaml" -q
check_rc "a refused connection fails the run" 1
check "... naming the source and the variable" grep -q "source tickets: \$KB_IT_OTHER_DB" "$tmp/err"
check "... and never the password" bash -c "! grep -q hunter2 '$tmp/err' '$tmp/out'"

# 9. pipelines/supervisor.yaml over the seed data (scripts/demo.sh) ---------
sdb=$(new_db supervisor)
kb "$sdb" seed -q
check_rc "kbpipe seed" 0
kb "$sdb" run pipelines/supervisor.yaml -q --report "$tmp/r.json"
check_rc "pipelines/supervisor.yaml loads the seeded rows" 0
check_eq "... every issue, epic and task" \
  "$(sql "$sdb" "SELECT (SELECT count(*) FROM issues) || ' ' || (SELECT count(*) FROM epics) || ' ' || (SELECT count(*) FROM tasks)")" \
  "$(jget "$tmp/r.json" '[.sources[].new] | map(tostring) | join(" ")')"
grep -q "search --project supervisor-service -k 3 --source-type sql \"appeal deadlines\"" scripts/demo.sh
check "scripts/demo.sh ends with the search this test checks" test $? = 0
kb "$sdb" search --project supervisor-service -k 3 --source-type sql --json "appeal deadlines"
check_eq "the demo's search: the seeded issue 'Compute appeal deadlines' first" "consilio #14: Compute appeal deadlines" \
  "$(jq -r '.[0].title' "$tmp/out")"
kb "$sdb" run pipelines/supervisor.yaml -q --report "$tmp/r.json"
check_eq "an unchanged re-run computes nothing" "0 0" \
  "$(jget "$tmp/r.json" '[.sources[].changed] | add') $(computed "$tmp/r.json")"
sql "$sdb" "INSERT INTO comments (issue_id, author, content, updated_at)
            SELECT id, 'samuel', 'Swedish public holidays come from the Riksdag calendar', now()
              FROM issues WHERE issue_number = 14" >/dev/null
kb "$sdb" run pipelines/supervisor.yaml -q --report "$tmp/r.json"
check_eq "a new comment re-embeds its issue, and only it" "1 1" \
  "$(jget "$tmp/r.json" '[.sources[].changed] | add') $(computed "$tmp/r.json")"
check "... whose text now holds the comment" test "$(sql "$sdb" "SELECT count(*) FROM knowledge_chunks c
  JOIN knowledge_sources s ON s.id = c.source_id WHERE s.title = 'consilio #14: Compute appeal deadlines'
   AND c.content LIKE '%samuel (____-__-__): Swedish public holidays%'")" = 1

# 10. memory ------------------------------------------------------------------
bounded() {   # N DRY(0|1) NAME: generate N rows, run, check the peak RSS
  local n=$1 dry=$2 name=$3 mdb
  mdb=$(new_db "$name")
  cat >"$tmp/$name.yaml" <<YAML
name: it-$name
project: it-$name
embedding:
  provider: hash
sources:
  - name: gen
    type: sql
    query: |
      SELECT g AS id, 'Row ' || g AS title,
             'row ' || g || ': the quick brown fox jumps over the lazy dog ' || md5(g::text) AS body,
             now() AS at
        FROM generate_series(1, $n) g
    columns: {source_id: id, title: title, text: body}
    watermark: at
YAML
  local t0=$SECONDS args=(run "$tmp/$name.yaml" -q --report "$tmp/r.json")
  [ "$dry" = 1 ] && args+=(--dry-run)
  rc=0
  /usr/bin/time -v -o "$tmp/time" timeout -s KILL 900 "$bin" --db "dbname=$mdb" "${args[@]}" \
    >"$tmp/out" 2>"$tmp/err" || rc=$?
  check_rc "$n generated rows$([ "$dry" = 1 ] && echo ' (dry run)'): the run succeeds" 0
  check_eq "... every row read" "$n" "$(src read)"
  local kib
  kib=$(awk '/Maximum resident set size/ { print $NF }' "$tmp/time")
  note "$n rows$([ "$dry" = 1 ] && echo ', dry run'): wall $((SECONDS - t0)) s, peak RSS $((kib / 1024)) MiB" \
       "(bash tests/integration/run_sql_source.sh)"
  if ldd "$bin" 2>/dev/null | grep -q libasan; then
    note "peak RSS under AddressSanitizer: the bound is checked by the release build"
  else
    check "... with a peak RSS under 100 MiB (measured $((kib / 1024)) MiB)" test "$kib" -lt $((100 * 1024))
  fi
}
bounded 300000 1 sqlmem
bounded 5000 0 sqlload
check_eq "... the 5000 rows stored" "5000" "$(sql "kbpipe_it_sqlload_$$" "SELECT count(*) FROM knowledge_sources WHERE source_type = 'sql'")"

# 11. rows of the largest size the default max_record_size (8 MB) allows,
# and one over it: 12 rows of 7 MB in one FETCH (84 MB: a FETCH held whole
# was over the bound), read a row at a time; the 9 MB row is a located
# reject whose bytes are never sent (docs/pipelines.md, "The size of one input")
bdb=$(new_db sqlbig)
cat >"$tmp/big.yaml" <<YAML
name: it-big
project: it-big
embedding:
  provider: hash
sources:
  - name: gen
    type: sql
    on_error: skip
    query: |
      SELECT g AS id, repeat('word' || g || ' lorem ipsum dolor sit amet ',
                             CASE WHEN g = 5 THEN 9 ELSE 7 END * 1048576 / 32) AS body
        FROM generate_series(1, 13) g
    columns: {source_id: id, text: body}
YAML
rc=0
/usr/bin/time -v -o "$tmp/time" timeout -s KILL 900 "$bin" --db "dbname=$bdb" run "$tmp/big.yaml" \
  --dry-run --report "$tmp/r.json" >"$tmp/out" 2>"$tmp/err" || rc=$?
check_rc "13 rows of 7 MB and one of 9 MB (dry run): the over-size row is rejected (exit 3)" 3
check "... named: the source, the row, its size and the limit" grep -q \
  "big.yaml: source gen: row 5: the row is [0-9]* bytes in its text form, over max_record_size (8388608)" "$tmp/err"
check_eq "... the other 12 rows read" "12" "$(src read)"
kib=$(awk '/Maximum resident set size/ { print $NF }' "$tmp/time")
note "12 rows of 7 MB and one of 9 MB, dry run: peak RSS $((kib / 1024)) MiB (bash tests/integration/run_sql_source.sh)"
if ldd "$bin" 2>/dev/null | grep -q libasan; then
  note "peak RSS under AddressSanitizer: the bound is checked by the release build"
else
  check "... with a peak RSS under 100 MiB (measured $((kib / 1024)) MiB)" test "$kib" -lt $((100 * 1024))
fi
finish
