/**
 * Serves a fetch handler (the Hono app) over node:http, with a graceful stop: stop accepting, let
 * the requests in flight finish (up to a deadline), then close what is left.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { getRequestListener } from '@hono/node-server'
import { errorBody } from '../../handlers/index.js'
import { rawTargetProblem } from './request-target.js'

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
  const server = createServer((req, res) => {
    const problem = rawTargetProblem(req.url ?? '/')
    if (problem) {
      const body = JSON.stringify(errorBody('invalid_path', problem))
      res.writeHead(400, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) })
      res.end(body)
      return
    }
    void listener(req, res)
  })
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
  return { server, port, url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, stop: (ms) => stop(server, ms) }
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
