// Runs the freshet CLI from TypeScript sources, as bin/freshet.js does from dist.

import { main } from '../../src/cli/main.js'

process.exitCode = await main(process.argv.slice(2))
