/**
 * The file API over HTTP on the `s3` store (S3_BUCKET set, the run's SeaweedFS): the whole HTTP
 * suite, then what only this store shows: downloads redirected to presigned URLs, conditional
 * requests refused on a server without conditional writes, and moves to and from the disk store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FileInfo } from '../../src/storage/index.js'
import { expectError } from '../helpers/http.js'
import { s3StoreEnv, s3TestTarget } from '../helpers/s3-store.js'
import { sha256 } from '../helpers/streams.js'
import { startTestService, type TestService } from '../helpers/test-service.js'
import { API_LIMITS, describeFileApi } from './file-api.js'

const target = s3TestTarget()

describe.runIf(target !== undefined)('s3 store over HTTP', () => {
  describeFileApi('s3', () => startTestService({ ...API_LIMITS, ...s3StoreEnv() }))

  let svc: TestService
  beforeAll(async () => {
    svc = await startTestService({ ...API_LIMITS, ...s3StoreEnv() })
  })
  afterAll(async () => svc?.stop())

  const url = (base: string, store: string, verb: string, path: string) => `${base}/${store}/${verb}/${path.split('/').map(encodeURIComponent).join('/')}`
  const put = async (base: string, store: string, path: string, body: string | Uint8Array, headers: Record<string, string> = {}) => {
    const res = await fetch(url(base, store, 'upload', path), { method: 'PUT', body, headers })
    expect(res.status, await res.clone().text()).toBeLessThan(300)
    return (await res.json()) as FileInfo
  }

  it('reports the s3 store on /check, up and writable', async () => {
    const check = (await (await fetch(`${svc.api}/check`)).json()) as { stores: Record<string, { status: string; driver: string; writable: boolean }> }
    expect(check.stores.s3).toMatchObject({ status: 'up', driver: 's3', writable: true })
  })

  it('moves a file and a folder from disk to s3 and back, bytes and attributes intact', async () => {
    const data = new Uint8Array(300_000).map((_, i) => i % 251)
    await put(svc.api, 'disk', 'cross/file.bin', data, { 'content-type': 'application/x-cross', 'x-file-metadata': '{"from":"disk"}' })
    const move = (store: string, path: string, body: object) =>
      fetch(url(svc.api, store, 'move', path), { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
    const toS3 = await move('disk', 'cross/file.bin', { to: 'arrived/file.bin', toStore: 's3' })
    expect(await toS3.json()).toMatchObject({ store: 's3', path: 'arrived/file.bin', sha256: sha256(data), driver: 's3', contentType: 'application/x-cross', metadata: { from: 'disk' } })
    expect((await fetch(url(svc.api, 'disk', 'info', 'cross/file.bin'))).status).toBe(404)
    const back = await move('s3', 'arrived/file.bin', { to: 'cross/back.bin', toStore: 'disk' })
    expect(await back.json()).toMatchObject({ store: 'disk', sha256: sha256(data), driver: 'disk' })
    expect((await fetch(url(svc.api, 's3', 'info', 'arrived'))).status).toBe(404)

    for (const [path, content] of Object.entries({ 'tree/a.txt': 'a', 'tree/sub/b.txt': 'bb' })) await put(svc.api, 'disk', path, content)
    const folder = await move('disk', 'tree', { to: 'imported/tree', toStore: 's3' })
    expect(await folder.json()).toEqual({ type: 'directory', store: 's3', path: 'imported/tree', name: 'tree' })
    const listed = (await (await fetch(`${url(svc.api, 's3', 'list', 'imported')}?recursive=true`)).json()) as { entries: FileInfo[] }
    expect(listed.entries.map((e) => [e.path, e.size])).toEqual([['imported/tree/a.txt', 1], ['imported/tree/sub/b.txt', 2]])
    expect((await (await move('s3', 'imported/tree', { to: 'returned', toStore: 'disk' })).json())).toMatchObject({ store: 'disk', type: 'directory' })
    expect(await (await fetch(url(svc.api, 'disk', 'download', 'returned/sub/b.txt'))).text()).toBe('bb')
  })

  describe('S3_REDIRECT_DOWNLOADS', () => {
    let redirecting: TestService
    const publicEndpoint = target?.endpoint.replace('127.0.0.1', 'localhost')
    beforeAll(async () => {
      redirecting = await startTestService({ ...s3StoreEnv(), S3_REDIRECT_DOWNLOADS: 'true', S3_PUBLIC_ENDPOINT: publicEndpoint! })
    })
    afterAll(async () => redirecting?.stop())

    it('answers a plain GET with 302 to a short-lived presigned URL at the public endpoint, which serves the bytes as the service would', async () => {
      const file = await put(redirecting.api, 's3', 'redirect/photo.png', 'not really a png', { 'content-type': 'image/png' })
      const res = await fetch(url(redirecting.api, 's3', 'download', 'redirect/photo.png'), { redirect: 'manual' })
      expect(res.status).toBe(302)
      expect([res.headers.get('cache-control'), res.headers.get('etag')]).toEqual(['no-store', file.etag])
      const location = new URL(res.headers.get('location')!)
      expect(location.origin).toBe(publicEndpoint)
      expect(Number(location.searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(300)
      const direct = await fetch(location, { signal: AbortSignal.timeout(10_000) })
      expect([direct.status, direct.headers.get('content-type'), await direct.text()]).toEqual([200, 'image/png', 'not really a png'])
      // The save-as name the service would send, when asked for.
      const asked = await fetch(`${url(redirecting.api, 's3', 'download', 'redirect/photo.png')}?disposition=attachment`, { redirect: 'manual' })
      const attachment = await fetch(asked.headers.get('location')!, { signal: AbortSignal.timeout(10_000) })
      expect(attachment.headers.get('content-disposition')).toBe('attachment; filename=photo.png')
      await attachment.arrayBuffer()
    })

    it('keeps active content an attachment at the presigned URL', async () => {
      await put(redirecting.api, 's3', 'redirect/page.html', '<script>alert(1)</script>', { 'content-type': 'text/html' })
      const res = await fetch(url(redirecting.api, 's3', 'download', 'redirect/page.html'), { redirect: 'manual' })
      const direct = await fetch(res.headers.get('location')!, { signal: AbortSignal.timeout(10_000) })
      expect([direct.headers.get('content-type'), direct.headers.get('content-disposition')]).toEqual(['text/html', 'attachment; filename=page.html'])
      await direct.arrayBuffer()
    })

    it('answers HEAD and conditional GETs itself', async () => {
      const file = await put(redirecting.api, 's3', 'redirect/cond.txt', 'conditional')
      const path = url(redirecting.api, 's3', 'download', 'redirect/cond.txt')
      const head = await fetch(path, { method: 'HEAD', redirect: 'manual' })
      expect([head.status, head.headers.get('content-length')]).toEqual([200, '11'])
      expect((await fetch(path, { headers: { 'if-none-match': file.etag }, redirect: 'manual' })).status).toBe(304)
      const matching = await fetch(path, { headers: { 'if-match': file.etag }, redirect: 'manual' })
      expect([matching.status, await matching.text()]).toEqual([200, 'conditional'])
      await expectError(await fetch(url(redirecting.api, 's3', 'download', 'redirect/absent.txt'), { redirect: 'manual' }), 404, 'not_found')
    })
  })

  describe('a server without conditional writes (S3_CONDITIONAL_WRITES=false)', () => {
    let plain: TestService
    beforeAll(async () => {
      plain = await startTestService({ ...API_LIMITS, ...s3StoreEnv(), S3_CONDITIONAL_WRITES: 'false' })
    })
    afterAll(async () => plain?.stop())

    it('refuses conditional requests and uploads in parts with 501 not_supported instead of racing, and serves the rest', async () => {
      const file = await put(plain.api, 's3', 'plain/a.txt', 'plain write')
      await expectError(await fetch(url(plain.api, 's3', 'upload', 'plain/b.txt'), { method: 'PUT', body: 'x', headers: { 'if-none-match': '*' } }), 501, 'not_supported')
      await expectError(await fetch(url(plain.api, 's3', 'upload', 'plain/a.txt'), { method: 'PUT', body: 'x', headers: { 'if-match': file.etag } }), 501, 'not_supported')
      await expectError(await fetch(url(plain.api, 's3', 'delete', 'plain/a.txt'), { method: 'DELETE', headers: { 'if-match': file.etag } }), 501, 'not_supported')
      await expectError(await fetch(url(plain.api, 's3', 'createupload', 'plain/parts.bin'), { method: 'POST' }), 501, 'not_supported')
      expect(await (await fetch(url(plain.api, 's3', 'download', 'plain/a.txt'))).text()).toBe('plain write')
      expect((await put(plain.api, 's3', 'plain/a.txt', 'replaced')).size).toBe(8)
      expect((await fetch(url(plain.api, 's3', 'delete', 'plain/a.txt'), { method: 'DELETE' })).status).toBe(204)
    })
  })
})
