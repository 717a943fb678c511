/**
 * Quotas over HTTP: `403 quota_exceeded` (JSON, with the limit and the usage) on every write that
 * would go over, before its body is read; the usage route behind `read`; the configuration checked
 * at start-up (QUOTAS, QUOTAS_FILE).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/adapters/service/config.js'
import { openStores } from '../../src/adapters/service/stores.js'
import { bearer, hmacKey, hmacToken, keysEnv } from '../helpers/auth.js'
import { expectError } from '../helpers/http.js'
import { s3StoreEnv, s3TestTarget } from '../helpers/s3-store.js'
import { type TestService, startTestService } from '../helpers/test-service.js'
import { createTusUpload, uploadMetadata } from '../helpers/tus.js'
import { newSecret, startReceiver } from '../helpers/webhook-receiver.js'

const key = hmacKey('quotas')

describe('quotas over HTTP', () => {
  let svc: TestService
  let ana: Record<string, string>
  let admin: Record<string, string>
  beforeAll(async () => {
    svc = await startTestService({
      AUTH_HMAC_SECRETS: keysEnv(key),
      QUOTAS: 'disk:users/{sub}=100 KiB,3 files; disk=1MiB',
    })
    ana = bearer(await hmacToken(key, 'ana', ['files:*:disk:users/ana']))
    admin = bearer(await hmacToken(key, 'root', ['files:*:disk:']))
  })
  afterAll(async () => svc?.stop())

  const put = (path: string, size: number, headers = ana) => fetch(`${svc.api}/disk/upload/${path}`, { method: 'PUT', headers, body: new Uint8Array(size) })

  it('refuses an upload over the quota with 403 quota_exceeded, its limit and usage in details', async () => {
    expect((await put('users/ana/a', 60 * 1024)).status).toBe(201)
    const refused = await put('users/ana/b', 50 * 1024)
    const body = await expectError(refused, 403, 'quota_exceeded')
    expect(body.error.details).toEqual({
      store: 'disk',
      prefix: 'users/ana',
      rule: 'users/{sub}',
      limit: { bytes: 100 * 1024, files: 3 },
      usage: { bytes: 60 * 1024, files: 1 },
      requested: { bytes: 50 * 1024, files: 1 },
    })
    expect(body.error.message).toMatch(/users\/ana/)
    expect((await fetch(`${svc.api}/disk/info/users/ana/b`, { headers: ana })).status).toBe(404)
  })

  it('answers a principal its own usage, behind read on the path, and no one else\'s', async () => {
    const res = await fetch(`${svc.api}/disk/usage/users/ana`, { headers: ana })
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const usage = (await res.json()) as { store: string; path: string; quotas: { prefix: string; usage: object; limits: object }[] }
    expect(usage.store).toBe('disk')
    expect(usage.quotas.map((q) => q.prefix)).toEqual(['', 'users/ana'])
    expect(usage.quotas[1]).toMatchObject({ limits: { bytes: 100 * 1024, files: 3 }, usage: { bytes: 60 * 1024, files: 1 } })
    await expectError(await fetch(`${svc.api}/disk/usage/users/bob`, { headers: ana }), 403, 'forbidden')
    await expectError(await fetch(`${svc.api}/disk/usage`, { headers: ana }), 403, 'forbidden')
    await expectError(await fetch(`${svc.api}/disk/usage/users/ana`), 401, 'unauthorized')
    const root = (await (await fetch(`${svc.api}/disk/usage`, { headers: admin })).json()) as { quotas: { prefix: string }[] }
    expect(root.quotas.map((q) => q.prefix)).toEqual([''])
  })

  it('refuses an upload in parts, a tus upload and a move over the quota before any byte', async () => {
    const created = await fetch(`${svc.api}/disk/createupload/users/ana/big`, {
      method: 'POST',
      headers: { ...ana, 'content-type': 'application/json' },
      body: JSON.stringify({ size: 41 * 1024 }),
    })
    await expectError(created, 403, 'quota_exceeded')
    const tus = await createTusUpload(`${svc.api}/disk/tus/`, { ...ana, 'Upload-Length': String(41 * 1024), 'Upload-Metadata': uploadMetadata({ path: 'users/ana/t' }) })
    await expectError(tus.res, 403, 'quota_exceeded')
    expect(tus.res.headers.get('tus-resumable')).toBe('1.0.0')
    // A file of 50 KiB elsewhere cannot be moved in.
    expect((await put('users/bob/x', 50 * 1024, admin)).status).toBe(201)
    const move = await fetch(`${svc.api}/disk/move/users/bob/x`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'users/ana/x' }),
    })
    await expectError(move, 403, 'quota_exceeded')
    // A part over the room left.
    const upload = (await (
      await fetch(`${svc.api}/disk/createupload/users/ana/parts`, { method: 'POST', headers: { ...ana, 'content-type': 'application/json' }, body: '{}' })
    ).json()) as { uploadId: string }
    const part = await fetch(`${svc.api}/disk/uploadpart/${upload.uploadId}?part=1`, { method: 'PUT', headers: ana, body: new Uint8Array(41 * 1024) })
    await expectError(part, 403, 'quota_exceeded')
    expect((await fetch(`${svc.api}/disk/abortupload/${upload.uploadId}`, { method: 'DELETE', headers: ana })).status).toBe(204)
  })

  it('gives the bytes back on delete', async () => {
    expect((await fetch(`${svc.api}/disk/delete/users/ana/a`, { method: 'DELETE', headers: ana })).status).toBe(204)
    const usage = (await (await fetch(`${svc.api}/disk/usage/users/ana/a`, { headers: ana })).json()) as { quotas: { prefix: string; usage: object }[] }
    expect(usage.quotas.find((q) => q.prefix === 'users/ana')!.usage).toEqual({ bytes: 0, files: 0 })
  })
})

describe('quotas with events', () => {
  it('a store under quotas announces its changes (an abort with who asked); a refused write or upload announces nothing', async () => {
    const secret = newSecret()
    const receiver = await startReceiver([secret])
    const svc = await startTestService({ QUOTAS: 'disk=10KiB', WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: secret })
    try {
      expect((await fetch(`${svc.api}/disk/upload/a`, { method: 'PUT', body: new Uint8Array(6 * 1024) })).status).toBe(201)
      await expectError(await fetch(`${svc.api}/disk/upload/b`, { method: 'PUT', body: new Uint8Array(6 * 1024) }), 403, 'quota_exceeded')
      // An upload in parts declaring more than fits is refused before it exists: no upload to announce.
      const json = { 'content-type': 'application/json' }
      await expectError(await fetch(`${svc.api}/disk/createupload/b`, { method: 'POST', headers: json, body: '{"size":8192}' }), 403, 'quota_exceeded')
      const created = await fetch(`${svc.api}/disk/createupload/c`, { method: 'POST', headers: json, body: '{}' })
      const { uploadId } = (await created.json()) as { uploadId: string }
      expect((await fetch(`${svc.api}/disk/abortupload/${uploadId}`, { method: 'DELETE', headers: { 'X-Request-Id': 'abort-1' } })).status).toBe(204)
      expect((await fetch(`${svc.api}/disk/delete/a`, { method: 'DELETE' })).status).toBe(204)
      await receiver.until(() => receiver.taken.some((d) => d.type === 'file.deleted'), 10_000, 'the delete\'s event')
      const events = receiver.taken.map((d) => `${d.type} ${d.data.path}`)
      expect(events).toEqual(expect.arrayContaining(['file.created a', 'upload.created c', 'upload.aborted c', 'file.deleted a']))
      expect(events.some((e) => e.endsWith(' b'))).toBe(false)
      expect(receiver.taken.find((d) => d.type === 'upload.aborted')!.data).toMatchObject({ requestId: 'abort-1' })
      expect(receiver.invalid).toEqual([])
    } finally {
      await svc.stop()
      await receiver.close()
    }
  })
})

describe('quota configuration', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'filestorage-quota-config-'))
  })
  afterAll(async () => rm(dir, { recursive: true, force: true }))

  it.each([
    ['disk=lots', /QUOTAS="disk=lots": "lots" is not a byte size/],
    ['disk', /a rule is <store>\[:<prefix>\]=<limit>/],
    ['disk:a/../b=1GiB', /QUOTAS=.*invalid|\.\./],
    ['disk:users/{who}=1GiB', /takes \{sub\} as a whole segment only/],
    ['disk=1GiB;disk=2GiB', /two rules for "disk:"/],
    ['disk=5 files,6 files', /two limits in files/],
  ])('refuses QUOTAS=%s at start-up', (value, message) => {
    expect(() => loadConfig({ QUOTAS: value })).toThrow(message)
  })

  it('reads QUOTAS_FILE, and names it when it cannot', async () => {
    const file = join(dir, 'quotas.json')
    await writeFile(file, JSON.stringify({ quotas: [{ store: '*', prefix: 'users/{sub}/', bytes: '1GiB', files: 10 }] }))
    expect(loadConfig({ QUOTAS_FILE: file }).QUOTAS_FILE).toEqual([{ store: '*', prefix: 'users/{sub}', bytes: 1024 ** 3, files: 10 }])
    expect(() => loadConfig({ QUOTAS_FILE: join(dir, 'missing.json') })).toThrow(/QUOTAS_FILE=.*cannot read it/)
    await writeFile(file, '[{"store": "disk", "bites": 1}]')
    expect(() => loadConfig({ QUOTAS_FILE: file })).toThrow(/QUOTAS_FILE=.*unknown field "bites"/)
  })

  it('refuses a rule for a store that is not served', async () => {
    const config = loadConfig({ STORAGE_DIR: dir, QUOTAS: 'mongo=1GiB' })
    await expect(openStores(config, () => {})).rejects.toThrow(/QUOTAS: there is no store "mongo"/)
  })

  // Without conditional writes the s3 driver keeps no shared records for the ledger: quotas there are refused, never ignored.
  it.skipIf(!s3TestTarget())('keeps quotas on the s3 store, and refuses them at start-up when told the server has no conditional writes', async () => {
    const stores = await openStores(loadConfig({ STORAGE_DIR: dir, ...s3StoreEnv(), QUOTAS: 's3=1GiB' }), () => {})
    try {
      expect(await stores.get('s3').quotaUsage?.('')).toMatchObject([{ prefix: '', limits: { bytes: 1024 ** 3 }, stored: { bytes: 0, files: 0 } }])
    } finally {
      await stores.close()
    }
    for (const QUOTAS of ['s3=1GiB', '*:users/{sub}=10 files']) {
      const config = loadConfig({ STORAGE_DIR: dir, ...s3StoreEnv(), S3_CONDITIONAL_WRITES: 'false', QUOTAS })
      await expect(openStores(config, () => {})).rejects.toThrow(/QUOTAS: the store "s3" \(s3\) cannot keep quotas: .*docs\/operations\.md#quotas/)
    }
    // Its neighbours keep theirs.
    const neighbours = await openStores(loadConfig({ STORAGE_DIR: dir, ...s3StoreEnv(), S3_CONDITIONAL_WRITES: 'false', QUOTAS: 'disk=1GiB' }), () => {})
    try {
      expect(neighbours.names()).toEqual(['disk', 's3'])
      expect(await neighbours.get('disk').quotaUsage?.('')).toMatchObject([{ prefix: '', limits: { bytes: 1024 ** 3 } }])
      expect(neighbours.get('s3').quotaUsage).toBeUndefined()
    } finally {
      await neighbours.close()
    }
  })
})
