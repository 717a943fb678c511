/**
 * The Redis stream (issue 21) against a real Redis (Debian's redis-server, on a port of its own):
 * every event is appended with XADD, and consumer groups read the same events a webhook endpoint
 * gets, acknowledge them, and replay from an id; the stream stays bounded (MAXLEN ~); events made
 * while Redis is down are appended once it is back.
 */
import { afterEach, describe, expect, test } from 'vitest'
import { startRedis, redisServerBin, type TestRedis } from '../helpers/redis.js'
import { startTestService } from '../helpers/test-service.js'
import { newSecret, startReceiver } from '../helpers/webhook-receiver.js'

const bin = redisServerBin()
const STREAM = 'fs:events'

const started: { stop(): Promise<void> }[] = []
afterEach(async () => {
  for (const s of started.splice(0).reverse()) await s.stop().catch(() => {})
})

async function redis(config: Record<string, string> = {}): Promise<TestRedis> {
  const r = await startRedis(bin!, config)
  started.push({ stop: () => r.close() })
  return r
}

type StreamMessage = { id: string; message: Record<string, string> }

async function readGroup(r: TestRedis, group: string, consumer: string): Promise<StreamMessage[]> {
  const reply = (await r.client.xReadGroup(group, consumer, { key: STREAM, id: '>' }, { COUNT: 1000 })) as { messages: StreamMessage[] }[] | null
  return reply?.[0]?.messages ?? []
}

async function until(done: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

describe.skipIf(!bin)('the Redis stream', () => {
  test('consumer groups read the events an endpoint gets, acknowledge them and replay from an id', async () => {
    const r = await redis()
    await r.client.xGroupCreate(STREAM, 'indexer', '$', { MKSTREAM: true })
    const secret = newSecret()
    const hook = await startReceiver([secret])
    started.push({ stop: () => hook.close() })
    const svc = await startTestService({ EVENTS_REDIS_URL: r.url, EVENTS_REDIS_STREAM: STREAM, WEBHOOK_URL: hook.url, WEBHOOK_SECRET: secret })
    started.push(svc)
    const api = `${svc.api}/disk`
    for (const p of ['a.txt', 'b.txt']) expect((await fetch(`${api}/upload/s/${p}`, { method: 'PUT', body: p })).status).toBe(201)
    expect((await fetch(`${api}/delete/s/a.txt`, { method: 'DELETE' })).status).toBe(204)
    await hook.until(() => hook.taken.length === 3, 10_000)
    const got: StreamMessage[] = []
    await until(async () => (got.push(...(await readGroup(r, 'indexer', 'c1'))), got.length === 3), 10_000, 'the stream')
    // The same events (each consumer in order per path; s/a.txt and s/b.txt may come in either order).
    expect(got.map((m) => m.message.id).sort()).toEqual(hook.taken.map((d) => d.id).sort())
    expect(got.map((m) => `${m.message.type} ${m.message.store}`).sort()).toEqual(['file.created disk', 'file.created disk', 'file.deleted disk'])
    // The payload is the very body an endpoint gets.
    const bodies = new Map(hook.taken.map((d) => [d.id, d.body]))
    for (const m of got) expect(m.message.payload).toBe(bodies.get(m.message.id!))
    expect(got[0]!.message.timestamp).toBe((JSON.parse(got[0]!.message.payload!) as { timestamp: string }).timestamp)
    // Acknowledged, nothing is pending; a second group replays everything from the start, a read from an id the rest.
    expect(await r.client.xAck(STREAM, 'indexer', got.map((m) => m.id))).toBe(3)
    expect(((await r.client.xPending(STREAM, 'indexer')) as { pending: number }).pending).toBe(0)
    await r.client.xGroupCreate(STREAM, 'replay', '0')
    expect((await readGroup(r, 'replay', 'c1')).map((m) => m.message.id)).toEqual(got.map((m) => m.message.id))
    const after = (await r.client.xRange(STREAM, `(${got[0]!.id}`, '+')) as StreamMessage[]
    expect(after.map((m) => m.message.id)).toEqual(got.slice(1).map((m) => m.message.id))
  })

  test('the stream stays bounded, and what happened while Redis was down is appended once it is back', async () => {
    // Small stream nodes, so that the approximate trim (MAXLEN ~) shows at this scale.
    const r = await redis({ 'stream-node-max-entries': '10' })
    const svc = await startTestService({ EVENTS_REDIS_URL: r.url, EVENTS_REDIS_STREAM: STREAM, EVENTS_REDIS_MAXLEN: '20', WEBHOOK_RETRY_DELAY_MAX: '300ms' })
    started.push(svc)
    const api = `${svc.api}/disk`
    for (let i = 0; i < 60; i++) expect((await fetch(`${api}/upload/bound/${i}.txt`, { method: 'PUT', body: String(i) })).status).toBe(201)
    const last = async () => {
      const [newest] = (await r.client.xRevRange(STREAM, '+', '-', { COUNT: 1 })) as StreamMessage[]
      return newest ? (JSON.parse(newest.message.payload!) as { data: { path: string } }).data.path : undefined
    }
    await until(async () => (await last()) === 'bound/59.txt', 15_000, 'the 60th event')
    const length = await r.client.xLen(STREAM)
    expect(length).toBeGreaterThanOrEqual(20)
    expect(length).toBeLessThanOrEqual(30)

    await r.stop()
    for (let i = 0; i < 5; i++) expect((await fetch(`${api}/upload/down/${i}.txt`, { method: 'PUT', body: String(i) })).status).toBe(201)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await r.start() // empty: no persistence
    await until(async () => (await r.client.xLen(STREAM).catch(() => 0)) === 5, 20_000, 'the events made while Redis was down')
    const paths = ((await r.client.xRange(STREAM, '-', '+')) as StreamMessage[]).map((m) => (JSON.parse(m.message.payload!) as { data: { path: string } }).data.path)
    // Five paths: in order per path is all there is to keep (retries of different paths interleave).
    expect(paths.sort()).toEqual([0, 1, 2, 3, 4].map((i) => `down/${i}.txt`))
  })
})
