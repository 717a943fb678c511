/**
 * The discovery helper and the typed client against a real Consul agent, with two instances of the
 * service registered by the node adapter itself (in-process, sharing one storage folder).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createFileStorageClient,
  createServiceResolver,
  DiscoveryError,
  FileStorageError,
  type ServiceInstance,
} from '../../src/adapters/discovery/index.js'
import { ConsulAgent, consulBinary, registrationEnv } from '../helpers/consul.js'
import { freePorts } from '../helpers/ports.js'
import { readAll, sha256, streamOf } from '../helpers/streams.js'
import { startTestService, type TestService } from '../helpers/test-service.js'
import { waitFor } from '../helpers/wait.js'

const consulBin = consulBinary()
const NAME = 'fs-discovery'

/** A fetch that records the origin of every request, and can play a Consul that is away. */
function recordingFetch() {
  const origins: string[] = []
  const state = { consulDown: false }
  const wrapped: typeof fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    origins.push(url.origin)
    if (state.consulDown && url.pathname.startsWith('/v1/')) return Promise.reject(new TypeError('fetch failed'))
    return fetch(input, init)
  }
  return { fetch: wrapped, origins, state }
}

describe.runIf(consulBin)('discovery through a real Consul agent', () => {
  let consul: ConsulAgent
  let storage: string
  let a: TestService
  let b: TestService
  const idOf = (s: TestService) => `${NAME}-127.0.0.1:${s.service.http.port}`
  const ids = (list: ServiceInstance[]) => list.map((i) => i.id)

  beforeAll(async () => {
    storage = await mkdtemp(join(tmpdir(), 'filestorage-discovery-'))
    consul = await ConsulAgent.start(consulBin!)
    a = await startTestService(registrationEnv(consul.addr, NAME, storage))
    b = await startTestService(registrationEnv(consul.addr, NAME, storage))
    await consul.waitForPassing(NAME, [idOf(a), idOf(b)])
  })
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await consul?.dispose()
    await rm(storage, { recursive: true, force: true })
  })

  describe('the resolver', () => {
    it('resolves the name to the instances whose checks pass, with address, port, tags and meta', async () => {
      // A third instance whose check fails: registered, but not healthy.
      const [dead] = await freePorts(1)
      await consul.put('/v1/agent/service/register', {
        Name: NAME,
        ID: `${NAME}-sick`,
        Address: '127.0.0.1',
        Port: dead,
        Check: { HTTP: `http://127.0.0.1:${dead}/filestorage/v1/check`, Interval: '1s' },
      })
      const resolver = createServiceResolver({ consul: consul.addr, service: NAME, watch: false })
      try {
        expect((await consul.all(NAME)).length).toBe(3)
        const instances = await resolver.instances()
        expect(ids(instances)).toEqual([idOf(a), idOf(b)].sort())
        const first = instances.find((i) => i.id === idOf(a))
        expect(first).toMatchObject({
          name: NAME,
          address: '127.0.0.1',
          port: a.service.http.port,
          origin: a.origin,
          tags: [],
          meta: { stores: 'disk' },
        })
      } finally {
        await consul.put(`/v1/agent/service/deregister/${NAME}-sick`)
      }
    })

    it('picks one instance per call, in round robin', async () => {
      const resolver = createServiceResolver({ consul: consul.addr, service: NAME, watch: false })
      const picked = []
      for (let i = 0; i < 4; i++) picked.push((await resolver.pick()).id)
      const [first, second] = [idOf(a), idOf(b)].sort()
      expect(picked).toEqual([first, second, first, second])
    })

    it('reuses a list for cacheMs, and asks Consul again once it is older', async () => {
      const cached = recordingFetch()
      const resolver = createServiceResolver({ consul: consul.addr, service: NAME, watch: false, cacheMs: 60_000, fetch: cached.fetch })
      for (let i = 0; i < 5; i++) await resolver.pick()
      expect(cached.origins.length).toBe(1)

      const uncached = recordingFetch()
      const eager = createServiceResolver({ consul: consul.addr, service: NAME, watch: false, cacheMs: 0, fetch: uncached.fetch })
      for (let i = 0; i < 3; i++) await eager.pick()
      expect(uncached.origins.length).toBe(3)
    })

    it('follows changes through its blocking-query watch, asking Consul nothing per call', async () => {
      const recorded = recordingFetch()
      const resolver = createServiceResolver({ consul: consul.addr, service: NAME, waitSeconds: 30, fetch: recorded.fetch })
      const seen: string[][] = []
      resolver.subscribe((list) => seen.push(ids(list)))
      let c: TestService | undefined
      try {
        await resolver.instances()
        await waitFor('the watch to be live', () => recorded.origins.length >= 2)
        const before = recorded.origins.length
        for (let i = 0; i < 20; i++) await resolver.pick()
        expect(recorded.origins.length - before).toBeLessThanOrEqual(1) // at most a watch round that came due

        c = await startTestService(registrationEnv(consul.addr, NAME, storage))
        await waitFor('the watch to see the third instance', () => ids(resolver.peek()).includes(idOf(c!)))
        await c.stop() // deregisters
        await waitFor('the watch to see it go', () => !ids(resolver.peek()).includes(idOf(c!)))
        expect(seen.at(-1)).toEqual([idOf(a), idOf(b)].sort())
        expect(seen.some((list) => list.length === 3)).toBe(true)
      } finally {
        resolver.close()
      }
    })

    it('keeps using the last list while Consul cannot be reached, and says so when it never had one', async () => {
      const recorded = recordingFetch()
      const resolver = createServiceResolver({ consul: consul.addr, service: NAME, watch: false, cacheMs: 0, fetch: recorded.fetch })
      const known = await resolver.instances()
      recorded.state.consulDown = true
      expect(await resolver.instances()).toEqual(known)

      const fresh = createServiceResolver({ consul: consul.addr, service: NAME, watch: false, fetch: recorded.fetch })
      await expect(fresh.instances()).rejects.toMatchObject({ name: 'DiscoveryError', code: 'consul_unreachable' })
    })

    it('refuses to pick when no instance is healthy', async () => {
      const resolver = createServiceResolver({ consul: consul.addr, service: 'fs-nobody', watch: false })
      const error = await resolver.pick().catch((e: unknown) => e)
      expect(error).toBeInstanceOf(DiscoveryError)
      expect(error).toMatchObject({ code: 'no_instances' })
    })
  })

  describe('the typed client', () => {
    it('calls the file API by service name, spreading requests over the instances', async () => {
      const recorded = recordingFetch()
      const client = createFileStorageClient({ target: { consul: consul.addr, service: NAME }, fetch: recorded.fetch })
      try {
        const body = Buffer.from('hello from a client that knows only a name')
        const put = await client.upload('disk', 'by-name/hello world.txt', body, { metadata: { owner: 'ana' } })
        expect(put.created).toBe(true)
        expect(put.file).toMatchObject({ path: 'by-name/hello world.txt', size: body.length, sha256: sha256(body), metadata: { owner: 'ana' } })

        expect(await client.info('disk', 'by-name/hello world.txt')).toMatchObject({ sha256: sha256(body), store: 'disk' })
        const download = await client.download('disk', 'by-name/hello world.txt')
        expect(sha256(await readAll(download.body!))).toBe(sha256(body))
        const range = await client.download('disk', 'by-name/hello world.txt', { range: 'bytes=0-4' })
        expect(range.status).toBe(206)
        expect(await range.text()).toBe('hello')

        const page = await client.list('disk', 'by-name')
        expect(page.entries.map((e) => e.name)).toEqual(['hello world.txt'])
        expect(await client.move('disk', 'by-name/hello world.txt', { to: 'by-name/moved.txt' })).toMatchObject({ path: 'by-name/moved.txt' })
        await client.delete('disk', 'by-name', { recursive: true })
        expect(await client.check()).toMatchObject({ status: 'ok', stores: { disk: { status: 'up' } } })

        const instanceOrigins = new Set(recorded.origins.filter((o) => o !== `http://${consul.addr}`))
        expect(instanceOrigins).toEqual(new Set([a.origin, b.origin]))
      } finally {
        client.close()
      }
    })

    it("turns the API's JSON errors into FileStorageError with status and code", async () => {
      const client = createFileStorageClient({ target: { consul: consul.addr, service: NAME, watch: false } })
      const missing = await client.info('disk', 'no/such/file.txt').catch((e: unknown) => e)
      expect(missing).toBeInstanceOf(FileStorageError)
      expect(missing).toMatchObject({ status: 404, code: 'not_found' })
      await client.upload('disk', 'once.txt', 'first')
      await expect(client.upload('disk', 'once.txt', 'second', { createOnly: true })).rejects.toMatchObject({
        status: 412,
        code: 'precondition_failed',
      })
      await expect(client.upload('disk', 'bad.txt', 'x', { sha256: '0'.repeat(64) })).rejects.toMatchObject({
        status: 400,
        code: 'checksum_mismatch',
      })
    })

    it('resumes a download whose body breaks off (whole or ranged), with a ranged request for the rest', async () => {
      const content = Buffer.alloc(300_000)
      for (let i = 0; i < content.length; i++) content[i] = (i * 7) % 253
      const seen: string[] = []
      const events: string[] = []
      let cutAfter: number | undefined = 100_000
      let beforeResuming: () => Promise<unknown> = async () => {}
      // A connection that breaks after `cutAfter` bytes of the next download answer.
      const breaking: typeof fetch = async (input, init) => {
        const response = await fetch(input, init)
        const range = new Headers(init?.headers).get('range')
        if (String(input).includes('/download/')) seen.push(range ?? 'whole')
        if (cutAfter === undefined || !String(input).includes('/download/')) return response
        const limit = cutAfter
        cutAfter = undefined
        return new Response(cutOff(response.body!, limit, () => beforeResuming()), response)
      }
      const client = createFileStorageClient({
        target: { consul: consul.addr, service: NAME, watch: false },
        fetch: breaking,
        onRetry: (e) => events.push(e.kind),
      })
      await client.upload('disk', 'resume.bin', content)
      const response = await client.download('disk', 'resume.bin')
      expect(sha256(await readAll(response.body!))).toBe(sha256(content))
      expect(seen).toEqual(['whole', 'bytes=100000-299999'])
      expect(events).toEqual(['resume'])

      // A range cut part-way goes on with the rest of that range.
      cutAfter = 50_000
      const ranged = await client.download('disk', 'resume.bin', { range: 'bytes=1000-200999', ifRange: response.headers.get('etag')! })
      expect(ranged.status).toBe(206)
      expect(sha256(await readAll(ranged.body!))).toBe(sha256(content.subarray(1000, 201_000)))
      expect(seen.slice(2)).toEqual(['bytes=1000-200999', 'bytes=51000-200999'])
      expect(events).toEqual(['resume', 'resume'])

      // The file changes between the cut and the rest: If-Range makes that an error, not a mix.
      cutAfter = 1000
      beforeResuming = () => client.upload('disk', 'resume.bin', 'something else entirely')
      const changed = await client.download('disk', 'resume.bin')
      await expect(readAll(changed.body!)).rejects.toMatchObject({ status: 412, code: 'precondition_failed' })
    })

    it('passes a request to the next instance when one cannot be reached, unless its body was a stream', async () => {
      // An instance Consul believes healthy (no check) that is not there: what a crash looks like
      // until the next check.
      const [dead] = await freePorts(1)
      const ghost = `http://127.0.0.1:${dead}`
      await consul.put('/v1/agent/service/register', { Name: NAME, ID: `${NAME}-ghost`, Address: '127.0.0.1', Port: dead })
      await consul.put('/v1/agent/service/register', { Name: 'fs-ghost-only', ID: 'fs-ghost-only-1', Address: '127.0.0.1', Port: dead })
      try {
        const recorded = recordingFetch()
        const client = createFileStorageClient({ target: { consul: consul.addr, service: NAME, watch: false }, fetch: recorded.fetch })
        await client.upload('disk', 'failover.txt', 'still here')
        for (let i = 0; i < 6; i++) expect((await client.info('disk', 'failover.txt')).size).toBe(10)
        expect(recorded.origins).toContain(ghost) // tried, and passed on

        const onlyGhost = recordingFetch()
        const stranded = createFileStorageClient({ target: { consul: consul.addr, service: 'fs-ghost-only', watch: false }, fetch: onlyGhost.fetch })
        const attempts = () => onlyGhost.origins.filter((o) => o === ghost).length
        // A body that can be sent again: retried (nothing was sent), up to `attempts` times.
        await expect(stranded.upload('disk', 'x.txt', 'replayable')).rejects.toMatchObject({ status: 503, code: 'store_unavailable' })
        expect(attempts()).toBe(3)
        // A streamed body cannot be sent twice: one attempt only.
        await expect(stranded.upload('disk', 'x.txt', streamOf('streamed'))).rejects.toMatchObject({ code: 'store_unavailable' })
        expect(attempts()).toBe(4)
      } finally {
        await consul.put(`/v1/agent/service/deregister/${NAME}-ghost`)
        await consul.put('/v1/agent/service/deregister/fs-ghost-only-1')
      }
    })
  })
})

/** `body`, failing like a cut connection after `limit` bytes (after `before` has run). */
function cutOff(body: ReadableStream<Uint8Array>, limit: number, before: () => Promise<unknown>): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  let passed = 0
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read()
      if (done) return controller.close()
      if (passed + value.length < limit) {
        passed += value.length
        return controller.enqueue(value)
      }
      controller.enqueue(value.subarray(0, limit - passed))
      await reader.cancel()
      await before()
      controller.error(new TypeError('terminated', { cause: new Error('other side closed') }))
    },
  })
}
