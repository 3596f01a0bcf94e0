#!/usr/bin/env bash
# tests/integration/run_backfill.sh - `kbpipe embed backfill` against the
# real server (issue 18):
#   1. rows `kbpipe run` wrote are not stale: a backfill finds 0 (so the
#      server's hash of a row's text is the run's), and without --pipeline
#      it uses the project's hash model; an unknown project exits 1
#      naming it (with and without --pipeline)
#   2. learnings inserted by plain SQL with NULL embeddings get exactly the
#      vectors, content hashes and model `kbpipe run` writes for the same
#      title and content (another database, so nothing is reused); a second
#      backfill finds 0; a learning edited by SQL (content, or title) is
#      re-embedded once, to the vector of its new text; rows of another
#      project are untouched; without --pipeline a project with no stored
#      model is a usage error (exit 2)
#   3. stored vectors are reused by (content_hash, model): copies of loaded
#      learnings in a second project are backfilled with 0 embedded
#   4. knowledge_chunks with NULL embeddings get back the vectors the run
#      wrote; a chunk edited by SQL is re-embedded once and gets its new hash
#   5. a vector of another model is stale; kbpipe_embedding_models counts
#      equal the rows' after every UPDATE
#   6. --dry-run writes nothing (every row's xmin and ctid unchanged)
#   7. kill -9 in the second batch (KBPIPE_FAULT=load.backfill:2:kill): the
#      first batch stays, the re-run embeds only the rest (the first
#      batch's rows keep their xmin), every row ends embedded as in a run
#   8. a row edited between the read and the write (a concurrent
#      transaction holding it, committed while the backfill's UPDATE waits)
#      is left with its new text and counted as edited; the next backfill
#      embeds it
#   9. SIGINT ends the batch in hand, says what was done, exits 130; a
#      re-run finishes
#   KBPIPE_BIN=build/rel/kbpipe-test bash tests/integration/run_backfill.sh
# Needs a test build (KBPIPE_FAULT points).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

L=tests/data/run/dedup.yaml        # 13 learnings from a CSV, provider hash
E=tests/data/run/e2e.yaml          # Markdown chunks and 5 learnings, provider hash
export RUN_REJECTS=$tmp/rejects.jsonl
n_learn=$(($(wc -l <tests/data/run/dedup.csv) - 1))

