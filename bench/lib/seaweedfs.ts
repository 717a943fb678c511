/**
 * SeaweedFS for the bench. The filer, the peer for small files: `weed server -filer` (master, volume server and
 * filer in one process, with their defaults: the filer's metadata in LevelDB, file contents on the
 * volume server), as many users run it. Built from the Go module proxy by
 * `scripts/test-services.sh install` (the tests' S3 server too) into
 * ~/.cache/filestorage/bin/weed; started on free loopback ports with its data in a temporary
 * folder, and stopped (its data removed) after.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { freePorts } from './ports.js'
import { startProcess, waitUntil } from './processes.js'

const CACHE_DIR = process.env.FILESTORAGE_CACHE ?? join(homedir(), '.cache', 'filestorage')
export const WEED = process.env.BENCH_WEED ?? join(CACHE_DIR, 'bin', 'weed')
export const WEED_INSTALL = 'scripts/test-services.sh install-seaweedfs'

/** The module version scripts/test-services.sh built, or undefined when `weed` is not there. */
export function weedVersion(): string | undefined {
  if (!existsSync(WEED)) return undefined
  try {
    return readFileSync(`${WEED}.version`, 'utf8').trim()
  } catch {
    return 'unknown version'
  }
}

export interface RunningSeaweedFs {
  /** The filer, `http://127.0.0.1:port`: GET and PUT `/<path>`. */
  filer: string
  /** The one `weed` process (all its goroutines: master, volume server and filer). */
  pids: number[]
  stop(): Promise<void>
}

export async function startSeaweedFs(options: { dataDir: string; logFile: string }): Promise<RunningSeaweedFs> {
  mkdirSync(options.dataDir, { recursive: true })
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc] = await freePorts(6)
  const args = [
    '-logtostderr',
    'server',
    '-filer',
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    `-dir=${options.dataDir}`,
    `-master.port=${master}`,
    `-master.port.grpc=${masterGrpc}`,
    `-volume.port=${volume}`,
    `-volume.port.grpc=${volumeGrpc}`,
    `-filer.port=${filer}`,
    `-filer.port.grpc=${filerGrpc}`,
    `-filer.localSocket=${join(options.dataDir, 'filer.sock')}`,
    // Loopback only: no anonymous usage report to SeaweedFS's server.
    '-master.telemetry=false',
    // It would wait 10 s between leaving the master and stopping.
    '-volume.preStopSeconds=0',
  ]
  const started = startProcess(WEED, args, { logFile: options.logFile })
  const url = `http://127.0.0.1:${filer}`
  // Ready once a write goes through: the volume server must have joined the master first.
  await waitUntil('the SeaweedFS filer', started, () => writes(`${url}/.bench-ready`), 60_000)
  return { filer: url, pids: [started.pid], stop: () => started.stop('SIGTERM', 15_000) }
}

async function writes(url: string): Promise<boolean> {
  const res = await fetch(url, { method: 'PUT', body: 'ready', signal: AbortSignal.timeout(2000) })
  await res.body?.cancel()
  return res.status === 201
}

export interface RunningSeaweedS3 {
  /** The S3 gateway, `http://127.0.0.1:port`. */
  endpoint: string
  accessKeyId: string
  secretAccessKey: string
  pids: number[]
  stop(): Promise<void>
}

/**
 * SeaweedFS with its S3 gateway (`weed server -s3`), the s3 store's server and its peer: one
 * identity (signatures checked), one volume per bucket, the Iceberg and Lance servers off; as
 * scripts/test-services.sh starts it for the tests.
 */
export async function startSeaweedS3(options: { dataDir: string; logFile: string }): Promise<RunningSeaweedS3> {
  mkdirSync(options.dataDir, { recursive: true })
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc] = await freePorts(8)
  const accessKeyId = `BENCH${randomBytes(6).toString('hex').toUpperCase()}`
  const secretAccessKey = randomBytes(30).toString('base64url')
  writeFileSync(join(options.dataDir, 'master.toml'), '[master.volume_growth]\ncopy_1 = 1\nallocation_deferral = "0s"\n')
  writeFileSync(
    join(options.dataDir, 's3.json'),
    JSON.stringify({ identities: [{ name: 'bench', credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }], actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'] }] }),
  )
  const args = [
    '-logtostderr',
    `-config_dir=${options.dataDir}`,
    'server',
    '-s3',
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    `-dir=${options.dataDir}`,
    `-master.port=${master}`,
    `-master.port.grpc=${masterGrpc}`,
    '-master.telemetry=false',
    `-volume.port=${volume}`,
    `-volume.port.grpc=${volumeGrpc}`,
    '-volume.max=1000',
    '-volume.preStopSeconds=0',
    `-filer.port=${filer}`,
    `-filer.port.grpc=${filerGrpc}`,
    `-filer.localSocket=${join(options.dataDir, 'filer.sock')}`,
    `-s3.port=${s3}`,
    `-s3.port.grpc=${s3Grpc}`,
    `-s3.localSocket=${join(options.dataDir, 's3.sock')}`,
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    `-s3.config=${join(options.dataDir, 's3.json')}`,
  ]
  const started = startProcess(WEED, args, { logFile: options.logFile })
  const endpoint = `http://127.0.0.1:${s3}`
  // Ready once the gateway answers (it checks signatures: any answer will do) and a write goes through.
  await waitUntil('the SeaweedFS S3 gateway', started, () => writes(`http://127.0.0.1:${filer}/.bench-ready`), 60_000)
  await waitUntil('the SeaweedFS S3 gateway', started, async () => (await fetch(endpoint, { signal: AbortSignal.timeout(2000) })).status > 0, 60_000)
  return { endpoint, accessKeyId, secretAccessKey, pids: [started.pid], stop: () => started.stop('SIGTERM', 15_000) }
}
