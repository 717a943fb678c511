/**
 * The Redis stream: every event appended with `XADD <stream> MAXLEN ~ <n> *`, its fields `id` (the
 * event's id, the same as its `webhook-id`), `type`, `store`, `timestamp` and `payload` (the JSON an
 * endpoint would get). Consumers read it with consumer groups (XREADGROUP, XACK) and replay from any
 * id. At least once: an append whose answer was lost (a crash, a cut connection) is appended again,
 * with the same `id` field, which consumers use to drop duplicates.
 *
 * node-redis (`redis`): Redis's own client, kept by Redis; it reconnects by itself, and with its
 * offline queue turned off a command sent while Redis is away fails at once, so the relay retries it
 * like an endpoint's try instead of holding it in memory.
 */
import { createClient } from 'redis'
import type { EventBody } from '../storage/index.js'
import type { Consumer, Outcome } from './consumers.js'
import type { RedisStreamOptions } from './options.js'
import { payloadOf } from './payload.js'
import { shownUrl } from './webhook.js'

export const REDIS_CONSUMER = '.redis'

const CONNECT_TIMEOUT_MS = 5000

export class RedisStream implements Consumer {
  readonly name = REDIS_CONSUMER
  readonly target: string
  readonly #client: ReturnType<typeof createClient>
  #connecting: Promise<unknown> | null = null
  #closed = false

  constructor(private readonly options: RedisStreamOptions) {
    this.target = `${shownUrl(options.url.replace(/^rediss?:/, 'http:')).replace(/^http:\/\//, '')} ${options.stream}`
    this.#client = createClient({
      url: options.url,
      disableOfflineQueue: true,
      socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: (retries) => Math.min(100 * 2 ** retries, 5000) },
    })
    this.#client.on('error', () => {}) // reported by the sends that fail; it reconnects by itself
  }

  accepts(): boolean {
    return true
  }

  async send(store: string, event: EventBody): Promise<Outcome> {
    try {
      if (!this.#client.isOpen) {
        this.#connecting ??= this.#client.connect().finally(() => (this.#connecting = null))
        await this.#connecting
      }
      await this.#client.xAdd(
        this.options.stream,
        '*',
        { id: event.id, type: event.type, store, timestamp: event.timestamp, payload: payloadOf(store, event) },
        { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: this.options.maxLen } },
      )
      return { ok: true }
    } catch (e) {
      return { ok: false, error: `Redis: ${(e as Error).message}` }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#client.isOpen) await this.#client.close().catch(() => this.#client.destroy())
    else this.#client.destroy()
  }
}
