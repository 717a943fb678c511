/**
 * Locks on paths and uploads that hold across every process sharing the store folder (workers of
 * one service, several services on one volume), for the check-then-commit steps of a write
 * (If-Match, created-or-replaced, an append's offset, completing an upload once).
 *
 * Inside a process, callers queue on a KeyedLock. Across processes, a lock is a hard link
 * `.filestorage/locks/<hash of key>` to the holder's instance record (instances.ts): link() creates
 * it for one caller only, unlink() releases it, and the link's inode names its holder. A waiter
 * whose lock is held by a dead instance has that instance reaped, which removes its links; no one
 * else ever removes a lock, so a lock can never be taken from a live holder.
 */
import { createHash } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { StorageError } from '../errors.js'
import { backoffDelay } from '../backoff.js'
import { InFlight } from '../in-flight.js'
import { KeyedLock } from '../keyed-lock.js'
import type { Instances } from './instances.js'
import { link, lstat, stat, unlink } from './fs-calls.js'
import { isErrno } from './layout.js'

/** Waits between tries on a lock another process holds: short, growing, capped (ms). */
const backoffMs = (attempt: number) => backoffDelay(attempt, 1, 50)

export class StoreLocks {
  readonly #local = new KeyedLock()

  constructor(
    private readonly dir: string,
    private readonly instances: Instances,
    /** Reclaims what a dead instance left (its locks among it); see DiskDriver's reaping. */
    private readonly reapDead: (id: string) => Promise<void>,
  ) {}

  /** Runs `fn` holding every key; several keys are taken in sorted order, each once. */
  async run<T>(keys: string | string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(typeof keys === 'string' ? [keys] : keys)].sort()
    return this.#local.run(sorted, () =>
      this.#holding.track(
        (async () => {
          const held: string[] = []
          try {
            for (const key of sorted) held.push(await this.#acquire(key))
            return await fn()
          } finally {
            for (const file of held) await unlink(file).catch(() => {})
          }
        })(),
      ),
    )
  }

  /** The sections holding (or taking) locks, which release() lets end. */
  readonly #holding = new InFlight()
  /** Set once the store closes: a lock taken after release() would outlive the holder's record. */
  #closing = false

  /**
   * Before the instance unregisters (a clean close): waits up to `timeoutMs` for the operations
   * holding locks to end, then removes whatever links it still holds. A lock whose holder's record
   * is gone names no one, so no waiter could ever reap it: a service stopped while a request held a
   * lock (a tus PATCH cut by the shutdown, which then takes the lock again to keep what it received)
   * left its upload locked for good. From here on no lock is taken: the store is closing.
   */
  async release(timeoutMs: number, beforeLettingGo: () => Promise<void> = async () => {}): Promise<void> {
    this.#closing = true
    await this.#holding.settled(timeoutMs)
    await beforeLettingGo() // what needs the locks still held (settling the events of changes cut short)
    // A record already gone (reaped by another process that thought us dead) took its locks along.
    await this.removeLocksOf(this.instances.record).catch((e: unknown) => {
      if (!isErrno(e, 'ENOENT')) throw e
    })
  }

  /**
   * Holds `key` from now until this instance closes or dies, unless another live instance holds it:
   * a lease (the events relay's), taken without waiting. True while this instance holds it.
   */
  async hold(key: string): Promise<boolean> {
    if (this.#closing) return false
    const file = this.#file(key)
    const mine = (await stat(this.instances.record)).ino
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await link(this.instances.record, file)
        return true
      } catch (e) {
        if (!isErrno(e, 'EEXIST')) throw e
      }
      const held = await lstat(file).catch(() => null)
      if (held?.ino === mine) return true
      if (held) await this.#reapHolderIfDead(file)
    }
    return false
  }

  /** Removes the locks a dead instance held: the links to its record (`record`, renamed by its reaper). */
  async removeLocksOf(record: string): Promise<void> {
    const { ino: recordIno, nlink } = await stat(record)
    if (nlink === 1) return // it held none
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const file = join(this.dir, name)
      const stats = await lstat(file).catch(() => null)
      if (stats?.ino === recordIno) await unlink(file).catch(() => {})
    }
  }

  #file(key: string): string {
    return join(this.dir, createHash('sha256').update(key).digest('hex').slice(0, 32))
  }

  async #acquire(key: string): Promise<string> {
    const file = this.#file(key)
    for (let attempt = 0; ; attempt++) {
      if (this.#closing) throw new StorageError('store_unavailable', 'the store is closing')
      try {
        await link(this.instances.record, file)
        return file
      } catch (e) {
        if (!isErrno(e, 'EEXIST')) throw e
      }
      if (attempt % 8 === 7) await this.#reapHolderIfDead(file)
      await sleep(backoffMs(attempt))
    }
  }

  async #reapHolderIfDead(file: string): Promise<void> {
    const held = await lstat(file).catch(() => null)
    if (!held) return
    const records = join(this.instances.record, '..')
    for (const name of await readdir(records).catch(() => [] as string[])) {
      const stats = await stat(join(records, name)).catch(() => null)
      if (stats?.ino !== held.ino) continue
      const id = name.replace(/(\.json|\.reaping\..*)$/, '')
      if (!(await this.instances.isAlive(id))) await this.reapDead(id)
      return
    }
  }
}
