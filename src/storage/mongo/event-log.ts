/**
 * The MongoDB store's `EventLog` (storage/events/types.ts): one collection, `events`, a document per
 * entry in a queue (`q`, and its key `k`, indexed together), the entry itself as JSON text (client
 * metadata may hold keys FerretDB refuses). An entry in `intents/<owner>` or `ready` has its key as
 * `_id`, so that confirming it is one update of `q`; the copies a relay hands to its consumers
 * (`to/…`, `dead/…`) have their own. Shared values and leases are in `event_state`.
 *
 * Owners are the store's registrations in `lease_owners` (lease-owners.ts): a process counts as dead
 * once its registration is gone (silent for a liveness window), and its intents are orphans then.
 */
import type { Collection } from 'mongodb'
import { type EventLog, INTENTS, type LogEntry, READY } from '../events/types.js'
import { isDuplicateKey } from './connection.js'
import type { LeaseOwners } from './lease-owners.js'

export const EVENTS = 'events'
export const EVENT_STATE = 'event_state'

export interface EventDoc {
  _id: string
  q: string
  k: string
  /** The entry, as JSON. */
  e: string
}

export interface EventStateDoc {
  _id: string
  json?: string
  /** A lease's holder (a registration in lease_owners). */
  owner?: string
}

/** The document id of the entry `key` in `queue`. */
const idOf = (queue: string, key: string) => (queue === READY || queue.startsWith(INTENTS) ? key : `${queue}|${key}`)

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

export class MongoEventLog implements EventLog {
  /** Writers of one path in two processes only meet at the catalog: an open intent holds later entries back. */
  readonly intentsHoldBack = true

  constructor(
    private readonly entries: Collection<EventDoc>,
    private readonly state: Collection<EventStateDoc>,
    private readonly owners: LeaseOwners,
    /** The driver's reading of a witness (mongo-driver.ts). */
    readonly settle: (entry: LogEntry) => Promise<boolean>,
  ) {}

  owner(): Promise<string> {
    return this.owners.current()
  }

  async alive(owner: string): Promise<boolean> {
    return (await this.owners.registered([owner])).has(owner)
  }

  async put(queue: string, entry: LogEntry): Promise<void> {
    await this.#upsert(queue, entry.key, JSON.stringify(entry))
  }

  async move(from: string, to: string, key: string): Promise<boolean> {
    const id = idOf(from, key)
    if (id === idOf(to, key)) return (await this.entries.updateOne({ _id: id, q: from }, { $set: { q: to } })).matchedCount === 1
    const doc = await this.entries.findOne({ _id: id })
    if (!doc) return false
    await this.#upsert(to, key, doc.e) // first: never in neither
    await this.entries.deleteOne({ _id: id })
    return true
  }

  async spread(from: string, to: string[], key: string): Promise<void> {
    const doc = await this.entries.findOne({ _id: idOf(from, key) })
    if (!doc) return
    for (const queue of to) await this.#upsert(queue, key, doc.e)
    await this.entries.deleteOne({ _id: idOf(from, key) })
  }

  async remove(queue: string, key: string): Promise<boolean> {
    return (await this.entries.deleteOne({ _id: idOf(queue, key), q: queue })).deletedCount === 1
  }

  async keys(queue: string, limit: number, after?: string): Promise<string[]> {
    const filter = after === undefined ? { q: queue } : { q: queue, k: { $gt: after } }
    const docs = await this.entries.find(filter, { projection: { k: 1 } }).sort({ k: 1 }).limit(limit).toArray()
    return docs.map((d) => d.k)
  }

  async read(queue: string, keys: string[]): Promise<LogEntry[]> {
    if (keys.length === 0) return []
    const docs = await this.entries.find({ _id: { $in: keys.map((k) => idOf(queue, k)) }, q: queue }).toArray()
    return docs.map((d) => JSON.parse(d.e) as LogEntry).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  async queues(prefix: string): Promise<string[]> {
    return (await this.entries.distinct('q', { q: { $regex: `^${escapeRegex(prefix)}` } })) as string[]
  }

  count(queue: string): Promise<number> {
    return this.entries.countDocuments({ q: queue })
  }

  size(): Promise<number> {
    return this.entries.countDocuments({})
  }

  async readState(name: string): Promise<Record<string, unknown> | null> {
    const doc = await this.state.findOne({ _id: `value:${name}` })
    return doc?.json ? (JSON.parse(doc.json) as Record<string, unknown>) : null
  }

  async writeState(name: string, value: Record<string, unknown> | null): Promise<void> {
    if (value === null) await this.state.deleteOne({ _id: `value:${name}` })
    else await this.state.updateOne({ _id: `value:${name}` }, { $set: { json: JSON.stringify(value) } }, { upsert: true })
  }

  /**
   * The lease is a document naming its holder's registration: inserted by one process only (the
   * unique `_id`), and taken over once that registration is gone.
   */
  async lease(name: string): Promise<boolean> {
    const me = await this.owners.current()
    const _id = `lease:${name}`
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await this.state.insertOne({ _id, owner: me })
        return true
      } catch (e) {
        if (!isDuplicateKey(e)) throw e
      }
      const held = await this.state.findOne({ _id })
      if (held?.owner === me) return true
      if (held?.owner !== undefined && (await this.alive(held.owner))) return false
      if (held) await this.state.deleteOne({ _id, owner: held.owner })
    }
    return false
  }

  async #upsert(queue: string, key: string, json: string): Promise<void> {
    await this.entries.updateOne({ _id: idOf(queue, key) }, { $set: { q: queue, k: key, e: json } }, { upsert: true })
  }
}
