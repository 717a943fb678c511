/**
 * Serves a fetch handler (the Hono app) over node:http, with a graceful stop: stop accepting, let
 * the requests in flight finish (up to a deadline), then close what is left.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { getRequestListener } from '@hono/node-server'
import { errorBody } from '../../handlers/index.js'
import { hostPort } from '../host-port.js'
import { rawTargetProblem } from '../../handlers/raw-target.js'
import type { HttpServer, ServeOptions } from '../service/service.js'

export type { ServeOptions }

export interface RunningServer extends HttpServer {
  server: Server
}

type Fetch = Parameters<typeof getRequestListener>[0]

export async function serve(fetch: Fetch, options: ServeOptions): Promise<RunningServer> {
  const listener = getRequestListener(fetch)
  const sendIdleTimeoutMs = options.sendIdleTimeoutMs ?? 60_000
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    res.setTimeout(sendIdleTimeoutMs, cutWhenUnread)
    const problem = rawTargetProblem(req.url ?? '/')
    if (problem) {
      const body = JSON.stringify(errorBody('invalid_path', problem))
      res.writeHead(400, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) })
      res.end(body)
      return
    }
    closeIfBodyUnread(req, res)
    void listener(req, res)
  }
  const server = createServer(
    {
      // Room for 16 KiB of X-File-Metadata (SPEC 3.1) beside the other headers; Node's default is 16 KiB in all.
      maxHeaderSize: 64 * 1024,
      // How often Node looks for connections past headersTimeout: every second, not every 30 (the default).
      connectionsCheckingInterval: 1000,
    },
    onRequest,
  )
  server.on('clientError', answerClientError)
  // Large transfers over slow links: no deadline for a whole request (Node's requestTimeout would
  // cut a long upload); stalled bodies are cut by the idle timeout where they are read
  // (request-body.ts), JSON bodies by their own deadline (handlers/json-body.ts), and answers the
  // client stops taking by the send idle timeout (cutWhenUnread).
  server.requestTimeout = 0
  server.headersTimeout = options.headersTimeoutMs ?? 20_000
  server.keepAliveTimeout = 65_000 // above nginx's and typical load balancers' idle timeouts
  if (options.maxConnections !== undefined) server.maxConnections = options.maxConnections

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

/**
 * The send idle timeout, a response's 'timeout' listener: the socket of a request in progress has
 * been inactive for the whole timeout. Node's socket timer counts any read or write as activity,
 * and holds off while the kernel takes more of a pending write; so when bytes of the answer still
 * wait in the socket, the client has taken none of them for that long (a download it stopped
 * reading): the socket is destroyed, and with it the response, whose close cancels the body's
 * stream (the file or GridFS stream closed). Nothing waiting to be sent: the service is the one
 * working (a long completeupload) or waiting for the body (cut by the body idle timeout, 408), so
 * the request goes on. A listener makes Node leave the socket alone on a timeout; after the
 * response, Node puts its keepAliveTimeout on the socket, and an idle keep-alive connection ends as
 * before. The kernel takes more once a third of the socket's send buffer has gone: a client must
 * read that much per timeout (up to 1.4 MiB with Linux's default largest buffer, docs/api.md).
 */
function cutWhenUnread(this: ServerResponse): void {
  const socket = this.socket
  if (socket && socket.writableLength > 0) socket.destroy()
}

/**
 * Requests Node cannot even parse get a JSON error too, not an empty 400; so do requests whose
 * headers did not arrive within headersTimeout (408). Nothing is written once a response started.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex & { _httpMessage?: { headersSent?: boolean } }): void {
  const timeout = error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
  if (!socket.writable || socket._httpMessage?.headersSent || !(timeout || error.code?.startsWith('HPE_'))) {
    socket.destroy()
    return
  }
  const tooLarge = error.code === 'HPE_HEADER_OVERFLOW'
  const [status, body] = timeout
    ? ['408 Request Timeout', errorBody('request_timeout', 'the request headers did not arrive in time')]
    : tooLarge
      ? ['431 Request Header Fields Too Large', errorBody('invalid_request', 'the request headers are too large (64 KiB at most)')]
      : ['400 Bad Request', errorBody('invalid_request', 'malformed HTTP request')]
  const json = JSON.stringify(body)
  // Closed once written: a client that stalls must not keep the socket by never closing its side.
  socket.end(
    `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
    () => socket.destroy(),
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
    if (!req.complete) {
      this.shouldKeepAlive = false
      lingerOnClose(req.socket)
    }
    return writeHead.apply(this, args)
  } as typeof writeHead
}

/** How long a connection closed on an unread body keeps reading it (nginx: lingering_timeout 5 s). */
const LINGER_MS = 2000

/**
 * Node closes such a connection with `destroySoon()`: it sends the answer, then destroys the socket
 * while the client's body is still arriving, and the kernel answers that data with a reset, which
 * can reach the client before it has read the answer (fetch then fails with EPIPE or ECONNRESET
 * instead of showing the 413). So, as nginx's lingering close: send the answer and our FIN, keep
 * reading (and discarding, Node's parser dumps the unread body) until the client closes its side or
 * LINGER_MS pass, then destroy. http.Server sockets allow half-open connections, so reading goes on.
 */
function lingerOnClose(socket: Socket): void {
  socket.destroySoon = function (this: Socket) {
    if (this.destroyed) return
    const timer = setTimeout(() => this.destroy(), LINGER_MS)
    this.once('end', () => this.destroy())
    this.once('close', () => clearTimeout(timer))
    this.end()
  }
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
