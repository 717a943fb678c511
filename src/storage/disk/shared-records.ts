/**
 * Shared records on disk (../shared-records.ts): one JSON file per record under
 * `.filestorage/records/<namespace>/`, named by a hash of its key (keys are paths, longer than a
 * file name may be), holding the key and the value. A change runs under the record's lock across
 * processes (store-locks.ts): read, change, write a new file in this process's temporary folder,
 * rename it over the record. A reader sees the old record or the new one, never a part; a crash
 * leaves the old one (and a temporary file, reclaimed with the dead process's folder).
 *
 * Processes are the store's instances (instances.ts): on one machine a dead one is known at once.
 */
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { SharedRecords } from '../shared-records.js'
import type { Instances } from './instances.js'
import { unlink } from './fs-calls.js'
import { type DiskLayout, isErrno, writeThenRename } from './layout.js'
import type { StoreLocks } from './store-locks.js'

interface RecordFile<T> {
  key: string
  value: T
}

export class DiskSharedRecords implements SharedRecords {
  readonly #dir: string
  #made: Promise<unknown> | undefined

  constructor(
    private readonly layout: DiskLayout,
    private readonly namespace: string,
    private readonly locks: StoreLocks,
    private readonly instances: Instances,
  ) {
    this.#dir = join(layout.internal, 'records', namespace)
  }

  owner(): Promise<string> {
    return Promise.resolve(this.instances.id)
  }

  async alive(owners: string[]): Promise<Set<string>> {
    const alive = new Set<string>()
    for (const owner of new Set(owners)) if (await this.instances.isAlive(owner)) alive.add(owner)
    return alive
  }

  async read<T>(key: string): Promise<T | null> {
    return (await this.#readFile<T>(this.#file(key)))?.value ?? null
  }

  update<T>(key: string, change: (current: T | null) => T | null | undefined): Promise<T | null> {
    return this.locks.run(`records:${this.namespace}:${key}`, async () => {
      const file = this.#file(key)
      const current = (await this.#readFile<T>(file))?.value ?? null
      const next = change(current)
      if (next === undefined) return current
      if (next === null) {
        await unlink(file).catch((e: unknown) => {
          if (!isErrno(e, 'ENOENT')) throw e
        })
        return null
      }
      await (this.#made ??= mkdir(this.#dir, { recursive: true }))
      await writeThenRename(this.layout.tmpFile(), file, JSON.stringify({ key, value: next } satisfies RecordFile<T>))
      return next
    })
  }

  async list<T>(prefix: string): Promise<{ key: string; value: T }[]> {
    const names = await readdir(this.#dir).catch((e: unknown) => {
      if (isErrno(e, 'ENOENT')) return [] as string[]
      throw e
    })
    const found: { key: string; value: T }[] = []
    for (const name of names) {
      const record = await this.#readFile<T>(join(this.#dir, name))
      if (record?.key.startsWith(prefix)) found.push(record)
    }
    return found
  }

  #file(key: string): string {
    return join(this.#dir, `${createHash('sha256').update(key).digest('hex').slice(0, 40)}.json`)
  }

  async #readFile<T>(file: string): Promise<RecordFile<T> | null> {
    try {
      return JSON.parse(await readFile(file, 'utf8')) as RecordFile<T>
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return null
      throw e
    }
  }
}
