// Encoders and decoders agree, the byte layouts match PostgreSQL's, and renaming keeps every other byte.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as p from '../../../src/protocol/index.js'

/** The single message in `whole`: code and body, via the frame reader. */
function frame(whole: Buffer, startup = false): { code: number; body: Buffer } {
  const frames: { code: number; body: Buffer }[] = []
  new p.FrameReader({ startup }).feed(whole, (code, body) => frames.push({ code, body }))
  assert.equal(frames.length, 1)
  return frames[0]!
}

describe('frontend messages round trip', () => {
  it('StartupMessage, SSLRequest, GSSENCRequest, CancelRequest', () => {
    const params = { user: 'app', database: 'main', options: '-c freshet.freshness=eventual' }
    const s = frame(p.startupMessage(params), true)
    assert.equal(s.code, p.STARTUP_FRAME)
    const decoded = p.decodeStartupPacket(s.body)
    assert.equal(decoded.kind, 'startup')
    if (decoded.kind === 'startup') {
      assert.deepEqual({ ...decoded.params }, params)
      assert.equal(decoded.major, 3)
      assert.equal(decoded.minor, 0)
    }
    assert.deepEqual(p.decodeStartupPacket(frame(p.SSL_REQUEST, true).body), { kind: 'ssl' })
    assert.deepEqual(p.decodeStartupPacket(frame(p.GSSENC_REQUEST, true).body), { kind: 'gssenc' })
    // int32 16, int32 80877102, int32 pid, int32 key
    const cancel = p.cancelRequest(4242, 0x01020304)
    assert.deepEqual(cancel, Buffer.from([0, 0, 0, 16, 4, 0xd2, 0x16, 0x2e, 0, 0, 0x10, 0x92, 1, 2, 3, 4]))
    const c = p.decodeStartupPacket(frame(cancel, true).body)
    assert.deepEqual(c.kind === 'cancel' && [c.pid, [...c.secretKey]], [4242, [1, 2, 3, 4]])
  })

  it('Query, Parse, Bind, Describe, Close, Execute', () => {
    assert.equal(p.decodeQuery(frame(p.query('SELECT ünïcode')).body), 'SELECT ünïcode')
    assert.deepEqual(p.decodeParse(frame(p.parse('s1', 'SELECT $1, $2', [23, 4294967295])).body), {
      name: 's1',
      query: 'SELECT $1, $2',
      paramTypes: [23, 4294967295],
    })
    const b = frame(p.bind('portal', 'stmt', ['1', null]))
    const head = p.decodeBind(b.body)
    assert.equal(head.portal, 'portal')
    assert.equal(head.statement, 'stmt')
    assert.equal(b.body.toString('utf8', head.statementStart, head.statementEnd), 'stmt')
    assert.equal(head.restStart, head.statementEnd + 1)
    assert.deepEqual(p.decodeBindParams(b.body), ['1', null])
    assert.deepEqual(p.decodeDescribe(frame(p.describe('S', 'stmt')).body), { kind: 'S', name: 'stmt' })
    assert.deepEqual(p.decodeClose(frame(p.close('P', '')).body), { kind: 'P', name: '' })
    assert.deepEqual(p.decodeExecute(frame(p.execute('c1', 50)).body), { portal: 'c1', maxRows: 50 })
    // exact layout of a simple message: 'Q', int32 13, 'SELECT 1', NUL
    assert.deepEqual(p.query('SELECT 1'), Buffer.from('Q\0\0\0\x0dSELECT 1\0', 'latin1'))
    assert.deepEqual(p.SYNC, Buffer.from([0x53, 0, 0, 0, 4]))
  })

  it('Parse parameter counts are unsigned, as in PostgreSQL: 32,768 and 65,535 types decode', () => {
    for (const n of [32767, 32768, 65535]) {
      const types = Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 23 : 0))
      assert.deepEqual(p.decodeParse(frame(p.parse('big', 'INSERT ...', types)).body).paramTypes, types)
    }
    // the count's bytes 0x80 0x00 were once read as -32768 and refused
    const body = Buffer.concat([Buffer.from('s\0q\0\x80\0', 'latin1'), Buffer.alloc(32768 * 4)])
    assert.equal(p.decodeParse(body).paramTypes.length, 32768)
  })

  it('password family', () => {
    assert.equal(p.decodePasswordMessage(frame(p.passwordMessage('md5abc')).body), 'md5abc')
    const init = p.decodeSASLInitialResponse(
      frame(p.saslInitialResponse('SCRAM-SHA-256', 'n,,n=*,r=abc')).body,
    )
    assert.equal(init.mechanism, 'SCRAM-SHA-256')
    assert.equal(init.data?.toString(), 'n,,n=*,r=abc')
    assert.equal(frame(p.saslResponse('c=biws')).body.toString(), 'c=biws')
  })

  it('Bind layout', () => {
    // 'B', int32 len, portal '', statement 'stmt', int16 1 format (0 text), int16 3 values
    // ('1', NULL as -1, 'x'), int16 0 result formats (all text)
    const expected = Buffer.concat([
      Buffer.from('B\0\0\0\x20\0stmt\0', 'latin1'),
      Buffer.from([0, 1, 0, 0, 0, 3, 0, 0, 0, 1, 0x31, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0x78, 0, 0]),
    ])
    assert.deepEqual(p.bind('', 'stmt', ['1', null, 'x']), expected)
  })
})

