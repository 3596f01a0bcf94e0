-- 01_catalog.sql - every object ../shared/spec/supervisor-schema.md names
-- exists, read back from the catalog: tables and their fields, indexes (GIN
-- and HNSW where the spec says), foreign keys, unique keys, views with their
-- columns, functions with their arguments and result columns, the trigger.
-- Later migrations may add columns; the spec's must all be there.
BEGIN;
SELECT * FROM no_plan();

-- column names of a relation, in order
CREATE FUNCTION pg_temp.cols(rel text) RETURNS text[] LANGUAGE sql AS $$
    SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute
     WHERE attrelid = rel::regclass AND attnum > 0 AND NOT attisdropped
$$;
-- true when rel has an index whose key columns are exactly `keys` (in order)
CREATE FUNCTION pg_temp.index_on(rel text, keys text[], method text DEFAULT NULL)
RETURNS boolean LANGUAGE sql AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          JOIN pg_am am ON am.oid = c.relam
         WHERE i.indrelid = rel::regclass
           AND (method IS NULL OR am.amname = method)
           AND ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                      ORDER BY k.n) = keys)
$$;

SELECT has_extension(e) FROM unnest(ARRAY['uuid-ossp', 'pgcrypto', 'vector']) e;

-- tables and fields
CREATE TEMP TABLE spec_tables (tbl text, fields text) ON COMMIT DROP;
INSERT INTO spec_tables VALUES
 ('projects', 'id, name, path, description, status, metadata, created_at, updated_at'),
 ('epics', 'id, project_id, epic_id, title, description, status, priority, estimated_hours, actual_hours, complexity, dependencies, metadata, created_at, updated_at, completed_at'),
 ('issues', 'id, project_id, epic_id, issue_number, title, description, status, priority, labels, assignee, github_id, github_url, metadata, created_at, updated_at, closed_at'),
 ('tasks', 'id, project_id, epic_id, issue_id, title, description, status, order_index, estimated_minutes, actual_minutes, metadata, created_at, updated_at, completed_at'),
 ('service_status', 'id, project_id, service_name, status, last_check, response_time_ms, error_message, metadata, created_at, updated_at'),
 ('comments', 'id, issue_id, task_id, author, content, github_id, metadata, created_at, updated_at'),
 ('encryption_keys', 'id, key_name, encrypted_key, algorithm, is_active, rotation_count, last_rotated_at, created_at, updated_at'),
 ('secrets', 'id, project_id, key_name, encrypted_value, encryption_key_id, secret_type, description, metadata, last_accessed_at, access_count, expires_at, created_at, updated_at'),
 ('secret_access_log', 'id, secret_id, accessed_by, access_type, success, error_message, ip_address, metadata, accessed_at'),
 ('secret_rotation_schedule', 'id, secret_id, rotation_interval_days, last_rotation_at, next_rotation_at, auto_rotate, notification_days, metadata, created_at, updated_at'),
 ('secret_templates', 'id, template_name, secret_type, description, validation_pattern, rotation_interval_days, metadata, created_at, updated_at'),
 ('port_ranges', 'id, range_name, start_port, end_port, description, is_active, metadata, created_at, updated_at'),
 ('port_allocations', 'id, project_id, port_range_id, port_number, service_name, service_type, status, process_id, hostname, protocol, metadata, allocated_at, last_used_at, released_at, created_at, updated_at'),
 ('port_health_checks', 'id, port_allocation_id, check_type, status, response_time_ms, error_message, metadata, checked_at'),
 ('port_reservations', 'id, project_id, port_range_id, port_number, service_name, reserved_by, expires_at, metadata, created_at, updated_at'),
 ('task_executions', 'id, task_id, project_id, execution_number, started_at, completed_at, duration_minutes, estimated_minutes, variance_minutes, variance_percent, status, complexity, context_switches, interruptions, blockers, notes, metadata, created_at, updated_at'),
 ('estimation_patterns', 'id, project_id, pattern_name, task_type, complexity, avg_duration_minutes, std_deviation, sample_count, confidence_score, factors, metadata, created_at, updated_at'),
 ('time_tracking_sessions', 'id, task_execution_id, session_number, started_at, ended_at, duration_minutes, activity_type, productivity_rating, notes, metadata, created_at, updated_at'),
 ('estimation_factors', 'id, factor_name, description, impact_type, average_impact, metadata, created_at, updated_at'),
 ('task_execution_factors', 'id, task_execution_id, factor_id, factor_value, notes, created_at'),
 ('knowledge_sources', 'id, project_id, source_type, source_id, title, url, file_path, author, metadata, created_at, updated_at, indexed_at'),
 ('knowledge_chunks', 'id, source_id, project_id, chunk_index, content, content_hash, embedding, token_count, metadata, created_at, updated_at'),
 ('learnings', 'id, project_id, title, content, learning_type, category, confidence_score, impact_level, source_chunks, tags, embedding, verified, verified_by, verified_at, usage_count, last_used_at, metadata, created_at, updated_at'),
 ('learning_applications', 'id, learning_id, applied_to_type, applied_to_id, context, outcome, feedback, created_at'),
 ('search_queries', 'id, project_id, query_text, query_embedding, search_type, result_count, top_result_id, top_result_similarity, filters, user_feedback, metadata, created_at');

