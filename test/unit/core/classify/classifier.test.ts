// Table-driven classification: SQL in, expected class, pins, tables and hints out (PgCat's test_infer_replica style).
import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import type { Classification } from '../../../../src/core/classify/classification.js'
import { Classifier } from '../../../../src/core/classify/classifier.js'

type Expect = Partial<{ [K in keyof Classification]: unknown }>

/** `kindReason` is 'kind/reason'; `pin` is always checked (absent means no pin). */
function c(sql: string, kindReason: string, extra: Expect = {}): [string, Expect] {
  const [kind, reason] = kindReason.split('/')
  return [sql, { kind, reason, requiresPrimary: kind !== 'read', pin: undefined, ...extra }]
}

const CASES: [string, Expect][] = [
  // reads
  c('SELECT 1', 'read/read', { tables: [], statementCount: 1 }),
  c('select * from users', 'read/read', { tables: ['users'] }),
  c('SELECT * FROM public.users u JOIN orders o ON o.user_id = u.id', 'read/read', {
    tables: ['public.users', 'orders'],
  }),
  c('SELECT * FROM "Users"', 'read/read', { tables: ['users'] }),
  c('SELECT count(*) FROM t WHERE a IN (SELECT b FROM u)', 'read/read', {
    tables: ['t', 'u'],
    functions: [],
  }),
  c('VALUES (1), (2)', 'read/read'),
  c('TABLE accounts', 'read/read', { tables: ['accounts'] }),
  c('SHOW search_path', 'read/read'),
  c('SHOW ALL', 'read/read'),
  c('EXPLAIN SELECT * FROM t', 'read/read', { tables: ['t'] }),
  c('EXPLAIN DELETE FROM t', 'read/read', { tables: ['t'] }),
  c('EXPLAIN (ANALYZE) SELECT * FROM t', 'read/read'),
  c('EXPLAIN ANALYZE SELECT * FROM t', 'read/read'),
  c('EXPLAIN (ANALYZE false) DELETE FROM t', 'read/read'),
  c('EXPLAIN (ANALYZE off) UPDATE t SET a = 1', 'read/read'),
  c('EXPLAIN (ANALYZE, VERBOSE, BUFFERS) SELECT 1', 'read/read'),
  c('SELECT now(), random(), gen_random_uuid(), clock_timestamp()', 'read/read', { functions: [] }),
  c('SELECT extract(year FROM now())', 'read/read', { functions: [] }),
  c('SELECT my_func(1)', 'read/read', { functions: ['my_func'] }),
  c('SELECT app.score(id) FROM t', 'read/read', { functions: ['app.score'], tables: ['t'] }),
  c('SELECT safe_fn(1)', 'read/read', { functions: [] }),
  c('SELECT Analytics.Safe_Fn(1)', 'read/read', { functions: [] }),
  c('SELECT * FROM generate_series(1, 10)', 'read/read', { functions: [] }),
  c('SELECT * FROM t UNION ALL SELECT * FROM u', 'read/read', { tables: ['t', 'u'] }),
  c('SELECT * FROM t EXCEPT SELECT * FROM u', 'read/read'),
  c('WITH x AS (SELECT * FROM t) SELECT * FROM x', 'read/read', { tables: ['t'] }),
  c(
    'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r',
    'read/read',
    {
      tables: [],
    },
  ),
  c('SELECT * FROM a.b.c', 'read/read', { tables: ['b.c'] }),
  c('SELECT * FROM ONLY parent', 'read/read', { tables: ['parent'] }),
  c('SELECT * FROM t LIMIT 10 OFFSET 5', 'read/read'),
  c('SELECT DISTINCT ON (a) a, b FROM t ORDER BY a, b DESC', 'read/read'),
  c('SELECT a, count(*) FROM t GROUP BY a HAVING count(*) > 1', 'read/read'),
  c('SELECT row_number() OVER (PARTITION BY a ORDER BY b) FROM t', 'read/read', { functions: [] }),
  c('SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id)', 'read/read', { tables: ['t', 'u'] }),
  c('SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.t_id = t.id) s', 'read/read', { tables: ['t', 'u'] }),
  c('SELECT $1::int', 'read/read'),
  c('SELECT * FROM t WHERE id = $1 AND name = $2', 'read/read'),
  c("SELECT 'INSERT INTO t VALUES (1)'", 'read/read', { tables: [] }),
  c('SELECT $$DELETE FROM t$$', 'read/read'),
  c('SELECT "nextval" FROM t', 'read/read'),
  c('SELECT pg_is_in_recovery()', 'read/read', { functions: [] }),
  c("SELECT current_setting('freshet.freshness')", 'read/read', { functions: [] }),
  c('FETCH 10 FROM c', 'read/read'),
  c('FETCH ALL IN c', 'read/read'),
  c('MOVE NEXT IN c', 'read/read'),
  c('DECLARE c CURSOR FOR SELECT * FROM t', 'read/read', { tables: ['t'] }),
  c('DECLARE c SCROLL CURSOR WITHOUT HOLD FOR SELECT 1', 'read/read'),
  c('COPY t TO STDOUT', 'read/read', { tables: ['t'] }),
  c('COPY (SELECT * FROM t WHERE a > 1) TO STDOUT WITH (FORMAT csv)', 'read/read', { tables: ['t'] }),
  c('', 'read/read', { statementCount: 0 }),
  c('   ', 'read/read', { statementCount: 0 }),
  c('-- just a comment', 'read/read', { statementCount: 0 }),
  c('SELECT 1;', 'read/read', { statementCount: 1 }),
  c('SELECT 1; SELECT 2', 'read/read', { statementCount: 2 }),
  c('SELECT current_timestamp, current_user, session_user', 'read/read', { functions: [] }),
  c('SELECT coalesce(a, b), nullif(a, 1), greatest(a, b) FROM t', 'read/read', { functions: [] }),
  c("SELECT jsonb_build_object('a', 1)", 'read/read', { functions: [] }),
  c('SELECT * FROM t WHERE a = ANY($1)', 'read/read'),
  c('SELECT * FROM t TABLESAMPLE SYSTEM (10)', 'read/read'),
  c("SELECT 1 FROM t WHERE s LIKE 'x%' ESCAPE '!'", 'read/read'),

  // DML
  c('INSERT INTO t (a) VALUES (1)', 'write/dml', { tables: ['t'] }),
  c('insert into s.t select * from u', 'write/dml', { tables: ['s.t', 'u'] }),
  c('INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET b = excluded.b', 'write/dml'),
  c('INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING RETURNING *', 'write/dml'),
  c('UPDATE t SET a = 1 WHERE id = 2', 'write/dml', { tables: ['t'] }),
  c('UPDATE t SET a = u.a FROM u WHERE t.id = u.id', 'write/dml', { tables: ['t', 'u'] }),
  c('DELETE FROM t WHERE id = 1', 'write/dml', { tables: ['t'] }),
  c('DELETE FROM t USING u WHERE t.id = u.id RETURNING t.*', 'write/dml', { tables: ['t', 'u'] }),
  c('MERGE INTO t USING u ON t.a = u.a WHEN MATCHED THEN DELETE', 'write/dml', { tables: ['t', 'u'] }),
  c(
    'MERGE INTO t USING (SELECT * FROM s) src ON t.id = src.id WHEN NOT MATCHED THEN INSERT VALUES (src.id)',
    'write/dml',
  ),
  c('INSERT INTO t DEFAULT VALUES', 'write/dml'),
  c('  insert into t values (1)', 'write/dml'),
  c('(SELECT 1)', 'read/read'),

  // explain analyze of writes
  c('EXPLAIN ANALYZE DELETE FROM t', 'write/explain_analyze_write', { tables: ['t'] }),
  c('EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1', 'write/explain_analyze_write'),
  c('EXPLAIN ANALYZE INSERT INTO t VALUES (1)', 'write/explain_analyze_write'),
  c("EXPLAIN ANALYZE SELECT nextval('s')", 'write/explain_analyze_write'),
  c('EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE', 'write/explain_analyze_write'),
  c('EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1', 'write/explain_analyze_write'),
  c('EXPLAIN (ANALYZE true) DELETE FROM t', 'write/explain_analyze_write'),
  c('EXPLAIN (ANALYZE 1) DELETE FROM t', 'write/explain_analyze_write'),

  // locking reads
  c('SELECT * FROM t FOR UPDATE', 'write/locking_read', { tables: ['t'] }),
  c('SELECT * FROM t FOR NO KEY UPDATE', 'write/locking_read'),
  c('SELECT * FROM t FOR SHARE', 'write/locking_read'),
  c('SELECT * FROM t FOR KEY SHARE', 'write/locking_read'),
  c('SELECT * FROM t FOR UPDATE SKIP LOCKED LIMIT 1', 'write/locking_read'),
  c('SELECT * FROM t FOR UPDATE NOWAIT', 'write/locking_read'),
  c('SELECT * FROM t FOR UPDATE OF t', 'write/locking_read'),
  c('SELECT * FROM t WHERE id IN (SELECT id FROM u FOR UPDATE)', 'write/locking_read', {
    tables: ['t', 'u'],
  }),
  c('SELECT * FROM (SELECT * FROM t FOR SHARE) s', 'write/locking_read'),
  c('WITH x AS (SELECT * FROM t FOR UPDATE) SELECT * FROM x', 'write/locking_read', { tables: ['t'] }),
  c('select * from jobs where state = 1 order by id for update skip locked', 'write/locking_read'),

  // CTEs with DML
  c('WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x', 'write/dml_in_cte', {
    tables: ['t'],
  }),
  c('WITH d AS (DELETE FROM t WHERE a < 1 RETURNING *) SELECT count(*) FROM d', 'write/dml_in_cte'),
  c('WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM u', 'write/dml_in_cte', { tables: ['t'] }),
  c(
    'WITH a AS (SELECT 1), b AS (WITH c AS (DELETE FROM t RETURNING *) SELECT * FROM c) SELECT * FROM b',
    'write/dml_in_cte',
    { tables: ['t'] },
  ),
  c(
    'SELECT * FROM t WHERE a IN (WITH d AS (DELETE FROM u RETURNING id) SELECT id FROM d)',
    'write/dml_in_cte',
  ),
  c(
    'WITH m AS (MERGE INTO t USING u ON t.a = u.a WHEN MATCHED THEN DELETE RETURNING t.*) SELECT * FROM m',
    'write/dml_in_cte',
  ),
  c('WITH x AS (INSERT INTO log VALUES (1)) INSERT INTO t SELECT 1', 'write/dml', { tables: ['t', 'log'] }),

  // select into / CTAS
  c('SELECT * INTO newt FROM t', 'write/select_into', { tables: ['newt', 't'] }),
  c('SELECT * INTO TEMP tmp FROM t', 'write/select_into', { pin: 'temp_table' }),
  c('CREATE TABLE x AS SELECT * FROM t', 'write/select_into', { tables: ['t', 'x'] }),
  c('CREATE TEMP TABLE x AS SELECT 1', 'write/select_into', { pin: 'temp_table' }),
  c('CREATE TABLE x AS EXECUTE p', 'write/select_into'),
  c('CREATE UNLOGGED TABLE x AS SELECT 1', 'write/select_into'),

  // DDL
  c('CREATE TABLE t (a int)', 'write/ddl', { tables: ['t'] }),
  c('CREATE TABLE IF NOT EXISTS s.t (a int PRIMARY KEY)', 'write/ddl', { tables: ['s.t'] }),
  c('CREATE TEMP TABLE x (a int)', 'write/ddl', { pin: 'temp_table' }),
  c('CREATE TEMPORARY TABLE x (a int) ON COMMIT DROP', 'write/ddl', { pin: 'temp_table' }),
  c('CREATE TEMP VIEW v AS SELECT 1', 'write/ddl', { pin: 'temp_table' }),
  c('CREATE TEMP SEQUENCE s', 'write/ddl', { pin: 'temp_table' }),
  c('CREATE UNLOGGED TABLE x (a int)', 'write/ddl'),
  c('CREATE VIEW v AS SELECT * FROM t', 'write/ddl'),
  c('CREATE MATERIALIZED VIEW mv AS SELECT * FROM t', 'write/ddl'),
  c('REFRESH MATERIALIZED VIEW mv', 'write/ddl', { tables: ['mv'] }),
  c('REFRESH MATERIALIZED VIEW CONCURRENTLY mv', 'write/ddl'),
  c('ALTER TABLE t ADD COLUMN b int', 'write/ddl', { tables: ['t'] }),
  c('ALTER TABLE t RENAME TO u', 'write/ddl'),
  c('DROP TABLE t', 'write/ddl'),
  c('DROP TABLE IF EXISTS t, u CASCADE', 'write/ddl'),
  c('TRUNCATE t', 'write/ddl', { tables: ['t'] }),
  c('TRUNCATE TABLE t, u RESTART IDENTITY', 'write/ddl'),
  c('CREATE INDEX CONCURRENTLY i ON t (a)', 'write/ddl', { tables: ['t'] }),
  c('DROP INDEX i', 'write/ddl'),
  c('GRANT SELECT ON t TO app', 'write/ddl'),
  c('REVOKE ALL ON t FROM app', 'write/ddl'),
  c("COMMENT ON TABLE t IS 'x'", 'write/ddl'),
  c('VACUUM t', 'write/ddl'),
  c('VACUUM (FULL, ANALYZE) t', 'write/ddl'),
  c('ANALYZE t', 'write/ddl'),
  c('REINDEX TABLE t', 'write/ddl'),
  c('CLUSTER t USING i', 'write/ddl'),
  c('CHECKPOINT', 'write/ddl'),
  c('CREATE SCHEMA s', 'write/ddl'),
  c('CREATE EXTENSION IF NOT EXISTS pgcrypto', 'write/ddl'),
  c('CREATE SEQUENCE s', 'write/ddl'),
  c('ALTER SEQUENCE s RESTART', 'write/ddl'),
  c('CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$', 'write/ddl'),
  c(
    'CREATE OR REPLACE FUNCTION f() RETURNS trigger AS $body$ BEGIN RETURN NEW; END $body$ LANGUAGE plpgsql',
    'write/ddl',
  ),
  c('DROP FUNCTION f()', 'write/ddl'),
  c('CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()', 'write/ddl'),
  c("CREATE TYPE mood AS ENUM ('a', 'b')", 'write/ddl'),
  c('CREATE ROLE r', 'write/ddl'),
  c('ALTER SYSTEM SET work_mem = 1', 'write/ddl'),
  c('SECURITY LABEL ON TABLE t IS NULL', 'write/ddl'),
  c('CREATE POLICY p ON t USING (true)', 'write/ddl'),

  // call / do / copy / lock
  c('CALL proc(1)', 'write/call'),
  c('CALL s.proc()', 'write/call'),
  c('DO $$ BEGIN PERFORM 1; END $$', 'write/do'),
  c("DO LANGUAGE plpgsql 'BEGIN END'", 'write/do'),
  c('COPY t FROM STDIN', 'write/copy_from', { tables: ['t'] }),
  c("COPY t (a, b) FROM '/tmp/x.csv' WITH (FORMAT csv)", 'write/copy_from'),
  c('COPY (INSERT INTO t VALUES (1) RETURNING *) TO STDOUT', 'write/dml'),
  c('LOCK t', 'write/lock', { tables: ['t'] }),
  c('LOCK TABLE t IN ACCESS EXCLUSIVE MODE', 'write/lock'),
  c('LOCK TABLE s.t, u IN SHARE MODE NOWAIT', 'write/lock', { tables: ['s.t', 'u'] }),

  // write functions
  c("SELECT nextval('s')", 'write/write_function', { functions: [] }),
  c("SELECT pg_catalog.nextval('s')", 'write/write_function'),
  c("SELECT setval('s', 10)", 'write/write_function'),
  c("SELECT currval('s')", 'write/write_function'),
  c('SELECT lastval()', 'write/write_function'),
  c("SELECT NEXTVAL('s')", 'write/write_function'),
  c("SELECT id, nextval('s') FROM t", 'write/write_function', { tables: ['t'] }),
  c("SELECT * FROM t WHERE id = (SELECT nextval('s'))", 'write/write_function'),
  c('SELECT pg_advisory_lock(1)', 'write/write_function', { pin: 'advisory_lock' }),
  c('SELECT pg_advisory_lock_shared(1)', 'write/write_function', { pin: 'advisory_lock' }),
  c('SELECT pg_try_advisory_lock(1, 2)', 'write/write_function', { pin: 'advisory_lock' }),
  c('SELECT pg_catalog.pg_try_advisory_lock_shared(1)', 'write/write_function', { pin: 'advisory_lock' }),
  c('SELECT pg_advisory_xact_lock(1)', 'write/write_function'),
  c('SELECT pg_try_advisory_xact_lock(1)', 'write/write_function'),
  c('SELECT pg_advisory_xact_lock_shared(1)', 'write/write_function'),
  c('SELECT pg_advisory_unlock(1)', 'write/write_function'),
  c('SELECT pg_advisory_unlock_all()', 'write/write_function', { unpin: 'advisory_lock' }),
  c("SELECT pg_notify('ch', 'x')", 'write/notify'),
  c("SELECT set_config('search_path', 'x', false)", 'write/write_function', { pin: 'session_set' }),
  c('SELECT txid_current()', 'write/write_function'),
  c('SELECT audit.log_event(1)', 'write/write_function', { functions: [] }),
  c('SELECT AUDIT.LOG_EVENT(1)', 'write/write_function'),
  c('SELECT log_event(1)', 'read/read', { functions: ['log_event'] }),
  c('SELECT bump()', 'write/write_function'),
  c('SELECT other.bump()', 'write/write_function'),
  c('SELECT * FROM t WHERE a = bump()', 'write/write_function', { tables: ['t'] }),
  c('SELECT myschema.nextval(1)', 'read/read', { functions: ['myschema.nextval'] }),

  // transactions
  c('BEGIN', 'transaction/transaction_control', { transaction: { action: 'begin' } }),
  c('begin;', 'transaction/transaction_control', { transaction: { action: 'begin' } }),
  c('BEGIN READ ONLY', 'transaction/transaction_control', {
    transaction: { action: 'begin', readOnly: true },
  }),
  c('BEGIN READ WRITE', 'transaction/transaction_control', {
    transaction: { action: 'begin', readOnly: false },
  }),
  c('BEGIN ISOLATION LEVEL SERIALIZABLE', 'transaction/transaction_control', {
    transaction: { action: 'begin' },
  }),
  c('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY, DEFERRABLE', 'transaction/transaction_control', {
    transaction: { action: 'begin', readOnly: true },
  }),
  c('START TRANSACTION', 'transaction/transaction_control', { transaction: { action: 'begin' } }),
  c('START TRANSACTION READ ONLY', 'transaction/transaction_control', {
    transaction: { action: 'begin', readOnly: true },
  }),
  c('START TRANSACTION READ WRITE', 'transaction/transaction_control', {
    transaction: { action: 'begin', readOnly: false },
  }),
  c('COMMIT', 'transaction/transaction_control', { transaction: { action: 'commit' } }),
  c('END', 'transaction/transaction_control', { transaction: { action: 'commit' } }),
  c('COMMIT AND CHAIN', 'transaction/transaction_control', { transaction: { action: 'commit' } }),
  c('ROLLBACK', 'transaction/transaction_control', { transaction: { action: 'rollback' } }),
  c('ABORT', 'transaction/transaction_control', { transaction: { action: 'rollback' } }),
  c('SAVEPOINT sp1', 'transaction/transaction_control', { transaction: { action: 'savepoint' } }),
  c('RELEASE SAVEPOINT sp1', 'transaction/transaction_control', { transaction: { action: 'release' } }),
  c('RELEASE sp1', 'transaction/transaction_control', { transaction: { action: 'release' } }),
  c('ROLLBACK TO SAVEPOINT sp1', 'transaction/transaction_control', {
    transaction: { action: 'rollback_to' },
  }),
  c('ROLLBACK TO sp1', 'transaction/transaction_control', { transaction: { action: 'rollback_to' } }),
  c("PREPARE TRANSACTION 'gx'", 'transaction/transaction_control', { transaction: { action: 'prepare' } }),
  c("COMMIT PREPARED 'gx'", 'transaction/transaction_control', {
    transaction: { action: 'commit_prepared' },
  }),
  c("ROLLBACK PREPARED 'gx'", 'transaction/transaction_control', {
    transaction: { action: 'rollback_prepared' },
  }),
  c('SET TRANSACTION READ ONLY', 'transaction/transaction_control', {
    transaction: { action: 'set_transaction', readOnly: true },
  }),
  c('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'transaction/transaction_control', {
    transaction: { action: 'set_transaction' },
  }),
  c('SET TRANSACTION READ WRITE', 'transaction/transaction_control', {
    transaction: { action: 'set_transaction', readOnly: false },
  }),

  // multi-statement
  c('BEGIN; INSERT INTO t VALUES (1); COMMIT', 'write/dml', {
    statementCount: 3,
    transaction: { action: 'commit' },
    transactions: [{ action: 'begin' }, { action: 'commit' }],
    tables: ['t'],
  }),
  c('BEGIN; SELECT 1', 'transaction/transaction_control', {
    transaction: { action: 'begin' },
    transactions: [{ action: 'begin' }],
  }),
  c('SELECT 1; DELETE FROM t', 'write/dml', { statementCount: 2 }),
  c('SELECT * FROM a; SELECT * FROM b', 'read/read', { tables: ['a', 'b'] }),
  c('SET statement_timeout = 1000; SELECT * FROM t', 'session/session_state', { pin: 'session_set' }),
  c("SELECT 1; SELECT nextval('s'); SELECT * FROM t FOR UPDATE", 'write/write_function'),
  c('LISTEN a; LISTEN b', 'session/session_state', { pin: 'listen' }),

  // session state
  c('SET statement_timeout = 5000', 'session/session_state', {
    pin: 'session_set',
    settings: [{ name: 'statement_timeout', value: '5000', local: false }],
  }),
  c('SET SESSION search_path TO app, public', 'session/session_state', {
    pin: 'session_set',
    settings: [{ name: 'search_path', value: 'app, public', local: false }],
  }),
  c("SET LOCAL statement_timeout = '5s'", 'session/session_state', {
    settings: [{ name: 'statement_timeout', value: '5s', local: true }],
  }),
  c("SET freshet.freshness = 'eventual'", 'session/session_state', {
    settings: [{ name: 'freshet.freshness', value: 'eventual', local: false }],
  }),
  c("set FRESHET.FRESHNESS to 'near_rt'", 'session/session_state', {
    settings: [{ name: 'freshet.freshness', value: 'near_rt', local: false }],
  }),
  c("SET LOCAL freshet.freshness = 'strict'", 'session/session_state', {
    settings: [{ name: 'freshet.freshness', value: 'strict', local: true }],
  }),
  c("SET TIME ZONE 'UTC'", 'session/session_state', {
    pin: 'session_set',
    settings: [{ name: 'timezone', value: 'UTC', local: false }],
  }),
  c('SET statement_timeout TO DEFAULT', 'session/session_state', {
    settings: [{ name: 'statement_timeout', value: null, local: false }],
  }),
  c('RESET statement_timeout', 'session/session_state', {
    settings: [{ name: 'statement_timeout', value: null, local: false, reset: true }],
  }),
  c('RESET ALL', 'session/session_state', {
    unpin: 'session_set',
    settings: [{ name: 'all', value: null, local: false }],
  }),
  c('SET ROLE app', 'session/session_state', { pin: 'session_set' }),
  c('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', 'session/session_state', { pin: 'session_set' }),
  c('SET enable_seqscan = off', 'session/session_state', {
    pin: 'session_set',
    settings: [{ name: 'enable_seqscan', value: 'off', local: false }],
  }),
  c('LISTEN ch', 'session/session_state', { pin: 'listen', channel: 'ch' }),
  c('UNLISTEN *', 'session/session_state', { unpin: 'listen', channel: null }),
  c('UNLISTEN ch', 'session/session_state', { unpin: undefined, channel: 'ch' }),
  c('NOTIFY ch', 'write/notify', { channel: 'ch' }),
  c("NOTIFY ch, 'payload'", 'write/notify'),
  c('PREPARE q AS SELECT * FROM t WHERE id = $1', 'session/session_state', {
    pin: 'prepared_statement',
    prepare: {
      name: 'q',
      inner: {
        kind: 'read',
        reason: 'read',
        requiresPrimary: false,
        tables: ['t'],
        functions: [],
        hints: {},
        statementCount: 1,
      },
    },
  }),
  c('PREPARE w (int) AS DELETE FROM t WHERE id = $1', 'session/session_state', { pin: 'prepared_statement' }),
  c('EXECUTE q(1)', 'write/execute_write', { execute: { name: 'q' } }),
  c('EXECUTE Q', 'write/execute_write', { execute: { name: 'q' } }),
  c('DEALLOCATE q', 'session/session_state', { deallocate: { name: 'q' } }),
  c('DEALLOCATE PREPARE q', 'session/session_state', { deallocate: { name: 'q' } }),
  c('DEALLOCATE ALL', 'session/session_state', { deallocate: { name: null }, unpin: 'prepared_statement' }),
  c('DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t', 'session/session_state', { pin: 'cursor_with_hold' }),
  c('DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE', 'write/locking_read'),
  c('CLOSE c', 'session/session_state'),
  c('CLOSE ALL', 'session/session_state', { unpin: 'cursor_with_hold' }),
  c('DISCARD ALL', 'session/session_state', { unpin: 'all' }),
  c('DISCARD TEMP', 'session/session_state', { unpin: 'temp_table' }),
  c('DISCARD PLANS', 'session/session_state', { unpin: undefined }),
  c('DISCARD SEQUENCES', 'session/session_state'),
  c("LOAD 'auto_explain'", 'session/session_state', { pin: 'session_set' }),

  // unparsable
  c('SELEC 1', 'unknown/unparsable', { parseError: 'syntax error at or near "SELEC"' }),
  c('SELECT * FROM', 'unknown/unparsable'),
  c("SELECT 'unterminated", 'unknown/unparsable'),
  c('SELECT 1; garbage', 'unknown/unparsable'),
  c('INSERT INTO', 'unknown/unparsable'),

  // hints: comments count, literals / identifiers do not
  c('/* FRESHNESS: EVENTUAL */ SELECT * FROM t', 'read/read', { hints: { freshness: 'eventual' } }),
  c('/*+ ROUTE_TO: Primary */ SELECT 1', 'read/read', { hints: { routeTo: 'primary' } }),
  c('SELECT 1 /* MIN_LSN: 0/16B3748 */', 'read/read', { hints: { minLsn: '0/16B3748' } }),
  c('SELECT 1 -- SHARD_KEY: Tenant42', 'read/read', { hints: { shardKey: 'Tenant42' } }),
  c("SELECT '/* FRESHNESS: eventual */' AS s", 'read/read', { hints: {} }),
  c("SELECT '-- ROUTE_TO: replica'", 'read/read', { hints: {} }),
  c('SELECT $$ /* FRESHNESS: eventual */ $$', 'read/read', { hints: {} }),
  c('SELECT $tag$ -- ROUTE_TO: replica $tag$', 'read/read', { hints: {} }),
  c("SELECT E'\\' /* FRESHNESS: eventual */'", 'read/read', { hints: {} }),
  c('SELECT 1 AS "/* FRESHNESS: eventual */"', 'read/read', { hints: {} }),
  c("SELECT 'it''s -- ROUTE_TO: replica'", 'read/read', { hints: {} }),
  c("SELECT * FROM t /*freshness='near_rt',route_to='primary',traceparent='00-abc-def-01'*/", 'read/read', {
    hints: { freshness: 'near_rt', routeTo: 'primary', traceparent: '00-abc-def-01' },
  }),
  c('INSERT INTO t VALUES (1) /* FRESHNESS: eventual */', 'write/dml', { hints: { freshness: 'eventual' } }),
  c('/* outer /* FRESHNESS: strict */ still comment */ SELECT 1', 'read/read', {
    hints: { freshness: 'strict' },
  }),

  // ORM-style statements
  c(
    'SELECT "public"."User"."id", "public"."User"."email" FROM "public"."User" WHERE ("public"."User"."id" = $1 AND 1=1) LIMIT $2 OFFSET $3',
    'read/read',
    { tables: ['public.user'] },
  ),
  c(
    'INSERT INTO "public"."Post" ("title","authorId") VALUES ($1,$2) RETURNING "public"."Post"."id"',
    'write/dml',
    { tables: ['public.post'] },
  ),
  c('UPDATE "public"."User" SET "name" = $1 WHERE ("public"."User"."id" = $2 AND 1=1)', 'write/dml'),
  c(
    'SELECT "t1"."id" FROM "public"."User" AS "t1" LEFT JOIN "public"."Post" AS "t2" ON ("t2"."authorId") = ("t1"."id")',
    'read/read',
    { tables: ['public.user', 'public.post'] },
  ),
  c('select "id", "name" from "users" where "users"."id" = $1', 'read/read', { tables: ['users'] }),
  c('insert into "users" ("name", "email") values ($1, $2) returning "id", "name"', 'write/dml', {
    tables: ['users'],
  }),
  c('delete from "users" where "users"."id" = $1', 'write/dml'),
  c(
    'select "users"."id", "posts"."title" from "users" left join "posts" on "users"."id" = "posts"."author_id"',
    'read/read',
    { tables: ['users', 'posts'] },
  ),
  c('select "id" from "person" where "id" = $1 for update', 'write/locking_read', { tables: ['person'] }),
  c('select * from "person" where "first_name" in ($1, $2) order by "id" desc limit $3', 'read/read'),
  c('with "x" as (select * from "person") select * from "x"', 'read/read', { tables: ['person'] }),
  c(
    'SELECT "User"."id" FROM "User" WHERE "User"."id" IN (SELECT "userId" FROM "Session" WHERE "expires" > now())',
    'read/read',
    { tables: ['user', 'session'] },
  ),
]

describe('Classifier: table-driven', () => {
  let classifier: Classifier
  before(async () => {
    classifier = await Classifier.create({
      writeFunctions: ['audit.log_event', 'BUMP'],
      readOnlyFunctions: ['safe_fn', 'analytics.safe_fn'],
    })
  })
  test('has at least 200 cases', () => assert.ok(CASES.length >= 200, `${CASES.length} cases`))
  for (const [sql, expected] of CASES) {
    test(sql === '' ? '(empty)' : sql, () => {
      const got = classifier.classify(sql)
      for (const [key, value] of Object.entries(expected)) {
        if (key === 'parseError' && typeof value === 'string') {
          assert.match(String(got.parseError), new RegExp(value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
          continue
        }
        assert.deepEqual(got[key as keyof Classification], value, `${key} of ${JSON.stringify(sql)}`)
      }
      assert.ok(Object.isFrozen(got), 'result is frozen')
      assert.ok(Object.isFrozen(got.tables) && Object.isFrozen(got.hints), 'nested values are frozen')
    })
  }
})
