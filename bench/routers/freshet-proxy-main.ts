// Child-process entry for the bench: runs the freshet CLI from source (tsx), e.g. `proxy --config FILE`.
import { main } from '../../src/cli/main.js'

process.exitCode = await main(process.argv.slice(2))
