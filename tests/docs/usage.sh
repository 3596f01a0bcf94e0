#!/usr/bin/env bash
# tests/docs/usage.sh - what a user does after loading, as README.md,
# docs/operations.md and scripts/demo.sh show it, against a fresh database
# holding the three sample pipelines (docs, issues, learnings):
#   * kbpipe --version prints the Makefile's version;
#   * kbpipe stats: the coverage row holds what was loaded (counted from
#     samples/ and from the tables), the last runs in order, --runs N,
#     --project, a bad --runs; stats --json parses with jq and has exactly
#     the fields docs/operations.md lists (the pictures' values:
#     tests/integration/stats_pictures.sh);
#   * the demo's searches put the obviously relevant sample first:
#     "HNSW index bulk load" (learnings) -> L-003 of
#     samples/learnings/learnings.csv ("Drop the HNSW index before a bulk
#     load and rebuild it after"); "how do I rotate a secret?" -> the top 3
#     hold samples/docs/operations/secrets.md (the rotation runbook) and
#     acme/supervisor-service#110 ("Document how to rotate the master
#     encryption key"), every one about secrets (docs/operations.md,
#     "Searching", says why secrets.md is second, not first).
. "$(dirname "$0")/../integration/lib.sh"

# --version ------------------------------------------------------------------
want=$(sed -n "s/.*-DKB_VERSION='\"\\([^\"]*\\)\"'.*/\\1/p" Makefile)
check_eq "kbpipe --version prints the Makefile's version" "kbpipe $want" "$("$bin" --version)"
check_eq "kbpipe -q --version too (global options anywhere)" "kbpipe $want" "$("$bin" -q --version)"

# load the samples -----------------------------------------------------------
db=$(new_db usage)
for p in docs issues learnings; do
  kb "$db" -q run "pipelines/$p.yaml" --report "$tmp/$p.json"
  check_rc "run pipelines/$p.yaml" 0
done

# stats ----------------------------------------------------------------------
n_docs=$(find samples/docs -name '*.md' | wc -l)
n_learn=$(python3 -c "import csv,sys; print(sum(1 for _ in csv.DictReader(open(sys.argv[1]))))" samples/learnings/learnings.csv)
n_issues=$(jget "$tmp/issues.json" '[.sources[].new] | add')
pid="(SELECT id FROM projects WHERE name = 'supervisor-service')"
want_row="supervisor-service $((n_docs + n_issues + n_learn)) $(sql "$db" "SELECT count(*) FROM knowledge_chunks WHERE project_id = $pid") $n_learn $(sql "$db" "SELECT sum(token_count) FROM knowledge_chunks WHERE project_id = $pid") csv,file,github_issue"
check_eq "the samples: $n_docs docs, $n_learn learnings in the tables" "$n_docs $n_learn" \
  "$(sql "$db" "SELECT count(*) FILTER (WHERE source_type = 'file') || ' ' || (SELECT count(*) FROM learnings WHERE project_id = $pid) FROM knowledge_sources WHERE project_id = $pid")"

kb "$db" stats
check_rc "kbpipe stats" 0
cp "$tmp/out" "$tmp/stats.txt"
check_eq "stats: the coverage row holds what was loaded" "$want_row" \
  "$(awk '/^Knowledge coverage/{s=1; next} s && /^supervisor-service /{$1=$1; print; exit}' "$tmp/stats.txt")"
check_eq "stats: six tables, in order" "Knowledge coverage|Learnings by use|Popular search queries|Recent runs|Token lengths per source type (16 bins over 0..max tokens)|Last runs, oldest first" \
  "$(grep -E '^(Knowledge coverage|Learnings by use|Popular search queries|Recent runs|Token lengths per source type.*|Last runs, oldest first)$' "$tmp/stats.txt" | paste -sd'|')"
check_eq "stats: the last runs, newest first, succeeded" "learnings succeeded|issues succeeded|docs succeeded" \
  "$(awk '/^Recent runs/{s=1; next} s && /^$/ {exit} s && $1 ~ /^[0-9]+$/ {print $2, $3}' "$tmp/stats.txt" | paste -sd'|')"
