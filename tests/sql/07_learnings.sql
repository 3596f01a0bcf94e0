-- 07_learnings.sql - migration 005: the three similarity searches (ranking,
-- project/category/limit/min_similarity, threshold edges, NULL and empty
-- inputs), the HNSW indexes in their plans, usage counting and the views.
BEGIN;
SELECT * FROM no_plan();

-- a 1536-dim vector from its first components, the rest 0
CREATE FUNCTION pg_temp.v(VARIADIC head float4[]) RETURNS vector LANGUAGE sql AS $$
    SELECT (head || array_fill(0::float4, ARRAY[1536 - cardinality(head)]))::vector
$$;
CREATE FUNCTION pg_temp.sim(a vector, b vector) RETURNS float8 LANGUAGE sql AS $$
    SELECT 1 - (a <=> b)
$$;

INSERT INTO projects (id, name) VALUES ('11111111-0000-0000-0000-000000000001', 'alpha'),
                                       ('11111111-0000-0000-0000-000000000002', 'beta');
INSERT INTO knowledge_sources (id, project_id, source_type, source_id) VALUES
    ('77777777-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 'file', 'a.md'),
    ('77777777-0000-0000-0000-000000000002', '11111111-0000-0000-0000-000000000002', 'github_issue', 'o/r#1');
-- similarity to e1: same 1, near 0.6, ortho 0, opposite -1; beta's copy of e1; one never embedded
INSERT INTO knowledge_chunks (id, source_id, project_id, chunk_index, content, content_hash, embedding, token_count) VALUES
    ('88888888-0000-0000-0000-000000000001', '77777777-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 0, 'same', 'h1', pg_temp.v(1, 0), 10),
    ('88888888-0000-0000-0000-000000000002', '77777777-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 1, 'near', 'h2', pg_temp.v(0.6, 0.8), 20),
    ('88888888-0000-0000-0000-000000000003', '77777777-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 2, 'ortho', 'h3', pg_temp.v(0, 1), 30),
    ('88888888-0000-0000-0000-000000000004', '77777777-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 3, 'opposite', 'h4', pg_temp.v(-1, 0), 40),
    ('88888888-0000-0000-0000-000000000005', '77777777-0000-0000-0000-000000000002', '11111111-0000-0000-0000-000000000002', 0, 'beta same', 'h5', pg_temp.v(2, 0), 50),
    ('88888888-0000-0000-0000-000000000006', '77777777-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 4, 'unembedded', 'h6', NULL, 5);

-- search_knowledge_chunks
SELECT results_eq($$SELECT content, similarity FROM search_knowledge_chunks(pg_temp.v(1, 0), '11111111-0000-0000-0000-000000000001', 10, 0.5)$$,
                  $$VALUES ('same', 1::float8), ('near', pg_temp.sim(pg_temp.v(1, 0), pg_temp.v(0.6, 0.8)))$$,
                  'ranked by cosine similarity, project and min_similarity honoured');
SELECT ok(abs(pg_temp.sim(pg_temp.v(1, 0), pg_temp.v(0.6, 0.8)) - 0.6) < 1e-6, 'similarity = 1 - cosine distance');
SELECT results_eq($$SELECT chunk_id, source_id, content FROM search_knowledge_chunks(pg_temp.v(1, 0), NULL, 2, 0.5)$$,
                  $$VALUES ('88888888-0000-0000-0000-000000000001'::uuid, '77777777-0000-0000-0000-000000000001'::uuid, 'same'),
                           ('88888888-0000-0000-0000-000000000005', '77777777-0000-0000-0000-000000000002', 'beta same')$$,
                  'a NULL project searches every project; the limit cuts');
SELECT is((SELECT count(*) FROM search_knowledge_chunks(pg_temp.v(1, 0), '11111111-0000-0000-0000-000000000001', 1, 0)),
          1::bigint, 'limit 1');
-- threshold edges: the exact similarity is in, anything above it is out
SELECT is((SELECT count(*) FROM search_knowledge_chunks(pg_temp.v(1, 0), '11111111-0000-0000-0000-000000000001', 10,
                                                       pg_temp.sim(pg_temp.v(1, 0), pg_temp.v(0.6, 0.8)))),
          2::bigint, 'a row exactly at min_similarity is returned');
SELECT is((SELECT count(*) FROM search_knowledge_chunks(pg_temp.v(1, 0), '11111111-0000-0000-0000-000000000001', 10,
                                                       pg_temp.sim(pg_temp.v(1, 0), pg_temp.v(0.6, 0.8)) + 1e-9)),
          1::bigint, 'a row just under min_similarity is not');
SELECT is((SELECT count(*) FROM search_knowledge_chunks(pg_temp.v(1, 0), '11111111-0000-0000-0000-000000000001', 10, 0)),
          3::bigint, 'min_similarity 0 keeps orthogonal rows');
SELECT is((SELECT count(*) FROM search_knowledge_chunks(pg_temp.v(1, 0), '11111111-0000-0000-0000-000000000001', 10, 1)),
          1::bigint, 'min_similarity 1 keeps only identical directions');
SELECT is((SELECT count(*) FROM search_knowledge_chunks(pg_temp.v(1, 0), '11111111-0000-0000-0000-000000000001', 10, 1.01)),
          0::bigint, 'min_similarity above 1 finds nothing');
SELECT is((SELECT min(similarity) FROM search_knowledge_chunks(pg_temp.v(1, 0), '11111111-0000-0000-0000-000000000001', 10, NULL)),
          -1::float8, 'a NULL min_similarity is no threshold (opposite vectors too)');
SELECT is((SELECT count(*) FROM search_knowledge_chunks(pg_temp.v(1, 0), '11111111-0000-0000-0000-000000000001', 10, NULL)),
          4::bigint, 'chunks without an embedding are never returned');
SELECT is((SELECT count(*) FROM search_knowledge_chunks(pg_temp.v(1, 0))), 2::bigint,
          'defaults: every project, 10 rows, min_similarity 0.7');
-- NULL and empty inputs
SELECT is((SELECT count(*) FROM search_knowledge_chunks(NULL, NULL, 10, NULL)), 0::bigint, 'a NULL query matches nothing');
SELECT is((SELECT count(*) FROM search_knowledge_chunks(pg_temp.v(1, 0), NULL, NULL, 0.5)), 3::bigint, 'a NULL limit means 10');
SELECT is((SELECT count(*) FROM search_knowledge_chunks(pg_temp.v(1, 0), NULL, 0, NULL)), 0::bigint, 'limit 0: nothing');
SELECT is((SELECT count(*) FROM search_knowledge_chunks(pg_temp.v(1, 0), NULL, -5, NULL)), 0::bigint, 'a negative limit: nothing, no error');
SELECT is((SELECT count(*) FROM search_knowledge_chunks(pg_temp.v(1, 0), '99999999-0000-0000-0000-000000000000', 10, NULL)),
          0::bigint, 'an unknown project: nothing');
SELECT is((SELECT count(*) FROM search_knowledge_chunks(pg_temp.v(0, 0), NULL, 10, NULL)), 0::bigint,
          'a zero query vector (no direction) matches nothing');
SELECT throws_ok($$SELECT * FROM search_knowledge_chunks('[1,0]'::vector)$$, '22000', NULL,
                 'a query of the wrong dimension is an error');

-- learnings
INSERT INTO learnings (id, project_id, title, content, learning_type, category, confidence_score, embedding, tags) VALUES
    ('99999999-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 'L same', 'c1', 'pattern', 'db', 0.9, pg_temp.v(1, 0), '{pg}'),
    ('99999999-0000-0000-0000-000000000002', '11111111-0000-0000-0000-000000000001', 'L near', 'c2', 'pitfall', 'db', 0.8, pg_temp.v(0.95, 0.05), '{}'),
    ('99999999-0000-0000-0000-000000000003', '11111111-0000-0000-0000-000000000001', 'L other cat', 'c3', 'pattern', 'ui', 0.7, pg_temp.v(1, 0.01), '{}'),
    ('99999999-0000-0000-0000-000000000004', '11111111-0000-0000-0000-000000000002', 'L beta', 'c4', 'pattern', 'db', 0.6, pg_temp.v(1, 0), '{}'),
    ('99999999-0000-0000-0000-000000000005', NULL, 'L global', 'c5', 'insight', 'db', 0.5, pg_temp.v(0, 1), '{}');
SELECT throws_ok($$INSERT INTO learnings (title, content, confidence_score) VALUES ('t', 'c', 1.5)$$, '23514', NULL,
                 'confidence_score is within 0..1');
SELECT throws_ok($$INSERT INTO learnings (title, content, impact_level) VALUES ('t', 'c', 'huge')$$, '23514', NULL,
                 'impact_level is checked');

SELECT results_eq($$SELECT learning_id, title, learning_type, category, confidence_score
                      FROM search_learnings(pg_temp.v(1, 0), '11111111-0000-0000-0000-000000000001', 'db', 10, 0.5)$$,
                  $$VALUES ('99999999-0000-0000-0000-000000000001'::uuid, 'L same', 'pattern', 'db', 0.9000),
                           ('99999999-0000-0000-0000-000000000002', 'L near', 'pitfall', 'db', 0.8000)$$,
                  'search_learnings: project and category honoured, nearest first');
SELECT is((SELECT count(*) FROM search_learnings(pg_temp.v(1, 0), '11111111-0000-0000-0000-000000000001', NULL, 10, 0.5)),
          3::bigint, 'a NULL category is any category');
SELECT is((SELECT count(*) FROM search_learnings(pg_temp.v(1, 0), NULL, NULL, 10, -1)), 5::bigint,
          'a NULL project is every learning, global ones included');
SELECT is((SELECT count(*) FROM search_learnings(pg_temp.v(1, 0), NULL, 'nope', 10, -1)), 0::bigint, 'an unknown category: nothing');
SELECT is((SELECT count(*) FROM search_learnings(pg_temp.v(1, 0), NULL, NULL, 1, -1)), 1::bigint, 'the limit cuts');
SELECT is((SELECT count(*) FROM search_learnings(NULL)), 0::bigint, 'a NULL query matches nothing');
SELECT is((SELECT similarity FROM search_learnings(pg_temp.v(1, 0), '11111111-0000-0000-0000-000000000001', 'db', 1, 0)),
          1::float8, 'similarity of the same direction is 1');

-- find_similar_learnings
SELECT results_eq($$SELECT learning_id, title FROM find_similar_learnings(pg_temp.v(1, 0), '11111111-0000-0000-0000-000000000001')$$,
                  $$VALUES ('99999999-0000-0000-0000-000000000001'::uuid, 'L same'),
                           ('99999999-0000-0000-0000-000000000003', 'L other cat'),
                           ('99999999-0000-0000-0000-000000000002', 'L near')$$,
                  'find_similar_learnings: default threshold 0.9, nearest first');
SELECT is((SELECT count(*) FROM find_similar_learnings(pg_temp.v(1, 0), '11111111-0000-0000-0000-000000000001',
                                                      pg_temp.sim(pg_temp.v(1, 0), pg_temp.v(0.95, 0.05)))),
          3::bigint, 'a learning exactly at the threshold counts');
SELECT is((SELECT count(*) FROM find_similar_learnings(pg_temp.v(1, 0), '11111111-0000-0000-0000-000000000001',
                                                      pg_temp.sim(pg_temp.v(1, 0), pg_temp.v(0.95, 0.05)) + 1e-9)),
          2::bigint, 'just under the threshold does not');
SELECT is((SELECT count(*) FROM find_similar_learnings(pg_temp.v(1, 0), NULL, 0.99)), 4::bigint,
          'a NULL project compares with every project');
SELECT is((SELECT count(*) FROM find_similar_learnings(pg_temp.v(1, 0), NULL, NULL)), 4::bigint,
          'a NULL threshold means 0.9');
SELECT is((SELECT count(*) FROM find_similar_learnings(pg_temp.v(1, 0), NULL, -1, 2)), 2::bigint, 'p_limit caps the result');
SELECT is((SELECT count(*) FROM find_similar_learnings(NULL, NULL, -1)), 0::bigint, 'a NULL embedding matches nothing');

-- usage
SELECT is(increment_learning_usage('99999999-0000-0000-0000-000000000001'), 1, 'the first use counts 1');
SELECT is(increment_learning_usage('99999999-0000-0000-0000-000000000001'), 2, 'the second 2');
SELECT isnt((SELECT last_used_at FROM learnings WHERE id = '99999999-0000-0000-0000-000000000001'), NULL, 'last_used_at is set');
SELECT throws_ok($$SELECT increment_learning_usage('99999999-0000-0000-0000-0000000000ff')$$, 'P0002', NULL,
                 'an unknown learning raises');
SELECT throws_ok($$SELECT increment_learning_usage(NULL)$$, 'P0002', NULL, 'a NULL id raises');
INSERT INTO learning_applications (learning_id, applied_to_type, applied_to_id, outcome) VALUES
    ('99999999-0000-0000-0000-000000000001', 'task', 't1', 'success'),
    ('99999999-0000-0000-0000-000000000001', 'task', 't2', 'success'),
    ('99999999-0000-0000-0000-000000000001', 'task', 't3', 'failure'),
    ('99999999-0000-0000-0000-000000000001', 'task', 't4', 'partial');
SELECT is((SELECT usage_count FROM learnings WHERE id = '99999999-0000-0000-0000-000000000001'), 6,
          'recording an application counts a use (trigger)');

-- views
SELECT results_eq($$SELECT title, usage_count, application_count, successful_applications, failed_applications,
                           success_rate_percent FROM learning_effectiveness ORDER BY title LIMIT 2$$,
                  $$VALUES ('L beta', 0, 0::bigint, 0::bigint, 0::bigint, NULL::numeric),
                           ('L global', 0, 0, 0, 0, NULL)$$,
                  'learning_effectiveness: unused learnings have no rate');
SELECT results_eq($$SELECT usage_count, application_count, successful_applications, failed_applications,
                           success_rate_percent FROM learning_effectiveness WHERE title = 'L same'$$,
                  $$VALUES (6, 4::bigint, 2::bigint, 1::bigint, 66.67)$$,
                  'success rate = successes / (successes + failures)');
SELECT results_eq($$SELECT project_name, source_count, chunk_count, learning_count, total_tokens, source_type_count, source_types
                      FROM knowledge_coverage_by_project ORDER BY project_name$$,
                  $$VALUES ('alpha', 1::bigint, 5::bigint, 3::bigint, 105::bigint, 1::bigint, '{file}'::text[]),
                           ('beta', 1, 1, 1, 50, 1, '{github_issue}')$$,
                  'knowledge_coverage_by_project counts without fan-out');
INSERT INTO search_queries (project_id, query_text, result_count, user_feedback, created_at) VALUES
    ('11111111-0000-0000-0000-000000000001', 'hnsw', 4, 'helpful', '2025-01-01'),
    ('11111111-0000-0000-0000-000000000001', 'hnsw', 2, 'not_helpful', '2025-01-03'),
    ('11111111-0000-0000-0000-000000000001', 'hnsw', 3, NULL, '2025-01-02'),
    ('11111111-0000-0000-0000-000000000001', 'copy', 1, 'helpful', '2025-01-05');
SELECT results_eq($$SELECT query_text, query_count, avg_results, helpful_count, not_helpful_count, last_queried
                      FROM popular_search_queries$$,
                  $$VALUES ('hnsw', 3::bigint, 3.00, 1::bigint, 1::bigint, '2025-01-03'::timestamptz),
                           ('copy', 1, 1.00, 1, 0, '2025-01-05')$$,
                  'popular_search_queries: most asked first');
SELECT throws_ok($$INSERT INTO search_queries (query_text, user_feedback) VALUES ('q', 'meh')$$, '23514', NULL,
                 'user_feedback is checked');
-- the log survives re-chunking
UPDATE search_queries SET top_result_id = '88888888-0000-0000-0000-000000000001';
DELETE FROM knowledge_sources WHERE id = '77777777-0000-0000-0000-000000000001';
SELECT is((SELECT count(*) FROM knowledge_chunks WHERE project_id = '11111111-0000-0000-0000-000000000001'), 0::bigint,
          'deleting a source deletes its chunks');
SELECT is((SELECT count(*) FROM search_queries WHERE top_result_id IS NULL), 4::bigint,
          'and unlinks the search log from them');

-- the HNSW indexes serve the searches: enough rows that the planner wants
-- them.  Loading is faster with the index built after, from the migration's
-- own definition (the catalog test checks that definition).
CREATE TEMP TABLE saved_indexes ON COMMIT DROP AS
    SELECT indexname, indexdef FROM pg_indexes
     WHERE indexname IN ('idx_knowledge_chunks_embedding', 'idx_learnings_embedding')
       AND schemaname = current_schema();
DROP INDEX idx_knowledge_chunks_embedding, idx_learnings_embedding;
INSERT INTO knowledge_chunks (source_id, project_id, chunk_index, content, content_hash, embedding)
SELECT '77777777-0000-0000-0000-000000000002', '11111111-0000-0000-0000-000000000002', g, 'r' || g, 'r' || g,
       (SELECT array_agg(random() - 0.5)::vector FROM generate_series(1, 1536) WHERE g > 0)
  FROM generate_series(1, 2000) g;
INSERT INTO learnings (project_id, title, content, category, embedding)
SELECT '11111111-0000-0000-0000-000000000002', 'r' || g, 'r', 'db',
       (SELECT array_agg(random() - 0.5)::vector FROM generate_series(1, 1536) WHERE g > 0)
  FROM generate_series(1, 2000) g;
DO $$
DECLARE d text;
BEGIN
    FOR d IN SELECT indexdef FROM saved_indexes LOOP EXECUTE d; END LOOP;
END $$;
SELECT is((SELECT count(*) FROM pg_indexes WHERE indexname IN ('idx_knowledge_chunks_embedding', 'idx_learnings_embedding')),
          2::bigint, 'both HNSW indexes are back');
ANALYZE knowledge_chunks;
ANALYZE learnings;
CREATE FUNCTION pg_temp.plan(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || q;
END $$;
CREATE FUNCTION pg_temp.uses(q text, idx text) RETURNS boolean LANGUAGE sql AS $$
    SELECT EXISTS (SELECT 1 FROM pg_temp.plan(q) l WHERE l LIKE '%Index Scan using ' || idx || ' %')
$$;
SELECT ok(pg_temp.uses(format('SELECT * FROM search_knowledge_chunks(%L::vector, NULL, 5, 0.5)', pg_temp.v(1, 0)),
                       'idx_knowledge_chunks_embedding'), 'search_knowledge_chunks uses the HNSW index');
SELECT ok(pg_temp.uses(format('SELECT * FROM search_knowledge_chunks(%L::vector, %L, 5, 0.5)', pg_temp.v(1, 0),
                              '11111111-0000-0000-0000-000000000002'),
                       'idx_knowledge_chunks_embedding'), 'with a project filter too');
SELECT ok(pg_temp.uses(format('SELECT * FROM search_learnings(%L::vector, %L, %L, 5, 0.5)', pg_temp.v(1, 0),
                              '11111111-0000-0000-0000-000000000002', 'db'),
                       'idx_learnings_embedding'), 'search_learnings uses the HNSW index');
SELECT ok(pg_temp.uses(format('SELECT * FROM find_similar_learnings(%L::vector, NULL, 0.9)', pg_temp.v(1, 0)),
                       'idx_learnings_embedding'), 'find_similar_learnings uses the HNSW index');
-- and find through it the one chunk pointing the query's way (random
-- vectors make HNSW recall of the other neighbours approximate by design)
SELECT results_eq($$SELECT content, similarity FROM search_knowledge_chunks(pg_temp.v(1, 0), NULL, 1, -1)$$,
                  $$VALUES ('beta same', 1::float8)$$, 'the indexed search finds the exact match');

SELECT * FROM finish();
ROLLBACK;
