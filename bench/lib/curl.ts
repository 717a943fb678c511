/**
 * curl, the client for the large transfers: the same cheap native client for our service and for
 * every peer, so that the client's own cost is the same on both sides.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { track } from './processes.js'

const run = promisify(execFile)

export interface Transfer {
  status: number
  bytes: number
  seconds: number
}

const WRITE_OUT = '%{http_code} %{size_download} %{size_upload} %{time_total}'

async function curl(args: string[], timeoutSeconds: number): Promise<{ status: number; down: number; up: number; seconds: number }> {
  const running = run(
    'curl',
    ['-sS', '--max-time', String(timeoutSeconds), '-H', 'Expect:', '-w', WRITE_OUT, ...args],
    { timeout: (timeoutSeconds + 5) * 1000, maxBuffer: 1024 * 1024 },
  )
  track(running.child)
  const { stdout } = await running
  const [status, down, up, seconds] = stdout.trim().split(/\s+/).slice(-4).map(Number)
  return { status: status!, down: down!, up: up!, seconds: seconds! }
}

/** `-H Authorization: Bearer` when a token is given (our service; the peers take none). */
const authorization = (token?: string) => (token ? ['-H', `Authorization: Bearer ${token}`] : [])

/** GET `url` into /dev/null; fails unless the status is 200. */
export async function download(url: string, timeoutSeconds = 300, token?: string): Promise<Transfer> {
  const r = await curl(['-o', '/dev/null', ...authorization(token), url], timeoutSeconds)
  if (r.status !== 200) throw new Error(`GET ${url}: status ${r.status}`)
  return { status: r.status, bytes: r.down, seconds: r.seconds }
}

/** PUT the file at `file` to `url` (streamed from disk); fails unless the status is 2xx. */
export async function upload(url: string, file: string, timeoutSeconds = 300, token?: string): Promise<Transfer> {
  const r = await curl(['-o', '/dev/null', ...authorization(token), '-T', file, url], timeoutSeconds)
  if (r.status < 200 || r.status > 299) throw new Error(`PUT ${url}: status ${r.status}`)
  return { status: r.status, bytes: r.up, seconds: r.seconds }
}
