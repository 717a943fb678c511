/**
 * Records events with the changes they announce, on a driver's `EventLog` (types.ts), written once
 * for every driver. A driver calls `intend` under its change's lock, just before the change becomes
 * visible, and then `confirm` (it is visible) or `cancel` (it will not be); the upload engine does
 * the same for the uploads' own events. Orphan intents, left by a process that died in between, are
 * settled by `settleOwner` (the disk store, while it reaps the dead process and before its locks go)
 * or `settleOrphans` (every store, from the relay, for owners known dead).
 *
 * Recording is off until `enable` (the service turns it on when something consumes events): a store
 * nobody listens to records nothing and has no backlog to fill. The backlog is bounded: once the
 * entries kept (to deliver, and dead letters) reach `maxBacklog`, changes are refused with `507
 * insufficient_storage` until it drains. The count is refreshed every second, so the backlog can
 * pass the bound by at most the changes of that second.
 */
import { StorageError } from '../errors.js'
import { failpoint } from '../failpoints.js'
import { type Change, eventsOf, pathsOf } from './changes.js'
import { newKey, settled } from './keys.js'
import { type ChangeOrigin, type EventLog, firstEntries, INTENTS, intentsOf, type LogEntry, READY, type Witness } from './types.js'

/** How often the backlog is counted while recording is on. */
const COUNT_INTERVAL_MS = 1000
/** Orphans settled per owner in one go (the rest at the next pass). */
const SETTLE_BATCH = 500

export interface EventRecorderOptions {
  /** Entries kept at most (to deliver, and dead letters) before changes are refused. */
  maxBacklog: number
  /** Told when the backlog fills up and when it has room again. */
  log?: (line: string) => void
  /** The store's name, for log lines. */
  name?: string
}

/** An intent written: the change it announces is about to become visible. */
export interface Intent {
  readonly key: string
  /** The process it is written under (`EventLog.owner`). */
  readonly owner: string
  /** The change is visible: its events may be delivered. */
  confirm(): Promise<void>
  /** The change will not be visible: its events go. */
  cancel(): Promise<void>
  /** Unknown whether the change is visible (it failed part way): settled from what the store shows. */
  abandon(): void
}

export interface IntendOptions {
  origin?: ChangeOrigin | undefined
  /** The key of the entry that announced the version this change replaces, when the store keeps it. */
  after?: string | undefined
  /** The key and owner to write the intent under, reserved beforehand (`reserve`): the store named them first. */
  reserved?: { key: string; owner: string }
}

export class EventRecorder {
  #enabled = false
  #maxBacklog = Infinity
  #log: (line: string) => void = () => {}
  #name = 'store'
  #size = 0
  #full = false
  #counter: NodeJS.Timeout | undefined
  /** Intents this process wrote and has not settled yet (a confirm or cancel that failed stays here). */
  readonly #open = new Set<string>()
  readonly #listeners = new Set<() => void>()

  constructor(readonly log: EventLog) {}

  get enabled(): boolean {
    return this.#enabled
  }

