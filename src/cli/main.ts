// The `freshet` command line: a small table of commands, each loaded only when it runs.

/** What every command module exports. */
export interface CommandModule {
  run(argv: string[]): Promise<number>
}

interface Command {
  readonly summary: string
  /** Module file beside this one, loaded on demand so `freshet --help` stays fast. */
  readonly module: string
}

const COMMANDS: Readonly<Record<string, Command>> = Object.freeze({
  sandbox: {
    module: 'sandbox',
    summary:
      'sandbox [--replicas N] [--lag NAME=DURATION] [--port P] [--engine mariadb]   local primary + replicas, proxy, freshet.yaml',
  },
  proxy: {
    module: 'proxy',
    summary: 'proxy --config FILE                               run the proxy and the admin API',
  },
  explain: {
    module: 'explain',
    summary:
      'explain [--config FILE] [--json] SQL              print the classification and routing decision',
  },
  'check-config': {
    module: 'check-config',
    summary: 'check-config FILE                                 validate a config; exit 1 if invalid',
  },
  config: {
    module: 'config',
    summary: 'config push FILE | status | flag NAME=BOOL        fleet rollout with quorum (etcd), flags',
  },
  status: {
    module: 'status',
    summary: 'status [--admin URL]                              topology, lag, breakers and pools as a table',
  },
})

/** The usage text listing every command. */
export function usage(): string {
  const lines = Object.values(COMMANDS).map((c) => `  freshet ${c.summary}`)
  return [
    'usage: freshet <command> [options]',
    '',
    'commands:',
    ...lines,
    '',
    'freshet <command> --help for details',
  ].join('\n')
}

/**
 * Runs the CLI with `argv` (without the node and script paths) and returns the exit code.
 *
 * @example
 * process.exitCode = await main(['check-config', 'freshet.yaml'])
 */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage())
    return name === undefined ? 2 : 0
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined
  if (!command) {
    console.error(`freshet: unknown command '${name}'\n\n${usage()}`)
    return 2
  }
  const specifier = `./${command.module}.js`
  let mod: CommandModule
  try {
    mod = (await import(specifier)) as CommandModule
  } catch (err) {
    if (isMissingModule(err, command.module)) {
      console.error(`freshet ${name}: not implemented yet`)
      return 1
    }
    throw err
  }
  return mod.run(rest)
}

/** True when the import failed because the command's own module does not exist (not one it imports). */
function isMissingModule(err: unknown, module: string): boolean {
  const e = err as NodeJS.ErrnoException | undefined
  if (e?.code !== 'ERR_MODULE_NOT_FOUND') return false
  return (
    new RegExp(`[/\\\\]cli[/\\\\]${module}\\.(js|ts)'`).test(e.message) ||
    e.message.includes(`'./${module}.js'`)
  )
}
