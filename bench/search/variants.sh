#!/usr/bin/env bash
# bench/search/variants.sh - the variants of the ranking that docs/search.md
# ("Where the time goes") measured and did not take, beside the function as
# it is: a copy of kbpipe_search_ranked (pg_get_functiondef, in pg_temp, so
# nothing is left behind) whose text cap and vector candidates come from
# settings, run over the 48 questions on the kept database of
# bench/search.sh (project BENCH_VARIANTS_PROJECT, default bench-scale).
# Per variant, mode and fetch: p50 / p95 of the calls timed inside the
# server (BENCH_VARIANTS_REPS x 48), and recall@1 and MRR@5 of files (the
# rank of the expected file among the files of the fetched chunks, as
# kbpipe eval counts them, for the first repeat).  Variants:
#   as_is       the function as migrated
#   cap200      each text form ranks at most 200 rows (017: 400)
#   cap1000     1,000 (008)
#   vec_fetch   vector mode asks the leg for the fetch only (candidates =
#               fetch, so ef_search = max(fetch, 40))
# Not run by `make bench`:  bash bench/search/variants.sh
set -euo pipefail
. "$(dirname "$0")/../lib.sh"   # top (cd'd into), bin, the PG* variables
db=kbpipe_bench_search
project=${BENCH_VARIANTS_PROJECT:-bench-scale}
reps=${BENCH_VARIANTS_REPS:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grep -v '^#' bench/search/questions.tsv | grep -v '^$' |
  awk -F'\t' '{ gsub(/\\/, "\\\\"); print NR "\t" $1 "\t" $2 }' >"$tmp/q.tsv"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -v project="$project" -v reps="$reps" <<EOF
CREATE TEMP TABLE qe (n int, q text, expected text);
\copy qe (n, q, expected) FROM '$tmp/q.tsv'
ALTER TABLE qe ADD emb vector;
UPDATE qe SET emb = (SELECT s.query_embedding FROM search_queries s
                      WHERE s.query_text = qe.q AND s.query_embedding IS NOT NULL
                      ORDER BY s.created_at DESC LIMIT 1);
SELECT count(*) FILTER (WHERE emb IS NULL) AS questions_without_a_logged_vector FROM qe;
DO \$\$
DECLARE d text := pg_get_functiondef('kbpipe_search_ranked(text, vector, text, uuid, integer, text, jsonb, boolean, integer, integer)'::regprocedure);
BEGIN
    d := replace(d, 'FUNCTION public.kbpipe_search_ranked(', 'FUNCTION pg_temp.ranked_variant(');
    d := replace(d, 'v_text_cap constant integer := 400;',
                 'v_text_cap integer := current_setting(''bench.cap'')::integer;');
    d := replace(d, 'v_cand := greatest(coalesce(p_candidates, greatest(4 * v_n, 40)), v_n);',
                 'v_cand := CASE WHEN current_setting(''bench.vec_fetch'') = ''on'' AND v_mode = ''vector'''
                 ' THEN greatest(v_n, 40) ELSE greatest(coalesce(p_candidates, greatest(4 * v_n, 40)), v_n) END;');
    IF d NOT LIKE '%bench.cap%' OR d NOT LIKE '%bench.vec_fetch%' THEN
        RAISE EXCEPTION 'kbpipe_search_ranked is not the function of migration 017; variants.sh needs updating';
    END IF;
    EXECUTE d;
END
\$\$;
CREATE TEMP TABLE res (variant text, n int, mode text, fetch_n int, rep int, ms float8, rank int);
SELECT set_config('bench.project', (SELECT id::text FROM projects WHERE name = :'project'), false),
       set_config('bench.reps', :'reps', false) \gset
DO \$\$
DECLARE
    r record; v record; m text; f int; t0 timestamptz; ids uuid[]; ms float8;
    pid uuid := current_setting('bench.project')::uuid;
BEGIN
    FOR rep IN 1..current_setting('bench.reps')::int LOOP
    FOR v IN SELECT * FROM (VALUES ('as_is', 400, 'off'), ('cap200', 200, 'off'), ('cap1000', 1000, 'off'),
                                   ('vec_fetch', 400, 'on')) AS t(name, cap, vec_fetch) LOOP
        PERFORM set_config('bench.cap', v.cap::text, false), set_config('bench.vec_fetch', v.vec_fetch, false);
        FOREACH f IN ARRAY ARRAY[5, 40] LOOP
        FOREACH m IN ARRAY ARRAY['vector', 'text', 'hybrid'] LOOP
            CONTINUE WHEN v.name LIKE 'cap%' AND m = 'vector';
            CONTINUE WHEN v.name = 'vec_fetch' AND (m <> 'vector' OR f = 5);
            FOR r IN SELECT * FROM qe ORDER BY n LOOP
                t0 := clock_timestamp();
                SELECT array_agg(x.id ORDER BY x.ord) INTO ids
                  FROM pg_temp.ranked_variant('chunks', r.emb, r.q, pid, f, m, '{}', true, 60, NULL) x;
                ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
                INSERT INTO res SELECT v.name, r.n, m, f, rep, ms,
                   (SELECT min(k) FROM (SELECT s.source_id, dense_rank() OVER (ORDER BY s0.first) AS k
                                          FROM (SELECT c.source_id, min(u.o) AS first
                                                  FROM unnest(ids) WITH ORDINALITY u(id, o)
                                                  JOIN knowledge_chunks c ON c.id = u.id GROUP BY 1) s0
                                          JOIN knowledge_sources s ON s.id = s0.source_id) z
                     WHERE z.source_id LIKE replace(replace(r.expected, '*', '%'), '?', '_'));
            END LOOP;
        END LOOP; END LOOP;
    END LOOP; END LOOP;
END
\$\$;
\echo variants on project :project (ms in the server; recall and MRR of files, first repeat)
SELECT variant, mode, fetch_n,
       round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p50,
       round(percentile_disc(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p95,
       round(avg(coalesce((rank = 1)::int, 0)) FILTER (WHERE rep = 1), 3) AS recall_at_1,
       round(avg(CASE WHEN rank <= 5 THEN 1.0 / rank ELSE 0 END) FILTER (WHERE rep = 1), 3) AS mrr_at_5
  FROM res GROUP BY 1, 2, 3 ORDER BY 3, 2, 1;
EOF
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg))"
