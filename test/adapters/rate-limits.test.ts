/**
 * Rate limits over HTTP (src/adapters/service/rate-limits.ts): requests refused with 429 and the
 * RateLimit fields, a budget per principal (per address without one), bytes throttled; and with a
 * real Redis, one budget shared by two instances, and what each policy does while Redis is down.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { RUNTIMES } from '../helpers/process-service.js'
import { type HttpService, type TestService, startServiceOn, startTestService } from '../helpers/test-service.js'
import { bearer, hmacKey, hmacToken, keysEnv } from '../helpers/auth.js'
import { expectError } from '../helpers/http.js'
import { type MemoryLog, memoryLog } from '../helpers/log-lines.js'
import { redisServerBin, startRedis, type TestRedis } from '../helpers/redis.js'
import { waitFor } from '../helpers/wait.js'

const redisBin = redisServerBin()

/** Sends `count` requests, `concurrency` at a time; the statuses in order. */
async function burst(send: (i: number) => Promise<Response>, count: number, concurrency = 4): Promise<number[]> {
  const statuses: number[] = new Array(count)
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        const res = await send(i)
        await res.arrayBuffer()
        statuses[i] = res.status
      }
    }),
  )
  return statuses
}

const count = (statuses: number[], status: number) => statuses.filter((s) => s === status).length

const limiterStatus = async (svc: TestService) => ((await (await fetch(`${svc.api}/check`)).json()) as { rateLimiter?: { status: string } }).rateLimiter?.status

describe.each(RUNTIMES)('rate limits in one process on %s', (runtime) => {
  let svc: HttpService
  afterEach(async () => svc?.stop())

  it('refuses requests over the limit with 429, Retry-After and the RateLimit fields; never the health check', async () => {
    svc = await startServiceOn(runtime, { RATE_LIMIT_REQUESTS: '5/60s' })
    // The document says so on every operation that can be refused (and its request counts too).
    const doc = (await (await fetch(`${svc.api}/openapi.json`)).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }
    expect(doc.paths['/filestorage/v1/{store}/download/{path}']!.get!.responses['429']).toBeDefined()
    expect(doc.paths['/filestorage/v1/check']!.get!.responses['429']).toBeUndefined()
    const first = await fetch(`${svc.api}/disk/list/`)
    expect(first.status).toBe(200)
    expect(first.headers.get('ratelimit-policy')).toBe('"requests";q=5;w=60')
    expect(first.headers.get('ratelimit')).toMatch(/^"requests";r=3;t=(60|59)$/)
    const statuses = await burst(() => fetch(`${svc.api}/disk/list/`), 8)
    expect(count(statuses, 200)).toBe(3)
    expect(count(statuses, 429)).toBe(5)
    const refused = await fetch(`${svc.api}/disk/info/x`)
    const body = await expectError(refused, 429, 'rate_limited')
    const retryAfter = Number(refused.headers.get('retry-after'))
    expect(retryAfter).toBeGreaterThanOrEqual(1)
    expect(retryAfter).toBeLessThanOrEqual(60)
    expect(body.error.details).toEqual({ retryAfterSeconds: retryAfter })
    expect(refused.headers.get('ratelimit')).toBe(`"requests";r=0;t=${retryAfter}`)
    for (let i = 0; i < 10; i++) expect((await fetch(`${svc.api}/check`)).status).toBe(200)
  })

  it('throttles downloads and uploads to the bytes budget, streaming, and never refuses them', async () => {
    const budget = 64 * 1024
    svc = await startServiceOn(runtime, { RATE_LIMIT_BYTES: '64KiB/1s' })
    const size = 3 * budget
    const content = new Uint8Array(size).map((_, i) => i & 0xff)
    const started = Date.now()
    const put = await fetch(`${svc.api}/disk/upload/big.bin`, { method: 'PUT', body: content })
    expect(put.status).toBe(201)
    expect(put.headers.get('ratelimit-policy')).toBe(`"bytes";q=${budget};qu="content-bytes";w=1`)
    // Fixed windows: at most two windows' worth can pass before the end of the first window.
    expect(Date.now() - started).toBeGreaterThanOrEqual(((size - 2 * budget) / budget) * 1000 - 200)
    const res = await fetch(`${svc.api}/disk/download/big.bin`)
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    const readStarted = Date.now()
    let received = 0
    let receivedInFirstHalfSecond = 0
    const chunks: Uint8Array[] = []
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      chunks.push(value)
      received += value.byteLength
      if (Date.now() - readStarted < 500) receivedInFirstHalfSecond = received
    }
    expect(Buffer.concat(chunks).equals(Buffer.from(content))).toBe(true)
    expect(receivedInFirstHalfSecond).toBeLessThanOrEqual(2 * budget)
  })
})

describe('rate limits per principal', () => {
  let svc: TestService
  afterEach(async () => svc?.stop())

  it('keeps a budget per principal, and per client address for requests without one', async () => {
    const key = hmacKey('k1')
    svc = await startTestService({ RATE_LIMIT_REQUESTS: '3/60s', AUTH_HMAC_SECRETS: keysEnv(key), HOST: '127.0.0.1' })
    const ana = bearer(await hmacToken(key, 'ana', ['files:*:disk:users/ana']))
    const bob = bearer(await hmacToken(key, 'bob', ['files:*:disk:users/bob']))
    expect(count(await burst(() => fetch(`${svc.api}/disk/info/users/ana/x`, { headers: ana }), 5), 429)).toBe(2)
    // bob has his own budget; ana's second token (same subject) shares hers.
    expect(count(await burst(() => fetch(`${svc.api}/disk/info/users/bob/x`, { headers: bob }), 3), 429)).toBe(0)
    const ana2 = bearer(await hmacToken(key, 'ana', ['files:read:disk:users/ana']))
    expect((await fetch(`${svc.api}/disk/info/users/ana/x`, { headers: ana2 })).status).toBe(429)
    // Without credentials: by address (refused with 401 while the budget lasts, then 429).
    const anonymous = await burst(() => fetch(`${svc.api}/disk/info/x`), 5)
    expect(count(anonymous, 401)).toBe(3)
    expect(count(anonymous, 429)).toBe(2)
  })
})

