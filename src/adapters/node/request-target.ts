/**
 * Guards the raw request target before it becomes a URL. WHATWG URL parsing resolves `..` and its
 * percent-encoded forms (`%2e%2e`) silently, so `/disk/download/a/%2e%2e/b` would reach the
 * handlers as `/disk/download/b`. Such a request is refused here as `400 invalid_path` instead, as
 * SPEC 3.2 requires; the handlers' own path rules catch everything that survives URL parsing.
 */
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i

/** Why the target's path is refused, or null when it is acceptable. */
export function rawTargetProblem(target: string): string | null {
  const q = target.indexOf('?')
  const path = q < 0 ? target : target.slice(0, q)
  if (DOT_SEGMENT.test(path)) return 'the path has a "." or ".." segment'
  if (path.includes('\\')) return 'the path contains a backslash'
  return null
}
