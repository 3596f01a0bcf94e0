-- 004_task_timing.sql - task execution tracking and estimation learning.
--
-- calculate_execution_metrics (BEFORE INSERT OR UPDATE on task_executions)
-- derives duration and variance from the timestamps and the estimate;
-- update_estimation_pattern folds one observed duration into a running mean
-- and sample standard deviation (Welford's method), and
-- get_recommended_estimate reads them back with fallbacks.

-- migrate:up
CREATE TABLE task_executions (
    id                uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    task_id           uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    project_id        uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    execution_number  integer NOT NULL CHECK (execution_number > 0),   -- trigger numbers it
    started_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    duration_minutes  numeric(10,2) CHECK (duration_minutes >= 0),
    estimated_minutes integer CHECK (estimated_minutes >= 0),
    variance_minutes  numeric(10,2),
    variance_percent  numeric(10,2),
    status            text NOT NULL DEFAULT 'running'
                      CHECK (status IN ('running', 'paused', 'completed', 'failed', 'cancelled')),
    complexity        text CHECK (complexity IN ('trivial', 'simple', 'moderate', 'complex', 'very_complex')),
    context_switches  integer NOT NULL DEFAULT 0 CHECK (context_switches >= 0),
    interruptions     integer NOT NULL DEFAULT 0 CHECK (interruptions >= 0),
    blockers          text[] NOT NULL DEFAULT '{}',
    notes             text,
    metadata          jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT task_executions_time_order_check CHECK (completed_at IS NULL OR completed_at >= started_at)
);
CREATE INDEX idx_task_executions_task_id ON task_executions (task_id);
CREATE INDEX idx_task_executions_project_id ON task_executions (project_id);
CREATE INDEX idx_task_executions_status ON task_executions (status);
CREATE INDEX idx_task_executions_started_at ON task_executions (started_at);
CREATE INDEX idx_task_executions_complexity ON task_executions (complexity);
CREATE TRIGGER trg_task_executions_updated_at BEFORE UPDATE ON task_executions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE estimation_patterns (
    id                   uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- NULL: a pattern learned across all projects
    project_id           uuid REFERENCES projects (id) ON DELETE CASCADE,
    pattern_name         text NOT NULL CHECK (pattern_name <> ''),
    task_type            text NOT NULL CHECK (task_type <> ''),
    complexity           text CHECK (complexity IN ('trivial', 'simple', 'moderate', 'complex', 'very_complex')),
    avg_duration_minutes double precision NOT NULL DEFAULT 0 CHECK (avg_duration_minutes >= 0),
    std_deviation        double precision NOT NULL DEFAULT 0 CHECK (std_deviation >= 0),
    sample_count         integer NOT NULL DEFAULT 0 CHECK (sample_count >= 0),
    confidence_score     numeric(5,4) NOT NULL DEFAULT 0 CHECK (confidence_score BETWEEN 0 AND 1),
    factors              jsonb NOT NULL DEFAULT '{}',
    metadata             jsonb NOT NULL DEFAULT '{}',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- NULLS NOT DISTINCT: one global (project_id NULL) pattern per key too
    CONSTRAINT estimation_patterns_key UNIQUE NULLS NOT DISTINCT
        (project_id, pattern_name, task_type, complexity)
);
CREATE INDEX idx_estimation_patterns_project_id ON estimation_patterns (project_id);
CREATE INDEX idx_estimation_patterns_task_type ON estimation_patterns (task_type);
CREATE INDEX idx_estimation_patterns_complexity ON estimation_patterns (complexity);
CREATE INDEX idx_estimation_patterns_confidence_score ON estimation_patterns (confidence_score);
CREATE TRIGGER trg_estimation_patterns_updated_at BEFORE UPDATE ON estimation_patterns
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE time_tracking_sessions (
    id                  uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    task_execution_id   uuid NOT NULL REFERENCES task_executions (id) ON DELETE CASCADE,
    session_number      integer NOT NULL DEFAULT 1 CHECK (session_number > 0),
    started_at          timestamptz NOT NULL DEFAULT now(),
    ended_at            timestamptz,
    duration_minutes    numeric(10,2) CHECK (duration_minutes >= 0),
    activity_type       text,
    productivity_rating integer CHECK (productivity_rating BETWEEN 1 AND 5),
    notes               text,
    metadata            jsonb NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT time_tracking_sessions_time_order_check CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX idx_time_tracking_sessions_task_execution_id ON time_tracking_sessions (task_execution_id);
CREATE INDEX idx_time_tracking_sessions_activity_type ON time_tracking_sessions (activity_type);
CREATE INDEX idx_time_tracking_sessions_started_at ON time_tracking_sessions (started_at);
CREATE TRIGGER trg_time_tracking_sessions_updated_at BEFORE UPDATE ON time_tracking_sessions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE estimation_factors (
    id             uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    factor_name    text NOT NULL CHECK (factor_name <> ''),
    description    text,
    impact_type    text NOT NULL DEFAULT 'multiplier'
                   CHECK (impact_type IN ('multiplier', 'additive', 'informational')),
    -- multiplier: 1.25 = 25% longer; additive: minutes added
    average_impact numeric(10,4),
    metadata       jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER trg_estimation_factors_updated_at BEFORE UPDATE ON estimation_factors
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE task_execution_factors (
    id                uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    task_execution_id uuid NOT NULL REFERENCES task_executions (id) ON DELETE CASCADE,
    factor_id         uuid NOT NULL REFERENCES estimation_factors (id) ON DELETE CASCADE,
    factor_value      numeric(10,4),
    notes             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT task_execution_factors_key UNIQUE (task_execution_id, factor_id)
);
CREATE INDEX idx_task_execution_factors_task_execution_id ON task_execution_factors (task_execution_id);
CREATE INDEX idx_task_execution_factors_factor_id ON task_execution_factors (factor_id);

-- Trigger: fill duration_minutes from started_at/completed_at (when both are
-- set; otherwise a caller-given duration stays), estimated_minutes from the
-- task when NULL, execution_number as the task's next when NULL, then
-- variance_minutes = duration - estimate and variance_percent =
-- variance / estimate * 100 (NULL when either is unknown or the estimate is 0).
CREATE OR REPLACE FUNCTION calculate_execution_metrics() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.execution_number IS NULL THEN
        SELECT coalesce(max(execution_number), 0) + 1 INTO NEW.execution_number
          FROM task_executions WHERE task_id = NEW.task_id;
    END IF;
    IF NEW.estimated_minutes IS NULL THEN
        SELECT t.estimated_minutes INTO NEW.estimated_minutes FROM tasks t WHERE t.id = NEW.task_id;
    END IF;
    IF NEW.started_at IS NOT NULL AND NEW.completed_at IS NOT NULL THEN
        NEW.duration_minutes := round(extract(epoch FROM NEW.completed_at - NEW.started_at) / 60.0, 2);
    END IF;
    IF NEW.duration_minutes IS NOT NULL AND NEW.estimated_minutes IS NOT NULL THEN
        NEW.variance_minutes := NEW.duration_minutes - NEW.estimated_minutes;
        NEW.variance_percent := CASE WHEN NEW.estimated_minutes > 0
            THEN round(NEW.variance_minutes * 100.0 / NEW.estimated_minutes, 2) END;
    ELSE
        NEW.variance_minutes := NULL;
        NEW.variance_percent := NULL;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trg_task_executions_metrics BEFORE INSERT OR UPDATE ON task_executions
    FOR EACH ROW EXECUTE FUNCTION calculate_execution_metrics();

-- Fold one observed duration into the 'learned' pattern of (project,
-- task_type, complexity), creating it at the first sample.  Running mean and
-- sample standard deviation by Welford's update; confidence_score =
-- n/(n+4) * 1/(1 + stddev/mean), in [0, 1).  Returns the updated row.
-- Raises 22004 on a NULL task type or duration, 22023 on a negative one.
CREATE OR REPLACE FUNCTION update_estimation_pattern(p_project_id uuid, p_task_type text,
                                                     p_complexity text,
                                                     p_duration_minutes numeric)
RETURNS estimation_patterns
LANGUAGE plpgsql AS $$
DECLARE
    v_row   estimation_patterns%ROWTYPE;
    v_x     double precision := p_duration_minutes;
    v_n     integer;
    v_mean  double precision;
    v_m2    double precision;
    v_delta double precision;
BEGIN
    IF p_task_type IS NULL OR p_task_type = '' OR p_duration_minutes IS NULL THEN
        RAISE EXCEPTION 'update_estimation_pattern needs a task type and a duration'
            USING ERRCODE = '22004';
    END IF;
    IF p_duration_minutes < 0 THEN
        RAISE EXCEPTION 'duration % is negative', p_duration_minutes USING ERRCODE = '22023';
    END IF;
    -- create the row if missing, then lock it: concurrent updates serialize
    INSERT INTO estimation_patterns (project_id, pattern_name, task_type, complexity)
    VALUES (p_project_id, 'learned', p_task_type, p_complexity)
    ON CONFLICT ON CONSTRAINT estimation_patterns_key DO NOTHING;
    SELECT * INTO v_row FROM estimation_patterns
     WHERE project_id IS NOT DISTINCT FROM p_project_id AND pattern_name = 'learned'
       AND task_type = p_task_type AND complexity IS NOT DISTINCT FROM p_complexity
       FOR UPDATE;

    v_n := v_row.sample_count + 1;
    v_delta := v_x - v_row.avg_duration_minutes;
    v_mean := v_row.avg_duration_minutes + v_delta / v_n;
    v_m2 := CASE WHEN v_row.sample_count > 1 THEN v_row.std_deviation ^ 2 * (v_row.sample_count - 1)
                 ELSE 0 END + v_delta * (v_x - v_mean);
    UPDATE estimation_patterns
       SET sample_count = v_n,
           avg_duration_minutes = v_mean,
           std_deviation = CASE WHEN v_n > 1 THEN sqrt(greatest(v_m2, 0) / (v_n - 1)) ELSE 0 END,
           confidence_score = round((v_n::numeric / (v_n + 4))
               * (1.0 / (1.0 + CASE WHEN v_mean > 0 AND v_n > 1
                                    THEN sqrt(greatest(v_m2, 0) / (v_n - 1)) / v_mean
                                    ELSE 0 END))::numeric, 4)
     WHERE id = v_row.id
    RETURNING * INTO v_row;
    RETURN v_row;
END;
$$;

-- The recommended estimate for a task, from the best evidence available:
--   'project'    the project's pattern for (task_type, complexity)
--   'global'     the cross-project pattern (project_id NULL) for the same
--   'pooled'     all projects' patterns for (task_type, complexity), pooled
--   'task_type'  the project's patterns for task_type at any complexity
--   'default'    a fixed table by complexity: trivial 15, simple 30,
--                moderate 60 (also unknown), complex 120, very_complex 240
-- Only patterns with samples count.  Always returns exactly one row.
CREATE OR REPLACE FUNCTION get_recommended_estimate(p_project_id uuid, p_task_type text,
                                                    p_complexity text)
RETURNS TABLE (recommended_minutes integer, std_deviation double precision,
               confidence_score numeric, sample_count integer, basis text)
LANGUAGE sql STABLE AS $$
    WITH candidates AS (
        SELECT 1 AS rank, 'project' AS basis, p.avg_duration_minutes AS mean, p.std_deviation AS sd,
               p.confidence_score AS conf, p.sample_count AS n
          FROM estimation_patterns p
         WHERE p_project_id IS NOT NULL AND p.project_id = p_project_id
           AND p.task_type = p_task_type AND p.complexity IS NOT DISTINCT FROM p_complexity
           AND p.sample_count > 0
        UNION ALL
        SELECT 2, 'global', p.avg_duration_minutes, p.std_deviation, p.confidence_score, p.sample_count
          FROM estimation_patterns p
         WHERE p.project_id IS NULL
           AND p.task_type = p_task_type AND p.complexity IS NOT DISTINCT FROM p_complexity
           AND p.sample_count > 0
        UNION ALL
        SELECT 3, 'pooled',
               sum(p.avg_duration_minutes * p.sample_count) / sum(p.sample_count),
               NULL::double precision, min(p.confidence_score), sum(p.sample_count)::integer
          FROM estimation_patterns p
         WHERE p.task_type = p_task_type AND p.complexity IS NOT DISTINCT FROM p_complexity
           AND p.sample_count > 0
        HAVING sum(p.sample_count) > 0
        UNION ALL
        SELECT 4, 'task_type',
               sum(p.avg_duration_minutes * p.sample_count) / sum(p.sample_count),
               NULL::double precision, min(p.confidence_score) / 2, sum(p.sample_count)::integer
          FROM estimation_patterns p
         WHERE p_project_id IS NOT NULL AND p.project_id = p_project_id
           AND p.task_type = p_task_type AND p.sample_count > 0
        HAVING sum(p.sample_count) > 0
        UNION ALL
        SELECT 5, 'default',
               CASE p_complexity WHEN 'trivial' THEN 15 WHEN 'simple' THEN 30
                                 WHEN 'complex' THEN 120 WHEN 'very_complex' THEN 240
                                 ELSE 60 END,
               NULL::double precision, 0::numeric, 0
    )
    SELECT ceil(c.mean)::integer, c.sd, c.conf, c.n, c.basis
      FROM candidates c
     ORDER BY c.rank, c.n DESC
     LIMIT 1
$$;

CREATE VIEW estimation_accuracy_by_project AS
SELECT p.id AS project_id, p.name AS project_name,
       count(*) AS total_executions,
       round(avg(te.variance_percent), 2) AS avg_variance_percent,
       round(stddev_samp(te.variance_percent), 2) AS stddev_variance_percent,
       count(*) FILTER (WHERE abs(te.variance_percent) <= 10) AS within_10_percent,
       count(*) FILTER (WHERE abs(te.variance_percent) <= 25) AS within_25_percent,
       count(*) FILTER (WHERE te.variance_minutes < 0) AS over_estimated,
       count(*) FILTER (WHERE te.variance_minutes > 0) AS under_estimated
  FROM projects p
  JOIN task_executions te ON te.project_id = p.id
 WHERE te.variance_percent IS NOT NULL
 GROUP BY p.id, p.name;

CREATE VIEW task_performance_trends AS
SELECT t.id AS task_id, t.title AS task_title, t.project_id,
       count(te.id) AS execution_count,
       round(avg(te.duration_minutes), 2) AS avg_duration,
       min(te.duration_minutes) AS min_duration,
       max(te.duration_minutes) AS max_duration,
       round(avg(te.variance_percent), 2) AS avg_variance_percent,
       sum(te.context_switches) AS total_context_switches,
       sum(te.interruptions) AS total_interruptions
  FROM tasks t
  JOIN task_executions te ON te.task_id = t.id
 GROUP BY t.id, t.title, t.project_id
HAVING count(te.id) > 1;

-- migrate:down
DROP VIEW task_performance_trends;
DROP VIEW estimation_accuracy_by_project;
DROP FUNCTION get_recommended_estimate(uuid, text, text);
DROP FUNCTION update_estimation_pattern(uuid, text, text, numeric);
DROP TRIGGER trg_task_executions_metrics ON task_executions;
DROP FUNCTION calculate_execution_metrics();
DROP TABLE task_execution_factors;
DROP TABLE estimation_factors;
DROP TABLE time_tracking_sessions;
DROP TABLE estimation_patterns;
DROP TABLE task_executions;
