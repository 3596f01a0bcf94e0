-- 017_search_text_cap: each form of the text query ranks at most 400
-- matching rows, where 008 ranked 1,000 (issue 15: search server time p95
-- <= 20 ms at 200,000 chunks).
--
-- The text leg's OR form (any of the query's words) is what most questions
-- of bench/search run: their AND form matches nothing.  At 200,079 chunks
-- the words a question shares with the generated filler match 130,000-
-- 177,000 rows, so the OR form stops at its cap, and each capped row costs
-- ~10 us (reading and decompressing its tsvector for @@, then ts_rank_cd):
-- 10-13 ms of a question's 12-18 ms (fastest of 3 runs), the tail of the
-- text and hybrid modes (docs/search.md, "Where the time goes").
--
-- Why 400 loses nothing that was measured:
--  * the capped rows are the first matches in the scan's order, not the
--    best: for one question at 200k, the 69 corpus chunks its OR form
--    matches lie at positions 132,667-133,009 of the 133,009 matches, out
--    of reach of 1,000 as of 400; on bench/search at 200k, recall@1 and
--    MRR@5 of every mode were the same at 1,000 and 400;
--  * on the labelled set of bench/search (a) the OR form matches at most
--    319 rows (128-token chunks), so 400 ranks every match as 1,000 did
--    and (a) is unchanged; 200 lowered hybrid recall@1 at 128 tokens from
--    0.792 to 0.771 and was not taken.
-- The function is 008's with the cap named (v_text_cap) and 016's settings
-- (jit off, ROWS 10) restated, since CREATE OR REPLACE resets them.
-- migrate:up
CREATE OR REPLACE FUNCTION kbpipe_search_ranked(p_target text, p_query_embedding vector, p_query_text text,
                                     p_project_id uuid, p_limit integer, p_mode text,
                                     p_filters jsonb, p_with_duplicates boolean,
                                     p_rrf_k integer, p_candidates integer)
RETURNS TABLE (ord integer, id uuid, score double precision, similarity double precision,
               text_rank real, vector_position integer, text_position integer)
LANGUAGE plpgsql STABLE
SET jit = off ROWS 10
-- enable_seqscan off: the planner does not cost reading each TOASTed 6 KB
-- vector, and picked a sequential scan and sort over the HNSW index on a
-- 10,000-chunk project (1.4 s against 0.1 s); a selective filter still
-- gets an exact btree plan
SET hnsw.iterative_scan = 'relaxed_order' SET hnsw.ef_search = 40 SET enable_seqscan = off
AS $$
DECLARE
    v_mode text := coalesce(p_mode, 'hybrid');
    v_filters jsonb := coalesce(p_filters, '{}');
    v_n integer := greatest(coalesce(p_limit, 10), 0);
    v_cand integer;
    v_table text;
    v_where text;   -- the target's filters on its row r: $2 project, $4 filters, $5 duplicates
    v_tie text;     -- the target's stable tie-breaker over its row r
    v_q tsquery[];
    v_vids uuid[];
    v_sims double precision[];
    v_tids uuid[] := '{}';
    v_ranks real[] := '{}';
    v_more_ids uuid[];
    v_more_ranks real[];
    -- the rows each form of the text query ranks at most (008: 1,000)
    v_text_cap constant integer := 400;
