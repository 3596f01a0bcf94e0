-- 09_search.sql - migration 008: the tsvector columns and their language,
-- the table of each project's embedding models kept by triggers, and the
-- hybrid search functions (modes, reciprocal rank fusion, the OR fallback,
-- filters, a selective filter through the HNSW index, hidden duplicates).
BEGIN;
SELECT * FROM no_plan();

-- a 1536-dim vector from its first components, the rest 0
CREATE FUNCTION pg_temp.v(VARIADIC head float4[]) RETURNS vector LANGUAGE sql AS $$
    SELECT (head || array_fill(0::float4, ARRAY[1536 - cardinality(head)]))::vector
$$;

-- ---- the schema ---------------------------------------------------------
SELECT has_column('knowledge_chunks', 'search_tsv', 'chunks have a tsvector');
SELECT has_column('learnings', 'search_tsv', 'learnings have a tsvector');
SELECT ok(EXISTS (SELECT 1 FROM pg_indexes WHERE tablename = t AND indexdef LIKE '%USING gin (search_tsv)%'),
          t || ': GIN index on search_tsv')
  FROM unnest(ARRAY['knowledge_chunks', 'learnings']) t;
SELECT col_default_is('projects', 'search_language', 'english'::regconfig,
                      'a project searches in english by default');
SELECT has_table('kbpipe_embedding_models');
SELECT has_function(f) FROM unnest(ARRAY['search_hybrid_chunks', 'search_hybrid_learnings']) f;

INSERT INTO projects (id, name) VALUES ('11111111-0000-0000-0000-000000000001', 'alpha'),
                                       ('11111111-0000-0000-0000-000000000002', 'beta');
