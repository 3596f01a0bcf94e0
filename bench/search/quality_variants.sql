-- bench/search/quality_variants.sql - the ranking ideas of docs/search.md
-- ("Ranking ideas measured on both sets"), run by quality_variants.sh on a
-- database of its own.  Needs the corpus loaded at 512 and 128 tokens a chunk
-- (projects bench-512, bench-128) and q1_q (set, line, question, expected,
-- vec): both question sets with the query vectors `kbpipe search` logged.
-- Mirrors kbpipe_search_ranked (migration 017) as `kbpipe eval -k 5` calls
-- it: 40 chunks returned, 160 candidates a leg (the vector leg an exact scan:
-- the HNSW scan returns every row of these small projects), the text leg's
-- AND form then its OR form (400 rows each at most), RRF; files ranked by
-- first appearance; recall@1 and MRR@5 of files.  With the text leg as
-- migrated ('base'), k = 60 and equal weights it gives kbpipe eval's figures.
SET check_function_bodies = off;
DROP TABLE IF EXISTS q1_vleg, q1_tleg CASCADE;
CREATE TABLE q1_vleg AS
SELECT p.name AS project, q.set, q.line, x.id, x.source_id, x.n::int
  FROM q1_q q CROSS JOIN projects p
  CROSS JOIN LATERAL (SELECT c.id, c.source_id,
                             row_number() OVER (ORDER BY c.embedding <=> q.vec, c.content_hash, c.id) AS n
                        FROM knowledge_chunks c WHERE c.project_id = p.id) x
 WHERE p.name LIKE 'bench-%' AND x.n <= 160;

-- the text leg of a variant, its 160 candidates in order.  p_prep: the
-- question as written ('none'), a word starting with "--" read as a word, not
-- a negation ('dd'), no negation at all ('nodash'); p_norm: ts_rank_cd's
-- normalization (017: 2); p_meta_weight: the stored tsvector ('stored'), it
-- and the source title at weight A, added at query time ('title'), also the
-- words of the file's path ('titlepath'), or other weights {D,C,B,A} for
-- ts_rank_cd ('ahigh' B 0.2, 'aeq' A 0.4; the default is B 0.4, A 1.0)
CREATE TABLE q1_tleg (variant text, project text, set text, line int, id uuid, source_id uuid, n int);

