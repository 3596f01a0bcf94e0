-- 018_search_common_words: the text leg's OR form leaves out the words
-- found in more than a fifth of the project's rows (issue 15: search
-- quality on held-out questions).
--
-- ts_rank_cd has no inverse document frequency: "pip", "pyenv", "python"
-- or "install", each in a fifth to four fifths of the chunks of the search
-- benchmark's corpus, count as much as "keyring" (1%), and the OR form,
-- which most questions end in (their AND form matches nothing), ranked
-- chunks by them.  Measured on both labelled sets of bench/search (the
-- tuning set, and the held-out one, written before any search ran on it)
-- with bench/search/quality_variants.sh, then with this migration through
-- `kbpipe eval`: docs/search.md, "Common words".
--
--   kbpipe_common_lexemes  one row per project and target ('chunks',
--       'learnings'): the lexemes of search_tsv found in more than
--       max_share (0.2) of a sample of the project's rows (the first
--       2,000 by id: uuids, so a spread of the rows, and the same sample
--       for the same rows; all of them below 2,000), the sample's size,
--       and when.  Written by kbpipe_refresh_common_lexemes, which
--       `kbpipe run` calls after a run that wrote or deleted rows of the
--       project and `kbpipe delete` after its deletions; this migration
--       fills it for every project.  It is a statistic for a heuristic,
--       like the planner's: a run killed between its last commit and the
--       refresh leaves the list of before it until the next run that
--       writes rows of the project.
--   kbpipe_search_tsqueries(config, text, common lexemes)  the two forms
--       of 008, but the OR form is the OR of the query's lexemes that are
--       not common (and none of its -words), unless every one is common or
--       the list is NULL or empty: then 008's OR form; and in both forms a
--       word with two leading dashes is a command-line option (--python),
--       read as the word, not as a negation (one dash still negates).
--   kbpipe_search_ranked  017's, passing the project's list (none when
--       p_project_id is NULL: a search over every project).
-- migrate:up
CREATE TABLE kbpipe_common_lexemes (
    project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    target text NOT NULL CHECK (target IN ('chunks', 'learnings')),
    lexemes text[] NOT NULL,
    max_share real NOT NULL,
    sample_rows integer NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, target)
);

-- Recompute the project's common lexemes of p_target ('chunks' or
-- 'learnings'): those in more than p_max_share of its first p_sample rows
-- by id.  Returns how many there are; a project without rows has no list.
CREATE FUNCTION kbpipe_refresh_common_lexemes(p_project_id uuid, p_target text,
                                              p_max_share real DEFAULT 0.2,
                                              p_sample integer DEFAULT 2000)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_sample text;
    v_n integer;
    v_lexemes text[];
BEGIN
    IF p_target IS NULL OR p_target NOT IN ('chunks', 'learnings') THEN
        RAISE EXCEPTION 'target "%" is not chunks or learnings', p_target
            USING ERRCODE = '22023';
    END IF;
    IF p_max_share IS NULL OR p_max_share <= 0 OR p_max_share > 1
       OR p_sample IS NULL OR p_sample < 1 THEN
        RAISE EXCEPTION 'max_share must be in (0, 1] and the sample at least 1 row'
            USING ERRCODE = '22023';
    END IF;
    v_sample := format('SELECT r.search_tsv FROM %I r WHERE r.project_id = %L'
                       ' ORDER BY r.id LIMIT %s',
                       CASE p_target WHEN 'chunks' THEN 'knowledge_chunks' ELSE 'learnings' END,
                       p_project_id, p_sample);
    EXECUTE format('SELECT count(*) FROM (%s) s', v_sample) INTO v_n;
    IF v_n = 0 THEN
        DELETE FROM kbpipe_common_lexemes WHERE project_id = p_project_id AND target = p_target;
        RETURN 0;
    END IF;
    SELECT coalesce(array_agg(s.word ORDER BY s.word), '{}') INTO v_lexemes
      FROM ts_stat(v_sample) s
     WHERE s.ndoc > p_max_share * v_n;
    INSERT INTO kbpipe_common_lexemes (project_id, target, lexemes, max_share, sample_rows)
    VALUES (p_project_id, p_target, v_lexemes, p_max_share, v_n)
    ON CONFLICT (project_id, target) DO UPDATE
       SET lexemes = EXCLUDED.lexemes, max_share = EXCLUDED.max_share,
           sample_rows = EXCLUDED.sample_rows, refreshed_at = now();
    RETURN cardinality(v_lexemes);
END;
$$;

-- 008's two forms of the query p_text, with two changes: a word that
-- starts with two dashes is a command-line option (--python), read as the
-- word, where 008 read it as a negation (a word with one dash still is one);
-- and the OR form leaves out the common lexemes p_common (see above): it is
-- the OR of the query's other lexemes, its -words still excluded, unless
-- none is left (or p_common is NULL or empty): then 008's OR form.
CREATE FUNCTION kbpipe_search_tsqueries(p_config regconfig, p_text text, p_common text[])
RETURNS tsquery[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET client_min_messages = warning AS $$
    SELECT CASE WHEN r.rare IS NULL THEN f.forms
                ELSE ARRAY[f.forms[1],
                           CASE WHEN n.neg IS NULL THEN r.rare ELSE r.rare && n.neg END] END
      FROM (SELECT regexp_replace(coalesce(p_text, ''), '(^|\s)--+(\S)', '\1\2', 'g') AS txt) t,
           LATERAL (SELECT kbpipe_search_tsqueries(p_config, t.txt) AS forms) f,
           -- the lexemes of the query's words but its -words, each once; those
           -- not common, OR-ed (quoted for tsquery: '' for a quote, \\ for \)
           LATERAL (SELECT kbpipe_tsquery_or_agg(
                               ('''' || replace(replace(l.lexeme, '\', '\\'), '''', '''''')
                                || '''')::tsquery ORDER BY l.lexeme) AS rare
                      FROM (SELECT DISTINCT u.lexeme
                              FROM unnest(tsvector_to_array(to_tsvector(p_config,
                                       regexp_replace(t.txt, '(^|\s)-\S*', ' ', 'g'))))
                                   AS u(lexeme)
                             WHERE cardinality(p_common) > 0
                               AND u.lexeme <> ALL (p_common)) l) r,
           -- its -words, as 008 reads them
           LATERAL (SELECT kbpipe_tsquery_and_agg(!! w.q) AS neg
                      FROM (SELECT plainto_tsquery(p_config, regexp_replace(x.w, '^-+', '')) AS q
                              FROM regexp_split_to_table(t.txt, '\s+') AS x(w)
                             WHERE x.w ~ '^-') w
                     WHERE numnode(w.q) > 0) n
$$;

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
                                   p_query_text,
                                   (SELECT c.lexemes FROM kbpipe_common_lexemes c
                                     WHERE c.project_id = p_project_id
                                       AND c.target = CASE WHEN p_target = 'chunks' THEN 'chunks'
                                                           ELSE 'learnings' END));
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

DO $$
DECLARE
    p uuid;
BEGIN
    FOR p IN SELECT id FROM projects LOOP
        PERFORM kbpipe_refresh_common_lexemes(p, 'chunks');
        PERFORM kbpipe_refresh_common_lexemes(p, 'learnings');
    END LOOP;
END;
$$;

-- migrate:down
-- 017's function (this file cannot include it)
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

DROP FUNCTION kbpipe_search_tsqueries(regconfig, text, text[]);
DROP FUNCTION kbpipe_refresh_common_lexemes(uuid, text, real, integer);
DROP TABLE kbpipe_common_lexemes;
