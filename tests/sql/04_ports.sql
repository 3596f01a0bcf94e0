-- 04_ports.sql - migration 003 in one session: find/allocate/release, the
-- full-range error, reservations, cleanup, NULL inputs and the two views.
-- The concurrent case is 05_ports_concurrency.sql.
BEGIN;
SELECT * FROM no_plan();

INSERT INTO projects (id, name) VALUES ('11111111-0000-0000-0000-000000000001', 'alpha'),
                                       ('11111111-0000-0000-0000-000000000002', 'beta');
INSERT INTO port_ranges (id, range_name, start_port, end_port) VALUES
    ('55555555-0000-0000-0000-000000000001', 'tiny', 5000, 5002),
    ('55555555-0000-0000-0000-000000000002', 'resv', 6000, 6009);
INSERT INTO port_ranges (id, range_name, start_port, end_port, is_active) VALUES
    ('55555555-0000-0000-0000-000000000003', 'off', 7000, 7009, false);

SELECT throws_ok($$INSERT INTO port_ranges (range_name, start_port, end_port) VALUES ('bad', 10, 5)$$,
                 '23514', NULL, 'a range starts before it ends');
SELECT throws_ok($$INSERT INTO port_ranges (range_name, start_port, end_port) VALUES ('bad', 0, 5)$$,
                 '23514', NULL, 'ports are 1..65535');

SELECT is(find_available_port('55555555-0000-0000-0000-000000000001'), 5000, 'the lowest free port');
SELECT is(find_available_port('99999999-0000-0000-0000-000000000000'), NULL, 'an unknown range has none');
SELECT results_eq($$SELECT allocate_port('11111111-0000-0000-0000-000000000001',
                                         '55555555-0000-0000-0000-000000000001', 'svc' || g, 'api')
                    FROM generate_series(1, 3) g$$,
                  $$VALUES (5000), (5001), (5002)$$, 'allocation hands out the range in order');
SELECT is(find_available_port('55555555-0000-0000-0000-000000000001'), NULL, 'a full range has none');
SELECT throws_ok($$SELECT allocate_port('11111111-0000-0000-0000-000000000001',
                                        '55555555-0000-0000-0000-000000000001', 'one-more')$$,
                 '53400', 'port range tiny (5000-5002) is full on localhost/tcp',
                 'allocating from a full range raises a clear error');

-- other protocols and hosts are separate
SELECT is(allocate_port('11111111-0000-0000-0000-000000000001', '55555555-0000-0000-0000-000000000001',
                        'dns', 'dns', 'localhost', 'udp'), 5000, 'udp ports are separate from tcp');
SELECT is(allocate_port('11111111-0000-0000-0000-000000000001', '55555555-0000-0000-0000-000000000001',
                        'web', 'web', 'host-b', NULL), 5000, 'another host has its own ports (NULL protocol = tcp)');

-- release and reuse
SELECT is(release_port(5001, 'localhost'), true, 'release_port releases a held port');
SELECT is(release_port(5001, 'localhost'), false, 'releasing it again does nothing');
SELECT is(release_port(5999), false, 'releasing a port never held does nothing');
SELECT is((SELECT status || '/' || (released_at IS NOT NULL) FROM port_allocations
            WHERE port_number = 5001), 'released/true', 'the released row stays, marked');
SELECT is(find_available_port('55555555-0000-0000-0000-000000000001', 'localhost', 'tcp'), 5001,
          'a released port is free again');
SELECT is(allocate_port('11111111-0000-0000-0000-000000000002', '55555555-0000-0000-0000-000000000001',
                        'reuse'), 5001, 'and is handed out again');
SELECT results_eq($$SELECT count(*), min(service_name), min(status), bool_and(released_at IS NULL)
                    FROM port_allocations WHERE port_number = 5001 AND protocol = 'tcp' AND hostname = 'localhost'$$,
                  $$VALUES (1::bigint, 'reuse', 'allocated', true)$$, 'reusing updates the same row');

