/**
 * Access control (SPEC 6): token verification, rights, signed URLs and the authorizers. The handlers
 * use it through `HandlerDeps.access` (src/handlers/access.ts).
 */
export * from './types.js'
export { AccessError, forbidden, unauthorized } from './errors.js'
export { ADMIN_SCOPE, DEFAULT_RIGHTS_CLAIM, isAdminByClaims, parseScope, type Right, rightsAllow, rightsFromClaims, SCOPE_PREFIX, scopeOf } from './rights.js'
export {
  ASYMMETRIC_ALGORITHMS,
  createTokenVerifier,
  HMAC_ALGORITHMS,
  MIN_SECRET_BYTES,
  type SecretKey,
  type TokenVerifier,
  type TokenVerifierOptions,
} from './token-verifier.js'
export {
  DEFAULT_EXPIRY_SECONDS,
  isSignedPrincipal,
  SIGNED_OPERATIONS,
  type SignedGrant,
  type SignedOperation,
  type SignedParams,
  type SignedPrincipal,
  signedPrincipal,
  UrlSigner,
  type UrlSignerOptions,
} from './signed-urls.js'
export {
  ANONYMOUS,
  anonymousAuthorizer,
  type AnonymousOptions,
  tokenAuthorizer,
  type TokenAuthorizerOptions,
  type TokenPrincipal,
} from './authorizers.js'
export { type LocalTokenOptions, mintToken } from './local-tokens.js'
