/**
 * The two authorizers the service ships: bearer JWTs carrying rights (the default with any key
 * configured), and anonymous access for local use.
 */
import type { Context } from 'hono'
import { hostMatcher } from './allowed-hosts.js'
import { forbidden, unauthorized } from './errors.js'
import { isAdminByClaims, type Right, rightsAllow, rightsFromClaims } from './rights.js'
import type { TokenVerifier } from './token-verifier.js'
import type { Authorizer, Principal } from './types.js'

export interface TokenPrincipal extends Principal {
  readonly kind: 'token'
  readonly rights: readonly Right[]
  /** Holds the operator's right (`filestorage:admin`). */
  readonly admin: boolean
}

export interface TokenAuthorizerOptions {
  /** The structured rights claim's name (default `filestorage`). */
  rightsClaim?: string
  /** An OpenID Connect issuer, declared in the OpenAPI document beside the bearer scheme. */
  openIdConnectUrl?: string
}

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i

/** `Authorization: Bearer <JWT>`, verified by `verifier`; the rights come from its claims (rights.ts). */
export function tokenAuthorizer(verifier: TokenVerifier, options: TokenAuthorizerOptions = {}): Authorizer {
  // The verifier hands out the same claims object for a token it remembers: its principal is made once.
  const principals = new WeakMap<object, TokenPrincipal>()
  const principalOf = (claims: Awaited<ReturnType<TokenVerifier['verify']>>): TokenPrincipal => ({
    kind: 'token',
    // The issuer keeps two providers' equal subjects apart (an issuer URL has no "#").
    id: `${claims.iss ?? ''}#${claims.sub}`,
    sub: claims.sub,
    rights: rightsFromClaims(claims, options.rightsClaim ? { claim: options.rightsClaim } : {}),
    admin: isAdminByClaims(claims),
  })
  return {
    async authenticate(c: Context): Promise<TokenPrincipal> {
      const header = c.req.header('authorization')
      if (header === undefined || header.trim() === '') throw unauthorized('a bearer token is required (Authorization: Bearer <token>)')
      const token = BEARER.exec(header.trim())?.[1]
      if (!token) throw unauthorized('the Authorization header must be "Bearer <token>"', { invalidToken: true })
      const claims = await verifier.verify(token)
      let principal = principals.get(claims)
      if (!principal) principals.set(claims, (principal = principalOf(claims)))
      return principal
    },
    allows: (principal, request) => rightsAllow((principal as TokenPrincipal).rights ?? [], request),
    isAdmin: (principal) => (principal as TokenPrincipal).admin === true,
    securitySchemes: {
      bearerAuth: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description:
          'A JWT whose rights are OAuth scopes `files:<read|write|delete|*>:<store|*>:<path prefix>` (e.g. ' +
          '`files:read:disk:users/ana`) and/or a structured claim `[{ "store", "prefix", "actions" }]`.',
      },
      ...(options.openIdConnectUrl ? { openIdConnect: { type: 'openIdConnect', openIdConnectUrl: options.openIdConnectUrl } } : {}),
    },
  }
}

export const ANONYMOUS: Principal = { id: 'anonymous', sub: 'anonymous', kind: 'anonymous' }

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

export interface AnonymousOptions {
  /**
   * Browser origins whose pages may write (CORS_ORIGINS; `*` for any). When given, a write from a
   * page of any other origin is refused (`403`): without credentials, nothing else stops a foreign
   * page from posting a form here. Unset: no check (a host app doing its own).
   */
  allowedOrigins?: string[]
  /** Origins the service itself is reached at besides the request's own (its public URL). */
  ownOrigins?: string[]
  /**
   * Host names the service answers to besides IP literals, `localhost` and `*.localhost`
   * (ALLOWED_HOSTS): `files.internal`, `.example.com` for it and every name under it, `*` for any.
   * A request whose Host names another host is refused (`403`) whatever its method: that is how a
   * DNS-rebinding page reaches a local service (allowed-hosts.ts). Unset: those defaults only.
   */
  allowedHosts?: string[]
}

/**
 * Everyone may do everything, through a host name the service answers to: for local use, on a
 * loopback address or on purpose (AUTH_MODE=anonymous).
 */
export function anonymousAuthorizer(options: AnonymousOptions = {}): Authorizer {
  const { allowedOrigins } = options
  const hostAllowed = hostMatcher(options.allowedHosts)
  return {
    authenticate(c: Context): Principal {
      const url = new URL(c.req.url)
      if (!hostAllowed(url.hostname)) {
        throw forbidden(
          `this service does not answer to the host "${url.hostname}" (a page reaching it through that name could be a DNS rebinding attack); ` +
            'allow the name in ALLOWED_HOSTS',
        )
      }
      if (allowedOrigins && !SAFE_METHODS.has(c.req.method) && !allowedOrigins.includes('*')) {
        const origin = c.req.header('origin')
        const own = [url.origin, ...(options.ownOrigins ?? [])]
        const crossSite = origin !== undefined ? !own.includes(origin) && !allowedOrigins.includes(origin) : c.req.header('sec-fetch-site') === 'cross-site'
        if (crossSite) {
          throw forbidden(`a ${c.req.method} from the page of another origin (${origin ?? 'unknown'}) is refused; allow it in CORS_ORIGINS`)
        }
      }
      return ANONYMOUS
    },
    allows: () => true,
    isAdmin: () => true,
  }
}
