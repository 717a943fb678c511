/**
 * Rights carried by a token, and the question whether they allow a request.
 *
 * A right is (store, path prefix, actions). It comes from OAuth `scope` strings, which any identity
 * provider can put in an access token, and/or from a structured claim:
 *
 *   scope: "files:read:disk:users/ana/ files:write:disk:users/ana/ files:read:*:public"
 *          files:<action>:<store>:<prefix>   action read | write | delete | *; store a name or *;
 *                                            prefix percent-encoded, empty for the whole store
 *   "filestorage": [{ "store": "disk", "prefix": "users/ana", "actions": ["read", "write"] }]
 *
 * `{sub}` in a prefix stands for the token's subject, so one scope serves every user
 * (`files:*:disk:users/{sub}`). A prefix goes through the path rules (SPEC 3.2) and matches whole
 * segments only: `users/ana` covers `users/ana` and `users/ana/...`, never `users/anabel`. A right
 * that does not parse is ignored (a token may carry scopes of other services).
 */
import { isWithin, parseName, parsePath, ROOT } from '../storage/index.js'
import { type AccessRequest, type Action, ACTIONS } from './types.js'

export interface Right {
  /** A store name, or `*` for every store. */
  store: string
  /** A folder or file, through the path rules; ROOT for the whole store. */
  prefix: string
  actions: ReadonlySet<Action>
}

export const SCOPE_PREFIX = 'files'
/** The operator's right: the admin routes (SPEC 6). A scope of its own, outside `files:`, so no file right grants it. */
export const ADMIN_SCOPE = 'filestorage:admin'
export const DEFAULT_RIGHTS_CLAIM = 'filestorage'

/** The rights of a verified token's claims: its scopes (`scope` or `scp`) and its structured claim. */
export function rightsFromClaims(claims: Record<string, unknown>, options: { claim?: string } = {}): Right[] {
  const sub = typeof claims.sub === 'string' ? claims.sub : undefined
  const rights: Right[] = []
  for (const scope of scopesOf(claims)) {
    const right = parseScope(scope, sub)
    if (right) rights.push(right)
  }
  const structured = claims[options.claim ?? DEFAULT_RIGHTS_CLAIM]
  if (Array.isArray(structured)) {
    for (const entry of structured) {
      const right = parseRightObject(entry, sub)
      if (right) rights.push(right)
    }
  }
  return rights
}

/** Whether the claims grant the operator's right (`ADMIN_SCOPE` among their scopes). */
export function isAdminByClaims(claims: Record<string, unknown>): boolean {
  return scopesOf(claims).includes(ADMIN_SCOPE)
}

/** `scope` (RFC 8693/9068: space-separated) or `scp` (Azure AD, Okta: an array or a string). */
function scopesOf(claims: Record<string, unknown>): string[] {
  const out: string[] = []
  for (const value of [claims.scope, claims.scp]) {
    if (typeof value === 'string') out.push(...value.split(' ').filter(Boolean))
    else if (Array.isArray(value)) out.push(...value.filter((s): s is string => typeof s === 'string'))
  }
  return out
}

/** `files:<action>:<store>:<prefix>` (`files:<action>:<store>` for the whole store), or null when it is not one of ours or does not parse. */
export function parseScope(scope: string, sub?: string): Right | null {
  const parts = scope.split(':')
  if (parts.length < 3 || parts[0] !== SCOPE_PREFIX) return null
  const [, action, store] = parts as [string, string, string]
  let prefix: string
  try {
    prefix = decodeURIComponent(parts.slice(3).join(':'))
  } catch {
    return null
  }
  return makeRight(store, prefix, action === '*' ? ACTIONS : [action], sub)
}

/** `{ store, prefix?, actions }` of the structured claim. */
function parseRightObject(entry: unknown, sub?: string): Right | null {
  if (entry === null || typeof entry !== 'object') return null
  const { store, prefix, actions } = entry as Record<string, unknown>
  if (typeof store !== 'string' || (prefix !== undefined && typeof prefix !== 'string')) return null
  const list = typeof actions === 'string' ? [actions] : actions
  if (!Array.isArray(list)) return null
  return makeRight(store, prefix ?? '', list.flatMap((a) => (a === '*' ? ACTIONS : [a])), sub)
}

function makeRight(store: string, rawPrefix: string, actions: readonly unknown[], sub?: string): Right | null {
  if (store === '' || actions.length === 0 || !actions.every((a): a is Action => ACTIONS.includes(a as Action))) return null
  let prefix = rawPrefix
  if (prefix.includes('{sub}')) {
    // The subject fills one whole segment; a subject that cannot be one grants nothing.
    if (sub === undefined) return null
    try {
      parseName(sub)
    } catch {
      return null
    }
    prefix = prefix.replaceAll('{sub}', sub)
  }
  try {
    prefix = parsePath(prefix.replace(/^\/+/, ''), { folder: true })
  } catch {
    return null
  }
  return { store, prefix, actions: new Set(actions) }
}

/** Whether the rights allow the request: one right for its store and action whose prefix covers the path. */
export function rightsAllow(rights: readonly Right[], request: AccessRequest): boolean {
  return rights.some(
    (r) =>
      r.actions.has(request.action) &&
      (r.store === '*' || r.store === request.store) &&
      (isWithin(request.path, r.prefix) || (request.below === true && isWithin(r.prefix, request.path))),
  )
}

/** A scope string for a right, as `npm run token` writes them. */
export function scopeOf(action: Action | '*', store: string, prefix: string = ROOT): string {
  return `${SCOPE_PREFIX}:${action}:${store}:${prefix.split('/').map(encodeURIComponent).join('/')}`
}
