/**
 * Verifies bearer JWTs with `jose`: signature, `exp`/`nbf` with a small clock skew, `iss` and `aud`
 * when configured, `sub` required. Keys come from an OpenID Connect issuer (its discovery document,
 * then its JWKS), a JWKS URL, and/or shared HMAC secrets with key ids.
 *
 * The algorithm is pinned per key source: an HS* token is only ever checked against the HMAC secrets
 * and an asymmetric one only against the JWKS, so an HS256 token "signed" with an RSA public key, or
 * `alg: none`, never reaches a key it could fool. Within the JWKS it is pinned per key: jose takes a
 * key only for an algorithm of its type (and curve), and only for its own `alg` when it has one; an
 * RSA key published without `alg` verifies RS256 alone (see `undeclaredRsaKey`). jose refetches the
 * JWKS when a token names an unknown `kid` (at most once per cooldown) and caches it in between.
 *
 * Verifying a signature is most of a small request's cost (jose goes through WebCrypto, a round trip
 * to the thread pool), and a client sends the same token with request after request: a token
 * accepted once is remembered (verified-tokens.ts) and only its expiry is checked again.
 */
import { createSecretKey, type KeyObject } from 'node:crypto'
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from 'jose'
import { StorageError } from '../storage/index.js'
import { unauthorized } from './errors.js'
import { VerifiedTokens } from './verified-tokens.js'

export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512']
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']

/** A shared secret and its key id (`kid`). */
export interface SecretKey {
  kid: string
  secret: string
}

/** The shortest HMAC secret accepted: 256 bits, as RFC 7518 asks for HS256. */
export const MIN_SECRET_BYTES = 32

export interface TokenVerifierOptions {
  /** An OpenID Connect issuer: keys from its discovery document's `jwks_uri`; tokens must carry it as `iss`. */
  issuer?: string
  /** A JWKS URL (instead of discovery, or for a provider without it). */
  jwksUrl?: string
  /** Tokens must name this audience (one of these) in `aud`. */
  audience?: string | string[]
  /** Shared secrets for HS256/384/512 tokens, with their key ids. */
  hmacSecrets?: SecretKey[]
  /** Clock skew tolerated on `exp` and `nbf`, in seconds (default 30). */
  clockSkewSeconds?: number
  /** Least time between two JWKS fetches for an unknown `kid` (default 30 s). */
  jwksCooldownMs?: number
  /** How long the discovery document or the JWKS may take (default 5 s). */
  fetchTimeoutMs?: number
  /** How long an accepted token is taken again without verifying its signature (default 60 s; 0: never). */
  rememberMs?: number
}

export interface TokenVerifier {
  /** The token's claims; throws `unauthorized` (401) when it is not accepted, `store_unavailable` (503) when the keys cannot be fetched. */
  verify(token: string): Promise<JWTPayload & { sub: string }>
}

/** The identity provider could not be reached: the token may be fine, so this is not the client's fault. */
const keysUnavailable = (cause: unknown) =>
  new StorageError('store_unavailable', "the identity provider's signing keys could not be fetched; try again shortly", { cause })

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const secrets = new Map((options.hmacSecrets ?? []).map((k) => [k.kid, createSecretKey(Buffer.from(k.secret, 'utf8'))]))
  for (const { kid, secret } of options.hmacSecrets ?? []) {
    if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) throw new Error(`the HMAC secret "${kid}" is shorter than ${MIN_SECRET_BYTES} bytes`)
  }
  const remote = options.jwksUrl || options.issuer ? remoteKeys(options) : undefined
  const clockTolerance = options.clockSkewSeconds ?? 30
  const claims = {
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
    clockTolerance,
    requiredClaims: ['sub', 'exp'],
  }
  const accepted = new VerifiedTokens<JWTPayload & { sub: string }>({ rememberMs: options.rememberMs ?? 60_000, clockTolerance })

  const hmacKey = (kid: string | undefined): KeyObject => {
    // Without a kid, only an unambiguous single secret is tried.
    const key = kid !== undefined ? secrets.get(kid) : secrets.size === 1 ? [...secrets.values()][0] : undefined
    if (!key) throw unauthorized('the token is signed with an unknown key', { invalidToken: true })
    return key
  }

  return {
    async verify(token) {
      const known = accepted.get(token)
      if (known) return known
      const payload = await verifySignature(token)
      accepted.set(token, payload)
      return payload
    },
  }

  async function verifySignature(token: string): Promise<JWTPayload & { sub: string }> {
    let alg: string | undefined
    let kid: string | undefined
    try {
      ;({ alg, kid } = decodeProtectedHeader(token))
    } catch {
      throw unauthorized('the token is not a well-formed JWT', { invalidToken: true })
    }
    try {
      if (alg && HMAC_ALGORITHMS.includes(alg) && secrets.size > 0) {
        const { payload } = await jwtVerify(token, hmacKey(kid), { ...claims, algorithms: HMAC_ALGORITHMS })
        return payload as JWTPayload & { sub: string }
      }
      if (alg && ASYMMETRIC_ALGORITHMS.includes(alg) && remote) {
        const { payload } = await jwtVerify(token, remote, { ...claims, algorithms: ASYMMETRIC_ALGORITHMS })
        return payload as JWTPayload & { sub: string }
      }
    } catch (e) {
      throw asAccessError(e)
    }
    throw unauthorized(`tokens signed with "${String(alg)}" are not accepted here`, { invalidToken: true })
  }
}

