#!/usr/bin/env bash
# bench/search/statement_cost.sh - what a new backend pays for each
# statement of a `kbpipe search` (docs/search.md, "A search's fixed cost:
# page faults"), with bench/search/statement_cost.c: for BENCH_COST_RUNS
# (30) new connections, the connection and then each statement, each with
# its wall time, the backend's CPU and its minor page faults (p50).  Two
# forms of the same search (hybrid, k 5, one question, on 79 chunks):
#   kbpipe     the three statements `kbpipe search` sends (copied from
#              src/search/query.c: the project and its models, the ranking
#              by kbpipe_search_ranked joined with the rows, the log row),
#              the values written in
#   plain      the same with the ranking as one plain SQL statement
#              (bench/search/plain_ranking.sql, inlined, in a scratch copy
#              of the database), its settings set by the first statement;
#              checked first to rank every question of
#              bench/search/questions.tsv as 017 does, in the three modes
# The database is kbpipe_bench_env (bench/lib.sh search_corpus_db, kept);
# the copy is dropped at exit.  Reads the backend's /proc files: run it as
# root or as the server's user.  Not run by `make bench`:
#   KBPIPE_BIN=bin/kbpipe bash bench/search/statement_cost.sh
set -euo pipefail
. "$(dirname "$0")/../lib.sh"   # top (cd'd into), bin, the PG* variables, helpers
runs=${BENCH_COST_RUNS:-30}
db=kbpipe_bench_env
copy=kbpipe_bench_env_plain
tmp=$(mktemp -d)
drop_copy() { psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $copy WITH (FORCE)" >/dev/null; }
cleanup() { drop_copy 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
search_corpus_db "$db"
q="how do I pin exact versions so every install is the same?"
"$bin" --db "dbname=$db" search --project bench-512 -k 5 "$q" >/dev/null   # logs its vector
vec=$(logged_vector "$db" "$q")
pid=$(psql -X -At -d "$db" -c "SELECT id FROM projects WHERE name = 'bench-512'")
cc -std=c11 -O2 -Wall -Wextra -Werror -I"$(pg_config --includedir)" -o "$tmp/cost" \
  bench/search/statement_cost.c -lpq
drop_copy
psql -X -q -d postgres -c "CREATE DATABASE $copy TEMPLATE $db"
psql -X -q -v ON_ERROR_STOP=1 -d "$copy" -f bench/search/plain_ranking.sql

# the plain form ranks as 017 does: every tuning question, three modes
grep -v '^#' bench/search/questions.tsv | cut -f1 >"$tmp/questions"
same=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$copy" -v qs="$tmp/questions" <<'SQL'
CREATE TEMP TABLE qs (n serial, q text);
\set copy_cmd '\\copy qs (q) FROM ' :'qs'
:copy_cmd
SET hnsw.ef_search = 40; SET hnsw.iterative_scan = relaxed_order; SET enable_seqscan = off; SET jit = off;
WITH a AS (SELECT qs.q, (SELECT embedding FROM knowledge_chunks ORDER BY id OFFSET qs.n LIMIT 1) AS e,
                  (SELECT id FROM projects WHERE name = 'bench-512') AS p, m.mode
             FROM qs, unnest(ARRAY['hybrid', 'vector', 'text']) AS m(mode)),
     r AS (SELECT (SELECT array_agg(row(f.*)::text ORDER BY f.ord)
                     FROM kbpipe_search_ranked('chunks', a.e, a.q, a.p, 5, a.mode, '{}', true, 60, NULL) f) AS old,
                  (SELECT array_agg(row(f.*)::text ORDER BY f.ord)
                     FROM kbpipe_rank_chunks_plain(a.e, kbpipe_search_tsqueries('english', a.q), a.p,
                                                   5, a.mode, '{}', 60, 40) f) AS new
             FROM a)
SELECT count(*) FILTER (WHERE old IS NOT DISTINCT FROM new) || ' of ' || count(*) FROM r;
SQL
)

sqlq() { printf "'%s'" "${1//\'/\'\'}"; }   # a quoted SQL literal
Q=$(sqlq "$q")
first="SELECT p.id, m.model, m.n_rows, set_config('client_min_messages', 'warning', false) IS NOT NULL
  FROM (SELECT (SELECT id FROM projects WHERE name = 'bench-512') AS id) p
  LEFT JOIN LATERAL (SELECT model, n_rows FROM kbpipe_embedding_models
    WHERE project_id = p.id AND target = 'chunks' ORDER BY n_rows DESC, model LIMIT 6) m ON true"
join="SELECT c.id, f.score, s.title, coalesce(s.file_path, s.source_id), c.metadata->>'heading_path',
       c.content, c.chunk_index, s.source_type, s.source_id, s.id, s.url, f.score, f.similarity,
       f.text_rank, f.vector_position, f.text_position, s.file_path, NULL"
log="WITH o AS (SELECT set_config('synchronous_commit', 'off', true))
 INSERT INTO search_queries (project_id, query_text, query_embedding, search_type, result_count,
                             top_result_id, top_result_similarity, filters, metadata)
 SELECT '$pid'::uuid, $Q, '$vec'::vector, 'hybrid', 5, NULL, NULL, '{}'::jsonb,
        '{\"client\": \"bench/search/statement_cost.sh\"}'::jsonb FROM o"
{ echo "$first"; echo "--;"
  echo "$join FROM kbpipe_search_ranked('chunks', '$vec'::vector, $Q, '$pid'::uuid, 5, 'hybrid', '{}'::jsonb, true, 60, NULL) f"
  echo " JOIN knowledge_chunks c ON c.id = f.id JOIN knowledge_sources s ON s.id = c.source_id ORDER BY f.ord"
  echo "--;"; echo "$log"; } >"$tmp/kbpipe.sql"
gucs="set_config('hnsw.ef_search', '40', false), set_config('hnsw.iterative_scan', 'relaxed_order', false),
       set_config('enable_seqscan', 'off', false), set_config('jit', 'off', false),"
{ echo "${first/SELECT p.id,/SELECT $gucs p.id,}"
  echo "--;"
  echo "$join FROM kbpipe_rank_chunks_plain('$vec'::vector, kbpipe_search_tsqueries(coalesce((SELECT search_language FROM projects WHERE id = '$pid'), 'english')::regconfig, $Q), '$pid'::uuid, 5, 'hybrid', '{}'::jsonb, 60, 40) f"
  echo " JOIN knowledge_chunks c ON c.id = f.id JOIN knowledge_sources s ON s.id = c.source_id ORDER BY f.ord"
  echo "--;"; echo "$log"; } >"$tmp/plain.sql"

echo "a search's statements on a new backend ($runs connections each, p50; 79 chunks, hybrid, k 5):"
echo "  kbpipe (kbpipe_search_ranked, plpgsql, as kbpipe sends it), on $db:"
"$tmp/cost" "dbname=$db" "$runs" "$tmp/kbpipe.sql"
echo "  plain (bench/search/plain_ranking.sql, inlined; same ranking: $same searches equal), on $copy:"
"$tmp/cost" "dbname=$copy" "$runs" "$tmp/plain.sql"
echo "  server: huge pages for its buffers: $(huge_pages_of_server); malloc on transparent huge pages: $(malloc_thp_of_server)"
echo "  definitions: wall = the round trip; backend CPU = /proc/PID/schedstat; faults = minor faults, /proc/PID/stat"
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "reproduce: BENCH_COST_RUNS=$runs KBPIPE_BIN=$bin bash bench/search/statement_cost.sh"
