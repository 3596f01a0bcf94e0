#!/usr/bin/env bash
# tests/integration/run_e2e.sh - `kbpipe run`, `plan` and `dedup` from the
# command line against the local PostgreSQL (issue 7's list):
#   1. end to end on a small corpus: files and a learnings CSV
#   2. a re-run over an unchanged corpus writes no row and embeds nothing
#   3. one edited paragraph re-embeds one chunk; other sources keep their rows
#   4. a deleted file goes away only with --full
#   5. --dry-run and plan write nothing, and predict what the run then does
#   6. --shard 1/2 + --shard 2/2 equal one full run; --full in a shard
#      deletes nothing of the other shard
#   7. exit codes 0/1/2/3 (3: on_error: skip and one bad file)
#   8. two pipelines at once both succeed; two runs of one pipeline never
#      interleave (the second waits), and with --no-wait the second exits 1
#   9. dedup report/mark/merge on learnings with planted near-duplicates
#  10. dedup against the database: a later run adds a near-duplicate of a
#      stored learning; mark gives it duplicate_of, merge (in the run) folds
#      it into the stored one
# Each part uses its own fresh database (lib.sh); run from anywhere:
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_e2e.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

P=tests/data/run/e2e.yaml
G=tests/data/run/gen.yaml
D=tests/data/run/dedup.yaml
cp -r tests/data/run/docs "$tmp/docs"
cp tests/data/run/learnings.csv "$tmp/learnings.csv"
export RUN_DOCS=$tmp/docs RUN_LEARNINGS=$tmp/learnings.csv RUN_REJECTS=$tmp/rejects.jsonl
n_files=$(find "$tmp/docs" -type f | wc -l)
n_learn=$(($(wc -l <"$tmp/learnings.csv") - 1))

# chunk rows of one project, by source: "source_id id xmin" (identity of the rows)
chunk_ids() {
  sql "$1" "SELECT s.source_id || ' ' || c.chunk_index || ' ' || c.id || ' ' || c.xmin
            FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
            ORDER BY 1"
}

##############################################################################
echo "# 1. end to end"
db=$(new_db e2e)
kb "$db" run "$P" -q --report "$tmp/r1.json"
check_rc "first run exits 0" 0
check "-q prints nothing on success" test ! -s "$tmp/out" -a ! -s "$tmp/err"
check_eq "one knowledge source per file" "$n_files" \
  "$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE source_type <> 'csv' AND NOT EXISTS
                (SELECT 1 FROM learnings l WHERE l.knowledge_source_id = knowledge_sources.id)")"
check_eq "the files' source ids are their paths under the root" \
  "README.md guide/ports.md guide/setup.md reference/api.md reference/glossary.txt" \
  "$(sql "$db" "SELECT string_agg(source_id, ' ' ORDER BY source_id) FROM knowledge_sources s
                WHERE NOT EXISTS (SELECT 1 FROM learnings l WHERE l.knowledge_source_id = s.id)")"
n_chunks=$(sql "$db" "SELECT count(*) FROM knowledge_chunks")
check "every file has chunks (one per section: more chunks than files)" test "$n_chunks" -gt "$n_files"
check_eq "ports.md: one chunk per section (title + 3 sections = 3 chunks)" 3 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
                WHERE s.source_id = 'guide/ports.md'")"
check_eq "every chunk has its vector, hash, token count and model" 0 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks WHERE embedding IS NULL OR content_hash !~ '^[0-9a-f]{64}$'
                OR token_count IS NULL OR token_count <= 0 OR token_count > 64
                OR coalesce(metadata->>'embedding_model', '') = ''")"
check_eq "chunk content_hash is the SHA-256 of content" 0 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks WHERE content_hash <> encode(sha256(convert_to(content, 'UTF8')), 'hex')")"
check_eq "vectors are L2-normalized" 0 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks WHERE abs(vector_norm(embedding) - 1) > 1e-4")"
check_eq "chunk indexes of each source are 0..n-1" 0 \
  "$(sql "$db" "SELECT count(*) FROM (SELECT source_id, max(chunk_index) + 1 - count(*) AS gap
                FROM knowledge_chunks GROUP BY source_id) g WHERE gap <> 0")"
check_eq "a paragraph's text is in a chunk" 1 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks WHERE content LIKE '%instead of locking the whole range%'")"
check_eq "one learning per CSV row" "$n_learn" \
  "$(sql "$db" "SELECT count(*) FROM learnings l JOIN projects p ON p.id = l.project_id WHERE p.name = 'it-run'")"
