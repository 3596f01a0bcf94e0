-- bench/search/plain_ranking.sql - kbpipe_search_ranked (migration 017) for
-- chunks written as one plain SQL statement: a LANGUAGE sql function with
-- no SET clause, which PostgreSQL inlines into the statement that calls it,
-- so no plpgsql is compiled and no EXECUTE is planned apart.  Not part of
-- kbpipe: bench/search/statement_cost.sh creates it in a scratch copy of
-- its database to compare what a new backend pays for each form, and
-- checks first that it ranks as 017 does (same rows, scores and order for
-- every question of bench/search/questions.tsv in the three modes).  Its
-- caller sets what 017's SET clause sets (hnsw.ef_search = the candidates,
-- hnsw.iterative_scan = relaxed_order, enable_seqscan = off, jit = off)
-- and passes the query's two text forms (kbpipe_search_tsqueries) and the
-- candidates (max(4 x limit, 40)).
CREATE OR REPLACE FUNCTION kbpipe_rank_chunks_plain(p_query_embedding vector, p_tsq tsquery[], p_project_id uuid,
        p_limit integer, p_mode text, p_filters jsonb, p_rrf_k integer, p_candidates integer)
RETURNS TABLE (ord integer, id uuid, score double precision, similarity double precision,
               text_rank real, vector_position integer, text_position integer)
LANGUAGE sql STABLE ROWS 10 AS $$
WITH v AS (
    SELECT r.id, r.embedding <=> p_query_embedding AS dist, r.content_hash AS tie
      FROM knowledge_chunks r
     WHERE p_mode <> 'text' AND p_query_embedding IS NOT NULL
       AND (p_project_id IS NULL OR r.project_id = p_project_id)
       AND (NOT p_filters ?| ARRAY['source_type', 'path', 'label', 'state', 'since', 'until']
            OR (SELECT kbpipe_source_matches(s, p_filters) FROM knowledge_sources s WHERE s.id = r.source_id))
     ORDER BY r.embedding <=> p_query_embedding LIMIT p_candidates),
t1 AS (
    SELECT m.id, ts_rank_cd(m.search_tsv, p_tsq[1], 2) AS rank, m.tie
      FROM (SELECT r.id, r.search_tsv, r.content_hash AS tie FROM knowledge_chunks r
             WHERE p_mode <> 'vector' AND coalesce(numnode(p_tsq[1]), 0) > 0 AND r.search_tsv @@ p_tsq[1]
               AND (p_project_id IS NULL OR r.project_id = p_project_id)
               AND (NOT p_filters ?| ARRAY['source_type', 'path', 'label', 'state', 'since', 'until']
                    OR (SELECT kbpipe_source_matches(s, p_filters) FROM knowledge_sources s WHERE s.id = r.source_id))
             LIMIT 400) m
     ORDER BY 2 DESC, 3, 1 LIMIT p_candidates),
t2 AS (
    SELECT m.id, ts_rank_cd(m.search_tsv, p_tsq[2], 2) AS rank, m.tie
      FROM (SELECT r.id, r.search_tsv, r.content_hash AS tie FROM knowledge_chunks r
             WHERE p_mode <> 'vector' AND coalesce(numnode(p_tsq[2]), 0) > 0
               AND (SELECT count(*) FROM t1) < p_candidates
               AND r.search_tsv @@ p_tsq[2] AND r.id <> ALL (ARRAY(SELECT t1.id FROM t1))
               AND (p_project_id IS NULL OR r.project_id = p_project_id)
               AND (NOT p_filters ?| ARRAY['source_type', 'path', 'label', 'state', 'since', 'until']
                    OR (SELECT kbpipe_source_matches(s, p_filters) FROM knowledge_sources s WHERE s.id = r.source_id))
             LIMIT 400) m
     ORDER BY 2 DESC, 3, 1 LIMIT p_candidates - (SELECT count(*) FROM t1))
SELECT (row_number() OVER (ORDER BY f.score DESC, f.vector_position, f.text_position, f.id))::integer,
       f.id, f.score, f.similarity, f.text_rank, f.vector_position, f.text_position
  FROM kbpipe_rrf((SELECT array_agg(v.id ORDER BY v.dist, v.tie, v.id) FROM v WHERE v.dist <> 'NaN'),
                  (SELECT array_agg(1 - v.dist ORDER BY v.dist, v.tie, v.id) FROM v WHERE v.dist <> 'NaN'),
                  (SELECT array_agg(t.id ORDER BY t.g, t.rank DESC, t.tie, t.id)
                     FROM (SELECT 1 AS g, * FROM t1 UNION ALL SELECT 2, * FROM t2) t),
                  (SELECT array_agg(t.rank ORDER BY t.g, t.rank DESC, t.tie, t.id)
                     FROM (SELECT 1 AS g, * FROM t1 UNION ALL SELECT 2, * FROM t2) t),
                  p_rrf_k) f
 ORDER BY 1 LIMIT p_limit
$$;
