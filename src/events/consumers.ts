/**
 * The consumers a relay delivers to: webhook endpoints (one HTTP POST per event, signed), and the
 * Redis stream. Each says per try whether the event was taken; the relay does the rest (order,
 * retries, dead letters).
 */
import type { EventBody } from '../storage/index.js'

export type Outcome =
  | { ok: true }
  | {
      ok: false
      /** The consumer said it is gone for good (`410`): it takes nothing more until an operator enables it. */
      gone?: boolean
      /** Its answer, when it answered. */
      status?: number
      /** How long it asked to be left alone (`Retry-After`). */
      retryAfterMs?: number
      error: string
    }

export interface Consumer {
  /** Names its queue, dead letters and state (an endpoint's name; `.redis` for the stream). */
  readonly name: string
  /** Where it delivers, for operators (an endpoint's URL without its credentials, the stream's key). */
  readonly target: string
  accepts(store: string, event: EventBody): boolean
  send(store: string, event: EventBody): Promise<Outcome>
  close(): Promise<void>
}
