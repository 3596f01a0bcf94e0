-- 007_secret_audit.sql - a secret is read only through functions that log
-- (issue 13 point 7).  Before, get_secret logged every read, but any role
-- that could SELECT secrets and knew the passphrase decrypted everything
-- with one query and left no secret_access_log row.
--
--  * store_secret, get_secret, create_encryption_key, rotate_encryption_key
--    and the new rotate_master_key run as their owner (SECURITY DEFINER) with
--    a fixed search_path: pg_catalog, the schema the migration ran in, the
--    schemas of pgcrypto and uuid-ossp, pg_temp last - so a caller's own
--    search_path cannot slip a fake secrets table or pgp_sym_decrypt in;
--  * secret_revoke_direct_access() takes every privilege on secrets,
--    encryption_keys and secret_access_log from PUBLIC and from every role
--    but the owner (a read-only role made with GRANT SELECT ON ALL TABLES
--    included); the migration calls it once, an owner calls it again after
--    granting a schema-wide SELECT;
--  * secret_list(project) shows names and dates, never values, to any role;
--  * EXECUTE is granted explicitly: get_secret, store_secret and secret_list
--    to PUBLIC (each read logs, and decrypting still needs the passphrase);
--    the key functions and the internal helpers to the owner only.
-- The owner and superusers can still read the tables directly: no grant can
-- stop them (docs/schema.md).

-- migrate:up
-- Re-encrypt every data key under a new master passphrase (the session's
-- kbpipe.master_key is the old one) and make it the session's passphrase;
-- returns the number of keys.  Logs one 'rotate' row (secret_id NULL).
CREATE FUNCTION rotate_master_key(p_new_master text, p_accessed_by text DEFAULT current_user)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_old text := secret_master_key();
    v_n   integer;
BEGIN
    IF p_new_master IS NULL OR p_new_master = '' THEN
        RAISE EXCEPTION 'rotate_master_key needs a new passphrase' USING ERRCODE = '22004';
    END IF;
    UPDATE encryption_keys
       SET encrypted_key = pgp_sym_encrypt(pgp_sym_decrypt(encrypted_key, v_old), p_new_master,
                                           'cipher-algo=' || algorithm);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    PERFORM set_config('kbpipe.master_key', p_new_master, true);
    INSERT INTO secret_access_log (secret_id, accessed_by, access_type, success, metadata)
    VALUES (NULL, coalesce(p_accessed_by, current_user), 'rotate', true,
            jsonb_build_object('master_key', 'rotated', 'keys', v_n));
    RETURN v_n;
END;
$$;

-- Take every privilege on the secret tables from PUBLIC and from each role
-- other than the owner (column grants go with the table's); returns how
-- many roles lost one.
CREATE FUNCTION secret_revoke_direct_access() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_table text;
    v_role  text;
    v_n     integer := 0;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['secrets', 'encryption_keys', 'secret_access_log'] LOOP
        EXECUTE format('REVOKE ALL ON TABLE %I FROM PUBLIC', v_table);
        FOR v_role IN
            SELECT DISTINCT a.grantee::regrole::text
              FROM (SELECT c.relacl AS acl, c.relowner FROM pg_class c
                     WHERE c.oid = v_table::regclass
                    UNION ALL
                    SELECT att.attacl, c.relowner FROM pg_attribute att
                      JOIN pg_class c ON c.oid = att.attrelid
                     WHERE att.attrelid = v_table::regclass AND att.attacl IS NOT NULL) x,
                   LATERAL aclexplode(x.acl) a
             WHERE a.grantee <> 0 AND a.grantee <> x.relowner
        LOOP
            EXECUTE format('REVOKE ALL ON TABLE %I FROM %s', v_table, v_role);
            v_n := v_n + 1;
        END LOOP;
    END LOOP;
    RETURN v_n;
END;
$$;

-- The secrets of a project (NULL: the shared ones), one row per name, with
-- no value: what `kbpipe secret list` shows to any role.
CREATE FUNCTION secret_list(p_project_id uuid)
RETURNS TABLE (key_name text, secret_type text, description text, expires_at timestamptz,
               next_rotation_at timestamptz, access_count integer,
               last_accessed_at timestamptz, updated_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT ON (s.key_name) s.key_name, s.secret_type, s.description, s.expires_at,
           (SELECT min(r.next_rotation_at) FROM secret_rotation_schedule r
             WHERE r.secret_id = s.id),
           s.access_count, s.last_accessed_at, s.updated_at
      FROM secrets s
     WHERE s.project_id IS NOT DISTINCT FROM p_project_id
     ORDER BY s.key_name, s.created_at DESC
$$;

DO $$
DECLARE
    v_path text;
    v_fn   text;
BEGIN
    SELECT 'pg_catalog, ' || string_agg(quote_ident(s.nspname), ', ' ORDER BY s.ord, s.nspname)
           || ', pg_temp'
      INTO v_path
      FROM (SELECT n.nspname, min(CASE WHEN n.nspname = current_schema() THEN 0 ELSE 1 END) AS ord
              FROM pg_namespace n
             WHERE n.nspname = current_schema()
                OR n.oid IN (SELECT extnamespace FROM pg_extension
                              WHERE extname IN ('pgcrypto', 'uuid-ossp'))
             GROUP BY n.nspname) s
     WHERE s.nspname <> 'pg_catalog';
    FOREACH v_fn IN ARRAY ARRAY[
        'store_secret(uuid, text, text, text, text, timestamptz, text)',
        'get_secret(uuid, text, text, inet)',
        'create_encryption_key(text, text)',
        'rotate_encryption_key(text, text)',
        'rotate_master_key(text, text)',
        'secret_revoke_direct_access()',
        'secret_list(uuid)'] LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = %s', v_fn, v_path);
    END LOOP;
END;
$$;

REVOKE EXECUTE ON FUNCTION secret_master_key(), secret_data_key(uuid),
    create_encryption_key(text, text), rotate_encryption_key(text, text),
    rotate_master_key(text, text), secret_revoke_direct_access(),
    store_secret(uuid, text, text, text, text, timestamptz, text),
    get_secret(uuid, text, text, inet) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION get_secret(uuid, text, text, inet),
    store_secret(uuid, text, text, text, text, timestamptz, text), secret_list(uuid) TO PUBLIC;
DO $$ BEGIN PERFORM secret_revoke_direct_access(); END $$;

-- migrate:down
-- Privileges taken from other roles are not given back: nobody recorded them.
GRANT EXECUTE ON FUNCTION secret_master_key(), secret_data_key(uuid),
    create_encryption_key(text, text), rotate_encryption_key(text, text) TO PUBLIC;
ALTER FUNCTION store_secret(uuid, text, text, text, text, timestamptz, text)
    SECURITY INVOKER RESET search_path;
ALTER FUNCTION get_secret(uuid, text, text, inet) SECURITY INVOKER RESET search_path;
ALTER FUNCTION create_encryption_key(text, text) SECURITY INVOKER RESET search_path;
ALTER FUNCTION rotate_encryption_key(text, text) SECURITY INVOKER RESET search_path;
DROP FUNCTION secret_list(uuid);
DROP FUNCTION secret_revoke_direct_access();
DROP FUNCTION rotate_master_key(text, text);
