/**
 * The address of the client a request comes from: the connection's peer, or, when the peer is one of
 * TRUSTED_PROXIES, the address it forwards for (`Forwarded: for=`, else `X-Forwarded-For`): the
 * nearest hop that is not a trusted proxy itself, so a client cannot pick its own by sending the
 * header through a proxy that appends to it.
 */
import { isIP } from 'node:net'
import type { Context } from 'hono'

export function clientAddress(
  remoteAddress: (c: Context) => string | undefined,
  trusted: (address: string) => boolean,
): (c: Context) => string {
  return (c) => {
    const peer = normalized(remoteAddress(c) ?? 'unknown')
    if (!trusted(peer)) return peer
    const hops = forwardedFor(c.req.header('forwarded')) ?? c.req.header('x-forwarded-for')?.split(',').map((h) => normalized(h.trim()))
    if (!hops?.length) return peer
    for (let i = hops.length - 1; i >= 0; i--) if (!trusted(hops[i]!) || i === 0) return hops[i]!
    return peer
  }
}

/** The `for=` of each element of a `Forwarded` header (RFC 7239), without quotes, brackets and ports. */
function forwardedFor(header: string | undefined): string[] | undefined {
  if (!header) return undefined
  const hops = header.split(',').flatMap((element) => {
    const m = /(?:^|;)\s*for\s*=\s*("?)([^";,]+)\1/i.exec(element)
    return m ? [normalized(m[2]!.trim())] : []
  })
  return hops.length ? hops : undefined
}

/** `[::1]:8080` and `10.0.0.1:443` as addresses; an IPv4 on a dual-stack socket as itself. */
function normalized(address: string): string {
  let a = address
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(a)
  if (bracketed) a = bracketed[1]!
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(a)) a = a.slice(0, a.lastIndexOf(':'))
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a)?.[1]
  return v4 ?? (isIP(a) ? a.toLowerCase() : a)
}
