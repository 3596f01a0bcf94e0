-- 06_task_timing.sql - migration 004: the calculate_execution_metrics
-- trigger, update_estimation_pattern's running statistics,
-- get_recommended_estimate's fallbacks and the two views.
BEGIN;
SELECT * FROM no_plan();

INSERT INTO projects (id, name) VALUES ('11111111-0000-0000-0000-000000000001', 'alpha'),
                                       ('11111111-0000-0000-0000-000000000002', 'beta');
INSERT INTO tasks (id, project_id, title, estimated_minutes) VALUES
    ('44444444-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 'write parser', 60),
    ('44444444-0000-0000-0000-000000000002', '11111111-0000-0000-0000-000000000001', 'no estimate', NULL),
    ('44444444-0000-0000-0000-000000000003', '11111111-0000-0000-0000-000000000002', 'zero', 0);

-- the trigger
INSERT INTO task_executions (task_id, project_id, started_at, completed_at, context_switches, interruptions)
VALUES ('44444444-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001',
        '2025-01-01 10:00', '2025-01-01 11:30', 2, 1);
SELECT results_eq($$SELECT execution_number, duration_minutes, estimated_minutes, variance_minutes, variance_percent
                    FROM task_executions WHERE task_id = '44444444-0000-0000-0000-000000000001'$$,
                  $$VALUES (1, 90.00, 60, 30.00, 50.00)$$,
                  'duration from the timestamps, estimate from the task, variance and percent');
INSERT INTO task_executions (task_id, project_id, started_at, completed_at, estimated_minutes, interruptions)
VALUES ('44444444-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001',
        '2025-01-02 10:00', '2025-01-02 10:54', 60, 3);
SELECT results_eq($$SELECT execution_number, duration_minutes, variance_minutes, variance_percent
                    FROM task_executions WHERE task_id = '44444444-0000-0000-0000-000000000001'
                   ORDER BY execution_number$$,
                  $$VALUES (1, 90.00, 30.00, 50.00), (2, 54.00, -6.00, -10.00)$$,
                  'the second execution is numbered 2; a faster run has a negative variance');
INSERT INTO task_executions (task_id, project_id, started_at)
VALUES ('44444444-0000-0000-0000-000000000002', '11111111-0000-0000-0000-000000000001', '2025-01-03 09:00');
SELECT results_eq($$SELECT duration_minutes, estimated_minutes, variance_minutes, variance_percent
                    FROM task_executions WHERE task_id = '44444444-0000-0000-0000-000000000002'$$,
                  $$VALUES (NULL::numeric, NULL::integer, NULL::numeric, NULL::numeric)$$,
                  'a running execution without an estimate has no metrics');
UPDATE task_executions SET completed_at = '2025-01-03 09:20', estimated_minutes = 30, status = 'completed'
 WHERE task_id = '44444444-0000-0000-0000-000000000002';
SELECT results_eq($$SELECT duration_minutes, variance_minutes, variance_percent
                    FROM task_executions WHERE task_id = '44444444-0000-0000-0000-000000000002'$$,
                  $$VALUES (20.00, -10.00, -33.33)$$, 'completing it computes the metrics on UPDATE');
INSERT INTO task_executions (task_id, project_id, duration_minutes)
VALUES ('44444444-0000-0000-0000-000000000003', '11111111-0000-0000-0000-000000000002', 15);
SELECT results_eq($$SELECT duration_minutes, estimated_minutes, variance_minutes, variance_percent
                    FROM task_executions WHERE task_id = '44444444-0000-0000-0000-000000000003'$$,
                  $$VALUES (15.00, 0, 15.00, NULL::numeric)$$,
                  'a given duration stays; a zero estimate has no percent');
SELECT throws_ok($$INSERT INTO task_executions (task_id, project_id, started_at, completed_at)
                   VALUES ('44444444-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001',
                           '2025-01-02', '2025-01-01')$$, '23514', NULL, 'completion before start is refused');
SELECT throws_ok($$INSERT INTO task_executions (task_id, project_id, status)
                   VALUES ('44444444-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 'done')$$,
                 '23514', NULL, 'task_executions.status is checked');

-- update_estimation_pattern: 10, 20, 30 -> mean 20, sample sd 10
SELECT is((update_estimation_pattern('11111111-0000-0000-0000-000000000001', 'feature', 'moderate', 10)).sample_count,
          1, 'the first sample creates the pattern');
SELECT results_eq($$SELECT avg_duration_minutes, std_deviation, confidence_score FROM estimation_patterns$$,
                  $$VALUES (10::float8, 0::float8, 0.2000)$$, 'one sample: mean = it, sd 0, confidence 1/5');
SELECT update_estimation_pattern('11111111-0000-0000-0000-000000000001', 'feature', 'moderate', 20);
SELECT results_eq($$SELECT pattern_name, sample_count, avg_duration_minutes, round(std_deviation::numeric, 6),
                           confidence_score
                      FROM update_estimation_pattern('11111111-0000-0000-0000-000000000001', 'feature', 'moderate', 30)$$,
                  $$VALUES ('learned', 3, 20::float8, 10.000000, 0.2857)$$,
                  'running mean 20, sample sd 10, confidence 3/7 * 1/(1 + 0.5)');
SELECT is((SELECT count(*) FROM estimation_patterns), 1::bigint, 'one row per (project, type, complexity)');
SELECT update_estimation_pattern(NULL, 'feature', 'moderate', 40);
SELECT update_estimation_pattern(NULL, 'feature', 'moderate', 50);
SELECT is((SELECT sample_count FROM estimation_patterns WHERE project_id IS NULL), 2,
          'a global pattern (NULL project) is one row too');
SELECT is((update_estimation_pattern(NULL, 'chore', NULL, 0)).complexity, NULL, 'complexity may be NULL');
SELECT throws_ok($$SELECT update_estimation_pattern(NULL, 'feature', 'moderate', NULL)$$, '22004', NULL,
                 'a NULL duration is refused');
SELECT throws_ok($$SELECT update_estimation_pattern(NULL, NULL, 'moderate', 5)$$, '22004', NULL,
                 'a NULL task type is refused');
SELECT throws_ok($$SELECT update_estimation_pattern(NULL, 'feature', 'moderate', -1)$$, '22023', NULL,
                 'a negative duration is refused');
SELECT throws_ok($$SELECT update_estimation_pattern(NULL, 'feature', 'gigantic', 5)$$, '23514', NULL,
                 'an unknown complexity is refused');

-- get_recommended_estimate and its fallbacks
SELECT results_eq($$SELECT recommended_minutes, sample_count, basis
                      FROM get_recommended_estimate('11111111-0000-0000-0000-000000000001', 'feature', 'moderate')$$,
                  $$VALUES (20, 3, 'project')$$, 'the project''s own pattern first');
SELECT results_eq($$SELECT recommended_minutes, sample_count, basis
                      FROM get_recommended_estimate('11111111-0000-0000-0000-000000000002', 'feature', 'moderate')$$,
                  $$VALUES (45, 2, 'global')$$, 'then the global pattern');
DELETE FROM estimation_patterns WHERE project_id IS NULL;
SELECT update_estimation_pattern('11111111-0000-0000-0000-000000000002', 'feature', 'complex', 100);
INSERT INTO projects (id, name) VALUES ('11111111-0000-0000-0000-000000000003', 'gamma');
SELECT results_eq($$SELECT recommended_minutes, sample_count, basis
                      FROM get_recommended_estimate('11111111-0000-0000-0000-000000000003', 'feature', 'moderate')$$,
                  $$VALUES (20, 3, 'pooled')$$, 'then every project''s patterns, pooled');
SELECT results_eq($$SELECT recommended_minutes, sample_count, basis
                      FROM get_recommended_estimate('11111111-0000-0000-0000-000000000001', 'feature', 'trivial')$$,
                  $$VALUES (20, 3, 'task_type')$$, 'then the project''s patterns of the type at any complexity');
SELECT results_eq($$SELECT recommended_minutes, confidence_score, sample_count, basis
                      FROM get_recommended_estimate('11111111-0000-0000-0000-000000000003', 'bugfix', 'complex')$$,
                  $$VALUES (120, 0::numeric, 0, 'default')$$, 'without history, the default by complexity');
SELECT results_eq($$SELECT recommended_minutes, basis FROM get_recommended_estimate(NULL, NULL, NULL)$$,
                  $$VALUES (60, 'default')$$, 'all-NULL input still gives one row: 60 minutes');

-- views
SELECT results_eq($$SELECT project_name, total_executions, avg_variance_percent, within_10_percent,
                           within_25_percent, over_estimated, under_estimated
                      FROM estimation_accuracy_by_project ORDER BY project_name$$,
                  $$VALUES ('alpha', 3::bigint, 2.22, 1::bigint, 1::bigint, 2::bigint, 1::bigint)$$,
                  'estimation_accuracy_by_project over executions with a variance percent');
SELECT is((SELECT stddev_variance_percent FROM estimation_accuracy_by_project), 42.99,
          'with its standard deviation');
SELECT results_eq($$SELECT task_title, execution_count, avg_duration, min_duration, max_duration,
                           avg_variance_percent, total_context_switches, total_interruptions
                      FROM task_performance_trends$$,
                  $$VALUES ('write parser', 2::bigint, 72.00, 54.00, 90.00, 20.00, 2::bigint, 4::bigint)$$,
                  'task_performance_trends: only tasks run more than once');

-- factors
INSERT INTO estimation_factors (id, factor_name, impact_type, average_impact)
VALUES ('66666666-0000-0000-0000-000000000001', 'unfamiliar codebase', 'multiplier', 1.5);
INSERT INTO task_execution_factors (task_execution_id, factor_id, factor_value)
SELECT id, '66666666-0000-0000-0000-000000000001', 1 FROM task_executions WHERE execution_number = 2;
SELECT throws_ok($$INSERT INTO task_execution_factors (task_execution_id, factor_id)
                   SELECT id, '66666666-0000-0000-0000-000000000001' FROM task_executions WHERE execution_number = 2$$,
                 '23505', NULL, 'a factor links to an execution once');
DELETE FROM tasks WHERE title = 'write parser';
SELECT is((SELECT count(*) FROM task_execution_factors), 0::bigint,
          'deleting a task deletes its executions and their factor links');

SELECT * FROM finish();
ROLLBACK;
