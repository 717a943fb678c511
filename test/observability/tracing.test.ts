/**
 * Traces received by a real OTLP receiver (Jaeger, built by scripts/test-services.sh install-jaeger):
 * the service as a process on Node and on Bun, an upload sent with a client's `traceparent`, and the
 * trace read back from Jaeger's query API: the client's trace id, the SERVER span as its child with
 * route, store and status, the storage operations under it, the MongoDB commands under those, the
 * blocking hook it asks; and the `traceparent` the service passes on to the calls it makes (hooks,
 * Consul, tracedFetch).
 */
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { types } from 'node:util'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingHttpHeaders, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RUNTIMES, spawnService } from '../helpers/process-service.js'
import { JAEGER, type Jaeger, type JaegerSpan, startJaeger, tagOf } from '../helpers/jaeger.js'
import { requireService } from '../helpers/external.js'
import { waitFor } from '../helpers/wait.js'
import { DriverStore } from '../../src/storage/index.js'

const MONGODB_URI = requireService('MONGODB_URI', 'MongoDB (FerretDB)')
const CONSUL_HTTP_ADDR = requireService('CONSUL_HTTP_ADDR', 'Consul')

// First: the tests below register the SDK in this process.
describe('traces off', () => {
  it('loads no module of the SDK and wraps no store', async () => {
    const { startTestService } = await import('../helpers/test-service.js')
    const svc = await startTestService()
    try {
      expect((await fetch(`${svc.api}/disk/upload/off.txt`, { method: 'PUT', body: 'x' })).status).toBe(201)
      const loaded = Object.keys(createRequire(import.meta.url).cache)
      expect(loaded.filter((path) => /@opentelemetry[\\/](sdk-|exporter-|resources)/.test(path))).toEqual([])
      expect(svc.service.stores.get('disk')).toBeInstanceOf(DriverStore)
      expect(types.isProxy(svc.service.stores.get('disk'))).toBe(false)
    } finally {
      await svc.stop()
    }
  })
})

