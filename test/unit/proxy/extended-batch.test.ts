// JobAssembler and ClientStatements: a repeated Query or unnamed Parse reuses the text decoded last time,
// a changed one (in any byte) is decoded again.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { bind, execute, FrontendCode, parse, query } from '../../../src/protocol/index.js'
import { type Job, JobAssembler } from '../../../src/proxy/extended-batch.js'
import { ClientStatements } from '../../../src/proxy/prepared-statements.js'

const SYNC = Buffer.from([0x53, 0, 0, 0, 4])

function jobsOf(messages: Buffer[]): Job[] {
  const jobs: Job[] = []
  const assembler = new JobAssembler(new ClientStatements())
  for (const m of messages) assert.ok(assembler.accept(m[0]!, m, (j) => jobs.push(j)))
  return jobs
}

describe('JobAssembler', () => {
  it('gives a repeated Query the same text and decodes a changed one', () => {
    // each message in its own buffer, as from separate socket reads
    const jobs = jobsOf([query('SELECT 1'), query('SELECT 1'), query('SELECT 2'), query('SELECT 1')])
    assert.deepEqual(
      jobs.map((j) => j.sql),
      ['SELECT 1', 'SELECT 1', 'SELECT 2', 'SELECT 1'],
    )
    assert.ok(jobs.every((j) => j.kind === 'simple' && j.syncs === 1))
  })

  it('gives a repeated unnamed Parse the same text and decodes one that differs in its parameter types', () => {
    const batch = (p: Buffer) => [p, bind('', ''), execute(), SYNC]
    const jobs = jobsOf([
      ...batch(parse('', 'SELECT $1::int')),
      ...batch(parse('', 'SELECT $1::int')),
      ...batch(parse('', 'SELECT $1::int', [23])),
      ...batch(parse('', 'SELECT $1::text')),
    ])
    assert.deepEqual(
      jobs.map((j) => j.sql),
      ['SELECT $1::int', 'SELECT $1::int', 'SELECT $1::int', 'SELECT $1::text'],
    )
    for (const j of jobs) {
      assert.equal(j.items![0]!.code, FrontendCode.Parse)
      // the Bind refers to the Parse of its own batch
      assert.equal(j.items![1]!.unnamed, j.items![0]!.whole)
    }
  })
})
