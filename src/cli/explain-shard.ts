// `freshet explain` for a sharded config: the statement's class and its shard decision (shard, source,
// key) or the refusal freshet would raise, from the sharding core alone.

import { Classifier } from '../core/classify/classifier.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { isFreshetError } from '../core/errors.js'
import { shardSetupOf } from '../core/shard/router-from-config.js'
import { ShardKeyExtractor } from '../core/shard/shard-key-extractor.js'
import { AGGREGATE } from '../core/shard/shard-router.js'

/** What `freshet explain` prints for a sharded config, and its exit code (3 when freshet would refuse). */
export interface ShardExplanation {
  readonly lines: readonly string[]
  readonly json: Record<string, unknown>
  readonly code: number
}

/**
 * Explains where a statement goes under a sharded config. The parser must be loaded
 * (`await Classifier.loadParser()`). Node-level routing inside the shard is not shown: it needs the shard's
 * live lag readings (`pool.explain(sql)`, the admin API's explain).
 * @example
 * explainShard(config, 'SELECT * FROM orders WHERE customer_id = 42').lines
 * // ['class:     read (read)', 'shard:     shard_1 (source: statement, key 42)', ...]
 */
export function explainShard(config: FreshetConfig, sql: string): ShardExplanation {
  const setup = shardSetupOf(config)
  if (!setup) throw new Error('explainShard needs a config with shards and sharding')
  const c = new Classifier({ writeFunctions: config.routing.write_functions }).classify(sql)
  const facts = new ShardKeyExtractor(setup.tables, 1).facts(sql)
  const cls = `class:     ${c.kind} (${c.reason})`
  const note =
    "note:      the node inside the shard needs live readings: pool.explain(sql) or the admin API's explain"
  try {
    const d = setup.router.route({
      write: c.requiresPrimary,
      tables: c.tables,
      facts,
      hints: {
        ...(c.hints.shardKey !== undefined ? { shardKey: c.hints.shardKey } : {}),
        ...(c.hints.routeTo !== undefined ? { routeTo: c.hints.routeTo } : {}),
      },
    })
    const target =
      d.shard === AGGREGATE ? `aggregate node ${config.sharding?.aggregate?.name ?? ''}`.trim() : d.shard
    const key = d.key !== undefined ? `, key ${d.key}` : ''
    const cross = d.crossShardTables ? `, cross-shard: ${d.crossShardTables.join(', ')}` : ''
    return {
      lines: [cls, `shard:     ${target} (source: ${d.source}${key}${cross})`, note],
      json: { classification: { kind: c.kind, reason: c.reason, tables: c.tables }, shard: d },
      code: 0,
    }
  } catch (err) {
    if (!isFreshetError(err)) throw err
    return {
      lines: [cls, `refused:   ${err.sqlState} ${err.message}`, note],
      json: {
        classification: { kind: c.kind, reason: c.reason, tables: c.tables },
        error: { code: err.code, sqlstate: err.sqlState, message: err.message },
      },
      code: 3,
    }
  }
}
