/**
 * Runs the `filestorage` command line as its own process, as a script would: arguments, environment,
 * exit code, stdout and stderr apart.
 *
 * It runs from the TypeScript sources compiled once per test process (./compiled.ts), not through tsx.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { compiled } from './compiled.js'
import { requireBinary } from './external.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const main = (): string => compiled('src/cli/main.ts')

export interface CliExit {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: Buffer
  stderr: string
}

export interface CliProcess {
  child: ChildProcess
  exited: Promise<CliExit>
}

/**
 * The test's environment without the variables the CLI reads (a run's CONSUL_HTTP_ADDR would send
 * it to Consul), plus `env`.
 */
function cliEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('FILESTORAGE_') && !k.startsWith('CONSUL_HTTP_')),
  )
  return { ...inherited, ...env }
}

export function spawnCli(args: string[], env: Record<string, string>): CliProcess {
  return spawnProcess(process.execPath, [main(), ...args], cliEnv(env))
}

/** util-linux `script` (Debian's bsdutils, an essential package): runs a command on a pseudo-terminal. */
export const scriptPath = (): string | undefined =>
  requireBinary('SCRIPT_BIN', ['/usr/bin/script'], 'script (util-linux; Debian package bsdutils)')

const shellQuote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`

/**
 * Runs the CLI on a pseudo-terminal of 200 columns, through `script` (its path: `scriptPath()`), as
 * a person at a terminal would: the CLI's stdout and stderr are the terminal, and all that it shows
 * arrives on the returned process's stdout, escape sequences and all. The exit code is the CLI's.
 */
export function spawnCliOnTerminal(script: string, args: string[], env: Record<string, string>): CliProcess {
  const command = ['stty cols 200 rows 50 &&', 'exec', ...[process.execPath, main(), ...args].map(shellQuote)].join(' ')
  // -q: no "Script started" lines; -e: the command's exit code; -f: output flushed as it comes.
  return spawnProcess(script, ['-qefc', command, '/dev/null'], { ...cliEnv(env), SHELL: '/bin/sh' })
}

function spawnProcess(command: string, args: string[], env: NodeJS.ProcessEnv): CliProcess {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const stdout: Buffer[] = []
  let stderr = ''
  child.stdout!.on('data', (c: Buffer) => stdout.push(c))
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  const exited = new Promise<CliExit>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(stdout), stderr }))
  })
  return { child, exited }
}

/** Runs the CLI to its end (killed after `timeoutMs`). */
export async function runCli(args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<CliExit> {
  const { child, exited } = spawnCli(args, env)
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  try {
    return await exited
  } finally {
    clearTimeout(timer)
  }
}

/** stdout parsed as the one JSON document `--json` prints. */
export function jsonOut<T = Record<string, unknown>>(run: CliExit): T {
  return JSON.parse(run.stdout.toString()) as T
}

/** The `{ "error": ... }` line `--json` prints on stderr. */
export function jsonError(run: CliExit): { exitCode: number; code: string; message: string; status?: number; subject?: string } {
  const line = run.stderr.split('\n').find((l) => l.startsWith('{"error"'))
  if (!line) throw new Error(`no JSON error on stderr: ${run.stderr}`)
  return (JSON.parse(line) as { error: ReturnType<typeof jsonError> }).error
}