check_eq "learnings keep the CSV's columns (type, category, tags, scores) and have vectors" \
  "best_practice|security|{secrets,logging}|0.9500|critical|t" \
  "$(sql "$db" "SELECT learning_type, category, tags, confidence_score, impact_level, embedding IS NOT NULL
                FROM learnings WHERE title = 'Keep secrets out of logs'")"
check_eq "every source records the pipeline and a doc hash" 0 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE pipeline IS DISTINCT FROM 'it-run' OR doc_hash IS NULL")"
check_eq "kbpipe_runs: one succeeded run with counts and report" "it-run|succeeded|t|t|t" \
  "$(sql "$db" "SELECT pipeline, status, finished_at IS NOT NULL, counts <> '{}', report IS NOT NULL FROM kbpipe_runs")"
check_eq "the report file: status succeeded" succeeded "$(jget "$tmp/r1.json" .status)"
check_eq "the report: chunks_written = the chunk rows" "$n_chunks" "$(jget "$tmp/r1.json" .load.chunks_written)"
check_eq "the report: learnings_written = the CSV rows" "$n_learn" "$(jget "$tmp/r1.json" .load.learnings_written)"
n_distinct=$(sql "$db" "SELECT count(DISTINCT h) FROM (SELECT content_hash h FROM knowledge_chunks
                        UNION ALL SELECT metadata->>'content_hash' FROM learnings) x")
check_eq "the report: one vector computed per distinct text" "$n_distinct" "$(computed "$tmp/r1.json")"
check_eq "the report stored in kbpipe_runs is the report file" \
  "$(jq -S -c . "$tmp/r1.json" 2>/dev/null)" "$(sql "$db" "SELECT report FROM kbpipe_runs" | jq -S -c . 2>/dev/null)"
kb "$db" run "$P"
check_rc "without -q, a run exits 0 and" 0
check "prints a summary naming each source" sh -c "cat '$tmp/out' '$tmp/err' | grep -q docs && cat '$tmp/out' '$tmp/err' | grep -q learnings"

##############################################################################
echo "# 2. an unchanged re-run writes nothing and embeds nothing"
rows "$db" >"$tmp/rows.before"
state "$db" it-run >"$tmp/state.before"
kb "$db" run "$P" -q --report "$tmp/r2.json"
check_rc "re-run exits 0" 0
rows "$db" >"$tmp/rows.after"
check_same "no row of projects, sources, chunks, learnings was inserted, updated or deleted" \
  "$tmp/rows.before" "$tmp/rows.after"
check_eq "report: chunks_written 0" 0 "$(jget "$tmp/r2.json" .load.chunks_written)"
check_eq "report: learnings_written 0" 0 "$(jget "$tmp/r2.json" .load.learnings_written)"
check_eq "report: vectors computed 0" 0 "$(computed "$tmp/r2.json")"
check_eq "report: every source unchanged" "$((n_files + n_learn))" "$(jget "$tmp/r2.json" .load.sources_unchanged)"
check_eq "kbpipe_runs records the run with chunks_written 0" "succeeded 0" \
  "$(sql "$db" "SELECT status || ' ' || coalesce(counts->>'chunks_written', report->'load'->>'chunks_written')
                FROM kbpipe_runs ORDER BY id DESC LIMIT 1")"

##############################################################################
echo "# 3. one edited paragraph re-embeds one chunk"
chunk_ids "$db" | grep -v '^guide/ports.md ' >"$tmp/others.before"
old=$(state "$db" it-run | grep '|guide/ports.md|')
sed -i 's/instead of locking the whole range/instead of locking the entire range/' "$tmp/docs/guide/ports.md"
kb "$db" run "$P" -q --report "$tmp/r3.json"
check_rc "run after the edit exits 0" 0
check_eq "report: 1 source changed" 1 "$(jget "$tmp/r3.json" .load.sources_changed)"
check_eq "report: 1 vector computed" 1 "$(computed "$tmp/r3.json")"
check_eq "report: the other chunks of the file reuse their vectors" 2 "$(jget "$tmp/r3.json" .load.vectors_reused)"
new=$(state "$db" it-run | grep '|guide/ports.md|')
check_eq "exactly one chunk of the file has a new content hash" 1 \
  "$(comm -13 <(echo "$old" | grep '^C' | sort) <(echo "$new" | grep '^C' | sort) | wc -l)"
check_eq "the file's doc hash changed" 1 \
  "$(comm -13 <(echo "$old" | grep '^S' | sort) <(echo "$new" | grep '^S' | sort) | wc -l)"
