/**
 * The request's id: the client's `X-Request-Id` when it sends a sensible one (printable, at most
 * 128 characters), else a new one. Events carry it, so a consumer can tie an event to the request
 * (and to its log line); the service answers it back in `X-Request-Id`.
 */
import { randomUUID } from 'node:crypto'
import type { Context } from 'hono'
import type { ChangeOrigin } from '../storage/index.js'
import { principalOf } from './access.js'

declare module 'hono' {
  interface ContextVariableMap {
    filestorageRequestId?: string
  }
}

const SENSIBLE = /^[\x21-\x7e]{1,128}$/

export function requestIdOf(c: Context): string {
  let id = c.get('filestorageRequestId')
  if (id === undefined) {
    const sent = c.req.header('x-request-id')
    id = sent !== undefined && SENSIBLE.test(sent) ? sent : randomUUID()
    c.set('filestorageRequestId', id)
  }
  return id
}

/** Who asks for a change, for the events that announce it: the principal's subject and the request's id. */
export function originOf(c: Context): ChangeOrigin {
  const subject = principalOf(c)?.sub
  return { ...(subject !== undefined ? { subject } : {}), requestId: requestIdOf(c) }
}
