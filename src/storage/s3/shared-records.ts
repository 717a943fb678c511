/**
 * Shared records on the s3 store (../shared-records.ts): one JSON object per record under
 * `<prefix>.filestorage/records/<namespace>/`, holding the key and the value, named
 * `<kind>/=<the rest of the key, URL-encoded>` (the kind is the key's first segment: `b/users/ana`
 * is `b/=users%2Fana`), so that a listing by a key's prefix is a listing by the name's, and no record
 * is a folder of another (SeaweedFS, whose objects are files of a file system, cannot have both);
 * a name that would be too long is `<kind>/#<hash of the key>`. A change reads the record with its ETag and writes the next one only if
 * that ETag still holds (`If-Match`; `If-None-Match: *` for a new one), or deletes it under the same
 * condition, so of two processes changing a record at once exactly one wins and the other reads
 * again. Changes of one record inside a process take turns, so only other processes race.
 *
 * Processes are those writing to the store as its event log names them, each with a heartbeat
 * object (event-log.ts): one whose heartbeat is older than the liveness window, by the server's
 * clock, is dead. A server without conditional writes cannot keep records: a change is refused there
 * with `501 not_supported`.
 */
import { createHash } from 'node:crypto'
import { backoff } from '../backoff.js'
import { keepsChanging, notSupported } from '../errors.js'
import { forEachLimited } from '../for-each-limited.js'
import { KeyedLock } from '../keyed-lock.js'
import type { SharedRecords } from '../shared-records.js'
import type { Bucket } from './bucket.js'
import type { Capabilities } from './capabilities.js'
import type { S3EventLog } from './event-log.js'
import { INTERNAL, MAX_KEY_BYTES, type S3Keys } from './keys.js'

interface RecordObject<T> {
  key: string
  value: T
}

/** A change that keeps losing to other processes gives up after this long (`store_unavailable`), as on MongoDB. */
const GIVE_UP_MS = 10_000
/** Records read at once by a listing. */
const READ_CONCURRENCY = 8

export class S3SharedRecords implements SharedRecords {
  readonly #turns = new KeyedLock()
  readonly #dir: string

  constructor(
    private readonly bucket: Bucket,
    keys: S3Keys,
    private readonly capabilities: Capabilities,
    private readonly processes: Pick<S3EventLog, 'owner' | 'alive'>,
    namespace: string,
    /** Runs a step against S3 as the driver runs its own (counted until it settles, errors as StorageErrors). */
    private readonly run: <T>(step: () => Promise<T>) => Promise<T>,
  ) {
    this.#dir = keys.reserved(`${INTERNAL.records}${namespace}/`)
  }

  owner(): Promise<string> {
    return this.run(() => this.processes.owner())
  }

  alive(owners: string[]): Promise<Set<string>> {
    return this.run(async () => {
      const alive = new Set<string>()
      for (const owner of new Set(owners)) if (await this.processes.alive(owner)) alive.add(owner)
      return alive
    })
  }

  read<T>(key: string): Promise<T | null> {
    return this.run(async () => {
      const found = await this.bucket.read(this.#objectKey(key))
      return found ? (JSON.parse(found.text) as RecordObject<T>).value : null
    })
  }

  update<T>(key: string, change: (current: T | null) => T | null | undefined): Promise<T | null> {
    // Each S3 step runs as the driver's (errors as StorageErrors); what `change` throws passes as it is.
    return this.#turns.run(key, async () => {
      if (!(await this.run(() => this.capabilities.conditionalWrites()))) {
        throw notSupported('quotas on this store need conditional writes (If-Match, If-None-Match), which this S3 server does not have')
      }
      const objectKey = this.#objectKey(key)
      const deadline = Date.now() + GIVE_UP_MS
      for (let attempt = 0; attempt === 0 || Date.now() < deadline; attempt++) {
        if (attempt > 0) await backoff(attempt, 1, 8)
        const found = await this.run(() => this.bucket.read(objectKey))
        const current = found ? (JSON.parse(found.text) as RecordObject<T>).value : null
        const next = change(current)
        if (next === undefined || (next === null && current === null)) return current
        if (next === null) {
          if (await this.run(() => this.bucket.delete(objectKey, found!.s3etag))) return null
          continue // changed (or removed) meanwhile
        }
        const body = JSON.stringify({ key, value: next } satisfies RecordObject<T>)
        const conditions = found ? { ifMatch: found.s3etag } : { ifNoneMatch: '*' as const }
        if ((await this.run(() => this.bucket.put(objectKey, body, conditions, { ContentType: 'application/json' }))) !== null) return next
      }
      throw keepsChanging(`the shared record "${key}"`)
    })
  }

  list<T>(prefix: string): Promise<{ key: string; value: T }[]> {
    return this.run(async () => {
      // Records named by their key: by the prefix's name; those named by a hash: all of the kind's.
      const { kind, rest } = splitKey(prefix)
      const scans = [`${this.#dir}${kind}=${encodeURIComponent(rest)}`, `${this.#dir}${kind}#`]
      const objectKeys = new Set<string>()
      for (const scan of scans) {
        for await (const objects of this.bucket.keys(scan)) for (const o of objects) objectKeys.add(o.key)
      }
      const found: { key: string; value: T }[] = []
      await forEachLimited([...objectKeys], READ_CONCURRENCY, async (objectKey) => {
        const record = await this.bucket.read(objectKey)
        if (!record) return // removed since the listing
        const { key, value } = JSON.parse(record.text) as RecordObject<T>
        if (key.startsWith(prefix)) found.push({ key, value })
      })
      return found
    })
  }

  /** The object of the record `key`: named by the key, or by its hash where that name would be too long. */
  #objectKey(key: string): string {
    const { kind, rest } = splitKey(key)
    const named = `${this.#dir}${kind}=${encodeURIComponent(rest)}`
    if (Buffer.byteLength(named) <= MAX_KEY_BYTES) return named
    return `${this.#dir}${kind}#${createHash('sha256').update(key).digest('hex').slice(0, 40)}`
  }
}

/** `b/users/ana`: kind `b/`, rest `users/ana` (a key without a `/`: no kind). */
function splitKey(key: string): { kind: string; rest: string } {
  const slash = key.indexOf('/')
  return { kind: key.slice(0, slash + 1), rest: key.slice(slash + 1) }
}