SELECT has_table(tbl) FROM spec_tables ORDER BY tbl;
SELECT is(ARRAY(SELECT unnest(string_to_array(fields, ', ')) EXCEPT SELECT unnest(pg_temp.cols(tbl))),
          '{}'::text[], tbl || ' has every field the spec lists')
  FROM spec_tables ORDER BY tbl;

-- the types the issue asks for
SELECT col_type_is(tbl, 'id', 'uuid') FROM spec_tables ORDER BY tbl;
SELECT col_default_is(tbl, 'id', 'uuid_generate_v4()') FROM spec_tables ORDER BY tbl;
SELECT col_type_is(tbl, 'metadata', 'jsonb') FROM spec_tables
 WHERE fields LIKE '%metadata%' ORDER BY tbl;
SELECT col_default_is(tbl, 'metadata', '{}') FROM spec_tables
 WHERE fields LIKE '%metadata%' ORDER BY tbl;
SELECT col_type_is(tbl, c, 'timestamp with time zone')
  FROM spec_tables, unnest(string_to_array(fields, ', ')) c
 WHERE c LIKE '%\_at' OR c = 'last_check' ORDER BY tbl, c;
SELECT col_type_is(t, c, 'text[]') FROM (VALUES ('issues', 'labels'), ('learnings', 'tags')) v(t, c);
SELECT col_type_is(t, c, 'vector(1536)')
  FROM (VALUES ('knowledge_chunks', 'embedding'), ('learnings', 'embedding'),
               ('search_queries', 'query_embedding')) v(t, c);
-- updated_at is kept current by a trigger on every table that has one
SELECT ok(EXISTS (SELECT 1 FROM pg_trigger g JOIN pg_proc p ON p.oid = g.tgfoid
                   WHERE g.tgrelid = tbl::regclass AND p.proname = 'set_updated_at'),
          tbl || ' has an updated_at trigger')
  FROM spec_tables WHERE fields LIKE '%updated_at%' ORDER BY tbl;

-- indexes: (table, key columns, access method or NULL)
CREATE TEMP TABLE spec_indexes (tbl text, keys text[], method text) ON COMMIT DROP;
INSERT INTO spec_indexes VALUES
 ('projects', '{name}', NULL), ('projects', '{status}', NULL),
 ('epics', '{project_id}', NULL), ('epics', '{epic_id}', NULL), ('epics', '{status}', NULL),
 ('epics', '{priority}', NULL),
 ('issues', '{project_id}', NULL), ('issues', '{epic_id}', NULL), ('issues', '{status}', NULL),
 ('issues', '{priority}', NULL), ('issues', '{github_id}', NULL), ('issues', '{labels}', 'gin'),
 ('tasks', '{project_id}', NULL), ('tasks', '{epic_id}', NULL), ('tasks', '{issue_id}', NULL),
 ('tasks', '{status}', NULL), ('tasks', '{order_index}', NULL),
 ('service_status', '{project_id}', NULL), ('service_status', '{status}', NULL),
 ('service_status', '{last_check}', NULL),
 ('comments', '{issue_id}', NULL), ('comments', '{task_id}', NULL), ('comments', '{created_at}', NULL),
 ('encryption_keys', '{is_active}', NULL),
 ('secrets', '{project_id}', NULL), ('secrets', '{key_name}', NULL),
 ('secrets', '{encryption_key_id}', NULL), ('secrets', '{secret_type}', NULL),
 ('secrets', '{expires_at}', NULL),
 ('secret_access_log', '{secret_id}', NULL), ('secret_access_log', '{accessed_by}', NULL),
 ('secret_access_log', '{accessed_at}', NULL), ('secret_access_log', '{success}', NULL),
 ('secret_rotation_schedule', '{next_rotation_at}', NULL),
 ('secret_rotation_schedule', '{auto_rotate}', NULL),
 ('port_ranges', '{is_active}', NULL), ('port_ranges', '{start_port,end_port}', NULL),
 ('port_allocations', '{project_id}', NULL), ('port_allocations', '{port_number}', NULL),
 ('port_allocations', '{service_name}', NULL), ('port_allocations', '{status}', NULL),
 ('port_allocations', '{hostname}', NULL),
 ('port_health_checks', '{port_allocation_id}', NULL), ('port_health_checks', '{status}', NULL),
 ('port_health_checks', '{checked_at}', NULL),
 ('port_reservations', '{project_id}', NULL), ('port_reservations', '{port_number}', NULL),
 ('port_reservations', '{expires_at}', NULL),
 ('task_executions', '{task_id}', NULL), ('task_executions', '{project_id}', NULL),
 ('task_executions', '{status}', NULL), ('task_executions', '{started_at}', NULL),
 ('task_executions', '{complexity}', NULL),
 ('estimation_patterns', '{project_id}', NULL), ('estimation_patterns', '{task_type}', NULL),
 ('estimation_patterns', '{complexity}', NULL), ('estimation_patterns', '{confidence_score}', NULL),
 ('time_tracking_sessions', '{task_execution_id}', NULL),
 ('time_tracking_sessions', '{activity_type}', NULL), ('time_tracking_sessions', '{started_at}', NULL),
 ('task_execution_factors', '{task_execution_id}', NULL),
 ('task_execution_factors', '{factor_id}', NULL),
 ('knowledge_sources', '{project_id}', NULL), ('knowledge_sources', '{source_type}', NULL),
 ('knowledge_sources', '{source_id}', NULL),
 ('knowledge_chunks', '{source_id}', NULL), ('knowledge_chunks', '{project_id}', NULL),
 ('knowledge_chunks', '{content_hash}', NULL), ('knowledge_chunks', '{embedding}', 'hnsw'),
 ('learnings', '{project_id}', NULL), ('learnings', '{learning_type}', NULL),
 ('learnings', '{category}', NULL), ('learnings', '{confidence_score}', NULL),
 ('learnings', '{impact_level}', NULL), ('learnings', '{tags}', 'gin'),
 ('learnings', '{verified}', NULL), ('learnings', '{embedding}', 'hnsw'),
 ('learning_applications', '{learning_id}', NULL), ('learning_applications', '{outcome}', NULL),
 ('search_queries', '{project_id}', NULL), ('search_queries', '{created_at}', NULL),
 ('search_queries', '{user_feedback}', NULL);