# bf DB ARGS...: kbpipe embed backfill --json ARGS; the counts in $tmp/out
bf() { local d=$1; shift; kb "$d" embed backfill --json "$@"; }
# j KEY: one count of the last bf
j() { jget "$tmp/out" ".$1"; }
# vecs DB PROJECT: every learning of the project as "title|content_hash|model|vector"
vecs() {
  sql "$1" "SELECT l.title || '|' || coalesce(l.metadata->>'content_hash', '-') || '|' ||
                   coalesce(l.metadata->>'embedding_model', '-') || '|' ||
                   coalesce(l.embedding::text, 'NULL')
              FROM learnings l JOIN projects p ON p.id = l.project_id
             WHERE p.name = '$2' ORDER BY 1"
}
# cvecs DB PROJECT: every chunk as "id|content_hash|model|vector"
cvecs() {
  sql "$1" "SELECT c.id || '|' || c.content_hash || '|' ||
                   coalesce(c.metadata->>'embedding_model', '-') || '|' ||
                   coalesce(c.embedding::text, 'NULL')
              FROM knowledge_chunks c JOIN projects p ON p.id = c.project_id
             WHERE p.name = '$2' ORDER BY c.id"
}
# models_exact DB: kbpipe_embedding_models holds exactly the rows' counts
models_exact() {
  local kept counted
  kept=$(sql "$1" "SELECT project_id || ' ' || target || ' ' || coalesce(model, '-') || ' ' ||
                          n_rows FROM kbpipe_embedding_models ORDER BY 1")
  counted=$(sql "$1" "SELECT project_id || ' ' || t || ' ' || coalesce(m, '-') || ' ' || count(*)
                        FROM (SELECT project_id, 'chunks' AS t, metadata->>'embedding_model' AS m
                                FROM knowledge_chunks WHERE embedding IS NOT NULL
                              UNION ALL
                              SELECT project_id, 'learnings', metadata->>'embedding_model'
                                FROM learnings WHERE embedding IS NOT NULL
                                 AND project_id IS NOT NULL) r
                       GROUP BY project_id, t, m ORDER BY 1")
  [ "$kept" = "$counted" ] || { printf '#   kept:    %s\n#   counted: %s\n' "$kept" "$counted"; return 1; }
}
# svc_copy DB FROM TO: a project TO whose learnings are FROM's titles and
# contents inserted by plain SQL, as the service inserts them (no metadata,
# embedding NULL)
svc_copy() {
  sql "$1" "INSERT INTO projects (name) VALUES ('$3') ON CONFLICT (name) DO NOTHING;
            INSERT INTO learnings (project_id, title, content)
            SELECT (SELECT id FROM projects WHERE name = '$3'), l.title, l.content
              FROM learnings l JOIN projects p ON p.id = l.project_id WHERE p.name = '$2'" >/dev/null
}
# svc_insert DB PROJECT N: N learnings inserted by SQL
svc_insert() {
  sql "$1" "INSERT INTO projects (name) VALUES ('$2') ON CONFLICT (name) DO NOTHING;
            INSERT INTO learnings (project_id, title, content)
            SELECT (SELECT id FROM projects WHERE name = '$2'), 'note ' || i,
                   'service note number ' || i || ' about vacuum, indexes and replicas'
              FROM generate_series(1, $3) i" >/dev/null
}
lrows() { sql "$1" "SELECT id || ' ' || xmin::text || ' ' || ctid::text FROM learnings ORDER BY id"; }

echo "# 1. rows kbpipe run wrote are not stale"
ref=$(new_db ref)
RUN_PROJECT=run kb "$ref" run "$L" -q
check_rc "the reference run loads the learnings" 0
vecs "$ref" run >"$tmp/ref.vecs"
check_eq "every learning has a vector" 0 "$(grep -c '|NULL$' "$tmp/ref.vecs")"
bf "$ref" --project run --table learnings
check_rc "a backfill without --pipeline on a hash-model project exits 0" 0
check_eq "it uses the project's stored model" kbpipe-hash-v1 "$(j model)"
check_eq "it finds no stale learning among those a run wrote" 0 "$(j found)"
check "it prints its summary" grep -q "0 stale row(s) found" "$tmp/err"
# an unknown project: the one message of db_project_check, exit 1 as in
# stats, sources, show, delete and export, both where the project is first
# read (the stored models, without --pipeline) and with --pipeline
for args in "" "--pipeline $L"; do
  # shellcheck disable=SC2086
  bf "$ref" --project nope --table learnings $args
  check_rc "backfill of an unknown project${args:+ ($args)} exits 1" 1
  check "... naming it" grep -qxF "kbpipe: embed backfill: no project named 'nope'; 'kbpipe stats' lists the projects" "$tmp/err"
  check_eq "... printing nothing on stdout" "" "$(cat "$tmp/out")"
done

echo "# 2. learnings inserted by SQL, then edited"
b=$(new_db svc)
sql "$b" "INSERT INTO projects (name) VALUES ('run')" >/dev/null
# the same titles and contents as the reference, typed in by the service
sql "$ref" "COPY (SELECT l.title, l.content FROM learnings l JOIN projects p ON p.id = l.project_id
                  WHERE p.name = 'run') TO STDOUT" >"$tmp/learn.tsv"
psql -X -q -v ON_ERROR_STOP=1 -d "$b" \
  -c "CREATE TEMP TABLE t (title text, content text)" \
  -c "\\copy t FROM '$tmp/learn.tsv'" \
  -c "INSERT INTO learnings (project_id, title, content)
      SELECT (SELECT id FROM projects WHERE name = 'run'), title, content FROM t" >/dev/null
svc_insert "$b" other 4
check_eq "the service's learnings have no vector" "$n_learn" \
  "$(sql "$b" "SELECT count(*) FROM learnings WHERE embedding IS NULL AND project_id =
               (SELECT id FROM projects WHERE name = 'run')")"
sql "$b" "SELECT id || ' ' || xmin::text FROM learnings l WHERE project_id =
          (SELECT id FROM projects WHERE name = 'other') ORDER BY id" >"$tmp/other.before"
bf "$b" --project run --table learnings
check_rc "without --pipeline and no stored model: usage error" 2
check "it says to pass --pipeline" grep -q "pass --pipeline FILE" "$tmp/err"
bf "$b" --project run --table learnings --pipeline "$L" --batch 5
check_rc "the backfill exits 0" 0
check_eq "it finds every learning" "$n_learn" "$(j found)"
check_eq "nothing to reuse in this database" 0 "$(j reused)"
check_eq "it embeds every learning" "$n_learn" "$(j embedded)"
check_eq "and updates every one" "$n_learn" "$(j updated)"
check_eq "in batches of 5" $(((n_learn + 4) / 5)) "$(j batches)"
vecs "$b" run >"$tmp/b.vecs"
check_same "vectors, content hashes and model equal those kbpipe run wrote" \
  "$tmp/ref.vecs" "$tmp/b.vecs"
bf "$b" --project run --table learnings
check_rc "a second backfill (now without --pipeline: the model is stored) exits 0" 0
check_eq "and finds nothing stale" 0 "$(j found)"
sql "$b" "SELECT id || ' ' || xmin::text FROM learnings l WHERE project_id =
          (SELECT id FROM projects WHERE name = 'other') ORDER BY id" >"$tmp/other.after"
check_same "rows of another project are untouched" "$tmp/other.before" "$tmp/other.after"
check_eq "and still have no vector" 4 \
  "$(sql "$b" "SELECT count(*) FROM learnings WHERE embedding IS NULL")"
t1=$(sql "$b" "SELECT title FROM learnings WHERE project_id = (SELECT id FROM projects WHERE
               name = 'run') ORDER BY title LIMIT 1")
old=$(sql "$b" "SELECT embedding::text FROM learnings WHERE title = \$\$$t1\$\$")
sql "$b" "UPDATE learnings SET content = content || ' Edited by the service.'
           WHERE title = \$\$$t1\$\$" >/dev/null
bf "$b" --project run --table learnings
check_eq "a learning edited by SQL is found stale" 1 "$(j found)"
check_eq "and re-embedded" 1 "$(j updated)"
new=$(sql "$b" "SELECT embedding::text FROM learnings WHERE title = \$\$$t1\$\$")
check "its vector changed" test "$old" != "$new"
check_eq "its content hash is the new text's" \
  "$(sql "$b" "SELECT encode(sha256(convert_to(title || E'\\n\\n' || content, 'UTF8')), 'hex')
               FROM learnings WHERE title = \$\$$t1\$\$")" \
  "$(sql "$b" "SELECT metadata->>'content_hash' FROM learnings WHERE title = \$\$$t1\$\$")"
bf "$b" --project run --table learnings
check_eq "it is re-embedded once: the next backfill finds nothing" 0 "$(j found)"
sql "$b" "UPDATE learnings SET title = title || ' (renamed)' WHERE title = \$\$$t1\$\$" >/dev/null
bf "$b" --project run --table learnings
check_eq "a title edit makes it stale too (the vector is of title and content)" 1 "$(j updated)"
check "kbpipe_embedding_models counts stay exact" models_exact "$b"

echo "# 3. stored vectors are reused by (content_hash, model)"
svc_copy "$ref" run copy
bf "$ref" --project copy --table learnings --pipeline "$L"
check_rc "the backfill of a copy exits 0" 0
check_eq "every learning is found" "$n_learn" "$(j found)"
check_eq "every vector is reused" "$n_learn" "$(j reused)"
check_eq "none is embedded" 0 "$(j embedded)"
vecs "$ref" copy >"$tmp/copy.vecs"
check_same "the reused vectors are the run's" "$tmp/ref.vecs" "$tmp/copy.vecs"

echo "# 4. knowledge_chunks"
c=$(new_db chunks)
RUN_PROJECT=docs kb "$c" run "$E" -q
check_rc "the run loads chunks" 0
cvecs "$c" docs >"$tmp/c.ref"
n_chunks=$(wc -l <"$tmp/c.ref")
check "it wrote some chunks" test "$n_chunks" -gt 3
bf "$c" --project docs --table knowledge_chunks
check_eq "no chunk a run wrote is stale" 0 "$(j found)"
sql "$c" "UPDATE knowledge_chunks SET embedding = NULL" >/dev/null
check "the counts follow the NULLs" models_exact "$c"
bf "$c" --project docs --table knowledge_chunks --pipeline "$E" --batch 2
check_rc "the chunk backfill exits 0" 0
check_eq "it finds every chunk" "$n_chunks" "$(j found)"
check_eq "it embeds every chunk" "$n_chunks" "$(j embedded)"
cvecs "$c" docs >"$tmp/c.back"
check_same "the chunks get back the vectors the run wrote" "$tmp/c.ref" "$tmp/c.back"
cid=$(sql "$c" "SELECT id FROM knowledge_chunks ORDER BY id LIMIT 1")
sql "$c" "UPDATE knowledge_chunks SET content = content || ' More text.' WHERE id = '$cid'" >/dev/null
bf "$c" --project docs --table knowledge_chunks
check_eq "a chunk edited by SQL is found stale" 1 "$(j found)"
check_eq "and updated" 1 "$(j updated)"
check_eq "its content_hash is its new text's" \
  "$(sql "$c" "SELECT encode(sha256(convert_to(content, 'UTF8')), 'hex') FROM knowledge_chunks
               WHERE id = '$cid'")" \
  "$(sql "$c" "SELECT content_hash FROM knowledge_chunks WHERE id = '$cid'")"
bf "$c" --project docs --table knowledge_chunks
check_eq "it is re-embedded once" 0 "$(j found)"
check "kbpipe_embedding_models counts stay exact" models_exact "$c"

echo "# 5. a vector of another model is stale"
sql "$c" "UPDATE learnings SET metadata = metadata || '{\"embedding_model\": \"other-model\"}'
           WHERE id IN (SELECT id FROM learnings ORDER BY id LIMIT 2)" >/dev/null
check_eq "the counts see the other model" 2 \
  "$(sql "$c" "SELECT n_rows FROM kbpipe_embedding_models WHERE model = 'other-model'")"
bf "$c" --project docs --table learnings
check_rc "without --pipeline, two stored models: usage error" 2
check "it names them" grep -q "kbpipe-hash-v1, other-model" "$tmp/err"
bf "$c" --project docs --table learnings --pipeline "$E"
check_eq "the two rows of another model are found" 2 "$(j found)"
check_eq "nothing holds their text under the hash model: none reused" 0 "$(j reused)"
check_eq "and updated" 2 "$(j updated)"
check_eq "no row of the other model is left" 0 \
  "$(sql "$c" "SELECT count(*) FROM kbpipe_embedding_models WHERE model = 'other-model'")"
check "kbpipe_embedding_models counts stay exact" models_exact "$c"

echo "# 6. --dry-run writes nothing"
svc_insert "$c" dry 7
lrows "$c" >"$tmp/dry.before"
bf "$c" --project dry --table learnings --pipeline "$L" --dry-run
check_rc "the dry run exits 0" 0
check_eq "it counts the stale rows" 7 "$(j found)"
check_eq "it would embed them" 7 "$(j embedded)"
check_eq "it updates none" 0 "$(j updated)"
check_eq "its status is dry-run" dry-run "$(j status)"
lrows "$c" >"$tmp/dry.after"
check_same "no learning was written" "$tmp/dry.before" "$tmp/dry.after"

echo "# 7. kill -9 in the middle, then a re-run"
k=$(new_db kill)
sql "$ref" "COPY (SELECT l.title, l.content FROM learnings l JOIN projects p ON p.id = l.project_id
                  WHERE p.name = 'run') TO STDOUT" >"$tmp/learn.tsv"
