-- 002_secrets_management.sql - encrypted secrets, their audit log, rotation
-- schedules and templates, and the functions that store and read a secret.
--
-- Encryption is two-level (envelope): each encryption_keys row holds a
-- random data key, itself pgp_sym_encrypt'ed under the master passphrase;
-- a secret's value is pgp_sym_encrypt'ed under the active data key.  The
-- master passphrase is never stored: the caller supplies it per session with
--     SET kbpipe.master_key = '...';   (or set_config('kbpipe.master_key', ..., true))
-- so a dump of the database alone decrypts nothing.

-- migrate:up
CREATE TABLE encryption_keys (
    id              uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    key_name        text NOT NULL CHECK (key_name <> ''),
    encrypted_key   bytea NOT NULL,        -- the data key, encrypted under the master passphrase
    algorithm       text NOT NULL DEFAULT 'aes256'
                    CHECK (algorithm IN ('aes128', 'aes192', 'aes256')),
    is_active       boolean NOT NULL DEFAULT false,
    rotation_count  integer NOT NULL DEFAULT 0 CHECK (rotation_count >= 0),
    last_rotated_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- at most one active key: new secrets are encrypted under it
CREATE UNIQUE INDEX idx_encryption_keys_is_active ON encryption_keys (is_active) WHERE is_active;
CREATE TRIGGER trg_encryption_keys_updated_at BEFORE UPDATE ON encryption_keys
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE secrets (
    id                uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- NULL: a secret shared by all projects
    project_id        uuid REFERENCES projects (id) ON DELETE CASCADE,
    key_name          text NOT NULL CHECK (key_name <> ''),
    encrypted_value   bytea NOT NULL,
    -- a key that still encrypts secrets cannot be deleted: rotate first
    encryption_key_id uuid NOT NULL REFERENCES encryption_keys (id) ON DELETE RESTRICT,
    secret_type       text NOT NULL DEFAULT 'other' CHECK (secret_type <> ''),
    description       text,
    metadata          jsonb NOT NULL DEFAULT '{}',
    last_accessed_at  timestamptz,
    access_count      integer NOT NULL DEFAULT 0 CHECK (access_count >= 0),
    expires_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_secrets_project_id ON secrets (project_id);
CREATE INDEX idx_secrets_key_name ON secrets (key_name);
CREATE INDEX idx_secrets_encryption_key_id ON secrets (encryption_key_id);
CREATE INDEX idx_secrets_secret_type ON secrets (secret_type);
CREATE INDEX idx_secrets_expires_at ON secrets (expires_at);
-- reading a secret bumps access_count / last_accessed_at, which is not an update
CREATE TRIGGER trg_secrets_updated_at BEFORE UPDATE ON secrets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at('access_count', 'last_accessed_at');

CREATE TABLE secret_access_log (
    id            uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- the audit trail outlives the secret; NULL also for reads of unknown names
    secret_id     uuid REFERENCES secrets (id) ON DELETE SET NULL,
    accessed_by   text NOT NULL,
    access_type   text NOT NULL
                  CHECK (access_type IN ('read', 'write', 'update', 'rotate', 'delete')),
    success       boolean NOT NULL,
    error_message text,
    ip_address    inet,
    metadata      jsonb NOT NULL DEFAULT '{}',
    accessed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_secret_access_log_secret_id ON secret_access_log (secret_id);
CREATE INDEX idx_secret_access_log_accessed_by ON secret_access_log (accessed_by);
CREATE INDEX idx_secret_access_log_accessed_at ON secret_access_log (accessed_at);
CREATE INDEX idx_secret_access_log_success ON secret_access_log (success);

CREATE TABLE secret_rotation_schedule (
    id                     uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    secret_id              uuid NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    rotation_interval_days integer NOT NULL CHECK (rotation_interval_days > 0),
    last_rotation_at       timestamptz,
    next_rotation_at       timestamptz NOT NULL,
    auto_rotate            boolean NOT NULL DEFAULT false,
    notification_days      integer NOT NULL DEFAULT 7 CHECK (notification_days >= 0),
    metadata               jsonb NOT NULL DEFAULT '{}',
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_secret_rotation_schedule_next_rotation_at ON secret_rotation_schedule (next_rotation_at);
CREATE INDEX idx_secret_rotation_schedule_auto_rotate ON secret_rotation_schedule (auto_rotate);
CREATE TRIGGER trg_secret_rotation_schedule_updated_at BEFORE UPDATE ON secret_rotation_schedule
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE secret_templates (
    id                     uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    template_name          text NOT NULL CHECK (template_name <> ''),
    secret_type            text NOT NULL CHECK (secret_type <> ''),
    description            text,
    validation_pattern     text,   -- a POSIX regular expression values of this type must match
    rotation_interval_days integer CHECK (rotation_interval_days > 0),
    metadata               jsonb NOT NULL DEFAULT '{}',
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER trg_secret_templates_updated_at BEFORE UPDATE ON secret_templates
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The master passphrase of this session (kbpipe.master_key); raises when unset.
CREATE OR REPLACE FUNCTION secret_master_key() RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_master text := current_setting('kbpipe.master_key', true);
BEGIN
    IF v_master IS NULL OR v_master = '' THEN
        RAISE EXCEPTION 'kbpipe.master_key is not set'
            USING ERRCODE = '28000',
                  HINT = 'SET kbpipe.master_key = ''<master passphrase>'' in this session first';
    END IF;
    RETURN v_master;
END;
$$;

-- The clear data key of encryption key p_key_id; raises on a wrong master key.
CREATE OR REPLACE FUNCTION secret_data_key(p_key_id uuid) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_encrypted bytea;
BEGIN
    SELECT encrypted_key INTO v_encrypted FROM encryption_keys WHERE id = p_key_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'encryption key % does not exist', p_key_id USING ERRCODE = 'P0002';
    END IF;
    RETURN pgp_sym_decrypt(v_encrypted, secret_master_key());
END;
$$;

-- Create a new random data key under the master passphrase and make it the
-- active one (the previous active key stays, for the secrets it encrypts).
CREATE OR REPLACE FUNCTION create_encryption_key(p_key_name text, p_algorithm text DEFAULT 'aes256')
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    UPDATE encryption_keys SET is_active = false WHERE is_active;
    INSERT INTO encryption_keys (key_name, encrypted_key, algorithm, is_active)
    VALUES (p_key_name,
            pgp_sym_encrypt(encode(gen_random_bytes(32), 'hex'), secret_master_key(),
                            'cipher-algo=' || p_algorithm),
            p_algorithm, true)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$;

-- Store (insert or replace) the secret p_key_name of project p_project_id
-- (NULL: shared) encrypted under the active key; logs a 'write' or 'update'.
CREATE OR REPLACE FUNCTION store_secret(p_project_id uuid, p_key_name text, p_value text,
                                        p_secret_type text DEFAULT 'other',
                                        p_description text DEFAULT NULL,
                                        p_expires_at timestamptz DEFAULT NULL,
                                        p_accessed_by text DEFAULT current_user)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_key   encryption_keys%ROWTYPE;
    v_value bytea;
    v_id    uuid;
BEGIN
    IF p_key_name IS NULL OR p_key_name = '' OR p_value IS NULL THEN
        RAISE EXCEPTION 'store_secret needs a key name and a value' USING ERRCODE = '22004';
    END IF;
    IF EXISTS (SELECT 1 FROM secret_templates t
               WHERE t.secret_type = p_secret_type AND t.validation_pattern IS NOT NULL)
       AND NOT EXISTS (SELECT 1 FROM secret_templates t
                       WHERE t.secret_type = p_secret_type AND t.validation_pattern IS NOT NULL
                         AND p_value ~ t.validation_pattern) THEN
        RAISE EXCEPTION 'the value of secret % does not match the validation pattern of type %',
                        p_key_name, p_secret_type
            USING ERRCODE = '22023', HINT = 'see secret_templates.validation_pattern';
    END IF;
    SELECT * INTO v_key FROM encryption_keys WHERE is_active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'there is no active encryption key'
            USING ERRCODE = 'P0002', HINT = 'SELECT create_encryption_key(''main'') first';
    END IF;
    v_value := pgp_sym_encrypt(p_value, secret_data_key(v_key.id), 'cipher-algo=' || v_key.algorithm);

    -- serialize writers of one (project, name): there is no unique key to conflict on
    PERFORM pg_advisory_xact_lock(hashtext('kbpipe.secret'),
                                  hashtext(coalesce(p_project_id::text, '') || '/' || p_key_name));
    UPDATE secrets
       SET encrypted_value = v_value, encryption_key_id = v_key.id,
           secret_type = coalesce(p_secret_type, secret_type),
           description = coalesce(p_description, description), expires_at = p_expires_at
     WHERE id = (SELECT s.id FROM secrets s
                  WHERE s.project_id IS NOT DISTINCT FROM p_project_id AND s.key_name = p_key_name
                  ORDER BY s.created_at DESC LIMIT 1)
    RETURNING id INTO v_id;
    IF v_id IS NOT NULL THEN
        INSERT INTO secret_access_log (secret_id, accessed_by, access_type, success)
        VALUES (v_id, coalesce(p_accessed_by, current_user), 'update', true);
        RETURN v_id;
    END IF;
    INSERT INTO secrets (project_id, key_name, encrypted_value, encryption_key_id, secret_type,
                         description, expires_at)
    VALUES (p_project_id, p_key_name, v_value, v_key.id, coalesce(p_secret_type, 'other'),
            p_description, p_expires_at)
    RETURNING id INTO v_id;
    INSERT INTO secret_access_log (secret_id, accessed_by, access_type, success)
    VALUES (v_id, coalesce(p_accessed_by, current_user), 'write', true);
    RETURN v_id;
END;
$$;

-- Read and decrypt a secret.  Every call writes a secret_access_log row.
-- A failed read (unknown name, expired, master key unset or wrong) returns
-- NULL with a WARNING rather than raising, so that its audit row is kept.
CREATE OR REPLACE FUNCTION get_secret(p_project_id uuid, p_key_name text,
                                      p_accessed_by text DEFAULT current_user,
                                      p_ip_address inet DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_secret secrets%ROWTYPE;
    v_value  text;
    v_error  text;
BEGIN
    SELECT * INTO v_secret FROM secrets s
     WHERE s.project_id IS NOT DISTINCT FROM p_project_id AND s.key_name = p_key_name
     ORDER BY s.created_at DESC LIMIT 1;
    IF NOT FOUND THEN
        v_error := format('no secret named %s', coalesce(p_key_name, 'NULL'));
    ELSIF v_secret.expires_at IS NOT NULL AND v_secret.expires_at <= now() THEN
        v_error := format('secret %s expired at %s', p_key_name, v_secret.expires_at);
    ELSE
        BEGIN
            v_value := pgp_sym_decrypt(v_secret.encrypted_value,
                                       secret_data_key(v_secret.encryption_key_id));
        EXCEPTION WHEN OTHERS THEN
            v_error := SQLERRM;
        END;
    END IF;

    INSERT INTO secret_access_log (secret_id, accessed_by, access_type, success, error_message,
                                   ip_address, metadata)
    VALUES (v_secret.id, coalesce(p_accessed_by, current_user), 'read', v_error IS NULL, v_error,
            p_ip_address,
            jsonb_build_object('project_id', p_project_id, 'key_name', p_key_name));
    IF v_error IS NOT NULL THEN
        RAISE WARNING 'get_secret: %', v_error;
        RETURN NULL;
    END IF;
    UPDATE secrets SET access_count = access_count + 1, last_accessed_at = now()
     WHERE id = v_secret.id;
    RETURN v_value;
END;
$$;

-- Make a new active key and re-encrypt every secret under it; returns the
-- number of secrets re-encrypted.  Old keys stay, inactive, until deleted.
CREATE OR REPLACE FUNCTION rotate_encryption_key(p_new_key_name text,
                                                 p_accessed_by text DEFAULT current_user)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_old_count integer;
    v_new_id    uuid;
    v_new_key   text;
    v_algo      text;
    v_n         integer;
BEGIN
    SELECT rotation_count INTO v_old_count FROM encryption_keys WHERE is_active FOR UPDATE;
    v_new_id := create_encryption_key(p_new_key_name);
    UPDATE encryption_keys SET rotation_count = coalesce(v_old_count + 1, 0),
                               last_rotated_at = now()
     WHERE id = v_new_id
    RETURNING algorithm INTO v_algo;
    v_new_key := secret_data_key(v_new_id);
    WITH re AS (
        UPDATE secrets s
           SET encrypted_value = pgp_sym_encrypt(
                   pgp_sym_decrypt(s.encrypted_value, secret_data_key(s.encryption_key_id)),
                   v_new_key, 'cipher-algo=' || v_algo),
               encryption_key_id = v_new_id
         WHERE s.encryption_key_id <> v_new_id
        RETURNING s.id
    ), logged AS (
        INSERT INTO secret_access_log (secret_id, accessed_by, access_type, success)
        SELECT id, coalesce(p_accessed_by, current_user), 'rotate', true FROM re
        RETURNING 1
    )
    SELECT count(*) INTO v_n FROM logged;
    RETURN v_n;
END;
$$;

CREATE VIEW secrets_expiring_soon AS
SELECT s.id, s.project_id, s.key_name, s.secret_type, s.expires_at,
       s.expires_at - now() AS time_until_expiry,
       p.name AS project_name
  FROM secrets s
  LEFT JOIN projects p ON p.id = s.project_id
 WHERE s.expires_at > now() AND s.expires_at <= now() + interval '30 days'
 ORDER BY s.expires_at;

CREATE VIEW secrets_needing_rotation AS
SELECT s.id, s.project_id, s.key_name, s.secret_type, r.next_rotation_at,
       r.next_rotation_at - now() AS time_until_rotation,
       r.auto_rotate,
       p.name AS project_name
  FROM secret_rotation_schedule r
  JOIN secrets s ON s.id = r.secret_id
  LEFT JOIN projects p ON p.id = s.project_id
 WHERE r.next_rotation_at <= now() + interval '7 days'
 ORDER BY r.next_rotation_at;

-- migrate:down
DROP VIEW secrets_needing_rotation;
DROP VIEW secrets_expiring_soon;
DROP FUNCTION rotate_encryption_key(text, text);
DROP FUNCTION get_secret(uuid, text, text, inet);
DROP FUNCTION store_secret(uuid, text, text, text, text, timestamptz, text);
DROP FUNCTION create_encryption_key(text, text);
DROP FUNCTION secret_data_key(uuid);
DROP FUNCTION secret_master_key();
DROP TABLE secret_templates;
DROP TABLE secret_rotation_schedule;
DROP TABLE secret_access_log;
DROP TABLE secrets;
DROP TABLE encryption_keys;
