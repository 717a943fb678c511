/**
 * Runs the service as its own process (the node adapter's main, or the bun adapter's on Bun), for
 * tests that need a real process: memory measurements, signals, restarts, several instances, and
 * every suite that runs against the Bun adapter.
 */
import type { ChildProcess } from 'node:child_process'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Exit, spawnChild } from './child-process.js'
import { compiled } from './compiled.js'
import { requireBinary } from './external.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The runtimes the service runs on: Node (the node adapter) and Bun (the bun adapter). */
export type Runtime = 'node' | 'bun'

/** Each adapter's main, from the sources and as `npm run build` leaves it (what `npm start` and `npm run start:bun` run). */
const MAINS: Record<Runtime, { source: string; built: string }> = {
  node: { source: 'src/adapters/node/main.ts', built: 'dist/src/adapters/node/main.js' },
  bun: { source: 'src/adapters/bun/main.ts', built: 'dist/src/adapters/bun/main.js' },
}
/** The service as `npm run build` leaves it (what `npm start` runs), for black-box suites. */
export const BUILT_MAIN = MAINS.node.built

/**
 * Bun from the npm registry (the `bun` devDependency, which `npm ci` installs), or BUN_BIN. Missing,
 * the runs on Bun fail under CI=true and are left out elsewhere, with a message.
 */
export const BUN = requireBinary('BUN_BIN', [join(ROOT, 'node_modules/.bin/bun')], 'Bun')
/** The header room `npm run start:bun` gives Bun. */
export const BUN_ARGS = ['--max-http-header-size=65536']
/** The runtimes a suite runs on: Node, and Bun where it is installed. */
export const RUNTIMES: Runtime[] = BUN ? ['node', 'bun'] : ['node']

/**
 * The command that runs `runtime`'s main, with `runtimeArgs` for the runtime itself: Bun runs the
 * TypeScript sources as they are, Node the sources compiled once per test file (./compiled.ts).
 */
function command(runtime: Runtime, built: boolean, runtimeArgs: string[]): [string, string[]] {
  const main = MAINS[runtime]
  if (runtime === 'bun') {
    if (!BUN) throw new Error('Bun is not installed (npm ci installs it; or set BUN_BIN)')
    return [BUN, [...BUN_ARGS, ...runtimeArgs, built ? main.built : main.source]]
  }
  return [process.execPath, [...runtimeArgs, built ? main.built : compiled(main.source)]]
}

export interface ProcessService {
  child: ChildProcess
  pid: number
  /** `http://127.0.0.1:port` */
  origin: string
  /** `http://127.0.0.1:port/filestorage/v1` */
  api: string
  port: number
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string
  /** Resident memory now, in bytes (from /proc). */
  rss(): Promise<number>
  /** Peak resident memory since start or the last `resetPeakRss`, in bytes. */
  peakRss(): Promise<number>
  resetPeakRss(): Promise<void>
  /** How many file descriptors the process holds open now (from /proc). */
  openFds(): Promise<number>
  /** Sends a signal and waits (bounded) for the exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>
  exited: Promise<Exit>
}

async function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]
  if (!kib) throw new Error(`no ${field} for process ${pid}`)
  return Number(kib) * 1024
}

/**
 * The test process's environment, less the variables of the run's shared services: the test run sets
 * MONGODB_URI and CONSUL_HTTP_ADDR for the suites that use them, and a service process gets the mongo
 * store or registers with Consul only when its test asks.
 */
function inheritedEnv(): NodeJS.ProcessEnv {
  const { MONGODB_URI: _uri, MONGODB_DB: _db, CONSUL_HTTP_ADDR: _consul, ...env } = process.env
  return env
}

/**
 * Starts the service with `env` (PORT defaults to 0: the process reports the port it got) and
 * waits until it serves, at most `startTimeoutMs`. It runs from the sources (through tsx on Node), or
 * with `built` from `dist/` exactly as `npm start` (`npm run start:bun`) runs it; on Node unless
 * `runtime` says Bun.
 */
export async function spawnService(
  env: Record<string, string>,
  options: { startTimeoutMs?: number; runtimeArgs?: string[]; built?: boolean; runtime?: Runtime } = {},
): Promise<ProcessService> {
  const [program, args] = command(options.runtime ?? 'node', options.built ?? false, options.runtimeArgs ?? [])
  const service = spawnChild(program, args, {
    cwd: ROOT,
    env: { ...inheritedEnv(), HOST: '127.0.0.1', PORT: '0', LOG_REQUESTS: 'false', ...env },
  })
  const { child, exited, output } = service

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the service did not start in time; output:\n${output()}`))
    }, options.startTimeoutMs ?? 20_000)
    const onData = () => {
      const m = /serving stores .* on http:\/\/[^:]+:(\d+)\//.exec(output())
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    }
    child.stdout!.on('data', onData)
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`the service exited (${code ?? signal}) before serving; output:\n${output()}`))
    })
  })

  const origin = `http://127.0.0.1:${port}`
  const pid = child.pid!
  return {
    child,
    pid,
    port,
    origin,
    api: `${origin}/filestorage/v1`,
    output,
    rss: () => procStatus(pid, 'VmRSS'),
    peakRss: () => procStatus(pid, 'VmHWM'),
    // Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS (Linux 4.0+).
    resetPeakRss: () => writeFile(`/proc/${pid}/clear_refs`, '5'),
    openFds: async () => (await readdir(`/proc/${pid}/fd`)).length,
    exited,
    stop: (signal = 'SIGTERM', timeoutMs = 15_000) => service.stop(signal, timeoutMs),
  }
}
