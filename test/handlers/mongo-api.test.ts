/**
 * The file API over HTTP on the `mongo` store (MONGODB_URI set): the whole HTTP suite, then what
 * only this store shows: the inline/GridFS threshold, and moves to and from the disk store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FileInfo } from '../../src/storage/index.js'
import { requireService } from '../helpers/external.js'
import { dropDatabase, randomDbName } from '../helpers/mongo.js'
import { sha256 } from '../helpers/streams.js'
import { startTestService, type TestService } from '../helpers/test-service.js'
import { API_LIMITS, describeFileApi } from './file-api.js'

const uri = requireService('MONGODB_URI', 'MongoDB')

/** Small, so the suite's files fall on both sides of it. */
const INLINE_MAX = 64 * 1024

/** A service with the disk store and a mongo store in a database of its own, dropped when it stops. */
async function startMongoService(): Promise<TestService> {
  const db = randomDbName('http')
  const svc = await startTestService({ ...API_LIMITS, MONGODB_URI: uri!, MONGODB_DB: db, INLINE_MAX_BYTES: String(INLINE_MAX) })
  return {
    ...svc,
    async stop() {
      await svc.stop()
      await dropDatabase(uri!, db)
    },
  }
}

describe.runIf(uri !== undefined)('mongo store over HTTP', () => {
  describeFileApi('mongo', startMongoService)

  let svc: TestService
  beforeAll(async () => {
    svc = await startMongoService()
  })
  afterAll(async () => svc?.stop())

  const url = (store: string, verb: string, path: string) => `${svc.api}/${store}/${verb}/${path}`
  const bytes = (size: number, fill: number) => new Uint8Array(size).fill(fill)
  /** A body of unknown length: sent chunked, in pieces. */
  const streamed = (data: Uint8Array) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < data.length; i += 10_000) controller.enqueue(data.slice(i, i + 10_000))
        controller.close()
      },
    })
  const put = async (store: string, path: string, body: Uint8Array | ReadableStream<Uint8Array>) => {
    const res = await fetch(url(store, 'upload', path), { method: 'PUT', body, duplex: 'half' } as RequestInit)
    expect(res.status, await res.clone().text()).toBeLessThan(300)
    return (await res.json()) as FileInfo
  }
  const download = async (store: string, path: string) =>
    Buffer.from(await (await fetch(url(store, 'download', path))).arrayBuffer())

  describe('inline or GridFS, chosen per file by size', () => {
    it('with Content-Length: up to the threshold inline, one byte over in GridFS', async () => {
      for (const [size, driver] of [
        [INLINE_MAX - 1, 'mongo-inline'],
        [INLINE_MAX, 'mongo-inline'],
        [INLINE_MAX + 1, 'gridfs'],
      ] as const) {
        const data = bytes(size, size % 251)
        const file = await put('mongo', `threshold/known-${size}.bin`, data)
        expect({ size: file.size, driver: file.driver }).toEqual({ size, driver })
        expect(sha256(await download('mongo', file.path))).toBe(sha256(data))
      }
    })

    it('without Content-Length: the body is held only up to the threshold, then spilled into GridFS', async () => {
      for (const [size, driver] of [
        [INLINE_MAX - 1, 'mongo-inline'],
        [INLINE_MAX + 1, 'gridfs'],
        [3 * INLINE_MAX, 'gridfs'],
      ] as const) {
        const data = bytes(size, 7)
        const file = await put('mongo', `threshold/streamed-${size}.bin`, streamed(data))
        expect({ size: file.size, driver: file.driver, sha256: file.sha256 }).toEqual({ size, driver, sha256: sha256(data) })
        expect(sha256(await download('mongo', file.path))).toBe(sha256(data))
      }
    })

    it('a replace may move a file from one to the other; the client sees only the new bytes', async () => {
      const small = bytes(100, 1)
      const large = bytes(INLINE_MAX + 100, 2)
      expect((await put('mongo', 'threshold/switch.bin', small)).driver).toBe('mongo-inline')
      expect((await put('mongo', 'threshold/switch.bin', large)).driver).toBe('gridfs')
      expect((await download('mongo', 'threshold/switch.bin')).equals(Buffer.from(large))).toBe(true)
      expect((await put('mongo', 'threshold/switch.bin', streamed(small))).driver).toBe('mongo-inline')
      expect((await download('mongo', 'threshold/switch.bin')).equals(Buffer.from(small))).toBe(true)
    })
  })

  describe('moves between the disk and mongo stores (toStore)', () => {
    const move = (store: string, path: string, body: object) =>
      fetch(url(store, 'move', path), { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })

    it('moves a file from disk to mongo and back, bytes and attributes intact', async () => {
      const data = bytes(INLINE_MAX * 2, 9)
      const res = await fetch(url('disk', 'upload', 'cross/file.bin'), {
        method: 'PUT',
        body: data,
        headers: { 'content-type': 'application/x-cross', 'x-file-metadata': '{"from":"disk"}' },
      })
      expect(res.status).toBe(201)
      const toMongo = await move('disk', 'cross/file.bin', { to: 'arrived/file.bin', toStore: 'mongo' })
      expect(toMongo.status).toBe(200)
      expect(await toMongo.json()).toMatchObject({
        store: 'mongo',
        path: 'arrived/file.bin',
        sha256: sha256(data),
        driver: 'gridfs',
        contentType: 'application/x-cross',
        metadata: { from: 'disk' },
      })
      expect((await fetch(url('disk', 'info', 'cross/file.bin'))).status).toBe(404)
      expect((await download('mongo', 'arrived/file.bin')).equals(Buffer.from(data))).toBe(true)

      const back = await move('mongo', 'arrived/file.bin', { to: 'cross/back.bin', toStore: 'disk' })
      expect(await back.json()).toMatchObject({ store: 'disk', path: 'cross/back.bin', sha256: sha256(data), driver: 'disk' })
      expect((await fetch(url('mongo', 'info', 'arrived/file.bin'))).status).toBe(404)
      expect((await fetch(url('mongo', 'info', 'arrived'))).status).toBe(404)
      expect((await download('disk', 'cross/back.bin')).equals(Buffer.from(data))).toBe(true)
    })

    it('moves a folder from disk to mongo and back', async () => {
      const files = { 'tree/a.txt': 'a', 'tree/sub/b.txt': 'bb', 'tree/sub/deep/c.txt': 'ccc' }
      for (const [path, content] of Object.entries(files)) await put('disk', path, new TextEncoder().encode(content))
      const res = await move('disk', 'tree', { to: 'imported/tree', toStore: 'mongo' })
      expect(await res.json()).toEqual({ type: 'directory', store: 'mongo', path: 'imported/tree', name: 'tree' })
      const listed = (await (await fetch(`${url('mongo', 'list', 'imported/tree')}?recursive=true`)).json()) as { entries: FileInfo[] }
      expect(listed.entries.map((e) => [e.path, e.size])).toEqual([
        ['imported/tree/a.txt', 1],
        ['imported/tree/sub/b.txt', 2],
        ['imported/tree/sub/deep/c.txt', 3],
      ])
      expect((await fetch(url('disk', 'info', 'tree'))).status).toBe(404)

      const back = await move('mongo', 'imported/tree', { to: 'returned', toStore: 'disk' })
      expect(back.status).toBe(200)
      expect((await download('disk', 'returned/sub/deep/c.txt')).toString()).toBe('ccc')
      expect((await fetch(url('mongo', 'info', 'imported'))).status).toBe(404)
    })
  })
})