CREATE OR REPLACE FUNCTION q1_text_leg(p_variant text, p_prep text, p_norm int, p_meta_weight text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  r record; v_q tsquery[]; v_ids uuid[]; v_more uuid[]; v_txt text;
BEGIN
  DELETE FROM q1_tleg WHERE variant = p_variant;
  FOR r IN SELECT p.id AS pid, p.name, q.set, q.line, q.question FROM q1_q q CROSS JOIN projects p
            WHERE p.name LIKE 'bench-%' LOOP
    v_txt := CASE p_prep WHEN 'none' THEN r.question
                         -- a word starting with two dashes is a CLI option, not a negation
                         WHEN 'dd' THEN regexp_replace(r.question, '(^|\s)--+', '\1', 'g')
                         -- no negation at all: every leading dash dropped
                         WHEN 'nodash' THEN regexp_replace(r.question, '(^|\s)-+', '\1', 'g') END;
    v_q := kbpipe_search_tsqueries('english', v_txt);
    v_ids := '{}';
    FOR i IN 1..2 LOOP
      EXIT WHEN cardinality(v_ids) >= 160;
      CONTINUE WHEN coalesce(numnode(v_q[i]), 0) = 0;
      SELECT array_agg(x.id ORDER BY x.rank DESC, x.tie, x.id) INTO v_more
        FROM (SELECT m.id, m.tie,
                     CASE p_meta_weight
                       WHEN 'stored' THEN ts_rank_cd(m.tsv, v_q[i], p_norm)
                       -- the stored tsvector plus the source title (weight A), at query time
                       WHEN 'title' THEN ts_rank_cd(m.tsv || setweight(to_tsvector('english', coalesce(m.title, '')), 'A'), v_q[i], p_norm)
                       -- the stored tsvector plus the title and the file path words (A)
                       WHEN 'titlepath' THEN ts_rank_cd(m.tsv || setweight(to_tsvector('english', coalesce(m.title, '') || ' ' || replace(replace(m.sid, '/', ' '), '-', ' ')), 'A'), v_q[i], p_norm)
                       -- weights {D,C,B,A}: heading path A counts 1.0 (default), B 0.4
                       WHEN 'ahigh' THEN ts_rank_cd('{0.1,0.2,0.2,1.0}', m.tsv, v_q[i], p_norm)
                       WHEN 'aeq' THEN ts_rank_cd('{0.1,0.2,0.4,0.4}', m.tsv, v_q[i], p_norm)
                     END AS rank
                FROM (SELECT c.id, c.search_tsv AS tsv, c.content_hash AS tie, s.title, s.source_id AS sid
                        FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
                       WHERE c.project_id = r.pid AND c.id <> ALL (v_ids)
                         AND (CASE WHEN p_meta_weight IN ('title','titlepath')
                                   THEN c.search_tsv || setweight(to_tsvector('english', coalesce(s.title,'') || CASE WHEN p_meta_weight = 'titlepath' THEN ' ' || replace(replace(s.source_id, '/', ' '), '-', ' ') ELSE '' END), 'A')
                                   ELSE c.search_tsv END) @@ v_q[i]
                       LIMIT 400) m
               ORDER BY 3 DESC, 2, 1 LIMIT 160 - cardinality(v_ids)) x;
      v_ids := v_ids || coalesce(v_more, '{}');
    END LOOP;
    INSERT INTO q1_tleg SELECT p_variant, r.name, r.set, r.line, u.id, c.source_id, u.n
      FROM unnest(v_ids) WITH ORDINALITY u(id, n) JOIN knowledge_chunks c ON c.id = u.id;
  END LOOP;
END $$;

-- fused scores and metrics: mode vector / text / hybrid; RRF with k and
-- weights; p_agg 'chunk' (eval as today: 40 chunks, files by first
-- appearance) or 'filesum' (a file's score the sum of its chunks' fused
-- scores) or 'filemax' (its best chunk's)
CREATE OR REPLACE FUNCTION q1_perq(p_tvariant text, p_k float8, p_wv float8, p_wt float8,
                                      p_agg text DEFAULT 'chunk')
RETURNS TABLE (set text, project text, mode text, line int, rank bigint)
LANGUAGE sql AS $$
WITH modes(mode) AS (VALUES ('vector'), ('text'), ('hybrid')),
fused AS (
  SELECT m.mode, coalesce(v.project, t.project) AS project, coalesce(v.set, t.set) AS set,
         coalesce(v.line, t.line) AS line, coalesce(v.id, t.id) AS id,
         coalesce(v.source_id, t.source_id) AS source_id,
         CASE WHEN m.mode IN ('vector','hybrid') THEN coalesce(p_wv / (p_k + v.n), 0) ELSE 0 END
       + CASE WHEN m.mode IN ('text','hybrid') THEN coalesce(p_wt / (p_k + t.n), 0) ELSE 0 END AS score,
         v.n AS vn, t.n AS tn
    FROM modes m
    CROSS JOIN LATERAL (SELECT * FROM q1_vleg WHERE m.mode <> 'text') v
    FULL JOIN (SELECT * FROM q1_tleg WHERE variant = p_tvariant) t
      ON t.project = v.project AND t.set = v.set AND t.line = v.line AND t.id = v.id
), fused2 AS (
  SELECT f.* FROM fused f WHERE f.score > 0 AND f.mode IS NOT NULL
  UNION ALL
  SELECT 'text', t.project, t.set, t.line, t.id, t.source_id, 1.0 / (p_k + t.n), NULL, t.n
    FROM q1_tleg t WHERE t.variant = p_tvariant
), ranked AS (
  SELECT f.*, row_number() OVER (PARTITION BY f.mode, f.project, f.set, f.line
                                 ORDER BY f.score DESC, f.vn NULLS LAST, f.tn NULLS LAST, f.id) AS ord
    FROM (SELECT DISTINCT ON (mode, project, set, line, id) * FROM fused2
           ORDER BY mode, project, set, line, id, score DESC) f
), files AS (
  SELECT r.mode, r.project, r.set, r.line, r.source_id,
         CASE p_agg WHEN 'chunk' THEN -min(r.ord)::float8
                    WHEN 'filesum' THEN sum(r.score)
                    WHEN 'filemax' THEN max(r.score) END AS fscore,
         min(r.ord) AS first
    FROM ranked r WHERE p_agg <> 'chunk' OR r.ord <= 40
   GROUP BY 1, 2, 3, 4, 5
), franked AS (
  SELECT f.*, row_number() OVER (PARTITION BY f.mode, f.project, f.set, f.line
                                 ORDER BY f.fscore DESC, f.first) AS frank
    FROM files f
), hit AS (
  SELECT fr.mode, fr.project, fr.set, fr.line, min(fr.frank) AS rank
    FROM franked fr JOIN knowledge_sources s ON s.id = fr.source_id
    JOIN q1_q q ON q.set = fr.set AND q.line = fr.line
   WHERE s.source_id = ANY (q.expected)
   GROUP BY 1, 2, 3, 4
), per_q AS (
  SELECT q.set, p.project, m.mode, q.line, h.rank
    FROM q1_q q CROSS JOIN (VALUES ('bench-512'), ('bench-128')) p(project) CROSS JOIN modes m
    LEFT JOIN hit h ON h.mode = m.mode AND h.project = p.project AND h.set = q.set AND h.line = q.line
)
SELECT set, project, mode, line, rank FROM per_q
$$;

CREATE OR REPLACE FUNCTION q1_metrics(p_tvariant text, p_k float8, p_wv float8, p_wt float8,
                                      p_agg text DEFAULT 'chunk')
RETURNS TABLE (set text, project text, mode text, n bigint, r1 numeric, mrr5 numeric)
LANGUAGE sql AS $$
SELECT set, project, mode, count(*),
       round(avg(coalesce((rank = 1)::int, 0)), 3),
       round(avg(CASE WHEN rank <= 5 THEN 1.0 / rank ELSE 0 END), 3)
  FROM (SELECT * FROM q1_perq(p_tvariant, p_k, p_wv, p_wt, p_agg) WHERE p_agg <> 'filerrf'
        UNION ALL SELECT * FROM q1_perq_file(p_tvariant, p_k, p_wv, p_wt) WHERE p_agg = 'filerrf') x
 GROUP BY 1, 2, 3 ORDER BY 1 DESC, 2 DESC, 3 DESC
$$;

-- one line a variant: set/chunk size -> text and hybrid recall@1 / MRR@5
-- (vector is the same in every variant but the aggregated ones)
CREATE OR REPLACE FUNCTION q1_line(p_label text, p_tvariant text, p_k float8, p_wv float8, p_wt float8,
                                   p_agg text DEFAULT 'chunk')
RETURNS text LANGUAGE sql AS $$
SELECT rpad(p_label, 28) || string_agg(
         CASE WHEN m.set = 'questions' THEN 'T' ELSE 'H' END || replace(m.project, 'bench-', '') || ' '
         || 'v ' || (SELECT to_char(x.r1, 'FM0.000') || '/' || to_char(x.mrr5, 'FM0.000') FROM q1_metrics(p_tvariant, p_k, p_wv, p_wt, p_agg) x WHERE x.set = m.set AND x.project = m.project AND x.mode = 'vector' LIMIT 1)
         || ' t ' || to_char(t.r1, 'FM0.000') || '/' || to_char(t.mrr5, 'FM0.000')
         || ' h ' || to_char(m.r1, 'FM0.000') || '/' || to_char(m.mrr5, 'FM0.000'), ' | '
         ORDER BY m.set DESC, m.project DESC)
  FROM q1_metrics(p_tvariant, p_k, p_wv, p_wt, p_agg) m
  JOIN q1_metrics(p_tvariant, p_k, p_wv, p_wt, p_agg) t ON t.set = m.set AND t.project = m.project AND t.mode = 'text'
 WHERE m.mode = 'hybrid'
$$;

-- files fused, not chunks: each leg ranks files by their best chunk (first
-- appearance in the leg's 160 candidates), RRF over those file ranks
CREATE OR REPLACE FUNCTION q1_perq_file(p_tvariant text, p_k float8, p_wv float8, p_wt float8)
RETURNS TABLE (set text, project text, mode text, line int, rank bigint)
LANGUAGE sql AS $$
WITH vf AS (
  SELECT project, set, line, source_id, row_number() OVER (PARTITION BY project, set, line ORDER BY min(n)) AS fr
    FROM q1_vleg GROUP BY project, set, line, source_id
), tf AS (
  SELECT project, set, line, source_id, row_number() OVER (PARTITION BY project, set, line ORDER BY min(n)) AS fr
    FROM q1_tleg WHERE variant = p_tvariant GROUP BY project, set, line, source_id
), modes(mode) AS (VALUES ('vector'), ('text'), ('hybrid')),
f AS (
  SELECT m.mode, coalesce(v.project, t.project) project, coalesce(v.set, t.set) set, coalesce(v.line, t.line) line,
         coalesce(v.source_id, t.source_id) source_id,
         CASE WHEN m.mode <> 'text' THEN coalesce(p_wv / (p_k + v.fr), 0) ELSE 0 END
       + CASE WHEN m.mode <> 'vector' THEN coalesce(p_wt / (p_k + t.fr), 0) ELSE 0 END AS score,
         v.fr vfr, t.fr tfr
    FROM modes m CROSS JOIN LATERAL (SELECT v.*, t.* FROM vf v FULL JOIN tf t
                   ON t.project = v.project AND t.set = v.set AND t.line = v.line AND t.source_id = v.source_id) x(project, set, line, source_id, fr, project2, set2, line2, source_id2, fr2)
    CROSS JOIN LATERAL (SELECT x.project, x.set, x.line, x.source_id, x.fr) v(project, set, line, source_id, fr)
    CROSS JOIN LATERAL (SELECT x.project2, x.set2, x.line2, x.source_id2, x.fr2) t(project, set, line, source_id, fr)
), r AS (
  SELECT f.*, row_number() OVER (PARTITION BY mode, project, set, line ORDER BY score DESC, vfr NULLS LAST, tfr NULLS LAST) AS frank
    FROM f WHERE score > 0
), hit AS (
  SELECT r.mode, r.project, r.set, r.line, min(r.frank) rank FROM r JOIN knowledge_sources s ON s.id = r.source_id
    JOIN q1_q q ON q.set = r.set AND q.line = r.line WHERE s.source_id = ANY (q.expected) GROUP BY 1,2,3,4
)
SELECT q.set, p.project, m.mode, q.line, h.rank
  FROM q1_q q CROSS JOIN (VALUES ('bench-512'), ('bench-128')) p(project) CROSS JOIN modes m
  LEFT JOIN hit h ON h.mode = m.mode AND h.project = p.project AND h.set = q.set AND h.line = q.line
$$;

-- The OR form without the project's common words: a lexeme in more than
-- p_maxdf of the project's chunks is dropped from it (ts_rank_cd has no
-- inverse document frequency: "pip" or "pyenv", in most chunks, counts as
-- much as "keyring").  The AND form is kept as it is.
DROP TABLE IF EXISTS q1_df;
CREATE TABLE q1_df AS
SELECT p.name AS project, s.word, s.ndoc, (SELECT count(*) FROM knowledge_chunks c WHERE c.project_id = p.id) AS n
  FROM projects p CROSS JOIN LATERAL ts_stat(format('SELECT search_tsv FROM knowledge_chunks WHERE project_id = %L', p.id)) s
 WHERE p.name LIKE 'bench-%';
CREATE OR REPLACE FUNCTION q1_text_leg_idf(p_variant text, p_maxdf float8, p_prep text DEFAULT 'none', p_norm int DEFAULT 2)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE r record; v_q tsquery[]; v_ids uuid[]; v_more uuid[]; v_txt text; v_or tsquery;
BEGIN
  DELETE FROM q1_tleg WHERE variant = p_variant;
  FOR r IN SELECT p.id AS pid, p.name, q.set, q.line, q.question FROM q1_q q CROSS JOIN projects p
            WHERE p.name LIKE 'bench-%' LOOP
    v_txt := CASE p_prep WHEN 'dd' THEN regexp_replace(r.question, '(^|\s)--+', '\1', 'g') ELSE r.question END;
    v_q := kbpipe_search_tsqueries('english', v_txt);
    -- the OR form's positive lexemes that are rare enough, OR-ed (negations kept)
    SELECT kbpipe_tsquery_or_agg(to_tsquery('english', quote_literal(l.word)))
      INTO v_or
      FROM (SELECT DISTINCT w.word FROM ts_debug('english', regexp_replace(v_txt, '(^|\s)-\S+', ' ', 'g')) d
              CROSS JOIN LATERAL unnest(d.lexemes) w(word)) l
      LEFT JOIN q1_df f ON f.project = r.name AND f.word = l.word
     WHERE coalesce(f.ndoc::float8 / f.n, 0) <= p_maxdf;
    IF v_or IS NOT NULL AND numnode(v_or) > 0 THEN
      v_q[2] := v_or;
    END IF;
    v_ids := '{}';
    FOR i IN 1..2 LOOP
      EXIT WHEN cardinality(v_ids) >= 160;
      CONTINUE WHEN coalesce(numnode(v_q[i]), 0) = 0;
      SELECT array_agg(x.id ORDER BY x.rank DESC, x.tie, x.id) INTO v_more
        FROM (SELECT m.id, m.tie, ts_rank_cd(m.tsv, v_q[i], p_norm) AS rank
                FROM (SELECT c.id, c.search_tsv AS tsv, c.content_hash AS tie FROM knowledge_chunks c
                       WHERE c.project_id = r.pid AND c.id <> ALL (v_ids) AND c.search_tsv @@ v_q[i] LIMIT 400) m
               ORDER BY 3 DESC, 2, 1 LIMIT 160 - cardinality(v_ids)) x;
      v_ids := v_ids || coalesce(v_more, '{}');
    END LOOP;
    INSERT INTO q1_tleg SELECT p_variant, r.name, r.set, r.line, u.id, c.source_id, u.n
      FROM unnest(v_ids) WITH ORDINALITY u(id, n) JOIN knowledge_chunks c ON c.id = u.id;
  END LOOP;
END $$;

-- why hybrid misses: per set and chunk size, the questions whose file hybrid
-- does not rank first, by what the legs did (a leg "right" ranks it first)
CREATE OR REPLACE FUNCTION q1_why(p_tvariant text, p_k float8 DEFAULT 60)
RETURNS TABLE (set text, chunk text, hybrid_misses bigint, only_vector_right bigint,
               only_text_right bigint, both_right bigint, both_wrong bigint, hybrid_right_both_wrong bigint)
LANGUAGE sql AS $$
WITH pq AS (SELECT * FROM q1_perq(p_tvariant, p_k, 1, 1, 'chunk'))
SELECT h.set, replace(h.project, 'bench-', ''),
  count(*) FILTER (WHERE h.rank IS DISTINCT FROM 1),
  count(*) FILTER (WHERE h.rank IS DISTINCT FROM 1 AND v.rank = 1 AND t.rank IS DISTINCT FROM 1),
  count(*) FILTER (WHERE h.rank IS DISTINCT FROM 1 AND t.rank = 1 AND v.rank IS DISTINCT FROM 1),
  count(*) FILTER (WHERE h.rank IS DISTINCT FROM 1 AND t.rank = 1 AND v.rank = 1),
  count(*) FILTER (WHERE h.rank IS DISTINCT FROM 1 AND t.rank IS DISTINCT FROM 1 AND v.rank IS DISTINCT FROM 1),
  count(*) FILTER (WHERE h.rank = 1 AND t.rank IS DISTINCT FROM 1 AND v.rank IS DISTINCT FROM 1)
  FROM pq h JOIN pq v USING (set, project, line) JOIN pq t USING (set, project, line)
 WHERE h.mode = 'hybrid' AND v.mode = 'vector' AND t.mode = 'text'
 GROUP BY 1, 2 ORDER BY 1 DESC, 2 DESC
$$;
