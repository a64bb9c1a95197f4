// A minimal PostgreSQL protocol client for the wire compatibility tests: sends exact bytes and records
// every message the peer answers, so a direct and a proxied run can be compared message by message.

import { connect, type Socket } from 'node:net'
import { cancelRequest, FrameReader, startupMessage } from '../../../src/protocol/index.js'

/** One message from the server: its type letter and body. */
export interface Message {
  type: string
  body: Buffer
}

/** A connected client past ReadyForQuery (trust auth: user postgres). */
export class RawClient {
  readonly #socket: Socket
  readonly #reader = new FrameReader()
  readonly #received: Message[] = []
  #waiter: (() => void) | null = null
  #closed = false
  pid = 0
  secret = 0

  private constructor(socket: Socket) {
    this.#socket = socket
    socket.on('data', (chunk) =>
      this.#reader.feed(chunk, (code, body) => {
        this.#received.push({ type: String.fromCharCode(code), body: Buffer.from(body) })
        this.#waiter?.()
      }),
    )
    socket.on('close', () => {
      this.#closed = true
      this.#waiter?.()
    })
    socket.on('error', () => {})
  }

  /** What the peer sent at login, up to and including the first ReadyForQuery. */
  startup: Message[] = []

  /**
   * Connects as `user` (trust) to `database`, with more startup parameters if given (`TimeZone`,
   * `options` ...), and reads up to the first ReadyForQuery.
   */
  static async open(
    host: string,
    port: number,
    user = 'postgres',
    database = 'freshet',
    params: Record<string, string> = {},
  ): Promise<RawClient> {
    const socket = connect({ host, port })
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    const c = new RawClient(socket)
    socket.write(startupMessage({ user, database, ...params }))
    const startup = await c.until((m) => m.type === 'Z')
    c.startup = startup
    const key = startup.find((m) => m.type === 'K')
    if (!key) throw new Error(`no BackendKeyData: ${startup.map((m) => m.type).join('')}`)
    c.pid = key.body.readInt32BE(0)
    c.secret = key.body.readInt32BE(4)
    return c
  }

  /** Stops reading the socket: what the peer sends piles up in the kernel, then in the peer. */
  pause(): void {
    this.#socket.pause()
  }

  resume(): void {
    this.#socket.resume()
  }

  send(...messages: Buffer[]): void {
    this.#socket.write(Buffer.concat(messages))
  }

  /** Messages received from now on until (and including) the one `stop` accepts; 10 s at most. */
  async until(stop: (m: Message) => boolean, count = 1): Promise<Message[]> {
    const out: Message[] = []
    const deadline = Date.now() + 10_000
    let seen = 0
    for (;;) {
      while (this.#received.length > 0) {
        const m = this.#received.shift()!
        out.push(m)
        if (stop(m) && ++seen === count) return out
      }
      if (this.#closed) throw new Error(`closed after ${out.map((m) => m.type).join('')}`)
      if (Date.now() > deadline) throw new Error(`timed out after ${out.map((m) => m.type).join('')}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000)
        this.#waiter = () => {
          clearTimeout(timer)
          this.#waiter = null
          resolve()
        }
      })
    }
  }

  /** Sends `messages` and returns what came back up to the `syncs`-th ReadyForQuery. */
  async roundTrip(messages: Buffer[], syncs = 1): Promise<Message[]> {
    this.send(...messages)
    return this.until((m) => m.type === 'Z', syncs)
  }

  /** Sends a CancelRequest for this client's key on a new connection to the same peer. */
  async cancel(host: string, port: number): Promise<void> {
    const s = connect({ host, port }, () => s.end(cancelRequest(this.pid, this.secret)))
    await new Promise((resolve) => s.on('close', resolve))
  }

  end(): void {
    this.#socket.end(Buffer.from([0x58, 0, 0, 0, 4]))
  }
}

/** Messages as comparable text: type and body, with the parts that name a server process masked. */
export function transcript(messages: readonly Message[]): string[] {
  return messages.map((m) => {
    // NotificationResponse: int32 pid of the notifying backend, channel, payload
    if (m.type === 'A') return `A:<pid>:${m.body.subarray(4).toString('latin1')}`
    return `${m.type}:${m.body.toString('latin1')}`
  })
}
