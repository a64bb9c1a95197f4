// The admin console over the PostgreSQL protocol, like pgbouncer's and PgDog's admin database: after the
// proxy authenticated an admin user for `proxy.admin.database`, simple queries run console commands.

import type { Socket } from 'node:net'
import {
  backendKeyData,
  commandComplete,
  dataRow,
  decodeQuery,
  EMPTY_QUERY_RESPONSE,
  errorResponse,
  FrameReader,
  FrontendCode,
  noticeResponse,
  parameterStatus,
  readyForQuery,
  rowDescription,
} from '../../protocol/index.js'
import type { AdminConsoleHook } from '../../proxy/admin-console-hook.js'
import { type ConsoleResult, type ConsoleSource, runConsoleCommand } from './console-commands.js'

const EXTENDED = new Set<number>([
  FrontendCode.Parse,
  FrontendCode.Bind,
  FrontendCode.Describe,
  FrontendCode.Execute,
  FrontendCode.Close,
  FrontendCode.Flush,
])

/**
 * The console: one {@link ConsoleSession} per admin client.
 * @example new ProxyServer(engine, { adminConsole: new AdminConsole(source) })
 */
export class AdminConsole implements AdminConsoleHook {
  readonly #source: ConsoleSource

  constructor(source: ConsoleSource) {
    this.#source = source
  }

  accept(socket: Socket, identity: { readonly user: string; readonly database: string }): void {
    new ConsoleSession(socket, identity, this.#source)
  }
}

/** One admin client: the simple query protocol only; commands run one after another. */
class ConsoleSession {
  readonly #socket: Socket
  readonly #source: ConsoleSource
  readonly #reader = new FrameReader()
  #chain: Promise<void> = Promise.resolve()
  #skipUntilSync = false

  constructor(socket: Socket, identity: { user: string; database: string }, source: ConsoleSource) {
    this.#socket = socket
    this.#source = source
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#reader.feed(chunk, (code, body) => this.#message(code, body))
      } catch (err) {
        socket.end(
          errorResponse({ severity: 'FATAL', code: '08P01', message: `freshet: ${(err as Error).message}` }),
        )
      }
    })
    socket.on('error', () => socket.destroy())
    socket.write(
      Buffer.concat([
        parameterStatus('server_version', '17.0 (freshet admin console)'),
        parameterStatus('server_encoding', 'UTF8'),
        parameterStatus('client_encoding', 'UTF8'),
        parameterStatus('DateStyle', 'ISO, MDY'),
        parameterStatus('integer_datetimes', 'on'),
        parameterStatus('standard_conforming_strings', 'on'),
        parameterStatus('application_name', ''),
        parameterStatus('session_authorization', identity.user),
        backendKeyData(0, 0),
        readyForQuery('I'),
      ]),
    )
  }

  #message(code: number, body: Buffer): void {
    if (code === FrontendCode.Terminate) {
      this.#socket.end()
      return
    }
    if (code === FrontendCode.Sync) {
      this.#skipUntilSync = false
      this.#then(() => this.#socket.write(readyForQuery('I')))
      return
    }
    if (EXTENDED.has(code)) {
      if (this.#skipUntilSync) return
      this.#skipUntilSync = true
      this.#then(() =>
        this.#socket.write(
          errorResponse({
            severity: 'ERROR',
            code: '0A000',
            message: 'freshet: the admin console speaks the simple query protocol only (psql -c, SHOW ...)',
          }),
        ),
      )
      return
    }
    if (code !== FrontendCode.Query) {
      this.#socket.end(
        errorResponse({
          severity: 'FATAL',
          code: '08P01',
          message: `freshet: unexpected message '${String.fromCharCode(code)}'`,
        }),
      )
      return
    }
    const sql = decodeQuery(body)
    this.#then(async () => {
      const statements = sql
        .split(';')
        .map((s) => s.trim())
        .filter((s) => s !== '')
      const out: Buffer[] = []
      if (statements.length === 0) out.push(EMPTY_QUERY_RESPONSE)
      for (const statement of statements) {
        const result = await runConsoleCommand(statement, this.#source)
        out.push(...encode(result))
        if (result.kind === 'error') break
      }
      out.push(readyForQuery('I'))
      this.#socket.write(Buffer.concat(out))
    })
  }

  /** Runs `step` after what is already queued: answers leave in the order the client asked. */
  #then(step: () => unknown): void {
    this.#chain = this.#chain
      .then(async () => {
        await step()
      })
      .catch((err: unknown) => {
        this.#socket.end(
          errorResponse({ severity: 'FATAL', code: 'XX000', message: `freshet: ${(err as Error).message}` }),
        )
      })
  }
}

function encode(result: ConsoleResult): Buffer[] {
  switch (result.kind) {
    case 'rows':
      return [
        rowDescription(result.columns.map((name) => ({ name }))),
        ...result.rows.map((r) => dataRow(r)),
        commandComplete(result.tag),
      ]
    case 'done':
      return [
        ...(result.notice
          ? [noticeResponse({ severity: 'NOTICE', code: '00000', message: result.notice })]
          : []),
        commandComplete(result.tag),
      ]
    case 'error':
      return [errorResponse({ severity: 'ERROR', code: result.code, message: result.message })]
  }
}
