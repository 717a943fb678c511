/**
 * SeaweedFS in tests: an S3 client for the run's gateway (S3_ENDPOINT and the credentials the
 * global setup exports), and a real cluster a suite runs itself on loopback (one master, volume
 * servers, a filer, the S3 gateway, each its own `weed` process), so that it can `kill -9` a volume
 * server and start it again on the same port and data.
 *
 * The binary comes from WEED_BIN, else from the cache `scripts/test-services.sh install` builds
 * into (~/.cache/filestorage/bin/weed, or $FILESTORAGE_CACHE/bin/weed).
 */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3'
import { spawnChild, type TestChild } from './child-process.js'
import { requireBinary, requireService } from './external.js'
import { freePorts } from './ports.js'
import { GiveUp, waitFor } from './wait.js'

/** WEED_BIN, else the binary scripts/test-services.sh builds; undefined (suite skipped) when missing. */
export function weedBinary(): string | undefined {
  const cache = process.env.FILESTORAGE_CACHE ?? join(homedir(), '.cache', 'filestorage')
  return requireBinary('WEED_BIN', [join(cache, 'bin', 'weed')], 'SeaweedFS')
}

export interface S3Target {
  /** `http://127.0.0.1:port` */
  endpoint: string
  region: string
  accessKeyId: string
  secretAccessKey: string
}

/** The run's S3 gateway (the global setup's SeaweedFS), or undefined (suite skipped) when there is none. */
export function s3Target(): S3Target | undefined {
  const endpoint = requireService('S3_ENDPOINT', 'S3 (SeaweedFS\'s gateway)')
  if (!endpoint) return undefined
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = process.env
  if (!accessKeyId || !secretAccessKey) throw new Error('S3_ENDPOINT is set but AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not')
  return { endpoint, region: process.env.S3_REGION ?? 'us-east-1', accessKeyId, secretAccessKey }
}

/**
 * An SDK client for `target`, path style (bucket in the path, as S3_FORCE_PATH_STYLE defaults to with
 * an endpoint). `maxAttempts: 1` shows a failure as it happens instead of after the SDK's retries.
 */
export function s3Client(target: S3Target, options: { maxAttempts?: number; requestTimeoutMs?: number } = {}): S3Client {
  return new S3Client({
    endpoint: target.endpoint,
    region: target.region,
    forcePathStyle: true,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
    // A request past requestTimeout fails (without throwOnRequestTimeout the SDK only logs a warning).
    requestHandler: { requestTimeout: options.requestTimeoutMs ?? 30_000, throwOnRequestTimeout: true, connectionTimeout: 5_000 },
  })
}

/** A bucket name no other test uses (3-63 characters, lower case). */
export const uniqueBucket = (what: string): string => `${what}-${randomBytes(6).toString('hex')}`

/** The identity file `weed s3 -config` reads: one key pair with every right, so signatures are checked. */
export function identityConfig(accessKeyId: string, secretAccessKey: string): string {
  return JSON.stringify({
    identities: [
      { name: 'filestorage-tests', credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }], actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'] },
    ],
  })
}

/** A fresh key pair for an identity of a test's own. */
export const newCredentials = (): { accessKeyId: string; secretAccessKey: string } => ({
  accessKeyId: `FSTEST${randomBytes(7).toString('hex').toUpperCase()}`,
  secretAccessKey: randomBytes(30).toString('base64url'),
})

/** SeaweedFS names a server by `ip:port.grpcPort` when the gRPC port is not port + 10000. */
const address = (http: number, grpc: number) => `127.0.0.1:${http}.${grpc}`

/** One `weed` process of the cluster, restartable with the same arguments (same ports, same data). */
class WeedProcess {
  #child: TestChild | undefined

  constructor(
    readonly name: string,
    private readonly bin: string,
    private readonly args: string[],
  ) {}

  get running(): boolean {
    return this.#child?.running() ?? false
  }

  get pid(): number | undefined {
    return this.#child?.child.pid
  }

  output(): string {
    return this.#child?.output() ?? ''
  }

  start(): void {
    if (this.running) return
    // The gateway would add an identity from the test's own AWS variables: only the -config file's.
    const { AWS_ACCESS_KEY_ID: _id, AWS_SECRET_ACCESS_KEY: _secret, ...env } = process.env
    this.#child = spawnChild(this.bin, ['-logtostderr', ...this.args], { env })
  }

  /** Throws GiveUp (stops a waitFor) when the process has exited. */
  assertRunning(): void {
    if (!this.running) throw new GiveUp(`weed ${this.name} exited:\n${this.output().slice(-4000)}`)
  }

  /** SIGKILL, as a crash: nothing flushed, nothing said to the master. */
  async kill(): Promise<void> {
    await this.#child?.stop('SIGKILL', 5_000)
  }

  async stop(): Promise<void> {
    await this.#child?.stop('SIGTERM', 10_000)
  }
}

export interface ClusterOptions {
  /** Volume servers, each with its own port and data dir (default 2). */
  volumeServers?: number
  /** The master's default replication (default `001`: a second copy on another server of the same rack). */
  replication?: string
}

/**
 * A SeaweedFS cluster on loopback, every component its own process: `weed master`, `weed volume` per
 * volume server, `weed filer`, `weed s3` (Iceberg and Lance servers off). Data under a temporary
 * folder, removed by `dispose()`.
 */
export class SeaweedCluster {
  readonly target: S3Target
  readonly master: WeedProcess
  readonly volumes: WeedProcess[]
  readonly filer: WeedProcess
  readonly s3: WeedProcess
  readonly #masterUrl: string

