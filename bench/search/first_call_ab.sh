#!/usr/bin/env bash
# bench/search/first_call_ab.sh - the first statement of a new backend for
# the two ways `kbpipe search` can ask for its ranking (issue 15: every
# `kbpipe search` is a new backend):
#   wrapper  what kbpipe sent before: search_hybrid_chunks (the SQL function
#            of 008, over kbpipe_search_ranked) joined with the sources
#   direct   what src/search/query.c sends now: kbpipe_search_ranked joined
#            with knowledge_chunks and knowledge_sources in the statement
# Both are the statement of query.c (hybrid, k 5, no filter), parameters
# inlined by psql.  Each of BENCH_FIRST_RUNS (25) rounds starts one new psql
# session per variant, alternated (wrapper, direct, wrapper, ...), that runs
# SELECT 1 (the connection) then the variant, timed with \timing (the
# statement's round trip), and the server's CPU for the variant (user +
# sys of the statement, from the server's log_statement_stats: getrusage,
# microseconds; set on the database for the run, so superuser: the local
# cluster of scripts/db.sh).  Prints the p50 and p95 (nearest rank) of each
# variant's time and the p50 of its CPU, and the load average.
# Database: BENCH_FIRST_DB (kbpipe_bench_search, which bench/search.sh
# keeps with BENCH_SEARCH_KEEP=1; project bench-512); the query's vector is
# the one a `kbpipe search` of it logged (run bench/search.sh first).
# Not run by `make bench`:  bash bench/search/first_call_ab.sh
set -euo pipefail
. "$(dirname "$0")/../lib.sh"   # top (cd'd into), bin, the PG* variables
db=${BENCH_FIRST_DB:-kbpipe_bench_search}
runs=${BENCH_FIRST_RUNS:-25}
q="how do I pin exact versions so every install is the same?"
sql() { psql -X -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
emb=$(logged_vector "$db" "$q")
[ -n "$emb" ] || { echo "first_call_ab.sh: no logged search of \"$q\" in $db; run bench/search.sh first" >&2; exit 1; }
pid=$(sql "SELECT id FROM projects WHERE name = 'bench-512'")
cols_tail="s.source_type, s.source_id, s.id, s.url"
wrapper="SELECT r.chunk_id, CASE WHEN 'hybrid' = 'vector' THEN r.similarity ELSE r.score END,
  s.title, coalesce(s.file_path, s.source_id), r.metadata->>'heading_path', r.content,
  c.chunk_index, $cols_tail, r.score, r.similarity, r.text_rank, r.vector_position,
  r.text_position, s.file_path, NULL
  FROM search_hybrid_chunks(:'e'::vector, :'q', :'p'::uuid, 5, 'hybrid', '{}'::jsonb) WITH ORDINALITY r
  JOIN knowledge_sources s ON s.id = r.source_id JOIN knowledge_chunks c ON c.id = r.chunk_id
 WHERE NULL::float8 IS NULL OR r.similarity >= NULL::float8 ORDER BY r.ordinality"
direct="SELECT c.id, CASE WHEN 'hybrid' = 'vector' THEN f.similarity ELSE f.score END,
  s.title, coalesce(s.file_path, s.source_id), c.metadata->>'heading_path', c.content,
  c.chunk_index, $cols_tail, f.score, f.similarity, f.text_rank, f.vector_position,
  f.text_position, s.file_path, NULL
  FROM kbpipe_search_ranked('chunks', :'e'::vector, :'q', :'p'::uuid, 5, 'hybrid', '{}'::jsonb,
                            true, 60, NULL) f
  JOIN knowledge_chunks c ON c.id = f.id JOIN knowledge_sources s ON s.id = c.source_id
 WHERE NULL::float8 IS NULL OR f.similarity >= NULL::float8 ORDER BY f.ord"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the two variants return the same rows, or the comparison means nothing
for v in wrapper direct; do
  printf '%s;\n' "${!v}" | psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -v e="$emb" -v q="$q" \
    -v p="$pid" >"$tmp/rows_$v"
done
cmp -s "$tmp/rows_wrapper" "$tmp/rows_direct" ||
  { echo "first_call_ab.sh: the variants return different rows" >&2; exit 1; }
log=$PGHOST/server.log
[ -r "$log" ] || { echo "first_call_ab.sh: no readable server log at $log" >&2; exit 1; }
trap 'rm -rf "$tmp"; psql -X -q -d postgres -c "ALTER DATABASE $db RESET log_statement_stats"' EXIT
psql -X -q -d postgres -c "ALTER DATABASE $db SET log_statement_stats = on"
for ((i = 0; i < runs; i++)); do
  for v in wrapper direct; do
    from=$(($(wc -c <"$log") + 1))
    printf '\\timing on\nSELECT 1;\n%s;\n' "${!v}" |
      psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -v e="$emb" -v q="$q" -v p="$pid" |
      awk '/^Time:/ { t = $2 } END { print t }' >>"$tmp/ms_$v"
    sleep 0.05   # the backend's last log lines
    # a statement's block: "QUERY STATISTICS", its "N s user, N s system,
    # N s elapsed", then the STATEMENT line naming it (the variant: not SELECT 1)
    tail -c +"$from" "$log" | awk '/QUERY STATISTICS/ { inblk = 1 }
      inblk && /s elapsed/ { gsub(/,/, ""); cpu = ($2 + $5) * 1000 }
      inblk && /STATEMENT:/ { if ($0 !~ /STATEMENT: +SELECT 1;/) ms += cpu; inblk = 0 }
      END { printf "%.1f\n", ms }' >>"$tmp/cpu_$v"
  done
done
echo "first statement of a new backend on $db (bench-512, $(sql "SELECT count(*) FROM knowledge_chunks") chunks),"
echo "$runs backends per variant, alternated; time: the statement's round trip (psql \\timing)"
printf '%-8s %8s %8s %14s\n' variant 'p50 ms' 'p95 ms' 'CPU ms p50'
for v in wrapper direct; do
  sort -n "$tmp/ms_$v" >"$tmp/s"
  printf '%-8s %8s %8s %14s\n' "$v" \
    "$(awk '{ a[NR] = $1 } END { k = int(NR * 0.5); if (k < NR * 0.5) k++; printf "%.1f", a[k] }' "$tmp/s")" \
    "$(awk '{ a[NR] = $1 } END { k = int(NR * 0.95); if (k < NR * 0.95) k++; printf "%.1f", a[k] }' "$tmp/s")" \
    "$(sort -n "$tmp/cpu_$v" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
done
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "reproduce: BENCH_FIRST_DB=$db BENCH_FIRST_RUNS=$runs bash bench/search/first_call_ab.sh"
