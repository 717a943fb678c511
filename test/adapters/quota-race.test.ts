/**
 * Quotas under concurrency, across processes and through crashes (docs/quotas.md):
 * two service processes on one disk folder, two instances on one MongoDB database and two on one
 * S3 bucket (the run's SeaweedFS), each taking
 * many writers racing at a limit (uploads, tus uploads, parts); never more than the limit is stored,
 * and the usage the ledger reports is what the store holds. Then a process is killed (kill -9) while
 * it holds reservations: the usage is right again within the documented time, and a tus upload's
 * reservation, which belongs to the upload, outlives the process.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService } from '../helpers/external.js'
import { dropDatabase, randomDbName } from '../helpers/mongo.js'
import { s3StoreEnv, s3TestTarget, uniquePrefix } from '../helpers/s3-store.js'
import { type ProcessService, spawnService } from '../helpers/process-service.js'
import { createTusUpload, patchTus, uploadMetadata } from '../helpers/tus.js'
import { waitFor } from '../helpers/wait.js'

const mongoUri = requireService('MONGODB_URI', 'MongoDB')

const KiB = 1024
/** The rounds that settle what a dead process left (QUOTA_RECOVERY_INTERVAL). */
const RECOVERY_MS = 300

interface Amount {
  bytes: number
  files: number
}
interface QuotaUsage {
  prefix: string
  stored: Amount
  reserved: Amount
  usage: Amount
}

/**
 * The limits, for `fit` files of 10 KiB (a multiple of 8): each test sends more than fits. FerretDB
 * takes about 0.2 s per upload however many come at once, so the mongo suite races fewer writers.
 */
const QUOTAS = (store: string, fit: number) =>
  [
    `${store}:put=${fit * 10}KiB`,
    `${store}:chunked=${fit * 10}KiB`,
    `${store}:tus=${fit * 10}KiB`,
    `${store}:deferred=${(fit / 8) * 20}KiB`,
    `${store}:parts=${fit * 10}KiB`,
    `${store}:crash=1MiB`,
  ].join(';')

/** Runs `tasks`, `concurrency` at a time. */
async function pool<T>(tasks: (() => Promise<T>)[], concurrency: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length)
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < tasks.length; i = next++) results[i] = await tasks[i]!()
    }),
  )
  return results
}

async function usageOf(api: string, store: string, prefix: string): Promise<QuotaUsage> {
  const res = await fetch(`${api}/${store}/usage/${prefix}`)
  expect(res.status).toBe(200)
  const body = (await res.json()) as { quotas: QuotaUsage[] }
  return body.quotas.find((q) => q.prefix === prefix)!
}

/** What the store holds under `prefix`, from a listing. */
async function held(api: string, store: string, prefix: string): Promise<Amount> {
  const res = await fetch(`${api}/${store}/list/${prefix}?recursive=true&limit=10000`)
  if (res.status === 404) return { bytes: 0, files: 0 }
  const { entries } = (await res.json()) as { entries: { type: string; size: number }[] }
  const files = entries.filter((e) => e.type === 'file')
  return { bytes: files.reduce((sum, f) => sum + f.size, 0), files: files.length }
}

async function expectQuotaError(res: Response, prefix: string): Promise<void> {
  expect(res.status).toBe(403)
  const body = (await res.json()) as { error: { code: string; details: { prefix: string; limit: object; usage: Amount } } }
  expect(body.error.code).toBe('quota_exceeded')
  expect(body.error.details.prefix).toBe(prefix)
  expect(body.error.details.limit).toBeDefined()
  expect(body.error.details.usage.bytes).toBeGreaterThanOrEqual(0)
}

/** A body streamed without Content-Length (chunked). */
const chunked = (size: number) =>
  new ReadableStream<Uint8Array>({
    start(c) {
      for (let sent = 0; sent < size; sent += 4 * KiB) c.enqueue(new Uint8Array(Math.min(4 * KiB, size - sent)).fill(7))
      c.close()
    },
  })

