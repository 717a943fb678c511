/**
 * Webhooks over real HTTP (issue 21): the service (node adapter, in this process) delivers to
 * receivers on loopback, which verify every request with the reference `standardwebhooks` library.
 * Every change is announced once, with who asked; filters; rotation; a receiver down, then 500s,
 * then 429 with Retry-After, then back: everything arrives, in order per path; 410 stops that
 * endpoint alone; dead letters through the admin routes (filestorage:admin only); the backlog bound
 * (507, /check degraded but 200, drains); the payload's size bound.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import { bearer, hmacKey, hmacToken, keysEnv } from '../helpers/auth.js'
import { requireService } from '../helpers/external.js'
import { memoryLog } from '../helpers/log-lines.js'
import { randomDbName } from '../helpers/mongo.js'
import { freePorts } from '../helpers/ports.js'
import { s3StoreEnv, s3TestTarget, uniquePrefix } from '../helpers/s3-store.js'
import { RUNTIMES, spawnService } from '../helpers/process-service.js'
import { startTestService, type TestService } from '../helpers/test-service.js'
import type { Logger } from '../../src/observability/logger.js'
import { TUS_HEADERS, uploadMetadata } from '../helpers/tus.js'
import { waitFor } from '../helpers/wait.js'
import { type Delivery, newSecret, type Receiver, startReceiver } from '../helpers/webhook-receiver.js'

const started: { stop(): Promise<void> }[] = []
afterEach(async () => {
  for (const s of started.splice(0).reverse()) await s.stop().catch(() => {})
})

async function receiver(secrets: string[], answer?: Parameters<typeof startReceiver>[1]): Promise<Receiver> {
  const r = await startReceiver(secrets, answer)
  started.push({ stop: () => r.close() })
  return r
}

async function service(env: Record<string, string>, logger?: Logger): Promise<TestService> {
  const svc = await startTestService({ WEBHOOK_RETRY_DELAY_MAX: '400ms', ...env }, logger ? { logger } : {})
  started.push(svc)
  return svc
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

/** A request; fails the test on a status other than `expect`. */
async function call(url: string, init: RequestInit & { expect?: number } = {}): Promise<Response> {
  const response = await fetch(url, init)
  if (init.expect !== undefined && response.status !== init.expect) {
    throw new Error(`${init.method ?? 'GET'} ${url}: ${response.status} ${await response.text()} (expected ${init.expect})`)
  }
  return response
}

const json = { 'Content-Type': 'application/json' }
const typesAndPaths = (ds: Delivery[]) => ds.map((d) => `${d.type} ${d.data.path}`)

