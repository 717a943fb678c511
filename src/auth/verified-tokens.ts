/**
 * Tokens whose signature and claims were accepted lately, so that a client sending the same token
 * with every request costs one verification, not one per request.
 *
 * Keyed by the whole token string: only the very token that was verified is taken again. An entry
 * is used until the token expires (`exp`, with the same clock tolerance as the verification) and
 * at most `rememberMs` after it was verified, so that a key withdrawn from a JWKS stops being
 * honoured within that time. Bounded in entries; the oldest go first.
 */
export interface VerifiedTokensOptions {
  /** How long after its verification a token is taken without verifying it again (0: never). */
  rememberMs: number
  /** Seconds of clock skew tolerated on `exp`, as in the verification. */
  clockTolerance: number
  /** Most tokens held (default 1024). */
  maxEntries?: number
}

interface Entry<T> {
  payload: T
  /** Epoch milliseconds after which the entry is not used. */
  until: number
}

export class VerifiedTokens<T extends { exp?: number }> {
  readonly #entries = new Map<string, Entry<T>>()

  constructor(private readonly options: VerifiedTokensOptions) {}

  /** The payload of `token` if it was accepted lately and has not expired since. */
  get(token: string, now = Date.now()): T | undefined {
    const entry = this.#entries.get(token)
    if (!entry) return undefined
    if (now >= entry.until) {
      this.#entries.delete(token)
      return undefined
    }
    return entry.payload
  }

  set(token: string, payload: T, now = Date.now()): void {
    if (this.options.rememberMs <= 0 || payload.exp === undefined) return
    const until = Math.min(now + this.options.rememberMs, (payload.exp + this.options.clockTolerance) * 1000)
    if (until <= now) return
    this.#entries.delete(token)
    this.#entries.set(token, { payload, until })
    const max = this.options.maxEntries ?? 1024
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= max) break
      this.#entries.delete(oldest)
    }
  }
}
