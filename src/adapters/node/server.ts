/**
 * Serves a fetch handler (the Hono app) over node:http, with a graceful stop: stop accepting, let
 * the requests in flight finish (up to a deadline), then close what is left.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { getRequestListener } from '@hono/node-server'
import { errorBody } from '../../handlers/index.js'
import { hostPort } from '../host-port.js'
import { rawTargetProblem } from '../../handlers/raw-target.js'

export interface ServeOptions {
  host: string
  port: number
}

export interface RunningServer {
  server: Server
  /** The bound port (useful with port 0). */
  port: number
  /** `http://host:port`, with a loopback host when bound to every interface. */
  url: string
  /** Stops accepting, waits for requests in flight up to `timeoutMs`, then closes every connection. */
  stop(timeoutMs: number): Promise<void>
}

type Fetch = Parameters<typeof getRequestListener>[0]

export async function serve(fetch: Fetch, options: ServeOptions): Promise<RunningServer> {
  const listener = getRequestListener(fetch)
  // Room for 16 KiB of X-File-Metadata (SPEC 3.1) beside the other headers; Node's default is 16 KiB in all.
  const server = createServer({ maxHeaderSize: 64 * 1024 }, (req, res) => {
    const problem = rawTargetProblem(req.url ?? '/')
    if (problem) {
      const body = JSON.stringify(errorBody('invalid_path', problem))
      res.writeHead(400, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) })
      res.end(body)
      return
    }
    closeIfBodyUnread(req, res)
    void listener(req, res)
  })
  server.on('clientError', answerClientError)
  // Large transfers over slow links: no per-request deadline, but a bound on idle header waits.
  server.requestTimeout = 0
  server.headersTimeout = 60_000
  server.keepAliveTimeout = 65_000 // above nginx's and typical load balancers' idle timeouts

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host
  return { server, port, url: `http://${hostPort(host, port)}`, stop: (ms) => stop(server, ms) }
}

/** Requests Node cannot even parse get a JSON error too, not an empty 400. */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable || !error.code?.startsWith('HPE_')) {
    socket.destroy()
    return
  }
  const tooLarge = error.code === 'HPE_HEADER_OVERFLOW'
  const body = JSON.stringify(
    errorBody('invalid_request', tooLarge ? 'the request headers are too large (64 KiB at most)' : 'malformed HTTP request'),
  )
  socket.end(
    `HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  )
}

/**
 * An answer given before the request body was read to its end (an early 413 or 412) closes the
 * connection, as nginx does: the client stops sending and never reuses a connection that still
 * carries the rest of that body.
 */
function closeIfBodyUnread(req: IncomingMessage, res: ServerResponse): void {
  const writeHead = res.writeHead
  res.writeHead = function (this: ServerResponse, ...args: Parameters<typeof writeHead>) {
    if (!req.complete) this.shouldKeepAlive = false
    return writeHead.apply(this, args)
  } as typeof writeHead
}

function stop(server: Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const deadline = setTimeout(() => server.closeAllConnections(), timeoutMs)
    // Keep-alive connections go idle after their request: close them as they do.
    const sweeper = setInterval(() => server.closeIdleConnections(), 100)
    server.close(() => {
      clearTimeout(deadline)
      clearInterval(sweeper)
      resolve()
    })
    server.closeIdleConnections()
  })
}
