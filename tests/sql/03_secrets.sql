-- 03_secrets.sql - migration 002: storing and reading secrets under the
-- master passphrase, the audit log on every read (failures included),
-- access counters, key rotation, templates' validation, the two views.
BEGIN;
SELECT * FROM no_plan();
SET LOCAL client_min_messages = error;   -- failed reads warn; the tests read the log instead

INSERT INTO projects (id, name) VALUES ('11111111-0000-0000-0000-000000000001', 'alpha');
SELECT set_config('kbpipe.master_key', '', true);

-- no master key, no key
SELECT throws_ok($$SELECT create_encryption_key('k1')$$, '28000', 'kbpipe.master_key is not set',
                 'creating a key needs the master passphrase');
SELECT set_config('kbpipe.master_key', 'master one', true);
SELECT throws_ok($$SELECT store_secret(NULL, 'X', 'v')$$, 'P0002', 'there is no active encryption key',
                 'storing needs an active key');
SELECT isnt(create_encryption_key('k1'), NULL, 'create_encryption_key returns the key id');
SELECT is((SELECT count(*) FROM encryption_keys WHERE is_active), 1::bigint, 'one active key');
SELECT throws_ok($$INSERT INTO encryption_keys (key_name, encrypted_key, is_active) VALUES ('k2', '\x00', true)$$,
                 '23505', NULL, 'a second active key is refused');

-- store and read
SELECT isnt(store_secret('11111111-0000-0000-0000-000000000001', 'API_TOKEN', 'sk-abc-123', 'api_key',
                         'the api token', NULL, 'tester'), NULL, 'store_secret returns the secret id');
SELECT is((SELECT position(convert_to('sk-abc-123', 'UTF8') IN encrypted_value) FROM secrets), 0,
          'the value is not stored in clear');
SELECT is(get_secret('11111111-0000-0000-0000-000000000001', 'API_TOKEN', 'reader'), 'sk-abc-123',
          'get_secret decrypts the value');
SELECT is((SELECT access_count FROM secrets WHERE key_name = 'API_TOKEN'), 1, 'a read counts');
SELECT isnt((SELECT last_accessed_at FROM secrets WHERE key_name = 'API_TOKEN'), NULL,
            'a read sets last_accessed_at');
SELECT results_eq($$SELECT access_type, success, accessed_by FROM secret_access_log ORDER BY accessed_at, access_type DESC$$,
                  $$VALUES ('write', true, 'tester'), ('read', true, 'reader')$$,
                  'the write and the read are logged');

-- replacing keeps the id and logs an update
SELECT is(store_secret('11111111-0000-0000-0000-000000000001', 'API_TOKEN', 'sk-new', 'api_key'),
          (SELECT id FROM secrets WHERE key_name = 'API_TOKEN'), 'storing again replaces the value');
SELECT is((SELECT count(*) FROM secrets), 1::bigint, 'still one secret');
SELECT is(get_secret('11111111-0000-0000-0000-000000000001', 'API_TOKEN'), 'sk-new', 'the new value reads back');
SELECT is((SELECT count(*) FROM secret_access_log WHERE access_type = 'update'), 1::bigint, 'the update is logged');

-- failed reads: NULL, a warning, and a failure row (nothing raised, so the row stays)
SELECT is(get_secret('11111111-0000-0000-0000-000000000001', 'NOPE', 'reader'), NULL, 'an unknown name reads NULL');
SELECT results_eq($$SELECT secret_id IS NULL, success, error_message, metadata->>'key_name' FROM secret_access_log
                    WHERE NOT success$$,
                  $$VALUES (true, false, 'no secret named NOPE', 'NOPE')$$, 'the failed read is logged');
SELECT is(get_secret(NULL, 'API_TOKEN'), NULL, 'a project secret is not a shared one');
SELECT set_config('kbpipe.master_key', 'wrong', true);
SELECT is(get_secret('11111111-0000-0000-0000-000000000001', 'API_TOKEN'), NULL, 'a wrong master key reads NULL');
SELECT is((SELECT error_message FROM secret_access_log WHERE NOT success AND secret_id IS NOT NULL),
          'Wrong key or corrupt data', 'a wrong master key is logged as a failure');
SELECT set_config('kbpipe.master_key', '', true);
SELECT is(get_secret('11111111-0000-0000-0000-000000000001', 'API_TOKEN'), NULL, 'no master key reads NULL');
SELECT is((SELECT count(*) FROM secret_access_log WHERE NOT success), 4::bigint, 'every failed read is logged');
SELECT is((SELECT access_count FROM secrets WHERE key_name = 'API_TOKEN'), 2, 'failed reads do not count as accesses');
SELECT is((SELECT count(*) FROM secret_access_log WHERE access_type = 'read'), 6::bigint, 'every read is logged');
SELECT set_config('kbpipe.master_key', 'master one', true);

