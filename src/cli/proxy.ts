// `freshet proxy --config FILE`: config file -> routing engine -> proxy listener + admin API, with
// SIGTERM/SIGINT graceful shutdown and SIGHUP config reload.

import { parseArgs } from 'node:util'
import { startAdmin } from '../admin/admin-server.js'
import { FreshetMetrics } from '../admin/metrics.js'
import { loadConfigFile } from '../backend/config-file.js'
import { RoutingEngine } from '../backend/routing-engine.js'
import { parseConfig } from '../core/config/parse-config.js'
import { isFreshetError } from '../core/errors.js'
import { ProxyServer } from '../proxy/proxy-server.js'

export const usage = 'freshet proxy --config FILE'

/** What {@link startProxy} started; `stop()` shuts everything down gracefully. */
export interface RunningProxy {
  readonly engine: RoutingEngine
  readonly proxy: ProxyServer
  /** `host:port` the proxy listens on. */
  readonly address: string
  readonly adminUrl: string | null
  /** Re-reads the config file and applies it (refused when invalid or not newer). */
  reload(): Promise<void>
  stop(): Promise<void>
}

/**
 * Starts engine, proxy and admin API from a config file (or an engine already built, e.g. by the sandbox).
 * @example
 * const running = await startProxy({ configPath: 'freshet.yaml' })
 * console.log(`proxy on ${running.address}`)
 * await running.stop()
 */
export async function startProxy(options: {
  configPath?: string
  engine?: RoutingEngine
  /** Overrides `proxy.listen`. */
  listen?: string
  /** Overrides `admin.listen`; false: no admin API. */
  adminListen?: string | false
}): Promise<RunningProxy> {
  let engine = options.engine
  if (!engine) {
    if (!options.configPath) throw new TypeError('startProxy needs configPath or engine')
    engine = new RoutingEngine(await loadConfigFile(options.configPath))
  }
  await engine.start()
  // one registry for the engine's metrics and the proxy's own (backend errors, failovers, latency)
  const metrics = new FreshetMetrics()
  const proxy = new ProxyServer(engine, {
    ...(options.listen ? { listen: options.listen } : {}),
    observer: metrics,
  })
  const detachMetrics = metrics.attachEngine(engine, () => proxy.poolStats())
  const bound = await proxy.listen().catch((err: unknown) => {
    detachMetrics()
    throw err
  })
  let admin: Awaited<ReturnType<typeof startAdmin>> | null = null
  try {
    if (options.adminListen !== false) {
      admin = await startAdmin({
        engine,
        metrics,
        poolStats: () => proxy.poolStats(),
        ...(options.adminListen ? { admin: { listen: options.adminListen } } : {}),
      })
    }
  } catch (err) {
    detachMetrics()
    await proxy.close(0)
    throw err
  }
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address
  const running: RunningProxy = {
    engine,
    proxy,
    address: `${host}:${bound.port}`,
    adminUrl: admin?.url ?? null,
    reload: async () => {
      if (!options.configPath) return
      engine.reload(await loadConfigFile(options.configPath))
    },
    stop: async () => {
      await proxy.close()
      await admin?.close()
      detachMetrics()
      await engine.stop()
    },
  }
  return running
}

/** Listens on `preferred`, or on a free port of the same host when it is taken. */
async function startOnFreePort<T>(preferred: string, start: (listen: string) => Promise<T>): Promise<T> {
  try {
    return await start(preferred)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
    return start(`${preferred.slice(0, preferred.lastIndexOf(':'))}:0`)
  }
}

/**
 * The sandbox's front door: a proxy (SCRAM user `app`/`app`) and the admin API in front of the sandbox
 * nodes, on 127.0.0.1:6432 and :9187 (or free ports when taken).
 * @example
 * const front = await startSandboxProxy(summary.nodes)
 * console.log(`proxy: postgres://app:app@${front.address}/freshet`)
 */
export async function startSandboxProxy(
  nodes: readonly { name: string; role: 'primary' | 'replica'; superuserUrl: string }[],
): Promise<RunningProxy> {
  const primary = nodes.find((n) => n.role === 'primary')!
  const config = parseConfig(
    JSON.stringify({
      version: 1,
      cluster: {
        primary: { name: primary.name, url: primary.superuserUrl },
        replicas: nodes
          .filter((n) => n.role === 'replica')
          .map((n) => ({ name: n.name, url: n.superuserUrl })),
      },
      pools: { primary: { min_idle: 0 }, replicas: { min_idle: 0 } },
      proxy: { auth: { type: 'scram-sha-256', users: { app: { password: 'app' } } } },
      telemetry: { log_level: 'warn' },
    }),
  )
  const engine = new RoutingEngine(config)
  let adminListen: string = config.admin.listen
  try {
    return await startOnFreePort(config.proxy.listen, (listen) => startProxy({ engine, listen, adminListen }))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
    adminListen = '127.0.0.1:0'
    return startOnFreePort(config.proxy.listen, (listen) => startProxy({ engine, listen, adminListen }))
  }
}

/** Entry point of `freshet proxy`. */
export async function run(argv: string[]): Promise<number> {
  let values: { config?: string; help?: boolean }
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    }))
  } catch (err) {
    console.error(`${(err as Error).message}\nusage: ${usage}`)
    return 2
  }
  if (values.help) {
    console.log(`usage: ${usage}`)
    return 0
  }
  if (!values.config) {
    console.error(`freshet proxy: --config FILE is required\nusage: ${usage}`)
    return 2
  }
  let running: RunningProxy
  try {
    running = await startProxy({ configPath: values.config })
  } catch (err) {
    if (isFreshetError(err)) {
      console.error(err.message)
      return 1
    }
    throw err
  }
  console.log(`freshet proxy listening on ${running.address}`)
  if (running.adminUrl) console.log(`admin API and dashboard on ${running.adminUrl}/`)
  const onHup = () => {
    running.reload().then(
      () => running.engine.emit('log', 'info', `config reloaded from ${values.config}`),
      (err: unknown) =>
        running.engine.emit('log', 'error', `config reload refused: ${(err as Error).message}`),
    )
  }
  process.on('SIGHUP', onHup)
  const sig = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve)
    process.once('SIGINT', resolve)
  })
  process.off('SIGHUP', onHup)
  console.log(`${sig}: draining (up to ${running.engine.config.proxy.shutdown_timeout_ms} ms)...`)
  process.once('SIGINT', () => process.exit(130))
  await running.stop()
  return 0
}
