/**
 * The disk store's `EventLog` (storage/events/types.ts): each queue a folder under
 * `.filestorage/events/`, each entry a JSON file named by its key, so a listing sorted by name is the
 * queue in order, and moving an entry from one queue to another is one rename.
 *
 *   events/intents/<instance>/<key>.json   intents of one process, written just before its change
 *   events/ready/<key>.json                 entries whose change is visible, to hand out
 *   events/to/<consumer>/<key>.json         to deliver to one consumer (hard links of one file)
 *   events/dead/<consumer>/<key>.json       dead letters
 *   events/state/<name>.json                shared values (an endpoint disabled by 410)
 *
 * An intent is written in place (nobody acts on it while its writer lives); one cut by a crash
 * before its write ended is empty or torn, and its change, which comes after the write, cannot have
 * happened: it is never read as an entry, and goes with its folder once its process is reaped.
 * Every other entry is written whole, then renamed in.
 */
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { DEAD, type EventLog, INTENTS, type LogEntry, READY, TO } from '../events/types.js'
import type { Instances } from './instances.js'
import { link, readdir, readText, rename, unlink } from './fs-calls.js'
import { isErrno, writeNewFile, writeThenRename } from './layout.js'
import type { StoreLocks } from './store-locks.js'

const SUFFIX = '.json'

export class DiskEventLog implements EventLog {
  /** A change of a path waits for the earlier one's lock, which goes only once its intent is settled. */
  readonly intentsHoldBack = false

  constructor(
    private readonly dir: string,
    private readonly instances: Instances,
    private readonly locks: StoreLocks,
    /** A fresh temporary file name private to this process. */
    private readonly tmpFile: () => string,
    /** The driver's reading of a witness (disk-driver.ts). */
    readonly settle: (entry: LogEntry) => Promise<boolean>,
  ) {}

  async owner(): Promise<string> {
    return this.instances.id
  }

  alive(owner: string): Promise<boolean> {
    return this.instances.isAlive(owner)
  }

  async put(queue: string, entry: LogEntry): Promise<void> {
    const file = this.#file(queue, entry.key)
    const text = JSON.stringify(entry)
    await this.#makingFolder(queue, () =>
      queue.startsWith(INTENTS) ? writeNewFile(file, text) : writeThenRename(this.tmpFile(), file, text),
    )
  }

  async move(from: string, to: string, key: string): Promise<boolean> {
    try {
      await this.#makingFolder(to, () => rename(this.#file(from, key), this.#file(to, key)))
      return true
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return false
      throw e
    }
  }

  async spread(from: string, to: string[], key: string): Promise<void> {
    if (to.length === 1) {
      await this.move(from, to[0]!, key) // one rename, rather than a link and an unlink
      return
    }
    const source = this.#file(from, key)
    for (const queue of to) {
      try {
        await this.#makingFolder(queue, () => link(source, this.#file(queue, key)))
      } catch (e) {
        if (!isErrno(e, 'EEXIST')) throw e // there already: a spread cut by a crash
      }
    }
    await unlink(source).catch((e: unknown) => {
      if (!isErrno(e, 'ENOENT')) throw e
    })
  }

  async remove(queue: string, key: string): Promise<boolean> {
    try {
      await unlink(this.#file(queue, key))
      return true
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return false
      throw e
    }
  }

  async keys(queue: string, limit: number, after?: string): Promise<string[]> {
    const all = await this.#names(queue)
    return (after === undefined ? all : all.filter((n) => n > after)).slice(0, limit)
  }

  async read(queue: string, keys: string[]): Promise<LogEntry[]> {
    const entries = await Promise.all(keys.map((key) => this.#read(queue, key)))
    return entries.filter((e): e is LogEntry => e !== null)
  }

  async queues(prefix: string): Promise<string[]> {
    const names = await readdir(join(this.dir, prefix)).catch(() => [] as string[])
    return names.map((name) => `${prefix}${name}`)
  }

  async count(queue: string): Promise<number> {
    return (await this.#names(queue)).length
  }

  async size(): Promise<number> {
    let total = await this.count(READY)
    for (const prefix of [INTENTS, TO, DEAD]) {
      for (const queue of await this.queues(prefix)) total += await this.count(queue)
    }
    return total
  }

  async readState(name: string): Promise<Record<string, unknown> | null> {
    const text = await readText(this.#file('state', name)).catch(() => null)
    return text === null ? null : (JSON.parse(text) as Record<string, unknown>)
  }

  async writeState(name: string, value: Record<string, unknown> | null): Promise<void> {
    const file = this.#file('state', name)
    if (value === null) await rm(file, { force: true })
    else await this.#makingFolder('state', () => writeThenRename(this.tmpFile(), file, JSON.stringify(value)))
  }

  lease(name: string): Promise<boolean> {
    return this.locks.hold(`events:${name}`)
  }

  /** Removes an empty intents folder of a process reaped (its intents settled). */
  async forget(queue: string): Promise<void> {
    await rm(join(this.dir, queue), { recursive: true, force: true })
  }

  #file(queue: string, key: string): string {
    return join(this.dir, queue, key + SUFFIX)
  }

  async #names(queue: string): Promise<string[]> {
    const names = await readdir(join(this.dir, queue)).catch(() => [] as string[])
    return names
      .filter((n) => n.endsWith(SUFFIX))
      .map((n) => n.slice(0, -SUFFIX.length))
      .sort()
  }

  async #read(queue: string, key: string): Promise<LogEntry | null> {
    let text: string
    try {
      text = await readText(this.#file(queue, key))
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return null // moved or removed meanwhile
      throw e
    }
    try {
      return JSON.parse(text) as LogEntry
    } catch {
      return null // an intent being written, or torn by a crash (see the top of this file)
    }
  }

  /** Runs `step`, making the queue's folder first when it is missing. */
  async #makingFolder<T>(queue: string, step: () => Promise<T>): Promise<T> {
    try {
      return await step()
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e
      await mkdir(join(this.dir, queue), { recursive: true })
      return step()
    }
  }
}
