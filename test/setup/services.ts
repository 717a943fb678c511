/**
 * vitest globalSetup: starts the real services (FerretDB, Consul, SeaweedFS) for the run when their
 * binaries are built (scripts/test-services.sh install) and the variable pointing at one is not
 * already set, and stops them afterwards. Suites find them through MONGODB_URI, CONSUL_HTTP_ADDR and
 * S3_ENDPOINT (with S3_REGION, the credentials of SeaweedFS's one identity in AWS_ACCESS_KEY_ID
 * and AWS_SECRET_ACCESS_KEY, and S3_TEST_BUCKET, a bucket the s3 stores of tests share), and the binaries through FERRETDB_BIN, CONSUL_BIN, WEED_BIN and
 * NGINX_BIN, for tests that run their own copies.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const SCRIPT = join(ROOT, 'scripts/test-services.sh')
const BIN = join(process.env.FILESTORAGE_CACHE ?? join(homedir(), '.cache/filestorage'), 'bin')

function which(command: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) {
    if (dir && existsSync(join(dir, command))) return join(dir, command)
  }
  return undefined
}

/** Parses the `export NAME=value` lines of the script's env file. */
function readEnvFile(path: string): Record<string, string> {
  const vars: Record<string, string> = {}
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim())
    if (m) vars[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1').replace(/^"(.*)"$/, '$1')
  }
  return vars
}

export default function setup(): () => void {
  const binaries: Record<string, string | undefined> = {
    FERRETDB_BIN: existsSync(join(BIN, 'ferretdb')) ? join(BIN, 'ferretdb') : undefined,
    CONSUL_BIN: existsSync(join(BIN, 'consul')) ? join(BIN, 'consul') : undefined,
    WEED_BIN: existsSync(join(BIN, 'weed')) ? join(BIN, 'weed') : undefined,
    NGINX_BIN: which('nginx'),
  }
  for (const [name, path] of Object.entries(binaries)) if (!process.env[name] && path) process.env[name] = path

  const wanted: string[] = []
  if (!process.env.MONGODB_URI && binaries.FERRETDB_BIN) wanted.push('ferretdb')
  if (!process.env.CONSUL_HTTP_ADDR && binaries.CONSUL_BIN) wanted.push('consul')
  if (!process.env.S3_ENDPOINT && binaries.WEED_BIN) wanted.push('seaweedfs')
  if (wanted.length === 0) return () => {}

  const run = mkdtempSync(join(tmpdir(), 'filestorage-services-'))
  const env = { ...process.env, FILESTORAGE_RUN: run }
  const stop = () => {
    try {
      execFileSync(SCRIPT, ['stop', 'all'], { env, stdio: 'ignore', timeout: 60_000 })
    } finally {
      rmSync(run, { recursive: true, force: true })
    }
  }
  let vars: Record<string, string>
  try {
    // One call: the script starts them side by side (SeaweedFS takes about 3 s, the others 1).
    execFileSync(SCRIPT, ['start', ...wanted], { env, stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 })
    vars = readEnvFile(join(run, 'env'))
  } catch (e) {
    stop()
    throw new Error(`could not start the test services (${wanted.join(', ')}): ${(e as Error).message}`)
  }
  for (const name of ['MONGODB_URI', 'CONSUL_HTTP_ADDR', 'CONSUL_DNS_PORT']) {
    if (vars[name] && !process.env[name]) process.env[name] = vars[name]
  }
  // The S3 variables go together: credentials of the developer's own (a key pair, a profile, a
  // session) would not sign for our SeaweedFS, whose one identity is in the env file.
  if (wanted.includes('seaweedfs')) {
    for (const name of ['S3_ENDPOINT', 'S3_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'S3_TEST_BUCKET']) process.env[name] = vars[name] ?? ''
    delete process.env.AWS_SESSION_TOKEN
    delete process.env.AWS_PROFILE
  }
  console.log(`[filestorage tests] started ${wanted.join(', ')} for this run (MONGODB_URI=${process.env.MONGODB_URI ?? '-'}, CONSUL_HTTP_ADDR=${process.env.CONSUL_HTTP_ADDR ?? '-'}, S3_ENDPOINT=${process.env.S3_ENDPOINT ?? '-'})`)
  return stop
}