describe('rate limits behind nginx', () => {
  let svc: TestService
  afterAll(async () => svc?.stop())

  it('hands nginx the bytes rate of a download it sends itself (X-Accel-Limit-Rate)', async () => {
    svc = await startTestService({ RATE_LIMIT_BYTES: '64KiB/2s', ACCEL_REDIRECT_LOCATION: '/_filestorage/disk/' })
    expect((await fetch(`${svc.api}/disk/upload/f.bin`, { method: 'PUT', body: new Uint8Array(1000) })).status).toBe(201)
    const res = await fetch(`${svc.api}/disk/download/f.bin`)
    expect(res.status).toBe(200)
    expect(res.headers.get('x-accel-redirect')).toMatch(/^\/_filestorage\/disk\//)
    expect(res.headers.get('x-accel-limit-rate')).toBe(String(32 * 1024))
  })
})

describe.skipIf(!redisBin)('rate limits shared through Redis', () => {
  let redis: TestRedis
  const services: TestService[] = []
  const logs = new Map<TestService, MemoryLog>()
  beforeAll(async () => {
    redis = await startRedis(redisBin!)
  })
  afterAll(async () => {
    for (const s of services) await s.stop()
    await redis?.close()
  })

  async function instance(env: Record<string, string>): Promise<TestService> {
    const log = memoryLog()
    const svc = await startTestService({ RATE_LIMIT_REDIS_URL: redis.url, RATE_LIMIT_REDIS_TIMEOUT: '500ms', ...env }, { logger: log.logger })
    services.push(svc)
    logs.set(svc, log)
    return svc
  }

  it('two instances draw on one budget; with Redis down each applies its policy and /check says degraded with 200', async () => {
    const limit = '20/120s'
    const local = await instance({ RATE_LIMIT_REQUESTS: limit, RATE_LIMIT_REDIS_DOWN: 'local' })
    const refuse = await instance({ RATE_LIMIT_REQUESTS: limit, RATE_LIMIT_REDIS_DOWN: 'refuse' })
    const allow = await instance({ RATE_LIMIT_REQUESTS: limit, RATE_LIMIT_REDIS_DOWN: 'allow' })
    await waitFor('the limiters to reach Redis', async () => {
      for (const s of [local, refuse, allow]) if ((await limiterStatus(s)) !== 'ok') return false
      return true
    })
    // Alternating between instances, from one address: one budget of 20 in all, not 20 each.
    const targets = [local, refuse, allow]
    const started = Date.now()
    const statuses = await burst((i) => fetch(`${targets[i % 3]!.api}/disk/list/`), 60, 6)
    const windows = Math.floor((Date.now() - started) / 120_000) + 1
    expect(count(statuses, 200)).toBeLessThanOrEqual(20 * windows)
    expect(count(statuses, 200)).toBeGreaterThanOrEqual(20)
    expect(count(statuses, 429)).toBe(60 - count(statuses, 200))

    await redis.stop('SIGKILL')
    // local: the process counts on its own, a fresh budget of 20; refuse: 429; allow: no limit.
    const onLocal = await burst(() => fetch(`${local.api}/disk/list/`), 25)
    expect(count(onLocal, 200)).toBe(20)
    expect(count(onLocal, 429)).toBe(5)
    const onRefuse = await burst(() => fetch(`${refuse.api}/disk/list/`), 5)
    expect(count(onRefuse, 429)).toBe(5)
    const refused = await fetch(`${refuse.api}/disk/list/`)
    expect((await expectError(refused, 429, 'rate_limited')).error.message).toMatch(/cannot count/)
    expect(refused.headers.get('retry-after')).toBe('1')
    expect(count(await burst(() => fetch(`${allow.api}/disk/list/`), 25), 200)).toBe(25)
    for (const s of [local, refuse, allow]) {
      const check = await fetch(`${s.api}/check`)
      expect(check.status).toBe(200)
      const body = (await check.json()) as { status: string; stores: { disk: { status: string } }; rateLimiter: { status: string; message: string } }
      expect(body.status).toBe('degraded')
      expect(body.stores.disk.status).toBe('up')
      expect(body.rateLimiter.status).toBe('degraded')
      expect(body.rateLimiter.message).toMatch(/RATE_LIMIT_REDIS_DOWN=(local|refuse|allow)/)
      expect(/rate limits: .*Redis/.test(logs.get(s)!.text())).toBe(true)
    }

    await redis.start()
    await waitFor('the limiters to reach Redis again', async () => {
      for (const s of [local, refuse, allow]) if ((await limiterStatus(s)) !== 'ok') return false
      return true
    }, { timeoutMs: 30_000 })
    expect(/answers again/.test(logs.get(local)!.text())).toBe(true)
    // Shared again (Redis came back empty: a fresh budget of 20 for all of them).
    const again = await burst((i) => fetch(`${targets[i % 3]!.api}/disk/list/`), 30, 6)
    expect(count(again, 200)).toBe(20)
  })
})