function raceSuite(store: string, fit: number, start: (env: Record<string, string>) => Promise<ProcessService>, livenessMs: number) {
  let a: ProcessService
  let b: ProcessService
  const env = { QUOTAS: QUOTAS(store, fit), QUOTA_RECOVERY_INTERVAL: `${RECOVERY_MS}ms` }
  const limit = fit * 10 * KiB
  beforeAll(async () => {
    ;[a, b] = await Promise.all([start(env), start(env)])
    // Each process counts the buckets in the background as it starts; a change ending during a count
    // may be counted twice until the next round (docs/quotas.md, "Tolerance"). The usage route
    // waits for the process's own count, so once both answer, the racing starts from exact buckets.
    for (const prefix of ['put', 'chunked', 'tus', 'deferred', 'parts', 'crash']) for (const p of [a, b]) await usageOf(p.api, store, prefix)
  })
  afterAll(async () => {
    await a?.stop('SIGKILL')
    await b?.stop()
  })
  const either = (i: number) => (i % 2 === 0 ? a : b)

  it('uploads racing at a limit from two processes: exactly what fits is stored, the rest refused before a byte', async () => {
    const size = 10 * KiB
    const results = await pool(
      Array.from({ length: 2 * fit }, (_, i) => () => fetch(`${either(i).api}/${store}/upload/put/f${i}`, { method: 'PUT', body: new Uint8Array(size) })),
      16,
    )
    expect(results.map((r) => r.status).filter((s) => s === 201), `statuses: ${results.map((r) => r.status).join(' ')}`).toHaveLength(fit)
    for (const r of results) if (r.status !== 201) await expectQuotaError(r, 'put')
    expect(await held(a.api, store, 'put')).toEqual({ bytes: limit, files: fit })
    const usage = await usageOf(b.api, store, 'put')
    expect(usage.stored).toEqual({ bytes: limit, files: fit })
    expect(usage.reserved).toEqual({ bytes: 0, files: 0 })
  })

  it('uploads of unknown length racing: cut at the limit, never over it, and counted exactly', async () => {
    const results = await pool(
      Array.from({ length: fit }, (_, i) => () =>
        fetch(`${either(i).api}/${store}/upload/chunked/f${i}`, { method: 'PUT', body: chunked(25 * KiB), duplex: 'half' } as RequestInit),
      ),
      12,
    )
    const created = results.filter((r) => r.status === 201).length
    for (const r of results) if (r.status !== 201) await expectQuotaError(r, 'chunked')
    const holding = await held(a.api, store, 'chunked')
    expect(holding).toEqual({ bytes: created * 25 * KiB, files: created })
    expect(holding.bytes).toBeLessThanOrEqual(limit)
    expect(created).toBeGreaterThan(0)
    expect((await usageOf(a.api, store, 'chunked')).usage).toEqual(holding)
  })

  it('tus uploads racing: their declared lengths are reserved at creation, the appends of those admitted all fit', async () => {
    const size = 20 * KiB
    const created = await pool(
      Array.from({ length: (3 * fit) / 4 }, (_, i) => () =>
        createTusUpload(`${either(i).api}/${store}/tus/`, { 'Upload-Length': String(size), 'Upload-Metadata': uploadMetadata({ path: `tus/u${i}` }) }),
      ),
      10,
    )
    const admitted = created.filter((c) => c.res.status === 201)
    expect(admitted).toHaveLength(fit / 2)
    for (const c of created) if (c.res.status !== 201) await expectQuotaError(c.res, 'tus')
    expect((await usageOf(a.api, store, 'tus')).reserved).toEqual({ bytes: limit, files: fit / 2 })
    // Each in two appends, the second through the other process.
    await pool(admitted.map((c) => async () => expect((await patchTus(c.location, 0, new Uint8Array(size / 2))).status).toBe(204)), 10)
    await pool(
      admitted.map((c) => async () => {
        const other = c.location.startsWith(a.origin) ? b : a
        const url = c.location.replace(/^http:\/\/[^/]+/, other.origin)
        expect((await patchTus(url, size / 2, new Uint8Array(size / 2))).status).toBe(204)
      }),
      10,
    )
    expect(await held(b.api, store, 'tus')).toEqual({ bytes: limit, files: fit / 2 })
    const usage = await usageOf(b.api, store, 'tus')
    expect(usage.stored).toEqual({ bytes: limit, files: fit / 2 })
    expect(usage.reserved).toEqual({ bytes: 0, files: 0 })
  })

  it('tus appends of uploads of deferred length racing: each reserves its bytes, those over the limit get 403', async () => {
    const uploads = await pool(
      Array.from({ length: fit / 4 }, (_, i) => async () => {
        const { res, location } = await createTusUpload(`${either(i).api}/${store}/tus/`, { 'Upload-Defer-Length': '1', 'Upload-Metadata': uploadMetadata({ path: `deferred/u${i}` }) })
        expect(res.status).toBe(201)
        return location
      }),
      10,
    )
    const appended = await pool(uploads.map((url) => () => patchTus(url, 0, new Uint8Array(20 * KiB), { 'Upload-Length': String(20 * KiB) })), 10)
    const done = appended.filter((r) => r.status === 204).length
    expect(done).toBe(fit / 8)
    for (const r of appended) if (r.status !== 204) await expectQuotaError(r, 'deferred')
    expect(await held(a.api, store, 'deferred')).toEqual({ bytes: (fit / 8) * 20 * KiB, files: fit / 8 })
    const usage = await usageOf(a.api, store, 'deferred')
    expect(usage.usage.bytes).toBeLessThanOrEqual((fit / 8) * 20 * KiB)
    expect(usage.stored).toEqual({ bytes: (fit / 8) * 20 * KiB, files: fit / 8 })
  })

  it('parts racing: parts of uploads of no declared size reserve as they come; never more than the limit', async () => {
    const uploads = await pool(
      Array.from({ length: fit / 4 }, (_, i) => async () => {
        const res = await fetch(`${either(i).api}/${store}/createupload/parts/u${i}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
        expect(res.status).toBe(201)
        return ((await res.json()) as { uploadId: string }).uploadId
      }),
      10,
    )
    const sent = await pool(
      uploads.flatMap((id, u) =>
        Array.from({ length: 5 }, (_, p) => () =>
          fetch(`${either(u + p).api}/${store}/uploadpart/${id}?part=${p + 1}`, { method: 'PUT', body: new Uint8Array(10 * KiB) }).then(async (r) => ({ id, r })),
        ),
      ),
      16,
    )
    const accepted = sent.filter((s) => s.r.status === 200)
    expect(accepted).toHaveLength(fit)
    for (const s of sent) if (s.r.status !== 200) await expectQuotaError(s.r, 'parts')
    expect((await usageOf(a.api, store, 'parts')).usage.bytes).toBe(limit)
    // The uploads that got all their parts complete; the others are aborted and give their room back.
    let files = 0
    for (const id of uploads) {
      const whole = accepted.filter((s) => s.id === id).length === 5
      const res = whole
        ? await fetch(`${b.api}/${store}/completeupload/${id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
        : await fetch(`${a.api}/${store}/abortupload/${id}`, { method: 'DELETE' })
      expect(res.status).toBe(whole ? 201 : 204)
      if (whole) files++
    }
    const holding = await held(a.api, store, 'parts')
    expect(holding).toEqual({ bytes: files * 50 * KiB, files })
    expect((await usageOf(b.api, store, 'parts')).usage).toEqual(holding)
  })

  it('kill -9 with reservations held: the usage is right again within the documented time; a tus upload\'s reservation outlives the process', async () => {
    const tus = await createTusUpload(`${a.api}/${store}/tus/`, { 'Upload-Length': String(200 * KiB), 'Upload-Metadata': uploadMetadata({ path: 'crash/tus' }) })
    expect(tus.res.status).toBe(201)
    expect((await patchTus(tus.location, 0, new Uint8Array(50 * KiB))).status).toBe(204)
    // An upload of 300 KiB that A takes half of, then stops hearing from: its reservation is held.
    const socket = connect(a.port, '127.0.0.1')
    socket.on('error', () => {})
    socket.write(`PUT /filestorage/v1/${store}/upload/crash/put HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${300 * KiB}\r\n\r\n`)
    socket.write(Buffer.alloc(150 * KiB))
    await waitFor('the upload\'s reservation', async () => (await usageOf(b.api, store, 'crash')).reserved.bytes === 500 * KiB)

    await a.stop('SIGKILL')
    socket.destroy()
    const killed = Date.now()
    // Documented: the store counts the process dead (disk: at once on one machine; MongoDB: its
    // liveness window), then a round reaps its entries and the next one recounts the bucket.
    const bound = livenessMs + 4 * RECOVERY_MS + 5_000
    const settled = await waitFor(
      'the usage to be right again',
      async () => {
        const usage = await usageOf(b.api, store, 'crash')
        return usage.stored.bytes === 0 && usage.reserved.bytes === 200 * KiB ? usage : false
      },
      { timeoutMs: bound, intervalMs: 100 },
    )
    expect(settled.reserved).toEqual({ bytes: 200 * KiB, files: 1 })
    expect(Date.now() - killed).toBeLessThanOrEqual(bound)
    // The tus upload goes on through B, and ends counted as its file.
    const url = tus.location.replace(/^http:\/\/[^/]+/, b.origin)
    expect((await patchTus(url, 50 * KiB, new Uint8Array(150 * KiB))).status).toBe(204)
    const usage = await usageOf(b.api, store, 'crash')
    expect(usage.stored).toEqual({ bytes: 200 * KiB, files: 1 })
    expect(usage.reserved).toEqual({ bytes: 0, files: 0 })
  })
}

describe('quotas across two processes on one disk folder', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'filestorage-quota-race-'))
  })
  afterAll(async () => rm(dir, { recursive: true, force: true }))
  raceSuite('disk', 40, (env) => spawnService({ ...env, STORAGE_DIR: dir }), 0)

  it('the disk holds no more than the limits, file by file', async () => {
    const sizeUnder = async (path: string): Promise<number> => {
      let total = 0
      for (const e of await readdir(path, { withFileTypes: true }).catch(() => [])) {
        const p = join(path, e.name)
        total += e.isDirectory() ? await sizeUnder(p) : (await stat(p)).size
      }
      return total
    }
    expect(await sizeUnder(join(dir, 'put'))).toBe(400 * KiB)
    expect(await sizeUnder(join(dir, 'tus'))).toBe(400 * KiB)
    expect(await sizeUnder(join(dir, 'chunked'))).toBeLessThanOrEqual(400 * KiB)
    expect(await sizeUnder(join(dir, 'deferred'))).toBeLessThanOrEqual(100 * KiB)
  })
})

