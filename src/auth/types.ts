/**
 * Access control's vocabulary (SPEC 6): who makes a request (a Principal), what it asks to do (an
 * AccessRequest), and the Authorizer that decides. The handlers ask an Authorizer, never a token
 * format, so a developer can replace the default one (bearer JWTs) by their own.
 */
import type { Context } from 'hono'

/** What a right grants: `read` (download, info, list), `write` (upload, parts, tus), `delete`. */
export type Action = 'read' | 'write' | 'delete'
export const ACTIONS: readonly Action[] = ['read', 'write', 'delete']

/** The operation a request performs; a signed URL grants exactly one of them. */
export type Operation =
  | 'upload'
  | 'uploadForm'
  | 'download'
  | 'info'
  | 'list'
  | 'move'
  | 'delete'
  | 'createUpload'
  | 'uploadPart'
  | 'uploadStatus'
  | 'completeUpload'
  | 'abortUpload'
  | 'tusCreate'
  | 'tusUpload'
  | 'sign'
  | 'usage'
  | 'check'

/** Who sends a request. */
export interface Principal {
  /**
   * Stable identity: the owner of the uploads in parts and tus uploads it creates (another principal
   * gets `404` for them). `anonymous` and `signed-url` are the ids of those two kinds.
   */
  readonly id: string
  /** What the request log shows: a token's `sub`, `anonymous`, `signed-url:<kid>`. Never a secret. */
  readonly sub: string
  /** How it was authenticated: `token`, `anonymous`, `signed-url`, or a custom authorizer's own word. */
  readonly kind: string
}

export interface AccessRequest {
  operation: Operation
  action: Action
  store: string
  /**
   * The file or folder, through the path rules (SPEC 3.2); `''` is the whole store. Rights are
   * hierarchical: a right on a folder covers everything below it.
   */
  path: string
  /**
   * Listings and health: true asks whether the principal holds the right on `path` or on anything
   * below it (a caller who may read `users/ana` may list `users`, and sees only `ana` there).
   */
  below?: boolean
}

/**
 * Decides who a request comes from and what it may do. The default ones are `tokenAuthorizer`
 * (bearer JWTs with rights in their claims) and `anonymousAuthorizer`; any object with these two
 * methods replaces them (a session cookie, an API-key table, a policy service...).
 */
export interface Authorizer {
  /**
   * The request's principal. Throws `unauthorized(...)` (401) for missing or bad credentials, or
   * `forbidden(...)` (403) for a request it refuses whoever sends it. Runs before anything is read.
   */
  authenticate(c: Context): Promise<Principal> | Principal
  /** Whether `principal` may do what `request` asks (false: `403 forbidden`). */
  allows(principal: Principal, request: AccessRequest): Promise<boolean> | boolean
  /**
   * Whether `principal` holds the operator's right (the scope `filestorage:admin`): the admin routes
   * (the events' dead letters). No `files:` right grants it. Absent: nobody holds it.
   */
  isAdmin?(principal: Principal): Promise<boolean> | boolean
  /** OpenAPI security schemes this authorizer accepts, declared on every guarded operation. */
  readonly securitySchemes?: Record<string, Record<string, unknown>>
}