chunk_ids "$db" | grep -v '^guide/ports.md ' >"$tmp/others.after"
check_same "chunks of the other sources keep their rows (ids and xmin)" "$tmp/others.before" "$tmp/others.after"
check_eq "the edit is searchable" 1 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks WHERE content LIKE '%locking the entire range%'")"
check_eq "the old text is gone" 0 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks WHERE content LIKE '%locking the whole range%'")"
# an edited learning row updates its learning in place
sed -i 's/Rely on the unique key and retry/Rely on the unique key and simply retry/' "$tmp/learnings.csv"
lid=$(sql "$db" "SELECT id FROM learnings WHERE title = 'Retry port allocation on unique violation'")
kb "$db" run "$P" -q --report "$tmp/r3b.json"
check_rc "run after a learning's edit exits 0" 0
check_eq "report: 1 learning written, 1 vector computed" "1 1" \
  "$(jget "$tmp/r3b.json" .load.learnings_written) $(computed "$tmp/r3b.json")"
check_eq "the learning holds the new text, and is still one row" "1" \
  "$(sql "$db" "SELECT count(*) FROM learnings WHERE title = 'Retry port allocation on unique violation'
                AND content LIKE '%simply retry%'")"
check_eq "the learning kept its id" "$lid" \
  "$(sql "$db" "SELECT id FROM learnings WHERE title = 'Retry port allocation on unique violation'")"

##############################################################################
echo "# 4. a deleted file goes away only with --full"
rm "$tmp/docs/reference/glossary.txt"
state "$db" it-run >"$tmp/s4.before"
kb "$db" run "$P" -q --report "$tmp/r4.json"
check_rc "incremental run without the file exits 0" 0
state "$db" it-run >"$tmp/s4.after"
check_same "without --full the deleted file's source and chunks stay" "$tmp/s4.before" "$tmp/s4.after"
check_eq "report: nothing deleted" 0 "$(jget "$tmp/r4.json" .load.sources_deleted)"
kb "$db" run "$P" -q --full --report "$tmp/r4f.json"
check_rc "run --full exits 0" 0
check_eq "--full: the file's source is gone" 0 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE source_id = 'reference/glossary.txt'")"
check_eq "--full: its chunks are gone" 0 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks WHERE content LIKE '%Glossary of the supervisor%'")"
check_eq "report: 1 source deleted" 1 "$(jget "$tmp/r4f.json" .load.sources_deleted)"
state "$db" it-run >"$tmp/s4.full"
grep -v '|reference/glossary.txt|' "$tmp/s4.before" >"$tmp/s4.expected"
check_same "--full removed that file and nothing else" "$tmp/s4.expected" "$tmp/s4.full"
check_eq "--full kept the learnings (they were all seen)" "$n_learn" "$(sql "$db" "SELECT count(*) FROM learnings")"
cp tests/data/run/docs/reference/glossary.txt "$tmp/docs/reference/"

##############################################################################
echo "# 5. --dry-run and plan write nothing"
dry=$(new_db dry)
rows "$dry" >"$tmp/d.before"; runs "$dry" >"$tmp/d.runs.before"
kb "$dry" run "$P" --dry-run --report "$tmp/d1.json"
check_rc "--dry-run on an empty database exits 0" 0
rows "$dry" >"$tmp/d.after"; runs "$dry" >"$tmp/d.runs.after"
check_same "--dry-run on an empty database writes no row (not even the project)" "$tmp/d.before" "$tmp/d.after"
check_same "--dry-run records no run" "$tmp/d.runs.before" "$tmp/d.runs.after"
check_eq "--dry-run reports every source as new" "$((n_files + n_learn))" "$(jget "$tmp/d1.json" .load.sources_new)"
check_eq "--dry-run's report says dry_run" "true dry-run" "$(jget "$tmp/d1.json" .dry_run) $(jget "$tmp/d1.json" .status)"
kb "$dry" plan "$P"
check_rc "plan on an empty database exits 0" 0
rows "$dry" >"$tmp/d.after"
check_same "plan on an empty database writes no row" "$tmp/d.before" "$tmp/d.after"
check "plan prints what it would do" test -s "$tmp/out"
cp "$tmp/out" "$tmp/plan1.out"
# changes: one edited file, one new file, one deleted file
sed -i 's/checks that the vector/verifies that the vector/' "$tmp/docs/guide/setup.md"
printf '# New page\n\nA page added after the first load, with one short paragraph.\n' >"$tmp/docs/new.md"
rm "$tmp/docs/reference/api.md"
rows "$db" >"$tmp/d.before"; runs "$db" >"$tmp/d.runs.before"
kb "$db" run "$P" --dry-run --full --report "$tmp/d2.json"
check_rc "--dry-run --full after changes exits 0" 0
rows "$db" >"$tmp/d.after"; runs "$db" >"$tmp/d.runs.after"
check_same "--dry-run --full writes no row" "$tmp/d.before" "$tmp/d.after"
check_same "--dry-run --full records no run" "$tmp/d.runs.before" "$tmp/d.runs.after"
kb "$db" plan "$P"
check_rc "plan after changes exits 0" 0
cp "$tmp/out" "$tmp/plan2.out"
rows "$db" >"$tmp/d.after"
check_same "plan writes no row" "$tmp/d.before" "$tmp/d.after"
check "plan names the added and the updated file" sh -c "grep -q new.md '$tmp/plan2.out' && grep -q guide/setup.md '$tmp/plan2.out'"
kb "$db" run "$P" -q --full --report "$tmp/d3.json"
check_rc "the real run --full exits 0" 0
for k in sources_new sources_changed sources_unchanged sources_deleted; do
  check_eq "the dry run predicted $k" "$(jget "$tmp/d3.json" .load.$k)" "$(jget "$tmp/d2.json" .load.$k)"
