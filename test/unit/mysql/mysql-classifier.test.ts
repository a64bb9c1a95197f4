// Table-driven: MySQL/MariaDB SQL in, classification out (kind, reason, pin).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { ConfigError } from '../../../src/core/errors.js'
import { MysqlClassifier } from '../../../src/mysql/mysql-classifier.js'

type Row = [sql: string, kind: string, reason: string, pin?: string]

const CASES: Row[] = [
  ['SELECT * FROM t WHERE id = ?', 'read', 'read'],
  ['select `id`, `name` from `users` where `users`.`id` = ? limit ?', 'read', 'read'],
  ['WITH x AS (SELECT 1) SELECT * FROM x', 'read', 'read'],
  ['SELECT COUNT(*), MAX(a), CONCAT(b, c), NOW() FROM t', 'read', 'read'],
  ['SHOW TABLES', 'read', 'read'],
  ['EXPLAIN SELECT * FROM t', 'read', 'read'],
  ['INSERT INTO t VALUES (1)', 'write', 'dml'],
  ['REPLACE INTO t VALUES (1)', 'write', 'dml'],
  ['UPDATE t SET a = (SELECT 1)', 'write', 'dml'],
  ['DELETE FROM t WHERE id = 1', 'write', 'dml'],
  ['CREATE TABLE t2 (id INT)', 'write', 'ddl'],
  ['ALTER TABLE t ADD COLUMN c INT', 'write', 'ddl'],
  ['DROP TABLE t', 'write', 'ddl'],
  ['TRUNCATE TABLE t', 'write', 'ddl'],
  ['CREATE TEMPORARY TABLE tt (id INT)', 'write', 'ddl', 'temp_table'],
  ['DROP TEMPORARY TABLE tt', 'write', 'ddl'],
  ['SELECT * FROM t WHERE id = 1 FOR UPDATE', 'write', 'locking_read'],
  ['SELECT * FROM t FOR SHARE', 'write', 'locking_read'],
  ['SELECT * FROM t LOCK IN SHARE MODE', 'write', 'locking_read'],
  ['SELECT a INTO @x FROM t', 'write', 'select_into'],
  ["SELECT * FROM t INTO OUTFILE '/tmp/x'", 'write', 'select_into'],
  ['CALL p()', 'write', 'call'],
  ["LOAD DATA INFILE 'x' INTO TABLE t", 'write', 'load_data'],
  ['DO SLEEP(1)', 'write', 'do'],
  ['LOCK TABLES t WRITE', 'write', 'lock', 'advisory_lock'],
  ['UNLOCK TABLES', 'write', 'lock'],
  ["SELECT GET_LOCK('a', 1)", 'write', 'write_function', 'advisory_lock'],
  ["SELECT RELEASE_LOCK('a')", 'write', 'write_function'],
  ['SELECT LAST_INSERT_ID(5)', 'write', 'write_function'],
  ['SELECT LAST_INSERT_ID()', 'write', 'write_function'],
  ['SELECT FOUND_ROWS()', 'write', 'write_function'],
  ['SELECT NEXTVAL(s)', 'write', 'write_function'],
  ["SELECT MASTER_GTID_WAIT('0-1-1', 1)", 'write', 'write_function'],
  ['SELECT * FROM t WHERE a IN (SELECT GET_LOCK(1, 2))', 'write', 'write_function', 'advisory_lock'],
  ['SELECT @a := 1', 'write', 'session_state', 'session_set'],
  ['SET @a = 1', 'session', 'session_state', 'session_set'],
  ['SET NAMES utf8mb4', 'session', 'session_state', 'session_set'],
  ['SET autocommit = 0', 'session', 'session_state', 'session_set'],
  ['SET GLOBAL max_connections = 10', 'write', 'ddl'],
  ['USE other', 'session', 'session_state', 'session_set'],
  ["PREPARE s FROM 'SELECT 1'", 'session', 'session_state', 'prepared_statement'],
  ['EXECUTE s', 'write', 'execute_write'],
  ['DEALLOCATE PREPARE s', 'session', 'session_state'],
  ['BEGIN', 'transaction', 'transaction_control'],
  ['START TRANSACTION', 'transaction', 'transaction_control'],
  ['START TRANSACTION READ ONLY', 'transaction', 'transaction_control'],
  ['COMMIT', 'transaction', 'transaction_control'],
  ['ROLLBACK', 'transaction', 'transaction_control'],
  ['SAVEPOINT s1', 'transaction', 'transaction_control'],
  ['ROLLBACK TO SAVEPOINT s1', 'transaction', 'transaction_control'],
  ['RELEASE SAVEPOINT s1', 'transaction', 'transaction_control'],
  ["XA START 'x'", 'transaction', 'transaction_control'],
  ['SELECT /*!40001 SQL_NO_CACHE */ 1', 'unknown', 'unparsable'],
  ['SELECT FROM WHERE', 'unknown', 'unparsable'],
  ['ANALYZE SELECT * FROM t', 'write', 'ddl'],
  ['SELECT 1; DELETE FROM t', 'write', 'dml'],
]

