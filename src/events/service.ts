/**
 * Events for a running service (docs/events.md): recording turned on in every store some consumer
 * takes events of, a relay per store (only one process of all those sharing a store delivers: the
 * holder of its lease), the blocking hooks, and what the admin routes and `/check` ask
 * (handlers/events-admin.ts).
 */
import type { DeadLetterView, EventsAdmin, EventsOverview } from '../handlers/index.js'
import { type ChangeHooks } from '../handlers/index.js'
import { DEAD, type EventLog, type EventRecorder, firstEntries, isKey, type LogEntry, type Store, StorageError } from '../storage/index.js'
import type { Consumer } from './consumers.js'
import { httpHooks } from './hooks.js'
import type { EventsOptions } from './options.js'
import { payloadOf } from './payload.js'
import { RedisStream } from './redis-stream.js'
import { CONCURRENCY, consumerState, deadQueueOf, queueOf, StoreRelay } from './relay.js'
import { WebhookEndpoint } from './webhook.js'

/** Dead letters replayed or discarded per call at most. */
const SELECTION_LIMIT = 1000

export class EventsService implements EventsAdmin {
  readonly hooks: ChangeHooks
  readonly #relays = new Map<string, StoreRelay>()
  readonly #recorders = new Map<string, EventRecorder>()

  private constructor(
    private readonly consumerList: Consumer[],
    options: EventsOptions,
    log: (line: string) => void,
  ) {
    this.hooks = httpHooks(options.hooks, log)
  }

  /**
   * Starts events for `stores`: recording in each store some consumer may take events of, and its
   * relay. A store whose driver records no events is left alone.
   */
  static async start(stores: [string, Store][], options: EventsOptions, log: (line: string) => void): Promise<EventsService> {
    const consumers: Consumer[] = [
      ...options.endpoints.map((endpoint) => new WebhookEndpoint(endpoint, CONCURRENCY)),
      ...(options.redis ? [new RedisStream(options.redis)] : []),
    ]
    const service = new EventsService(consumers, options, log)
    for (const [name, store] of stores) {
      const recorder = store.events
      const wanted = options.endpoints.some((e) => !e.filter.stores || e.filter.stores.includes(name)) || options.redis !== undefined
      if (!wanted) continue
      if (!recorder) {
        log(`[filestorage] events: the store "${name}" records no events (its driver keeps no event log); its changes are not announced`)
        continue
      }
      await recorder.enable({ maxBacklog: options.maxBacklog, log, name })
      service.#recorders.set(name, recorder)
      service.#relays.set(name, new StoreRelay(name, recorder, consumers, { retryForMs: options.retryForMs, retryDelayMaxMs: options.retryDelayMaxMs, log }).start())
    }
    return service
  }

  /** The relays, for tests and the bench. */
  get relays(): ReadonlyMap<string, StoreRelay> {
    return this.#relays
  }

  /** Stops the relays (deliveries in flight end, up to `timeoutMs`), then the consumers. */
  async stop(timeoutMs: number): Promise<void> {
    await Promise.all([...this.#relays.values()].map((r) => r.stop(timeoutMs)))
    await Promise.all(this.consumerList.map((c) => c.close()))
  }

  consumers(): string[] {
    return this.consumerList.map((c) => c.name)
  }

  health(): ReturnType<EventsAdmin['health']> {
    const stores = Object.fromEntries(
      [...this.#recorders].map(([name, r]) => {
        const { size, max, full } = r.backlog
        return [name, { backlog: size, max, full }]
      }),
    )
    return { status: Object.values(stores).some((s) => s.full) ? 'degraded' : 'ok', stores }
  }

  async overview(): Promise<EventsOverview> {
    const stores: EventsOverview['stores'] = {}
    for (const [name, relay] of this.#relays) {
      const recorder = this.#recorders.get(name)!
      const consumers = (await relay.lanes()).map(({ dead, ...lane }) => ({ ...lane, deadLetters: dead }))
      const backlog = await recorder.count()
      stores[name] = { backlog, max: recorder.backlog.max, full: recorder.backlog.full, consumers }
    }
    return { stores }
  }

  async deadLetters(store: string, query: { consumer?: string; limit: number; cursor?: string }): Promise<{ entries: DeadLetterView[]; nextCursor: string | null }> {
    const log = this.#log(store)
    const names = query.consumer !== undefined ? [this.#consumer(query.consumer).name] : (await log.queues(DEAD)).map((q) => q.slice(DEAD.length)).sort()
    const [fromConsumer, fromKey] = parseCursor(query.cursor)
    const entries: DeadLetterView[] = []
    for (const name of names) {
      if (fromConsumer !== undefined && name < fromConsumer) continue
      const after = name === fromConsumer ? fromKey : undefined
      const page = await firstEntries(log, deadQueueOf(name), query.limit - entries.length + 1, after)
      for (const entry of page) {
        if (entries.length === query.limit) {
          const last = entries.at(-1)!
          return { entries, nextCursor: `${last.consumer}/${last.key}` }
        }
        entries.push(deadLetterView(store, name, entry))
      }
    }
    return { entries, nextCursor: null }
  }

  replay(store: string, consumer: string, ids?: string[]): Promise<{ count: number; remaining: number }> {
    // Back in the consumer's queue under its own key: the same webhook-id, and its old place in the order.
    return this.#select(store, consumer, ids, async (log, entry) => {
      const { dead: _dead, ...live } = entry
      await log.put(queueOf(consumer), live)
    })
  }

