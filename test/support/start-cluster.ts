// Child process for the cleanup test: starts a cluster, prints where it lives, then waits to be killed.

import { startCluster } from '../../src/cluster/index.js'

const cluster = await startCluster({ replicas: 1 })
const pids = cluster.nodes.map((n) => n.pid)
process.stdout.write(`${JSON.stringify({ root: cluster.root, pids })}\n`)
setInterval(() => {}, 60_000)
