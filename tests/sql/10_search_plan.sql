-- 10_search_plan.sql - migration 016: the search functions are planned as
-- the millisecond queries they are.  Each runs with jit off (its plans cost
-- over jit_above_cost, since kbpipe_search_ranked disables sequential
-- scans, and a JIT compilation took longer than the search), and returns
-- an estimate of 10 rows, so kbpipe's query, which joins the results with
-- knowledge_sources and knowledge_chunks, probes their primary keys
-- instead of reading every source of every project.
BEGIN;
SELECT * FROM no_plan();

SELECT ok((SELECT bool_and(coalesce('jit=off' = ANY (proconfig), false)) FROM pg_proc
            WHERE proname IN ('kbpipe_search_ranked', 'search_hybrid_chunks',
                              'search_hybrid_learnings')),
          'the search functions run with jit off');
SELECT is((SELECT array_agg(DISTINCT prorows::int) FROM pg_proc
            WHERE proname IN ('kbpipe_search_ranked', 'search_hybrid_chunks',
                              'search_hybrid_learnings')),
          ARRAY[10], 'the search functions are estimated at 10 rows');

-- 20,000 sources of a chunk each: with the default estimate of 1,000 rows
-- the planner hashed all of them for each search
INSERT INTO projects (id, name) VALUES ('11111111-0000-0000-0000-00000000000a', 'plan');
INSERT INTO knowledge_sources (project_id, source_type, source_id)
SELECT '11111111-0000-0000-0000-00000000000a', 'file', 'f' || g FROM generate_series(1, 20000) g;
INSERT INTO knowledge_chunks (source_id, project_id, chunk_index, content, content_hash)
SELECT id, project_id, 0, 'text of ' || source_id, md5(source_id) FROM knowledge_sources
 WHERE project_id = '11111111-0000-0000-0000-00000000000a';
ANALYZE knowledge_sources;
ANALYZE knowledge_chunks;

CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    acc text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN ' || q LOOP
        acc := acc || line || E'\n';
    END LOOP;
    RETURN acc;
END;
$$;

-- the query of src/search/query.c (search_rank), columns trimmed
SELECT unalike(pg_temp.plan_of($q$
    SELECT r.chunk_id, s.title, c.chunk_index
      FROM search_hybrid_chunks(NULL::vector, 'rotate keys', '11111111-0000-0000-0000-00000000000a',
                                5, 'hybrid', '{}') WITH ORDINALITY r
      JOIN knowledge_sources s ON s.id = r.source_id
      JOIN knowledge_chunks c ON c.id = r.chunk_id
     ORDER BY r.ordinality$q$), '%Seq Scan on knowledge_sources%',
    'a search reads its results'' sources by key, not every source');

SELECT * FROM finish();
ROLLBACK;