done
check_eq "the dry run predicted the vectors computed" "$(computed "$tmp/d3.json")" "$(computed "$tmp/d2.json")"
check_eq "and the real run did that: new.md in, api.md out" "1 0" \
  "$(sql "$db" "SELECT count(*) FILTER (WHERE source_id = 'new.md') || ' ' ||
                       count(*) FILTER (WHERE source_id = 'reference/api.md') FROM knowledge_sources")"

##############################################################################
echo "# 6. --shard 1/2 + --shard 2/2 = one full run"
gen "$tmp/g6" --files 60 --sections 2 --seed 6
full=$(new_db full); shard=$(new_db shard)
RUN_DOCS=$tmp/g6 kb "$full" run "$G" -q
check_rc "full run of 60 files exits 0" 0
RUN_DOCS=$tmp/g6 kb "$shard" run "$G" -q --shard 1/2 --report "$tmp/s1.json"
check_rc "--shard 1/2 exits 0" 0
n1=$(sql "$shard" "SELECT count(*) FROM knowledge_sources")
check "--shard 1/2 loads some but not all of the sources ($n1 of 60)" test "$n1" -gt 0 -a "$n1" -lt 60
check_eq "the report records the shard" "1/2" "$(jget "$tmp/s1.json" '"\(.shard.k)/\(.shard.n)"')"
state "$shard" it-gen >"$tmp/s1.state"
RUN_DOCS=$tmp/g6 kb "$shard" run "$G" -q --shard 2/2
check_rc "--shard 2/2 exits 0" 0
state "$full" it-gen >"$tmp/sf.state"; state "$shard" it-gen >"$tmp/s12.state"
check_same "the two shards hold exactly what one full run holds" "$tmp/sf.state" "$tmp/s12.state"
check_eq "shard 2/2 did not touch shard 1's rows" "$(wc -l <"$tmp/s1.state")" \
  "$(comm -12 "$tmp/s1.state" "$tmp/s12.state" | wc -l)"
RUN_DOCS=$tmp/g6 kb "$shard" run "$G" -q --full --shard 1/2 --report "$tmp/s1f.json"
check_rc "--full --shard 1/2 exits 0" 0
check_eq "--full --shard 1/2 deletes nothing of shard 2" 0 "$(jget "$tmp/s1f.json" .load.sources_deleted)"
state "$shard" it-gen >"$tmp/s12f.state"
check_same "... and the state is unchanged" "$tmp/sf.state" "$tmp/s12f.state"
rc1=0; RUN_DOCS=$tmp/g6 "$bin" --db "dbname=$shard" run "$G" --dry-run --shard 1/2 --report "$tmp/x1.json" >/dev/null 2>&1 || rc1=$?
rc2=0; RUN_DOCS=$tmp/g6 "$bin" --db "dbname=$shard" run "$G" --dry-run --shard 2/2 --report "$tmp/x2.json" >/dev/null 2>&1 || rc2=$?
check_eq "the shards partition the sources (in-shard counts add up to 60)" "0 0 60" \
  "$rc1 $rc2 $(( $(jget "$tmp/x1.json" .load.sources_seen) + $(jget "$tmp/x2.json" .load.sources_seen) ))"

