import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ProtocolError, parameterDescription, rowDescription } from '../../../src/protocol/index.js'
import {
  decodeColumnTypes,
  decodeParameterTypes,
  type StatementShape,
  sameRowType,
} from '../../../src/proxy/statement-shape.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const body = (message: Buffer): Buffer => message.subarray(5)

describe('statement shape', () => {
  it('reads the type OID and modifier of each column, whatever the names and tables', () => {
    const m = rowDescription([
      { name: 'x', typeOid: 23, tableOid: 16396, columnNumber: 1 },
      { name: 'a_long_column_name', typeOid: 1043, typeModifier: 14 },
    ])
    assert.deepEqual([...decodeColumnTypes(body(m))], [23, -1, 1043, 14])
    assert.deepEqual([...decodeColumnTypes(body(rowDescription([])))], [])
  })

  it('reads parameter types and their count unsigned (more than 32,767 parameters)', () => {
    assert.deepEqual(
      decodeParameterTypes(body(parameterDescription([23, 1007, 4_000_000_000]))),
      [23, 1007, 4_000_000_000],
    )
    const many = Array.from({ length: 40_000 }, () => 23)
    assert.equal(decodeParameterTypes(body(parameterDescription(many))).length, 40_000)
  })

  it('refuses a RowDescription whose field count runs past its length, rather than reading garbage', () => {
    const one = Buffer.from(body(rowDescription([{ name: 'x', typeOid: 23 }])))
    one.writeUInt16BE(0x7fff, 0)
    assert.throws(() => decodeColumnTypes(one), ProtocolError)
    assert.throws(
      () => decodeColumnTypes(body(rowDescription([{ name: 'x', typeOid: 23 }])).subarray(0, 10)),
      ProtocolError,
    )
    assert.throws(() => decodeColumnTypes(Buffer.alloc(1)), ProtocolError)
  })

  it('refuses a ParameterDescription whose count does not match its length', () => {
    const two = Buffer.from(body(parameterDescription([23, 25])))
    two.writeUInt16BE(3, 0)
    assert.throws(() => decodeParameterTypes(two), ProtocolError)
    assert.throws(() => decodeParameterTypes(Buffer.alloc(1)), ProtocolError)
  })

  const shape = (columns: number[] | null): StatementShape => ({
    params: [],
    columns: columns === null ? null : Int32Array.from(columns),
  })
  const cases: [string, number[] | null, number[] | null, boolean][] = [
    ['same types', [23, -1, 25, -1], [23, -1, 25, -1], true],
    ['int became int[]', [23, -1], [1007, -1], false],
    ['a type modifier changed (varchar(10) to varchar(20))', [1043, 14], [1043, 24], false],
    ['a column more', [23, -1], [23, -1, 23, -1], false],
    ['both return no rows', null, null, true],
    ['rows became no rows', [23, -1], null, false],
  ]
  for (const [what, a, b, same] of cases) {
    it(`${what}: ${same ? 'same' : 'different'} row type`, () => {
      assert.equal(sameRowType(shape(a), shape(b)), same)
      assert.equal(sameRowType(shape(b), shape(a)), same)
    })
  }
})
