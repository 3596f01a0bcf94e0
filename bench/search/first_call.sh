#!/usr/bin/env bash
# bench/search/first_call.sh - what a new backend's first search costs the
# server, step by step (issue 15: every `kbpipe search` is a new backend).
# On the database of bench/search.sh (a) (BENCH_SEARCH_KEEP=1 keeps it;
# project bench-512), each of BENCH_FIRST_RUNS (10) new psql sessions runs,
# in this order, and times with \timing (the statement's round trip):
#   select1    SELECT 1 (the round trip, and the backend's first statement)
#   tsconfig   websearch_to_tsquery('english', ...): the first use of the
#              text search configuration (its dictionaries and stopwords)
#   tsqueries  kbpipe_search_tsqueries (008): the query's two forms
#   vector     a vector literal cast: the first use of pgvector's type
#   hnsw       a bare HNSW ORDER BY ... LIMIT 20 over the project
#   nolegs     kbpipe_search_ranked with no vector and no text: the
#              plpgsql function's compilation and its own statements (the
#              project's language, the fusion), no leg
#   ranked     kbpipe_search_ranked with both: the plans of its EXECUTEd
#              legs, with all of the above warm
#   hybrid     search_hybrid_chunks, the SQL function kbpipe called until
#              48bd249 (it now calls kbpipe_search_ranked), now warm
#   hybrid2    the same again
# and prints the p50 of each column (ms).  The query's vector is the one a
# `kbpipe search` logged (search_queries); run bench/search.sh first.
# Not run by `make bench`:  bash bench/search/first_call.sh
set -euo pipefail
. "$(dirname "$0")/../lib.sh"   # top (cd'd into), bin, the PG* variables
db=kbpipe_bench_search
runs=${BENCH_FIRST_RUNS:-10}
q="how do I pin exact versions so every install is the same?"
sql() { psql -X -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
emb=$(logged_vector "$db" "$q")
[ -n "$emb" ] || { echo "first_call.sh: no logged search of \"$q\" in $db; run bench/search.sh first" >&2; exit 1; }
pid=$(sql "SELECT id FROM projects WHERE name = 'bench-512'")
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for i in $(seq "$runs"); do
  psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -v e="$emb" -v q="$q" -v p="$pid" <<'EOF' |
\timing on
SELECT 1;
SELECT websearch_to_tsquery('english', 'pin') IS NULL;
SELECT kbpipe_search_tsqueries('english', :'q') IS NULL;
SELECT vector_dims(:'e'::vector);
SELECT count(*) FROM (SELECT id FROM knowledge_chunks WHERE project_id = :'p'
                       ORDER BY embedding <=> :'e'::vector LIMIT 20) x;
SELECT count(*) FROM kbpipe_search_ranked('chunks', NULL, NULL, :'p'::uuid, 5, 'hybrid',
                                          '{}', true, 60, NULL);
SELECT count(*) FROM kbpipe_search_ranked('chunks', :'e'::vector, :'q', :'p'::uuid, 5, 'hybrid',
                                          '{}', true, 60, NULL);
SELECT count(*) FROM search_hybrid_chunks(:'e'::vector, :'q', :'p'::uuid, 5);
SELECT count(*) FROM search_hybrid_chunks(:'e'::vector, :'q', :'p'::uuid, 5);
EOF
    awk '/^Time:/ { printf "%s%s", (n++ ? " " : ""), $2 } END { print "" }' >>"$tmp"
done
echo "first statements of a new backend on $db (bench-512), p50 of $runs backends, ms:"
printf '%-10s %7s\n' step p50
i=0
for step in select1 tsconfig tsqueries vector hnsw nolegs ranked hybrid hybrid2; do
  i=$((i + 1))
  printf '%-10s %7s\n' "$step" "$(awk -v c="$i" '{ print $c }' "$tmp" | sort -n |
    awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] }')"
done
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg))"