##############################################################################
echo "# 7. exit codes"
rows "$db" >"$tmp/e.before"
kb "$db" run
check_rc "run without a pipeline: usage, exit 2" 2
kb "$db" run "$tmp/nope.yaml"
check_rc "run of a missing pipeline file: exit 2" 2
check "... naming the file" grep -q nope.yaml "$tmp/err"
kb "$db" run "$P" --shard 3/2
check_rc "--shard 3/2: exit 2" 2
kb "$db" run "$P" --shard x
check_rc "--shard x: exit 2" 2
kb "$db" run "$P" --bogus
check_rc "an unknown option: exit 2" 2
sed 's/^  splitter: markdown/  splitter: markdown\n  sise: 10/' "$P" >"$tmp/badkey.yaml"
kb "$db" run "$tmp/badkey.yaml"
check_rc "a pipeline with an unknown key: exit 2" 2
check "... naming the file, line and key" grep -q "badkey.yaml:[0-9]*:[0-9]*:.*sise" "$tmp/err"
kb "$db" plan "$tmp/badkey.yaml"
check_rc "plan of that pipeline: exit 2" 2
rows "$db" >"$tmp/e.after"
check_same "usage errors and invalid pipelines write nothing" "$tmp/e.before" "$tmp/e.after"
rc=0; timeout 60 "$bin" --db "host=$tmp/nosocket dbname=nothere connect_timeout=5" run "$P" \
  >"$tmp/out" 2>"$tmp/err" || rc=$?
check_rc "an unreachable database: exit 1" 1
check "... with a message about the connection" grep -qi "connect\|server\|socket" "$tmp/err"
# a bad file: on_error fail -> 1 and nothing of it loaded; skip -> 3 and the rest loaded
printf '# Latin-1\n\nCaf\xe9 au lait.\n' >"$tmp/docs/aaa-latin1.md"
printf '# Good\n\nA good page added beside the bad one.\n' >"$tmp/docs/good.md"
kb "$db" run "$P" -q
check_rc "a file with invalid UTF-8 and on_error: fail: exit 1" 1
check "... naming the file and the reason" grep -qi "aaa-latin1.md.*utf-8" "$tmp/err"
check_eq "... and nothing of it is loaded" 0 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE source_id = 'aaa-latin1.md'")"
check_eq "... and kbpipe_runs says failed" failed "$(sql "$db" "SELECT status FROM kbpipe_runs ORDER BY id DESC LIMIT 1")"
rm -f "$tmp/rejects.jsonl"
RUN_ON_ERROR=skip kb "$db" run "$P" -q --report "$tmp/e3.json"
check_rc "the same with on_error: skip: exit 3" 3
check_eq "... one line in the reject file" 1 "$(wc -l <"$tmp/rejects.jsonl" 2>/dev/null || echo 0)"
check "... naming the file" grep -q aaa-latin1.md "$tmp/rejects.jsonl"
check_eq "... the report counts 1 rejected" 1 "$(jget "$tmp/e3.json" .rejected)"
check_eq "... the good file is loaded" 1 "$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE source_id = 'good.md'")"
check_eq "... the bad one is not" 0 "$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE source_id = 'aaa-latin1.md'")"
check_eq "... kbpipe_runs says partial" partial "$(sql "$db" "SELECT status FROM kbpipe_runs ORDER BY id DESC LIMIT 1")"
printf '# Latin-1\n\nCaf\xc3\xa9 au lait.\n' >"$tmp/docs/aaa-latin1.md"
RUN_ON_ERROR=skip kb "$db" run "$P" -q
check_rc "the file fixed: exit 0" 0
check_eq "... and now loaded" 1 "$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE source_id = 'aaa-latin1.md'")"

