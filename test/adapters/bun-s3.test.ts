/**
 * The s3 store served by the service on Bun (the bun adapter's main, as `npm run start:bun` runs
 * it), against the run's SeaweedFS: a round trip over HTTP (an upload, the download whole and as a
 * range, HEAD, a conditional GET, a move, a delete) and a tus upload in two PATCHes (the first
 * smaller than an S3 part, so it is staged and merged), read back byte for byte.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BUN, type ProcessService, spawnService } from '../helpers/process-service.js'
import { s3StoreEnv, s3TestTarget, uniquePrefix } from '../helpers/s3-store.js'
import { createTusUpload, patchTus, tusOffset, uploadMetadata } from '../helpers/tus.js'

const MiB = 1024 * 1024
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

describe.runIf(BUN && s3TestTarget())('the s3 store on Bun', () => {
  let svc: ProcessService
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'filestorage-bun-s3-'))
    svc = await spawnService({ STORAGE_DIR: dir, ...s3StoreEnv(uniquePrefix('bun')) }, { runtime: 'bun' })
  })
  afterAll(async () => {
    await svc?.stop('SIGTERM')
    await rm(dir, { recursive: true, force: true })
  })

  it('uploads, downloads (whole, a range, HEAD, conditional), moves and deletes a file', async () => {
    const s3 = `${svc.api}/s3`
    const bytes = randomBytes(2 * MiB + 123)
    const put = await fetch(`${s3}/upload/bun/a.bin`, { method: 'PUT', body: bytes, headers: { 'Content-Type': 'application/octet-stream' } })
    expect(put.status).toBe(201)
    const etag = `"${sha256(bytes)}"`

    const whole = await fetch(`${s3}/download/bun/a.bin`)
    expect(whole.status).toBe(200)
    expect(whole.headers.get('etag')).toBe(etag)
    expect(sha256(new Uint8Array(await whole.arrayBuffer()))).toBe(sha256(bytes))

    const range = await fetch(`${s3}/download/bun/a.bin`, { headers: { Range: 'bytes=1000-1999' } })
    expect(range.status).toBe(206)
    expect(range.headers.get('content-range')).toBe(`bytes 1000-1999/${bytes.length}`)
    expect(Buffer.from(await range.arrayBuffer()).equals(bytes.subarray(1000, 2000))).toBe(true)

    const head = await fetch(`${s3}/download/bun/a.bin`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('content-length')).toBe(String(bytes.length))
    expect((await fetch(`${s3}/download/bun/a.bin`, { headers: { 'If-None-Match': etag } })).status).toBe(304)

    const moved = await fetch(`${s3}/move/bun/a.bin`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ to: 'bun/b.bin' }) })
    expect(moved.status).toBe(200)
    expect((await fetch(`${s3}/download/bun/a.bin`)).status).toBe(404)
    expect(sha256(new Uint8Array(await (await fetch(`${s3}/download/bun/b.bin`)).arrayBuffer()))).toBe(sha256(bytes))

    expect((await fetch(`${s3}/delete/bun/b.bin`, { method: 'DELETE' })).status).toBe(204)
    expect((await fetch(`${s3}/download/bun/b.bin`)).status).toBe(404)
  })

  it('takes a tus upload in two PATCHes, the first smaller than an S3 part', async () => {
    const bytes = randomBytes(6 * MiB + 77)
    const first = 3 * MiB
    const { res, location } = await createTusUpload(`${svc.api}/s3/tus/`, {
      'Upload-Length': String(bytes.length),
      'Upload-Metadata': uploadMetadata({ path: 'bun/tus.bin' }),
    })
    expect(res.status).toBe(201)
    const url = new URL(location, svc.origin).toString()
    expect((await patchTus(url, 0, bytes.subarray(0, first))).status).toBe(204)
    expect(await tusOffset(url)).toBe(first)
    const last = await patchTus(url, first, bytes.subarray(first))
    expect(last.status).toBe(204)
    expect(last.headers.get('upload-offset')).toBe(String(bytes.length))
    const stored = await fetch(`${svc.api}/s3/download/bun/tus.bin`)
    expect(stored.status).toBe(200)
    expect(sha256(new Uint8Array(await stored.arrayBuffer()))).toBe(sha256(bytes))
  })
})