  discard(store: string, consumer: string, ids?: string[]): Promise<{ count: number; remaining: number }> {
    return this.#select(store, consumer, ids, async () => {})
  }

  async enable(consumer: string): Promise<boolean> {
    if (!this.consumerList.some((c) => c.name === consumer)) return false
    for (const [, relay] of this.#relays) {
      await relay.log.writeState(consumerState(consumer), null)
      relay.wake()
    }
    return true
  }

  /** Applies `act` to the dead letters `ids` of `consumer` (all, up to SELECTION_LIMIT), removing each from the dead letters. */
  async #select(
    store: string,
    consumer: string,
    ids: string[] | undefined,
    act: (log: EventLog, entry: LogEntry) => Promise<void>,
  ): Promise<{ count: number; remaining: number }> {
    const log = this.#log(store)
    const queue = deadQueueOf(this.#consumer(consumer).name)
    const wanted = ids && new Set(ids.map(keyOfId))
    let count = 0
    for (let after: string | undefined; count < SELECTION_LIMIT; ) {
      const page = await firstEntries(log, queue, SELECTION_LIMIT, after)
      for (const entry of page) {
        if (count === SELECTION_LIMIT) break
        if (wanted && !wanted.has(entry.key)) continue
        await act(log, entry)
        if (await log.remove(queue, entry.key)) count++
      }
      if (page.length < SELECTION_LIMIT) break
      after = page.at(-1)!.key
    }
    this.#relays.get(store)?.wake()
    return { count, remaining: await log.count(queue) }
  }

  #log(store: string): EventLog {
    const recorder = this.#recorders.get(store)
    if (!recorder) throw new StorageError('not_found', `no events are recorded for the store "${store}"`)
    return recorder.log
  }

  #consumer(name: string): Consumer {
    const consumer = this.consumerList.find((c) => c.name === name)
    if (!consumer) throw new StorageError('not_found', `there is no consumer named "${name}"`)
    return consumer
  }
}

function deadLetterView(store: string, consumer: string, entry: LogEntry): DeadLetterView {
  return {
    consumer,
    key: entry.key,
    ids: entry.events.map((e) => e.id),
    events: entry.events.map((e) => JSON.parse(payloadOf(store, e)) as DeadLetterView['events'][number]),
    deadAt: entry.dead?.at ?? '',
    attempts: entry.dead?.attempts ?? 0,
    ...(entry.dead?.status !== undefined ? { status: entry.dead.status } : {}),
    error: entry.dead?.error ?? '',
  }
}

/** The key of an entry from an event id (`evt_<key>`, `evt_<key>_<n>`) or the key itself. */
function keyOfId(id: string): string {
  return /^evt_([0-9a-z]{18})(?:_\d+)?$/.exec(id)?.[1] ?? id
}

/** `<consumer>/<key>`, as `deadLetters` gives it; anything else starts from the first. */
function parseCursor(cursor: string | undefined): [string | undefined, string | undefined] {
  if (cursor === undefined) return [undefined, undefined]
  const slash = cursor.lastIndexOf('/')
  const key = cursor.slice(slash + 1)
  if (slash < 1 || !isKey(key)) throw new StorageError('invalid_request', 'this cursor was not given by this route')
  return [cursor.slice(0, slash), key]
}
