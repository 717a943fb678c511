/**
 * The mongo store through MongoDB outages, with the service as its own process and a FerretDB of
 * the test's own (stopped and started here, so the shared server is never disturbed): 503 JSON
 * answers while MongoDB is away, the disk store unaffected, /check reporting the store down, no
 * crash, and recovery without a restart of ours; also a start-up while MongoDB is down.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MongoClient } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type FerretDb, ferretDb, ferretDbBinary } from '../helpers/ferretdb.js'
import { expectError, rawRequest } from '../helpers/http.js'
import { randomDbName } from '../helpers/mongo.js'
import { type ProcessService, spawnService } from '../helpers/process-service.js'
import { waitFor } from '../helpers/wait.js'

const bin = ferretDbBinary()
const MiB = 1024 * 1024

/** Polls `ok` every 250 ms until it holds, for at most `ms` (a failing probe counts as not yet). */
const eventually = (ok: () => Promise<boolean>, ms = 30_000): Promise<true> =>
  waitFor('the condition', ok, { timeoutMs: ms, intervalMs: 250 })

interface CheckJson {
  status: string
  stores: Record<string, { status: string; driver: string }>
}

describe.runIf(bin !== undefined)('the mongo store through MongoDB outages', () => {
  let server: FerretDb
  let svc: ProcessService
  let dir: string
  let api: string

  const mongo = (verb: string, path = '') => `/filestorage/v1/mongo/${verb}/${path}`
  const request = (method: string, path: string, body?: string) =>
    rawRequest(svc.origin, method, path, { timeoutMs: 20_000, ...(body !== undefined ? { body } : {}) })
  const check = async () => {
    const res = await request('GET', '/filestorage/v1/check')
    return { status: res.status, body: res.json<CheckJson>() }
  }

  beforeAll(async () => {
    server = await ferretDb(bin!)
    await server.start()
    dir = await mkdtemp(join(tmpdir(), 'filestorage-outage-'))
    svc = await spawnService({ STORAGE_DIR: dir, MONGODB_URI: server.uri, MONGODB_DB: randomDbName('outage'), INLINE_MAX_BYTES: '65536' })
    api = svc.api
  })
  afterAll(async () => {
    await svc?.stop()
    await server?.dispose()
    await rm(dir, { recursive: true, force: true })
  })

  it('answers 503 store_unavailable while MongoDB is down, keeps the disk store, and recovers by itself', { timeout: 180_000 }, async () => {
    expect((await request('PUT', mongo('upload', 'kept/small.txt'), 'before the outage')).status).toBe(201)
    expect((await fetch(`${api}/mongo/upload/kept/large.bin`, { method: 'PUT', body: new Uint8Array(MiB).fill(4) })).status).toBe(201)
    expect((await check()).status).toBe(200)

    await server.stop()

    for (const [method, path] of [
      ['PUT', mongo('upload', 'during/outage.txt')],
      ['GET', mongo('download', 'kept/small.txt')],
      ['GET', mongo('download', 'kept/large.bin')],
      ['GET', mongo('info', 'kept/small.txt')],
      ['GET', mongo('list', 'kept')],
      ['POST', mongo('move', 'kept/small.txt')],
      ['DELETE', mongo('delete', 'kept/small.txt')],
      ['POST', mongo('createupload', 'during/parts.bin')],
    ] as const) {
      const res = await rawRequest(svc.origin, method, path, {
        timeoutMs: 20_000,
        ...(method === 'PUT' ? { body: 'x' } : {}),
        ...(method === 'POST' && path.includes('/move/') ? { body: '{"to":"moved.txt"}', headers: { 'content-type': 'application/json' } } : {}),
      })
      await expectError(res, 503, 'store_unavailable')
    }

    // The disk store does not notice.
    expect((await request('PUT', '/filestorage/v1/disk/upload/during/outage.txt', 'on disk')).status).toBe(201)
    expect((await request('GET', '/filestorage/v1/disk/download/during/outage.txt')).body.toString()).toBe('on disk')
    const down = await check()
    expect(down.status).toBe(503)
    expect(down.body).toMatchObject({ status: 'unavailable', stores: { mongo: { status: 'down', driver: 'mongo' }, disk: { status: 'up' } } })
    expect(svc.child.exitCode).toBeNull()

    await server.start()
    await eventually(async () => (await request('GET', mongo('info', 'kept/small.txt'))).status === 200)
    expect((await request('GET', mongo('download', 'kept/small.txt'))).body.toString()).toBe('before the outage')
    const large = await request('GET', mongo('download', 'kept/large.bin'))
    expect(large.body.equals(Buffer.alloc(MiB, 4))).toBe(true)
    expect((await request('PUT', mongo('upload', 'after/outage.txt'), 'after')).status).toBe(201)
    expect((await check()).status).toBe(200)
    expect(svc.child.exitCode).toBeNull()
    expect(svc.output()).not.toMatch(/unexpected error|unhandled|failed to start/i)
  })

  it('answers an upload cut off by the outage with 503, leaving the previous version', { timeout: 180_000 }, async () => {
    expect((await request('PUT', mongo('upload', 'inflight/target.bin'), 'previous version')).status).toBe(201)
    let resume!: () => void
    const paused = new Promise<void>((resolve) => (resume = resolve))
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 2 * MiB) await paused // half-way: MongoDB goes away here
        if (sent >= 4 * MiB) return controller.close()
        controller.enqueue(new Uint8Array(256 * 1024).fill(5))
        sent += 256 * 1024
      },
    })
    const answer = fetch(`${api}/mongo/upload/inflight/target.bin`, { method: 'PUT', body, duplex: 'half' } as RequestInit)
    await eventually(async () => sent >= 2 * MiB, 30_000)
    await server.stop()
    resume()
    await expectError(await answer, 503, 'store_unavailable')
    expect(svc.child.exitCode).toBeNull()

    await server.start()
    await eventually(async () => (await request('GET', mongo('info', 'inflight/target.bin'))).status === 200)
    expect((await request('GET', mongo('download', 'inflight/target.bin'))).body.toString()).toBe('previous version')
    expect(svc.output()).not.toMatch(/unexpected error|unhandled/i)
  })
})