  /** Turns recording on, and the backlog's count with it. */
  async enable(options: EventRecorderOptions): Promise<void> {
    this.#maxBacklog = options.maxBacklog
    if (options.log) this.#log = options.log
    if (options.name) this.#name = options.name
    // A store that is down at start-up (MongoDB) is counted once it answers: the service starts anyway.
    await this.count().catch(() => {})
    this.#enabled = true
    clearInterval(this.#counter)
    this.#counter = setInterval(() => void this.count().catch(() => {}), COUNT_INTERVAL_MS)
    this.#counter.unref()
  }

  /** Stops counting (the store closes); intents already written are settled as usual. */
  disable(): void {
    this.#enabled = false
    clearInterval(this.#counter)
  }

  /** The backlog as last counted, and whether it is at its bound. */
  get backlog(): { size: number; max: number; full: boolean } {
    return { size: this.#size, max: this.#maxBacklog, full: this.#full }
  }

  /** Counts the backlog now; logs when it reaches its bound or drains below it. */
  async count(): Promise<number> {
    this.#size = await this.log.size()
    const full = this.#size >= this.#maxBacklog
    if (full !== this.#full) {
      this.#full = full
      this.#log(
        full
          ? `[filestorage] events: the backlog of store "${this.#name}" is full (${this.#size} of ${this.#maxBacklog} entries): ` +
              'changes are refused with 507 until it drains (deliveries, or dead letters replayed or deleted: docs/events.md)'
          : `[filestorage] events: the backlog of store "${this.#name}" has room again (${this.#size} of ${this.#maxBacklog}): changes are accepted`,
      )
    }
    return this.#size
  }

  /** Refuses a change (`507`) while the backlog is at its bound: before its body is read, and at its commit. */
  checkRoom(): void {
    if (!this.#enabled || !this.#full) return
    throw new StorageError(
      'insufficient_storage',
      `the event backlog of this store is full (${this.#size} of ${this.#maxBacklog}); changes are refused until it drains`,
      { details: { backlog: this.#size, max: this.#maxBacklog } },
    )
  }

  /**
   * Writes the intent of `change`, settled by `witness` should this process die before `confirm`
   * or `cancel`. Null when recording is off. Refused (`507`) at the bound.
   */
  async intend(change: Change, witness: Witness, options: IntendOptions = {}): Promise<Intent | null> {
    if (!this.#enabled) return null
    this.checkRoom()
    const { key, owner } = options.reserved ?? (await this.reserve(options.after))
    const entry: LogEntry = {
      v: 1,
      key,
      owner,
      paths: pathsOf(change),
      witness,
      events: eventsOf(change, options.origin, key, new Date().toISOString()),
    }
    const queue = intentsOf(owner)
    this.#open.add(key)
    try {
      await this.log.put(queue, entry)
      failpoint('events.intent.written')
    } catch (e) {
      this.#open.delete(key)
      await this.log.remove(queue, key).catch(() => {}) // a torn write, should one have landed
      throw e
    }
    // Neither step fails the change: should one not go through, the intent stays, no longer open,
    // and `settleOrphans` settles it from what the store shows.
    return {
      key,
      owner,
      abandon: () => void this.#open.delete(key),
      confirm: async () => {
        try {
          await this.log.move(queue, READY, key)
          this.#size++
        } catch {
          // settled later
        } finally {
          this.#open.delete(key)
        }
        await settled(key)
        for (const listener of this.#listeners) listener()
      },
      cancel: async () => {
        await this.log.remove(queue, key).catch(() => false)
        this.#open.delete(key)
      },
    }
  }

  /**
   * A key and owner for an intent to be written next (`IntendOptions.reserved`), for a driver that
   * must name the intent in the store before writing it (a MongoDB delete marks its record first).
   */
  async reserve(after?: string): Promise<{ key: string; owner: string }> {
    return { key: newKey(after), owner: await this.log.owner() }
  }

  /** Runs `change` between `intent.confirm` and `intent.cancel`: confirmed once it returned, cancelled if it threw. */
  async around<T>(intent: Intent | null, change: () => Promise<T>): Promise<T> {
    let result: T
    try {
      result = await change()
    } catch (e) {
      await intent?.cancel()
      throw e
    }
    if (intent) failpoint('events.change.visible')
    await intent?.confirm()
    return result
  }

  /** Calls `listener` whenever this process confirms an entry (a relay here delivers it at once). */
  onConfirmed(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /**
   * Settles the intents of `owner`, a process that died (or this one, closing): each entry whose
   * change the store shows goes to `ready`, the others go. Returns how many were confirmed.
   */
  async settleOwner(owner: string, keep: ReadonlySet<string> = new Set()): Promise<number> {
    const queue = intentsOf(owner)
    let confirmed = 0
    for (;;) {
      const entries = (await firstEntries(this.log, queue, SETTLE_BATCH)).filter((e) => !keep.has(e.key))
      for (const entry of entries) {
        if (await this.log.settle(entry)) {
          if (await this.log.move(queue, READY, entry.key)) confirmed++
        } else {
          await this.log.remove(queue, entry.key)
        }
      }
      if (entries.length < SETTLE_BATCH) return confirmed
    }
  }

  /**
   * Settles the intents of every owner known dead, and this process's own that a failed confirm or
   * cancel left behind. Returns how many were confirmed.
   */
  async settleOrphans(): Promise<number> {
    const me = await this.log.owner()
    let confirmed = 0
    for (const queue of await this.log.queues(INTENTS)) {
      const owner = queue.slice(INTENTS.length)
      if (owner === me) confirmed += await this.settleOwner(owner, this.#open)
      else if (!(await this.log.alive(owner))) confirmed += await this.settleOwner(owner)
    }
    return confirmed
  }

  /** Settles this process's own intents (it closes): those of changes cut by the shutdown. */
  async settleOwn(): Promise<void> {
    await this.settleOwner(await this.log.owner())
  }
}