sql "$k" "INSERT INTO projects (name) VALUES ('run')" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$k" \
  -c "CREATE TEMP TABLE t (title text, content text)" \
  -c "\\copy t FROM '$tmp/learn.tsv'" \
  -c "INSERT INTO learnings (project_id, title, content)
      SELECT (SELECT id FROM projects WHERE name = 'run'), title, content FROM t" >/dev/null
KBPIPE_FAULT=load.backfill:2:kill bf "$k" --project run --table learnings --pipeline "$L" --batch 5
check_eq "the armed backfill dies by SIGKILL" 137 "$rc"
check_eq "the first batch is committed, the second is not" 5 \
  "$(sql "$k" "SELECT count(*) FROM learnings WHERE embedding IS NOT NULL")"
sql "$k" "SELECT id || ' ' || xmin::text FROM learnings WHERE embedding IS NOT NULL ORDER BY id" \
  >"$tmp/first.batch"
bf "$k" --project run --table learnings --pipeline "$L" --batch 5
check_rc "the re-run exits 0" 0
check_eq "it finds only the rows the kill left" $((n_learn - 5)) "$(j found)"
check_eq "and updates them" $((n_learn - 5)) "$(j updated)"
sql "$k" "SELECT id || ' ' || xmin::text FROM learnings WHERE id IN
          ($(sed "s/ .*//; s/.*/'&'/" "$tmp/first.batch" | paste -sd,)) ORDER BY id" >"$tmp/first.after"