##############################################################################
echo "# 8. concurrent runs"
conc=$(new_db conc); ref=$(new_db ref)
gen "$tmp/c1" --files 300 --sections 4 --seed 81
gen "$tmp/c2" --files 300 --sections 4 --seed 82
RUN_DOCS=$tmp/c1 RUN_PIPELINE=it-c1 RUN_PROJECT=it-c1 kb "$ref" run "$G" -q
RUN_DOCS=$tmp/c2 RUN_PIPELINE=it-c2 RUN_PROJECT=it-c2 kb "$ref" run "$G" -q
RUN_DOCS=$tmp/c1 RUN_PIPELINE=it-c1 RUN_PROJECT=it-c1 bg "$conc" "$tmp/c1" run "$G" -q; p1=$bg_pid
RUN_DOCS=$tmp/c2 RUN_PIPELINE=it-c2 RUN_PROJECT=it-c2 bg "$conc" "$tmp/c2" run "$G" -q; p2=$bg_pid
bg_wait $p1; r1=$rc; bg_wait $p2; r2=$rc
check_eq "two pipelines at once: both exit 0" "0 0" "$r1 $r2"
[ "$r1$r2" = 00 ] || sed 's/^/#   /' "$tmp/c1.err" "$tmp/c2.err" | head -n 20
state "$ref" it-c1 >"$tmp/ref1"; state "$conc" it-c1 >"$tmp/conc1"
state "$ref" it-c2 >"$tmp/ref2"; state "$conc" it-c2 >"$tmp/conc2"
check_same "pipeline 1 holds what it holds when run alone" "$tmp/ref1" "$tmp/conc1"
check_same "pipeline 2 holds what it holds when run alone" "$tmp/ref2" "$tmp/conc2"
note "the two runs overlapped in time: $(sql "$conc" "SELECT bool_and(a.started_at < b.finished_at AND b.started_at < a.finished_at)
      FROM kbpipe_runs a, kbpipe_runs b WHERE a.pipeline = 'it-c1' AND b.pipeline = 'it-c2'")"

# an advisory lock held in this database: what a running kbpipe holds
lock_held() { [ "$(sql "$conc" "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                                WHERE l.locktype = 'advisory' AND l.granted AND d.datname = '$conc'")" -gt 0 ]; }
lock_waiting() { [ "$(sql "$conc" "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                                   WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = '$conc'")" -gt 0 ]; }
gen "$tmp/c1" --files 300 --sections 4 --seed 81 --rev B
RUN_DOCS=$tmp/c1 RUN_PIPELINE=it-c1 RUN_PROJECT=it-c1 kb "$ref" run "$G" -q
state "$ref" it-c1 >"$tmp/ref1b"
export RUN_DOCS=$tmp/c1 RUN_PIPELINE=it-c1 RUN_PROJECT=it-c1
bg "$conc" "$tmp/a" run "$G" -q; pa=$bg_pid
if poll 60 lock_held; then
  bg "$conc" "$tmp/b" run "$G"; pb=$bg_pid
  if poll 60 lock_waiting; then
    ok "the second run of the same pipeline waits for the lock"
    check "... and says so at the default log level (a waiting run must not look hung)" \
      poll 10 grep -q "another run holds its lock; waiting" "$tmp/b.err"
  else note "SKIP: the first run ended before the second was seen waiting"; fi
  bg_wait $pa; ra=$rc; bg_wait $pb; rb=$rc
  check_eq "same pipeline twice: both exit 0" "0 0" "$ra $rb"
  check_eq "the runs did not interleave (the second started after the first finished)" t \
    "$(sql "$conc" "SELECT b.started_at >= a.finished_at FROM
                    (SELECT * FROM kbpipe_runs WHERE pipeline = 'it-c1' ORDER BY id DESC LIMIT 1 OFFSET 1) a,
                    (SELECT * FROM kbpipe_runs WHERE pipeline = 'it-c1' ORDER BY id DESC LIMIT 1) b")"
  state "$conc" it-c1 >"$tmp/conc1b"
  check_same "and the result is one clean run's" "$tmp/ref1b" "$tmp/conc1b"
else
  fail "could not see the first run hold its lock"; bg_wait $pa
fi
gen "$tmp/c1" --files 300 --sections 4 --seed 81 --rev C
bg "$conc" "$tmp/a" run "$G" -q; pa=$bg_pid
if poll 60 lock_held; then
  kb "$conc" run "$G" -q --no-wait
  check_rc "--no-wait while the same pipeline runs: exit 1" 1
  check "... with a message saying it is already running" grep -qi "already running" "$tmp/err"
  bg_wait $pa
  check_rc "... and the running one still succeeds" 0
else
  fail "could not see the first run hold its lock"; bg_wait $pa
fi
unset RUN_DOCS RUN_PIPELINE RUN_PROJECT
export RUN_DOCS=$tmp/docs

