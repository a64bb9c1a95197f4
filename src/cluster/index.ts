// The local cluster harness: a real primary with streaming replicas, for tests, benchmarks and the sandbox.

export { ClusterError } from './cluster-error.js'
export { ROLE_PASSWORDS } from './cluster-template.js'
export {
  EtcdCluster,
  type EtcdClusterOptions,
  EtcdMember,
  resolveEtcdBinary,
  startEtcdCluster,
} from './etcd-cluster.js'
export { type FaultMode, FaultRelay, type FaultRelayOptions, startFaultRelay } from './fault-relay.js'
export type { ClusterNode, ClusterOptions } from './local-cluster.js'
export { LocalCluster, startCluster } from './local-cluster.js'
export { type MariadbBinaries, resolveMariadbBinaries } from './mariadb-binaries.js'
export {
  MariadbCluster,
  type MariadbClusterOptions,
  type MariadbNode,
  startMariadbCluster,
} from './mariadb-cluster.js'
export { type PgBinaries, resolvePgBinaries } from './pg-binaries.js'
export type { StopMode } from './postgres-server.js'
export {
  type LocalShard,
  ShardedCluster,
  type ShardedClusterOptions,
  type ShardedKeyType,
  splitBuckets,
  startShardedCluster,
} from './sharded-cluster.js'