check_same "the first batch's rows were not written again" "$tmp/first.batch" "$tmp/first.after"
vecs "$k" run >"$tmp/k.vecs"
check_same "every learning ends as kbpipe run writes it" "$tmp/ref.vecs" "$tmp/k.vecs"
check "kbpipe_embedding_models counts stay exact" models_exact "$k"

echo "# 8. a row edited between the read and the write"
g=$(new_db guard)
svc_insert "$g" svc 6
gid=$(sql "$g" "SELECT id FROM learnings ORDER BY id DESC LIMIT 1")
mkfifo "$tmp/tx"
psql -X -q -d "$g" <"$tmp/tx" >"$tmp/tx.out" 2>&1 &
tx_pid=$!
_bg+=("$tx_pid")
exec 7>"$tmp/tx"
echo "BEGIN; UPDATE learnings SET content = 'rewritten while the backfill ran' WHERE id = '$gid';" >&7
holds() { [ "$(sql "$g" "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                          AND state = 'idle in transaction'")" = 1 ]; }
check "a transaction holds the row, edited and not committed" poll 30 holds
bg "$g" "$tmp/guard" embed backfill --json --project svc --table learnings --pipeline "$L"
waits() { [ "$(sql "$g" "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                          AND wait_event_type = 'Lock' AND query LIKE '%kb_backfill_stage%'")" = 1 ]; }
check "the backfill read the old text and waits to write that row" poll 60 waits
echo "COMMIT;" >&7
exec 7>&-
wait "$tx_pid"
bg_wait "$bg_pid"
check_rc "the backfill exits 0" 0
check_eq "it read 6 rows" 6 "$(jget "$tmp/guard.out" .found)"
check_eq "it updated the 5 unchanged ones" 5 "$(jget "$tmp/guard.out" .updated)"
check_eq "it counts the edited one" 1 "$(jget "$tmp/guard.out" .edited)"
check "and says it left it for the next run" grep -q "1 edited since read (left for the next run)" \
  "$tmp/guard.err"
