/** `host:port`, for a URL or an nginx `server` line: an IPv6 address goes in brackets. */
export const hostPort = (address: string, port: number): string =>
  `${address.includes(':') ? `[${address}]` : address}:${port}`