-- expiry
SELECT lives_ok($$SELECT store_secret(NULL, 'OLD', 'v', 'other', NULL, now() - interval '1 day')$$, 'store expired');
SELECT is(get_secret(NULL, 'OLD'), NULL, 'an expired secret reads NULL');
SELECT ok(EXISTS (SELECT 1 FROM secret_access_log
                   WHERE NOT success AND error_message LIKE 'secret OLD expired at %'), 'the expiry is logged');

-- reading does not count as an update
-- the trigger would set it to now(): go around it
ALTER TABLE secrets DISABLE TRIGGER trg_secrets_updated_at;
UPDATE secrets SET updated_at = '2000-01-01';
ALTER TABLE secrets ENABLE TRIGGER trg_secrets_updated_at;
SELECT is(get_secret('11111111-0000-0000-0000-000000000001', 'API_TOKEN'), 'sk-new', 'read again');
SELECT is((SELECT updated_at FROM secrets WHERE key_name = 'API_TOKEN'), '2000-01-01'::timestamptz,
          'a read leaves updated_at alone');
UPDATE secrets SET description = 'edited' WHERE key_name = 'API_TOKEN';
SELECT ok((SELECT updated_at > '2000-01-02' FROM secrets WHERE key_name = 'API_TOKEN'), 'an edit moves updated_at');

-- templates validate values of their type
INSERT INTO secret_templates (template_name, secret_type, validation_pattern)
VALUES ('openai', 'openai_key', '^sk-[A-Za-z0-9-]{8,}$');
SELECT throws_ok($$SELECT store_secret(NULL, 'OPENAI', 'not-a-key', 'openai_key')$$, '22023', NULL,
                 'a value not matching its template is refused');
SELECT lives_ok($$SELECT store_secret(NULL, 'OPENAI', 'sk-abcdefgh12', 'openai_key')$$,
                'a matching value is stored');
SELECT throws_ok($$SELECT store_secret(NULL, NULL, 'v')$$, '22004', NULL, 'a NULL name is refused');
SELECT throws_ok($$SELECT store_secret(NULL, 'N', NULL)$$, '22004', NULL, 'a NULL value is refused');

-- rotation re-encrypts everything under a new key
SELECT is(rotate_encryption_key('k2'), (SELECT count(*)::integer FROM secrets), 'rotation re-encrypts every secret');
SELECT is((SELECT key_name || '/' || rotation_count FROM encryption_keys WHERE is_active), 'k2/1',
          'the new key is active and counts the rotation');
SELECT is((SELECT count(DISTINCT encryption_key_id) FROM secrets), 1::bigint, 'all secrets use the new key');
SELECT is(get_secret('11111111-0000-0000-0000-000000000001', 'API_TOKEN'), 'sk-new', 'secrets read after rotation');
SELECT throws_ok($$DELETE FROM encryption_keys WHERE is_active$$, '23503', NULL,
                 'a key still in use cannot be deleted');

-- views
INSERT INTO projects (id, name) VALUES ('11111111-0000-0000-0000-000000000002', 'beta');
SELECT store_secret('11111111-0000-0000-0000-000000000002', 'SOON', 'v', 'other', NULL, now() + interval '10 days');
SELECT store_secret('11111111-0000-0000-0000-000000000002', 'LATER', 'v', 'other', NULL, now() + interval '40 days');
SELECT results_eq($$SELECT key_name, project_name, time_until_expiry FROM secrets_expiring_soon$$,
                  $$VALUES ('SOON', 'beta', interval '10 days')$$,
                  'secrets_expiring_soon: within 30 days, not expired, not later');
INSERT INTO secret_rotation_schedule (secret_id, rotation_interval_days, next_rotation_at, auto_rotate)
SELECT id, 30, now() + CASE key_name WHEN 'SOON' THEN interval '3 days' WHEN 'LATER' THEN interval '10 days'
                                     ELSE interval '-1 day' END, key_name = 'SOON'
  FROM secrets WHERE key_name IN ('SOON', 'LATER', 'API_TOKEN');
SELECT results_eq($$SELECT key_name, project_name, auto_rotate, time_until_rotation FROM secrets_needing_rotation$$,
                  $$VALUES ('API_TOKEN', 'alpha', false, interval '-1 day'), ('SOON', 'beta', true, interval '3 days')$$,
                  'secrets_needing_rotation: overdue and within 7 days, soonest first');

-- the audit trail outlives the secret
DELETE FROM secrets WHERE key_name = 'API_TOKEN';
SELECT ok((SELECT count(*) FROM secret_access_log WHERE metadata->>'key_name' = 'API_TOKEN') > 0,
          'log rows survive the secret');
SELECT is((SELECT count(*) FROM secret_rotation_schedule s LEFT JOIN secrets x ON x.id = s.secret_id
            WHERE x.id IS NULL), 0::bigint, 'its rotation schedule goes with it');

SELECT * FROM finish();
ROLLBACK;