check_eq "the edited row keeps its new text and no vector" "rewritten while the backfill ran|true" \
  "$(sql "$g" "SELECT content || '|' || (embedding IS NULL)::text FROM learnings WHERE id = '$gid'")"
bf "$g" --project svc --table learnings
check_eq "the next backfill embeds it" 1 "$(j updated)"
check_eq "its content hash is the new text's" \
  "$(sql "$g" "SELECT encode(sha256(convert_to(title || E'\\n\\n' || content, 'UTF8')), 'hex')
               FROM learnings WHERE id = '$gid'")" \
  "$(sql "$g" "SELECT metadata->>'content_hash' FROM learnings WHERE id = '$gid'")"

echo "# 9. SIGINT ends the batch in hand"
s=$(new_db sig)
svc_insert "$s" big 3000
bg "$s" "$tmp/sig" embed backfill --project big --table learnings --pipeline "$L" --batch 1
some() { [ "$(sql "$s" "SELECT count(*) > 0 FROM learnings WHERE embedding IS NOT NULL")" = t ]; }
check "the backfill commits its first batches" poll 60 some
kill -INT "$bg_pid"
bg_wait "$bg_pid"
check_rc "SIGINT: it exits 130" 130
check "it says how many batches it committed" grep -q "interrupted: [0-9]* batch(es) committed" \
  "$tmp/sig.err"
done_n=$(sql "$s" "SELECT count(*) FROM learnings WHERE embedding IS NOT NULL")
check "it stopped before the end" test "$done_n" -lt 3000
bf "$s" --project big --table learnings
check_rc "the re-run exits 0" 0
check_eq "it finds only what was left" $((3000 - done_n)) "$(j found)"
check_eq "every learning has its vector" 0 \
  "$(sql "$s" "SELECT count(*) FROM learnings WHERE embedding IS NULL")"
check "kbpipe_embedding_models counts stay exact" models_exact "$s"

finish
