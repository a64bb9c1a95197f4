// TLS with sslmode=verify-full through the proxy: psql and node-postgres verify freshet's certificate
// and host name as they would a server's, and refuse a certificate for another name.

import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { runCommand } from '../../support/proxy-fixture.js'
import { selfSignedCertificate } from '../../support/tls-certificate.js'
import { type CompatFixture, startCompatFixture } from './compat-fixture.js'

for (const certName of ['localhost', 'elsewhere.example'] as const) {
  describe(`wire compat: TLS verify-full, certificate for ${certName}`, () => {
    let f: CompatFixture
    let dir: string
    let cert: string

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'freshet-tls-'))
      const files = await selfSignedCertificate(dir, certName)
      cert = files.cert
      f = await startCompatFixture('transaction', { patch: { proxy: { tls: files } } })
    })

    after(async () => {
      await f?.stop()
      rmSync(dir, { recursive: true, force: true })
    })

    const ok = certName === 'localhost'

    it(`psql sslmode=verify-full ${ok ? 'connects over TLS' : 'refuses the host name'}`, async () => {
      const r = await runCommand(
        'psql',
        [
          `host=localhost port=${f.port} user=app dbname=freshet sslmode=verify-full sslrootcert=${cert}`,
          '-Atc',
          'SELECT 42',
        ],
        { PGPASSWORD: 'app', PGCONNECT_TIMEOUT: '10' },
      )
      if (ok) {
        assert.equal(r.code, 0, r.stderr)
        assert.equal(r.stdout.trim(), '42')
      } else {
        assert.notEqual(r.code, 0)
        assert.match(r.stderr, /does not match host name|certificate/i)
      }
    })

    it(`node-postgres with the CA and host name checks ${ok ? 'connects' : 'refuses'}`, async () => {
      const c = new pg.Client({
        host: 'localhost',
        port: f.port,
        user: 'app',
        password: 'app',
        database: 'freshet',
        ssl: { ca: readFileSync(cert, 'utf8'), rejectUnauthorized: true },
      })
      if (!ok) {
        await assert.rejects(c.connect(), /altnames|does not match|Hostname/i)
        return
      }
      await c.connect()
      try {
        const r = await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')
        // TLS ends at freshet: its server connection is plain, as pgbouncer's default
        assert.equal(r.rows[0].ssl, false)
        assert.equal(
          (c as unknown as { connection: { stream: { encrypted?: boolean } } }).connection.stream.encrypted,
          true,
        )
      } finally {
        await c.end()
      }
    })
  })
}
