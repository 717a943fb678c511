/**
 * The s3 store's `EventLog` (storage/events/types.ts): every entry an object under
 * `<prefix>.filestorage/events/`, so the log lives in the bucket with the files it describes and
 * every instance sharing the bucket sees the same one.
 *
 *   events/q/<queue>/<key>.json   an entry of a queue (`intents/<owner>`, `ready`, `to/…`, `dead/…`);
 *                                 S3 lists keys in byte order, which is the order of entry keys
 *   events/state/<name>.json      shared values (an endpoint disabled by 410)
 *   events/owners/<id>            a process writing to the store: rewritten every heartbeat, and
 *                                 deleted when it closes
 *   events/leases/<name>          a lease's holder, created with `If-None-Match: *`
 *
 * S3 has no rename: `move` writes the entry into its new queue, then deletes it from the old one
 * (in both for a moment after a crash, never in neither). A process counts as dead once its
 * heartbeat object is older than the liveness window, by the server's clock (compared with this
 * process's own heartbeat, never with the local clock), or gone. A lease is taken over from a dead
 * holder by a delete with `If-Match` on the lease's ETag, then a create: two processes taking it at
 * once, one wins. Both need conditional writes: without them the store records no events (the
 * driver refuses to enable them).
 */
import { randomBytes } from 'node:crypto'
import { EventRecorder, type EventRecorderOptions } from '../events/recorder.js'
import { type EventLog, type LogEntry } from '../events/types.js'
import { forEachLimited } from '../for-each-limited.js'
import type { Bucket } from './bucket.js'
import { INTERNAL, type S3Keys } from './keys.js'

const SUFFIX = '.json'
/** Entries read at once. */
const READ_CONCURRENCY = 16

export interface S3EventLogOptions {
  /** A process silent longer than this counts as dead (its intents are orphans, its lease free). */
  livenessWindowMs: number
  /** Whether the server honours conditional writes (capabilities.ts); the lease needs them. */
  conditionalWrites: () => Promise<boolean>
}

export class S3EventLog implements EventLog {
  /** Writers of one key in two processes meet only at S3's conditional writes: an open intent holds later entries back. */
  readonly intentsHoldBack = true
  readonly #id = randomBytes(8).toString('hex')
  readonly #root: string
  #registered: Promise<void> | undefined
  #heartbeat: NodeJS.Timeout | undefined

  constructor(
    private readonly bucket: Bucket,
    keys: S3Keys,
    private readonly options: S3EventLogOptions,
    /** The driver's reading of a witness (s3-driver.ts). */
    readonly settle: (entry: LogEntry) => Promise<boolean>,
  ) {
    this.#root = keys.reserved(INTERNAL.events)
  }

  /** Whether this process has written under its name (an intent, a lease): then it has something to settle and let go of when it closes. */
  get registered(): boolean {
    return this.#registered !== undefined
  }

