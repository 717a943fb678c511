/**
 * The fleet test of issue 20: the service on the s3 store, on SeaweedFS run as a real cluster on
 * loopback (test/helpers/seaweedfs.ts: one master, two volume servers, replication `001`, a filer,
 * the S3 gateway), under a mixed load of uploads (in one request and in parts), downloads and
 * listings, while one volume server is killed with SIGKILL and started again, then the gateway
 * itself. What must hold:
 * - no upload acknowledged then lost: every upload answered 2xx, before, during or after the
 *   outage, reads back intact at the end;
 * - no download of an acknowledged upload fails, during the outage too (the other copy serves it);
 * - uploads during the outage are refused with `503 store_unavailable` within the store's own
 *   timeout (S3_TIMEOUT_SECONDS, two attempts), never held for the gateway's 30 s, and `/check`
 *   says so; they succeed again once the volume server is back;
 * - with the gateway itself gone, every request is `503` within the timeout, and `/check` is down.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CreateBucketCommand } from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ProcessService, spawnService } from '../helpers/process-service.js'
import { SeaweedCluster, s3Client, weedBinary } from '../helpers/seaweedfs.js'
import { waitFor } from '../helpers/wait.js'

const Bucket = 'fleet'
const MiB = 1024 * 1024
/** The store's timeout for one S3 request; it tries twice. */
const TIMEOUT_SECONDS = 4
/** A refused upload may take this long at most: two attempts, the backoff between them, and the body. */
const REFUSED_WITHIN_MS = 2 * TIMEOUT_SECONDS * 1000 + 6_000
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

interface Outcome {
  path: string
  sha256: string
  status: number
  ms: number
  code?: string
}

