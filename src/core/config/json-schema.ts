// The config schema as JSON Schema, for editors (yaml-language-server, VS Code) and `schema/freshet.schema.json`.

import { z } from 'zod'
import { ConfigSchema } from './schema.js'

/** JSON Schema (draft 2020-12) of what a user may write in freshet.yaml / freshet.json. */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >
  return {
    ...schema,
    $id: 'https://freshet.dev/schema/freshet.schema.json',
    title: 'freshet config',
    description: 'freshet routing config (docs/configuration.md). Every key with a default is optional.',
  }
}
