-- 08_secret_audit.sql - migration 007: a plain role reads a secret only
-- through get_secret, which logs the read; a direct SELECT is denied even
-- after a schema-wide GRANT SELECT once secret_revoke_direct_access() ran;
-- a caller's search_path cannot redirect the functions; the key functions
-- are the owner's only.  The role works through SET ROLE; what it saw is
-- carried out of its turn in custom settings (kbt.*), since pgTAP's own
-- temporary tables belong to the test's login role.
BEGIN;
SELECT * FROM no_plan();
SET LOCAL client_min_messages = error;

CREATE ROLE kbt_secret_reader NOLOGIN;
CREATE ROLE kbt_secret_column NOLOGIN;
INSERT INTO projects (id, name) VALUES ('22222222-0000-0000-0000-000000000002', 'audit');
SELECT set_config('kbpipe.master_key', 'audit master', true);
SELECT create_encryption_key('k1');
SELECT store_secret('22222222-0000-0000-0000-000000000002', 'DB_PASS', 'pw-audit-1');

-- the functions run as their owner with a fixed search_path
SELECT ok((SELECT bool_and(prosecdef) FROM pg_proc
            WHERE proname IN ('get_secret', 'store_secret', 'create_encryption_key',
                              'rotate_encryption_key', 'rotate_master_key')),
          'the secret functions are SECURITY DEFINER');
SELECT ok((SELECT bool_and(EXISTS (SELECT 1 FROM unnest(proconfig) c
                                   WHERE c LIKE 'search_path=pg_catalog, %pg_temp'))
             FROM pg_proc WHERE proname IN ('get_secret', 'store_secret', 'rotate_master_key')),
          'each has search_path pg_catalog, ..., pg_temp');
SELECT ok(has_function_privilege('kbt_secret_reader', 'get_secret(uuid, text, text, inet)', 'EXECUTE'),
          'a plain role may call get_secret');
SELECT ok(NOT has_function_privilege('kbt_secret_reader', 'secret_data_key(uuid)', 'EXECUTE'),
          'but not secret_data_key');
SELECT ok(NOT has_function_privilege('kbt_secret_reader', 'rotate_encryption_key(text, text)', 'EXECUTE'),
          'nor rotate_encryption_key');
SELECT ok(NOT has_function_privilege('kbt_secret_reader', 'rotate_master_key(text, text)', 'EXECUTE'),
          'nor rotate_master_key');

-- a read-only role made the usual way, then locked down again
GRANT SELECT ON ALL TABLES IN SCHEMA public TO kbt_secret_reader;
GRANT SELECT (encrypted_value) ON secrets TO kbt_secret_column;
SELECT ok(has_table_privilege('kbt_secret_reader', 'secrets', 'SELECT'),
          'GRANT SELECT ON ALL TABLES reaches secrets');
SELECT cmp_ok(secret_revoke_direct_access(), '>=', 3, 'secret_revoke_direct_access revokes them');
SELECT ok(NOT has_table_privilege('kbt_secret_reader', 'secrets', 'SELECT'), 'secrets: SELECT revoked');
SELECT ok(NOT has_table_privilege('kbt_secret_reader', 'encryption_keys', 'SELECT'),
          'encryption_keys: SELECT revoked');
SELECT ok(NOT has_column_privilege('kbt_secret_column', 'secrets', 'encrypted_value', 'SELECT'),
          'a column grant is revoked too');
SELECT ok(has_table_privilege('kbt_secret_reader', 'projects', 'SELECT'),
          'other tables keep their grants');

-- the role's turn
SELECT set_config('kbt.log_before', (SELECT count(*)::text FROM secret_access_log), true);
SET LOCAL ROLE kbt_secret_reader;
DO $$
BEGIN
    PERFORM set_config('kbt.got', get_secret('22222222-0000-0000-0000-000000000002', 'DB_PASS'), true);
    PERFORM set_config('kbt.got2', get_secret('22222222-0000-0000-0000-000000000002', 'DB_PASS'), true);
    BEGIN
        PERFORM pgp_sym_decrypt(encrypted_value, 'x') FROM secrets;
        PERFORM set_config('kbt.direct', 'allowed', true);
    EXCEPTION WHEN insufficient_privilege THEN
        PERFORM set_config('kbt.direct', SQLSTATE, true);
    END;
    BEGIN
        PERFORM encrypted_key FROM encryption_keys;
        PERFORM set_config('kbt.keys', 'allowed', true);
    EXCEPTION WHEN insufficient_privilege THEN
        PERFORM set_config('kbt.keys', SQLSTATE, true);
    END;
    PERFORM set_config('kbt.list', (SELECT string_agg(key_name || ':' || access_count, ',')
                                      FROM secret_list('22222222-0000-0000-0000-000000000002')), true);
    BEGIN
        DELETE FROM secret_access_log;
        PERFORM set_config('kbt.erase', 'allowed', true);
    EXCEPTION WHEN insufficient_privilege THEN
        PERFORM set_config('kbt.erase', SQLSTATE, true);
    END;
