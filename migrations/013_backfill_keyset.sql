-- 013_backfill_keyset: what `kbpipe embed backfill` needs (issue 18).
--
--  * the backfill reads a project's rows in id order, one batch at a time,
--    each batch starting after the last id of the one before (keyset
--    pagination): an index on (project_id, id) of each table makes every
--    batch an index range scan that starts where the last one stopped, so
--    a whole backfill reads each row of the project once, whatever the
--    size of the other projects (with only the project_id index, each
--    batch re-sorted the rest of the project: quadratic work).
--  * nothing else changes: the content hash and the model of a row stay
--    where the loader keeps them (knowledge_chunks.content_hash and
--    metadata->>'embedding_model'; learnings' metadata->>'content_hash' and
--    ->>'embedding_model'), so a backfilled row is one `kbpipe run` could
--    have written.
-- migrate:up
CREATE INDEX idx_knowledge_chunks_project_id_id ON knowledge_chunks (project_id, id);
CREATE INDEX idx_learnings_project_id_id ON learnings (project_id, id);
-- migrate:down
DROP INDEX IF EXISTS idx_learnings_project_id_id;
DROP INDEX IF EXISTS idx_knowledge_chunks_project_id_id;
