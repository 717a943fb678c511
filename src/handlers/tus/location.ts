/**
 * The URL of a new upload (`Location` of a tus creation): absolute, as the tus protocol asks, and
 * right behind a reverse proxy: `Forwarded` (RFC 7239) or `X-Forwarded-Proto` / `X-Forwarded-Host`
 * name the scheme and host the client used, and `X-Forwarded-Prefix` a path the proxy stripped.
 * Values that are not a plain scheme, host or path are ignored, so a header cannot inject anything.
 */
const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/
const PREFIX = /^(?:\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+$/
const PROTO = /^https?$/i

const first = (value: string | null | undefined): string | undefined => value?.split(',')[0]?.trim() || undefined

function forwardedPair(headers: Headers, key: 'proto' | 'host'): string | undefined {
  const element = first(headers.get('forwarded'))
  const m = element && new RegExp(`(?:^|;)\\s*${key}="?([^";]+)"?`, 'i').exec(element)
  return m ? m[1] : undefined
}

export function uploadLocation(request: Request, id: string): string {
  const url = new URL(request.url)
  const { headers } = request
  const proto = [forwardedPair(headers, 'proto'), first(headers.get('x-forwarded-proto'))].find((p) => p && PROTO.test(p))
  const host = [forwardedPair(headers, 'host'), first(headers.get('x-forwarded-host'))].find((h) => h && HOST.test(h))
  const prefix = first(headers.get('x-forwarded-prefix'))?.replace(/\/+$/, '')
  const origin = `${proto?.toLowerCase() ?? url.protocol.slice(0, -1)}://${host ?? url.host}`
  const collection = url.pathname.replace(/\/+$/, '')
  const stripped = prefix && PREFIX.test(prefix) && !prefix.split('/').some((s) => s === '..' || s === '.') ? prefix : ''
  return `${origin}${stripped}${collection}/${id}`
}