/** The same path, or a folder and something in it. */
const related = (a: string, b: string) => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`)

/**
 * The pairs of events that arrived in another order than `expected` (labels `type path`, in the
 * order the changes were made) although they touch a common path or a folder and what is in it.
 */
function outOfPathOrder(arrived: Delivery[], expected: string[]): string[] {
  const pathsOf = (d: Delivery) => [d.data.path, ...(typeof d.data.from === 'string' ? [d.data.from] : [])]
  const rank = (d: Delivery) => expected.indexOf(`${d.type} ${d.data.path}`)
  const problems: string[] = []
  arrived.forEach((later, j) => {
    for (const earlier of arrived.slice(0, j)) {
      const touch = pathsOf(earlier).some((p) => pathsOf(later).some((q) => related(p, q)))
      if (touch && rank(earlier) > rank(later)) problems.push(`${earlier.type} ${earlier.data.path} came before ${later.type} ${later.data.path}`)
    }
  })
  return problems
}

const stores = ['disk', ...(requireService('MONGODB_URI', 'events on the mongo store') ? ['mongo'] : []), ...(s3TestTarget() ? ['s3'] : [])]

describe.each(stores)('webhooks on the %s store', (store) => {
  test('every change is announced once, signed with each rotating secret, with the file, who asked and the request id', async () => {
    const [oldSecret, newSecret_] = [newSecret(), newSecret()]
    const r = await receiver([oldSecret, newSecret_])
    const key = hmacKey('k1')
    const svc = await service({
      WEBHOOK_URL: r.url,
      WEBHOOK_SECRET: `${oldSecret},${newSecret_}`,
      AUTH_HMAC_SECRETS: keysEnv(key),
      ...(store === 'mongo' ? { MONGODB_URI: process.env.MONGODB_URI!, MONGODB_DB: randomDbName('events') } : {}),
      ...(store === 's3' ? s3StoreEnv(uniquePrefix('events')) : {}),
    })
    const auth = bearer(await hmacToken(key, 'ana', ['files:*:*:']))
    const api = `${svc.api}/${store}`
    const metadata = { camera: 'x100', tags: ['a', 'b'] }
    const created = await call(`${api}/upload/a/one.txt`, {
      method: 'PUT',
      headers: { ...auth, 'X-Request-Id': 'req-1', 'Content-Type': 'text/plain', 'X-File-Metadata': JSON.stringify(metadata) },
      body: 'one',
      expect: 201,
    })
    expect(created.headers.get('x-request-id')).toBe('req-1')
    await call(`${api}/upload/a/one.txt`, { method: 'PUT', headers: auth, body: 'one, again', expect: 200 })
    await call(`${api}/move/a/one.txt`, { method: 'POST', headers: { ...auth, ...json }, body: JSON.stringify({ to: 'b/one.txt' }), expect: 200 })
    await call(`${api}/upload/dir/x/1.txt`, { method: 'PUT', headers: auth, body: '1', expect: 201 })
    await call(`${api}/upload/dir/2.txt`, { method: 'PUT', headers: auth, body: '2', expect: 201 })
    await call(`${api}/move/dir`, { method: 'POST', headers: { ...auth, ...json }, body: JSON.stringify({ to: 'moved' }), expect: 200 })
    await call(`${api}/delete/moved?recursive=true`, { method: 'DELETE', headers: auth, expect: 204 })
    await call(`${api}/delete/b/one.txt`, { method: 'DELETE', headers: auth, expect: 204 })
    const { uploadId } = (await (
      await call(`${api}/createupload/parts/p.bin`, { method: 'POST', headers: { ...auth, ...json }, body: '{}', expect: 201 })
    ).json()) as { uploadId: string }
    await call(`${api}/uploadpart/${uploadId}?part=1`, { method: 'PUT', headers: auth, body: 'part', expect: 200 })
    await call(`${api}/completeupload/${uploadId}`, { method: 'POST', headers: { ...auth, ...json }, body: '{}', expect: 201 })
    const aborted = (await (await call(`${api}/createupload/parts/q.bin`, { method: 'POST', headers: { ...auth, ...json }, body: '{}', expect: 201 })).json()) as {
      uploadId: string
    }
    await call(`${api}/abortupload/${aborted.uploadId}`, { method: 'DELETE', headers: auth, expect: 204 })
    const tus = await call(`${api}/tus/`, {
      method: 'POST',
      headers: { ...auth, ...TUS_HEADERS, 'Upload-Length': '3', 'Upload-Metadata': uploadMetadata({ path: 'tus/t.bin' }), 'Content-Type': 'application/offset+octet-stream' },
      body: 'tus',
      expect: 201,
    })
    expect(tus.headers.get('upload-offset')).toBe('3')

    const expected = [
      'file.created a/one.txt',
      'file.replaced a/one.txt',
      'file.moved b/one.txt',
      'file.created dir/x/1.txt',
      'file.created dir/2.txt',
      'file.moved moved',
      'file.deleted moved',
      'file.deleted b/one.txt',
      'upload.created parts/p.bin',
      'file.created parts/p.bin',
      'upload.completed parts/p.bin',
      'upload.created parts/q.bin',
      'upload.aborted parts/q.bin',
      'upload.created tus/t.bin',
      'file.created tus/t.bin',
      'upload.completed tus/t.bin',
    ]
    await r.until(() => r.taken.length >= expected.length, 15_000)
    await new Promise((resolve) => setTimeout(resolve, 300)) // nothing more comes
    expect(r.invalid).toEqual([])
    // Each once; in the order they were made wherever they touch a common path (or a folder and
    // what is in it); events of unrelated paths may overtake each other.
    expect([...typesAndPaths(r.taken)].sort()).toEqual([...expected].sort())
    expect(new Set(r.taken.map((d) => d.id)).size).toBe(expected.length)
    expect(outOfPathOrder(r.taken, expected)).toEqual([])
    const byLabel = (label: string) => r.taken.find((d) => `${d.type} ${d.data.path}` === label)!
    const [first, replaced, moved, folderMoved, folderDeleted] = ['file.created a/one.txt', 'file.replaced a/one.txt', 'file.moved b/one.txt', 'file.moved moved', 'file.deleted moved'].map(byLabel)
    expect(first!.data).toMatchObject({
      schemaVersion: 1,
      store,
      kind: 'file',
      path: 'a/one.txt',
      size: 3,
      sha256: sha256('one'),
      etag: `"${sha256('one')}"`,
      contentType: 'text/plain',
      metadata,
      subject: 'ana',
      requestId: 'req-1',
    })
    expect(replaced!.data).toMatchObject({ sha256: sha256('one, again'), size: 10 })
    expect(moved!.data).toMatchObject({ from: 'a/one.txt', path: 'b/one.txt', sha256: sha256('one, again') })
    expect(folderMoved!.data).toMatchObject({ kind: 'directory', from: 'dir', path: 'moved', files: 2 })
    expect(folderDeleted!.data).toMatchObject({ kind: 'directory', path: 'moved', files: 2 })
    const completed = r.taken.find((d) => d.type === 'upload.completed')!
    expect(completed.data).toMatchObject({ uploadId, path: 'parts/p.bin', sha256: sha256('part') })
    for (const d of r.taken) {
      expect(d.data.subject).toBe('ana')
      expect(typeof d.data.requestId).toBe('string')
      expect(Math.abs(d.timestamp * 1000 - d.at)).toBeLessThan(5000) // signed at the try, not at the change
    }
  })
})

describe('webhooks', () => {
  test('endpoints from EVENTS_CONFIG take only what their filters say (store, path prefix, type)', async () => {
    const secret = newSecret()
    const [all, photos, deletes] = [await receiver([secret]), await receiver([secret]), await receiver([secret])]
    const file = join(tmpdir(), `events-${randomBytes(4).toString('hex')}.json`)
    started.push({ stop: () => rm(file, { force: true }) })
    await writeFile(
      file,
      JSON.stringify({
        endpoints: [
          { name: 'all', url: all.url, secret },
          { name: 'photos', url: photos.url, secret, stores: ['disk'], prefixes: ['photos'], types: ['file.*'] },
          { name: 'deletes', url: deletes.url, secrets: [secret], types: ['file.deleted'] },
        ],
      }),
    )
    const svc = await service({ EVENTS_CONFIG: file })
    const api = `${svc.api}/disk`
    for (const path of ['photos/cat.jpg', 'photos2/dog.jpg', 'docs/a.txt']) await call(`${api}/upload/${path}`, { method: 'PUT', body: path, expect: 201 })
    await call(`${api}/delete/photos/cat.jpg`, { method: 'DELETE', expect: 204 })
    await call(`${api}/delete/docs/a.txt`, { method: 'DELETE', expect: 204 })
    await call(`${api}/createupload/photos/big.bin`, { method: 'POST', headers: json, body: '{}', expect: 201 })
    await all.until(() => all.taken.length === 6, 10_000)
    await deletes.until(() => deletes.taken.length === 2, 10_000)
    await photos.until(() => photos.taken.length === 2, 10_000)
    await new Promise((resolve) => setTimeout(resolve, 300))
    // (Events of different paths may arrive in either order.)
    expect(typesAndPaths(photos.taken)).toEqual(['file.created photos/cat.jpg', 'file.deleted photos/cat.jpg'])
    expect(typesAndPaths(deletes.taken).sort()).toEqual(['file.deleted docs/a.txt', 'file.deleted photos/cat.jpg'])
    expect(all.taken.map((d) => d.type).sort()).toEqual(['file.created', 'file.created', 'file.created', 'file.deleted', 'file.deleted', 'upload.created'])
    // The same change has the same id at every endpoint.
    expect(photos.taken[0]!.id).toBe(all.taken[0]!.id)
  })

  test('a receiver down, then answering 500, then 429 with Retry-After, then back: everything arrives in order per path; 410 stops that endpoint alone', async () => {
    const secret = newSecret()
    let phase: 'failing' | 'throttling' | 'ok' = 'failing'
    const throttled = new Map<string, number>()
    const r = await receiver([secret], (d) => {
      if (phase === 'failing') return { status: 500, body: 'not now' }
      if (phase === 'throttling' && !throttled.has(d.id)) {
        throttled.set(d.id, Date.now())
        return { status: 429, headers: { 'Retry-After': '2' } }
      }
      return { status: 204 }
    })
    const gone = await receiver([secret], () => ({ status: 410 }))
    const file = join(tmpdir(), `events-${randomBytes(4).toString('hex')}.json`)
    started.push({ stop: () => rm(file, { force: true }) })
    await writeFile(file, JSON.stringify({ endpoints: [{ name: 'main', url: r.url, secret }, { name: 'gone', url: gone.url, secret }] }))
    const svc = await service({ EVENTS_CONFIG: file })
    const api = `${svc.api}/disk`
    await r.pause() // down: connections refused
    // Four paths, each changed several times; the changes of different paths interleave.
    const made: Record<string, string[]> = {}
    for (let round = 0; round < 4; round++) {
      for (const p of ['p0', 'p1', 'p2', 'p3']) {
        const path = `order/${p}.txt`
        const body = `${p} round ${round}`
        await call(`${api}/upload/${path}`, { method: 'PUT', body, expect: round === 0 ? 201 : 200 })
        ;(made[path] ??= []).push(sha256(body))
      }
    }
    await call(`${api}/delete/order/p3.txt`, { method: 'DELETE', expect: 204 })
    made['order/p3.txt']!.push('deleted')
    await new Promise((resolve) => setTimeout(resolve, 1500))
    await r.resume()
    await r.until(() => r.attempts.length >= 3, 10_000, 'tries answered 500')
    phase = 'throttling'
    await r.until(() => throttled.size >= 4, 15_000, 'tries answered 429')
    phase = 'ok'
    await r.until(() => new Set(r.taken.map((d) => d.id)).size === 17, 30_000)
    expect(r.invalid).toEqual([])
    // In order per path: the first arrival of each event, path by path, is the order of the changes.
    const seen = new Set<string>()
    const arrived: Record<string, string[]> = {}
    for (const d of r.taken) {
      if (seen.has(d.id)) continue
      seen.add(d.id)
      ;(arrived[d.data.path] ??= []).push(d.type === 'file.deleted' ? 'deleted' : String(d.data.sha256))
    }
    expect(arrived).toEqual(made)
    // Retry-After was honoured: an event answered 429 was not tried again before it asked.
    for (const [id, at] of throttled) {
      const next = r.attempts.find((a) => a.id === id && a.at > at)
      expect(next, id).toBeDefined()
      expect(next!.at - at).toBeGreaterThanOrEqual(1900)
    }
    // The 410 endpoint got the tries in flight when its first answer came (at most 8), and was
    // disabled: what had been handed to it is its dead letters, nothing more is handed to it until
    // an operator enables it.
    expect(gone.attempts.length).toBeGreaterThanOrEqual(1)
    expect(gone.attempts.length).toBeLessThanOrEqual(8)
    expect(gone.attempts.every((a) => a.status === 410)).toBe(true)
    type Consumer = { name: string; disabled: boolean; deadLetters: number; pending: number }
    const readConsumers = async () => {
      const overview = (await (await call(`${svc.api}/admin/events`, { expect: 200 })).json()) as { stores: { disk: { consumers: Consumer[] } } }
      return Object.fromEntries(overview.stores.disk.consumers.map((c) => [c.name, c]))
    }
    // The receiver holds the last event before the service has recorded its answer: wait for that
    // (if it never comes, the expectations below show what is left).
    let consumers = await readConsumers()
    const settled = async () => {
      consumers = await readConsumers()
      return consumers.main!.pending === 0 && consumers.gone!.pending === 0
    }
    await waitFor('both consumers settled', settled, { timeoutMs: 5_000 }).catch(() => {})
    expect(consumers.gone).toMatchObject({ disabled: true, pending: 0 })
    expect(consumers.gone!.deadLetters).toBeGreaterThanOrEqual(1)
    expect(consumers.main).toMatchObject({ disabled: false, deadLetters: 0, pending: 0 })
    // Back: an operator enables it and replays what it missed; new changes reach it again.
    gone.answer = () => ({ status: 204 })
    await call(`${svc.api}/admin/events/consumers/gone/enable`, { method: 'POST', expect: 204 })
    const replayed = await call(`${svc.api}/admin/events/disk/deadletters/replay`, { method: 'POST', headers: json, body: JSON.stringify({ consumer: 'gone' }), expect: 200 })
    expect(((await replayed.json()) as { count: number }).count).toBe(consumers.gone!.deadLetters)
    await call(`${api}/upload/order/after.txt`, { method: 'PUT', body: 'after', expect: 201 })
    await gone.until(() => gone.taken.some((d) => d.data.path === 'order/after.txt') && gone.taken.length === consumers.gone!.deadLetters + 1, 10_000)
    expect(gone.invalid).toEqual([])
  })

  test('undeliverable after WEBHOOK_RETRY_FOR: dead letters, read, replayed with their webhook-id and discarded by an operator (filestorage:admin only)', async () => {
    const secret = newSecret()
    let failing = true
    const r = await receiver([secret], () => (failing ? { status: 503, body: 'maintenance' } : { status: 200 }))
    const key = hmacKey('k1')
    const log = memoryLog()
    const svc = await service({ WEBHOOK_URL: r.url, WEBHOOK_SECRET: secret, WEBHOOK_RETRY_FOR: '2s', AUTH_HMAC_SECRETS: keysEnv(key) }, log.logger)
    const writer = bearer(await hmacToken(key, 'ana', ['files:*:*:']))
    const admin = bearer(await hmacToken(key, 'ops', ['filestorage:admin']))
    const api = `${svc.api}/disk`
    for (const name of ['a', 'b', 'c']) await call(`${api}/upload/dl/${name}.txt`, { method: 'PUT', headers: writer, body: name, expect: 201 })
    const deadLetters = async () =>
      (await (await call(`${svc.api}/admin/events/disk/deadletters`, { headers: admin, expect: 200 })).json()) as {
        entries: { consumer: string; ids: string[]; events: { type: string; data: { path: string } }[]; status?: number; error: string; attempts: number }[]
        nextCursor: string | null
      }
    const deadline = Date.now() + 15_000
    while ((await deadLetters()).entries.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200))
    const page = await deadLetters()
    expect(page.entries.map((e) => e.events[0]!.data.path)).toEqual(['dl/a.txt', 'dl/b.txt', 'dl/c.txt'])
    expect(page.entries[0]).toMatchObject({ consumer: 'default', status: 503 })
    expect(page.entries[0]!.error).toContain('maintenance')
    expect(page.entries[0]!.attempts).toBeGreaterThanOrEqual(2)
    expect(log.entries().some((e) => String(e.msg).includes('given up for "default"'))).toBe(true)
    // Paging.
    const first = (await (await call(`${svc.api}/admin/events/disk/deadletters?limit=2`, { headers: admin, expect: 200 })).json()) as typeof page
    expect(first.entries).toHaveLength(2)
    const rest = (await (await call(`${svc.api}/admin/events/disk/deadletters?limit=2&cursor=${encodeURIComponent(first.nextCursor!)}`, { headers: admin })).json()) as typeof page
    expect(rest.entries.map((e) => e.events[0]!.data.path)).toEqual(['dl/c.txt'])
    // A writer of every file is no operator; neither is a signed URL.
    for (const route of ['/admin/events', '/admin/events/disk/deadletters']) {
      const refused = await call(`${svc.api}${route}`, { headers: writer })
      expect(refused.status).toBe(403)
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('forbidden')
    }
    expect((await call(`${svc.api}/admin/events`)).status).toBe(401)
    // Replay one by its event id, discard another, replay the rest.
    const triedBefore = new Set(r.attempts.map((a) => a.id))
    failing = false
    const [a, b, c] = page.entries
    const replay = (body: unknown) =>
      call(`${svc.api}/admin/events/disk/deadletters/replay`, { method: 'POST', headers: { ...admin, ...json }, body: JSON.stringify(body), expect: 200 })
    expect(await (await replay({ consumer: 'default', ids: [a!.ids[0]] })).json()).toEqual({ count: 1, remaining: 2 })
    const discarded = await call(`${svc.api}/admin/events/disk/deadletters/discard`, {
      method: 'POST',
      headers: { ...admin, ...json },
      body: JSON.stringify({ consumer: 'default', ids: b!.ids }),
      expect: 200,
    })
    expect(await discarded.json()).toEqual({ count: 1, remaining: 1 })
    expect(await (await replay({ consumer: 'default' })).json()).toEqual({ count: 1, remaining: 0 })
    await r.until(() => r.taken.length === 2, 10_000)
    expect(r.taken.map((d) => d.id).sort()).toEqual([a!.ids[0], c!.ids[0]].sort())
    for (const d of r.taken) expect(triedBefore.has(d.id)).toBe(true) // the same webhook-id as the tries before
    expect(r.invalid).toEqual([])
    const unknown = await call(`${svc.api}/admin/events/disk/deadletters/replay`, { method: 'POST', headers: { ...admin, ...json }, body: JSON.stringify({ consumer: 'nobody' }) })
    expect(unknown.status).toBe(404)
  })

  test('at its bound the backlog refuses changes with 507, /check is degraded but 200, and it drains once the receiver is back', async () => {
    const secret = newSecret()
    let up = false
    const r = await receiver([secret], () => (up ? { status: 204 } : { status: 500 }))
    const log = memoryLog()
    const svc = await service({ WEBHOOK_URL: r.url, WEBHOOK_SECRET: secret, EVENTS_BACKLOG_MAX: '5' }, log.logger)
    const api = `${svc.api}/disk`
    for (let i = 0; i < 5; i++) await call(`${api}/upload/full/${i}.txt`, { method: 'PUT', body: String(i), expect: 201 })
    const check = async () => {
      const res = await call(`${svc.api}/check`)
      return { status: res.status, body: (await res.json()) as { status: string; events?: { status: string; stores?: Record<string, { backlog: number; max: number; full: boolean }> } } }
    }
    const deadline = Date.now() + 5000
    while ((await check()).body.events?.status !== 'degraded' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    const degraded = await check()
    expect(degraded.status).toBe(200)
    expect(degraded.body).toMatchObject({ status: 'degraded', events: { status: 'degraded', stores: { disk: { backlog: 5, max: 5, full: true } } } })
    expect(log.entries().some((e) => String(e.msg).includes('backlog of store "disk" is full'))).toBe(true)
    for (const [method, path, body] of [
      ['PUT', 'upload/full/more.txt', 'x'],
      ['DELETE', 'delete/full/0.txt', undefined],
      ['POST', 'createupload/full/big.bin', '{}'],
    ] as const) {
      const refused = await call(`${api}/${path}`, { method, ...(body !== undefined ? { body, headers: json } : {}) })
      expect(refused.status, `${method} ${path}`).toBe(507)
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('insufficient_storage')
    }
    expect((await call(`${api}/download/full/more.txt`)).status).toBe(404) // nothing of it was kept
    up = true
    await r.until(() => r.taken.length === 5, 15_000)
    const drained = Date.now() + 5000
    while ((await check()).body.status !== 'ok' && Date.now() < drained) await new Promise((resolve) => setTimeout(resolve, 100))
    expect((await check()).body.status).toBe('ok')
    await call(`${api}/upload/full/more.txt`, { method: 'PUT', body: 'x', expect: 201 })
    expect(log.entries().some((e) => String(e.msg).includes('has room again'))).toBe(true)
  })

  test('an upload left to expire is announced (upload.expired); one completed before is not', async () => {
    const secret = newSecret()
    const r = await receiver([secret])
    const svc = await service({ WEBHOOK_URL: r.url, WEBHOOK_SECRET: secret, UPLOAD_EXPIRY_SECONDS: '1', SWEEP_INTERVAL_SECONDS: '1' })
    const api = `${svc.api}/disk`
    const left = (await (await call(`${api}/createupload/exp/left.bin`, { method: 'POST', headers: json, body: '{}', expect: 201 })).json()) as { uploadId: string }
    const done = (await (await call(`${api}/createupload/exp/done.bin`, { method: 'POST', headers: json, body: '{}', expect: 201 })).json()) as { uploadId: string }
    await call(`${api}/uploadpart/${done.uploadId}?part=1`, { method: 'PUT', body: 'x', expect: 200 })
    await call(`${api}/completeupload/${done.uploadId}`, { method: 'POST', headers: json, body: '{}', expect: 201 })
    await r.until(() => r.taken.some((d) => d.type === 'upload.expired'), 10_000)
    await new Promise((resolve) => setTimeout(resolve, 2500)) // the finished one is swept too, silently
    expect(r.taken.filter((d) => d.type === 'upload.expired').map((d) => d.data.uploadId)).toEqual([left.uploadId])
  })

  test('the largest event (16 KiB of metadata, two paths of 1,024 bytes) stays under 20 KB', async () => {
    const secret = newSecret()
    const r = await receiver([secret])
    const svc = await service({ WEBHOOK_URL: r.url, WEBHOOK_SECRET: secret })
    const segment = (c: string) => c.repeat(255)
    const long = (c: string) => [segment(c), segment(c), segment(c), c.repeat(200), c.repeat(55)].join('/')
    const from = long('a')
    const to = long('b')
    expect(Buffer.byteLength(from)).toBe(1024)
    // Metadata of exactly 16 KiB as JSON, with characters JSON escapes in the payload too.
    const filler = '"'.repeat(4000)
    const metadata: Record<string, string> = { q: filler }
    metadata.pad = 'x'.repeat(16 * 1024 - Buffer.byteLength(JSON.stringify(metadata)) - ',"pad":""'.length)
    expect(Buffer.byteLength(JSON.stringify(metadata))).toBe(16 * 1024)
    await call(`${svc.api}/disk/upload/${from}`, { method: 'PUT', headers: { 'X-File-Metadata': JSON.stringify(metadata) }, body: 'x', expect: 201 })
    await call(`${svc.api}/disk/move/${from}`, { method: 'POST', headers: json, body: JSON.stringify({ to }), expect: 200 })
    await r.until(() => r.taken.length === 2, 10_000)
    const moved = r.taken[1]!
    expect(moved.type).toBe('file.moved')
    expect(moved.data.metadata).toEqual(metadata)
    expect(Buffer.byteLength(moved.body)).toBeLessThan(20 * 1024)
  })
})

describe('webhooks with a store that is down', () => {
  test('the service starts with events on while MongoDB does not answer, and the disk store\'s events go on', async () => {
    const secret = newSecret()
    const r = await receiver([secret])
    const [port] = (await freePorts(1)) as [number] // nothing listens there
    const svc = await service({ WEBHOOK_URL: r.url, WEBHOOK_SECRET: secret, MONGODB_URI: `mongodb://127.0.0.1:${port}/`, MONGODB_DB: 'down' })
    await call(`${svc.api}/disk/upload/up.txt`, { method: 'PUT', body: 'x', expect: 201 })
    const refused = await call(`${svc.api}/mongo/upload/down.txt`, { method: 'PUT', body: 'x' })
    expect(refused.status).toBe(503)
    await r.until(() => r.taken.length === 1, 10_000)
    expect(typesAndPaths(r.taken)).toEqual(['file.created up.txt'])
  })
})

