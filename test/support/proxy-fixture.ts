// Starts a real cluster, a routing engine and the proxy in front of it, for the proxy-wire tests.

import { spawn } from 'node:child_process'
import { parseConfig } from '../../src/core/config/parse-config.js'
import { ProxyServer, type ProxyServerOptions } from '../../src/proxy/proxy-server.js'
import { RoutingEngine } from '../../src/routing/routing-engine.js'
import { type LocalCluster, startCluster } from '../cluster/index.js'
import { configFor, nodeByPort } from './cluster-config.js'
import { eventually } from './eventually.js'

/** A cluster with the proxy in front, and helpers to reach it. */
export interface ProxyFixture {
  cluster: LocalCluster
  engine: RoutingEngine
  proxy: ProxyServer
  port: number
  /** Connection string through the proxy. */
  url(user?: string, password?: string, db?: string): string
  nodeOf(port: number): string
  stop(): Promise<void>
}

/** Receives the proxy's log lines (ProxyServerOptions.log). */
export type ProxyLog = NonNullable<ProxyServerOptions['log']>

/**
 * Boots `replicas` replicas, applies `patch` over the test config, starts the proxy on a free port.
 * `log` receives the proxy's log lines (default: dropped).
 */
export async function startProxyFixture(
  patch: Record<string, unknown> = {},
  replicas = 2,
  setup?: (cluster: LocalCluster) => Promise<void>,
  log: ProxyLog = () => {},
): Promise<ProxyFixture> {
  const cluster = await startCluster({ replicas })
  try {
    if (setup) await setup(cluster)
    await cluster.waitForCatchUp()
    const input = configFor(cluster, {
      proxy: {
        listen: '127.0.0.1:0',
        auth: {
          type: 'scram-sha-256',
          users: { app: { password: 'app' }, app_md5: { password: 'app_md5' }, postgres: { password: 'x' } },
        },
        shutdown_timeout_ms: 2000,
      },
      ...patch,
    })
    const engine = new RoutingEngine(parseConfig(JSON.stringify(input)))
    await engine.start()
    await eventually('replicas have lag readings', () =>
      engine
        .snapshot()
        .every(
          (n) =>
            n.role === 'primary' || (n.healthy && n.lag_ms !== null && (n.staleness_bound_ms ?? 1e9) < 300),
        ),
    )
    const proxy = new ProxyServer(engine, { log })
    const { port } = await proxy.listen()
    return {
      cluster,
      engine,
      proxy,
      port,
      url: (user = 'app', password = user, db = 'freshet') =>
        `postgres://${user}:${password}@127.0.0.1:${port}/${db}`,
      nodeOf: nodeByPort(cluster),
      stop: async () => {
        await proxy.close(1000)
        await engine.stop()
        await cluster.stop()
      },
    }
  } catch (err) {
    await cluster.stop()
    throw err
  }
}

/** Runs a command to completion; resolves with exit code and output. */
export function runCommand(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += d
    })
    child.stderr.on('data', (d) => {
      stderr += d
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}
