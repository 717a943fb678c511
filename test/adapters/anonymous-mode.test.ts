/**
 * Anonymous mode only on purpose (SPEC 6): without authentication configured the service listens on
 * loopback, refuses to start on another address unless AUTH_MODE=anonymous says so, refuses
 * writes from pages of origins CORS_ORIGINS does not allow, and every file request through a host
 * name it does not answer to (DNS rebinding). Configured keys make it token mode.
 */
import { spawnSync } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { get } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/adapters/service/config.js'
import { bearer, hmacKey, hmacToken, keysEnv, snapshot } from '../helpers/auth.js'
import { expectError, rawRequest } from '../helpers/http.js'
import { spawnService } from '../helpers/process-service.js'
import { waitFor } from '../helpers/wait.js'
import { startTestService, type TestService } from '../helpers/test-service.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const secrets = keysEnv(hmacKey('k'))

describe('the access mode from the configuration', () => {
  it('is anonymous on loopback with nothing set, token mode on every address with keys', () => {
    expect(loadConfig({})).toMatchObject({ AUTH_MODE: 'anonymous', HOST: '127.0.0.1' })
    expect(loadConfig({ HOST: '::1' })).toMatchObject({ AUTH_MODE: 'anonymous', HOST: '::1' })
    expect(loadConfig({ AUTH_HMAC_SECRETS: secrets })).toMatchObject({ AUTH_MODE: 'token', HOST: '0.0.0.0' })
    expect(loadConfig({ AUTH_JWKS_URL: 'https://idp.example/jwks.json' })).toMatchObject({ AUTH_MODE: 'token' })
    expect(loadConfig({ AUTH_MODE: 'anonymous', HOST: '0.0.0.0' })).toMatchObject({ AUTH_MODE: 'anonymous', HOST: '0.0.0.0' })
  })

  it('refuses another address without authentication, saying how to fix it', () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.20']) {
      expect(() => loadConfig({ HOST: host })).toThrow(/without authentication[\s\S]*AUTH_HMAC_SECRETS[\s\S]*AUTH_MODE=anonymous/)
    }
  })

  it('refuses contradictions and weak secrets, naming the variable', () => {
    expect(() => loadConfig({ AUTH_MODE: 'token' })).toThrow(/AUTH_MODE=token: set AUTH_ISSUER, AUTH_JWKS_URL or AUTH_HMAC_SECRETS/)
    expect(() => loadConfig({ AUTH_MODE: 'anonymous', AUTH_HMAC_SECRETS: secrets })).toThrow(/AUTH_MODE=anonymous: token keys are configured too/)
    expect(() => loadConfig({ AUTH_HMAC_SECRETS: 'k:short' })).toThrow(/AUTH_HMAC_SECRETS \(value not shown\): the secret of "k" is shorter than 32 bytes/)
    expect(() => loadConfig({ AUTH_HMAC_SECRETS: 'no-kid-here' })).toThrow(/AUTH_HMAC_SECRETS \(value not shown\): each key is kid:secret/)
    expect(() => loadConfig({ TRUSTED_PROXIES: '10.0.0.0/33' })).toThrow(/TRUSTED_PROXIES=/)
    expect(() => loadConfig({ AUTH_ISSUER: 'not a url' })).toThrow(/AUTH_ISSUER=/)
  })

  it('never shows a secret in its errors (they go to the logs): key lists left out, URL passwords masked', () => {
    const secret = 'a-real-secret-pasted-without-its-kid-0123456789abcdef'
    expect(() => loadConfig({ AUTH_HMAC_SECRETS: secret })).toThrow(/AUTH_HMAC_SECRETS \(value not shown\)/)
    expect(() => loadConfig({ AUTH_URL_SIGNING_KEYS: `u:${secret.slice(0, 8)}` })).toThrow(/AUTH_URL_SIGNING_KEYS \(value not shown\)/)
    expect(() => loadConfig({ MONGODB_URI: `mongo://app:${secret}@db:27017/` })).toThrow(/MONGODB_URI="mongo:\/\/app:\*\*\*@db:27017\/": must start with mongodb:\/\//)
    for (const env of [{ AUTH_HMAC_SECRETS: secret }, { AUTH_URL_SIGNING_KEYS: `u:${secret.slice(0, 8)}` }, { MONGODB_URI: `mongo://app:${secret}@db/` }]) {
      expect(() => loadConfig(env)).toThrow(expect.objectContaining({ message: expect.not.stringContaining(secret.slice(0, 8)) }))
    }
  })

  it('stops the process on 0.0.0.0 without authentication, with the message and exit code 2', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, HOST: '0.0.0.0', PORT: '0' }
    for (const name of ['AUTH_MODE', 'AUTH_ISSUER', 'AUTH_JWKS_URL', 'AUTH_HMAC_SECRETS', 'MONGODB_URI', 'CONSUL_HTTP_ADDR']) delete env[name]
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/adapters/node/main.ts'], { cwd: ROOT, env, encoding: 'utf8', timeout: 30_000 })
    expect(result.status).toBe(2)
    expect(result.stderr).toMatch(/refusing to serve HOST=0\.0\.0\.0 without authentication/)
    expect(result.stderr).toMatch(/AUTH_MODE=anonymous/)
  })

  it('serves everyone on every address with AUTH_MODE=anonymous, and on loopback by default', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'filestorage-anon-'))
    try {
      for (const env of [{ HOST: '0.0.0.0', AUTH_MODE: 'anonymous' }, { HOST: '' }] as Record<string, string>[]) {
        const svc = await spawnService({ ...env, STORAGE_DIR: dir })
        expect((await fetch(`${svc.api}/disk/upload/x.txt`, { method: 'PUT', body: 'x' })).status).toBeLessThan(300)
        expect(await svc.stop()).toEqual({ code: 0, signal: null })
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('signed URLs in anonymous mode', () => {
  it('are good on every worker: the primary gives them all one key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'filestorage-anon-workers-'))
    const svc = await spawnService({ STORAGE_DIR: dir, WORKERS: '2' })
    try {
      // Each worker opens the disk store (one instance record each) just before it listens.
      const instances = () => readdir(join(dir, '.filestorage/instances')).then((n) => n.filter((f) => f.endsWith('.json')).length, () => 0)
      await waitFor('both workers', async () => (await instances()) === 2)
      await new Promise((r) => setTimeout(r, 500))
      await fetch(`${svc.api}/disk/upload/shared.txt`, { method: 'PUT', body: 'on every worker' })
      const signed = (await (
        await fetch(`${svc.api}/disk/sign/shared.txt`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"operation":"download"}' })
      ).json()) as { url: string }
      expect(signed.url).toContain('kid=local')
      // A new connection each time: node:cluster hands connections to the workers in turn.
      const statuses = await Promise.all(
        Array.from({ length: 8 }, () =>
          new Promise<number>((resolve, reject) => get(signed.url, { agent: false }, (res) => resolve(res.resume().statusCode ?? 0)).on('error', reject)),
        ),
      )
      expect(statuses).toEqual(Array(8).fill(200))
    } finally {
      expect(await svc.stop()).toEqual({ code: 0, signal: null })
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('cross-site writes in anonymous mode', () => {
  let svc: TestService
  beforeAll(async () => {
    svc = await startTestService({ CORS_ORIGINS: 'https://app.example' })
  })
  afterAll(async () => svc?.stop())

  const formPost = (headers: Record<string, string>) => {
    const body = new FormData()
    body.append('file', new Blob(['planted']), 'planted.txt')
    return fetch(`${svc.api}/disk/upload/inbox`, { method: 'POST', body, headers })
  }

  it('refuses a form POST from another origin, and a delete; stores nothing', async () => {
    await expectError(await formPost({ Origin: 'https://evil.example' }), 403, 'forbidden')
    await expectError(await formPost({ Origin: 'null' }), 403, 'forbidden')
    await expectError(await formPost({ 'Sec-Fetch-Site': 'cross-site' }), 403, 'forbidden')
    await expectError(await fetch(`${svc.api}/disk/delete/inbox?recursive=true`, { method: 'DELETE', headers: { Origin: 'https://evil.example' } }), 403, 'forbidden')
    expect(await readdir(svc.storageDir)).not.toContain('inbox')
  })

  it('takes writes from its own origin, from CORS_ORIGINS, and from clients that are not browsers; reads from anywhere', async () => {
    expect((await formPost({ Origin: svc.origin })).status).toBe(201)
    expect((await formPost({ Origin: 'https://app.example' })).status).toBe(201)
    expect((await formPost({})).status).toBe(201)
    expect((await fetch(`${svc.api}/disk/list/inbox`, { headers: { Origin: 'https://evil.example' } })).status).toBe(200)
  })
})

describe('DNS rebinding in anonymous mode: only host names the service answers to', () => {
  // A page at http://evil.example:PORT whose name was rebound to 127.0.0.1: same-origin requests
  // carrying its own Host (and Origin). Sent over real HTTP to the loopback service.
  const services: TestService[] = []
  const start = async (env: Record<string, string> = {}) => {
    const svc = await startTestService(env)
    services.push(svc)
    await fetch(`${svc.api}/disk/upload/notes/secret.txt`, { method: 'PUT', body: Buffer.from('the developer\'s secret') })
    return svc
  }
  afterAll(async () => Promise.all(services.map((s) => s.stop())))

  const port = (svc: TestService) => new URL(svc.origin).port
  const as = (svc: TestService, host: string, method: string, path: string, options: { headers?: Record<string, string>; body?: string } = {}) =>
    rawRequest(svc.origin, method, `/filestorage/v1${path}`, { ...options, headers: { ...options.headers, host } })
  const download = (svc: TestService, host: string) => as(svc, host, 'GET', '/disk/download/notes/secret.txt')
  const served = async (svc: TestService, host: string) => {
    const res = await download(svc, host)
    return res.status === 200 && res.body.toString() === 'the developer\'s secret'
  }

  let svc: TestService
  beforeAll(async () => {
    svc = await start()
  })

  it('refuses every file route called through another name (403 JSON, saying how to allow it); the store is unchanged', async () => {
    const evil = `evil.example:${port(svc)}`
    const page = { origin: `http://${evil}` }
    const before = await snapshot(svc.storageDir)
    const refused = await expectError(await download(svc, evil), 403, 'forbidden')
    expect(refused.error.message).toMatch(/"evil\.example"[\s\S]*ALLOWED_HOSTS/)
    const attempts: [string, string, { headers?: Record<string, string>; body?: string }?][] = [
      ['GET', '/disk/list/notes?recursive=true'],
      ['GET', '/disk/info/notes/secret.txt'],
      ['PUT', '/disk/upload/notes/secret.txt', { headers: page, body: 'overwritten' }],
      ['PUT', '/disk/upload/planted.txt', { headers: page, body: 'planted' }],
      ['DELETE', '/disk/delete/notes?recursive=true', { headers: page }],
      ['POST', '/disk/move/notes/secret.txt', { headers: { ...page, 'content-type': 'application/json' }, body: '{"to":"stolen.txt"}' }],
      ['POST', '/disk/sign/notes/secret.txt', { headers: { ...page, 'content-type': 'application/json' }, body: '{"operation":"download"}' }],
      ['POST', '/disk/tus', { headers: { ...page, 'tus-resumable': '1.0.0', 'upload-length': '7', 'upload-metadata': 'filename cC50eHQ=' } }],
    ]
    for (const [method, path, options] of attempts) {
      await expectError(await as(svc, evil, method, path, options), 403, 'forbidden')
      // Case and a trailing dot are the same name.
      await expectError(await as(svc, `EVIL.example.:${port(svc)}`, method, path, options), 403, 'forbidden')
    }
    expect(await snapshot(svc.storageDir)).toEqual(before)
  })

  it('tells the health check the status only through another name, never the details', async () => {
    const own = (await as(svc, `127.0.0.1:${port(svc)}`, 'GET', '/check')).json<{ stores: { disk: object } }>()
    expect(own.stores.disk).toHaveProperty('driver')
    const res = await as(svc, `evil.example:${port(svc)}`, 'GET', '/check')
    expect(res.status).toBe(200)
    expect(res.json<{ stores: { disk: object } }>().stores.disk).toEqual({ status: 'up' })
  })

  it('serves IP literals, localhost and *.localhost without configuration', async () => {
    for (const host of [`127.0.0.1:${port(svc)}`, '127.0.0.1', `localhost:${port(svc)}`, 'LocalHost.', `files.localhost:${port(svc)}`, 'a.b.localhost']) {
      expect({ host, served: await served(svc, host) }).toEqual({ host, served: true })
    }
    const v6 = await startTestService({ HOST: '::1' }).then((s) => (services.push(s), s))
    expect(v6.origin).toMatch(/^http:\/\/\[::1\]:\d+$/)
    expect((await as(v6, `[::1]:${port(v6)}`, 'PUT', '/disk/upload/v6.txt', { body: 'over IPv6' })).status).toBe(201)
    await expectError(await as(v6, `evil.example:${port(v6)}`, 'GET', '/disk/download/v6.txt'), 403, 'forbidden')
    // Names that only look local are names: they can be rebound.
    for (const host of ['localhost.evil.example', '127.0.0.1.nip.io', 'notlocalhost']) await expectError(await download(svc, host), 403, 'forbidden')
  })

  it('serves the names of ALLOWED_HOSTS (exact, or a .domain and its subdomains) and of PUBLIC_URL, and no other', async () => {
    const named = await start({ ALLOWED_HOSTS: 'files.internal, .corp.example', PUBLIC_URL: 'https://files.example.org/storage' })
    for (const host of [`files.internal:${port(named)}`, 'FILES.internal', 'corp.example', 'a.b.corp.example:443', 'files.example.org']) {
      expect({ host, served: await served(named, host) }).toEqual({ host, served: true })
    }
    for (const host of ['evil.example', 'files.internal.evil.example', 'other.internal', 'evilcorp.example', 'www.files.example.org']) {
      await expectError(await download(named, host), 403, 'forbidden')
    }
  })

  it('serves any name with ALLOWED_HOSTS=*', async () => {
    const any = await start({ ALLOWED_HOSTS: '*' })
    expect(await served(any, `evil.example:${port(any)}`)).toBe(true)
  })

  it('leaves token mode alone: the token is the defence there', async () => {
    const key = hmacKey('k')
    const tokens = await start({ AUTH_HMAC_SECRETS: keysEnv(key) })
    const host = `files.example.net:${port(tokens)}`
    await expectError(await download(tokens, host), 401, 'unauthorized')
    const token = await hmacToken(key, 'ana', ['files:*:disk:'])
    expect((await as(tokens, host, 'PUT', '/disk/upload/t.txt', { headers: bearer(token), body: 'with a token' })).status).toBe(201)
    expect((await as(tokens, host, 'GET', '/disk/download/t.txt', { headers: bearer(token) })).body.toString()).toBe('with a token')
  })

  it('refuses an ALLOWED_HOSTS item that is not a host name, naming the variable', () => {
    for (const value of ['http://files.internal', 'files.internal:8081', 'files internal', '*.example.com']) {
      expect(() => loadConfig({ ALLOWED_HOSTS: value })).toThrow(/ALLOWED_HOSTS=.*host name without scheme or port/)
    }
    expect(loadConfig({ ALLOWED_HOSTS: ' files.internal, ,.corp.example ' }).ALLOWED_HOSTS).toEqual(['files.internal', '.corp.example'])
  })
})
