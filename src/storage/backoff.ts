import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Waits before attempt `attempt + 1` of an operation that lost a race to another process: a random
 * time up to `baseMs * 2^attempt`, capped ("full jitter"), so that racers spread out instead of
 * colliding again in step.
 */
export function backoff(attempt: number, baseMs = 5, capMs = 250): Promise<void> {
  return sleep(Math.random() * Math.min(capMs, baseMs * 2 ** attempt))
}