BEGIN
    IF v_mode NOT IN ('hybrid', 'vector', 'text') THEN
        RAISE EXCEPTION 'search mode "%" is not one of hybrid, vector, text', p_mode
            USING ERRCODE = '22023';
    END IF;
    -- ties (equal distance or text rank) go by content, not by the random
    -- id, so a search of the same rows always ranks them the same way
    IF p_target = 'chunks' THEN
        v_table := 'knowledge_chunks';
        v_tie := 'r.content_hash';
        v_where := CASE WHEN v_filters ?| ARRAY['source_type', 'path', 'label', 'state', 'since', 'until']
                        THEN '(SELECT kbpipe_source_matches(s, $4) FROM knowledge_sources s'
                             ' WHERE s.id = r.source_id)'
                        ELSE 'true' END;
    ELSE
        IF v_filters ?| ARRAY['source_type', 'path', 'label', 'state', 'since', 'until'] THEN
            RAISE EXCEPTION 'learnings have no source to filter on; filter them by category or tag'
                USING ERRCODE = '22023';
        END IF;
        v_table := 'learnings';
        v_tie := 'coalesce(r.metadata->>''content_hash'', r.title)';
        v_where := '($5 OR NOT r.metadata ? ''duplicate_of'')'
                   ' AND ($4->>''category'' IS NULL OR r.category = $4->>''category'')'
                   ' AND ($4->>''tag'' IS NULL OR r.tags @> ARRAY[$4->>''tag''])';
    END IF;
    v_where := v_where || ' AND ($2::uuid IS NULL OR r.project_id = $2)';
    v_cand := greatest(coalesce(p_candidates, greatest(4 * v_n, 40)), v_n);
    v_q := kbpipe_search_tsqueries(coalesce((SELECT p.search_language FROM projects p
                                              WHERE p.id = p_project_id), 'english'),
                                   p_query_text);
    -- the HNSW queue holds the candidates; a selective filter is served by
    -- the iterative scan (SET above), which goes on until the LIMIT is met
    PERFORM set_config('hnsw.ef_search', least(v_cand, 1000)::text, true);
    IF v_mode <> 'text' AND p_query_embedding IS NOT NULL THEN
        EXECUTE format('SELECT array_agg(x.id ORDER BY x.dist, x.tie, x.id),'
                       '       array_agg(1 - x.dist ORDER BY x.dist, x.tie, x.id)'
                       '  FROM (SELECT r.id, r.embedding <=> $1 AS dist, %s AS tie'
                       '          FROM %I r WHERE %s'
                       '         ORDER BY r.embedding <=> $1 LIMIT $3) x'
                       ' WHERE x.dist <> ''NaN''', v_tie, v_table, v_where)
           INTO v_vids, v_sims
          USING p_query_embedding, p_project_id, v_cand, v_filters, p_with_duplicates;
    END IF;
    -- the AND form, then the OR form for the candidates the AND form left
    -- unfilled; each ranks at most v_text_cap matching rows, taken in the
    -- scan's order (migration 017 says why 400)
    FOR i IN 1..2 LOOP
        EXIT WHEN v_mode = 'vector' OR cardinality(v_tids) >= v_cand;
        CONTINUE WHEN coalesce(numnode(v_q[i]), 0) = 0;
        EXECUTE format('SELECT array_agg(x.id ORDER BY x.rank DESC, x.tie, x.id),'
                       '       array_agg(x.rank ORDER BY x.rank DESC, x.tie, x.id)'
                       '  FROM (SELECT m.id, ts_rank_cd(m.search_tsv, $6, 2) AS rank, m.tie'
                       '          FROM (SELECT r.id, r.search_tsv, %s AS tie FROM %I r'
                       '                 WHERE r.search_tsv @@ $6 AND r.id <> ALL ($7) AND %s'
                       '                 LIMIT $8) m'
                       '         ORDER BY 2 DESC, 3, 1 LIMIT $3) x', v_tie, v_table, v_where)
           INTO v_more_ids, v_more_ranks
          USING p_query_embedding, p_project_id, v_cand - cardinality(v_tids), v_filters,
                p_with_duplicates, v_q[i], v_tids, v_text_cap;
        v_tids := v_tids || coalesce(v_more_ids, '{}');
        v_ranks := v_ranks || coalesce(v_more_ranks, '{}');
    END LOOP;
    RETURN QUERY
    SELECT (row_number() OVER (ORDER BY f.score DESC, f.vector_position, f.text_position, f.id))::integer,
           f.id, f.score, f.similarity, f.text_rank, f.vector_position, f.text_position
      FROM kbpipe_rrf(v_vids, v_sims, v_tids, v_ranks, coalesce(p_rrf_k, 60)) f
     ORDER BY 1
     LIMIT v_n;
END;
$$;
-- migrate:down
CREATE OR REPLACE FUNCTION kbpipe_search_ranked(p_target text, p_query_embedding vector, p_query_text text,
                                     p_project_id uuid, p_limit integer, p_mode text,
                                     p_filters jsonb, p_with_duplicates boolean,
                                     p_rrf_k integer, p_candidates integer)
RETURNS TABLE (ord integer, id uuid, score double precision, similarity double precision,
               text_rank real, vector_position integer, text_position integer)
LANGUAGE plpgsql STABLE
SET jit = off ROWS 10
-- enable_seqscan off: the planner does not cost reading each TOASTed 6 KB
-- vector, and picked a sequential scan and sort over the HNSW index on a
-- 10,000-chunk project (1.4 s against 0.1 s); a selective filter still
-- gets an exact btree plan
SET hnsw.iterative_scan = 'relaxed_order' SET hnsw.ef_search = 40 SET enable_seqscan = off
AS $$
DECLARE
    v_mode text := coalesce(p_mode, 'hybrid');
    v_filters jsonb := coalesce(p_filters, '{}');
    v_n integer := greatest(coalesce(p_limit, 10), 0);
    v_cand integer;
    v_table text;
    v_where text;   -- the target's filters on its row r: $2 project, $4 filters, $5 duplicates
    v_tie text;     -- the target's stable tie-breaker over its row r
    v_q tsquery[];
    v_vids uuid[];
    v_sims double precision[];
    v_tids uuid[] := '{}';
    v_ranks real[] := '{}';
    v_more_ids uuid[];
    v_more_ranks real[];
