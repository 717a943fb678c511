/**
 * The quota ledger of one store: where usage lives, how a change takes its room atomically, and how
 * what a crash leaves is settled. It keeps, in the store's shared records (shared-records.ts; on disk
 * under `.filestorage/records/quotas/`, on MongoDB in `shared_records`):
 *
 *   b/<prefix>   a bucket (bucket.ts): what the files under the prefix use, and the changes under way
 *   o/<process>  the buckets where a process holds entries, so that its entries are found if it dies
 *   u/<upload>   the buckets of an upload in parts (its reservation lives as long as it does)
 *   s/<prefix>   a bucket that may count more than it holds, to recount
 *   m/recount    when every bucket was last counted from the store
 *
 * Each bucket is changed by atomic updates of its record only, so instances and WORKERS sharing the
 * store agree: a change is registered in every bucket it touches (admitted or refused there), measures
 * what it replaces or removes (after registering, so that anything touching the same paths meanwhile
 * is seen), runs, and ends by moving `stored`. A bucket starts from a count of the store (a walk of
 * its prefix), and is counted again when a change could not be accounted exactly (bucket.ts), when
 * the entries of a dead process or an ended upload were reaped, and every QUOTA_RECOUNT_INTERVAL
 * (which also counts files put on a disk store by hand).
 *
 * Entries of a process that died are found from its `o/` record once the store counts it dead (the
 * disk store: at once on the same machine, else after 30 s of silence; MongoDB: after its liveness
 * window, COMPLETION_LEASE_SECONDS). Each is counted as written (its whole reservation added), so
 * usage is never below what the files hold, and the bucket is recounted at the next round. Rounds
 * run every QUOTA_RECOVERY_INTERVAL in every process.
 */
import { randomBytes } from 'node:crypto'
import { backoff } from '../backoff.js'
import { isStorageError, StorageError } from '../errors.js'
import { filesUnder } from '../files-under.js'
import type { SharedRecords } from '../shared-records.js'
import type { Store } from '../types.js'
import {
  addEntry,
  type Amount,
  countUnderWay,
  type BucketState,
  dropChange,
  endChange,
  endRecount,
  growEntry,
  type Limits,
  handOver,
  newBucket,
  NOTHING,
  QuotaRefusal,
  reap,
  setAmounts,
  usageOf,
  type Verdict,
} from './bucket.js'
import { type Bucket, isUnder, type QuotaRules } from './rules.js'

export interface LedgerOptions {
  /** The store's name, for messages and the usage route. */
  store: string
  /** How often each process settles what dead processes and ended uploads left, and recounts suspect buckets (ms). */
  recoveryIntervalMs: number
  /** How often every bucket is counted from the store again (ms). */
  recountIntervalMs: number
  log?: (line: string) => void
}

/** A bucket's usage, as the usage route answers it. */
export interface QuotaUsage {
  /** The prefix the limits hold for (`''`: the whole store). */
  prefix: string
  /** The rule that gives it (`users/{sub}`). */
  rule: string
  limits: Limits
  /** What the files there use, and what uploads under way have declared or sent. */
  stored: Amount
  reserved: Amount
  /** `stored` and `reserved` together: what the limits are checked against. */
  usage: Amount
}

interface UploadIndex {
  buckets: string[]
  expiresAt: number
  /** The process completing or aborting it. */
  ending?: string
}

/** An upload entry whose upload ended unaccounted is reaped once this long past its expiry (ms). */
const UPLOAD_GRACE_MS = 60_000
/** A suspect bucket is recounted at most once per this many of its walks' durations (and per round). */
const RECOUNT_SPACING = 20
/** How long a process waits for another's first count of a bucket before counting it itself (ms). */
const FIRST_COUNT_WAIT_MS = 10_000

const randomId = () => randomBytes(9).toString('base64url')

