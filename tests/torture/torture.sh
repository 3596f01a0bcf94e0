#!/usr/bin/env bash
# tests/torture/torture.sh - kill kbpipe at random instants of every phase
# and check that the next run always ends where one clean run ends
# (issue 13).  `make torture` runs TORTURE_TRIALS=100 of them;
# tests/integration/run_torture.sh, in `make check`, a short form.
#
# One pipeline (tests/torture/torture.yaml, mode: full) over a corpus of
# two versions (tests/torture/corpus.py: A, and B = A with files, issues
# and learnings edited, removed and added) loads Markdown files, a gh issue
# export and a learnings CSV with a dedup pass (mark).  Each trial, from the
# state the last one left (P: A, B, or 0 = the project deleted, which one
# trial in five starts from, so dedup marks are made afresh):
#   1. runs the pipeline on version K and cuts it short, one of
#      - kill -9 at a random instant between start and the end a clean run
#        of P -> K takes (loading, dedup, --full deletions, index rebuild,
#        closing the run row: wherever it lands);
#      - kill -9 at an exact point (KBPIPE_FAULT=point:N:kill): inside the
#        Nth batch, the dedup pass, before the deletions, inside the index
#        rebuild, before the run row is closed;
#      - the server stopped (pg_ctl stop -m immediate) at a random instant,
#        then started again;
#   2. in one trial of four edits the corpus (K -> R, the other version)
#      before
#   3. in one trial of four, runs it again (version R) and kills that run
#      too: the one that pays the first one's debt (owed dedup, owed --full
#      deletions, the dropped index to rebuild), with kill -9 at a random
#      instant of a clean P -> R run's duration or at an exact point it
#      will reach (inside the dedup pass when a dedup is owed, inside the
#      index rebuild when an index is owed, before the deletions, before
#      the run row is closed, inside the 1st batch after a corpus edit);
#   4. running it again (version R): it must exit 0 and leave exactly the
#      canonical dump of one clean run of P -> R: per source its doc hash
#      and ordered chunk hashes with vector checksums; per learning its
#      content hash, vector checksum and dedup mark (keeper, similarity);
#      the HNSW and the full-text index present with no drop note; no run left `running`;
#      nothing owed in kbpipe_pending.
# Prints "torture: N trials, F failures" and the trials that failed; the
# seed is printed first, and TORTURE_SEED=S replays the same sequence.
#   TORTURE_TRIALS=1000 KBPIPE_BIN=build/rel/kbpipe-test bash tests/torture/torture.sh
# Needs a test build (fault points) and the project-local cluster
# (scripts/db.sh), which it stops and starts: it is started again on exit,
# whatever happens.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"

TRIALS=${TORTURE_TRIALS:-100}
seed=${TORTURE_SEED:-$(( $$ % 32768 ))}
RANDOM=$seed
note "TORTURE_SEED=$seed TORTURE_TRIALS=$TRIALS TORTURE_SCALE=${TORTURE_SCALE:-1}"
Y=tests/torture/torture.yaml
export T_CORPUS=$tmp/corpus T_PROJECT=it-torture T_PIPELINE=torture
PGBIN=/usr/lib/postgresql/15/bin
cdir=$(scripts/db.sh dir)
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
server_start() { scripts/db.sh start >/dev/null 2>&1; }
# the cluster is shared by every test: whatever happens, leave it running
_extra_cleanup='server_start'
trap 'server_start; _cleanup' EXIT

scale=${TORTURE_SCALE:-1}   # divides the corpus (corpus.py): 3 in the short form
n_copies=$((15 / scale))
version() { python3 tests/torture/corpus.py "$T_CORPUS" "$1" "$scale"; }

