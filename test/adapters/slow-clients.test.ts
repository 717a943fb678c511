/**
 * Slow and stalled clients against the service as a process, with short timeouts: headers that
 * never finish, bodies that stop (also one shorter than its Content-Length) and JSON bodies that
 * trickle are cut with a `408 request_timeout` JSON answer in the configured time, and release
 * their descriptors and temporary files; a slowloris of 300 connections and 50 stalled bodies does
 * not keep a normal client from being served; a download the client stops reading is cut and its
 * file closed, while a slow one that keeps reading, an idle keep-alive connection and a request the
 * server is slow to answer are not; MAX_CONNECTIONS bounds the connections.
 *
 * On both runtimes: the node adapter on Node, the bun adapter on Bun. Bun's server has no setting
 * for request headers: it closes a connection whose request has not arrived whole within its own
 * 10 s, without an answer (src/adapters/bun/server.ts), and MAX_CONNECTIONS bounds the requests in
 * flight there, answering 503 beyond it.
 */
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openRawRequest, rawRequest, readUntilClosed } from '../helpers/http.js'
import { holdings, holdsOpen, waitUntilReleased } from '../helpers/leftovers.js'
import { spawnChild } from '../helpers/child-process.js'
import { BUN, BUN_ARGS, type ProcessService, type Runtime, RUNTIMES, spawnService } from '../helpers/process-service.js'
import { serve } from '../../src/adapters/node/server.js'
import { waitFor } from '../helpers/wait.js'

/**
 * The send idle timeout is the shortest: every stalled request below outlives it and must still be
 * answered 408 by its own timeout, not cut by it (nothing of an answer waits to be sent).
 */
const TIMEOUTS = { HEADERS_TIMEOUT_SECONDS: '2', BODY_IDLE_TIMEOUT_SECONDS: '2', REQUEST_TIMEOUT_SECONDS: '3', SEND_IDLE_TIMEOUT_SECONDS: '1' }
const SEND_IDLE_MS = 1000
/** Generous: the cut must come within the configured 2-3 s, plus Node's once-a-second check (Bun's timer: 4 s steps) and a loaded machine. */
const CUT_WITHIN_MS = 10_000

/**
 * How each runtime treats request headers that do not arrive: node:http answers 408 at
 * HEADERS_TIMEOUT_SECONDS; Bun closes the connection 10 s after it opened (its timer checks every
 * 4 s), without an answer.
 */
const STALLED_HEADERS: Record<Runtime, { answer: { status: string; code?: string }; withinMs: number }> = {
  node: { answer: { status: 'HTTP/1.1 408 Request Timeout', code: 'request_timeout' }, withinMs: CUT_WITHIN_MS },
  bun: { answer: { status: '' }, withinMs: 20_000 },
}

const request = (head: string, headers: Record<string, string>, body = '') =>
  `${head} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`

/** The status line and JSON error code of a raw answer. */
function answer(raw: string): { status: string; code?: string } {
  const status = raw.split('\r\n')[0] ?? ''
  const json = raw.slice(raw.indexOf('\r\n\r\n') + 4)
  try {
    return { status, code: (JSON.parse(json) as { error: { code: string } }).error.code }
  } catch {
    return { status }
  }
}

/**
 * Reads `socket` until the server closes it (or `timeoutMs` passes), no faster than `bytesPerMs`:
 * the status line, and how many bytes of body came.
 */
function readSlowly(socket: Socket, bytesPerMs: number, timeoutMs: number): Promise<{ status: string; bodyBytes: number }> {
  return new Promise((resolve) => {
    const start = Date.now()
    let head = ''
    let total = 0
    socket.on('data', (chunk: Buffer) => {
      if (!head.includes('\r\n\r\n')) head += chunk.toString('latin1')
      total += chunk.length
      const ahead = total / bytesPerMs - (Date.now() - start)
      if (ahead > 0) {
        socket.pause()
        setTimeout(() => socket.resume(), ahead)
      }
    })
    const timer = setTimeout(() => socket.destroy(), timeoutMs)
    socket.once('close', () => {
      clearTimeout(timer)
      const end = head.indexOf('\r\n\r\n')
      resolve({ status: head.split('\r\n')[0] ?? '', bodyBytes: end < 0 ? 0 : total - end - 4 })
    })
  })
}

