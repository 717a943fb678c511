/**
 * Guards the raw request target before it becomes a URL. WHATWG URL parsing resolves `..` and its
 * percent-encoded forms (`%2e%2e`) silently, so `/disk/download/a/%2e%2e/b` would reach the
 * handlers as `/disk/download/b`. Such a request is refused as `400 invalid_path` instead, as SPEC
 * 3.2 requires; the handlers' own path rules catch everything that survives URL parsing.
 *
 * Every handler app checks this itself (the access middleware), so a handler mounted alone is as
 * strict as the node adapter, which also checks it before building the request.
 */
import type { Context } from 'hono'
import { invalidPath } from '../storage/index.js'

const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i

/** Why the target's path is refused, or null when it is acceptable. */
export function rawTargetProblem(target: string): string | null {
  const q = target.indexOf('?')
  const path = q < 0 ? target : target.slice(0, q)
  if (DOT_SEGMENT.test(path)) return 'the path has a "." or ".." segment'
  if (path.includes('\\')) return 'the path contains a backslash'
  return null
}

/**
 * The request target as the client sent it, when the runtime keeps it (@hono/node-server passes
 * Node's IncomingMessage as `env.incoming`); other runtimes hand over an already parsed URL.
 */
function rawTarget(c: Context): string {
  const incoming = (c.env as { incoming?: { url?: unknown } } | undefined)?.incoming
  if (typeof incoming?.url === 'string') return incoming.url
  const url = new URL(c.req.url)
  return url.pathname + url.search
}

/** Throws `invalid_path` for a request whose raw target has dot segments or a backslash. */
export function checkRawTarget(c: Context): void {
  const problem = rawTargetProblem(rawTarget(c))
  if (problem) throw invalidPath(problem)
}
