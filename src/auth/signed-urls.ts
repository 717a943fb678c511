/**
 * Signed URLs (SPEC 6), like S3 presigned URLs: a URL that grants one operation on one path to
 * whoever holds it, until it expires. The signature is an HMAC-SHA256, in the query, over the method,
 * the operation, the store, the path, the upload id (tus upload URLs), the expiry and the limits of
 * an upload (size, content type). Each key has an id, carried in the URL, so keys rotate without
 * breaking live URLs: the first key signs, every listed key verifies.
 *
 * Query parameters: `exp` (expiry, Unix seconds), `kid` (key id), `sig` (base64url HMAC), and when
 * signed `max` (bytes), `type` (content type), `path` (the file of a tus creation, whose URL has none).
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { forbidden } from './errors.js'
import type { Principal } from './types.js'
import type { SecretKey } from './token-verifier.js'

/** What a signed URL can grant, with the HTTP method it is for. */
export const SIGNED_OPERATIONS = {
  download: 'GET',
  upload: 'PUT',
  tusCreate: 'POST',
  /** The upload URL (Location) a signed tus creation answers: HEAD, PATCH and DELETE on it. */
  tusUpload: 'PATCH',
} as const
export type SignedOperation = keyof typeof SIGNED_OPERATIONS

export interface SignedGrant {
  operation: SignedOperation
  store: string
  /** The file, through the path rules. */
  path: string
  /** tusUpload: the one upload the URL reaches. */
  uploadId?: string
  /** Unix seconds. */
  expires: number
  /** Uploads: the largest body accepted. */
  maxBytes?: number
  /** Uploads: the one content type accepted (and stored). */
  contentType?: string
}

/** The signed parameters a request carries, as read from its query (not yet checked against the request). */
export interface SignedParams {
  kid: string
  sig: string
  expires: number
  maxBytes?: number
  contentType?: string
  /** tusCreate: the file the upload will become. */
  path?: string
}

/** A request that carries a signature: it may do exactly what was signed, once checked. */
export interface SignedPrincipal extends Principal {
  readonly kind: 'signed-url'
  readonly signed: SignedParams
}

export const isSignedPrincipal = (p: Principal | undefined): p is SignedPrincipal => p?.kind === 'signed-url'

export interface UrlSignerOptions {
  /** The first signs; all verify. */
  keys: SecretKey[]
  /** The longest life a URL may be given, in seconds. */
  maxExpirySeconds: number
}

export const DEFAULT_EXPIRY_SECONDS = 15 * 60
const SCHEME = 'filestorage-url-v1'
const DIGITS = /^\d{1,12}$/

export class UrlSigner {
  readonly maxExpirySeconds: number
  readonly #keys: Map<string, Buffer>
  readonly #signing: SecretKey

  constructor(options: UrlSignerOptions) {
    const [first] = options.keys
    if (!first) throw new Error('a URL signer needs at least one key')
    this.#signing = first
    this.#keys = new Map(options.keys.map((k) => [k.kid, Buffer.from(k.secret, 'utf8')]))
    this.maxExpirySeconds = options.maxExpirySeconds
  }

  /** The query parameters that grant `grant`. */
  sign(grant: SignedGrant): URLSearchParams {
    const params = new URLSearchParams()
    if (grant.operation === 'tusCreate') params.set('path', grant.path)
    if (grant.maxBytes !== undefined) params.set('max', String(grant.maxBytes))
    if (grant.contentType !== undefined) params.set('type', grant.contentType)
    params.set('exp', String(grant.expires))
    params.set('kid', this.#signing.kid)
    params.set('sig', this.#mac(Buffer.from(this.#signing.secret, 'utf8'), grant))
    return params
  }

  /**
   * The signed parameters of a query, or null when it carries no signature. A malformed or expired
   * one, or one signed with a key no longer listed, is refused (`403`) here already.
   */
  read(query: URLSearchParams, now = Date.now()): SignedParams | null {
    const sig = query.get('sig')
    if (sig === null) return null
    const kid = query.get('kid')
    const exp = query.get('exp')
    const max = query.get('max')
    if (!kid || !exp || !DIGITS.test(exp) || (max !== null && !DIGITS.test(max)) || !/^[A-Za-z0-9_-]{43}$/.test(sig)) {
      throw forbidden('the signed URL is malformed: it needs exp, kid and sig as issued')
    }
    if (!this.#keys.has(kid)) throw forbidden(`the signed URL's key "${kid}" is no longer accepted; ask for a new URL`)
    const expires = Number(exp)
    if (expires * 1000 <= now) {
      throw forbidden(`the signed URL expired at ${new Date(expires * 1000).toISOString()}; ask for a new URL`)
    }
    const type = query.get('type')
    const path = query.get('path')
    return {
      kid,
      sig,
      expires,
      ...(max !== null ? { maxBytes: Number(max) } : {}),
      ...(type !== null ? { contentType: type } : {}),
      ...(path !== null ? { path } : {}),
    }
  }

  /** Throws `403` unless `params` are a signature, by a listed key, of exactly this grant. */
  verify(params: SignedParams, grant: Omit<SignedGrant, 'expires' | 'maxBytes' | 'contentType'>, now = Date.now()): void {
    const key = this.#keys.get(params.kid)
    if (!key) throw forbidden(`the signed URL's key "${params.kid}" is no longer accepted; ask for a new URL`)
    // A URL minted before MAX expiry was lowered lives no longer than the new bound allows.
    if (grant.operation !== 'tusUpload' && params.expires * 1000 > now + (this.maxExpirySeconds + 60) * 1000) {
      throw forbidden('the signed URL lives longer than this service allows; ask for a new URL')
    }
    const expected = Buffer.from(
      this.#mac(key, {
        ...grant,
        expires: params.expires,
        ...(params.maxBytes !== undefined ? { maxBytes: params.maxBytes } : {}),
        ...(params.contentType !== undefined ? { contentType: params.contentType } : {}),
      }),
    )
    const given = Buffer.from(params.sig)
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw forbidden('the signed URL does not grant this request (its signature does not match what is asked)')
    }
  }

  #mac(key: Buffer | string, grant: SignedGrant): string {
    // A JSON array: no field can run into the next, whatever characters a store or path holds.
    const canonical = JSON.stringify([
      SCHEME,
      SIGNED_OPERATIONS[grant.operation],
      grant.operation,
      grant.store,
      grant.path,
      grant.uploadId ?? '',
      grant.expires,
      grant.maxBytes ?? null,
      grant.contentType ?? null,
    ])
    return createHmac('sha256', key).update(canonical).digest('base64url')
  }
}

/** The principal of a request that carries signed parameters. */
export function signedPrincipal(params: SignedParams): SignedPrincipal {
  return { id: 'signed-url', sub: `signed-url:${params.kid}`, kind: 'signed-url', signed: params }
}
