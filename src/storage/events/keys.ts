/**
 * Entry keys: 18 characters of `[0-9a-z]` that sort (as plain strings, on every store) in the order
 * changes were recorded: the time in milliseconds (9 base-36 digits, good until the year 5138), a
 * counter within the millisecond (4), and 5 random digits that keep two processes' keys apart.
 *
 * Two changes of one path are recorded one after the other under the path's lock, and the later one
 * must sort after the earlier wherever it was made. So a key is made after `after` (the key of the
 * version it replaces, when the store keeps it), and the recorder lets its millisecond pass before
 * the lock goes (`settled`): the next change of the path, in any process of the machine, gets a
 * later millisecond. Across machines, keys follow the clocks (docs/events.md).
 */
import { randomInt } from 'node:crypto'

const TIME_DIGITS = 9
const COUNT_DIGITS = 4
const RANDOM_DIGITS = 5
const MAX_COUNT = 36 ** COUNT_DIGITS - 1
const MAX_WAIT_MS = 20

let lastMs = 0
let count = 0

const digits = (n: number, width: number) => n.toString(36).padStart(width, '0')

/** A new key, later than every key this process made before, and than `after` when given. */
export function newKey(after?: string): string {
  let ms = Date.now()
  let n = 0
  if (ms <= lastMs) {
    ms = lastMs
    n = count + 1
  }
  if (after !== undefined && after.length >= TIME_DIGITS + COUNT_DIGITS) {
    const afterMs = parseInt(after.slice(0, TIME_DIGITS), 36)
    const afterCount = parseInt(after.slice(TIME_DIGITS, TIME_DIGITS + COUNT_DIGITS), 36)
    if (afterMs > ms || (afterMs === ms && afterCount >= n)) {
      ms = afterMs
      n = afterCount + 1
    }
  }
  if (n > MAX_COUNT) {
    ms += 1
    n = 0
  }
  lastMs = ms
  count = n
  return digits(ms, TIME_DIGITS) + digits(n, COUNT_DIGITS) + digits(randomInt(36 ** RANDOM_DIGITS), RANDOM_DIGITS)
}

/** The millisecond a key was made in. */
export const keyTime = (key: string): number => parseInt(key.slice(0, TIME_DIGITS), 36)

/** Resolves once the clock has passed the millisecond of `key` (see the top of this file). */
export async function settled(key: string): Promise<void> {
  const ms = keyTime(key)
  // A key pushed ahead by another machine's clock (`after`) is not waited for.
  if (ms - Date.now() > MAX_WAIT_MS) return
  while (Date.now() <= ms) await new Promise((resolve) => setTimeout(resolve, 1))
}

/** Whether `key` is one (from a URL or a file name): nothing else is looked up. */
export const isKey = (key: string): boolean => /^[0-9a-z]{18}$/.test(key)

/** The id of the `n`th event of the entry `key`: the `webhook-id`. */
export const eventId = (key: string, n: number): string => (n === 0 ? `evt_${key}` : `evt_${key}_${n}`)