# canon DB: the canonical dump of the project (see the header)
canon() {
  sql "$1" "
    SELECT 'S|' || s.source_type || '|' || s.source_id || '|' || coalesce(s.doc_hash, '-') || '|' ||
           coalesce((SELECT string_agg(c.chunk_index || ':' || c.content_hash || ':' ||
                                       md5(c.embedding::text), ',' ORDER BY c.chunk_index)
                     FROM knowledge_chunks c WHERE c.source_id = s.id), '')
      FROM knowledge_sources s JOIN projects p ON p.id = s.project_id WHERE p.name = '$T_PROJECT'
    UNION ALL
    SELECT 'L|' || s.source_id || '|' || coalesce(l.metadata->>'content_hash', '-') || '|' ||
           md5(l.embedding::text) || '|' || coalesce(ks.source_id, '-') || '|' ||
           coalesce(round((l.metadata->>'similarity')::numeric, 4)::text, '-')
      FROM learnings l JOIN knowledge_sources s ON s.id = l.knowledge_source_id
      JOIN projects p ON p.id = l.project_id
      LEFT JOIN learnings k ON k.id::text = l.metadata->>'duplicate_of'
      LEFT JOIN knowledge_sources ks ON ks.id = k.knowledge_source_id
      WHERE p.name = '$T_PROJECT'
    UNION ALL
    SELECT 'X|hnsw indexes ' || (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                                 JOIN pg_am am ON am.oid = c.relam
                                 WHERE i.indrelid = 'knowledge_chunks'::regclass
                                   AND am.amname = 'hnsw' AND i.indisvalid)
        || ', full-text indexes ' || (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                                 WHERE i.indrelid = 'knowledge_chunks'::regclass
                                   AND c.relname = 'idx_knowledge_chunks_search_tsv' AND i.indisvalid)
        || ', drop notes ' || (SELECT count(*) FROM kbpipe_dropped_indexes)
        || ', runs running ' || (SELECT count(*) FROM kbpipe_runs WHERE status = 'running')
        || ', owed ' || (SELECT count(*) FROM kbpipe_pending)" | LC_ALL=C sort
}

# run_ms DB: run the pipeline to the end; $ms gets its duration
run_ms() {
  local t0; t0=$(date +%s%N)
  kb "$1" run "$Y" -q
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
}

echo "# the references: one clean run of P -> R for every pair of states"
declare -A dur
for v in A B; do
  d=$(new_db "base_${v,,}"); eval "base_$v=\$d"
  version "$v"; run_ms "$d"
  [ "$rc" = 0 ] || { show; fail "clean run of $v exits 0"; finish; }
  dur[0$v]=$ms
  canon "$d" >"$tmp/ref.0$v"
done
for p in A B; do
  for r in A B; do
    pdb=base_$p
    d=$(new_db "ref_${p,,}${r,,}")
    psql -X -q -d postgres -c "DROP DATABASE $d" -c "CREATE DATABASE $d TEMPLATE ${!pdb}" >/dev/null
    version "$r"; run_ms "$d"
    [ "$rc" = 0 ] || { show; fail "clean run $p -> $r exits 0"; finish; }
    dur[$p$r]=$ms
    canon "$d" >"$tmp/ref.$p$r"
    psql -X -q -d postgres -c "DROP DATABASE $d" >/dev/null
  done
done
check_same "a second clean run of A changes nothing" "$tmp/ref.0A" "$tmp/ref.AA"
# so a state is one state however it was reached, and P -> R has one answer
check_same "A -> B ends as a clean run of B" "$tmp/ref.0B" "$tmp/ref.AB"
check_same "B -> A ends as a clean run of A" "$tmp/ref.0A" "$tmp/ref.BA"
check "the clean run of A marks the $n_copies planted near copies" \
  test "$(grep '^L|' "$tmp/ref.0A" | grep -vc '|-|-$')" = "$n_copies"
check "the clean run leaves the HNSW and the full-text index, no note, no running run, nothing owed" \
  grep -q '^X|hnsw indexes 1, full-text indexes 1, drop notes 0, runs running 0, owed 0$' "$tmp/ref.0A"
note "clean run durations (ms): 0->A ${dur[0A]}, 0->B ${dur[0B]}, A->B ${dur[AB]}, B->A ${dur[BA]}, A->A ${dur[AA]}"

points=(load.flush:1:kill load.flush:3:kill load.flush:8:kill load.dedup:1:kill
        load.finish:1:kill load.rebuild:1:kill load.close:1:kill)
