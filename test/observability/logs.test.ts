/**
 * The logs: one JSON line per request with its id, subject, store, path, status, bytes, duration
 * (and trace id when tracing is on); never a secret the service was given or a request carried,
 * whatever the run logged (start-up, requests, errors of a dead store, of an unreachable Consul);
 * the request id taken when sane and returned on every answer; LOG_LEVEL and the readable format.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, hmacKey, hmacToken, keysEnv } from '../helpers/auth.js'
import { loadConfig } from '../../src/adapters/service/config.js'
import { memoryLog } from '../helpers/log-lines.js'
import { RUNTIMES, spawnService } from '../helpers/process-service.js'
import { startTestService, type TestService } from '../helpers/test-service.js'
import { waitFor } from '../helpers/wait.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** The JSON lines of a process's output (its other lines: none are expected). */
const jsonLines = (output: string) =>
  output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)

for (const runtime of RUNTIMES) {
  describe(`the logs of the service on ${runtime}`, () => {
    it('never show a secret of the configuration or of a request', async () => {
      const storage = await mkdtemp(join(tmpdir(), 'filestorage-logs-'))
      const key = hmacKey('logs')
      const signing = hmacKey('urls')
      const consulToken = `consul-${randomBytes(16).toString('hex')}`
      const mongoPassword = `pw-${randomBytes(12).toString('hex')}`
      const webhookSecret = `whsec_${randomBytes(24).toString('base64')}`
      const svc = await spawnService(
        {
          STORAGE_DIR: storage,
          LOG_REQUESTS: 'true',
          LOG_LEVEL: 'debug',
          AUTH_HMAC_SECRETS: keysEnv(key),
          AUTH_URL_SIGNING_KEYS: keysEnv(signing),
          CONSUL_HTTP_ADDR: '127.0.0.1:9', // nothing listens: its failures are logged
          CONSUL_HTTP_TOKEN: consulToken,
          CONSUL_RESYNC_INTERVAL: '200ms',
          MONGODB_URI: `mongodb://filestorage:${mongoPassword}@127.0.0.1:9/?serverSelectionTimeoutMS=300`,
          WEBHOOK_SECRET: webhookSecret,
          WEBHOOK_URL: 'http://127.0.0.1:9/hook',
        },
        { runtime },
      )
      try {
        const token = await hmacToken(key, 'ana', ['files:*:*:'])
        const put = await fetch(`${svc.api}/disk/upload/logs/a.txt`, { method: 'PUT', headers: bearer(token), body: 'four' })
        expect(put.status).toBe(201)
        const { url: signedUrl } = (await (
          await fetch(`${svc.api}/disk/sign/logs/a.txt`, {
            method: 'POST',
            headers: { ...bearer(token), 'Content-Type': 'application/json' },
            body: '{"operation":"download"}',
          })
        ).json()) as { url: string }
        expect((await fetch(signedUrl)).status).toBe(200)
        const sig = new URL(signedUrl).searchParams.get('sig')!
        const forged = signedUrl.replace(sig, `${sig.slice(0, -4)}AAAA`)
        expect((await fetch(forged)).status).toBe(403)
        expect((await fetch(`${svc.api}/disk/info/logs/a.txt?access_token=${token}`)).status).toBe(401)
        expect((await fetch(`${svc.api}/disk/info/logs/a.txt`, { headers: bearer(`${token}x`) })).status).toBe(401)
        expect((await fetch(`${svc.api}/mongo/upload/logs/b.txt`, { method: 'PUT', headers: bearer(token), body: 'x' })).status).toBe(503)
        await waitFor('Consul failures in the log', () => (svc.output().match(/did not answer/g) ?? []).length >= 2)
        await waitFor('the last request line', () => svc.output().includes('"status":503'))

        const output = svc.output()
        const secrets = {
          'the HMAC secret': key.secret,
          'the URL signing secret': signing.secret,
          'the bearer token': token,
          "the token's signature": token.split('.')[2]!,
          "the signed URL's signature": sig,
          'the forged signature': new URL(forged).searchParams.get('sig')!,
          'the Consul token': consulToken,
          "MongoDB's password": mongoPassword,
          'the webhook secret': webhookSecret,
        }
        for (const [what, secret] of Object.entries(secrets)) expect(output.includes(secret), `${what} is in the log`).toBe(false)

        const lines = jsonLines(output)
        const signed = lines.find((l) => l.path === '/filestorage/v1/disk/download/logs/a.txt' && l.status === 200)!
        expect(signed.query).toMatch(/(^|&)sig=\[redacted\](&|$)/)
        expect(signed.sub).toBe('signed-url:urls')
        expect(lines.find((l) => l.status === 401 && String(l.query ?? '').includes('access_token'))!.query).toBe('access_token=[redacted]')
        const upload = lines.find((l) => l.msg === 'PUT /filestorage/v1/disk/upload/logs/a.txt 201')!
        expect(upload).toMatchObject({ level: 'info', method: 'PUT', status: 201, store: 'disk', operation: 'upload', sub: 'ana', bytesIn: 4 })
        expect(upload.requestId).toMatch(UUID)
        expect(upload.requestId).toBe(put.headers.get('x-request-id'))
        expect(typeof upload.durationMs).toBe('number')
        expect(lines.find((l) => l.status === 503)).toMatchObject({ level: 'error', store: 'mongo' })
      } finally {
        await svc.stop()
        await rm(storage, { recursive: true, force: true })
      }
    })

    it('are readable on a terminal (LOG_FORMAT=pretty)', async () => {
      const storage = await mkdtemp(join(tmpdir(), 'filestorage-logs-'))
      const pretty = await spawnService({ STORAGE_DIR: storage, LOG_REQUESTS: 'true', LOG_FORMAT: 'pretty' }, { runtime })
      try {
        await fetch(`${pretty.api}/disk/upload/p.txt`, { method: 'PUT', body: 'abc', headers: { 'X-Request-Id': 'pretty-1' } })
        const line = await waitFor('the request line', () => pretty.output().split('\n').find((l) => l.includes('PUT /filestorage/v1/disk/upload/p.txt 201')))
        expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}PUT \/filestorage\/v1\/disk\/upload\/p\.txt 201 .*requestId=pretty-1 .*store=disk .*sub=anonymous .*bytesIn=3/)
        expect(pretty.output()).not.toMatch(/^\{/m)
      } finally {
        await pretty.stop()
      }
      await rm(storage, { recursive: true, force: true })
    })
  })
}

