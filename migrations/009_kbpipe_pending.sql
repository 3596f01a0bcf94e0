-- 009_kbpipe_pending: what a run still owes after its last data commit, so
-- a run killed at any instant is finished by the next one (issue 13, point 1),
-- and run rows that a dead process left `running` (point 2).
--
--  * kbpipe_pending holds one row per debt of a pipeline:
--      dedup   a learning a batch inserted or changed, not yet through the
--              dedup pass; written in the batch's own transaction, deleted
--              in the dedup pass's transaction (or when the run ends well
--              with dedup off);
--      full    a `--full` run that has not finished its deletions: the next
--              run of the pipeline deletes its unseen sources too;
--    a learning's row goes with the learning (ON DELETE CASCADE).  The HNSW
--    index a load dropped stays in kbpipe_dropped_indexes (006).
--  * kbpipe_runs gains backend_pid (the run's server process, pg_backend_pid):
--    a `running` row whose backend holds no advisory lock any more belongs to
--    a dead run, and the next run of the pipeline or `kbpipe stats` closes it
--    as `abandoned`; a run stopped by SIGINT/SIGTERM ends `interrupted`.
-- migrate:up
CREATE TABLE kbpipe_pending (
    id           bigserial PRIMARY KEY,
    pipeline     text NOT NULL,
    project_id   uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    what         text NOT NULL CHECK (what IN ('dedup', 'full')),
    learning_id  uuid REFERENCES learnings(id) ON DELETE CASCADE,
    run_id       bigint,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((what = 'dedup') = (learning_id IS NOT NULL))
);
CREATE UNIQUE INDEX idx_kbpipe_pending_dedup ON kbpipe_pending (pipeline, learning_id)
    WHERE what = 'dedup';
CREATE UNIQUE INDEX idx_kbpipe_pending_full ON kbpipe_pending (pipeline, project_id)
    WHERE what = 'full';
CREATE INDEX idx_kbpipe_pending_learning ON kbpipe_pending (learning_id);

ALTER TABLE kbpipe_runs ADD COLUMN backend_pid integer;
ALTER TABLE kbpipe_runs DROP CONSTRAINT kbpipe_runs_status_check;
ALTER TABLE kbpipe_runs ADD CONSTRAINT kbpipe_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'dry-run',
                      'interrupted', 'abandoned'));
-- migrate:down
UPDATE kbpipe_runs SET status = 'failed' WHERE status IN ('interrupted', 'abandoned');
ALTER TABLE kbpipe_runs DROP CONSTRAINT kbpipe_runs_status_check;
ALTER TABLE kbpipe_runs ADD CONSTRAINT kbpipe_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'dry-run'));
ALTER TABLE kbpipe_runs DROP COLUMN IF EXISTS backend_pid;
DROP TABLE IF EXISTS kbpipe_pending;
