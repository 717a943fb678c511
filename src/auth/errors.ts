/**
 * The two refusals of SPEC 6, with the `WWW-Authenticate` header RFC 6750 asks for: `401` for no or
 * bad credentials (`error="invalid_token"` when a token was sent but is not accepted), `403` for a
 * valid principal without the right.
 */
import { StorageError } from '../storage/index.js'

const REALM = 'filestorage'

export class AccessError extends StorageError {
  constructor(
    code: 'unauthorized' | 'forbidden',
    message: string,
    /** Headers the answer carries. */
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message)
  }
}

/** A quoted-string for an auth-param: no quote, backslash or control character inside. */
// eslint-disable-next-line no-control-regex -- control characters are what is removed
const quoted = (text: string) => `"${text.replace(/["\\\u0000-\u001f\u007f-\uffff]/g, ' ')}"`

/** `401`: no credentials (`invalidToken` false), or credentials that are not accepted (true). */
export function unauthorized(message: string, options: { invalidToken?: boolean } = {}): AccessError {
  const challenge = options.invalidToken
    ? `Bearer realm="${REALM}", error="invalid_token", error_description=${quoted(message)}`
    : `Bearer realm="${REALM}"`
  return new AccessError('unauthorized', message, { 'WWW-Authenticate': challenge })
}

/** `403`: authenticated, but not allowed. `insufficientScope` for a bearer token lacking the right. */
export function forbidden(message: string, options: { insufficientScope?: boolean } = {}): AccessError {
  return new AccessError(
    'forbidden',
    message,
    options.insufficientScope ? { 'WWW-Authenticate': `Bearer realm="${REALM}", error="insufficient_scope"` } : {},
  )
}