##############################################################################
echo "# 9. dedup: report, mark, merge"
dd=$(new_db dedup)
# title -> learning id
lid() { sql "$dd" "SELECT l.id FROM learnings l JOIN knowledge_sources s ON s.id = l.knowledge_source_id
                   WHERE s.source_id = '$1'"; }
RUN_LEARNINGS=tests/data/run/dedup.csv RUN_DEDUP=true RUN_DEDUP_ACTION=report kb "$dd" run "$D" -q --report "$tmp/dd.json"
check_rc "loading 13 learnings with the dedup pass (report) exits 0" 0
check_eq "the pass found the 3 planted pairs" 3 "$(jget "$tmp/dd.json" .dedup.pairs)"
check_eq "report marks nothing" 0 "$(sql "$dd" "SELECT count(*) FROM learnings WHERE metadata ? 'duplicate_of'")"
# make the originals older, give usage counts to merge
sql "$dd" "UPDATE learnings SET created_at = now() - interval '1 day'
           WHERE knowledge_source_id IN (SELECT id FROM knowledge_sources WHERE source_id < 'D-11')" >/dev/null
sql "$dd" "UPDATE learnings l SET usage_count = CASE s.source_id WHEN 'D-01' THEN 2 WHEN 'D-11' THEN 3 ELSE 0 END
           FROM knowledge_sources s WHERE s.id = l.knowledge_source_id" >/dev/null
rows "$dd" >"$tmp/dd.before"
kb "$dd" dedup --project it-dedup --action report
check_rc "dedup --action report exits 0" 0
check_eq "it lists 3 pairs" 3 "$(grep -c 'D-0[136]\|Vacuum\|advisory\|migrations' "$tmp/out" | awk '{print ($1 >= 3) ? 3 : $1}')"
rows "$dd" >"$tmp/dd.after"
check_same "report writes nothing" "$tmp/dd.before" "$tmp/dd.after"
kb "$dd" dedup --project it-dedup --action mark
check_rc "dedup --action mark exits 0" 0
check "mark says what it did" grep -qE '^dedup it-dedup \(mark, threshold [0-9.]+\): 13 learning\(s\) checked, 3 duplicate pair\(s\) found, 3 marked, 0 merged$' "$tmp/out"
check_eq "mark: the 3 newer ones point at their originals" \
  "D-11 $(lid D-01)
D-12 $(lid D-03)
D-13 $(lid D-06)" \
  "$(sql "$dd" "SELECT s.source_id || ' ' || (l.metadata->>'duplicate_of') FROM learnings l
                JOIN knowledge_sources s ON s.id = l.knowledge_source_id
                WHERE l.metadata ? 'duplicate_of' ORDER BY 1")"
check_eq "mark: each with its similarity, in (0, 1]" 3 \
  "$(sql "$dd" "SELECT count(*) FROM learnings WHERE (metadata->>'similarity')::float8 > 0
                AND (metadata->>'similarity')::float8 <= 1.0000001")"
check_eq "mark deletes nothing" 13 "$(sql "$dd" "SELECT count(*) FROM learnings")"
kb "$dd" dedup --project it-dedup --action merge
check_rc "dedup --action merge exits 0" 0
check "merge says how many it merged (3 rows deleted)" grep -qE '^dedup it-dedup \(merge, threshold [0-9.]+\): .*, 3 merged$' "$tmp/out"
check_eq "merge: the 3 newer ones are gone" "D-01 D-02 D-03 D-04 D-05 D-06 D-07 D-08 D-09 D-10" \
  "$(sql "$dd" "SELECT string_agg(s.source_id, ' ' ORDER BY s.source_id) FROM learnings l
                JOIN knowledge_sources s ON s.id = l.knowledge_source_id")"
check_eq "merge: D-01 has the union of tags, the higher confidence, the summed usage" \
  "autovacuum,bloat,vacuum|0.9000|5" \
  "$(sql "$dd" "SELECT (SELECT string_agg(t, ',' ORDER BY t) FROM unnest(l.tags) t), l.confidence_score, l.usage_count
                FROM learnings l WHERE l.id = '$(lid D-01)'")"
check_eq "merge: D-03 keeps its higher confidence and gains the tags" "cron,locks,scheduling|0.8000" \
  "$(sql "$dd" "SELECT (SELECT string_agg(t, ',' ORDER BY t) FROM unnest(l.tags) t), l.confidence_score
                FROM learnings l WHERE l.id = '$(lid D-03)'")"
rows "$dd" >"$tmp/dd.before"
RUN_LEARNINGS=tests/data/run/dedup.csv kb "$dd" run "$D" -q
check_rc "re-running the pipeline after the merge exits 0" 0
check_eq "... and does not bring the merged ones back" 10 "$(sql "$dd" "SELECT count(*) FROM learnings")"
kb "$dd" -q dedup --project it-dedup --action merge
check_rc "a second merge exits 0" 0
check_eq "  ... and with -q prints nothing" "" "$(cat "$tmp/out")"
check_eq "... and finds nothing more to merge" 10 "$(sql "$dd" "SELECT count(*) FROM learnings")"
kb "$dd" dedup --project no-such-project
check "dedup of an unknown project fails (1 or 2) naming it" \
  sh -c "[ $rc = 1 -o $rc = 2 ] && grep -q no-such-project '$tmp/err'"
kb "$dd" dedup --project it-dedup --action delete
check_rc "dedup --action delete (unknown action): exit 2" 2

##############################################################################
echo "# 10. dedup against the database: a later run adds a near-duplicate"
# the first run loads D-01..D-10; the second adds D-11 (a near-duplicate of
# D-01): the only candidate of its pass, so the pair can only come from
# find_similar_learnings over the stored learnings
for action in mark merge; do
  d10=$(new_db "dd$action")
  l10() { sql "$d10" "SELECT l.id FROM learnings l JOIN knowledge_sources s ON s.id = l.knowledge_source_id
                      WHERE s.source_id = '$1'"; }
  head -n 11 tests/data/run/dedup.csv >"$tmp/dd10.csv"
  RUN_LEARNINGS=$tmp/dd10.csv RUN_DEDUP=true RUN_DEDUP_ACTION=$action kb "$d10" run "$D" -q --report "$tmp/d10a.json"
  check_rc "$action: loading D-01..D-10 exits 0" 0
  check_eq "$action: ... no pair among them" 0 "$(jget "$tmp/d10a.json" .dedup.pairs)"
  sql "$d10" "UPDATE learnings l SET usage_count = 2, created_at = now() - interval '1 day'
              FROM knowledge_sources s WHERE s.id = l.knowledge_source_id AND s.source_id = 'D-01'" >/dev/null
  d01=$(l10 D-01)
  grep '^D-11,' tests/data/run/dedup.csv >>"$tmp/dd10.csv"
  RUN_LEARNINGS=$tmp/dd10.csv RUN_DEDUP=true RUN_DEDUP_ACTION=$action kb "$d10" run "$D" -q --report "$tmp/d10b.json"
  check_rc "$action: the run adding D-11 exits 0" 0
  check_eq "$action: ... its pass had 1 candidate (D-11) and found 1 pair, in the database" "1 1" \
    "$(jget "$tmp/d10b.json" .dedup.candidates) $(jget "$tmp/d10b.json" .dedup.pairs)"
  if [ "$action" = mark ]; then
    check_eq "mark: D-11 gets duplicate_of the stored D-01, with its similarity" "$d01 t" \
      "$(sql "$d10" "SELECT (l.metadata->>'duplicate_of') || ' ' || CASE WHEN (l.metadata->>'similarity')::float8 >= 0.7 THEN 't' ELSE 'f' END
                     FROM learnings l WHERE l.id = '$(l10 D-11)'")"
    check_eq "mark: D-01 is untouched and nothing else is marked" 1 \
      "$(sql "$d10" "SELECT count(*) FROM learnings WHERE metadata ? 'duplicate_of'")"
    check_eq "mark: the report counts 1 marked" 1 "$(jget "$tmp/d10b.json" .dedup.marked)"
  else
    check_eq "merge: D-11 (the newer) is deleted" "D-01 D-02 D-03 D-04 D-05 D-06 D-07 D-08 D-09 D-10" \
      "$(sql "$d10" "SELECT string_agg(s.source_id, ' ' ORDER BY s.source_id) FROM learnings l
                     JOIN knowledge_sources s ON s.id = l.knowledge_source_id")"
    check_eq "merge: D-01 keeps its id, gets the union of tags, the higher confidence (0.9 of D-11), the summed usage, merged_from" \
      "$d01|autovacuum,bloat,vacuum|0.9000|2|1" \
      "$(sql "$d10" "SELECT l.id || '|' || (SELECT string_agg(t, ',' ORDER BY t) FROM unnest(l.tags) t) || '|' ||
                     l.confidence_score || '|' || l.usage_count || '|' || jsonb_array_length(l.metadata->'merged_from')
                     FROM learnings l WHERE l.id = '$d01'")"
    check_eq "merge: the report counts 1 merged" 1 "$(jget "$tmp/d10b.json" .dedup.merged)"
    RUN_LEARNINGS=$tmp/dd10.csv RUN_DEDUP=true RUN_DEDUP_ACTION=$action kb "$d10" run "$D" -q --report "$tmp/d10c.json"
    check_rc "merge: a re-run exits 0" 0
    check_eq "merge: ... and does not bring D-11 back (its source stays recorded)" "10 0" \
      "$(sql "$d10" "SELECT count(*) FROM learnings") $(jget "$tmp/d10c.json" .load.learnings_written)"
  fi
done

finish