describe('backend messages round trip', () => {
  it('ReadyForQuery, ParameterStatus, BackendKeyData, CommandComplete', () => {
    for (const s of ['I', 'T', 'E'] as const)
      assert.equal(p.decodeReadyForQuery(frame(p.readyForQuery(s)).body), s)
    assert.deepEqual(p.decodeParameterStatus(frame(p.parameterStatus('TimeZone', 'UTC')).body), {
      name: 'TimeZone',
      value: 'UTC',
    })
    const k = p.decodeBackendKeyData(frame(p.backendKeyData(77, 0xdeadbeef)).body)
    assert.equal(k.pid, 77)
    assert.equal(k.secretKey.readUInt32BE(0), 0xdeadbeef)
    assert.equal(p.decodeCommandComplete(frame(p.commandComplete('INSERT 0 1')).body), 'INSERT 0 1')
  })

  it('ErrorResponse and NoticeResponse keep every field', () => {
    const fields = {
      severity: 'ERROR',
      code: 'ZF001',
      message: 'freshet: no replica within near_rt',
      detail: 'replica_1 lag 900 ms',
      hint: 'use eventual',
      position: '12',
      routine: 'route',
    }
    const e = frame(p.errorResponse(fields))
    assert.equal(e.code, p.BackendCode.ErrorResponse)
    assert.deepEqual(p.decodeErrorFields(e.body), { ...fields, severityLocal: 'ERROR' })
    const n = frame(p.noticeResponse({ severity: 'NOTICE', code: '00000', message: 'hi' }))
    assert.equal(n.code, p.BackendCode.NoticeResponse)
    assert.equal(p.decodeErrorFields(n.body).message, 'hi')
  })

  it('Authentication requests', () => {
    assert.deepEqual(p.decodeAuthentication(frame(p.AUTHENTICATION_OK).body), { kind: 'ok', code: 0 })
    assert.deepEqual(p.decodeAuthentication(frame(p.AUTHENTICATION_CLEARTEXT_PASSWORD).body), {
      kind: 'cleartext',
      code: 3,
    })
    const md5 = p.decodeAuthentication(frame(p.authenticationMD5Password(Buffer.from([1, 2, 3, 4]))).body)
    assert.deepEqual(md5.kind === 'md5' && [...md5.salt], [1, 2, 3, 4])
    const sasl = p.decodeAuthentication(
      frame(p.authenticationSASL(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'])).body,
    )
    assert.deepEqual(sasl.kind === 'sasl' && sasl.mechanisms, ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'])
    const cont = p.decodeAuthentication(frame(p.authenticationSASLContinue('r=abc,s=xyz,i=4096')).body)
    assert.equal(cont.kind === 'sasl-continue' && cont.data.toString(), 'r=abc,s=xyz,i=4096')
    const fin = p.decodeAuthentication(frame(p.authenticationSASLFinal('v=sig')).body)
    assert.equal(fin.kind === 'sasl-final' && fin.data.toString(), 'v=sig')
  })

  it('RowDescription and DataRow parse with pg-protocol', async () => {
    const { Parser } = await import('pg-protocol/dist/parser.js')
    const messages: { name: string; fields?: { name: string; dataTypeID: number }[]; fields_?: unknown }[] =
      []
    const parser = new Parser()
    const stream = Buffer.concat([
      p.rowDescription([{ name: 'node' }, { name: 'lag_ms', typeOid: 20, typeSize: 8 }]),
      p.dataRow(['replica_1', null]),
      p.commandComplete('SELECT 1'),
      p.EMPTY_QUERY_RESPONSE,
      p.readyForQuery('I'),
    ])
    parser.parse(stream, (m: { name: string }) => messages.push(m as never))
    assert.deepEqual(
      messages.map((m) => m.name),
      ['rowDescription', 'dataRow', 'commandComplete', 'emptyQuery', 'readyForQuery'],
    )
    const row = messages[0] as unknown as { fields: { name: string; dataTypeID: number }[] }
    assert.deepEqual(
      row.fields.map((f) => [f.name, f.dataTypeID]),
      [
        ['node', 25],
        ['lag_ms', 20],
      ],
    )
    assert.deepEqual((messages[1] as unknown as { fields: unknown[] }).fields, ['replica_1', null])
  })

  it('CopyInResponse', () => {
    // 'G', int32 11, int8 0, int16 2, int16 0, int16 0
    const body = Buffer.from([0, 0, 2, 0, 0, 0, 0])
    assert.deepEqual(p.decodeCopyResponse(body), { format: 0, columnFormats: [0, 0] })
  })
})

describe('statement renaming', () => {
  /** Asserts that `renamed` equals `original` with the name at `at` swapped, lengths fixed. */
  function assertRenamed(original: Buffer, renamed: Buffer, at: number, from: string, to: string): void {
    assert.equal(renamed[0], original[0])
    assert.equal(renamed.readUInt32BE(1), renamed.length - 1)
    assert.deepEqual(renamed.subarray(5, at), original.subarray(5, at))
    assert.equal(renamed.toString('utf8', at, at + Buffer.byteLength(to)), to)
    assert.deepEqual(
      renamed.subarray(at + Buffer.byteLength(to)),
      original.subarray(at + Buffer.byteLength(from)),
    )
  }

  it('renames Parse, Bind, Describe and Close, keeping the other bytes', () => {
    const parse = p.parse('client_stmt', 'SELECT $1', [23])
    const renamedParse = p.renameParse(parse, 'freshet_s1')
    assertRenamed(parse, renamedParse, 5, 'client_stmt', 'freshet_s1')
    assert.deepEqual(p.decodeParse(frame(renamedParse).body), {
      name: 'freshet_s1',
      query: 'SELECT $1',
      paramTypes: [23],
    })

    const bind = p.bind('portal', 'client_stmt', ['1', null, 'two'])
    const renamedBind = p.renameBind(bind, 'freshet_s1')
    assertRenamed(bind, renamedBind, 5 + 'portal'.length + 1, 'client_stmt', 'freshet_s1')
    assert.deepEqual(renamedBind, p.bind('portal', 'freshet_s1', ['1', null, 'two']))

    for (const [make, decode] of [
      [p.describe, p.decodeDescribe],
      [p.close, p.decodeClose],
    ] as const) {
      const m = make('S', 'client_stmt')
      const r = p.renameDescribeOrClose(m, 'a_much_longer_server_side_name')
      assertRenamed(m, r, 6, 'client_stmt', 'a_much_longer_server_side_name')
      assert.deepEqual(decode(frame(r).body), { kind: 'S', name: 'a_much_longer_server_side_name' })
    }
    // the unnamed statement both ways
    assert.deepEqual(p.renameParse(p.parse('', 'SELECT 1'), 'x'), p.parse('x', 'SELECT 1'))
    assert.deepEqual(p.renameParse(p.parse('x', 'SELECT 1'), ''), p.parse('', 'SELECT 1'))
  })

  it('refuses the wrong message and malformed input', () => {
    assert.throws(() => p.renameParse(p.query('SELECT 1'), 'x'), TypeError)
    assert.throws(() => p.renameBind(Buffer.from([0x42, 0, 0, 0, 6, 0x61]), 'x'), p.ProtocolError)
    assert.throws(() => p.renameParse(p.parse('a', 'b'), 'nul\0name'), TypeError)
  })
})

describe('decoders on hostile bodies', () => {
  it('truncated or trailing bytes fail with ProtocolError', () => {
    assert.throws(() => p.decodeQuery(Buffer.from('SELECT 1')), p.ProtocolError)
    assert.throws(() => p.decodeQuery(Buffer.from('SELECT 1\0x')), p.ProtocolError)
    assert.throws(() => p.decodeParse(Buffer.from('s\0q\0\0\x02\0\0\0\x17')), p.ProtocolError)
    assert.throws(() => p.decodeDescribe(Buffer.from('Xname\0')), p.ProtocolError)
    assert.throws(() => p.decodeReadyForQuery(Buffer.from('Q')), p.ProtocolError)
    assert.throws(
      () => p.decodeSASLInitialResponse(Buffer.from('SCRAM-SHA-256\0\0\0\0\x09abc')),
      p.ProtocolError,
    )
  })

  it('Bind parameter values: text, NULL, binary int2/int4/int8 and uuid, one format for all', () => {
    assert.deepEqual(p.decodeBindParams(frame(p.bind('', 's', ['42', null, 'eu'])).body), ['42', null, 'eu'])
    const int8 = Buffer.alloc(8)
    int8.writeBigInt64BE(-7n)
    const int4 = Buffer.alloc(4)
    int4.writeInt32BE(123456)
    const int2 = Buffer.from([0x00, 0x05])
    const uuid = Buffer.from('a0eebc999c0b4ef8bb6d6bb9bd380a11', 'hex')
    const values = [int8, int4, int2, uuid, Buffer.from('txt'), null]
    // portal, statement, int16 6 formats (binary but the 5th), int16 6 values, each int32 length + bytes, int16 0
    const parts: Buffer[] = [
      Buffer.from('\0s\0'),
      Buffer.from([0, 6, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 1, 0, 6]),
    ]
    for (const v of values) {
      const len = Buffer.alloc(4)
      len.writeInt32BE(v === null ? -1 : v.length)
      parts.push(len, ...(v === null ? [] : [v]))
    }
    parts.push(Buffer.from([0, 0]))
    assert.deepEqual(p.decodeBindParams(Buffer.concat(parts)), [
      -7n,
      123456n,
      5n,
      'a0eebc999c0b4ef8bb6d6bb9bd380a11',
      'txt',
      null,
    ])
    // one format code for all: binary
    const all = Buffer.concat([
      Buffer.from('\0s\0'),
      Buffer.from([0, 1, 0, 1, 0, 1, 0, 0, 0, 4]),
      int4,
      Buffer.from([0, 0]),
    ])
    assert.deepEqual(p.decodeBindParams(all), [123456n])
    assert.throws(() => p.decodeBindParams(Buffer.from('\0s\0\0\0\0\x01\0\0\0\x09ab')), p.ProtocolError)
  })

  it('random bodies throw nothing but ProtocolError from any decoder (fixed seed)', () => {
    const decoders: ((b: Buffer) => unknown)[] = [
      p.decodeStartupPacket,
      p.decodeQuery,
      p.decodeParse,
      p.decodeBind,
      p.decodeBindParams,
      p.decodeDescribe,
      p.decodeClose,
      p.decodeExecute,
      p.decodePasswordMessage,
      p.decodeSASLInitialResponse,
      p.decodeReadyForQuery,
      p.decodeErrorFields,
      p.decodeAuthentication,
      p.decodeBackendKeyData,
      p.decodeParameterStatus,
      p.decodeCommandComplete,
      p.decodeCopyResponse,
    ]
    const seeds = [
      p.parse('s', 'SELECT 1', [23, 25]),
      p.bind('', 's', ['1']),
      p.startupMessage({ user: 'u' }),
    ]
    let state = 12345
    const rand = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0
      return state / 4294967296
    }
    for (let n = 0; n < 3000; n++) {
      let body: Buffer
      if (n % 2 === 0) {
        body = Buffer.alloc(Math.floor(rand() * 24))
        for (let i = 0; i < body.length; i++) body[i] = rand() < 0.3 ? 0 : Math.floor(rand() * 256)
      } else {
        body = Buffer.from(seeds[n % seeds.length]!.subarray(n % 3 === 2 ? 4 : 5))
        body[Math.floor(rand() * body.length)] = Math.floor(rand() * 256)
        body = body.subarray(0, Math.floor(rand() * (body.length + 1)))
      }
      for (const decode of decoders) {
        try {
          decode(body)
        } catch (err) {
          if (!(err instanceof p.ProtocolError)) throw err
        }
      }
    }
  })
})
