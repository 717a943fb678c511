/**
 * Shared records on MongoDB (../shared-records.ts), in the collection `shared_records`, built on the
 * one write FerretDB v1 keeps atomic under concurrency: an insert under a unique `_id`. A record is
 * a chain of versions, `<namespace>|<key hash>|<sequence>`; a change reads the latest version and
 * inserts the next one, so of two processes changing a record at once exactly one inserts it and
 * the other reads again (conditional updates, which FerretDB v1 applies without atomicity, are never
 * used). Changes of one record inside a process take turns, so only other processes race.
 *
 * Old versions are deleted once several newer ones exist and they are half a minute old by their
 * writer's clock. A change reads the latest version (a sorted query, the authoritative one) just
 * before it inserts the next, so the number it takes was free a moment ago, not freed by that
 * deletion (unless the hosts' clocks differ by more than 20 s: a version made after the read would
 * have to look 30 s old); when the two steps were further apart than a quarter of that (a stall), it
 * also looks for a later version after its insert, and counts only if there is none, or if the next
 * one was made from it (each version names the one it replaced). A removed record is a last version
 * without a value, deleted ten minutes later.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Collection } from 'mongodb'
import { backoff } from '../backoff.js'
import { keepsChanging } from '../errors.js'
import { KeyedLock } from '../keyed-lock.js'
import type { SharedRecords } from '../shared-records.js'
import { isDuplicateKey } from './connection.js'
import type { LeaseOwners } from './lease-owners.js'

export const SHARED_RECORDS = 'shared_records'

export interface SharedRecordDoc {
  /** `<namespace>|<key hash>|<sequence, 12 digits>` */
  _id: string
  ns: string
  /** A hash of the key (keys are paths, longer than an index key should be). */
  k: string
  key: string
  seq: number
  /** Names this version. */
  tag: string
  /** The tag of the version it replaced (null for the first). */
  base: string | null
  /** The value as JSON text; null once the record is removed. */
  value: string | null
  at: Date
}

/**
 * A change that keeps losing to other processes gives up after this long (`store_unavailable`). It
 * waits only a few milliseconds between tries: a process that just won goes on with its next change
 * at once, so a longer wait would let it win every time.
 */
const GIVE_UP_MS = 10_000
/** Versions kept behind the latest, and the age before an older one may go. */
const KEEP_VERSIONS = 8
const KEEP_MS = 30_000
/** A change whose read and insert were further apart than this looks for a later version after its insert. */
const SLOW_CHANGE_MS = KEEP_MS / 4
/** How long the last version of a removed record stays (so that a slow writer cannot bring it back). */
const KEEP_REMOVED_MS = 10 * 60_000
const CLEANUP_EVERY = 16

export class MongoSharedRecords implements SharedRecords {
  readonly #turns = new KeyedLock()
  #indexed: Promise<unknown> | undefined

  constructor(
    private readonly records: Collection<SharedRecordDoc>,
    private readonly namespace: string,
    private readonly owners: LeaseOwners,
    /** Runs a step against MongoDB as the driver runs its own (connection, errors as StorageErrors). */
    private readonly run: <T>(step: () => Promise<T>) => Promise<T>,
  ) {}

  owner(): Promise<string> {
    return this.run(() => this.owners.current())
  }

  alive(owners: string[]): Promise<Set<string>> {
    return this.run(() => this.owners.living(owners))
  }