check_eq "stats: a run's sources column is its report's sources_seen" "$(jget "$tmp/docs.json" '.load.sources_seen')" \
  "$(awk '/^Recent runs/{s=1; next} s && /^$/ {exit} s && $2 == "docs" {print $7}' "$tmp/stats.txt")"

kb "$db" stats --runs 2
check_eq "stats --runs 2 lists two runs" "2" "$(awk '/^Recent runs/{s=1; next} s && /^$/ {exit} s && $1 ~ /^[0-9]+$/' "$tmp/out" | wc -l)"
kb "$db" stats --runs 0
check_rc "stats --runs 0 is a usage error" 2
check "  ... that says what a count is" grep -q "is not a count" "$tmp/err"
kb "$db" stats --project supervisor-service --json
check_eq "stats --project limits every list to it" "supervisor-service" \
  "$(jq -r '[.coverage[].project] | unique | join(" ")' "$tmp/out")"
kb "$db" stats --project no-such-project --json
check_rc "stats --project with an unknown name fails" 1
check "  ... naming it, with nothing on stdout" \
  bash -c "grep -qxF \"kbpipe: stats: no project named 'no-such-project'; 'kbpipe stats' lists the projects\" '$tmp/err' && test ! -s '$tmp/out'"

# searches of the demo (scripts/demo.sh) ------------------------------------
grep -q "search --project supervisor-service -k 3 --learnings \"HNSW index bulk load\"" scripts/demo.sh &&
  grep -q "search --project supervisor-service -k 3 \"how do I rotate a secret?\"" scripts/demo.sh
check "scripts/demo.sh runs the two searches this test checks" test $? = 0

kb "$db" search --project supervisor-service -k 3 --learnings --json "HNSW index bulk load"
check_rc "search --learnings" 0
top=$(jq -r '.[0].learning_id' "$tmp/out")
check_eq "learnings 'HNSW index bulk load': L-003 first" "L-003" \
  "$(sql "$db" "SELECT s.source_id FROM learnings l JOIN knowledge_sources s ON s.id = l.knowledge_source_id WHERE l.id = '$top'")"

kb "$db" search --project supervisor-service -k 3 --json "how do I rotate a secret?"
check_rc "search chunks" 0
ids=$(jq -r '.[].source_id' "$tmp/out")
if grep -qx 'operations/secrets.md' <<<"$ids" && grep -qx 'acme/supervisor-service#110' <<<"$ids"; then
  ok "rotate a secret: the runbook and the rotation issue in the top 3"
else fail "rotate a secret: top 3 are" $ids; fi
check_eq "rotate a secret: every one of the top 3 is about secrets" "3" \
  "$(jq '[.[] | select((.title + " " + .content) | test("secret"; "i"))] | length' "$tmp/out")"

# stats --json ---------------------------------------------------------------
kb "$db" stats --json
check_rc "stats --json" 0
check "stats --json parses with jq" jq -e . "$tmp/out" >/dev/null
cp "$tmp/out" "$tmp/stats.json"
check_eq "stats --json: the searches are in queries" "how do I rotate a secret?|1" \
  "$(jq -r '.queries[] | select(.query == "how do I rotate a secret?") | "\(.query)|\(.count)"' "$tmp/stats.json")"
check_eq "stats --json coverage agrees with the table" "$want_row" \
  "$(jq -r '.coverage[0] | "\(.project) \(.sources) \(.chunks) \(.learnings) \(.tokens) \(.source_types)"' "$tmp/stats.json")"
# the documented fields: docs/operations.md lists them as "- `key`: field, field, ..."
for key in coverage learnings queries runs token_lengths run_trend; do
  doc=$(sed -n "/^## Stats/,/^## /s/^- \`$key\`: \\([a-z0-9_, ]*\\)\\..*/\\1/p" docs/operations.md | tr -d ' ')
  got=$(jq -r --arg k "$key" '.[$k][0] | keys_unsorted | join(",")' "$tmp/stats.json")
  check_eq "stats --json .$key has the fields docs/operations.md lists" "$doc" "$got"
done
check_eq "stats --json has exactly the six lists" "coverage,learnings,queries,runs,token_lengths,run_trend" \
  "$(jq -r 'keys_unsorted | join(",")' "$tmp/stats.json")"

finish