export function quotaExceeded(store: string, bucket: Bucket, refusal: QuotaRefusal['refusal']): StorageError {
  const what = refusal.requested.bytes > 0 && refusal.limit.bytes !== undefined && refusal.usage.bytes + refusal.requested.bytes > refusal.limit.bytes
    ? `${refusal.limit.bytes} bytes`
    : `${refusal.limit.files} files`
  const where = bucket.prefix === '' ? `the store "${store}"` : `"${bucket.prefix}" in the store "${store}"`
  return new StorageError('quota_exceeded', `the quota of ${where} (${what}) would be exceeded`, {
    details: { store, prefix: bucket.prefix, rule: bucket.rule, limit: refusal.limit, usage: refusal.usage, requested: refusal.requested },
  })
}

/** A change whose entries were reaped: this process stalled longer than the store's liveness window. */
const countedDead = () => new StorageError('store_unavailable', 'this instance was counted dead and its reservations were settled; try again')

export class QuotaLedger {
  readonly #counting = new Map<string, Promise<void>>()
  /** Buckets known to be counted (a bucket stays counted). */
  readonly #counted = new Set<string>()
  /** Entries this process holds, by bucket, and the buckets its `o/` record lists. */
  readonly #held = new Map<string, number>()
  #listed: { owner: string; prefixes: Set<string> } | undefined
  #timer: NodeJS.Timeout | undefined
  #round: Promise<void> | undefined
  #failing = false
  #closed = false

  constructor(
    readonly inner: Store,
    readonly records: SharedRecords,
    readonly rules: QuotaRules,
    readonly options: LedgerOptions,
  ) {}

  get store(): string {
    return this.options.store
  }

