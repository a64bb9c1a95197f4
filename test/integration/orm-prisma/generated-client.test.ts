// The committed Prisma client (examples/prisma/generated) is what `prisma generate` makes from
// schema.prisma today, and generating it needs no network (proxies point at a closed port).

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const root = fileURLToPath(new URL('../../..', import.meta.url))
const example = join(root, 'examples/prisma')

async function filesUnder(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name === 'biome.json') continue
    const path = join(entry.parentPath, entry.name)
    out.set(relative(dir, path), await readFile(path, 'utf8'))
  }
  return out
}

describe('the committed Prisma client', () => {
  let work: string | undefined

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('matches a fresh offline `prisma generate` of examples/prisma/schema.prisma', async () => {
    work = await mkdtemp(join(tmpdir(), 'freshet-prisma-'))
    await copyFile(join(example, 'schema.prisma'), join(work, 'schema.prisma'))
    const closed = 'http://127.0.0.1:9'
    await promisify(execFile)(
      process.execPath,
      [join(root, 'node_modules/prisma/build/index.js'), 'generate', '--schema', join(work, 'schema.prisma')],
      {
        cwd: work,
        env: {
          ...process.env,
          HTTP_PROXY: closed,
          HTTPS_PROXY: closed,
          CHECKPOINT_DISABLE: '1',
          // The CLI insists on a schema-engine binary before any command; generate never runs it.
          PRISMA_SCHEMA_ENGINE_BINARY: process.execPath,
        },
      },
    )
    const fresh = await filesUnder(join(work, 'generated'))
    const committed = await filesUnder(join(example, 'generated'))
    assert.deepEqual([...fresh.keys()].sort(), [...committed.keys()].sort())
    for (const [name, text] of fresh)
      assert.equal(committed.get(name), text, `${name} is stale: regenerate it`)
  })
})