BEGIN
    IF v_mode NOT IN ('hybrid', 'vector', 'text') THEN
        RAISE EXCEPTION 'search mode "%" is not one of hybrid, vector, text', p_mode
            USING ERRCODE = '22023';
    END IF;
    -- ties (equal distance or text rank) go by content, not by the random
    -- id, so a search of the same rows always ranks them the same way
    IF p_target = 'chunks' THEN
        v_table := 'knowledge_chunks';
        v_tie := 'r.content_hash';
        v_where := CASE WHEN v_filters ?| ARRAY['source_type', 'path', 'label', 'state', 'since', 'until']
                        THEN '(SELECT kbpipe_source_matches(s, $4) FROM knowledge_sources s'
                             ' WHERE s.id = r.source_id)'
                        ELSE 'true' END;
    ELSE
        IF v_filters ?| ARRAY['source_type', 'path', 'label', 'state', 'since', 'until'] THEN
            RAISE EXCEPTION 'learnings have no source to filter on; filter them by category or tag'
                USING ERRCODE = '22023';
        END IF;
        v_table := 'learnings';
        v_tie := 'coalesce(r.metadata->>''content_hash'', r.title)';
        v_where := '($5 OR NOT r.metadata ? ''duplicate_of'')'
                   ' AND ($4->>''category'' IS NULL OR r.category = $4->>''category'')'
                   ' AND ($4->>''tag'' IS NULL OR r.tags @> ARRAY[$4->>''tag''])';
    END IF;
    v_where := v_where || ' AND ($2::uuid IS NULL OR r.project_id = $2)';
    v_cand := greatest(coalesce(p_candidates, greatest(4 * v_n, 40)), v_n);
    v_q := kbpipe_search_tsqueries(coalesce((SELECT p.search_language FROM projects p
                                              WHERE p.id = p_project_id), 'english'),
                                   p_query_text);
    -- the HNSW queue holds the candidates; a selective filter is served by
    -- the iterative scan (SET above), which goes on until the LIMIT is met
    PERFORM set_config('hnsw.ef_search', least(v_cand, 1000)::text, true);
    IF v_mode <> 'text' AND p_query_embedding IS NOT NULL THEN
        EXECUTE format('SELECT array_agg(x.id ORDER BY x.dist, x.tie, x.id),'
                       '       array_agg(1 - x.dist ORDER BY x.dist, x.tie, x.id)'
                       '  FROM (SELECT r.id, r.embedding <=> $1 AS dist, %s AS tie'
                       '          FROM %I r WHERE %s'
                       '         ORDER BY r.embedding <=> $1 LIMIT $3) x'
                       ' WHERE x.dist <> ''NaN''', v_tie, v_table, v_where)
           INTO v_vids, v_sims
          USING p_query_embedding, p_project_id, v_cand, v_filters, p_with_duplicates;
    END IF;
    -- the AND form, then the OR form for the candidates the AND form left
    -- unfilled; each ranks at most 1,000 matching rows (in index order): a
    -- word found in most rows costs ~30 us a row to rank and says little
    FOR i IN 1..2 LOOP
        EXIT WHEN v_mode = 'vector' OR cardinality(v_tids) >= v_cand;
        CONTINUE WHEN coalesce(numnode(v_q[i]), 0) = 0;
        EXECUTE format('SELECT array_agg(x.id ORDER BY x.rank DESC, x.tie, x.id),'
                       '       array_agg(x.rank ORDER BY x.rank DESC, x.tie, x.id)'
                       '  FROM (SELECT m.id, ts_rank_cd(m.search_tsv, $6, 2) AS rank, m.tie'
                       '          FROM (SELECT r.id, r.search_tsv, %s AS tie FROM %I r'
                       '                 WHERE r.search_tsv @@ $6 AND r.id <> ALL ($7) AND %s'
                       '                 LIMIT $8) m'
                       '         ORDER BY 2 DESC, 3, 1 LIMIT $3) x', v_tie, v_table, v_where)
           INTO v_more_ids, v_more_ranks
          USING p_query_embedding, p_project_id, v_cand - cardinality(v_tids), v_filters,
                p_with_duplicates, v_q[i], v_tids, 1000;
        v_tids := v_tids || coalesce(v_more_ids, '{}');
        v_ranks := v_ranks || coalesce(v_more_ranks, '{}');
    END LOOP;
    RETURN QUERY
    SELECT (row_number() OVER (ORDER BY f.score DESC, f.vector_position, f.text_position, f.id))::integer,
           f.id, f.score, f.similarity, f.text_rank, f.vector_position, f.text_position
      FROM kbpipe_rrf(v_vids, v_sims, v_tids, v_ranks, coalesce(p_rrf_k, 60)) f
     ORDER BY 1
     LIMIT v_n;
END;
$$;
