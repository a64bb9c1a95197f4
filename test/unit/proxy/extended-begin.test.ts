// loneBeginAnswer: which extended-protocol BEGIN batches freshet answers itself (and with what), and
// which it leaves to the server. The answers are checked against a real server's in
// test/integration/sharding/proxy-extended-begin.test.ts; here the batches it must not answer.

import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { Classifier } from '../../../src/core/classify/classifier.js'
import { bind, close, describe as describeMessage, execute, parse } from '../../../src/protocol/index.js'
import { type Job, JobAssembler } from '../../../src/proxy/extended-batch.js'
import { loneBeginAnswer } from '../../../src/proxy/extended-begin.js'
import { ClientStatements } from '../../../src/proxy/prepared-statements.js'

const SYNC = Buffer.from([0x53, 0, 0, 0, 4])
const FLUSH = Buffer.from([0x48, 0, 0, 0, 4])
let classifier: Classifier

function jobOf(messages: Buffer[]): Job {
  const jobs: Job[] = []
  const assembler = new JobAssembler(new ClientStatements())
  for (const m of messages) assembler.accept(m[0]!, m, (j) => jobs.push(j))
  assert.equal(jobs.length, 1)
  return jobs[0]!
}

/** The message types of freshet's answer to the batch, or null when it leaves it to the server. */
function answer(messages: Buffer[]): string | null {
  const job = jobOf(messages)
  const bytes = loneBeginAnswer(job, classifier.classify(job.sql!))
  if (bytes === null) return null
  const types: string[] = []
  for (let at = 0; at < bytes.length; at += 1 + bytes.readInt32BE(at + 1))
    types.push(String.fromCharCode(bytes[at]!))
  return types.join('')
}

describe('loneBeginAnswer', () => {
  before(async () => {
    classifier = await Classifier.create()
  })

  it('answers a lone BEGIN batch message for message', () => {
    assert.equal(
      answer([parse('', 'BEGIN'), bind('', ''), describeMessage('P', ''), execute(), SYNC]),
      '12nCZ',
    )
    assert.equal(answer([parse('', 'BEGIN'), bind('', ''), execute(), SYNC]), '12CZ')
    assert.equal(
      answer([parse('b', 'BEGIN'), describeMessage('S', 'b'), bind('', 'b'), execute(), SYNC]),
      '1tn2CZ',
    )
  })

  it('leaves to the server what it cannot answer exactly', () => {
    const cases: [string, Buffer[]][] = [
      ['not a BEGIN', [parse('', 'COMMIT'), bind('', ''), execute(), SYNC]],
      ['ended by Flush', [parse('', 'BEGIN'), bind('', ''), execute(), FLUSH]],
      ['no Execute', [parse('', 'BEGIN'), bind('', ''), SYNC]],
      ['a Bind with a value', [parse('', 'BEGIN'), bind('', '', ['1']), execute(), SYNC]],
      ['declared parameter types', [parse('', 'BEGIN', [23]), bind('', ''), execute(), SYNC]],
      ['a named portal', [parse('', 'BEGIN'), bind('p', ''), execute('p'), SYNC]],
      ['two Executes', [parse('', 'BEGIN'), bind('', ''), execute(), execute(), SYNC]],
      ['a Close', [parse('', 'BEGIN'), bind('', ''), execute(), close('S', ''), SYNC]],
    ]
    for (const [name, batch] of cases) assert.equal(answer(batch), null, name)
  })
})
