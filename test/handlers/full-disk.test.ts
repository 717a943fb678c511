/**
 * Full and read-only file systems, for real: a small tmpfs the test mounts (root only; skipped with
 * a message elsewhere, failing under CI=true). Writes answer `507 insufficient_storage` and leave
 * nothing behind, `check` reports the store degraded with a 503 (what takes it out of a load
 * balancer), and both recover by themselves once space returns. The same for the mongo store, on a
 * FerretDB whose data lives on such a file system.
 */
import { execFileSync } from 'node:child_process'
import { rm, statfs, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type FerretDb, ferretDb, ferretDbBinary } from '../helpers/ferretdb.js'
import { expectError } from '../helpers/http.js'
import { filesUnder } from '../helpers/leftovers.js'
import { randomDbName } from '../helpers/mongo.js'
import { startTestService, type TestService } from '../helpers/test-service.js'
import { mountTmpfs, type Tmpfs } from '../helpers/tmpfs.js'

const MiB = 1024 * 1024
const BOUNDARY = 'full-disk-form'

interface CheckJson {
  status: string
  stores: Record<string, { status: string; writable: boolean; message?: string }>
}

async function check(svc: TestService): Promise<{ status: number; body: CheckJson }> {
  const res = await fetch(`${svc.api}/check`)
  return { status: res.status, body: (await res.json()) as CheckJson }
}

