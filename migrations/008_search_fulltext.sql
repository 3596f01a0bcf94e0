-- 008_search_fulltext.sql - full-text search beside the vector search, the
-- hybrid (reciprocal rank fusion) search functions, and the table of each
-- project's embedding models (issue 15; docs/search.md).
--
--  * projects.search_language: the text search configuration of a project's
--    rows ('english' by default, 'simple' for no stemming, or any installed
--    configuration).  Each chunk and learning copies it into search_config
--    (an AFTER INSERT statement trigger sets it on the new rows of a project
--    whose language is not english, and a change of the project's language
--    rewrites the project's rows), and the
--    stored generated column search_tsv is to_tsvector(search_config, ...)
--    of the row, under a GIN index.  The heading path (chunks) and the title
--    (learnings) weigh A, the text B.  Only the first 65,536 characters of a
--    text are indexed: a tsvector is limited to 1 MB.
--  * kbpipe_embedding_models: (project, target, model) -> number of rows with
--    an embedding, kept exact by statement-level triggers (transition tables)
--    on knowledge_chunks and learnings, so `kbpipe search` reads the model(s)
--    to embed its query with from a handful of rows instead of scanning the
--    project.  target is 'chunks' or 'learnings'; model NULL counts rows
--    whose metadata records no embedding_model.  Learnings of no project are
--    not counted.  Concurrent loads of one project and model serialize on
--    its counter row for the rest of their transactions.
--  * search_hybrid_chunks / search_hybrid_learnings: the vector leg (HNSW,
--    cosine), the text leg (websearch_to_tsquery ranked by ts_rank_cd with
--    normalization 2, divided by the row's length, which on the labelled set
--    of bench/search put hybrid above both legs at 512 and 128 tokens a
--    chunk where the raw rank did not at 128;
--    an OR-form fallback when the AND form matches fewer than the candidates
--    wanted), filters, and reciprocal rank fusion:
--        score = sum over the legs that found the row of 1 / (k + rank)
--    with rank 1-based in each leg and k = p_rrf_k (default 60, the value of
--    Cormack, Clarke and Buettcher, SIGIR 2009).  p_mode 'vector' or 'text'
--    runs one leg only (score is then 1 / (k + rank) of that leg).  Each leg
--    contributes its best p_candidates rows (default max(4 * p_limit, 40));
--    the text leg ranks at most 1,000 matching rows per form.
--    Filters are applied inside each leg, before its LIMIT; the functions run
--    with hnsw.iterative_scan = relaxed_order (pgvector >= 0.8), so a
--    selective filter still yields p_limit rows when that many match.
--  * search_queries.search_type also allows 'text' (a text-only search).
-- migrate:up
ALTER TABLE projects ADD COLUMN search_language regconfig NOT NULL DEFAULT 'english';

ALTER TABLE search_queries DROP CONSTRAINT search_queries_search_type_check;
ALTER TABLE search_queries ADD CONSTRAINT search_queries_search_type_check
    CHECK (search_type IN ('knowledge', 'learnings', 'similar', 'hybrid', 'text'));

-- Statement trigger (TG_ARGV[0] = 'chunks' or 'learnings'): the inserted
-- rows of a project whose language is not the column default (english) get
-- it.  A statement trigger, not a row trigger: a BEFORE ROW trigger would
-- take COPY's multi-row insert away from every load, and most projects
-- keep the default.
CREATE FUNCTION kbpipe_search_config_fill() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_ARGV[0] = 'chunks' THEN
        UPDATE knowledge_chunks c SET search_config = p.search_language
          FROM new_rows n JOIN projects p ON p.id = n.project_id
         WHERE c.id = n.id AND n.search_config IS DISTINCT FROM p.search_language;
    ELSE
        UPDATE learnings l SET search_config = p.search_language
          FROM new_rows n JOIN projects p ON p.id = n.project_id
         WHERE l.id = n.id AND n.search_config IS DISTINCT FROM p.search_language;
    END IF;
    RETURN NULL;
END;
$$;

-- A project's new language rewrites its rows' search_config (and so search_tsv).
CREATE FUNCTION kbpipe_search_language_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE knowledge_chunks SET search_config = NEW.search_language
     WHERE project_id = NEW.id AND search_config IS DISTINCT FROM NEW.search_language;
    UPDATE learnings SET search_config = NEW.search_language
     WHERE project_id = NEW.id AND search_config IS DISTINCT FROM NEW.search_language;
    RETURN NEW;
END;
$$;

-- the existing rows get their project's language (every project starts as english)
ALTER TABLE knowledge_chunks
    ADD COLUMN search_config regconfig NOT NULL DEFAULT 'english',
    ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector(search_config, coalesce(metadata->>'heading_path', '')), 'A') ||
        setweight(to_tsvector(search_config, left(content, 65536)), 'B')) STORED;
