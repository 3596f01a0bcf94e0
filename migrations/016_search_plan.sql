-- 016_search_plan: the search functions of 008 planned as what they are,
-- millisecond queries (issue 15: constant cost per query).
--
--  * jit = off: kbpipe_search_ranked runs with enable_seqscan off, so any
--    plan with a sequential scan in it costs over jit_above_cost (100,000)
--    and PostgreSQL compiled the query's expressions with LLVM before
--    running it: measured at 200,000 chunks on this machine (under load),
--    a vector-mode search took 271-2,589 ms with JIT and 188-206 ms
--    without, and EXPLAIN ANALYZE showed 129 ms of JIT emission for a
--    92 ms index scan.  A query that ends in milliseconds never repays a
--    compilation.
--  * ROWS 10: a set-returning function is estimated at 1,000 rows, so
--    the caller's join of the results with knowledge_sources hashed the
--    whole sources table (a sequential scan of every source of every
--    project per search); at most p_limit rows come back, and p_limit is
--    small, so the planner now probes the primary keys instead.
-- migrate:up
ALTER FUNCTION kbpipe_search_ranked(text, vector, text, uuid, integer, text, jsonb, boolean,
                                    integer, integer) SET jit = off ROWS 10;
ALTER FUNCTION search_hybrid_chunks(vector, text, uuid, integer, text, jsonb, integer, integer)
    SET jit = off ROWS 10;
ALTER FUNCTION search_hybrid_learnings(vector, text, uuid, integer, text, jsonb, boolean,
                                       integer, integer) SET jit = off ROWS 10;
-- migrate:down
ALTER FUNCTION kbpipe_search_ranked(text, vector, text, uuid, integer, text, jsonb, boolean,
                                    integer, integer) RESET jit ROWS 1000;
ALTER FUNCTION search_hybrid_chunks(vector, text, uuid, integer, text, jsonb, integer, integer)
    RESET jit ROWS 1000;
ALTER FUNCTION search_hybrid_learnings(vector, text, uuid, integer, text, jsonb, boolean,
                                       integer, integer) RESET jit ROWS 1000;
