// Child process for the etcd cleanup test: starts a 3-member etcd cluster, prints where it lives, then
// waits to be killed.

import { startEtcdCluster } from '../../src/cluster/index.js'

const etcd = await startEtcdCluster({ members: 3 })
const pids = etcd.members.map((m) => m.pid)
process.stdout.write(`${JSON.stringify({ root: etcd.root, pids })}\n`)
setInterval(() => {}, 60_000)
