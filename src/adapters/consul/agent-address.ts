/**
 * CONSUL_HTTP_ADDR as Consul's own tools read it: `host:port`, or a URL with `http://` or `https://`.
 */
export function consulBaseUrl(address: string): URL {
  const withScheme = /^https?:\/\//i.test(address) ? address : `http://${address}`
  const url = new URL(withScheme)
  if (!url.port) url.port = url.protocol === 'https:' ? '8501' : '8500'
  url.pathname = '/'
  return url
}