describe('MysqlClassifier', () => {
  const c = new MysqlClassifier()
  for (const [sql, kind, reason, pin] of CASES) {
    it(`${sql} -> ${kind}/${reason}${pin ? ` pin ${pin}` : ''}`, () => {
      const got = c.classify(sql)
      assert.equal(got.kind, kind)
      assert.equal(got.reason, reason)
      assert.equal(got.pin, pin)
      assert.equal(got.requiresPrimary, kind !== 'read')
      assert.ok(Object.isFrozen(got))
    })
  }

  it('reads transaction modes, tables, hints and GTID tokens', () => {
    assert.deepEqual(c.classify('START TRANSACTION READ ONLY').transaction, {
      action: 'begin',
      readOnly: true,
    })
    assert.deepEqual(c.classify('ROLLBACK TO s1').transaction, { action: 'rollback_to' })
    assert.deepEqual([...c.classify('SELECT * FROM a.b JOIN c ON 1').tables].sort(), ['a.b', 'c'])
    assert.equal(c.classify('/* FRESHNESS: EVENTUAL */ SELECT 1').hints.freshness, 'eventual')
    assert.equal(c.classify('/*+ ROUTE_TO: replica_1 */ SELECT 1').hints.routeTo, 'replica_1')
    assert.equal(c.classify('/* MIN_GTID: 0-1-42 */ SELECT 1').hints.minLsn, '0-1-42')
    // hints come from comments only
    assert.equal(c.classify("SELECT '/* FRESHNESS: EVENTUAL */'").hints.freshness, undefined)
    assert.deepEqual(c.classify("SET @freshet_freshness = 'near_rt'").settings, [
      { name: 'freshet.freshness', value: 'near_rt', local: false },
    ])
  })

  it('lists unknown functions for the decider, honours write_functions and read_only_functions', () => {
    assert.deepEqual(c.classify('SELECT my_fn(1)').functions, ['my_fn'])
    assert.deepEqual(c.classify('SELECT UPPER(a) FROM t').functions, [])
    const custom = new MysqlClassifier({ writeFunctions: ['sleep'], readOnlyFunctions: ['my_fn'] })
    assert.equal(custom.classify('SELECT SLEEP(1)').reason, 'write_function')
    assert.deepEqual(custom.classify('SELECT my_fn(1)').functions, [])
    assert.equal(c.classify('SELECT SLEEP(1)').kind, 'read')
  })

  it('returns the cached classification for the same text', () => {
    const sql = 'SELECT * FROM cached WHERE id = ?'
    assert.equal(c.classify(sql), c.classify(sql))
  })

  it('parses MySQL 8 syntax with the mysql dialect', () => {
    const my = new MysqlClassifier({ dialect: 'mysql' })
    assert.equal(my.classify('SELECT * FROM t LOCK IN SHARE MODE').reason, 'locking_read')
    assert.equal(my.classify('SELECT * FROM t').kind, 'read')
  })
})

describe('engine: mysql config', () => {
  const cluster = { primary: { name: 'primary', url: 'mysql://app@db:3306/main' } }
  it('accepts mysql:// and mariadb:// URLs with engine: mysql or without engine', () => {
    assert.equal(validateConfig({ engine: 'mysql', cluster }).engine, 'mysql')
    assert.equal(validateConfig({ cluster }).engine, undefined)
    validateConfig({ cluster: { primary: { name: 'p', url: 'mariadb://app@db/main' } } })
  })
  it('names the key path of a URL of the wrong engine', () => {
    const issues = (doc: unknown) => {
      try {
        validateConfig(doc)
        return []
      } catch (err) {
        assert.ok(err instanceof ConfigError)
        return err.issues.map((i) => i.path)
      }
    }
    assert.deepEqual(
      issues({ engine: 'mysql', cluster: { primary: { name: 'p', url: 'postgres://a@b/c' } } }),
      ['cluster.primary.url'],
    )
    assert.deepEqual(
      issues({
        engine: 'postgres',
        cluster: { ...cluster, replicas: [{ name: 'r', url: 'mysql://a@b/c' }] },
      }),
      ['cluster.primary.url', 'cluster.replicas[0].url'],
    )
    assert.deepEqual(issues({ engine: 'db2', cluster }), ['engine'])
  })
})