CREATE INDEX idx_knowledge_chunks_search_tsv ON knowledge_chunks USING gin (search_tsv);
CREATE TRIGGER trg_knowledge_chunks_search_config AFTER INSERT ON knowledge_chunks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kbpipe_search_config_fill('chunks');

ALTER TABLE learnings
    ADD COLUMN search_config regconfig NOT NULL DEFAULT 'english',
    ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector(search_config, left(title, 65536)), 'A') ||
        setweight(to_tsvector(search_config, left(content, 65536)), 'B')) STORED;
CREATE INDEX idx_learnings_search_tsv ON learnings USING gin (search_tsv);
CREATE TRIGGER trg_learnings_search_config AFTER INSERT ON learnings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kbpipe_search_config_fill('learnings');

CREATE TRIGGER trg_projects_search_language AFTER UPDATE OF search_language ON projects
    FOR EACH ROW WHEN (OLD.search_language IS DISTINCT FROM NEW.search_language)
    EXECUTE FUNCTION kbpipe_search_language_changed();

CREATE TABLE kbpipe_embedding_models (
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    target     text NOT NULL CHECK (target IN ('chunks', 'learnings')),
    model      text,                          -- NULL: rows that record no model
    n_rows     bigint NOT NULL CHECK (n_rows > 0),
    CONSTRAINT kbpipe_embedding_models_key UNIQUE NULLS NOT DISTINCT (project_id, target, model)
);

-- Statement trigger (TG_ARGV[0] = target): add the inserted rows with an
-- embedding, subtract the deleted ones; an update counts as both, so one
-- that changes neither model nor embedding writes nothing.
CREATE FUNCTION kbpipe_embedding_models_count() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_delta jsonb;   -- [{project_id, model, n}], n <> 0
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT jsonb_agg(jsonb_build_object('project_id', d.project_id, 'model', d.model, 'n', d.n))
          INTO v_delta
          FROM (SELECT r.project_id, r.metadata->>'embedding_model' AS model, count(*) AS n
                  FROM new_rows r WHERE r.embedding IS NOT NULL AND r.project_id IS NOT NULL
                 GROUP BY 1, 2) d;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT jsonb_agg(jsonb_build_object('project_id', d.project_id, 'model', d.model, 'n', -d.n))
          INTO v_delta
          FROM (SELECT r.project_id, r.metadata->>'embedding_model' AS model, count(*) AS n
                  FROM old_rows r WHERE r.embedding IS NOT NULL AND r.project_id IS NOT NULL
                 GROUP BY 1, 2) d;
    ELSE
        SELECT jsonb_agg(jsonb_build_object('project_id', d.project_id, 'model', d.model, 'n', d.n))
          INTO v_delta
          FROM (SELECT u.project_id, u.model, sum(u.n) AS n FROM (
                    SELECT r.project_id, r.metadata->>'embedding_model' AS model, 1 AS n
                      FROM new_rows r WHERE r.embedding IS NOT NULL AND r.project_id IS NOT NULL
                    UNION ALL
                    SELECT r.project_id, r.metadata->>'embedding_model', -1
                      FROM old_rows r WHERE r.embedding IS NOT NULL AND r.project_id IS NOT NULL) u
                 GROUP BY 1, 2 HAVING sum(u.n) <> 0) d;
    END IF;
    IF v_delta IS NULL THEN
        RETURN NULL;
    END IF;
    -- counter rows in a fixed order: two loads never wait on each other in a cycle
    WITH d AS (SELECT * FROM jsonb_to_recordset(v_delta) AS x(project_id uuid, model text, n bigint)),
    up AS (
        INSERT INTO kbpipe_embedding_models AS m (project_id, target, model, n_rows)
        SELECT d.project_id, TG_ARGV[0], d.model, d.n FROM d
         WHERE d.n > 0 AND EXISTS (SELECT 1 FROM projects p WHERE p.id = d.project_id)
         ORDER BY d.project_id, d.model
        ON CONFLICT ON CONSTRAINT kbpipe_embedding_models_key
        DO UPDATE SET n_rows = m.n_rows + EXCLUDED.n_rows
        RETURNING 1
    ), down AS (
        UPDATE kbpipe_embedding_models m SET n_rows = m.n_rows + d.n FROM d
         WHERE d.n < 0 AND m.project_id = d.project_id AND m.target = TG_ARGV[0]
           AND m.model IS NOT DISTINCT FROM d.model AND m.n_rows + d.n > 0
        RETURNING 1
    )
    DELETE FROM kbpipe_embedding_models m USING d
     WHERE d.n < 0 AND m.project_id = d.project_id AND m.target = TG_ARGV[0]
       AND m.model IS NOT DISTINCT FROM d.model AND m.n_rows + d.n <= 0;
    RETURN NULL;
