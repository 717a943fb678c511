/**
 * Reuse: one handler mounted alone inside someone else's Hono app, served over real HTTP; and the
 * composed app with two stores, for moves between stores.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { serve as nodeServe } from '@hono/node-server'
import { Hono } from 'hono'
import { anonymousAuthorizer, type Authorizer, createTokenVerifier, tokenAuthorizer, unauthorized } from '../../src/auth/index.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningServer, serve } from '../../src/adapters/node/server.js'
import { createDownloadHandler, createFileStorageApp, createUploadHandler } from '../../src/handlers/index.js'
import { DiskDriver, StoreRegistry } from '../../src/storage/index.js'
import { bearer, hmacKey, hmacToken } from '../helpers/auth.js'
import { expectError, rawRequest } from '../helpers/http.js'
import { sha256 } from '../helpers/streams.js'

const dirs: string[] = []
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'filestorage-standalone-'))
  dirs.push(d)
  return d
}
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))))

describe('a handler mounted alone in another app', () => {
  let server: RunningServer
  beforeAll(async () => {
    const stores = new StoreRegistry({ files: await DiskDriver.open({ dir: await tempDir() }) })
    const host = new Hono()
    host.get('/', (c) => c.text('the host app'))
    // Only the download handler, under the host's own prefix; files are put in through the store directly.
    host.route('/assets', createDownloadHandler({ stores }))
    await stores.get('files').put('logo.svg', new Blob(['<svg/>']).stream())
    server = await serve(host.fetch, { host: '127.0.0.1', port: 0 })
  })
  afterAll(async () => server?.stop(1000))

  it('serves its route under the host prefix, with its headers', async () => {
    const res = await fetch(`${server.url}/assets/files/download/logo.svg`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8')
    expect(res.headers.get('etag')).toBe(`"${sha256('<svg/>')}"`)
    expect(await res.text()).toBe('<svg/>')
    expect(await (await fetch(`${server.url}/`)).text()).toBe('the host app')
  })

  it('without access control given, leaves host names to the host app too', async () => {
    const res = await rawRequest(server.url, 'GET', '/assets/files/download/logo.svg', { headers: { host: 'files.example.net' } })
    expect(res.body.toString()).toBe('<svg/>')
  })

  it('answers its errors as JSON on its own', async () => {
    await expectError(await fetch(`${server.url}/assets/files/download/missing.svg`), 404, 'not_found')
    await expectError(await fetch(`${server.url}/assets/other/download/logo.svg`), 404, 'unknown_store')
    await expectError(await fetch(`${server.url}/assets/files/download/a%00b`), 400, 'invalid_path')
  })

  it('does not bring the other operations along', async () => {
    expect((await fetch(`${server.url}/assets/files/upload/x.txt`, { method: 'PUT', body: 'x' })).status).toBe(404)
  })

  it('works with fetch-style app.request too, no server needed', async () => {
    const stores = new StoreRegistry({ s: await DiskDriver.open({ dir: await tempDir() }) })
    const app = new Hono().route('/', createUploadHandler({ stores, maxUploadBytes: 10 }))
    const ok = await app.request('/s/upload/a.txt', { method: 'PUT', body: 'tiny' })
    expect(ok.status).toBe(201)
    await expectError(await app.request('/s/upload/b.txt', { method: 'PUT', body: 'far too large' }), 413, 'payload_too_large')
  })
})

describe('a handler mounted alone is as strict as the service', () => {
  const key = hmacKey('k')
  let origin: string
  let close: () => Promise<void>
  /** A developer's own authorizer: a user named by a header their gateway sets, allowed under their folder. */
  const gatewayUsers: Authorizer = {
    authenticate: (c) => {
      const user = c.req.header('x-gateway-user')
      if (!user) throw unauthorized('no user')
      return { id: `gw:${user}`, sub: user, kind: 'gateway' }
    },
    allows: (principal, request) => request.path === principal.sub || request.path.startsWith(`${principal.sub}/`),
  }
  beforeAll(async () => {
    const stores = new StoreRegistry({ files: await DiskDriver.open({ dir: await tempDir() }) })
    await stores.get('files').put('docs/a.txt', new Blob(['secret a']).stream())
    await stores.get('files').put('secret.txt', new Blob(['top secret']).stream())
    await stores.get('files').put('ana/b.txt', new Blob(['ana b']).stream())
    const host = new Hono()
    host.get('/public', (c) => c.text('no token needed here'))
    const access = { authorizer: tokenAuthorizer(createTokenVerifier({ hmacSecrets: [key] })) }
    host.route('/assets', createDownloadHandler({ stores, access }))
    host.route('/mine', createDownloadHandler({ stores, access: { authorizer: gatewayUsers } }))
    host.route('/local', createDownloadHandler({ stores, access: { authorizer: anonymousAuthorizer({ allowedHosts: ['files.internal'] }) } }))
    // @hono/node-server's own serve: nothing of the node adapter's checks runs before the handler.
    const server = nodeServe({ fetch: host.fetch, hostname: '127.0.0.1', port: 0 })
    await new Promise<void>((resolve) => server.once('listening', resolve))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    close = () => new Promise<void>((resolve) => server.close(() => resolve()))
  })
  afterAll(async () => close?.())

  it('refuses a raw %2e%2e target itself, though node-server resolved it to another file', async () => {
    const token = await hmacToken(key, 'ana', ['files:read:files:docs'])
    const res = await rawRequest(origin, 'GET', '/assets/files/download/docs/%2e%2e/secret.txt', { headers: bearer(token) })
    await expectError(res, 400, 'invalid_path')
    await expectError(await rawRequest(origin, 'GET', '/assets/files/download/docs/../secret.txt', { headers: bearer(token) }), 400, 'invalid_path')
  })

  it('answers 401 without a token and 403 outside the token\'s rights; the host\'s own routes stay its own', async () => {
    await expectError(await fetch(`${origin}/assets/files/download/docs/a.txt`), 401, 'unauthorized')
    const token = await hmacToken(key, 'ana', ['files:read:files:docs'])
    expect(await (await fetch(`${origin}/assets/files/download/docs/a.txt`, { headers: bearer(token) })).text()).toBe('secret a')
    await expectError(await fetch(`${origin}/assets/files/download/secret.txt`, { headers: bearer(token) }), 403, 'forbidden')
    expect(await (await fetch(`${origin}/public`)).text()).toBe('no token needed here')
  })

  it('takes a developer\'s own authorizer in place of tokens', async () => {
    await expectError(await fetch(`${origin}/mine/files/download/ana/b.txt`), 401, 'unauthorized')
    expect(await (await fetch(`${origin}/mine/files/download/ana/b.txt`, { headers: { 'x-gateway-user': 'ana' } })).text()).toBe('ana b')
    await expectError(await fetch(`${origin}/mine/files/download/secret.txt`, { headers: { 'x-gateway-user': 'ana' } }), 403, 'forbidden')
  })

  it('refuses, with the anonymous authorizer, a host name it was not given (DNS rebinding), as the service does', async () => {
    const get = (host: string) => rawRequest(origin, 'GET', '/local/files/download/docs/a.txt', { headers: { host } })
    await expectError(await get(`evil.example:${new URL(origin).port}`), 403, 'forbidden')
    for (const host of [new URL(origin).host, 'localhost', 'files.internal']) expect((await get(host)).body.toString()).toBe('secret a')
  })
})

