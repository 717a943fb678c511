/**
 * The file path of a request: the route's path parameter, through the path rules (SPEC 3.2).
 */
import type { Context } from 'hono'
import { invalidPath, type ParsePathOptions, parsePath } from '../storage/index.js'

/**
 * Hono leaves a percent-escape it cannot decode (`%zz`, or `%ff`, which is not UTF-8) as literal
 * text, which would make `a%ffb` and `a%25ffb` the same file. Such a request is refused instead.
 */
function assertDecodable(url: string): void {
  if (!url.includes('%')) return // nothing to decode
  const pathname = url.replace(/^[a-z]+:\/\/[^/]*/i, '').replace(/[?#].*$/s, '')
  try {
    decodeURIComponent(pathname)
  } catch {
    throw invalidPath('the path has a percent-escape that is not UTF-8')
  }
}

export function requestPath(c: Context, raw: string, options?: ParsePathOptions): string {
  assertDecodable(c.req.url)
  return parsePath(raw, options)
}
