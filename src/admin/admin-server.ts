// The admin HTTP API (CONTRACT section 7) on node:http: health, metrics, topology, config, controls,
// explain, sampled decisions and the dashboard. Reads engine snapshots and events only.

import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import { parseConfigText, validateConfig } from '../core/config/parse-config.js'
import { redactConfig, restoreRedacted } from '../core/config/redact.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { ConfigError, isFreshetError } from '../core/errors.js'
import { formatDecision } from '../core/route/format-decision.js'
import { IDLE_SESSION, type RoutingContext } from '../core/route/routing-context.js'
import { DecisionLog } from '../telemetry/decision-log.js'
import { attachEngineLogs, createLogger } from '../telemetry/logger.js'
import { FreshetMetrics } from '../telemetry/metrics.js'
import { type AdminEngine, type PoolLike, type PoolStatsProvider, poolStatsOf } from './admin-engine.js'
import type { AdminFleet } from './admin-fleet.js'
import { NO_ROUTING_MAP, RoutingMapAdmin, type RoutingMapHost } from './admin-routing-map.js'
import { applyControls, topologyView, validateControls } from './admin-views.js'
import { dashboardHtml, tokenPromptHtml } from './dashboard-html.js'
import { LagHistory } from './lag-history.js'

const MAX_BODY_BYTES = 1 << 20

export interface StartAdminOptions {
  /** The routing engine; taken from `pool.engine` when `pool` is given. */
  engine?: AdminEngine
  /** A FreshetPool (or anything with `engine` and a snapshot with pool counts). */
  pool?: PoolLike
  /** Per-node pool counts, for faces that are not a FreshetPool (the proxy). */
  poolStats?: PoolStatsProvider
  /** Admin settings; default `engine.config.admin`. The token is read from the running config per request. */
  admin?: Partial<FreshetConfig['admin']>
  /** Metrics to serve; created and attached to the engine when absent. */
  metrics?: FreshetMetrics
  /** Sampled decision ring; created and attached when absent. */
  decisions?: DecisionLog
  /** Structured logger; created at telemetry.log_level (stdout) when absent. */
  logger?: Logger
  /** Environment for ${VAR} substitution in PUT /api/v1/config bodies (default process.env). */
  env?: NodeJS.ProcessEnv
  /**
   * Extra topology facts (e.g. `{ discovery: discovery.state() }`) merged into GET /api/v1/topology.
   * Default: the pool's `discoveryState()` as `discovery` when `pool` has one (a FreshetPool).
   */
  extraTopology?: () => Record<string, unknown>
  /**
   * The instance's fleet member (config `fleet`); default the pool's `fleet` when it has one. With it,
   * PUT /api/v1/config runs a fleet rollout, POST /api/v1/controls sets fleet-wide flags and /readyz
   * reports the link to etcd.
   */
  fleet?: AdminFleet | null
  /** With a sharded config: the face's routing-map host, served at /api/v1/routing-map (docs/sharding.md). */
  routingMap?: RoutingMapHost | null
}

/** A running admin server. */
export interface AdminServer {
  /** Base URL, e.g. `http://127.0.0.1:9187`. */
  readonly url: string
  readonly metrics: FreshetMetrics
  readonly decisions: DecisionLog
  close(): Promise<void>
}

/** `host:port`, `[v6]:port` or `:port` (loopback) into its parts. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen.trim())
  if (!m) {
    throw new ConfigError([{ path: 'admin.listen', message: `'${listen}' is not host:port` }])
  }
  const port = Number(m[3])
  if (port > 65535) throw new ConfigError([{ path: 'admin.listen', message: `port ${port} is out of range` }])
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port }
}

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase()
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1'
}

/**
 * Starts the admin API. Refuses a non-loopback address without `admin.token` unless
 * `admin.allow_remote_without_token` is true.
 * @example
 * const admin = await startAdmin({ pool, admin: { listen: '127.0.0.1:9187' } })
 * console.log(`dashboard: ${admin.url}/`)
 * await admin.close()
 */