  /** Starts the rounds (and counts the buckets known from the rules at once, in the background). */
  start(): void {
    if (this.#timer) return
    const jitter = Math.random() * this.options.recoveryIntervalMs * 0.2
    this.#timer = setInterval(() => void this.round(), this.options.recoveryIntervalMs + jitter)
    this.#timer.unref()
    void this.counted(this.rules.literalPrefixes().map((p) => this.rules.bucket(p)!)).catch((e: unknown) => this.#log(`counting failed: ${(e as Error).message}`))
  }

  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    await this.#round?.catch(() => {})
  }

  /** The buckets a file at `path` counts in. */
  covering(path: string): Bucket[] {
    return this.rules.covering(path)
  }

  /** The buckets with a record strictly under the folder `dir` (a rule with `{sub}` below it). */
  async bucketsUnder(dir: string): Promise<Bucket[]> {
    if (!this.rules.mayHaveBucketsUnder(dir)) return []
    const found = await this.records.list<BucketState>(dir === '' ? 'b/' : `b/${dir}/`)
    return found.map((r) => this.rules.bucket(r.key.slice(2))).filter((b): b is Bucket => b !== undefined && isUnder(b.prefix, dir))
  }

  /** Resolves once each bucket has been counted from the store (a new bucket is counted first). */
  async counted(buckets: Bucket[]): Promise<void> {
    for (const bucket of buckets) {
      if (this.#counted.has(bucket.prefix)) continue
      const state = await this.records.read<BucketState>(`b/${bucket.prefix}`)
      if (state?.counted) {
        this.#counted.add(bucket.prefix)
        continue
      }
      let counting = this.#counting.get(bucket.prefix)
      if (!counting) {
        counting = this.#countFirst(bucket.prefix).finally(() => this.#counting.delete(bucket.prefix))
        this.#counting.set(bucket.prefix, counting)
      }
      await counting
      this.#counted.add(bucket.prefix)
    }
  }

  /**
   * The first count of a bucket, by one process of all: one that finds another's first count under
   * way waits for it (a change ending during a count may be counted twice, so processes starting
   * together and counting side by side would leave the bucket above what it holds until a recount).
   * A count that does not end within FIRST_COUNT_WAIT_MS (its process died) is not waited for longer.
   */
  async #countFirst(prefix: string): Promise<void> {
    const deadline = Date.now() + FIRST_COUNT_WAIT_MS
    for (let attempt = 1; ; attempt++) {
      const state = await this.records.read<BucketState>(`b/${prefix}`)
      if (state?.counted) return
      if (!state || !countUnderWay(state) || Date.now() >= deadline) {
        if (await this.recount(prefix, Date.now() < deadline)) return
      }
      await backoff(attempt, 10, 200)
    }
  }

  /** What each bucket covering `path` uses, and its limits. */
  async usage(path: string): Promise<QuotaUsage[]> {
    const buckets = this.covering(path)
    await this.counted(buckets)
    const answer: QuotaUsage[] = []
    for (const bucket of buckets) {
      const state = (await this.records.read<BucketState>(`b/${bucket.prefix}`)) ?? newBucket()
      answer.push({ prefix: bucket.prefix, rule: bucket.rule, limits: bucket.limits, ...usageOf(state) })
    }
    return answer
  }

  /** A change made by this process (a request): its entries go when it ends, or are reaped if the process dies. */
  async processChange(): Promise<Change> {
    return new Change(this, randomId(), `p:${await this.records.owner()}`)
  }

  /** The change an upload in parts makes over its life: one entry per bucket, named by the upload. */
  uploadChange(uploadId: string): Change {
    return new Change(this, `u:${uploadId}`, `u:${uploadId}`)
  }

  /**
   * Counts the bucket at `prefix` from the store: registers the count (every change under way there
   * becomes contended), walks the prefix, and sets `stored` to what it found plus what changes
   * ending meanwhile added. A count that a change ending meanwhile disturbed leaves the bucket suspect.
   * A `first` count is not made when the bucket is counted or being counted: false then.
   */
  async recount(prefix: string, first = false): Promise<boolean> {
    const id = `r:${randomId()}`
    const owner = `p:${await this.records.owner()}`
    await this.listed(owner, prefix)
    try {
      let registered = true
      await this.update(prefix, (s) => {
        // A first count gives way to a count done or under way (see #countFirst).
        registered = !(first && (s.counted || countUnderWay(s)))
        return registered ? addEntry(s, id, { kind: 'recount', owner, scopes: [prefix], added: { ...NOTHING }, since: Date.now() }, {}) : undefined
      })
      if (!registered) return false
      const started = Date.now()
      const walked = await this.#walk(prefix)
      let suspect = false
      await this.update(prefix, (s) => {
        const verdict = endRecount(s, id, walked, Date.now(), Date.now() - started)
        suspect = verdict?.suspect ?? false
        return verdict?.state
      })
      if (suspect) await this.suspect(prefix)
      return true
    } catch (e) {
      await this.update(prefix, (s) => dropChange(s, id)).catch(() => {})
      throw e
    } finally {
      this.released(owner, prefix)
    }
  }

  /** Marks a bucket for a recount at the next round. */
  async suspect(prefix: string): Promise<void> {
    await this.records.update<{ since: number }>(`s/${prefix}`, (current) => current ?? { since: Date.now() })
  }

  /** Applies `change` to the bucket's state atomically (a new bucket starts empty and uncounted). */
  async update(prefix: string, change: (state: BucketState) => BucketState | undefined): Promise<BucketState | null> {
    return this.records.update<BucketState>(`b/${prefix}`, (current) => change(current ?? newBucket()))
  }

  /**
   * One round: reaps the entries of processes counted dead and of uploads that ended unaccounted,
   * recounts suspect buckets, and every bucket when QUOTA_RECOUNT_INTERVAL has passed. Never two at
   * once in a process.
   */
  round(): Promise<void> {
    this.#round ??= this.#roundOnce()
      .then(
        () => {
          if (this.#failing) this.#log('rounds run again')
          this.#failing = false
        },
        (e: unknown) => {
          // Once per outage, not every round of it.
          if (!this.#closed && !this.#failing) this.#log(`a round failed (tried again every round): ${(e as Error).message}`)
          this.#failing = true
        },
      )
      .finally(() => (this.#round = undefined))
    return this.#round
  }

  async #roundOnce(now = Date.now()): Promise<void> {
    const owners = await this.records.list<{ buckets: string[] }>('o/')
    const uploads = await this.records.list<UploadIndex>('u/')
    const alive = await this.records.alive([...owners.map((o) => o.key.slice(2)), ...uploads.flatMap((u) => (u.value.ending ? [u.value.ending] : []))])
    for (const { key, value } of owners) {
      if (this.#closed) return
      const process = key.slice(2)
      if (alive.has(process)) continue
      for (const prefix of value.buckets) await this.#reap(prefix, (owner) => owner === `p:${process}`)
      await this.records.update(key, () => null)
    }
    for (const { key, value } of uploads) {
      if (this.#closed) return
      const due = now > value.expiresAt + UPLOAD_GRACE_MS || (value.ending !== undefined && !alive.has(value.ending))
      if (!due) continue
      const uploadId = key.slice(2)
      const live = await this.inner.uploadStatus(uploadId).then(
        () => true,
        (e: unknown) => {
          if (isStorageError(e, 'not_found')) return false
          throw e
        },
      )
      if (live) {
        await this.records.update<UploadIndex>(key, (u) => u && { buckets: u.buckets, expiresAt: u.expiresAt })
        continue
      }
      for (const prefix of value.buckets) await this.#reap(prefix, (owner) => owner === `u:${uploadId}`)
      await this.records.update(key, () => null)
    }
    for (const { key } of await this.records.list<{ since: number }>('s/')) {
      if (this.#closed) return
      const prefix = key.slice(2)
      const state = await this.records.read<BucketState>(`b/${prefix}`)
      const spacing = Math.max(this.options.recoveryIntervalMs, RECOUNT_SPACING * (state?.countMs ?? 0))
      if (state?.countedAt !== undefined && now - state.countedAt < spacing) continue
      await this.records.update(key, () => null) // first: a change that makes it suspect again during the count marks it again
      if (this.rules.bucket(prefix)) await this.recount(prefix)
    }
    await this.#recountAllIfDue(now)
  }

  /**
   * Every bucket, counted again from the store once per QUOTA_RECOUNT_INTERVAL (by one process of
   * all). The first interval starts with the ledger: a bucket is counted when it is first used.
   */
  async #recountAllIfDue(now: number): Promise<void> {
    const last = await this.records.read<{ at: number }>('m/recount')
    if (last && now - last.at < this.options.recountIntervalMs) return
    let claimed = false
    await this.records.update<{ at: number }>('m/recount', (current) => {
      claimed = current !== null && now - current.at >= this.options.recountIntervalMs
      return !current || claimed ? { at: now } : undefined
    })
    if (!claimed) return
    const prefixes = new Set(this.rules.literalPrefixes())
    for (const { key, value } of await this.records.list<BucketState>('b/')) {
      const prefix = key.slice(2)
      if (this.rules.bucket(prefix)) prefixes.add(prefix)
      else if (Object.keys(value.entries).length === 0) await this.records.update(key, () => null) // no rule gives it any more
    }
    for (const prefix of prefixes) {
      if (this.#closed) return
      await this.recount(prefix)
    }
  }

  async #reap(prefix: string, gone: (owner: string) => boolean): Promise<void> {
    let verdict: Verdict | undefined
    await this.update(prefix, (s) => (verdict = reap(s, gone))?.state)
    if (verdict?.suspect) await this.suspect(prefix)
  }

  /** What the files under `prefix` use, walked from the store (the file itself, when it is one). */
  async #walk(prefix: string): Promise<Amount> {
    if (prefix !== '') {
      const entry = await this.inner.lookup(prefix)
      if (!entry) return { ...NOTHING }
      if (entry.type === 'file') return { bytes: entry.size, files: 1 }
    }
    const total = { ...NOTHING }
    for await (const file of filesUnder(this.inner, prefix)) {
      total.bytes += file.size
      total.files += 1
    }
    return total
  }

  /** Before an entry of `owner` goes into `prefix`: a process's `o/` record lists the bucket. */
  async listed(owner: string, prefix: string): Promise<void> {
    if (!owner.startsWith('p:')) return
    this.#held.set(prefix, (this.#held.get(prefix) ?? 0) + 1)
    const process = owner.slice(2)
    if (this.#listed?.owner === process && this.#listed.prefixes.has(prefix)) return
    // Rewritten with the buckets held now: the record stays as small as the work under way.
    const prefixes = new Set(this.#held.keys())
    await this.records.update<{ buckets: string[] }>(`o/${process}`, () => ({ buckets: [...prefixes] }))
    this.#listed = { owner: process, prefixes }
  }

  /** An entry of `owner` left `prefix`. */
  released(owner: string, prefix: string): void {
    if (!owner.startsWith('p:')) return
    const n = (this.#held.get(prefix) ?? 1) - 1
    if (n > 0) this.#held.set(prefix, n)
    else this.#held.delete(prefix)
  }

  async indexUpload(uploadId: string, buckets: string[], expiresAt: string): Promise<void> {
    await this.records.update<UploadIndex>(`u/${uploadId}`, (current) => ({
      buckets: [...new Set([...(current?.buckets ?? []), ...buckets])],
      expiresAt: Date.parse(expiresAt),
    }))
  }

  /** The process that completes or aborts an upload says so first: if it dies, its entries are settled. */
  async uploadEnding(uploadId: string): Promise<void> {
    const owner = await this.records.owner()
    await this.records.update<UploadIndex>(`u/${uploadId}`, (current) => current && { ...current, ending: owner })
  }

  async uploadIndexed(uploadId: string): Promise<string[]> {
    return (await this.records.read<UploadIndex>(`u/${uploadId}`))?.buckets ?? []
  }

  async unindexUpload(uploadId: string): Promise<void> {
    await this.records.update(`u/${uploadId}`, () => null)
  }

  #log(line: string): void {
    this.options.log?.(`[filestorage] quotas of store "${this.store}": ${line}`)
  }
}

/**
 * One change under quotas: an entry in each bucket it touches, registered before the change
 * measures anything, ended (or dropped) when it is done.
 */
export class Change {
  readonly #buckets = new Map<string, Bucket>()

  constructor(
    private readonly ledger: QuotaLedger,
    readonly id: string,
    readonly owner: string,
  ) {}

  get buckets(): Bucket[] {
    return [...this.#buckets.values()]
  }

  has(prefix: string): boolean {
    return this.#buckets.has(prefix)
  }

  /** Takes on buckets where the change is registered already (an upload's, registered by another request). */
  adopt(buckets: Bucket[]): void {
    for (const bucket of buckets) this.#buckets.set(bucket.prefix, bucket)
  }

  /**
   * Registers the change in `bucket`, with what it may add and what it takes away there; refused
   * (`quota_exceeded`) when that does not fit. Registering again in a bucket changes nothing.
   */
  async register(bucket: Bucket, scopes: string[], amounts: { reserved?: Amount; credit?: Amount; declared?: boolean } = {}): Promise<void> {
    if (this.#buckets.has(bucket.prefix)) return
    await this.ledger.counted([bucket])
    await this.ledger.listed(this.owner, bucket.prefix)
    this.#buckets.set(bucket.prefix, bucket)
    try {
      await this.#update(bucket, (s) =>
        addEntry(
          s,
          this.id,
          {
            kind: 'change',
            owner: this.owner,
            scopes,
            reserved: amounts.reserved ?? { ...NOTHING },
            credit: amounts.credit ?? { ...NOTHING },
            ...(amounts.declared ? { declared: true as const } : {}),
            since: Date.now(),
          },
          bucket.limits,
        ),
      )
    } catch (e) {
      this.#buckets.delete(bucket.prefix)
      this.ledger.released(this.owner, bucket.prefix)
      throw e
    }
  }

  /** Sets what the change may add and takes away in `prefix` (measured after registering); refused when it no longer fits. */
  async set(prefix: string, amounts: { reserved?: Amount; credit?: Amount; declared?: true }): Promise<void> {
    const bucket = this.#buckets.get(prefix)
    if (!bucket) return
    await this.#update(bucket, (s) => setAmounts(s, this.id, amounts, bucket.limits))
  }

  /** Whether the entry in `prefix` is there, and how it stands. */
  async entry(prefix: string): Promise<{ reserved: Amount; credit: Amount; declared: boolean } | null> {
    const state = await this.ledger.records.read<BucketState>(`b/${prefix}`)
    const entry = state?.entries[this.id]
    return entry?.kind === 'change' ? { reserved: entry.reserved, credit: entry.credit, declared: entry.declared === true } : null
  }

  /**
   * Reserves up to `want` more bytes, and at least `need`, in every bucket: whatever fits everywhere
   * (`quota_exceeded` when not even `need` does). Returns the bytes granted.
   */
  async grow(need: number, want: number): Promise<number> {
    let granted = want
    const grown: [Bucket, number][] = []
    try {
      for (const bucket of this.#buckets.values()) {
        let mine = 0
        await this.#update(bucket, (s) => {
          const result = growEntry(s, this.id, need, granted, bucket.limits)
          if (!result) throw countedDead()
          mine = result.granted
          return result.state
        })
        grown.push([bucket, mine])
        granted = Math.min(granted, mine)
      }
    } catch (e) {
      for (const [bucket, bytes] of grown) await this.#shrinkIn(bucket, bytes).catch(() => {})
      throw e
    }
    // A bucket that granted more than a later one could: back to what all of them granted.
    for (const [bucket, bytes] of grown) if (bytes > granted) await this.#shrinkIn(bucket, bytes - granted)
    return granted
  }

  /** Gives every entry of this change to `to` (an upload taking over the reservation a request made for it). */
  async handOver(to: Change): Promise<void> {
    for (const bucket of this.buckets) {
      let moved = false
      await this.#update(bucket, (s) => {
        const next = handOver(s, this.id, to.id, to.owner)
        moved = next !== undefined
        return next
      })
      if (!moved) throw countedDead()
      to.adopt([bucket])
      this.#release(bucket.prefix)
    }
  }

  /** Gives back `bytes` of the reservation in every bucket (what a refused part had reserved). */
  async shrink(bytes: number): Promise<void> {
    for (const bucket of this.#buckets.values()) await this.#shrinkIn(bucket, bytes)
  }

  async #shrinkIn(bucket: Bucket, bytes: number): Promise<void> {
    if (bytes <= 0) return
    await this.#update(bucket, (s) => {
      const entry = s.entries[this.id]
      if (entry?.kind !== 'change') return undefined
      return setAmounts(s, this.id, { reserved: { ...entry.reserved, bytes: Math.max(0, entry.reserved.bytes - bytes) } }, {})
    })
  }

  /**
   * Ends the change: `added(prefix)` is what it added in each bucket; `exact` false when what it
   * replaced may differ from its credit (the store answered otherwise than measured).
   */
  async end(added: (prefix: string) => Amount, exact: boolean | ((credit: Amount) => boolean) = true): Promise<void> {
    for (const bucket of this.#buckets.values()) {
      let suspect = false
      await this.#update(bucket, (s) => {
        const verdict = endChange(s, this.id, added(bucket.prefix), exact)
        suspect = verdict.suspect
        return verdict.state
      })
      if (suspect) await this.ledger.suspect(bucket.prefix)
      this.#release(bucket.prefix)
    }
  }

  /** Gives the change up (it changed nothing); `suspect` when it may have changed something part-way. */
  async drop(suspect = false): Promise<void> {
    for (const bucket of this.#buckets.values()) {
      await this.#update(bucket, (s) => dropChange(s, this.id)).catch(() => {})
      if (suspect) await this.ledger.suspect(bucket.prefix).catch(() => {})
      this.#release(bucket.prefix)
    }
  }

  #release(prefix: string): void {
    this.#buckets.delete(prefix)
    this.ledger.released(this.owner, prefix)
  }

  async #update(bucket: Bucket, change: (state: BucketState) => BucketState | undefined): Promise<void> {
    try {
      await this.ledger.update(bucket.prefix, change)
    } catch (e) {
      if (e instanceof QuotaRefusal) throw quotaExceeded(this.ledger.store, bucket, e.refusal)
      throw e
    }
  }
}