  /** This process's name; its heartbeat object is written before the first intent names it. */
  async owner(): Promise<string> {
    await (this.#registered ??= this.#register())
    return this.#id
  }

  async alive(owner: string): Promise<boolean> {
    if (owner === this.#id) return true
    const [theirs, mine] = await Promise.all([this.bucket.head(this.#ownerKey(owner)), this.#registered ? this.bucket.head(this.#ownerKey(this.#id)) : null])
    if (!theirs) return false
    // Without a heartbeat of its own (nothing written yet), this process has the server's time from no object: it believes the owner lives.
    if (!mine) return true
    return mine.lastModified.getTime() - theirs.lastModified.getTime() <= this.options.livenessWindowMs
  }

  async put(queue: string, entry: LogEntry): Promise<void> {
    await this.#putJson(this.#entryKey(queue, entry.key), JSON.stringify(entry))
  }

  move(from: string, to: string, key: string): Promise<boolean> {
    return this.#relocate(from, [to], key)
  }

  async spread(from: string, to: string[], key: string): Promise<void> {
    await this.#relocate(from, to, key)
  }

  /** Puts the entry `key` of `from` in every queue of `to`, then deletes it from `from`: after a crash it is in both, never in neither. */
  async #relocate(from: string, to: string[], key: string): Promise<boolean> {
    const found = await this.bucket.read(this.#entryKey(from, key))
    if (!found) return false
    for (const queue of to) await this.#putJson(this.#entryKey(queue, key), found.text)
    await this.bucket.delete(this.#entryKey(from, key))
    return true
  }

  #putJson(key: string, json: string): Promise<string | null> {
    return this.bucket.put(key, json, {}, { ContentType: 'application/json' })
  }

  async remove(queue: string, key: string): Promise<boolean> {
    if (!(await this.bucket.head(this.#entryKey(queue, key)))) return false
    await this.bucket.delete(this.#entryKey(queue, key))
    return true
  }

  async keys(queue: string, limit: number, after?: string): Promise<string[]> {
    const prefix = this.#queuePrefix(queue)
    const keys: string[] = []
    for await (const page of this.bucket.list(prefix, { ...(after !== undefined ? { startAfter: `${prefix}${after}${SUFFIX}` } : {}), pageSize: Math.min(limit, 1000) })) {
      for (const o of page.objects) {
        const name = o.key.slice(prefix.length)
        if (!name.includes('/') && name.endsWith(SUFFIX)) keys.push(name.slice(0, -SUFFIX.length))
        if (keys.length === limit) return keys
      }
    }
    return keys
  }

  async read(queue: string, keys: string[]): Promise<LogEntry[]> {
    const entries: (LogEntry | null)[] = new Array(keys.length).fill(null)
    await forEachLimited(keys, READ_CONCURRENCY, async (key, i) => {
      const found = await this.bucket.read(this.#entryKey(queue, key))
      if (found) entries[i] = JSON.parse(found.text) as LogEntry
    })
    return entries.filter((e): e is LogEntry => e !== null).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  async queues(prefix: string): Promise<string[]> {
    const root = `${this.#root}q/`
    const names: string[] = []
    for await (const page of this.bucket.list(root + prefix, { delimiter: '/' })) {
      for (const p of page.prefixes) names.push(p.slice(root.length, -1))
    }
    return prefix.endsWith('/') ? names : names.filter((n) => n === prefix)
  }

  async count(queue: string): Promise<number> {
    return this.#countUnder(this.#queuePrefix(queue))
  }

  size(): Promise<number> {
    return this.#countUnder(`${this.#root}q/`)
  }

  async readState(name: string): Promise<Record<string, unknown> | null> {
    const found = await this.bucket.read(`${this.#root}state/${name}${SUFFIX}`)
    return found ? (JSON.parse(found.text) as Record<string, unknown>) : null
  }

  async writeState(name: string, value: Record<string, unknown> | null): Promise<void> {
    const key = `${this.#root}state/${name}${SUFFIX}`
    if (value === null) await this.bucket.delete(key)
    else await this.#putJson(key, JSON.stringify(value))
  }

  /** The lease is an object naming its holder, created by one process only, taken over once its holder is dead. */
  async lease(name: string): Promise<boolean> {
    if (!(await this.options.conditionalWrites())) {
      throw new Error('this S3 server has no conditional writes: the s3 store cannot hold the relay\'s lease, so it records no events')
    }
    const me = await this.owner()
    const key = `${this.#root}leases/${name}`
    for (let attempt = 0; attempt < 2; attempt++) {
      if ((await this.bucket.put(key, me, { ifNoneMatch: '*' })) !== null) return true
      const held = await this.bucket.read(key)
      if (!held) continue // let go meanwhile
      if (held.text === me) return true
      if (await this.alive(held.text)) return false
      await this.bucket.delete(key, held.s3etag) // false: taken over by another process meanwhile
    }
    return false
  }

  /** Stops the heartbeat and lets go of the leases this process holds and of its name (it closes; its intents are settled). */
  async close(): Promise<void> {
    clearInterval(this.#heartbeat)
    if (!this.#registered) return
    for await (const page of this.bucket.list(`${this.#root}leases/`)) {
      for (const o of page.objects) {
        const held = await this.bucket.read(o.key).catch(() => null)
        if (held?.text === this.#id) await this.bucket.delete(o.key, held.s3etag).catch(() => false)
      }
    }
    await this.bucket.delete(this.#ownerKey(this.#id)).catch(() => false)
  }

  async #register(): Promise<void> {
    const key = this.#ownerKey(this.#id)
    try {
      await this.bucket.put(key, 'alive')
    } catch (e) {
      this.#registered = undefined // tried again at the next use
      throw e
    }
    clearInterval(this.#heartbeat)
    this.#heartbeat = setInterval(() => void this.bucket.put(key, 'alive').catch(() => {}), Math.max(100, this.options.livenessWindowMs / 4))
    this.#heartbeat.unref()
  }

  async #countUnder(prefix: string): Promise<number> {
    let n = 0
    for await (const page of this.bucket.list(prefix)) n += page.objects.length
    return n
  }

  #ownerKey(id: string): string {
    return `${this.#root}owners/${id}`
  }

  #queuePrefix(queue: string): string {
    return `${this.#root}q/${queue}/`
  }

  #entryKey(queue: string, key: string): string {
    return `${this.#queuePrefix(queue)}${key}${SUFFIX}`
  }
}

/**
 * The s3 store's recorder: recording is refused on a server without conditional writes (capabilities.ts),
 * whose commits cannot be made exclusive nor the relay's lease held: the service does not start
 * with events on such a store, rather than announce changes it cannot order or deliver once.
 */
export class S3EventRecorder extends EventRecorder {
  constructor(
    log: S3EventLog,
    private readonly conditionalWrites: () => Promise<boolean>,
  ) {
    super(log)
  }

  override async enable(options: EventRecorderOptions): Promise<void> {
    // A server that does not answer now is probed again when the relay takes its lease.
    const conditional = await this.conditionalWrites().catch(() => true)
    if (!conditional) {
      throw new Error(
        `the s3 store${options.name !== undefined ? ` "${options.name}"` : ''} cannot record events: this S3 server has no conditional writes ` +
          '(If-None-Match / If-Match on PutObject), without which a change and its event cannot be kept together; ' +
          'use a server that has them (AWS S3, SeaweedFS, Ceph RGW, R2, MinIO), or send no events of this store (a "stores" filter in EVENTS_CONFIG)',
      )
    }
    await super.enable(options)
  }
}