/** jose's verdicts as 401s with a message a client can act on; a key source that failed as 503. */
function asAccessError(e: unknown): unknown {
  if (e instanceof StorageError) return e
  const invalid = (message: string) => unauthorized(message, { invalidToken: true })
  if (e instanceof errors.JWTExpired) return invalid('the token has expired')
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'nbf') return invalid('the token is not valid yet')
    return invalid(`the token's "${e.claim}" claim is not accepted`)
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) return invalid('the token signature is not valid')
  if (e instanceof errors.JWKSNoMatchingKey) return invalid('the token is signed with an unknown key')
  if (e instanceof errors.JOSEError) return invalid('the token is not accepted')
  return invalid('the token is not accepted')
}

/**
 * The JWKS of `jwksUrl`, or of the issuer's discovery document (fetched once, lazily, so the service
 * starts while the provider is down; a failed fetch is retried at most once per cooldown).
 */
function remoteKeys(options: TokenVerifierOptions): JWTVerifyGetKey {
  const timeoutDuration = options.fetchTimeoutMs ?? 5000
  const cooldownDuration = options.jwksCooldownMs ?? 30_000
  let keys: ReturnType<typeof createRemoteJWKSet> | undefined
  let discovering: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined
  let failedAt = Number.NEGATIVE_INFINITY
  let failure: unknown

  const load = async () => {
    const url = options.jwksUrl ?? (await discoverJwksUrl(options.issuer!, timeoutDuration))
    return createRemoteJWKSet(new URL(url), { timeoutDuration, cooldownDuration })
  }
  const keySet = async () => {
    if (keys) return keys
    if (performance.now() - failedAt < cooldownDuration) throw keysUnavailable(failure)
    discovering ??= load().finally(() => (discovering = undefined))
    try {
      return (keys = await discovering)
    } catch (e) {
      failedAt = performance.now()
      failure = e
      throw keysUnavailable(e)
    }
  }
  return async (header, token) => {
    const set = await keySet()
    let key: Awaited<ReturnType<typeof set>>
    try {
      key = await set(header, token)
    } catch (e) {
      // Verdicts on the token stay 401s; a JWKS that cannot be fetched or read is the provider's trouble.
      if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys || e instanceof errors.JOSENotSupported) throw e
      throw keysUnavailable(e)
    }
    const alg = String(header.alg)
    if (/^(RS|PS)/.test(alg) && alg !== UNDECLARED_RSA_ALGORITHM && undeclaredRsaKey(set.jwks(), header)) {
      throw unauthorized(`the token's key is published without "alg": it verifies ${UNDECLARED_RSA_ALGORITHM} tokens only, not ${alg}`, {
        invalidToken: true,
      })
    }
    return key
  }
}

/**
 * What an RSA key published without `alg` verifies: RS256, OpenID Connect's default, which is what
 * the providers that omit `alg` (Azure AD, for one) sign with. jose would take such a key for any
 * RS* or PS* algorithm the token names; one key, one algorithm.
 */
const UNDECLARED_RSA_ALGORITHM = 'RS256'

/**
 * Whether the JWKS key jose picked for an RS/PS `header` is one published without `alg`. jose
 * picks the one usable key of the algorithm's type, under the header's `kid` if any, whose `alg`
 * (when it has one) is the header's: if the set holds a usable RSA key without `alg` that fits, that
 * key is the one picked (two fitting keys are refused as ambiguous before this).
 */
function undeclaredRsaKey(jwks: JSONWebKeySet | undefined, { kid }: JWSHeaderParameters): boolean {
  return (jwks?.keys ?? []).some(
    (k) =>
      k.kty === 'RSA' &&
      k.alg === undefined &&
      (kid === undefined || k.kid === kid) &&
      (k.use === undefined || k.use === 'sig') &&
      (k.key_ops === undefined || k.key_ops.includes('verify')),
  )
}

/** The `jwks_uri` of an OpenID Connect issuer's discovery document, whose `issuer` must be that issuer. */
async function discoverJwksUrl(issuer: string, timeoutMs: number): Promise<string> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' })
  if (!res.ok) throw new Error(`${url} answered ${res.status}`)
  const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown }
  if (doc.issuer !== issuer) throw new Error(`${url} names the issuer ${JSON.stringify(doc.issuer)}, not ${issuer}`)
  if (typeof doc.jwks_uri !== 'string') throw new Error(`${url} has no jwks_uri`)
  return doc.jwks_uri
}
