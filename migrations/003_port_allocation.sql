-- 003_port_allocation.sql - port ranges, allocations, health checks and
-- reservations, with race-free allocation.
--
-- Allocation invariants:
--   * a (port_number, hostname, protocol) has at most one row; a released
--     row stays for history until the port is handed out again, when the
--     same row is reused;
--   * allocate_port serializes on the range's row (SELECT ... FOR UPDATE),
--     so two sessions allocating in one range never pick the same port; the
--     unique key is the last line of defence (a clash there is reported as
--     SQLSTATE 40001, "retry the transaction");
--   * a port with an unexpired reservation is handed out only to the
--     reservation's project and service.

-- migrate:up
CREATE TABLE port_ranges (
    id          uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    range_name  text NOT NULL CHECK (range_name <> ''),
    start_port  integer NOT NULL CHECK (start_port BETWEEN 1 AND 65535),
    end_port    integer NOT NULL CHECK (end_port BETWEEN 1 AND 65535),
    description text,
    is_active   boolean NOT NULL DEFAULT true,
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT port_ranges_order_check CHECK (start_port <= end_port)
);
CREATE INDEX idx_port_ranges_is_active ON port_ranges (is_active);
CREATE INDEX idx_port_ranges_ports ON port_ranges (start_port, end_port);
CREATE TRIGGER trg_port_ranges_updated_at BEFORE UPDATE ON port_ranges
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE port_allocations (
    id            uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- a deleted project frees its ports
    project_id    uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- a range with allocations cannot be deleted: deactivate it instead
    port_range_id uuid REFERENCES port_ranges (id) ON DELETE RESTRICT,
    port_number   integer NOT NULL CHECK (port_number BETWEEN 1 AND 65535),
    service_name  text NOT NULL,
    service_type  text,
    status        text NOT NULL DEFAULT 'allocated'
                  CHECK (status IN ('allocated', 'in_use', 'released')),
    process_id    integer,
    hostname      text NOT NULL DEFAULT 'localhost',
    protocol      text NOT NULL DEFAULT 'tcp' CHECK (protocol IN ('tcp', 'udp')),
    metadata      jsonb NOT NULL DEFAULT '{}',
    allocated_at  timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    released_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT port_allocations_port_host_protocol_key UNIQUE (port_number, hostname, protocol)
);
CREATE INDEX idx_port_allocations_project_id ON port_allocations (project_id);
CREATE INDEX idx_port_allocations_port_number ON port_allocations (port_number);
CREATE INDEX idx_port_allocations_service_name ON port_allocations (service_name);
CREATE INDEX idx_port_allocations_status ON port_allocations (status);
CREATE INDEX idx_port_allocations_hostname ON port_allocations (hostname);
CREATE TRIGGER trg_port_allocations_updated_at BEFORE UPDATE ON port_allocations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at('last_used_at');

