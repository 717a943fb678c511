/**
 * The blocking hooks (handlers/hooks.ts asks them): one POST per question, signed as events are
 * (signing.ts), with `{ type: "pre-upload" | "pre-delete", timestamp, data }`. A 2xx allows the
 * change; its JSON body may hold `metadata` to add to the file (pre-upload). A 4xx refuses it, its
 * `message` (or `error.message`, or the first bytes of its body) passed on to the client. Anything
 * else (no answer within the timeout, a 5xx, a redirect) is a hook that is down: `onFailure` decides.
 */
import { randomUUID } from 'node:crypto'
import { SpanKind } from '@opentelemetry/api'
import type { ChangeHooks, HookRequest, HookVerdict } from '../handlers/hooks.js'
import { inSpan, traceHeaders } from '../observability/tracing.js'
import { EVENT_SCHEMA_VERSION } from '../storage/index.js'
import type { HookOptions } from './options.js'
import { type Answer, Poster, TimeoutError } from './post.js'
import { webhookHeaders } from './signing.js'
import { USER_AGENT } from './webhook.js'

/** The most of a hook's answer read (its metadata is at most 16 KiB). */
const ANSWER_BYTES = 64 * 1024
/** Connections kept open to a hook. */
const HOOK_SOCKETS = 64

export function httpHooks(hooks: { preUpload?: HookOptions; preDelete?: HookOptions }, log: (line: string) => void): ChangeHooks {
  const ask = (hook: HookOptions, type: string) => {
    const poster = new Poster(hook.url, HOOK_SOCKETS)
    const target = new URL(hook.url)
    // What a span says of the call: no query, no credentials.
    const span = { 'http.request.method': 'POST', 'url.full': `${target.origin}${target.pathname}`, 'filestorage.hook': type }
    return (request: HookRequest) => askHook(poster, hook, type, request, log, span)
  }
  return {
    ...(hooks.preUpload ? { preUpload: ask(hooks.preUpload, 'pre-upload') } : {}),
    ...(hooks.preDelete ? { preDelete: ask(hooks.preDelete, 'pre-delete') } : {}),
  }
}

async function askHook(
  poster: Poster,
  hook: HookOptions,
  type: string,
  request: HookRequest,
  log: (line: string) => void,
  span: Record<string, string>,
): Promise<HookVerdict> {
  const body = JSON.stringify({ type, timestamp: new Date().toISOString(), data: { schemaVersion: EVENT_SCHEMA_VERSION, ...request } })
  let answer: Answer
  try {
    // A CLIENT span of the request's trace (tracing on), passed on to the hook as `traceparent`.
    answer = await inSpan(
      'POST',
      span,
      () =>
        poster.post(traceHeaders({ ...webhookHeaders(hook.keys, `hook_${randomUUID()}`, body), 'user-agent': USER_AGENT }), body, hook.timeoutMs, ANSWER_BYTES),
      { kind: SpanKind.CLIENT },
    )
  } catch (e) {
    return down(hook, type, e instanceof TimeoutError ? e.message : 'it could not be reached', log)
  }
  const { status } = answer
  if (status >= 200 && status < 300) {
    const metadata = metadataOf(answer.body)
    return metadata ? { allowed: true, metadata } : { allowed: true }
  }
  if (status >= 400 && status < 500) return { allowed: false, status, message: messageOf(answer.body) }
  return down(hook, type, `it answered ${status}`, log)
}

function down(hook: HookOptions, type: string, why: string, log: (line: string) => void): HookVerdict {
  log(`[filestorage] ${type} hook: ${why}; ${hook.onFailure === 'allow' ? 'the change goes through (HOOK_FAILURE_POLICY=allow)' : 'the change is refused'}`)
  return hook.onFailure === 'allow' ? { allowed: true } : { allowed: false, unavailable: true, message: `the ${type} hook: ${why}` }
}

/** `metadata` of a JSON answer, when it holds an object there. */
function metadataOf(answer: string): Record<string, unknown> | undefined {
  try {
    const parsed = JSON.parse(answer) as { metadata?: unknown }
    const { metadata } = parsed
    return metadata !== null && typeof metadata === 'object' && !Array.isArray(metadata) ? (metadata as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** What a refusal says: `message`, `error.message` or `error` of a JSON answer, else its text (at most 1 KiB). */
function messageOf(answer: string): string {
  try {
    const parsed = JSON.parse(answer) as { message?: unknown; error?: unknown }
    const error = parsed.error as { message?: unknown } | string | undefined
    const message = parsed.message ?? (typeof error === 'object' ? error?.message : error)
    if (typeof message === 'string') return message.slice(0, 1024)
  } catch {
    // not JSON: its text
  }
  return answer.trim().slice(0, 1024) || 'refused by the hook'
}
