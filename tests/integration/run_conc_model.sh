#!/usr/bin/env bash
# tests/integration/run_conc_model.sh - two pipelines of one project with one
# embedding model, run at once (docs/schema.md: "concurrent loads of the
# same project and model serialize on their counter row ... so they never
# deadlock").  Pipelines m1 and m2 (tests/data/run/model.yaml: files and a
# learnings CSV each, their own source ids, dedup mark, mode full) load
# project it-model with the hash provider, in four rounds:
#   1. into an empty database (version A);
#   2. every chunk edited (B), every third learning edited;
#   3. every chunk edited again (C), every fourth file and learning
#      removed: the --full deletions;
#   4. the removed ones back (D).
# Every round starts both runs at once and checks that both exit 0, that
# neither's output mentions a deadlock (SQLSTATE 40P01), that the two runs
# overlapped in time, that the project holds exactly what the same two
# runs one after the other leave, and that kbpipe_embedding_models.n_rows
# equals count(*) of the rows with an embedding, per target and model.
# From round 2 the test holds the project's counter rows (FOR UPDATE)
# until both runs wait for them at once, then lets go: their batches meet
# on the rows for certain, not only when the timing happens to make them.
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_conc_model.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

M=tests/data/run/model.yaml
export RUN_PROJECT=it-model

# corpus PIPELINE SEED REV DROP: PIPELINE's files ($tmp/PIPELINE/docs/PIPELINE/...,
# so the two pipelines' source ids differ) and learnings CSV ($tmp/PIPELINE.csv,
# ids PIPELINE-N) at revision REV; DROP=1 leaves out every fourth of each
corpus() {
  local p=$1 seed=$2 rev=$3 drop=$4
  rm -rf "$tmp/$p/docs"
  gen "$tmp/$p/docs/$p" --files 100 --sections 4 --seed "$seed" --rev "$rev"
  local i
  if [ "$drop" = 1 ]; then
    for i in $(seq 0 4 99); do rm "$tmp/$p/docs/$p/d00/$(printf 'f%05d.md' "$i")"; done
  fi
  python3 - "$tmp/$p.csv" "$p" "$seed" "$rev" "$drop" <<'PY'
import csv, random, sys
out, p, seed, rev, drop = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] == '1'
words = ("index vacuum batch commit lock row table chunk vector model query plan cost "
         "page tuple merge copy stage retry backoff schema column trigger counter").split()
rows = [["id", "title", "content", "learning_type", "category", "tags",
         "confidence_score", "impact_level"]]
for i in range(40):
    if drop and i % 4 == 0:
        continue
    r = random.Random(seed * 1000 + i)
    text = " ".join(r.choice(words) for _ in range(30))
    # B edits every third learning; C and D edit all of them again
    tag = {"A": "A", "B": "B" if i % 3 == 0 else "A"}.get(rev, rev)
    rows.append(["%s-%d" % (p, i), "Learning %d of %s" % (i, p),
                 "%s. Revision %s." % (text, tag), "insight", "database", "", "0.5", "medium"])
csv.writer(open(out, "w", newline="")).writerows(rows)
PY
}
m() { local p=$1; shift; RUN_PIPELINE=$p RUN_DOCS=$tmp/$p/docs RUN_LEARNINGS=$tmp/$p.csv "$@"; }
# counters DB / real DB: per target and model, the counter row / count(*)
counters() {
  sql "$1" "SELECT m.target || ' ' || coalesce(m.model, '-') || ' ' || m.n_rows
              FROM kbpipe_embedding_models m JOIN projects p ON p.id = m.project_id
             WHERE p.name = 'it-model' ORDER BY 1"
}
real() {
  sql "$1" "SELECT t || ' ' || coalesce(model, '-') || ' ' || count(*) FROM (
              SELECT 'chunks' AS t, c.metadata->>'embedding_model' AS model
                FROM knowledge_chunks c JOIN projects p ON p.id = c.project_id
               WHERE p.name = 'it-model' AND c.embedding IS NOT NULL
              UNION ALL
              SELECT 'learnings', l.metadata->>'embedding_model'
                FROM learnings l JOIN projects p ON p.id = l.project_id
               WHERE p.name = 'it-model' AND l.embedding IS NOT NULL) x
            GROUP BY t, model ORDER BY 1"
}

