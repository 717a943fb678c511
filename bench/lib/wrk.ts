/**
 * wrk from Debian, the load generator for the small-file benchmarks: a fixed number of
 * connections for a fixed time; requests per second and latency percentiles from wrk itself.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { track } from './processes.js'

const run = promisify(execFile)
const SCRIPT = join(import.meta.dirname, '..', 'wrk', 'bench.lua')
export const WRK = process.env.BENCH_WRK ?? '/usr/bin/wrk'

export interface LoadOptions {
  /** Full URL; for PUT, its origin is used and the paths come from `pathPrefix`. */
  url: string
  method: 'GET' | 'PUT'
  connections: number
  threads: number
  seconds: number
  /** PUT: paths are `<pathPrefix><thread>-<n>`, n cycling over `names`. */
  pathPrefix?: string
  names?: number
  bodyBytes?: number
  /** Sent as `Authorization: Bearer` with every request. */
  token?: string
}

export interface LoadResult {
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  requests: number
  /** Failed requests of every kind, non-2xx/3xx answers included. */
  errors: number
}

interface WrkJson {
  requests: number
  duration_us: number
  p50_us: number
  p99_us: number
  errors: Record<string, number>
}

/**
 * The small-file PUT load of a service (`api`: its `/filestorage/v1` URL): `names` paths per wrk
 * thread under `pathPrefix`, cycled, each a `bodyBytes` upload.
 */
export function putLoad(
  service: { api: string; token?: string },
  pathPrefix: string,
  shape: { names: number; bodyBytes: number; connections: number; threads: number },
): Omit<LoadOptions, 'seconds'> {
  return {
    method: 'PUT',
    url: `${new URL(service.api).origin}/`,
    pathPrefix,
    ...shape,
    ...(service.token ? { token: service.token } : {}),
  }
}

export async function load(options: LoadOptions): Promise<LoadResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, WRK_METHOD: options.method }
  if (options.pathPrefix) env.WRK_PATH_PREFIX = options.pathPrefix
  if (options.names) env.WRK_NAMES = String(options.names)
  if (options.bodyBytes) env.WRK_BODY_BYTES = String(options.bodyBytes)
  if (options.token) env.WRK_AUTHORIZATION = `Bearer ${options.token}`
  const args = [
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${options.seconds}s`,
    '--timeout',
    '10s',
    '-s',
    SCRIPT,
    options.url,
  ]
  const running = run(WRK, args, { env, timeout: (options.seconds + 30) * 1000, maxBuffer: 1024 * 1024 })
  track(running.child)
  const { stdout } = await running
  const line = stdout.split('\n').find((l) => l.startsWith('WRK_JSON '))
  if (!line) throw new Error(`wrk printed no result:\n${stdout}`)
  const r = JSON.parse(line.slice('WRK_JSON '.length)) as WrkJson
  const errors = Object.values(r.errors).reduce((a, b) => a + b, 0)
  return {
    requestsPerSecond: r.requests / (r.duration_us / 1e6),
    p50Ms: r.p50_us / 1000,
    p99Ms: r.p99_us / 1000,
    requests: r.requests,
    errors,
  }
}