SELECT ok(pg_temp.index_on(tbl, keys, method),
          format('%s has a %s index on (%s)', tbl, coalesce(method, 'an'), array_to_string(keys, ', ')))
  FROM spec_indexes;
-- the HNSW indexes use cosine distance
SELECT ok(EXISTS (SELECT 1 FROM pg_index i JOIN pg_opclass o ON o.oid = i.indclass[0]
                   WHERE i.indrelid = t::regclass AND o.opcname = 'vector_cosine_ops'),
          t || ' embedding index uses vector_cosine_ops')
  FROM unnest(ARRAY['knowledge_chunks', 'learnings']) t;

-- foreign keys
SELECT fk_ok(ft, fc, pt, 'id') FROM (VALUES
 ('epics', 'project_id', 'projects'),
 ('issues', 'project_id', 'projects'), ('issues', 'epic_id', 'epics'),
 ('tasks', 'project_id', 'projects'), ('tasks', 'epic_id', 'epics'), ('tasks', 'issue_id', 'issues'),
 ('service_status', 'project_id', 'projects'),
 ('comments', 'issue_id', 'issues'), ('comments', 'task_id', 'tasks'),
 ('secrets', 'project_id', 'projects'), ('secrets', 'encryption_key_id', 'encryption_keys'),
 ('secret_access_log', 'secret_id', 'secrets'),
 ('secret_rotation_schedule', 'secret_id', 'secrets'),
 ('port_allocations', 'project_id', 'projects'), ('port_allocations', 'port_range_id', 'port_ranges'),
 ('port_health_checks', 'port_allocation_id', 'port_allocations'),
 ('port_reservations', 'project_id', 'projects'), ('port_reservations', 'port_range_id', 'port_ranges'),
 ('task_executions', 'task_id', 'tasks'), ('task_executions', 'project_id', 'projects'),
 ('estimation_patterns', 'project_id', 'projects'),
 ('time_tracking_sessions', 'task_execution_id', 'task_executions'),
 ('task_execution_factors', 'task_execution_id', 'task_executions'),
 ('task_execution_factors', 'factor_id', 'estimation_factors'),
 ('knowledge_sources', 'project_id', 'projects'),
 ('knowledge_chunks', 'source_id', 'knowledge_sources'), ('knowledge_chunks', 'project_id', 'projects'),
 ('learnings', 'project_id', 'projects'),
 ('learning_applications', 'learning_id', 'learnings'),
 ('search_queries', 'project_id', 'projects'), ('search_queries', 'top_result_id', 'knowledge_chunks')
) v(ft, fc, pt);
-- every foreign key chose its ON DELETE (none is left at NO ACTION)
SELECT is(ARRAY(SELECT conrelid::regclass::text || '.' || conname FROM pg_constraint
                 WHERE contype = 'f' AND confdeltype = 'a'
                   AND conrelid::regclass::text IN (SELECT tbl FROM spec_tables)),
          '{}'::text[], 'every foreign key has a deliberate ON DELETE');

