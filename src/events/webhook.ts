/**
 * An endpoint: each event is one POST of its payload (payload.ts), signed per Standard Webhooks with
 * the endpoint's keys at the moment of each try (signing.ts), over kept-alive connections (post.ts).
 * A 2xx takes it; `410 Gone` says the endpoint is gone for good; anything else (another status, a
 * redirect, no answer in time, a refused connection) is tried again later, after `Retry-After` when
 * the endpoint sent one.
 */
import { VERSION } from '../version.js'
import type { EventBody } from '../storage/index.js'
import type { Consumer, Outcome } from './consumers.js'
import { accepts, type EndpointOptions } from './options.js'
import { payloadOf } from './payload.js'
import { type Answer, Poster, TimeoutError } from './post.js'
import { webhookHeaders } from './signing.js'

export const USER_AGENT = `filestorage/${VERSION}`

/** How much of an answer's body is kept for the dead letter's error (the rest is not read). */
const ANSWER_BYTES = 512

export class WebhookEndpoint implements Consumer {
  readonly name: string
  readonly target: string
  readonly #poster: Poster

  constructor(
    private readonly options: EndpointOptions,
    /** Tries in flight at most (the relay's per consumer): connections kept open. */
    sockets: number,
  ) {
    this.name = options.name
    this.target = shownUrl(options.url)
    this.#poster = new Poster(options.url, sockets)
  }

  accepts(store: string, event: EventBody): boolean {
    return accepts(this.options.filter, store, event)
  }

  async send(store: string, event: EventBody): Promise<Outcome> {
    const body = payloadOf(store, event)
    let answer: Answer
    try {
      answer = await this.#poster.post({ ...webhookHeaders(this.options.keys, event.id, body), 'user-agent': USER_AGENT }, body, this.options.timeoutMs, ANSWER_BYTES)
    } catch (e) {
      return { ok: false, error: describeFailure(e) }
    }
    if (answer.status >= 200 && answer.status < 300) return { ok: true }
    const retryAfter = answer.headers['retry-after']
    const retryAfterMs = parseRetryAfter(typeof retryAfter === 'string' ? retryAfter : null)
    const text = answer.body.trim()
    return {
      ok: false,
      status: answer.status,
      ...(answer.status === 410 ? { gone: true } : {}),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      error: `answered ${answer.status}${text ? `: ${text}` : ''}`,
    }
  }

  async close(): Promise<void> {
    this.#poster.close()
  }
}

/** `Retry-After` (seconds, or an HTTP date) in milliseconds from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const date = Date.parse(text)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

function describeFailure(e: unknown): string {
  if (e instanceof TimeoutError) return e.message
  return `could not be reached: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`
}

/** A URL as logs and the admin routes show it: no user, password or query (which may carry credentials). */
export function shownUrl(url: string): string {
  const u = new URL(url)
  return `${u.protocol}//${u.host}${u.pathname}`
}