describe.runIf(bin !== undefined)('the service starting while MongoDB is down', () => {
  let server: FerretDb
  let svc: ProcessService
  let dir: string
  const db = randomDbName('late')

  beforeAll(async () => {
    server = await ferretDb(bin!) // prepared (port and data folder), not started
    dir = await mkdtemp(join(tmpdir(), 'filestorage-outage-'))
  })
  afterAll(async () => {
    await svc?.stop()
    await server?.dispose()
    await rm(dir, { recursive: true, force: true })
  })

  it('starts and serves the disk store, then the mongo store once MongoDB is there, indexes made', { timeout: 180_000 }, async () => {
    svc = await spawnService({ STORAGE_DIR: dir, MONGODB_URI: server.uri, MONGODB_DB: db, SWEEP_INTERVAL_SECONDS: '1' })
    const upload = (store: string, body: string) =>
      rawRequest(svc.origin, 'PUT', `/filestorage/v1/${store}/upload/early.txt`, { body, timeoutMs: 20_000 })
    expect((await upload('disk', 'disk works')).status).toBe(201)
    await expectError(await upload('mongo', 'not yet'), 503, 'store_unavailable')
    const check = await rawRequest(svc.origin, 'GET', '/filestorage/v1/check', { timeoutMs: 20_000 })
    expect(check.status).toBe(503)
    expect(check.json()).toMatchObject({ stores: { mongo: { status: 'down' }, disk: { status: 'up' } } })

    await server.start()
    await eventually(async () => (await upload('mongo', 'now it works')).status === 201)
    expect((await rawRequest(svc.origin, 'GET', '/filestorage/v1/mongo/download/early.txt')).body.toString()).toBe('now it works')
    expect((await rawRequest(svc.origin, 'GET', '/filestorage/v1/check')).status).toBe(200)
    const client = new MongoClient(server.uri, { serverSelectionTimeoutMS: 5000 })
    try {
      const indexes = await client.db(db).collection('catalog').listIndexes().toArray()
      expect(indexes.find((i) => i.name === 'path')).toMatchObject({ unique: true })
    } finally {
      await client.close()
    }
    expect(svc.child.exitCode).toBeNull()
    expect(svc.output()).not.toMatch(/unexpected error|unhandled/i)
  })
})
