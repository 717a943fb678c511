/**
 * Operations under way, for a store that closes: it lets them end, for a bounded time, before it
 * lets go of what they rely on (the disk store's locks, the mongo store's lease registration).
 */
export class InFlight {
  readonly #running = new Set<Promise<unknown>>()

  /** Counts `operation` until it settles; returns it. */
  track<T>(operation: Promise<T>): Promise<T> {
    this.#running.add(operation)
    const forget = () => this.#running.delete(operation)
    operation.then(forget, forget)
    return operation
  }

  /** Resolves once every operation under way now has settled, or after `timeoutMs`, whichever is first. */
  async settled(timeoutMs: number): Promise<void> {
    if (this.#running.size === 0) return
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs)
      timer.unref() // a close that waited long enough must not hold the process up afterwards
    })
    try {
      await Promise.race([Promise.allSettled([...this.#running]), late])
    } finally {
      clearTimeout(timer)
    }
  }
}