describe('the s3 store on a SeaweedFS cluster losing a volume server', () => {
  const bin = weedBinary()
  let cluster: SeaweedCluster
  let svc: ProcessService
  let dir: string

  beforeAll(async () => {
    if (!bin) return
    cluster = await SeaweedCluster.start(bin, { volumeServers: 2, replication: '001' })
    const client = s3Client(cluster.target, { maxAttempts: 1 })
    await client.send(new CreateBucketCommand({ Bucket }))
    client.destroy()
    dir = await mkdtemp(join(tmpdir(), 'filestorage-fleet-'))
    svc = await spawnService({
      STORAGE_DIR: dir,
      S3_BUCKET: Bucket,
      S3_ENDPOINT: cluster.target.endpoint,
      S3_PREFIX: 'files',
      S3_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS),
      AWS_ACCESS_KEY_ID: cluster.target.accessKeyId,
      AWS_SECRET_ACCESS_KEY: cluster.target.secretAccessKey,
      PART_SIZE_LIMIT: String(16 * MiB),
    })
    // A fresh cluster holds writes until its filer has joined the master's lock ring (a few seconds).
    await waitFor('the first upload through the service', async () => (await upload('warm/first.bin', body(0))).status === 201, { timeoutMs: 90_000, intervalMs: 500 })
  }, 240_000)
  afterAll(async () => {
    await svc?.stop()
    await cluster?.dispose()
    if (dir) await rm(dir, { recursive: true, force: true })
  }, 120_000)

  const url = (verb: string, path: string) => `${svc.api}/s3/${verb}/${path}`
  /** 64 KiB to 2 MiB (every object on the volume servers), or 12 MiB now and then (in parts of 8 MiB: the digest path). */
  const body = (i: number) => randomBytes(i % 7 === 3 ? 12 * MiB : 64 * 1024 + ((i * 97_531) % (2 * MiB)))

  async function upload(path: string, data: Buffer): Promise<Outcome> {
    const started = performance.now()
    try {
      const res = await fetch(url('upload', path), { method: 'PUT', body: data, signal: AbortSignal.timeout(120_000) })
      const text = await res.text()
      const code = res.ok ? undefined : (JSON.parse(text) as { error?: { code?: string } }).error?.code
      return { path, sha256: sha256(data), status: res.status, ms: performance.now() - started, ...(code ? { code } : {}) }
    } catch (e) {
      return { path, sha256: sha256(data), status: 0, ms: performance.now() - started, code: (e as Error).message }
    }
  }

  /** An upload in three parts of 6 MiB (composed server-side). */
  async function uploadInParts(path: string): Promise<Outcome> {
    const started = performance.now()
    const parts = [randomBytes(6 * MiB), randomBytes(6 * MiB), randomBytes(MiB)]
    const whole = sha256(Buffer.concat(parts))
    const failed = async (res: Response) => ({ path, sha256: whole, status: res.status, ms: performance.now() - started, code: ((await res.json()) as { error?: { code?: string } }).error?.code ?? '' })
    const created = await fetch(url('createupload', path), { method: 'POST' })
    if (!created.ok) return failed(created)
    const { uploadId } = (await created.json()) as { uploadId: string }
    for (const [i, part] of parts.entries()) {
      const res = await fetch(`${svc.api}/s3/uploadpart/${uploadId}?part=${i + 1}`, { method: 'PUT', body: part })
      if (!res.ok) return failed(res)
      await res.arrayBuffer()
    }
    const done = await fetch(`${svc.api}/s3/completeupload/${uploadId}`, { method: 'POST' })
    if (!done.ok) return failed(done)
    await done.arrayBuffer()
    return { path, sha256: whole, status: done.status, ms: performance.now() - started }
  }

  async function readBack(o: Outcome): Promise<string> {
    try {
      const res = await fetch(url('download', o.path), { signal: AbortSignal.timeout(60_000) })
      if (res.status !== 200) return `${o.path}: download answers ${res.status} ${await res.text()}`
      const got = sha256(Buffer.from(await res.arrayBuffer()))
      return got === o.sha256 ? '' : `${o.path}: other bytes than acknowledged`
    } catch (e) {
      return `${o.path}: download failed: ${(e as Error).message}`
    }
  }

  const checkStatus = async () => {
    const res = await fetch(`${svc.api}/check`)
    return { status: res.status, s3: ((await res.json()) as { stores: Record<string, { status: string }> }).stores.s3?.status }
  }

  /** A mixed load for `ms`: 4 uploaders (every fifth upload in parts), 3 readers of what was acknowledged, a lister. */
  const reads: Record<string, number> = {}
  async function load(phase: string, ms: number, acknowledged: Outcome[], problems: string[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = []
    reads[phase] = 0
    const until = performance.now() + ms
    let n = 0
    const uploader = async (w: number) => {
      while (performance.now() < until) {
        const i = n++
        const path = `${phase}/w${w}/f${i}.bin`
        const o = i % 5 === 4 ? await uploadInParts(path) : await upload(path, body(i))
        outcomes.push(o)
        if (o.status === 200 || o.status === 201) acknowledged.push(o)
      }
    }
    const reader = async () => {
      while (performance.now() < until) {
        const o = acknowledged[Math.floor(Math.random() * acknowledged.length)]
        if (!o) {
          await new Promise((r) => setTimeout(r, 100))
          continue
        }
        const problem = await readBack(o)
        reads[phase]!++
        if (problem) problems.push(`${phase}: ${problem}`)
      }
    }
    const lister = async () => {
      while (performance.now() < until) {
        const res = await fetch(`${url('list', '')}?recursive=true&limit=200`)
        if (res.status !== 200) problems.push(`${phase}: a listing answers ${res.status}`)
        await res.arrayBuffer()
        await new Promise((r) => setTimeout(r, 500))
      }
    }
    await Promise.all([0, 1, 2, 3].map(uploader).concat([reader(), reader(), reader(), lister()]))
    return outcomes
  }

  it.runIf(bin !== undefined)('loses no acknowledged upload and fails no download while a volume server is down; refuses uploads meanwhile with 503 in time', async () => {
    const acknowledged: Outcome[] = []
    const problems: string[] = []
    const t0 = performance.now()
    const before = await load('before', 8_000, acknowledged, problems)

    const victim = cluster.volumes[1]!
    await victim.kill()
    const killedAt = (performance.now() - t0) / 1000
    const during = await load('during', 15_000, acknowledged, problems)
    const check = await checkStatus()

    victim.start()
    await cluster.waitForVolumeServers(2)
    const recoveredAt = await waitFor('an upload to succeed with both volume servers back', async () => {
      const o = await upload(`probe/${randomBytes(4).toString('hex')}.bin`, body(1))
      if (o.status === 201) acknowledged.push(o)
      return o.status === 201 ? (performance.now() - t0) / 1000 : false
    }, { timeoutMs: 90_000, intervalMs: 1000 })
    const after = await load('after', 8_000, acknowledged, problems)

    const lost = (await Promise.all(acknowledged.map(readBack))).filter(Boolean)
    const ok = (os: Outcome[]) => os.filter((o) => o.status === 200 || o.status === 201)
    const refused = during.filter((o) => o.status === 503)
    const late = refused.filter((o) => o.ms > REFUSED_WITHIN_MS)
    const other = during.filter((o) => o.status !== 503 && o.status !== 200 && o.status !== 201)
    console.log(
      `[s3 fleet] uploads before the kill: ${before.length} (${ok(before).length} acknowledged); volume server killed at ${killedAt.toFixed(1)} s; ` +
        `during the outage: ${during.length} uploads, ${ok(during).length} acknowledged, ${refused.length} refused with 503 ` +
        `(slowest ${Math.round(Math.max(0, ...refused.map((o) => o.ms)))} ms), /check ${check.status} (s3 ${check.s3}); ` +
        `writes again at ${recoveredAt.toFixed(1)} s; after: ${after.length} uploads, ${ok(after).length} acknowledged; ` +
        `acknowledged in all: ${acknowledged.length}, read back intact: ${acknowledged.length - lost.length}, lost: ${lost.length}; ` +
        `downloads during the load ${JSON.stringify(reads)}, failed: ${problems.length}`,
    )
    expect(lost, 'acknowledged uploads lost').toEqual([])
    expect(problems, 'downloads or listings that failed').toEqual([])
    expect(ok(before).length).toBe(before.length)
    expect(refused.length, 'uploads refused during the outage').toBeGreaterThan(0)
    expect(other.map((o) => `${o.path}: ${o.status} ${o.code}`), 'uploads answered otherwise than 2xx or 503').toEqual([])
    for (const o of refused) expect(o.code).toBe('store_unavailable')
    expect(late.map((o) => `${o.path}: ${Math.round(o.ms)} ms`), `refusals slower than ${REFUSED_WITHIN_MS} ms`).toEqual([])
    expect(check.status).toBe(503)
    expect(ok(after).length).toBe(after.length)
  }, 360_000)

  it.runIf(bin !== undefined)('answers 503 within its timeout while the S3 gateway is gone, /check down, and serves again once it is back', async () => {
    const kept = await upload('gateway/kept.bin', body(2))
    expect(kept.status).toBe(201)
    await cluster.s3.kill()
    const started = performance.now()
    const answers = await Promise.all([
      fetch(url('download', 'gateway/kept.bin')).then(async (r) => [r.status, ((await r.json()) as { error: { code: string } }).error.code]),
      upload('gateway/new.bin', body(3)).then((o) => [o.status, o.code]),
      fetch(url('info', 'gateway/kept.bin')).then(async (r) => [r.status, ((await r.json()) as { error: { code: string } }).error.code]),
    ])
    const elapsed = performance.now() - started
    expect(answers).toEqual([[503, 'store_unavailable'], [503, 'store_unavailable'], [503, 'store_unavailable']])
    expect(elapsed).toBeLessThan(REFUSED_WITHIN_MS)
    expect(await checkStatus()).toEqual({ status: 503, s3: 'down' })
    cluster.s3.start()
    await waitFor('the gateway to serve again', async () => (await checkStatus()).s3 === 'up', { timeoutMs: 60_000, intervalMs: 500 })
    expect(await readBack(kept)).toBe('')
    console.log(`[s3 fleet] gateway killed: download, upload and info answered 503 store_unavailable in ${Math.round(elapsed)} ms; /check down, then up again`)
  }, 180_000)
})
