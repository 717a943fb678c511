import { setTimeout as delay } from 'node:timers/promises'

/** Waits between retries against Consul (a fleet restarted together does not retry in step). */
export { backoffDelay } from '../../storage/backoff.js'

/** Resolves after `ms`, or at once when `signal` aborts (no rejection). The timer does not keep the process alive. */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  delay(ms, undefined, { ref: false, ...(signal ? { signal } : {}) }).catch(() => {})