describe.runIf(s3TestTarget())('webhooks with an s3 store on a server without conditional writes', () => {
  test('the service does not start with that store\'s events on, and says why', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'filestorage-events-s3-'))
    started.push({ stop: () => rm(dir, { recursive: true, force: true }) })
    const starting = spawnService({ STORAGE_DIR: dir, WEBHOOK_URL: 'http://127.0.0.1:9/', WEBHOOK_SECRET: newSecret(), S3_CONDITIONAL_WRITES: 'false', ...s3StoreEnv(uniquePrefix('events')) })
    // The failure is in the start-up log, a JSON line or a plain one (the store's name quoted, escaped in JSON).
    await expect(starting).rejects.toThrow(/exited \(1\) before serving[\s\S]*failed to start[\s\S]*the s3 store \\?"s3\\?" cannot record events: this S3 server has no conditional writes/)
  })
})

describe.each(RUNTIMES)('webhooks from the service as a process on %s', (runtime) => {
  test('a PUT, a move and a delete arrive signed, in order', async () => {
    const secret = newSecret()
    const r = await receiver([secret])
    const dir = await mkdtemp(join(tmpdir(), 'filestorage-events-process-'))
    started.push({ stop: () => rm(dir, { recursive: true, force: true }) })
    const svc = await spawnService({ STORAGE_DIR: dir, WEBHOOK_URL: r.url, WEBHOOK_SECRET: secret }, { runtime })
    started.push({ stop: async () => void (await svc.stop('SIGTERM')) })
    await call(`${svc.api}/disk/upload/p/a.txt`, { method: 'PUT', body: 'a', expect: 201 })
    await call(`${svc.api}/disk/move/p/a.txt`, { method: 'POST', headers: json, body: JSON.stringify({ to: 'p/b.txt' }), expect: 200 })
    await call(`${svc.api}/disk/delete/p/b.txt`, { method: 'DELETE', expect: 204 })
    await r.until(() => r.taken.length === 3, 15_000)
    expect(r.invalid).toEqual([])
    expect(typesAndPaths(r.taken)).toEqual(['file.created p/a.txt', 'file.moved p/b.txt', 'file.deleted p/b.txt'])
  })
})