-- reservations
INSERT INTO port_reservations (project_id, port_range_id, port_number, service_name, expires_at) VALUES
    ('11111111-0000-0000-0000-000000000002', '55555555-0000-0000-0000-000000000002', 6000, 'db', now() + interval '1 hour'),
    ('11111111-0000-0000-0000-000000000002', '55555555-0000-0000-0000-000000000002', 6001, 'db', now() - interval '1 hour');
SELECT is(find_available_port('55555555-0000-0000-0000-000000000002'), 6001,
          'a reserved port is skipped, an expired reservation is not');
SELECT is(allocate_port('11111111-0000-0000-0000-000000000001', '55555555-0000-0000-0000-000000000002', 'db'),
          6001, 'another project does not get the reserved port');
SELECT is(allocate_port('11111111-0000-0000-0000-000000000002', '55555555-0000-0000-0000-000000000002', 'cache'),
          6002, 'nor does another service of the same project');
SELECT is(allocate_port('11111111-0000-0000-0000-000000000002', '55555555-0000-0000-0000-000000000002', 'db'),
          6000, 'the reserving project and service get their port');
SELECT is((SELECT count(*) FROM port_reservations WHERE port_number = 6000), 0::bigint,
          'the used reservation is gone');
SELECT is(cleanup_expired_reservations(), 1, 'cleanup_expired_reservations deletes the expired one');
SELECT is(cleanup_expired_reservations(), 0, 'and then has nothing to do');

-- bad calls
SELECT throws_ok($$SELECT allocate_port('11111111-0000-0000-0000-000000000001',
                                        '55555555-0000-0000-0000-000000000003', 'x')$$,
                 '55000', 'port range off is not active', 'an inactive range refuses');
SELECT throws_ok($$SELECT allocate_port('11111111-0000-0000-0000-000000000001',
                                        '99999999-0000-0000-0000-000000000000', 'x')$$,
                 'P0002', NULL, 'an unknown range refuses');
SELECT throws_ok($$SELECT allocate_port('11111111-0000-0000-0000-000000000001',
                                        '55555555-0000-0000-0000-000000000002', NULL)$$,
                 '22004', NULL, 'a NULL service name refuses');
SELECT throws_ok($$SELECT allocate_port(NULL, '55555555-0000-0000-0000-000000000002', 'x')$$,
                 '22004', NULL, 'a NULL project refuses');
SELECT throws_ok($$SELECT allocate_port('11111111-0000-0000-0000-000000000001', NULL, 'x')$$,
                 'P0002', NULL, 'a NULL range refuses');
-- a port held through an overlapping range is taken
INSERT INTO port_ranges (id, range_name, start_port, end_port)
VALUES ('55555555-0000-0000-0000-000000000004', 'overlap', 6000, 6000);
SELECT throws_ok($$SELECT allocate_port('11111111-0000-0000-0000-000000000001',
                                        '55555555-0000-0000-0000-000000000004', 'y')$$,
                 '53400', NULL, 'a port held through another range counts as taken');

-- views
SELECT results_eq($$SELECT range_name, total_ports, allocated_ports, released_ports, reserved_ports,
                           utilization_percent FROM port_range_utilization ORDER BY range_name$$,
                  $$VALUES ('off', 10, 0::bigint, 0::bigint, 0::bigint, 0.00),
                           ('overlap', 1, 0, 0, 0, 0.00),
                           ('resv', 10, 3, 0, 0, 30.00),
                           ('tiny', 3, 3, 0, 0, 100.00)$$,
                  'port_range_utilization counts distinct ports per range');
SELECT release_port(6002);
SELECT results_eq($$SELECT released_ports, allocated_ports FROM port_range_utilization WHERE range_name = 'resv'$$,
                  $$VALUES (1::bigint, 2::bigint)$$, 'released ports are counted apart');
SELECT results_eq($$SELECT port_number, service_name, project_name, range_name FROM active_port_allocations
                    WHERE range_name = 'resv' ORDER BY port_number$$,
                  $$VALUES (6000, 'db', 'beta', 'resv'), (6001, 'db', 'alpha', 'resv')$$,
                  'active_port_allocations: held ports with project and range names');

SELECT * FROM finish();
ROLLBACK;
