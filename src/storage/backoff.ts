import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Waits between retries: doubling from `baseMs` up to `maxMs`, the upper half of it at random
 * ("equal jitter"), so that retriers started together do not retry in step.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30))
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2)
}

/**
 * Waits before attempt `attempt + 1` of an operation that lost a race to another process: a random
 * time up to `baseMs * 2^attempt`, capped ("full jitter"), so that racers spread out instead of
 * colliding again in step.
 */
export function backoff(attempt: number, baseMs = 5, capMs = 250): Promise<void> {
  return sleep(Math.random() * Math.min(capMs, baseMs * 2 ** attempt))
}
