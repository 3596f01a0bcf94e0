#!/usr/bin/env bash
# bench/search/tail.sh - which questions make the p95 of bench/search.sh (b),
# and which leg: each of the 48 questions of bench/search/questions.tsv
# timed alone, per mode and fetch (5 and 40), on the kept database of
# bench/search.sh (BENCH_SEARCH_KEEP=1; project bench-scale).  Per question:
# the fastest of BENCH_TAIL_REPS (3) calls of search_hybrid_chunks, timed
# inside the server (clock_timestamp() around the call in one plpgsql loop,
# so no round trip and no client), which leaves out the scheduler's delays
# that make the p95 of (b) on a busy machine; and the rows the text query's
# two forms match (AND / OR, the OR form counted up to 2,000).
# Prints the BENCH_TAIL_TOP (6) slowest questions of each mode and fetch.
# The questions' vectors are those `kbpipe search` logged (search_queries);
# a question not logged yet is searched once (-k 5, vector mode) to log it.
# Not run by `make bench` (it needs the 200k database): run it alone,
#   BENCH_SEARCH_KEEP=1 BENCH_SEARCH_SIZES=200000 bash bench/search.sh   # once
#   KBPIPE_BIN=bin/kbpipe bash bench/search/tail.sh
set -euo pipefail
. "$(dirname "$0")/../lib.sh"   # top (cd'd into), bin, the PG* variables
db=kbpipe_bench_search
project=${BENCH_TAIL_PROJECT:-bench-scale}
reps=${BENCH_TAIL_REPS:-3}
top_n=${BENCH_TAIL_TOP:-6}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grep -v '^#' bench/search/questions.tsv | grep -v '^$' | cut -f1 >"$tmp/q.txt"
n=0
while IFS= read -r q; do
  n=$((n + 1))
  printf '%d\t%s\n' "$n" "${q//\\/\\\\}" >>"$tmp/qn.tsv"
  logged=$(psql -X -At -d "$db" -v q="$q" <<'EOF'
SELECT count(*) FROM search_queries WHERE query_text = :'q' AND query_embedding IS NOT NULL;
EOF
)
  [ "$logged" != 0 ] ||
    "$bin" --db "dbname=$db" search --project "$project" -k 5 --mode vector "$q" >/dev/null </dev/null
done <"$tmp/q.txt"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -v project="$project" -v reps="$reps" -v top="$top_n" <<EOF
CREATE TEMP TABLE qn (n int, q text);
\copy qn FROM '$tmp/qn.tsv'
CREATE TEMP TABLE qe AS
SELECT qn.n, qn.q, (SELECT s.query_embedding FROM search_queries s
                     WHERE s.query_text = qn.q AND s.query_embedding IS NOT NULL
                     ORDER BY s.created_at DESC LIMIT 1) AS emb FROM qn;
CREATE TEMP TABLE tm (n int, mode text, fetch_n int, ms float8);
SELECT set_config('bench.project', (SELECT id::text FROM projects WHERE name = :'project'), false),
       set_config('bench.reps', :'reps', false) \gset
DO \$\$
DECLARE
    r record; m text; f int; t0 timestamptz;
    pid uuid := current_setting('bench.project')::uuid;
BEGIN
    FOR rep IN 1..current_setting('bench.reps')::int LOOP
        FOREACH f IN ARRAY ARRAY[5, 40] LOOP
            FOREACH m IN ARRAY ARRAY['vector', 'text', 'hybrid'] LOOP
                FOR r IN SELECT * FROM qe ORDER BY n LOOP
                    t0 := clock_timestamp();
                    PERFORM count(*) FROM search_hybrid_chunks(r.emb, r.q, pid, f, m);
                    INSERT INTO tm VALUES (r.n, m, f, extract(epoch FROM clock_timestamp() - t0) * 1000);
                END LOOP;
            END LOOP;
        END LOOP;
    END LOOP;
END
\$\$;
\echo per mode: p50 and p95 over the questions of the fastest time of each (ms, in the server), project :project
SELECT mode, fetch_n,
       round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p50,
       round(percentile_disc(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p95
  FROM (SELECT n, mode, fetch_n, min(ms) AS ms FROM tm GROUP BY 1, 2, 3) b
 GROUP BY 1, 2 ORDER BY 2, 1;
\echo the slowest questions (fastest of the repeats, ms); and_rows, or_rows: the rows the AND and the OR form of the text query match
SELECT mode, fetch_n, n AS q, ms, and_rows, or_rows, question FROM (
  SELECT b.mode, b.fetch_n, b.n, round(b.ms::numeric, 2) AS ms,
         row_number() OVER (PARTITION BY b.mode, b.fetch_n ORDER BY b.ms DESC) AS k,
         (SELECT count(*) FROM knowledge_chunks c
           WHERE c.project_id = current_setting('bench.project')::uuid AND c.search_tsv @@ t.q[1]) AS and_rows,
         (SELECT count(*) FROM (SELECT 1 FROM knowledge_chunks c
           WHERE c.project_id = current_setting('bench.project')::uuid AND c.search_tsv @@ t.q[2]
           LIMIT 2000) x) AS or_rows,
         left(qe.q, 60) AS question
    FROM (SELECT n, mode, fetch_n, min(ms) AS ms FROM tm GROUP BY 1, 2, 3) b
    JOIN qe ON qe.n = b.n
    CROSS JOIN LATERAL (SELECT kbpipe_search_tsqueries(coalesce((SELECT p.search_language FROM projects p
                                 WHERE p.id = current_setting('bench.project')::uuid), 'english'), qe.q) AS q) t
  ) z
 WHERE k <= :top ORDER BY fetch_n, mode, k;
EOF
