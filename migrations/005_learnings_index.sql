-- 005_learnings_index.sql - the RAG knowledge base: sources, chunks with
-- embeddings, learnings, their applications, and the search log.
--
-- Similarity is cosine: similarity = 1 - (a <=> b), in [-1, 1].  The search
-- functions are single-SELECT SQL functions so the planner inlines them and
-- the HNSW indexes (vector_cosine_ops) serve their inner
--     ORDER BY embedding <=> q LIMIT n
-- after which rows under min_similarity are filtered out.  Because the rows
-- come nearest first, that returns exactly the n nearest rows at or above
-- the threshold.  A zero vector has no direction: its similarity is NaN,
-- which PostgreSQL sorts above every number, so NaN rows are dropped
-- explicitly.  With selective project/category filters set
-- hnsw.ef_search >= n and, on pgvector >= 0.8, hnsw.iterative_scan.

-- migrate:up
CREATE TABLE knowledge_sources (
    id          uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    source_type text NOT NULL CHECK (source_type <> ''),
    source_id   text NOT NULL CHECK (source_id <> ''),   -- path, owner/repo#123, CSV key, ...
    title       text,
    url         text,
    file_path   text,
    author      text,
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    indexed_at  timestamptz
);
CREATE INDEX idx_knowledge_sources_project_id ON knowledge_sources (project_id);
CREATE INDEX idx_knowledge_sources_source_type ON knowledge_sources (source_type);
CREATE INDEX idx_knowledge_sources_source_id ON knowledge_sources (source_id);
CREATE TRIGGER trg_knowledge_sources_updated_at BEFORE UPDATE ON knowledge_sources
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE knowledge_chunks (
    id           uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    source_id    uuid NOT NULL REFERENCES knowledge_sources (id) ON DELETE CASCADE,
    project_id   uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    chunk_index  integer NOT NULL CHECK (chunk_index >= 0),
    content      text NOT NULL,
    content_hash text NOT NULL,          -- SHA-256 hex of content
    embedding    vector(1536),           -- NULL until embedded
    token_count  integer CHECK (token_count >= 0),
    metadata     jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_knowledge_chunks_source_id ON knowledge_chunks (source_id);
CREATE INDEX idx_knowledge_chunks_project_id ON knowledge_chunks (project_id);
CREATE INDEX idx_knowledge_chunks_content_hash ON knowledge_chunks (content_hash);
CREATE INDEX idx_knowledge_chunks_embedding ON knowledge_chunks
    USING hnsw (embedding vector_cosine_ops);
CREATE TRIGGER trg_knowledge_chunks_updated_at BEFORE UPDATE ON knowledge_chunks
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE learnings (
    id               uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- NULL: a learning that applies to every project
    project_id       uuid REFERENCES projects (id) ON DELETE CASCADE,
    title            text NOT NULL CHECK (title <> ''),
    content          text NOT NULL,
    learning_type    text NOT NULL DEFAULT 'insight' CHECK (learning_type <> ''),
    category         text,
    confidence_score numeric(5,4) NOT NULL DEFAULT 0.5 CHECK (confidence_score BETWEEN 0 AND 1),
    impact_level     text NOT NULL DEFAULT 'medium'
                     CHECK (impact_level IN ('low', 'medium', 'high', 'critical')),
    source_chunks    uuid[] NOT NULL DEFAULT '{}',   -- knowledge_chunks it was drawn from
    tags             text[] NOT NULL DEFAULT '{}',
    embedding        vector(1536),
    verified         boolean NOT NULL DEFAULT false,
    verified_by      text,
    verified_at      timestamptz,
    usage_count      integer NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    last_used_at     timestamptz,
    metadata         jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_learnings_project_id ON learnings (project_id);
CREATE INDEX idx_learnings_learning_type ON learnings (learning_type);
CREATE INDEX idx_learnings_category ON learnings (category);
CREATE INDEX idx_learnings_confidence_score ON learnings (confidence_score);
CREATE INDEX idx_learnings_impact_level ON learnings (impact_level);
CREATE INDEX idx_learnings_tags ON learnings USING gin (tags);
CREATE INDEX idx_learnings_verified ON learnings (verified);
CREATE INDEX idx_learnings_embedding ON learnings USING hnsw (embedding vector_cosine_ops);
-- being used is not an edit
CREATE TRIGGER trg_learnings_updated_at BEFORE UPDATE ON learnings
    FOR EACH ROW EXECUTE FUNCTION set_updated_at('usage_count', 'last_used_at');

CREATE TABLE learning_applications (
    id              uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    learning_id     uuid NOT NULL REFERENCES learnings (id) ON DELETE CASCADE,
    applied_to_type text NOT NULL,       -- 'task', 'issue', 'epic', 'project', ...
    applied_to_id   text,
    context         text,
    outcome         text NOT NULL DEFAULT 'unknown'
                    CHECK (outcome IN ('success', 'partial', 'failure', 'unknown')),
    feedback        text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_learning_applications_learning_id ON learning_applications (learning_id);
CREATE INDEX idx_learning_applications_outcome ON learning_applications (outcome);

CREATE TABLE search_queries (
    id                    uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    project_id            uuid REFERENCES projects (id) ON DELETE CASCADE,
    query_text            text NOT NULL,
    query_embedding       vector(1536),
    search_type           text NOT NULL DEFAULT 'knowledge'
                          CHECK (search_type IN ('knowledge', 'learnings', 'similar', 'hybrid')),
    result_count          integer NOT NULL DEFAULT 0 CHECK (result_count >= 0),
    -- the log survives re-chunking of its top result
    top_result_id         uuid REFERENCES knowledge_chunks (id) ON DELETE SET NULL,
    top_result_similarity double precision,
    filters               jsonb NOT NULL DEFAULT '{}',
    user_feedback         text CHECK (user_feedback IN ('helpful', 'not_helpful')),
    metadata              jsonb NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_search_queries_project_id ON search_queries (project_id);
CREATE INDEX idx_search_queries_created_at ON search_queries (created_at);
CREATE INDEX idx_search_queries_user_feedback ON search_queries (user_feedback);

-- The p_limit chunks nearest to p_query_embedding (of project p_project_id,
-- or of all projects when NULL) whose similarity is >= p_min_similarity
-- (NULL: no threshold), nearest first.  A NULL embedding matches nothing;
-- p_limit NULL means 10, below 0 means 0.
CREATE OR REPLACE FUNCTION search_knowledge_chunks(p_query_embedding vector,
                                                   p_project_id uuid DEFAULT NULL,
                                                   p_limit integer DEFAULT 10,
                                                   p_min_similarity double precision DEFAULT 0.7)
RETURNS TABLE (chunk_id uuid, source_id uuid, content text, similarity double precision,
               metadata jsonb)
LANGUAGE sql STABLE AS $$
    SELECT n.id, n.source_id, n.content, n.similarity, n.metadata
      FROM (SELECT c.id, c.source_id, c.content, c.metadata,
                   1 - (c.embedding <=> p_query_embedding) AS similarity
              FROM knowledge_chunks c
             WHERE (p_project_id IS NULL OR c.project_id = p_project_id)
             ORDER BY c.embedding <=> p_query_embedding
             LIMIT greatest(coalesce(p_limit, 10), 0)) n
     WHERE n.similarity >= coalesce(p_min_similarity, '-Infinity') AND n.similarity <> 'NaN'
     ORDER BY n.similarity DESC
$$;

-- Like search_knowledge_chunks over learnings, also filtered by category
-- (NULL: any).  Learnings with a NULL project_id belong to no project and
-- are found only when p_project_id is NULL.
CREATE OR REPLACE FUNCTION search_learnings(p_query_embedding vector,
                                            p_project_id uuid DEFAULT NULL,
                                            p_category text DEFAULT NULL,
                                            p_limit integer DEFAULT 10,
                                            p_min_similarity double precision DEFAULT 0.7)
RETURNS TABLE (learning_id uuid, title text, content text, learning_type text, category text,
               similarity double precision, confidence_score numeric)
LANGUAGE sql STABLE AS $$
    SELECT n.id, n.title, n.content, n.learning_type, n.category, n.similarity, n.confidence_score
      FROM (SELECT l.id, l.title, l.content, l.learning_type, l.category, l.confidence_score,
                   1 - (l.embedding <=> p_query_embedding) AS similarity
              FROM learnings l
             WHERE (p_project_id IS NULL OR l.project_id = p_project_id)
               AND (p_category IS NULL OR l.category = p_category)
             ORDER BY l.embedding <=> p_query_embedding
             LIMIT greatest(coalesce(p_limit, 10), 0)) n
     WHERE n.similarity >= coalesce(p_min_similarity, '-Infinity') AND n.similarity <> 'NaN'
     ORDER BY n.similarity DESC
$$;

-- Near-duplicates of p_embedding: learnings (of p_project_id, or all when
-- NULL) with similarity >= p_similarity_threshold (NULL: 0.9), nearest
-- first, at most p_limit (NULL: 20) of them.  The caller excludes the
-- learning whose own embedding it passed.
CREATE OR REPLACE FUNCTION find_similar_learnings(p_embedding vector,
                                                  p_project_id uuid DEFAULT NULL,
                                                  p_similarity_threshold double precision DEFAULT 0.9,
                                                  p_limit integer DEFAULT 20)
RETURNS TABLE (learning_id uuid, title text, similarity double precision)
LANGUAGE sql STABLE AS $$
    SELECT n.id, n.title, n.similarity
      FROM (SELECT l.id, l.title, 1 - (l.embedding <=> p_embedding) AS similarity
              FROM learnings l
             WHERE (p_project_id IS NULL OR l.project_id = p_project_id)
             ORDER BY l.embedding <=> p_embedding
             LIMIT greatest(coalesce(p_limit, 20), 0)) n
     WHERE n.similarity >= coalesce(p_similarity_threshold, 0.9) AND n.similarity <> 'NaN'
     ORDER BY n.similarity DESC
$$;

-- Count one use of a learning: usage_count + 1, last_used_at = now().
-- Returns the new usage_count; raises P0002 for an unknown (or NULL) id.
CREATE OR REPLACE FUNCTION increment_learning_usage(p_learning_id uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_count integer;
BEGIN
    UPDATE learnings SET usage_count = usage_count + 1, last_used_at = now()
     WHERE id = p_learning_id
    RETURNING usage_count INTO v_count;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'learning % does not exist', coalesce(p_learning_id::text, 'NULL')
            USING ERRCODE = 'P0002';
    END IF;
    RETURN v_count;
END;
$$;

-- Trigger: recording an application is a use of the learning.
CREATE OR REPLACE FUNCTION learning_application_logged() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM increment_learning_usage(NEW.learning_id);
    RETURN NEW;
END;
$$;

CREATE TRIGGER trg_learning_applications_usage AFTER INSERT ON learning_applications
    FOR EACH ROW EXECUTE FUNCTION learning_application_logged();

CREATE VIEW learning_effectiveness AS
SELECT l.id, l.title, l.learning_type, l.category, l.confidence_score, l.usage_count,
       count(a.id) AS application_count,
       count(a.id) FILTER (WHERE a.outcome = 'success') AS successful_applications,
       count(a.id) FILTER (WHERE a.outcome = 'failure') AS failed_applications,
       round(100.0 * count(a.id) FILTER (WHERE a.outcome = 'success')
             / nullif(count(a.id) FILTER (WHERE a.outcome IN ('success', 'failure')), 0), 2)
           AS success_rate_percent
  FROM learnings l
  LEFT JOIN learning_applications a ON a.learning_id = l.id
 GROUP BY l.id;

CREATE VIEW knowledge_coverage_by_project AS
SELECT p.id AS project_id, p.name AS project_name,
       coalesce(s.source_count, 0) AS source_count,
       coalesce(c.chunk_count, 0) AS chunk_count,
       coalesce(l.learning_count, 0) AS learning_count,
       coalesce(c.total_tokens, 0) AS total_tokens,
       coalesce(s.source_type_count, 0) AS source_type_count,
       coalesce(s.source_types, '{}') AS source_types
  FROM projects p
  LEFT JOIN (SELECT project_id, count(*) AS source_count,
                    count(DISTINCT source_type) AS source_type_count,
                    array_agg(DISTINCT source_type ORDER BY source_type) AS source_types
               FROM knowledge_sources GROUP BY project_id) s ON s.project_id = p.id
  LEFT JOIN (SELECT project_id, count(*) AS chunk_count,
                    sum(coalesce(token_count, 0)) AS total_tokens
               FROM knowledge_chunks GROUP BY project_id) c ON c.project_id = p.id
  LEFT JOIN (SELECT project_id, count(*) AS learning_count
               FROM learnings GROUP BY project_id) l ON l.project_id = p.id;

CREATE VIEW popular_search_queries AS
SELECT q.project_id, q.query_text,
       count(*) AS query_count,
       round(avg(q.result_count), 2) AS avg_results,
       count(*) FILTER (WHERE q.user_feedback = 'helpful') AS helpful_count,
       count(*) FILTER (WHERE q.user_feedback = 'not_helpful') AS not_helpful_count,
       max(q.created_at) AS last_queried
  FROM search_queries q
 GROUP BY q.project_id, q.query_text
 ORDER BY query_count DESC, last_queried DESC;

-- migrate:down
DROP VIEW popular_search_queries;
DROP VIEW knowledge_coverage_by_project;
DROP VIEW learning_effectiveness;
DROP TRIGGER trg_learning_applications_usage ON learning_applications;
DROP FUNCTION learning_application_logged();
DROP FUNCTION increment_learning_usage(uuid);
DROP FUNCTION find_similar_learnings(vector, uuid, double precision, integer);
DROP FUNCTION search_learnings(vector, uuid, text, integer, double precision);
DROP FUNCTION search_knowledge_chunks(vector, uuid, integer, double precision);
DROP TABLE search_queries;
DROP TABLE learning_applications;
DROP TABLE learnings;
DROP TABLE knowledge_chunks;
DROP TABLE knowledge_sources;
