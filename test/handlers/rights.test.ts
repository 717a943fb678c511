/**
 * Rights in use (SPEC 6), over real HTTP with HMAC tokens: the claim formats, listings that show only
 * what may be read (a partly owned prefix included), moves checked at both ends, uploads that belong
 * to their creator, /check's details, the request log, the OpenAPI security declarations, and the
 * typed client sending its token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FileStorageClient, FileStorageError } from '../../src/adapters/discovery/index.js'
import { mintToken } from '../../src/auth/index.js'
import { expectError } from '../helpers/http.js'
import { memoryLog } from '../helpers/log-lines.js'
import { bearer, hmacKey, hmacToken, keysEnv } from '../helpers/auth.js'
import { startTestService, type TestService } from '../helpers/test-service.js'
import { createTusUpload, TUS_HEADERS, uploadMetadata } from '../helpers/tus.js'

const key = hmacKey('dev')
const log = memoryLog()
let svc: TestService
let admin: string
const url = (verb: string, path = '', store = 'disk') => `${svc.api}/${store}/${verb}/${path.split('/').map(encodeURIComponent).join('/')}`
const put = async (token: string, path: string, body = `bytes of ${path}`) => fetch(url('upload', path), { method: 'PUT', headers: bearer(token), body })

beforeAll(async () => {
  svc = await startTestService(
    { AUTH_HMAC_SECRETS: keysEnv(key), LOG_REQUESTS: 'true', MONGODB_URI: 'mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300' },
    { logger: log.logger },
  )
  admin = await hmacToken(key, 'admin', ['files:*:*:'])
  for (const path of ['users/ana/a.txt', 'users/ana/sub/b.txt', 'users/anabel/c.txt', 'users/bob/d.txt', 'public/e.txt', 'public/f.txt', 'zeta.txt']) {
    expect((await put(admin, path)).status).toBe(201)
  }
})
afterAll(async () => svc?.stop())

const names = async (res: Response) => {
  expect(res.status, await res.clone().text()).toBe(200)
  return ((await res.json()) as { entries: { path: string }[] }).entries.map((e) => e.path)
}

describe('the claim format', () => {
  it('takes scopes (scope or scp), the structured claim, {sub}, and whole-store rights', async () => {
    const read = async (token: string, path: string) => (await fetch(url('download', path), { headers: bearer(token) })).status
    const scoped = await hmacToken(key, 'ana', ['files:read:disk:users/ana/', 'openid', 'files:read:*:public/e.txt'])
    expect(await read(scoped, 'users/ana/sub/b.txt')).toBe(200)
    expect(await read(scoped, 'public/e.txt')).toBe(200)
    expect(await read(scoped, 'public/f.txt')).toBe(403) // a file right covers that file only
    const structured = await mintToken({ key, sub: 'ana', rights: [{ store: 'disk', prefix: 'users/{sub}', actions: ['read'] }] })
    expect(await read(structured, 'users/ana/a.txt')).toBe(200)
    expect(await read(structured, 'users/bob/d.txt')).toBe(403)
    const perUser = await hmacToken(key, 'bob', ['files:read:disk:users/{sub}'])
    expect(await read(perUser, 'users/bob/d.txt')).toBe(200)
    expect(await read(perUser, 'users/ana/a.txt')).toBe(403)
    const wholeStore = await hmacToken(key, 'reader', ['files:read:disk'])
    expect(await read(wholeStore, 'zeta.txt')).toBe(200)
    // A subject that is not one path segment grants nothing through {sub}.
    expect(await read(await hmacToken(key, '../ana', ['files:read:disk:users/{sub}']), 'users/ana/a.txt')).toBe(403)
    // Rights are per action: read does not write or delete.
    expect((await put(scoped, 'users/ana/new.txt')).status).toBe(403)
    expect((await fetch(url('delete', 'users/ana/a.txt'), { method: 'DELETE', headers: bearer(scoped) })).status).toBe(403)
  })
})

describe('listings show only what may be read', () => {
  let ana: string
  beforeAll(async () => {
    ana = await hmacToken(key, 'ana', ['files:read:disk:users/ana', 'files:read:disk:public/e.txt'])
  })

  it('lists a partly owned folder with only the readable entries', async () => {
    expect(await names(await fetch(url('list', ''), { headers: bearer(ana) }))).toEqual(['public', 'users'])
    expect(await names(await fetch(url('list', 'users'), { headers: bearer(ana) }))).toEqual(['users/ana'])
    expect(await names(await fetch(url('list', 'public'), { headers: bearer(ana) }))).toEqual(['public/e.txt'])
    expect(await names(await fetch(url('list', 'users/ana'), { headers: bearer(ana) }))).toEqual(['users/ana/sub', 'users/ana/a.txt'])
  })

  it('lists recursively over a partly owned prefix, page by page', async () => {
    expect(await names(await fetch(`${url('list', '')}?recursive=true`, { headers: bearer(ana) }))).toEqual([
      'public/e.txt',
      'users/ana/a.txt',
      'users/ana/sub/b.txt',
    ])
    const seen: string[] = []
    let cursor: string | null = null
    for (let page = 0; page < 10; page++) {
      const res: Response = await fetch(`${url('list', 'users')}?recursive=true&limit=1${cursor ? `&cursor=${cursor}` : ''}`, { headers: bearer(ana) })
      const body = (await res.json()) as { entries: { path: string }[]; nextCursor: string | null }
      seen.push(...body.entries.map((e) => e.path))
      cursor = body.nextCursor
      if (!cursor) break
    }
    expect(seen).toEqual(['users/ana/a.txt', 'users/ana/sub/b.txt'])
  })

  it('refuses a folder with nothing readable in it', async () => {
    await expectError(await fetch(url('list', 'users/bob'), { headers: bearer(ana) }), 403, 'forbidden')
    await expectError(await fetch(url('list', 'users/anabel'), { headers: bearer(ana) }), 403, 'forbidden')
  })
})

describe('moves are checked at both ends', () => {
  it('needs read and delete on the source and write on the target', async () => {
    await put(admin, 'users/ana/move-me.txt')
    const move = (token: string, from: string, to: string) =>
      fetch(url('move', from), { method: 'POST', headers: { ...bearer(token), 'Content-Type': 'application/json' }, body: JSON.stringify({ to }) })
    const readWrite = await hmacToken(key, 'ana', ['files:read:disk:users/ana', 'files:write:disk:users/ana'])
    await expectError(await move(readWrite, 'users/ana/move-me.txt', 'users/ana/moved.txt'), 403, 'forbidden') // no delete
    const full = await hmacToken(key, 'ana', ['files:*:disk:users/ana'])
    await expectError(await move(full, 'users/ana/move-me.txt', 'users/bob/stolen.txt'), 403, 'forbidden')
    await expectError(await move(full, 'users/bob/d.txt', 'users/ana/d.txt'), 403, 'forbidden')
    expect((await move(full, 'users/ana/move-me.txt', 'users/ana/moved.txt')).status).toBe(200)
  })
})

describe('uploads belong to their creator', () => {
  it('answers 404 to another principal for parts and tus, whatever its rights', async () => {
    const ana = await hmacToken(key, 'ana', ['files:*:disk:users/ana'])
    const json = { 'Content-Type': 'application/json' }
    const created = await fetch(url('createupload', 'users/ana/big.bin'), { method: 'POST', headers: { ...bearer(ana), ...json }, body: '{}' })
    const { uploadId } = (await created.json()) as { uploadId: string }
    const tus = await createTusUpload(`${svc.api}/disk/tus/`, { ...bearer(ana), 'Upload-Length': '3', 'Upload-Metadata': uploadMetadata({ path: 'users/ana/t.bin' }) })
    expect(tus.res.status).toBe(201)

    for (const other of [admin, await hmacToken(key, 'ana', ['files:*:disk:'], { issuer: 'https://another-idp.example' })]) {
      const h = bearer(other)
      await expectError(await fetch(`${url('uploadpart', uploadId)}?part=1`, { method: 'PUT', headers: h, body: 'abc' }), 404, 'not_found')
      await expectError(await fetch(url('uploadstatus', uploadId), { headers: h }), 404, 'not_found')
      await expectError(await fetch(url('completeupload', uploadId), { method: 'POST', headers: h }), 404, 'not_found')
      await expectError(await fetch(url('abortupload', uploadId), { method: 'DELETE', headers: h }), 404, 'not_found')
      expect((await fetch(tus.location, { method: 'HEAD', headers: { ...TUS_HEADERS, ...h } })).status).toBe(404)
      const patch = { ...TUS_HEADERS, ...h, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }
      await expectError(await fetch(tus.location, { method: 'PATCH', headers: patch, body: 'abc' }), 404, 'not_found')
      await expectError(await fetch(tus.location, { method: 'DELETE', headers: { ...TUS_HEADERS, ...h } }), 404, 'not_found')
    }

    const mine = bearer(ana)
    expect((await fetch(`${url('uploadpart', uploadId)}?part=1`, { method: 'PUT', headers: mine, body: 'abc' })).status).toBe(200)
    const status = (await (await fetch(url('uploadstatus', uploadId), { headers: mine })).json()) as Record<string, unknown>
    expect(status).toMatchObject({ uploadId, received: 3 })
    expect(status).not.toHaveProperty('owner')
    expect((await fetch(url('completeupload', uploadId), { method: 'POST', headers: mine })).status).toBe(201)
    const patch = { ...TUS_HEADERS, ...mine, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }
    expect((await fetch(tus.location, { method: 'PATCH', headers: patch, body: 'xyz' })).status).toBe(204)
    expect(await (await fetch(url('download', 'users/ana/t.bin'), { headers: mine })).text()).toBe('xyz')
  })
})

describe('/check', () => {
  it('tells a caller without credentials only up or down, and a reader the details', async () => {
    const anonymous = (await (await fetch(`${svc.api}/check`)).json()) as { stores: Record<string, Record<string, unknown>> }
    expect(anonymous.stores).toEqual({ disk: { status: 'up' }, mongo: { status: 'down' } })
    const badToken = (await (await fetch(`${svc.api}/check`, { headers: bearer('nope') })).json()) as typeof anonymous
    expect(badToken.stores.mongo).toEqual({ status: 'down' })
    const diskReader = await hmacToken(key, 'ana', ['files:read:disk:users/ana'])
    const partly = (await (await fetch(`${svc.api}/check`, { headers: bearer(diskReader) })).json()) as typeof anonymous
    expect(partly.stores.disk).toMatchObject({ status: 'up', driver: 'disk' })
    expect(partly.stores.mongo).toEqual({ status: 'down' })
    const full = (await (await fetch(`${svc.api}/check`, { headers: bearer(admin) })).json()) as typeof anonymous
    expect(full.stores.mongo).toMatchObject({ status: 'down', driver: 'mongo' })
    expect(typeof full.stores.mongo!.message).toBe('string')
  })
})

describe('the request log', () => {
  it('carries the subject, never the token or a signature', async () => {
    const token = await hmacToken(key, 'ana', ['files:*:disk:users/ana'])
    await fetch(url('info', 'users/ana/a.txt'), { headers: bearer(token) })
    const signed = (await (
      await fetch(url('sign', 'users/ana/a.txt'), { method: 'POST', headers: { ...bearer(token), 'Content-Type': 'application/json' }, body: '{"operation":"download"}' })
    ).json()) as { url: string }
    expect((await fetch(signed.url)).status).toBe(200)
    await fetch(url('info', 'users/ana/a.txt'))
    const sig = new URL(signed.url).searchParams.get('sig')!
    const lines = log.text()
    const logged = (path: string, status: number) =>
      log.entries().filter((e) => e.msg === `GET /filestorage/v1/disk/${path} ${status}`).map((e) => e.sub)
    expect(logged('info/users/ana/a.txt', 200)).toContain('ana')
    expect(logged('download/users/ana/a.txt', 200)).toContain('signed-url:dev')
    expect(logged('info/users/ana/a.txt', 401)).toContain('-')
    expect(lines).not.toContain(token)
    expect(lines).not.toContain(token.split('.')[2])
    expect(lines).not.toContain(sig)
  })
})

describe('the OpenAPI document', () => {
  it('declares the bearer scheme, and 401/403 on every operation but the public ones', async () => {
    const doc = (await (await fetch(`${svc.api}/openapi.json`)).json()) as {
      components: { securitySchemes: Record<string, { type: string; scheme?: string }> }
      paths: Record<string, Record<string, { operationId: string; security?: unknown[]; responses: Record<string, unknown> }>>
    }
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    const operations = Object.values(doc.paths).flatMap((item) => Object.values(item))
    expect(operations.length).toBeGreaterThan(15)
    for (const op of operations) {
      if (['check', 'help', 'tusOptions'].includes(op.operationId)) {
        expect(op.security, op.operationId).toEqual([]) // explicitly no credentials
        continue
      }
      expect(op.security, op.operationId).toEqual([{ bearerAuth: [] }])
      expect(Object.keys(op.responses), op.operationId).toEqual(expect.arrayContaining(['401', '403']))
    }
  })
})

describe('the typed client', () => {
  it('sends its token (or asks a function for one) and reports refusals as FileStorageError', async () => {
    let asked = 0
    const client = new FileStorageClient({
      target: svc.origin,
      token: async () => {
        asked++
        return hmacToken(key, 'ana', ['files:*:disk:users/ana'])
      },
    })
    const { created } = await client.upload('disk', 'users/ana/client.txt', 'from the client')
    expect(created).toBe(true)
    expect(await (await client.download('disk', 'users/ana/client.txt')).text()).toBe('from the client')
    expect(asked).toBe(2)
    const signed = await client.sign('disk', 'users/ana/client.txt', { operation: 'download', expiresIn: 60 })
    expect(signed.method).toBe('GET')
    expect(await (await fetch(signed.url)).text()).toBe('from the client')
    const error = await client.info('disk', 'users/bob/d.txt').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(FileStorageError)
    expect(error).toMatchObject({ status: 403, code: 'forbidden' })
    const anonymous = new FileStorageClient({ target: svc.origin })
    expect(await anonymous.info('disk', 'users/ana/client.txt').catch((e: unknown) => e)).toMatchObject({ status: 401, code: 'unauthorized' })
  })
})