it('LOG_LEVEL=warn leaves the request lines out', async () => {
  const config = loadConfig({ LOG_LEVEL: 'warn' })
  const log = memoryLog(config.LOG_LEVEL)
  const svc = await startTestService({ LOG_REQUESTS: 'true', LOG_LEVEL: 'warn' }, { logger: log.logger })
  try {
    expect((await fetch(`${svc.api}/help`)).status).toBe(200)
    log.logger.warn('a warning')
    expect(log.entries().map((e) => e.msg)).toEqual(['a warning'])
  } finally {
    await svc.stop()
  }
})

it('tells an unexpected error (a 500) through the logger, with the request id, as JSON', async () => {
  const log = memoryLog()
  const svc = await startTestService({ LOG_REQUESTS: 'true' }, { logger: log.logger })
  try {
    const disk = svc.service.stores.get('disk')
    disk.stat = disk.lookup = () => {
      throw new TypeError('a bug in a store')
    }
    const res = await fetch(`${svc.api}/disk/info/a.txt`)
    expect(res.status).toBe(500)
    const id = res.headers.get('x-request-id')
    const lines = log.entries().filter((e) => e.requestId === id)
    expect(lines.map((e) => [e.level, e.msg])).toEqual([
      ['error', 'unexpected error on GET /filestorage/v1/disk/info/a.txt'],
      ['error', 'GET /filestorage/v1/disk/info/a.txt 500'],
    ])
    expect((lines[0]!.err as { message: string; stack: string }).message).toBe('a bug in a store')
    expect((lines[0]!.err as { stack: string }).stack).toContain('TypeError')
  } finally {
    await svc.stop()
  }
})

describe('the request id', () => {
  const log = memoryLog()
  let svc: TestService
  const key = hmacKey('rid')
  beforeAll(async () => {
    svc = await startTestService({ AUTH_HMAC_SECRETS: keysEnv(key), LOG_REQUESTS: 'true' }, { logger: log.logger })
  })
  afterAll(async () => svc?.stop())

  it("is the client's when sane, else a new one, and comes back on every answer, errors included", async () => {
    const token = await hmacToken(key, 'ana', ['files:*:disk:'])
    let n = 0
    const cases: [() => string, RequestInit, number][] = [
      [() => `${svc.api}/disk/upload/r${n++}.txt`, { method: 'PUT', headers: bearer(token), body: 'r' }, 201],
      [() => `${svc.api}/disk/download/none`, { headers: bearer(token) }, 404],
      [() => `${svc.api}/disk/download/r0.txt`, {}, 401],
      [() => `${svc.api}/disk/upload/r0.txt`, { method: 'DELETE', headers: bearer(token) }, 405],
      [() => `${svc.origin}/nowhere`, {}, 404],
      [() => `${svc.api}/check`, {}, 200],
    ]
    for (const [url, init, status] of cases) {
      for (const [sent, kept] of [
        ['client-7f3a:9/b=c', true],
        [`${'x'.repeat(129)}`, false],
        ['has space', false],
        ['ünïcode', false],
        [undefined, false],
      ] as const) {
        const headers = new Headers(init.headers)
        if (sent !== undefined) headers.set('X-Request-Id', sent)
        const res = await fetch(url(), { ...init, headers })
        expect(res.status).toBe(status)
        const id = res.headers.get('x-request-id')!
        if (kept) expect(id).toBe(sent)
        else expect(id).toMatch(UUID)
        const logged = await waitFor(`the log line of ${id}`, () => log.entries().findLast((e) => e.requestId === id && e.status === status))
        expect(logged.status).toBe(status)
      }
    }
  })
})
