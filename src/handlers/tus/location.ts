/**
 * Absolute URLs the service hands out (a tus creation's `Location`, as the tus protocol asks, and
 * signed URLs): under the configured public URL when there is one; else, from a trusted proxy only,
 * the scheme and host it names in `Forwarded` (RFC 7239) or `X-Forwarded-Proto` / `X-Forwarded-Host`
 * and the path it stripped in `X-Forwarded-Prefix`; else the request's own scheme and host. A client
 * that is not a trusted proxy cannot make the service hand out a URL on another host. Values that are
 * not a plain scheme, host or path are ignored, so a header cannot inject anything.
 */
import type { Context } from 'hono'
import type { UrlOptions } from '../handler-app.js'

const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/
const PREFIX = /^(?:\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+$/
const PROTO = /^https?$/i

const first = (value: string | null | undefined): string | undefined => value?.split(',')[0]?.trim() || undefined

function forwardedPair(headers: Headers, key: 'proto' | 'host'): string | undefined {
  const element = first(headers.get('forwarded'))
  const m = element && new RegExp(`(?:^|;)\\s*${key}="?([^";]+)"?`, 'i').exec(element)
  return m ? m[1] : undefined
}

/** What a trusted proxy says the client used: scheme, host and stripped prefix, each only when well-formed. */
function forwardedBase(request: Request, url: URL): string {
  const { headers } = request
  const proto = [forwardedPair(headers, 'proto'), first(headers.get('x-forwarded-proto'))].find((p) => p && PROTO.test(p))
  const host = [forwardedPair(headers, 'host'), first(headers.get('x-forwarded-host'))].find((h) => h && HOST.test(h))
  const prefix = first(headers.get('x-forwarded-prefix'))?.replace(/\/+$/, '')
  const stripped = prefix && PREFIX.test(prefix) && !prefix.split('/').some((s) => s === '..' || s === '.') ? prefix : ''
  return `${proto?.toLowerCase() ?? url.protocol.slice(0, -1)}://${host ?? url.host}${stripped}`
}

/** The absolute URL of `pathname` (a path of this request's server) as clients reach it. */
export function publicUrl(c: Context, pathname: string, urls: UrlOptions = {}): string {
  if (urls.publicUrl) return `${urls.publicUrl.replace(/\/+$/, '')}${pathname}`
  const url = new URL(c.req.url)
  if (urls.trustForwarded?.(c)) return `${forwardedBase(c.req.raw, url)}${pathname}`
  return `${url.origin}${pathname}`
}

/** The URL of a new upload: the collection's URL (this request's) and the upload id. */
export function uploadLocation(c: Context, id: string, urls?: UrlOptions): string {
  return publicUrl(c, `${new URL(c.req.url).pathname.replace(/\/+$/, '')}/${id}`, urls)
}
