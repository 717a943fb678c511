/**
 * DNS rebinding defence for anonymous mode (what Vite's and webpack-dev-server's `allowedHosts` do).
 * A page at http://evil.example:8081 whose name the attacker then points at 127.0.0.1 talks to a
 * local service as its own origin: same-origin for the browser, so the Origin check lets it write
 * and nothing stops it reading. What gives it away is the Host it sends, a name this service does
 * not answer to. Names that cannot be rebound are always accepted: IP literals (rebinding needs a
 * name), `localhost` and `*.localhost` (resolved to loopback by browsers and resolvers, RFC 6761).
 */
import { isIP } from 'node:net'

/**
 * Whether a request for `hostname` (as a URL has it: lowercase, IPv6 in brackets) may be served.
 * `allowed` lists more names: exact (`files.internal`), `.example.com` for that name and every name
 * under it, `*` for any name.
 */
export function hostMatcher(allowed: readonly string[] = []): (hostname: string) => boolean {
  const names = allowed.map((name) => name.trim().toLowerCase().replace(/\.$/, ''))
  if (names.includes('*')) return () => true
  const exact = new Set(names.filter((n) => !n.startsWith('.')))
  const suffixes = names.filter((n) => n.startsWith('.'))
  return (hostname) => {
    const host = hostname.toLowerCase().replace(/\.$/, '')
    if (isIP(host.replace(/^\[(.*)\]$/, '$1')) !== 0) return true
    if (host === 'localhost' || host.endsWith('.localhost') || exact.has(host)) return true
    return suffixes.some((suffix) => host === suffix.slice(1) || host.endsWith(suffix))
  }
}
