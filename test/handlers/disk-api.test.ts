/** The file API over HTTP on the disk store. */
import { mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mintToken, scopeOf } from '../../src/auth/index.js'
import { bearer, hmacKey, keysEnv } from '../helpers/auth.js'
import { tmpFiles } from '../helpers/disk-store.js'
import { expectError, rawRequest } from '../helpers/http.js'
import { startTestService, type TestService } from '../helpers/test-service.js'
import { API_LIMITS, describeFileApi } from './file-api.js'

describeFileApi('disk', () => startTestService(API_LIMITS))

// SPEC 3 again with access control on, as the external black-box check runs it: every request
// carries a token allowed everything everywhere, minted as `npm run token -- files:*:*:` does.
const key = hmacKey('suite')
const everyRight = await mintToken({ key, sub: 'spec-suite', scopes: [scopeOf('*', '*')] })
describeFileApi('disk', () => startTestService({ ...API_LIMITS, AUTH_HMAC_SECRETS: keysEnv(key) }), {
  label: 'with a bearer token',
  headers: bearer(everyRight),
})

describe('bad paths never reach outside the disk root', () => {
  let svc: TestService
  beforeAll(async () => {
    svc = await startTestService()
  })
  afterAll(async () => svc.stop())

  it('leaves the folder around the root untouched after every traversal attempt', async () => {
    const parent = dirname(svc.storageDir)
    const before = (await readdir(parent)).sort()
    for (const target of ['../escape.txt', '%2e%2e/escape.txt', '..%2fescape.txt', '%2e%2e%2fescape.txt', '..%5cescape.txt']) {
      for (const verb of ['upload', 'createupload']) {
        const res = await rawRequest(svc.origin, verb === 'upload' ? 'PUT' : 'POST', `/filestorage/v1/disk/${verb}/${target}`, { body: 'x' })
        expect(res.status).toBe(400)
      }
      const move = await rawRequest(svc.origin, 'POST', '/filestorage/v1/disk/move/a.txt', {
        body: JSON.stringify({ to: decodeURIComponent(target) }),
        headers: { 'content-type': 'application/json' },
      })
      expect([400, 404]).toContain(move.status)
    }
    expect((await readdir(parent)).sort()).toEqual(before)
    expect(await readdir(svc.storageDir)).toEqual(['.filestorage'])
  })
})

describe('requests Node cannot parse', () => {
  let svc: TestService
  beforeAll(async () => {
    svc = await startTestService()
  })
  afterAll(async () => svc.stop())

  it('answers headers over 64 KiB with a JSON 431', async () => {
    const res = await rawRequest(svc.origin, 'GET', '/filestorage/v1/check', { headers: { 'x-big': 'x'.repeat(70 * 1024) } })
    expect(res.status).toBe(431)
    expect(res.json()).toMatchObject({ error: { code: 'invalid_request' } })
  })

  it('answers a malformed request line with a JSON 400', async () => {
    const url = new URL(svc.origin)
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => socket.write('NOT HTTP AT ALL\r\n\r\n'))
      let data = ''
      socket.setTimeout(5000, () => socket.destroy(new Error('timeout')))
      socket.on('data', (c) => (data += c))
      socket.on('end', () => resolve(data))
      socket.on('error', reject)
    })
    expect(reply).toMatch(/^HTTP\/1.1 400/)
    expect(reply).toContain('"code":"invalid_request"')
  })
})

describe('an upload cut off by the client', () => {
  let svc: TestService
  beforeAll(async () => {
    svc = await startTestService()
  })
  afterAll(async () => svc.stop())

  /** Sends the headers of a 1 MiB PUT and 64 KiB of its body, then drops the connection. */
  async function cutUpload(path: string): Promise<void> {
    const url = new URL(svc.origin)
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(`PUT /filestorage/v1/disk/upload/${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n`)
        socket.write(Buffer.alloc(64 * 1024, 7), () => {
          socket.destroy()
          resolve()
        })
      })
      socket.on('error', reject)
    })
  }

  /** The store's temporary folder once empty, polled for up to 5 s (a hung upload keeps its file there). */
  async function tmpWhenEmpty(): Promise<string[]> {
    let left = await tmpFiles(svc.storageDir)
    for (let i = 0; i < 100 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 50))
      left = await tmpFiles(svc.storageDir)
    }
    return left
  }

  it('stores nothing, keeps the file it would have replaced, and leaves no temporary file', async () => {
    const api = svc.api
    expect((await fetch(`${api}/disk/upload/kept.bin`, { method: 'PUT', body: 'old' })).status).toBe(201)
    await cutUpload('kept.bin')
    await cutUpload('never.bin')
    // The service goes on serving uploads.
    expect((await fetch(`${api}/disk/upload/after.bin`, { method: 'PUT', body: 'new' })).status).toBe(201)
    expect(await tmpWhenEmpty()).toEqual([])
    expect(await (await fetch(`${api}/disk/download/kept.bin`)).text()).toBe('old')
    expect((await fetch(`${api}/disk/info/never.bin`)).status).toBe(404)
  })
})

describe('disk store errors only the disk can cause', () => {
  let svc: TestService
  beforeAll(async () => {
    svc = await startTestService()
  })
  afterAll(async () => svc.stop())

  it('answers 403 forbidden for a symbolic link leading out of the root', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'filestorage-outside-'))
    try {
      await writeFile(join(outside, 'secret'), 'secret')
      await symlink(outside, join(svc.storageDir, 'link'))
      await expectError(await fetch(`${svc.api}/disk/download/link/secret`), 403, 'forbidden')
      await expectError(await fetch(`${svc.api}/disk/upload/link/new`, { method: 'PUT', body: 'x' }), 403, 'forbidden')
      await expectError(await fetch(`${svc.api}/disk/delete/link/secret`, { method: 'DELETE' }), 403, 'forbidden')
      await expectError(await fetch(`${svc.api}/disk/list/link`), 403, 'forbidden')
    } finally {
      await rm(outside, { recursive: true, force: true })
    }
  })

  it('answers 503 store_unavailable when its folder disappears, and check reports it down', async () => {
    await rm(svc.storageDir, { recursive: true, force: true })
    await expectError(await fetch(`${svc.api}/disk/upload/a.txt`, { method: 'PUT', body: 'x' }), 503, 'store_unavailable')
    const check = await fetch(`${svc.api}/check`)
    expect(check.status).toBe(503)
    expect(await check.json()).toMatchObject({ status: 'unavailable', stores: { disk: { status: 'down', driver: 'disk' } } })
  })
})