export async function startAdmin(options: StartAdminOptions): Promise<AdminServer> {
  const engine = options.engine ?? options.pool?.engine
  if (!engine) throw new TypeError('startAdmin needs an engine or a pool')
  const settings = { ...engine.config.admin, ...options.admin }
  const { host, port } = parseListen(settings.listen)
  const token = () => options.admin?.token ?? engine.config.admin.token
  if (!isLoopback(host) && !token() && !settings.allow_remote_without_token) {
    throw new ConfigError([
      {
        path: 'admin.listen',
        message:
          `refusing to serve the admin API on non-loopback address ${host} without admin.token ` +
          '(set admin.token, listen on 127.0.0.1, or set admin.allow_remote_without_token: true)',
      },
    ])
  }
  const detach: (() => void)[] = []
  const logger = options.logger ?? createLogger(engine.config.telemetry)
  if (!options.logger) detach.push(attachEngineLogs(engine, logger))
  const poolStats = options.poolStats ?? (options.pool ? poolStatsOf(options.pool) : undefined)
  const metrics = options.metrics ?? new FreshetMetrics()
  if (!options.metrics) detach.push(metrics.attachEngine(engine, poolStats))
  const decisions = options.decisions ?? new DecisionLog()
  if (!options.decisions) detach.push(decisions.attach(engine, logger))
  const pool = options.pool as (PoolLike & { discoveryState?: () => unknown }) | undefined
  const extraTopology =
    options.extraTopology ??
    (typeof pool?.discoveryState === 'function' ? () => ({ discovery: pool.discoveryState!() }) : undefined)
  const fleet = options.fleet ?? (pool as { fleet?: AdminFleet | null } | undefined)?.fleet ?? null
  if (fleet) detach.push(fleet.attachMetrics(metrics.registry))
  const lagHistory = new LagHistory(engine)
  lagHistory.start()
  detach.push(() => lagHistory.stop())
  const routingMap = options.routingMap ? new RoutingMapAdmin(options.routingMap) : null
  if (routingMap) {
    routingMap.start()
    detach.push(() => routingMap.close())
  }
  const api = new AdminApi(engine, metrics, decisions, logger, token, poolStats, lagHistory, routingMap, {
    ...options,
    ...(extraTopology ? { extraTopology } : {}),
    fleet,
  })

  const server = createServer((req, res) => {
    api.handle(req, res).catch((err: unknown) => {
      logger.error({ err: (err as Error).message, path: pathOf(req) }, 'admin request failed')
      if (!res.headersSent) send(res, 500, { error: 'internal error' })
      else res.destroy()
    })
  })
  await listen(server, host, port)
  const address = server.address() as AddressInfo
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const url = `http://${shown}:${address.port}`
  logger.info({ url: url }, 'admin API listening')
  return {
    url,
    metrics,
    decisions,
    close: async () => {
      for (const d of detach) d()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

class AdminApi {
  readonly #engine: AdminEngine
  readonly #metrics: FreshetMetrics
  readonly #decisions: DecisionLog
  readonly #logger: Logger
  readonly #token: () => string | null | undefined
  readonly #poolStats: PoolStatsProvider | undefined
  readonly #lagHistory: LagHistory
  readonly #routingMap: RoutingMapAdmin | null
  readonly #options: StartAdminOptions

  constructor(
    engine: AdminEngine,
    metrics: FreshetMetrics,
    decisions: DecisionLog,
    logger: Logger,
    token: () => string | null | undefined,
    poolStats: PoolStatsProvider | undefined,
    lagHistory: LagHistory,
    routingMap: RoutingMapAdmin | null,
    options: StartAdminOptions,
  ) {
    this.#routingMap = routingMap
    this.#engine = engine
    this.#metrics = metrics
    this.#decisions = decisions
    this.#logger = logger
    this.#token = token
    this.#poolStats = poolStats
    this.#lagHistory = lagHistory
    this.#options = options
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin')
    const path = url.pathname
    const method = req.method ?? 'GET'
    if (path === '/healthz') return this.#only(res, method, 'GET', () => send(res, 200, { status: 'ok' }))
    const token = this.#token()
    if (token) {
      // The dashboard page may carry its token in the query string (a browser cannot set the header).
      const given = bearer(req.headers.authorization) ?? (path === '/' ? url.searchParams.get('token') : null)
      if (given === null || !sameSecret(given, token)) {
        if (path === '/' && method === 'GET') return sendHtml(res, 401, tokenPromptHtml())
        res.setHeader('WWW-Authenticate', 'Bearer realm="freshet"')
        return send(res, 401, { error: 'missing or wrong bearer token' })
      }
    }
    if (path === '/api/v1/routing-map' || path.startsWith('/api/v1/routing-map/')) {
      return this.#routingMapRequest(req, res, method, path)
    }
    switch (path) {
      case '/':
        return this.#only(res, method, 'GET', () => sendHtml(res, 200, dashboardHtml()))
      case '/readyz':
        return this.#only(res, method, 'GET', () => this.#ready(res))
      case '/metrics':
        return this.#only(res, method, 'GET', async () => {
          const text = await this.#metrics.metrics()
          res.writeHead(200, { 'content-type': this.#metrics.contentType, 'cache-control': 'no-store' })
          res.end(text)
        })
      case '/api/v1/topology':
        return this.#only(res, method, 'GET', () => send(res, 200, this.#topology()))
      case '/api/v1/lag-history':
        return this.#only(res, method, 'GET', () => send(res, 200, this.#lagHistory.toJSON()))
      case '/api/v1/stats':
        return this.#only(res, method, 'GET', async () => send(res, 200, await this.#stats()))
      case '/api/v1/config':
        if (method === 'GET') return send(res, 200, redactConfig(this.#engine.config))
        if (method === 'PUT') return this.#putConfig(req, res)
        return notAllowed(res, 'GET, PUT')
      case '/api/v1/controls':
        if (method === 'GET') return send(res, 200, this.#engine.config.controls)
        if (method === 'POST') return this.#postControls(req, res)
        return notAllowed(res, 'GET, POST')
      case '/api/v1/explain':
        return this.#only(res, method, 'POST', () => this.#explain(req, res))
      case '/api/v1/decisions':
        return this.#only(res, method, 'GET', () => {
          const raw = url.searchParams.get('limit')
          const limit = raw === null ? 100 : Number(raw)
          if (!Number.isInteger(limit) || limit < 0) {
            return send(res, 422, { error: 'limit must be a non-negative integer' })
          }
          const capped = Math.min(limit, this.#decisions.capacity)
          send(res, 200, {
            sampling_rate: this.#engine.config.telemetry.log_sampling_rate,
            decisions: this.#decisions.recent(capped),
          })
        })
      default:
        return send(res, 404, { error: `no route ${path}` })
    }
  }

  async #routingMapRequest(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    path: string,
  ): Promise<void> {
    const id = path.length > '/api/v1/routing-map/'.length ? path.slice('/api/v1/routing-map/'.length) : null
    const answer = this.#routingMap
      ? await this.#routingMap.handle(method, id, () => readJson(req, res))
      : NO_ROUTING_MAP
    // readJson answered already (400 / 413) when the body was not JSON
    if (res.headersSent) return
    if (answer.allow) res.setHeader('Allow', answer.allow)
    send(res, answer.status, answer.body)
  }

  async #only(
    res: ServerResponse,
    method: string,
    allowed: string,
    fn: () => void | Promise<void>,
  ): Promise<void> {
    if (method !== allowed && !(allowed === 'GET' && method === 'HEAD')) return notAllowed(res, allowed)
    await fn()
  }

  #ready(res: ServerResponse): void {
    // sharded: every shard's primary (and the aggregate node) must be healthy; else the one primary
    const primaries = this.#engine.snapshot().filter((n) => n.role === 'primary')
    const primary = primaries.find((n) => !n.healthy) ?? primaries[0]
    // a fleet instance cut off from etcd still routes (with its last committed config): detail, not 503
    const fleet = this.#options.fleet ? { fleet: this.#options.fleet.state() } : {}
    if (primary?.healthy) send(res, 200, { status: 'ready', primary: primary.name, ...fleet })
    else
      send(res, 503, {
        status: 'not ready',
        reason: primary ? `primary ${primary.name} is unhealthy` : 'no primary',
        ...fleet,
      })
  }

  #topology(): Record<string, unknown> {
    return { ...topologyView(this.#engine, this.#poolStats), ...this.#options.extraTopology?.() }
  }

  /** Cumulative decision, fallback and per-tier offload counts (the dashboard derives rates from successive calls). */
  async #stats(): Promise<Record<string, unknown>> {
    const decisions = await this.#metrics.values('routing_decisions_total')
    const fallbacks = await this.#metrics.values('routing_fallback_total')
    const offload = Object.entries(this.#metrics.offload()).map(([tier, o]) => ({
      tier,
      reads: o.reads,
      replica_reads: o.replica,
      ratio: o.reads > 0 ? o.replica / o.reads : null,
    }))
    return {
      at: Date.now(),
      decisions: decisions.map((v) => ({ ...v.labels, count: v.value })),
      fallbacks: fallbacks.map((v) => ({ ...v.labels, count: v.value })),
      offload,
    }
  }

  async #putConfig(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, res)
    if (body === null) return
    let next: FreshetConfig
    let restoredDocument: unknown
    const parseOptions = { env: this.#options.env ?? process.env, source: 'PUT /api/v1/config' }
    try {
      // A config read from GET (secrets shown as ***) and sent back keeps the running secrets.
      const restored = restoreRedacted(parseConfigText(body, parseOptions), this.#engine.config)
      if (!restored.ok) {
        this.#metrics.configReload('api', 'invalid')
        this.#logger.error({ issues: restored.issues, source: 'api' }, 'config refused: redacted placeholder')
        return send(res, 422, {
          error: `redacted placeholder '***' with no running value to keep`,
          issues: restored.issues,
        })
      }
      restoredDocument = restored.document
      next = validateConfig(restored.document, parseOptions)
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      this.#metrics.configReload('api', 'invalid')
      this.#logger.error({ issues: err.issues, source: 'api' }, 'config refused: invalid')
      return send(res, 422, { error: 'invalid config', issues: err.issues })
    }
    if (this.#options.fleet) return this.#proposeConfig(res, this.#options.fleet, restoredDocument, next)
    try {
      this.#engine.reload(next)
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      const version = err.code === 'FRESHET_CONFIG_VERSION'
      this.#metrics.configReload('api', version ? 'version' : 'invalid')
      this.#logger.error(
        { issues: err.issues, source: 'api' },
        `config refused: ${version ? 'version' : 'invalid'}`,
      )
      return send(res, version ? 409 : 422, {
        error: version ? 'version must increase' : 'invalid config',
        running_version: this.#engine.config.version,
        issues: err.issues,
      })
    }
    this.#metrics.configReload('api', 'applied')
    this.#logger.warn({ version: next.version, source: 'api' }, 'config applied')
    send(res, 200, { status: 'applied', version: next.version })
  }

  /** PUT /api/v1/config with fleet on: a rollout round instead of a local reload. */
  async #proposeConfig(
    res: ServerResponse,
    fleet: AdminFleet,
    document: unknown,
    next: FreshetConfig,
  ): Promise<void> {
    let outcome: Awaited<ReturnType<AdminFleet['propose']>>
    try {
      outcome = await fleet.propose(document, next.version)
    } catch (err) {
      this.#logger.error({ err: (err as Error).message, source: 'api' }, 'fleet proposal failed')
      return send(res, 503, { error: `fleet: cannot reach etcd: ${(err as Error).message}` })
    }
    const body = {
      version: outcome.version,
      proposal: outcome.proposal,
      committed_version: outcome.committedVersion,
      reason: outcome.reason,
      members: outcome.members,
      required: outcome.required,
      acks: outcome.acks.map((a) => ({ instance: a.instance, ok: a.ok, issues: a.issues })),
    }
    if (outcome.status === 'committed') {
      this.#metrics.configReload('api', 'applied')
      this.#logger.warn(
        { version: next.version, source: 'api', proposal: outcome.proposal },
        'fleet config committed',
      )
      return send(res, 200, { status: 'committed', ...body })
    }
    this.#metrics.configReload('api', outcome.status === 'refused' ? 'version' : 'invalid')
    this.#logger.error(
      { version: next.version, source: 'api', reason: outcome.reason },
      `fleet config ${outcome.status}`,
    )
    send(res, 409, {
      error: outcome.status === 'refused' ? 'version must increase' : 'proposal aborted',
      status: outcome.status,
      running_version: this.#engine.config.version,
      ...body,
    })
  }

  async #postControls(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const patch = await readJson(req, res)
    if (patch === undefined) return
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
      return send(res, 422, {
        error: 'expected a JSON object',
        issues: [{ path: '', message: 'not an object' }],
      })
    }
    const checked = validateControls(patch as Record<string, unknown>)
    if (!checked.ok) return send(res, 422, { error: 'invalid controls', issues: checked.issues })
    const fleet = this.#options.fleet
    if (fleet) {
      // fleet-wide: every instance applies them within flags.eval_interval_ms (this one at once)
      const by = `api@${fleet.instance} from ${req.socket.remoteAddress ?? 'unknown'}`
      try {
        return send(res, 200, await fleet.setFlags(checked.patch, by))
      } catch (err) {
        this.#logger.error({ err: (err as Error).message, source: 'api' }, 'fleet flags not set')
        return send(res, 503, { error: `fleet: cannot reach etcd: ${(err as Error).message}` })
      }
    }
    const outcome = applyControls(this.#engine, checked.patch, (control, from, to) =>
      this.#logger.warn({ control, from, to, source: 'api' }, 'control changed'),
    )
    if (!outcome.ok) return send(res, 422, { error: 'invalid controls', issues: outcome.issues })
    send(res, 200, outcome.controls)
  }

  async #explain(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req, res)
    if (body === undefined) return
    const b = body as { sql?: unknown; tier?: unknown; min_lsn?: unknown } | null
    if (b === null || typeof b !== 'object' || typeof b.sql !== 'string' || b.sql.trim() === '') {
      return send(res, 422, {
        error: 'expected { "sql": "..." }',
        issues: [{ path: 'sql', message: 'required string' }],
      })
    }
    const ctx: { tier?: string; minLsn?: string } = {}
    if (typeof b.tier === 'string') ctx.tier = b.tier.toLowerCase()
    if (typeof b.min_lsn === 'string') ctx.minLsn = b.min_lsn
    const sql = b.sql
    // a dry run: no 'decision' event (metrics, decision log), no fallback token, no round-robin step
    const engine = this.#engine
    const c0 = engine.classify(sql)
    let explained: ReturnType<typeof engine.decide>
    try {
      explained = engine.decide(c0, IDLE_SESSION, ctx as RoutingContext, { dryRun: true, sql })
    } catch (err) {
      // sharded configs: the refusal freshet would raise (ZF003 / ZF004), nothing sent
      if (!isFreshetError(err)) throw err
      return send(res, 200, {
        refused: { code: err.code, sqlstate: err.sqlState, message: err.message },
        classification: { kind: c0.kind, reason: c0.reason, tables: c0.tables },
      })
    }
    const { decision, classification: c } = explained
    send(res, 200, {
      decision,
      summary: formatDecision(decision),
      classification: {
        kind: c.kind,
        reason: c.reason,
        requires_primary: c.requiresPrimary,
        tables: c.tables,
        functions: c.functions,
        hints: c.hints,
        fingerprint: c.fingerprint ?? null,
        statement_count: c.statementCount,
        parse_error: c.parseError ?? null,
        ...(c.transaction ? { transaction: c.transaction } : {}),
        ...(c.pin ? { pin: c.pin } : {}),
      },
    })
  }
}

function bearer(header: string | undefined): string | null {
  if (!header) return null
  const m = /^Bearer\s+(.+)$/i.exec(header.trim())
  return m ? m[1]!.trim() : null
}

/** Constant-time comparison: digests equalise lengths, so neither length nor content leaks by timing. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
  res.end(text)
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // Everything is inline; nothing may be loaded from elsewhere.
    'content-security-policy':
      "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; form-action 'self'",
    'referrer-policy': 'no-referrer',
  })
  res.end(html)
}

function notAllowed(res: ServerResponse, allow: string): void {
  res.setHeader('Allow', allow)
  send(res, 405, { error: `method not allowed (use ${allow})` })
}

async function readBody(req: IncomingMessage, res: ServerResponse): Promise<string | null> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) {
      send(res, 413, { error: `body over ${MAX_BODY_BYTES} bytes` })
      return null
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** The parsed JSON body, or undefined after answering 400/413. */
async function readJson(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  const text = await readBody(req, res)
  if (text === null) return undefined
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    send(res, 400, { error: `body is not JSON: ${(err as Error).message}` })
    return undefined
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0]!
}
