/**
 * An endpoint: each event is one POST of its payload (payload.ts), signed per Standard Webhooks with
 * the endpoint's keys at the moment of each try (signing.ts). A 2xx takes it; `410 Gone` says the
 * endpoint is gone for good; anything else (another status, a redirect, no answer in time, a refused
 * connection) is tried again later, after `Retry-After` when the endpoint sent one.
 */
import { VERSION } from '../version.js'
import type { EventBody } from '../storage/index.js'
import { readAnswer } from './answer.js'
import type { Consumer, Outcome } from './consumers.js'
import { accepts, type EndpointOptions } from './options.js'
import { payloadOf } from './payload.js'
import { webhookHeaders } from './signing.js'

/** How much of an answer's body is kept for the dead letter's error (the rest is not read). */
const ANSWER_BYTES = 512

export class WebhookEndpoint implements Consumer {
  readonly name: string
  readonly target: string

  constructor(private readonly options: EndpointOptions) {
    this.name = options.name
    this.target = shownUrl(options.url)
  }

  accepts(store: string, event: EventBody): boolean {
    return accepts(this.options.filter, store, event)
  }

  async send(store: string, event: EventBody): Promise<Outcome> {
    const body = payloadOf(store, event)
    let response: Response
    try {
      response = await fetch(this.options.url, {
        method: 'POST',
        headers: { ...webhookHeaders(this.options.keys, event.id, body), 'user-agent': `filestorage/${VERSION}` },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs),
      })
    } catch (e) {
      return { ok: false, error: describeFailure(e, this.options.timeoutMs) }
    }
    const answer = (await readAnswer(response, ANSWER_BYTES).catch(() => '')).trim()
    if (response.status >= 200 && response.status < 300) return { ok: true }
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'))
    return {
      ok: false,
      status: response.status,
      ...(response.status === 410 ? { gone: true } : {}),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      error: `answered ${response.status}${answer ? `: ${answer}` : ''}`,
    }
  }

  async close(): Promise<void> {}
}

/** `Retry-After` (seconds, or an HTTP date) in milliseconds from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const date = Date.parse(text)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

function describeFailure(e: unknown, timeoutMs: number): string {
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) return `no answer within ${timeoutMs} ms`
  const cause = e instanceof Error ? (e.cause as { code?: string; message?: string } | undefined) : undefined
  return `could not be reached: ${cause?.code ?? cause?.message ?? (e as Error).message}`
}

/** A URL as logs and the admin routes show it: no user, password or query (which may carry credentials). */
export function shownUrl(url: string): string {
  const u = new URL(url)
  return `${u.protocol}//${u.host}${u.pathname}`
}
