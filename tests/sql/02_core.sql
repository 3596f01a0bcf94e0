-- 02_core.sql - migration 001 on fixture data: updated_at triggers (and the
-- bookkeeping columns they ignore), CHECK constraints, ON DELETE behaviour.
BEGIN;
SELECT * FROM no_plan();

INSERT INTO projects (id, name, created_at, updated_at)
VALUES ('11111111-0000-0000-0000-000000000001', 'alpha', '2000-01-01', '2000-01-01');
INSERT INTO epics (id, project_id, epic_id, title)
VALUES ('22222222-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 'EPIC-1', 'e');
INSERT INTO issues (id, project_id, epic_id, issue_number, title, labels)
VALUES ('33333333-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001',
        '22222222-0000-0000-0000-000000000001', 1, 'i', '{bug,db}');
INSERT INTO tasks (id, project_id, epic_id, issue_id, title)
VALUES ('44444444-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001',
        '22222222-0000-0000-0000-000000000001', '33333333-0000-0000-0000-000000000001', 't');
INSERT INTO comments (issue_id, author, content)
VALUES ('33333333-0000-0000-0000-000000000001', 'sam', 'on the issue');
INSERT INTO comments (task_id, author, content)
VALUES ('44444444-0000-0000-0000-000000000001', 'sam', 'on the task');

-- defaults
SELECT is((SELECT status || '/' || metadata::text FROM projects WHERE name = 'alpha'), 'active/{}',
          'projects: status and metadata defaults');
SELECT is((SELECT status || '/' || priority FROM issues WHERE issue_number = 1), 'open/medium',
          'issues: status and priority defaults');
SELECT ok((SELECT '{bug}' <@ labels FROM issues WHERE issue_number = 1), 'issues: labels is an array');

-- updated_at
UPDATE projects SET description = 'changed' WHERE name = 'alpha';
SELECT ok((SELECT updated_at > '2000-01-02' FROM projects WHERE name = 'alpha'),
          'updated_at moves on an update');
SELECT is((SELECT created_at FROM projects WHERE name = 'alpha'), '2000-01-01'::timestamptz,
          'created_at stays');
UPDATE projects SET updated_at = '2000-01-01' WHERE name = 'alpha';
SELECT ok((SELECT updated_at > '2000-01-02' FROM projects WHERE name = 'alpha'),
          'updated_at cannot be set back by hand');

-- CHECK constraints
SELECT throws_ok($$INSERT INTO projects (name, status) VALUES ('x', 'bogus')$$, '23514', NULL,
                 'projects.status is checked');
SELECT throws_ok($$INSERT INTO projects (name) VALUES ('')$$, '23514', NULL, 'projects.name is not empty');
SELECT throws_ok($$INSERT INTO epics (project_id, epic_id, title, priority)
                   VALUES ('11111111-0000-0000-0000-000000000001', 'E', 't', 'urgent')$$,
                 '23514', NULL, 'epics.priority is checked');
SELECT throws_ok($$INSERT INTO epics (project_id, epic_id, title, complexity)
                   VALUES ('11111111-0000-0000-0000-000000000001', 'E', 't', 'huge')$$,
                 '23514', NULL, 'epics.complexity is checked');
SELECT throws_ok($$INSERT INTO issues (project_id, title, status)
                   VALUES ('11111111-0000-0000-0000-000000000001', 't', 'done')$$,
                 '23514', NULL, 'issues.status is checked');
SELECT throws_ok($$INSERT INTO tasks (project_id, title, estimated_minutes)
                   VALUES ('11111111-0000-0000-0000-000000000001', 't', -1)$$,
                 '23514', NULL, 'tasks.estimated_minutes is not negative');
SELECT throws_ok($$INSERT INTO service_status (project_id, service_name, status)
                   VALUES ('11111111-0000-0000-0000-000000000001', 's', 'fine')$$,
                 '23514', NULL, 'service_status.status is checked');
SELECT throws_ok($$INSERT INTO comments (author, content) VALUES ('a', 'c')$$,
                 '23514', NULL, 'a comment needs an issue or a task');
SELECT throws_ok($$INSERT INTO epics (project_id, epic_id, title)
                   VALUES ('99999999-0000-0000-0000-000000000000', 'E', 't')$$,
                 '23503', NULL, 'epics.project_id must exist');

-- ON DELETE: an epic's issues and tasks stay, unlinked
DELETE FROM epics WHERE epic_id = 'EPIC-1';
SELECT is((SELECT epic_id FROM issues WHERE issue_number = 1), NULL, 'deleting an epic unlinks its issues');
SELECT is((SELECT epic_id FROM tasks WHERE title = 't'), NULL, 'deleting an epic unlinks its tasks');
-- an issue's tasks stay, its comments go
DELETE FROM issues WHERE issue_number = 1;
SELECT is((SELECT issue_id FROM tasks WHERE title = 't'), NULL, 'deleting an issue unlinks its tasks');
SELECT is((SELECT count(*) FROM comments WHERE content = 'on the issue'), 0::bigint,
          'deleting an issue deletes its comments');
-- a project takes everything with it
INSERT INTO service_status (project_id, service_name) SELECT id, 'api' FROM projects WHERE name = 'alpha';
DELETE FROM projects WHERE name = 'alpha';
SELECT is((SELECT count(*) FROM tasks) + (SELECT count(*) FROM comments)
          + (SELECT count(*) FROM service_status), 0::bigint,
          'deleting a project deletes its tasks, their comments and its service status');

SELECT * FROM finish();
ROLLBACK;