  private constructor(
    readonly dir: string,
    parts: { target: S3Target; master: WeedProcess; volumes: WeedProcess[]; filer: WeedProcess; s3: WeedProcess; masterUrl: string },
  ) {
    this.target = parts.target
    this.master = parts.master
    this.volumes = parts.volumes
    this.filer = parts.filer
    this.s3 = parts.s3
    this.#masterUrl = parts.masterUrl
  }

  static async start(bin: string, options: ClusterOptions = {}): Promise<SeaweedCluster> {
    const volumeCount = options.volumeServers ?? 2
    const dir = await mkdtemp(join(tmpdir(), 'filestorage-seaweedfs-'))
    const [master, masterGrpc, filer, filerGrpc, s3, s3Grpc, ...volumePorts] = (await freePorts(6 + 2 * volumeCount)) as number[]
    const { accessKeyId, secretAccessKey } = newCredentials()
    const config = join(dir, 's3.json')
    await writeFile(config, identityConfig(accessKeyId, secretAccessKey))
    const masterAddress = address(master!, masterGrpc!)
    const common = ['-ip=127.0.0.1', '-ip.bind=127.0.0.1']

    await mkdir(join(dir, 'master'))
    // As scripts/test-services.sh does: one volume (with its copies) per collection, that is per
    // bucket, instead of six, and no allocation hold on a fresh master.
    await writeFile(join(dir, 'master', 'master.toml'), '[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 1\nallocation_deferral = "0s"\n')
    const masterProcess = new WeedProcess('master', bin, [
      `-config_dir=${join(dir, 'master')}`, 'master', ...common, `-port=${master}`, `-port.grpc=${masterGrpc}`, `-mdir=${join(dir, 'master')}`,
      `-defaultReplication=${options.replication ?? '001'}`, '-volumeSizeLimitMB=64', '-telemetry=false',
    ])
    const volumes: WeedProcess[] = []
    for (let i = 0; i < volumeCount; i++) {
      const [port, grpc] = [volumePorts[2 * i]!, volumePorts[2 * i + 1]!]
      await mkdir(join(dir, `volume${i}`))
      volumes.push(new WeedProcess(`volume ${i}`, bin, [
        'volume', ...common, `-port=${port}`, `-port.grpc=${grpc}`, `-dir=${join(dir, `volume${i}`)}`,
        `-master=${masterAddress}`, '-max=16', '-preStopSeconds=0',
      ]))
    }
    await mkdir(join(dir, 'filer'))
    const filerProcess = new WeedProcess('filer', bin, [
      'filer', ...common, `-port=${filer}`, `-port.grpc=${filerGrpc}`, `-master=${masterAddress}`,
      `-defaultStoreDir=${join(dir, 'filer')}`, `-localSocket=${join(dir, 'filer.sock')}`,
    ])
    const s3Process = new WeedProcess('s3', bin, [
      's3', '-ip.bind=127.0.0.1', `-port=${s3}`, `-port.grpc=${s3Grpc}`, '-port.iceberg=0', '-port.lance=0',
      `-filer=${address(filer!, filerGrpc!)}`, `-config=${config}`, `-localSocket=${join(dir, 's3.sock')}`,
    ])
    const cluster = new SeaweedCluster(dir, {
      target: { endpoint: `http://127.0.0.1:${s3}`, region: 'us-east-1', accessKeyId, secretAccessKey },
      master: masterProcess,
      volumes,
      filer: filerProcess,
      s3: s3Process,
      masterUrl: `http://127.0.0.1:${master}`,
    })
    try {
      masterProcess.start()
      for (const volume of volumes) volume.start()
      await cluster.waitForVolumeServers(volumeCount)
      filerProcess.start()
      s3Process.start()
      const client = s3Client(cluster.target, { maxAttempts: 1, requestTimeoutMs: 2_000 })
      try {
        await waitFor('the S3 gateway to answer', async () => {
          for (const p of [masterProcess, filerProcess, s3Process]) p.assertRunning()
          await client.send(new ListBucketsCommand({}))
          return true
        }, { timeoutMs: 60_000, intervalMs: 200 })
      } finally {
        client.destroy()
      }
    } catch (e) {
      await cluster.dispose()
      throw e
    }
    return cluster
  }

  /** The volume servers the master counts as alive now (from its topology). */
  async liveVolumeServers(): Promise<string[]> {
    const res = await fetch(`${this.#masterUrl}/dir/status`, { signal: AbortSignal.timeout(2_000) })
    const status = (await res.json()) as { Topology?: { DataCenters?: { Racks?: { DataNodes?: { Url: string }[] }[] }[] } }
    return (status.Topology?.DataCenters ?? []).flatMap((dc) => (dc.Racks ?? []).flatMap((rack) => (rack.DataNodes ?? []).map((n) => n.Url)))
  }

  /** Waits until the master has `count` volume servers in its topology. */
  async waitForVolumeServers(count: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(`${count} volume servers to join the master`, async () => {
      this.master.assertRunning()
      return (await this.liveVolumeServers()).length === count
    }, { timeoutMs, intervalMs: 200 })
  }

  /** Every process's output, for a failing test's message. */
  output(): string {
    return [this.master, ...this.volumes, this.filer, this.s3].map((p) => `--- weed ${p.name}\n${p.output().slice(-3000)}`).join('\n')
  }

  async dispose(): Promise<void> {
    for (const p of [this.s3, this.filer, ...this.volumes, this.master]) await p.stop()
    await rm(this.dir, { recursive: true, force: true })
  }
}
