/**
 * The relay of one store: it hands each confirmed entry to the consumers that take one of its
 * events, then delivers them, each consumer on its own, in order per path, with retries, until the
 * entry is taken or is too old (a dead letter). One process of all those sharing the store relays
 * (it holds the store's lease `relay`); the others stand by and take over when it dies.
 *
 * Every pass (on a timer, when this process confirms an entry, when a delivery ends):
 *
 *   1. settle orphan intents (processes known dead), every few seconds;
 *   2. read each consumer's queue (its first WINDOW keys; an entry is read once, as entries do not
 *      change), then the intents still open (where they hold entries back: `intentsHoldBack`) and
 *      the entries not handed out yet (`ready`), in that order;
 *   3. hand out `ready`: a copy in `to/<consumer>` for each consumer that takes it;
 *   4. start, per consumer, the entries of its window that nothing earlier holds back: an entry
 *      waits while an earlier one (a smaller key) that touches the same path, or a folder above or
 *      below it, is not done for that consumer, is in flight, or may still be recorded (an open
 *      intent, an entry not handed out).
 *
 * Reading the consumer's queue first and what may still come into it after is what keeps the order:
 * an earlier entry of a path is, at any instant, an intent, or ready, or in the queue (a confirm adds
 * it to `ready` before it leaves the intents), so a later entry is never started without seeing it.
 *
 * Memory is bounded: WINDOW entries per consumer, READ_LIMIT intents and ready entries per pass.
 */
import {
  type EventLog,
  type EventRecorder,
  firstEntries,
  INTENTS,
  keyTime,
  type LogEntry,
  READY,
} from '../storage/index.js'
import type { Consumer, Outcome } from './consumers.js'

/** Entries of one consumer's queue looked at per pass. */
const WINDOW = 64
/** Deliveries in flight per consumer. */
export const CONCURRENCY = 8
/** Intents and ready entries read per pass (later ones are not overtaken: see `horizon`). */
const READ_LIMIT = 1000
/** A pass at least this often, when nothing wakes the relay sooner. */
const IDLE_MS = 500
const LEASE_CHECK_MS = 2000
const SETTLE_EVERY_MS = 2000
const STATE_EVERY_MS = 2000
/** The first retry waits about this long; each next one twice as long (with jitter), up to `retryDelayMaxMs`. */
const FIRST_RETRY_MS = 1000
const FAILURE_LOG_EVERY_MS = 60_000
/** How long the first of a burst of confirmed entries waits for the others, to be taken in one pass. */
const GATHER_MS = 5
/** At most one log line per consumer about dead letters in this long. */
const DEAD_LOG_EVERY_MS = 10_000

export interface RelayOptions {
  retryForMs: number
  retryDelayMaxMs: number
  log: (line: string) => void
}

/** The state key of a consumer (disabled by `410`). */
export const consumerState = (name: string) => `consumer.${name}`
export const queueOf = (name: string) => `to/${name}`
export const deadQueueOf = (name: string) => `dead/${name}`

export class StoreRelay {
  readonly #lanes: Lane[]
  #leader = false
  #leaseAt = 0
  #settledAt = 0
  #stateAt = 0
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | null = null
  #again = false
  #stopped = false
  /** A pass is set to run within GATHER_MS. */
  #gathering = false
  #failure: { message: string; at: number } | undefined
  /** Open intents read so far, by queue and key (the relay reads each once). */
  readonly #intents = new Map<string, LogEntry>()
  readonly #unsubscribe: () => void

  constructor(
    readonly store: string,
    private readonly recorder: EventRecorder,
    consumers: Consumer[],
    private readonly options: RelayOptions,
  ) {
    this.#lanes = consumers.map((c) => new Lane(this, c))
    // Entries confirmed in a burst are taken in one pass: a pass a little after the first of them.
    this.#unsubscribe = recorder.onConfirmed(() => this.soon())
  }

  get log(): EventLog {
    return this.recorder.log
  }

  /** Whether this process relays the store now. */
  get leading(): boolean {
    return this.#leader
  }

  get retry(): RelayOptions {
    return this.options
  }

  start(): this {
    this.wake()
    return this
  }

