-- 11_common_words.sql - migration 018: a project's common words
-- (kbpipe_common_lexemes, kbpipe_refresh_common_lexemes), the text leg's
-- OR form without them (kbpipe_search_tsqueries with a list: the OR of the
-- other lexemes in their sort order), --options
-- read as words, and the ranking that passes the project's list.
BEGIN;
SELECT * FROM no_plan();

CREATE FUNCTION pg_temp.v(VARIADIC head float4[]) RETURNS vector LANGUAGE sql AS $$
    SELECT (head || array_fill(0::float4, ARRAY[1536 - cardinality(head)]))::vector
$$;

SELECT has_table('kbpipe_common_lexemes');
SELECT has_function('kbpipe_refresh_common_lexemes');
SELECT has_function('kbpipe_search_tsqueries', ARRAY['regconfig', 'text', 'text[]']);

-- ---- the two forms with a list -------------------------------------------
SELECT is(kbpipe_search_tsqueries('english', 'rotate the pip keyring password', NULL),
          kbpipe_search_tsqueries('english', 'rotate the pip keyring password'),
          'no list: the forms of 008');
SELECT is(kbpipe_search_tsqueries('english', 'rotate the pip keyring password', '{}'),
          kbpipe_search_tsqueries('english', 'rotate the pip keyring password'),
          'an empty list: the forms of 008');
SELECT is((kbpipe_search_tsqueries('english', 'rotate the pip keyring password', ARRAY['pip', 'password']))[1],
          websearch_to_tsquery('english', 'rotate the pip keyring password'),
          'the AND form keeps the common words');
SELECT is((kbpipe_search_tsqueries('english', 'rotate the pip keyring password', ARRAY['pip', 'password']))[2],
          'keyr | rotat'::tsquery,
          'the OR form is the OR of the words that are not common');
SELECT is((kbpipe_search_tsqueries('english', 'rotate pip keyring -mirror', ARRAY['pip']))[2],
          '(keyr | rotat) & !mirror'::tsquery,
          '... and still excludes the -words');
SELECT is((kbpipe_search_tsqueries('english', 'pip password', ARRAY['pip', 'password']))[2],
          (kbpipe_search_tsqueries('english', 'pip password'))[2],
          'every word common: the OR form of 008');
SELECT is((kbpipe_search_tsqueries('english', 'pip-tools keyring', ARRAY['pip']))[2],
          'keyr | pip-tool | tool'::tsquery,
          'a hyphenated word: its lexemes, the common one left out');
SELECT is((kbpipe_search_tsqueries('english', 'the of and', ARRAY['pip'])),
          kbpipe_search_tsqueries('english', 'the of and'),
          'stopwords only: as 008 (no OR form)');
SELECT lives_ok($$SELECT kbpipe_search_tsqueries('simple', E'it''s a \\ b'' c"d', ARRAY['x'])$$,
                'quotes and backslashes in the text: no error');
-- --options are words; one dash still negates
SELECT is((kbpipe_search_tsqueries('english', 'use the --python option', NULL))[1],
          'use & python & option'::tsquery,
          'the AND form reads --python as the word');
SELECT is((kbpipe_search_tsqueries('english', 'use the --python option', NULL))[2],
          'use | python | option'::tsquery,
          '... so does the OR form');
SELECT is((kbpipe_search_tsqueries('english', 'use -python', NULL))[2],
          'use & !python'::tsquery,
          'a word with one dash is still a negation');

-- ---- the list -------------------------------------------------------------
INSERT INTO projects (id, name) VALUES ('12121212-0000-0000-0000-000000000001', 'cw'),
                                       ('12121212-0000-0000-0000-000000000002', 'cw-empty');
INSERT INTO knowledge_sources (id, project_id, source_type, source_id, metadata)
SELECT ('13131313-0000-0000-0000-0000000000' || lpad(i::text, 2, '0'))::uuid,
       '12121212-0000-0000-0000-000000000001', 'file', 's' || i || '.md', '{}'
  FROM generate_series(1, 10) i;
-- ten chunks: "pip" in all, "install" in 3 (30%), "keyring" in 2 (20%:
-- not more than a fifth), "mirror" in 1
INSERT INTO knowledge_chunks (id, source_id, project_id, chunk_index, content, content_hash, embedding, metadata)
SELECT ('14141414-0000-0000-0000-0000000000' || lpad(i::text, 2, '0'))::uuid,
       ('13131313-0000-0000-0000-0000000000' || lpad(i::text, 2, '0'))::uuid,
       '12121212-0000-0000-0000-000000000001', 0,
       'pip ' || CASE WHEN i <= 3 THEN 'install ' ELSE '' END
             || CASE WHEN i IN (4, 5) THEN 'keyring ' ELSE '' END
             || CASE WHEN i = 6 THEN 'mirror ' ELSE '' END || 'chunk' || i,
       'cw' || i, pg_temp.v(1, i), '{"embedding_model": "m1"}'
  FROM generate_series(1, 10) i;

