/**
 * /metrics as Prometheus scrapes it, parsed by the Prometheus project's own parser: the values move
 * as requests are made, the labels stay bounded whatever the requests carry, the main port's
 * /metrics needs the operator's right, and one scrape covers every WORKERS process on Node and Bun.
 */
import { request as httpRequest } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, hmacKey, hmacToken, keysEnv } from '../helpers/auth.js'
import { RUNTIMES, spawnService } from '../helpers/process-service.js'
import { type Family, parseMetrics, PROMETHEUS_PYTHON, seriesOf, valueOf } from '../helpers/prometheus.js'
import { startTestService, type TestService } from '../helpers/test-service.js'
import { waitFor } from '../helpers/wait.js'
import { newSecret, startReceiver } from '../helpers/webhook-receiver.js'
import { StorageError } from '../../src/storage/index.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const key = hmacKey('ops')

describe.skipIf(!PROMETHEUS_PYTHON)('metrics of one process', () => {
  let svc: TestService
  let writer: string
  let metricsUrl: string

  beforeAll(async () => {
    svc = await startTestService({ AUTH_HMAC_SECRETS: keysEnv(key), METRICS_PORT: '0', METRICS_ON_MAIN_PORT: 'true' })
    metricsUrl = svc.service.metrics!.url
    writer = await hmacToken(key, 'writer', ['files:*:disk:'])
  })
  afterAll(async () => svc?.stop())

  const scrape = async (): Promise<Family[]> => {
    const res = await fetch(metricsUrl)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    return parseMetrics(await res.text())
  }
  const url = (verb: string, path: string) => `${svc.api}/disk/${verb}/${path}`

  it('counts requests by operation, store and status class, their bytes, and the refusals by reason', async () => {
    const before = await scrape()
    const body = Buffer.alloc(4096, 7)
    expect((await fetch(url('upload', 'm/a.bin'), { method: 'PUT', headers: bearer(writer), body })).status).toBe(201)
    const got = await fetch(url('download', 'm/a.bin'), { headers: bearer(writer) })
    expect(Buffer.from(await got.arrayBuffer()).equals(body)).toBe(true)
    expect((await fetch(url('download', 'm/none.bin'), { headers: bearer(writer) })).status).toBe(404)
    expect((await fetch(url('download', 'm/a.bin'))).status).toBe(401)
    expect((await fetch(url('download', 'm/a.bin'), { headers: bearer('not.a.token') })).status).toBe(401)
    const reader = await hmacToken(key, 'reader', ['files:read:disk:other'])
    expect((await fetch(url('download', 'm/a.bin'), { headers: bearer(reader) })).status).toBe(403)
    const after = await scrape()

    const delta = (sample: string, labels: Record<string, string>) => valueOf(after, sample, labels) - valueOf(before, sample, labels)
    const upload = { http_request_method: 'PUT', http_route: '/filestorage/v1/{store}/upload/{path}', filestorage_operation: 'upload', filestorage_store: 'disk' }
    const download = { http_request_method: 'GET', http_route: '/filestorage/v1/{store}/download/{path}', filestorage_operation: 'download', filestorage_store: 'disk' }
    expect(delta('http_server_request_duration_seconds_count', { ...upload, http_response_status_code: '2xx', error_type: '' })).toBe(1)
    expect(delta('http_server_request_duration_seconds_count', { ...download, http_response_status_code: '2xx' })).toBe(1)
    expect(delta('http_server_request_duration_seconds_count', { ...download, http_response_status_code: '4xx', error_type: 'not_found' })).toBe(1)
    expect(delta('http_server_request_duration_seconds_count', { ...download, http_response_status_code: '4xx', error_type: 'unauthorized' })).toBe(2)
    expect(delta('http_server_request_duration_seconds_count', { ...download, http_response_status_code: '4xx', error_type: 'forbidden' })).toBe(1)
    expect(delta('http_server_request_duration_seconds_sum', upload)).toBeGreaterThan(0)
    expect(delta('http_server_request_body_size_bytes_sum', { ...upload, http_response_status_code: '2xx' })).toBe(4096)
    expect(delta('http_server_response_body_size_bytes_sum', { ...download, http_response_status_code: '2xx' })).toBe(4096)
    expect(delta('filestorage_access_refusals_total', { http_response_status_code: '401', reason: 'missing_credentials' })).toBe(1)
    expect(delta('filestorage_access_refusals_total', { http_response_status_code: '401', reason: 'invalid_token' })).toBe(1)
    expect(delta('filestorage_access_refusals_total', { http_response_status_code: '403', reason: 'insufficient_scope' })).toBe(1)
    expect(delta('filestorage_store_operation_duration_seconds_count', { filestorage_store: 'disk', filestorage_store_operation: 'put', error_type: '' })).toBe(1)
    expect(delta('filestorage_store_operation_duration_seconds_count', { filestorage_store: 'disk', filestorage_store_operation: 'read', error_type: 'not_found' })).toBe(1)
  })

  it('shows the stores, the sweeper and the process', async () => {
    const m = await scrape()
    expect(valueOf(m, 'filestorage_store_up', { filestorage_store: 'disk', filestorage_store_driver: 'disk' })).toBe(1)
    expect(valueOf(m, 'filestorage_store_writable', { filestorage_store: 'disk' })).toBe(1)
    expect(valueOf(m, 'filestorage_store_health_latency_seconds', { filestorage_store: 'disk' })).toBeGreaterThan(0)
    await waitFor('the start-up sweep', async () => valueOf(await scrape(), 'filestorage_sweep_runs_total', { filestorage_store: 'disk', outcome: 'ok' }) >= 1)
    expect(valueOf(m, 'process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024)
    expect(valueOf(m, 'process_cpu_seconds_total')).toBeGreaterThan(0)
  })

  it('counts an upload in flight and the bytes it has received, until it ends', async () => {
    let release!: () => void
    const released = new Promise<void>((r) => (release = r))
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(new Uint8Array(3000))
        await released
        controller.enqueue(new Uint8Array(1000))
        controller.close()
      },
    })
    const uploading = fetch(url('upload', 'm/slow.bin'), { method: 'PUT', headers: bearer(writer), body, duplex: 'half' } as RequestInit)
    const during = await waitFor('the upload to count', async () => {
      const m = await scrape()
      return valueOf(m, 'filestorage_upload_bytes_in_flight', { filestorage_store: 'disk' }) >= 3000 ? m : undefined
    })
    expect(valueOf(during, 'filestorage_uploads_in_flight', { filestorage_store: 'disk' })).toBe(1)
    expect(valueOf(during, 'http_server_active_requests', { filestorage_operation: 'upload' })).toBe(1)
    release()
    expect((await uploading).status).toBe(201)
    const after = await scrape()
    expect(valueOf(after, 'filestorage_uploads_in_flight', { filestorage_store: 'disk' })).toBe(0)
    expect(valueOf(after, 'filestorage_upload_bytes_in_flight', { filestorage_store: 'disk' })).toBe(0)
    expect(valueOf(after, 'http_server_active_requests', { filestorage_operation: 'upload' })).toBe(0)
  })

  it('observes a store method replaced after it was first called: the new one runs, and is counted', async () => {
    const disk = svc.service.stores.get('disk')!
    const lookups = { filestorage_store: 'disk', filestorage_store_operation: 'lookup', error_type: 'store_unavailable' }
    expect((await fetch(url('info', 'm/none.bin'), { headers: bearer(writer) })).status).toBe(404)
    const before = await scrape()
    disk.lookup = () => Promise.reject(new StorageError('store_unavailable', 'the store is away'))
    try {
      expect((await fetch(url('info', 'm/none.bin'), { headers: bearer(writer) })).status).toBe(503)
    } finally {
      // The own property goes; the class's method shows through again.
      delete (disk as { lookup?: unknown }).lookup
    }
    expect((await fetch(url('info', 'm/none.bin'), { headers: bearer(writer) })).status).toBe(404)
    expect(valueOf(await scrape(), 'filestorage_store_operation_duration_seconds_count', lookups) - valueOf(before, 'filestorage_store_operation_duration_seconds_count', lookups)).toBe(1)
  })

  it('keeps the series bounded: no path, principal, request id or unknown route makes a new one', async () => {
    const round = async (tag: string) => {
      const token = await hmacToken(key, `user-${tag}`, ['files:*:disk:'])
      await fetch(url('upload', `c/${tag}/file-${tag}.txt`), { method: 'PUT', headers: { ...bearer(token), 'X-Request-Id': `rid-${tag}` }, body: tag })
      await fetch(url('download', `c/${tag}/file-${tag}.txt`), { headers: bearer(token) })
      await fetch(url('download', `c/${tag}/missing-${tag}`), { headers: bearer(token) })
      await fetch(`${svc.origin}/scanner/${tag}/wp-login.php`)
      await fetch(`${svc.api}/store-${tag}/download/x`, { headers: bearer(token) })
      await fetch(url('download', `c/${tag}`), { method: `M${tag.slice(0, 4).toUpperCase()}` }).catch(() => {})
    }
    await round('first')
    const settled = seriesOf(await scrape())
    for (let i = 0; i < 20; i++) await round(`r${i}x${Math.random().toString(36).slice(2, 8)}`)
    const after = await scrape()
    // Node's own nodejs_active_{handles,requests,resources} name the kinds of handle alive at the time (a small set of Node's).
    const grown = [...seriesOf(after)].filter((s) => !settled.has(s) && !s.startsWith('nodejs_active_'))
    expect(grown).toEqual([])
    const labelValues = after.flatMap((f) => f.samples.flatMap((s) => Object.values(s.labels)))
    for (const value of labelValues) expect(value).not.toMatch(/user-|file-|missing-|rid-|wp-login|store-r/)
  })

  it('serves /metrics on the main port to the operator only', async () => {
    const main = `${svc.origin}/metrics`
    expect((await fetch(main)).status).toBe(401)
    expect((await fetch(main, { headers: bearer(writer) })).status).toBe(403)
    const everything = await hmacToken(key, 'root', ['files:*:*:'])
    expect((await fetch(main, { headers: bearer(everything) })).status).toBe(403)
    const operator = await hmacToken(key, 'ops', ['filestorage:admin'])
    const res = await fetch(main, { headers: bearer(operator) })
    expect(res.status).toBe(200)
    const families = await parseMetrics(await res.text())
    expect(valueOf(families, 'filestorage_store_up', { filestorage_store: 'disk' })).toBe(1)
  })
})

