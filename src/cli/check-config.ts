// `freshet check-config FILE`: validates a config file and prints every error with its key path.

import { parseArgs } from 'node:util'
import { loadConfigFile } from '../backend/config-file.js'
import { ConfigError, isFreshetError } from '../core/errors.js'

export const usage = 'freshet check-config FILE [--quiet]   validate a config; exit 1 if invalid'

export async function run(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { quiet: { type: 'boolean', short: 'q' }, help: { type: 'boolean', short: 'h' } },
  })
  if (values.help || positionals.length !== 1) {
    console.error(`usage: ${usage}`)
    return values.help ? 0 : 2
  }
  const file = positionals[0]!
  try {
    const config = await loadConfigFile(file)
    if (!values.quiet) {
      const replicas = config.cluster.replicas.map((r) => r.name).join(', ') || 'none'
      console.log(
        `${file}: valid (version ${config.version}; primary ${config.cluster.primary.name}; replicas ${replicas}; ` +
          `tiers ${Object.keys(config.routing.tiers).join(', ')}; unannotated reads -> ${config.routing.unannotated})`,
      )
    }
    return 0
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`${file}: invalid, ${err.issues.length} error${err.issues.length === 1 ? '' : 's'}:`)
      for (const issue of err.issues) console.error(`  ${issue.path || '(root)'}: ${issue.message}`)
      return 1
    }
    if (isFreshetError(err)) {
      console.error(err.message)
      return 1
    }
    throw err
  }
}
