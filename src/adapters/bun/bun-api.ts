/**
 * The part of Bun's API this adapter uses (Bun 1.4), typed here rather than through `bun-types`,
 * whose globals (its own `fetch`, `Response`, `Request`) would apply to the whole project, the
 * node adapter and the tests included. These modules run on Bun only.
 */

export interface BunServer {
  readonly port: number
  /** Requests in flight. */
  readonly pendingRequests: number
  /** The connection's idle timeout from now on, in seconds (0: none); Bun counts it in steps of about 4 s. */
  timeout(request: Request, seconds: number): void
  requestIP(request: Request): { address: string; family: string; port: number } | null
  /** Stops accepting; resolves once every connection is closed (`true`: closes them at once). */
  stop(closeActiveConnections?: boolean): Promise<void>
  closeIdleConnections(): void
}

export interface BunServeOptions {
  hostname: string
  port: number
  reusePort: boolean
  /** Seconds a connection may stay idle (no byte either way), at most 255; 0: never. */
  idleTimeout: number
  maxRequestBodySize: number
  development: boolean
  fetch(request: Request, server: BunServer): Response | Promise<Response>
  error(error: Error): Response
}

export interface BunFile extends Blob {
  slice(start?: number, end?: number): BunFile
}

interface Bun {
  serve(options: BunServeOptions): BunServer
  file(path: string): BunFile
  readonly version: string
}

/** Bun's global, on Bun. */
export const bun = (): Bun => {
  const runtime = (globalThis as { Bun?: Bun }).Bun
  if (!runtime) throw new Error('the bun adapter runs on Bun (npm run start:bun)')
  return runtime
}
