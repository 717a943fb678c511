/**
 * Serializes async critical sections per key inside one process: the check-then-commit steps of a
 * write (preconditions, "created or replaced") must not interleave with another write to the same path.
 */
export class KeyedLock {
  #tails = new Map<string, Promise<void>>()

  /**
   * Runs `fn` holding every key. Several keys are taken in sorted order, each once, so two callers
   * locking the same pair never wait on each other (and a key given twice is not a deadlock).
   */
  async run<T>(keys: string | string[], fn: () => Promise<T>): Promise<T> {
    if (typeof keys === 'string') return this.#runOne(keys, fn)
    const [first, ...rest] = [...new Set(keys)].sort()
    if (first === undefined) return fn()
    return this.#runOne(first, () => (rest.length > 0 ? this.run(rest, fn) : fn()))
  }

  async #runOne<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>((resolve) => (release = resolve))
    const tail = previous.then(() => mine)
    this.#tails.set(key, tail)
    await previous
    try {
      return await fn()
    } finally {
      release()
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
  }
}
