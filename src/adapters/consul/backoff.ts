import { setTimeout as delay } from 'node:timers/promises'

/**
 * Waits between retries against Consul: doubling from `baseMs` up to `maxMs`, with jitter so that a
 * fleet restarted together does not retry in step.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30))
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2)
}

/** Resolves after `ms`, or at once when `signal` aborts (no rejection). The timer does not keep the process alive. */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  delay(ms, undefined, { ref: false, ...(signal ? { signal } : {}) }).catch(() => {})
