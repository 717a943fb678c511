/**
 * Rate limits per principal (per client address without one): requests and bytes per window, kept
 * by rate-limiter-flexible. Its Redis limiter counts each window with one atomic Lua script, so
 * with RATE_LIMIT_REDIS_URL every instance and every WORKERS process draws on one budget; without
 * it, each process keeps its own (its memory limiter). Fixed windows, as the library counts them: a
 * client can send at most twice a window's amount across a window's edge, never more.
 *
 * Requests are counted as they come and refused over the limit (`429`); bytes are throttled, never
 * refused (throttled.ts): a body streams at the rate the budget allows, a chunk at a time.
 *
 * Redis down (or slower than RATE_LIMIT_REDIS_TIMEOUT): RATE_LIMIT_REDIS_DOWN says what requests
 * get: `local`, the library's insurance limiter (each process counts on its own until Redis is
 * back), `allow` (not limited) or `refuse` (`429`). Bytes always fall back to the process's own
 * count. Either way it is logged once per outage, and `/check` reports the limiter `degraded`.
 */
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, RLWrapperTimeouts } from 'rate-limiter-flexible'
import { createClient } from 'redis'

export interface Rate {
  points: number
  windowSeconds: number
}

export interface RateLimitSettings {
  requests?: Rate
  bytes?: Rate
  redisUrl?: string
  whenRedisDown: 'local' | 'allow' | 'refuse'
  redisTimeoutMs: number
  log: (line: string) => void
}

export type Admission =
  | { admitted: true; remaining?: number; resetSeconds?: number }
  | { admitted: false; retryAfterSeconds: number; remaining: number; resetSeconds: number; unavailable?: boolean }

export interface LimiterHealth {
  status: 'ok' | 'degraded'
  message?: string
}

type Limiter = RateLimiterMemory | RLWrapperTimeouts

const newRedisClient = (url: string) =>
  // Commands fail at once while disconnected (no offline queue): the policy applies then, not a wait.
  createClient({ url, disableOfflineQueue: true, socket: { connectTimeout: 2000, reconnectStrategy: (n: number) => Math.min(100 * 2 ** n, 2000) } })
type RedisClient = ReturnType<typeof newRedisClient>

/** A memory limiter standing in for Redis, which says when it last did. */
class Insurance extends RateLimiterMemory {
  usedAt = 0
  override consume(key: string | number, points?: number, options?: { [key: string]: unknown }) {
    this.usedAt = Date.now()
    return super.consume(key, points, options)
  }
}

/** How long after the last sign of trouble the limiter still reports itself degraded (ms). */
const DEGRADED_FOR_MS = 5_000
const KEY_PREFIX = 'filestorage:ratelimit'

export class RateLimits {
  readonly #requests?: Limiter
  readonly #bytes?: Limiter
  readonly #insurances: Insurance[] = []
  readonly #client?: RedisClient
  #failedAt = 0
  #down = false

