-- 012_kbpipe_file_stat: what a run saw of each input file, so the next run
-- skips an unchanged file without opening it (issue 14, as git's index and
-- rsync's quick check do).
--
--  * one row per (project, pipeline, source name, path as opened); `pipeline`
--    is the pipeline's name, or "NAME#K/N" for a shard;
--  * the stat: size, mtime and ctime in nanoseconds since the epoch, inode
--    and device.  `is_racy` is true when the file's mtime was not strictly
--    older than the start of the run that recorded it (git's "racily clean"
--    case): a later write in the same clock tick could leave the stat equal,
--    so such a row is never trusted, and the next run reads the file;
--  * `settings` is a hash of everything that shapes the documents read from
--    the file besides its bytes (the source's reader options, the chunker,
--    the model, the target): a changed pipeline re-reads its files;
--  * `source_id` and `digest`: for a file that is one source (type: files),
--    that source and the doc_hash it had; for a file of many sources (CSV,
--    an issue export), NULL and a digest over (source_type, source_id,
--    doc_hash) of every source it produced, with `n_sources`.  A file is
--    skipped only when the stored sources still have exactly those hashes
--    (knowledge_sources is the truth), so a row written by a run whose
--    batch never committed, or a source changed by other means since, makes
--    the file be read again.
-- These are kbpipe's own columns; no table of the service's spec changes.
-- migrate:up
CREATE TABLE kbpipe_file_stat (
    project_id   uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    pipeline     text NOT NULL,
    source_name  text NOT NULL,
    path         text NOT NULL,
    size         bigint NOT NULL,
    mtime_ns     bigint NOT NULL,
    ctime_ns     bigint NOT NULL,
    inode        bigint NOT NULL,
    device       bigint NOT NULL,
    is_racy      boolean NOT NULL,
    settings     text NOT NULL,
    source_id    text,
    digest       text NOT NULL,
    n_sources    integer NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, pipeline, source_name, path)
);
-- migrate:down
DROP TABLE IF EXISTS kbpipe_file_stat;
