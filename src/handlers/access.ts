/**
 * Access control in the handlers (SPEC 6). Every handler app installs `accessMiddleware` on its own
 * routes (createHandlerApp), so a handler mounted alone is exactly as strict as the composed service:
 * the raw target is checked, then the request is authenticated (a signed URL, or the authorizer's
 * credentials) before anything is read; `401` ends it there. The handler then asks `authorize` for
 * the operation, store and path it is about to touch, and gets `403` when that is not allowed.
 */
import type { Context, MiddlewareHandler } from 'hono'
import {
  type AccessRequest,
  ADMIN_SCOPE,
  anonymousAuthorizer,
  type Authorizer,
  forbidden,
  isSignedPrincipal,
  type Principal,
  type SignedOperation,
  signedPrincipal,
  type UrlSigner,
} from '../auth/index.js'
import { StorageError } from '../storage/index.js'
import { essenceOf } from './media-type.js'
import { checkRawTarget } from './raw-target.js'

/** Who may do what, for a handler (`HandlerDeps.access`). */
export interface AccessOptions {
  /** Authenticates requests and decides on them. */
  authorizer: Authorizer
  /** Signed URLs: verifies requests that carry one, and signs new ones (the sign route). */
  signer?: UrlSigner
}

/**
 * Without `access`, handlers let everyone do everything, through any host name: mount them behind
 * your own authentication, or pass `access` (`anonymousAuthorizer()` refuses unknown host names).
 */
export const OPEN_ACCESS: AccessOptions = { authorizer: anonymousAuthorizer({ allowedHosts: ['*'] }) }

interface AccessState {
  access: AccessOptions
  principal: Principal | undefined
}

declare module 'hono' {
  interface ContextVariableMap {
    /** Set by accessMiddleware: the request's principal and the access control that admitted it. */
    filestorageAccess?: AccessState
  }
}

/** What a decision grants beyond yes: the limits a signed URL carries. */
export interface Grant {
  /** The principal holds a signed URL (it may do exactly what was signed). */
  signed: boolean
  maxBytes?: number
  contentType?: string
}

/**
 * The middleware: raw-target check, then authentication. On a public route (`check`) a request
 * whose credentials are missing or refused goes on without a principal instead of getting `401`.
 * OPTIONS goes through untouched: tus capability discovery and CORS preflights carry no credentials.
 */
export function accessMiddleware(access: AccessOptions, options: { public?: boolean } = {}): MiddlewareHandler {
  return async (c, next) => {
    if (c.get('filestorageAccess') || c.req.method === 'OPTIONS') return next()
    checkRawTarget(c)
    let principal: Principal | undefined
    try {
      principal = await authenticate(c, access)
    } catch (e) {
      if (!options.public || !(e instanceof StorageError)) throw e
    }
    c.set('filestorageAccess', { access, principal })
    await next()
  }
}

async function authenticate(c: Context, access: AccessOptions): Promise<Principal> {
  // A request without a query string carries no signature: no URL to parse (most requests).
  const signed = access.signer && c.req.url.includes('?') ? access.signer.read(new URL(c.req.url).searchParams) : null
  return signed ? signedPrincipal(signed) : access.authorizer.authenticate(c)
}

function stateOf(c: Context): AccessState {
  const state = c.get('filestorageAccess')
  // A route without the middleware is a bug: fail closed.
  if (!state) throw new Error(`no access middleware on ${c.req.method} ${c.req.path}`)
  return state
}

/** The request's principal (undefined on a public route called without accepted credentials, or before the middleware). */
export function principalOf(c: Context): Principal | undefined {
  return c.get('filestorageAccess')?.principal
}

/**
 * The file a signed tus creation URL names in its query. Undefined otherwise: the upload's own
 * metadata names it, and a signature made for anything else will not match it.
 */
export function signedTarget(c: Context): string | undefined {
  const principal = principalOf(c)
  return isSignedPrincipal(principal) ? principal.signed.path : undefined
}

const SIGNABLE: Partial<Record<AccessRequest['operation'], SignedOperation>> = {
  download: 'download',
  upload: 'upload',
  tusCreate: 'tusCreate',
  tusUpload: 'tusUpload',
}

/**
 * Throws `403` unless the request's principal may do `request`. A signed URL allows only the
 * operation, store, path (and upload) it was signed for.
 */
export async function authorize(c: Context, request: AccessRequest & { uploadId?: string }): Promise<Grant> {
  const { access, principal } = stateOf(c)
  if (!principal) throw forbidden('credentials are required')
  if (isSignedPrincipal(principal)) {
    const operation = SIGNABLE[request.operation]
    if (!operation || !access.signer) throw forbidden(`a signed URL cannot be used for ${request.operation}`)
    access.signer.verify(principal.signed, {
      operation,
      store: request.store,
      path: request.path,
      ...(request.uploadId !== undefined ? { uploadId: request.uploadId } : {}),
    })
    const { maxBytes, contentType } = principal.signed
    return { signed: true, ...(maxBytes !== undefined ? { maxBytes } : {}), ...(contentType !== undefined ? { contentType } : {}) }
  }
  if (!(await access.authorizer.allows(principal, request))) {
    throw forbidden(`no ${request.action} right on "${request.path}" in the store "${request.store}"`, {
      insufficientScope: principal.kind === 'token',
    })
  }
  return { signed: false }
}

/** The largest upload: the service's limit, or a signed URL's when that is smaller. */
export function uploadLimit(serviceLimit: number | undefined, grant: Grant): number | undefined {
  if (grant.maxBytes === undefined) return serviceLimit
  return serviceLimit === undefined ? grant.maxBytes : Math.min(serviceLimit, grant.maxBytes)
}

/** The content type to store: a signed URL's own (`403` for another one sent), else the client's. */
export function grantedContentType(given: string | undefined, grant: Grant, source: string): string | undefined {
  if (grant.contentType === undefined) return given
  if (given !== undefined && essenceOf(given) !== essenceOf(grant.contentType)) {
    throw forbidden(`this signed URL only takes the ${source} ${grant.contentType}`)
  }
  return grant.contentType
}

/**
 * Throws `403` unless the request's principal holds the operator's right (`filestorage:admin`): a
 * signed URL never does, nor does any `files:` right.
 */
export async function authorizeAdmin(c: Context): Promise<void> {
  const { access, principal } = stateOf(c)
  if (!principal) throw forbidden('credentials are required')
  if (isSignedPrincipal(principal) || !(await access.authorizer.isAdmin?.(principal))) {
    throw forbidden(`this route needs the operator's right (${ADMIN_SCOPE})`, { insufficientScope: principal.kind === 'token' })
  }
}

/** Whether the principal may do `request` (listing filters, health details): `authorize` without the throw. */
export async function allows(c: Context, request: AccessRequest): Promise<boolean> {
  const { access, principal } = stateOf(c)
  if (!principal || isSignedPrincipal(principal)) return false
  return access.authorizer.allows(principal, request)
}

/** The signer of the access control that admitted this request, when signed URLs are enabled. */
export function signerOf(c: Context): UrlSigner | undefined {
  return stateOf(c).access.signer
}

/** The id that owns the uploads this request creates. */
export function ownerOf(c: Context): string {
  const principal = stateOf(c).principal
  if (!principal) throw forbidden('credentials are required')
  return principal.id
}