# points2: the second kill's exact points, the ones the re-run will reach:
# where it pays what the killed run owes (the dedup pass over owed
# learnings, the rebuild of a dropped index), the --full deletions and the
# closing of its row, which every run reaches, and its 1st batch after an
# edit of the corpus
points2() {
  local p=(load.finish:1:kill load.close:1:kill)
  [ "$(sql "$k" "SELECT count(*) FROM kbpipe_pending WHERE what = 'dedup'")" = 0 ] ||
    p+=(load.dedup:1:kill)
  [ "$(sql "$k" "SELECT count(*) FROM kbpipe_dropped_indexes")" = 0 ] || p+=(load.rebuild:1:kill)
  [ "$rv" = "$kv" ] || p+=(load.flush:1:kill)
  pick "${p[@]}"
}
k=$(new_db kill)
cur=0 n_fail=0 landed=0 stops=0 exact=0 edits=0 resets=0 failed_trials=()
twice=0 landed2=0 exact2=0 reached2=0
pick() { local a=("$@"); echo "${a[RANDOM % ${#a[@]}]}"; }
# sleep_ms MS
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
for i in $(seq 1 "$TRIALS"); do
  if [ "$cur" != 0 ] && [ $((RANDOM % 5)) = 0 ]; then
    sql "$k" "DELETE FROM projects WHERE name = '$T_PROJECT'" >/dev/null
    cur=0 resets=$((resets + 1))
  fi
  kv=$(pick A B)
  rv=$kv
  if [ $((RANDOM % 4)) = 0 ]; then rv=$(pick A B); [ "$rv" = "$kv" ] || edits=$((edits + 1)); fi
  index=$(pick auto rebuild)
  mode=$(pick time time exact exact stop)
  span=${dur[$cur$kv]}
  delay_ms=$(( RANDOM * span / 32768 ))
  fault=
  [ "$mode" = exact ] && fault=$(pick "${points[@]}")
  version "$kv"
  KBPIPE_FAULT=$fault T_INDEX=$index \
    "$bin" --db "dbname=$k" run "$Y" -q >"$tmp/k.out" 2>"$tmp/k.err" &
  pid=$!; _bg+=("$pid")
  what="$mode"
  case "$mode" in
    time)
      sleep_ms "$delay_ms"
      kill -9 "$pid" 2>/dev/null; what="kill -9 at ${delay_ms} ms" ;;
    exact) what="kill -9 at $fault"; exact=$((exact + 1)) ;;
    stop)
      sleep_ms "$delay_ms"
      as_owner "$PGBIN/pg_ctl" -D "$cdir/data" -m immediate -w stop >/dev/null 2>&1
      stops=$((stops + 1)); what="server stop at ${delay_ms} ms" ;;
  esac
  wait "$pid" 2>/dev/null; krc=$?
  # exit 137: the kill landed; 0: the run had ended before it
  [ "$mode" = time ] && [ "$krc" = 137 ] && landed=$((landed + 1))
  [ "$mode" = stop ] && server_start
  [ "$rv" = "$kv" ] || version "$rv"
  if [ $((RANDOM % 4)) = 0 ]; then
    # the re-run that pays the debt is itself killed (its index strategy
    # picked anew: rebuild drops the index again, a new debt)
    twice=$((twice + 1))
    index2=$(pick auto rebuild)
    mode2=$(pick time exact)
    span2=${dur[$cur$rv]}
    delay2_ms=$(( RANDOM * span2 / 32768 ))
    fault2=
    [ "$mode2" = exact ] && fault2=$(points2) && exact2=$((exact2 + 1))
    KBPIPE_FAULT=$fault2 T_INDEX=$index2 \
      "$bin" --db "dbname=$k" run "$Y" -q >"$tmp/k2.out" 2>"$tmp/k2.err" &
    pid=$!; _bg+=("$pid")
    if [ "$mode2" = time ]; then
      sleep_ms "$delay2_ms"
      kill -9 "$pid" 2>/dev/null
      what2="kill -9 at ${delay2_ms} ms"
    else
      what2="kill -9 at $fault2"
    fi
    wait "$pid" 2>/dev/null; krc2=$?
    # exit 137: the kill landed; 0: the run ended before it (or, at an
    # exact point, never reached it: e.g. no batch left to write)
    [ "$krc2" = 137 ] && { [ "$mode2" = time ] && landed2=$((landed2 + 1)) || reached2=$((reached2 + 1)); }
    what="$what (exit $krc), re-run on $rv ($index2) cut by $what2"
    krc=$krc2
  fi
  kb "$k" run "$Y" -q
  canon "$k" >"$tmp/s"
  want=$tmp/ref.$cur$rv
  [ "$cur" = 0 ] && want=$tmp/ref.0$rv
  if [ "$rc" = 0 ] && cmp -s "$want" "$tmp/s"; then
    note "trial $i: $cur -> $kv ($index), $what (exit $krc), re-run on $rv: ok"
  else
    n_fail=$((n_fail + 1)); failed_trials+=("$i")
    echo "not ok - trial $i: $cur -> $kv ($index), $what (exit $krc), re-run on $rv: exit $rc"
    show
    diff "$want" "$tmp/s" | head -n 8 | sed 's/^/#   /'
  fi
  cur=$rv
done
echo "torture: $TRIALS trials, $n_fail failures ($landed random kills landed, $exact at exact points, $stops server stops, $edits corpus edits before the re-run, $resets starts from an empty project; $twice re-runs cut too: $landed2 of $((twice - exact2)) random kills landed, $reached2 of $exact2 exact points reached; seed $seed)"
[ "$n_fail" = 0 ] || echo "torture: failed trials: ${failed_trials[*]}"
check_eq "every re-run after a kill or a server stop ends in the state of one clean run" 0 "$n_fail"
finish
