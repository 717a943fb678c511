/**
 * Our service as the production runs it: the built `dist/` entry point in its own process, the node
 * adapter on the Node that runs the bench (`npm start`) or the bun adapter on Bun (`npm run
 * start:bun`), on loopback, without request logging, with access control on (every request
 * verifies a token).
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { mintToken } from '../../src/auth/index.js'
import { freePort } from './ports.js'
import { answers, processTree, startProcess, waitUntil, type StartedProcess } from './processes.js'

export const PROJECT_DIR = join(import.meta.dirname, '..', '..')

export type Runtime = 'node' | 'bun'
/** Bun from the npm registry: the `bun` devDependency. */
export const BUN = join(PROJECT_DIR, 'node_modules', '.bin', 'bun')

/** The command `npm start` (node) or `npm run start:bun` (bun) runs in `projectDir`, with `runtimeArgs` for the runtime. */
function serviceCommand(runtime: Runtime, runtimeArgs: string[], projectDir: string): [string, string[]] {
  const main = (adapter: string) => join(projectDir, 'dist', 'src', 'adapters', adapter, 'main.js')
  if (runtime === 'bun') return [BUN, ['--max-http-header-size=65536', ...runtimeArgs, main('bun')]]
  return [process.execPath, [...runtimeArgs, main('node')]]
}

/** `npm run build`: the bench always measures the service built from the current sources. */
export function buildService(): void {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: PROJECT_DIR, stdio: 'inherit' })
}

export interface ServiceOptions {
  storageDir: string
  logFile: string
  mongodbUri?: string
  mongodbDb?: string
  /** The bun adapter on Bun instead of the node adapter on Node. */
  runtime?: Runtime
  /** Extra flags for the runtime, e.g. Node's `--cpu-prof`. */
  runtimeArgs?: string[]
  /** Sets WORKERS (processes sharing the port); unset when not given. */
  workers?: number
  /** More environment (e.g. ACCEL_REDIRECT_LOCATION). */
  env?: Record<string, string>
  /** Another build of the service (an earlier commit's checkout, built): this project by default. */
  projectDir?: string
}

/** One HMAC key per bench run, so a token stays good across the service's restarts within it. */
const KEY = { kid: 'bench', secret: randomBytes(32).toString('hex') }

export interface RunningService {
  /** The process we started (the primary, with workers). */
  pid: number
  /** Every process of the service once it answers: `pid` and its workers, if any. */
  pids: number[]
  /** `http://127.0.0.1:port/filestorage/v1` */
  api: string
  /** A bearer token with every right, for the clients of our service (curl, wrk, tus-js-client, fetch). */
  token: string
  stop(): Promise<void>
}

export async function startService(options: ServiceOptions): Promise<RunningService> {
  const port = await freePort()
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    STORAGE_DIR: options.storageDir,
    LOG_REQUESTS: 'false',
    SHUTDOWN_TIMEOUT_SECONDS: '5',
    AUTH_HMAC_SECRETS: `${KEY.kid}:${KEY.secret}`,
  }
  if (options.workers !== undefined) env.WORKERS = String(options.workers)
  Object.assign(env, options.env)
  if (options.mongodbUri) {
    env.MONGODB_URI = options.mongodbUri
    env.MONGODB_DB = options.mongodbDb ?? 'filestorage_bench'
  }
  const [program, args] = serviceCommand(options.runtime ?? 'node', options.runtimeArgs ?? [], options.projectDir ?? PROJECT_DIR)
  const started: StartedProcess = startProcess(program, args, {
    env,
    cwd: options.projectDir ?? PROJECT_DIR,
    logFile: options.logFile,
  })
  const api = `http://127.0.0.1:${port}/filestorage/v1`
  await waitUntil('the service', started, () => answers(`${api}/help`))
  const pids = await settledProcesses(started.pid, options.workers ?? 1)
  const token = await mintToken({ key: KEY, sub: 'bench', scopes: ['files:*:*:'], expiresIn: 24 * 3600 })
  return { pid: started.pid, pids, api, token, stop: () => started.stop('SIGTERM', 15_000) }
}

/**
 * The service's processes once `workers` of them run beside the primary, or after 10 s (a
 * service without WORKERS stays one process: the caller tells by `pids.length`).
 */
async function settledProcesses(pid: number, workers: number): Promise<number[]> {
  const deadline = Date.now() + (workers > 1 ? 10_000 : 0)
  for (;;) {
    const pids = processTree(pid)
    if (pids.length > workers || Date.now() >= deadline) return pids
    await new Promise((r) => setTimeout(r, 100))
  }
}