describe.skipIf(!PROMETHEUS_PYTHON)('metrics of the events', () => {
  it('shows the backlog against its limit, and what waits for each consumer, until it is delivered', async () => {
    const secret = newSecret()
    let up = false
    const receiver = await startReceiver([secret], () => (up ? { status: 204 } : { status: 503 }))
    const svc = await startTestService({
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: secret,
      WEBHOOK_RETRY_DELAY_MAX: '200ms',
      EVENTS_BACKLOG_MAX: '50',
      METRICS_PORT: '0',
    })
    const scrape = async () => parseMetrics(await (await fetch(svc.service.metrics!.url)).text())
    const store = { filestorage_store: 'disk' }
    const lane = { filestorage_store: 'disk', filestorage_events_consumer: 'default' }
    try {
      const idle = await scrape()
      expect(valueOf(idle, 'filestorage_events_backlog_limit', store)).toBe(50)
      expect(valueOf(idle, 'filestorage_events_backlog', store)).toBe(0)
      expect(valueOf(idle, 'filestorage_events_pending', lane)).toBe(0)
      for (const name of ['a', 'b', 'c']) expect((await fetch(`${svc.api}/disk/upload/ev/${name}.txt`, { method: 'PUT', body: name })).status).toBe(201)

      // The endpoint answers 503: the three events wait for it, and count in the backlog.
      const waiting = await waitFor('three events pending', async () => {
        const m = await scrape()
        return valueOf(m, 'filestorage_events_pending', lane) === 3 && valueOf(m, 'filestorage_events_backlog', store) >= 3 ? m : undefined
      })
      expect(valueOf(waiting, 'filestorage_events_dead_letters', lane)).toBe(0)

      up = true
      await receiver.until(() => receiver.taken.length >= 3, 15_000, 'the three events delivered')
      await waitFor('the backlog drained', async () => {
        const m = await scrape()
        return valueOf(m, 'filestorage_events_pending', lane) === 0 && valueOf(m, 'filestorage_events_backlog', store) === 0
      })
    } finally {
      await svc.stop()
      await receiver.close()
    }
    // Stopped, its events' gauges show nothing more.
    const { registry } = await import('../../src/observability/metrics.js')
    expect(await registry.getSingleMetricAsString('filestorage_events_pending')).not.toMatch(/filestorage_events_consumer="default"/)
  })
})