describe.skipIf(!JAEGER)('traces in a real OTLP receiver (Jaeger)', () => {
  let jaeger: Jaeger
  beforeAll(async () => {
    jaeger = await startJaeger(JAEGER!)
  })
  afterAll(async () => jaeger?.stop())

  for (const runtime of RUNTIMES) {
    it(`joins the client's trace with the request, its storage operations and MongoDB's commands, on ${runtime}`, async () => {
      const storage = await mkdtemp(join(tmpdir(), 'filestorage-traces-'))
      // A blocking pre-upload hook that allows every upload and keeps the traceparent it was sent.
      const hookCalls: IncomingHttpHeaders[] = []
      const hook = createServer((req, res) => {
        hookCalls.push(req.headers)
        req.resume().on('end', () => res.writeHead(204).end())
      })
      await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve))
      const svc = await spawnService(
        {
          STORAGE_DIR: storage,
          PRE_UPLOAD_HOOK_URL: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/pre-upload?token=secret`,
          HOOK_SECRET: `whsec_${randomBytes(24).toString('base64')}`,
          OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint,
          OTEL_BSP_SCHEDULE_DELAY: '100',
          OTEL_SERVICE_NAME: `filestorage-test-${runtime}`,
          ...(MONGODB_URI ? { MONGODB_URI, MONGODB_DB: `traces_${runtime}_${randomBytes(4).toString('hex')}` } : {}),
        },
        { runtime },
      )
      try {
        expect(svc.output()).toContain(`spans go to ${jaeger.otlpEndpoint}/v1/traces`)
        const traceId = randomBytes(16).toString('hex')
        const parentSpan = randomBytes(8).toString('hex')
        const traceparent = `00-${traceId}-${parentSpan}-01`
        const store = MONGODB_URI ? 'mongo' : 'disk'
        const res = await fetch(`${svc.api}/${store}/upload/traced/a.txt`, { method: 'PUT', headers: { traceparent }, body: 'traced bytes' })
        expect(res.status).toBe(201)

        // The hook's span ends (and is exported) first; the server's last, so with it the trace is whole.
        const trace = await waitFor('the request span in Jaeger', async () => {
          const found = await jaeger.trace(traceId, MONGODB_URI ? 5 : 3)
          return found.spans.some((s) => tagOf(s, 'span.kind') === 'server') ? found : undefined
        })
        const byName = (name: string) => trace.spans.filter((s) => s.operationName === name)
        const server = byName('PUT /filestorage/v1/{store}/upload/{path}')[0]!
        expect(server, JSON.stringify(trace.spans.map((s) => s.operationName))).toBeDefined()
        expect(server.traceID).toBe(traceId)
        expect(server.references).toContainEqual(expect.objectContaining({ refType: 'CHILD_OF', spanID: parentSpan }))
        expect(tagOf(server, 'span.kind')).toBe('server')
        expect(tagOf(server, 'http.route')).toBe('/filestorage/v1/{store}/upload/{path}')
        expect(tagOf(server, 'filestorage.operation')).toBe('upload')
        expect(tagOf(server, 'filestorage.store')).toBe(store)
        expect(Number(tagOf(server, 'http.response.status_code'))).toBe(201)
        expect(trace.processes[server.processID]!.serviceName).toBe(`filestorage-test-${runtime}`)

        const put = byName('store put')[0]!
        expect(put).toBeDefined()
        expect(parentOf(put)).toBe(server.spanID)
        expect(tagOf(put, 'filestorage.path')).toBe('traced/a.txt')
        if (MONGODB_URI) {
          const commands = trace.spans.filter((s) => tagOf(s, 'db.system.name') === 'mongodb')
          expect(commands.length).toBeGreaterThan(0)
          const underPut = (s: JaegerSpan): boolean => {
            const parent = trace.spans.find((p) => p.spanID === parentOf(s))
            return parent !== undefined && (parent.spanID === put.spanID || underPut(parent))
          }
          expect(commands.every(underPut)).toBe(true)
          expect(commands.map((c) => tagOf(c, 'db.operation.name'))).toEqual(expect.arrayContaining([expect.stringMatching(/^(insert|update|findAndModify|find)$/)]))
        }
        // The request id is on the span, as in the log line, which carries the trace id.
        const requestId = res.headers.get('x-request-id')!
        expect(tagOf(server, 'filestorage.request_id')).toBe(requestId)

        // The hook was asked in a CLIENT span under the request's, whose context it received.
        const asked = byName('POST').find((s) => tagOf(s, 'filestorage.hook') === 'pre-upload')!
        expect(asked, JSON.stringify(trace.spans.map((s) => s.operationName))).toBeDefined()
        expect(tagOf(asked, 'span.kind')).toBe('client')
        expect(parentOf(asked)).toBe(server.spanID)
        expect(tagOf(asked, 'url.full')).toMatch(/\/pre-upload$/) // no query: it may carry a secret
        expect(hookCalls.map((h) => h.traceparent)).toEqual([`00-${traceId}-${asked.spanID}-01`])
      } finally {
        hook.close()
        await svc.stop()
        await rm(storage, { recursive: true, force: true })
      }
    })
  }

  it.runIf(CONSUL_HTTP_ADDR)('sends each Consul sync as a trace of its own, its calls carrying traceparent', async () => {
    const proxy = await recordingProxy(CONSUL_HTTP_ADDR!)
    const { startTracing } = await import('../../src/observability/tracing-sdk.js')
    const { ConsulRegistration } = await import('../../src/adapters/service/consul-registration.js')
    const tracing = (await startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint }, { name: 'filestorage-consul-test', version: '0' }))!
    const id = `traced-${randomBytes(4).toString('hex')}`
    const registration = new ConsulRegistration(
      {
        id,
        name: 'traced',
        address: '127.0.0.1',
        port: 9,
        tags: [],
        meta: {},
        check: { http: 'http://127.0.0.1:9/', intervalMs: 60_000, timeoutMs: 1000, deregisterAfterMs: 60_000 },
      },
      { consulAddr: proxy.addr, resyncMs: 200, log: () => {} },
    ).start()
    try {
      await waitFor('the registration', () => registration.registered)
      await waitFor('a second sync', () => proxy.seen.filter((r) => r.method === 'GET').length >= 2)
      await registration.stop()
      await tracing.flush()
      expect(proxy.seen.map((r) => r.method)).toEqual(expect.arrayContaining(['GET', 'PUT']))
      const parents = proxy.seen.map((r) => /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(r.traceparent ?? ''))
      expect(parents.every(Boolean), JSON.stringify(proxy.seen)).toBe(true)
      const traceIds = new Set(parents.map((m) => m![1]))
      const syncs = proxy.seen.filter((r) => r.method === 'GET').length
      expect(traceIds.size).toBeGreaterThanOrEqual(syncs) // a sync (and the deregistration) each a trace of its own
      const [, traceId, spanId] = parents[0]!
      const trace = await jaeger.trace(traceId!, 1)
      const sync = trace.spans.find((s) => s.spanID === spanId)!
      expect(sync.operationName).toBe('consul sync')
      expect(tagOf(sync, 'filestorage.consul.service_id')).toBe(id)
    } finally {
      await registration.stop()
      await tracing.shutdown()
      proxy.close()
    }
  })

  it('passes the trace on to the calls the service makes (tracedFetch), and starts none when off', async () => {
    const seen: IncomingHttpHeaders[] = []
    const receiver = createServer((req, res) => {
      seen.push(req.headers)
      res.end('ok')
    })
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook?token=secret`
    const { startTracing } = await import('../../src/observability/tracing-sdk.js')
    const { inSpan, tracedFetch } = await import('../../src/observability/tracing.js')
    try {
      await tracedFetch(url, { method: 'POST', body: 'x' })
      expect(seen[0]!.traceparent).toBeUndefined() // tracing off: nothing added, nothing sent
      const tracing = (await startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint }, { name: 'filestorage-fetch-test', version: '0' }))!
      try {
        let traceId = ''
        await inSpan('a job', {}, async () => {
          const { trace } = await import('@opentelemetry/api')
          traceId = trace.getActiveSpan()!.spanContext().traceId
          expect((await tracedFetch(url, { method: 'POST', body: 'x' })).status).toBe(200)
        })
        expect(seen[1]!.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`))
        await tracing.flush()
        const trace = await jaeger.trace(traceId, 2)
        const client = trace.spans.find((s) => s.operationName === 'POST')!
        expect(tagOf(client, 'span.kind')).toBe('client')
        expect(seen[1]!.traceparent).toContain(client.spanID)
        expect(tagOf(client, 'url.full')).toBe(url.split('?')[0]) // no query: it may carry a secret
      } finally {
        await tracing.shutdown()
      }
    } finally {
      receiver.close()
    }
  })
})

/** An HTTP proxy in front of `target` (the real Consul agent) that records each request's method, path and traceparent. */
async function recordingProxy(target: string): Promise<{ addr: string; seen: { method: string; path: string; traceparent?: string }[]; close(): void }> {
  const seen: { method: string; path: string; traceparent?: string }[] = []
  const [host, port] = target.replace(/^https?:\/\//, '').split(':') as [string, string]
  const server = createServer((req, res) => {
    seen.push({ method: req.method!, path: req.url!, ...(req.headers.traceparent ? { traceparent: String(req.headers.traceparent) } : {}) })
    const upstream = httpRequest({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers)
      answer.pipe(res)
    })
    upstream.on('error', () => res.destroy())
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { addr: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => server.close() }
}

const parentOf = (span: JaegerSpan) => span.references.find((r) => r.refType === 'CHILD_OF')?.spanID