-- unique keys
SELECT col_is_unique(t, c) FROM (VALUES
 ('port_allocations', '{port_number,hostname,protocol}'::name[]),
 ('estimation_patterns', '{project_id,pattern_name,task_type,complexity}'::name[]),
 ('task_execution_factors', '{task_execution_id,factor_id}'::name[])) v(t, c);

-- views and their columns, in order
SELECT has_view(v) FROM unnest(ARRAY['secrets_expiring_soon', 'secrets_needing_rotation',
    'port_range_utilization', 'active_port_allocations', 'estimation_accuracy_by_project',
    'task_performance_trends', 'learning_effectiveness', 'knowledge_coverage_by_project',
    'popular_search_queries']) v;
SELECT is(pg_temp.cols(v), string_to_array(c, ', '), v || ' columns') FROM (VALUES
 ('secrets_expiring_soon', 'id, project_id, key_name, secret_type, expires_at, time_until_expiry, project_name'),
 ('secrets_needing_rotation', 'id, project_id, key_name, secret_type, next_rotation_at, time_until_rotation, auto_rotate, project_name'),
 ('port_range_utilization', 'range_id, range_name, start_port, end_port, total_ports, allocated_ports, released_ports, reserved_ports, utilization_percent'),
 ('active_port_allocations', 'id, port_number, service_name, service_type, status, hostname, protocol, allocated_at, last_used_at, project_name, range_name'),
 ('estimation_accuracy_by_project', 'project_id, project_name, total_executions, avg_variance_percent, stddev_variance_percent, within_10_percent, within_25_percent, over_estimated, under_estimated'),
 ('task_performance_trends', 'task_id, task_title, project_id, execution_count, avg_duration, min_duration, max_duration, avg_variance_percent, total_context_switches, total_interruptions'),
 ('learning_effectiveness', 'id, title, learning_type, category, confidence_score, usage_count, application_count, successful_applications, failed_applications, success_rate_percent'),
 ('knowledge_coverage_by_project', 'project_id, project_name, source_count, chunk_count, learning_count, total_tokens, source_type_count, source_types'),
 ('popular_search_queries', 'project_id, query_text, query_count, avg_results, helpful_count, not_helpful_count, last_queried')
) v(v, c);

-- functions: name, the spec's arguments (by meaning, as named here), result columns
SELECT has_function(f, a) FROM (VALUES
 ('find_available_port', '{uuid,text,text}'::name[]),
 ('allocate_port', '{uuid,uuid,text,text,text,text}'),
 ('release_port', '{integer,text}'),
 ('cleanup_expired_reservations', '{}'),
 ('calculate_execution_metrics', '{}'),
 ('update_estimation_pattern', '{uuid,text,text,numeric}'),
 ('get_recommended_estimate', '{uuid,text,text}'),
 ('search_knowledge_chunks', '{vector,uuid,integer,"double precision"}'),
 ('search_learnings', '{vector,uuid,text,integer,"double precision"}'),
 ('find_similar_learnings', '{vector,uuid,"double precision",integer}'),
 ('increment_learning_usage', '{uuid}'),
 ('store_secret', '{uuid,text,text,text,text,"timestamp with time zone",text}'),
 ('get_secret', '{uuid,text,text,inet}')) v(f, a);
SELECT is(ARRAY(SELECT n FROM pg_proc p, unnest(p.proargnames, p.proargmodes::text[]) u(n, m)
                 WHERE p.proname = f AND m = 't'),
          r, f || ' result columns') FROM (VALUES
 ('search_knowledge_chunks', '{chunk_id,source_id,content,similarity,metadata}'::text[]),
 ('search_learnings', '{learning_id,title,content,learning_type,category,similarity,confidence_score}'),
 ('find_similar_learnings', '{learning_id,title,similarity}')) v(f, r);
-- the spec's call shapes work: fewer arguments fall back to the defaults
SELECT ok(pronargs - pronargdefaults <= n, f || ' callable with the spec''s ' || n || ' arguments')
  FROM pg_proc JOIN (VALUES ('find_available_port', 3), ('allocate_port', 6), ('release_port', 2),
                            ('search_knowledge_chunks', 4), ('search_learnings', 5),
                            ('find_similar_learnings', 3)) v(f, n) ON proname = f;
SELECT function_returns('find_available_port', 'integer');
SELECT function_returns('allocate_port', 'integer');
SELECT function_returns('calculate_execution_metrics', 'trigger');

-- the trigger
SELECT has_trigger('task_executions', 'trg_task_executions_metrics');
SELECT trigger_is('task_executions', 'trg_task_executions_metrics', 'calculate_execution_metrics');

SELECT * FROM finish();
ROLLBACK;