END;
$$;
-- a fake "secrets" earlier on the caller's search_path changes nothing
CREATE TEMP TABLE secrets (id uuid, project_id uuid, key_name text, encrypted_value bytea,
                           encryption_key_id uuid, expires_at timestamptz);
SET LOCAL search_path = pg_temp, public;
DO $$
BEGIN
    PERFORM set_config('kbt.shadow', coalesce(get_secret('22222222-0000-0000-0000-000000000002', 'DB_PASS'), 'NULL'), true);
END;
$$;
RESET search_path;
DROP TABLE pg_temp.secrets;
RESET ROLE;

SELECT is(current_setting('kbt.got'), 'pw-audit-1', 'the plain role reads the secret through get_secret');
SELECT is(current_setting('kbt.direct'), '42501', 'a direct SELECT on secrets is denied');
SELECT is(current_setting('kbt.keys'), '42501', 'a direct SELECT on encryption_keys is denied');
SELECT is(current_setting('kbt.erase'), '42501', 'the role cannot erase the audit log');
SELECT is(current_setting('kbt.list'), 'DB_PASS:2', 'secret_list shows the role names and counts, no value');
SELECT is(current_setting('kbt.shadow'), 'pw-audit-1', 'a temp table named secrets is not read');
SELECT is((SELECT count(*) FROM secret_access_log)::int - current_setting('kbt.log_before')::int, 3,
          'each of the three reads left a log row');
SELECT results_eq($$SELECT accessed_by, access_type, success FROM secret_access_log
                     WHERE access_type = 'read' ORDER BY accessed_at, id$$,
                  $$VALUES ('kbt_secret_reader'::text, 'read'::text, true),
                           ('kbt_secret_reader', 'read', true), ('kbt_secret_reader', 'read', true)$$,
                  'the log names the calling role');

-- a wrong passphrase through the function: no value, a failed log row
SELECT set_config('kbpipe.master_key', 'not the master', true);
SET LOCAL ROLE kbt_secret_reader;
DO $$
BEGIN
    PERFORM set_config('kbt.wrong', coalesce(get_secret('22222222-0000-0000-0000-000000000002', 'DB_PASS'), 'NULL'), true);
END;
$$;
RESET ROLE;
SELECT is(current_setting('kbt.wrong'), 'NULL', 'a wrong passphrase reads nothing');
SELECT is((SELECT count(*) FROM secret_access_log WHERE access_type = 'read' AND NOT success
             AND accessed_by = 'kbt_secret_reader'), 1::bigint, '... and is logged as a failed read');

-- rotate_master_key: the old passphrase stops working, the new one reads
SELECT set_config('kbpipe.master_key', 'audit master', true);
SELECT is(rotate_master_key('audit master 2', 'tester'), 1, 'rotate_master_key re-encrypts the one key');
SELECT is(current_setting('kbpipe.master_key'), 'audit master 2', 'the session now uses the new passphrase');
SELECT is(get_secret('22222222-0000-0000-0000-000000000002', 'DB_PASS'), 'pw-audit-1', 'the secret reads back');
SELECT set_config('kbpipe.master_key', 'audit master', true);
SELECT is(get_secret('22222222-0000-0000-0000-000000000002', 'DB_PASS'), NULL, 'the old passphrase reads nothing');
SELECT is((SELECT count(*) FROM secret_access_log WHERE access_type = 'rotate' AND secret_id IS NULL
             AND metadata->>'master_key' = 'rotated'), 1::bigint, 'the rotation is logged');

SELECT * FROM finish();
ROLLBACK;