END;
$$;

-- TRUNCATE has no transition table: forget the target's counts.
CREATE FUNCTION kbpipe_embedding_models_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM kbpipe_embedding_models WHERE target = TG_ARGV[0];
    RETURN NULL;
END;
$$;

-- trg_<table>_models_ins / _upd / _del / _trunc on both tables
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('knowledge_chunks', 'chunks'), ('learnings', 'learnings'))
                           AS v(tbl, target) LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION kbpipe_embedding_models_count(%L)',
                       'trg_' || t.tbl || '_models_ins', t.tbl, t.target);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I'
                       ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION kbpipe_embedding_models_count(%L)',
                       'trg_' || t.tbl || '_models_upd', t.tbl, t.target);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION kbpipe_embedding_models_count(%L)',
                       'trg_' || t.tbl || '_models_del', t.tbl, t.target);
        EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %I'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION kbpipe_embedding_models_truncated(%L)',
                       'trg_' || t.tbl || '_models_trunc', t.tbl, t.target);
    END LOOP;
END;
$$;

INSERT INTO kbpipe_embedding_models (project_id, target, model, n_rows)
SELECT project_id, 'chunks', metadata->>'embedding_model', count(*) FROM knowledge_chunks
 WHERE embedding IS NOT NULL GROUP BY 1, 3;
INSERT INTO kbpipe_embedding_models (project_id, target, model, n_rows)
SELECT project_id, 'learnings', metadata->>'embedding_model', count(*) FROM learnings
 WHERE embedding IS NOT NULL AND project_id IS NOT NULL GROUP BY 1, 3;

-- q1 || q2 (q1 && q2) over a set of tsqueries (NULL for none).
CREATE AGGREGATE kbpipe_tsquery_or_agg(tsquery) (SFUNC = tsquery_or, STYPE = tsquery);
CREATE AGGREGATE kbpipe_tsquery_and_agg(tsquery) (SFUNC = tsquery_and, STYPE = tsquery);

