/**
 * Tokens signed with one of the service's own HMAC secrets (AUTH_HMAC_SECRETS): for development,
 * tests, the bench and simple setups where no identity provider issues them (`npm run token`).
 */
import { SignJWT } from 'jose'
import type { SecretKey } from './token-verifier.js'

export interface LocalTokenOptions {
  key: SecretKey
  sub: string
  /** OAuth scopes (`files:read:disk:users/ana`), written space-separated into `scope`. */
  scopes?: string[]
  /** A structured rights claim, written as is under `rightsClaim`. */
  rights?: unknown[]
  rightsClaim?: string
  /** Seconds (default 3600). */
  expiresIn?: number
  audience?: string
  issuer?: string
}

export function mintToken(options: LocalTokenOptions): Promise<string> {
  const claims: Record<string, unknown> = {}
  if (options.scopes?.length) claims.scope = options.scopes.join(' ')
  if (options.rights) claims[options.rightsClaim ?? 'filestorage'] = options.rights
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', kid: options.key.kid, typ: 'JWT' })
    .setSubject(options.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (options.expiresIn ?? 3600))
  if (options.audience) jwt.setAudience(options.audience)
  if (options.issuer) jwt.setIssuer(options.issuer)
  return jwt.sign(Buffer.from(options.key.secret, 'utf8'))
}
