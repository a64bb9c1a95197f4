// A server connection reads into one reused buffer, and the proxy forwards its answers to the client
// as views of it. A client write that queues such a view calls keepChunk(): the next read must go to a
// new buffer, so the queued bytes are still the server's when the socket finally writes them. Against a
// real PostgreSQL: without keepChunk the second answer lands in the same memory (the control case).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { BackendCode, query } from '../../../src/protocol/index.js'
import { ServerConnection, type ServerSink } from '../../../src/proxy/server-connection.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'

/** A sink that keeps a view of each DataRow and resolves at each ReadyForQuery. */
class ViewKeeper implements ServerSink {
  readonly rows: Buffer[] = []
  #ready: (() => void) | null = null
  keep = false

  constructor(readonly conn: ServerConnection) {}

  readonly onServerFrame = (code: number, buf: Buffer, start: number, end: number): void => {
    if (code === BackendCode.DataRow) this.rows.push(buf.subarray(start, end))
    if (code === BackendCode.ReadyForQuery) this.#ready?.()
  }

  onServerChunkEnd(): void {
    // what a client write that the socket queued does with the view it wrote
    if (this.keep) this.conn.keepChunk()
  }

  onServerLost(): void {}
  onServerMessageFailed(): void {}

  run(sql: string): Promise<void> {
    return new Promise((resolve) => {
      this.#ready = resolve
      this.conn.write(query(sql))
    })
  }
}

describe('proxy server connection: views of its read buffer', () => {
  let cluster: LocalCluster
  const open = () =>
    ServerConnection.connect({
      node: 'primary',
      host: cluster.primary.host,
      port: cluster.primary.port,
      user: 'postgres',
      database: 'freshet',
      connectTimeoutMs: 5000,
      maxPrepared: 10,
    })

  before(async () => {
    cluster = await startCluster({ replicas: 0 })
  })

  after(async () => {
    await cluster?.stop()
  })

  for (const keep of [true, false]) {
    it(
      keep
        ? 'keepChunk: a kept view still holds its bytes after the next read'
        : 'without keepChunk the next read reuses the memory',
      async () => {
        const conn = await open()
        try {
          const sink = new ViewKeeper(conn)
          sink.keep = keep
          conn.attach(sink)
          await sink.run("SELECT repeat('a', 200)")
          const first = sink.rows[0]!
          const copy = Buffer.from(first)
          await sink.run("SELECT repeat('b', 200)")
          assert.equal(sink.rows.length, 2)
          if (keep) assert.deepEqual(first, copy)
          else assert.notDeepEqual(first, copy, 'the second answer was expected in the same buffer')
          assert.equal(sink.rows[1]!.toString('latin1').endsWith('b'.repeat(200)), true)
        } finally {
          conn.destroy()
        }
      },
    )
  }
})
