-- 05_ports_concurrency.sql - allocate_port from several sessions at once
-- (dblink): no port is handed out twice, a second allocator waits on the
-- range's lock until the first commits, and the full range then raises.
-- The fixture is committed through a separate session (the others must see
-- it) and removed at the end.
BEGIN;
SELECT * FROM no_plan();

CREATE FUNCTION pg_temp.connstr() RETURNS text LANGUAGE sql AS $$
    SELECT format('host=%s port=%s dbname=%s user=%s application_name=kbpipe_sqltest',
                  split_part(current_setting('unix_socket_directories'), ',', 1),
                  current_setting('port'), current_database(), current_user)
$$;
SELECT dblink_connect('setup', pg_temp.connstr());
SELECT dblink_exec('setup', $$
    DELETE FROM port_allocations WHERE port_range_id = '55555555-0000-0000-0000-00000000c0c0';
    DELETE FROM port_ranges WHERE id = '55555555-0000-0000-0000-00000000c0c0';
    DELETE FROM projects WHERE id = '11111111-0000-0000-0000-00000000c0c0';
    INSERT INTO projects (id, name) VALUES ('11111111-0000-0000-0000-00000000c0c0', 'concurrency');
    INSERT INTO port_ranges (id, range_name, start_port, end_port)
    VALUES ('55555555-0000-0000-0000-00000000c0c0', 'concurrency', 8000, 8041);
$$);

-- 1. eight sessions, five allocations each, all sent before any result is read
SELECT dblink_connect('c' || i, pg_temp.connstr()) FROM generate_series(1, 8) i;
SELECT dblink_send_query('c' || i, $$
    SELECT allocate_port('11111111-0000-0000-0000-00000000c0c0', '55555555-0000-0000-0000-00000000c0c0',
                         'svc-' || pg_backend_pid() || '-' || g)
      FROM generate_series(1, 5) g$$) FROM generate_series(1, 8) i;
CREATE TEMP TABLE got (session int, port int) ON COMMIT DROP;
DO $$
BEGIN
    FOR i IN 1..8 LOOP
        INSERT INTO got SELECT i, r.port FROM dblink_get_result('c' || i) AS r(port int);
        PERFORM * FROM dblink_get_result('c' || i) AS r(port int);   -- end of this query's results
    END LOOP;
END $$;
SELECT is((SELECT count(*) FROM got), 40::bigint, '8 sessions x 5 allocations all succeeded');
SELECT is((SELECT count(DISTINCT port) FROM got), 40::bigint, 'no port was handed out twice');
SELECT ok((SELECT bool_and(port BETWEEN 8000 AND 8041) FROM got), 'every port is inside the range');
SELECT is((SELECT count(*) FROM port_allocations WHERE port_range_id = '55555555-0000-0000-0000-00000000c0c0'),
          40::bigint, 'the table holds exactly the 40 allocations');

-- 2. an open transaction holds the range; a second session waits for it
SELECT dblink_exec('c1', 'BEGIN');
SELECT is((SELECT p FROM dblink('c1', $$SELECT allocate_port('11111111-0000-0000-0000-00000000c0c0',
              '55555555-0000-0000-0000-00000000c0c0', 'first')$$) AS r(p int)), 8040,
          'session 1 takes port 8040 and keeps its transaction open');
-- session 2's backend pid, taken before it is busy (pg_stat_activity.query
-- may still show its previous statement just after the send)
CREATE TEMP TABLE c2_pid AS SELECT p FROM dblink('c2', 'SELECT pg_backend_pid()') AS r(p int);
SELECT dblink_send_query('c2', $$SELECT allocate_port('11111111-0000-0000-0000-00000000c0c0',
              '55555555-0000-0000-0000-00000000c0c0', 'second')$$);
CREATE FUNCTION pg_temp.waits_on_lock(app_pid int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..3000 LOOP   -- at most ~30 s for session 2 to reach the lock (a busy machine)
        IF EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = app_pid AND wait_event_type = 'Lock') THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.01);
        PERFORM pg_stat_clear_snapshot();
    END LOOP;
    RETURN false;
END $$;
SELECT ok(pg_temp.waits_on_lock((SELECT p FROM c2_pid)), 'session 2 waits on the range lock');
SELECT dblink_exec('c1', 'COMMIT');
SELECT is((SELECT p FROM dblink_get_result('c2') AS r(p int)), 8041,
          'after the commit session 2 gets the next port, not 8040');
SELECT * FROM dblink_get_result('c2') AS r(p int);

-- 3. the range is full now
SELECT throws_ok($$SELECT allocate_port('11111111-0000-0000-0000-00000000c0c0',
                                        '55555555-0000-0000-0000-00000000c0c0', 'third')$$,
                 '53400', 'port range concurrency (8000-8041) is full on localhost/tcp',
                 'then the full range raises');

SELECT dblink_disconnect('c' || i) FROM generate_series(1, 8) i;
SELECT dblink_exec('setup', $$
    DELETE FROM port_allocations WHERE port_range_id = '55555555-0000-0000-0000-00000000c0c0';
    DELETE FROM port_ranges WHERE id = '55555555-0000-0000-0000-00000000c0c0';
    DELETE FROM projects WHERE id = '11111111-0000-0000-0000-00000000c0c0';
$$);
SELECT dblink_disconnect('setup');

SELECT * FROM finish();
ROLLBACK;
