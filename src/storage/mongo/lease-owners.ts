/**
 * The processes that write to one MongoDB store, so that the sweeper can tell the bytes of a write
 * whose process died (kill -9 between writing a GridFS file and committing its record) from those
 * of a write still running, and reclaim the first on its next run instead of an hour later.
 *
 * Each driver registers itself in `lease_owners` before it takes its first lease, and renews its
 * registration every third of its liveness window (the completion lease, `completionLeaseMs`), on
 * an unref'd timer, pushing its `silentAfter` one window ahead (each process by its own window, so
 * instances configured differently still judge each other right); every lease it takes names it as
 * `owner`. A clean close removes the registration once its writes ended. The sweeper first removes
 * registrations past their `silentAfter`, then decides at once every lease whose owner is not
 * registered.
 *
 * The danger is a live process that stalled (event loop, GC, an outage) for longer than the window:
 * the sweeper counts it dead and deletes its unreferenced bytes, which it may be about to commit. So
 * a write renews its registration just before the catalog (or part) record that names its GridFS
 * bytes is written (`confirm`), and fails with `store_unavailable` instead of committing when the
 * registration is gone or the process has registered again since; a heartbeat that finds its own
 * registration gone makes the next write register again under a new id. What remains:
 *
 * - a stall of more than the window between that renewal and the commit reaching the server (both
 *   are two consecutive requests of one write), or clocks of two hosts further apart than that
 *   (the heartbeat carries the writer's clock, the sweeper compares with its own);
 * - on FerretDB v1, whose conditional deletes are not atomic, a renewal that lands between the
 *   sweeper reading a registration as silent and deleting it — only after the writer had already
 *   been silent for a whole window.
 */
import { hostname } from 'node:os'
import { type Collection, ObjectId } from 'mongodb'
import { StorageError } from '../errors.js'
import type { OwnerDoc } from './schema.js'

/** A living process renews its registration this many times per liveness window. */
const RENEWALS_PER_WINDOW = 3

export class LeaseOwners {
  /** This process's registration, once made; null again when the sweeper removed it. */
  #id: string | null = null
  #registering: Promise<string> | null = null
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor(
    private readonly owners: Collection<OwnerDoc>,
    /** Silent this long (ms), an owner counts as dead. */
    readonly windowMs: number,
  ) {}

  /** The id this process takes leases under now, registering it first when needed. */
  async current(): Promise<string> {
    if (this.#closed) throw new StorageError('store_unavailable', 'the store is closed')
    if (this.#id !== null) return this.#id
    this.#registering ??= this.#register().finally(() => (this.#registering = null))
    return this.#registering
  }

  /** Whether leases taken under `id` may already have been reclaimed (this process re-registered since). */
  revoked(id: string): boolean {
    return id !== this.#id
  }

  /**
   * Just before a record names bytes leased under `id`: renews the registration, and refuses
   * (`store_unavailable`) when it is gone, i.e. when the sweeper may have deleted those bytes.
   * Nothing to confirm for bytes without a lease (inline ones, `id` undefined).
   */
  async confirm(id: string | undefined): Promise<void> {
    if (id === undefined || (!this.revoked(id) && (await this.#renew(id)))) return
    throw new StorageError(
      'store_unavailable',
      'this instance was silent longer than its liveness window and its unfinished writes were reclaimed; try again',
    )
  }

  /** Removes the registrations silent for a whole window of their own (their processes are dead, or stalled). */
  async reapSilent(now = new Date()): Promise<void> {
    await this.owners.deleteMany({ silentAfter: { $lt: now } })
  }

  /** Which of `ids` are registered. */
  async registered(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set()
    const found = await this.owners.find({ _id: { $in: ids } }, { projection: { _id: 1 } }).toArray()
    return new Set(found.map((o) => o._id))
  }

  /** Which of `ids` are registered and not yet silent for a whole window. */
  async living(ids: string[], now = new Date()): Promise<Set<string>> {
    if (ids.length === 0) return new Set()
    const found = await this.owners.find({ _id: { $in: [...new Set(ids)] }, silentAfter: { $gt: now } }, { projection: { _id: 1 } }).toArray()
    return new Set(found.map((o) => o._id))
  }

  /**
   * Whether a change may take `id` for dead without waiting for it, fencing it first: true when it
   * is not registered, or when it has been silent for two thirds of its window (a living process
   * renews every third) and its registration is removed now, conditionally on that very heartbeat
   * (a renewal meanwhile means it lives), so that it can commit nothing more (`confirm` fails).
   * False leaves it at least a third of its window before the sweeper reaps it: the time a caller
   * has to finish what must come before that.
   */
  async fenceSilent(id: string, now = new Date()): Promise<boolean> {
    const doc = await this.owners.findOne({ _id: id }, { projection: { heartbeat: 1, silentAfter: 1 } })
    if (!doc) return true
    const window = doc.silentAfter.getTime() - doc.heartbeat.getTime()
    if (doc.silentAfter.getTime() - window / RENEWALS_PER_WINDOW > now.getTime()) return false
    if ((await this.owners.deleteOne({ _id: id, heartbeat: doc.heartbeat })).deletedCount === 1) return true
    return (await this.owners.countDocuments({ _id: id })) === 0 // reaped meanwhile, or renewed
  }

  /** Every registered owner. */
  async all(): Promise<string[]> {
    return (await this.owners.find({}, { projection: { _id: 1 } }).toArray()).map((o) => o._id)
  }

  /** Stops the heartbeat and removes the registration (call once this process's writes ended). */
  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    const id = this.#id ?? (await this.#registering?.catch(() => null))
    this.#id = null
    if (id) await this.owners.deleteOne({ _id: id }).catch(() => {}) // else it goes silent, and is reaped
  }

  async #register(): Promise<string> {
    const id = new ObjectId().toHexString()
    const now = new Date()
    await this.owners.insertOne({ _id: id, ...this.#beatAt(now), started: now, host: hostname(), pid: process.pid })
    if (this.#closed) {
      await this.owners.deleteOne({ _id: id }).catch(() => {})
      throw new StorageError('store_unavailable', 'the store is closed')
    }
    this.#id = id
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.#beat(), this.windowMs / RENEWALS_PER_WINDOW)
      this.#timer.unref()
    }
    return id
  }

  async #beat(): Promise<void> {
    const id = this.#id
    if (id === null) return
    // MongoDB unreachable: the registration goes silent; once back, a reaped one is found gone.
    await this.#renew(id).catch(() => {})
  }

  #beatAt(now: Date): { heartbeat: Date; silentAfter: Date } {
    return { heartbeat: now, silentAfter: new Date(now.getTime() + this.windowMs) }
  }

  /** Renews `id`'s heartbeat; false (and this process unregistered) when it is gone. */
  async #renew(id: string): Promise<boolean> {
    const { matchedCount } = await this.owners.updateOne({ _id: id }, { $set: this.#beatAt(new Date()) })
    if (matchedCount === 1) return true
    if (this.#id === id) this.#id = null // the next write registers again, under a new id
    return false
  }
}
