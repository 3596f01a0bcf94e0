-- 006_kbpipe_load: what kbpipe's incremental loader needs beyond 001-005
-- (DESIGN.md, "Identity, change detection, idempotency"; issue 7).
--
--  * a source is identified by (project, source_type, source_id), a chunk by
--    (source, chunk_index): unique keys make both upserts and re-runs exact;
--  * each source records the hash of its normalized text plus the chunker and
--    embedding settings (doc_hash), and the pipeline that owns it, so an
--    unchanged source is skipped before chunking and `--full` deletes only
--    the sources of its own pipeline;
--  * a learning loaded from a source points at it (knowledge_source_id), so a
--    changed row updates its learning in place and a deleted one goes away;
--  * kbpipe_runs records every run (the JSON report included) for `stats`;
--  * kbpipe_dropped_indexes remembers an HNSW index a bulk load dropped, in
--    the same transaction as the drop, so a run killed before the rebuild is
--    repaired by the next run or by `kbpipe migrate verify --repair`.
--  * a GitHub issue loaded with `upsert_issues` is identified in the issues
--    table by (project, github_url);
--  * projects are looked up by name (pipelines name their project), so the
--    name is unique.
-- migrate:up
ALTER TABLE projects ADD CONSTRAINT projects_name_key UNIQUE (name);

ALTER TABLE knowledge_sources
    ADD COLUMN doc_hash text,
    ADD COLUMN pipeline text,
    ADD CONSTRAINT knowledge_sources_identity_key UNIQUE (project_id, source_type, source_id);
CREATE INDEX idx_knowledge_sources_pipeline ON knowledge_sources (project_id, pipeline);

ALTER TABLE knowledge_chunks
    ADD CONSTRAINT knowledge_chunks_source_chunk_key UNIQUE (source_id, chunk_index);

CREATE UNIQUE INDEX idx_issues_project_github_url ON issues (project_id, github_url)
    WHERE github_url IS NOT NULL;

ALTER TABLE learnings
    ADD COLUMN knowledge_source_id uuid REFERENCES knowledge_sources(id) ON DELETE CASCADE;
CREATE UNIQUE INDEX idx_learnings_knowledge_source ON learnings (knowledge_source_id)
    WHERE knowledge_source_id IS NOT NULL;
-- embeddings are reused by (content_hash, embedding model)
CREATE INDEX idx_learnings_content_hash ON learnings ((metadata->>'content_hash'));

CREATE TABLE kbpipe_runs (
    id           bigserial PRIMARY KEY,
    pipeline     text NOT NULL,
    project_id   uuid REFERENCES projects(id) ON DELETE SET NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    status       text NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'dry-run')),
    counts       jsonb NOT NULL DEFAULT '{}',
    report       jsonb,
    host         text,
    pid          integer
);
CREATE INDEX idx_kbpipe_runs_pipeline ON kbpipe_runs (pipeline, started_at DESC);

CREATE TABLE kbpipe_dropped_indexes (
    index_name  text PRIMARY KEY,
    table_name  text NOT NULL,
    indexdef    text NOT NULL,
    dropped_at  timestamptz NOT NULL DEFAULT now(),
    run_id      bigint
);
-- migrate:down
DROP TABLE IF EXISTS kbpipe_dropped_indexes;
DROP TABLE IF EXISTS kbpipe_runs;
DROP INDEX IF EXISTS idx_learnings_content_hash;
DROP INDEX IF EXISTS idx_learnings_knowledge_source;
ALTER TABLE learnings DROP COLUMN IF EXISTS knowledge_source_id;
DROP INDEX IF EXISTS idx_issues_project_github_url;
ALTER TABLE knowledge_chunks DROP CONSTRAINT IF EXISTS knowledge_chunks_source_chunk_key;
DROP INDEX IF EXISTS idx_knowledge_sources_pipeline;
ALTER TABLE knowledge_sources
    DROP CONSTRAINT IF EXISTS knowledge_sources_identity_key,
    DROP COLUMN IF EXISTS pipeline,
    DROP COLUMN IF EXISTS doc_hash;
ALTER TABLE projects DROP CONSTRAINT IF EXISTS projects_name_key;
