// Writes schema/freshet.schema.json from the zod schema. Run: npx tsx scripts/gen-schema.ts
import { writeFileSync } from 'node:fs'
import { configJsonSchema } from '../src/core/config/json-schema.js'

writeFileSync(
  new URL('../schema/freshet.schema.json', import.meta.url),
  `${JSON.stringify(configJsonSchema(), null, 2)}\n`,
)