// The runtimes side by side (each its own service and folder): almost all of this file is waiting
// out timeouts (Bun's 10 s for headers among them), so one runtime's waits overlap the other's.
// Within a runtime the tests run one after another: they count the service's descriptors and files.
describe.concurrent.each(RUNTIMES)('on %s', (runtime) => {
  let dir: string
  let svc: ProcessService
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'filestorage-slow-'))
    svc = await spawnService({ STORAGE_DIR: dir, ...TIMEOUTS }, { runtime })
  })
  afterAll(async () => {
    await svc?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  describe.sequential('stalled requests', () => {
    const headers = STALLED_HEADERS[runtime]
    it.each([
      ['headers that never end', request('GET /filestorage/v1/check', {}).slice(0, -2)],
      ['a connection that sends nothing', ''],
    ])(`cuts %s ${runtime === 'node' ? 'with 408 request_timeout' : '(Bun closes it, without an answer)'}, leaving nothing`, async (_what, raw) => {
      const before = await holdings(svc, dir)
      const socket = await openRawRequest(svc.origin, raw)
      expect(answer(await readUntilClosed(socket, headers.withinMs))).toEqual(headers.answer)
      await waitUntilReleased(svc, dir, before)
    })

    it.each([
      ['a PUT body shorter than its Content-Length', request('PUT /filestorage/v1/disk/upload/short.bin', { 'Content-Length': '1000' }, 'x'.repeat(100))],
      ['a chunked PUT that stops', request('PUT /filestorage/v1/disk/upload/chunked.bin', { 'Transfer-Encoding': 'chunked' }, '5\r\nhello\r\n')],
      [
        'a form that stops in a file',
        request(
          'POST /filestorage/v1/disk/upload/form',
          { 'Content-Type': 'multipart/form-data; boundary=B', 'Content-Length': '10000' },
          '--B\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nabc\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="b.txt"\r\n\r\nstal',
        ),
      ],
      ['a JSON body that stops', request('POST /filestorage/v1/disk/move/a.txt', { 'Content-Type': 'application/json', 'Content-Length': '100' }, '{"to":')],
    ])('cuts %s with 408 request_timeout, leaving nothing', async (_what, raw) => {
      const before = await holdings(svc, dir)
      const socket = await openRawRequest(svc.origin, raw)
      expect(answer(await readUntilClosed(socket, CUT_WITHIN_MS))).toEqual({ status: 'HTTP/1.1 408 Request Timeout', code: 'request_timeout' })
      await waitUntilReleased(svc, dir, before)
    })

    it.each(['move', 'sign'])('cuts a JSON body that trickles (never idle, never done) at the request deadline: %s', async (verb) => {
      const socket = await openRawRequest(svc.origin, request(`POST /filestorage/v1/disk/${verb}/a.txt`, { 'Content-Type': 'application/json', 'Content-Length': '100' }))
      const trickle = setInterval(() => socket.writable && socket.write(' '), 500)
      try {
        expect(answer(await readUntilClosed(socket, CUT_WITHIN_MS))).toEqual({ status: 'HTTP/1.1 408 Request Timeout', code: 'request_timeout' })
      } finally {
        clearInterval(trickle)
      }
    })

    it('cuts a stalled uploadpart with 408 and keeps no part', async () => {
      const { uploadId } = (await rawRequest(svc.origin, 'POST', '/filestorage/v1/disk/createupload/stalled-part.bin')).json<{ uploadId: string }>()
      const socket = await openRawRequest(svc.origin, request(`PUT /filestorage/v1/disk/uploadpart/${uploadId}?part=1`, { 'Content-Length': '1000' }, 'x'.repeat(10)))
      expect(answer(await readUntilClosed(socket, CUT_WITHIN_MS))).toEqual({ status: 'HTTP/1.1 408 Request Timeout', code: 'request_timeout' })
      expect((await rawRequest(svc.origin, 'GET', `/filestorage/v1/disk/uploadstatus/${uploadId}`)).json()).toMatchObject({ parts: [] })
    })

    it('cuts a stalled tus PATCH with 408, keeping the bytes it received (tus resumes from them)', async () => {
      const tus = { 'Tus-Resumable': '1.0.0' }
      const created = await rawRequest(svc.origin, 'POST', '/filestorage/v1/disk/tus/', { headers: { ...tus, 'Upload-Length': '1000' } })
      const location = new URL(String(created.headers.location), svc.origin).pathname
      const socket = await openRawRequest(
        svc.origin,
        request(`PATCH ${location}`, { ...tus, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': '1000' }, 'x'.repeat(10)),
      )
      expect(answer(await readUntilClosed(socket, CUT_WITHIN_MS))).toEqual({ status: 'HTTP/1.1 408 Request Timeout', code: 'request_timeout' })
      expect((await rawRequest(svc.origin, 'HEAD', location, { headers: tus })).headers['upload-offset']).toBe('10')
    })
  })

  describe.sequential('answers the client stops taking', () => {
    /**
     * Node sees a client take bytes when the kernel takes more of a pending write, which it does each
     * time a third of the socket's send buffer has gone (Linux grows that buffer up to tcp_wmem's
     * maximum). A file three such buffers long does not fit in the buffers of a client that stops
     * reading; a reader that takes one buffer per timeout frees a third of it three times per timeout,
     * and takes three timeouts over the whole file.
     */
    let bufferMax: number
    let size: number
    beforeAll(async () => {
      bufferMax = Number((await readFile('/proc/sys/net/ipv4/tcp_wmem', 'utf8')).trim().split(/\s+/)[2])
      size = 3 * bufferMax
      const put = await rawRequest(svc.origin, 'PUT', '/filestorage/v1/disk/upload/large.bin', { body: Buffer.alloc(size, 5), timeoutMs: 30_000 })
      expect(put.status).toBe(201)
    })
    const download = () => openRawRequest(svc.origin, request('GET /filestorage/v1/disk/download/large.bin', { Connection: 'close' }))
    // Under any name: the bun adapter sends a large file from a hard link of it (src/adapters/bun/local-files.ts).
    const largeFileOpen = () => holdsOpen(svc.pid, join(dir, 'large.bin'))

    it('cuts a download the client stopped reading, and closes its file', async () => {
      const socket = await download()
      let received = 0
      const stop = (chunk: Buffer) => {
        received += chunk.length
        socket.pause() // reads its first bytes, then nothing
      }
      socket.on('data', stop)
      await waitFor('the download to hold its file open', largeFileOpen, { timeoutMs: 5000 })
      // Released while the client still reads nothing: the service cut the answer itself.
      await waitFor('the stalled download to be cut and its file closed', async () => !(await largeFileOpen()), { timeoutMs: CUT_WITHIN_MS })
      socket.off('data', stop)
      const closed = readUntilClosed(socket, CUT_WITHIN_MS)
      socket.resume()
      const rest = Buffer.byteLength(await closed, 'latin1')
      expect(received + rest).toBeLessThan(size) // what the buffers held, then the end: cut short
    })

    it('never cuts a download that keeps going, however slowly, though it lasts longer than the timeout', async () => {
      const { status, bodyBytes } = await readSlowly(await download(), bufferMax / SEND_IDLE_MS, 60_000)
      expect({ status, bodyBytes }).toEqual({ status: 'HTTP/1.1 200 OK', bodyBytes: size })
    })

    it('never cuts an idle keep-alive connection, nor a request the server is slow to answer', async () => {
      const socket = await openRawRequest(svc.origin, request('GET /filestorage/v1/check', {}))
      const first = String((await once(socket, 'data', { signal: AbortSignal.timeout(5000) }))[0])
      expect(first).toMatch(/^HTTP\/1\.1 200 /)
      // node:http keeps an idle connection 65 s, whatever the send idle timeout; on Bun, whose server
      // has one timer per connection, the send idle timeout is also the keep-alive timeout.
      await new Promise((r) => setTimeout(r, runtime === 'node' ? 3 * SEND_IDLE_MS : SEND_IDLE_MS / 2))
      socket.write(request('GET /filestorage/v1/check', { Connection: 'close' }))
      expect(answer(await readUntilClosed(socket, CUT_WITHIN_MS)).status).toBe('HTTP/1.1 200 OK')

      // The service's own work (a long completeupload): the runtime's server with a handler that takes 3 timeouts.
      const slow = await slowServer(runtime, 3 * SEND_IDLE_MS)
      try {
        const raw = await readUntilClosed(await openRawRequest(slow.url, request('GET /', { Connection: 'close' })), CUT_WITHIN_MS)
        expect(raw).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\ndone$/)
      } finally {
        await slow.stop()
      }
    })
  })

  describe.sequential('a slowloris', () => {
    it('of 300 connections and 50 stalled bodies neither stops a normal client nor leaves anything once cut', { timeout: 120_000 }, async () => {
      const file = Buffer.alloc(256 * 1024, 7)
      expect((await rawRequest(svc.origin, 'PUT', '/filestorage/v1/disk/upload/served.bin', { body: file })).status).toBe(201)
      const before = await holdings(svc, dir)

      const sockets: Socket[] = []
      for (let i = 0; i < 300; i++) {
        sockets.push(await openRawRequest(svc.origin, `GET /filestorage/v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-${i}: `))
      }
      for (let i = 0; i < 50; i++) {
        sockets.push(await openRawRequest(svc.origin, request(`PUT /filestorage/v1/disk/upload/stalled/${i}.bin`, { 'Content-Length': '1000000' }, 'x'.repeat(1000))))
      }
      const closed = sockets.map((s) => readUntilClosed(s, CUT_WITHIN_MS * 2))
      // A normal client meanwhile: every download whole and correct.
      let served = 0
      const until = Date.now() + 3000
      while (Date.now() < until) {
        const res = await rawRequest(svc.origin, 'GET', '/filestorage/v1/disk/download/served.bin', { timeoutMs: 5000 })
        expect(res.status).toBe(200)
        expect(res.body.equals(file)).toBe(true)
        served++
      }
      expect(served).toBeGreaterThan(0)
      // Every slow connection is cut by the server, with a 408 when it could still be answered (on
      // Bun, whose server closes stalled headers itself, the stalled bodies).
      const answers = (await Promise.all(closed)).map(answer)
      expect(answers.slice(0, 300)).toEqual(Array(300).fill(STALLED_HEADERS[runtime].answer))
      expect(answers.slice(300)).toEqual(Array(50).fill({ status: 'HTTP/1.1 408 Request Timeout', code: 'request_timeout' }))
      await waitUntilReleased(svc, dir, before)
    })
  })

  // Bun.serve shows no connections: there the bound is on requests in flight (src/adapters/bun/server.ts).
  if (runtime === 'bun') {
    describe.sequential('MAX_CONNECTIONS', () => {
      it('answers requests beyond the bound of requests in flight 503 and serves again once some end', async () => {
        const small = await spawnService({ STORAGE_DIR: join(dir, 'small-bun'), MAX_CONNECTIONS: '3' }, { runtime })
        try {
          // Three requests in flight: uploads whose bodies wait (the body idle timeout is 30 s here).
          const held = await Promise.all(
            [1, 2, 3].map((i) => openRawRequest(small.origin, request(`PUT /filestorage/v1/disk/upload/held-${i}.bin`, { 'Content-Length': '1000' }, 'x'))),
          )
          await waitFor('the uploads to be in flight', async () => (await rawRequest(small.origin, 'GET', '/filestorage/v1/check')).status === 503, { timeoutMs: 5000 })
          const refused = await rawRequest(small.origin, 'GET', '/filestorage/v1/check')
          expect({ status: refused.status, connection: refused.headers.connection, retryAfter: refused.headers['retry-after'] }).toEqual({
            status: 503,
            connection: 'close',
            retryAfter: '1',
          })
          expect(refused.json()).toMatchObject({ error: { code: 'store_unavailable' } })
          for (const s of held) s.destroy()
          await waitFor('a request to be served again', async () => (await rawRequest(small.origin, 'GET', '/filestorage/v1/check')).status === 200, { timeoutMs: 5000 })
        } finally {
          await small.stop()
        }
      })
    })
  } else {
    describe.sequential('MAX_CONNECTIONS', () => {
      it('refuses connections beyond the bound and serves again once some close', async () => {
        const small = await spawnService({ STORAGE_DIR: join(dir, 'small'), MAX_CONNECTIONS: '3' })
        try {
          // Three connections the server has surely accepted: each is answered, and stays open (keep-alive).
          // (A count of the process's descriptors, as before, moves with any other descriptor it opens or
          // closes meanwhile, an idle connection of the ready probe among them: it once timed out in CI.)
          const held = await Promise.all([1, 2, 3].map(() => openRawRequest(small.origin, 'GET /filestorage/v1/check HTTP/1.1\r\nHost: x\r\n\r\n')))
          const answers = await Promise.all(held.map(async (s) => String((await once(s, 'data', { signal: AbortSignal.timeout(5000) }))[0])))
          for (const a of answers) expect(a).toMatch(/^HTTP\/1\.1 200 /)
          await expect(rawRequest(small.origin, 'GET', '/filestorage/v1/check', { timeoutMs: 5000 })).rejects.toThrow()
          for (const s of held) s.destroy()
          await waitFor('a connection to be served again', async () => (await rawRequest(small.origin, 'GET', '/filestorage/v1/check')).status === 200, { timeoutMs: 5000 })
        } finally {
          await small.stop()
        }
      })
    })
  }
})

/**
 * A server of `runtime` (the node adapter's serve in this process, the bun adapter's in a Bun
 * process) whose handler takes `answerMs` to answer, with the send idle timeout of the tests.
 */
async function slowServer(runtime: Runtime, answerMs: number): Promise<{ url: string; stop(): Promise<unknown> }> {
  if (runtime === 'node') {
    const slow = await serve(() => new Promise<Response>((r) => setTimeout(() => r(new Response('done')), answerMs)), {
      host: '127.0.0.1',
      port: 0,
      sendIdleTimeoutMs: SEND_IDLE_MS,
    })
    return { url: slow.url, stop: () => slow.stop(1000) }
  }
  const script = [
    `const { serve } = await import(${JSON.stringify(new URL('../../src/adapters/bun/server.ts', import.meta.url).pathname)})`,
    `const slow = await serve(() => new Promise((r) => setTimeout(() => r(new Response('done')), ${answerMs})), { host: '127.0.0.1', port: 0, sendIdleTimeoutMs: ${SEND_IDLE_MS} })`,
    'console.log(`listening ${slow.url}`)',
  ].join('\n')
  const child = spawnChild(BUN!, [...BUN_ARGS, '-e', script]) // only ever on Bun, so there
  const url = await waitFor('the Bun server to listen', () => /listening (\S+)/.exec(child.output())?.[1], { timeoutMs: 10_000 })
  return { url, stop: () => child.stop('SIGKILL') }
}