UPDATE projects SET search_language = 'simple' WHERE name = 'beta';
INSERT INTO knowledge_sources (id, project_id, source_type, source_id, file_path, metadata, updated_at) VALUES
    ('77777777-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 'file', 'ops/secrets.md', 'ops/secrets.md', '{}', '2024-01-10'),
    ('77777777-0000-0000-0000-000000000002', '11111111-0000-0000-0000-000000000001', 'file', 'ops/ports.md', 'ops/ports.md', '{}', '2024-03-10'),
    ('77777777-0000-0000-0000-000000000003', '11111111-0000-0000-0000-000000000001', 'github_issue', 'acme/svc#7', 'issues.json',
     '{"labels": ["bug", "ports"], "state": "OPEN"}', '2024-05-10'),
    ('77777777-0000-0000-0000-000000000004', '11111111-0000-0000-0000-000000000001', 'github_issue', 'acme/svc#8', 'issues.json',
     '{"labels": ["docs"], "state": "CLOSED"}', '2024-06-10'),
    ('77777777-0000-0000-0000-000000000005', '11111111-0000-0000-0000-000000000002', 'file', 'b.md', 'b.md', '{}', '2024-01-01');
INSERT INTO knowledge_chunks (id, source_id, project_id, chunk_index, content, content_hash, embedding, metadata) VALUES
    ('88888888-0000-0000-0000-000000000001', '77777777-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 0,
     'Rotate the master encryption key every ninety days.', 'h1', pg_temp.v(1, 0), '{"embedding_model": "m1", "heading_path": "Secrets > Rotation"}'),
    ('88888888-0000-0000-0000-000000000002', '77777777-0000-0000-0000-000000000002', '11111111-0000-0000-0000-000000000001', 0,
     'Each service gets a port range; the allocator records the lowest free port.', 'h2', pg_temp.v(0.9, 0.1), '{"embedding_model": "m1"}'),
    ('88888888-0000-0000-0000-000000000003', '77777777-0000-0000-0000-000000000003', '11111111-0000-0000-0000-000000000001', 0,
     'allocate_port returns a port that is already taken when two services start.', 'h3', pg_temp.v(0.8, 0.2), '{"embedding_model": "m1"}'),
    -- far from every query vector below: only the text leg can find it
    ('88888888-0000-0000-0000-000000000004', '77777777-0000-0000-0000-000000000004', '11111111-0000-0000-0000-000000000001', 0,
     'The zebrafish runbook is out of date.', 'h4', pg_temp.v(-1, 0), '{"embedding_model": "m1"}'),
    ('88888888-0000-0000-0000-000000000005', '77777777-0000-0000-0000-000000000005', '11111111-0000-0000-0000-000000000002', 0,
     'running servers', 'h5', pg_temp.v(1, 0), '{"embedding_model": "m2"}'),
    ('88888888-0000-0000-0000-000000000006', '77777777-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 1,
     'not embedded yet', 'h6', NULL, '{"embedding_model": "m1"}');

-- ---- text search columns and their language -------------------------------
SELECT is((SELECT search_config::text FROM knowledge_chunks WHERE content_hash = 'h1'), 'english',
          'a chunk takes its project''s language');
SELECT is((SELECT search_config::text FROM knowledge_chunks WHERE content_hash = 'h5'), 'simple',
          'another project''s language');
SELECT ok((SELECT search_tsv @@ to_tsquery('english', 'rotation') FROM knowledge_chunks WHERE content_hash = 'h1'),
          'english stems: "rotate" is found by "rotation"');
SELECT ok((SELECT search_tsv @@ 'rotat:A'::tsquery FROM knowledge_chunks WHERE content_hash = 'h1'),
          'the heading path is indexed with weight A');
SELECT ok((SELECT NOT search_tsv @@ to_tsquery('simple', 'run') FROM knowledge_chunks WHERE content_hash = 'h5'),
          'simple does not stem: "running" is not "run"');
UPDATE projects SET search_language = 'english' WHERE name = 'beta';
SELECT ok((SELECT search_config = 'english'::regconfig AND search_tsv @@ to_tsquery('english', 'run')
             FROM knowledge_chunks WHERE content_hash = 'h5'),
          'changing the project''s language rewrites its rows');
UPDATE projects SET search_language = 'simple' WHERE name = 'beta';
SELECT throws_ok($$UPDATE projects SET search_language = 'klingon' WHERE name = 'beta'$$, '42704', NULL,
                 'an unknown language is refused');
SELECT lives_ok($$INSERT INTO learnings (title, content) VALUES ('huge', repeat('word' || chr(10), 300000))$$,
                'a text over 1 MB is indexed (its first 65,536 characters)');
DELETE FROM learnings WHERE title = 'huge';

-- ---- kbpipe_embedding_models ------------------------------------------------
CREATE FUNCTION pg_temp.models(p text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(format('%s %s %s', m.target, coalesce(m.model, '-'), m.n_rows), ', '
                               ORDER BY m.target, m.model NULLS FIRST), '')
      FROM kbpipe_embedding_models m JOIN projects pr ON pr.id = m.project_id WHERE pr.name = p
$$;
SELECT is(pg_temp.models('alpha'), 'chunks m1 4', 'inserted chunks are counted by model (not the one without embedding)');
SELECT is(pg_temp.models('beta'), 'chunks m2 1', 'per project');
UPDATE knowledge_chunks SET embedding = pg_temp.v(0, 1) WHERE content_hash = 'h6';
SELECT is(pg_temp.models('alpha'), 'chunks m1 5', 'embedding a chunk counts it');
UPDATE knowledge_chunks SET metadata = metadata || '{"embedding_model": "m9"}' WHERE content_hash IN ('h6', 'h4');
SELECT is(pg_temp.models('alpha'), 'chunks m1 3, chunks m9 2', 'a model change moves the counts');
UPDATE knowledge_chunks SET metadata = metadata - 'embedding_model' WHERE content_hash = 'h6';
SELECT is(pg_temp.models('alpha'), 'chunks - 1, chunks m1 3, chunks m9 1', 'a row without a model counts as NULL');
UPDATE knowledge_chunks SET content = content WHERE project_id = '11111111-0000-0000-0000-000000000001';
SELECT is(pg_temp.models('alpha'), 'chunks - 1, chunks m1 3, chunks m9 1', 'an update that changes no model changes nothing');
DELETE FROM knowledge_chunks WHERE content_hash = 'h6';
UPDATE knowledge_chunks SET metadata = metadata || '{"embedding_model": "m1"}' WHERE content_hash = 'h4';
SELECT is(pg_temp.models('alpha'), 'chunks m1 4', 'deleting the last row of a model forgets it');
INSERT INTO learnings (id, project_id, title, content, embedding, metadata, category, tags) VALUES
    ('99999999-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 'Index foreign keys',
     'PostgreSQL does not index foreign key columns; add the index.', pg_temp.v(1, 0), '{"embedding_model": "m1"}', 'database', '{pg}'),
    ('99999999-0000-0000-0000-000000000002', '11111111-0000-0000-0000-000000000001', 'Index every foreign key',
     'Add an index on each foreign key column.', pg_temp.v(1, 0.01), '{"embedding_model": "m1"}', 'database', '{pg,perf}'),
    ('99999999-0000-0000-0000-000000000003', '11111111-0000-0000-0000-000000000001', 'Reserve hand-started ports',
     'A server started by hand holds its port; reserve it.', pg_temp.v(0, 1), '{"embedding_model": "m1"}', 'ports', '{}'),
    ('99999999-0000-0000-0000-000000000004', NULL, 'Global', 'no project', pg_temp.v(1, 0), '{"embedding_model": "m1"}', NULL, '{}');
SELECT is(pg_temp.models('alpha'), 'chunks m1 4, learnings m1 3', 'learnings are counted apart; those of no project not at all');
SELECT is((SELECT count(*) FROM kbpipe_embedding_models WHERE project_id IS NULL), 0::bigint, 'no NULL project');

-- ---- the query forms ------------------------------------------------------
SELECT is(kbpipe_search_tsqueries('english', 'how do I rotate a secret?'),
          ARRAY['''rotat'' & ''secret''', '''rotat'' | ''secret''']::tsquery[], 'AND form and OR form');
SELECT is((kbpipe_search_tsqueries('english', 'port -old "master key"'))[2],
          '(''port'' | ''master'' | ''key'') & !''old'''::tsquery, 'the OR form keeps out negated words');
SELECT is((kbpipe_search_tsqueries('english', 'the a of'))[2], NULL, 'stopwords only: no OR form');
SELECT lives_ok($$SELECT kbpipe_search_tsqueries('english', E'(((\\\'" & | ! <-> :* -- ' || chr(1))$$, 'no text raises');
SELECT is(kbpipe_glob_to_like(g), l, 'glob ' || g) FROM (VALUES ('ops/*.md', 'ops/%.md'), ('a?c', 'a_c'),
       ('100%_x', '100\%\_x'), ('lit\*', 'lit*'), ('back\\', 'back\\')) AS t(g, l);

-- ---- search_hybrid_chunks ---------------------------------------------------
-- the content_hash of each row a search_hybrid_chunks(...) call returns, in order
CREATE FUNCTION pg_temp.hashes(q text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE r text[];
BEGIN
    EXECUTE format('SELECT array_agg(c.content_hash ORDER BY r.ord) FROM %s'
                   ' WITH ORDINALITY AS r(chunk_id, a, b, d, e, f, g, h, i, ord)'
                   ' JOIN knowledge_chunks c ON c.id = r.chunk_id', q) INTO r;
    RETURN r;
END;
$$;
SELECT is(pg_temp.hashes($$search_hybrid_chunks(pg_temp.v(1, 0), 'x',
          '11111111-0000-0000-0000-000000000001', 3, 'vector')$$), ARRAY['h1', 'h2', 'h3'],
          'vector mode: nearest first, project only, p_limit rows');
SELECT is(pg_temp.hashes($$search_hybrid_chunks(NULL, 'port',
          '11111111-0000-0000-0000-000000000001', 10, 'text')$$), ARRAY['h2', 'h3'],
          'text mode: the matching rows, the denser match first');
SELECT is(pg_temp.hashes($$search_hybrid_chunks(pg_temp.v(1, 0), 'zebrafish',
          '11111111-0000-0000-0000-000000000001', 3, 'hybrid', '{}', 60, 2)$$)::text[],
          ARRAY['h1', 'h4', 'h2']::text[],
          'hybrid: a row only the text leg finds ranks beside the vector leg''s best');
SELECT is((SELECT row(round(score::numeric, 6), vector_position, text_position)::text
             FROM search_hybrid_chunks(pg_temp.v(1, 0), 'rotate key', '11111111-0000-0000-0000-000000000001', 1)),
          row(round(1.0 / 61 + 1.0 / 61, 6), 1, 1)::text, 'reciprocal rank fusion with k = 60');
SELECT is((SELECT round(score::numeric, 6) FROM search_hybrid_chunks(pg_temp.v(1, 0), 'rotate key',
             '11111111-0000-0000-0000-000000000001', 1, 'hybrid', '{}', 0)),
          2.0, 'k is a parameter');
SELECT is((SELECT array_agg(h ORDER BY h) FROM unnest(pg_temp.hashes($$search_hybrid_chunks(NULL, 'port zebrafish',
          '11111111-0000-0000-0000-000000000001', 10, 'text')$$)) h), ARRAY['h2', 'h3', 'h4'],
          'no row has every word: the OR form finds those with any');
SELECT is(pg_temp.hashes($$search_hybrid_chunks(NULL, 'port -taken',
          '11111111-0000-0000-0000-000000000001', 10, 'text')$$), ARRAY['h2'], 'websearch syntax: -word excludes');
SELECT is((SELECT count(*) FROM search_hybrid_chunks(NULL, 'the of a', '11111111-0000-0000-0000-000000000001', 10)),
          0::bigint, 'stopwords and no vector find nothing');
SELECT is((SELECT count(*) FROM search_hybrid_chunks(pg_temp.v(1, 0), NULL, '11111111-0000-0000-0000-000000000001', 10)),
          4::bigint, 'a NULL text: the vector leg alone');
SELECT is((SELECT count(*) FROM search_hybrid_chunks(pg_temp.v(1, 0), 'port', NULL, 1000, 'vector') r
             JOIN knowledge_chunks c ON c.id = r.chunk_id
            WHERE c.project_id IN ('11111111-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000002')),
          5::bigint, 'a NULL project searches every project');
SELECT throws_ok($$SELECT * FROM search_hybrid_chunks(NULL, 'x', NULL, 10, 'fuzzy')$$, '22023',
                 'search mode "fuzzy" is not one of hybrid, vector, text', 'an unknown mode raises');
SELECT is((SELECT count(*) FROM search_hybrid_chunks(pg_temp.v(1, 0), 'port', NULL, 0)), 0::bigint, 'limit 0');

-- filters
CREATE FUNCTION pg_temp.filtered(f jsonb) RETURNS text[] LANGUAGE sql AS $$
    SELECT array_agg(c.content_hash ORDER BY c.content_hash)
      FROM search_hybrid_chunks(pg_temp.v(1, 0), 'port', '11111111-0000-0000-0000-000000000001', 10, 'hybrid', f) r
      JOIN knowledge_chunks c ON c.id = r.chunk_id
$$;
SELECT is(pg_temp.filtered(f), want, 'filter ' || f::text) FROM (VALUES
    ('{"source_type": "github_issue"}'::jsonb, ARRAY['h3', 'h4']),
    ('{"source_type": ["file", "csv"]}', ARRAY['h1', 'h2']),
    ('{"path": "ops/*"}', ARRAY['h1', 'h2']),
    ('{"path": "ops/p?rts.md"}', ARRAY['h2']),
    ('{"path": "issues.json"}', ARRAY['h3', 'h4']),
    ('{"path": "acme/svc#8"}', ARRAY['h4']),
    ('{"label": "bug"}', ARRAY['h3']),
    ('{"state": "closed"}', ARRAY['h4']),
    ('{"since": "2024-03-10"}', ARRAY['h2', 'h3', 'h4']),
    ('{"until": "2024-03-10"}', ARRAY['h1']),
    ('{"since": "2024-02-01", "until": "2024-06-01", "source_type": "file"}', ARRAY['h2']),
    ('{"label": "nothing"}', NULL)) AS t(f, want);

-- a selective filter through the HNSW index still returns p_limit rows:
-- 300 common rows near the query, 5 rare ones far from it; the planner is
-- pushed onto the HNSW index (the statistics know nothing of these rows)
INSERT INTO knowledge_sources (id, project_id, source_type, source_id)
SELECT ('77777777-1111-0000-0000-' || lpad(i::text, 12, '0'))::uuid, '11111111-0000-0000-0000-000000000002',
       CASE WHEN i <= 5 THEN 'rare' ELSE 'common' END, 'bulk/' || i
  FROM generate_series(1, 305) i;
SELECT setseed(0.15);
INSERT INTO knowledge_chunks (source_id, project_id, chunk_index, content, content_hash, embedding, metadata)
SELECT s.id, s.project_id, 0, 'bulk row ' || s.source_id, 'b' || s.source_id,
       (SELECT array_agg(CASE WHEN s.source_type = 'rare' THEN -1 ELSE 1 END * (0.5 + random() + 0 * g))::vector
          FROM generate_series(1, 1536) g), '{"embedding_model": "m2"}'
  FROM knowledge_sources s WHERE s.source_id LIKE 'bulk/%';
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SET LOCAL enable_sort = off;
SET LOCAL hnsw.ef_search = 10;
SELECT is((SELECT count(*) FROM (SELECT c.id FROM knowledge_chunks c
            WHERE c.project_id = '11111111-0000-0000-0000-000000000002'
              AND (SELECT s.source_type FROM knowledge_sources s WHERE s.id = c.source_id) = 'rare'
            ORDER BY c.embedding <=> (SELECT array_fill(1::float4, ARRAY[1536])::vector) LIMIT 5) x) < 5,
          true, 'without the iterative scan, the plain HNSW scan finds fewer than 5 rare rows');
SELECT is((SELECT count(*) FROM search_hybrid_chunks(array_fill(1::float4, ARRAY[1536])::vector, NULL,
             '11111111-0000-0000-0000-000000000002', 5, 'vector', '{"source_type": "rare"}')),
          5::bigint, 'search_hybrid_chunks finds all 5 rare rows through the index');
SELECT is(current_setting('hnsw.ef_search'), '10', 'the function leaves hnsw.ef_search as it was');
RESET enable_seqscan;
RESET enable_bitmapscan;
RESET enable_sort;

-- more than 400 text matches: each form of the text query ranks at most
-- 400 of them (migration 017; 1,000 in 008), taken in the scan's order (a
-- bitmap scan of the GIN index: the rows' physical order).  1,200 long rows
-- hold the word once; one short row, inserted after them, holds only it, so
-- it would rank first.
INSERT INTO projects (id, name) VALUES ('11111111-0000-0000-0000-000000000003', 'gamma');
INSERT INTO knowledge_sources (id, project_id, source_type, source_id)
VALUES ('77777777-2222-0000-0000-000000000001', '11111111-0000-0000-0000-000000000003', 'file', 'many.md');
INSERT INTO knowledge_chunks (source_id, project_id, chunk_index, content, content_hash, metadata)
SELECT '77777777-2222-0000-0000-000000000001', '11111111-0000-0000-0000-000000000003', i,
       'filler paragraph ' || i || ' about the weather, the harvest, the river and the mill, '
       'written long so that its one mention of the word wombat ranks low', 'many' || i, '{}'
  FROM generate_series(1, 1200) i;
INSERT INTO knowledge_chunks (source_id, project_id, chunk_index, content, content_hash, metadata)
VALUES ('77777777-2222-0000-0000-000000000001', '11111111-0000-0000-0000-000000000003', 1201,
        'wombat wombat', 'dense', '{}');
SELECT ok((SELECT c.ctid FROM knowledge_chunks c WHERE c.content_hash = 'dense')
            > ALL (SELECT c.ctid FROM knowledge_chunks c WHERE c.content_hash LIKE 'many%'),
          'the dense row lies after the 1,200 others (the order the text leg takes them in)');
SELECT is((SELECT count(*) FROM search_hybrid_chunks(NULL, 'wombat', '11111111-0000-0000-0000-000000000003',
             10, 'text')), 10::bigint, '1,201 text matches: text mode returns p_limit rows');
SELECT is((SELECT count(*) FROM search_hybrid_chunks(pg_temp.v(1, 0), 'wombat', '11111111-0000-0000-0000-000000000003',
             10, 'hybrid')), 10::bigint, '... and so does hybrid mode (rows without a vector: the text leg alone)');
SELECT is((SELECT count(*) FROM search_hybrid_chunks(NULL, 'wombat', '11111111-0000-0000-0000-000000000003',
             1000, 'text', '{}', 60, 1000) r JOIN knowledge_chunks c ON c.id = r.chunk_id
            WHERE c.content_hash = 'dense'), 0::bigint,
          '... each form ranks at most 400 (the AND form the first 400, the OR form, of the '
          'same word, the next 400): the best match, the 1,201st, is not among them');
DELETE FROM knowledge_chunks WHERE content_hash LIKE 'many%' AND substr(content_hash, 5)::int > 400;
SELECT is((SELECT count(*) FROM search_hybrid_chunks(NULL, 'wombat', '11111111-0000-0000-0000-000000000003',
             400, 'text', '{}', 60, 400) r JOIN knowledge_chunks c ON c.id = r.chunk_id
            WHERE c.content_hash = 'dense'), 0::bigint,
          'with 401 matches and 400 candidates (the AND form fills them) the 401st is not ranked');
DELETE FROM knowledge_chunks WHERE content_hash = 'many400';
SELECT is((SELECT c.content_hash FROM search_hybrid_chunks(NULL, 'wombat', '11111111-0000-0000-0000-000000000003',
             1, 'text') r JOIN knowledge_chunks c ON c.id = r.chunk_id), 'dense',
          'with 400 matches it is ranked, and first');

-- ---- search_hybrid_learnings -----------------------------------------------
UPDATE learnings SET metadata = metadata || '{"duplicate_of": "99999999-0000-0000-0000-000000000001"}'
 WHERE id = '99999999-0000-0000-0000-000000000002';
SELECT is((SELECT array_agg(title ORDER BY title) FROM search_hybrid_learnings(pg_temp.v(1, 0), 'foreign key index',
             '11111111-0000-0000-0000-000000000001', 10)),
          ARRAY['Index foreign keys', 'Reserve hand-started ports'], 'a marked duplicate is left out');
SELECT is((SELECT count(*) FROM search_hybrid_learnings(pg_temp.v(1, 0), 'foreign key index',
             '11111111-0000-0000-0000-000000000001', 10, 'text', '{}', true)),
          2::bigint, 'p_with_duplicates shows it');
SELECT is((SELECT array_agg(title) FROM search_hybrid_learnings(pg_temp.v(1, 0), 'index',
             '11111111-0000-0000-0000-000000000001', 10, 'vector',
             '{"category": "ports"}')), ARRAY['Reserve hand-started ports'], 'category filter');
SELECT is((SELECT array_agg(title) FROM search_hybrid_learnings(pg_temp.v(1, 0), 'index', NULL, 10, 'hybrid',
             '{"tag": "perf"}', true)), ARRAY['Index every foreign key'], 'tag filter');
SELECT is((SELECT title FROM search_hybrid_learnings(NULL, 'reserve port', '11111111-0000-0000-0000-000000000001', 1, 'text')),
          'Reserve hand-started ports', 'learnings text mode');
SELECT throws_ok($$SELECT * FROM search_hybrid_learnings(NULL, 'x', NULL, 10, 'hybrid', '{"path": "a"}')$$, '22023',
                 NULL, 'a source filter on learnings raises');

-- ---- kbpipe's statement and the SQL functions rank alike -----------------
-- src/search/query.c calls kbpipe_search_ranked and joins the rows itself
-- (a new backend then plans no SQL wrapper: docs/search.md); the functions
-- SQL users call must return the same rows, in the same order, with the
-- same scores, for every mode, with and without a filter
SELECT is((SELECT array_agg(ROW(r.chunk_id, r.source_id, r.score, r.similarity, r.text_rank,
                                 r.vector_position, r.text_position)::text ORDER BY r.ordinality)
             FROM search_hybrid_chunks(pg_temp.v(1, 0), a.q, '11111111-0000-0000-0000-000000000001',
                                       3, a.m, a.f) WITH ORDINALITY r),
          (SELECT array_agg(ROW(c.id, c.source_id, f.score, f.similarity, f.text_rank,
                                 f.vector_position, f.text_position)::text ORDER BY f.ord)
             FROM kbpipe_search_ranked('chunks', pg_temp.v(1, 0), a.q,
                                       '11111111-0000-0000-0000-000000000001', 3, a.m, a.f,
                                       true, 60, NULL) f
             JOIN knowledge_chunks c ON c.id = f.id
             JOIN knowledge_sources s ON s.id = c.source_id),
          'chunks: kbpipe''s statement ranks as search_hybrid_chunks: ' || a.m || ' ' || a.q || ' ' || a.f)
  FROM (VALUES ('hybrid', 'port allocator', '{}'::jsonb), ('vector', 'port', '{}'),
               ('text', 'rotate key or port', '{}'), ('hybrid', 'port', '{"source_type": "github_issue"}'),
               ('text', 'port', '{"path": "ops/*"}')) a(m, q, f);
SELECT cmp_ok((SELECT count(*) FROM search_hybrid_chunks(pg_temp.v(1, 0), 'port allocator',
                   '11111111-0000-0000-0000-000000000001', 3)), '>', 0::bigint,
              'the comparison above is of rows, not of two empty sets');
SELECT is((SELECT array_agg(ROW(r.learning_id, r.score, r.similarity, r.text_rank,
                                 r.vector_position, r.text_position)::text ORDER BY r.ordinality)
             FROM search_hybrid_learnings(pg_temp.v(1, 0), 'foreign key index',
                                          '11111111-0000-0000-0000-000000000001', 10, a.m, '{}',
                                          a.d) WITH ORDINALITY r),
          (SELECT array_agg(ROW(l.id, f.score, f.similarity, f.text_rank,
                                 f.vector_position, f.text_position)::text ORDER BY f.ord)
             FROM kbpipe_search_ranked('learnings', pg_temp.v(1, 0), 'foreign key index',
                                       '11111111-0000-0000-0000-000000000001', 10, a.m, '{}',
                                       a.d, 60, NULL) f
             JOIN learnings l ON l.id = f.id),
          'learnings: kbpipe''s statement ranks as search_hybrid_learnings: ' || a.m || ' ' || a.d)
  FROM (VALUES ('hybrid', false), ('text', true), ('vector', false)) a(m, d);

SELECT * FROM finish();
ROLLBACK;
