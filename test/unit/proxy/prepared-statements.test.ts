import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  bind,
  close as closeMessage,
  describe as describeMessage,
  FrontendCode,
  parameterDescription,
  parse,
  rowDescription,
} from '../../../src/protocol/index.js'
import {
  ClientStatements,
  ServerStatementCache,
  type StatementTarget,
} from '../../../src/proxy/prepared-statements.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const body = (message: Buffer): Buffer => message.subarray(5)

/** A server connection's side of the translation: its cache, and the messages queued for it, as letters. */
class Target implements StatementTarget {
  readonly statements = new ServerStatementCache(10)
  sent: string[] = []
  queue(piece: Buffer): void {
    this.sent.push(String.fromCharCode(piece[0]!))
  }
  take(): string {
    const out = this.sent.join('')
    this.sent = []
    return out
  }
}

const INT = rowDescription([{ name: 'x', typeOid: 23 }])
// the server's refusal of freshet's failing Bind
const POISON_REFUSED = {
  severity: 'ERROR',
  code: '26000',
  message: 'prepared statement "fr_none" does not exist',
} as const
const INT_ARRAY = rowDescription([{ name: 'x', typeOid: 1007 }])

/** The answers to freshet's Describe of a statement: ParameterDescription, then its row. */
function described(s: ClientStatements, row: Buffer): boolean[] {
  return [s.parameterDescription(body(parameterDescription([]))), s.rowDescription(body(row))]
}

/** A client that prepared `s1` (SELECT x FROM t) on connection `a`, answered with row type `row`. */
function prepared(row: Buffer): { s: ClientStatements; a: Target } {
  const s = new ClientStatements()
  const a = new Target()
  assert.equal(s.send(s.describe(FrontendCode.Parse, parse('s1', 'SELECT x FROM t')), a, false), 'sent')
  // the client's Parse, then freshet's Describe of it in the same write
  assert.equal(a.take(), 'PD')
  assert.equal(s.parseComplete(), false) // the client's ParseComplete goes to the client
  assert.deepEqual(described(s, row), [true, true]) // freshet's Describe answer does not
  s.settle(a.statements, false)
  return { s, a }
}

/**
 * `message` (a Bind or Describe of s1, prepared with row type int) sent on another connection `b`,
 * where freshet's Describe of the statement parsed again answers `row`; returns what the second send
 * (quiet: that answer came) says.
 */
function onAnotherConnection(message: Buffer, row: Buffer) {
  const { s } = prepared(INT)
  const b = new Target()
  const item = s.describe(message[0]!, message)
  assert.equal(s.send(item, b, false), 'wait')
  assert.equal(b.take(), 'PD')
  assert.equal(s.describing, true)
  assert.equal(s.parseComplete(), true) // freshet's Parse: swallowed
  assert.deepEqual(described(s, row), [true, true])
  assert.equal(s.describing, false)
  return { s, b, item, result: s.send(item, b, true) }
}

