-- 011_kbpipe_source_state: what a source keeps between runs (issue 17).
--
--  * an API source (type: github) fetches only what changed since its last
--    successful run: its reader reports marks (the newest updated_at seen
--    per repository, the ETag of an unchanged listing), and the run stores
--    them here once it succeeded, so a failed or partial run asks again
--    for the same changes next time;
--  * generic key/value rows per (project, pipeline, source name), so any
--    source with a watermark (an SQL source's last id, say) can keep its
--    own keys here; `pipeline` is the pipeline's name, or "NAME#K/N" for a
--    shard (each shard keeps its own marks).
-- migrate:up
CREATE TABLE kbpipe_source_state (
    project_id   uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    pipeline     text NOT NULL,
    source_name  text NOT NULL,
    key          text NOT NULL,
    value        text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, pipeline, source_name, key)
);
-- migrate:down
DROP TABLE IF EXISTS kbpipe_source_state;