ref=$(new_db ref)
conc=$(new_db conc)
rounds=("A 0" "B 0" "C 1" "D 0")
for r in 1 2 3 4; do
  read -r rev drop <<<"${rounds[$((r - 1))]}"
  echo "# round $r: version $rev$( [ "$drop" = 1 ] && echo ', every fourth file and learning removed')"
  corpus m1 41 "$rev" "$drop"
  corpus m2 42 "$rev" "$drop"
  # the reference: the same two runs, one after the other
  m m1 kb "$ref" run "$M" -q; check_rc "$r: m1 alone exits 0" 0
  m m2 kb "$ref" run "$M" -q; check_rc "$r: m2 alone exits 0" 0
  state "$ref" it-model >"$tmp/ref"
  if [ "$r" -gt 1 ]; then
    # from round 2 the counter rows exist: the test holds them until both
    # runs wait for them at once, so their batches meet there for certain
    PGAPPNAME=kb-holder psql -X -q -d "$conc" \
      -c "BEGIN; SELECT 1 FROM kbpipe_embedding_models FOR UPDATE; SELECT pg_sleep(120); COMMIT" \
      >/dev/null 2>&1 &
    holder=$!; _bg+=("$holder")
    holding() { [ "$(sql "$conc" "SELECT count(*) FROM pg_stat_activity
                                  WHERE datname = current_database() AND application_name = 'kb-holder' AND wait_event = 'PgSleep'")" = 1 ]; }
    poll 20 holding || fail "$r: the holder did not lock the counter rows"
  fi
  m m1 bg "$conc" "$tmp/a" run "$M" -q; p1=$bg_pid
  m m2 bg "$conc" "$tmp/b" run "$M" -q; p2=$bg_pid
  if [ "$r" -gt 1 ]; then
    both_wait() { [ "$(sql "$conc" "SELECT count(*) FROM pg_stat_activity
                                    WHERE datname = current_database() AND wait_event_type = 'Lock'
                                      AND application_name <> 'kb-holder'")" = 2 ]; }
    check "$r: both runs wait for a lock at once while the test holds the counter rows" poll 60 both_wait
    sql "$conc" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = 'kb-holder'" >/dev/null
    wait "$holder" 2>/dev/null
  fi
  bg_wait "$p1"; r1=$rc; bg_wait "$p2"; r2=$rc
  check_eq "$r: both pipelines exit 0" "0 0" "$r1 $r2"
  [ "$r1$r2" = 00 ] || sed 's/^/#   /' "$tmp/a.err" "$tmp/b.err" | head -n 20
  check_eq "$r: no deadlock (40P01) in either's output" 0 \
    "$(cat "$tmp/a.out" "$tmp/a.err" "$tmp/b.out" "$tmp/b.err" | grep -ciE '40P01|deadlock')"
  check_eq "$r: the two runs overlapped in time" t \
    "$(sql "$conc" "SELECT a.started_at < b.finished_at AND b.started_at < a.finished_at
                    FROM (SELECT * FROM kbpipe_runs WHERE pipeline = 'm1' ORDER BY id DESC LIMIT 1) a,
                         (SELECT * FROM kbpipe_runs WHERE pipeline = 'm2' ORDER BY id DESC LIMIT 1) b")"
  state "$conc" it-model >"$tmp/conc"
  check_same "$r: the project holds exactly what the two runs one after the other leave" \
    "$tmp/ref" "$tmp/conc"
  n_files=100 n_learn=40
  [ "$drop" = 0 ] || n_files=75 n_learn=30
  check_eq "$r: ... that is, 2 x $n_files files of 4 chunks and 2 x $n_learn learnings" \
    "$((2 * n_files * 4)) $((2 * n_learn))" \
    "$(grep -c '^C' "$tmp/conc") $(grep -c '^L' "$tmp/conc")"
  counters "$conc" >"$tmp/counters"; real "$conc" >"$tmp/real"
  check "$r: the counters are there (chunks and learnings)" \
    test "$(grep -c '^chunks \|^learnings ' "$tmp/counters")" = 2
  check_same "$r: kbpipe_embedding_models.n_rows = count(*) per target and model" \
    "$tmp/real" "$tmp/counters"
done
finish