CREATE TABLE port_health_checks (
    id                 uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    port_allocation_id uuid NOT NULL REFERENCES port_allocations (id) ON DELETE CASCADE,
    check_type         text NOT NULL DEFAULT 'tcp' CHECK (check_type <> ''),
    status             text NOT NULL
                       CHECK (status IN ('healthy', 'unhealthy', 'timeout', 'unknown')),
    response_time_ms   integer CHECK (response_time_ms >= 0),
    error_message      text,
    metadata           jsonb NOT NULL DEFAULT '{}',
    checked_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_port_health_checks_port_allocation_id ON port_health_checks (port_allocation_id);
CREATE INDEX idx_port_health_checks_status ON port_health_checks (status);
CREATE INDEX idx_port_health_checks_checked_at ON port_health_checks (checked_at);

CREATE TABLE port_reservations (
    id            uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    project_id    uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    port_range_id uuid REFERENCES port_ranges (id) ON DELETE CASCADE,
    port_number   integer NOT NULL CHECK (port_number BETWEEN 1 AND 65535),
    service_name  text,
    reserved_by   text,
    expires_at    timestamptz NOT NULL,
    metadata      jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_port_reservations_project_id ON port_reservations (project_id);
CREATE INDEX idx_port_reservations_port_number ON port_reservations (port_number);
CREATE INDEX idx_port_reservations_expires_at ON port_reservations (expires_at);
CREATE TRIGGER trg_port_reservations_updated_at BEFORE UPDATE ON port_reservations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The lowest port of range p_range_id that is neither held (allocated or
-- in use) on (p_hostname, p_protocol) nor under an unexpired reservation;
-- NULL when there is none or the range does not exist.  Not locking: use
-- allocate_port to take the port.
CREATE OR REPLACE FUNCTION find_available_port(p_range_id uuid,
                                               p_hostname text DEFAULT 'localhost',
                                               p_protocol text DEFAULT 'tcp')
RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT g.port
      FROM port_ranges r
     CROSS JOIN LATERAL generate_series(r.start_port, r.end_port) AS g(port)
     WHERE r.id = p_range_id
       AND NOT EXISTS (SELECT 1 FROM port_allocations a
                        WHERE a.port_number = g.port
                          AND a.hostname = coalesce(p_hostname, 'localhost')
                          AND a.protocol = coalesce(p_protocol, 'tcp')
                          AND a.status <> 'released')
       AND NOT EXISTS (SELECT 1 FROM port_reservations v
                        WHERE v.port_number = g.port AND v.expires_at > now())
     ORDER BY g.port
     LIMIT 1
$$;

-- Allocate a port of range p_range_id to the project's service and return
-- its number.  Race-free (see the file comment).  Uses the project's own
-- unexpired reservation for this service in the range first (and deletes
-- it).  Raises: unknown or inactive range (P0002 / 55000), full range
-- (53400, "port range ... is full").
CREATE OR REPLACE FUNCTION allocate_port(p_project_id uuid, p_range_id uuid,
                                         p_service_name text,
                                         p_service_type text DEFAULT NULL,
                                         p_hostname text DEFAULT 'localhost',
                                         p_protocol text DEFAULT 'tcp')
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_range port_ranges%ROWTYPE;
    v_host  text := coalesce(p_hostname, 'localhost');
    v_proto text := coalesce(p_protocol, 'tcp');
    v_port  integer;
    v_resv  uuid;
BEGIN
    IF p_project_id IS NULL OR p_service_name IS NULL OR p_service_name = '' THEN
        RAISE EXCEPTION 'allocate_port needs a project id and a service name'
            USING ERRCODE = '22004';
    END IF;
    -- the lock that makes allocation in this range one-at-a-time; under READ
    -- COMMITTED the statements below then see the previous holder's rows
    SELECT * INTO v_range FROM port_ranges WHERE id = p_range_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'port range % does not exist', p_range_id USING ERRCODE = 'P0002';
    END IF;
    IF NOT v_range.is_active THEN
        RAISE EXCEPTION 'port range % is not active', v_range.range_name
            USING ERRCODE = '55000', HINT = 'activate it or allocate from another range';
    END IF;

    SELECT v.id, v.port_number INTO v_resv, v_port
      FROM port_reservations v
     WHERE v.project_id = p_project_id AND v.port_range_id = p_range_id
       AND v.service_name = p_service_name AND v.expires_at > now()
       AND NOT EXISTS (SELECT 1 FROM port_allocations a
                        WHERE a.port_number = v.port_number AND a.hostname = v_host
                          AND a.protocol = v_proto AND a.status <> 'released')
     ORDER BY v.port_number
     LIMIT 1;
    IF v_resv IS NOT NULL THEN
        DELETE FROM port_reservations WHERE id = v_resv;
    ELSE
        v_port := find_available_port(p_range_id, v_host, v_proto);
    END IF;
    IF v_port IS NULL THEN
        RAISE EXCEPTION 'port range % (%-%) is full on %/%', v_range.range_name,
                        v_range.start_port, v_range.end_port, v_host, v_proto
            USING ERRCODE = '53400',
                  HINT = 'release ports (release_port), clean up reservations '
                         '(cleanup_expired_reservations) or widen the range';
    END IF;

    BEGIN
        INSERT INTO port_allocations AS a (project_id, port_range_id, port_number, service_name,
                                           service_type, status, hostname, protocol)
        VALUES (p_project_id, p_range_id, v_port, p_service_name, p_service_type, 'allocated',
                v_host, v_proto)
        ON CONFLICT (port_number, hostname, protocol) DO UPDATE
           SET project_id = EXCLUDED.project_id, port_range_id = EXCLUDED.port_range_id,
               service_name = EXCLUDED.service_name, service_type = EXCLUDED.service_type,
               status = 'allocated', process_id = NULL, metadata = '{}',
               allocated_at = now(), last_used_at = NULL, released_at = NULL
         WHERE a.status = 'released';
        IF NOT FOUND THEN
            -- held outside this range's lock (another range overlaps, or a
            -- direct INSERT); our snapshot cannot see it
            RAISE EXCEPTION USING ERRCODE = 'unique_violation';
        END IF;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'port % on %/% was taken concurrently', v_port, v_host, v_proto
            USING ERRCODE = '40001', HINT = 'retry the transaction';
    END;
    RETURN v_port;
END;
$$;

-- Release the held allocation(s) of p_port_number on p_hostname (both
-- protocols).  Returns true when something was released, false when the
-- port was not held.
CREATE OR REPLACE FUNCTION release_port(p_port_number integer,
                                        p_hostname text DEFAULT 'localhost')
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE port_allocations
       SET status = 'released', released_at = now()
     WHERE port_number = p_port_number AND hostname = coalesce(p_hostname, 'localhost')
       AND status <> 'released';
    RETURN FOUND;
END;
$$;

-- Delete reservations whose expires_at has passed; returns how many.
CREATE OR REPLACE FUNCTION cleanup_expired_reservations() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    DELETE FROM port_reservations WHERE expires_at <= now();
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END;
$$;

-- Counts are of distinct port numbers, so a port held on two hosts (or for
-- tcp and udp) uses the range once and utilization stays within 0..100.
CREATE VIEW port_range_utilization AS
SELECT r.id AS range_id, r.range_name, r.start_port, r.end_port,
       r.end_port - r.start_port + 1 AS total_ports,
       coalesce(a.allocated_ports, 0) AS allocated_ports,
       coalesce(a.released_ports, 0) AS released_ports,
       coalesce(v.reserved_ports, 0) AS reserved_ports,
       round(100.0 * coalesce(a.allocated_ports, 0) / (r.end_port - r.start_port + 1), 2)
           AS utilization_percent
  FROM port_ranges r
  LEFT JOIN (SELECT port_range_id,
                    count(DISTINCT port_number) FILTER (WHERE status <> 'released') AS allocated_ports,
                    count(DISTINCT port_number) FILTER (WHERE status = 'released') AS released_ports
               FROM port_allocations GROUP BY port_range_id) a ON a.port_range_id = r.id
  LEFT JOIN (SELECT port_range_id, count(DISTINCT port_number) AS reserved_ports
               FROM port_reservations WHERE expires_at > now()
              GROUP BY port_range_id) v ON v.port_range_id = r.id;

CREATE VIEW active_port_allocations AS
SELECT a.id, a.port_number, a.service_name, a.service_type, a.status, a.hostname, a.protocol,
       a.allocated_at, a.last_used_at,
       p.name AS project_name,
       r.range_name
  FROM port_allocations a
  JOIN projects p ON p.id = a.project_id
  LEFT JOIN port_ranges r ON r.id = a.port_range_id
 WHERE a.status <> 'released';

-- migrate:down
DROP VIEW active_port_allocations;
DROP VIEW port_range_utilization;
DROP FUNCTION cleanup_expired_reservations();
DROP FUNCTION release_port(integer, text);
DROP FUNCTION allocate_port(uuid, uuid, text, text, text, text);
DROP FUNCTION find_available_port(uuid, text, text);
DROP TABLE port_reservations;
DROP TABLE port_health_checks;
DROP TABLE port_allocations;
DROP TABLE port_ranges;