/** A GET on a connection of its own, so that the kernel or node:cluster may give it to any worker. */
function getOnNewConnection(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers: { Connection: 'close' } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode!))
    })
    req.on('error', reject)
    req.end()
  })
}

for (const runtime of RUNTIMES) {
  describe.skipIf(!PROMETHEUS_PYTHON)(`metrics with WORKERS=2 on ${runtime}`, () => {
    it('sums every worker in one scrape of the primary', async () => {
      const storage = await mkdtemp(join(tmpdir(), 'filestorage-metrics-'))
      const svc = await spawnService(
        { STORAGE_DIR: storage, WORKERS: '2', METRICS_PORT: '0', METRICS_ON_MAIN_PORT: 'true', LOG_REQUESTS: 'true' },
        { runtime },
      )
      try {
        const metricsUrl = await waitFor('the metrics listener', () => /metrics on (http:\/\/[^ "]+\/metrics)/.exec(svc.output())?.[1])
        const scrape = async () => parseMetrics(await (await fetch(metricsUrl)).text())
        const help = { http_route: '/filestorage/v1/help', filestorage_operation: 'help', http_response_status_code: '2xx' }
        const before = valueOf(await scrape(), 'http_server_request_duration_seconds_count', help)
        // Requests on new connections until both workers have served some (their log lines carry their pid).
        let sent = 0
        const servedBy = () => new Set([...svc.output().matchAll(/"pid":(\d+)[^\n]*"msg":"GET \/filestorage\/v1\/help 200"/g)].map((m) => m[1]))
        while (sent < 200 && (sent < 20 || servedBy().size < 2)) {
          expect(await getOnNewConnection(`${svc.api}/help`)).toBe(200)
          sent++
        }
        expect(servedBy().size).toBe(2)
        const after = await scrape()
        expect(valueOf(after, 'http_server_request_duration_seconds_count', help) - before).toBe(sent)
        // Each worker probes the store; the primary keeps the lowest (up only when every worker sees it up).
        expect(valueOf(after, 'filestorage_store_up', { filestorage_store: 'disk' })).toBe(1)
        expect(valueOf(after, 'process_resident_memory_bytes')).toBeGreaterThan(0)
        // On the main port (anonymous mode: whoever reaches it is the operator), the worker that
        // answers has the primary sum them all too.
        const main = await fetch(`${svc.origin}/metrics`)
        expect(main.status).toBe(200)
        expect(valueOf(await parseMetrics(await main.text()), 'http_server_request_duration_seconds_count', help) - before).toBe(sent)
      } finally {
        await svc.stop()
        await rm(storage, { recursive: true, force: true })
      }
    })
  })
}
