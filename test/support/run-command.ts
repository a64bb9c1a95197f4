// Runs a command without blocking the event loop (servers in the test process keep answering) and
// collects its exit code and output.

import { spawn } from 'node:child_process'

/**
 * @example const { status, stdout } = await runCommand('psql', ['-c', 'SHOW POOLS'], { env })
 */
export function runCommand(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => {
      stdout += c
    })
    child.stderr.on('data', (c) => {
      stderr += c
    })
    child.once('error', reject)
    child.once('exit', (status) => resolve({ status, stdout, stderr }))
  })
}