SELECT is(kbpipe_refresh_common_lexemes('12121212-0000-0000-0000-000000000001', 'chunks'), 2,
          'refresh: two lexemes in more than a fifth of the rows');
SELECT is(lexemes, ARRAY['instal', 'pip'], '... pip (10 of 10) and install (3 of 10), sorted')
  FROM kbpipe_common_lexemes WHERE project_id = '12121212-0000-0000-0000-000000000001' AND target = 'chunks';
SELECT is(sample_rows, 10, '... read from the 10 rows (fewer than the sample)')
  FROM kbpipe_common_lexemes WHERE project_id = '12121212-0000-0000-0000-000000000001' AND target = 'chunks';
SELECT is(kbpipe_refresh_common_lexemes('12121212-0000-0000-0000-000000000001', 'chunks', 0.1), 3,
          'max_share 0.1: keyring (2 of 10) joins; mirror (1 of 10) does not');
SELECT is(lexemes, ARRAY['instal', 'keyr', 'pip'], '... the list is replaced, not added to')
  FROM kbpipe_common_lexemes WHERE project_id = '12121212-0000-0000-0000-000000000001' AND target = 'chunks';
SELECT is(kbpipe_refresh_common_lexemes('12121212-0000-0000-0000-000000000001', 'chunks', 0.2, 5), 3,
          'a sample of 5 rows (the first 5 by id): pip in 5, install in 3, keyring in 2 of them');
SELECT is(sample_rows, 5, '... it says how many rows it read')
  FROM kbpipe_common_lexemes WHERE project_id = '12121212-0000-0000-0000-000000000001' AND target = 'chunks';
SELECT is(kbpipe_refresh_common_lexemes('12121212-0000-0000-0000-000000000001', 'chunks'), 2,
          'back to the defaults');
SELECT is(kbpipe_refresh_common_lexemes('12121212-0000-0000-0000-000000000002', 'chunks'), 0,
          'a project without rows: no lexeme');
SELECT is((SELECT count(*) FROM kbpipe_common_lexemes WHERE project_id = '12121212-0000-0000-0000-000000000002')::int, 0,
          '... and no row');
SELECT throws_ok($$SELECT kbpipe_refresh_common_lexemes('12121212-0000-0000-0000-000000000001', 'sources')$$,
                 '22023', NULL, 'a target other than chunks or learnings is refused');
SELECT throws_ok($$SELECT kbpipe_refresh_common_lexemes('12121212-0000-0000-0000-000000000001', 'chunks', 0)$$,
                 '22023', NULL, 'a max_share of 0 is refused');

-- ---- the ranking passes the project's list --------------------------------
-- "pip install keyring": no chunk has all three, so the OR form ranks.
-- Without the list, the chunks with pip and install (two of the words)
-- come first; with it, only keyring counts, and the two keyring chunks
-- are the text leg's first two.
SELECT is((SELECT array_agg(f.id ORDER BY f.ord)
             FROM kbpipe_search_ranked('chunks', NULL, 'pip install keyring',
                                       '12121212-0000-0000-0000-000000000001', 2, 'text', '{}', true, 60, NULL) f),
          ARRAY['14141414-0000-0000-0000-000000000004', '14141414-0000-0000-0000-000000000005']::uuid[],
          'text mode: the rows with the rare word first, the common ones left out of the OR form');
DELETE FROM kbpipe_common_lexemes WHERE project_id = '12121212-0000-0000-0000-000000000001';
SELECT ok((SELECT array_agg(f.id ORDER BY f.ord)
             FROM kbpipe_search_ranked('chunks', NULL, 'pip install keyring',
                                       '12121212-0000-0000-0000-000000000001', 2, 'text', '{}', true, 60, NULL) f)
          <> ARRAY['14141414-0000-0000-0000-000000000004', '14141414-0000-0000-0000-000000000005']::uuid[],
          'without the list (as 017) the common words decide the first two');
SELECT ok((SELECT count(*) FROM search_hybrid_chunks(NULL, 'pip install keyring', NULL, 10, 'text')) > 0,
          'a search over every project (no list) still ranks');

-- the project's deletion takes its list along
SELECT kbpipe_refresh_common_lexemes('12121212-0000-0000-0000-000000000001', 'chunks');
DELETE FROM projects WHERE id = '12121212-0000-0000-0000-000000000001';
SELECT is((SELECT count(*) FROM kbpipe_common_lexemes WHERE project_id = '12121212-0000-0000-0000-000000000001')::int, 0,
          'ON DELETE CASCADE with the project');

SELECT * FROM finish();
ROLLBACK;
