/**
 * Serves a fetch handler (the Hono app) with Bun.serve, holding the limits the node adapter holds
 * with node:http's own settings (SPEC 6, "slow and stuck clients"), from what Bun offers: one idle
 * timer per connection (`idleTimeout`, `server.timeout(request, seconds)`) and a count of the
 * requests in flight. How each limit is kept:
 *
 * - While the service works on a request, Bun's idle timer is off: a long completeupload is not
 *   cut, and a body that stalls is cut by its own idle timeout where it is read (request-body.ts),
 *   which answers 408.
 * - Once the answer is given, the timer is the send idle timeout: Bun's timer counts the bytes the
 *   kernel takes, so a client that stops reading is cut, and Bun cancels the body's stream (or stops
 *   its sendfile), which closes the file. The same timer then bounds an idle kept-alive connection:
 *   its keep-alive timeout is the send idle timeout (node:http keeps its own 65 s). It is never
 *   shorter than asked: Bun counts it in steps of about 4 s and rounds up.
 * - Request headers: Bun.serve has no setting. Its HTTP server (uWebSockets) closes a connection
 *   whose request has not arrived whole within 10 s of its opening (its slowloris guard), without
 *   an answer; on a kept-alive connection the keep-alive timeout bounds the next request's headers.
 * - The bound on connections: Bun.serve tells neither connections nor their count; requests in
 *   flight beyond `maxConnections` are answered 503 at once and their connection closed.
 *
 * Bun resolves `.` and `..` segments and backslashes of the request target before the app sees it
 * (WHATWG URL parsing), so such a request acts on the path it resolves to, never outside a store's
 * root, where node:http answers 400 invalid_path (docs/deployment.md).
 */
import { errorBody } from '../../handlers/index.js'
import { hostPort } from '../host-port.js'
import type { FetchHandler, HttpServer, ServeOptions } from '../service/service.js'
import { type BunServer, bun } from './bun-api.js'

export type { ServeOptions }

export interface RunningServer extends HttpServer {
  server: BunServer
}

/** What the app gets as its environment (Hono's `c.env`): the server, and the request Bun made. */
export interface BunEnv {
  server: BunServer
  /** The request as Bun made it (a middleware may replace `c.req.raw`); Bun's per-request calls take this one. */
  request: Request
}

/** Bun's idle timer takes at most this many seconds. */
const MAX_IDLE_SECONDS = 255

export async function serve(fetch: FetchHandler, options: ServeOptions & { reusePort?: boolean }): Promise<RunningServer> {
  const sendIdle = idleSeconds(options.sendIdleTimeoutMs ?? 60_000)
  const keepAlive = `timeout=${sendIdle}`
  const maxInFlight = options.maxConnections ?? Number.POSITIVE_INFINITY
  const server = bun().serve({
    hostname: options.host,
    port: options.port,
    // With WORKERS, every worker binds the port (SO_REUSEPORT); alone, the port must be free.
    reusePort: options.reusePort ?? false,
    idleTimeout: sendIdle,
    // Upload sizes are the service's to judge (MAX_UPLOAD_BYTES, 413 as JSON), not Bun's 128 MB default.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    // Bun's development mode answers errors with a page showing the source.
    development: false,
    async fetch(request, server) {
      server.timeout(request, 0)
      if (server.pendingRequests > maxInFlight) return busy(maxInFlight)
      const env: BunEnv = { server, request }
      const response = await fetch(request, env)
      server.timeout(request, sendIdle)
      // What node:http announces too: a client (Node's http.Agent, for one) lets an idle connection
      // go before the server closes it, rather than sending a request on a connection being closed.
      try {
        response.headers.set('Keep-Alive', keepAlive)
      } catch {
        // an answer whose headers cannot change (Response.redirect) goes as it is
      }
      return response
    },
    // Hono answers every error of the app; this is for what escapes it (a bug): still JSON.
    error: (error) => {
      console.error('[filestorage] unhandled error:', error)
      return Response.json(errorBody('store_unavailable', 'the service could not answer'), { status: 500 })
    },
  })
  const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host
  return { server, port: server.port, url: `http://${hostPort(host, server.port)}`, stop: (ms) => stop(server, ms) }
}

/** The answer beyond the bound: 503, and the connection closed so that the client goes elsewhere. */
function busy(maxInFlight: number): Response {
  return Response.json(
    errorBody('store_unavailable', `the service is serving as many requests as it may (MAX_CONNECTIONS=${maxInFlight}); try again`),
    { status: 503, headers: { 'Retry-After': '1', Connection: 'close' } },
  )
}

const idleSeconds = (ms: number) => Math.min(MAX_IDLE_SECONDS, Math.max(1, Math.ceil(ms / 1000)))

/** Stops accepting, lets the requests in flight finish up to `timeoutMs`, then closes what is left. */
async function stop(server: BunServer, timeoutMs: number): Promise<void> {
  const closed = server.stop(false)
  // Keep-alive connections go idle after their request: close them as they do.
  const sweeper = setInterval(() => server.closeIdleConnections(), 100)
  server.closeIdleConnections()
  const deadline = setTimeout(() => void server.stop(true), timeoutMs)
  try {
    await closed
  } finally {
    clearTimeout(deadline)
    clearInterval(sweeper)
  }
}