  async read<T>(key: string): Promise<T | null> {
    const latest = await this.run(() => this.#latest(key))
    return valueOf<T>(latest)
  }

  update<T>(key: string, change: (current: T | null) => T | null | undefined): Promise<T | null> {
    return this.#turns.run(key, () =>
      this.run(async () => {
        await this.#index()
        const deadline = Date.now() + GIVE_UP_MS
        for (let attempt = 0; attempt === 0 || Date.now() < deadline; attempt++) {
          if (attempt > 0) await backoff(attempt, 1, 8)
          const readAt = Date.now()
          const latest = await this.#latest(key)
          const current = valueOf<T>(latest)
          const next = change(current)
          if (next === undefined || (next === null && current === null)) return current
          const seq = (latest?.seq ?? 0) + 1
          const doc: SharedRecordDoc = {
            _id: `${this.namespace}|${hashOf(key)}|${String(seq).padStart(12, '0')}`,
            ns: this.namespace,
            k: hashOf(key),
            key,
            seq,
            tag: randomBytes(8).toString('hex'),
            base: latest?.tag ?? null,
            value: next === null ? null : JSON.stringify(next),
            at: new Date(),
          }
          try {
            await this.records.insertOne(doc)
          } catch (e) {
            if (isDuplicateKey(e)) continue // another process changed it first
            throw e
          }
          const later =
            Date.now() - readAt < SLOW_CHANGE_MS ? null : await this.records.find({ ns: this.namespace, k: doc.k, seq: { $gt: seq } }).sort({ seq: 1 }).limit(1).next()
          if (later && !(later.seq === seq + 1 && later.base === doc.tag)) {
            // Inserted at a number freed by the cleanup: this change was made from an old version.
            await this.records.deleteOne({ _id: doc._id })
            continue
          }
          if (seq % CLEANUP_EVERY === 0 || next === null) void this.#cleanUp(doc).catch(() => {})
          return next
        }
        throw keepsChanging(`the shared record "${key}"`)
      }),
    )
  }

  async list<T>(prefix: string): Promise<{ key: string; value: T }[]> {
    const docs = await this.run(() =>
      this.records
        .find({ ns: this.namespace, key: { $gte: prefix, $lt: `${prefix}\uffff` } }, { projection: { k: 1, key: 1, seq: 1, value: 1 } })
        .toArray(),
    )
    const latest = new Map<string, SharedRecordDoc>()
    for (const doc of docs) if ((latest.get(doc.k)?.seq ?? 0) < doc.seq) latest.set(doc.k, doc)
    return [...latest.values()].filter((d) => d.value !== null).map((d) => ({ key: d.key, value: JSON.parse(d.value!) as T }))
  }

  #latest(key: string): Promise<SharedRecordDoc | null> {
    return this.records.find({ ns: this.namespace, k: hashOf(key) }).sort({ seq: -1 }).limit(1).next()
  }

  /**
   * Deletes versions well behind `doc` (every earlier one when `doc` removes the record: its own stays
   * a while, so that no slow writer brings the record back), and the last versions of records
   * removed long enough ago.
   */
  async #cleanUp(doc: SharedRecordDoc): Promise<void> {
    const now = Date.now()
    const behind = doc.value === null ? { $lt: doc.seq } : { $lt: doc.seq - KEEP_VERSIONS }
    await this.records.deleteMany({ ns: this.namespace, k: doc.k, seq: behind, ...(doc.value === null ? {} : { at: { $lt: new Date(now - KEEP_MS) } }) })
    await this.records.deleteMany({ ns: this.namespace, value: null, at: { $lt: new Date(now - KEEP_REMOVED_MS) } })
  }

  /** The index a record's versions are read by (created once; a failure is tried again by the next change). */
  #index(): Promise<unknown> {
    this.#indexed ??= this.records
      .createIndex({ ns: 1, k: 1, seq: -1 }, { name: 'versions' })
      .then(() => this.records.createIndex({ ns: 1, key: 1 }, { name: 'keys' }))
      .catch((e: unknown) => {
        this.#indexed = undefined
        throw e
      })
    return this.#indexed
  }
}

const hashOf = (key: string): string => createHash('sha256').update(key).digest('hex').slice(0, 32)

function valueOf<T>(doc: SharedRecordDoc | null): T | null {
  return doc?.value ? (JSON.parse(doc.value) as T) : null
}
