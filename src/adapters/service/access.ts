/**
 * Access control from the configuration (SPEC 6): bearer tokens when keys are configured (an OIDC
 * issuer, a JWKS URL, HMAC secrets), anonymous access otherwise (through the host names of
 * ALLOWED_HOSTS and PUBLIC_URL, besides IP literals and localhost); signed URLs with
 * AUTH_URL_SIGNING_KEYS (or the HMAC secrets); absolute URLs from PUBLIC_URL, or from the forwarded
 * headers of TRUSTED_PROXIES only.
 */
import { randomBytes } from 'node:crypto'
import { BlockList, isIP, isIPv4 } from 'node:net'
import type { Context } from 'hono'
import { anonymousAuthorizer, createTokenVerifier, tokenAuthorizer, UrlSigner } from '../../auth/index.js'
import type { AccessOptions, UrlOptions } from '../../handlers/index.js'
import type { Config } from './config.js'

/** Anonymous mode's own URL signing key, when none is configured (a per-process key otherwise). */
const LOCAL_KID = 'local'

/**
 * For a primary forking workers: the environment that gives them all one anonymous-mode signing key,
 * so a URL signed by one worker is good on every other. Empty when keys are configured.
 */
export function sharedSigningKeyEnv(config: Config): Record<string, string> {
  if (config.AUTH_MODE !== 'anonymous' || config.AUTH_URL_SIGNING_KEYS.length > 0) return {}
  return { AUTH_URL_SIGNING_KEYS: `${LOCAL_KID}:${randomBytes(32).toString('hex')}` }
}

export function accessOptions(config: Config): AccessOptions {
  const signingKeys = config.AUTH_URL_SIGNING_KEYS.length > 0 ? config.AUTH_URL_SIGNING_KEYS : config.AUTH_HMAC_SECRETS
  const maxExpirySeconds = Math.floor(config.AUTH_URL_MAX_EXPIRY / 1000)
  if (config.AUTH_MODE === 'anonymous') {
    // Signed URLs still work for a local page; without configured keys, this process's own key.
    const keys = signingKeys.length > 0 ? signingKeys : [{ kid: LOCAL_KID, secret: randomBytes(32).toString('hex') }]
    return {
      authorizer: anonymousAuthorizer({
        allowedOrigins: config.CORS_ORIGINS,
        allowedHosts: [...config.ALLOWED_HOSTS, ...(config.PUBLIC_URL ? [new URL(config.PUBLIC_URL).hostname] : [])],
        ...(config.PUBLIC_URL ? { ownOrigins: [new URL(config.PUBLIC_URL).origin] } : {}),
      }),
      signer: new UrlSigner({ keys, maxExpirySeconds }),
    }
  }
  const verifier = createTokenVerifier({
    ...(config.AUTH_ISSUER ? { issuer: config.AUTH_ISSUER } : {}),
    ...(config.AUTH_JWKS_URL ? { jwksUrl: config.AUTH_JWKS_URL } : {}),
    ...(config.AUTH_AUDIENCE.length > 0 ? { audience: config.AUTH_AUDIENCE } : {}),
    hmacSecrets: config.AUTH_HMAC_SECRETS,
    clockSkewSeconds: config.AUTH_CLOCK_SKEW / 1000,
    jwksCooldownMs: config.AUTH_JWKS_COOLDOWN,
  })
  const openIdConnectUrl = config.AUTH_ISSUER ? `${config.AUTH_ISSUER.replace(/\/+$/, '')}/.well-known/openid-configuration` : undefined
  return {
    authorizer: tokenAuthorizer(verifier, { rightsClaim: config.AUTH_RIGHTS_CLAIM, ...(openIdConnectUrl ? { openIdConnectUrl } : {}) }),
    ...(signingKeys.length > 0 ? { signer: new UrlSigner({ keys: signingKeys, maxExpirySeconds }) } : {}),
  }
}

/** `remoteAddress`: the runtime's peer address of a request (TRUSTED_PROXIES are matched against it). */
export function urlOptions(config: Config, remoteAddress: (c: Context) => string | undefined): UrlOptions {
  const options: UrlOptions = config.PUBLIC_URL ? { publicUrl: config.PUBLIC_URL } : {}
  if (config.TRUSTED_PROXIES.length === 0) return options
  const trusted = trustedProxies(config)
  return {
    ...options,
    trustForwarded: (c) => {
      const address = remoteAddress(c)
      return address !== undefined && trusted(address)
    },
  }
}

/** Whether an address is one of TRUSTED_PROXIES (an IPv4 address on a dual-stack socket as itself). */
export function trustedProxies(config: Config): (address: string) => boolean {
  const proxies = new BlockList()
  for (const item of config.TRUSTED_PROXIES) {
    const [address, bits] = item.split('/') as [string, string | undefined]
    const type = isIPv4(address) ? 'ipv4' : 'ipv6'
    if (bits === undefined) proxies.addAddress(address, type)
    else proxies.addSubnet(address, Number(bits), type)
  }
  return (address) => {
    if (!isIP(address)) return false
    const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] // IPv4 on a dual-stack socket
    return v4 ? proxies.check(v4, 'ipv4') : proxies.check(address, isIPv4(address) ? 'ipv4' : 'ipv6')
  }
}