const form = (files: Record<string, string>) =>
  Object.entries(files)
    .map(([name, content]) => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\n\r\n${content}\r\n`)
    .join('') + `--${BOUNDARY}--\r\n`

/** Every write of a store on a full file system answers 507, and the file it would replace stays as it was. */
async function expectWritesRefused(svc: TestService, store: string): Promise<void> {
  const url = (verb: string, path: string) => `${svc.api}/${store}/${verb}/${path}`
  await expectError(await fetch(url('upload', 'full/new.txt'), { method: 'PUT', body: 'hello' }), 507, 'insufficient_storage')
  const streamed = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < 4; i++) c.enqueue(new Uint8Array(MiB).fill(i))
      c.close()
    },
  })
  await expectError(
    await fetch(url('upload', 'full/streamed.bin'), { method: 'PUT', body: streamed, duplex: 'half' } as RequestInit),
    507,
    'insufficient_storage',
  )
  await expectError(await fetch(url('upload', 'kept.txt'), { method: 'PUT', body: 'replacement' }), 507, 'insufficient_storage')
  const posted = await fetch(url('upload', 'full/form'), {
    method: 'POST',
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
    body: form({ 'a.txt': 'first', 'b.txt': 'x'.repeat(300_000) }),
  })
  await expectError(posted, 507, 'insufficient_storage')

  const kept = await fetch(url('download', 'kept.txt'))
  expect(await kept.text()).toBe('kept before the disk filled')
  expect(kept.headers.get('content-type')).toBe('text/plain')
  const info = (await (await fetch(url('info', 'kept.txt'))).json()) as { metadata: unknown }
  expect(info.metadata).toEqual({ owner: 'ana' })
  expect((await fetch(url('info', 'full'))).status).toBe(404)
}

async function putKept(svc: TestService, store: string): Promise<void> {
  const res = await fetch(`${svc.api}/${store}/upload/kept.txt`, {
    method: 'PUT',
    body: 'kept before the disk filled',
    headers: { 'content-type': 'text/plain', 'x-file-metadata': '{"owner":"ana"}' },
  })
  expect(res.status).toBe(201)
}

const disk: Tmpfs | undefined = mountTmpfs(64 * MiB, 'full disk')

describe.runIf(disk !== undefined)('the disk store on a file system that fills up', () => {
  let svc: TestService
  const storeDir = () => join(disk!.dir, 'store')
  const storeFiles = () => filesUnder(storeDir())

  beforeAll(async () => {
    svc = await startTestService({ STORAGE_DIR: storeDir() })
  })
  afterAll(async () => {
    await svc?.stop()
    disk?.unmount()
  })

  it('answers 507 to every write, leaves nothing behind, degrades check, and recovers by itself', async () => {
    await putKept(svc, 'disk')
    expect(await check(svc)).toMatchObject({ status: 200, body: { status: 'ok', stores: { disk: { status: 'up', writable: true } } } })

    await disk!.fill()
    const before = await storeFiles()
    const degraded = await check(svc)
    expect(degraded).toMatchObject({ status: 503, body: { status: 'degraded', stores: { disk: { status: 'degraded', writable: false } } } })
    expect(degraded.body.stores.disk!.message).toMatch(/full/)

    await expectWritesRefused(svc, 'disk')
    expect(await storeFiles()).toEqual(before)

    await disk!.free()
    expect(await check(svc)).toMatchObject({ status: 200, body: { status: 'ok', stores: { disk: { status: 'up', writable: true } } } })
    expect((await fetch(`${svc.api}/disk/upload/full/new.txt`, { method: 'PUT', body: 'hello' })).status).toBe(201)
  })

  it('reports the store degraded once free space falls below the reserve, before writes fail', async () => {
    const { bavail, bsize } = await statfs(disk!.dir)
    const ballast = join(disk!.dir, 'ballast')
    await writeFile(ballast, Buffer.alloc(bavail * bsize - 8 * MiB)) // 8 MiB left: below the 16 MiB reserve
    try {
      const low = await check(svc)
      expect(low).toMatchObject({ status: 503, body: { stores: { disk: { status: 'degraded', writable: false } } } })
      expect(low.body.stores.disk!.message).toMatch(/below the reserve/)
      expect((await fetch(`${svc.api}/disk/upload/low/small.txt`, { method: 'PUT', body: 'still fits' })).status).toBe(201)
    } finally {
      await rm(ballast)
    }
    expect((await check(svc)).status).toBe(200)
  })

  it('reports a read-only file system as degraded, and recovers when it is writable again', async () => {
    execFileSync('mount', ['-o', 'remount,ro', disk!.dir])
    try {
      const readOnly = await check(svc)
      expect(readOnly).toMatchObject({ status: 503, body: { stores: { disk: { status: 'degraded', writable: false } } } })
      expect(readOnly.body.stores.disk!.message).toMatch(/read-only/)
      expect(await (await fetch(`${svc.api}/disk/download/kept.txt`)).text()).toBe('kept before the disk filled')
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', disk!.dir])
    }
    expect((await check(svc)).status).toBe(200)
  })
})

const bin = ferretDbBinary()
const mongoDisk: Tmpfs | undefined = bin ? mountTmpfs(64 * MiB, 'full disk under FerretDB') : undefined

describe.runIf(bin !== undefined && mongoDisk !== undefined)('the mongo store on a FerretDB whose disk fills up', () => {
  let server: FerretDb
  let svc: TestService

  beforeAll(async () => {
    server = await ferretDb(bin!, mongoDisk!.dir)
    await server.start()
    svc = await startTestService({ MONGODB_URI: server.uri, MONGODB_DB: randomDbName('full'), INLINE_MAX_BYTES: '65536' })
  })
  afterAll(async () => {
    await svc?.stop()
    await server?.stop()
    mongoDisk?.unmount()
  })

  it('answers 507 to every write, degrades check, and recovers by itself', async () => {
    await putKept(svc, 'mongo')
    expect((await check(svc)).body.stores.mongo).toMatchObject({ status: 'up', writable: true })

    await mongoDisk!.fill()
    const degraded = await check(svc)
    expect(degraded).toMatchObject({ status: 503, body: { status: 'degraded', stores: { mongo: { status: 'degraded', writable: false }, disk: { status: 'up' } } } })

    await expectWritesRefused(svc, 'mongo')

    await mongoDisk!.free()
    expect(await check(svc)).toMatchObject({ status: 200, body: { status: 'ok', stores: { mongo: { status: 'up', writable: true } } } })
    expect((await fetch(`${svc.api}/mongo/upload/full/new.txt`, { method: 'PUT', body: 'hello' })).status).toBe(201)
  })
})