  constructor(readonly settings: RateLimitSettings) {
    const { requests, bytes, redisUrl } = settings
    if (redisUrl && (requests || bytes)) {
      const client = newRedisClient(redisUrl)
      client.on('error', (e: Error) => this.#trouble(`Redis at ${redactedUrl(redisUrl)} does not answer (${e.message})`))
      client.on('ready', () => this.#recovered())
      void client.connect().catch((e: unknown) => this.#trouble(`cannot connect to Redis at ${redactedUrl(redisUrl)} (${(e as Error).message})`))
      this.#client = client
    }
    if (requests) this.#requests = this.#limiter('requests', requests, settings.whenRedisDown === 'local')
    if (bytes) this.#bytes = this.#limiter('bytes', bytes, true)
  }

  get throttlesBytes(): boolean {
    return this.#bytes !== undefined
  }

  /** The bytes budget as a rate, for a sender that limits on its own (nginx's X-Accel-Limit-Rate). */
  get bytesPerSecond(): number {
    const { bytes } = this.settings
    return bytes ? Math.max(1, Math.floor(bytes.points / bytes.windowSeconds)) : 0
  }

  /** The `RateLimit-Policy` field (draft-ietf-httpapi-ratelimit-headers): the limits that hold. */
  get policy(): string {
    const { requests, bytes } = this.settings
    return [
      ...(requests ? [`"requests";q=${requests.points};w=${requests.windowSeconds}`] : []),
      ...(bytes ? [`"bytes";q=${bytes.points};qu="content-bytes";w=${bytes.windowSeconds}`] : []),
    ].join(', ')
  }

  /** Counts a request of `key`. */
  async admit(key: string): Promise<Admission> {
    if (!this.#requests) return { admitted: true }
    try {
      const res = await this.#requests.consume(key, 1)
      return { admitted: true, remaining: res.remainingPoints, resetSeconds: seconds(res.msBeforeNext) }
    } catch (e) {
      if (e instanceof RateLimiterRes) {
        const wait = seconds(e.msBeforeNext)
        return { admitted: false, retryAfterSeconds: Math.max(1, wait), remaining: 0, resetSeconds: wait }
      }
      // Redis did not answer and no insurance stands in for it (allow or refuse).
      this.#trouble(`Redis did not answer (${(e as Error).message})`)
      if (this.settings.whenRedisDown === 'allow') return { admitted: true }
      return { admitted: false, retryAfterSeconds: 1, remaining: 0, resetSeconds: 1, unavailable: true }
    }
  }

  /** Waits until the budget of `key` holds `bytes` more bytes (taken in slices of at most an eighth of a window's). */
  async take(key: string, bytes: number): Promise<void> {
    const limiter = this.#bytes
    if (!limiter) return
    const slice = Math.max(1, Math.floor(this.settings.bytes!.points / 8))
    for (let left = bytes; left > 0; ) {
      const n = Math.min(slice, left)
      try {
        await limiter.consume(key, n)
        left -= n
      } catch (e) {
        if (!(e instanceof RateLimiterRes)) return // no count to be had at all: let it through
        await sleep(Math.max(10, e.msBeforeNext))
      }
    }
  }

  /** Degraded while Redis does not answer (and a little after it last failed). Undefined without Redis. */
  health(): LimiterHealth | undefined {
    if (!this.#client) return undefined
    const lastTrouble = Math.max(this.#failedAt, ...this.#insurances.map((i) => i.usedAt))
    if (this.#client.isReady && Date.now() - lastTrouble > DEGRADED_FOR_MS) return { status: 'ok' }
    return { status: 'degraded', message: `Redis does not answer: ${this.#meanwhile()}` }
  }

  /** What the limits do while Redis does not answer. */
  #meanwhile(): string {
    const policy = { local: 'each process limits on its own', allow: 'requests are not limited', refuse: 'requests are refused' }
    return `${policy[this.settings.whenRedisDown]} (RATE_LIMIT_REDIS_DOWN=${this.settings.whenRedisDown})`
  }

  async close(): Promise<void> {
    const client = this.#client
    if (client?.isOpen) await client.close().catch(() => client.destroy())
    else client?.destroy()
  }

  #limiter(name: string, rate: Rate, insured: boolean): Limiter {
    const options = { points: rate.points, duration: rate.windowSeconds, keyPrefix: `${KEY_PREFIX}:${name}` }
    if (!this.#client) return new RateLimiterMemory(options)
    const insurance = insured ? new Insurance(options) : undefined
    if (insurance) this.#insurances.push(insurance)
    const redis = new RateLimiterRedis({
      ...options,
      storeClient: this.#client,
      useRedisPackage: true,
      rejectIfRedisNotReady: true,
      ...(insurance ? { insuranceLimiter: insurance } : {}),
    })
    return new RLWrapperTimeouts({ limiter: redis, timeoutMs: this.settings.redisTimeoutMs, ...(insurance ? { insuranceLimiter: insurance } : {}) })
  }

  #trouble(message: string): void {
    this.#failedAt = Date.now()
    if (this.#down) return
    this.#down = true
    this.settings.log(`[filestorage] rate limits: ${message}; until it answers, ${this.#meanwhile()}`)
  }

  #recovered(): void {
    if (!this.#down) return
    this.#down = false
    this.settings.log('[filestorage] rate limits: Redis answers again; the limits are shared again')
  }
}

const seconds = (ms: number) => Math.ceil(ms / 1000)

/** A principal's key, hashed: ids can be long, and need not be readable in Redis. */
export const principalKey = (id: string) => `p:${createHash('sha256').update(id).digest('base64url').slice(0, 22)}`

function redactedUrl(url: string): string {
  return url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@')
}
