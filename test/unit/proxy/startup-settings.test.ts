// Startup settings: which StartupMessage parameters and `options` are settings, and what a pooled server
// connection must run before it serves a client (pure logic; the cluster test is
// test/integration/proxy-wire/startup-settings.test.ts).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { planSettings, startupSettings } from '../../../src/proxy/startup-settings.js'

/** The SQL inside a simple Query message. */
function sqlOf(message: Buffer): string {
  return message.toString('utf8', 5, message.length - 1)
}

const conn = (settings: [string, string][] = []) => ({
  parameters: new Map([
    ['application_name', 'freshet'],
    ['client_encoding', 'UTF8'],
    ['TimeZone', 'UTC'],
    ['DateStyle', 'ISO, MDY'],
  ]),
  settings: new Map(settings),
})

describe('startupSettings', () => {
  it('keeps setting parameters, lower-cased, and drops user, database, replication, protocol options', () => {
    const s = startupSettings({
      user: 'app',
      database: 'db',
      replication: 'false',
      _pq_: 'x',
      '_pq_.compression': 'on',
      application_name: 'api',
      TimeZone: 'Europe/Berlin',
      statement_timeout: '5000',
    })
    assert.deepEqual(
      [...s],
      [
        ['_pq_', 'x'],
        ['application_name', 'api'],
        ['timezone', 'Europe/Berlin'],
        ['statement_timeout', '5000'],
      ],
    )
  })

  it('reads -c name=value, -cname=value and --name=value from options, with backslash escapes', () => {
    const s = startupSettings({
      user: 'app',
      options: '-c search_path=a,b  -cwork_mem=8MB --lock-timeout=2s -c application_name=my\\ app -c geqo',
    })
    assert.deepEqual(Object.fromEntries(s), {
      search_path: 'a,b',
      work_mem: '8MB',
      lock_timeout: '2s',
      application_name: 'my app',
    })
  })

  it('a parameter given both directly and in options takes the direct value, as PostgreSQL does', () => {
    const s = startupSettings({
      user: 'u',
      application_name: 'direct',
      options: '-c application_name=opt -c work_mem=1MB',
    })
    assert.deepEqual(Object.fromEntries(s), { application_name: 'direct', work_mem: '1MB' })
  })

  it('leaves freshet.* to the session and uses fallback_application_name only without application_name', () => {
    assert.deepEqual(
      Object.fromEntries(
        startupSettings({
          user: 'u',
          fallback_application_name: 'psql',
          options: '-c freshet.freshness=eventual',
        }),
      ),
      { application_name: 'psql' },
    )
    assert.deepEqual(
      Object.fromEntries(
        startupSettings({ user: 'u', application_name: 'api', fallback_application_name: 'psql' }),
      ),
      { application_name: 'api' },
    )
  })
})

describe('planSettings', () => {
  it('nothing to do when neither side has settings, or the client wants what the server reported at login', () => {
    assert.equal(planSettings(new Map(), conn()), null)
    assert.equal(
      planSettings(
        new Map([
          ['client_encoding', 'utf-8'],
          ['timezone', 'utc'],
        ]),
        conn(),
      ),
      null,
    )
  })

  it('sets what differs with set_config (values as written, safely quoted)', () => {
    const plan = planSettings(
      new Map([
        ['application_name', "o'brien\\app"],
        ['search_path', 'a, b'],
      ]),
      conn(),
    )!
    assert.equal(
      sqlOf(plan.message),
      "SELECT set_config(E'application_name', E'o''brien\\\\app', false), set_config(E'search_path', E'a, b', false)",
    )
    assert.deepEqual(Object.fromEntries(plan.next), { application_name: "o'brien\\app", search_path: 'a, b' })
  })

  it('resets what a previous client set that this one does not want, and keeps what already matches', () => {
    const plan = planSettings(
      new Map([['statement_timeout', '5s']]),
      conn([
        ['statement_timeout', '5s'],
        ['search_path', 'a'],
      ]),
    )!
    assert.equal(sqlOf(plan.message), 'RESET "search_path"')
    assert.deepEqual(Object.fromEntries(plan.next), { statement_timeout: '5s' })
    assert.equal(
      planSettings(new Map([['statement_timeout', '5s']]), conn([['statement_timeout', '5s']])),
      null,
    )
  })
})