-- The two forms of a query in configuration p_config: [0] the AND form
-- (websearch_to_tsquery: quoted phrases, "or", -word), [1] the OR form for
-- the fallback: any of its words, none of its -words (NULL when it has no
-- word but stopwords).  The AND form may be empty.  Neither raises on any
-- text, and the server's notices about stopwords are not sent to the client.
CREATE FUNCTION kbpipe_search_tsqueries(p_config regconfig, p_text text)
RETURNS tsquery[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET client_min_messages = warning AS $$
    SELECT ARRAY[websearch_to_tsquery(p_config, coalesce(p_text, '')),
                 CASE WHEN f.neg IS NULL THEN f.pos ELSE f.pos && f.neg END]
      FROM (SELECT kbpipe_tsquery_or_agg(w.q) FILTER (WHERE NOT w.is_negated) AS pos,
                   kbpipe_tsquery_and_agg(!! w.q) FILTER (WHERE w.is_negated) AS neg
              FROM (SELECT t.w ~ '^-' AS is_negated,
                           plainto_tsquery(p_config, regexp_replace(t.w, '^-+', '')) AS q
                      FROM regexp_split_to_table(coalesce(p_text, ''), '\s+') AS t(w)) w
             WHERE numnode(w.q) > 0) f
$$;

-- The row filters of the hybrid functions, read from a jsonb object (absent
-- keys filter nothing; docs/search.md):
--   source_type  text or array: knowledge_sources.source_type is one of them
--   path         glob (* ?): source_id or file_path matches it
--   label        issues: the source's metadata labels contain it
--   state        issues: the source's metadata state equals it
--   since/until  timestamptz: the source's updated_at is >= since / < until
--   category     learnings: category equals it
--   tag          learnings: tags contain it

-- A shell glob (* any run of characters, / included; ? one character; \x a
-- literal x) as a LIKE pattern.
CREATE FUNCTION kbpipe_glob_to_like(p_glob text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT string_agg(CASE WHEN m[1] IS NOT NULL THEN
                               CASE WHEN substr(m[1], 2) IN ('%', '_', '\') THEN '\' || substr(m[1], 2)
                                    ELSE substr(m[1], 2) END
                           WHEN m[2] = '*' THEN '%'
                           WHEN m[2] = '?' THEN '_'
                           WHEN m[2] IN ('%', '_', '\') THEN '\' || m[2]
                           ELSE m[2] END, '' ORDER BY n)
      FROM regexp_matches(p_glob, '(\\.)|(.)', 'g') WITH ORDINALITY AS t(m, n)
$$;

-- 1 when source s passes the source filters of p_filters.
CREATE FUNCTION kbpipe_source_matches(s knowledge_sources, p_filters jsonb)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (NOT p_filters ? 'source_type'
            OR s.source_type = ANY (CASE jsonb_typeof(p_filters->'source_type')
                                    WHEN 'array' THEN ARRAY(SELECT jsonb_array_elements_text(p_filters->'source_type'))
                                    ELSE ARRAY[p_filters->>'source_type'] END))
       AND (NOT p_filters ? 'path'
            OR s.source_id LIKE kbpipe_glob_to_like(p_filters->>'path')
            OR s.file_path LIKE kbpipe_glob_to_like(p_filters->>'path'))
       AND (NOT p_filters ? 'label'
            OR coalesce(s.metadata->'labels', '[]') @> to_jsonb(p_filters->>'label')
            OR (s.metadata->'labels') @> jsonb_build_array(jsonb_build_object('name', p_filters->>'label')))
       AND (NOT p_filters ? 'state' OR lower(s.metadata->>'state') = lower(p_filters->>'state'))
       AND (NOT p_filters ? 'since' OR s.updated_at >= (p_filters->>'since')::timestamptz)
       AND (NOT p_filters ? 'until' OR s.updated_at < (p_filters->>'until')::timestamptz)
$$;

-- Reciprocal rank fusion of two ranked lists of ids (either may be empty or
-- NULL): one row per id found, score = sum over the lists holding it of
-- 1 / (p_k + its 1-based position), with the similarity / text rank the
-- lists carry beside their ids.  The caller orders the rows.
CREATE FUNCTION kbpipe_rrf(p_vector_ids uuid[], p_similarities double precision[],
                           p_text_ids uuid[], p_text_ranks real[], p_k integer)
RETURNS TABLE (id uuid, score double precision, similarity double precision, text_rank real,
               vector_position integer, text_position integer)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(v.id, t.id),
           coalesce(1.0 / (p_k + v.n), 0)::double precision
             + coalesce(1.0 / (p_k + t.n), 0)::double precision,
           v.s, t.r, v.n::integer, t.n::integer
      FROM unnest(coalesce(p_vector_ids, '{}'), coalesce(p_similarities, '{}'))
           WITH ORDINALITY AS v(id, s, n)
      FULL JOIN unnest(coalesce(p_text_ids, '{}'), coalesce(p_text_ranks, '{}'))
           WITH ORDINALITY AS t(id, r, n) ON t.id = v.id
$$;

-- The ranked ids behind search_hybrid_chunks (p_target 'chunks') and
-- search_hybrid_learnings ('learnings'): each leg's best candidates among
-- the project's rows that pass the filters, fused, best first (ord 1, 2,
-- ...), at most p_limit of them.  Each leg is built for its target (table
-- and filters) and run through EXECUTE, so it is planned for its values.
CREATE FUNCTION kbpipe_search_ranked(p_target text, p_query_embedding vector, p_query_text text,
                                     p_project_id uuid, p_limit integer, p_mode text,
                                     p_filters jsonb, p_with_duplicates boolean,
                                     p_rrf_k integer, p_candidates integer)
RETURNS TABLE (ord integer, id uuid, score double precision, similarity double precision,
               text_rank real, vector_position integer, text_position integer)
LANGUAGE plpgsql STABLE
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

-- Hybrid search over a project's chunks (p_project_id NULL: every project;
-- the query is then parsed as english).  Returns at most p_limit rows, best
-- first: score (reciprocal rank fusion), similarity (cosine; NULL when the
-- vector leg did not find the row), text_rank (ts_rank_cd; NULL when the
-- text leg did not), and each leg's 1-based position.  p_mode is 'hybrid'
-- (default), 'vector' or 'text'; another value raises.  A NULL embedding
-- skips the vector leg, a text of stopwords only the text leg.
CREATE FUNCTION search_hybrid_chunks(p_query_embedding vector, p_query_text text,
                                     p_project_id uuid DEFAULT NULL,
                                     p_limit integer DEFAULT 10,
                                     p_mode text DEFAULT 'hybrid',
                                     p_filters jsonb DEFAULT '{}',
                                     p_rrf_k integer DEFAULT 60,
                                     p_candidates integer DEFAULT NULL)
RETURNS TABLE (chunk_id uuid, source_id uuid, content text, metadata jsonb,
               score double precision, similarity double precision, text_rank real,
               vector_position integer, text_position integer)
LANGUAGE sql STABLE AS $$
    SELECT c.id, c.source_id, c.content, c.metadata, f.score, f.similarity, f.text_rank,
           f.vector_position, f.text_position
      FROM kbpipe_search_ranked('chunks', p_query_embedding, p_query_text, p_project_id, p_limit,
                                p_mode, p_filters, true, p_rrf_k, p_candidates) f
      JOIN knowledge_chunks c ON c.id = f.id
     ORDER BY f.ord
$$;

-- Hybrid search over a project's learnings, as search_hybrid_chunks; the
-- filters are category and tag (a source filter raises: learnings have no
-- source), and learnings a dedup pass marked (metadata duplicate_of) are
-- left out unless p_with_duplicates.
CREATE FUNCTION search_hybrid_learnings(p_query_embedding vector, p_query_text text,
                                        p_project_id uuid DEFAULT NULL,
                                        p_limit integer DEFAULT 10,
                                        p_mode text DEFAULT 'hybrid',
                                        p_filters jsonb DEFAULT '{}',
                                        p_with_duplicates boolean DEFAULT false,
                                        p_rrf_k integer DEFAULT 60,
                                        p_candidates integer DEFAULT NULL)
RETURNS TABLE (learning_id uuid, title text, content text, learning_type text, category text,
               confidence_score numeric, metadata jsonb,
               score double precision, similarity double precision, text_rank real,
               vector_position integer, text_position integer)
LANGUAGE sql STABLE AS $$
    SELECT l.id, l.title, l.content, l.learning_type, l.category, l.confidence_score, l.metadata,
           f.score, f.similarity, f.text_rank, f.vector_position, f.text_position
      FROM kbpipe_search_ranked('learnings', p_query_embedding, p_query_text, p_project_id,
                                p_limit, p_mode, p_filters, coalesce(p_with_duplicates, false),
                                p_rrf_k, p_candidates) f
      JOIN learnings l ON l.id = f.id
     ORDER BY f.ord
$$;

-- migrate:down
DROP FUNCTION search_hybrid_learnings(vector, text, uuid, integer, text, jsonb, boolean, integer, integer);
DROP FUNCTION search_hybrid_chunks(vector, text, uuid, integer, text, jsonb, integer, integer);
DROP FUNCTION kbpipe_search_ranked(text, vector, text, uuid, integer, text, jsonb, boolean, integer, integer);
DROP FUNCTION kbpipe_rrf(uuid[], double precision[], uuid[], real[], integer);
DROP FUNCTION kbpipe_source_matches(knowledge_sources, jsonb);
DROP FUNCTION kbpipe_glob_to_like(text);
DROP FUNCTION kbpipe_search_tsqueries(regconfig, text);
DROP AGGREGATE kbpipe_tsquery_and_agg(tsquery);
DROP AGGREGATE kbpipe_tsquery_or_agg(tsquery);
DO $$
DECLARE
    t text;
    op text;
BEGIN
    FOREACH t IN ARRAY ARRAY['knowledge_chunks', 'learnings'] LOOP
        FOREACH op IN ARRAY ARRAY['ins', 'upd', 'del', 'trunc'] LOOP
            EXECUTE format('DROP TRIGGER %I ON %I', 'trg_' || t || '_models_' || op, t);
        END LOOP;
    END LOOP;
END;
$$;
DROP FUNCTION kbpipe_embedding_models_truncated();
DROP FUNCTION kbpipe_embedding_models_count();
DROP TABLE kbpipe_embedding_models;
DROP TRIGGER trg_projects_search_language ON projects;
DROP TRIGGER trg_learnings_search_config ON learnings;
DROP TRIGGER trg_knowledge_chunks_search_config ON knowledge_chunks;
DROP INDEX idx_learnings_search_tsv;
DROP INDEX idx_knowledge_chunks_search_tsv;
ALTER TABLE learnings DROP COLUMN search_tsv, DROP COLUMN search_config;
ALTER TABLE knowledge_chunks DROP COLUMN search_tsv, DROP COLUMN search_config;
DROP FUNCTION kbpipe_search_language_changed();
DROP FUNCTION kbpipe_search_config_fill();
ALTER TABLE search_queries DROP CONSTRAINT search_queries_search_type_check;
ALTER TABLE search_queries ADD CONSTRAINT search_queries_search_type_check
    CHECK (search_type IN ('knowledge', 'learnings', 'similar', 'hybrid'));
ALTER TABLE projects DROP COLUMN search_language;
