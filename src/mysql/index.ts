// freshet/mysql: the MySQL/MariaDB library face (createMysqlPool), its classifier and GTID helpers.

export type { FreshetConfig, FreshetConfigInput } from '../core/config/schema.js'
export { type GtidSet, gtidCovers, laterGtid, parseGtid } from '../core/gtid.js'
export { currentContext, freshness, readYourWrites, withPrimary, withScope } from '../library/context.js'
export { type CallbackConnection, type CallbackPool, callbackPool } from './callback-api.js'
export { type Mysql2Module, mysql2Module } from './driver-module.js'
export { MysqlClassifier, type MysqlClassifierOptions, type MysqlDialect } from './mysql-classifier.js'
export { gtidAfterWrite, MysqlDriver } from './mysql-driver.js'
export type { MysqlPoolExtras } from './mysql-node-pools.js'
export {
  type CreateMysqlPoolOptions,
  createMysqlPool,
  MysqlPool,
  type MysqlResult,
  type MysqlStatement,
} from './mysql-pool.js'
export { MysqlPoolConnection } from './mysql-pool-connection.js'
export { mysqlConnectionOptions } from './mysql-url.js'