  /** A pass within GATHER_MS (or right after the one running): what comes in a burst is taken together. */
  soon(): void {
    if (this.#stopped || this.#running || this.#gathering) {
      if (this.#running) this.#again = true
      return
    }
    this.#gathering = true
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#gathering = false
      this.wake()
    }, GATHER_MS)
    this.#timer.unref()
  }

  /** Runs a pass now (or right after the one running). */
  wake(): void {
    if (this.#stopped) return
    if (this.#running) {
      this.#again = true
      return
    }
    clearTimeout(this.#timer)
    this.#gathering = false
    this.#running = this.#pass()
      .then(() => (this.#failure = undefined))
      .catch((e: unknown) => this.#failed(e as Error))
      .finally(() => {
        this.#running = null
        if (this.#stopped) return
        if (this.#again) {
          this.#again = false
          this.wake()
        } else {
          this.#timer = setTimeout(() => this.wake(), this.#nextWakeMs())
          this.#timer.unref()
        }
      })
  }

  /** Stops passes; deliveries in flight end (up to `timeoutMs`) and their outcome is kept. */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopped = true
    this.#unsubscribe()
    clearTimeout(this.#timer)
    await Promise.race([
      Promise.all([this.#running, ...this.#lanes.map((l) => l.idle())]),
      new Promise((resolve) => setTimeout(resolve, timeoutMs).unref()),
    ])
  }

  /** Each consumer's queue and dead letters, as counted now, and whether it is disabled. */
  async lanes(): Promise<{ name: string; target: string; pending: number; dead: number; disabled: boolean }[]> {
    return Promise.all(
      this.#lanes.map(async (lane) => ({
        name: lane.consumer.name,
        target: lane.consumer.target,
        pending: await this.log.count(queueOf(lane.consumer.name)),
        dead: await this.log.count(deadQueueOf(lane.consumer.name)),
        disabled: (await this.log.readState(consumerState(lane.consumer.name)))?.disabled === true,
      })),
    )
  }

  /** Logs a failed pass (the store is down, say): once, and again each minute while it lasts. */
  #failed(e: Error): void {
    const now = Date.now()
    if (this.#failure?.message === e.message && now - this.#failure.at < FAILURE_LOG_EVERY_MS) return
    this.#failure = { message: e.message, at: now }
    this.options.log(`[filestorage] events: relay of store "${this.store}": ${e.message}; retrying`)
  }

  async #pass(): Promise<void> {
    const now = Date.now()
    if (!this.#leader || now - this.#leaseAt >= LEASE_CHECK_MS) {
      this.#leader = await this.log.lease('relay')
      this.#leaseAt = now
    }
    if (!this.#leader) return
    if (now - this.#settledAt >= SETTLE_EVERY_MS) {
      this.#settledAt = now
      await this.recorder.settleOrphans()
    }
    // The consumers' queues first, then what may still come into them (see the top of this file).
    const readAt = Date.now()
    const windows = await Promise.all(this.#lanes.map((lane) => lane.window()))
    // A disabled consumer's state is read at every pass, after its queue: an operator enables it
    // before replaying to it, so what was replayed is never dead-lettered again.
    const stateDue = now - this.#stateAt >= STATE_EVERY_MS
    if (stateDue) this.#stateAt = now
    for (const lane of this.#lanes) {
      if (stateDue || lane.disabled) lane.disabled = (await this.log.readState(consumerState(lane.consumer.name)))?.disabled === true
    }
    let horizon: string | undefined
    const intents = this.log.intentsHoldBack ? await this.#openIntents((key) => (horizon = minKey(horizon, key))) : []
    const ready = await firstEntries(this.log, READY, READ_LIMIT)
    if (ready.length === READ_LIMIT) horizon = minKey(horizon, ready.at(-1)!.key)
    const handed = new Map<Lane, LogEntry[]>(this.#lanes.map((l) => [l, []]))
    for (const entry of ready) {
      const takers = this.#lanes.filter((lane) => !lane.disabled && lane.takes(entry))
      await this.log.spread(READY, takers.map((lane) => queueOf(lane.consumer.name)), entry.key)
      for (const lane of takers) {
        handed.get(lane)!.push(entry)
        lane.remember(entry) // read already: the next window need not read it again
      }
    }
    this.#lanes.forEach((lane, i) => lane.dispatch(windows[i]!, readAt, [...intents, ...handed.get(lane)!], horizon))
  }

  /**
   * The open intents of every process, each read once (an intent does not change); `truncated` is
   * told the last key of a queue read only in part: later entries cannot be checked against it.
   */
  async #openIntents(truncated: (key: string) => void): Promise<LogEntry[]> {
    const open: LogEntry[] = []
    const seen = new Set<string>()
    for (const queue of await this.log.queues(INTENTS)) {
      const keys = await this.log.keys(queue, READ_LIMIT)
      if (keys.length === READ_LIMIT) truncated(keys.at(-1)!)
      const missing = keys.filter((k) => !this.#intents.has(`${queue}/${k}`))
      for (const entry of await this.log.read(queue, missing)) this.#intents.set(`${queue}/${entry.key}`, entry)
      for (const key of keys) {
        const entry = this.#intents.get(`${queue}/${key}`)
        if (entry) open.push(entry)
        seen.add(`${queue}/${key}`)
      }
    }
    for (const id of this.#intents.keys()) if (!seen.has(id)) this.#intents.delete(id)
    return open
  }

  #nextWakeMs(): number {
    if (!this.#leader) return LEASE_CHECK_MS
    const soonest = Math.min(...this.#lanes.map((l) => l.nextRetryAt()))
    return Math.max(10, Math.min(IDLE_MS, soonest - Date.now()))
  }
}

/** An entry's delivery to one consumer, while it is not done. */
interface Attempts {
  count: number
  /** Not to be tried again before this (ms since the epoch). */
  nextAt: number
  /** Events of the entry the consumer took already (an entry may hold two). */
  taken: Set<string>
}

/** One consumer of one store's relay. */
class Lane {
  disabled = false
  readonly #inFlight = new Map<string, Promise<void>>()
  readonly #attempts = new Map<string, Attempts>()
  /** Entries done (taken or dead-lettered) lately, with when: a window read before that still lists them. */
  readonly #finished = new Map<string, number>()
  /** The entries of the consumer's window, read once each (an entry in a queue does not change). */
  readonly #cache = new Map<string, LogEntry>()
  #deadSince = 0
  #deadCount = 0

  constructor(
    private readonly relay: StoreRelay,
    readonly consumer: Consumer,
  ) {}

  /** The first WINDOW entries of the consumer's queue: their keys listed, only those not read before read. */
  async window(): Promise<LogEntry[]> {
    const queue = queueOf(this.consumer.name)
    const keys = await this.relay.log.keys(queue, WINDOW)
    const missing = keys.filter((k) => !this.#cache.has(k))
    for (const entry of await this.relay.log.read(queue, missing)) this.#cache.set(entry.key, entry)
    const listed = new Set(keys)
    for (const key of this.#cache.keys()) if (!listed.has(key)) this.#cache.delete(key)
    return keys.flatMap((key) => this.#cache.get(key) ?? [])
  }

  /** An entry just handed to this consumer, as read from `ready`. */
  remember(entry: LogEntry): void {
    this.#cache.set(entry.key, entry)
  }

  takes(entry: LogEntry): boolean {
    return entry.events.some((e) => this.consumer.accepts(this.relay.store, e))
  }

  async idle(): Promise<void> {
    await Promise.allSettled(this.#inFlight.values())
  }

  nextRetryAt(): number {
    let soonest = Infinity
    for (const [key, a] of this.#attempts) if (!this.#inFlight.has(key)) soonest = Math.min(soonest, a.nextAt)
    return soonest
  }

  /**
   * Starts what may go of `window` (the consumer's queue as read at `readAt`); `blockers`: entries
   * that may still arrive before later ones.
   */
  dispatch(queued: LogEntry[], readAt: number, blockers: LogEntry[], horizon: string | undefined): void {
    for (const [key, at] of this.#finished) if (at < readAt) this.#finished.delete(key) // gone from the queue before it was read
    const window = queued.filter((e) => !this.#finished.has(e.key))
    const inWindow = new Set(window.map((e) => e.key))
    for (const key of this.#attempts.keys()) if (!inWindow.has(key) && !this.#inFlight.has(key)) this.#attempts.delete(key) // done elsewhere (an operator's discard, a takeover)
    if (this.disabled) {
      for (const entry of window) if (!this.#inFlight.has(entry.key)) this.#track(entry.key, this.#deadLetter(entry, { ok: false, gone: true, error: 'the endpoint is disabled (it answered 410 Gone)' }, 0))
      return
    }
    const now = Date.now()
    const earlier: LogEntry[] = []
    for (const entry of window) {
      if (horizon !== undefined && entry.key > horizon) break
      const held =
        earlier.some((e) => overlaps(e, entry)) || blockers.some((b) => b.key < entry.key && overlaps(b, entry))
      const resting = (this.#attempts.get(entry.key)?.nextAt ?? 0) > now
      if (!held && !resting && !this.#inFlight.has(entry.key) && this.#inFlight.size < CONCURRENCY) this.#start(entry)
      earlier.push(entry)
    }
  }

  #start(entry: LogEntry): void {
    this.#track(entry.key, this.#deliver(entry))
  }

  #track(key: string, work: Promise<void>): void {
    if (this.#inFlight.has(key)) return
    const running = work
      .catch((e: unknown) => this.relay.retry.log(`[filestorage] events: delivery to "${this.consumer.name}" failed: ${(e as Error).message}`))
      .finally(() => {
        this.#inFlight.delete(key)
        this.relay.soon()
      })
    this.#inFlight.set(key, running)
  }

  async #deliver(entry: LogEntry): Promise<void> {
    const attempts = this.#attempts.get(entry.key) ?? { count: 0, nextAt: 0, taken: new Set<string>() }
    this.#attempts.set(entry.key, attempts)
    const outcome = await this.#send(entry, attempts.taken)
    attempts.count++
    if (outcome.ok) {
      await this.relay.log.remove(queueOf(this.consumer.name), entry.key)
      this.#finish(entry.key)
      return
    }
    if (outcome.gone) {
      this.disabled = true
      await this.relay.log.writeState(consumerState(this.consumer.name), { disabled: true, at: new Date().toISOString(), error: outcome.error })
      this.relay.retry.log(
        `[filestorage] events: endpoint "${this.consumer.name}" (${this.consumer.target}) answered 410 Gone: it is disabled for store ` +
          `"${this.relay.store}", its events go to its dead letters until an operator enables it (docs/events.md)`,
      )
      await this.#deadLetter(entry, outcome, attempts.count)
      return
    }
    const deadline = keyTime(entry.key) + this.relay.retry.retryForMs
    const now = Date.now()
    if (now >= deadline) {
      await this.#deadLetter(entry, outcome, attempts.count)
      return
    }
    const backoff = Math.min(this.relay.retry.retryDelayMaxMs, FIRST_RETRY_MS * 2 ** (attempts.count - 1)) * (0.5 + Math.random() / 2)
    attempts.nextAt = Math.min(deadline, now + Math.max(backoff, outcome.retryAfterMs ?? 0))
  }

  /** Sends the events of `entry` the consumer takes, in order, skipping those it took already. */
  async #send(entry: LogEntry, taken: Set<string>): Promise<Outcome> {
    for (const event of entry.events) {
      if (taken.has(event.id) || !this.consumer.accepts(this.relay.store, event)) continue
      const outcome = await this.consumer.send(this.relay.store, event)
      if (!outcome.ok) return outcome
      taken.add(event.id)
    }
    return { ok: true }
  }

  #finish(key: string): void {
    this.#attempts.delete(key)
    this.#finished.set(key, Date.now())
  }

  async #deadLetter(entry: LogEntry, outcome: Exclude<Outcome, { ok: true }>, attempts: number): Promise<void> {
    const { log } = this.relay
    await log.put(deadQueueOf(this.consumer.name), {
      ...entry,
      dead: { at: new Date().toISOString(), attempts, ...(outcome.status !== undefined ? { status: outcome.status } : {}), error: outcome.error },
    })
    await log.remove(queueOf(this.consumer.name), entry.key)
    this.#finish(entry.key)
    this.#deadCount++
    const now = Date.now()
    if (now - this.#deadSince >= DEAD_LOG_EVERY_MS) {
      this.relay.retry.log(
        `[filestorage] events: ${this.#deadCount} event(s) of store "${this.relay.store}" given up for "${this.consumer.name}" ` +
          `(last: ${outcome.error}); they are its dead letters (GET /filestorage/v1/admin/events/${this.relay.store}/deadletters)`,
      )
      this.#deadSince = now
      this.#deadCount = 0
    }
  }
}

/** Whether two entries touch a common path, or a folder and something in it. */
function overlaps(a: LogEntry, b: LogEntry): boolean {
  return a.paths.some((p) => b.paths.some((q) => related(p, q)))
}

/** The same path, or one a folder above the other. */
function related(a: string, b: string): boolean {
  if (a === b || a === '' || b === '') return true
  return a.length < b.length ? b.startsWith(`${a}/`) : a.startsWith(`${b}/`)
}

const minKey = (a: string | undefined, b: string) => (a === undefined || b < a ? b : a)