describe('moving between stores', () => {
  let server: RunningServer
  let api: string
  beforeAll(async () => {
    const stores = new StoreRegistry({
      hot: await DiskDriver.open({ dir: await tempDir() }),
      cold: await DiskDriver.open({ dir: await tempDir() }),
    })
    server = await serve(createFileStorageApp({ stores }).fetch, { host: '127.0.0.1', port: 0 })
    api = `${server.url}/filestorage/v1`
  })
  afterAll(async () => server?.stop(1000))

  const move = (store: string, path: string, body: object) =>
    fetch(`${api}/${store}/move/${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })

  it('streams a file into the other store, then deletes it here', async () => {
    // A byte body: fetch would label a string body text/plain.
    await fetch(`${api}/hot/upload/report.csv`, { method: 'PUT', body: Buffer.from('a,b\n1,2\n'), headers: { 'x-file-metadata': '{"k":1}' } })
    const res = await move('hot', 'report.csv', { to: 'archive/report.csv', toStore: 'cold' })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ store: 'cold', path: 'archive/report.csv', sha256: sha256('a,b\n1,2\n'), metadata: { k: 1 }, contentType: 'text/csv; charset=utf-8' })
    await expectError(await fetch(`${api}/hot/info/report.csv`), 404, 'not_found')
    expect(await (await fetch(`${api}/cold/download/archive/report.csv`)).text()).toBe('a,b\n1,2\n')
  })

  it('moves a folder across, and refuses to replace without overwrite', async () => {
    for (const f of ['a.txt', 'sub/b.txt']) await fetch(`${api}/hot/upload/proj/${f}`, { method: 'PUT', body: f })
    await fetch(`${api}/cold/upload/taken/x.txt`, { method: 'PUT', body: 'x' })
    await expectError(await move('hot', 'proj', { to: 'taken', toStore: 'cold' }), 409, 'already_exists')
    const res = await move('hot', 'proj', { to: 'proj', toStore: 'cold' })
    expect(await res.json()).toEqual({ type: 'directory', store: 'cold', path: 'proj', name: 'proj' })
    const listing = (await (await fetch(`${api}/cold/list/proj?recursive=true`)).json()) as { entries: { path: string }[] }
    expect(listing.entries.map((e) => e.path)).toEqual(['proj/a.txt', 'proj/sub/b.txt'])
    await expectError(await fetch(`${api}/hot/info/proj`), 404, 'not_found')
  })

  it('checks If-Match on the source across stores', async () => {
    await fetch(`${api}/hot/upload/im.txt`, { method: 'PUT', body: Buffer.from('v') })
    const withTag = (etag: string) =>
      fetch(`${api}/hot/move/im.txt`, {
        method: 'POST',
        body: JSON.stringify({ to: 'im.txt', toStore: 'cold' }),
        headers: { 'content-type': 'application/json', 'if-match': etag },
      })
    await expectError(await withTag('"nope"'), 412, 'precondition_failed')
    await expectError(await fetch(`${api}/cold/info/im.txt`), 404, 'not_found')
    expect((await fetch(`${api}/hot/info/im.txt`)).status).toBe(200)
    expect((await withTag(`"${sha256('v')}"`)).status).toBe(200)
    expect((await fetch(`${api}/cold/info/im.txt`)).status).toBe(200)
  })
})