/**
 * Instances of a remote store, each with a local folder of its own (removed after the suite) and a
 * liveness window of 2 s (COMPLETION_LEASE_SECONDS): a killed instance counts as dead 2 s after its
 * last heartbeat (on S3, beyond the second its LastModified is truncated to).
 */
function remoteInstances(storeEnv: Record<string, string>): (env: Record<string, string>) => Promise<ProcessService> {
  const dirs: string[] = []
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })
  return async (env) => {
    const dir = await mkdtemp(join(tmpdir(), 'filestorage-quota-race-'))
    dirs.push(dir)
    return spawnService({ ...env, ...storeEnv, STORAGE_DIR: dir, COMPLETION_LEASE_SECONDS: '2' })
  }
}

describe.skipIf(!mongoUri)('quotas across two instances on one MongoDB database', () => {
  const db = randomDbName('quota_race')
  afterAll(async () => dropDatabase(mongoUri!, db))
  raceSuite('mongo', 16, remoteInstances({ MONGODB_URI: mongoUri!, MONGODB_DB: db }), 2_000)
})

describe.skipIf(!s3TestTarget())('quotas across two instances on one S3 bucket', () => {
  raceSuite('s3', 16, remoteInstances(s3StoreEnv(uniquePrefix('quota-race'))), 3_000)
})