describe('ClientStatements: the row type a client was given', () => {
  it('a statement the connection has with the same row type goes out as is, nothing added', () => {
    const { s, a } = prepared(INT)
    assert.equal(s.send(s.describe(FrontendCode.Bind, bind('', 's1')), a, false), 'sent')
    assert.equal(a.take(), 'B')
  })

  it('on another connection: parsed again and described, and the Bind waits for that answer', () => {
    const { b, result } = onAnotherConnection(bind('', 's1'), INT)
    // the same row type: the Bind goes out, under the name the statement has there
    assert.equal(result, 'sent')
    assert.equal(b.take(), 'B')
  })

  it('on another connection with a changed row type: mismatch, and the failing Bind becomes 0A000', () => {
    const { s, b, item, result } = onAnotherConnection(bind('', 's1'), INT_ARRAY)
    assert.equal(result, 'mismatch')
    s.poison(item, b)
    assert.equal(b.take(), 'B') // a Bind of a statement that never exists
    const answer = s.serverError(POISON_REFUSED)!
    assert.equal(String.fromCharCode(answer[0]!), 'E')
    assert.match(
      answer.toString('latin1'),
      /C0A000\0Mcached plan must not change result type\0Fplancache\.c\0RRevalidateCachedQuery\0/,
    )
  })

  it('a Describe of the statement with a changed row type gets its ParameterDescription before the 0A000', () => {
    const { s, b, item, result } = onAnotherConnection(describeMessage('S', 's1'), INT_ARRAY)
    assert.equal(result, 'mismatch')
    s.poison(item, b)
    const answer = s.serverError(POISON_REFUSED)!
    assert.equal(String.fromCharCode(answer[0]!), 't')
    assert.equal(String.fromCharCode(answer[answer.readInt32BE(1) + 1]!), 'E')
  })

  it('a mismatch with answers still in flight first waits for them (a barrier Describe)', () => {
    const { s } = prepared(INT)
    const b = new Target()
    const item = s.describe(FrontendCode.Bind, bind('', 's1'))
    s.send(item, b, false)
    s.parseComplete()
    described(s, INT_ARRAY)
    b.take()
    // not quiet: something sent before may still fail, and the 0A000 must replace only freshet's Bind
    assert.equal(s.send(item, b, false), 'wait')
    assert.equal(b.take(), 'D')
    assert.deepEqual(described(s, INT_ARRAY), [true, true])
    assert.equal(s.send(item, b, true), 'mismatch')
  })

  it('an error instead of the awaited Describe: nothing more is swallowed, no 0A000', () => {
    const { s } = prepared(INT)
    const b = new Target()
    s.send(s.describe(FrontendCode.Bind, bind('', 's1')), b, false)
    assert.equal(
      s.serverError({ severity: 'ERROR', code: '42804', message: 'column x is of type integer[]' }),
      null,
    )
    assert.equal(s.describing, false)
    // a RowDescription after that is the client's
    assert.equal(s.rowDescription(body(INT)), false)
  })

  it("a client's Parse of a statement the connection holds is parsed again (the copy may predate the schema)", () => {
    const { s, a } = prepared(INT)
    // the client closes s1 (the server keeps it for others) and parses it again
    assert.equal(s.send(s.describe(FrontendCode.Close, closeMessage('S', 's1')), a, false), 'sent')
    assert.equal(a.take(), 'C')
    assert.equal(s.closeComplete(), false)
    assert.equal(s.send(s.describe(FrontendCode.Parse, parse('s1', 'SELECT x FROM t')), a, false), 'sent')
    // freshet's Close of the copy, the client's Parse, freshet's Describe
    assert.equal(a.take(), 'CPD')
    assert.equal(s.closeComplete(), true)
    assert.equal(s.parseComplete(), false)
  })

  it('a Parse of a name the client has: mismatch, and the failing Bind becomes 42P05', () => {
    const { s, a } = prepared(INT)
    const again = s.describe(FrontendCode.Parse, parse('s1', 'SELECT 2'))
    assert.equal(s.send(again, a, false), 'mismatch')
    s.poison(again, a)
    assert.equal(a.take(), 'B')
    const answer = s.serverError(POISON_REFUSED)!
    assert.match(
      answer.toString('latin1'),
      /C42P05\0Mprepared statement "s1" already exists\0Fprepare\.c\0RStorePreparedStatement\0/,
    )
    // s1 is still the first statement
    const item = s.describe(FrontendCode.Bind, bind('', 's1'))
    assert.equal(item.text, 'SELECT x FROM t')
  })

  it('an error of an earlier message while a refusal is queued is the client’s, unchanged', () => {
    const { s, a } = prepared(INT)
    const again = s.describe(FrontendCode.Parse, parse('s1', 'SELECT 2'))
    s.send(again, a, false)
    s.poison(again, a)
    assert.equal(s.serverError({ severity: 'ERROR', code: '22012', message: 'division by zero' }), null)
  })

  it('a Parse that failed leaves no statement by its name: a later Parse of it goes out', () => {
    const s = new ClientStatements()
    const a = new Target()
    s.send(s.describe(FrontendCode.Parse, parse('s2', 'SELEC 1')), a, false)
    s.serverError({ severity: 'ERROR', code: '42601', message: 'syntax error at or near "SELEC"' })
    s.settle(a.statements, true)
    assert.equal(s.describe(FrontendCode.Bind, bind('', 's2')).stmt, null)
    assert.equal(s.send(s.describe(FrontendCode.Parse, parse('s2', 'SELECT 1')), a, false), 'sent')
  })
})
